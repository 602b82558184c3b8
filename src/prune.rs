//! prune: hyperbolic pruning of the real training data (method.md §1.8, the project's reading of the paper).
//!
//! Every real training image of a class is embedded by a fixed random ConvNet-3 (or several, averaged), mapped
//! onto the hyperboloid exactly as HDD maps features, and ranked by its geodesic distance to its class's Law
//! centroid. `keep` keeps the nearest fraction of each class ("the most root-like samples"); distillation then
//! samples its real batches, and its real-image initialisation, from the kept subset only. Distance to the origin
//! cannot rank samples when the radius clamp is active (every sample sits at 10·√k), hence the class centroid.

use crate::data::{Dataset, Split};
use crate::gpu::{Gpu, GpuError};
use crate::lorentz::{Hyperbolic, geoopt};
use crate::nn::convnet::{ConvNetConfig, ConvNetParams, GpuConvNet};
use crate::rng;

/// Per class: the training-split indices sorted from nearest to farthest, with their mean distance.
pub type Ranking = Vec<Vec<(usize, f64)>>;

/// Distances of `points` (hyperboloid, one per row) to their Law centroid.
pub fn distances_to_centroid(points: &[Vec<f64>], k: f64) -> Vec<f64> {
    let c = geoopt::centroid(points, k);
    points.iter().map(|p| geoopt::dist(p, &c, k)).collect()
}

/// Rank every class's training images by geodesic distance to the class centroid, averaged over `nets`
/// fixed random ConvNet-3s of `width` drawn from `seed`. Images go through the GPU in batches of `batch`.
pub fn rank(gpu: &Gpu, ds: &Dataset, width: usize, nets: usize, hyper: &Hyperbolic, seed: u64, batch: usize, progress: &indicatif::ProgressBar) -> Result<Ranking, anyhow::Error> {
    let cfg = ConvNetConfig::new(ds.channels, ds.height, width, ds.classes.len())?;
    let class_idx = ds.class_indices(&ds.train);
    let mut sums: Vec<Vec<f64>> = class_idx.iter().map(|v| vec![0.0; v.len()]).collect();
    progress.set_length((nets * ds.train.len()) as u64);
    let mut r = rng::stream(seed, "prune-nets");
    for _ in 0..nets {
        let net = GpuConvNet::new(gpu, &ConvNetParams::init(&cfg, &mut r))?;
        let ws = net.workspace(gpu, batch)?;
        for (c, idx) in class_idx.iter().enumerate() {
            let mut pts = Vec::with_capacity(idx.len());
            for chunk in idx.chunks(batch) {
                pts.extend(embed_points(gpu, &net, &ws, ds, chunk, hyper)?);
                progress.inc(chunk.len() as u64);
            }
            for (s, d) in sums[c].iter_mut().zip(distances_to_centroid(&pts, hyper.k)) {
                *s += d / nets as f64;
            }
        }
    }
    Ok(class_idx
        .iter()
        .zip(sums)
        .map(|(idx, d)| {
            let mut v: Vec<(usize, f64)> = idx.iter().copied().zip(d).collect();
            v.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            v
        })
        .collect())
}

fn embed_points(gpu: &Gpu, net: &GpuConvNet, ws: &crate::nn::convnet::Workspace, ds: &Dataset, idx: &[usize], hyper: &Hyperbolic) -> Result<Vec<Vec<f64>>, GpuError> {
    let x = ds.normalized(&ds.train, idx);
    gpu.write(&ws.x, &x);
    let mut enc = gpu.encoder();
    net.forward(gpu, &mut enc, ws, false);
    gpu.submit_wait(enc);
    let dim = net.cfg.embed_dim();
    // the workspace holds `batch` images; only the first idx.len() are this chunk's
    let f = gpu.read_f32(&ws.embed, idx.len() * dim)?;
    Ok(f.chunks(dim).map(|v| geoopt::to_hyperboloid(&v.iter().map(|&a| a as f64).collect::<Vec<_>>(), hyper)).collect())
}

/// The dataset with each class's training images cut to the nearest `fraction` (at least one per class, and at
/// least `min_per_class` when the class has that many). The test split is untouched.
pub fn keep(ds: &Dataset, ranking: &Ranking, fraction: f64, min_per_class: usize) -> Dataset {
    let mut kept: Vec<usize> = ranking
        .iter()
        .flat_map(|cls| {
            let n = ((cls.len() as f64 * fraction).round() as usize).max(min_per_class.min(cls.len())).max(1).min(cls.len());
            cls[..n].iter().map(|&(i, _)| i)
        })
        .collect();
    kept.sort_unstable();
    let len = ds.image_len();
    let mut train = Split { images: Vec::with_capacity(kept.len() * len), labels: Vec::with_capacity(kept.len()) };
    for &i in &kept {
        train.images.extend_from_slice(ds.image(&ds.train, i));
        train.labels.push(ds.train.labels[i]);
    }
    Dataset { train, source: format!("{} (hyperbolic pruning: kept {:.0} % of each class)", ds.source, 100.0 * fraction), ..ds.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lorentz::LorentzMap;

    #[test]
    fn centroid_distances_rank_the_outlier_last() {
        let h = Hyperbolic { k: 1.0, clamp: None, map: LorentzMap::Expmap };
        let pts: Vec<Vec<f64>> = [[0.1, 0.0], [0.0, 0.12], [-0.1, 0.05], [2.5, -2.0]]
            .iter()
            .map(|v| geoopt::to_hyperboloid(v, &h))
            .collect();
        let d = distances_to_centroid(&pts, 1.0);
        let far = d.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        assert_eq!(far, 3, "{d:?}");
        assert!(d.iter().all(|x| x.is_finite() && *x >= 0.0));
    }
}
