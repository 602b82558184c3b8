//! nn::tune: which kernel runs each convolution pass of a shape — measured on the user's device (the autotuner),
//! pinned by a resumed run, or the hand-made rule (`ops::*::of`) — decided once per shape when a network's workspace
//! is made (`conv_kernels`).
//!
//! The autotuner times every candidate that can run the shape (the register-blocked kernels and the implicit GEMMs'
//! tilings), on scratch buffers of that shape: one warm-up run (it compiles the pipelines), then the median of
//! `RUNS` runs, by GPU timestamps where the device has them, else wall clock around submit-and-wait. A candidate whose
//! fastest run is `HOPELESS` × the best median so far is stopped early. The fastest is kept in the table file of this
//! adapter and build (`gpu::autotune_file`), so the cost is paid once per shape and device.

#[cfg(not(target_arch = "wasm32"))]
use std::time::Instant;

use wgpu::{Buffer, CommandEncoder};

use crate::gpu::{Autotune, Gpu, GpuError, Tuned};
use crate::nn::ops::{self, ConvBackwardInput, ConvBackwardWeight, ConvForward};
use crate::shapes::ConvShape;

/// Timed runs per candidate (after one warm-up).
pub const RUNS: usize = 5;
/// A candidate whose fastest run takes this many times the best median so far is not run again.
pub const HOPELESS: f64 = 3.0;

/// The kernels of one convolution shape's three passes, fixed when a workspace is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvKernels {
    pub forward: ConvForward,
    pub input: ConvBackwardInput,
    pub weight: ConvBackwardWeight,
}

/// The buffers a convolution pass reads and writes, sized for one shape (the tuner's scratch).
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
}

impl ConvBuffers {
    /// Buffers for `s` holding small deterministic values (timing does not depend on them, but NaNs could).
    pub fn new(gpu: &Gpu, s: &ConvShape) -> Result<ConvBuffers, GpuError> {
        let fill = |len: usize, k: usize| -> Vec<f32> { (0..len).map(|i| (((i * 37 + k * 11) % 97) as f32 - 48.0) / 97.0).collect() };
        Ok(ConvBuffers {
            x: gpu.upload("tune-x", &fill(s.x_len(), 1))?,
            w: gpu.upload("tune-w", &fill(s.w_len(), 2))?,
            b: gpu.upload("tune-b", &fill(s.cout, 3))?,
            y: gpu.zeros("tune-y", s.y_len())?,
            dy: gpu.upload("tune-dy", &fill(s.y_len(), 4))?,
            dx: gpu.zeros("tune-dx", s.x_len())?,
            dw: gpu.zeros("tune-dw", s.w_len())?,
            scratch: gpu.zeros("tune-scratch", ops::conv_weight_scratch_len_any(s).max(s.w_len()))?,
        })
    }
}

/// One convolution pass whose kernel can be chosen.
pub trait ConvPass: Copy + PartialEq + std::fmt::Debug {
    /// The pass's name in keys and tables.
    const OP: &'static str;
    fn available(s: &ConvShape) -> Vec<Self>;
    /// The hand-made choice.
    fn rule(gpu: &Gpu, s: &ConvShape) -> Self;
    fn name(self) -> &'static str;
    /// Record this pass on `b`.
    fn encode(self, gpu: &Gpu, enc: &mut CommandEncoder, s: &ConvShape, b: &ConvBuffers);
}

impl ConvPass for ConvForward {
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
    fn encode(self, gpu: &Gpu, enc: &mut CommandEncoder, s: &ConvShape, b: &ConvBuffers) {
        ops::conv_forward_with(gpu, enc, self, s, &b.x, &b.w, &b.b, &b.y, &b.scratch)
    }
}

impl ConvPass for ConvBackwardInput {
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
}

/// The table key of pass `op` on shape `s`, e.g. `conv_forward n64 1x28x28>128 pad3`.
pub fn key(op: &str, s: &ConvShape) -> String {
    format!("{op} n{} {}x{}x{}>{} pad{}", s.n, s.cin, s.h, s.w, s.cout, s.pad)
}

