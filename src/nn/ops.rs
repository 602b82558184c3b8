//! nn::ops: one function per GPU kernel. Each records a dispatch into `enc`; the shapes are baked in as
//! pipeline-override constants, so the compiler sees fixed loop bounds and the pipeline cache keys on them.
//! The CPU twin of each function, with the same name, is in `crate::reference`.

use wgpu::{Buffer, CommandEncoder};

use crate::gpu::Gpu;
use crate::shaders;
use crate::shapes::{ConvShape, KConvShape, LinearShape, MatchShape, NormShape, PoolShape, WindowShape};

fn conv_consts(s: &ConvShape) -> [(&'static str, f64); 6] {
    [
        ("N", s.n as f64),
        ("CIN", s.cin as f64),
        ("COUT", s.cout as f64),
        ("H", s.h as f64),
        ("W", s.w as f64),
        ("PAD", s.pad as f64),
    ]
}

/// One tiling of the implicit-GEMM convolution kernels (`shaders/conv_gemm.wgsl`): a workgroup computes a `bm` × `bn`
/// tile of the output, each of its (bm/tm)·(bn/tn) invocations a `tm` × `tn` block of it. The GPU-class kernels: the
/// autotuner (`nn::tune`) times every tiling that fits and keeps the fastest per shape and pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmTile {
    pub bm: usize,
    pub bn: usize,
    pub tm: usize,
    pub tn: usize,
}

/// The tilings offered (64 to 256 invocations and at most 6 KiB of workgroup memory each, within WebGPU's default
/// limits): the four tile sizes of CUTLASS-style SGEMMs that fit a small-channel convolution, with 4×4, 8×4 and 8×8
/// register blocks.
pub const GEMM_TILES: [GemmTile; 7] = [
    GemmTile { bm: 32, bn: 32, tm: 4, tn: 4 },
    GemmTile { bm: 64, bn: 32, tm: 4, tn: 4 },
    GemmTile { bm: 64, bn: 32, tm: 8, tn: 4 },
    GemmTile { bm: 64, bn: 64, tm: 4, tn: 4 },
    GemmTile { bm: 64, bn: 64, tm: 8, tn: 8 },
    GemmTile { bm: 128, bn: 64, tm: 8, tn: 4 },
    GemmTile { bm: 128, bn: 64, tm: 8, tn: 8 },
];

const GEMM_NAMES: [&str; 7] = ["gemm_32x32_4x4", "gemm_64x32_4x4", "gemm_64x32_8x4", "gemm_64x64_4x4", "gemm_64x64_8x8", "gemm_128x64_8x4", "gemm_128x64_8x8"];

/// Depth of the operand slices `conv_gemm.wgsl` stages per barrier pair (its BK).
pub const GEMM_BK: usize = 8;

impl GemmTile {
    pub fn name(self) -> &'static str {
        GEMM_TILES.iter().position(|&t| t == self).map(|i| GEMM_NAMES[i]).unwrap_or("gemm")
    }

    pub fn threads(self) -> usize {
        (self.bm / self.tm) * (self.bn / self.tn)
    }

    /// How many ways the weight gradient's sum over N·HO·WO positions is split (split-K), so that small weight
    /// tensors still give the device about 256 workgroups; each chunk keeps at least 64 slices of depth BK.
    pub fn weight_splits(self, s: &ConvShape) -> usize {
        self.kweight_splits(&s.k3())
    }

    /// `weight_splits` for any kernel size and stride.
    pub fn kweight_splits(self, s: &KConvShape) -> usize {
        let tiles = s.cout.div_ceil(self.bm) * (s.cin * s.k * s.k).div_ceil(self.bn);
        let k = s.n * s.ho() * s.wo();
        (256 / tiles.max(1)).clamp(1, (k / (64 * GEMM_BK)).max(1))
    }

    /// Pipeline constants and workgroup count for pass `pass` (0 forward, 1 input gradient, 2 weight gradient with
    /// `splits` chunks) of shape `s` (ConvNet-3's as `ConvShape::k3`); `bias`: the forward adds one.
    fn launch(self, s: &KConvShape, bias: bool, pass: u32, splits: usize) -> (Vec<(&'static str, f64)>, u64) {
        let mut c = kconv_consts(s, bias);
        let kk = s.k * s.k;
        let (gm, gn, gk) = match pass {
            0 => (s.cout, s.n * s.ho() * s.wo(), s.cin * kk),
            1 => (s.cin, s.n * s.h * s.w, s.cout * kk),
            _ => (s.cout, s.cin * kk, s.n * s.ho() * s.wo()),
        };
        let kchunk = if pass == 2 { gk.div_ceil(splits).div_ceil(GEMM_BK) * GEMM_BK } else { gk };
        let (tiles_m, tiles_n) = (gm.div_ceil(self.bm), gn.div_ceil(self.bn));
        c.extend([
            ("VEC_A", if gemm_vec_a(s, pass) { 1.0 } else { 0.0 }),
            ("PASS", pass as f64),
            ("GM", gm as f64),
            ("GN", gn as f64),
            ("GK", gk as f64),
            ("BM", self.bm as f64),
            ("BN", self.bn as f64),
            ("TM", self.tm as f64),
            ("TN", self.tn as f64),
            ("THREADS", self.threads() as f64),
            ("TILES_M", tiles_m as f64),
            ("TILES_N", tiles_n as f64),
            ("NSPLIT", splits as f64),
            ("KCHUNK", kchunk as f64),
        ]);
        (c, (tiles_m * tiles_n * splits) as u64)
    }
}

/// Whether the GEMM of pass `pass` stages its A operand as aligned vec4 (conv_gemm.wgsl's VEC_A): w rows (forward) of
/// a multiple of 4, or dy planes (weight gradient) of a multiple of 4; the input gradient's A (w transposed) is not
/// contiguous in runs of 4.
pub fn gemm_vec_a(s: &KConvShape, pass: u32) -> bool {
    match pass {
        0 => (s.cin * s.k * s.k) % 4 == 0,
        2 => (s.ho() * s.wo()) % 4 == 0,
        _ => false,
    }
}

/// Which kernel computes a convolution's forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvForward {
    /// `forward` (4 output channels) or `forward8` (8) per invocation, scalar loads: every device and shape.
    Scalar(usize),
    /// `forward_v4` (4) or `forward8_v4` (8): x read as vec4 and the weights as vec4 from a transposed copy, y written
    /// as vec4, one dispatch per 8-column block. Needs W and WO multiples of 4, COUT % 4 (or 8) == 0 and PAD ≤ 4.
    /// The CPU-adapter kernel.
    Vec4(usize),
    /// `forward_row_v4` (4) or `forward8_row_v4` (8): that many output channels × a whole output row per invocation,
    /// x as vec4, weights as vec4 from the transposed copy, y as vec4, one dispatch. Needs W and WO multiples of 4 and
    /// at most 64, COUT % 4 (or 8) == 0, PAD ≤ 4.
    Row(usize),
    /// `conv_gemm.wgsl`'s `gemm` (PASS 0) with a tiling: implicit GEMM through workgroup memory, the GPU-class kernel
    /// (picked by the autotuner where it measures fastest). Every shape.
    Gemm(GemmTile),
}

impl ConvForward {
    /// The kernel `conv_forward` uses. On CPU adapters the whole-row kernels where rows are at most 64 wide, else
    /// the 8-column vec4 kernels, 8 output channels before 4 where the channel count allows; elsewhere the scalar
    /// `forward`, as before, until a GPU measurement says otherwise. Lavapipe, width 128, batch 16, fastest of 21
    /// runs, GFLOP/s (benches/NOTES.md, sessions 11–13): forward → forward8_v4 → forward8_row_v4 on 16×16 maps
    /// 6.7 → 21.5 → 35.2, 8×8 11.4 → 23.9 → 25.2, the 3-channel first layer 4.8 → 15.3 → 23.6; with one input
    /// channel forward_row_v4 (16.7) beats forward8_row_v4 (15.3) and forward8_v4 (12.5).
    pub fn of(gpu: &Gpu, s: &ConvShape) -> ConvForward {
        if gpu.info.device_type != wgpu::DeviceType::Cpu {
            return ConvForward::Scalar(4);
        }
        // one input channel: 9 multiply-adds per output leave the stores in charge, and 8 channels' accumulators spill
        let rows = if s.cin == 1 { [ConvForward::Row(4), ConvForward::Row(8)] } else { [ConvForward::Row(8), ConvForward::Row(4)] };
        rows.into_iter()
            .chain([ConvForward::Vec4(8), ConvForward::Vec4(4)])
            .find(|k| k.fits(s))
            .unwrap_or(if Self::Scalar(8).fits(s) && s.wo() >= 16 { ConvForward::Scalar(8) } else { ConvForward::Scalar(4) })
    }

