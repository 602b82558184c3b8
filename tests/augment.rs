//! DSA: every op on the GPU against the CPU reference (forward and backward, mixed batches where each image
//! has its own op), the reference backward checked as the exact transpose (adjoint identity) and by f64
//! finite differences, the parameter ranges of the DSA code, and a few semantic facts.

mod common;
use common::*;
use hyperdistill::augment::{self, draw, draw_per_sample, draw_siamese, reference, AugParams, Op};
use rand::RngExt;

const OPS: [Op; 6] = [Op::Color, Op::Crop, Op::Cutout, Op::Flip, Op::Scale, Op::Rotate];

/// GPU forward and backward, the one-output kernels and the vec4 ones where rows are a multiple of 4 wide; each
/// result goes to `got(kernel name, values)`.
fn gpu_fwd_bwd(params: &[AugParams], x: &[f64], dy: &[f64], c: usize, h: usize, w: usize, got: impl Fn(&str, &[f64])) {
    let g = gpu();
    let n = params.len();
    let pb = g.upload("aug-params", params).unwrap();
    for vec4 in [false, true].into_iter().filter(|&v| !v || w % 4 == 0) {
        let (y, dx, scratch) = (poisoned(g, x.len()), poisoned(g, x.len()), poisoned(g, n));
        let mut enc = g.encoder();
        augment::gpu::forward_v(g, &mut enc, vec4, n, hyperdistill::shapes::ImageShape::new(c, h, w), &up(g, x), &pb, &scratch, &y);
        augment::gpu::backward_v(g, &mut enc, vec4, n, hyperdistill::shapes::ImageShape::new(c, h, w), &up(g, dy), &pb, &scratch, &dx);
        g.submit_wait(enc);
        got(if vec4 { "forward_v4" } else { "forward" }, &down(g, &y, x.len()));
        got(if vec4 { "backward_v4" } else { "backward" }, &down(g, &dx, x.len()));
    }
}

