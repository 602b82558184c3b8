//! selfcheck: a small ConvNet-3 forward and input-backward on the GPU against the CPU reference, and every
//! candidate kernel of each convolution pass against it (`conv_kernels`, which a browser can await), for
//! `hyperdistill info`, the page's `?kernelcheck` (and anyone who wants to know whether this adapter computes correctly).

use crate::gpu::{Gpu, GpuError};
use rand::RngExt;

/// Largest acceptable ‖gpu − reference‖ / ‖reference‖.
pub const TOLERANCE: f64 = 1e-4;

pub struct CheckResult {
    pub shape: String,
    pub embed_rel_err: f64,
    pub input_grad_rel_err: f64,
}

impl CheckResult {
    pub fn max_err(&self) -> f64 {
        self.embed_rel_err.max(self.input_grad_rel_err)
    }
    pub fn passed(&self) -> bool {
        self.max_err() < TOLERANCE // false for NaN too
    }
}

fn rel_err(got: &[f32], want: &[f64]) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for (g, w) in got.iter().zip(want) {
        num += (*g as f64 - w).powi(2);
        den += w * w;
    }
    (num / den.max(1e-300)).sqrt()
}

#[cfg(not(target_arch = "wasm32"))]
/// Run the check on a 1×28×28 and a 3×32×32 network of width 16, batch 4.
pub fn run(gpu: &Gpu, seed: u64) -> Result<Vec<CheckResult>, GpuError> {
    use crate::nn::convnet::{ref_backward, ref_forward, ConvNetConfig, ConvNetParams, GpuConvNet, Upstream};
    let mut out = vec![];
    for (channels, image) in [(1, 28), (3, 32)] {
        let cfg = ConvNetConfig::square(channels, image, 16, 10).expect("valid built-in shape");
        let n = 4;
        let mut rng = crate::rng::stream(seed, "selfcheck");
        let params = ConvNetParams::init(&cfg, &mut rng);
        let x: Vec<f32> = (0..cfg.input_len(n)).map(|_| rng.random_range(-2.0..2.0)).collect();
        let de: Vec<f32> = (0..n * cfg.embed_dim()).map(|_| rng.random_range(-1.0..1.0)).collect();

        let net = GpuConvNet::new(gpu, &params)?;
        let ws = net.workspace(gpu, n)?;
        gpu.write(&ws.x, &x);
        gpu.write(&ws.d_embed, &de);
        let mut enc = gpu.encoder();
        net.forward(gpu, &mut enc, &ws, false);
        net.backward(gpu, &mut enc, &ws, Upstream::Embed, true, None);
        gpu.submit_wait(enc);
        let embed = gpu.read_f32(&ws.embed, n * cfg.embed_dim())?;
        let dx = gpu.read_f32(&ws.dx, cfg.input_len(n))?;

        let p64 = params.to_f64();
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let de64: Vec<f64> = de.iter().map(|&v| v as f64).collect();
        let act = ref_forward(&cfg, &p64, &x64, n);
        let (rdx, _) = ref_backward(&cfg, &p64, &act, Some(&de64), None);
        out.push(CheckResult {
            shape: format!("{n}×{channels}×{image}×{image}, width 16"),
            embed_rel_err: rel_err(&embed, &act.embed),
            input_grad_rel_err: rel_err(&dx, &rdx),
        });
    }
    Ok(out)
}

/// One kernel of one convolution pass on one shape against the CPU reference.
pub struct KernelCheck {
    /// the pass and shape, as the autotuner's table keys them
    pub key: String,
    pub kernel: String,
    /// the relative error, or why the kernel was not run on this device (`ConvPass::barred`)
    pub rel_err: Result<f64, &'static str>,
}

