//! eval: the papers' evaluation protocol (method.md §3): a fresh ConvNet-3 trained on the synthetic set
//! with hard labels and cross-entropy, SGD (lr 0.01, momentum 0.9, weight decay 5e-4, batch 256, shuffled,
//! last partial batch kept), lr × 0.1 with a fresh optimiser (momentum reset) after epoch E/2 + 1,
//! per-sample DSA on every batch; then top-1 accuracy on the whole real test split. K networks → mean ± std.
//! DANCE's protocol (method.md §4.2.5) is the other choice: MultiStepLR, CutMix after DSA, best-of accuracy.

use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::augment::{self, Op};
use crate::data::Dataset;
use crate::gpu::{Gpu, GpuError};
use crate::nn::arch::{Arch, Graph, GpuGraphNet, GraphWorkspace};
use crate::nn::convnet::{ConvNetConfig, ConvNetParams, GpuConvNet, GpuGrads, Upstream, Workspace};
use crate::nn::ops;
use crate::rng;
use crate::validate::ConfigError;

/// Which evaluation protocol trains the networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// The DM code's `evaluate_synset` (also IDM's and HDD's): epochs + 1 passes, lr × 0.1 with a fresh optimiser
    /// after pass E/2 + 1, the last network's accuracy.
    Dm,
    /// DANCE's (IDC's): `epochs` passes, lr × 0.2 at 2/3 and 5/6 of them (MultiStepLR, momentum kept), CutMix after
    /// DSA with probability `cutmix_p`, tested every `test_every` epochs and at the end; the best accuracy counts.
    Dance,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    pub protocol: Protocol,
    /// Training runs for epochs + 1 passes (the DM code's `range(Epoch + 1)`); DANCE: epochs passes.
    pub epochs: usize,
    pub nets: usize,
    pub lr: f32,
    pub momentum: f32,
    pub weight_decay: f32,
    pub batch: usize,
    pub dsa: String,
    /// The network trained on the set: ConvNet-3 (the papers' default) or one of the DC code's pool (cross-architecture).
    pub arch: Arch,
    /// ConvNet-3's width (the other architectures have the DC code's fixed sizes).
    pub width: usize,
    /// Marks results that did not use the papers' protocol.
    pub quick: bool,
    /// DANCE: CutMix probability and Beta(β, β) parameter, and how often the network is tested.
    pub cutmix_p: f64,
    pub cutmix_beta: f64,
    pub test_every: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            epochs: 1000,
            nets: 5,
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 5e-4,
            batch: 256,
            dsa: augment::DEFAULT_STRATEGY.to_string(),
            arch: Arch::ConvNet,
            width: 128,
            quick: false,
            protocol: Protocol::Dm,
            cutmix_p: 0.5,
            cutmix_beta: 1.0,
            test_every: 250,
        }
    }
}

impl EvalConfig {
    /// A reduced protocol for quick looks; every output labels it as quick.
    pub fn quick() -> Self {
        EvalConfig { epochs: 300, nets: 3, quick: true, ..Default::default() }
    }

    /// DANCE's evaluation: 1500 epochs, batch 64, MultiStepLR at 1000 and 1250 (γ 0.2), DSA without cutout
    /// ('color_crop_flip_scale_rotate') plus CutMix (p 0.5, β 1), tested every 250 epochs, best accuracy.
    pub fn dance() -> Self {
        EvalConfig { protocol: Protocol::Dance, epochs: 1500, batch: 64, dsa: "color_crop_flip_scale_rotate".into(), ..Default::default() }
    }

