//! The hyperbolic maths on the CPU: geoopt's literal f64 definitions (manifold properties), and the f64
//! mirror of the GPU formulas against them: distance, and the analytic gradient against central finite
//! differences of the literal geoopt distance. k ∈ {0.5, 1, 2.4}, feature norms 0.1 to 100, clamp on and
//! off, both maps, 1 to 256 samples, identical sets.

mod common;
use common::*;
use hyperdistill::hdd::{class_distance_grad, geoopt};

#[test]
fn geoopt_points_lie_on_the_manifold_and_distance_is_a_metric() {
    let mut g = rng(41);
    for (h, norm) in hdd_settings() {
        let f = features(&mut g, 6, 8, norm);
        let pts: Vec<Vec<f64>> = f.chunks(8).map(|v| geoopt::to_hyperboloid(v, &h)).collect();
        for p in &pts {
            let rel = (geoopt::inner(p, p) + h.k).abs() / (h.k + p[0] * p[0]);
            assert!(rel < 1e-12, "⟨x,x⟩ ≠ −k: {} for {h:?}", geoopt::inner(p, p));
        }
        let c = geoopt::centroid(&pts, h.k);
        assert!((geoopt::inner(&c, &c) + h.k).abs() < 1e-9 * h.k.max(c[0] * c[0]), "centroid off the manifold");
        for i in 0..pts.len() {
            for j in 0..pts.len() {
                let (dij, dji) = (geoopt::dist(&pts[i], &pts[j], h.k), geoopt::dist(&pts[j], &pts[i], h.k));
                // (geoopt's literal arcosh can dip just below 0 for two nearly equal points at radius 10)
                assert!(dij >= -1e-7 * pts[i][0].max(1.0) && (dij - dji).abs() <= 1e-12 * dij.abs().max(1.0), "{h:?} norm {norm}: d(i,j) {dij:e} vs d(j,i) {dji:e}");
            }
            // identical points: geoopt's floor leaves √k·√1e-15, and f64 rounding of −x0² + |xs|² leaves
            // about 2√ε·x0 (1e-4 at radius 10)
            let self_d = geoopt::dist(&pts[i], &pts[i], h.k);
            assert!(self_d < 1e-7 * pts[i][0].max(1.0), "d(x, x) = {self_d:e} at x0 = {}", pts[i][0]);
        }
    }
}

#[test]
fn stable_mirror_matches_geoopt_distance() {
    let mut g = rng(42);
    let dim = 16;
    let mut worst: f64 = 0.0;
    for (h, norm) in hdd_settings() {
        for (nr, ns) in [(1, 1), (20, 1), (20, 5), (256, 10)] {
            let real = features(&mut g, nr, dim, norm);
            let syn = features(&mut g, ns, dim, norm);
            let want = geoopt::class_distance(&real, &syn, dim, &h);
            let (got, _) = class_distance_grad(&real, &syn, dim, &h);
            let rel = (got - want).abs() / want;
            worst = worst.max(rel);
            assert!(rel < 1e-9, "{h:?} norm {norm} {nr}/{ns}: mirror {got} vs geoopt {want}");
        }
    }
    println!("worst relative distance error, f64 mirror vs geoopt: {worst:.2e}");
}

