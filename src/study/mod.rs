//! study: many runs as one experiment — a grid of methods × seeds × IPC × any option, each cell an ordinary distillation
//! run under one folder, resumable (finished cells are skipped, interrupted ones resume), on one machine or as a Slurm
//! job array; then the table a paper needs: per cell the mean ± sd over seeds, and for the pairs named the paired
//! difference with its 95 % interval (`stats`). Runs of different methods with the same seed share their initial
//! images, real batches, networks and augmentations (every draw is keyed by seed, iteration and class), so the pairs
//! are paired by design.

pub mod stats;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::distill::Method;
use crate::gpu::Gpu;
use crate::run::{self, RunConfig, Start};

/// A study as its TOML file gives it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudyConfig {
    /// Where the runs (`runs/<cell>/seed<seed>`) and the tables go.
    pub out: PathBuf,
    /// The dataset every run distills ("embedded", a path, or a cached name).
    #[serde(default = "embedded")]
    pub dataset: String,
    pub methods: Vec<Method>,
    pub seeds: Vec<u64>,
    #[serde(default = "ten")]
    pub ipc: Vec<usize>,
    /// Pairs compared, [A, B]: B − A per seed. Default: every method against its +HDD variant among `methods`.
    #[serde(default)]
    pub pairs: Vec<[Method; 2]>,
    /// Further axes of the grid: an option's dotted path in the run configuration and its values, e.g.
    /// `"distill.k" = [0.5, 1.0, 2.0]`.
    #[serde(default)]
    pub grid: BTreeMap<String, Vec<toml::Value>>,
    /// What every run shares, as a run configuration's TOML (`[run.distill]`, `[run.eval]`, `eval_every`, …), laid over
    /// each method's published values.
    #[serde(default)]
    pub run: toml::Table,
}

fn embedded() -> String {
    "embedded".into()
}

fn ten() -> Vec<usize> {
    vec![10]
}

/// One run of the study.
#[derive(Clone, Debug)]
pub struct Cell {
    /// The group it belongs to (method, IPC and the grid's values), the seed, and its configuration.
    pub group: String,
    pub method: Method,
    pub ipc: usize,
    pub axes: Vec<(String, toml::Value)>,
    pub seed: u64,
    pub cfg: RunConfig,
}