    /// Reject options the protocol cannot run with, before any work starts (and before any kernel sees them).
    pub fn validate(&self) -> Result<(), ConfigError> {
        use crate::validate::{at_least_one, non_negative_f32, positive_f32, unit_interval};
        at_least_one("eval: nets", self.nets)?;
        at_least_one("eval: batch", self.batch)?;
        at_least_one("eval: width", self.width)?;
        if self.protocol == Protocol::Dance {
            at_least_one("eval: test_every", self.test_every)?;
        }
        non_negative_f32("eval: lr", self.lr as f64)?;
        non_negative_f32("eval: weight_decay", self.weight_decay as f64)?;
        unit_interval("eval: momentum", self.momentum as f64, false)?;
        unit_interval("eval: cutmix_p", self.cutmix_p, true)?;
        positive_f32("eval: cutmix_beta", self.cutmix_beta)?;
        Op::parse_strategy(&self.dsa).map_err(|e| ConfigError::new("eval: dsa", e))?;
        Ok(())
    }

    /// Passes over the set and the learning rate of pass `ep` (and whether the momentum restarts there).
    pub fn passes(&self) -> usize {
        match self.protocol {
            Protocol::Dm => self.epochs + 1,
            Protocol::Dance => self.epochs,
        }
    }

    pub fn lr_at(&self, ep: usize) -> (f32, bool) {
        match self.protocol {
            // the DM code multiplies lr by 0.1 and builds a new optimiser after pass E/2 + 1
            Protocol::Dm => if ep > self.epochs / 2 + 1 { (self.lr * 0.1, ep == self.epochs / 2 + 2) } else { (self.lr, false) },
            Protocol::Dance => {
                let drops = [2 * self.epochs / 3, 5 * self.epochs / 6].iter().filter(|&&m| ep >= m).count();
                (self.lr * 0.2f32.powi(drops as i32), false)
            }
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct EvalResult {
    /// per network: its final accuracy (DM protocol) or its best tested one (DANCE)
    pub accuracies: Vec<f64>,
    pub mean: f64,
    pub std: f64,
    pub quick: bool,
    pub epochs: usize,
}

pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// A network under evaluation: ConvNet-3 on its tuned kernels, or a graph of the cross-architecture pool.
pub enum EvalNet {
    ConvNet(GpuConvNet),
    Graph(GpuGraphNet),
}

/// Activations of an `EvalNet` for one batch size.
pub enum EvalWorkspace {
    ConvNet(Box<Workspace>),
    Graph(GraphWorkspace),
}

impl EvalWorkspace {
    pub fn x(&self) -> &wgpu::Buffer {
        match self {
            EvalWorkspace::ConvNet(w) => &w.x,
            EvalWorkspace::Graph(w) => w.x(),
        }
    }
    pub fn logits(&self) -> &wgpu::Buffer {
        match self {
            EvalWorkspace::ConvNet(w) => &w.logits,
            EvalWorkspace::Graph(w) => w.logits(),
        }
    }
    pub fn d_logits(&self) -> &wgpu::Buffer {
        match self {
            EvalWorkspace::ConvNet(w) => &w.d_logits,
            EvalWorkspace::Graph(w) => w.d_logits(),
        }
    }
}

impl EvalNet {
    /// A freshly initialised network of `cfg.arch` for the dataset's images, drawn from `rng`.
    pub fn init(gpu: &Gpu, ds: &Dataset, cfg: &EvalConfig, rng: &mut impl rand::Rng) -> Result<EvalNet, anyhow::Error> {
        anyhow::ensure!(ds.height == ds.width, "the evaluation networks need square images, '{}' has {}×{}", ds.name, ds.height, ds.width);
        Ok(match cfg.arch {
            Arch::ConvNet => {
                let net_cfg = ConvNetConfig::new(ds.shape(), cfg.width, ds.classes.len())?;
                EvalNet::ConvNet(GpuConvNet::new(gpu, &ConvNetParams::init(&net_cfg, rng))?)
            }
            arch => {
                let g = Graph::new(arch, ds.channels, ds.height, ds.classes.len(), cfg.width)?;
                let params = g.init(rng);
                EvalNet::Graph(GpuGraphNet::new(gpu, &g, &params)?)
            }
        })
    }

    pub fn params(&self) -> &[wgpu::Buffer] {
        match self {
            EvalNet::ConvNet(n) => &n.params,
            EvalNet::Graph(n) => &n.params,
        }
    }

    pub fn tensor_lens(&self) -> Vec<usize> {
        match self {
            EvalNet::ConvNet(n) => n.cfg.tensor_lens().to_vec(),
            EvalNet::Graph(n) => n.graph.tensor_lens(),
        }
    }

    pub fn grads(&self, gpu: &Gpu) -> Result<GpuGrads, GpuError> {
        match self {
            EvalNet::ConvNet(n) => n.grads(gpu),
            EvalNet::Graph(n) => n.grads(gpu),
        }
    }

    /// Buffers for batches of `n` (`train`: with what the backward pass needs).
    pub fn workspace(&self, gpu: &Gpu, n: usize, train: bool) -> Result<EvalWorkspace, GpuError> {
        Ok(match self {
            EvalNet::ConvNet(net) => EvalWorkspace::ConvNet(Box::new(net.workspace(gpu, n)?)),
            EvalNet::Graph(net) => EvalWorkspace::Graph(net.workspace(gpu, n, train)?),
        })
    }

    /// Logits of `ws.x()`; `keep`: keep what `backward` needs.
    pub fn forward(&self, gpu: &Gpu, enc: &mut wgpu::CommandEncoder, ws: &EvalWorkspace, keep: bool) {
        match (self, ws) {
            (EvalNet::ConvNet(n), EvalWorkspace::ConvNet(w)) if keep => n.forward(gpu, enc, w, true),
            (EvalNet::ConvNet(n), EvalWorkspace::ConvNet(w)) => n.forward_only(gpu, enc, w, true),
            (EvalNet::Graph(n), EvalWorkspace::Graph(w)) => n.forward(gpu, enc, w),
            _ => panic!("workspace of another network"),
        }
    }

    /// Parameter gradients from ∂L/∂logits in `ws.d_logits()`.
    pub fn backward(&self, gpu: &Gpu, enc: &mut wgpu::CommandEncoder, ws: &EvalWorkspace, grads: &GpuGrads) {
        match (self, ws) {
            (EvalNet::ConvNet(n), EvalWorkspace::ConvNet(w)) => n.backward(gpu, enc, w, Upstream::Logits, false, Some(grads)),
            (EvalNet::Graph(n), EvalWorkspace::Graph(w)) => n.backward(gpu, enc, w, grads, false),
            _ => panic!("workspace of another network"),
        }
    }
}

/// What testing a network gives: its top-1 accuracy, and its confusion matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct TestResult {
    pub accuracy: f64,
    /// [true class, predicted class], row-major, counts over the test split (prediction: the first largest logit).
    pub confusion: Vec<u64>,
}

/// Test accuracy of `net` on the whole test split, in batches of up to 256.
pub fn test_accuracy(gpu: &Gpu, net: &EvalNet, ds: &Dataset) -> Result<f64, GpuError> {
    Ok(test(gpu, net, ds)?.accuracy)
}

/// Accuracy and confusion matrix of `net` on the whole test split, in batches of up to 256; the logits come back with
/// the correct-flags in one read-back per batch.
pub fn test(gpu: &Gpu, net: &EvalNet, ds: &Dataset) -> Result<TestResult, GpuError> {
    let n_test = ds.test.len();
    let k = ds.classes.len();
    let mut confusion = vec![0u64; k * k];
    if n_test == 0 {
        return Ok(TestResult { accuracy: f64::NAN, confusion });
    }
    let bs = 256.min(n_test);
    let mut wss: Vec<(usize, EvalWorkspace)> = vec![(bs, net.workspace(gpu, bs, false)?)];
    let rem = n_test % bs;
    if rem != 0 {
        wss.push((rem, net.workspace(gpu, rem, false)?));
    }
    let labels = gpu.zeros("test_labels", bs)?;
    let out = gpu.zeros("test_correct", bs)?;
    let mut correct = 0.0f64;
    let mut start = 0;
    while start < n_test {
        let n = bs.min(n_test - start);
        let ws = &wss.iter().find(|(s, _)| *s == n).expect("workspace for this size").1;
        let idx: Vec<usize> = (start..start + n).collect();
        gpu.write(ws.x(), &ds.normalized(&ds.test, &idx));
        gpu.write(&labels, &ds.test.labels[start..start + n]);
        let mut enc = gpu.encoder();
        net.forward(gpu, &mut enc, ws, false);
        ops::correct(gpu, &mut enc, n, ds.classes.len(), ws.logits(), &labels, &out);
        gpu.submit_wait(enc);
        let back = gpu.read_many(&[(&out, n), (ws.logits(), n * k)])?;
        correct += back[0].iter().map(|&v| v as f64).sum::<f64>();
        for (i, row) in back[1].chunks_exact(k).enumerate() {
            let pred = row.iter().enumerate().fold(0, |best, (j, &v)| if v > row[best] { j } else { best });
            confusion[ds.test.labels[start + i] as usize * k + pred] += 1;
        }
        start += n;
    }
    Ok(TestResult { accuracy: correct / n_test as f64, confusion })
}

/// Train one fresh network on (images, labels) and return its test accuracy. `images` are normalised.
pub fn train_and_test(
    gpu: &Gpu,
    ds: &Dataset,
    images: &[f32],
    labels: &[u32],
    cfg: &EvalConfig,
    seed: u64,
    on_epoch: &mut dyn FnMut(usize),
) -> Result<TestResult, anyhow::Error> {
    match cfg.protocol {
        Protocol::Dm => {
            let net = train(gpu, ds, images, labels, cfg, seed, on_epoch)?;
            Ok(test(gpu, &net, ds)?)
        }
        Protocol::Dance => {
            // the best of the periodic tests (the first of equal ones)
            let mut best: Option<TestResult> = None;
            let every = cfg.test_every.max(1);
            train_with(gpu, ds, images, labels, cfg, seed, on_epoch, &mut |ep, net| {
                if (ep + 1) % every == 0 || ep + 1 == cfg.passes() {
                    let t = test(gpu, net, ds)?;
                    if best.as_ref().is_none_or(|b| t.accuracy > b.accuracy) {
                        best = Some(t);
                    }
                }
                Ok(())
            }, None)?;
            Ok(best.unwrap_or(TestResult { accuracy: f64::NAN, confusion: vec![] }))
        }
    }
}

/// Train one fresh network on (images, labels) with the protocol of `cfg`; returns when the GPU has finished.
pub fn train(
    gpu: &Gpu,
    ds: &Dataset,
    images: &[f32],
    labels: &[u32],
    cfg: &EvalConfig,
    seed: u64,
    on_epoch: &mut dyn FnMut(usize),
) -> Result<EvalNet, anyhow::Error> {
    train_with(gpu, ds, images, labels, cfg, seed, on_epoch, &mut |_, _| Ok(()), None)
}

/// The seed of evaluation network `k` of an evaluation seeded `seed`.
pub fn net_seed(seed: u64, k: usize) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(k as u64)
}

/// Training step `step` (counted over all epochs from 0) of the network `train` trains from `seed`, traced: the
/// network's parameters and momentum before, the batch (indices into `images`, images, labels), its per-image DSA
/// op and parameters, the augmented batch, the logits, the per-sample cross-entropy, the parameter gradients, the
/// momentum and the parameters after (names as the DC code's ConvNet's). ConvNet-3 with the DM protocol (no CutMix).
/// The network trains up to that step exactly as `train` would, and stops there.
#[cfg(not(target_arch = "wasm32"))]
pub fn trace_step(gpu: &Gpu, ds: &Dataset, images: &[f32], labels: &[u32], cfg: &EvalConfig, seed: u64, step: usize) -> Result<crate::trace::Trace, anyhow::Error> {
    anyhow::ensure!(cfg.arch == Arch::ConvNet && cfg.protocol == Protocol::Dm, "--trace traces ConvNet-3 under the DM protocol (not {} / {:?})", cfg.arch.name(), cfg.protocol);
    let steps = cfg.passes() * labels.len().div_ceil(cfg.batch.min(labels.len()).max(1));
    anyhow::ensure!(step < steps, "--trace {step}: the evaluation trains {steps} steps (0 to {})", steps.saturating_sub(1));
    let mut at = StepTrace { step, done: 0, out: None };
    train_with(gpu, ds, images, labels, cfg, seed, &mut |_| {}, &mut |_, _| Ok(()), Some(&mut at))?;
    let mut tr = at.out.ok_or_else(|| anyhow::anyhow!("step {step} was not reached"))?;
    tr.meta("step", step);
    tr.meta("seed", seed);
    tr.meta("adapter", gpu.describe());
    Ok(tr)
}

/// Where `train_with` traces: at step `step`, counting in `done`, into `out`.
struct StepTrace {
    step: usize,
    done: usize,
    out: Option<crate::trace::Trace>,
}

/// `train`, calling `after_pass(pass, net)` after every pass (DANCE tests the network there), and tracing one step
/// where `trace` says (`trace_step`).
#[allow(clippy::too_many_arguments)]
fn train_with(
    gpu: &Gpu,
    ds: &Dataset,
    images: &[f32],
    labels: &[u32],
    cfg: &EvalConfig,
    seed: u64,
    on_epoch: &mut dyn FnMut(usize),
    after_pass: &mut dyn FnMut(usize, &EvalNet) -> Result<(), GpuError>,
    mut trace: Option<&mut StepTrace>,
) -> Result<EvalNet, anyhow::Error> {
    let n = labels.len();
    anyhow::ensure!(n > 0 && images.len() == n * ds.image_len(), "the synthetic set is empty or mis-sized");
    let ops_list: Vec<Op> = Op::parse_strategy(&cfg.dsa).map_err(|e| ConfigError::new("eval: dsa", e))?;
    let mut rng_init = rng::stream(seed, "eval-net");
    let mut rng_shuffle = rng::stream(seed, "eval-shuffle");
    let mut rng_dsa = rng::stream(seed, "eval-dsa");
    let mut rng_mix = rng::stream(seed, "eval-cutmix");
    let dance = cfg.protocol == Protocol::Dance;
    let net = EvalNet::init(gpu, ds, cfg, &mut rng_init)?;
    let grads = net.grads(gpu)?;
    let lens = net.tensor_lens();
    let moms: Vec<wgpu::Buffer> = lens.iter().map(|&l| gpu.zeros("momentum", l)).collect::<Result<_, _>>()?;
    let bs = cfg.batch.min(n);
    // one workspace (and input, labels, params, loss buffers) per batch size: full and the remainder
    let mut sizes = vec![bs];
    if n % bs != 0 {
        sizes.push(n % bs);
    }
    struct Slot {
        n: usize,
        ws: EvalWorkspace,
        x: wgpu::Buffer,
        labels: wgpu::Buffer,
        params: wgpu::Buffer,
        scratch: wgpu::Buffer,
        loss: wgpu::Buffer,
        /// CutMix (DANCE): the augmented batch before mixing, the box and permutation, the partner labels, the ratio
        mixed: wgpu::Buffer,
        mix_words: wgpu::Buffer,
        labels_b: wgpu::Buffer,
        ratio: wgpu::Buffer,
    }
    let img = ds.image_len();
    let slots: Vec<Slot> = sizes
        .iter()
        .map(|&s| -> Result<Slot, GpuError> {
            Ok(Slot {
                n: s,
                ws: net.workspace(gpu, s, true)?,
                x: gpu.zeros("eval_x", s * img)?,
                labels: gpu.zeros("eval_labels", s)?,
                params: gpu.zeros("eval_aug", s * 8)?,
                scratch: gpu.zeros("eval_scratch", s)?,
                loss: gpu.zeros("eval_loss", s)?,
                mixed: gpu.zeros("eval_mixed", if dance { s * img } else { 1 })?,
                mix_words: gpu.zeros("eval_mix_words", if dance { 4 + s } else { 1 })?,
                labels_b: gpu.zeros("eval_labels_b", s)?,
                ratio: gpu.zeros("eval_ratio", 1)?,
            })
        })
        .collect::<Result<_, _>>()?;
    let mut order: Vec<usize> = (0..n).collect();
    for ep in 0..cfg.passes() {
        let (lr, restart) = cfg.lr_at(ep);
        if restart {
            // a new optimiser: momentum starts again from zero
            for (m, &l) in moms.iter().zip(&lens) {
                gpu.write(m, &vec![0f32; l]);
            }
        }
        for i in (1..n).rev() {
            let j = rng_shuffle.random_range(0..=i);
            order.swap(i, j);
        }
        for batch in order.chunks(bs) {
            let slot = slots.iter().find(|s| s.n == batch.len()).expect("slot for this batch size");
            let mut xb = Vec::with_capacity(batch.len() * img);
            for &i in batch {
                xb.extend_from_slice(&images[i * img..(i + 1) * img]);
            }
            let lb: Vec<u32> = batch.iter().map(|&i| labels[i]).collect();
            gpu.write(&slot.x, &xb);
            gpu.write(&slot.labels, &lb);
            let (op, aug) = augment::draw_per_sample_op(&ops_list, &mut rng_dsa, batch.len(), ds.height, ds.width);
            gpu.write(&slot.params, &aug);
            let tracing = trace.as_ref().is_some_and(|t| t.done == t.step);
            let mut tr = crate::trace::Trace::default();
            if tracing {
                #[cfg(not(target_arch = "wasm32"))]
                trace_before(&Traced { gpu, net: &net, moms: &moms, ds }, &mut tr, cfg, (ep, lr), batch, &xb, &lb, (op, &aug))?;
            }
            let mix = if dance { augment::CutMix::draw(&mut rng_mix, batch.len(), ds.height, ds.width, cfg.cutmix_p, cfg.cutmix_beta) } else { None };
            let mut enc = gpu.encoder();
            let k = ds.classes.len();
            // DSA into the network's input, or (CutMix) into `mixed` and from there, boxes swapped, into the input
            let augmented = if mix.is_some() { &slot.mixed } else { slot.ws.x() };
            augment::gpu::forward(gpu, &mut enc, slot.n, ds.shape(), &slot.x, &slot.params, &slot.scratch, augmented);
            if let Some(m) = &mix {
                gpu.write(&slot.mix_words, &m.words());
                gpu.write(&slot.labels_b, &m.perm.iter().map(|&i| lb[i]).collect::<Vec<u32>>());
                gpu.write(&slot.ratio, &[m.ratio as f32]);
                augment::gpu::cutmix(gpu, &mut enc, slot.n, ds.shape(), &slot.mixed, &slot.mix_words, slot.ws.x());
            }
            net.forward(gpu, &mut enc, &slot.ws, true);
            let scale = 1.0 / slot.n as f32;
            if mix.is_some() {
                ops::softmax_xent_mix(gpu, &mut enc, slot.n, k, scale, slot.ws.logits(), &slot.labels, &slot.labels_b, &slot.ratio, &slot.loss, slot.ws.d_logits());
            } else {
                ops::softmax_xent(gpu, &mut enc, slot.n, k, scale, slot.ws.logits(), &slot.labels, &slot.loss, slot.ws.d_logits());
            }
            net.backward(gpu, &mut enc, &slot.ws, &grads);
            for t in 0..lens.len() {
                ops::sgd(gpu, &mut enc, lens[t], ops::Sgd { lr, momentum: cfg.momentum, weight_decay: cfg.weight_decay }, &grads.tensors[t], &net.params()[t], &moms[t]);
            }
            gpu.submit(enc);
            if let Some(t) = trace.as_deref_mut() {
                if tracing {
                    #[cfg(not(target_arch = "wasm32"))]
                    trace_after(&Traced { gpu, net: &net, moms: &moms, ds }, &mut tr, &grads, &slot.ws, &slot.loss, slot.n)?;
                    t.out = Some(tr);
                    return Ok(net);
                }
                t.done += 1;
            }
        }
        after_pass(ep, &net)?;
        on_epoch(ep);
    }
    let _ = gpu.device.poll(wgpu::PollType::wait_indefinitely());
    Ok(net)
}

/// Train and test `cfg.nets` networks; mean ± std of their accuracies.
pub fn evaluate(
    gpu: &Gpu,
    ds: &Dataset,
    images: &[f32],
    labels: &[u32],
    cfg: &EvalConfig,
    seed: u64,
    on_epoch: &mut dyn FnMut(usize, usize),
) -> Result<EvalResult, anyhow::Error> {
    let nets: Vec<usize> = (0..cfg.nets).collect();
    let accs: Vec<f64> = evaluate_nets(gpu, ds, images, labels, cfg, seed, &nets, on_epoch)?.into_iter().map(|t| t.accuracy).collect();
    let (mean, std) = mean_std(&accs);
    Ok(EvalResult { accuracies: accs, mean, std, quick: cfg.quick, epochs: cfg.epochs })
}

/// The test results (accuracy and confusion matrix) of evaluation networks `nets` (indices among `cfg.nets`): network
/// k is trained from its own seed, whatever else runs, so any split of the networks over processes (`eval --shard`)
/// gives the same results.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_nets(
    gpu: &Gpu,
    ds: &Dataset,
    images: &[f32],
    labels: &[u32],
    cfg: &EvalConfig,
    seed: u64,
    nets: &[usize],
    on_epoch: &mut dyn FnMut(usize, usize),
) -> Result<Vec<TestResult>, anyhow::Error> {
    cfg.validate()?;
    let bad = images.iter().filter(|v| !v.is_finite()).count();
    if bad > 0 {
        anyhow::bail!("the synthetic set has {bad} NaN or infinite pixel values (from a run that diverged?): nothing to evaluate");
    }
    if ds.height != ds.width {
        anyhow::bail!("images of {}×{} pixels are not supported: the networks take square images", ds.height, ds.width);
    }
    let mut accs = vec![];
    for &k in nets {
        accs.push(train_and_test(gpu, ds, images, labels, cfg, net_seed(seed, k), &mut |ep| on_epoch(k, ep))?);
    }
    Ok(accs)
}