/// Every kernel the autotuner may pick, run against the f64 reference on fresh random inputs with its output poisoned
/// with NaN first: ConvNet-3's register-blocked kernels and GEMM tilings for the three passes on a shape every kernel
/// fits (the GEMMs' vec4 staging on) and on one that divides nothing (scalar staging), and the evaluation pool's
/// direct kernels and tilings on a strided 3×3 and a 5×5. Each run is its own submission and read-back, awaited, so a
/// browser can run it.
pub async fn conv_kernels(gpu: &Gpu, seed: u64) -> Result<Vec<KernelCheck>, GpuError> {
    use crate::nn::ops::{self, ConvBackwardInput, ConvBackwardWeight, ConvForward};
    use crate::nn::tune::{ConvBuffers, KForward, KInput, KWeight};
    use crate::reference as r;
    use crate::shapes::{ConvShape, KConvShape};
    let mut rng = crate::rng::stream(seed, "selfcheck-kernels");
    let mut rand = |len: usize| -> Vec<f32> { (0..len).map(|_| rng.random_range(-1.0..1.0)).collect() };
    let f64s = |v: &[f32]| -> Vec<f64> { v.iter().map(|&x| x as f64).collect() };
    let mut out = vec![];
    // small maps: the compilers unroll the kernels' loops over the map (SwiftShader took over 2 minutes, and lost
    // the device, compiling `backward_weight` for 8×8 maps)
    for s in [ConvShape { n: 2, cin: 4, cout: 8, h: 4, w: 4, pad: 1 }, ConvShape { n: 2, cin: 3, cout: 5, h: 5, w: 5, pad: 1 }] {
        let (x, w, b, dy) = (rand(s.x_len()), rand(s.w_len()), rand(s.cout), rand(s.y_len()));
        let (x6, w6, b6, dy6) = (f64s(&x), f64s(&w), f64s(&b), f64s(&dy));
        let bufs = ConvBuffers::with_data(gpu, [&x, &w, &b, &dy], ops::conv_weight_scratch_len_any(&s).max(4 * s.w_len()), ops::row_stats_len(&s))?;
        check::<ConvForward>(gpu, &s, &bufs, (&bufs.y, &r::conv_forward(&s, &x6, &w6, &b6)), &mut out).await?;
        check::<ConvBackwardInput>(gpu, &s, &bufs, (&bufs.dx, &r::conv_backward_input(&s, &dy6, &w6)), &mut out).await?;
        check::<ConvBackwardWeight>(gpu, &s, &bufs, (&bufs.dw, &r::conv_backward_weight(&s, &x6, &dy6)), &mut out).await?;
    }
    for s in [KConvShape { n: 2, cin: 4, cout: 6, h: 7, w: 7, k: 3, stride: 2, pad: 1 }, KConvShape { n: 2, cin: 3, cout: 4, h: 6, w: 6, k: 5, stride: 1, pad: 2 }] {
        let (x, w, b, dy) = (rand(s.x_len()), rand(s.w_len()), rand(s.cout), rand(s.y_len()));
        let (x6, w6, b6, dy6) = (f64s(&x), f64s(&w), f64s(&b), f64s(&dy));
        let bufs = ConvBuffers::with_data(gpu, [&x, &w, &b, &dy], ops::kconv_weight_scratch_len_any(&s).max(s.w_len()), 1)?;
        check::<KForward>(gpu, &s, &bufs, (&bufs.y, &r::kconv_forward(&s, &x6, &w6, Some(&b6))), &mut out).await?;
        check::<KInput>(gpu, &s, &bufs, (&bufs.dx, &r::kconv_backward_input(&s, &dy6, &w6)), &mut out).await?;
        check::<KWeight>(gpu, &s, &bufs, (&bufs.dw, &r::kconv_backward_weight(&s, &x6, &dy6)), &mut out).await?;
    }
    Ok(out)
}

/// Every kernel of pass `K` on `s`: `output` poisoned, the pass encoded on `b`, submitted, read back, compared.
async fn check<K: crate::nn::tune::ConvPass>(gpu: &Gpu, s: &K::Shape, b: &crate::nn::tune::ConvBuffers, (output, want): (&wgpu::Buffer, &[f64]),
    out: &mut Vec<KernelCheck>) -> Result<(), GpuError> {
    use crate::nn::tune::TuneShape;
    for k in K::available(s) {
        if let Some(why) = k.barred(gpu) {
            out.push(KernelCheck { key: s.key(K::OP), kernel: k.name().to_string(), rel_err: Err(why) });
            continue;
        }
        gpu.write(output, &vec![f32::NAN; want.len()]);
        let mut enc = gpu.encoder();
        k.encode(gpu, &mut enc, s, b);
        gpu.submit(enc);
        let got = gpu.read_many_async(&[(output, want.len())]).await?.remove(0);
        out.push(KernelCheck { key: s.key(K::OP), kernel: k.name().to_string(), rel_err: Ok(rel_err(&got, want)) });
    }
    Ok(())
}

/// One line on `conv_kernels`' results: how many ran, the worst, every kernel over `TOLERANCE`, and any not run here
/// (with the reason). The flag: at least one ran and every one that ran passed.
pub fn kernel_summary(checks: &[KernelCheck]) -> (String, bool) {
    let ran: Vec<(&KernelCheck, f64)> = checks.iter().filter_map(|c| c.rel_err.ok().map(|e| (c, e))).collect();
    let worst = ran.iter().max_by(|a, b| a.1.total_cmp(&b.1));
    let bad: Vec<String> = ran.iter().filter(|(_, e)| !(*e < TOLERANCE)).map(|(c, e)| format!("{} on {} ({e:.1e})", c.kernel, c.key)).collect();
    let mut line = match worst {
        Some((w, e)) => format!("{} kernels of {} (pass, shape) pairs against the reference, worst relative error {e:.1e} ({} on {})", ran.len(),
            ran.iter().map(|(c, _)| &c.key).collect::<std::collections::BTreeSet<_>>().len(), w.kernel, w.key),
        None => "no kernels checked".to_string(),
    };
    for c in checks.iter().filter(|c| c.rel_err.is_err()) {
        line.push_str(&format!("; not run: {} on {} ({})", c.kernel, c.key, c.rel_err.err().unwrap_or_default()));
    }
    if bad.is_empty() { (line, !ran.is_empty()) } else { (format!("{line}; FAILED: {}", bad.join(", ")), false) }
}

