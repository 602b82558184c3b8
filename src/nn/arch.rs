//! nn::arch: the cross-architecture evaluation pool of the DC code (`get_eval_pool('M')`, method.md §3): MLP,
//! LeNet, AlexNet, VGG11 and ResNet18 (instance norm), as layer graphs run by one small interpreter, on the GPU
//! (`GpuGraphNet`) and on the f64 reference (`ref_forward`, `ref_backward`). ConvNet-3 keeps its own tuned
//! network (`nn::convnet`); it can be written as a graph too, which the tests use to check the interpreter.
//!
//! A graph is a list of nodes; node i reads tensor `input` (and `skip` for Add) and writes tensor i + 1; tensor 0
//! is the image batch and the last tensor the logits. Linear layers read their input flattened, as `view(n, −1)`.
//! Parameters are kept in node order: conv w (b), norm γ β, linear w b.

use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};
use wgpu::{Buffer, CommandEncoder};

use crate::gpu::{Gpu, GpuError};
use crate::nn::convnet::GpuGrads;
use crate::nn::{ops, tune};
use crate::reference as r;
use crate::shapes::{KConvShape, LinearShape, NormShape, WindowShape};

/// The evaluation network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// ConvNet-3 (width from the evaluation config), the papers' default
    #[default]
    ConvNet,
    /// 784/3072 → 128 → 128 → classes, ReLU
    Mlp,
    /// conv5(6) pool conv5(16) pool, 120, 84, classes; ReLU, max pooling
    LeNet,
    /// conv5(128) pool conv5(192) pool conv3(256) conv3(192) conv3(192) pool, linear; no normalisation
    AlexNet,
    /// VGG11 with instance norm: 64 M 128 M 256 256 M 512 512 M 512 512 M, linear
    Vgg11,
    /// ResNet18 with instance norm: BasicBlocks [2, 2, 2, 2] of 64…512 channels, 4×4 average pool, linear
    ResNet18,
}

impl Arch {
    pub const ALL: [Arch; 6] = [Arch::ConvNet, Arch::Mlp, Arch::LeNet, Arch::AlexNet, Arch::Vgg11, Arch::ResNet18];

    pub fn name(self) -> &'static str {
        match self {
            Arch::ConvNet => "convnet",
            Arch::Mlp => "mlp",
            Arch::LeNet => "lenet",
            Arch::AlexNet => "alexnet",
            Arch::Vgg11 => "vgg11",
            Arch::ResNet18 => "resnet18",
        }
    }

    pub fn parse(s: &str) -> Result<Arch, String> {
        let t = s.trim().to_ascii_lowercase();
        Arch::ALL
            .into_iter()
            .find(|a| a.name() == t)
            .ok_or_else(|| format!("unknown architecture '{s}': use one of {}", Arch::ALL.map(Arch::name).join(", ")))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    Conv { cout: usize, k: usize, stride: usize, pad: usize, bias: bool },
    /// Instance norm (GroupNorm(C, C), affine)
    Norm,
    Relu,
    /// K×K window, stride K
    MaxPool(usize),
    AvgPool(usize),
    /// Fully connected on the flattened input
    Linear { out: usize },
    /// tensor `input` + tensor `skip` (ResNet's shortcut)
    Add,
}

