//! augment: differentiable siamese augmentation (DSA, method.md §2.4) — parameter sampling, the CPU
//! reference of every op (forward and backward to the input), and the GPU dispatches of shaders/augment.wgsl.
//!
//! Every image carries its own op and parameters (`AugParams`), so one dispatch augments a batch in which
//! each class drew a different op. Siamese mode (distillation): one op and one parameter set shared by the
//! real and the synthetic images of a class. Per-sample mode (evaluation training): one op per mini-batch,
//! parameters drawn per image.

use rand::{Rng, RngExt};

/// One DSA op as the DSA code names them in the strategy string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Color,
    Crop,
    Cutout,
    Flip,
    Scale,
    Rotate,
}

impl Op {
    /// "color_crop_…" → the ops; "" or "none" → no augmentation.
    pub fn parse_strategy(s: &str) -> Result<Vec<Op>, String> {
        if s.is_empty() || s == "none" {
            return Ok(vec![]);
        }
        s.split('_')
            .filter(|p| !p.is_empty())
            .map(|p| match p {
                "color" => Ok(Op::Color),
                "crop" => Ok(Op::Crop),
                "cutout" => Ok(Op::Cutout),
                "flip" => Ok(Op::Flip),
                "scale" => Ok(Op::Scale),
                "rotate" => Ok(Op::Rotate),
                other => Err(format!("unknown DSA op '{other}' (known: color, crop, cutout, flip, scale, rotate)")),
            })
            .collect()
    }
}

/// The DM/HDD strategy.
pub const DEFAULT_STRATEGY: &str = "color_crop_cutout_flip_scale_rotate";

/// Per-image parameters, laid out as the kernel reads them: [kind, p0 … p6].
/// kind 0 identity; 1 color (brightness shift, saturation factor, contrast factor);
/// 2 crop (shift rows, shift cols); 3 cutout (row0, row1, col0, col1: the zeroed window);
/// 4 flip (1 = flipped); 5 affine (θ00, θ01, θ10, θ11) with align_corners = false, zero padding.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub struct AugParams(pub [f32; 8]);

impl AugParams {
    pub const IDENTITY: AugParams = AugParams([0.0; 8]);
    pub fn kind(&self) -> u32 {
        self.0[0] as u32
    }
}

/// Draw the parameters of `op` for an h×w image as the DSA code does.
pub fn draw(op: Op, rng: &mut impl Rng, h: usize, w: usize) -> AugParams {
    let mut p = [0f32; 8];
    match op {
        Op::Color => {
            p[0] = 1.0;
            p[1] = rng.random::<f32>() - 0.5; // brightness: x + (r − 0.5)·1.0
            p[2] = rng.random::<f32>() * 2.0; // saturation: (x − m)·(2r) + m
            p[3] = rng.random::<f32>() + 0.5; // contrast: (x − m)·(r + 0.5) + m
        }
        Op::Crop => {
            let (sh, sw) = ((h as f32 * 0.125 + 0.5) as i64, (w as f32 * 0.125 + 0.5) as i64);
            p[0] = 2.0;
            p[1] = rng.random_range(-sh..=sh) as f32; // tx acts on the height axis
            p[2] = rng.random_range(-sw..=sw) as f32;
        }
        Op::Cutout => {
            let (lh, lw) = ((h as f32 * 0.5 + 0.5) as i64, (w as f32 * 0.5 + 0.5) as i64);
            let oy = rng.random_range(0..h as i64 + (1 - lh % 2));
            let ox = rng.random_range(0..w as i64 + (1 - lw % 2));
            p[0] = 3.0;
            p[1] = (oy - lh / 2).max(0) as f32;
            p[2] = (oy + lh / 2 + lh % 2).min(h as i64) as f32;
            p[3] = (ox - lw / 2).max(0) as f32;
            p[4] = (ox + lw / 2 + lw % 2).min(w as i64) as f32;
        }
        Op::Flip => {
            p[0] = 4.0;
            p[1] = if rng.random::<f32>() < 0.5 { 1.0 } else { 0.0 };
        }
        Op::Scale => {
            let r = 1.2f32;
            let sx = rng.random::<f32>() * (r - 1.0 / r) + 1.0 / r;
            let sy = rng.random::<f32>() * (r - 1.0 / r) + 1.0 / r;
            p = [5.0, sx, 0.0, 0.0, sy, 0.0, 0.0, 0.0];
        }
        Op::Rotate => {
            let theta = (rng.random::<f32>() - 0.5) * 2.0 * 15.0 / 180.0 * std::f32::consts::PI;
            p = [5.0, theta.cos(), -theta.sin(), theta.sin(), theta.cos(), 0.0, 0.0, 0.0];
        }
    }
    AugParams(p)
}

