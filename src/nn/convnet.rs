//! nn::convnet: ConvNet-3 as DM/IDM/HDD use it (method.md §2.2), on the GPU and on the CPU reference.
//!
//! block b (b = 0, 1, 2): conv3×3 (pad 3 on block 0 for 28×28 inputs, else 1) → instance norm → ReLU → avgpool 2×2
//! embed  = block-2 output flattened: width·4·4 (2048 at width 128) for 28/32 px, width·8·8 for 64 px
//! logits = Linear(embed_dim → classes)
//!
//! Parameters are kept in one canonical order, used by init, upload, gradients and tests:
//! [conv0.w, conv0.b, norm0.γ, norm0.β, conv1.w, …, norm2.β, fc.w, fc.b].

use rand::{Rng, RngExt};
use wgpu::{Buffer, CommandEncoder};

use crate::gpu::{Gpu, GpuError};
use crate::nn::{ops, tune};
use crate::reference as r;
use crate::shapes::{ConvShape, ImageShape, LinearShape, NormShape, PoolShape};

pub const DEPTH: usize = 3;
/// Tensors per block in the canonical order (conv w, conv b, norm γ, norm β).
const PER_BLOCK: usize = 4;
pub const NUM_TENSORS: usize = DEPTH * PER_BLOCK + 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvNetConfig {
    /// Input channels (1 for grayscale, 3 for RGB).
    pub channels: usize,
    /// Input side in pixels (square images: 28, 32, 64, …).
    pub image: usize,
    /// Channels of every conv layer (128 in the papers).
    pub width: usize,
    pub classes: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("image side {0} is not supported: ConvNet-3 needs 28 (padded to 32) or a multiple of 8")]
    ImageSide(usize),
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    #[error("images of {h}×{w} pixels are not supported: the networks take square images (height = width)")]
    NotSquare { h: usize, w: usize },
}

impl ConvNetConfig {
    /// ConvNet-3 for images of `shape` (square) into `classes` classes, `width` channels per conv layer.
    pub fn new(shape: ImageShape, width: usize, classes: usize) -> Result<Self, ConfigError> {
        let (channels, image) = (shape.c, shape.h);
        for (v, name) in [(channels, "channels"), (width, "width"), (classes, "classes")] {
            if v == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        if shape.h != shape.w {
            return Err(ConfigError::NotSquare { h: shape.h, w: shape.w });
        }
        let cfg = ConvNetConfig { channels, image, width, classes };
        let side = image + 2 * cfg.first_pad() - 2;
        if image < 2 || side % 8 != 0 {
            return Err(ConfigError::ImageSide(image));
        }
        Ok(cfg)
    }

    /// `new` for square images of `side` pixels with `channels` channels.
    pub fn square(channels: usize, side: usize, width: usize, classes: usize) -> Result<Self, ConfigError> {
        Self::new(ImageShape::new(channels, side, side), width, classes)
    }

    /// The DC/DM code pads the first conv by 3 for 28×28 inputs so that the feature sizes match 32×32.
    pub fn first_pad(&self) -> usize {
        if self.image == 28 { 3 } else { 1 }
    }

    /// The three conv shapes for a batch of `n`.
    pub fn conv_shapes(&self, n: usize) -> [ConvShape; DEPTH] {
        let mut side = self.image;
        let mut cin = self.channels;
        std::array::from_fn(|b| {
            let pad = if b == 0 { self.first_pad() } else { 1 };
            let s = ConvShape { n, cin, cout: self.width, h: side, w: side, pad };
            side = s.ho() / 2;
            cin = self.width;
            s
        })
    }

    /// Side of the block-3 feature map (4 for 28/32 px, 8 for 64 px).
    pub fn feature_side(&self) -> usize {
        self.conv_shapes(1)[DEPTH - 1].ho() / 2
    }

    pub fn embed_dim(&self) -> usize {
        self.width * self.feature_side() * self.feature_side()
    }

    pub fn input_len(&self, n: usize) -> usize {
        n * self.channels * self.image * self.image
    }

    pub fn linear_shape(&self, n: usize) -> LinearShape {
        LinearShape { n, inp: self.embed_dim(), out: self.classes }
    }

    /// Sizes of the canonical parameter tensors.
    pub fn tensor_lens(&self) -> [usize; NUM_TENSORS] {
        let convs = self.conv_shapes(1);
        std::array::from_fn(|i| {
            if i < DEPTH * PER_BLOCK {
                let s = convs[i / PER_BLOCK];
                if i % PER_BLOCK == 0 { s.w_len() } else { s.cout }
            } else if i == DEPTH * PER_BLOCK {
                self.embed_dim() * self.classes
            } else {
                self.classes
            }
        })
    }

    /// Multiply-accumulates of one `embed` forward over a batch of `n` (convolutions only; norm, ReLU
    /// and pooling add under 1 %).
    pub fn embed_macs(&self, n: usize) -> u64 {
        self.conv_shapes(n).iter().map(|s| s.macs()).sum()
    }

    /// MACs of the backward pass to the input (every conv's input gradient, the first one included).
    pub fn input_grad_macs(&self, n: usize) -> u64 {
        self.embed_macs(n)
    }
}

/// Host copy of the parameters, f32, canonical order.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvNetParams {
    pub cfg: ConvNetConfig,
    pub tensors: Vec<Vec<f32>>,
}

