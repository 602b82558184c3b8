//! nn::tune: which kernel runs each convolution pass of a shape — measured on the user's device (the autotuner),
//! pinned by a resumed run, or the hand-made rule (`ops::*::of`) — decided once per shape when a network's workspace
//! is made (`conv_kernels`).
//!
//! The autotuner times the candidates that can run the shape (the register-blocked kernels and the implicit GEMMs'
//! tilings), on scratch buffers of that shape, in interleaved rounds: pipelines compiled, a warm-up round, then
//! `RUNS` counted rounds, by GPU timestamps where the device has them, else wall clock around submit-and-wait; a
//! candidate's time is its fastest counted run. Hopeless candidates drop out, and a pass and shape gets `BUDGET_S`
//! seconds (`tune`). The pick is kept in the table file of this adapter and build (`gpu::autotune_file`): the cost is
//! paid once per shape and device.

#[cfg(not(target_arch = "wasm32"))]
use std::time::Instant;

use wgpu::{Buffer, CommandEncoder};

use crate::gpu::{Autotune, Gpu, GpuError, Tuned};
use crate::nn::ops::{self, ConvBackwardInput, ConvBackwardWeight, ConvForward, KConvKernel};
use crate::shapes::{ConvShape, KConvShape};

/// Counted runs per candidate (after one warm-up), in interleaved rounds.
pub const RUNS: usize = 5;
/// A candidate whose fastest run takes this many times the best candidate's is not run again.
pub const HOPELESS: f64 = 3.0;
/// Seconds of measuring per pass and shape after which the candidates not yet timed are skipped.
pub const BUDGET_S: f64 = 3.0;
/// Another kernel replaces the rule's only where it beat the rule's run by this factor in every round both were
/// counted in (at least `PAIRED` of them), and its fastest run is this factor of the rule's fastest.
pub const MARGIN: f64 = 0.97;
/// Counted rounds a candidate must have run beside the rule to replace it: with every one won, the chance that
/// a kernel no faster than the rule gets in by noise alone is at most 2^-PAIRED (a sign test; 1/8).
pub const PAIRED: usize = 3;

/// The kernels of one convolution shape's three passes, fixed when a workspace is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvKernels {
    pub forward: ConvForward,
    pub input: ConvBackwardInput,
    pub weight: ConvBackwardWeight,
}

/// The buffers a convolution pass reads and writes, sized for one shape (the tuner's and the bench's scratch).
pub struct ConvBuffers {
    pub x: Buffer,
    pub w: Buffer,
    pub b: Buffer,
    pub y: Buffer,
    pub dy: Buffer,
    pub dx: Buffer,
    pub dw: Buffer,
    /// transposed weights and the weight gradient's partial sums, big enough for every candidate
    pub scratch: Buffer,
    /// the whole-row forward kernels' row statistics (what they write in a network with the fused block tail)
    pub rowstats: Buffer,
}

/// Bytes of each of the two buffers the tuner copies between before every timed run, so that no candidate finds its
/// operands in a cache a network would not have left them in: twice the largest last-level caches (50 MB of L2 on an
/// H100, 32 MiB of L3 on this project's CPU machine).
pub const FLUSH_BYTES: usize = 64 << 20;

impl ConvBuffers {
    /// Buffers for ConvNet-3's shape `s` holding small deterministic values (timing does not depend on them, but NaNs
    /// could).
    pub fn new(gpu: &Gpu, s: &ConvShape) -> Result<ConvBuffers, GpuError> {
        let scratch = ops::conv_weight_scratch_len_any(s).max(s.w_len());
        Self::with_lens(gpu, [s.x_len(), s.w_len(), s.cout, s.y_len(), scratch, ops::row_stats_len(s)])
    }

    /// The same for an evaluation-pool convolution.
    pub fn for_kconv(gpu: &Gpu, s: &KConvShape) -> Result<ConvBuffers, GpuError> {
        Self::with_lens(gpu, [s.x_len(), s.w_len(), s.cout, s.y_len(), ops::kconv_weight_scratch_len_any(s).max(s.w_len()), 1])
    }

