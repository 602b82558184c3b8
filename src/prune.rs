//! prune: hyperbolic pruning (method.md §1.8). The project's reading of the paper prunes the real training data
//! before distilling (`rank` + `keep`, `distill --keep-real`); the other reading prunes the synthetic set before
//! evaluating it (`rank_synthetic` + `keep_synthetic`, `eval --keep-syn`).
//!
//! Every real training image of a class is embedded by a fixed random ConvNet-3 (or several, averaged), mapped
//! onto the hyperboloid exactly as HDD maps features, and ranked by its geodesic distance to its class's Law
//! centroid. `keep` keeps the nearest fraction of each class ("the most root-like samples"); distillation then
//! samples its real batches, and its real-image initialisation, from the kept subset only. Distance to the origin
//! cannot rank samples when the radius clamp is active (every sample sits at 10·√k), hence the class centroid.

use crate::data::{Dataset, Split};
use crate::export::SynSet;
use crate::gpu::{Gpu, GpuError};
use crate::hdd::{HddParams, geoopt};
use crate::nn::convnet::{ConvNetConfig, ConvNetParams, GpuConvNet};
use crate::rng;

/// Per class: the training-split indices sorted from nearest to farthest, with their mean distance.
pub type Ranking = Vec<Vec<(usize, f64)>>;

/// Distances of `points` (hyperboloid, one per row) to their Law centroid (weighted by w = τ/sinh τ when
/// `hyper.weighted`, as HDD's centroid is).
pub fn distances_to_centroid(points: &[Vec<f64>], hyper: &HddParams) -> Vec<f64> {
    let k = hyper.k;
    let c = if hyper.weighted {
        let w: Vec<f64> = points.iter().map(|p| geoopt::hierarchy_weight_of(p, k)).collect();
        geoopt::centroid_weighted(points, &w, k)
    } else {
        geoopt::centroid(points, k)
    };
    points.iter().map(|p| geoopt::dist(p, &c, k)).collect()
}

/// Rank every class's training images by geodesic distance to the class centroid, averaged over `nets`
/// fixed random ConvNet-3s of `width` drawn from `seed`. Images go through the GPU in batches of `batch`.
pub fn rank(gpu: &Gpu, ds: &Dataset, width: usize, nets: usize, hyper: &HddParams, seed: u64, batch: usize, progress: &indicatif::ProgressBar) -> Result<Ranking, anyhow::Error> {
    let cfg = ConvNetConfig::new(ds.shape(), width, ds.classes.len())?;
    rank_classes(gpu, &cfg, &ds.class_indices(&ds.train), &|ix| ds.normalized(&ds.train, ix), nets, hyper, seed, batch, progress)
}

/// The other reading of the paper's pruning: rank a *synthetic* set's images within each class the same way
/// (same networks for the same seed), so that `keep_synthetic` can cut it before evaluation.
pub fn rank_synthetic(gpu: &Gpu, set: &SynSet, classes: usize, width: usize, nets: usize, hyper: &HddParams, seed: u64, progress: &indicatif::ProgressBar) -> Result<Ranking, anyhow::Error> {
    let cfg = ConvNetConfig::new(set.shape(), width, classes)?;
    let class_idx: Vec<Vec<usize>> = (0..classes).map(|c| (0..set.labels.len()).filter(|&i| set.labels[i] as usize == c).collect()).collect();
    let len = set.c * set.h * set.w;
    let gather = |ix: &[usize]| ix.iter().flat_map(|&i| set.images[i * len..(i + 1) * len].iter().copied()).collect();
    let batch = class_idx.iter().map(Vec::len).max().unwrap_or(1).clamp(1, 256);
    rank_classes(gpu, &cfg, &class_idx, &gather, nets, hyper, seed, batch, progress)
}