impl StudyConfig {
    /// Read a study. The copy a study keeps in its folder (`<out>/study.toml`, written by `prepare`) puts `out` at that
    /// folder, wherever it has moved since.
    pub fn from_toml_file(path: &Path) -> Result<StudyConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut s: StudyConfig = toml::from_str(&text).with_context(|| format!("{}: not a study", path.display()))?;
        if s.methods.is_empty() || s.seeds.is_empty() || s.ipc.is_empty() {
            bail!("{}: a study needs at least one method, seed and IPC", path.display());
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(d) = s.seeds.iter().find(|x| !seen.insert(**x)) {
            bail!("{}: seed {d} is listed twice", path.display());
        }
        if s.ipc.contains(&0) {
            bail!("{}: ipc 0: a synthetic set needs at least one image per class", path.display());
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(m) = s.methods.iter().find(|m| !seen.insert(m.name())) {
            bail!("{}: method {} is listed twice", path.display(), m.name());
        }
        if let Some(dir) = path.parent().filter(|d| path.file_name().is_some_and(|n| n == "study.toml") && d.join(COPY_MARK).is_file()) {
            s.out = dir.to_path_buf();
        }
        Ok(s)
    }

    /// The pairs compared: the file's, or every X against X+HDD among the methods.
    pub fn pairs(&self) -> Vec<[Method; 2]> {
        if !self.pairs.is_empty() {
            return self.pairs.clone();
        }
        self.methods.iter().filter(|m| !m.hdd()).map(|&m| [m, m.twin()]).filter(|[_, p]| self.methods.contains(p)).collect()
    }

    /// Every cell, in a fixed order (methods, IPC, grid, then seeds): `--cell I` and a Slurm array count on it.
    pub fn cells(&self) -> Result<Vec<Cell>> {
        let mut combos: Vec<Vec<(String, toml::Value)>> = vec![vec![]];
        for (path, values) in &self.grid {
            combos = combos.iter().flat_map(|c| values.iter().map(move |v| [c.clone(), vec![(path.clone(), v.clone())]].concat())).collect();
        }
        let mut out = vec![];
        for &method in &self.methods {
            for &ipc in &self.ipc {
                for axes in &combos {
                    let mut group = format!("{}-ipc{ipc}", method.name());
                    for (p, v) in axes {
                        group.push_str(&format!("-{}={}", p.rsplit('.').next().unwrap_or(p), v.to_string().trim_matches('"')));
                    }
                    for &seed in &self.seeds {
                        let cfg = self.cell_config(method, ipc, axes, seed, &group)?;
                        out.push(Cell { group: group.clone(), method, ipc, axes: axes.clone(), seed, cfg });
                    }
                }
            }
        }
        Ok(out)
    }

    /// A cell's run: the method's published values, the study's shared options over them, the grid's values, the seed.
    fn cell_config(&self, method: Method, ipc: usize, axes: &[(String, toml::Value)], seed: u64, group: &str) -> Result<RunConfig> {
        let mut c = RunConfig { dataset: self.dataset.clone(), ..RunConfig::default() };
        c.distill.method = method;
        c.distill.ipc = ipc;
        c.distill.apply_method_defaults();
        if method.dance() {
            c.eval = crate::eval::EvalConfig { width: c.eval.width, arch: c.eval.arch, ..crate::eval::EvalConfig::dance() };
        }
        let mut value = toml::Value::try_from(&c)?;
        merge(&mut value, &toml::Value::Table(self.run.clone()));
        for (path, v) in axes {
            set_path(&mut value, path, v.clone()).with_context(|| format!("grid: {path}"))?;
        }
        let mut c: RunConfig = value.try_into().context("the study's [run] options")?;
        // what the study decides, whatever [run] says
        c.distill.seed = seed;
        c.distill.method = method;
        c.distill.ipc = ipc;
        c.dataset = self.dataset.clone();
        c.out = self.out.join("runs").join(group).join(format!("seed{seed}"));
        Ok(c)
    }
}

/// Lay `over` onto `base`, table by table.
fn merge(base: &mut toml::Value, over: &toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(slot) if slot.is_table() && v.is_table() => merge(slot, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// Set the option at a dotted path ("distill.k") to `v`.
fn set_path(root: &mut toml::Value, path: &str, v: toml::Value) -> Result<()> {
    let mut at = root;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, p) in parts.iter().enumerate() {
        let t = at.as_table_mut().with_context(|| format!("'{}' is not a table", parts[..i].join(".")))?;
        if i + 1 == parts.len() {
            if !t.contains_key(*p) {
                bail!("no option '{path}' in a run's configuration");
            }
            t.insert(p.to_string(), v);
            return Ok(());
        }
        at = t.get_mut(*p).with_context(|| format!("no option '{path}' in a run's configuration"))?;
    }
    Ok(())
}

/// How far a cell got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellState {
    Done,
    /// A checkpoint to resume from.
    Interrupted,
    /// Nothing yet (or a start killed before its first checkpoint).
    New,
}

/// What the cell's folder holds.
pub fn cell_state(cell: &Cell) -> CellState {
    let out = &cell.cfg.out;
    if final_accuracy(cell).is_some() || (cell.cfg.eval.nets == 0 && out.join("synset.safetensors").exists()) {
        CellState::Done
    } else if out.join("checkpoint.safetensors").exists() {
        CellState::Interrupted
    } else {
        CellState::New
    }
}

/// The cell's final test accuracy (the mean over its evaluation networks, a fraction), from its metrics.jsonl.
pub fn final_accuracy(cell: &Cell) -> Option<f64> {
    accuracy_at(cell, cell.cfg.distill.iterations)
}

/// The cell's evaluated accuracy at iteration `it`, if it was evaluated there.
pub fn accuracy_at(cell: &Cell, it: usize) -> Option<f64> {
    let text = std::fs::read_to_string(cell.cfg.out.join("metrics.jsonl")).ok()?;
    // the last one: a resumed run may have evaluated the same iteration twice
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "eval" && v["iteration"].as_u64() == Some(it as u64))
        .find_map(|v| v["mean"].as_f64())
}