/// Siamese draw for one class: one op uniformly from the strategy, one parameter set.
pub fn draw_siamese(ops: &[Op], rng: &mut impl Rng, h: usize, w: usize) -> AugParams {
    draw_siamese_op(ops, rng, h, w).1
}

/// `draw_siamese` with the op it drew (None: an empty strategy, the identity).
pub fn draw_siamese_op(ops: &[Op], rng: &mut impl Rng, h: usize, w: usize) -> (Option<Op>, AugParams) {
    if ops.is_empty() {
        return (None, AugParams::IDENTITY);
    }
    let op = ops[rng.random_range(0..ops.len())];
    (Some(op), draw(op, rng, h, w))
}

impl Op {
    /// The op's name in the strategy string.
    pub fn name(self) -> &'static str {
        match self {
            Op::Color => "color",
            Op::Crop => "crop",
            Op::Cutout => "cutout",
            Op::Flip => "flip",
            Op::Scale => "scale",
            Op::Rotate => "rotate",
        }
    }

    /// The parameters of `p` (drawn by `draw(self, …)` for an h×w image) in the units and under the names the DC
    /// code's DiffAugment draws them (`ParamDiffAug` defaults), for a trace an outside tool replays:
    /// color → (randb, rands, randc), the three uniform draws of brightness, saturation and contrast;
    /// crop → (translation_x, translation_y) (x: the height axis, as in the DC code); cutout → (offset_x, offset_y);
    /// flip → (flipped: 1 or 0; the DC code flips where its draw is under 0.5); scale → (sx, sy); rotate → (θ in
    /// radians).
    pub fn dc_values(self, p: &AugParams, h: usize, w: usize) -> Vec<f64> {
        let v = p.0.map(|x| x as f64);
        match self {
            Op::Color => vec![v[1] + 0.5, v[2] / 2.0, v[3] - 0.5],
            Op::Crop => vec![v[1], v[2]],
            Op::Cutout => {
                // the stored window is the centre ± L/2 clipped to the image; L < side, so one end is never clipped
                let centre = |lo: f64, hi: f64, side: usize| {
                    let l = (side as f64 * 0.5 + 0.5).floor();
                    let half = (l / 2.0).floor();
                    if hi < side as f64 { hi - half - l % 2.0 } else { lo + half }
                };
                vec![centre(v[1], v[2], h), centre(v[3], v[4], w)]
            }
            Op::Flip => vec![v[1]],
            Op::Scale => vec![v[1], v[4]],
            Op::Rotate => vec![v[3].atan2(v[1])],
        }
    }
}

/// Per-sample draw for a mini-batch: one op for the batch, parameters per image.
pub fn draw_per_sample(ops: &[Op], rng: &mut impl Rng, n: usize, h: usize, w: usize) -> Vec<AugParams> {
    draw_per_sample_op(ops, rng, n, h, w).1
}

/// `draw_per_sample` with the batch's op (None: an empty strategy, the identity).
pub fn draw_per_sample_op(ops: &[Op], rng: &mut impl Rng, n: usize, h: usize, w: usize) -> (Option<Op>, Vec<AugParams>) {
    if ops.is_empty() {
        return (None, vec![AugParams::IDENTITY; n]);
    }
    let op = ops[rng.random_range(0..ops.len())];
    (Some(op), (0..n).map(|_| draw(op, rng, h, w)).collect())
}