    /// Whether this kernel can run shape `s`.
    pub fn fits(self, s: &ConvShape) -> bool {
        match self {
            ConvForward::Scalar(c) => c == 4 || (c == 8 && s.cout % 8 == 0),
            ConvForward::Vec4(c) => (c == 4 || c == 8) && s.cout % c == 0 && s.w % 4 == 0 && s.wo() % 4 == 0 && s.pad <= 4,
            ConvForward::Row(c) => ConvForward::Vec4(c).fits(s) && s.w <= 64 && s.wo() <= 64,
            ConvForward::Gemm(t) => GEMM_TILES.contains(&t),
        }
    }

    /// Every kernel that can run `s` (tests compare each with the reference, the bench times each).
    pub fn available(s: &ConvShape) -> Vec<ConvForward> {
        [ConvForward::Scalar(4), ConvForward::Scalar(8), ConvForward::Vec4(4), ConvForward::Vec4(8), ConvForward::Row(4), ConvForward::Row(8)]
            .into_iter()
            .chain(GEMM_TILES.map(ConvForward::Gemm))
            .filter(|k| k.fits(s))
            .collect()
    }

    /// The variant of a whole-row kernel that also writes row statistics for the norm (`conv_forward_row_stats`);
    /// None for the other kernels.
    pub fn row_stats_name(self) -> Option<&'static str> {
        match self {
            ConvForward::Row(8) => Some("forward8_row_v4_stats"),
            ConvForward::Row(_) => Some("forward_row_v4_stats"),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ConvForward::Scalar(8) => "forward8",
            ConvForward::Scalar(_) => "forward",
            ConvForward::Vec4(8) => "forward8_v4",
            ConvForward::Vec4(_) => "forward_v4",
            ConvForward::Row(8) => "forward8_row_v4",
            ConvForward::Row(_) => "forward_row_v4",
            ConvForward::Gemm(t) => t.name(),
        }
    }
}

/// y = conv(x, w) + b. `wt` is scratch of at least `s.w_len()` floats (the vec4 kernels put the transposed
/// weights there; its contents are overwritten).
#[allow(clippy::too_many_arguments)]
pub fn conv_forward(gpu: &Gpu, enc: &mut CommandEncoder, s: &ConvShape, x: &Buffer, w: &Buffer, b: &Buffer, y: &Buffer, wt: &Buffer) {
    conv_forward_with(gpu, enc, ConvForward::of(gpu, s), s, x, w, b, y, wt)
}

/// `conv_forward` with a chosen kernel.
#[allow(clippy::too_many_arguments)]
pub fn conv_forward_with(gpu: &Gpu, enc: &mut CommandEncoder, k: ConvForward, s: &ConvShape, x: &Buffer, w: &Buffer, b: &Buffer, y: &Buffer,
    wt: &Buffer) {
    assert!(k.fits(s), "conv forward kernel {k:?} cannot run {s:?}");
    let consts = conv_consts(s);
    match k {
        ConvForward::Scalar(c) => {
            let inv = s.n * s.cout.div_ceil(c) * s.ho() * s.wo().div_ceil(8);
            gpu.dispatch(enc, &shaders::CONV_FORWARD, k.name(), &consts, &[x, w, b, y], inv as u64);
        }
        ConvForward::Vec4(c) => {
            assert!(wt.size() as usize >= 4 * s.w_len(), "transposed-weight scratch too small for {s:?}");
            gpu.dispatch(enc, &shaders::CONV_FORWARD, "transpose_weight", &consts, &[w, wt], s.w_len() as u64);
            for xb in 0..s.wo().div_ceil(8) {
                let mut cb = consts.to_vec();
                cb.push(("XB", xb as f64));
                gpu.dispatch(enc, &shaders::CONV_FORWARD, k.name(), &cb, &[x, wt, b, y], (s.n * (s.cout / c) * s.ho()) as u64);
            }
        }
        ConvForward::Row(c) => {
            assert!(wt.size() as usize >= 4 * s.w_len(), "transposed-weight scratch too small for {s:?}");
            gpu.dispatch(enc, &shaders::CONV_FORWARD, "transpose_weight", &consts, &[w, wt], s.w_len() as u64);
            gpu.dispatch(enc, &shaders::CONV_FORWARD, k.name(), &consts, &[x, wt, b, y], (s.n * (s.cout / c) * s.ho()) as u64);
        }
        ConvForward::Gemm(t) => kconv_forward_with(gpu, enc, KConvKernel::Gemm(t), &s.k3(), x, w, Some(b), y),
    }
}

/// Whether a convolution of shape `s` hands its instance norm row statistics on this device
/// (`conv_forward_row_stats`, then `norm_relu_pool_forward_rows`): where `ConvForward::of` picks a whole-row kernel
/// and the block tail runs its vec4 kernels, i.e. CPU adapters. The norm then reads each plane once instead of three
/// times (lavapipe: benches/NOTES.md, session 15).
pub fn row_stats_fit(gpu: &Gpu, s: &ConvShape) -> bool {
    row_stats_fit_with(gpu, ConvForward::of(gpu, s), s)
}

/// `row_stats_fit` where forward kernel `k` runs.
pub fn row_stats_fit_with(gpu: &Gpu, k: ConvForward, s: &ConvShape) -> bool {
    k.row_stats_name().is_some() && tail_vec4(NormKernel::of(gpu), s.ho(), s.wo())
}

/// Floats of the row statistics of `s`'s output: [n, cout/4, ho, 2, 4] = (row means, Σ (y − mean)²) per 4 channels.
pub fn row_stats_len(s: &ConvShape) -> usize {
    s.n * s.cout * s.ho() * 2
}

/// `conv_forward_with` for a whole-row kernel (`ConvForward::Row`) that also writes each output row's statistics
/// into `rowstats` (`row_stats_len(s)` floats) for `norm_relu_pool_forward_rows`.
#[allow(clippy::too_many_arguments)]
pub fn conv_forward_row_stats(gpu: &Gpu, enc: &mut CommandEncoder, k: ConvForward, s: &ConvShape, x: &Buffer, w: &Buffer, b: &Buffer,
    y: &Buffer, wt: &Buffer, rowstats: &Buffer) {
    let (ConvForward::Row(c), Some(entry)) = (k, k.row_stats_name()) else { panic!("row statistics come from the whole-row kernels, not {k:?}") };
    assert!(k.fits(s), "conv forward kernel {k:?} cannot run {s:?}");
    assert!(wt.size() as usize >= 4 * s.w_len(), "transposed-weight scratch too small for {s:?}");
    assert!(rowstats.size() as usize >= 4 * row_stats_len(s), "row-statistics buffer too small for {s:?}");
    let consts = conv_consts(s);
    gpu.dispatch(enc, &shaders::CONV_FORWARD, "transpose_weight", &consts, &[w, wt], s.w_len() as u64);
    gpu.dispatch(enc, &shaders::CONV_FORWARD, entry, &consts, &[x, wt, b, y, rowstats], (s.n * (s.cout / c) * s.ho()) as u64);
}

/// Which kernel computes a convolution's input gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvBackwardInput {
    /// `backward_input` (4 input channels) or `backward_input8` (8) per invocation, scalar loads: every shape.
    Scalar(usize),
    /// `backward_input_v4` (4) or `backward_input8_v4` (8): dy read as vec4, the weights as vec4 from a copy transposed
    /// to [COUT,3,3,CIN], dx written as vec4, one dispatch per 8-column block. Needs W and WO multiples of 4,
    /// CIN % 4 (or 8) == 0, PAD ≤ 4.
    Vec4(usize),
    /// `backward_input_c1v4`: one input channel per invocation, dy and dx as vec4, weights as stored; for the first
    /// layer's 1–3 input channels. Needs W and WO multiples of 4, PAD ≤ 4.
    Channel1Vec4,
    /// `backward_input_r1v4`: one input channel × a whole row of dx per invocation, dy and dx as vec4, one dispatch.
    /// Needs W and WO multiples of 4 and at most 64, PAD ≤ 4.
    Row1Vec4,
    /// `backward_input_r2v4`: as `Row1Vec4` for two dx rows per invocation (each dy row read once for both). Also
    /// needs H even.
    Row2Vec4,
    /// `backward_input8_row_v4`: 8 input channels × a whole row of dx per invocation, dy as vec4, weights as vec4
    /// from the copy transposed to [COUT,3,3,CIN], one dispatch. Needs Vec4(8)'s conditions and W, WO at most 64.
    Row8,
    /// `conv_gemm.wgsl`'s `gemm` (PASS 1) with a tiling: the GPU-class kernel. Every shape.
    Gemm(GemmTile),
}

