//! bench: timings of the GPU engine — the matmul peak, each convolution kernel against it, distillation iterations
//! (every method), evaluation epochs and test passes (ConvNet-3 and the cross-architecture pool), whole-network
//! passes, and an iteration or an epoch kernel by kernel (GPU timestamps); per-iteration counts and GPU memory; the
//! report as text and JSON. Speed targets are checked here, never in tests. GPU time is wall time of encode + submit
//! + wait, median over the runs after warm-up, unless timestamps are named.

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

fn min_of(v: &[f64]) -> f64 {
    v.iter().cloned().fold(f64::MAX, f64::min)
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
    progress.inc_length((opts.shapes.len() * 2 * (opts.warmup + opts.runs)) as u64);
    for &(channels, image) in &opts.shapes {
        let cfg = ConvNetConfig::square(channels, image, opts.width, 10).expect("bench shapes are valid");
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
            let (min, max) = (min_of(&ms), ms.iter().cloned().fold(0.0, f64::max));
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

/// Zeroed operands of every kernel of one convolution (the kernels' speed does not depend on the values).
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
    let cfg = ConvNetConfig::square(channels, image, width, 10).expect("valid shape");
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
        let crate::nn::tune::ConvBuffers { x, w, b: bias, y, dx, dw, scratch, .. } = crate::nn::tune::ConvBuffers::new(gpu, s)?;
        time(format!("conv{b} forward {}→{} {}x{}", s.cin, s.cout, s.h, s.w), s.macs(), &|e| ops::conv_forward(gpu, e, s, &x, &w, &bias, &y, &scratch));
        time(format!("conv{b} backward_input"), s.macs(), &|e| ops::conv_backward_input(gpu, e, s, &y, &w, &dx, &scratch));
        time(format!("conv{b} backward_weight"), s.macs(), &|e| ops::conv_backward_weight(gpu, e, s, &x, &y, &dw, &scratch));
        let ns = NormShape { n, c: s.cout, hw: s.ho() * s.wo() };
        let st = gpu.zeros("stats", 2 * ns.planes())?;
        let part = gpu.zeros("partial", 2 * ns.planes())?;
        let g = gpu.zeros("g", s.cout)?;
        let y2 = gpu.zeros("y2", s.y_len())?;
        // every instance-norm variant the device runs (one thread per plane; one subgroup per plane)
        for k in ops::NormKernel::available(gpu) {
            let tag = match k {
                ops::NormKernel::PerThread => String::new(),
                ops::NormKernel::Subgroup(sg) => format!(" (subgroup {sg})"),
            };
            time(format!("norm{b} forward{tag}"), 0, &|e| ops::norm_forward_with(gpu, e, k, &ns, &y, &g, &g, &y2, &st));
            time(format!("norm{b} backward{tag}"), 0, &|e| ops::norm_backward_with(gpu, e, k, &ns, &y, &g, &st, &y2, &dx, &part));
            time(format!("norm{b} forward+relu+pool{tag}"), 0, &|e| {
                ops::norm_relu_pool_forward_with(gpu, e, k, &ns, s.ho(), s.wo(), &y, &g, &g, &y2, &st)
            });
        }
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
    /// GPU memory: bytes of all buffers created for this run (distiller set-up and the timed iterations;
    /// nothing is freed or created per iteration, so this is the run's peak of buffer memory)
    pub buffer_bytes: u64,
    /// wgpu's allocator after the timed iterations, device-wide (None where the backend has no report)
    pub allocated_bytes: Option<u64>,
    pub reserved_bytes: Option<u64>,
}

/// A generated 10-class dataset of random pixels, enough images per class for `batch_real` and `ipc`.
pub fn random_dataset(channels: usize, side: usize, per_class: usize, seed: u64) -> Dataset {
    random_dataset_with_test(channels, side, per_class, 1, seed)
}

/// As `random_dataset`, with `test_per_class` test images per class (the evaluation bench's test pass).
pub fn random_dataset_with_test(channels: usize, side: usize, per_class: usize, test_per_class: usize, seed: u64) -> Dataset {
    use rand::RngExt;
    let mut r = crate::rng::stream(seed, "bench-data");
    let classes = 10;
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
        train: split(&mut r, classes * per_class),
        test: split(&mut r, classes * test_per_class),
        source: "generated".into(),
        subset: None,
    }
}

/// One distillation configuration the bench times, on generated data of 10 classes.
#[derive(Clone, Copy, Debug)]
pub struct DistillCase {
    pub channels: usize,
    pub side: usize,
    pub method: Method,
    pub ipc: usize,
    pub batch_real: usize,
    pub width: usize,
}

/// One evaluation configuration the bench times: a network of the pool on a generated set of `ipc` images per class.
#[derive(Clone, Copy, Debug)]
pub struct EvalCase {
    pub arch: crate::nn::arch::Arch,
    pub channels: usize,
    pub side: usize,
    pub ipc: usize,
    pub width: usize,
    pub batch: usize,
}

/// How often a measurement runs: untimed warm-up runs (pipelines compiled, caches filled), then timed runs.
#[derive(Clone, Copy, Debug)]
pub struct Repeats {
    pub runs: usize,
    pub warmup: usize,
}

/// A distiller on generated data of the given shape (enough images per class for `batch_real`, `ipc` and IDM's
/// 256-image queue-training batches; 10 classes), after
/// `warmup` iterations (pipelines compiled, bind groups cached); `on_step` is called after each.
fn warm_distiller<'g>(gpu: &'g Gpu, case: &DistillCase, warmup: usize, seed: u64, on_step: &mut dyn FnMut()) -> Result<(Dataset, Distiller<'g>), anyhow::Error> {
    let DistillCase { channels, side, method, ipc, batch_real, width } = *case;
    let mut cfg = DistillConfig { method, ipc, batch_real, width, seed, ..Default::default() };
    let ds = random_dataset(channels, side, batch_real.max(ipc).max(cfg.idm.net_batch.div_ceil(10)), seed);
    // DANCE: one expert trained for one epoch; an iteration costs the same whatever the experts learned
    cfg.dance.experts = 1;
    cfg.dance.num_premodel = 1;
    cfg.dance.expert_epochs = 1;
    let mut d = Distiller::new(gpu, &ds, cfg)?;
    for _ in 0..warmup {
        d.step(&ds)?;
        on_step();
    }
    Ok((ds, d))
}

