//! run: a whole distillation job as the CLI runs it — TOML config with command-line overrides, progress
//! bar, evaluation every `eval_every` iterations (before that iteration's update, as the DM code does),
//! metrics as JSON lines, checkpoints for `--resume`, and the exported synthetic set.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use safetensors::tensor::Dtype;
use serde::{Deserialize, Serialize};

use crate::data::{self, Dataset};
use crate::distill::{Checkpoint, DistillConfig, Distiller};
use crate::eval::{self, EvalConfig};
use crate::export::{self, SynSet};
use crate::gpu::Gpu;

mod evaluate;
mod shard;
pub use evaluate::{evaluate_set, ArchResult, EvalJob};
pub use shard::{merge, sha256_file, EvalPart, Merged, Shard};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// "embedded", a path, or a dataset name in the cache.
    pub dataset: String,
    pub out: PathBuf,
    /// Evaluate every this many iterations (0: only at the end).
    pub eval_every: usize,
    /// Read the loss back and log it every this many iterations.
    pub log_every: usize,
    /// Write a checkpoint every this many iterations (0: only at the end).
    pub checkpoint_every: usize,
    /// Also write one PNG per synthetic image under `out/images/`.
    pub export_images: bool,
    /// Hyperbolic pruning: keep this fraction of each class's real training images, those nearest their class's
    /// Lorentz centroid under fixed random ConvNet-3s (1 = no pruning). See `prune`.
    pub keep_real: f64,
    /// Random networks whose distances are averaged for the pruning ranking.
    pub prune_nets: usize,
    /// This run is class shard "I/N" of a distillation split over processes ("" = the whole run): it distills the
    /// classes `Shard::classes` gives it, evaluates nothing, and `hyperdistill merge` joins the shards.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub shard: String,
    /// Iterations whose every input and output are written to `out/trace/iter_T.safetensors` (`distill::trace`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trace: Vec<usize>,
    pub distill: DistillConfig,
    pub eval: EvalConfig,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            dataset: "embedded".into(),
            out: PathBuf::from("hyperdistill-out"),
            eval_every: 2000,
            log_every: 10,
            checkpoint_every: 100,
            export_images: false,
            keep_real: 1.0,
            prune_nets: 1,
            shard: String::new(),
            trace: vec![],
            distill: DistillConfig::default(),
            eval: EvalConfig::default(),
        }
    }
}

impl RunConfig {
    pub fn from_toml_file(path: &Path) -> Result<RunConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("{}: invalid configuration", path.display()))
    }
    pub fn to_toml(&self) -> Result<String> {
        Ok(toml::to_string_pretty(self)?)
    }
}

const CHECKPOINT: &str = "checkpoint.safetensors";

/// What a run writes into its folder; a folder holding any of them holds a run.
const RUN_FILES: [&str; 5] = ["config.toml", CHECKPOINT, "synset.safetensors", "synset.png", "metrics.jsonl"];

/// How a run starts in its output folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// A new run; refused where the folder already holds one.
    Fresh,
    /// A new run that first deletes the run the folder holds (its DANCE experts stay: they are reused by recipe).
    Overwrite,
    /// Continue the folder's run from its checkpoint, exactly as if it had not stopped; refused where the
    /// configuration differs from the checkpoint's in anything that changes the result.
    Resume,
}

