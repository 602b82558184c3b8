//! Studies: a tiny study (DM and DM+HDD × 2 seeds on the embedded set, a few iterations) runs, resumes a cell that was
//! interrupted without redoing the finished ones (and the resumed cell ends with the bytes of an uninterrupted run),
//! pairs its runs (same seed, same initial images), writes its table with the paired interval of its own numbers,
//! refuses a finished cell whose options the study no longer gives, and `report` writes a page and figures for the
//! study, a run and an evaluation.

mod common;
use common::*;

use std::path::{Path, PathBuf};

use hyperdistill::run::{self, Start};
use hyperdistill::study::{self, CellState, StudyConfig};

fn study_toml(out: &Path) -> String {
    format!(
        r#"out = "{}"
methods = ["dm", "dm+hdd"]
seeds = [1, 2]
[run]
eval_every = 0
log_every = 1
checkpoint_every = 2
[run.distill]
iterations = 4
width = 8
batch_real = 8
[run.eval]
epochs = 2
nets = 2
width = 8
quick = true
"#,
        out.display()
    )
}

fn images(path: &Path) -> Vec<f32> {
    hyperdistill::export::read_safetensors(path).unwrap().images
}

/// Pixels of a PNG that are neither white nor grey: what a figure has drawn in colour.
fn coloured_pixels(png: &Path) -> usize {
    let img = image::open(png).unwrap().to_rgb8();
    img.pixels().filter(|p| {
        let [r, g, b] = p.0;
        let (mx, mn) = (r.max(g).max(b) as i32, r.min(g).min(b) as i32);
        mx - mn > 40
    }).count()
}

