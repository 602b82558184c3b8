//! report: what a run, a study or an evaluation did, as one self-contained HTML page (figures inlined as SVG, images
//! as data URIs: it opens offline, from anywhere) plus every figure as PNG and SVG beside it.
//!
//! - a run folder (`distill --out`): loss and per-class matching term over iterations (HDD: λ·d_L between each class's
//!   real and synthetic centroids), accuracy at each evaluation with every network's point, the synthetic grid at
//!   chosen iterations, and the Poincaré disk and PCA of the view network's features at the start and the end, drawn
//!   by the app's own projection code (`view`);
//! - a study (its TOML, or its folder): the table with its intervals, accuracy per group with each seed, the paired
//!   differences with their 95 % intervals, per group the loss of every seed and the first seed's final grid and disk;
//! - an evaluation (`eval --json`): accuracy per network and per class, and the confusion matrix.

pub mod plot;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use base64::Engine;

use crate::data::{self, Dataset};
use crate::export;
use crate::gpu::Gpu;
use crate::run::{EvalPart, RunConfig};
use crate::study::{self, StudyConfig};
use crate::view::{self, ViewFeatures};
use plot::{Figure, Plot};

/// What `report` was pointed at.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Run(PathBuf),
    /// The study's TOML file.
    Study(PathBuf),
    /// An `eval --json` file.
    Eval(PathBuf),
}

impl Input {
    /// A run folder (metrics.jsonl), a study (its TOML, or a folder holding study.toml), or an `eval --json` file.
    pub fn detect(path: &Path) -> Result<Input> {
        if path.is_dir() {
            if path.join("study.toml").is_file() {
                return Ok(Input::Study(path.join("study.toml")));
            }
            if path.join("metrics.jsonl").is_file() {
                return Ok(Input::Run(path.to_path_buf()));
            }
            bail!("{}: neither a run folder (no metrics.jsonl) nor a study's (no study.toml)", path.display());
        }
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => Ok(Input::Study(path.to_path_buf())),
            Some("json") => Ok(Input::Eval(path.to_path_buf())),
            _ if !path.exists() => bail!("{}: no such file or folder", path.display()),
            _ => bail!("{}: give a run folder, a study (TOML or folder) or an `eval --json` file", path.display()),
        }
    }

    /// Where the report goes unless told: `report/` in the run's or study's folder, beside an evaluation's file.
    pub fn default_out(&self) -> Result<PathBuf> {
        Ok(match self {
            Input::Run(d) => d.join("report"),
            Input::Study(f) => StudyConfig::from_toml_file(f)?.out.join("report"),
            Input::Eval(f) => {
                let stem = f.file_stem().map_or("eval".into(), |s| s.to_string_lossy().to_string());
                f.with_file_name(format!("{stem}-report"))
            }
        })
    }
}

/// How to draw.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The grids shown (iterations); None: up to five, evenly spread over those saved, first and last included.
    pub grids: Option<Vec<usize>>,
    /// Skip the disk and PCA (they need the dataset and a GPU adapter).
    pub no_features: bool,
    /// The dataset cache (to open a run's dataset for the disk and PCA).
    pub cache: PathBuf,
}

/// What was written.
pub struct Written {
    pub html: PathBuf,
    pub files: Vec<PathBuf>,
    /// What could not be drawn, and why (shown on the page too).
    pub notes: Vec<String>,
}

/// Write the report of `input` into `out`.
pub fn report(gpu: Option<&Gpu>, input: &Input, out: &Path, opts: &Options) -> Result<Written> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut page = Page::default();
    match input {
        Input::Run(dir) => run_report(gpu, dir, opts, &mut page, "")?,
        Input::Study(file) => study_report(gpu, file, opts, &mut page)?,
        Input::Eval(file) => {
            let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
            let part: EvalPart = serde_json::from_str(&text).with_context(|| format!("{}: not an `eval --json` file", file.display()))?;
            page.title = format!("evaluation of {}", part.synset.display());
            eval_section(&part, &mut page, "")?;
        }
    }
    page.write(out)
}