    /// Lengths of x, w, b, y (and dy), the scratch and the row statistics.
    fn with_lens(gpu: &Gpu, [x, w, b, y, scratch, rowstats]: [usize; 6]) -> Result<ConvBuffers, GpuError> {
        let fill = |len: usize, k: usize| -> Vec<f32> { (0..len).map(|i| (((i * 37 + k * 11) % 97) as f32 - 48.0) / 97.0).collect() };
        Self::with_data(gpu, [&fill(x, 1), &fill(w, 2), &fill(b, 3), &fill(y, 4)], scratch, rowstats)
    }

    /// Buffers holding `[x, w, b, dy]` (y, dx and dw sized after them), and the scratch and row statistics.
    pub fn with_data(gpu: &Gpu, [x, w, b, dy]: [&[f32]; 4], scratch: usize, rowstats: usize) -> Result<ConvBuffers, GpuError> {
        Ok(ConvBuffers {
            x: gpu.upload("tune-x", x)?,
            w: gpu.upload("tune-w", w)?,
            b: gpu.upload("tune-b", b)?,
            y: gpu.zeros("tune-y", dy.len())?,
            dy: gpu.upload("tune-dy", dy)?,
            dx: gpu.zeros("tune-dx", x.len())?,
            dw: gpu.zeros("tune-dw", w.len())?,
            scratch: gpu.zeros("tune-scratch", scratch)?,
            rowstats: gpu.zeros("tune-rowstats", rowstats)?,
        })
    }
}

/// A shape whose passes the tuner measures: how it is written in table keys, and its scratch buffers.
pub trait TuneShape: Copy + PartialEq + std::fmt::Debug {
    /// The table key of pass `op` on this shape.
    fn key(&self, op: &str) -> String;
    /// The pass and shape a key names (the inverse of `key`); None for other strings.
    fn parse_key(k: &str) -> Option<(String, Self)>;
    fn buffers(&self, gpu: &Gpu) -> Result<ConvBuffers, GpuError>;
}

/// `op n{n} {cin}x{h}x{w}>{cout}` and the rest of a key.
fn key_fields(k: &str) -> Option<(String, [usize; 5], &str)> {
    let mut it = k.splitn(4, ' ');
    let op = it.next()?.to_string();
    let n = it.next()?.strip_prefix('n')?.parse().ok()?;
    let (input, cout) = it.next()?.split_once('>')?;
    let dims: Vec<usize> = input.split('x').map(str::parse).collect::<Result<_, _>>().ok()?;
    let [cin, h, w] = dims[..] else { return None };
    Some((op, [n, cin, h, w, cout.parse().ok()?], it.next()?))
}

/// e.g. `conv_forward n64 1x28x28>128 pad3`
impl TuneShape for ConvShape {
    fn key(&self, op: &str) -> String {
        format!("{op} n{} {}x{}x{}>{} pad{}", self.n, self.cin, self.h, self.w, self.cout, self.pad)
    }
    fn parse_key(k: &str) -> Option<(String, Self)> {
        let (op, [n, cin, h, w, cout], rest) = key_fields(k)?;
        Some((op, ConvShape { n, cin, cout, h, w, pad: rest.strip_prefix("pad")?.parse().ok()? }))
    }
    fn buffers(&self, gpu: &Gpu) -> Result<ConvBuffers, GpuError> {
        ConvBuffers::new(gpu, self)
    }
}

/// e.g. `kconv_forward n256 64x16x16>128 k3s2p1`
impl TuneShape for KConvShape {
    fn key(&self, op: &str) -> String {
        format!("{op} n{} {}x{}x{}>{} k{}s{}p{}", self.n, self.cin, self.h, self.w, self.cout, self.k, self.stride, self.pad)
    }
    fn parse_key(k: &str) -> Option<(String, Self)> {
        let (op, [n, cin, h, w, cout], rest) = key_fields(k)?;
        let (k, rest) = rest.strip_prefix('k')?.split_once('s')?;
        let (stride, pad) = rest.split_once('p')?;
        let (k, stride, pad) = (k.parse().ok()?, stride.parse().ok()?, pad.parse().ok()?);
        Some((op, KConvShape { n, cin, cout, h, w, k, stride, pad }))
    }
    fn buffers(&self, gpu: &Gpu) -> Result<ConvBuffers, GpuError> {
        ConvBuffers::for_kconv(gpu, self)
    }
}