/// Time `runs` distillation iterations (after `warmup`) on generated data of the given shape.
pub fn distill_iteration(gpu: &Gpu, case: &DistillCase, rep: Repeats, seed: u64, progress: &indicatif::ProgressBar) -> Result<IterationBench, anyhow::Error> {
    let DistillCase { channels, side, method, ipc, batch_real, width } = *case;
    let Repeats { runs, warmup } = rep;
    let at_start = gpu.counters();
    let (ds, mut d) = warm_distiller(gpu, case, warmup, seed, &mut || progress.inc(1))?;
    let before = gpu.counters();
    let mut ms = vec![];
    for _ in 0..runs {
        let t = Instant::now();
        d.step(&ds)?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        progress.inc(1);
    }
    let per_iteration = (gpu.counters() - before).per(runs as u64);
    let buffer_bytes = (gpu.counters() - at_start).buffer_bytes_created;
    let memory = gpu.memory_in_use();
    let net = ConvNetConfig::square(channels, side, width, 10)?;
    let m = 10 * ipc;
    let macs = net.embed_macs(10 * d.per_real()) + net.embed_macs(m) + net.input_grad_macs(m);
    let min = min_of(&ms);
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
        buffer_bytes,
        allocated_bytes: memory.map(|m| m.0),
        reserved_bytes: memory.map(|m| m.1),
    })
}

// ---------------------------------------------------------------------------------------------------------
// The standard suite (issue 8): the adapter's matmul peak, each convolution kernel against it, distillation
// iterations and evaluation epochs for the standard configurations, one JSON report.

/// Which parts of the suite to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    /// dense matmul, every kernel variant: the adapter's measured peak
    Peak,
    /// every convolution kernel of ConvNet-3 on its own, as a fraction of the peak
    Kernels,
    /// whole distillation iterations
    Distill,
    /// evaluation: one training epoch on the synthetic set, and the test pass
    Eval,
    /// whole-network forward and forward + backward passes (the first bench)
    Passes,
    /// one distillation iteration per configuration, and one evaluation epoch per shape, ipc and network, with every
    /// dispatch timed on the GPU (timestamp queries)
    Breakdown,
    /// the autotuner from an empty table for each distill configuration's shapes: every candidate's time and the
    /// pick, the tuning cost, then whole iterations and evaluation epochs with the rule's kernels and the tuned ones,
    /// alternated
    Autotune,
}

impl Part {
    pub fn parse(s: &str) -> Result<Part, String> {
        match s.trim() {
            "peak" => Ok(Part::Peak),
            "kernels" => Ok(Part::Kernels),
            "distill" => Ok(Part::Distill),
            "eval" => Ok(Part::Eval),
            "passes" => Ok(Part::Passes),
            "breakdown" => Ok(Part::Breakdown),
            "autotune" => Ok(Part::Autotune),
            other => Err(format!("unknown part '{other}': use peak, kernels, distill, eval, passes, breakdown or autotune")),
        }
    }
}

