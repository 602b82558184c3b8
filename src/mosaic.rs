//! mosaic: IDM's partition-and-expansion (method.md §4.1). Each stored synthetic image is a 2×2 mosaic of
//! half-resolution images (quadrants TL, BL, TR, BR); in use it is split and each quadrant upsampled ×2
//! bilinearly (align_corners=False, edge clamp), giving 4 images with the same label, quadrant-major (image
//! q·M + i is quadrant q of stored image i, as IDM's `torch.cat([a, b, c, d])`). Used in matching and in
//! evaluation. Initialisation puts four real images, each downscaled ×0.5 (a 2×2 box average), in the quadrants.

/// Quadrant q's top-left corner in an h×w image (TL, BL, TR, BR).
pub fn quadrant_origin(q: usize, h: usize, w: usize) -> (usize, usize) {
    (if q % 2 == 1 { h / 2 } else { 0 }, if q >= 2 { w / 2 } else { 0 })
}

/// The mosaic needs even sides (every dataset here: 28, 32, 64).
pub fn check_shape(h: usize, w: usize) -> Result<(), String> {
    if h % 2 != 0 || w % 2 != 0 || h < 2 || w < 2 {
        return Err(format!("the IDM mosaic needs even image sides, not {h}×{w}"));
    }
    Ok(())
}

/// Plain f64 versions of the kernels, the ground truth of the tests.
pub mod reference {
    use super::quadrant_origin;