impl ConvNetParams {
    /// PyTorch's default initialisation: conv and linear weights and biases ~ U(−1/√fan_in, +1/√fan_in)
    /// (kaiming_uniform with a = √5 reduces to this), norm γ = 1 and β = 0.
    pub fn init(cfg: &ConvNetConfig, rng: &mut impl Rng) -> Self {
        let convs = cfg.conv_shapes(1);
        let lens = cfg.tensor_lens();
        let mut tensors = Vec::with_capacity(NUM_TENSORS);
        for (i, &len) in lens.iter().enumerate() {
            let t = if i < DEPTH * PER_BLOCK {
                let fan_in = (convs[i / PER_BLOCK].cin * 9) as f32;
                match i % PER_BLOCK {
                    0 | 1 => uniform(rng, len, 1.0 / fan_in.sqrt()),
                    2 => vec![1.0; len],
                    _ => vec![0.0; len],
                }
            } else {
                uniform(rng, len, 1.0 / (cfg.embed_dim() as f32).sqrt())
            };
            tensors.push(t);
        }
        ConvNetParams { cfg: *cfg, tensors }
    }

    pub fn num_params(&self) -> usize {
        self.tensors.iter().map(Vec::len).sum()
    }

    pub fn to_f64(&self) -> Vec<Vec<f64>> {
        self.tensors.iter().map(|t| t.iter().map(|&v| v as f64).collect()).collect()
    }
}

fn uniform(rng: &mut impl Rng, len: usize, bound: f32) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-bound..bound)).collect()
}

// ---------------------------------------------------------------------------------------------
// CPU reference network (f64), built from `reference` ops exactly as the GPU network is built from kernels.

/// Everything the reference backward pass needs from the forward pass.
pub struct RefActivations {
    pub n: usize,
    /// Input of each block: the image batch, then the previous block's pooled output.
    pub block_in: Vec<Vec<f64>>,
    pub conv_out: Vec<Vec<f64>>,
    pub stats: Vec<Vec<f64>>,
    pub norm_out: Vec<Vec<f64>>,
    /// Block-3 output flattened [n, embed_dim].
    pub embed: Vec<f64>,
    pub logits: Vec<f64>,
}

pub fn ref_forward(cfg: &ConvNetConfig, p: &[Vec<f64>], x: &[f64], n: usize) -> RefActivations {
    let mut act = RefActivations {
        n,
        block_in: vec![x.to_vec()],
        conv_out: vec![],
        stats: vec![],
        norm_out: vec![],
        embed: vec![],
        logits: vec![],
    };
    for (b, s) in cfg.conv_shapes(n).iter().enumerate() {
        let q = &p[b * PER_BLOCK..];
        let c = r::conv_forward(s, &act.block_in[b], &q[0], &q[1]);
        let ns = NormShape { n, c: s.cout, hw: s.ho() * s.wo() };
        let (y, st) = r::norm_forward(&ns, &c, &q[2], &q[3]);
        let relu = r::relu_forward(&y);
        let pooled = r::pool_forward(&PoolShape { planes: n * s.cout, h: s.ho(), w: s.wo() }, &relu);
        act.conv_out.push(c);
        act.stats.push(st);
        act.norm_out.push(y);
        act.block_in.push(pooled);
    }
    act.embed = act.block_in.pop().unwrap();
    act.logits = r::linear_forward(&cfg.linear_shape(n), &act.embed, &p[DEPTH * PER_BLOCK], &p[DEPTH * PER_BLOCK + 1]);
    act
}

