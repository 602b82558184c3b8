//! Hyperbolic pruning: the GPU ranking's distances match the f64 reference network + geoopt, every class keeps the
//! nearest fraction, and a run with --keep-real distills from the kept subset.

mod common;
use common::*;
use hyperdistill::bench::random_dataset;
use hyperdistill::hdd::{HddParams, LorentzMap, geoopt};
use hyperdistill::nn::convnet::{ConvNetConfig, ConvNetParams, ref_forward};
use hyperdistill::prune;

#[test]
fn ranking_matches_the_reference_and_keep_takes_the_nearest() {
    let ds = random_dataset(1, 28, 12, 5); // 10 classes × 12 images
    let h = HddParams { k: 1.0, clamp: Some(10.0), map: LorentzMap::Expmap, weighted: false };
    let (width, seed) = (4, 9);
    let bar = indicatif::ProgressBar::hidden();
    let ranking = prune::rank(gpu(), &ds, width, 2, &h, seed, 5, &bar).unwrap();

    // reference: the same two networks (same named stream), f64 forward, geoopt maps and distances
    let cfg = ConvNetConfig::square(1, 28, width, 10).unwrap();
    let mut r = hyperdistill::rng::stream(seed, "prune-nets");
    let nets: Vec<Vec<Vec<f64>>> = (0..2).map(|_| ConvNetParams::init(&cfg, &mut r).to_f64()).collect();
    let mut worst = 0f64;
    for (c, idx) in ds.class_indices(&ds.train).iter().enumerate() {
        let x: Vec<f64> = ds.normalized(&ds.train, idx).iter().map(|&v| v as f64).collect();
        let mut mean = vec![0.0; idx.len()];
        for p in &nets {
            let e = ref_forward(&cfg, p, &x, idx.len()).embed;
            let pts: Vec<Vec<f64>> = e.chunks(cfg.embed_dim()).map(|v| geoopt::to_hyperboloid(v, &h)).collect();
            for (m, d) in mean.iter_mut().zip(prune::distances_to_centroid(&pts, &h)) {
                *m += d / 2.0;
            }
        }
        for &(i, d) in &ranking[c] {
            let want = mean[idx.iter().position(|&j| j == i).unwrap()];
            worst = worst.max((d - want).abs() / want.max(1e-3));
        }
        assert!(ranking[c].windows(2).all(|w| w[0].1 <= w[1].1), "class {c} not sorted");
    }
    println!("pruning distances, GPU f32 features vs f64 reference: max rel err {worst:.2e}");
    assert!(worst < 1e-3, "{worst}");

    let kept = prune::keep(&ds, &ranking, 0.25, 2);
    assert_eq!(kept.train.len(), 10 * 3);
    for (c, cls) in ranking.iter().enumerate() {
        let mine: Vec<&[u8]> = kept.train.labels.iter().enumerate().filter(|(_, l)| **l == c as u32).map(|(k, _)| kept.image(&kept.train, k)).collect();
        for &(i, _) in &cls[..3] {
            assert!(mine.contains(&ds.image(&ds.train, i)), "class {c}: nearest image {i} not kept");
        }
    }
    assert_eq!(kept.test, ds.test);
}

/// The synthetic-set reading: the same distances as the reference for the set's own images, and each class cut to
/// its nearest fraction, in the set's order, with the cut recorded in the metadata.
#[test]
fn synthetic_ranking_matches_the_reference_and_keeps_the_nearest() {
    let ds = random_dataset(1, 28, 4, 3); // 10 classes × 4 images: use the training split as a "synthetic set"
    let set = hyperdistill::export::SynSet {
        images: ds.normalized(&ds.train, &(0..ds.train.len()).collect::<Vec<_>>()),
        labels: ds.train.labels.clone(),
        c: 1,
        h: 28,
        w: 28,
        meta: Default::default(),
    };
    let h = HddParams { k: 2.4, clamp: None, map: LorentzMap::Expmap, weighted: false };
    let (width, seed) = (4, 5);
    let ranking = prune::rank_synthetic(gpu(), &set, 10, width, 1, &h, seed, &indicatif::ProgressBar::hidden()).unwrap();
    let cfg = ConvNetConfig::square(1, 28, width, 10).unwrap();
    let p = ConvNetParams::init(&cfg, &mut hyperdistill::rng::stream(seed, "prune-nets")).to_f64();
    let mut worst = 0f64;
    for (c, cls) in ranking.iter().enumerate() {
        let idx: Vec<usize> = (0..set.labels.len()).filter(|&i| set.labels[i] == c as u32).collect();
        let x: Vec<f64> = idx.iter().flat_map(|&i| set.images[i * 784..(i + 1) * 784].iter().map(|&v| v as f64)).collect();
        let e = ref_forward(&cfg, &p, &x, idx.len()).embed;
        let pts: Vec<Vec<f64>> = e.chunks(cfg.embed_dim()).map(|v| geoopt::to_hyperboloid(v, &h)).collect();
        let want = prune::distances_to_centroid(&pts, &h);
        for &(i, d) in cls {
            let w = want[idx.iter().position(|&j| j == i).unwrap()];
            worst = worst.max((d - w).abs() / w.max(1e-3));
        }
    }
    println!("synthetic pruning distances, GPU vs f64 reference: max rel err {worst:.2e}");
    assert!(worst < 1e-3, "{worst}");

    let kept = prune::keep_synthetic(&set, &ranking, 0.5);
    assert_eq!(kept.labels.len(), 20);
    for (c, cls) in ranking.iter().enumerate() {
        let nearest: Vec<usize> = cls[..2].iter().map(|&(i, _)| i).collect();
        let mut expect: Vec<usize> = nearest.clone();
        expect.sort_unstable();
        let got: Vec<&[f32]> = kept.labels.iter().enumerate().filter(|(_, l)| **l == c as u32).map(|(k, _)| &kept.images[k * 784..(k + 1) * 784]).collect();
        let want: Vec<&[f32]> = expect.iter().map(|&i| &set.images[i * 784..(i + 1) * 784]).collect();
        assert_eq!(got, want, "class {c}: kept images are not its two nearest, in order");
    }
    assert!(kept.meta["pruned_synthetic"].starts_with("kept 20 of 40 images"));
}