impl ConvBackwardInput {
    /// The kernel `conv_backward_input` uses: on CPU adapters a one-channel vec4 kernel where CIN < 4 (the first layer:
    /// a whole row, or two, per thread where rows are at most 64 wide, 1.7–2.4× the 8-column one on lavapipe,
    /// benches/NOTES.md session 12), else the vec4 kernels where the shape allows them, 8 channels first, then the scalar 8-channel one
    /// (benches/NOTES.md, sessions 4 and 11); elsewhere the scalar 4-channel one.
    pub fn of(gpu: &Gpu, s: &ConvShape) -> ConvBackwardInput {
        if gpu.info.device_type != wgpu::DeviceType::Cpu {
            return ConvBackwardInput::Scalar(4);
        }
        if s.cin < 4 {
            // two rows per thread where H is even (lavapipe, width 32, batch 100, three runs of 21, fastest run:
            // 1×28×28 13.5–14.7 → 16.9–18.6 GFLOP/s, 3×32×32 15.7 → 11.9 ms in session 12; the one-channel loss
            // measured then was a run that lost one of the two worker threads; benches/NOTES.md, session 13)
            if let Some(k) = [ConvBackwardInput::Row2Vec4, ConvBackwardInput::Row1Vec4, ConvBackwardInput::Channel1Vec4].into_iter().find(|k| k.fits(s)) {
                return k;
            }
        }
        // a whole row of 8 channels where rows are at most 64 wide (lavapipe, width 128, batch 16, against
        // backward_input8_v4: 16×16 21.7 → 36.2 GFLOP/s, 8×8 23.0–24.2 → 23.3–25.4; benches/NOTES.md, session 13)
        [ConvBackwardInput::Row8, ConvBackwardInput::Vec4(8), ConvBackwardInput::Vec4(4), ConvBackwardInput::Scalar(8)]
            .into_iter()
            .find(|k| k.fits(s))
            .unwrap_or(ConvBackwardInput::Scalar(4))
    }

    /// Whether this kernel can run shape `s`.
    pub fn fits(self, s: &ConvShape) -> bool {
        match self {
            ConvBackwardInput::Scalar(c) => c == 4 || (c == 8 && s.cin % 8 == 0),
            ConvBackwardInput::Vec4(c) => (c == 4 || c == 8) && s.cin % c == 0 && s.wo() % 4 == 0 && s.w % 4 == 0 && s.pad <= 4,
            ConvBackwardInput::Channel1Vec4 => s.wo() % 4 == 0 && s.w % 4 == 0 && s.pad <= 4,
            ConvBackwardInput::Row1Vec4 => s.wo() % 4 == 0 && s.w % 4 == 0 && s.pad <= 4 && s.wo() <= 64 && s.w <= 64,
            ConvBackwardInput::Row2Vec4 => ConvBackwardInput::Row1Vec4.fits(s) && s.h % 2 == 0,
            ConvBackwardInput::Row8 => ConvBackwardInput::Vec4(8).fits(s) && s.w <= 64 && s.wo() <= 64,
            ConvBackwardInput::Gemm(t) => GEMM_TILES.contains(&t),
        }
    }

    /// Every kernel that can run `s`.
    pub fn available(s: &ConvShape) -> Vec<ConvBackwardInput> {
        [
            ConvBackwardInput::Scalar(4),
            ConvBackwardInput::Scalar(8),
            ConvBackwardInput::Vec4(4),
            ConvBackwardInput::Vec4(8),
            ConvBackwardInput::Channel1Vec4,
            ConvBackwardInput::Row1Vec4,
            ConvBackwardInput::Row2Vec4,
            ConvBackwardInput::Row8,
        ]
        .into_iter()
        .chain(GEMM_TILES.map(ConvBackwardInput::Gemm))
        .filter(|k| k.fits(s))
            .collect()
    }

    pub fn name(self) -> &'static str {
        match self {
            ConvBackwardInput::Scalar(8) => "backward_input8",
            ConvBackwardInput::Scalar(_) => "backward_input",
            ConvBackwardInput::Vec4(8) => "backward_input8_v4",
            ConvBackwardInput::Vec4(_) => "backward_input_v4",
            ConvBackwardInput::Channel1Vec4 => "backward_input_c1v4",
            ConvBackwardInput::Row1Vec4 => "backward_input_r1v4",
            ConvBackwardInput::Row2Vec4 => "backward_input_r2v4",
            ConvBackwardInput::Row8 => "backward_input8_row_v4",
            ConvBackwardInput::Gemm(t) => t.name(),
        }
    }
}

/// dx = ∂L/∂x from dy. `wt` is scratch of at least `s.w_len()` floats (overwritten by the vec4 kernels).
#[allow(clippy::too_many_arguments)]
pub fn conv_backward_input(gpu: &Gpu, enc: &mut CommandEncoder, s: &ConvShape, dy: &Buffer, w: &Buffer, dx: &Buffer, wt: &Buffer) {
    conv_backward_input_with(gpu, enc, ConvBackwardInput::of(gpu, s), s, dy, w, dx, wt)
}

/// `conv_backward_input` with a chosen kernel.
#[allow(clippy::too_many_arguments)]
pub fn conv_backward_input_with(gpu: &Gpu, enc: &mut CommandEncoder, k: ConvBackwardInput, s: &ConvShape, dy: &Buffer, w: &Buffer, dx: &Buffer,
    wt: &Buffer) {
    assert!(k.fits(s), "conv backward_input kernel {k:?} cannot run {s:?}");
    let consts = conv_consts(s);
    match k {
        ConvBackwardInput::Scalar(c) => {
            let inv = s.n * s.cin.div_ceil(c) * s.h * s.w.div_ceil(8);
            gpu.dispatch(enc, &shaders::CONV_INPUT, k.name(), &consts, &[dy, w, dx], inv as u64);
        }
        ConvBackwardInput::Vec4(c) => {
            assert!(wt.size() as usize >= 4 * s.w_len(), "transposed-weight scratch too small for {s:?}");
            gpu.dispatch(enc, &shaders::CONV_INPUT, "transpose_weight_in", &consts, &[w, wt], s.w_len() as u64);
            for xb in 0..s.w.div_ceil(8) {
                let mut cb = consts.to_vec();
                cb.push(("XB", xb as f64));
                gpu.dispatch(enc, &shaders::CONV_INPUT, k.name(), &cb, &[dy, wt, dx], (s.n * (s.cin / c) * s.h) as u64);
            }
        }
        ConvBackwardInput::Row8 => {
            assert!(wt.size() as usize >= 4 * s.w_len(), "transposed-weight scratch too small for {s:?}");
            gpu.dispatch(enc, &shaders::CONV_INPUT, "transpose_weight_in", &consts, &[w, wt], s.w_len() as u64);
            gpu.dispatch(enc, &shaders::CONV_INPUT, k.name(), &consts, &[dy, wt, dx], (s.n * (s.cin / 8) * s.h) as u64);
        }
        ConvBackwardInput::Row1Vec4 | ConvBackwardInput::Row2Vec4 => {
            let rows = if k == ConvBackwardInput::Row2Vec4 { s.h / 2 } else { s.h };
            gpu.dispatch(enc, &shaders::CONV_INPUT, k.name(), &consts, &[dy, w, dx], (s.n * s.cin * rows) as u64);
        }
        ConvBackwardInput::Gemm(t) => kconv_backward_input_with(gpu, enc, KConvKernel::Gemm(t), &s.k3(), dy, w, dx),
        ConvBackwardInput::Channel1Vec4 => {
            for xb in 0..s.w.div_ceil(8) {
                let mut cb = consts.to_vec();
                cb.push(("XB", xb as f64));
                gpu.dispatch(enc, &shaders::CONV_INPUT, k.name(), &cb, &[dy, w, dx], (s.n * s.cin * s.h) as u64);
            }
        }
    }
}