/// Reference backward. `d_embed` and `d_logits` are the upstream gradients (either may be absent;
/// both are summed when given). Returns (∂L/∂x, ∂L/∂params in canonical order).
pub fn ref_backward(
    cfg: &ConvNetConfig,
    p: &[Vec<f64>],
    act: &RefActivations,
    d_embed: Option<&[f64]>,
    d_logits: Option<&[f64]>,
) -> (Vec<f64>, Vec<Vec<f64>>) {
    let n = act.n;
    let mut grads: Vec<Vec<f64>> = cfg.tensor_lens().iter().map(|&l| vec![0.0; l]).collect();
    let mut g = d_embed.map_or_else(|| vec![0.0; n * cfg.embed_dim()], <[f64]>::to_vec);
    if let Some(dl) = d_logits {
        let ls = cfg.linear_shape(n);
        let (dw, db) = r::linear_backward_params(&ls, &act.embed, dl);
        grads[DEPTH * PER_BLOCK] = dw;
        grads[DEPTH * PER_BLOCK + 1] = db;
        for (gi, d) in g.iter_mut().zip(r::linear_backward_input(&ls, dl, &p[DEPTH * PER_BLOCK])) {
            *gi += d;
        }
    }
    let shapes = cfg.conv_shapes(n);
    for b in (0..DEPTH).rev() {
        let s = &shapes[b];
        let q = &p[b * PER_BLOCK..];
        let d_relu = r::pool_backward(&PoolShape { planes: n * s.cout, h: s.ho(), w: s.wo() }, &g);
        let d_norm = r::relu_backward(&act.norm_out[b], &d_relu);
        let ns = NormShape { n, c: s.cout, hw: s.ho() * s.wo() };
        let (d_conv, dgamma, dbeta) = r::norm_backward(&ns, &act.conv_out[b], &q[2], &act.stats[b], &d_norm);
        grads[b * PER_BLOCK] = r::conv_backward_weight(s, &act.block_in[b], &d_conv);
        grads[b * PER_BLOCK + 1] = r::conv_backward_bias(s, &d_conv);
        grads[b * PER_BLOCK + 2] = dgamma;
        grads[b * PER_BLOCK + 3] = dbeta;
        g = r::conv_backward_input(s, &d_conv, &q[0]);
    }
    (g, grads)
}

// ---------------------------------------------------------------------------------------------
// GPU network

/// ConvNet-3 parameters resident on the GPU (canonical order).
pub struct GpuConvNet {
    pub cfg: ConvNetConfig,
    pub params: Vec<Buffer>,
}

/// Gradients of the parameters on the GPU, same order and sizes as `GpuConvNet::params`.
pub struct GpuGrads {
    pub tensors: Vec<Buffer>,
}

/// Where the backward pass starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upstream {
    /// ∂L/∂embed has been written into `Workspace::d_embed` (distribution matching).
    Embed,
    /// ∂L/∂logits has been written into `Workspace::d_logits` (classification training).
    Logits,
    /// Both, summed: ∂L/∂embed in `d_embed` and ∂L/∂logits in `d_logits` (IDM's matching term + CE regulariser).
    EmbedAndLogits,
}

/// How a training forward and its backward run each block's tail (instance norm, ReLU, 2×2 average pooling).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockTail {
    /// One kernel each way (`norm_relu_pool_forward`, `norm_relu_pool_backward`); the backward recomputes the ReLU
    /// mask from the norm's input and statistics, so neither the norm output nor the ReLU output is kept. The
    /// per-thread norm kernel only: where `NormKernel::of` picks it (CPU adapters, devices without subgroups).
    /// Lavapipe, width 32, IPC 10: these six kernels were 49 % of an evaluation epoch (benches/NOTES.md, session 14).
    Fused,
    /// Norm, ReLU and pooling as three kernels each way, the norm output kept for the ReLU's backward (the subgroup
    /// norm kernels).
    Separate,
}

impl BlockTail {
    pub fn of(gpu: &Gpu) -> BlockTail {
        if ops::NormKernel::of(gpu) == ops::NormKernel::PerThread { BlockTail::Fused } else { BlockTail::Separate }
    }
}