/// The parameter tensors of an evaluation ConvNet-3 as (PyTorch name, shape, buffer, length).
#[cfg(not(target_arch = "wasm32"))]
fn torch_params<'a>(net: &'a EvalNet, bufs: &'a [wgpu::Buffer]) -> Vec<(String, Vec<usize>, &'a wgpu::Buffer, usize)> {
    let EvalNet::ConvNet(n) = net else { return vec![] };
    crate::trace::torch_tensors(&n.cfg).into_iter().zip(bufs).zip(n.cfg.tensor_lens()).map(|(((name, shape), b), l)| (name, shape, b, l)).collect()
}

/// Reads, in one read-back, the tensors of `head` and every tensor of each list (prefixed) into the trace.
#[cfg(not(target_arch = "wasm32"))]
fn read_into(gpu: &Gpu, tr: &mut crate::trace::Trace, head: &[(&str, Vec<usize>, &wgpu::Buffer, usize)], lists: &[(&str, Vec<(String, Vec<usize>, &wgpu::Buffer, usize)>)]) -> Result<(), GpuError> {
    let mut parts: Vec<(&wgpu::Buffer, usize)> = head.iter().map(|h| (h.2, h.3)).collect();
    for (_, list) in lists {
        parts.extend(list.iter().map(|p| (p.2, p.3)));
    }
    let mut raw = gpu.read_many(&parts)?.into_iter();
    let mut next = || raw.next().expect("one read-back per tensor");
    for (name, shape, _, _) in head {
        tr.f32(name, shape, next());
    }
    for (prefix, list) in lists {
        for (name, shape, _, _) in list {
            tr.f32(&format!("{prefix}{name}"), shape, next());
        }
    }
    Ok(())
}