/// Run the study's cells (`only`: just these indices), skipping finished ones and resuming interrupted ones; `log` says
/// what happens.
pub fn run_cells(gpu: &Gpu, study: &StudyConfig, only: Option<&[usize]>, cache: &Path, log: &mut dyn FnMut(&str)) -> Result<()> {
    let cells = study.cells()?;
    for (i, cell) in cells.iter().enumerate() {
        if only.is_some_and(|o| !o.contains(&i)) {
            continue;
        }
        let label = format!("cell {i}/{}: {} seed {}", cells.len(), cell.group, cell.seed);
        let start = match cell_state(cell) {
            CellState::Done => {
                check_recorded(cell).with_context(|| label.clone())?;
                log(&format!("{label}: done, skipped"));
                continue;
            }
            CellState::Interrupted => Start::Resume,
            CellState::New => Start::Overwrite,
        };
        log(&format!("{label}: {}", if start == Start::Resume { "resuming" } else { "running" }));
        run::run(gpu, &cell.cfg, start, cache).with_context(|| label.clone())?;
    }
    Ok(())
}

/// One line of the study's table: a group's accuracies over seeds.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub group: String,
    pub method: String,
    pub ipc: usize,
    pub axes: BTreeMap<String, String>,
    /// seed → final accuracy (mean over the evaluation networks, a fraction)
    pub accuracies: BTreeMap<u64, f64>,
    pub mean: f64,
    pub sd: f64,
    /// seed → accuracy of the starting set (iteration 0), where it was evaluated: the real images a seed starts from,
    /// the same for every method of the seed whose initialisation is the same
    pub start: BTreeMap<u64, f64>,
}

/// One pair of the table: B against A in the same IPC and grid values.
#[derive(Clone, Debug, Serialize)]
pub struct PairRow {
    pub a: String,
    pub b: String,
    /// B − A in accuracy points (percent), over the seeds both have.
    pub difference: stats::Paired,
    pub seeds: Vec<u64>,
}

/// The table of a study: what `study` writes as table.md, table.csv and table.json.
#[derive(Clone, Debug, Serialize)]
pub struct Table {
    pub rows: Vec<Row>,
    pub pairs: Vec<PairRow>,
    /// Cells without a final accuracy yet.
    pub missing: Vec<String>,
    /// Every run's configuration (TOML), by folder.
    pub configs: BTreeMap<String, String>,
    pub version: String,
    pub interval: &'static str,
}