/// Which kernel computes a convolution's weight gradient (then `reduce_weight` sums its partial sums).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvBackwardWeight {
    /// `backward_weight`: 4 output channels × 9 taps of one input channel per invocation, scalar loads, the sum over
    /// images split `conv_weight_splits` ways: every device and shape.
    Scalar,
    /// `backward_weight4_v4`: 4 output channels × 9 taps of one input channel for one output row per invocation, dy
    /// and x read as vec4 and multiplied as vec4 of four column phases (summed at the end), column blocks unrolled
    /// with constant offsets; one partial sum per output row. Needs W and WO multiples of 4, WO ≤ 64, COUT % 4 == 0,
    /// PAD ≤ 4.
    RowsVec4,
    /// `backward_weight8_row_v4`: 8 output channels × 9 taps of one input channel for one output row per invocation,
    /// over whole rows: the three x rows held once per image for all 8 channels, dy walked chunk by chunk. Needs
    /// RowsVec4's conditions, W ≤ 64 and COUT % 8 == 0.
    Row8,
    /// `conv_gemm.wgsl`'s `gemm` (PASS 2) with a tiling, the sum over positions split `GemmTile::weight_splits` ways
    /// (one split writes dw directly): the GPU-class kernel. Every shape.
    Gemm(GemmTile),
}

impl ConvBackwardWeight {
    /// The kernel `conv_backward_weight` uses. On CPU adapters: `backward_weight8_row_v4` where it fits and maps are
    /// more than 8 wide (lavapipe, width 128, batch 16, fastest of 21 runs, against `backward_weight4_v4`: first layers
    /// 84–85 → 108 % and 74–76 → 109 % of the matmul peak, 16×16 maps 89 → 112–113 %; benches/NOTES.md, session 14),
    /// else `backward_weight4_v4` (8×8 maps: 108–109 % against 106–108 %, and a 0–6 % lower median; against
    /// `backward_weight` 8.7 → 20.8 GFLOP/s, session 12). Elsewhere the scalar one (GPUs: until measured on one).
    pub fn of(gpu: &Gpu, s: &ConvShape) -> ConvBackwardWeight {
        if gpu.info.device_type != wgpu::DeviceType::Cpu {
            return ConvBackwardWeight::Scalar;
        }
        if s.wo() > 8 && ConvBackwardWeight::Row8.fits(s) {
            ConvBackwardWeight::Row8
        } else if ConvBackwardWeight::RowsVec4.fits(s) {
            ConvBackwardWeight::RowsVec4
        } else if cfg!(target_arch = "wasm32") {
            // a browser's CPU WebGPU (SwiftShader) never finishes the scalar kernel (`tune::ConvPass::barred`)
            ConvBackwardWeight::Gemm(GEMM_TILES[0])
        } else {
            ConvBackwardWeight::Scalar
        }
    }

    /// Whether this kernel can run shape `s`.
    pub fn fits(self, s: &ConvShape) -> bool {
        match self {
            ConvBackwardWeight::Scalar => true,
            ConvBackwardWeight::RowsVec4 => s.cout % 4 == 0 && s.w % 4 == 0 && s.wo() % 4 == 0 && s.wo() <= 64 && s.pad <= 4,
            ConvBackwardWeight::Row8 => s.cout % 8 == 0 && ConvBackwardWeight::RowsVec4.fits(s) && s.w <= 64,
            ConvBackwardWeight::Gemm(t) => GEMM_TILES.contains(&t),
        }
    }

    /// Every kernel that can run `s`.
    pub fn available(s: &ConvShape) -> Vec<ConvBackwardWeight> {
        [ConvBackwardWeight::Scalar, ConvBackwardWeight::RowsVec4, ConvBackwardWeight::Row8]
            .into_iter()
            .chain(GEMM_TILES.map(ConvBackwardWeight::Gemm))
            .filter(|k| k.fits(s))
            .collect()
    }

    pub fn name(self) -> &'static str {
        match self {
            ConvBackwardWeight::Scalar => "backward_weight",
            ConvBackwardWeight::RowsVec4 => "backward_weight4_v4",
            ConvBackwardWeight::Row8 => "backward_weight8_row_v4",
            ConvBackwardWeight::Gemm(t) => t.name(),
        }
    }

    /// How many partial sums of the weight gradient this kernel writes before `reduce_weight` adds them up.
    pub fn partials(self, s: &ConvShape) -> usize {
        match self {
            ConvBackwardWeight::Scalar => conv_weight_splits(s),
            ConvBackwardWeight::RowsVec4 | ConvBackwardWeight::Row8 => s.ho(),
            ConvBackwardWeight::Gemm(t) => t.weight_splits(s),
        }
    }

    /// Scratch floats this kernel needs.
    pub fn scratch_len(self, s: &ConvShape) -> usize {
        self.partials(s) * s.w_len()
    }
}

/// How many ways `backward_weight` splits the sum over images: enough threads to fill the device
/// (about 2048), never more than the batch.
pub fn conv_weight_splits(s: &ConvShape) -> usize {
    let threads = s.cout.div_ceil(4) * s.cin;
    (2048 / threads.max(1)).clamp(1, s.n.max(1))
}

/// Scratch floats `conv_backward_weight` needs on `gpu`.
pub fn conv_weight_scratch_len(gpu: &Gpu, s: &ConvShape) -> usize {
    ConvBackwardWeight::of(gpu, s).scratch_len(s)
}

/// Scratch floats enough for every weight-gradient kernel that fits `s` (tests and the bench run them all).
pub fn conv_weight_scratch_len_any(s: &ConvShape) -> usize {
    ConvBackwardWeight::available(s).into_iter().map(|k| k.scratch_len(s)).max().unwrap_or(0)
}

/// dw = ∂L/∂w (overwritten, not accumulated); `scratch` holds at least `conv_weight_scratch_len(gpu, s)` floats.
pub fn conv_backward_weight(gpu: &Gpu, enc: &mut CommandEncoder, s: &ConvShape, x: &Buffer, dy: &Buffer, dw: &Buffer, scratch: &Buffer) {
    conv_backward_weight_with(gpu, enc, ConvBackwardWeight::of(gpu, s), s, x, dy, dw, scratch)
}

/// `conv_backward_weight` with a chosen kernel; `scratch` holds at least `k.scratch_len(s)` floats.
#[allow(clippy::too_many_arguments)]
pub fn conv_backward_weight_with(gpu: &Gpu, enc: &mut CommandEncoder, k: ConvBackwardWeight, s: &ConvShape, x: &Buffer, dy: &Buffer, dw: &Buffer,
    scratch: &Buffer) {
    assert!(k.fits(s), "conv backward_weight kernel {k:?} cannot run {s:?}");
    assert!(scratch.size() as usize >= 4 * k.scratch_len(s), "weight-gradient scratch too small for {k:?} on {s:?}");
    if let ConvBackwardWeight::Gemm(t) = k {
        return kconv_backward_weight_with(gpu, enc, KConvKernel::Gemm(t), &s.k3(), x, dy, dw, scratch);
    }
    let mut consts = conv_consts(s).to_vec();
    consts.push(("NSPLIT", k.partials(s) as f64));
    let inv = match k {
        ConvBackwardWeight::Scalar => k.partials(s) * s.cout.div_ceil(4) * s.cin,
        ConvBackwardWeight::RowsVec4 => s.ho() * s.cin * (s.cout / 4),
        ConvBackwardWeight::Row8 => s.ho() * s.cin * (s.cout / 8),
        ConvBackwardWeight::Gemm(_) => unreachable!("dispatched above"),
    };
    gpu.dispatch(enc, &shaders::CONV_WEIGHT, k.name(), &consts, &[x, dy, scratch], inv as u64);
    gpu.dispatch(enc, &shaders::CONV_WEIGHT, "reduce_weight", &consts, &[scratch, dw], s.w_len() as u64);
}

/// db = ∂L/∂b
pub fn conv_backward_bias(gpu: &Gpu, enc: &mut CommandEncoder, s: &ConvShape, dy: &Buffer, db: &Buffer) {
    gpu.dispatch(enc, &shaders::CONV_WEIGHT, "backward_bias", &conv_consts(s), &[dy, db], 64 * s.cout as u64);
}