impl RunConfig {
    /// The options that shape the synthetic set (everything but where and how often things are written, the
    /// evaluation, and the iteration count a run stops at), as dotted keys and TOML values.
    fn trajectory(&self) -> Result<BTreeMap<String, String>> {
        let mut c = self.clone();
        (c.out, c.eval_every, c.log_every, c.checkpoint_every, c.export_images, c.eval) = (PathBuf::new(), 0, 0, 0, false, EvalConfig::default());
        c.trace.clear(); // a trace reads the iterations back and changes none of them
        c.distill.iterations = 0;
        c.distill.dance.expert_dir = String::new();
        fn flatten(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
            match v {
                toml::Value::Table(t) => t.iter().for_each(|(k, v)| flatten(&if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") }, v, out)),
                v => {
                    out.insert(prefix.to_string(), v.to_string());
                }
            }
        }
        let mut out = BTreeMap::new();
        flatten("", &toml::Value::try_from(&c)?, &mut out);
        Ok(out)
    }

    /// What differs between `self` and `other` in the options that shape the synthetic set, one line each.
    pub fn trajectory_differences(&self, other: &RunConfig) -> Result<Vec<String>> {
        let (a, b) = (self.trajectory()?, other.trajectory()?);
        let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "(absent)".into());
        Ok(keys.into_iter().filter(|k| a.get(*k) != b.get(*k)).map(|k| format!("{k}: {} → {}", show(a.get(k)), show(b.get(k)))).collect())
    }
}

/// Refuse to start over a run the folder holds (unless told to), or delete it first for `Start::Overwrite`.
fn prepare_folder(out: &Path, start: Start) -> Result<()> {
    let present: Vec<&str> = RUN_FILES.iter().copied().filter(|f| out.join(f).exists()).collect();
    match start {
        Start::Fresh if !present.is_empty() => bail!(
            "{} already holds a run ({}): continue it with --resume {0}, write elsewhere with --out, or replace it with --overwrite",
            out.display(),
            present.join(", ")
        ),
        Start::Overwrite => {
            // the checkpoint first: a replacement killed early must not leave the old checkpoint beside a new config
            for f in [CHECKPOINT].iter().chain(RUN_FILES.iter().filter(|f| **f != CHECKPOINT)) {
                let p = out.join(f);
                if p.exists() {
                    std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
                }
            }
            for dir in ["images", "grids"] {
                let d = out.join(dir);
                if d.is_dir() {
                    std::fs::remove_dir_all(&d).with_context(|| format!("removing {}", d.display()))?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// The convolution kernels this process has run, by shape and pass (`nn::tune`), as JSON: recorded in checkpoints
/// and exported sets, so that a resume runs the same ones (bit-exact) and a reader knows what computed the numbers.
pub(crate) fn kernels_json(gpu: &Gpu) -> String {
    serde_json::to_string(&gpu.kernels.used()).unwrap_or_default()
}

/// The kernels a checkpoint's run used (empty for checkpoints written before they were recorded).
fn recorded_kernels(dir: &Path) -> Result<BTreeMap<String, String>> {
    let path = dir.join(CHECKPOINT);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let (_, m) = safetensors::SafeTensors::read_metadata(&bytes).with_context(|| format!("{}: corrupt checkpoint", path.display()))?;
    match m.metadata().as_ref().and_then(|m| m.get("kernels")) {
        Some(text) => serde_json::from_str(text).with_context(|| format!("{}: its recorded kernels do not parse", path.display())),
        None => Ok(BTreeMap::new()),
    }
}

fn write_checkpoint(dir: &Path, ck: &Checkpoint, cfg: &RunConfig, kernels: String) -> Result<()> {
    let mut meta = BTreeMap::new();
    meta.insert("kernels".to_string(), kernels);
    // the configuration the state was made with, which `--resume` holds the folder's against
    meta.insert("config".to_string(), cfg.to_toml()?);
    meta.insert("iteration".to_string(), ck.iteration.to_string());
    meta.insert("classes".to_string(), ck.classes.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(","));
    meta.insert("random".to_string(), RANDOM_SCHEME.to_string());
    let mut tensors = vec![
        ("syn", Dtype::F32, vec![ck.syn.len()], bytemuck::cast_slice(&ck.syn).to_vec()),
        ("momentum", Dtype::F32, vec![ck.momentum.len()], bytemuck::cast_slice(&ck.momentum).to_vec()),
    ];
    for (name, v) in &ck.extra {
        tensors.push((name.as_str(), Dtype::F32, vec![v.len()], bytemuck::cast_slice(v).to_vec()));
    }
    let bytes = export::to_safetensors_bytes(&tensors, &meta)?;
    export::atomic_write(&dir.join(CHECKPOINT), &bytes)
}

pub fn read_checkpoint(dir: &Path) -> Result<Checkpoint> {
    Ok(read_checkpoint_and_config(dir)?.0)
}

/// How a checkpoint's random draws are made, recorded in it: "keyed" since 0.2.0 (`rng::keyed`: by iteration and
/// class). Checkpoints of 0.1.x (draws taken in sequence from one stream) cannot continue the same run.
const RANDOM_SCHEME: &str = "keyed";

/// The checkpoint in `dir` and the configuration it was made with.
pub fn read_checkpoint_and_config(dir: &Path) -> Result<(Checkpoint, RunConfig)> {
    let path = dir.join(CHECKPOINT);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).with_context(|| format!("{}: corrupt checkpoint", path.display()))?;
    let (_, m) = safetensors::SafeTensors::read_metadata(&bytes)?;
    let meta = m.metadata().clone().unwrap_or_default();
    let floats = |name: &str| -> Result<Vec<f32>> {
        let t = st.tensor(name).with_context(|| format!("{}: no '{name}'", path.display()))?;
        Ok(t.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    };
    if meta.get("random").map(String::as_str) != Some(RANDOM_SCHEME) {
        bail!(
            "{}: written by hyperdistill 0.1, whose random draws came from streams taken in sequence; since 0.2.0 every draw is \
             keyed by iteration and class (so that a run can be split into shards), and results for a seed changed once. This \
             checkpoint cannot continue its run: start the run again (--overwrite)",
            path.display()
        );
    }
    let iteration = meta.get("iteration").and_then(|v| v.parse().ok()).with_context(|| format!("{}: no iteration", path.display()))?;
    let classes: Vec<usize> = meta.get("classes").map(|v| v.split(',').filter_map(|w| w.parse().ok()).collect()).unwrap_or_default();
    let mut extra = vec![];
    let mut names: Vec<&str> = st.names();
    names.sort();
    for name in names {
        if name != "syn" && name != "momentum" {
            extra.push((name.to_string(), floats(name)?));
        }
    }
    let text = meta.get("config").with_context(|| format!("{}: it does not record its configuration", path.display()))?;
    let config = toml::from_str(text).with_context(|| format!("{}: its recorded configuration does not parse", path.display()))?;
    Ok((Checkpoint { iteration, classes, syn: floats("syn")?, momentum: floats("momentum")?, extra }, config))
}

/// DANCE's experts for `cfg`: reused from its expert directory (`distill.dance.expert_dir`, else OUT/experts) when
/// trained with the same recipe, else trained there. `hyperdistill experts` runs this alone, so that the shards of a
/// split DANCE run share experts trained once.
pub fn experts_for(gpu: &Gpu, cfg: &RunConfig, ds: &Dataset) -> Result<Vec<crate::experts::Expert>> {
    let dc = &cfg.distill.dance;
    let dir = expert_dir(cfg);
    let recipe = crate::experts::ExpertRecipe { width: cfg.distill.width, epochs: dc.expert_epochs, batch: dc.expert_batch, seed: cfg.distill.seed };
    let bar = indicatif::ProgressBar::new((dc.experts * dc.expert_epochs) as u64).with_style(
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} expert epochs {msg} (ETA {eta})").expect("template"),
    );
    let (experts, trained) = crate::experts::load_or_train(gpu, ds, Some(&dir), dc.experts, &recipe, &mut |i, ep| {
        bar.set_message(format!("expert {}/{}", i + 1, dc.experts));
        bar.set_position((i * dc.expert_epochs + ep + 1) as u64);
    })?;
    bar.finish_and_clear();
    eprintln!("DANCE experts in {}: {} reused, {trained} trained", dir.display(), experts.len() - trained);
    Ok(experts)
}

/// Where a run's DANCE experts live.
pub fn expert_dir(cfg: &RunConfig) -> PathBuf {
    let dc = &cfg.distill.dance;
    if dc.expert_dir.is_empty() { cfg.out.join("experts") } else { PathBuf::from(&dc.expert_dir) }
}

/// Whether a checkpoint's pixels and momentum are all finite (a diverged state is never written).
fn finite_state(ck: &Checkpoint) -> bool {
    ck.syn.iter().chain(&ck.momentum).all(|v| v.is_finite())
}

/// The iteration after which a pixel first became NaN or infinite, as the GPU recorded it.
fn first_bad(gpu: &Gpu, d: &Distiller) -> Result<Option<usize>> {
    Ok(Distiller::diverged_at(&gpu.read_many(&[d.health_source()])?[0]))
}

/// Metadata that goes into every exported set.
pub(crate) fn export_meta(cfg: &RunConfig, ds: &Dataset, gpu: &Gpu, iteration: usize) -> BTreeMap<String, String> {
    let mut meta = cfg.distill.metadata(&cfg.dataset, ds, gpu.describe(), iteration, cfg.to_toml().unwrap_or_default());
    meta.insert("kernels".to_string(), kernels_json(gpu));
    meta
}

/// The settings that decide a run's cost and its numbers, in one line for every output that reports results.
pub fn settings_line(cfg: &RunConfig) -> String {
    let d = &cfg.distill;
    let e = &cfg.eval;
    let eval = if e.nets == 0 {
        "no evaluation".to_string()
    } else {
        format!("evaluation {} × {} nets {}{}", e.epochs, e.nets, e.arch.name(), if e.quick { " (quick)" } else { "" })
    };
    format!(
        "{} ipc {} width {} batch_real {} iterations {} lr_img {} seed {}{}{}; {eval}; dataset {}",
        d.method.name(),
        d.ipc,
        d.width,
        d.batch_real,
        d.iterations,
        crate::validate::num(d.lr_img as f64),
        d.seed,
        if d.method.hdd() { format!(" k {} λ {} clamp {}", d.k, crate::validate::num(d.lambda as f64), d.clamp.map_or("off".into(), |c| c.to_string())) } else { String::new() },
        if d.classes.is_empty() { String::new() } else { format!(" classes {:?}", d.classes) },
        cfg.dataset
    )
}

pub struct Outcome {
    pub out: PathBuf,
    /// `settings_line` of what ran (a shard's classes included).
    pub settings: String,
    /// distillation steps run by this call
    pub steps: usize,
    pub final_eval: Option<eval::EvalResult>,
    pub seconds_per_iteration: f64,
}

/// Run (or resume) a distillation job in `cfg.out`. Besides the set it writes `metrics.jsonl` (start, loss and per-class
/// matching term every `log_every`, each evaluation), `config.toml`, the checkpoint, and the synthetic grid at every
/// evaluation point (`grids/iter_<T>.png`, also without evaluation networks; the starting set as
/// `grids/iter_000000.safetensors`) for `report`.
pub fn run(gpu: &Gpu, cfg: &RunConfig, start: Start, cache: &Path) -> Result<Outcome> {
    let resume = start == Start::Resume;
    let shard = if cfg.shard.is_empty() { None } else { Some(Shard::parse(&cfg.shard)?) };
    let classes_of = |total: usize| -> Result<Vec<usize>, data::DataError> {
        match &shard {
            Some(s) => s.classes(total).map_err(|e| data::DataError::Layout(e.to_string())),
            None => Ok(cfg.distill.classes.clone()),
        }
    };
    // DM and DM+HDD read a class's real images only for that class, so a run of some classes that evaluates nothing
    // (every shard) keeps only their training images; IDM's queue and DANCE's experts train on every class, and
    // pruning ranks every image, so those load the whole dataset
    let only_classes = (shard.is_some() || (!cfg.distill.classes.is_empty() && cfg.eval.nets == 0))
        && !cfg.distill.method.idm()
        && !cfg.distill.method.dance()
        && cfg.keep_real >= 1.0;
    let mut ds = data::open_keeping(&cfg.dataset, cache, only_classes.then_some(&classes_of as data::KeepClasses))?;
    if let Some(s) = &ds.subset {
        eprintln!("loaded the training images of its {} classes only: {} of {}", s.classes.len(), ds.train.len(), s.train_counts.iter().sum::<usize>());
    }
    let sharded;
    let cfg = if let Some(shard) = &shard {
        // a class shard: its classes come from the dataset's class count, and it evaluates nothing (the merged set is
        // what is evaluated)
        let mut c = cfg.clone();
        c.distill.classes = shard.classes(ds.classes.len())?;
        c.eval.nets = 0;
        sharded = c;
        &sharded
    } else {
        cfg
    };
    // a resume is checked against its checkpoint before any work
    let checkpoint = if resume {
        let (ck, recorded) = read_checkpoint_and_config(&cfg.out)?;
        let diff = recorded.trajectory_differences(cfg)?;
        if !diff.is_empty() {
            bail!(
                "{}: the checkpoint was made with another configuration than this resume's (checkpoint → now):\n  {}\n\
                 resume without the flags that change these, or start a new run in another folder",
                cfg.out.join(CHECKPOINT).display(),
                diff.join("\n  ")
            );
        }
        // the kernels the run used, so that it continues bit for bit whatever the autotuner would pick today
        gpu.kernels.pin(&recorded_kernels(&cfg.out)?);
        Some(ck)
    } else {
        None
    };
    if !(cfg.keep_real > 0.0 && cfg.keep_real <= 1.0) {
        bail!("keep_real must be in (0, 1], not {}", cfg.keep_real);
    }
    if cfg.keep_real < 1.0 && cfg.prune_nets == 0 {
        bail!("prune_nets must be at least 1");
    }
    cfg.distill.validate(&ds)?;
    if cfg.eval.nets > 0 {
        // checked now, not when the first evaluation is due hours later
        cfg.eval.validate()?;
    }
    let mut pruned = None;
    if cfg.keep_real < 1.0 {
        let bar = indicatif::ProgressBar::new(0).with_style(
            indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} images ranked for pruning (ETA {eta})").expect("template"),
        );
        let batch = cfg.distill.batch_real.clamp(1, 256);
        let ranking = crate::prune::rank(gpu, &ds, cfg.distill.width, cfg.prune_nets, &cfg.distill.hdd(), cfg.distill.seed, batch, &bar)?;
        bar.finish_and_clear();
        let before = ds.train.len();
        ds = crate::prune::keep(&ds, &ranking, cfg.keep_real, cfg.distill.ipc);
        eprintln!("hyperbolic pruning: kept {} of {before} real training images (nearest {:.0} % of each class to its centroid)", ds.train.len(), 100.0 * cfg.keep_real);
        pruned = Some((before, ds.train.len()));
        cfg.distill.validate(&ds)?;
    }
    std::fs::create_dir_all(&cfg.out).with_context(|| format!("creating {}", cfg.out.display()))?;
    prepare_folder(&cfg.out, start)?;
    let experts = if cfg.distill.method.dance() { Some(experts_for(gpu, cfg, &ds)?) } else { None };
    let mut d = Distiller::with_experts(gpu, &ds, cfg.distill.clone(), experts)?;
    if let Some(ck) = &checkpoint {
        d.restore(ck).with_context(|| format!("{}: the checkpoint does not fit this run", cfg.out.join(CHECKPOINT).display()))?;
        eprintln!("resuming {} at iteration {}", cfg.out.display(), ck.iteration);
    }
    if !cfg.trace.is_empty() {
        if !d.traceable() {
            bail!("--trace covers DM and IDM iterations (with or without HDD); {} is not traced yet", cfg.distill.method.name());
        }
        if let Some(&late) = cfg.trace.iter().find(|&&t| t >= cfg.distill.iterations) {
            bail!("--trace {late}: the run's iterations are 0 to {} (it stops at {})", cfg.distill.iterations.saturating_sub(1), cfg.distill.iterations);
        }
        let done: Vec<String> = cfg.trace.iter().filter(|&&t| t < d.iteration()).map(|t| t.to_string()).collect();
        if !done.is_empty() {
            eprintln!("note: iterations {} ran before this resume and are not traced", done.join(", "));
        }
    }
    export::atomic_write(&cfg.out.join("config.toml"), cfg.to_toml()?.as_bytes())?;
    let mut metrics = std::fs::OpenOptions::new().create(true).append(true).open(cfg.out.join("metrics.jsonl"))?;
    let mut log = |v: serde_json::Value| -> Result<()> { writeln!(metrics, "{v}").context("writing metrics.jsonl") };
    log(serde_json::json!({"event": if resume { "resume" } else { "start" }, "iteration": d.iteration(), "adapter": gpu.describe(),
        "seed": cfg.distill.seed, "dataset": ds.name, "quick_eval": cfg.eval.quick,
        "autotune": format!("{:?}", gpu.kernels.mode()).to_lowercase(), "kernels": gpu.kernels.used(),
        "autotune_seconds": gpu.kernels.spent(), "autotune_deferred": gpu.kernels.deferred()}))?;
    if let Some((before, after)) = pruned {
        log(serde_json::json!({"event": "prune", "keep_real": cfg.keep_real, "prune_nets": cfg.prune_nets, "train_before": before, "train_after": after}))?;
    }

    let total = cfg.distill.iterations;
    let cpu = gpu.info.device_type == wgpu::DeviceType::Cpu;
    if cpu && (cfg.distill.width * cfg.distill.batch_real > 32 * 64 || total > 1000) {
        eprintln!(
            "note: {} runs the kernels on the CPU (software Vulkan, SwiftShader or WARP): at width {} and batch_real {} an iteration \
             takes seconds; `--sizes demo` (width 32, batch_real 64, 200 iterations, quick evaluation) finishes in minutes",
            gpu.info.name, cfg.distill.width, cfg.distill.batch_real
        );
    }
    eprintln!("settings: {}", settings_line(cfg));
    let bar = indicatif::ProgressBar::new(total as u64).with_style(
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} it  {msg}  (ETA {eta})").expect("template"),
    );
    bar.set_position(d.iteration() as u64);
    let mut final_eval = None;
    let start_it = d.iteration();
    // the last checkpoint on disk, kept when the run diverges
    let mut last_good = checkpoint.as_ref().map(|c| c.iteration);
    let diverged = |log: &mut dyn FnMut(serde_json::Value) -> Result<()>, at: usize, what: &str, last_good: Option<usize>| -> anyhow::Error {
        let _ = log(serde_json::json!({"event": "diverged", "iteration": at, "what": what}));
        let kept = match last_good {
            Some(i) => format!("the last good checkpoint (iteration {i}) stays in {}", cfg.out.join(CHECKPOINT).display()),
            None => "no checkpoint had been written yet".to_string(),
        };
        let num = |v: f32| crate::validate::num(v as f64);
        let lambda = if cfg.distill.method.hdd() { format!(" or --lambda (now {})", num(cfg.distill.lambda)) } else { String::new() };
        anyhow::anyhow!(
            "the distillation diverged at iteration {at}: {what} became NaN or infinite. Nothing after it was written; {kept}. \
             Lower --lr-img (now {}){lambda} and start again",
            num(cfg.distill.lr_img)
        )
    };
    let mut step_secs = 0.0; // distillation steps only, evaluations excluded
    loop {
        let it = d.iteration();
        let due = (cfg.eval_every > 0 && it % cfg.eval_every == 0) || it == total;
        if due && cfg.eval.nets > 0 {
            bar.set_message(format!("evaluating iteration {it}"));
            let (images, labels) = d.eval_set()?;
            if images.iter().any(|v| !v.is_finite()) {
                return Err(diverged(&mut log, first_bad(gpu, &d)?.unwrap_or(it), "a synthetic pixel", last_good));
            }
            let r = eval::evaluate(gpu, &ds, &images, &labels, &cfg.eval, cfg.distill.seed ^ (it as u64).wrapping_mul(0x9e37_79b9), &mut |k, ep| {
                bar.set_message(format!("evaluating iteration {it}: net {}/{} epoch {ep}/{}", k + 1, cfg.eval.nets, cfg.eval.epochs));
            })?;
            bar.println(format!(
                "iteration {it}: test accuracy {:.2} ± {:.2} % over {} nets{}",
                100.0 * r.mean, 100.0 * r.std, r.accuracies.len(), if r.quick { " (quick protocol)" } else { "" }
            ));
            log(serde_json::json!({"event": "eval", "iteration": it, "mean": r.mean, "std": r.std, "accuracies": r.accuracies,
                "epochs": r.epochs, "quick": r.quick}))?;
            if it == total {
                final_eval = Some(r);
            }
        }
        if due || it == 0 {
            // the synthetic grid of this iteration, for `report` (grids/iter_000100.png), and the start
            let (images, labels) = d.synthetic()?;
            let set = SynSet { images, labels, c: ds.channels, h: ds.height, w: ds.width, meta: Default::default() };
            let png = export::grid_png_bytes(&set, ds.classes.len(), cfg.distill.ipc, &ds.mean, &ds.std)?;
            std::fs::create_dir_all(cfg.out.join("grids"))?;
            export::atomic_write(&cfg.out.join("grids").join(format!("iter_{it:06}.png")), &png)?;
            if it == 0 {
                // the set it starts from, for the report's "before" disk and PCA
                export::atomic_write(&cfg.out.join("grids").join("iter_000000.safetensors"), &export::safetensors_bytes(&set)?)?;
            }
        }
        if it >= total {
            break;
        }
        let t = std::time::Instant::now();
        if cfg.trace.contains(&it) {
            let trace = d.step_traced(&ds, &gpu.describe())?;
            step_secs += t.elapsed().as_secs_f64();
            let dir = cfg.out.join("trace");
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            export::atomic_write(&dir.join(format!("iter_{it}.safetensors")), &trace.to_safetensors()?)?;
        } else {
            d.step(&ds)?;
            step_secs += t.elapsed().as_secs_f64();
        }
        let done = d.iteration();
        if done - start_it == 2 && total > done {
            // measured, not guessed: what the rest of the distillation will take here
            let left = step_secs / 2.0 * (total - done) as f64;
            if left > 600.0 {
                let hint = if cpu { "; `--sizes demo` finishes in minutes" } else { "" };
                bar.println(format!("{:.2} s per iteration here: the remaining {} iterations take about {:.1} h (evaluations not counted){hint}",
                    step_secs / 2.0, total - done, left / 3600.0));
            }
        }
        if cfg.log_every > 0 && (done % cfg.log_every == 0 || done == total) {
            // the loss and the divergence flag in one read-back
            let raw = gpu.read_many(&[d.loss_source(), d.health_source()])?;
            if let Some(at) = Distiller::diverged_at(&raw[1]) {
                return Err(diverged(&mut log, at, "a synthetic pixel", last_good));
            }
            let (loss, per_class) = d.loss_from(&raw[0]);
            if !loss.is_finite() {
                return Err(diverged(&mut log, done, "the loss", last_good));
            }
            let spi = step_secs / (done - start_it) as f64;
            bar.set_message(format!("loss {loss:.4}  {spi:.2} s/it"));
            log(serde_json::json!({"event": "loss", "iteration": done, "loss": loss, "per_class": per_class, "seconds_per_iteration": spi}))?;
        }
        if cfg.checkpoint_every > 0 && done % cfg.checkpoint_every == 0 {
            let ck = d.checkpoint()?;
            if !finite_state(&ck) {
                return Err(diverged(&mut log, first_bad(gpu, &d)?.unwrap_or(done), "a synthetic pixel or its momentum", last_good));
            }
            write_checkpoint(&cfg.out, &ck, cfg, kernels_json(gpu))?;
            last_good = Some(done);
        }
        bar.set_position(done as u64);
    }
    bar.finish_and_clear();
    let ck = d.checkpoint()?;
    if !finite_state(&ck) {
        return Err(diverged(&mut log, first_bad(gpu, &d)?.unwrap_or(d.iteration()), "a synthetic pixel or its momentum", last_good));
    }
    write_checkpoint(&cfg.out, &ck, cfg, kernels_json(gpu))?;
    let (images, labels) = d.synthetic()?;
    let set = SynSet { images, labels, c: ds.channels, h: ds.height, w: ds.width, meta: export_meta(cfg, &ds, gpu, d.iteration()) };
    for (name, bytes) in export::set_files(&set, ds.classes.len(), cfg.distill.ipc, &ds.mean, &ds.std)? {
        export::atomic_write(&cfg.out.join(name), &bytes)?;
    }
    if cfg.export_images {
        export::write_image_folder(&cfg.out.join("images"), &set, &ds.classes, &ds.mean, &ds.std)?;
    }
    let steps = d.iteration() - start_it;
    Ok(Outcome { out: cfg.out.clone(), settings: settings_line(cfg), steps, final_eval, seconds_per_iteration: step_secs / steps.max(1) as f64 })
}