#[cfg(not(target_arch = "wasm32"))]
/// What `hyperdistill info` prints: the adapter, the limits that matter, its features, and the self-check (`run`)
/// with its errors. The flag is whether every check passed.
pub fn info_report(gpu: &Gpu, seed: u64) -> Result<(String, bool), anyhow::Error> {
    use std::fmt::Write;
    let yes = |b: bool| if b { "yes" } else { "no" };
    let (i, l) = (&gpu.info, &gpu.limits);
    let mut out = String::new();
    writeln!(out, "adapter      {}", i.name)?;
    writeln!(out, "backend      {:?}", i.backend)?;
    writeln!(out, "device type  {:?}", i.device_type)?;
    writeln!(out, "driver       {} {}", i.driver, i.driver_info)?;
    writeln!(out, "limits")?;
    writeln!(out, "  max_storage_buffer_binding_size       {} MiB", l.max_storage_buffer_binding_size as u64 >> 20)?;
    writeln!(out, "  max_buffer_size                       {} MiB", l.max_buffer_size >> 20)?;
    writeln!(out, "  max_storage_buffers_per_shader_stage  {}", l.max_storage_buffers_per_shader_stage)?;
    writeln!(out, "  max_compute_workgroup_storage_size    {} KiB", l.max_compute_workgroup_storage_size >> 10)?;
    writeln!(out, "  max_compute_invocations_per_workgroup {}", l.max_compute_invocations_per_workgroup)?;
    writeln!(out, "  max_compute_workgroups_per_dimension  {}", l.max_compute_workgroups_per_dimension)?;
    let f = gpu.adapter.features();
    writeln!(
        out,
        "features     shader-f16 {}, subgroups {}, timestamp-query {}",
        yes(f.contains(wgpu::Features::SHADER_F16)),
        yes(f.contains(wgpu::Features::SUBGROUP)),
        yes(f.contains(wgpu::Features::TIMESTAMP_QUERY))
    )?;
    writeln!(out, "self-check   ConvNet-3 forward (embed) and backward to the input, GPU f32 vs CPU f64 reference")?;
    let results = run(gpu, seed).map_err(|e| anyhow::anyhow!("self-check could not run: {e}"))?;
    for r in &results {
        let verdict = if r.passed() { "ok" } else { "FAILED" };
        writeln!(out, "  {:<26} embed rel err {:.2e}, input-grad rel err {:.2e}  {verdict}", r.shape, r.embed_rel_err, r.input_grad_rel_err)?;
    }
    let max = results.iter().map(CheckResult::max_err).fold(0.0, f64::max);
    writeln!(out, "  max relative error {max:.2e} (tolerance {TOLERANCE:.0e})")?;
    // every kernel the autotuner may pick, whatever it picks here
    let checks = pollster::block_on(conv_kernels(gpu, seed)).map_err(|e| anyhow::anyhow!("the kernel check could not run: {e}"))?;
    let (line, kernels_ok) = kernel_summary(&checks);
    writeln!(out, "kernel check {line}  {}", if kernels_ok { "ok" } else { "FAILED" })?;
    out.push_str(&kernel_table(gpu));
    Ok((out, results.iter().all(CheckResult::passed) && kernels_ok))
}

/// `info`'s account of the convolution kernels: the autotuner's mode, its table file and every measured pick (with
/// the runner-up, so that a close call shows), then what this process ran by the rule or a pin.
pub fn kernel_table(gpu: &Gpu) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let mode = gpu.kernels.mode();
    let file = gpu.kernels.file().map_or("none (this process only)".to_string(), |f| f.display().to_string());
    let _ = writeln!(out, "kernels      HYPERDISTILL_AUTOTUNE={} (off | on | refresh; default on for GPUs, off for CPU adapters)",
        format!("{mode:?}").to_lowercase());
    let _ = writeln!(out, "  table file {file}");
    let table = gpu.kernels.table();
    if table.is_empty() {
        let _ = writeln!(out, "  no shape measured on this adapter and build yet");
    }
    for (key, t) in &table {
        let mut others: Vec<(&String, &f64)> = t.candidates.iter().filter(|(k, _)| **k != t.kernel).collect();
        others.sort_by(|a, b| a.1.total_cmp(b.1));
        let next = others.first().map_or(String::new(), |(k, ms)| format!(", next {k} {ms:.3} ms"));
        let _ = writeln!(out, "  {key:<44} {:<24} {:>9.3} ms ({}, {} candidates{next})", t.kernel, t.ms, t.timing, t.candidates.len());
    }
    // what ran otherwise: the rule (autotuning off) or a resumed run's recorded kernel
    for (key, k) in gpu.kernels.used().iter().filter(|(key, k)| table.get(*key).is_none_or(|t| t.kernel != **k)) {
        let why = if gpu.kernels.pinned(key).is_some() {
            "pinned by a resume"
        } else if gpu.kernels.deferred().contains(key) {
            "rule: this run's measuring budget was spent, a later run measures it"
        } else {
            "rule"
        };
        let _ = writeln!(out, "  {key:<44} {k:<24} ({why})");
    }
    out
}