/// The page being built: sections of HTML, the figures they show, notes.
#[derive(Default)]
struct Page {
    title: String,
    body: String,
    figures: Vec<Figure>,
    /// (file name, PNG bytes) of images copied beside the page
    images: Vec<(String, Vec<u8>)>,
    notes: Vec<String>,
}

impl Page {
    fn h2(&mut self, s: &str) {
        self.body.push_str(&format!("<h2>{}</h2>\n", esc(s)));
    }
    fn p(&mut self, s: &str) {
        self.body.push_str(&format!("<p>{}</p>\n", esc(s)));
    }
    fn note(&mut self, s: String) {
        self.body.push_str(&format!("<p class=note>{}</p>\n", esc(&s)));
        self.notes.push(s);
    }
    fn figure(&mut self, name: &str, caption: &str, p: &impl Plot) -> Result<()> {
        let f = plot::render(name, caption, p)?;
        let svg = f.svg.trim_start_matches(|c| c != '<').to_string();
        let svg = match svg.find("<svg") {
            Some(i) => svg[i..].to_string(),
            None => svg,
        };
        self.body.push_str(&format!(
            "<figure>{svg}<figcaption>{} <a href=\"{name}.png\">PNG</a> <a href=\"{name}.svg\">SVG</a></figcaption></figure>\n",
            esc(caption)
        ));
        self.figures.push(f);
        Ok(())
    }
    fn image(&mut self, name: &str, caption: &str, png: Vec<u8>) {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
        self.body.push_str(&format!(
            "<figure class=grid><img alt=\"{0}\" src=\"data:image/png;base64,{b64}\"><figcaption>{0}</figcaption></figure>\n",
            esc(caption)
        ));
        self.images.push((format!("{name}.png"), png));
    }
    fn write(self, out: &Path) -> Result<Written> {
        let mut files = vec![];
        for f in &self.figures {
            for (ext, bytes) in [("svg", f.svg.as_bytes()), ("png", f.png.as_slice())] {
                let p = out.join(format!("{}.{ext}", f.name));
                export::atomic_write(&p, bytes)?;
                files.push(p);
            }
        }
        for (name, bytes) in &self.images {
            let p = out.join(name);
            export::atomic_write(&p, bytes)?;
            files.push(p);
        }
        let html = format!(
            "<!doctype html>\n<html lang=en><head><meta charset=utf-8><title>{t}</title>\n<style>\
             body{{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}}\
             figure{{display:inline-block;margin:.5em;vertical-align:top}} figure svg{{max-width:100%;height:auto}}\
             figure.grid img{{image-rendering:pixelated;width:min(100%,560px);border:1px solid #ccc}}\
             table{{border-collapse:collapse;margin:1em 0}} td,th{{border:1px solid #bbb;padding:.25em .6em;text-align:left}}\
             .note{{color:#8a5a00}} code{{background:#f4f4f4;padding:0 .2em}}</style></head>\n<body>\n<h1>{t}</h1>\n\
             <p>Written by hyperdistill {v} (<code>hyperdistill report</code>).</p>\n{b}</body></html>\n",
            t = esc(&self.title),
            v = env!("CARGO_PKG_VERSION"),
            b = self.body
        );
        let path = out.join("index.html");
        export::atomic_write(&path, html.as_bytes())?;
        files.push(path.clone());
        Ok(Written { html: path, files, notes: self.notes })
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const BLUE: [u8; 3] = [31, 119, 180];
const ORANGE: [u8; 3] = [255, 127, 14];

/// What a run's metrics.jsonl says, the last entry per iteration kept (a resumed run logs some iterations twice).
#[derive(Default)]
pub struct Metrics {
    /// iteration → (loss, per-class term)
    pub loss: BTreeMap<usize, (f64, Vec<f64>)>,
    /// iteration → (mean, each network's accuracy), fractions
    pub eval: BTreeMap<usize, (f64, Vec<f64>)>,
}

pub fn read_metrics(dir: &Path) -> Result<Metrics> {
    let path = dir.join("metrics.jsonl");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut m = Metrics::default();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let Some(it) = v["iteration"].as_u64().map(|i| i as usize) else { continue };
        let nums = |v: &serde_json::Value| v.as_array().map(|a| a.iter().filter_map(|x| x.as_f64()).collect::<Vec<_>>()).unwrap_or_default();
        match v["event"].as_str() {
            Some("loss") => {
                if let Some(l) = v["loss"].as_f64() {
                    m.loss.insert(it, (l, nums(&v["per_class"])));
                }
            }
            Some("eval") => {
                if let Some(a) = v["mean"].as_f64() {
                    m.eval.insert(it, (a, nums(&v["accuracies"])));
                }
            }
            _ => {}
        }
    }
    Ok(m)
}

/// The grids a run saved: iteration → file.
fn saved_grids(dir: &Path) -> BTreeMap<usize, PathBuf> {
    let mut out = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir(dir.join("grids")) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(it) = name.strip_prefix("iter_").and_then(|s| s.strip_suffix(".png")).and_then(|s| s.parse().ok()) {
                out.insert(it, e.path());
            }
        }
    }
    out
}