/// Collect the table from the cells' folders.
pub fn table(study: &StudyConfig) -> Result<Table> {
    let cells = study.cells()?;
    let mut rows: Vec<Row> = vec![];
    let mut missing = vec![];
    let mut configs = BTreeMap::new();
    for cell in &cells {
        configs.insert(cell.cfg.out.display().to_string(), cell.cfg.to_toml()?);
        let row = match rows.iter_mut().find(|r| r.group == cell.group) {
            Some(r) => r,
            None => {
                rows.push(Row {
                    group: cell.group.clone(),
                    method: cell.method.name().into(),
                    ipc: cell.ipc,
                    axes: cell.axes.iter().map(|(p, v)| (p.clone(), v.to_string())).collect(),
                    accuracies: BTreeMap::new(),
                    mean: f64::NAN,
                    sd: f64::NAN,
                    start: BTreeMap::new(),
                });
                rows.last_mut().expect("pushed")
            }
        };
        match final_accuracy(cell) {
            Some(a) => {
                row.accuracies.insert(cell.seed, a);
                if let Some(a0) = accuracy_at(cell, 0).filter(|_| cell.cfg.distill.iterations > 0) {
                    row.start.insert(cell.seed, a0);
                }
            }
            None => missing.push(format!("{} seed {}", cell.group, cell.seed)),
        }
    }
    for r in &mut rows {
        (r.mean, r.sd) = stats::mean_sd(&r.accuracies.values().copied().collect::<Vec<_>>());
    }
    let mut pairs = vec![];
    for [a, b] in study.pairs() {
        for ra in rows.iter().filter(|r| r.method == a.name()) {
            let Some(rb) = rows.iter().find(|r| r.method == b.name() && r.ipc == ra.ipc && r.axes == ra.axes) else { continue };
            let seeds: Vec<u64> = ra.accuracies.keys().filter(|s| rb.accuracies.contains_key(s)).copied().collect();
            let xa: Vec<f64> = seeds.iter().map(|s| 100.0 * ra.accuracies[s]).collect();
            let xb: Vec<f64> = seeds.iter().map(|s| 100.0 * rb.accuracies[s]).collect();
            pairs.push(PairRow { a: ra.group.clone(), b: rb.group.clone(), difference: stats::paired(&xa, &xb), seeds });
        }
    }
    Ok(Table {
        rows,
        pairs,
        missing,
        configs,
        version: env!("CARGO_PKG_VERSION").into(),
        interval: "95 % confidence interval of the mean paired difference, Student's t with n − 1 degrees of freedom",
    })
}

/// One table as text: its column headers and its rows (what Markdown and the report's HTML both lay out).
pub struct TextTable {
    pub headers: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// The groups' table (accuracies over seeds) and, where there are pairs, the pairs' table, as text.
    pub fn text_tables(&self) -> Vec<TextTable> {
        let groups = TextTable {
            headers: vec!["group", "seeds", "test accuracy (%) mean ± sd", "per seed", "at iteration 0: mean ± sd"],
            rows: self
                .rows
                .iter()
                .map(|r| {
                    let per: Vec<String> = r.accuracies.iter().map(|(k, a)| format!("{k}: {:.2}", 100.0 * a)).collect();
                    let start = if r.start.is_empty() {
                        "—".to_string()
                    } else {
                        let (m, sd) = stats::mean_sd(&r.start.values().copied().collect::<Vec<_>>());
                        format!("{:.2} ± {:.2} ({} seeds)", 100.0 * m, 100.0 * sd, r.start.len())
                    };
                    vec![r.group.clone(), r.accuracies.len().to_string(), format!("{:.2} ± {:.2}", 100.0 * r.mean, 100.0 * r.sd), per.join(", "), start]
                })
                .collect(),
        };
        let mut out = vec![groups];
        if !self.pairs.is_empty() {
            out.push(TextTable {
                headers: vec!["B − A", "pairs", "mean difference (points)", "95 % interval", "p (paired t)"],
                rows: self
                    .pairs
                    .iter()
                    .map(|p| {
                        let d = &p.difference;
                        vec![
                            format!("{} − {}", p.b, p.a),
                            d.n.to_string(),
                            format!("{:+.2} ± {:.2} (sd)", d.mean, d.sd),
                            format!("[{:+.2}, {:+.2}]", d.low, d.high),
                            format!("{:.3}", d.p),
                        ]
                    })
                    .collect(),
            });
        }
        out
    }