/// Activations and gradient scratch for one batch size, allocated once and reused every step.
pub struct Workspace {
    pub n: usize,
    /// how `GpuConvNet::forward` and `backward` run each block's tail on this workspace
    pub tail: BlockTail,
    /// Input images [n, channels, image, image]; write them with `Gpu::write`.
    pub x: Buffer,
    conv_out: Vec<Buffer>,
    stats: Vec<Buffer>,
    norm_out: Vec<Buffer>,
    relu_tmp: Buffer,
    /// Pooled output of blocks 0 and 1 (the inputs of blocks 1 and 2).
    pooled: Vec<Buffer>,
    /// Block-3 output flattened [n, embed_dim].
    pub embed: Buffer,
    pub logits: Buffer,
    pub d_embed: Buffer,
    pub d_logits: Buffer,
    /// ∂L/∂x after a backward pass with `input_grad`.
    pub dx: Buffer,
    grad_a: Buffer,
    grad_b: Buffer,
    partial: Buffer,
    weight_scratch: Buffer,
    /// Per block: whether its conv hands the norm row statistics (`ops::row_stats_fit`, with `BlockTail::Fused`),
    /// and the buffer they go through (one float when no block does).
    row_stats_blocks: Vec<bool>,
    row_stats: Buffer,
    /// Per block: the kernels its convolution's passes run (`tune::ConvPicks`: the forward's decided when the
    /// workspace is made, the gradients' at their first use)
    pub kernels: Vec<tune::ConvPicks>,
}

impl GpuConvNet {
    pub fn new(gpu: &Gpu, params: &ConvNetParams) -> Result<Self, GpuError> {
        let params_buf = params
            .tensors
            .iter()
            .enumerate()
            .map(|(i, t)| gpu.upload(&format!("param{i}"), t))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(GpuConvNet { cfg: params.cfg, params: params_buf })
    }

    /// Replace the parameters (same config) without reallocating.
    pub fn load(&self, gpu: &Gpu, params: &ConvNetParams) {
        assert_eq!(params.cfg, self.cfg, "parameters of another network shape");
        for (b, t) in self.params.iter().zip(&params.tensors) {
            gpu.write(b, t);
        }
    }

    pub fn grads(&self, gpu: &Gpu) -> Result<GpuGrads, GpuError> {
        let tensors = self
            .cfg
            .tensor_lens()
            .iter()
            .enumerate()
            .map(|(i, &l)| gpu.zeros(&format!("grad{i}"), l))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(GpuGrads { tensors })
    }

    /// Allocate the activations for batches of `n`. Fails with `GpuError::TooLarge` when one activation
    /// exceeds the adapter's storage-binding limit (then use a smaller batch).
    pub fn workspace(&self, gpu: &Gpu, n: usize) -> Result<Workspace, GpuError> {
        self.workspace_with(gpu, n, BlockTail::of(gpu))
    }

    /// `workspace` with a chosen block tail (tests run both). `BlockTail::Fused` needs the per-thread norm kernel.
    pub fn workspace_with(&self, gpu: &Gpu, n: usize, tail: BlockTail) -> Result<Workspace, GpuError> {
        let shapes = self.cfg.conv_shapes(n);
        let separate = tail == BlockTail::Separate;
        let max_act = shapes.iter().map(ConvShape::y_len).max().unwrap();
        let mut conv_out = vec![];
        let mut stats = vec![];
        let mut norm_out = vec![];
        let mut pooled = vec![];
        for (b, s) in shapes.iter().enumerate() {
            conv_out.push(gpu.zeros(&format!("conv{b}"), s.y_len())?);
            stats.push(gpu.zeros(&format!("stats{b}"), 2 * n * s.cout)?);
            // the fused tail keeps no norm output (a one-float stand-in keeps the bindings valid)
            norm_out.push(gpu.zeros(&format!("norm{b}"), if separate { s.y_len() } else { 1 })?);
            if b + 1 < DEPTH {
                pooled.push(gpu.zeros(&format!("pool{b}"), s.y_len() / 4)?);
            }
        }
        let e = n * self.cfg.embed_dim();
        let kernels: Vec<tune::ConvPicks> = shapes.iter().map(|s| tune::ConvPicks::new(gpu, s)).collect();
        let row_stats_blocks: Vec<bool> =
            shapes.iter().zip(&kernels).map(|(s, k)| tail == BlockTail::Fused && ops::row_stats_fit_with(gpu, k.forward, s)).collect();
        let row_stats_len = shapes.iter().zip(&row_stats_blocks).filter(|(_, r)| **r).map(|(s, _)| ops::row_stats_len(s)).max().unwrap_or(1);
        Ok(Workspace {
            n,
            tail,
            x: gpu.zeros("x", self.cfg.input_len(n))?,
            conv_out,
            stats,
            norm_out,
            relu_tmp: gpu.zeros("relu", if separate { max_act } else { 1 })?,
            pooled,
            embed: gpu.zeros("embed", e)?,
            logits: gpu.zeros("logits", n * self.cfg.classes)?,
            d_embed: gpu.zeros("d_embed", e)?,
            d_logits: gpu.zeros("d_logits", n * self.cfg.classes)?,
            dx: gpu.zeros("dx", self.cfg.input_len(n))?,
            grad_a: gpu.zeros("grad_a", max_act)?,
            grad_b: gpu.zeros("grad_b", max_act)?,
            partial: gpu.zeros("norm_partial", 2 * n * self.cfg.width)?,
            // the weight gradient's partial sums (for whichever kernel its first use picks) and the transposed weights of
            // the vec4 kernels; a few MiB at most (GEMM split-K), small beside the activations
            weight_scratch: gpu.zeros("weight_scratch", shapes.iter().map(|s| ops::conv_weight_scratch_len_any(s).max(s.w_len())).max().unwrap())?,
            row_stats_blocks,
            row_stats: gpu.zeros("row_stats", row_stats_len)?,
            kernels,
        })
    }