/// One convolution pass whose kernel can be chosen.
pub trait ConvPass: Copy + PartialEq + std::fmt::Debug {
    type Shape: TuneShape;
    /// The pass's name in keys and tables.
    const OP: &'static str;
    fn available(s: &Self::Shape) -> Vec<Self>;
    /// The hand-made choice.
    fn rule(gpu: &Gpu, s: &Self::Shape) -> Self;
    fn name(self) -> &'static str;
    /// Record this pass on `b`.
    fn encode(self, gpu: &Gpu, enc: &mut CommandEncoder, s: &Self::Shape, b: &ConvBuffers);
    /// Why this kernel must not run on `gpu` (the tuner does not time it, the kernel check lists it as not run);
    /// None: it may.
    fn barred(self, _gpu: &Gpu) -> Option<&'static str> {
        None
    }
}

impl ConvPass for ConvForward {
    type Shape = ConvShape;
    const OP: &'static str = "conv_forward";
    fn available(s: &ConvShape) -> Vec<Self> {
        ConvForward::available(s)
    }
    fn rule(gpu: &Gpu, s: &ConvShape) -> Self {
        ConvForward::of(gpu, s)
    }
    fn name(self) -> &'static str {
        ConvForward::name(self)
    }
    /// As a network runs it: a whole-row kernel where the block tail is fused (the per-thread norm kernel) also writes
    /// the row statistics, which changes its cost.
    fn encode(self, gpu: &Gpu, enc: &mut CommandEncoder, s: &ConvShape, b: &ConvBuffers) {
        if ops::NormKernel::of(gpu) == ops::NormKernel::PerThread && ops::row_stats_fit_with(gpu, self, s) {
            ops::conv_forward_row_stats(gpu, enc, self, s, &b.x, &b.w, &b.b, &b.y, &b.scratch, &b.rowstats)
        } else {
            ops::conv_forward_with(gpu, enc, self, s, &b.x, &b.w, &b.b, &b.y, &b.scratch)
        }
    }
}

impl ConvPass for ConvBackwardInput {
    type Shape = ConvShape;
    const OP: &'static str = "conv_input_grad";
    fn available(s: &ConvShape) -> Vec<Self> {
        ConvBackwardInput::available(s)
    }
    fn rule(gpu: &Gpu, s: &ConvShape) -> Self {
        ConvBackwardInput::of(gpu, s)
    }
    fn name(self) -> &'static str {
        ConvBackwardInput::name(self)
    }
    fn encode(self, gpu: &Gpu, enc: &mut CommandEncoder, s: &ConvShape, b: &ConvBuffers) {
        ops::conv_backward_input_with(gpu, enc, self, s, &b.dy, &b.w, &b.dx, &b.scratch)
    }
}

impl ConvPass for ConvBackwardWeight {
    type Shape = ConvShape;
    const OP: &'static str = "conv_weight_grad";
    fn available(s: &ConvShape) -> Vec<Self> {
        ConvBackwardWeight::available(s)
    }
    fn rule(gpu: &Gpu, s: &ConvShape) -> Self {
        ConvBackwardWeight::of(gpu, s)
    }
    fn name(self) -> &'static str {
        ConvBackwardWeight::name(self)
    }
    fn encode(self, gpu: &Gpu, enc: &mut CommandEncoder, s: &ConvShape, b: &ConvBuffers) {
        ops::conv_backward_weight_with(gpu, enc, self, s, &b.x, &b.dy, &b.dw, &b.scratch)
    }
    /// The scalar `backward_weight` never finishes in a browser on SwiftShader (Chromium's CPU WebGPU: measured by the
    /// page's kernel check, 4×4 maps, the device lost after 2 minutes); natively on lavapipe it matches the reference.
    fn barred(self, gpu: &Gpu) -> Option<&'static str> {
        (cfg!(target_arch = "wasm32") && gpu.info.device_type == wgpu::DeviceType::Cpu && self == ConvBackwardWeight::Scalar)
            .then_some("it never finishes on a browser's CPU WebGPU (SwiftShader)")
    }
}

/// One pass of an evaluation-pool convolution (`PASS`: 0 forward, 1 input gradient, 2 weight gradient) with its kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KConvPass<const PASS: u32>(pub KConvKernel);
pub type KForward = KConvPass<0>;
pub type KInput = KConvPass<1>;
pub type KWeight = KConvPass<2>;