/// Channels and side of one sample's tensor (c × h × w; Linear outputs are c × 1 × 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Dims {
    /// Floats per sample.
    pub fn size(&self) -> usize {
        self.c * self.h * self.w
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node {
    pub layer: Layer,
    pub input: usize,
    pub skip: usize,
    pub out: Dims,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Graph {
    pub arch: Arch,
    pub input: Dims,
    pub classes: usize,
    pub nodes: Vec<Node>,
}

impl std::str::FromStr for Arch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Arch::parse(s)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ArchError {
    #[error("{arch}: a {c}×{h}×{w} input shrinks to nothing (the DC networks expect 28×28 or 32×32 images)")]
    TooSmall { arch: &'static str, c: usize, h: usize, w: usize },
    #[error("{0} must be at least 1")]
    Zero(&'static str),
}

/// Records nodes and their output sizes while a network is written down.
struct Builder {
    input: Dims,
    nodes: Vec<Node>,
    ok: bool,
}

impl Builder {
    fn dims(&self, t: usize) -> Dims {
        if t == 0 { self.input } else { self.nodes[t - 1].out }
    }
    fn push(&mut self, layer: Layer, input: usize, skip: usize, out: Dims) -> usize {
        self.ok &= out.c > 0 && out.h > 0 && out.w > 0;
        self.nodes.push(Node { layer, input, skip, out: Dims { c: out.c.max(1), h: out.h.max(1), w: out.w.max(1) } });
        self.nodes.len()
    }
    fn conv(&mut self, t: usize, cout: usize, k: usize, stride: usize, pad: usize, bias: bool) -> usize {
        let d = self.dims(t);
        let side = |s: usize| (s + 2 * pad).checked_sub(k).map_or(0, |v| v / stride + 1);
        self.push(Layer::Conv { cout, k, stride, pad, bias }, t, 0, Dims { c: cout, h: side(d.h), w: side(d.w) })
    }
    fn same(&mut self, layer: Layer, t: usize) -> usize {
        let d = self.dims(t);
        self.push(layer, t, 0, d)
    }
    fn pool(&mut self, t: usize, k: usize, max: bool) -> usize {
        let d = self.dims(t);
        let layer = if max { Layer::MaxPool(k) } else { Layer::AvgPool(k) };
        self.push(layer, t, 0, Dims { c: d.c, h: d.h / k, w: d.w / k })
    }
    fn linear(&mut self, t: usize, out: usize) -> usize {
        self.push(Layer::Linear { out }, t, 0, Dims { c: out, h: 1, w: 1 })
    }
    fn add(&mut self, a: usize, b: usize) -> usize {
        let d = self.dims(a);
        self.push(Layer::Add, a, b, d)
    }
    /// conv → instance norm → ReLU
    fn conv_norm_relu(&mut self, t: usize, cout: usize, pad: usize, bias: bool) -> usize {
        let c = self.conv(t, cout, 3, 1, pad, bias);
        let n = self.same(Layer::Norm, c);
        self.same(Layer::Relu, n)
    }
    /// ResNet's BasicBlock: relu(norm(conv(relu(norm(conv(x))))) + shortcut(x)); the shortcut is a 1×1 conv +
    /// norm when the stride or the channel count changes.
    fn basic_block(&mut self, x: usize, planes: usize, stride: usize) -> usize {
        let c1 = self.conv(x, planes, 3, stride, 1, false);
        let n1 = self.same(Layer::Norm, c1);
        let r1 = self.same(Layer::Relu, n1);
        let c2 = self.conv(r1, planes, 3, 1, 1, false);
        let n2 = self.same(Layer::Norm, c2);
        let sc = if stride != 1 || self.dims(x).c != planes {
            let c = self.conv(x, planes, 1, stride, 0, false);
            self.same(Layer::Norm, c)
        } else {
            x
        };
        let a = self.add(n2, sc);
        self.same(Layer::Relu, a)
    }
}

impl Graph {
    /// Whether node `i`'s output is read by instance norms alone (and at least one): then a bias added by node `i`
    /// cancels in every reader, and its gradient is identically zero.
    pub fn feeds_only_norms(&self, i: usize) -> bool {
        let t = i + 1;
        let mut readers = self.nodes.iter().filter(|nd| nd.input == t || (nd.layer == Layer::Add && nd.skip == t)).peekable();
        readers.peek().is_some() && readers.all(|nd| nd.layer == Layer::Norm)
    }

    /// The DC code's network for images of channels × image × image. `convnet_width` is ConvNet-3's width; the
    /// others have the DC code's fixed channel counts.
    pub fn new(arch: Arch, channels: usize, image: usize, classes: usize, convnet_width: usize) -> Result<Graph, ArchError> {
        Graph::scaled(arch, channels, image, classes, convnet_width, 1)
    }

    /// As `new` with every hidden channel count and hidden linear size divided by `div` (at least 1 each):
    /// thinner copies of the same topology, for tests on slow adapters. `div` = 1 is the DC code's network.
    pub fn scaled(arch: Arch, channels: usize, image: usize, classes: usize, convnet_width: usize, div: usize) -> Result<Graph, ArchError> {
        for (v, name) in [(channels, "channels"), (image, "image side"), (classes, "classes"), (convnet_width, "width"), (div, "div")] {
            if v == 0 {
                return Err(ArchError::Zero(name));
            }
        }
        let ch = |c: usize| (c / div).max(1);
        let gray = channels == 1;
        let mut b = Builder { input: Dims { c: channels, h: image, w: image }, nodes: vec![], ok: true };
        let x = 0;
        let last = match arch {
            Arch::ConvNet => {
                // as nn::convnet: conv3 (pad 3 for 28×28) → norm → ReLU → avgpool 2, three times; linear
                let mut t = x;
                for d in 0..3 {
                    let pad = if d == 0 && image == 28 { 3 } else { 1 };
                    let c = b.conv_norm_relu(t, convnet_width, pad, true);
                    t = b.pool(c, 2, false);
                }
                b.linear(t, classes)
            }
            Arch::Mlp => {
                let h1 = b.linear(x, ch(128));
                let r1 = b.same(Layer::Relu, h1);
                let h2 = b.linear(r1, ch(128));
                let r2 = b.same(Layer::Relu, h2);
                b.linear(r2, classes)
            }
            Arch::LeNet => {
                let c1 = b.conv(x, ch(6), 5, 1, if gray { 2 } else { 0 }, true);
                let r1 = b.same(Layer::Relu, c1);
                let p1 = b.pool(r1, 2, true);
                let c2 = b.conv(p1, ch(16), 5, 1, 0, true);
                let r2 = b.same(Layer::Relu, c2);
                let p2 = b.pool(r2, 2, true);
                let f1 = b.linear(p2, ch(120));
                let q1 = b.same(Layer::Relu, f1);
                let f2 = b.linear(q1, ch(84));
                let q2 = b.same(Layer::Relu, f2);
                b.linear(q2, classes)
            }
            Arch::AlexNet => {
                let mut t = b.conv(x, ch(128), 5, 1, if gray { 4 } else { 2 }, true);
                t = b.same(Layer::Relu, t);
                t = b.pool(t, 2, true);
                t = b.conv(t, ch(192), 5, 1, 2, true);
                t = b.same(Layer::Relu, t);
                t = b.pool(t, 2, true);
                for c in [256, 192, 192] {
                    t = b.conv(t, ch(c), 3, 1, 1, true);
                    t = b.same(Layer::Relu, t);
                }
                t = b.pool(t, 2, true);
                b.linear(t, classes)
            }
            Arch::Vgg11 => {
                let cfg: [Option<usize>; 13] =
                    [Some(64), None, Some(128), None, Some(256), Some(256), None, Some(512), Some(512), None, Some(512), Some(512), None];
                let mut t = x;
                for (i, c) in cfg.into_iter().enumerate() {
                    t = match c {
                        // the DC code pads the first conv by 3 for 1-channel (28×28) inputs, as ConvNet's
                        Some(c) => b.conv_norm_relu(t, ch(c), if gray && i == 0 { 3 } else { 1 }, true),
                        None => b.pool(t, 2, true),
                    };
                }
                // (the DC code's trailing AvgPool2d(1, 1) is the identity)
                b.linear(t, classes)
            }
            Arch::ResNet18 => {
                let c = b.conv(x, ch(64), 3, 1, 1, false);
                let n = b.same(Layer::Norm, c);
                let mut t = b.same(Layer::Relu, n);
                for (planes, stride) in [(64, 1), (128, 2), (256, 2), (512, 2)] {
                    t = b.basic_block(t, ch(planes), stride);
                    t = b.basic_block(t, ch(planes), 1);
                }
                // F.avg_pool2d(out, 4): 4×4 maps (28 and 32 px inputs) become 1×1
                t = b.pool(t, 4, false);
                b.linear(t, classes)
            }
        };
        debug_assert_eq!(last, b.nodes.len());
        if !b.ok {
            return Err(ArchError::TooSmall { arch: arch.name(), c: channels, h: image, w: image });
        }
        Ok(Graph { arch, input: b.input, classes, nodes: b.nodes })
    }

    /// Sizes of tensor t (0: the image).
    pub fn dims(&self, t: usize) -> Dims {
        if t == 0 { self.input } else { self.nodes[t - 1].out }
    }

    pub fn conv_shape(&self, node: usize, n: usize) -> KConvShape {
        let nd = &self.nodes[node];
        let Layer::Conv { cout, k, stride, pad, .. } = nd.layer else { panic!("node {node} is not a convolution") };
        let d = self.dims(nd.input);
        KConvShape { n, cin: d.c, cout, h: d.h, w: d.w, k, stride, pad }
    }

    fn window_shape(&self, node: usize, n: usize, k: usize) -> WindowShape {
        let d = self.dims(self.nodes[node].input);
        WindowShape { planes: n * d.c, h: d.h, w: d.w, k }
    }

    fn linear_shape(&self, node: usize, n: usize) -> LinearShape {
        let nd = &self.nodes[node];
        LinearShape { n, inp: self.dims(nd.input).size(), out: nd.out.c }
    }

    fn norm_shape(&self, node: usize, n: usize) -> NormShape {
        let d = self.nodes[node].out;
        NormShape { n, c: d.c, hw: d.h * d.w }
    }

    /// (first parameter tensor, lengths) of each node; parameters in node order.
    pub fn param_layout(&self) -> Vec<(usize, Vec<usize>)> {
        let mut next = 0;
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, nd)| {
                let lens = match nd.layer {
                    Layer::Conv { bias, .. } => {
                        let s = self.conv_shape(i, 1);
                        if bias { vec![s.w_len(), s.cout] } else { vec![s.w_len()] }
                    }
                    Layer::Norm => vec![nd.out.c; 2],
                    Layer::Linear { out } => vec![out * self.dims(nd.input).size(), out],
                    _ => vec![],
                };
                let first = next;
                next += lens.len();
                (first, lens)
            })
            .collect()
    }

    pub fn tensor_lens(&self) -> Vec<usize> {
        self.param_layout().into_iter().flat_map(|(_, l)| l).collect()
    }

    pub fn num_params(&self) -> usize {
        self.tensor_lens().iter().sum()
    }

    /// Multiply-accumulates of one forward pass over `n` images (convolutions and linear layers).
    pub fn macs(&self, n: usize) -> u64 {
        (0..self.nodes.len())
            .map(|i| match self.nodes[i].layer {
                Layer::Conv { .. } => self.conv_shape(i, n).macs(),
                Layer::Linear { .. } => {
                    let s = self.linear_shape(i, n);
                    (s.n * s.inp * s.out) as u64
                }
                _ => 0,
            })
            .sum()
    }

    /// PyTorch's default initialisation, as the DC code leaves it: conv and linear weights and biases
    /// ~ U(±1/√fan_in), norm γ = 1 and β = 0.
    pub fn init(&self, rng: &mut impl Rng) -> Vec<Vec<f32>> {
        let mut out = vec![];
        for (i, (nd, (_, lens))) in self.nodes.iter().zip(self.param_layout()).enumerate() {
            let fan_in = match nd.layer {
                Layer::Conv { k, .. } => self.conv_shape(i, 1).cin * k * k,
                Layer::Linear { .. } => self.dims(nd.input).size(),
                _ => 0,
            };
            for (j, len) in lens.into_iter().enumerate() {
                out.push(match nd.layer {
                    Layer::Norm => vec![if j == 0 { 1.0 } else { 0.0 }; len],
                    _ => {
                        let bound = 1.0 / (fan_in as f32).sqrt();
                        (0..len).map(|_| rng.random_range(-bound..bound)).collect()
                    }
                });
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// CPU reference (f64)

/// Every tensor of a forward pass (tensor 0 = the input) and the norms' statistics.
pub struct RefActivations {
    pub n: usize,
    pub tensors: Vec<Vec<f64>>,
    pub stats: Vec<Option<Vec<f64>>>,
}

impl RefActivations {
    pub fn logits(&self) -> &[f64] {
        self.tensors.last().expect("a graph has at least one node")
    }
}

pub fn ref_forward(g: &Graph, p: &[Vec<f64>], x: &[f64], n: usize) -> RefActivations {
    let layout = g.param_layout();
    let mut act = RefActivations { n, tensors: vec![x.to_vec()], stats: vec![None] };
    for (i, nd) in g.nodes.iter().enumerate() {
        let q = &p[layout[i].0..];
        let inp = &act.tensors[nd.input];
        let mut stats = None;
        let y = match nd.layer {
            Layer::Conv { bias, .. } => r::kconv_forward(&g.conv_shape(i, n), inp, &q[0], bias.then(|| q[1].as_slice())),
            Layer::Norm => {
                let (y, s) = r::norm_forward(&g.norm_shape(i, n), inp, &q[0], &q[1]);
                stats = Some(s);
                y
            }
            Layer::Relu => r::relu_forward(inp),
            Layer::MaxPool(k) => r::maxpool_forward(&g.window_shape(i, n, k), inp),
            Layer::AvgPool(k) => r::avgpool_forward(&g.window_shape(i, n, k), inp),
            Layer::Linear { .. } => r::linear_forward(&g.linear_shape(i, n), inp, &q[0], &q[1]),
            Layer::Add => r::add(inp, &act.tensors[nd.skip]),
        };
        act.tensors.push(y);
        act.stats.push(stats);
    }
    act
}

/// Backward from ∂L/∂logits: returns (∂L/∂x, ∂L/∂params in node order). Gradients reaching a tensor by two
/// paths (a ResNet block's input) are summed.
pub fn ref_backward(g: &Graph, p: &[Vec<f64>], act: &RefActivations, d_logits: &[f64]) -> (Vec<f64>, Vec<Vec<f64>>) {
    let n = act.n;
    let layout = g.param_layout();
    let mut grads: Vec<Vec<f64>> = g.tensor_lens().iter().map(|&l| vec![0.0; l]).collect();
    let mut d: Vec<Vec<f64>> = act.tensors.iter().map(|t| vec![0.0; t.len()]).collect();
    *d.last_mut().unwrap() = d_logits.to_vec();
    let add_into = |dst: &mut Vec<f64>, src: Vec<f64>| dst.iter_mut().zip(src).for_each(|(a, b)| *a += b);
    for (i, nd) in g.nodes.iter().enumerate().rev() {
        let dy = d[i + 1].clone();
        let (first, q) = (layout[i].0, &p[layout[i].0..]);
        let inp = &act.tensors[nd.input];
        let dx = match nd.layer {
            Layer::Conv { bias, .. } => {
                let s = g.conv_shape(i, n);
                grads[first] = r::kconv_backward_weight(&s, inp, &dy);
                if bias {
                    grads[first + 1] = r::kconv_backward_bias(&s, &dy);
                }
                r::kconv_backward_input(&s, &dy, &q[0])
            }
            Layer::Norm => {
                let (dx, dg, db) = r::norm_backward(&g.norm_shape(i, n), inp, &q[0], act.stats[i + 1].as_ref().unwrap(), &dy);
                grads[first] = dg;
                grads[first + 1] = db;
                dx
            }
            Layer::Relu => r::relu_backward(inp, &dy),
            Layer::MaxPool(k) => r::maxpool_backward(&g.window_shape(i, n, k), inp, &dy),
            Layer::AvgPool(k) => r::avgpool_backward(&g.window_shape(i, n, k), &dy),
            Layer::Linear { .. } => {
                let s = g.linear_shape(i, n);
                let (dw, db) = r::linear_backward_params(&s, inp, &dy);
                grads[first] = dw;
                grads[first + 1] = db;
                r::linear_backward_input(&s, &dy, &q[0])
            }
            Layer::Add => {
                add_into(&mut d[nd.skip], dy.clone());
                dy
            }
        };
        add_into(&mut d[nd.input], dx);
    }
    (d.swap_remove(0), grads)
}

// ---------------------------------------------------------------------------------------------
// GPU network

/// A graph's parameters on the GPU (node order).
pub struct GpuGraphNet {
    pub graph: Graph,
    pub params: Vec<Buffer>,
    /// each node's first parameter tensor (`Graph::param_layout`, computed once: forward and backward run per batch)
    first: Vec<usize>,
}

/// Tensors of one batch size, allocated once: every node's output, and for training every tensor's gradient.
pub struct GraphWorkspace {
    pub n: usize,
    /// tensors[0] is the input batch (write it with `Gpu::write`), the last one the logits
    pub tensors: Vec<Buffer>,
    stats: Vec<Option<Buffer>>,
    /// ∂L/∂tensor (training workspaces only); the last one is ∂L/∂logits, written by the loss; grads[0] = ∂L/∂x
    pub grads: Vec<Buffer>,
    tmp: Option<Buffer>,
    partial: Option<Buffer>,
    weight_scratch: Option<Buffer>,
    /// each convolution node's kernels (`nn::tune`: measured, pinned or the rule), None for other nodes
    kernels: Vec<Option<tune::KConvPicks>>,
}

impl GraphWorkspace {
    pub fn x(&self) -> &Buffer {
        &self.tensors[0]
    }
    pub fn logits(&self) -> &Buffer {
        self.tensors.last().unwrap()
    }
    /// ∂L/∂logits; panics for a forward-only workspace.
    pub fn d_logits(&self) -> &Buffer {
        self.grads.last().expect("a training workspace")
    }
}

impl GpuGraphNet {
    pub fn new(gpu: &Gpu, graph: &Graph, params: &[Vec<f32>]) -> Result<Self, GpuError> {
        assert_eq!(params.iter().map(Vec::len).collect::<Vec<_>>(), graph.tensor_lens(), "parameters of another graph");
        let params = params.iter().enumerate().map(|(i, t)| gpu.upload(&format!("arch_param{i}"), t)).collect::<Result<_, _>>()?;
        let first = graph.param_layout().into_iter().map(|(f, _)| f).collect();
        Ok(GpuGraphNet { graph: graph.clone(), params, first })
    }

    pub fn grads(&self, gpu: &Gpu) -> Result<GpuGrads, GpuError> {
        let tensors = self.graph.tensor_lens().iter().map(|&l| gpu.zeros("arch_grad", l)).collect::<Result<_, _>>()?;
        Ok(GpuGrads { tensors })
    }

    /// Buffers for batches of `n`; `train` adds the gradient buffers `backward` needs.
    pub fn workspace(&self, gpu: &Gpu, n: usize, train: bool) -> Result<GraphWorkspace, GpuError> {
        let g = &self.graph;
        let lens: Vec<usize> = (0..=g.nodes.len()).map(|t| n * g.dims(t).size()).collect();
        let tensors = lens.iter().enumerate().map(|(t, &l)| gpu.zeros(&format!("arch_t{t}"), l)).collect::<Result<Vec<_>, _>>()?;
        let mut stats = vec![None];
        for nd in &g.nodes {
            stats.push(if nd.layer == Layer::Norm { Some(gpu.zeros("arch_stats", 2 * n * nd.out.c)?) } else { None });
        }
        let kernels = (0..g.nodes.len())
            .map(|i| matches!(g.nodes[i].layer, Layer::Conv { .. }).then(|| tune::KConvPicks::new(gpu, &g.conv_shape(i, n))))
            .collect();
        let mut ws = GraphWorkspace { n, tensors, stats, grads: vec![], tmp: None, partial: None, weight_scratch: None, kernels };
        if train {
            ws.grads = lens.iter().map(|&l| gpu.zeros("arch_d", l)).collect::<Result<_, _>>()?;
            ws.tmp = Some(gpu.zeros("arch_tmp", *lens.iter().max().unwrap())?);
            let max_c = g.nodes.iter().filter(|nd| nd.layer == Layer::Norm).map(|nd| nd.out.c).max().unwrap_or(1);
            ws.partial = Some(gpu.zeros("arch_partial", 2 * n * max_c)?);
            let scratch = (0..g.nodes.len())
                .filter(|&i| matches!(g.nodes[i].layer, Layer::Conv { .. }))
                .map(|i| ops::kconv_weight_scratch_len_any(&g.conv_shape(i, n)))
                .max()
                .unwrap_or(1);
            ws.weight_scratch = Some(gpu.zeros("arch_wscratch", scratch)?);
        }
        Ok(ws)
    }

    /// Forward pass of `ws.x()` into every tensor, the logits last.
    pub fn forward(&self, gpu: &Gpu, enc: &mut CommandEncoder, ws: &GraphWorkspace) {
        let (g, n) = (&self.graph, ws.n);
        for (i, nd) in g.nodes.iter().enumerate() {
            let q = &self.params[self.first[i]..];
            let (x, y) = (&ws.tensors[nd.input], &ws.tensors[i + 1]);
            match nd.layer {
                Layer::Conv { bias, .. } => {
                    let k = ws.kernels[i].as_ref().expect("a convolution's kernels").forward.0;
                    ops::kconv_forward_with(gpu, enc, k, &g.conv_shape(i, n), x, &q[0], bias.then(|| &q[1]), y)
                }
                Layer::Norm => ops::norm_forward(gpu, enc, &g.norm_shape(i, n), x, &q[0], &q[1], y, ws.stats[i + 1].as_ref().unwrap()),
                Layer::Relu => ops::relu_forward(gpu, enc, n * nd.out.size(), x, y),
                Layer::MaxPool(k) => ops::maxpool_forward(gpu, enc, &g.window_shape(i, n, k), x, y),
                Layer::AvgPool(k) => ops::avgpool_forward(gpu, enc, &g.window_shape(i, n, k), x, y),
                Layer::Linear { .. } => ops::linear_forward(gpu, enc, &g.linear_shape(i, n), x, &q[0], &q[1], y),
                Layer::Add => ops::add(gpu, enc, n * nd.out.size(), x, &ws.tensors[nd.skip], y),
            }
        }
    }

    /// Backward pass after `forward`, from ∂L/∂logits in `ws.d_logits()`: parameter gradients into `grads`, and
    /// ∂L/∂x into `ws.grads[0]` when `input_grad`. A tensor's gradient is written by the first node that reaches
    /// it (nodes are visited last to first) and accumulated by any later one.
    pub fn backward(&self, gpu: &Gpu, enc: &mut CommandEncoder, ws: &GraphWorkspace, grads: &GpuGrads, input_grad: bool) {
        let (g, n) = (&self.graph, ws.n);
        let tmp = ws.tmp.as_ref().expect("backward needs a training workspace");
        let mut written = vec![false; g.nodes.len() + 1];
        // Where the gradient of tensor t goes: its own buffer the first time, else `tmp` (added afterwards).
        let target = |written: &[bool], t: usize| if written[t] { tmp } else { &ws.grads[t] };
        let settle = |enc: &mut CommandEncoder, written: &mut [bool], t: usize| {
            if written[t] {
                ops::accumulate(gpu, enc, n * g.dims(t).size(), tmp, &ws.grads[t]);
            }
            written[t] = true;
        };
        for (i, nd) in g.nodes.iter().enumerate().rev() {
            let dy = &ws.grads[i + 1];
            let (first, q) = (self.first[i], &self.params[self.first[i]..]);
            let x = &ws.tensors[nd.input];
            let want = nd.input != 0 || input_grad;
            match nd.layer {
                Layer::Conv { bias, .. } => {
                    let s = g.conv_shape(i, n);
                    let picks = ws.kernels[i].as_ref().expect("a convolution's kernels");
                    let scratch = ws.weight_scratch.as_ref().unwrap();
                    ops::kconv_backward_weight_with(gpu, enc, picks.weight(gpu).0, &s, x, dy, &grads.tensors[first], scratch);
                    // ∂L/∂b ≡ 0 where only instance norms read the conv's output (they subtract each plane's
                    // mean): the buffer stays as `grads` allocated it, zero (see GpuConvNet::backward)
                    if bias && !g.feeds_only_norms(i) {
                        ops::kconv_backward_bias(gpu, enc, &s, dy, &grads.tensors[first + 1]);
                    }
                    if want {
                        ops::kconv_backward_input_with(gpu, enc, picks.input(gpu).0, &s, dy, &q[0], target(&written, nd.input));
                    }
                }
                Layer::Norm => {
                    let s = g.norm_shape(i, n);
                    let partial = ws.partial.as_ref().unwrap();
                    ops::norm_backward(gpu, enc, &s, x, &q[0], ws.stats[i + 1].as_ref().unwrap(), dy, target(&written, nd.input), partial);
                    ops::norm_param_grad(gpu, enc, &s, partial, &grads.tensors[first], &grads.tensors[first + 1]);
                }
                Layer::Relu => {
                    if want {
                        ops::relu_backward(gpu, enc, n * nd.out.size(), x, dy, target(&written, nd.input));
                    }
                }
                Layer::MaxPool(k) => {
                    if want {
                        ops::maxpool_backward(gpu, enc, &g.window_shape(i, n, k), x, dy, target(&written, nd.input));
                    }
                }
                Layer::AvgPool(k) => {
                    if want {
                        ops::avgpool_backward(gpu, enc, &g.window_shape(i, n, k), dy, target(&written, nd.input));
                    }
                }
                Layer::Linear { .. } => {
                    let s = g.linear_shape(i, n);
                    ops::linear_backward_params(gpu, enc, &s, x, dy, &grads.tensors[first], &grads.tensors[first + 1]);
                    if want {
                        ops::linear_backward_input(gpu, enc, &s, dy, &q[0], target(&written, nd.input), false);
                    }
                }
                Layer::Add => {
                    // dy flows unchanged to both inputs
                    let len = n * nd.out.size();
                    for t in [nd.skip, nd.input] {
                        if t != 0 || input_grad {
                            if written[t] {
                                ops::accumulate(gpu, enc, len, dy, &ws.grads[t]);
                            } else {
                                enc.copy_buffer_to_buffer(dy, 0, &ws.grads[t], 0, (len * 4) as u64);
                                written[t] = true;
                            }
                        }
                    }
                    continue;
                }
            }
            if want {
                settle(enc, &mut written, nd.input);
            }
        }
    }
}