fn norm_consts(s: &NormShape) -> [(&'static str, f64); 3] {
    [("N", s.n as f64), ("C", s.c as f64), ("HW", s.hw as f64)]
}

/// Which instance-norm kernels run: one thread per plane (norm.wgsl, every device) or one subgroup of the given
/// size per plane (norm_sg.wgsl: coalesced reads, subgroupAdd sums). `of(gpu)` is the device's choice; the
/// `*_with` functions take one explicitly (tests run every variant the device has, the bench times them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormKernel {
    PerThread,
    Subgroup(u32),
}

impl NormKernel {
    /// Subgroups on GPUs, where one thread per plane reads uncoalesced and leaves most of the device idle
    /// (a batch of 100 at width 32 is 3,200 planes). Not on CPU adapters: on lavapipe (subgroup size 8) the
    /// subgroup kernels measured level with the per-thread ones at batch 100 and slower on 16×16 and 8×8 planes
    /// (`bench --profile`, benches/NOTES.md), so the per-thread kernels stay there.
    pub fn of(gpu: &Gpu) -> NormKernel {
        match gpu.subgroup_size {
            Some(sg) if gpu.info.device_type != wgpu::DeviceType::Cpu => NormKernel::Subgroup(sg),
            _ => NormKernel::PerThread,
        }
    }

    /// Every variant `gpu` can run.
    pub fn available(gpu: &Gpu) -> Vec<NormKernel> {
        let mut v = vec![NormKernel::PerThread];
        if let Some(sg) = gpu.subgroup_size {
            v.push(NormKernel::Subgroup(sg));
        }
        v
    }

    fn dispatch(self, gpu: &Gpu, enc: &mut CommandEncoder, entry: &'static str, consts: &[(&'static str, f64)], buffers: &[&Buffer], planes: usize) {
        match self {
            NormKernel::PerThread => gpu.dispatch(enc, &shaders::NORM, entry, consts, buffers, planes as u64),
            NormKernel::Subgroup(sg) => {
                let mut c = consts.to_vec();
                c.push(("SG", sg as f64));
                // one workgroup (of SG invocations) per plane: `dispatch` counts workgroups of 64 invocations
                gpu.dispatch(enc, &shaders::NORM_SG, entry, &c, buffers, planes as u64 * crate::gpu::WORKGROUP as u64);
            }
        }
    }
}

/// y = instance_norm(x)·γ + β; stats [n·c·2] receives (mean, 1/std) per plane for the backward pass.
#[allow(clippy::too_many_arguments)]
pub fn norm_forward(gpu: &Gpu, enc: &mut CommandEncoder, s: &NormShape, x: &Buffer, gamma: &Buffer, beta: &Buffer, y: &Buffer, stats: &Buffer) {
    norm_forward_with(gpu, enc, NormKernel::of(gpu), s, x, gamma, beta, y, stats)
}

#[allow(clippy::too_many_arguments)]
pub fn norm_forward_with(gpu: &Gpu, enc: &mut CommandEncoder, k: NormKernel, s: &NormShape, x: &Buffer, gamma: &Buffer, beta: &Buffer, y: &Buffer,
    stats: &Buffer) {
    k.dispatch(gpu, enc, "forward", &norm_consts(s), &[x, gamma, beta, y, stats], s.planes());
}

/// pool(relu(instance_norm(x)·γ + β)) over planes of h × w (h·w = s.hw), for forwards no backward follows;
/// y is [n, c, h/2, w/2]; stats as `norm_forward`.
#[allow(clippy::too_many_arguments)]
pub fn norm_relu_pool_forward(gpu: &Gpu, enc: &mut CommandEncoder, s: &NormShape, h: usize, w: usize, x: &Buffer, gamma: &Buffer, beta: &Buffer,
    y: &Buffer, stats: &Buffer) {
    norm_relu_pool_forward_with(gpu, enc, NormKernel::of(gpu), s, h, w, x, gamma, beta, y, stats)
}

#[allow(clippy::too_many_arguments)]
pub fn norm_relu_pool_forward_with(gpu: &Gpu, enc: &mut CommandEncoder, k: NormKernel, s: &NormShape, h: usize, w: usize, x: &Buffer,
    gamma: &Buffer, beta: &Buffer, y: &Buffer, stats: &Buffer) {
    norm_relu_pool_forward_v(gpu, enc, k, tail_vec4(k, h, w), s, h, w, x, gamma, beta, y, stats)
}

/// Whether the fused block tail (`norm_relu_pool_forward`, `norm_relu_pool_backward`) runs its vec4 kernels:
/// with the per-thread norm kernel where rows are a multiple of 4 wide and planes have an even height (lavapipe,
/// benches/NOTES.md, session 14). Forward and backward decide alike, so both recompute the ReLU mask the same way.
pub fn tail_vec4(k: NormKernel, h: usize, w: usize) -> bool {
    k == NormKernel::PerThread && w % 4 == 0 && h % 2 == 0
}

