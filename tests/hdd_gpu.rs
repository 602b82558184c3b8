//! The HDD kernels against the CPU: per-class distances against geoopt's literal f64 definitions
//! (relative error < 1e-5), gradients against the f64 mirror of the same formulas (whose gradient
//! matches finite differences, tests/hdd_ref.rs). k ∈ {0.5, 1, 2.4}, norms 0.1 to 100, clamp on and
//! off, both maps, 1 and 256 samples, identical sets. Outputs are poisoned with NaN first.

mod common;
use common::*;
use hyperdistill::hdd::gpu::{encode, read_distances, HddBuffers};
use hyperdistill::shapes::MatchShape;
use hyperdistill::hdd::{class_distance_grad, geoopt, HddParams};

/// Run the GPU term on `classes` classes and compare every class with the CPU.
fn run_case(h: &HddParams, norm: f64, s: MatchShape, identical: bool, seed: u64) -> (f64, f64) {
    let g = gpu();
    let mut r = rng(seed);
    let lambda = 20.0f32;
    let mut real = vec![];
    let mut syn = vec![];
    for _ in 0..s.classes {
        let fr = features(&mut r, s.per_real, s.dim, norm);
        let fs = if identical { fr.clone() } else { features(&mut r, s.per_syn, s.dim, norm) };
        real.extend(fr);
        syn.extend(fs);
    }
    // round to f32 first, so both sides see the same inputs
    let real: Vec<f64> = real.iter().map(|&v| v as f32 as f64).collect();
    let syn: Vec<f64> = syn.iter().map(|&v| v as f32 as f64).collect();
    let bufs = HddBuffers::new(g, &s).unwrap();
    let grad = poisoned(g, syn.len());
    g.write(&bufs.coef, &vec![f32::NAN; s.classes * 8]);
    let mut enc = g.encoder();
    encode(g, &mut enc, &s, h, lambda, &up(g, &real), &up(g, &syn), &bufs, &grad);
    g.submit_wait(enc);
    let dists = read_distances(g, &bufs, s.classes).unwrap();
    let grad = down(g, &grad, syn.len());
    let (mut worst_d, mut worst_g) = (0.0f64, 0.0f64);
    for c in 0..s.classes {
        let fr = &real[c * s.per_real * s.dim..(c + 1) * s.per_real * s.dim];
        let fs = &syn[c * s.per_syn * s.dim..(c + 1) * s.per_syn * s.dim];
        let (mirror_d, mirror_g) = class_distance_grad(fr, fs, s.dim, h);
        let gpu_g = &grad[c * s.per_syn * s.dim..(c + 1) * s.per_syn * s.dim];
        assert!(gpu_g.iter().all(|v| v.is_finite()), "{h:?} norm {norm}: non-finite gradient");
        if identical {
            assert!(dists[c].abs() < 1e-3 * h.k.sqrt() as f32, "{h:?}: identical sets give d = {}", dists[c]);
            continue;
        }
        let want = geoopt::class_distance(fr, fs, s.dim, h);
        let rel = (dists[c] as f64 - want).abs() / want;
        worst_d = worst_d.max(rel);
        assert!(rel < 1e-5, "{h:?} norm {norm} {s:?} class {c}: gpu d {} vs geoopt {want} (rel {rel:e}, mirror {mirror_d})", dists[c]);
        let want_g: Vec<f64> = mirror_g.iter().map(|v| v * lambda as f64).collect();
        let e = rel_err(gpu_g, &want_g);
        worst_g = worst_g.max(e);
        assert!(e < 1e-4, "{h:?} norm {norm} {s:?} class {c}: gradient rel err {e:e}");
    }
    (worst_d, worst_g)
}

#[test]
fn hdd_kernels_match_the_cpu_over_settings() {
    let (mut wd, mut wg) = (0.0f64, 0.0f64);
    for (i, (h, norm)) in hdd_settings().into_iter().enumerate() {
        for s in [
            MatchShape { classes: 3, per_real: 1, per_syn: 1, dim: 37 },
            MatchShape { classes: 2, per_real: 20, per_syn: 1, dim: 64 },
            MatchShape { classes: 2, per_real: 256, per_syn: 10, dim: 128 },
        ] {
            let (d, gr) = run_case(&h, norm, s, false, 100 + i as u64);
            wd = wd.max(d);
            wg = wg.max(gr);
        }
    }
    println!("worst over all settings: distance rel err {wd:.2e} (vs geoopt f64), gradient rel err {wg:.2e} (vs f64 mirror)");
}

#[test]
fn hdd_kernels_at_convnet_size() {
    // 10 classes × 256 real and 10 synthetic 2048-d features, DM+HDD's parity setting
    let (d, g) = run_case(&HddParams::dm_parity(), 24.0, MatchShape { classes: 10, per_real: 256, per_syn: 10, dim: 2048 }, false, 7);
    println!("2048-d, 10 classes: distance rel err {d:.2e}, gradient rel err {g:.2e}");
}

#[test]
fn identical_sets_give_zero_and_finite_gradients() {
    for (h, norm) in hdd_settings() {
        for per in [1, 256] {
            run_case(&h, norm, MatchShape { classes: 2, per_real: per, per_syn: per, dim: 32 }, true, 9);
        }
    }
}