impl<const PASS: u32> ConvPass for KConvPass<PASS> {
    type Shape = KConvShape;
    const OP: &'static str = ["kconv_forward", "kconv_input_grad", "kconv_weight_grad"][PASS as usize];
    fn available(_: &KConvShape) -> Vec<Self> {
        KConvKernel::available().into_iter().map(KConvPass).collect()
    }
    /// The direct kernels everywhere: the only ones the pool had before the GEMMs, and the fast form on lavapipe.
    fn rule(_: &Gpu, _: &KConvShape) -> Self {
        KConvPass(KConvKernel::Direct)
    }
    fn name(self) -> &'static str {
        self.0.name()
    }
    /// The forward with a bias (the pool's networks mostly have one; its cost is one add per output).
    fn encode(self, gpu: &Gpu, enc: &mut CommandEncoder, s: &KConvShape, b: &ConvBuffers) {
        match PASS {
            0 => ops::kconv_forward_with(gpu, enc, self.0, s, &b.x, &b.w, Some(&b.b), &b.y),
            1 => ops::kconv_backward_input_with(gpu, enc, self.0, s, &b.dy, &b.w, &b.dx),
            _ => ops::kconv_backward_weight_with(gpu, enc, self.0, s, &b.x, &b.dy, &b.dw, &b.scratch),
        }
    }
}

/// The table key of pass `op` on shape `s`, e.g. `conv_forward n64 1x28x28>128 pad3`.
pub fn key(op: &str, s: &impl TuneShape) -> String {
    s.key(op)
}

/// The pass and ConvNet-3 shape a key names (the inverse of `key`); None for other strings.
pub fn parse_key(k: &str) -> Option<(String, ConvShape)> {
    ConvShape::parse_key(k)
}

/// The kernels `s`'s passes run on `gpu`: pinned ones first (a resume), else the measured picks (tuning the shape now
/// if the mode asks and it was never measured here), else the rule. Each choice is noted in `gpu.kernels.used()`.
pub fn conv_kernels(gpu: &Gpu, s: &ConvShape) -> ConvKernels {
    let mut buffers = None;
    ConvKernels { forward: pick_with(gpu, s, &mut buffers), input: pick_with(gpu, s, &mut buffers), weight: pick_with(gpu, s, &mut buffers) }
}

/// A workspace's kernels for one convolution shape: the forward's decided when the workspace is made (every
/// workspace runs it), each gradient pass's at its first use — a workspace that never runs a pass (the real images'
/// forward-only batches, the app's view network) never has it measured.
#[derive(Debug)]
pub struct Picks<F: ConvPass, I: ConvPass<Shape = F::Shape>, W: ConvPass<Shape = F::Shape>> {
    pub shape: F::Shape,
    pub forward: F,
    input: std::sync::OnceLock<I>,
    weight: std::sync::OnceLock<W>,
}

/// ConvNet-3's convolutions.
pub type ConvPicks = Picks<ConvForward, ConvBackwardInput, ConvBackwardWeight>;
/// The evaluation pool's convolutions.
pub type KConvPicks = Picks<KForward, KInput, KWeight>;

impl<F: ConvPass, I: ConvPass<Shape = F::Shape>, W: ConvPass<Shape = F::Shape>> Picks<F, I, W> {
    pub fn new(gpu: &Gpu, s: &F::Shape) -> Self {
        Picks { shape: *s, forward: pick(gpu, s), input: Default::default(), weight: Default::default() }
    }

    /// The input gradient's kernel (decided now if this is its first use).
    pub fn input(&self, gpu: &Gpu) -> I {
        *self.input.get_or_init(|| pick(gpu, &self.shape))
    }

    /// The weight gradient's kernel (decided now if this is its first use).
    pub fn weight(&self, gpu: &Gpu) -> W {
        *self.weight.get_or_init(|| pick(gpu, &self.shape))
    }
}

/// The kernel pass `K` runs on `s` (see `conv_kernels`).
pub fn pick<K: ConvPass>(gpu: &Gpu, s: &K::Shape) -> K {
    pick_with(gpu, s, &mut None)
}