/// The pipeline constants of the block-tail kernels: the norm's, plus the plane's sides.
fn tail_consts(s: &NormShape, h: usize, w: usize) -> [(&'static str, f64); 5] {
    let [n, c, hw] = norm_consts(s);
    [n, c, hw, ("H", h as f64), ("W", w as f64)]
}

/// `norm_relu_pool_forward_with` with the kernel variant chosen (`vec4`: `forward_relu_pool_v4`; tests run both).
#[allow(clippy::too_many_arguments)]
pub fn norm_relu_pool_forward_v(gpu: &Gpu, enc: &mut CommandEncoder, k: NormKernel, vec4: bool, s: &NormShape, h: usize, w: usize,
    x: &Buffer, gamma: &Buffer, beta: &Buffer, y: &Buffer, stats: &Buffer) {
    assert_eq!(h * w, s.hw, "plane {h}×{w} does not match the norm shape {s:?}");
    assert!(!vec4 || tail_vec4(k, h, w), "no vec4 block tail for {k:?} on {h}×{w}");
    let entry = if vec4 { "forward_relu_pool_v4" } else { "forward_relu_pool" };
    k.dispatch(gpu, enc, entry, &tail_consts(s, h, w), &[x, gamma, beta, y, stats], s.planes());
}

/// `norm_relu_pool_forward` (per-thread, vec4) with each plane's statistics merged from the row statistics that
/// `conv_forward_row_stats` wrote for x (`forward_relu_pool_rows_v4`); stats receives (mean, 1/std) as before.
#[allow(clippy::too_many_arguments)]
pub fn norm_relu_pool_forward_rows(gpu: &Gpu, enc: &mut CommandEncoder, s: &NormShape, h: usize, w: usize, x: &Buffer, gamma: &Buffer,
    beta: &Buffer, y: &Buffer, stats: &Buffer, rowstats: &Buffer) {
    assert_eq!(h * w, s.hw, "plane {h}×{w} does not match the norm shape {s:?}");
    assert!(tail_vec4(NormKernel::PerThread, h, w) && s.c % 4 == 0, "no row-statistics block tail for {} channels of {h}×{w}", s.c);
    NormKernel::PerThread.dispatch(gpu, enc, "forward_relu_pool_rows_v4", &tail_consts(s, h, w), &[x, gamma, beta, y, stats, rowstats], s.planes());
}

/// dx from dy; `partial` [n·c·2] receives each plane's (Σdy·x̂, Σdy) for `norm_param_grad`.
#[allow(clippy::too_many_arguments)]
pub fn norm_backward(gpu: &Gpu, enc: &mut CommandEncoder, s: &NormShape, x: &Buffer, gamma: &Buffer, stats: &Buffer, dy: &Buffer, dx: &Buffer,
    partial: &Buffer) {
    norm_backward_with(gpu, enc, NormKernel::of(gpu), s, x, gamma, stats, dy, dx, partial)
}

#[allow(clippy::too_many_arguments)]
pub fn norm_backward_with(gpu: &Gpu, enc: &mut CommandEncoder, k: NormKernel, s: &NormShape, x: &Buffer, gamma: &Buffer, stats: &Buffer,
    dy: &Buffer, dx: &Buffer, partial: &Buffer) {
    k.dispatch(gpu, enc, "backward", &norm_consts(s), &[x, gamma, stats, dy, dx, partial], s.planes());
}

/// ∂L/∂x of pool(relu(instance_norm(x)·γ + β)) from dy = ∂L/∂(pooled) [n, c, h/2, w/2], after a forward by
/// `norm_relu_pool_forward` (the ReLU mask is recomputed from x, stats, γ and β); `partial` as `norm_backward`.
/// The per-thread norm kernel only (`NormKernel::PerThread`); h and w even (every ConvNet block).
#[allow(clippy::too_many_arguments)]
pub fn norm_relu_pool_backward(gpu: &Gpu, enc: &mut CommandEncoder, s: &NormShape, h: usize, w: usize, x: &Buffer, gamma: &Buffer, beta: &Buffer,
    stats: &Buffer, dy: &Buffer, dx: &Buffer, partial: &Buffer) {
    let vec4 = tail_vec4(NormKernel::PerThread, h, w);
    norm_relu_pool_backward_v(gpu, enc, vec4, s, h, w, x, gamma, beta, stats, dy, dx, partial)
}

/// `norm_relu_pool_backward` with the kernel variant chosen (`vec4`: `backward_relu_pool_v4`, after a forward by
/// `forward_relu_pool_v4`; tests run both).
#[allow(clippy::too_many_arguments)]
pub fn norm_relu_pool_backward_v(gpu: &Gpu, enc: &mut CommandEncoder, vec4: bool, s: &NormShape, h: usize, w: usize, x: &Buffer, gamma: &Buffer,
    beta: &Buffer, stats: &Buffer, dy: &Buffer, dx: &Buffer, partial: &Buffer) {
    assert_eq!(h * w, s.hw, "plane {h}×{w} does not match the norm shape {s:?}");
    assert!(h % 2 == 0 && w % 2 == 0, "the fused backward pools even planes only, not {h}×{w}");
    assert!(!vec4 || w % 4 == 0, "no vec4 block-tail backward on {h}×{w}");
    let entry = if vec4 { "backward_relu_pool_v4" } else { "backward_relu_pool" };
    NormKernel::PerThread.dispatch(gpu, enc, entry, &tail_consts(s, h, w), &[x, gamma, stats, dy, dx, partial, beta], s.planes());
}

/// dγ, dβ from the per-plane partial sums of `norm_backward`.
pub fn norm_param_grad(gpu: &Gpu, enc: &mut CommandEncoder, s: &NormShape, partial: &Buffer, dgamma: &Buffer, dbeta: &Buffer) {
    gpu.dispatch(enc, &shaders::NORM, "param_grad", &norm_consts(s), &[partial, dgamma, dbeta], s.c as u64);
}

pub fn relu_forward(gpu: &Gpu, enc: &mut CommandEncoder, len: usize, x: &Buffer, y: &Buffer) {
    gpu.dispatch(enc, &shaders::ACTIVATION, "relu_forward", &[("TOTAL", len as f64)], &[x, y], len as u64);
}

/// dx = dy·[x > 0], x being the forward input.
pub fn relu_backward(gpu: &Gpu, enc: &mut CommandEncoder, len: usize, x: &Buffer, dy: &Buffer, dx: &Buffer) {
    gpu.dispatch(enc, &shaders::ACTIVATION, "relu_backward", &[("TOTAL", len as f64)], &[x, dy, dx], len as u64);
}

fn pool_consts(s: &PoolShape) -> [(&'static str, f64); 3] {
    [("P", s.planes as f64), ("H", s.h as f64), ("W", s.w as f64)]
}

pub fn pool_forward(gpu: &Gpu, enc: &mut CommandEncoder, s: &PoolShape, x: &Buffer, y: &Buffer) {
    gpu.dispatch(enc, &shaders::ACTIVATION, "pool_forward", &pool_consts(s), &[x, y], s.y_len() as u64);
}

pub fn pool_backward(gpu: &Gpu, enc: &mut CommandEncoder, s: &PoolShape, dy: &Buffer, dx: &Buffer) {
    gpu.dispatch(enc, &shaders::ACTIVATION, "pool_backward", &pool_consts(s), &[dy, dx], s.x_len() as u64);
}

fn linear_consts(s: &LinearShape) -> [(&'static str, f64); 3] {
    [("N", s.n as f64), ("IN", s.inp as f64), ("OUT", s.out as f64)]
}

pub fn linear_forward(gpu: &Gpu, enc: &mut CommandEncoder, s: &LinearShape, x: &Buffer, w: &Buffer, b: &Buffer, y: &Buffer) {
    gpu.dispatch(enc, &shaders::LINEAR, "forward", &linear_consts(s), &[x, w, b, y], (s.n * s.out) as u64);
}

/// dx = dy·W (`accumulate`: dx += dy·W, keeping a gradient already in dx).
#[allow(clippy::too_many_arguments)]
pub fn linear_backward_input(gpu: &Gpu, enc: &mut CommandEncoder, s: &LinearShape, dy: &Buffer, w: &Buffer, dx: &Buffer, accumulate: bool) {
    let [a, b, c] = linear_consts(s);
    let consts = [a, b, c, ("ACC", if accumulate { 1.0 } else { 0.0 })];
    gpu.dispatch(enc, &shaders::LINEAR, "backward_input", &consts, &[dy, w, dx], (s.n * s.inp) as u64);
}

#[allow(clippy::too_many_arguments)]
pub fn linear_backward_params(gpu: &Gpu, enc: &mut CommandEncoder, s: &LinearShape, x: &Buffer, dy: &Buffer, dw: &Buffer, db: &Buffer) {
    gpu.dispatch(enc, &shaders::LINEAR, "backward_params", &linear_consts(s), &[x, dy, dw, db], (s.out * s.inp) as u64);
}

/// Per-sample cross-entropy into `loss` [n] and scale·(softmax − onehot) into `dlogits` [n,k]; labels are u32.
#[allow(clippy::too_many_arguments)]
pub fn softmax_xent(
    gpu: &Gpu,
    enc: &mut CommandEncoder,
    n: usize,
    k: usize,
    scale: f32,
    logits: &Buffer,
    labels: &Buffer,
    loss: &Buffer,
    dlogits: &Buffer,
) {
    let consts = [("N", n as f64), ("K", k as f64), ("SCALE", scale as f64)];
    gpu.dispatch(enc, &shaders::LOSS, "softmax_xent", &consts, &[logits, labels, loss, dlogits], n as u64);
}

/// As `softmax_xent`, with `scale` multiplied by the running training accuracy in percent held in `meter`
/// [2] = (correct, seen) on the GPU (0 when nothing was seen yet): IDM's accuracy-weighted CE, no read-back.
#[allow(clippy::too_many_arguments)]
pub fn softmax_xent_weighted(
    gpu: &Gpu,
    enc: &mut CommandEncoder,
    n: usize,
    k: usize,
    scale: f32,
    logits: &Buffer,
    labels: &Buffer,
    meter: &Buffer,
    loss: &Buffer,
    dlogits: &Buffer,
) {
    let consts = [("N", n as f64), ("K", k as f64), ("SCALE", scale as f64)];
    gpu.dispatch(enc, &shaders::LOSS, "softmax_xent_weighted", &consts, &[logits, labels, loss, dlogits, meter], n as u64);
}

/// CutMix's loss: ratio·CE(labels) + (1 − ratio)·CE(labels_b) per sample, and its gradient × scale; `mix` [1]
/// holds the ratio (a buffer: it changes every batch, an override constant would compile a pipeline per value).
#[allow(clippy::too_many_arguments)]
pub fn softmax_xent_mix(
    gpu: &Gpu,
    enc: &mut CommandEncoder,
    n: usize,
    k: usize,
    scale: f32,
    logits: &Buffer,
    labels: &Buffer,
    labels_b: &Buffer,
    mix: &Buffer,
    loss: &Buffer,
    dlogits: &Buffer,
) {
    let consts = [("N", n as f64), ("K", k as f64), ("SCALE", scale as f64)];
    gpu.dispatch(enc, &shaders::LOSS, "softmax_xent_mix", &consts, &[logits, labels, loss, dlogits, mix, labels_b], n as u64);
}

/// meter [2] += (Σ hits[0..n], n): accumulate `correct`'s output into a running accuracy on the GPU.
pub fn tally(gpu: &Gpu, enc: &mut CommandEncoder, n: usize, hits: &Buffer, meter: &Buffer) {
    gpu.dispatch(enc, &shaders::OPTIM, "tally", &[("N", n as f64)], &[hits, meter], 1);
}

/// torch.optim.SGD's settings (dampening 0, no Nesterov).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
}

/// torch.optim.SGD step on `n` values: buf = momentum·buf + (grad + wd·param); param −= lr·buf.
pub fn sgd(gpu: &Gpu, enc: &mut CommandEncoder, n: usize, opt: Sgd, grad: &Buffer, param: &Buffer, buf: &Buffer) {
    let consts = [("N", n as f64), ("LR", opt.lr as f64), ("MOMENTUM", opt.momentum as f64), ("WD", opt.weight_decay as f64)];
    gpu.dispatch(enc, &shaders::OPTIM, "sgd", &consts, &[grad, param, buf], n as u64);
}

/// SGD as `sgd` with a learning rate per channel (images [.., channels, plane]): DANCE's pixel-space lr carried
/// into the normalised space, lr_c = lr / std_c².
#[allow(clippy::too_many_arguments)]
pub fn sgd_channels(gpu: &Gpu, enc: &mut CommandEncoder, n: usize, plane: usize, lrs: &[f32], momentum: f32, grad: &Buffer, param: &Buffer, buf: &Buffer) {
    assert!((1..=3).contains(&lrs.len()), "1 to 3 channels");
    let lr = |c: usize| lrs[c.min(lrs.len() - 1)] as f64;
    let consts = [("N", n as f64), ("PLANE", plane as f64), ("CH", lrs.len() as f64), ("LR0", lr(0)), ("LR1", lr(1)), ("LR2", lr(2)), ("MOMENTUM", momentum as f64)];
    gpu.dispatch(enc, &shaders::OPTIM, "sgd_channels", &consts, &[grad, param, buf], n as u64);
}

/// Divergence detection: where any of the first `n` values of `x` is NaN or infinite, `health[0]` (u32) becomes the
/// smaller of itself and `health[1]` (the iteration being run). `health` starts as (u32::MAX, ·).
pub fn check_finite(gpu: &Gpu, enc: &mut CommandEncoder, n: usize, x: &Buffer, health: &Buffer) {
    gpu.dispatch(enc, &shaders::HEALTH, "check_finite", &[("N", n as f64)], &[x, health], n as u64);
}

/// Clamp images [.., channels, plane] to [lo_c, hi_c] per channel (DANCE keeps pixels in [0, 1]: in the normalised
/// space that is [−mean_c/std_c, (1 − mean_c)/std_c]).
pub fn clamp_channels(gpu: &Gpu, enc: &mut CommandEncoder, n: usize, plane: usize, lo: &[f32], hi: &[f32], x: &Buffer) {
    assert!((1..=3).contains(&lo.len()) && lo.len() == hi.len(), "1 to 3 channels");
    let at = |v: &[f32], c: usize| v[c.min(v.len() - 1)] as f64;
    let consts = [("N", n as f64), ("PLANE", plane as f64), ("CH", lo.len() as f64), ("LO0", at(lo, 0)), ("LO1", at(lo, 1)), ("LO2", at(lo, 2)),
        ("HI0", at(hi, 0)), ("HI1", at(hi, 1)), ("HI2", at(hi, 2))];
    gpu.dispatch(enc, &shaders::OPTIM, "clamp_channels", &consts, &[x], n as u64);
}

/// out[i] = 1 where argmax(logits[i]) == labels[i] (u32), else 0.
pub fn correct(gpu: &Gpu, enc: &mut CommandEncoder, n: usize, k: usize, logits: &Buffer, labels: &Buffer, out: &Buffer) {
    gpu.dispatch(enc, &shaders::OPTIM, "correct", &[("N", n as f64), ("K", k as f64)], &[logits, labels, out], n as u64);
}

/// DM's matching term: per class scale·Σ_d (mean_r − mean_s)² into `loss` [classes] (via `sq` [classes·dim])
/// and its gradient with respect to the synthetic features into `grad` [classes·per_syn, dim]; scale 1 is DM's
/// sum, 1/dim DANCE's mean squared error.
#[allow(clippy::too_many_arguments)]
pub fn dm_matching(gpu: &Gpu, enc: &mut CommandEncoder, s: &MatchShape, scale: f32, real: &Buffer, syn: &Buffer, sq: &Buffer, loss: &Buffer, grad: &Buffer) {
    let c = [("C", s.classes as f64), ("D", s.dim as f64), ("B", s.per_real as f64), ("M", s.per_syn as f64), ("SCALE", scale as f64)];
    gpu.dispatch(enc, &shaders::MATCHING, "dm", &c, &[real, syn, sq, grad], (s.classes * s.dim) as u64);
    gpu.dispatch(enc, &shaders::MATCHING, "class_total", &c, &[sq, loss], s.classes as u64);
}

/// The dense matmul kernels of `shaders/matmul.wgsl` (the bench's throughput yardstick, not part of the network).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulKernel {
    /// 4×4 outputs per thread, vec4 loads, no workgroup memory (CPU adapters)
    Regblock4,
    /// 8×4 outputs per thread, otherwise as Regblock4
    Regblock8,
    /// 8×4 outputs per thread, rows from the workgroup (uniform A loads), columns from the lane
    Uniform8,
    /// 8×8 outputs per thread (two vec4 columns), otherwise as Regblock8: fewer loads per multiply-add
    Regblock88,
    /// 64×64 tile per workgroup staged through workgroup memory, 8×8 outputs per thread (real GPUs)
    Tiled,
}

impl MatmulKernel {
    pub const ALL: [MatmulKernel; 5] = [
        MatmulKernel::Regblock4,
        MatmulKernel::Regblock8,
        MatmulKernel::Uniform8,
        MatmulKernel::Regblock88,
        MatmulKernel::Tiled,
    ];
    pub fn name(self) -> &'static str {
        match self {
            MatmulKernel::Regblock4 => "regblock4",
            MatmulKernel::Regblock8 => "regblock8",
            MatmulKernel::Uniform8 => "uniform8",
            MatmulKernel::Regblock88 => "regblock88",
            MatmulKernel::Tiled => "tiled",
        }
    }
}

