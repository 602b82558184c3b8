//! IDM's partition-and-expansion: the GPU kernels against the f64 reference, the reference backward as the exact
//! adjoint and by finite differences, PyTorch's ×2 bilinear values, and the compose → expand round trip.

mod common;
use common::*;
use hyperdistill::mosaic::{self, reference};

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn expand_and_its_backward_match_the_reference_on_the_gpu() {
    let g = gpu();
    let mut r = rng(91);
    for (m, c, h, w) in [(3, 1, 28, 28), (2, 3, 32, 32), (5, 2, 6, 10), (1, 1, 2, 2)] {
        let x = rand_vec(&mut r, m * c * h * w, 1.0);
        let dy = rand_vec(&mut r, 4 * m * c * h * w, 1.0);
        let (y, dx) = (poisoned(g, dy.len()), poisoned(g, x.len()));
        let mut enc = g.encoder();
        mosaic::gpu::expand(g, &mut enc, m, hyperdistill::shapes::ImageShape::new(c, h, w), &up(g, &x), &y);
        mosaic::gpu::expand_backward(g, &mut enc, m, hyperdistill::shapes::ImageShape::new(c, h, w), &up(g, &dy), &dx);
        g.submit_wait(enc);
        check(&format!("expand {m}x{c}x{h}x{w}"), &down(g, &y, dy.len()), &reference::expand(&x, m, c, h, w), 1e-6);
        check(&format!("expand_backward {m}x{c}x{h}x{w}"), &down(g, &dx, x.len()), &reference::expand_backward(&dy, m, c, h, w), 1e-6);
    }
}

#[test]
fn reference_backward_is_the_gradient() {
    // expand is linear: ⟨dy, E x⟩ = ⟨Eᵀ dy, x⟩ exactly, and central differences are exact up to rounding.
    let mut r = rng(92);
    let (m, c, h, w) = (2, 2, 8, 6);
    let x = rand_vec(&mut r, m * c * h * w, 1.0);
    let dy = rand_vec(&mut r, 4 * m * c * h * w, 1.0);
    let grad = reference::expand_backward(&dy, m, c, h, w);
    let (lhs, rhs) = (dot(&dy, &reference::expand(&x, m, c, h, w)), dot(&grad, &x));
    println!("adjoint: {lhs} vs {rhs}");
    assert!((lhs - rhs).abs() < 1e-10 * lhs.abs().max(1.0));
    let eps = 1e-6;
    let mut worst: f64 = 0.0;
    for k in 0..x.len() {
        let mut xp = x.clone();
        xp[k] += eps;
        let hi = dot(&dy, &reference::expand(&xp, m, c, h, w));
        xp[k] -= 2.0 * eps;
        let lo = dot(&dy, &reference::expand(&xp, m, c, h, w));
        worst = worst.max(((hi - lo) / (2.0 * eps) - grad[k]).abs());
    }
    println!("finite differences: max abs error {worst:.2e}");
    assert!(worst < 1e-7);
}

#[test]
fn upsampling_matches_pytorch_bilinear_align_corners_false() {
    // F.interpolate(torch.tensor([[[[1., 2.]]]]).T-shaped…, scale_factor=2, mode='bilinear') gives 1, 1.25, 1.75, 2
    // along each axis. A 4×4 mosaic whose TL quadrant is [[1, 2], [3, 4]]:
    let mut x = vec![0.0; 16];
    x[0] = 1.0;
    x[1] = 2.0;
    x[4] = 3.0;
    x[5] = 4.0;
    let y = reference::expand(&x, 1, 1, 4, 4);
    let row = |a: f64, b: f64| [a, 0.75 * a + 0.25 * b, 0.25 * a + 0.75 * b, b];
    let (top, bottom) = (row(1.0, 2.0), row(3.0, 4.0));
    for r in 0..4 {
        let want = row(top[0], bottom[0]); // column 0 going down
        assert!((y[r * 4] - want[r]).abs() < 1e-12, "row {r}: {} vs {}", y[r * 4], want[r]);
        for s in 0..4 {
            let want = [top[s], 0.75 * top[s] + 0.25 * bottom[s], 0.25 * top[s] + 0.75 * bottom[s], bottom[s]][r];
            assert!((y[r * 4 + s] - want).abs() < 1e-12, "({r},{s}): {} vs {want}", y[r * 4 + s]);
        }
    }
    assert_eq!(&y[..4], &[1.0, 1.25, 1.75, 2.0]);
}

#[test]
fn compose_then_expand_round_trips_quadrant_by_quadrant() {
    // Four full-size images that are linear in (row, col): box-downscaling keeps them linear at the half-pixel
    // centres and bilinear ×2 reproduces linear functions, so each expanded image equals its source away from the
    // one-pixel border (where the edge clamp acts). Constant images round-trip everywhere.
    let (c, h, w) = (2, 12, 16);
    let ramp = |a: f32, b: f32, k: f32| -> Vec<f32> {
        (0..c * h * w).map(|i| a * ((i / w) % h) as f32 + b * (i % w) as f32 + k + (i / (h * w)) as f32).collect()
    };
    let srcs = [ramp(0.5, -0.25, 1.0), ramp(-1.0, 0.0, 3.0), ramp(0.0, 0.0, -2.0), ramp(0.125, 0.75, 0.0)];
    let m = mosaic::compose([&srcs[0], &srcs[1], &srcs[2], &srcs[3]], c, h, w);
    let (y, labels) = mosaic::expand_set(&m, &[7], c, h, w);
    assert_eq!(labels, vec![7; 4]);
    let mut worst: f32 = 0.0;
    for (q, src) in srcs.iter().enumerate() {
        for ch in 0..c {
            for r in 0..h {
                for s in 0..w {
                    let (got, want) = (y[((q * c) + ch) * h * w + r * w + s], src[ch * h * w + r * w + s]);
                    let interior = r >= 1 && r + 2 <= h && s >= 1 && s + 2 <= w;
                    if interior || q == 2 {
                        worst = worst.max((got - want).abs());
                    }
                }
            }
        }
    }
    println!("round trip: max abs error {worst:.2e}");
    assert!(worst < 1e-5);
    // each expanded image depends on its own quadrant only
    let mut other = m.clone();
    for v in &mut other[..w / 2] {
        *v += 10.0; // part of the TL quadrant's first row
    }
    let (y2, _) = mosaic::expand_set(&other, &[7], c, h, w);
    let plane = c * h * w;
    assert_ne!(&y2[..plane], &y[..plane]);
    assert_eq!(&y2[plane..], &y[plane..], "BL, TR and BR do not see the TL quadrant");
    assert!(mosaic::check_shape(28, 28).is_ok() && mosaic::check_shape(27, 28).is_err());
}

#[test]
fn nearest_composition_takes_every_other_pixel() {
    // DANCE's (IDC's) multi-formation initialisation downsamples by nearest neighbour: pixel (2r, 2s)
    let (c, h, w) = (2, 6, 8);
    let imgs: Vec<Vec<f32>> = (0..4).map(|q| (0..c * h * w).map(|i| (q * 1000 + i) as f32).collect()).collect();
    let m = mosaic::compose_nearest([&imgs[0], &imgs[1], &imgs[2], &imgs[3]], c, h, w);
    for q in 0..4 {
        let (r0, c0) = mosaic::quadrant_origin(q, h, w);
        for ch in 0..c {
            for r in 0..h / 2 {
                for s in 0..w / 2 {
                    assert_eq!(m[ch * h * w + (r0 + r) * w + c0 + s], imgs[q][ch * h * w + 2 * r * w + 2 * s]);
                }
            }
        }
    }
}