#[test]
fn every_op_matches_the_reference_on_the_gpu() {
    let mut r = rng(61);
    for (c, h, w) in [(1, 28, 28), (3, 32, 32), (3, 9, 13), (2, 7, 12)] {
        for op in OPS {
            let n = 5;
            let params: Vec<AugParams> = (0..n).map(|_| draw(op, &mut r, h, w)).collect();
            let x = rand_vec(&mut r, n * c * h * w, 1.0);
            let dy = rand_vec(&mut r, n * c * h * w, 1.0);
            let (want_y, want_dx) = (reference::forward(&x, &params, c, h, w), reference::backward(&dy, &params, c, h, w));
            gpu_fwd_bwd(&params, &x, &dy, c, h, w, |k, v| {
                check(&format!("{op:?} {k} {c}x{h}x{w}"), v, if k.starts_with("forward") { &want_y } else { &want_dx }, 1e-5)
            });
        }
        // one batch, every image its own op (as when each class drew a different op)
        let params: Vec<AugParams> = (0..12).map(|i| draw(OPS[i % 6], &mut r, h, w)).collect();
        let x = rand_vec(&mut r, 12 * c * h * w, 1.0);
        let dy = rand_vec(&mut r, 12 * c * h * w, 1.0);
        let (want_y, want_dx) = (reference::forward(&x, &params, c, h, w), reference::backward(&dy, &params, c, h, w));
        gpu_fwd_bwd(&params, &x, &dy, c, h, w, |k, v| {
            check(&format!("mixed {k} {c}x{h}x{w}"), v, if k.starts_with("forward") { &want_y } else { &want_dx }, 1e-5)
        });
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn reference_backward_is_the_gradient() {
    // Every op is affine in x for fixed parameters, so ⟨dy, F(x)⟩ − ⟨dy, F(0)⟩ = ⟨Fᵀ dy, x⟩ exactly, and
    // central differences are exact up to rounding (bilinear kinks are in the parameters, not in x).
    let mut r = rng(62);
    let (c, h, w) = (3, 10, 12);
    for op in OPS {
        for _ in 0..4 {
            let p = [draw(op, &mut r, h, w)];
            let x = rand_vec(&mut r, c * h * w, 1.0);
            let dy = rand_vec(&mut r, c * h * w, 1.0);
            let zero = vec![0.0; x.len()];
            let lhs = dot(&dy, &reference::forward(&x, &p, c, h, w)) - dot(&dy, &reference::forward(&zero, &p, c, h, w));
            let grad = reference::backward(&dy, &p, c, h, w);
            let rhs = dot(&grad, &x);
            assert!((lhs - rhs).abs() < 1e-10 * lhs.abs().max(1.0), "{op:?}: adjoint {lhs} vs {rhs}");
            let eps = 1e-6;
            for k in (0..x.len()).step_by(7) {
                let mut xp = x.clone();
                xp[k] += eps;
                let up_ = dot(&dy, &reference::forward(&xp, &p, c, h, w));
                xp[k] -= 2.0 * eps;
                let dn = dot(&dy, &reference::forward(&xp, &p, c, h, w));
                let fd = (up_ - dn) / (2.0 * eps);
                assert!((fd - grad[k]).abs() < 1e-7 * grad[k].abs().max(1.0), "{op:?} coord {k}: fd {fd} vs {}", grad[k]);
            }
        }
    }
}

#[test]
fn parameters_follow_the_dsa_code() {
    let mut r = rng(63);
    let (h, w) = (28, 28);
    let mut flips = 0;
    for _ in 0..2000 {
        let c = draw(Op::Color, &mut r, h, w).0;
        assert!((-0.5..0.5).contains(&c[1]) && (0.0..2.0).contains(&c[2]) && (0.5..1.5).contains(&c[3]));
        let k = draw(Op::Crop, &mut r, h, w).0;
        assert!(k[1].abs() <= 4.0 && k[2].abs() <= 4.0, "crop shift int(28·0.125 + 0.5) = 4");
        let u = draw(Op::Cutout, &mut r, h, w).0;
        assert!(u[2] - u[1] <= 14.0 && u[4] - u[3] <= 14.0 && u[1] >= 0.0 && u[2] <= 28.0, "cutout side int(28·0.5 + 0.5) = 14");
        flips += draw(Op::Flip, &mut r, h, w).0[1] as i32;
        let s = draw(Op::Scale, &mut r, h, w).0;
        assert!((1.0 / 1.2 - 1e-6..=1.2 + 1e-6).contains(&s[1]) && s[2] == 0.0 && s[3] == 0.0);
        let t = draw(Op::Rotate, &mut r, h, w).0;
        let angle = t[3].atan2(t[1]).to_degrees();
        assert!(angle.abs() <= 15.0 + 1e-4 && (t[2] + t[3]).abs() < 1e-6);
    }
    assert!((900..1100).contains(&flips), "flip probability 0.5: {flips}/2000");
    // the full 16×16 window fits at 32 px
    let full = (0..500).map(|_| draw(Op::Cutout, &mut r, 32, 32).0).filter(|u| u[2] - u[1] == 16.0).count();
    assert!(full > 0);
    // siamese: one op and one parameter set; per-sample: one op, parameters per image
    let ops = Op::parse_strategy(augment::DEFAULT_STRATEGY).unwrap();
    assert_eq!(ops.len(), 6);
    let s = draw_siamese(&ops, &mut r, h, w);
    assert!(s.kind() >= 1 && s.kind() <= 5);
    let b = draw_per_sample(&[Op::Rotate], &mut r, 8, h, w);
    assert!(b.iter().all(|p| p.kind() == 5) && b[0] != b[1]);
    assert!(Op::parse_strategy("color_zoom").is_err());
}

#[test]
fn semantic_facts() {
    let (c, h, w) = (1, 6, 5);
    let x: Vec<f64> = (0..h * w).map(|v| v as f64).collect();
    // crop with tx = 1 (the height axis): output row i shows input row i + 1, the last row becomes 0
    let y = reference::forward(&x, &[AugParams([2.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])], c, h, w);
    assert_eq!(&y[..w], &x[w..2 * w]);
    assert!(y[(h - 1) * w..].iter().all(|&v| v == 0.0));
    // identity affine (θ = I, align_corners = false) reproduces the image exactly
    let y = reference::forward(&x, &[AugParams([5.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0])], c, h, w);
    assert!(y.iter().zip(&x).all(|(a, b)| (a - b).abs() < 1e-12));
    // flip reverses each row
    let y = reference::forward(&x, &[AugParams([4.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])], c, h, w);
    assert_eq!(y[0], x[w - 1]);
    // color on one channel: saturation is the identity; contrast keeps the mean + brightness shift
    let mut r = rng(64);
    let xs = rand_vec(&mut r, 30, 1.0);
    let p = AugParams([1.0, 0.2, 1.7, 1.0, 0.0, 0.0, 0.0, 0.0]);
    let y = reference::forward(&xs, &[p], 1, 5, 6);
    assert!(y.iter().zip(&xs).all(|(a, b)| (a - (b + 0.2)).abs() < 1e-6), "0.2 is stored as f32");
    let _ = r.random::<u32>();
}