/// Whether the matmul kernels accept (m, n, k): k % 16, n % 64 and m % 64 all zero.
pub fn matmul_shape_ok(m: usize, n: usize, k: usize) -> bool {
    m > 0 && n > 0 && k > 0 && k % 16 == 0 && n % 64 == 0 && m % 64 == 0
}

/// c[m,n] = a[m,k]·b[k,n], row-major. Panics unless `matmul_shape_ok(m, n, k)` (callers pick the shape).
#[allow(clippy::too_many_arguments)]
pub fn matmul(gpu: &Gpu, enc: &mut CommandEncoder, kernel: MatmulKernel, m: usize, n: usize, k: usize, a: &Buffer, b: &Buffer, c: &Buffer) {
    assert!(matmul_shape_ok(m, n, k), "matmul shape {m}×{n}×{k} not supported");
    let consts = [("M", m as f64), ("N", n as f64), ("K", k as f64)];
    let invocations = match kernel {
        MatmulKernel::Regblock4 => (m / 4) * (n / 4),
        MatmulKernel::Regblock8 => (m / 8) * (n / 4),
        MatmulKernel::Uniform8 => (m / 8) * (n / 4).div_ceil(64) * 64,
        MatmulKernel::Regblock88 => (m / 8) * (n / 8),
        MatmulKernel::Tiled => (m / 64) * (n / 64) * 64,
    };
    gpu.dispatch(enc, &shaders::MATMUL, kernel.name(), &consts, &[a, b, c], invocations as u64);
}

// ---------------------------------------------------------------------------------------------
// The evaluation pool's layers (shaders/layers.wgsl): any square kernel, stride and padding; K×K pools; add.

fn kconv_consts(s: &KConvShape, bias: bool) -> Vec<(&'static str, f64)> {
    vec![
        ("N", s.n as f64),
        ("CIN", s.cin as f64),
        ("COUT", s.cout as f64),
        ("H", s.h as f64),
        ("W", s.w as f64),
        ("K", s.k as f64),
        ("STRIDE", s.stride as f64),
        ("PAD", s.pad as f64),
        ("HAS_BIAS", if bias { 1.0 } else { 0.0 }),
    ]
}

/// y = conv(x, w) (+ b when given; without a bias any buffer is bound and never read).
#[allow(clippy::too_many_arguments)]
pub fn kconv_forward(gpu: &Gpu, enc: &mut CommandEncoder, s: &KConvShape, x: &Buffer, w: &Buffer, b: Option<&Buffer>, y: &Buffer) {
    let consts = kconv_consts(s, b.is_some());
    gpu.dispatch(enc, &shaders::LAYERS, "conv_forward", &consts, &[x, w, b.unwrap_or(w), y], s.y_len() as u64);
}

