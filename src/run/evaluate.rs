//! run::evaluate: the evaluation job as `hyperdistill eval` runs it — an exported set and the dataset it was
//! distilled from (or another given), its mosaics expanded, optionally pruned, then each requested network trained on
//! it with the protocol and tested on the real test split.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::data;
use crate::distill::SetMetadata;
use crate::eval::{self, EvalConfig};
use crate::export;
use crate::gpu::Gpu;
use crate::nn::arch::Arch;

/// What to evaluate and how.
#[derive(Clone, Debug)]
pub struct EvalJob {
    /// A synset.safetensors written by `distill` (or the app).
    pub synset: PathBuf,
    /// The dataset to test on; None: the one the set's metadata names.
    pub dataset: Option<String>,
    pub eval: EvalConfig,
    /// Networks trained one after the other, each with `eval`.
    pub archs: Vec<Arch>,
    /// Seed of the networks' initialisation, batches and augmentation.
    pub seed: u64,
    /// Hyperbolic pruning of the set first: keep this fraction of each class (1 = all) …
    pub keep_syn: f64,
    /// … ranked with this many random networks.
    pub prune_nets: usize,
    /// Only these evaluation networks (indices among `eval.nets`): one part of an evaluation split over processes
    /// (`eval --shard`); None = all.
    pub nets: Option<Vec<usize>>,
    /// Trace this training step of the first ConvNet-3 (`eval::trace_step`) into `trace/eval_step_<STEP>.safetensors`
    /// beside the set.
    pub trace: Option<usize>,
}

/// The accuracies of one network of the pool on the set: networks `nets` (indices among `eval.nets`).
pub struct ArchResult {
    pub arch: Arch,
    pub nets: Vec<usize>,
    pub accuracies: Vec<f64>,
    /// Per network, its confusion matrix on the test split: [true class, predicted class], row-major.
    pub confusion: Vec<Vec<u64>>,
    /// The dataset's class names (the confusion matrices' order).
    pub classes: Vec<String>,
}

impl ArchResult {
    /// Mean and standard deviation (population) of the accuracies.
    pub fn mean_std(&self) -> (f64, f64) {
        eval::mean_std(&self.accuracies)
    }
}

/// Run `job`: `log` receives what happens (expansion, pruning, progress every 50 epochs).
pub fn evaluate_set(gpu: &Gpu, job: &EvalJob, cache: &Path, log: &mut dyn FnMut(&str)) -> Result<Vec<ArchResult>> {
    if !(job.keep_syn > 0.0 && job.keep_syn <= 1.0) {
        bail!("--keep-syn must be in (0, 1], got {}", job.keep_syn);
    }
    crate::validate::at_least_one("--prune-nets", job.prune_nets)?;
    job.eval.validate()?;
    let mut set = export::read_safetensors(&job.synset)?;
    let made = SetMetadata::read(&set.meta).with_context(|| format!("{}: metadata", job.synset.display()))?;
    let spec = job.dataset.clone().or(made.dataset_spec.clone()).unwrap_or_else(|| "embedded".into());
    let ds = data::open(&spec, cache).with_context(|| match &job.dataset {
        None => format!("{} names its dataset '{spec}' (recorded when it was distilled), which could not be opened; give the dataset with --dataset", job.synset.display()),
        Some(_) => format!("--dataset {spec}"),
    })?;
    if set.shape() != ds.shape() {
        bail!("{}: images are {}, dataset '{}' has {}", job.synset.display(), set.shape(), ds.name, ds.shape());
    }
    if let Some(&bad) = set.labels.iter().find(|&&l| l as usize >= ds.classes.len()) {
        bail!("{}: label {bad} but '{}' has {} classes", job.synset.display(), ds.name, ds.classes.len());
    }
    if made.mosaic {
        // IDM's partition and expansion (DANCE's multi-formation): networks train on the 4 upsampled quadrants
        let stored = set.labels.len();
        let shape = set.shape();
        (set.images, set.labels) = crate::mosaic::evaluation_set(set.images, set.labels, shape, true);
        log(&format!("mosaics: evaluating on the {} expanded images of the {stored} stored ones", set.labels.len()));
    }
    if job.keep_syn < 1.0 {
        let h = &made.hdd;
        let ranking = crate::prune::rank_synthetic(gpu, &set, ds.classes.len(), job.eval.width, job.prune_nets, h, job.seed, &indicatif::ProgressBar::hidden())?;
        let before = set.labels.len();
        set = crate::prune::keep_synthetic(&set, &ranking, job.keep_syn);
        log(&format!("pruned the synthetic set: kept {} of {before} images (k {}, clamp {:?}, {:?})", set.labels.len(), h.k, h.clamp, h.map));
    }
    if let Some(step) = job.trace {
        // network 0 of a ConvNet-3 evaluation, trained again up to the step: the evaluation below is not touched
        let cfg = EvalConfig { arch: Arch::ConvNet, ..job.eval.clone() };
        let tr = eval::trace_step(gpu, &ds, &set.images, &set.labels, &cfg, eval::net_seed(job.seed, 0), step)?;
        let dir = job.synset.parent().unwrap_or(Path::new(".")).join("trace");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("eval_step_{step}.safetensors"));
        export::atomic_write(&path, &tr.to_safetensors()?)?;
        log(&format!("traced training step {step} of the first ConvNet-3 into {}", path.display()));
    }
    let nets = job.nets.clone().unwrap_or_else(|| (0..job.eval.nets).collect());
    let mut out = vec![];
    for &arch in &job.archs {
        let cfg = EvalConfig { arch, ..job.eval.clone() };
        let tests = eval::evaluate_nets(gpu, &ds, &set.images, &set.labels, &cfg, job.seed, &nets, &mut |k, ep| {
            if ep % 50 == 0 {
                log(&format!("{} net {}/{} epoch {ep}/{}", arch.name(), k + 1, cfg.nets, cfg.epochs));
            }
        })?;
        out.push(ArchResult {
            arch,
            nets: nets.clone(),
            accuracies: tests.iter().map(|t| t.accuracy).collect(),
            confusion: tests.into_iter().map(|t| t.confusion).collect(),
            classes: ds.classes.clone(),
        });
    }
    Ok(out)
}