/// Up to `n` of `all`, evenly spread, first and last included.
fn spread(all: &[usize], n: usize) -> Vec<usize> {
    if all.len() <= n {
        return all.to_vec();
    }
    let mut v: Vec<usize> = (0..n).map(|i| all[(i * (all.len() - 1) + (n - 1) / 2) / (n - 1)]).collect();
    v.dedup();
    v
}

fn matching_name(cfg: &RunConfig) -> &'static str {
    if cfg.distill.method.hdd() { "λ · d_L(real centroid, synthetic centroid)" } else { "squared distance of the feature means" }
}

fn run_report(gpu: Option<&Gpu>, dir: &Path, opts: &Options, page: &mut Page, prefix: &str) -> Result<()> {
    let cfg = RunConfig::from_toml_file(&dir.join("config.toml"))?;
    let m = read_metrics(dir)?;
    let name = |s: &str| format!("{prefix}{s}");
    if prefix.is_empty() {
        page.title = format!("{} on {} — {}", cfg.distill.method.name(), cfg.dataset, dir.display());
        page.p(&format!("settings: {}", crate::run::settings_line(&cfg)));
    }
    // the dataset: class names, and the disk and PCA
    let ds = match data::open(&cfg.dataset, &opts.cache) {
        Ok(ds) => Some(ds),
        Err(e) => {
            page.note(format!("the dataset '{}' could not be opened ({e:#}): classes are numbered and there is no disk or PCA", cfg.dataset));
            None
        }
    };
    let class_names: Vec<String> = match &ds {
        Some(ds) => ds.classes.clone(),
        None => (0..m.loss.values().next().map_or(0, |l| l.1.len())).map(|c| format!("class {c}")).collect(),
    };
    page.h2("Loss");
    if m.loss.is_empty() {
        page.note("no loss was logged (log_every = 0, or the run stopped before its first log)".into());
    } else {
        let pts: Vec<(f64, f64)> = m.loss.iter().map(|(&i, l)| (i as f64, l.0)).collect();
        let positive = pts.iter().all(|p| p.1 > 0.0);
        page.figure(&name("loss"), "The training loss over iterations (each iteration under its own fresh random network).", &plot::Lines {
            title: format!("{} loss", cfg.distill.method.name()),
            x_desc: "iteration".into(),
            y_desc: "loss".into(),
            series: vec![(String::new(), BLUE, pts)],
            points: vec![],
            log_y: positive,
        })?;
        let classes = m.loss.values().map(|l| l.1.len()).max().unwrap_or(0);
        let series = (0..classes)
            .map(|c| {
                let label = class_names.get(c).cloned().unwrap_or_else(|| format!("class {c}"));
                let pts = m.loss.iter().filter_map(|(&i, l)| l.1.get(c).map(|&v| (i as f64, v))).collect();
                (label, view::class_rgb(c, classes), pts)
            })
            .collect();
        page.figure(&name("per_class"), &format!("Per class, the matching term: {}.", matching_name(&cfg)), &plot::Lines {
            title: format!("per-class {}", if cfg.distill.method.hdd() { "geodesic distance (× λ)" } else { "matching term" }),
            x_desc: "iteration".into(),
            y_desc: matching_name(&cfg).into(),
            series,
            points: vec![],
            log_y: true,
        })?;
    }
    page.h2("Accuracy");
    if m.eval.is_empty() {
        page.note("no evaluation was logged (eval.nets = 0, or the run stopped before its first)".into());
    } else {
        let mean: Vec<(f64, f64)> = m.eval.iter().map(|(&i, e)| (i as f64, 100.0 * e.0)).collect();
        let each: Vec<(f64, f64)> = m.eval.iter().flat_map(|(&i, e)| e.1.iter().map(move |&a| (i as f64, 100.0 * a))).collect();
        let last = m.eval.iter().next_back().map(|(i, e)| format!("{:.2} % at iteration {i}", 100.0 * e.0)).unwrap_or_default();
        page.figure(&name("accuracy"), &format!("Test accuracy at each evaluation: the mean and every network ({last})."), &plot::Lines {
            title: "test accuracy".into(),
            x_desc: "iteration".into(),
            y_desc: "accuracy (%)".into(),
            series: vec![("mean".into(), BLUE, mean)],
            points: vec![("each network".into(), ORANGE, each)],
            log_y: false,
        })?;
    }
    page.h2("Synthetic images");
    let grids = saved_grids(dir);
    let chosen: Vec<usize> = match &opts.grids {
        Some(g) => g.iter().copied().filter(|i| grids.contains_key(i)).collect(),
        None => spread(&grids.keys().copied().collect::<Vec<_>>(), 5),
    };
    if let Some(asked) = &opts.grids {
        let missing: Vec<&usize> = asked.iter().filter(|i| !grids.contains_key(i)).collect();
        if !missing.is_empty() {
            page.note(format!("no grid saved at iterations {missing:?} (saved: {:?})", grids.keys().collect::<Vec<_>>()));
        }
    }
    for it in &chosen {
        let png = std::fs::read(&grids[it]).with_context(|| format!("reading {}", grids[it].display()))?;
        page.image(&name(&format!("grid_{it:06}")), &format!("iteration {it}: one row per class"), png);
    }
    if chosen.is_empty() {
        match std::fs::read(dir.join("synset.png")) {
            Ok(png) => page.image(&name("grid_final"), "the final synthetic set: one row per class", png),
            Err(_) => page.note("no grid was saved (a run older than 0.2 saves only synset.png at the end)".into()),
        }
    }
    page.h2("Features: Poincaré disk and PCA");
    match (&ds, gpu, opts.no_features) {
        (_, _, true) => page.note("disk and PCA skipped (--no-features)".into()),
        (None, _, _) => {}
        (_, None, _) => page.note("no GPU adapter: no disk or PCA".into()),
        (Some(ds), Some(gpu), false) => feature_figures(gpu, ds, &cfg, dir, page, prefix)?,
    }
    Ok(())
}

