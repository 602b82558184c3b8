//! bench: timings of the GPU engine. Speed targets are checked here, never in tests.
//!
//! Today: ConvNet-3 `embed` forward, and forward + backward to the input (what distribution matching
//! runs on the synthetic images), at a given batch on 28×28×1 and 32×32×3. GPU time is wall time of
//! encode + submit + wait, median over the runs after warm-up.

use std::time::Instant;

use serde::Serialize;

use crate::data::{Dataset, Split};
use crate::distill::{DistillConfig, Distiller, Method};
use crate::gpu::{Counters, Gpu, GpuError};
use crate::nn::convnet::{ConvNetConfig, ConvNetParams, GpuConvNet, Upstream};

#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub batch: usize,
    pub width: usize,
    pub runs: usize,
    pub warmup: usize,
    pub seed: u64,
    /// (channels, image side) pairs.
    pub shapes: Vec<(usize, usize)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Timing {
    pub shape: String,
    pub pass: String,
    pub batch: usize,
    pub width: usize,
    pub median_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub runs: usize,
    pub images_per_s: f64,
    /// Counted as 2 FLOP per multiply-accumulate of the convolutions.
    pub gflop: f64,
    pub gflops: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub adapter: String,
    pub backend: String,
    pub device_type: String,
    pub seed: u64,
    pub timings: Vec<Timing>,
    pub pipelines: usize,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 { v[m] } else { 0.5 * (v[m - 1] + v[m]) }
}