/// The names a trace's `dsa.op` indexes (its `dsa_ops` metadata): 0 is no augmentation.
pub const TRACE_OP_NAMES: [&str; 7] = ["none", "color", "crop", "cutout", "flip", "scale", "rotate"];

/// A trace's row of DC-unit values for `p` drawn by `op`: `Op::dc_values`, zero-padded to 3.
pub fn trace_values(op: Option<Op>, p: &AugParams, h: usize, w: usize) -> Vec<f64> {
    let mut v = op.map_or(vec![], |o| o.dc_values(p, h, w));
    v.resize(3, 0.0);
    v
}

/// An op's index in `TRACE_OP_NAMES`.
pub fn trace_op_index(op: Option<Op>) -> i64 {
    op.map_or(0, |o| TRACE_OP_NAMES.iter().position(|n| *n == o.name()).unwrap_or(0)) as i64
}

/// CPU reference (f64) of the kernels: images [n, c, h, w], one parameter set per image.
/// One CutMix draw for a batch (the CutMix / IDC code): with probability p, λ ~ Beta(β, β), a box of side
/// ratios √(1 − λ) centred at a uniform pixel and clipped to the image, a random permutation of the batch, and
/// the label ratio 1 − box area / image area.
#[derive(Clone, Debug, PartialEq)]
pub struct CutMix {
    pub rows: (usize, usize),
    pub cols: (usize, usize),
    pub perm: Vec<usize>,
    /// weight of the images' own labels
    pub ratio: f64,
}

impl CutMix {
    pub fn draw(rng: &mut impl Rng, n: usize, h: usize, w: usize, p: f64, beta: f64) -> Option<CutMix> {
        use rand_distr::Distribution;
        if !(beta > 0.0) || rng.random::<f64>() >= p {
            return None;
        }
        let lam: f64 = rand_distr::Beta::new(beta, beta).ok()?.sample(rng);
        let cut = (1.0 - lam).sqrt();
        let (ch, cw) = ((h as f64 * cut) as usize, (w as f64 * cut) as usize);
        let (cy, cx) = (rng.random_range(0..h), rng.random_range(0..w));
        let rows = (cy.saturating_sub(ch / 2), (cy + ch / 2).min(h));
        let cols = (cx.saturating_sub(cw / 2), (cx + cw / 2).min(w));
        let mut perm: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = rng.random_range(0..=i);
            perm.swap(i, j);
        }
        let ratio = 1.0 - ((rows.1 - rows.0) * (cols.1 - cols.0)) as f64 / (h * w) as f64;
        Some(CutMix { rows, cols, perm, ratio })
    }

    /// What the `cutmix` kernel reads: (row0, row1, col0, col1, perm…).
    pub fn words(&self) -> Vec<u32> {
        [self.rows.0, self.rows.1, self.cols.0, self.cols.1].iter().chain(&self.perm).map(|&v| v as u32).collect()
    }

    /// Reference: images x [n, c, h, w] with the box taken from image perm[i].
    pub fn apply(&self, x: &[f64], c: usize, h: usize, w: usize) -> Vec<f64> {
        let img = c * h * w;
        let mut y = x.to_vec();
        for (i, &src) in self.perm.iter().enumerate() {
            for ch in 0..c {
                for r in self.rows.0..self.rows.1 {
                    for q in self.cols.0..self.cols.1 {
                        y[i * img + ch * h * w + r * w + q] = x[src * img + ch * h * w + r * w + q];
                    }
                }
            }
        }
        y
    }
}

pub mod reference {
    use super::AugParams;

    /// Source position (row, col) in pixels sampled by output pixel (i, j) under θ (align_corners = false).
    pub fn affine_source(p: &AugParams, h: usize, w: usize, i: usize, j: usize) -> (f64, f64) {
        let t = p.0.map(|v| v as f64);
        let xn = (2.0 * j as f64 + 1.0) / w as f64 - 1.0;
        let yn = (2.0 * i as f64 + 1.0) / h as f64 - 1.0;
        let xs = t[1] * xn + t[2] * yn;
        let ys = t[3] * xn + t[4] * yn;
        (((ys + 1.0) * h as f64 - 1.0) / 2.0, ((xs + 1.0) * w as f64 - 1.0) / 2.0)
    }