/// The view network's features of the shown real images beside each set's: one network and one workspace (sized for
/// the largest set) for all the sets, one forward pass per set.
fn view_features(gpu: &Gpu, ds: &Dataset, cfg: &RunConfig, sets: &[&export::SynSet]) -> Result<Vec<ViewFeatures>> {
    use crate::nn::convnet::GpuConvNet;
    let (real, real_labels, _) = view::shown_real(ds, 20, cfg.distill.seed);
    let net = GpuConvNet::new(gpu, &view::view_net(ds, cfg.distill.width, cfg.distill.seed)?)?;
    let largest = sets.iter().map(|s| s.labels.len()).max().unwrap_or(0);
    let ws = net.workspace(gpu, real_labels.len() + largest)?;
    let dim = net.cfg.embed_dim();
    let mut out = vec![];
    for set in sets {
        let n = real_labels.len() + set.labels.len();
        gpu.write(&ws.x, &[real.as_slice(), set.images.as_slice()].concat());
        let mut enc = gpu.encoder();
        // (a smaller set leaves the workspace's last images stale: each image is normalised on its own, so they touch nothing read)
        net.forward_only(gpu, &mut enc, &ws, false);
        gpu.submit_wait(enc);
        let feats = gpu.read_f32(&ws.embed, n * dim)?;
        let labels = set.labels.iter().map(|&l| l as usize).collect();
        out.push(ViewFeatures::from_features(cfg.distill.hdd(), ds.classes.len(), &feats, dim, real_labels.clone(), labels));
    }
    Ok(out)
}