impl std::str::FromStr for Part {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Part::parse(s)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct SuiteOptions {
    pub parts: Vec<Part>,
    /// (channels, side) pairs
    pub shapes: Vec<(usize, usize)>,
    pub width: usize,
    pub ipcs: Vec<usize>,
    pub batch_reals: Vec<usize>,
    pub methods: Vec<Method>,
    pub runs: usize,
    pub warmup: usize,
    pub seed: u64,
    /// side of the square matmul of the peak measurement
    pub matmul: usize,
    /// images per batch in the per-kernel timings and the whole-network passes
    pub batch: usize,
    /// training epochs timed per evaluation measurement (the papers' protocol runs 1001)
    pub eval_epochs: usize,
    pub eval_batch: usize,
    /// test images of the test-pass timing (10,000 in Fashion-MNIST and CIFAR)
    pub test_images: usize,
    /// networks the eval part trains (ConvNet-3 and the cross-architecture pool)
    pub eval_archs: Vec<crate::nn::arch::Arch>,
}

impl SuiteOptions {
    /// Every (channels, side, ipc, batch_real, method) the distill and breakdown parts run, in report order.
    pub fn distill_configs(&self) -> Vec<(usize, usize, usize, usize, Method)> {
        let mut v = vec![];
        for &(c, s) in &self.shapes {
            for &ipc in &self.ipcs {
                for &br in &self.batch_reals {
                    for &m in &self.methods {
                        v.push((c, s, ipc, br, m));
                    }
                }
            }
        }
        v
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct MatmulTiming {
    pub kernel: String,
    pub size: usize,
    pub median_ms: f64,
    pub min_ms: f64,
    pub gflops: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Peak {
    pub timings: Vec<MatmulTiming>,
    pub best_kernel: String,
    /// from the best kernel's fastest run
    pub gflops: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ConvKernelTiming {
    pub shape: String,
    pub layer: usize,
    pub pass: String,
    pub cin: usize,
    pub cout: usize,
    pub side: usize,
    pub batch: usize,
    pub median_ms: f64,
    pub min_ms: f64,
    pub gflops: f64,
    /// gflops (from the fastest run, as the peak) / the peak's gflops
    pub fraction_of_peak: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct EvalBench {
    pub arch: String,
    pub shape: String,
    pub ipc: usize,
    pub width: usize,
    pub batch: usize,
    /// synthetic images trained on per epoch (10 classes × ipc)
    pub images: usize,
    pub epochs_timed: usize,
    /// training time / passes, after one untimed warm-up pass; includes the host-side batch assembly and DSA
    /// parameters and the network's initialisation
    pub ms_per_epoch: f64,
    /// forward, weight gradients and input gradients (not conv0's), 2 FLOP per MAC
    pub gflop_per_epoch: f64,
    pub gflops: f64,
    pub test_images: usize,
    pub test_pass_ms: f64,
    pub buffer_bytes: u64,
    pub allocated_bytes: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SuiteReport {
    pub hyperdistill: String,
    pub adapter: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    /// wgpu's runtime bounds checks in the shaders (HYPERDISTILL_SHADER_BOUNDS_CHECKS=off turns them off)
    pub bounds_checks: bool,
    /// the instance-norm kernels this run used (`ops::NormKernel`: per thread, or subgroups of a size)
    pub norm_kernel: String,
    pub unix_time: u64,
    pub options: SuiteOptions,
    pub peak: Option<Peak>,
    pub kernels: Vec<ConvKernelTiming>,
    pub distill: Vec<IterationBench>,
    pub eval: Vec<EvalBench>,
    pub passes: Vec<Timing>,
    pub breakdown: Vec<IterationBreakdown>,
    /// `--parts breakdown`: one evaluation training epoch per shape, ipc and network, kernel by kernel
    pub eval_breakdown: Vec<EpochBreakdown>,
    /// `--parts autotune`: the autotuner's measurements and picks, and the rule against the picks
    pub autotune: Vec<AutotuneBench>,
}

/// `--parts autotune` for one distill configuration.
#[derive(Clone, Debug, Serialize)]
pub struct AutotuneBench {
    pub shape: String,
    pub method: String,
    pub ipc: usize,
    pub batch_real: usize,
    pub width: usize,
    /// wall seconds the autotuner spent on this configuration's shapes from an empty table (compilation included):
    /// the first run's cost on this device
    pub tuning_s: f64,
    /// every (operation, shape) measured: candidates' times and the pick
    pub picks: Vec<(String, crate::gpu::Tuned)>,
    /// what the hand-made rule runs for the same keys
    pub rule: Vec<(String, String)>,
    /// distillation iteration, ms: the rule's kernels against the picks
    pub iteration: AbTimes,
    /// evaluation training epoch (batch `eval_batch`) of each `--eval-arch` network, ms: the rule's kernels against
    /// the picks
    pub epochs: Vec<(String, AbTimes)>,
}

/// Alternated measurements of the same work with the rule's kernels and with the autotuner's picks.
#[derive(Clone, Debug, Serialize)]
pub struct AbTimes {
    pub rule_ms: f64,
    pub tuned_ms: f64,
    /// tuned_ms / rule_ms, and its 90 % bootstrap interval (the medians of 2,000 resamples of each side's runs)
    pub ratio: f64,
    pub ratio_low: f64,
    pub ratio_high: f64,
    /// every measurement behind the medians, in the order taken
    pub rule_runs: Vec<f64>,
    pub tuned_runs: Vec<f64>,
}

impl AbTimes {
    fn new(rule_runs: Vec<f64>, tuned_runs: Vec<f64>) -> AbTimes {
        use rand::RngExt;
        let (rule_ms, tuned_ms) = (median(&mut rule_runs.clone()), median(&mut tuned_runs.clone()));
        let mut rng = crate::rng::stream(0, "bench-bootstrap");
        let mut resample = |v: &[f64]| -> f64 { median(&mut (0..v.len()).map(|_| v[rng.random_range(0..v.len())]).collect::<Vec<_>>()) };
        let mut ratios: Vec<f64> = (0..2000).map(|_| resample(&tuned_runs) / resample(&rule_runs)).collect();
        ratios.sort_by(f64::total_cmp);
        AbTimes { rule_ms, tuned_ms, ratio: tuned_ms / rule_ms, ratio_low: ratios[100], ratio_high: ratios[1899], rule_runs, tuned_runs }
    }
}

/// `--parts autotune` for one configuration: tune its shapes from an empty in-memory table (the user's table file
/// is neither read nor written), then build one distiller with the rule's kernels and one with the picks and time
/// their iterations alternately, then evaluation epochs likewise. The mode and table are restored afterwards.
fn autotune_case(gpu: &Gpu, case: &DistillCase, rep: Repeats, o: &SuiteOptions, progress: &indicatif::ProgressBar)
    -> Result<AutotuneBench, anyhow::Error> {
    use crate::gpu::Autotune;
    let (mode, file, budget) = (gpu.kernels.mode(), gpu.kernels.file(), gpu.kernels.budget());
    let result = (|| -> Result<AutotuneBench, anyhow::Error> {
        gpu.kernels.set_file(None);
        gpu.kernels.set_mode(Autotune::On);
        // every shape measured now, whatever the session budget (the point is the whole first-run cost)
        gpu.kernels.set_budget(f64::INFINITY);
        let spent = gpu.kernels.spent();
        let (ds, mut tuned) = warm_distiller(gpu, case, 0, o.seed, &mut || {})?;
        let eval_cases: Vec<EvalCase> = o.eval_archs.iter()
            .map(|&arch| EvalCase { arch, channels: case.channels, side: case.side, ipc: case.ipc, width: case.width, batch: o.eval_batch })
            .collect();
        // each network's first tuned epoch measurement (its shapes tuned in that measurement's untimed warm-up)
        let first_tuned = eval_cases.iter().map(|c| Ok(eval_epoch(gpu, c, o.eval_epochs, o.test_images, o.seed)?.ms_per_epoch))
            .collect::<Result<Vec<f64>, anyhow::Error>>()?;
        let tuning_s = gpu.kernels.spent() - spent;
        progress.inc(1);
        let picks: Vec<(String, crate::gpu::Tuned)> = gpu.kernels.table().into_iter().collect();
        gpu.kernels.set_mode(Autotune::Off);
        let (_, mut rule) = warm_distiller(gpu, case, 0, o.seed, &mut || {})?;
        let rule_kernels = rule_picks(gpu, &picks);
        for _ in 0..rep.warmup {
            rule.step(&ds)?;
            tuned.step(&ds)?;
            progress.inc(2);
        }
        let (mut a, mut b) = (vec![], vec![]);
        for _ in 0..rep.runs {
            let t = Instant::now();
            rule.step(&ds)?;
            a.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            tuned.step(&ds)?;
            b.push(t.elapsed().as_secs_f64() * 1e3);
            progress.inc(2);
        }
        // evaluation epochs per network, alternated: the rule, the picks, … as many of each as iterations (the first
        // tuned measurement is the one above)
        let mut epochs = vec![];
        for (eval_case, first) in eval_cases.iter().zip(first_tuned) {
            let (mut epoch_rule, mut epoch_tuned) = (vec![], vec![first]);
            for round in 0..2 * rep.runs - 1 {
                let tuned = round % 2 == 1;
                gpu.kernels.set_mode(if tuned { Autotune::On } else { Autotune::Off });
                let ms = eval_epoch(gpu, eval_case, o.eval_epochs, o.test_images, o.seed)?.ms_per_epoch;
                if tuned { epoch_tuned.push(ms) } else { epoch_rule.push(ms) }
            }
            epochs.push((eval_case.arch.name().to_string(), AbTimes::new(epoch_rule, epoch_tuned)));
        }
        Ok(AutotuneBench {
            shape: format!("{0}x{1}x{1}", case.channels, case.side),
            method: case.method.name().to_string(),
            ipc: case.ipc,
            batch_real: case.batch_real,
            width: case.width,
            tuning_s,
            picks,
            rule: rule_kernels,
            iteration: AbTimes::new(a, b),
            epochs,
        })
    })();
    gpu.kernels.set_mode(mode);
    gpu.kernels.set_file(file);
    gpu.kernels.set_budget(budget);
    result
}

/// The rule's kernel for each measured key (the key names the pass and the shape).
fn rule_picks(gpu: &Gpu, picks: &[(String, crate::gpu::Tuned)]) -> Vec<(String, String)> {
    picks.iter().filter_map(|(k, _)| Some((k.clone(), crate::nn::tune::rule_name(gpu, k)?.to_string()))).collect()
}

/// Where one distillation iteration's GPU time goes, kernel by kernel.
#[derive(Clone, Debug, Serialize)]
pub struct IterationBreakdown {
    pub shape: String,
    pub method: String,
    pub ipc: usize,
    pub batch_real: usize,
    pub width: usize,
    /// encode + submit + wait of the profiled iteration
    pub wall_ms: f64,
    /// sum of the timed compute passes (buffer copies and host work are the difference to wall_ms)
    pub gpu_ms: f64,
    /// per kernel ("file:entry"), most expensive first
    pub kernels: Vec<KernelShare>,
}

#[derive(Clone, Debug, Serialize)]
pub struct KernelShare {
    pub kernel: String,
    pub dispatches: usize,
    pub ms: f64,
}

/// Where one evaluation training epoch's GPU time goes, kernel by kernel.
#[derive(Clone, Debug, Serialize)]
pub struct EpochBreakdown {
    pub arch: String,
    pub shape: String,
    pub ipc: usize,
    pub width: usize,
    pub batch: usize,
    /// images trained on (10 × ipc)
    pub images: usize,
    /// the profiled epoch, from creating the network and its buffers to the last batch's wait (host work included)
    pub wall_ms: f64,
    /// sum of the timed compute passes
    pub gpu_ms: f64,
    pub kernels: Vec<KernelShare>,
}

/// (kernel, ms) of each timed dispatch, summed per kernel, most expensive first.
fn kernel_shares(timed: Vec<(String, f64)>) -> Vec<KernelShare> {
    let mut by_kernel: Vec<KernelShare> = vec![];
    for (name, ms) in timed {
        match by_kernel.iter_mut().find(|k| k.kernel == name) {
            Some(k) => {
                k.dispatches += 1;
                k.ms += ms;
            }
            None => by_kernel.push(KernelShare { kernel: name, dispatches: 1, ms }),
        }
    }
    by_kernel.sort_by(|a, b| b.ms.total_cmp(&a.ms));
    by_kernel
}

/// Profile one evaluation training epoch (one pass over 10 × ipc random images, after an untimed one that compiles
/// the pipelines) with GPU timestamps; None without them.
pub fn eval_breakdown(gpu: &Gpu, case: &EvalCase, seed: u64) -> Result<Option<EpochBreakdown>, anyhow::Error> {
    let EvalCase { arch, channels, side, ipc, width, batch } = *case;
    use crate::eval::{self, EvalConfig};
    if !gpu.device.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
        return Ok(None);
    }
    let ds = random_dataset_with_test(channels, side, ipc, 1, seed);
    let all: Vec<usize> = (0..ds.train.len()).collect();
    let images = ds.normalized(&ds.train, &all);
    let cfg = EvalConfig { arch, epochs: 0, nets: 1, batch, width, ..Default::default() };
    // the untimed epoch compiles the pipelines and counts the dispatches the profiler needs room for
    let before = gpu.counters();
    eval::train(gpu, &ds, &images, &ds.train.labels, &cfg, seed, &mut |_| {})?;
    let dispatches = (gpu.counters() - before).dispatches;
    let Some(profiler) = gpu.profiler(dispatches as u32) else { return Ok(None) };
    let t = Instant::now();
    {
        let _scope = profiler.activate();
        eval::train(gpu, &ds, &images, &ds.train.labels, &cfg, seed, &mut |_| {})?;
    }
    let wall_ms = t.elapsed().as_secs_f64() * 1e3;
    let kernels = kernel_shares(gpu.read_profile(&profiler)?);
    Ok(Some(EpochBreakdown {
        arch: arch.name().into(),
        shape: format!("{channels}x{side}x{side}"),
        ipc,
        width,
        batch,
        images: ds.train.len(),
        wall_ms,
        gpu_ms: kernels.iter().map(|k| k.ms).sum(),
        kernels,
    }))
}

/// Profile one distillation iteration (after `warmup` plain ones) with GPU timestamps; None without them.
pub fn distill_breakdown(gpu: &Gpu, case: &DistillCase, warmup: usize, seed: u64) -> Result<Option<IterationBreakdown>, anyhow::Error> {
    let DistillCase { channels, side, method, ipc, batch_real, width } = *case;
    let Some(profiler) = gpu.profiler(1024) else { return Ok(None) };
    let (ds, mut d) = warm_distiller(gpu, case, warmup.max(1), seed, &mut || {})?;
    let t = Instant::now();
    {
        let _scope = profiler.activate();
        d.step(&ds)?;
    }
    let wall_ms = t.elapsed().as_secs_f64() * 1e3;
    let by_kernel = kernel_shares(gpu.read_profile(&profiler)?);
    Ok(Some(IterationBreakdown {
        shape: format!("{channels}x{side}x{side}"),
        method: method.name().into(),
        ipc,
        batch_real,
        width,
        wall_ms,
        gpu_ms: by_kernel.iter().map(|k| k.ms).sum(),
        kernels: by_kernel,
    }))
}

/// Square matmul with every kernel variant; the best fastest run is the adapter's peak for this report.
pub fn matmul_peak(gpu: &Gpu, size: usize, runs: usize, warmup: usize, seed: u64, progress: &indicatif::ProgressBar) -> Result<Peak, GpuError> {
    use crate::nn::ops::{self, MatmulKernel};
    use rand::RngExt;
    let size = size.max(64).div_ceil(64) * 64;
    let mut r = crate::rng::stream(seed, "bench-matmul");
    let a: Vec<f32> = (0..size * size).map(|_| r.random_range(-1.0f32..1.0)).collect();
    let b: Vec<f32> = (0..size * size).map(|_| r.random_range(-1.0f32..1.0)).collect();
    let (ab, bb, cb) = (gpu.upload("mm_a", &a)?, gpu.upload("mm_b", &b)?, gpu.zeros("mm_c", size * size)?);
    let gflop = 2.0 * (size as f64).powi(3) / 1e9;
    let mut timings = vec![];
    for kernel in MatmulKernel::ALL {
        progress.set_message(format!("matmul {} {size}³", kernel.name()));
        let mut ms = time_runs(warmup, runs, progress, || {
            let mut enc = gpu.encoder();
            ops::matmul(gpu, &mut enc, kernel, size, size, size, &ab, &bb, &cb);
            gpu.submit_wait(enc);
        });
        let min = min_of(&ms);
        timings.push(MatmulTiming { kernel: kernel.name().into(), size, median_ms: median(&mut ms), min_ms: min, gflops: gflop / (min / 1e3) });
    }
    let best = timings.iter().max_by(|x, y| x.gflops.total_cmp(&y.gflops)).expect("at least one kernel");
    Ok(Peak { best_kernel: best.kernel.clone(), gflops: best.gflops, timings })
}

/// Each convolution kernel of ConvNet-3 (forward, input gradient, weight gradient) on a batch of `n`.
pub fn conv_kernels(gpu: &Gpu, (channels, side): (usize, usize), width: usize, n: usize, rep: Repeats, peak: Option<f64>,
    progress: &indicatif::ProgressBar) -> Result<Vec<ConvKernelTiming>, GpuError> {
    let Repeats { runs, warmup } = rep;
    use crate::nn::ops;
    let cfg = ConvNetConfig::square(channels, side, width, 10).expect("valid shape");
    let mut out = vec![];
    for (layer, s) in cfg.conv_shapes(n).iter().enumerate() {
        let crate::nn::tune::ConvBuffers { x, w, b: bias, y, dx, dw, scratch, rowstats, .. } = crate::nn::tune::ConvBuffers::new(gpu, s)?;
        type Record<'a> = Box<dyn Fn(&mut wgpu::CommandEncoder) + 'a>;
        // every forward kernel that fits the shape (the vec4 ones include their weight transpose), then the backward ones
        let (xr, wr, br, yr, sr) = (&x, &w, &bias, &y, &scratch);
        // the GEMM tilings are named by pass too (the same tiling serves all three)
        let label = |pass: &str, name: &str| if name.starts_with("gemm_") { format!("{pass}_{name}") } else { name.to_string() };
        let mut kernels: Vec<(String, Record)> = ops::ConvForward::available(s)
            .into_iter()
            .map(|k| (label("forward", k.name()), Box::new(move |e: &mut wgpu::CommandEncoder| ops::conv_forward_with(gpu, e, k, s, xr, wr, br, yr, sr)) as Record))
            .collect();
        // the whole-row kernels once more in their variant that also writes row statistics for the norm (the
        // forward ConvNet runs on CPU adapters, ops::row_stats_fit)
        let rsr = &rowstats;
        for (k, name) in ops::ConvForward::available(s).into_iter().filter_map(|k| Some((k, k.row_stats_name()?))) {
            kernels.push((name.to_string(), Box::new(move |e: &mut wgpu::CommandEncoder| ops::conv_forward_row_stats(gpu, e, k, s, xr, wr, br, yr, sr, rsr))));
        }
        let dxr = &dx;
        for k in ops::ConvBackwardInput::available(s) {
            kernels.push((label("input", k.name()), Box::new(move |e: &mut wgpu::CommandEncoder| ops::conv_backward_input_with(gpu, e, k, s, yr, wr, dxr, sr))));
        }
        let dwr = &dw;
        for k in ops::ConvBackwardWeight::available(s) {
            kernels.push((label("weight", k.name()), Box::new(move |e: &mut wgpu::CommandEncoder| ops::conv_backward_weight_with(gpu, e, k, s, xr, yr, dwr, sr))));
        }
        for (pass, f) in kernels {
            progress.set_message(format!("conv{layer} {pass}"));
            let mut ms = time_runs(warmup, runs, progress, || {
                let mut enc = gpu.encoder();
                f(&mut enc);
                gpu.submit_wait(enc);
            });
            let min = min_of(&ms);
            let med = median(&mut ms);
            let gflop = 2.0 * s.macs() as f64 / 1e9;
            out.push(ConvKernelTiming {
                shape: format!("{channels}x{side}x{side}"),
                layer,
                pass: pass.clone(),
                cin: s.cin,
                cout: s.cout,
                side: s.h,
                batch: n,
                median_ms: med,
                min_ms: min,
                gflops: gflop / (med / 1e3),
                fraction_of_peak: peak.map(|p| gflop / (min / 1e3) / p),
            });
        }
    }
    Ok(out)
}

/// One evaluation measurement: train a fresh ConvNet-3 for `epochs` (+1, as the protocol) on 10 × ipc
/// random images, then the test pass over `test_images`; each timed on its own after an untimed warm-up.
pub fn eval_epoch(gpu: &Gpu, case: &EvalCase, epochs: usize, test_images: usize, seed: u64) -> Result<EvalBench, anyhow::Error> {
    let EvalCase { arch, channels, side, ipc, width, batch } = *case;
    use crate::eval::{self, EvalConfig};
    let ds = random_dataset_with_test(channels, side, ipc, test_images.div_ceil(10), seed);
    let all: Vec<usize> = (0..ds.train.len()).collect();
    let images = ds.normalized(&ds.train, &all);
    let cfg = EvalConfig { arch, epochs, nets: 1, batch, width, ..Default::default() };
    // warm-up: one pass compiles every training pipeline (minutes of epochs would hide it; a handful would not)
    eval::train(gpu, &ds, &images, &ds.train.labels, &EvalConfig { epochs: 0, ..cfg.clone() }, seed, &mut |_| {})?;
    let before = gpu.counters();
    let t = Instant::now();
    let net = eval::train(gpu, &ds, &images, &ds.train.labels, &cfg, seed, &mut |_| {})?;
    let train_ms = t.elapsed().as_secs_f64() * 1e3;
    let buffer_bytes = (gpu.counters() - before).buffer_bytes_created;
    let allocated = gpu.memory_in_use().map(|m| m.0);
    let net_cfg = ConvNetConfig::square(channels, side, width, 10)?;
    eval::test_accuracy(gpu, &net, &ds)?; // warm-up: pipelines are cached, buffers are not
    let t = Instant::now();
    eval::test_accuracy(gpu, &net, &ds)?;
    let test_ms = t.elapsed().as_secs_f64() * 1e3;
    let passes = epochs + 1;
    let ms_per_epoch = train_ms / passes as f64;
    let n = ds.train.len();
    let gflop = match arch {
        crate::nn::arch::Arch::ConvNet => {
            let fwd = net_cfg.embed_macs(n);
            let conv0 = net_cfg.conv_shapes(n)[0].macs();
            2.0 * (fwd + fwd + fwd - conv0) as f64 / 1e9
        }
        // forward, weight gradients, input gradients: three times the forward's multiply-adds (the first layer's
        // input gradient is not computed: an over-count under 1 % for the convolutional networks)
        _ => 2.0 * 3.0 * crate::nn::arch::Graph::new(arch, channels, side, 10, width)?.macs(n) as f64 / 1e9,
    };
    Ok(EvalBench {
        arch: arch.name().into(),
        shape: format!("{channels}x{side}x{side}"),
        ipc,
        width,
        batch,
        images: n,
        epochs_timed: passes,
        ms_per_epoch,
        gflop_per_epoch: gflop,
        gflops: if ms_per_epoch > 0.0 { gflop / (ms_per_epoch / 1e3) } else { 0.0 },
        test_images: ds.test.len(),
        test_pass_ms: test_ms,
        buffer_bytes,
        allocated_bytes: allocated,
    })
}

fn nn_kernels() -> u64 {
    crate::nn::ops::MatmulKernel::ALL.len() as u64
}

/// How many kernels `conv_kernels` times for this network: every variant of each pass that fits each layer.
fn conv_kernel_count(channels: usize, side: usize, width: usize, n: usize) -> u64 {
    use crate::nn::ops;
    let Ok(cfg) = ConvNetConfig::square(channels, side, width, 10) else { return 0 };
    cfg.conv_shapes(n)
        .iter()
        .map(|s| {
            let fwd = ops::ConvForward::available(s);
            let rows = fwd.iter().filter(|k| k.row_stats_name().is_some()).count();
            (fwd.len() + rows + ops::ConvBackwardInput::available(s).len() + ops::ConvBackwardWeight::available(s).len()) as u64
        })
        .sum()
}

/// Number of progress steps `suite` will report.
pub fn suite_steps(o: &SuiteOptions) -> u64 {
    let per = (o.runs + o.warmup) as u64;
    let mut n = 0;
    for p in &o.parts {
        n += match p {
            Part::Peak => nn_kernels() * per,
            Part::Kernels => per * o.shapes.iter().map(|&(c, side)| conv_kernel_count(c, side, o.width, o.batch)).sum::<u64>(),
            Part::Distill => per * o.distill_configs().len() as u64,
            Part::Eval => (o.shapes.len() * o.ipcs.len() * o.eval_archs.len()) as u64,
            Part::Passes => 0, // `run` adds its own steps
            Part::Breakdown => (o.distill_configs().len() + o.shapes.len() * o.ipcs.len() * o.eval_archs.len()) as u64,
            Part::Autotune => (o.distill_configs().len() * (2 * (o.runs + o.warmup) + 1)) as u64,
        };
    }
    n
}

pub fn suite(gpu: &Gpu, o: &SuiteOptions, progress: &indicatif::ProgressBar) -> Result<SuiteReport, anyhow::Error> {
    let has = |p: Part| o.parts.contains(&p);
    let rep = Repeats { runs: o.runs, warmup: o.warmup };
    let peak = if has(Part::Peak) { Some(matmul_peak(gpu, o.matmul, o.runs, o.warmup, o.seed, progress)?) } else { None };
    let mut kernels = vec![];
    if has(Part::Kernels) {
        for &(c, s) in &o.shapes {
            kernels.extend(conv_kernels(gpu, (c, s), o.width, o.batch, rep, peak.as_ref().map(|p| p.gflops), progress)?);
        }
    }
    let mut distill = vec![];
    if has(Part::Distill) {
        for (c, s, ipc, br, m) in o.distill_configs() {
            progress.set_message(format!("distill {c}x{s}x{s} {} ipc {ipc} batch_real {br}", m.name()));
            let case = DistillCase { channels: c, side: s, method: m, ipc, batch_real: br, width: o.width };
            distill.push(distill_iteration(gpu, &case, rep, o.seed, progress)?);
        }
    }
    let mut eval = vec![];
    if has(Part::Eval) {
        for &(c, s) in &o.shapes {
            for &ipc in &o.ipcs {
                for &arch in &o.eval_archs {
                    progress.set_message(format!("eval {} {c}x{s}x{s} ipc {ipc}", arch.name()));
                    let case = EvalCase { arch, channels: c, side: s, ipc, width: o.width, batch: o.eval_batch };
                    eval.push(eval_epoch(gpu, &case, o.eval_epochs, o.test_images, o.seed)?);
                    progress.inc(1);
                }
            }
        }
    }
    let mut breakdown = vec![];
    if has(Part::Breakdown) {
        for (c, s, ipc, br, m) in o.distill_configs() {
            progress.set_message(format!("breakdown {c}x{s}x{s} {} ipc {ipc} batch_real {br}", m.name()));
            let case = DistillCase { channels: c, side: s, method: m, ipc, batch_real: br, width: o.width };
            match distill_breakdown(gpu, &case, o.warmup, o.seed)? {
                Some(b) => breakdown.push(b),
                None => anyhow::bail!("this adapter has no timestamp queries: --parts breakdown cannot time kernels on it"),
            }
            progress.inc(1);
        }
    }
    let mut epochs_profiled = vec![];
    if has(Part::Breakdown) {
        for &(c, s) in &o.shapes {
            for &ipc in &o.ipcs {
                for &arch in &o.eval_archs {
                    progress.set_message(format!("breakdown eval {} {c}x{s}x{s} ipc {ipc}", arch.name()));
                    let case = EvalCase { arch, channels: c, side: s, ipc, width: o.width, batch: o.eval_batch };
                    if let Some(b) = eval_breakdown(gpu, &case, o.seed)? {
                        epochs_profiled.push(b);
                    }
                    progress.inc(1);
                }
            }
        }
    }
    let mut autotune = vec![];
    if has(Part::Autotune) {
        for (c, s, ipc, br, m) in o.distill_configs() {
            progress.set_message(format!("autotune {c}x{s}x{s} {} ipc {ipc} batch_real {br}", m.name()));
            let case = DistillCase { channels: c, side: s, method: m, ipc, batch_real: br, width: o.width };
            autotune.push(autotune_case(gpu, &case, rep, o, progress)?);
        }
    }
    let passes = if has(Part::Passes) {
        let opts = BenchOptions { batch: o.batch, width: o.width, runs: o.runs, warmup: o.warmup, seed: o.seed, shapes: o.shapes.clone() };
        run(gpu, &opts, progress)?.timings
    } else {
        vec![]
    };
    Ok(SuiteReport {
        hyperdistill: env!("CARGO_PKG_VERSION").into(),
        adapter: gpu.info.name.clone(),
        backend: format!("{:?}", gpu.info.backend),
        device_type: format!("{:?}", gpu.info.device_type),
        driver: format!("{} {}", gpu.info.driver, gpu.info.driver_info).trim().to_string(),
        bounds_checks: gpu.bounds_checks,
        norm_kernel: format!("{:?}", crate::nn::ops::NormKernel::of(gpu)),
        unix_time: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        options: o.clone(),
        peak,
        kernels,
        distill,
        eval,
        passes,
        breakdown,
        eval_breakdown: epochs_profiled,
        autotune,
    })
}

impl SuiteReport {
    /// The report as the CLI prints it: every part measured, one table each.
    pub fn text(&self, o: &SuiteOptions) -> Result<String, std::fmt::Error> {
        use std::fmt::Write;
        let (r, mut out) = (self, String::new());
        let out = &mut out;
    writeln!(out, "adapter {} ({}, {}, driver {}); hyperdistill {}; shader bounds checks {}; norm kernels {}", r.adapter, r.backend, r.device_type,
        r.driver, r.hyperdistill, if r.bounds_checks { "on" } else { "off (HYPERDISTILL_SHADER_BOUNDS_CHECKS)" }, r.norm_kernel)?;
    writeln!(out, "(GPU times are wall times of encode + submit + wait; medians of {} runs after {} warm-up; FLOP = 2 × MACs)", o.runs, o.warmup)?;
    if let Some(p) = &r.peak {
        writeln!(out, "\nmatmul peak ({0}×{0}×{0})", p.timings.first().map(|t| t.size).unwrap_or(0))?;
        for t in &p.timings {
            writeln!(out, "  {:<10} median {:>9.1} ms  min {:>9.1} ms  {:>8.2} GFLOP/s (fastest run)", t.kernel, t.median_ms, t.min_ms, t.gflops)?;
        }
        writeln!(out, "  peak {:.2} GFLOP/s ({})", p.gflops, p.best_kernel)?;
    }
    if !r.kernels.is_empty() {
        writeln!(out, "\nconvolution kernels (batch {}, width {})", o.batch, o.width)?;
        writeln!(out, "  {:<9} {:<16} {:>10} {:>6} {:>10} {:>9} {:>8}", "shape", "kernel", "cin→cout", "side", "median ms", "GFLOP/s", "of peak")?;
        for k in &r.kernels {
            writeln!(out, "  {:<9} {:<16} {:>10} {:>6} {:>10.1} {:>9.2} {:>8}", k.shape, format!("conv{} {}", k.layer, k.pass),
                format!("{}→{}", k.cin, k.cout), k.side, k.median_ms, k.gflops,
                k.fraction_of_peak.map(|f| format!("{:.0} %", 100.0 * f)).unwrap_or_else(|| "–".into()))?;
        }
    }
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    if !r.distill.is_empty() {
        writeln!(out, "\ndistillation iterations (width {}; generated data, 10 classes; counts per iteration)", o.width)?;
        writeln!(out, "  {:<9} {:<7} {:>4} {:>6} {:>10} {:>8} {:>8} {:>5} {:>5} {:>6} {:>10} {:>7} {:>6} {:>9} {:>9}",
            "shape", "method", "ipc", "b_real", "median ms", "GFLOP", "GFLOP/s", "disp", "subm", "rdback", "upload B", "buffers", "bindg",
            "buf MiB", "alloc MiB")?;
        for b in &r.distill {
            let c = &b.per_iteration;
            writeln!(out, "  {:<9} {:<7} {:>4} {:>6} {:>10.1} {:>8.2} {:>8.2} {:>5} {:>5} {:>6} {:>10} {:>7} {:>6} {:>9.1} {:>9}",
                b.shape, b.method, b.ipc, b.batch_real, b.median_ms, b.gflop, b.gflops, c.dispatches, c.submits, c.readbacks,
                c.write_bytes, c.buffers_created, c.bind_groups_created, mib(b.buffer_bytes),
                b.allocated_bytes.map(|a| format!("{:.1}", mib(a))).unwrap_or_else(|| "–".into()))?;
        }
    }
    if !r.eval.is_empty() {
        writeln!(out, "\nevaluation (width {}, batch {}; {} timed epochs each)", o.width, o.eval_batch, o.eval_epochs + 1)?;
        writeln!(out, "  {:<9} {:<9} {:>4} {:>7} {:>12} {:>9} {:>12} {:>12} {:>9}", "network", "shape", "ipc", "images", "ms/epoch", "GFLOP/s", "test images",
            "test pass ms", "buf MiB")?;
        for e in &r.eval {
            writeln!(out, "  {:<9} {:<9} {:>4} {:>7} {:>12.1} {:>9.2} {:>12} {:>12.1} {:>9.1}", e.arch, e.shape, e.ipc, e.images, e.ms_per_epoch, e.gflops,
                e.test_images, e.test_pass_ms, mib(e.buffer_bytes))?;
        }
    }
    if !r.passes.is_empty() {
        writeln!(out, "\nwhole-network passes (batch {}, width {})", o.batch, o.width)?;
        for t in &r.passes {
            writeln!(out, "  {:<10} {:<28} {:>10.1} ms {:>9.2} GFLOP/s {:>10.1} images/s", t.shape, t.pass, t.median_ms, t.gflops, t.images_per_s)?;
        }
    }
    for b in &r.breakdown {
        writeln!(out, "\none iteration, kernel by kernel (GPU timestamps): {} {} ipc {} batch_real {} width {}: wall {:.1} ms, compute passes {:.1} ms",
            b.shape, b.method, b.ipc, b.batch_real, b.width, b.wall_ms, b.gpu_ms)?;
        print_shares(out, &b.kernels, b.gpu_ms)?;
    }
    for b in &r.eval_breakdown {
        writeln!(out, "\none evaluation epoch, kernel by kernel (GPU timestamps): {} {} ipc {} ({} images, batch {}) width {}: wall {:.1} ms, compute passes {:.1} ms",
            b.arch, b.shape, b.ipc, b.images, b.batch, b.width, b.wall_ms, b.gpu_ms)?;
        print_shares(out, &b.kernels, b.gpu_ms)?;
    }
    for a in &r.autotune {
        writeln!(out, "\nautotune {} {} ipc {} batch_real {} width {}: {} shapes × passes measured in {:.1} s (first run on this device)",
            a.shape, a.method, a.ipc, a.batch_real, a.width, a.picks.len(), a.tuning_s)?;
        for (key, t) in &a.picks {
            let rule = a.rule.iter().find(|(k, _)| k == key).map_or("", |(_, r)| r.as_str());
            writeln!(out, "  {key}  ({}; rule: {rule})", t.timing)?;
            let mut c: Vec<(&String, &f64)> = t.candidates.iter().collect();
            c.sort_by(|x, y| x.1.total_cmp(y.1));
            for (name, ms) in c {
                let mark = if *name == t.kernel { "  ← pick" } else { "" };
                writeln!(out, "    {name:<26} {ms:>10.3} ms{mark}")?;
            }
            if !t.skipped.is_empty() {
                writeln!(out, "    not timed (budget of {} s spent): {}", crate::nn::tune::BUDGET_S, t.skipped.join(", "))?;
            }
        }
        let ab = |t: &AbTimes| format!("rule {:.1} ms, tuned {:.1} ms, tuned/rule {:.3} (90 % interval {:.3}–{:.3})", t.rule_ms, t.tuned_ms, t.ratio,
            t.ratio_low, t.ratio_high);
        writeln!(out, "  iteration (alternated, median of {}): {}", a.iteration.rule_runs.len(), ab(&a.iteration))?;
        for (arch, t) in &a.epochs {
            writeln!(out, "  evaluation epoch, {arch} (alternated, median of {}): {}", t.rule_runs.len(), ab(t))?;
        }
    }
        Ok(std::mem::take(out))
    }
}

/// One line per kernel of a breakdown: dispatches, GPU ms and share of `gpu_ms`.
fn print_shares(out: &mut String, kernels: &[KernelShare], gpu_ms: f64) -> std::fmt::Result {
    use std::fmt::Write;
    for k in kernels {
        writeln!(out, "  {:<32} {:>4} × {:>10.2} ms {:>5.1} %", k.kernel, k.dispatches, k.ms, 100.0 * k.ms / gpu_ms.max(1e-9))?;
    }
    Ok(())
}

/// `profile`'s kernels as the CLI prints them: time, share of the total, throughput.
pub fn profile_text(kernels: &[KernelTiming]) -> String {
    let total: f64 = kernels.iter().map(|k| k.ms).sum();
    kernels
        .iter()
        .map(|k| {
            let rate = if k.gflops > 0.0 { format!("{:.2} GFLOP/s", k.gflops) } else { String::new() };
            format!("{:<40} {:>10.2} ms {:>5.1} %  {rate}\n", k.kernel, k.ms, 100.0 * k.ms / total)
        })
        .collect()
}