    /// Bilinear taps (row, col, weight) of a source position; taps outside the image are dropped (zero padding).
    pub fn bilinear_taps(py: f64, px: f64, h: usize, w: usize) -> Vec<(usize, usize, f64)> {
        let (y0, x0) = (py.floor(), px.floor());
        let (fy, fx) = (py - y0, px - x0);
        let mut taps = vec![];
        for (dy, wy) in [(0.0, 1.0 - fy), (1.0, fy)] {
            for (dx, wx) in [(0.0, 1.0 - fx), (1.0, fx)] {
                let (y, x) = (y0 + dy, x0 + dx);
                if y >= 0.0 && x >= 0.0 && (y as usize) < h && (x as usize) < w {
                    taps.push((y as usize, x as usize, wy * wx));
                }
            }
        }
        taps
    }

    pub fn forward(x: &[f64], params: &[AugParams], c: usize, h: usize, w: usize) -> Vec<f64> {
        let plane = h * w;
        let img = c * plane;
        let mut y = vec![0.0; x.len()];
        for (n, p) in params.iter().enumerate() {
            let xi = &x[n * img..(n + 1) * img];
            let yi = &mut y[n * img..(n + 1) * img];
            let v = p.0.map(|v| v as f64);
            match p.kind() {
                1 => {
                    let (b, s, ct) = (v[1], v[2], v[3]);
                    let m2 = xi.iter().sum::<f64>() / img as f64 + b;
                    for k in 0..plane {
                        let m1 = (0..c).map(|ch| xi[ch * plane + k]).sum::<f64>() / c as f64 + b;
                        for ch in 0..c {
                            let y1 = xi[ch * plane + k] + b;
                            let y2 = (y1 - m1) * s + m1;
                            yi[ch * plane + k] = (y2 - m2) * ct + m2;
                        }
                    }
                }
                2 => {
                    let (tx, ty) = (v[1] as i64, v[2] as i64);
                    for ch in 0..c {
                        for i in 0..h {
                            for j in 0..w {
                                let (si, sj) = (i as i64 + tx, j as i64 + ty);
                                let inside = si >= 0 && sj >= 0 && (si as usize) < h && (sj as usize) < w;
                                yi[ch * plane + i * w + j] = if inside { xi[ch * plane + si as usize * w + sj as usize] } else { 0.0 };
                            }
                        }
                    }
                }
                3 => {
                    for ch in 0..c {
                        for i in 0..h {
                            for j in 0..w {
                                let cut = (i as f64) >= v[1] && (i as f64) < v[2] && (j as f64) >= v[3] && (j as f64) < v[4];
                                yi[ch * plane + i * w + j] = if cut { 0.0 } else { xi[ch * plane + i * w + j] };
                            }
                        }
                    }
                }
                4 => {
                    for ch in 0..c {
                        for i in 0..h {
                            for j in 0..w {
                                let sj = if v[1] > 0.5 { w - 1 - j } else { j };
                                yi[ch * plane + i * w + j] = xi[ch * plane + i * w + sj];
                            }
                        }
                    }
                }
                5 => {
                    for i in 0..h {
                        for j in 0..w {
                            let (py, px) = affine_source(p, h, w, i, j);
                            for (sy, sx, wt) in bilinear_taps(py, px, h, w) {
                                for ch in 0..c {
                                    yi[ch * plane + i * w + j] += wt * xi[ch * plane + sy * w + sx];
                                }
                            }
                        }
                    }
                }
                _ => yi.copy_from_slice(xi),
            }
        }
        y
    }