/// Disk and PCA at the start (grids/iter_000000.safetensors) and the end (synset.safetensors), the end's directions
/// continuing the start's (as the app keeps them from frame to frame).
fn feature_figures(gpu: &Gpu, ds: &Dataset, cfg: &RunConfig, dir: &Path, page: &mut Page, prefix: &str) -> Result<()> {
    let mut snaps = vec![];
    for (when, file) in [("start", dir.join("grids").join("iter_000000.safetensors")), ("end", dir.join("synset.safetensors"))] {
        if file.is_file() {
            snaps.push((when, export::read_safetensors(&file)?));
        }
    }
    if snaps.is_empty() {
        page.note("no saved set to embed (synset.safetensors is written at the end of a run)".into());
        return Ok(());
    }
    if ds.shape() != snaps[0].1.shape() {
        page.note(format!("the set's images are {}, the dataset's {}: no disk or PCA", snaps[0].1.shape(), ds.shape()));
        return Ok(());
    }
    let (mut disk_basis, mut pca_basis) = (None, None);
    let features = view_features(gpu, ds, cfg, &snaps.iter().map(|(_, set)| set).collect::<Vec<_>>())?;
    for ((when, _), v) in snaps.iter().zip(features) {
        let pic = view::disk_picture(&v.real_pts, &v.syn_pts, &v.real_centroids, &v.syn_centroids, &v.real_centre, v.hdd.k, disk_basis.as_ref(), view::RadialScale::Auto);
        disk_basis = pic.basis.clone();
        let with = |pts: &[[f64; 2]], labels: &[usize]| pts.iter().copied().zip(labels.iter().copied()).collect::<Vec<_>>();
        let mean_d: f64 = v.class_dist.iter().sum::<f64>() / v.class_dist.len().max(1) as f64;
        page.figure(&format!("{prefix}disk_{when}"), &format!(
            "Poincaré disk at the {when}, centred on the real data's centroid: radius ρ = tanh(d / 2s√k) for the geodesic distance d to \
             it with s = {:.2} (distances ÷ s so that the median real point lies at ρ = ½; the exact disk, s = 1, puts {:.0} % of the real \
             points beyond ρ = 0.99), direction a PCA of the real points; the arc joins each class's real centroid (○) to its synthetic \
             one (▲). Mean centroid distance {mean_d:.3}.",
            pic.scale,
            100.0 * pic.real_dist.iter().filter(|&&d| view::disk_radius(d, v.hdd.k, 1.0) > 0.99).count() as f64 / pic.real_dist.len().max(1) as f64),
            &plot::Cloud {
                title: format!("Poincaré disk — {when}"),
                disk: true,
                classes: v.classes,
                real: with(&pic.real, &v.real_labels),
                syn: with(&pic.syn, &v.syn_labels),
                real_centroids: pic.real_centroids.clone(),
                syn_centroids: pic.syn_centroids.clone(),
                arcs: pic.arcs.clone(),
                class_names: ds.classes.clone(),
            })?;
        let (r, s, b) = view::euclidean_picture(&v.real_feat, &v.syn_feat, pca_basis.as_ref());
        pca_basis = Some(b);
        page.figure(&format!("{prefix}pca_{when}"), &format!("PCA of the raw features (what DM matches) at the {when}, about the real mean."), &plot::Cloud {
            title: format!("Euclidean PCA — {when}"),
            disk: false,
            classes: v.classes,
            real: with(&r, &v.real_labels),
            syn: with(&s, &v.syn_labels),
            real_centroids: vec![],
            syn_centroids: vec![],
            arcs: vec![],
            class_names: ds.classes.clone(),
        })?;
    }
    Ok(())
}

