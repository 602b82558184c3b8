//! Class shards are exact: a run split over processes by class (each distilling its classes with draws keyed by
//! iteration and class) gives, class for class, the bytes of the unsplit run — for DM, DM+HDD, IDM, IDM+HDD, DANCE and
//! DANCE+HDD. And the random streams behind it: the network of iteration t does not depend on the classes, the real
//! batch and augmentation of class c do not depend on the other classes.

mod common;
use common::*;

use hyperdistill::data;
use hyperdistill::distill::{DanceConfig, DistillConfig, Distiller, IdmConfig, Method};

fn cfg(method: Method) -> DistillConfig {
    DistillConfig {
        method,
        ipc: 2,
        batch_real: 12,
        width: 8,
        seed: 5,
        idm: IdmConfig { net_num: 3, net_generate_interval: 2, fetch_net_num: 1, model_train_steps: 2, net_batch: 24, ..IdmConfig::default() },
        dance: DanceConfig { experts: 2, num_premodel: 2, expert_epochs: 1, ..DanceConfig::default() },
        ..DistillConfig::default()
    }
}

/// The synthetic images after `iters` iterations, by class: (class, its ipc images).
fn run(ds: &data::Dataset, c: DistillConfig, iters: usize, experts: &Option<Vec<hyperdistill::experts::Expert>>) -> Vec<(u32, Vec<f32>)> {
    let mut d = Distiller::with_experts(gpu(), ds, c, experts.clone()).unwrap();
    for _ in 0..iters {
        d.step(ds).unwrap();
    }
    let (images, labels) = d.synthetic().unwrap();
    let per = images.len() / labels.len();
    let mut out: Vec<(u32, Vec<f32>)> = vec![];
    for (i, &l) in labels.iter().enumerate() {
        match out.last_mut() {
            Some((c, v)) if *c == l => v.extend_from_slice(&images[i * per..(i + 1) * per]),
            _ => out.push((l, images[i * per..(i + 1) * per].to_vec())),
        }
    }
    out
}

#[test]
fn shards_give_the_unsplit_runs_images_bit_for_bit() {
    let ds = data::open("embedded", std::path::Path::new("/none")).unwrap();
    let shards: [Vec<usize>; 3] = [vec![0, 3, 6, 9], vec![1, 4, 7], vec![2, 5, 8]];
    for method in [Method::Dm, Method::DmHdd, Method::Idm, Method::IdmHdd, Method::Dance, Method::DanceHdd] {
        // DANCE's experts are trained once and shared by every shard, as the CLI's `experts` step does
        let experts = method.dance().then(|| {
            let c = cfg(method);
            let recipe = hyperdistill::experts::ExpertRecipe { width: c.width, epochs: 1, batch: c.dance.expert_batch, seed: c.seed };
            hyperdistill::experts::load_or_train(gpu(), &ds, None, 2, &recipe, &mut |_, _| {}).unwrap().0
        });
        let iters = 3;
        let whole = run(&ds, cfg(method), iters, &experts);
        assert_eq!(whole.len(), 10);
        let mut pieces = vec![];
        for classes in &shards {
            pieces.extend(run(&ds, DistillConfig { classes: classes.clone(), ..cfg(method) }, iters, &experts));
        }
        pieces.sort_by_key(|p| p.0);
        let differing: Vec<u32> = whole.iter().zip(&pieces).filter(|(a, b)| a != b).map(|(a, _)| a.0).collect();
        let max = whole.iter().zip(&pieces).flat_map(|(a, b)| a.1.iter().zip(&b.1).map(|(x, y)| (x - y).abs())).fold(0.0f32, f32::max);
        println!("{:<9} {} iterations, shards {shards:?}: classes differing {differing:?}, max |Δ| {max:e}", method.name(), iters);
        assert!(differing.is_empty(), "{}: shards differ from the unsplit run in classes {differing:?}", method.name());
    }
}

fn hd(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hyperdistill")).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("panicked"), "{text}");
    (out.status.success(), text)
}

fn images(path: &std::path::Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    safetensors::SafeTensors::deserialize(&bytes).unwrap().tensor("images").unwrap().data().to_vec()
}