    /// ∂L/∂x from ∂L/∂y (every op is affine in x, so this is the transpose of `forward`).
    pub fn backward(dy: &[f64], params: &[AugParams], c: usize, h: usize, w: usize) -> Vec<f64> {
        let plane = h * w;
        let img = c * plane;
        let mut dx = vec![0.0; dy.len()];
        for (n, p) in params.iter().enumerate() {
            let gi = &dy[n * img..(n + 1) * img];
            let di = &mut dx[n * img..(n + 1) * img];
            let v = p.0.map(|v| v as f64);
            match p.kind() {
                1 => {
                    // y = ct·(s·(x + b − m1) + m1 − m2) + m2, m1 = channel mean per pixel, m2 = image mean
                    let (s, ct) = (v[2], v[3]);
                    let total: f64 = gi.iter().sum();
                    for k in 0..plane {
                        let pix: f64 = (0..c).map(|ch| gi[ch * plane + k]).sum();
                        for ch in 0..c {
                            di[ch * plane + k] = s * ct * gi[ch * plane + k] + (1.0 - s) * ct / c as f64 * pix + (1.0 - ct) * total / img as f64;
                        }
                    }
                }
                5 => {
                    for i in 0..h {
                        for j in 0..w {
                            let (py, px) = affine_source(p, h, w, i, j);
                            for (sy, sx, wt) in bilinear_taps(py, px, h, w) {
                                for ch in 0..c {
                                    di[ch * plane + sy * w + sx] += wt * gi[ch * plane + i * w + j];
                                }
                            }
                        }
                    }
                }
                2 => {
                    let (tx, ty) = (v[1] as i64, v[2] as i64);
                    for ch in 0..c {
                        for i in 0..h {
                            for j in 0..w {
                                let (si, sj) = (i as i64 + tx, j as i64 + ty);
                                if si >= 0 && sj >= 0 && (si as usize) < h && (sj as usize) < w {
                                    di[ch * plane + si as usize * w + sj as usize] += gi[ch * plane + i * w + j];
                                }
                            }
                        }
                    }
                }
                // cutout, flip and identity are their own transposes
                _ => di.copy_from_slice(&forward(gi, std::slice::from_ref(p), c, h, w)),
            }
        }
        dx
    }
}

/// GPU dispatches of shaders/augment.wgsl.
pub mod gpu {
    use crate::gpu::Gpu;
    use crate::shaders;
    use crate::shapes::ImageShape;
    use wgpu::{Buffer, CommandEncoder};