/// Central differences of the distance. They are taken on the stable mirror, whose value equals geoopt's to
/// 1e-9 (previous test): literal geoopt leaves ~1e-8 relative rounding noise in d at radius 10 (its
/// −x0² + |xs|² with x0 ≈ 1e4), which finite differences would amplify to ~1e-3.
#[test]
fn analytic_gradient_matches_finite_differences() {
    let mut g = rng(43);
    let dim = 6;
    let mut worst: f64 = 0.0;
    for (h, norm) in hdd_settings() {
        for (nr, ns) in [(7, 1), (9, 3)] {
            let real = features(&mut g, nr, dim, norm);
            let syn = features(&mut g, ns, dim, norm);
            let (_, grad) = class_distance_grad(&real, &syn, dim, &h);
            let mut fd = vec![0.0; syn.len()];
            for i in 0..syn.len() {
                let step = 1e-5 * syn[i].abs().max(norm / (dim as f64).sqrt());
                let mut p = syn.clone();
                p[i] += step;
                let up = class_distance_grad(&real, &p, dim, &h).0;
                p[i] -= 2.0 * step;
                let dn = class_distance_grad(&real, &p, dim, &h).0;
                fd[i] = (up - dn) / (2.0 * step);
            }
            let err = rel_err(&grad, &fd);
            worst = worst.max(err);
            assert!(err < 1e-5, "{h:?} norm {norm} {nr}/{ns}: gradient rel err {err:e}\nanalytic {grad:?}\nfd {fd:?}");
        }
    }
    println!("worst relative gradient error vs finite differences: {worst:.2e}");
}

#[test]
fn identical_sets_give_zero_distance_and_finite_gradient() {
    let mut g = rng(44);
    for (h, norm) in hdd_settings() {
        for n in [1, 256] {
            let f = features(&mut g, n, 16, norm);
            let (d, grad) = class_distance_grad(&f, &f, 16, &h);
            assert!(d.abs() < 1e-6, "{h:?}: d = {d}");
            assert!(grad.iter().all(|v| v.is_finite()), "{h:?}: gradient not finite");
        }
    }
}

#[test]
fn hierarchical_weights_follow_the_paper_and_cancel_under_the_clamp() {
    use hyperdistill::hdd::{hierarchy_weight, HddParams, LorentzMap};
    // w(τ) = τ/sinh τ and its derivative, against the plain formula and central differences, across the series switch
    let (w0, dw0) = hierarchy_weight(1e-6);
    assert!((w0 - 1.0).abs() < 1e-12 && (dw0 + 1e-6 / 3.0).abs() < 1e-15, "w(0) = 1, w'(τ) ≈ −τ/3 near 0");
    for tau in [0.01, 0.049, 0.051, 0.3, 1.0, 2.6, 7.0, 10.0, 40.0] {
        let (w, dw) = hierarchy_weight(tau);
        let plain = |t: f64| t / t.sinh();
        let fd = (plain(tau + 1e-6) - plain(tau - 1e-6)) / 2e-6;
        assert!((w - plain(tau)).abs() < 1e-12 * plain(tau).max(1e-300), "w({tau}) = {w} vs {}", plain(tau));
        assert!((dw - fd).abs() < 1e-7 * fd.abs().max(1e-6), "w'({tau}) = {dw} vs {fd}");
    }
    let mut g = rng(44);
    let dim = 12;
    let real = features(&mut g, 30, dim, 3.0);
    let syn = features(&mut g, 4, dim, 3.0);
    let d = |map, clamp, weighted| geoopt::class_distance(&real, &syn, dim, &HddParams { k: 1.0, clamp, map, weighted });
    // projx and unclamped expmap: the weights move the centroids; under the clamp they cancel
    for map in [LorentzMap::Projx, LorentzMap::Expmap] {
        let (plain, weighted) = (d(map, None, false), d(map, None, true));
        println!("{map:?}: d plain {plain:.6}, weighted {weighted:.6}");
        assert!((plain - weighted).abs() > 1e-3 * plain, "{map:?}: weights had no effect");
    }
    let real_big = features(&mut g, 30, dim, 25.0);
    let syn_big = features(&mut g, 4, dim, 25.0);
    let h = |weighted| HddParams { k: 1.0, clamp: Some(10.0), map: LorentzMap::Expmap, weighted };
    let (plain, weighted) = (geoopt::class_distance(&real_big, &syn_big, dim, &h(false)), geoopt::class_distance(&real_big, &syn_big, dim, &h(true)));
    assert!((plain - weighted).abs() < 1e-7 * plain, "clamp: {plain} vs {weighted}");
}