fn pick_with<K: ConvPass>(gpu: &Gpu, s: &K::Shape, buffers: &mut Option<ConvBuffers>) -> K {
    let key = s.key(K::OP);
    let by_name = |name: &str| K::available(s).into_iter().find(|k| k.name() == name);
    let chosen = if let Some(name) = gpu.kernels.pinned(&key) {
        by_name(&name).unwrap_or_else(|| {
            let rule = K::rule(gpu, s);
            eprintln!("warning: {key}: the recorded kernel '{name}' is not one this build has; running {} (results may differ from the recorded run's)", rule.name());
            rule
        })
    } else if gpu.kernels.mode() == Autotune::Off {
        K::rule(gpu, s)
    } else {
        match gpu.kernels.tuned(&key).and_then(|t| by_name(&t.kernel)) {
            Some(k) => k,
            // this process has measured enough: the rule now, the shape measured by a later run (`refresh` asks for
            // every shape now, whatever it costs: a budget would re-time the same first shapes on every run)
            #[cfg(not(target_arch = "wasm32"))]
            None if gpu.kernels.mode() == Autotune::On && gpu.kernels.spent() >= gpu.kernels.budget() => {
                gpu.kernels.note_deferred(&key);
                K::rule(gpu, s)
            }
            #[cfg(not(target_arch = "wasm32"))]
            None => match timed(gpu, || pollster::block_on(tune::<K>(gpu, s, buffers))) {
                Ok((k, t)) => {
                    gpu.kernels.store(&key, t, &gpu.describe());
                    k
                }
                Err(e) => {
                    let rule = K::rule(gpu, s);
                    eprintln!("warning: {key}: autotuning failed ({e}); running {}", rule.name());
                    rule
                }
            },
            // a browser cannot wait for the GPU here: the shape is measured by `tune_pending`, which its caller
            // awaits before making the networks again; until then the rule runs
            #[cfg(target_arch = "wasm32")]
            None => {
                let _ = buffers;
                gpu.kernels.note_pending(&key);
                K::rule(gpu, s)
            }
        }
    };
    gpu.kernels.note_used(&key, chosen.name());
    chosen
}

/// `f()`, its wall time added to what `gpu.kernels` has spent tuning.
#[cfg(not(target_arch = "wasm32"))]
fn timed<T>(gpu: &Gpu, f: impl FnOnce() -> T) -> T {
    let start = Clock::start();
    let out = f();
    gpu.kernels.note_spent(start.seconds());
    out
}

/// Measure every (pass, shape) that `conv_kernels` noted as pending — in a browser, where workspaces cannot wait
/// for the GPU while they are made — and remember the picks; returns how many were measured (0: nothing to do, and
/// natively always 0). The caller makes its networks again afterwards so that they run the picks.
pub async fn tune_pending(gpu: &Gpu) -> Result<usize, GpuError> {
    let pending = gpu.kernels.take_pending();
    let start = Clock::start();
    let mut measured = 0;
    for key in pending {
        // the pass the key names, of the six
        let t = if let Some(t) = tune_key::<ConvForward>(gpu, &key).await? {
            t
        } else if let Some(t) = tune_key::<ConvBackwardInput>(gpu, &key).await? {
            t
        } else if let Some(t) = tune_key::<ConvBackwardWeight>(gpu, &key).await? {
            t
        } else if let Some(t) = tune_key::<KForward>(gpu, &key).await? {
            t
        } else if let Some(t) = tune_key::<KInput>(gpu, &key).await? {
            t
        } else if let Some(t) = tune_key::<KWeight>(gpu, &key).await? {
            t
        } else {
            continue;
        };
        log::info!("autotune {key}: {} {:.3} ms ({} candidates, {} skipped; {:.1} s so far)", t.kernel, t.ms, t.candidates.len(), t.skipped.len(),
            start.seconds());
        gpu.kernels.store(&key, t, &gpu.describe());
        measured += 1;
    }
    gpu.kernels.note_spent(start.seconds());
    Ok(measured)
}