    fn consts(n: usize, s: ImageShape) -> [(&'static str, f64); 4] {
        [("N", n as f64), ("C", s.c as f64), ("H", s.h as f64), ("W", s.w as f64)]
    }

    /// y = aug(x): x, y [n, c, h, w]; params [n, 8] (AugParams); scratch [n] (per-image mean).
    #[allow(clippy::too_many_arguments)]
    pub fn forward(gpu: &Gpu, enc: &mut CommandEncoder, n: usize, s: ImageShape, x: &Buffer, params: &Buffer, scratch: &Buffer, y: &Buffer) {
        forward_v(gpu, enc, vec4(gpu, s.w), n, s, x, params, scratch, y)
    }

    /// Whether `forward` and `backward` run the vec4 kernels (`image_sum_v4`, `forward_v4`, `backward_v4`: 4 columns per invocation): on CPU
    /// adapters where rows are a multiple of 4 wide. Lavapipe pays per load/store instruction (benches/NOTES.md,
    /// session 15); GPUs keep the one-output kernels until measured on one.
    pub fn vec4(gpu: &Gpu, w: usize) -> bool {
        gpu.info.device_type == wgpu::DeviceType::Cpu && w % 4 == 0
    }

    /// `forward` with the variant chosen (tests run both).
    #[allow(clippy::too_many_arguments)]
    pub fn forward_v(gpu: &Gpu, enc: &mut CommandEncoder, vec4: bool, n: usize, s: ImageShape, x: &Buffer, params: &Buffer,
        scratch: &Buffer, y: &Buffer) {
        let entry = if vec4 { "forward_v4" } else { "forward" };
        sum_then(gpu, enc, vec4, entry, n, s, x, params, scratch, y)
    }

    /// The per-image sums of `src` into `scratch`, then `entry` (forward or backward, 4 pixels per invocation when
    /// `vec4`) from `src` into `dst`.
    #[allow(clippy::too_many_arguments)]
    fn sum_then(gpu: &Gpu, enc: &mut CommandEncoder, vec4: bool, entry: &'static str, n: usize, s: ImageShape, src: &Buffer,
        params: &Buffer, scratch: &Buffer, dst: &Buffer) {
        assert!(!vec4 || s.w % 4 == 0, "vec4 augmentation needs rows a multiple of 4 wide, not {}", s.w);
        let k = consts(n, s);
        let (sum, per) = if vec4 { ("image_sum_v4", 4) } else { ("image_sum", 1) };
        gpu.dispatch(enc, &shaders::AUGMENT, sum, &k, &[src, scratch], n as u64);
        gpu.dispatch(enc, &shaders::AUGMENT, entry, &k, &[src, params, scratch, dst], (n * s.len() / per) as u64);
    }

    /// Several ops in sequence (DANCE's IDC DiffAug: color, then crop, then cutout), one parameter buffer per op:
    /// x → op 0 → tmps[0] → op 1 → tmps[1] → … → y. `tmps` hold n images each; scratch [n].
    #[allow(clippy::too_many_arguments)]
    pub fn forward_chain(gpu: &Gpu, enc: &mut CommandEncoder, n: usize, s: ImageShape, x: &Buffer, params: &[&Buffer], tmps: [&Buffer; 2], scratch: &Buffer, y: &Buffer) {
        let mut src = x;
        for (i, p) in params.iter().enumerate() {
            let dst = if i + 1 == params.len() { y } else { tmps[i % 2] };
            forward(gpu, enc, n, s, src, p, scratch, dst);
            src = dst;
        }
    }

    /// The adjoint of `forward_chain`: dy → op k−1ᵀ → … → op 0ᵀ → dx (every op is affine in its input, so no
    /// forward activations are needed).
    #[allow(clippy::too_many_arguments)]
    pub fn backward_chain(gpu: &Gpu, enc: &mut CommandEncoder, n: usize, s: ImageShape, dy: &Buffer, params: &[&Buffer], tmps: [&Buffer; 2], scratch: &Buffer, dx: &Buffer) {
        let mut src = dy;
        for i in (0..params.len()).rev() {
            let dst = if i == 0 { dx } else { tmps[i % 2] };
            backward(gpu, enc, n, s, src, params[i], scratch, dst);
            src = dst;
        }
    }

    /// CutMix: y = x with the box of `mix` [4 + n] u32 = (row0, row1, col0, col1, perm…) taken from image perm[i].
    pub fn cutmix(gpu: &Gpu, enc: &mut CommandEncoder, n: usize, s: ImageShape, x: &Buffer, mix: &Buffer, y: &Buffer) {
        gpu.dispatch(enc, &shaders::AUGMENT, "cutmix", &consts(n, s), &[x, mix, y], (n * s.len()) as u64);
    }

    /// dx = augᵀ(dy) with the same parameters; scratch [n] (per-image sum of dy).
    #[allow(clippy::too_many_arguments)]
    pub fn backward(gpu: &Gpu, enc: &mut CommandEncoder, n: usize, s: ImageShape, dy: &Buffer, params: &Buffer, scratch: &Buffer, dx: &Buffer) {
        backward_v(gpu, enc, vec4(gpu, s.w), n, s, dy, params, scratch, dx)
    }

    /// `backward` with the variant chosen (`vec4`: `image_sum_v4`, `backward_v4`; tests run both).
    #[allow(clippy::too_many_arguments)]
    pub fn backward_v(gpu: &Gpu, enc: &mut CommandEncoder, vec4: bool, n: usize, s: ImageShape, dy: &Buffer, params: &Buffer,
        scratch: &Buffer, dx: &Buffer) {
        let entry = if vec4 { "backward_v4" } else { "backward" };
        sum_then(gpu, enc, vec4, entry, n, s, dy, params, scratch, dx)
    }
}