fn eval_section(part: &EvalPart, page: &mut Page, prefix: &str) -> Result<()> {
    let (mean, std) = crate::eval::mean_std(&part.accuracies);
    page.p(&format!(
        "{} on {}: test accuracy {:.2} ± {:.2} % over {} networks (seed {}, {} epochs{}).",
        part.arch, part.dataset, 100.0 * mean, 100.0 * std, part.accuracies.len(), part.seed, part.protocol.epochs,
        if part.protocol.quick { ", quick protocol" } else { "" }
    ));
    page.figure(&format!("{prefix}networks"), "Test accuracy of each evaluation network.", &plot::Bars {
        title: "accuracy per network".into(),
        y_desc: "accuracy (%)".into(),
        labels: part.nets.iter().map(|k| format!("net {k}")).collect(),
        values: part.accuracies.iter().map(|a| 100.0 * a).collect(),
        colour: BLUE,
    })?;
    let k = part.classes.len();
    if part.confusion.is_empty() || k == 0 || part.confusion.iter().any(|m| m.len() != k * k) {
        page.note("this file has no confusion matrices (written before 0.2): no per-class figures".into());
        return Ok(());
    }
    let mut sum = vec![0u64; k * k];
    for m in &part.confusion {
        sum.iter_mut().zip(m).for_each(|(a, b)| *a += b);
    }
    let per_class: Vec<f64> = (0..k)
        .map(|t| {
            let row: u64 = sum[t * k..(t + 1) * k].iter().sum();
            if row == 0 { f64::NAN } else { 100.0 * sum[t * k + t] as f64 / row as f64 }
        })
        .collect();
    page.figure(&format!("{prefix}per_class_accuracy"), "Test accuracy per class, over all networks.", &plot::Bars {
        title: "accuracy per class".into(),
        y_desc: "accuracy (%)".into(),
        labels: part.classes.clone(),
        values: per_class,
        colour: ORANGE,
    })?;
    page.figure(&format!("{prefix}confusion"), "Confusion matrix over all networks: each row a true class, in % of its test images.", &plot::Confusion {
        title: "confusion (row %)".into(),
        classes: part.classes.clone(),
        counts: sum,
    })?;
    Ok(())
}

