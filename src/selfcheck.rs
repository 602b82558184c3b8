//! selfcheck: a small ConvNet-3 forward and input-backward on the GPU against the CPU reference, for
//! `hyperdistill info` (and anyone who wants to know whether this adapter computes correctly).

use crate::gpu::{Gpu, GpuError};
use crate::nn::convnet::{ref_backward, ref_forward, ConvNetConfig, ConvNetParams, GpuConvNet, Upstream};
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

/// Run the check on a 1×28×28 and a 3×32×32 network of width 16, batch 4.
pub fn run(gpu: &Gpu, seed: u64) -> Result<Vec<CheckResult>, GpuError> {
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
    out.push_str(&kernel_table(gpu));
    Ok((out, results.iter().all(CheckResult::passed)))
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
        let why = if gpu.kernels.pinned(key).is_some() { "pinned by a resume" } else { "rule" };
        let _ = writeln!(out, "  {key:<44} {k:<24} ({why})");
    }
    out
}