/// What a traced evaluation step reads before and after: the network, its momentum, the dataset.
#[cfg(not(target_arch = "wasm32"))]
struct Traced<'a> {
    gpu: &'a Gpu,
    net: &'a EvalNet,
    moms: &'a [wgpu::Buffer],
    ds: &'a Dataset,
}

/// A traced evaluation step's inputs (before its command buffer runs).
#[cfg(not(target_arch = "wasm32"))]
#[allow(clippy::too_many_arguments)]
fn trace_before(
    Traced { gpu, net, moms, ds }: &Traced,
    tr: &mut crate::trace::Trace,
    cfg: &EvalConfig,
    (epoch, lr): (usize, f32),
    batch: &[usize],
    xb: &[f32],
    lb: &[u32],
    (op, aug): (Option<Op>, &[augment::AugParams]),
) -> Result<(), GpuError> {
    let EvalNet::ConvNet(n) = net else { return Ok(()) };
    read_into(gpu, tr, &[], &[("net.", torch_params(net, net.params())), ("momentum_before.", torch_params(net, moms))])?;
    let (b, s) = (batch.len(), ds.shape());
    tr.meta("format", "hyperdistill trace 1");
    tr.meta("kind", "eval");
    tr.meta("epoch", epoch);
    tr.meta("lr", lr);
    tr.meta("momentum", cfg.momentum);
    tr.meta("weight_decay", cfg.weight_decay);
    tr.meta("batch", b);
    tr.meta("image", format!("{}x{}x{}", s.c, s.h, s.w));
    tr.meta("width", n.cfg.width);
    tr.meta("first_pad", n.cfg.first_pad());
    tr.meta("norm_eps", crate::reference::NORM_EPS);
    tr.meta("dsa_strategy", &cfg.dsa);
    tr.meta("dsa_ops", augment::TRACE_OP_NAMES.join(","));
    tr.meta("dataset", &ds.name);
    tr.meta("version", env!("CARGO_PKG_VERSION"));
    tr.i64("batch.indices", &[b], batch.iter().map(|&i| i as i64).collect());
    tr.f32("batch.images", &[b, s.c, s.h, s.w], xb.to_vec());
    tr.i64("batch.labels", &[b], lb.iter().map(|&l| l as i64).collect());
    tr.i64("dsa.op", &[1], vec![augment::trace_op_index(op)]);
    tr.f64("dsa.values", &[b, 3], aug.iter().flat_map(|p| augment::trace_values(op, p, s.h, s.w)).collect());
    tr.f32("dsa.params", &[b, 8], aug.iter().flat_map(|p| p.0).collect());
    Ok(())
}

/// A traced evaluation step's outputs (after its command buffer ran).
#[cfg(not(target_arch = "wasm32"))]
fn trace_after(Traced { gpu, net, moms, ds }: &Traced, tr: &mut crate::trace::Trace, grads: &GpuGrads, ws: &EvalWorkspace, loss: &wgpu::Buffer, b: usize) -> Result<(), GpuError> {
    let (s, k) = (ds.shape(), ds.classes.len());
    let head = [("batch.augmented", vec![b, s.c, s.h, s.w], ws.x(), b * s.len()), ("logits", vec![b, k], ws.logits(), b * k), ("loss.per_sample", vec![b], loss, b)];
    read_into(gpu, tr, &head, &[("grad.", torch_params(net, &grads.tensors)), ("momentum_after.", torch_params(net, moms)), ("net_after.", torch_params(net, net.params()))])
}