    /// ×2 upsampling along one axis of half-length `half`: the two source taps of output index r and their
    /// weights (PyTorch's area_pixel_compute_source_index with scale 0.5, negative sources clamped to 0).
    pub fn taps(r: usize, half: usize) -> [(usize, f64); 2] {
        let src = ((r as f64 + 0.5) * 0.5 - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(half - 1);
        let l = src - i0 as f64;
        [(i0, 1.0 - l), ((i0 + 1).min(half - 1), l)]
    }

    /// x [m, c, h, w] → [4m, c, h, w].
    pub fn expand(x: &[f64], m: usize, c: usize, h: usize, w: usize) -> Vec<f64> {
        let mut y = vec![0.0; 4 * m * c * h * w];
        for q in 0..4 {
            let (r0, c0) = quadrant_origin(q, h, w);
            for i in 0..m {
                for ch in 0..c {
                    let src = &x[(i * c + ch) * h * w..][..h * w];
                    let dst = &mut y[((q * m + i) * c + ch) * h * w..][..h * w];
                    for r in 0..h {
                        for s in 0..w {
                            let mut v = 0.0;
                            for (ir, wr) in taps(r, h / 2) {
                                for (is, ws) in taps(s, w / 2) {
                                    v += wr * ws * src[(r0 + ir) * w + c0 + is];
                                }
                            }
                            dst[r * w + s] = v;
                        }
                    }
                }
            }
        }
        y
    }

    /// The adjoint of `expand`: dy [4m, c, h, w] → dx [m, c, h, w] (scatter form, unlike the kernel's gather).
    pub fn expand_backward(dy: &[f64], m: usize, c: usize, h: usize, w: usize) -> Vec<f64> {
        let mut dx = vec![0.0; m * c * h * w];
        for q in 0..4 {
            let (r0, c0) = quadrant_origin(q, h, w);
            for i in 0..m {
                for ch in 0..c {
                    let g = &dy[((q * m + i) * c + ch) * h * w..][..h * w];
                    let d = &mut dx[(i * c + ch) * h * w..][..h * w];
                    for r in 0..h {
                        for s in 0..w {
                            for (ir, wr) in taps(r, h / 2) {
                                for (is, ws) in taps(s, w / 2) {
                                    d[(r0 + ir) * w + c0 + is] += wr * ws * g[r * w + s];
                                }
                            }
                        }
                    }
                }
            }
        }
        dx
    }
}

/// One mosaic image [c, h, w] from four full-size images [c, h, w] (TL, BL, TR, BR), each downscaled ×0.5 by
/// a 2×2 box average (what bilinear ×0.5 with align_corners=False computes).
pub fn compose(quads: [&[f32]; 4], c: usize, h: usize, w: usize) -> Vec<f32> {
    let mut out = vec![0.0; c * h * w];
    for (q, img) in quads.iter().enumerate() {
        let (r0, c0) = quadrant_origin(q, h, w);
        for ch in 0..c {
            let p = &img[ch * h * w..][..h * w];
            for r in 0..h / 2 {
                for s in 0..w / 2 {
                    let v = 0.25 * (p[2 * r * w + 2 * s] + p[2 * r * w + 2 * s + 1] + p[(2 * r + 1) * w + 2 * s] + p[(2 * r + 1) * w + 2 * s + 1]);
                    out[ch * h * w + (r0 + r) * w + c0 + s] = v;
                }
            }
        }
    }
    out
}

/// As `compose`, downscaling by nearest-neighbour sampling (pixel (2r, 2s), what F.interpolate(mode='nearest')
/// at scale 0.5 takes): IDC's multi-formation initialisation, which DANCE uses.
pub fn compose_nearest(quads: [&[f32]; 4], c: usize, h: usize, w: usize) -> Vec<f32> {
    let mut out = vec![0.0; c * h * w];
    for (q, img) in quads.iter().enumerate() {
        let (r0, c0) = quadrant_origin(q, h, w);
        for ch in 0..c {
            for r in 0..h / 2 {
                for s in 0..w / 2 {
                    out[ch * h * w + (r0 + r) * w + c0 + s] = img[ch * h * w + 2 * r * w + 2 * s];
                }
            }
        }
    }
    out
}

/// A whole synthetic set expanded for evaluation: images [n, c, h, w] → [4n, …] quadrant-major, labels tiled
/// (`label_syn.repeat(4)`). Done once on the CPU; the set is fixed while a network trains on it.
pub fn expand_set(images: &[f32], labels: &[u32], c: usize, h: usize, w: usize) -> (Vec<f32>, Vec<u32>) {
    let n = labels.len();
    let x: Vec<f64> = images.iter().map(|&v| v as f64).collect();
    let y = reference::expand(&x, n, c, h, w);
    (y.into_iter().map(|v| v as f32).collect(), labels.iter().cycle().take(4 * n).copied().collect())
}

/// What an evaluation trains on: the set as stored, or with mosaics (IDM's partition, DANCE's multi-formation) the
/// four upsampled quadrants of every stored image (the CLI's `eval`, the app's quick evaluation and `distill` alike).
pub fn evaluation_set(images: Vec<f32>, labels: Vec<u32>, s: crate::shapes::ImageShape, mosaic: bool) -> (Vec<f32>, Vec<u32>) {
    if mosaic { expand_set(&images, &labels, s.c, s.h, s.w) } else { (images, labels) }
}

pub mod gpu {
    use crate::gpu::Gpu;
    use crate::shaders;
    use crate::shapes::ImageShape;
    use wgpu::{Buffer, CommandEncoder};

    fn consts(m: usize, s: ImageShape) -> [(&'static str, f64); 4] {
        [("M", m as f64), ("C", s.c as f64), ("H", s.h as f64), ("W", s.w as f64)]
    }

    /// y [4m, c, h, w] = expand(x [m, c, h, w]).
    pub fn expand(gpu: &Gpu, enc: &mut CommandEncoder, m: usize, s: ImageShape, x: &Buffer, y: &Buffer) {
        gpu.dispatch(enc, &shaders::MOSAIC, "expand", &consts(m, s), &[x, y], (4 * m * s.len()) as u64);
    }

    /// dx [m, c, h, w] = expandᵀ(dy [4m, c, h, w]).
    pub fn expand_backward(gpu: &Gpu, enc: &mut CommandEncoder, m: usize, s: ImageShape, dy: &Buffer, dx: &Buffer) {
        gpu.dispatch(enc, &shaders::MOSAIC, "expand_backward", &consts(m, s), &[dy, dx], (m * s.len()) as u64);
    }
}