#[test]
fn shards_as_processes_merge_into_the_unsplit_set_and_bad_merges_are_refused() {
    let dir = std::env::temp_dir().join(format!("hd-shard-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let p = |rel: &str| dir.join(rel).display().to_string();
    let idm = ["--net-num", "3", "--net-generate-interval", "2", "--fetch-net-num", "1", "--model-train-steps", "1", "--net-batch", "24"];
    for method in ["dm", "dm+hdd", "idm", "idm+hdd"] {
        let mut args = vec!["distill", "--method", method, "--ipc", "1", "--iterations", "3", "--width", "8", "--batch-real", "8", "--seed", "3", "--eval-nets", "0"];
        if method.starts_with("idm") {
            args.extend(idm);
        }
        let whole = p(&format!("{method}/whole"));
        assert!(hd(&[&args[..], &["--out", &whole]].concat()).0);
        for i in 0..3 {
            let shard = format!("{i}/3");
            let (ok, text) = hd(&[&args[..], &["--out", &p(&format!("{method}/split")), "--shard", &shard]].concat());
            assert!(ok, "{text}");
            // DM's shards hold their classes' training images only (1,500 or 2,000 of the embedded 5,000); IDM's queue
            // trains on every class, so its shards load them all
            let subset = text.contains("loaded the training images of its");
            assert_eq!(subset, method.starts_with("dm"), "{method}: {text}");
        }
        let shards: Vec<String> = (0..3).map(|i| p(&format!("{method}/split/shard-{i}-of-3"))).collect();
        let merged = p(&format!("{method}/merged"));
        let (ok, text) = hd(&[&["merge", merged.as_str()][..], &shards.iter().map(String::as_str).collect::<Vec<_>>()].concat());
        assert!(ok, "{text}");
        let same = images(&dir.join(format!("{method}/whole/synset.safetensors"))) == images(&dir.join(format!("{method}/merged/synset.safetensors")));
        println!("{method}: 3 shards as processes, merged: identical to the unsplit run: {same}");
        assert!(same, "{method}: the merged shards differ from the unsplit run");
    }
    // what a merge refuses, each named
    let s = |i: usize| p(&format!("dm/split/shard-{i}-of-3"));
    let (ok, e) = hd(&["merge", &p("bad"), &s(0), &s(1)]);
    assert!(!ok && e.contains("classes [2, 5, 8] are missing"), "{e}");
    let (ok, e) = hd(&["merge", &p("bad"), &s(0), &s(1), &s(2), &s(0)]);
    assert!(!ok && e.contains("class 0 is in two shards"), "{e}");
    let (ok, e) = hd(&["merge", &p("bad"), &s(0), &s(1), &p("dm+hdd/split/shard-2-of-3")]);
    assert!(!ok && e.contains("not shards of one run") && e.contains("distill.method"), "{e}");
    let other = p("dm/seed9");
    assert!(hd(&["distill", "--method", "dm", "--ipc", "1", "--iterations", "3", "--width", "8", "--batch-real", "8", "--seed", "9", "--eval-nets", "0", "--out", &other, "--shard", "2/3"]).0);
    let (ok, e) = hd(&["merge", &p("bad"), &s(0), &s(1), &format!("{other}/shard-2-of-3")]);
    assert!(!ok && e.contains("distill.seed: 3 → 9"), "{e}");
    let longer = p("dm/longer");
    assert!(hd(&["distill", "--method", "dm", "--ipc", "1", "--iterations", "4", "--width", "8", "--batch-real", "8", "--seed", "3", "--eval-nets", "0", "--out", &longer, "--shard", "2/3"]).0);
    let (ok, e) = hd(&["merge", &p("bad"), &s(0), &s(1), &format!("{longer}/shard-2-of-3")]);
    assert!(!ok && e.contains("stopped at iteration 4"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_split_evaluation_merges_into_the_unsplit_mean_and_std() {
    let dir = std::env::temp_dir().join(format!("hd-shard-eval-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let p = |rel: &str| dir.join(rel).display().to_string();
    assert!(hd(&["distill", "--ipc", "1", "--iterations", "1", "--width", "8", "--batch-real", "8", "--eval-nets", "0", "--out", &p("run")]).0);
    let set = p("run/synset.safetensors");
    let eval = ["eval", "--synset", set.as_str(), "--epochs", "2", "--nets", "5", "--width", "8", "--seed", "7"];
    let (ok, whole) = hd(&eval);
    assert!(ok, "{whole}");
    let parts: Vec<String> = (0..2).map(|i| p(&format!("part{i}.json"))).collect();
    for (i, part) in parts.iter().enumerate() {
        let shard = format!("{i}/2");
        let (ok, text) = hd(&[&eval[..], &["--shard", &shard, "--json", part]].concat());
        assert!(ok, "{text}");
    }
    let (ok, merged) = hd(&["merge", &p("eval.json"), &parts[0], &parts[1]]);
    assert!(ok, "{merged}");
    // "convnet test accuracy M ± S % over 5 nets …: [a, b, …]" in both
    let numbers = |t: &str| {
        let l = t.lines().find(|l| l.contains("test accuracy")).unwrap();
        (l.split(" % over").next().unwrap().to_string(), l.rsplit('[').next().unwrap().split(']').next().unwrap().to_string())
    };
    println!("unsplit: {:?}\nmerged:  {:?}", numbers(&whole), numbers(&merged));
    assert_eq!(numbers(&whole), numbers(&merged));
    // a gap, an overlap, another set
    let (ok, e) = hd(&["merge", &p("bad.json"), &parts[0]]);
    assert!(!ok && e.contains("networks [1, 3] are missing"), "{e}");
    let (ok, e) = hd(&["merge", &p("bad.json"), &parts[0], &parts[1], &parts[0]]);
    assert!(!ok && e.contains("is in two parts"), "{e}");
    assert!(hd(&["distill", "--ipc", "1", "--iterations", "2", "--width", "8", "--batch-real", "8", "--eval-nets", "0", "--out", &p("other")]).0);
    let other = p("other/synset.safetensors");
    let (ok, _) = hd(&["eval", "--synset", &other, "--epochs", "2", "--nets", "5", "--width", "8", "--seed", "7", "--shard", "1/2", "--json", &p("other.json")]);
    assert!(ok);
    let (ok, e) = hd(&["merge", &p("bad.json"), &parts[0], &p("other.json")]);
    assert!(!ok && e.contains("evaluated another set"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_shard_comes_from_the_flag_or_the_schedulers_environment() {
    use hyperdistill::run::Shard;
    let env = |pairs: &'static [(&'static str, &'static str)]| move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
    assert_eq!(Shard::parse_with("2/5", &env(&[])).unwrap(), Shard { index: 2, count: 5 });
    let slurm = env(&[("SLURM_ARRAY_TASK_ID", "7"), ("SLURM_ARRAY_TASK_COUNT", "4"), ("SLURM_ARRAY_TASK_MIN", "5")]);
    assert_eq!(Shard::parse_with("auto", &slurm).unwrap(), Shard { index: 2, count: 4 });
    let k8s = env(&[("JOB_COMPLETION_INDEX", "1"), ("HYPERDISTILL_SHARDS", "3")]);
    assert_eq!(Shard::parse_with("auto", &k8s).unwrap(), Shard { index: 1, count: 3 });
    for (spec, e, want) in [("3/3", env(&[]), "below the number"), ("x", env(&[]), "expected I/N"), ("auto", env(&[]), "no scheduler found")] {
        let got = Shard::parse_with(spec, &e).unwrap_err().to_string();
        assert!(got.contains(want), "{spec}: {got}");
    }
    assert!(Shard::parse_with("auto", &env(&[("JOB_COMPLETION_INDEX", "1")])).unwrap_err().to_string().contains("HYPERDISTILL_SHARDS"));
    assert_eq!(Shard { index: 1, count: 3 }.classes(10).unwrap(), vec![1, 4, 7]);
    assert_eq!(Shard { index: 1, count: 2 }.nets(5), vec![1, 3]);
    assert!(Shard { index: 0, count: 11 }.classes(10).is_err());
}
