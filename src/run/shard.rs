//! run::shard: a job split over processes — which part is this process's (`Shard`, from `I/N` or from the
//! scheduler's environment: Slurm job arrays, Kubernetes Indexed Jobs), and the merge of the parts: class shards of a
//! distillation into one synthetic set, network shards of an evaluation into one mean ± std. The merge checks that
//! the parts belong together and fit exactly, and says which part breaks that.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::RunConfig;
use crate::eval::{mean_std, EvalConfig};
use crate::export::{self, SynSet};

/// Part `index` of `count` (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// "I/N" (0 ≤ I < N), or "auto": the scheduler's environment — a Slurm job array (SLURM_ARRAY_TASK_ID counted
    /// from SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT tasks) or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, with
    /// the count in HYPERDISTILL_SHARDS).
    pub fn parse(spec: &str) -> Result<Shard> {
        Self::parse_with(spec, &|k| std::env::var(k).ok())
    }

    /// `parse` with the environment given (tests).
    pub fn parse_with(spec: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Shard> {
        let num = |k: &str| -> Result<Option<usize>> {
            env(k).map(|v| v.trim().parse::<usize>().with_context(|| format!("{k}={v}: not a count"))).transpose()
        };
        let s = if spec.trim() == "auto" {
            if let (Some(id), Some(count)) = (num("SLURM_ARRAY_TASK_ID")?, num("SLURM_ARRAY_TASK_COUNT")?) {
                let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
                Shard { index: id.checked_sub(min).context("SLURM_ARRAY_TASK_ID below SLURM_ARRAY_TASK_MIN")?, count }
            } else if let Some(index) = num("JOB_COMPLETION_INDEX")? {
                let count = num("HYPERDISTILL_SHARDS")?.context("JOB_COMPLETION_INDEX is set but HYPERDISTILL_SHARDS (the number of shards) is not")?;
                Shard { index, count }
            } else {
                bail!("--shard auto: no scheduler found (SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT, or JOB_COMPLETION_INDEX and HYPERDISTILL_SHARDS)");
            }
        } else {
            let (i, n) = spec.split_once('/').with_context(|| format!("--shard {spec}: expected I/N (0 ≤ I < N) or auto"))?;
            let p = |v: &str| v.trim().parse::<usize>().with_context(|| format!("--shard {spec}: expected I/N (0 ≤ I < N) or auto"));
            Shard { index: p(i)?, count: p(n)? }
        };
        if s.count == 0 || s.index >= s.count {
            bail!("shard {}/{}: the index must be below the number of shards (0-based)", s.index, s.count);
        }
        Ok(s)
    }

    /// The classes of this shard among `total`: every count-th class from the index on (round robin, so that shards
    /// of classes of similar size get similar work).
    pub fn classes(&self, total: usize) -> Result<Vec<usize>> {
        if self.count > total {
            bail!("{} shards but only {total} classes: at most one shard per class", self.count);
        }
        Ok((self.index..total).step_by(self.count).collect())
    }

    /// The networks of this shard among `total` evaluation networks: index, index + count, …
    pub fn nets(&self, total: usize) -> Vec<usize> {
        (self.index..total).step_by(self.count).collect()
    }

    /// The folder of this shard under a run's output folder.
    pub fn folder(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What an evaluation shard writes (`eval --json`): the accuracies of its networks and everything that must agree
/// between the shards of one evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalPart {
    pub synset: PathBuf,
    /// SHA-256 of the set file: the shards must have evaluated the same bytes.
    pub synset_sha256: String,
    pub dataset: String,
    pub arch: String,
    pub seed: u64,
    pub protocol: EvalConfig,
    /// Networks of the whole evaluation (`protocol.nets`) and this part's indices among them, with their accuracies.
    pub nets: Vec<usize>,
    pub accuracies: Vec<f64>,
    pub shard: Option<String>,
    /// The dataset's class names, and per network (in `nets`' order) its confusion matrix on the test split,
    /// [true class, predicted class] row-major; empty in files written before 0.2.
    #[serde(default)]
    pub classes: Vec<String>,
    #[serde(default)]
    pub confusion: Vec<Vec<u64>>,
}

/// The hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::Digest;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}

/// What a merge made.
pub enum Merged {
    /// A synthetic set of `classes` classes from `shards` class shards, at `iteration`.
    Set { classes: usize, shards: usize, iteration: usize },
    /// The evaluation of every network: mean ± std over `accuracies` (in network order).
    Eval { accuracies: Vec<f64>, mean: f64, std: f64, arch: String },
}

/// Merge the parts in `inputs` into `out`: run folders of a sharded distillation (each with its synset.safetensors
/// and config.toml) into the folder `out`, or evaluation parts (`eval --json` files) into the file `out`.
pub fn merge(out: &Path, inputs: &[PathBuf]) -> Result<Merged> {
    if inputs.is_empty() {
        bail!("merge: no parts given");
    }
    if inputs.iter().all(|p| p.is_dir()) {
        merge_sets(out, inputs)
    } else if inputs.iter().all(|p| p.is_file()) {
        merge_evals(out, inputs)
    } else {
        bail!("merge: give either run folders of a sharded distillation or `eval --json` files, not both (or a path that does not exist)")
    }
}

fn merge_sets(out: &Path, dirs: &[PathBuf]) -> Result<Merged> {
    let mut parts = vec![];
    for d in dirs {
        let set = export::read_safetensors(&d.join("synset.safetensors")).with_context(|| format!("{}: not a finished run", d.display()))?;
        let cfg = RunConfig::from_toml_file(&d.join("config.toml"))?;
        parts.push((d, set, cfg));
    }
    let (d0, set0, cfg0) = &parts[0];
    // shards differ in their part of the classes and where they write, in nothing else that shapes the images
    let neutral = |c: &RunConfig| RunConfig { shard: String::new(), trace: vec![], out: PathBuf::new(), distill: crate::distill::DistillConfig { classes: vec![], ..c.distill.clone() }, ..c.clone() };
    let iteration = |s: &SynSet| s.meta.get("iteration").cloned().unwrap_or_default();
    let names = set0.meta.get("classes").cloned().unwrap_or_default();
    let total = names.split('|').count();
    let mut owner: BTreeMap<u32, &Path> = BTreeMap::new();
    for (d, set, cfg) in &parts {
        let diff = neutral(cfg0).trajectory_differences(&neutral(cfg))?;
        if !diff.is_empty() {
            bail!("{} and {} are not shards of one run ({} → {}):\n  {}", d0.display(), d.display(), d0.display(), d.display(), diff.join("\n  "));
        }
        if iteration(set) != iteration(set0) {
            bail!("{} stopped at iteration {}, {} at {}: merge shards of the same length", d.display(), iteration(set), d0.display(), iteration(set0));
        }
        if set.meta.get("classes") != Some(&names) || set.shape() != set0.shape() {
            bail!("{} and {} come from different datasets", d0.display(), d.display());
        }
        let mut seen = std::collections::BTreeSet::new();
        for &l in &set.labels {
            if seen.insert(l)
                && let Some(other) = owner.insert(l, d)
            {
                bail!("class {l} is in two shards: {} and {}", other.display(), d.display());
            }
        }
    }
    let missing: Vec<usize> = (0..total).filter(|c| !owner.contains_key(&(*c as u32))).collect();
    if !missing.is_empty() {
        bail!("the shards given hold {} of {total} classes: classes {missing:?} are missing (a shard not given, or not finished?)", owner.len());
    }
    // the images class by class, as the unsplit run stores them
    let per = set0.shape().len();
    let mut images = Vec::with_capacity(parts.iter().map(|p| p.1.images.len()).sum());
    let mut labels = vec![];
    for c in 0..total as u32 {
        for (_, set, _) in &parts {
            for (i, &l) in set.labels.iter().enumerate().filter(|(_, l)| **l == c) {
                images.extend_from_slice(&set.images[i * per..(i + 1) * per]);
                labels.push(l);
            }
        }
    }
    let mut meta = set0.meta.clone();
    meta.insert("shards".into(), parts.iter().map(|(d, s, _)| format!("{} ({})", d.display(), class_list(&s.labels))).collect::<Vec<_>>().join("; "));
    let merged_cfg = RunConfig { out: out.to_path_buf(), ..neutral(cfg0) };
    meta.insert("config".into(), merged_cfg.to_toml()?);
    let set = SynSet { images, labels, meta, ..set0.clone() };
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let floats = |k: &str| -> Vec<f32> { set.meta.get(k).map(|v| v.split(',').filter_map(|x| x.parse().ok()).collect()).unwrap_or_default() };
    let (mean, std) = (floats("mean"), floats("std"));
    let ipc = set.labels.len() / total.max(1);
    for (name, bytes) in export::set_files(&set, total, ipc, &mean, &std)? {
        export::atomic_write(&out.join(name), &bytes)?;
    }
    export::atomic_write(&out.join("config.toml"), merged_cfg.to_toml()?.as_bytes())?;
    Ok(Merged::Set { classes: total, shards: parts.len(), iteration: iteration(set0).parse().unwrap_or(0) })
}

/// "0, 3, 6" from a shard's labels.
fn class_list(labels: &[u32]) -> String {
    let mut c: Vec<u32> = labels.to_vec();
    c.dedup();
    c.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

fn merge_evals(out: &Path, files: &[PathBuf]) -> Result<Merged> {
    let mut parts = vec![];
    for f in files {
        let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        let p: EvalPart = serde_json::from_str(&text).with_context(|| format!("{}: not an `eval --json` file", f.display()))?;
        parts.push((f, p));
    }
    let (f0, p0) = &parts[0];
    let total = p0.protocol.nets;
    let mut acc: Vec<Option<(f64, &Path)>> = vec![None; total];
    let mut confusion: Vec<Option<Vec<u64>>> = vec![None; total];
    for (f, p) in &parts {
        for (what, a, b) in [
            ("set (SHA-256)", &p0.synset_sha256, &p.synset_sha256),
            ("dataset", &p0.dataset, &p.dataset),
            ("network", &p0.arch, &p.arch),
        ] {
            if a != b {
                bail!("{} and {} evaluated another {what}: {a} → {b}", f0.display(), f.display());
            }
        }
        if p.seed != p0.seed {
            bail!("{} and {} used other seeds: {} → {}", f0.display(), f.display(), p0.seed, p.seed);
        }
        if p.protocol != p0.protocol {
            bail!("{} and {} used other protocols: {:?} → {:?}", f0.display(), f.display(), p0.protocol, p.protocol);
        }
        if p.nets.len() != p.accuracies.len() {
            bail!("{}: {} network indices but {} accuracies", f.display(), p.nets.len(), p.accuracies.len());
        }
        for (&k, &a) in p.nets.iter().zip(&p.accuracies) {
            match acc.get_mut(k) {
                None => bail!("{}: network {k}, but the evaluation has {total} (0–{})", f.display(), total.saturating_sub(1)),
                Some(Some((_, other))) => bail!("network {k} is in two parts: {} and {}", other.display(), f.display()),
                Some(slot) => *slot = Some((a, f.as_path())),
            }
        }
        if p.confusion.len() == p.nets.len() {
            for (&k, m) in p.nets.iter().zip(&p.confusion) {
                confusion[k] = Some(m.clone());
            }
        }
    }
    let missing: Vec<usize> = (0..total).filter(|&k| acc[k].is_none()).collect();
    if !missing.is_empty() {
        bail!("the parts given hold {} of {total} networks: networks {missing:?} are missing", total - missing.len());
    }
    let accuracies: Vec<f64> = acc.iter().map(|a| a.expect("checked").0).collect();
    let (mean, std) = mean_std(&accuracies);
    // the confusion matrices where every part has them
    let confusion = confusion.into_iter().collect::<Option<Vec<_>>>().unwrap_or_default();
    let merged = EvalPart { nets: (0..total).collect(), accuracies: accuracies.clone(), shard: None, confusion, ..p0.clone() };
    export::atomic_write(out, serde_json::to_string_pretty(&merged)?.as_bytes())?;
    Ok(Merged::Eval { accuracies, mean, std, arch: p0.arch.clone() })
}