/// The pass and shape a key names (the inverse of `key`); None for other strings.
pub fn parse_key(k: &str) -> Option<(String, ConvShape)> {
    let mut it = k.split(' ');
    let op = it.next()?.to_string();
    let n = it.next()?.strip_prefix('n')?.parse().ok()?;
    let (input, cout) = it.next()?.split_once('>')?;
    let dims: Vec<usize> = input.split('x').map(str::parse).collect::<Result<_, _>>().ok()?;
    let pad = it.next()?.strip_prefix("pad")?.parse().ok()?;
    let [cin, h, w] = dims[..] else { return None };
    Some((op, ConvShape { n, cin, cout: cout.parse().ok()?, h, w, pad }))
}

/// The kernels `s`'s passes run on `gpu`: pinned ones first (a resume), else the measured picks (tuning the shape now
/// if the mode asks and it was never measured here), else the rule. Each choice is noted in `gpu.kernels.used()`.
pub fn conv_kernels(gpu: &Gpu, s: &ConvShape) -> ConvKernels {
    let mut buffers = None;
    ConvKernels { forward: pick(gpu, s, &mut buffers), input: pick(gpu, s, &mut buffers), weight: pick(gpu, s, &mut buffers) }
}

fn pick<K: ConvPass>(gpu: &Gpu, s: &ConvShape, buffers: &mut Option<ConvBuffers>) -> K {
    let key = key(K::OP, s);
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
            None => match timed(gpu, || tune::<K>(gpu, s, buffers)) {
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
        }
    };
    gpu.kernels.note_used(&key, chosen.name());
    chosen
}

/// `f()`, its wall time added to what `gpu.kernels` has spent tuning.
fn timed<T>(gpu: &Gpu, f: impl FnOnce() -> T) -> T {
    #[cfg(not(target_arch = "wasm32"))]
    let start = Instant::now();
    let out = f();
    #[cfg(not(target_arch = "wasm32"))]
    gpu.kernels.note_spent(start.elapsed().as_secs_f64());
    #[cfg(target_arch = "wasm32")]
    let _ = gpu;
    out
}

/// Time every candidate of pass `K` on `s` and return the fastest with the measurements.
pub fn tune<K: ConvPass>(gpu: &Gpu, s: &ConvShape, buffers: &mut Option<ConvBuffers>) -> Result<(K, Tuned), GpuError> {
    if buffers.is_none() {
        *buffers = Some(ConvBuffers::new(gpu, s)?);
    }
    let b = buffers.as_ref().unwrap();
    let profiler = gpu.profiler(64);
    let timing = if profiler.is_some() { "gpu timestamps" } else { "wall clock" };
    let mut best: Option<(K, f64)> = None;
    let mut candidates = std::collections::BTreeMap::new();
    for k in K::available(s) {
        let ms = time_candidate(gpu, profiler.as_ref(), best.map(|(_, t)| t), &|enc| k.encode(gpu, enc, s, b))?;
        candidates.insert(k.name().to_string(), ms);
        if best.is_none_or(|(_, t)| ms < t) {
            best = Some((k, ms));
        }
    }
    let (k, ms) = best.expect("every shape has a candidate");
    Ok((k, Tuned { kernel: k.name().to_string(), ms, timing: timing.to_string(), candidates }))
}

/// Median milliseconds of `RUNS` runs of `encode` after a warm-up; the fastest run so far once it is `HOPELESS` ×
/// `best`.
#[cfg(not(target_arch = "wasm32"))]
fn time_candidate(gpu: &Gpu, profiler: Option<&std::sync::Arc<crate::gpu::KernelProfiler>>, best: Option<f64>,
    encode: &dyn Fn(&mut CommandEncoder)) -> Result<f64, GpuError> {
    let run = || -> Result<f64, GpuError> {
        let mut enc = gpu.encoder();
        let start = Instant::now();
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
                Ok(start.elapsed().as_secs_f64() * 1e3)
            }
        }
    };
    run()?; // warm-up: compiles the pipelines
    let mut times = vec![];
    for _ in 0..RUNS {
        times.push(run()?);
        let fastest = times.iter().cloned().fold(f64::INFINITY, f64::min);
        if best.is_some_and(|b| fastest > HOPELESS * b) {
            return Ok(fastest);
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// The browser cannot block on a read-back, and its `Gpu` keeps `Autotune::Off` (`Gpu::from_device`), so nothing
/// calls this there.
#[cfg(target_arch = "wasm32")]
fn time_candidate(_: &Gpu, _: Option<&std::sync::Arc<crate::gpu::KernelProfiler>>, _: Option<f64>, _: &dyn Fn(&mut CommandEncoder))
    -> Result<f64, GpuError> {
    unreachable!("the browser's Gpu keeps Autotune::Off")
}