fn study_report(gpu: Option<&Gpu>, file: &Path, opts: &Options, page: &mut Page) -> Result<()> {
    let s = StudyConfig::from_toml_file(file)?;
    let table = study::table(&s)?;
    page.title = format!("study {}", s.out.display());
    page.p(&format!("{} methods × {} seeds × IPC {:?}; dataset {}.", s.methods.len(), s.seeds.len(), s.ipc, s.dataset));
    page.h2("Table");
    // the same tables as table.md
    for t in table.text_tables() {
        let row = |tag: &str, cells: Vec<String>| format!("<tr>{}</tr>\n", cells.iter().map(|c| format!("<{tag}>{}</{tag}>", esc(c))).collect::<String>());
        page.body.push_str("<table>");
        page.body.push_str(&row("th", t.headers.iter().map(|h| h.to_string()).collect()));
        for r in t.rows {
            page.body.push_str(&row("td", r));
        }
        page.body.push_str("</table>\n");
    }
    page.p(&format!("Interval: {}.", table.interval));
    if !table.missing.is_empty() {
        page.note(format!("not finished: {}", table.missing.join(", ")));
    }
    page.figure("study_accuracy", "Final test accuracy per group: every seed (dots), the mean and ± one sd (bar).", &plot::Categories {
        title: "test accuracy per group".into(),
        y_desc: "accuracy (%)".into(),
        rows: table.rows.iter().map(|r| {
            let v: Vec<f64> = r.accuracies.values().map(|a| 100.0 * a).collect();
            (r.group.clone(), v, 100.0 * r.mean, 100.0 * (r.mean - r.sd), 100.0 * (r.mean + r.sd))
        }).collect(),
        reference: None,
        colour: BLUE,
    })?;
    if !table.pairs.is_empty() {
        page.figure("study_pairs", "Paired differences B − A per seed (dots), their mean and 95 % interval (bar); the line is no difference.", &plot::Categories {
            title: "paired difference (points)".into(),
            y_desc: "B − A (accuracy points)".into(),
            rows: table.pairs.iter().map(|p| {
                let (ra, rb) = (table.rows.iter().find(|r| r.group == p.a), table.rows.iter().find(|r| r.group == p.b));
                let diffs = match (ra, rb) {
                    (Some(a), Some(b)) => p.seeds.iter().map(|s| 100.0 * (b.accuracies[s] - a.accuracies[s])).collect(),
                    _ => vec![],
                };
                (format!("{} − {}", p.b, p.a), diffs, p.difference.mean, p.difference.low, p.difference.high)
            }).collect(),
            reference: Some(0.0),
            colour: ORANGE,
        })?;
    }
    // per group: every seed's loss, and the first finished seed's grid and disk
    let cells = s.cells()?;
    let mut groups: Vec<&str> = cells.iter().map(|c| c.group.as_str()).collect();
    groups.dedup();
    for (gi, g) in groups.iter().enumerate() {
        page.h2(&format!("Group {g}"));
        let mine: Vec<&study::Cell> = cells.iter().filter(|c| c.group == *g).collect();
        let mut series = vec![];
        for (i, c) in mine.iter().enumerate() {
            if let Ok(m) = read_metrics(&c.cfg.out) {
                let pts: Vec<(f64, f64)> = m.loss.iter().map(|(&i, l)| (i as f64, l.0)).collect();
                if !pts.is_empty() {
                    series.push((format!("seed {}", c.seed), view::class_rgb(i, mine.len().max(10)), pts));
                }
            }
        }
        if !series.is_empty() {
            page.figure(&format!("g{gi}_loss"), &format!("{g}: the loss of every seed."), &plot::Lines {
                title: format!("{g}: loss"),
                x_desc: "iteration".into(),
                y_desc: "loss".into(),
                series,
                points: vec![],
                log_y: true,
            })?;
        }
        if let Some(first) = mine.iter().find(|c| c.cfg.out.join("synset.safetensors").is_file()) {
            if let Ok(png) = std::fs::read(first.cfg.out.join("synset.png")) {
                page.image(&format!("g{gi}_grid"), &format!("{g}, seed {}: the final synthetic set", first.seed), png);
            }
            if !opts.no_features
                && let (Some(gpu), Ok(ds)) = (gpu, data::open(&first.cfg.dataset, &opts.cache))
            {
                feature_figures(gpu, &ds, &first.cfg, &first.cfg.out, page, &format!("g{gi}_"))?;
            }
        }
    }
    Ok(())
}