#[test]
fn a_tiny_study_runs_resumes_pairs_tabulates_and_reports() {
    let dir = tempdir("study");
    let out = dir.join("out");
    let file = dir.join("tiny.toml");
    std::fs::write(&file, study_toml(&out)).unwrap();
    let s = StudyConfig::from_toml_file(&file).unwrap();
    let cells = s.cells().unwrap();
    assert_eq!(cells.iter().map(|c| (c.group.as_str(), c.seed)).collect::<Vec<_>>(),
        [("dm-ipc10", 1), ("dm-ipc10", 2), ("dm+hdd-ipc10", 1), ("dm+hdd-ipc10", 2)]);
    let cache = PathBuf::from("/none");

    // cell 2 (DM+HDD, seed 1) was interrupted at iteration 2: its checkpoint is there, its final evaluation is not
    let mut part = cells[2].cfg.clone();
    part.distill.iterations = 2;
    part.eval.nets = 0;
    run::run(gpu(), &part, Start::Fresh, &cache).unwrap();
    assert_eq!(study::cell_state(&cells[2]), CellState::Interrupted);

    let mut log = vec![];
    study::prepare(&file, &s).unwrap();
    study::run_cells(gpu(), &s, None, &cache, &mut |m| log.push(m.to_string())).unwrap();
    println!("{}", log.join("\n"));
    assert!(log[0].ends_with("running") && log[1].ends_with("running") && log[3].ends_with("running"), "{log:?}");
    assert!(log[2].contains("dm+hdd-ipc10 seed 1: resuming"), "{log:?}");
    assert!(cells.iter().all(|c| study::cell_state(c) == CellState::Done));

    // the resumed cell ends where an uninterrupted run ends, byte for byte
    let mut whole = cells[2].cfg.clone();
    whole.out = dir.join("uninterrupted");
    run::run(gpu(), &whole, Start::Fresh, &cache).unwrap();
    // (the images: the metadata records each run's own folder)
    assert_eq!(images(&whole.out.join("synset.safetensors")), images(&cells[2].cfg.out.join("synset.safetensors")));

    // again: nothing is redone
    let stamps: Vec<_> = cells.iter().map(|c| std::fs::metadata(c.cfg.out.join("synset.safetensors")).unwrap().modified().unwrap()).collect();
    let mut again = vec![];
    study::run_cells(gpu(), &s, None, &cache, &mut |m| again.push(m.to_string())).unwrap();
    assert!(again.iter().all(|m| m.ends_with("done, skipped")), "{again:?}");
    let after: Vec<_> = cells.iter().map(|c| std::fs::metadata(c.cfg.out.join("synset.safetensors")).unwrap().modified().unwrap()).collect();
    assert_eq!(stamps, after);

    // paired by design: the same seed starts both methods from the same images; another seed does not
    let start = |i: usize| images(&cells[i].cfg.out.join("grids/iter_000000.safetensors"));
    assert_eq!(start(0), start(2), "DM and DM+HDD of seed 1 start apart");
    assert_eq!(start(1), start(3));
    assert_ne!(start(0), start(1));
    assert_ne!(images(&cells[0].cfg.out.join("synset.safetensors")), images(&cells[2].cfg.out.join("synset.safetensors")));

    // the table: per group the seeds' accuracies; the pair's difference is computed from them
    let t = study::table(&s).unwrap();
    t.write(&out).unwrap();
    assert!(t.missing.is_empty());
    assert_eq!(t.rows.len(), 2);
    let acc = |g: usize, seed: u64| 100.0 * t.rows[g].accuracies[&seed];
    let d: Vec<f64> = [1, 2].iter().map(|&seed| acc(1, seed) - acc(0, seed)).collect();
    let p = &t.pairs[0].difference;
    println!("{}", t.markdown());
    assert_eq!((t.pairs[0].a.as_str(), t.pairs[0].b.as_str(), p.n), ("dm-ipc10", "dm+hdd-ipc10", 2));
    assert!((p.mean - (d[0] + d[1]) / 2.0).abs() < 1e-9);
    // n = 2: half-width t(0.975, 1) · |d0 − d1| / 2, with t(0.975, 1) = 12.7062
    let half = 12.706_205 * (d[0] - d[1]).abs() / 2.0;
    assert!((p.high - p.mean - half).abs() < 1e-4 * (1.0 + half), "{p:?} vs half-width {half}");
    for f in ["table.md", "table.csv", "table.json"] {
        assert!(std::fs::metadata(out.join(f)).unwrap().len() > 100, "{f}");
    }
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("table.json")).unwrap()).unwrap();
    assert_eq!(json["configs"].as_object().unwrap().len(), 4);
    assert!(std::fs::read_to_string(out.join("table.md")).unwrap().contains("dm+hdd-ipc10 − dm-ipc10"));

    // a finished cell made with other options is refused, naming the option
    let changed = study_toml(&out).replace("batch_real = 8", "batch_real = 6");
    std::fs::write(&file, changed).unwrap();
    let s2 = StudyConfig::from_toml_file(&file).unwrap();
    let e = study::run_cells(gpu(), &s2, Some(&[0]), &cache, &mut |_| {}).unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("distill.batch_real") && msg.contains("other options"), "{msg}");

    // the report of the study (from its folder), of one run, and of an evaluation
    let opts = hyperdistill::report::Options { grids: None, no_features: false, cache: cache.clone() };
    let what = hyperdistill::report::Input::detect(&out).unwrap();
    assert!(matches!(what, hyperdistill::report::Input::Study(_)), "{what:?}");
    let w = hyperdistill::report::report(Some(gpu()), &what, &out.join("report"), &opts).unwrap();
    let html = std::fs::read_to_string(&w.html).unwrap();
    assert!(html.contains("<svg") && html.contains("data:image/png;base64,") && html.contains("dm+hdd-ipc10 − dm-ipc10"));
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"), "the page must open offline");
    for f in ["study_accuracy.png", "study_pairs.png", "study_accuracy.svg", "g0_loss.png", "g1_disk_end.png", "g1_pca_start.png"] {
        let p = out.join("report").join(f);
        assert!(std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0) > 1000, "{f} missing or empty");
    }
    // looked at: the disk draws class colours (points, centroids, arcs), the accuracy figure its dots
    let disk = coloured_pixels(&out.join("report/g1_disk_end.png"));
    let strip = coloured_pixels(&out.join("report/study_accuracy.png"));
    println!("coloured pixels: disk {disk}, accuracy {strip}");
    assert!(disk > 500 && strip > 50, "disk {disk}, accuracy {strip}");

    let run_dir = &cells[3].cfg.out;
    let w = hyperdistill::report::report(Some(gpu()), &hyperdistill::report::Input::detect(run_dir).unwrap(), &run_dir.join("report"), &opts).unwrap();
    for f in ["loss.png", "per_class.svg", "accuracy.png", "disk_start.png", "pca_end.svg", "grid_000000.png", "grid_000004.png"] {
        assert!(std::fs::metadata(run_dir.join("report").join(f)).map(|m| m.len()).unwrap_or(0) > 500, "{f}");
    }
    assert!(w.notes.is_empty(), "{:?}", w.notes);

    let job = run::EvalJob {
        synset: run_dir.join("synset.safetensors"),
        dataset: None,
        eval: cells[3].cfg.eval.clone(),
        archs: vec![hyperdistill::nn::arch::Arch::ConvNet],
        seed: 0,
        keep_syn: 1.0,
        prune_nets: 1,
        nets: None,
        trace: None,
    };
    let r = run::evaluate_set(gpu(), &job, &cache, &mut |_| {}).unwrap().remove(0);
    let k = r.classes.len();
    assert_eq!((k, r.confusion.len()), (10, 2));
    for (m, a) in r.confusion.iter().zip(&r.accuracies) {
        // the confusion matrix counts every test image once, and its diagonal is the accuracy
        let total: u64 = m.iter().sum();
        let diag: u64 = (0..k).map(|i| m[i * k + i]).sum();
        assert!((diag as f64 / total as f64 - a).abs() < 2.0 / total as f64, "{diag}/{total} vs {a}");
    }
    let part = run::EvalPart {
        synset: job.synset.clone(),
        synset_sha256: run::sha256_file(&job.synset).unwrap(),
        dataset: "embedded".into(),
        arch: "convnet".into(),
        seed: 0,
        protocol: job.eval.clone(),
        nets: r.nets.clone(),
        accuracies: r.accuracies.clone(),
        shard: None,
        classes: r.classes.clone(),
        confusion: r.confusion.clone(),
    };
    let json = dir.join("eval.json");
    std::fs::write(&json, serde_json::to_string(&part).unwrap()).unwrap();
    let what = hyperdistill::report::Input::detect(&json).unwrap();
    let w = hyperdistill::report::report(None, &what, &what.default_out().unwrap(), &opts).unwrap();
    for f in ["networks.png", "per_class_accuracy.png", "confusion.png", "confusion.svg"] {
        assert!(std::fs::metadata(w.html.with_file_name(f)).map(|m| m.len()).unwrap_or(0) > 1000, "{f}");
    }
    assert!(coloured_pixels(&w.html.with_file_name("confusion.png")) > 200);
}