pub fn kconv_backward_input(gpu: &Gpu, enc: &mut CommandEncoder, s: &KConvShape, dy: &Buffer, w: &Buffer, dx: &Buffer) {
    gpu.dispatch(enc, &shaders::LAYERS, "conv_backward_input", &kconv_consts(s, false), &[dy, w, dx], s.x_len() as u64);
}

/// Ways `kconv_backward_weight` splits the sum over images: about 8192 threads, never more than the batch.
pub fn kconv_weight_splits(s: &KConvShape) -> usize {
    (8192 / s.w_len().max(1)).clamp(1, s.n.max(1))
}

pub fn kconv_weight_scratch_len(s: &KConvShape) -> usize {
    kconv_weight_splits(s) * s.w_len()
}

/// dw (overwritten); `scratch` holds at least `kconv_weight_scratch_len(s)` floats.
pub fn kconv_backward_weight(gpu: &Gpu, enc: &mut CommandEncoder, s: &KConvShape, x: &Buffer, dy: &Buffer, dw: &Buffer, scratch: &Buffer) {
    let splits = kconv_weight_splits(s);
    let mut consts = kconv_consts(s, false);
    consts.push(("NSPLIT", splits as f64));
    gpu.dispatch(enc, &shaders::LAYERS, "conv_backward_weight", &consts, &[x, dy, scratch], (splits * s.w_len()) as u64);
    gpu.dispatch(enc, &shaders::LAYERS, "conv_reduce_weight", &consts, &[scratch, dw], s.w_len() as u64);
}

pub fn kconv_backward_bias(gpu: &Gpu, enc: &mut CommandEncoder, s: &KConvShape, dy: &Buffer, db: &Buffer) {
    gpu.dispatch(enc, &shaders::LAYERS, "conv_backward_bias", &kconv_consts(s, false), &[dy, db], s.cout as u64);
}

/// Which kernel runs one pass of an evaluation-pool convolution (any K, stride, padding): layers.wgsl's direct kernels
/// (one output per invocation, the hand-made choice everywhere: they are the fast form on lavapipe) or an implicit-GEMM
/// tiling of `conv_gemm.wgsl` (the GPU-class kernels, picked where the autotuner measures them faster).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KConvKernel {
    Direct,
    Gemm(GemmTile),
}

impl KConvKernel {
    /// Every kernel that can run a pass of any shape: the direct one and each tiling.
    pub fn available() -> Vec<KConvKernel> {
        std::iter::once(KConvKernel::Direct).chain(GEMM_TILES.map(KConvKernel::Gemm)).collect()
    }

    pub fn name(self) -> &'static str {
        match self {
            KConvKernel::Direct => "direct",
            KConvKernel::Gemm(t) => t.name(),
        }
    }

    /// How many partial sums of the weight gradient this kernel writes before `conv_reduce_weight` adds them up
    /// (1: a GEMM writes dw directly).
    pub fn weight_partials(self, s: &KConvShape) -> usize {
        match self {
            KConvKernel::Direct => kconv_weight_splits(s),
            KConvKernel::Gemm(t) => t.kweight_splits(s),
        }
    }
}

/// Scratch floats enough for every weight-gradient kernel of `s`.
pub fn kconv_weight_scratch_len_any(s: &KConvShape) -> usize {
    KConvKernel::available().into_iter().map(|k| k.weight_partials(s) * s.w_len()).max().unwrap_or(0)
}

/// `kconv_forward` with a chosen kernel.
#[allow(clippy::too_many_arguments)]
pub fn kconv_forward_with(gpu: &Gpu, enc: &mut CommandEncoder, k: KConvKernel, s: &KConvShape, x: &Buffer, w: &Buffer, b: Option<&Buffer>,
    y: &Buffer) {
    match k {
        KConvKernel::Direct => kconv_forward(gpu, enc, s, x, w, b, y),
        KConvKernel::Gemm(t) => {
            let (c, groups) = t.launch(s, b.is_some(), 0, 1);
            gpu.dispatch_workgroups(enc, &shaders::CONV_GEMM, "gemm", &c, &[w, x, b.unwrap_or(w), y, gpu.vec4_binding(w)], groups);
        }
    }
}

/// `kconv_backward_input` with a chosen kernel.
pub fn kconv_backward_input_with(gpu: &Gpu, enc: &mut CommandEncoder, k: KConvKernel, s: &KConvShape, dy: &Buffer, w: &Buffer, dx: &Buffer) {
    match k {
        KConvKernel::Direct => kconv_backward_input(gpu, enc, s, dy, w, dx),
        KConvKernel::Gemm(t) => {
            let (c, groups) = t.launch(s, false, 1, 1);
            gpu.dispatch_workgroups(enc, &shaders::CONV_GEMM, "gemm", &c, &[w, dy, w, dx, gpu.vec4_binding(w)], groups);
        }
    }
}

/// `kconv_backward_weight` with a chosen kernel; `scratch` holds at least `k.weight_partials(s) · s.w_len()` floats.
/// (ConvNet-3's GEMM weight gradient runs here too: `conv_reduce_weight` adds the splits in the order `reduce_weight`
/// does.)
#[allow(clippy::too_many_arguments)]
pub fn kconv_backward_weight_with(gpu: &Gpu, enc: &mut CommandEncoder, k: KConvKernel, s: &KConvShape, x: &Buffer, dy: &Buffer, dw: &Buffer,
    scratch: &Buffer) {
    let KConvKernel::Gemm(t) = k else { return kconv_backward_weight(gpu, enc, s, x, dy, dw, scratch) };
    let splits = t.kweight_splits(s);
    assert!(splits == 1 || scratch.size() as usize >= 4 * splits * s.w_len(), "weight-gradient scratch too small for {k:?} on {s:?}");
    let (c, groups) = t.launch(s, false, 2, splits);
    // one split is the whole sum: written straight into dw
    let out = if splits == 1 { dw } else { scratch };
    gpu.dispatch_workgroups(enc, &shaders::CONV_GEMM, "gemm", &c, &[dy, x, dy, out, gpu.vec4_binding(dy)], groups);
    if splits > 1 {
        let mut consts = kconv_consts(s, false);
        consts.push(("NSPLIT", splits as f64));
        gpu.dispatch(enc, &shaders::LAYERS, "conv_reduce_weight", &consts, &[scratch, dw], s.w_len() as u64);
    }
}

fn window_consts(s: &WindowShape) -> [(&'static str, f64); 4] {
    [("P", s.planes as f64), ("H", s.h as f64), ("W", s.w as f64), ("K", s.k as f64)]
}

pub fn maxpool_forward(gpu: &Gpu, enc: &mut CommandEncoder, s: &WindowShape, x: &Buffer, y: &Buffer) {
    gpu.dispatch(enc, &shaders::LAYERS, "maxpool_forward", &window_consts(s), &[x, y], s.y_len() as u64);
}

/// dx from dy; x is the forward input (the maxima are found again, not stored).
pub fn maxpool_backward(gpu: &Gpu, enc: &mut CommandEncoder, s: &WindowShape, x: &Buffer, dy: &Buffer, dx: &Buffer) {
    gpu.dispatch(enc, &shaders::LAYERS, "maxpool_backward", &window_consts(s), &[x, dy, dx], s.x_len() as u64);
}

pub fn avgpool_forward(gpu: &Gpu, enc: &mut CommandEncoder, s: &WindowShape, x: &Buffer, y: &Buffer) {
    gpu.dispatch(enc, &shaders::LAYERS, "avgpool_forward", &window_consts(s), &[x, y], s.y_len() as u64);
}

pub fn avgpool_backward(gpu: &Gpu, enc: &mut CommandEncoder, s: &WindowShape, dy: &Buffer, dx: &Buffer) {
    gpu.dispatch(enc, &shaders::LAYERS, "avgpool_backward", &window_consts(s), &[dy, dx], s.x_len() as u64);
}

/// y = a + b over `len` floats.
pub fn add(gpu: &Gpu, enc: &mut CommandEncoder, len: usize, a: &Buffer, b: &Buffer, y: &Buffer) {
    gpu.dispatch(enc, &shaders::LAYERS, "add", &[("TOTAL", len as f64)], &[a, b, y], len as u64);
}

/// y += x over `len` floats.
pub fn accumulate(gpu: &Gpu, enc: &mut CommandEncoder, len: usize, x: &Buffer, y: &Buffer) {
    gpu.dispatch(enc, &shaders::LAYERS, "accumulate", &[("TOTAL", len as f64)], &[x, y], len as u64);
}