    /// The table in Markdown: accuracies per group, then the pairs.
    pub fn markdown(&self) -> String {
        let tables: Vec<String> = self
            .text_tables()
            .iter()
            .map(|t| {
                let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
                let headers: Vec<String> = t.headers.iter().map(|h| h.to_string()).collect();
                let rule = format!("|{}\n", "---|".repeat(t.headers.len()));
                let rows: String = t.rows.iter().map(|r| line(r)).collect();
                format!("{}{rule}{rows}", line(&headers))
            })
            .collect();
        let mut s = tables.join("\n");
        if !self.pairs.is_empty() {
            s.push_str(&format!("\nInterval: {}.\n", self.interval));
        }
        if !self.missing.is_empty() {
            s.push_str(&format!("\nNot finished: {}.\n", self.missing.join(", ")));
        }
        s
    }

    /// The table as CSV: one line per run (group, seed, accuracy), then one per pair.
    pub fn csv(&self) -> String {
        let mut s = String::from("kind,group,method,ipc,seed,accuracy,mean,sd,low,high,p\n");
        for r in &self.rows {
            for (seed, a) in &r.accuracies {
                s.push_str(&format!("run,{},{},{},{seed},{a},,,,,\n", r.group, r.method, r.ipc));
            }
            s.push_str(&format!("group,{},{},{},,,{},{},,,\n", r.group, r.method, r.ipc, r.mean, r.sd));
        }
        for p in &self.pairs {
            let d = &p.difference;
            s.push_str(&format!("pair,{} - {},,,,,{},{},{},{},{}\n", p.b, p.a, d.mean, d.sd, d.low, d.high, d.p));
        }
        s
    }

    /// Write table.md, table.csv and table.json into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        crate::export::atomic_write(&dir.join("table.md"), self.markdown().as_bytes())?;
        crate::export::atomic_write(&dir.join("table.csv"), self.csv().as_bytes())?;
        crate::export::atomic_write(&dir.join("table.json"), serde_json::to_string_pretty(self)?.as_bytes())?;
        Ok(())
    }
}

/// A Slurm job array running every cell (one task each) and the table job after it, as one shell script.
pub fn slurm_script(study_file: &Path, study: &StudyConfig) -> Result<String> {
    let n = study.cells()?.len();
    let file = std::fs::canonicalize(study_file).unwrap_or_else(|_| study_file.to_path_buf());
    let f = file.display();
    Ok(format!(
        "#!/bin/bash\n# The {n} cells of the study in {out} as a Slurm job array (one cell a task), then its table; written by\n\
         # `hyperdistill study {f} --emit-slurm`. SBATCH_OPTS adds options to both sbatch calls (e.g. \"--gres=gpu:1\"), HYPERDISTILL\n\
         # names the binary. A cell that was interrupted resumes, a finished one is skipped: submit again to finish a study.\n\
         set -euo pipefail\nhd=${{HYPERDISTILL:-hyperdistill}}\n# shellcheck disable=SC2206\nextra=(${{SBATCH_OPTS:-}})\n\
         cells=$(sbatch --parsable \"${{extra[@]}}\" --job-name=hd-study --array=0-{last} --wrap \"$hd study {f} --cell \\$SLURM_ARRAY_TASK_ID\")\n\
         table=$(sbatch --parsable \"${{extra[@]}}\" --job-name=hd-study-table --dependency=afterany:$cells --wrap \"$hd study {f} --table\")\n\
         echo \"cells $cells, table $table\"\n",
        out = study.out.display(),
        last = n.saturating_sub(1),
    ))
}

/// Written beside the study's copy of its TOML: the folder is a study's.
const COPY_MARK: &str = "table.md";

/// Before running: the study's folder gets a copy of its TOML (what `report STUDY_DIR` reads).
pub fn prepare(file: &Path, study: &StudyConfig) -> Result<()> {
    std::fs::create_dir_all(&study.out).with_context(|| format!("creating {}", study.out.display()))?;
    let copy = study.out.join("study.toml");
    let same = std::fs::canonicalize(file).ok().zip(std::fs::canonicalize(&copy).ok()).is_some_and(|(a, b)| a == b);
    if !same {
        crate::export::atomic_write(&copy, &std::fs::read(file).with_context(|| format!("reading {}", file.display()))?)?;
    }
    Ok(())
}