    /// Forward pass of `ws.x` into `ws.embed` (and `ws.logits` when `logits`), keeping what backward needs (with
    /// `BlockTail::Fused`, the conv outputs and norm statistics: the same kernels as `forward_only`).
    pub fn forward(&self, gpu: &Gpu, enc: &mut CommandEncoder, ws: &Workspace, logits: bool) {
        self.forward_impl(gpu, enc, ws, logits, true)
    }

    /// Forward pass of `ws.x` into `ws.embed` (and `ws.logits`) when no backward pass follows: each block's norm,
    /// ReLU and pooling run as one fused kernel and the intermediates are not kept (`backward` must not follow).
    pub fn forward_only(&self, gpu: &Gpu, enc: &mut CommandEncoder, ws: &Workspace, logits: bool) {
        self.forward_impl(gpu, enc, ws, logits, false)
    }

    fn forward_impl(&self, gpu: &Gpu, enc: &mut CommandEncoder, ws: &Workspace, logits: bool, keep: bool) {
        let n = ws.n;
        for (b, s) in self.cfg.conv_shapes(n).iter().enumerate() {
            let q = &self.params[b * PER_BLOCK..];
            let input = if b == 0 { &ws.x } else { &ws.pooled[b - 1] };
            let output = if b + 1 == DEPTH { &ws.embed } else { &ws.pooled[b] };
            let ns = NormShape { n, c: s.cout, hw: s.ho() * s.wo() };
            if ws.row_stats_blocks[b] {
                // the conv hands the norm each row's statistics: the plane is read once (ops::row_stats_fit)
                ops::conv_forward_row_stats(gpu, enc, ws.kernels[b].forward, s, input, &q[0], &q[1], &ws.conv_out[b], &ws.weight_scratch, &ws.row_stats);
                ops::norm_relu_pool_forward_rows(gpu, enc, &ns, s.ho(), s.wo(), &ws.conv_out[b], &q[2], &q[3], output, &ws.stats[b],
                    &ws.row_stats);
                continue;
            }
            ops::conv_forward_with(gpu, enc, ws.kernels[b].forward, s, input, &q[0], &q[1], &ws.conv_out[b], &ws.weight_scratch);
            if keep && ws.tail == BlockTail::Separate {
                ops::norm_forward(gpu, enc, &ns, &ws.conv_out[b], &q[2], &q[3], &ws.norm_out[b], &ws.stats[b]);
                ops::relu_forward(gpu, enc, s.y_len(), &ws.norm_out[b], &ws.relu_tmp);
                ops::pool_forward(gpu, enc, &PoolShape { planes: n * s.cout, h: s.ho(), w: s.wo() }, &ws.relu_tmp, output);
            } else {
                ops::norm_relu_pool_forward(gpu, enc, &ns, s.ho(), s.wo(), &ws.conv_out[b], &q[2], &q[3], output, &ws.stats[b]);
            }
        }
        if logits {
            let fc = &self.params[DEPTH * PER_BLOCK..];
            ops::linear_forward(gpu, enc, &self.cfg.linear_shape(n), &ws.embed, &fc[0], &fc[1], &ws.logits);
        }
    }