/// The hand-made rule's kernel for the pass and shape a table key names; None for a key no pass has.
pub fn rule_name(gpu: &Gpu, key: &str) -> Option<&'static str> {
    fn rule_of<K: ConvPass>(gpu: &Gpu, key: &str) -> Option<&'static str> {
        K::Shape::parse_key(key).filter(|(op, _)| op == K::OP).map(|(_, s)| K::rule(gpu, &s).name())
    }
    rule_of::<ConvForward>(gpu, key)
        .or_else(|| rule_of::<ConvBackwardInput>(gpu, key))
        .or_else(|| rule_of::<ConvBackwardWeight>(gpu, key))
        .or_else(|| rule_of::<KForward>(gpu, key))
        .or_else(|| rule_of::<KInput>(gpu, key))
        .or_else(|| rule_of::<KWeight>(gpu, key))
}

/// `tune` for the pass and shape `key` names, if it names pass `K`.
async fn tune_key<K: ConvPass>(gpu: &Gpu, key: &str) -> Result<Option<Tuned>, GpuError> {
    match K::Shape::parse_key(key) {
        Some((op, s)) if op == K::OP => Ok(Some(tune::<K>(gpu, &s, &mut None).await?.1)),
        _ => Ok(None),
    }
}

/// Time the candidates of pass `K` on `s` and return the pick with the measurements. The candidates run in rounds,
/// each candidate once per round (the rule's kernel first, then the other register-blocked kernels, then the GEMM
/// tilings), so that whatever else disturbs the device (a CPU adapter shares its cores) falls on all of them alike;
/// the first round warms up and is not counted. A candidate whose fastest run is `HOPELESS` × the best one's drops out;
/// once `BUDGET_S` seconds have gone on this pass and shape no new round starts, and candidates not run by then are
/// listed as skipped. A candidate's time is its fastest counted run (the least disturbed). The pick is the fastest of
/// the rule's kernel and the candidates that beat it by `MARGIN` in every paired round (`beats`).
pub async fn tune<K: ConvPass>(gpu: &Gpu, s: &K::Shape, buffers: &mut Option<ConvBuffers>) -> Result<(K, Tuned), GpuError> {
    if buffers.is_none() {
        *buffers = Some(s.buffers(gpu)?);
    }
    let b = buffers.as_ref().unwrap();
    let flush = [gpu.zeros("tune-flush", FLUSH_BYTES / 4)?, gpu.zeros("tune-flush", FLUSH_BYTES / 4)?];
    let profiler = gpu.profiler(64);
    let timing = if profiler.is_some() { "gpu timestamps" } else { "wall clock" };
    let rule = K::rule(gpu, s);
    let mut order = vec![rule];
    order.extend(K::available(s).into_iter().filter(|&k| k != rule && k.barred(gpu).is_none()));
    let clock = Clock::start();
    // per candidate: its runs (the warm-up first), and whether it is still in
    let mut runs: Vec<Vec<f64>> = vec![vec![]; order.len()];
    let mut alive = vec![true; order.len()];
    // a candidate's time so far: its fastest counted run, or its warm-up while it has no other
    let so_far = |r: &[f64]| fastest(r, r.len() > 1);
    for round in 0..=RUNS {
        for (i, &k) in order.iter().enumerate() {
            if !alive[i] || (i > 0 && clock.seconds() > BUDGET_S && (round > 0 || runs[i].is_empty())) {
                continue;
            }
            if round == 0 {
                k.encode(gpu, &mut gpu.encoder(), s, b); // compiles the pipelines; never submitted
            }
            runs[i].push(time_run(gpu, profiler.as_ref(), &|enc| k.encode(gpu, enc, s, b), &flush, &b.b).await?);
            let best = runs.iter().filter_map(|r| so_far(r)).fold(f64::INFINITY, f64::min);
            if so_far(&runs[i]).is_some_and(|t| t > HOPELESS * best) {
                alive[i] = false;
            }
        }
        if clock.seconds() > BUDGET_S {
            break;
        }
    }
    let mut candidates = std::collections::BTreeMap::new();
    let mut skipped = vec![];
    for (k, r) in order.iter().zip(&runs) {
        match so_far(r) {
            Some(t) => {
                candidates.insert(k.name().to_string(), t);
            }
            None => skipped.push(k.name().to_string()),
        }
    }
    let i = choose(&runs);
    let (pick, ms) = (order[i], candidates[order[i].name()]);
    Ok((pick, Tuned { kernel: pick.name().to_string(), ms, timing: timing.to_string(), candidates, skipped }))
}