/// Time `f` (which must submit and wait) `warmup + runs` times; returns the timed runs in ms.
fn time_runs(warmup: usize, runs: usize, progress: &indicatif::ProgressBar, mut f: impl FnMut()) -> Vec<f64> {
    let mut ms = Vec::with_capacity(runs);
    for i in 0..warmup + runs {
        let t = Instant::now();
        f();
        if i >= warmup {
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        progress.inc(1);
    }
    ms
}

pub fn run(gpu: &Gpu, opts: &BenchOptions, progress: &indicatif::ProgressBar) -> Result<BenchReport, GpuError> {
    let mut timings = vec![];
    progress.set_length((opts.shapes.len() * 2 * (opts.warmup + opts.runs)) as u64);
    for &(channels, image) in &opts.shapes {
        let cfg = ConvNetConfig::new(channels, image, opts.width, 10).expect("bench shapes are valid");
        let params = ConvNetParams::init(&cfg, &mut crate::rng::stream(opts.seed, "bench"));
        let net = GpuConvNet::new(gpu, &params)?;
        let n = opts.batch;
        let ws = net.workspace(gpu, n)?;
        let x: Vec<f32> = (0..cfg.input_len(n)).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
        gpu.write(&ws.x, &x);
        gpu.write(&ws.d_embed, &vec![1e-3f32; n * cfg.embed_dim()]);
        let shape = format!("{channels}x{image}x{image}");

        let passes: [(&str, bool, u64); 2] = [
            ("embed forward", false, cfg.embed_macs(n)),
            ("forward + backward to input", true, cfg.embed_macs(n) + cfg.input_grad_macs(n)),
        ];
        for (pass, backward, macs) in passes {
            progress.set_message(format!("{shape} {pass}"));
            let mut ms = time_runs(opts.warmup, opts.runs, progress, || {
                let mut enc = gpu.encoder();
                net.forward(gpu, &mut enc, &ws, false);
                if backward {
                    net.backward(gpu, &mut enc, &ws, Upstream::Embed, true, None);
                }
                gpu.submit_wait(enc);
            });
            let (min, max) = (ms.iter().cloned().fold(f64::MAX, f64::min), ms.iter().cloned().fold(0.0, f64::max));
            let med = median(&mut ms);
            let gflop = 2.0 * macs as f64 / 1e9;
            timings.push(Timing {
                shape: shape.clone(),
                pass: pass.to_string(),
                batch: n,
                width: opts.width,
                median_ms: med,
                min_ms: min,
                max_ms: max,
                runs: opts.runs,
                images_per_s: n as f64 / (med / 1e3),
                gflop,
                gflops: gflop / (med / 1e3),
            });
        }
    }
    Ok(BenchReport {
        adapter: gpu.info.name.clone(),
        backend: format!("{:?}", gpu.info.backend),
        device_type: format!("{:?}", gpu.info.device_type),
        seed: opts.seed,
        timings,
        pipelines: gpu.pipeline_count(),
    })
}

/// One kernel's timing in `profile`.
#[derive(Clone, Debug, Serialize)]
pub struct KernelTiming {
    pub kernel: String,
    pub ms: f64,
    /// 2 × MACs for convolutions and linear layers, 0 for memory-bound kernels
    pub gflops: f64,
}

/// Time every kernel of ConvNet-3 training on its own (median of `runs`, one submit each) for a batch of
/// `n` images of (channels, image) at `width`: where does an iteration's time go?
pub fn profile(gpu: &Gpu, channels: usize, image: usize, width: usize, n: usize, runs: usize) -> Result<Vec<KernelTiming>, GpuError> {
    use crate::nn::ops;
    use crate::shapes::{NormShape, PoolShape};
    let cfg = ConvNetConfig::new(channels, image, width, 10).expect("valid shape");
    let mut out = vec![];
    let mut time = |name: String, macs: u64, f: &dyn Fn(&mut wgpu::CommandEncoder)| {
        let mut ms = vec![];
        for i in 0..runs + 1 {
            let t = Instant::now();
            let mut enc = gpu.encoder();
            f(&mut enc);
            gpu.submit_wait(enc);
            if i > 0 {
                ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        let m = median(&mut ms);
        out.push(KernelTiming { kernel: name, ms: m, gflops: 2.0 * macs as f64 / 1e9 / (m / 1e3) });
    };
    for (b, s) in cfg.conv_shapes(n).iter().enumerate() {
        let x = gpu.zeros("x", s.x_len())?;
        let w = gpu.zeros("w", s.w_len())?;
        let bias = gpu.zeros("b", s.cout)?;
        let y = gpu.zeros("y", s.y_len())?;
        let dx = gpu.zeros("dx", s.x_len())?;
        let dw = gpu.zeros("dw", s.w_len())?;
        let scratch = gpu.zeros("scratch", ops::conv_weight_scratch_len(s))?;
        time(format!("conv{b} forward {}→{} {}x{}", s.cin, s.cout, s.h, s.w), s.macs(), &|e| ops::conv_forward(gpu, e, s, &x, &w, &bias, &y));
        time(format!("conv{b} backward_input"), s.macs(), &|e| ops::conv_backward_input(gpu, e, s, &y, &w, &dx));
        time(format!("conv{b} backward_weight"), s.macs(), &|e| ops::conv_backward_weight(gpu, e, s, &x, &y, &dw, &scratch));
        let ns = NormShape { n, c: s.cout, hw: s.ho() * s.wo() };
        let st = gpu.zeros("stats", 2 * ns.planes())?;
        let part = gpu.zeros("partial", 2 * ns.planes())?;
        let g = gpu.zeros("g", s.cout)?;
        let y2 = gpu.zeros("y2", s.y_len())?;
        time(format!("norm{b} forward"), 0, &|e| ops::norm_forward(gpu, e, &ns, &y, &g, &g, &y2, &st));
        time(format!("norm{b} backward"), 0, &|e| ops::norm_backward(gpu, e, &ns, &y, &g, &st, &y2, &dx, &part));
        time(format!("relu{b} forward"), 0, &|e| ops::relu_forward(gpu, e, s.y_len(), &y, &y2));
        let ps = PoolShape { planes: n * s.cout, h: s.ho(), w: s.wo() };
        time(format!("pool{b} forward"), 0, &|e| ops::pool_forward(gpu, e, &ps, &y, &y2));
    }
    Ok(out)
}

/// One distillation iteration, timed, with what it asks of wgpu.
#[derive(Clone, Debug, Serialize)]
pub struct IterationBench {
    pub shape: String,
    pub method: String,
    pub ipc: usize,
    pub batch_real: usize,
    pub width: usize,
    pub runs: usize,
    pub median_ms: f64,
    pub min_ms: f64,
    /// convolution work of one iteration (real forward, synthetic forward and backward to the input), 2 FLOP per MAC
    pub gflop: f64,
    pub gflops: f64,
    /// counts for one iteration after warm-up (no loss read-back: the loop reads it only when it logs)
    pub per_iteration: Counters,
}

/// A generated 10-class dataset of random pixels, enough images per class for `batch_real` and `ipc`.
pub fn random_dataset(channels: usize, side: usize, per_class: usize, seed: u64) -> Dataset {
    use rand::RngExt;
    let mut r = crate::rng::stream(seed, "bench-data");
    let classes = 10;
    let n = classes * per_class;
    let split = |r: &mut rand_chacha::ChaCha8Rng, n: usize| Split {
        images: (0..n * channels * side * side).map(|_| r.random::<u8>()).collect(),
        labels: (0..n).map(|i| (i % classes) as u32).collect(),
    };
    Dataset {
        name: "random".into(),
        known: None,
        classes: (0..classes).map(|c| format!("class{c}")).collect(),
        channels,
        height: side,
        width: side,
        mean: vec![0.5; channels],
        std: vec![0.29; channels],
        train: split(&mut r, n),
        test: split(&mut r, classes),
        source: "generated".into(),
    }
}

/// Time `runs` distillation iterations (after `warmup`) on generated data of the given shape.
#[allow(clippy::too_many_arguments)]
pub fn distill_iteration(
    gpu: &Gpu,
    channels: usize,
    side: usize,
    method: Method,
    ipc: usize,
    batch_real: usize,
    width: usize,
    runs: usize,
    warmup: usize,
    seed: u64,
    progress: &indicatif::ProgressBar,
) -> Result<IterationBench, anyhow::Error> {
    let ds = random_dataset(channels, side, batch_real.max(ipc), seed);
    let cfg = DistillConfig { method, ipc, batch_real, width, seed, iterations: warmup + runs, ..Default::default() };
    let mut d = Distiller::new(gpu, &ds, cfg)?;
    for _ in 0..warmup {
        d.step(&ds)?;
        progress.inc(1);
    }
    let before = gpu.counters();
    let mut ms = vec![];
    for _ in 0..runs {
        let t = Instant::now();
        d.step(&ds)?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        progress.inc(1);
    }
    let per_iteration = (gpu.counters() - before).per(runs as u64);
    let net = ConvNetConfig::new(channels, side, width, 10)?;
    let m = 10 * ipc;
    let macs = net.embed_macs(10 * d.per_real) + net.embed_macs(m) + net.input_grad_macs(m);
    let min = ms.iter().cloned().fold(f64::MAX, f64::min);
    let med = median(&mut ms);
    let gflop = 2.0 * macs as f64 / 1e9;
    Ok(IterationBench {
        shape: format!("{channels}x{side}x{side}"),
        method: method.name().to_string(),
        ipc,
        batch_real,
        width,
        runs,
        median_ms: med,
        min_ms: min,
        gflop,
        gflops: gflop / (med / 1e3),
        per_iteration,
    })
}