/// Per class (`class_idx[c]` = its image indices), the images sorted by mean distance to the class's Law
/// centroid over `nets` random networks; `images` returns the normalised pixels of a list of indices.
#[allow(clippy::too_many_arguments)]
fn rank_classes(gpu: &Gpu, cfg: &ConvNetConfig, class_idx: &[Vec<usize>], images: &dyn Fn(&[usize]) -> Vec<f32>, nets: usize, hyper: &HddParams, seed: u64, batch: usize, progress: &indicatif::ProgressBar) -> Result<Ranking, anyhow::Error> {
    let mut sums: Vec<Vec<f64>> = class_idx.iter().map(|v| vec![0.0; v.len()]).collect();
    progress.set_length((nets * class_idx.iter().map(Vec::len).sum::<usize>()) as u64);
    let mut r = rng::stream(seed, "prune-nets");
    for _ in 0..nets {
        let net = GpuConvNet::new(gpu, &ConvNetParams::init(cfg, &mut r))?;
        let ws = net.workspace(gpu, batch)?;
        for (c, idx) in class_idx.iter().enumerate() {
            if idx.is_empty() {
                continue;
            }
            let mut pts = Vec::with_capacity(idx.len());
            for chunk in idx.chunks(batch) {
                pts.extend(embed_points(gpu, &net, &ws, &images(chunk), chunk.len(), hyper)?);
                progress.inc(chunk.len() as u64);
            }
            for (s, d) in sums[c].iter_mut().zip(distances_to_centroid(&pts, hyper)) {
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

fn embed_points(gpu: &Gpu, net: &GpuConvNet, ws: &crate::nn::convnet::Workspace, x: &[f32], n: usize, hyper: &HddParams) -> Result<Vec<Vec<f64>>, GpuError> {
    gpu.write(&ws.x, x);
    let mut enc = gpu.encoder();
    net.forward_only(gpu, &mut enc, ws, false);
    gpu.submit_wait(enc);
    let dim = net.cfg.embed_dim();
    // the workspace holds `batch` images; only the first n are this chunk's
    let f = gpu.read_f32(&ws.embed, n * dim)?;
    Ok(f.chunks(dim).map(|v| geoopt::to_hyperboloid(&v.iter().map(|&a| a as f64).collect::<Vec<_>>(), hyper)).collect())
}

/// The indices kept: each class's nearest round(fraction·n), at least `min_per_class` (and 1) when the class has
/// that many, sorted.
fn nearest(ranking: &Ranking, fraction: f64, min_per_class: usize) -> Vec<usize> {
    let mut kept: Vec<usize> = ranking
        .iter()
        .flat_map(|cls| {
            let n = ((cls.len() as f64 * fraction).round() as usize).max(min_per_class.min(cls.len())).max(1).min(cls.len());
            cls[..n].iter().map(|&(i, _)| i)
        })
        .collect();
    kept.sort_unstable();
    kept
}

/// The synthetic set with each class cut to its nearest `fraction` (at least one image per class), in the
/// set's original order; the metadata records the cut.
pub fn keep_synthetic(set: &SynSet, ranking: &Ranking, fraction: f64) -> SynSet {
    let kept = nearest(ranking, fraction, 1);
    let len = set.c * set.h * set.w;
    let mut out = SynSet { images: Vec::with_capacity(kept.len() * len), labels: Vec::with_capacity(kept.len()), meta: set.meta.clone(), ..*set };
    for &i in &kept {
        out.images.extend_from_slice(&set.images[i * len..(i + 1) * len]);
        out.labels.push(set.labels[i]);
    }
    out.meta.insert("pruned_synthetic".into(), format!("kept {} of {} images (fraction {fraction} per class, nearest the class's Lorentz centroid)", kept.len(), set.labels.len()));
    out
}

/// The dataset with each class's training images cut to the nearest `fraction` (at least one per class, and at
/// least `min_per_class` when the class has that many). The test split is untouched.
pub fn keep(ds: &Dataset, ranking: &Ranking, fraction: f64, min_per_class: usize) -> Dataset {
    let kept = nearest(ranking, fraction, min_per_class);
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
    use crate::hdd::LorentzMap;

    #[test]
    fn centroid_distances_rank_the_outlier_last() {
        let h = HddParams { k: 1.0, clamp: None, map: LorentzMap::Expmap, weighted: false };
        let pts: Vec<Vec<f64>> = [[0.1, 0.0], [0.0, 0.12], [-0.1, 0.05], [2.5, -2.0]]
            .iter()
            .map(|v| geoopt::to_hyperboloid(v, &h))
            .collect();
        let d = distances_to_centroid(&pts, &h);
        let far = d.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        assert_eq!(far, 3, "{d:?}");
        assert!(d.iter().all(|x| x.is_finite() && *x >= 0.0));
    }
}