/// Which candidate to keep, given each one's runs (the warm-up first; the rule's kernel is candidate 0): the fastest
/// (by its fastest counted run) of the rule's kernel and the candidates that `beats` it.
pub fn choose(runs: &[Vec<f64>]) -> usize {
    let time = |i: usize| fastest(&runs[i], runs[i].len() > 1);
    let rule_ms = time(0).unwrap_or(f64::INFINITY);
    let mut pick = 0;
    for i in 1..runs.len() {
        if let Some(t) = time(i).filter(|&t| t <= MARGIN * rule_ms && beats(&runs[i], &runs[0])) {
            if t < time(pick).unwrap_or(f64::INFINITY) {
                pick = i;
            }
        }
    }
    pick
}

/// Whether runs `a` beat the rule's runs `rule` by `MARGIN` in every counted round both ran (a candidate's runs are
/// consecutive rounds from the first), and there were at least `PAIRED` such rounds. Rounds are compared pairwise
/// because whatever disturbs the device (a CPU adapter shares its cores) moves both runs of a round together: on
/// lavapipe the fastest runs of kernels within ±10 % of each other swapped order from one tuning to the next.
fn beats(a: &[f64], rule: &[f64]) -> bool {
    let pairs: Vec<(f64, f64)> = a.iter().zip(rule).skip(1).map(|(&x, &y)| (x, y)).collect();
    pairs.len() >= PAIRED && pairs.iter().all(|&(x, y)| x <= MARGIN * y)
}

/// The fastest of a candidate's runs, without the warm-up (the first) when `counted_only`; None when there is none.
fn fastest(runs: &[f64], counted_only: bool) -> Option<f64> {
    let r = if counted_only { runs.get(1..).unwrap_or(&[]) } else { runs };
    r.iter().cloned().reduce(f64::min)
}

/// Wall seconds since it started: `Instant` natively, the page's `performance.now()` in a browser.
struct Clock(f64);

impl Clock {
    fn now_ms() -> f64 {
        #[cfg(not(target_arch = "wasm32"))]
        {
            static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
            EPOCH.get_or_init(Instant::now).elapsed().as_secs_f64() * 1e3
        }
        #[cfg(target_arch = "wasm32")]
        web_sys::window().and_then(|w| w.performance()).map_or(0.0, |p| p.now())
    }

    fn start() -> Clock {
        Clock(Self::now_ms())
    }

    fn seconds(&self) -> f64 {
        (Self::now_ms() - self.0) / 1e3
    }
}

/// Milliseconds of one run of `encode`: GPU timestamps summed over its dispatches where there is a profiler (native),
/// else wall clock around submit and the GPU's completion — natively `submit_wait`, in a browser the read-back of
/// one float of `probe`, which completes after the run (the read-back's own cost is in every candidate's time alike).
/// The caches are emptied before (a copy between the two `flush` buffers).
async fn time_run(gpu: &Gpu, profiler: Option<&std::sync::Arc<crate::gpu::KernelProfiler>>, encode: &dyn Fn(&mut CommandEncoder),
    flush: &[Buffer; 2], probe: &Buffer) -> Result<f64, GpuError> {
    // empty the caches first (`FLUSH_BYTES`), and wait for it: the timed run starts cold
    let mut f = gpu.encoder();
    f.copy_buffer_to_buffer(&flush[0], 0, &flush[1], 0, FLUSH_BYTES as u64);
    #[cfg(not(target_arch = "wasm32"))]
    gpu.submit_wait(f);
    #[cfg(target_arch = "wasm32")]
    {
        gpu.submit(f);
        gpu.read_many_async(&[(probe, 1)]).await?;
    }
    let mut enc = gpu.encoder();
    let start = Clock::start();
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = probe;
        match profiler {
            Some(p) => {
                {
                    let _scope = p.activate();
                    encode(&mut enc);
                }
                gpu.submit_wait(enc);
                Ok(gpu.read_profile(p)?.iter().map(|(_, ms)| ms).sum())
            }
            None => {
                encode(&mut enc);
                gpu.submit_wait(enc);
                Ok(start.seconds() * 1e3)
            }
        }
    }
    #[cfg(target_arch = "wasm32")]
    {
        let _ = profiler;
        encode(&mut enc);
        gpu.submit(enc);
        gpu.read_many_async(&[(probe, 1)]).await?;
        Ok(start.seconds() * 1e3)
    }
}

