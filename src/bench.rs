//! bench: timings of the GPU engine. Speed targets are checked here, never in tests.
//!
//! Today: ConvNet-3 `embed` forward, and forward + backward to the input (what distribution matching
//! runs on the synthetic images), at a given batch on 28×28×1 and 32×32×3. GPU time is wall time of
//! encode + submit + wait, median over the runs after warm-up.

use std::time::Instant;

use serde::Serialize;

use crate::gpu::{Gpu, GpuError};
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
