//! Helpers shared by the integration tests: one GPU per test binary, random data, poisoned outputs
//! and error measures that print what they compare.
#![allow(dead_code)]

pub mod files;

use std::sync::OnceLock;

use hyperdistill::gpu::Gpu;
use rand::RngExt;

/// The device every GPU test uses. If no adapter exists the test FAILS with the install hint; it is
/// never skipped.
pub fn gpu() -> &'static Gpu {
    static G: OnceLock<Result<Gpu, String>> = OnceLock::new();
    match G.get_or_init(|| Gpu::new().map_err(|e| e.to_string())) {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    }
}

pub fn rng(seed: u64) -> hyperdistill::rng::ChaCha8Rng {
    hyperdistill::rng::stream(seed, "tests")
}

/// `len` values uniform in [−scale, scale].
pub fn rand_vec(rng: &mut impl rand::Rng, len: usize, scale: f64) -> Vec<f64> {
    (0..len).map(|_| rng.random_range(-scale..scale)).collect()
}

pub fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

pub fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Upload f64 data as f32.
pub fn up(g: &Gpu, v: &[f64]) -> wgpu::Buffer {
    g.upload("test-in", &to_f32(v)).unwrap()
}

/// Output buffer filled with NaN, so any element a kernel fails to write fails the comparison.
pub fn poisoned(g: &Gpu, len: usize) -> wgpu::Buffer {
    g.upload("test-out", &vec![f32::NAN; len]).unwrap()
}

pub fn down(g: &Gpu, b: &wgpu::Buffer, len: usize) -> Vec<f64> {
    to_f64(&g.read_f32(b, len).unwrap())
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// ‖got − want‖ / ‖want‖ (NaN anywhere gives NaN, which fails every `<` bound).
pub fn rel_err(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "length mismatch");
    let diff: Vec<f64> = got.iter().zip(want).map(|(a, b)| a - b).collect();
    norm(&diff) / norm(want).max(1e-30)
}

/// Compare a GPU result with the reference: prints the relative and max abs error, asserts rel < tol.
pub fn check(name: &str, got: &[f64], want: &[f64], tol: f64) {
    let rel = rel_err(got, want);
    let max_abs = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0, |m: f64, e| if e.is_nan() { f64::NAN } else { m.max(e) });
    println!("{name:<40} n={:<7} rel {rel:.2e}  max|err| {max_abs:.2e}", want.len());
    assert!(rel < tol, "{name}: relative error {rel:e} ≥ {tol:e}");
}

/// `n` features of dimension `dim` whose norms are `norm` × U(0.5, 1.5); a shared mean direction makes
/// the sets look like instance-normalised ConvNet features (correlated, not isotropic).
pub fn features(g: &mut impl rand::Rng, n: usize, dim: usize, norm: f64) -> Vec<f64> {
    let common: Vec<f64> = rand_vec(g, dim, 1.0);
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let v: Vec<f64> = common.iter().map(|c| c + g.random_range(-1.0..1.0)).collect();
        let len = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        let scale = norm * g.random_range(0.5..1.5) / len;
        out.extend(v.iter().map(|a| a * scale));
    }
    out
}

/// (setting, feature norm) pairs the Lorentz tests sweep: k ∈ {0.5, 1, 2.4}; norms 0.1–100 with the clamp
/// on and with projx; unclamped expmap only where √k·sinh(‖v‖/√k) stays within what f64 geoopt resolves.
pub fn hdd_settings() -> Vec<(hyperdistill::hdd::HddParams, f64)> {
    use hyperdistill::hdd::{HddParams, LorentzMap, EXP_MAX_NORM};
    let mut v = vec![];
    for k in [0.5, 1.0, 2.4] {
        for norm in [0.1, 1.0, 25.0, 100.0] {
            v.push((HddParams { k, clamp: Some(EXP_MAX_NORM), map: LorentzMap::Expmap, weighted: false }, norm));
            v.push((HddParams { k, clamp: None, map: LorentzMap::Projx, weighted: false }, norm));
        }
        for norm in [0.1, 1.0, 5.0] {
            v.push((HddParams { k, clamp: None, map: LorentzMap::Expmap, weighted: false }, norm));
        }
        // the hierarchical weights w = τ/sinh τ (they cancel under the clamp; act with projx and unclamped expmap)
        for norm in [0.1, 1.0, 5.0] {
            v.push((HddParams { k, clamp: None, map: LorentzMap::Projx, weighted: true }, norm));
            v.push((HddParams { k, clamp: None, map: LorentzMap::Expmap, weighted: true }, norm));
        }
        v.push((HddParams { k, clamp: Some(EXP_MAX_NORM), map: LorentzMap::Expmap, weighted: true }, 25.0));
    }
    v
}

/// A fresh, empty folder for one test: `<temp>/hd-<name>-<pid>`.
#[allow(dead_code)]
pub fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("hd-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A DM+HDD run on the embedded dataset small enough for a test (IPC 2, width 8, batch_real 16, a checkpoint every 2
/// iterations, no evaluation), exporting its set into `out`.
pub fn small_run(out: &std::path::Path, iterations: usize, seed: u64) -> hyperdistill::run::RunConfig {
    use hyperdistill::distill::{DistillConfig, Method};
    hyperdistill::run::RunConfig {
        dataset: "embedded".into(),
        out: out.to_path_buf(),
        eval_every: 0,
        log_every: 1,
        checkpoint_every: 2,
        export_images: true,
        distill: DistillConfig { method: Method::DmHdd, ipc: 2, iterations, batch_real: 16, width: 8, seed, ..DistillConfig::default() },
        eval: hyperdistill::eval::EvalConfig { nets: 0, ..Default::default() },
        ..hyperdistill::run::RunConfig::default()
    }
}