    /// Backward pass after `forward`. Writes ∂L/∂x into `ws.dx` when `input_grad`, and the parameter
    /// gradients into `grads` when given. The gradient ping-pongs between two scratch buffers.
    pub fn backward(
        &self,
        gpu: &Gpu,
        enc: &mut CommandEncoder,
        ws: &Workspace,
        upstream: Upstream,
        input_grad: bool,
        grads: Option<&GpuGrads>,
    ) {
        let n = ws.n;
        if upstream != Upstream::Embed {
            let ls = self.cfg.linear_shape(n);
            if let Some(g) = grads {
                let fc = &g.tensors[DEPTH * PER_BLOCK..];
                ops::linear_backward_params(gpu, enc, &ls, &ws.embed, &ws.d_logits, &fc[0], &fc[1]);
            }
            let keep = upstream == Upstream::EmbedAndLogits;
            ops::linear_backward_input(gpu, enc, &ls, &ws.d_logits, &self.params[DEPTH * PER_BLOCK], &ws.d_embed, keep);
        }
        let shapes = self.cfg.conv_shapes(n);
        for b in (0..DEPTH).rev() {
            let s = &shapes[b];
            let q = &self.params[b * PER_BLOCK..];
            // ∂L/∂(this block's output): d_embed for the last block, else what the block above left in grad_b.
            let d_out = if b + 1 == DEPTH { &ws.d_embed } else { &ws.grad_b };
            let ns = NormShape { n, c: s.cout, hw: s.ho() * s.wo() };
            if ws.tail == BlockTail::Fused {
                ops::norm_relu_pool_backward(gpu, enc, &ns, s.ho(), s.wo(), &ws.conv_out[b], &q[2], &q[3], &ws.stats[b], d_out, &ws.grad_a,
                    &ws.partial);
            } else {
                ops::pool_backward(gpu, enc, &PoolShape { planes: n * s.cout, h: s.ho(), w: s.wo() }, d_out, &ws.grad_a);
                ops::relu_backward(gpu, enc, s.y_len(), &ws.norm_out[b], &ws.grad_a, &ws.grad_b);
                ops::norm_backward(gpu, enc, &ns, &ws.conv_out[b], &q[2], &ws.stats[b], &ws.grad_b, &ws.grad_a, &ws.partial);
            }
            // grad_a now holds ∂L/∂conv_out[b]
            if let Some(g) = grads {
                let input = if b == 0 { &ws.x } else { &ws.pooled[b - 1] };
                let t = &g.tensors[b * PER_BLOCK..];
                ops::conv_backward_weight_with(gpu, enc, ws.kernels[b].weight(gpu), s, input, &ws.grad_a, &t[0], &ws.weight_scratch);
                // No conv_backward_bias: the instance norm after the conv subtracts each plane's mean, so L does
                // not depend on the conv bias and ∂L/∂b ≡ 0 (the reference computes it as rounding noise; a test
                // checks it). t[1] stays as `grads` allocated it, zero; weight decay still acts on b in the optimiser.
                ops::norm_param_grad(gpu, enc, &ns, &ws.partial, &t[2], &t[3]);
            }
            if b > 0 {
                ops::conv_backward_input_with(gpu, enc, ws.kernels[b].input(gpu), s, &ws.grad_a, &q[0], &ws.grad_b, &ws.weight_scratch);
            } else if input_grad {
                ops::conv_backward_input_with(gpu, enc, ws.kernels[b].input(gpu), s, &ws.grad_a, &q[0], &ws.dx, &ws.weight_scratch);
            }
        }
    }

    /// Convenience for small jobs and self-checks: embed `x` (n images) and read the features back.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn embed(&self, gpu: &Gpu, x: &[f32], n: usize) -> Result<Vec<f32>, GpuError> {
        let ws = self.workspace(gpu, n)?;
        gpu.write(&ws.x, x);
        let mut enc = gpu.encoder();
        self.forward_only(gpu, &mut enc, &ws, false);
        gpu.submit_wait(enc);
        gpu.read_f32(&ws.embed, n * self.cfg.embed_dim())
    }
}