/// A finished cell must have been run as the study now asks: else its accuracy would be reported under options it
/// was not made with.
fn check_recorded(cell: &Cell) -> Result<()> {
    let path = cell.cfg.out.join("config.toml");
    let Ok(recorded) = RunConfig::from_toml_file(&path) else { return Ok(()) };
    let mut diff = recorded.trajectory_differences(&cell.cfg)?;
    if recorded.eval != cell.cfg.eval {
        diff.push(format!("the evaluation: {} → {}", toml::to_string(&recorded.eval)?.replace('\n', " "), toml::to_string(&cell.cfg.eval)?.replace('\n', " ")));
    }
    if !diff.is_empty() {
        bail!(
            "{} was run with other options than the study now gives it (recorded → study):\n  {}\n\
             restore the study's options, or delete that folder to run the cell again",
            cell.cfg.out.display(),
            diff.join("\n  ")
        );
    }
    Ok(())
}

/// Append a line to the study's log (what ran, when): the study folder keeps its own history.
pub fn note(study: &StudyConfig, line: &str) -> Result<()> {
    std::fs::create_dir_all(&study.out)?;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(study.out.join("study.log"))?;
    writeln!(f, "{line}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracies_come_from_the_last_evaluation_of_an_iteration() {
        let dir = std::env::temp_dir().join(format!("hd-study-acc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cfg = RunConfig { out: dir.clone(), ..RunConfig::default() };
        cfg.distill.iterations = 300;
        let cell = Cell { group: "dm-ipc10".into(), method: Method::Dm, ipc: 10, axes: vec![], seed: 1, cfg };
        assert_eq!((final_accuracy(&cell), accuracy_at(&cell, 0)), (None, None), "no metrics yet");
        // a run evaluated at 0 and 300, then resumed and evaluated at 300 again (the later line counts)
        let lines = [
            r#"{"event":"start","iteration":0}"#,
            r#"{"event":"eval","iteration":0,"mean":0.7343}"#,
            r#"{"event":"loss","iteration":10,"loss":18.1}"#,
            r#"{"event":"eval","iteration":300,"mean":0.7900}"#,
            r#"{"event":"resume","iteration":250}"#,
            "not json",
            r#"{"event":"eval","iteration":300,"mean":0.7913}"#,
        ];
        std::fs::write(dir.join("metrics.jsonl"), lines.join("\n")).unwrap();
        assert_eq!(final_accuracy(&cell), Some(0.7913));
        assert_eq!(accuracy_at(&cell, 0), Some(0.7343));
        assert_eq!(accuracy_at(&cell, 10), None, "a loss line is no evaluation");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_study_files_are_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("hd-study-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let head = "out = \"o\"\n";
        for (body, want) in [
            ("", "missing field `out`"),
            ("methods = [\"dm\"]\nseeds = []\nipc = [10]\n", "at least one method, seed and IPC"),
            ("methods = [\"dm\"]\nseeds = [1, 1]\nipc = [10]\n", "seed 1 is listed twice"),
            ("methods = [\"dm\", \"dm\"]\nseeds = [1]\nipc = [10]\n", "method dm is listed twice"),
            ("methods = [\"dm\"]\nseeds = [1]\nipc = [0]\n", "ipc 0"),
            ("methods = [\"dm\", \"bogus\"]\nseeds = [1]\nipc = [10]\n", "unknown variant `bogus`"),
        ] {
            let path = dir.join("s.toml");
            std::fs::write(&path, if body.is_empty() { String::new() } else { format!("{head}{body}") }).unwrap();
            let e = format!("{:#}", StudyConfig::from_toml_file(&path).unwrap_err());
            assert!(e.contains("s.toml") && e.contains(want), "{body:?}: {e}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
