//! The autotuner (`nn::tune`): every candidate of a pass is timed, the fastest is kept and remembered in the table
//! file, a remembered shape is not timed again, `refresh` times it again, `off` runs the rule; and a resumed run
//! runs the kernels its checkpoint recorded, whatever the autotuner would pick now, so that it stays bit-exact.
//! Each test opens a device of its own: the modes, tables and pins it sets are that device's.

mod common;

use hyperdistill::export;
use hyperdistill::gpu::{Autotune, Gpu, Tuned};
use hyperdistill::nn::{ops, tune};
use hyperdistill::run::{self, RunConfig};
use hyperdistill::shapes::ConvShape;

fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("hd-autotune-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn tuning_times_every_candidate_keeps_the_fastest_and_remembers_it() {
    let g = Gpu::new().unwrap();
    let dir = tempdir("table");
    let file = dir.join("autotune.toml");
    g.kernels.set_file(Some(file.clone()));
    g.kernels.set_mode(Autotune::On);
    // sizes that divide neither the vec4 blocks nor the GEMM tiles
    let s = ConvShape { n: 3, cin: 3, cout: 12, h: 9, w: 12, pad: 1 };
    let k = tune::conv_kernels(&g, &s);
    let table = g.kernels.table();
    let expect = [
        ("conv_forward", k.forward.name(), ops::ConvForward::available(&s).len()),
        ("conv_input_grad", k.input.name(), ops::ConvBackwardInput::available(&s).len()),
        ("conv_weight_grad", k.weight.name(), ops::ConvBackwardWeight::available(&s).len()),
    ];
    for (op, picked, candidates) in expect {
        let t = &table[&tune::key(op, &s)];
        println!("{op}: {} {:.3} ms of {:?}", t.kernel, t.ms, t.candidates);
        assert_eq!(t.kernel, picked, "{op}: the workspace runs another kernel than the table's pick");
        // every candidate timed (a shape this small stays within the budget), the rule's first
        assert_eq!((t.candidates.len(), t.skipped.len()), (candidates, 0), "{op}: not every candidate was timed");
        assert!(t.candidates.keys().any(|c| c.starts_with("gemm_")), "{op}: the GEMM tilings were not candidates");
        let fastest = t.candidates.values().cloned().fold(f64::INFINITY, f64::min);
        assert!(t.candidates.values().all(|ms| ms.is_finite()));
        // the fastest, or the rule's where nothing beats it by the margin
        let rule = match op {
            "conv_forward" => ops::ConvForward::of(&g, &s).name(),
            "conv_input_grad" => ops::ConvBackwardInput::of(&g, &s).name(),
            _ => ops::ConvBackwardWeight::of(&g, &s).name(),
        };
        // the rule's, or one at least MARGIN faster than it (which one: `choose`, tested below)
        let rule_ms = t.candidates[rule];
        assert!(t.kernel == rule || t.ms <= tune::MARGIN * rule_ms, "{op}: the pick {} ({} ms) does not beat the rule's ({rule_ms} ms)", t.kernel, t.ms);
        assert!(fastest <= t.ms);
        assert_eq!(tune::parse_key(&tune::key(op, &s)), Some((op.to_string(), s)));
        assert_eq!(g.kernels.used()[&tune::key(op, &s)], picked);
    }
    let spent = g.kernels.spent();
    assert!(spent > 0.0);
    // the file holds the picks: reloaded, the same table, and the shape is not timed again
    assert!(std::fs::read_to_string(&file).unwrap().contains(&tune::key("conv_forward", &s)));
    g.kernels.set_file(Some(file.clone()));
    assert_eq!(g.kernels.table(), table, "the table file does not round-trip");
    assert_eq!(tune::conv_kernels(&g, &s), k);
    assert_eq!(g.kernels.spent(), spent, "a remembered shape was timed again");
    // refresh: timed again once in this process, then remembered
    g.kernels.set_mode(Autotune::Refresh);
    tune::conv_kernels(&g, &s);
    let refreshed = g.kernels.spent();
    assert!(refreshed > spent, "refresh did not time the shape again");
    tune::conv_kernels(&g, &s);
    assert_eq!(g.kernels.spent(), refreshed, "refresh timed the same shape twice");
    // off: the rule, whatever the table says
    g.kernels.set_mode(Autotune::Off);
    let rule = tune::conv_kernels(&g, &s);
    assert_eq!((rule.forward, rule.input, rule.weight), (ops::ConvForward::of(&g, &s), ops::ConvBackwardInput::of(&g, &s), ops::ConvBackwardWeight::of(&g, &s)));
    // a table file that does not parse is ignored, not fatal
    std::fs::write(&file, "picks = [[[").unwrap();
    g.kernels.set_file(Some(file));
    assert!(g.kernels.table().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_mode_reads_off_on_refresh() {
    assert_eq!(Autotune::parse("OFF"), Ok(Some(Autotune::Off)));
    assert_eq!(Autotune::parse(" on"), Ok(Some(Autotune::On)));
    assert_eq!(Autotune::parse("refresh"), Ok(Some(Autotune::Refresh)));
    assert_eq!(Autotune::parse(""), Ok(None));
    assert!(Autotune::parse("fast").unwrap_err().contains("off, on or refresh"));
    assert_eq!(Autotune::default_for(wgpu::DeviceType::Cpu), Autotune::Off);
    assert_eq!(Autotune::default_for(wgpu::DeviceType::DiscreteGpu), Autotune::On);
}

fn cfg(out: &std::path::Path, iterations: usize) -> RunConfig {
    RunConfig { export_images: false, ..common::small_run(out, iterations, 17) }
}

/// A device whose autotuner has (in memory) picked a GEMM tiling for every key in `keys`.
fn gemm_tuned_gpu(keys: &[String]) -> Gpu {
    let g = Gpu::new().unwrap();
    g.kernels.set_file(None);
    g.kernels.set_mode(Autotune::On);
    for key in keys {
        let kernel = ops::GEMM_TILES[0].name().to_string();
        g.kernels.store(key, Tuned { kernel, ms: 1.0, timing: "test".into(), candidates: Default::default(), skipped: vec![] }, "test");
    }
    g
}

#[test]
fn a_resume_runs_the_recorded_kernels_whatever_the_tuner_picks_now() {
    let base = tempdir("resume");
    let (a, b, c) = (base.join("straight"), base.join("resumed"), base.join("retuned"));
    let cache = std::path::Path::new("/none");
    // the run and its first part, on devices running the rule
    let ga = Gpu::new().unwrap();
    ga.kernels.set_mode(Autotune::Off);
    run::run(&ga, &cfg(&a, 6), run::Start::Fresh, cache).unwrap();
    let gb = Gpu::new().unwrap();
    gb.kernels.set_mode(Autotune::Off);
    run::run(&gb, &cfg(&b, 4), run::Start::Fresh, cache).unwrap();
    let keys: Vec<String> = gb.kernels.used().into_keys().collect();
    assert!(keys.len() >= 6, "the run recorded {} kernels", keys.len());
    // resumed where the autotuner now picks GEMM kernels for every one of those shapes: the checkpoint's win
    let gc = gemm_tuned_gpu(&keys);
    run::run(&gc, &cfg(&b, 6), run::Start::Resume, cache).unwrap();
    for (k, v) in gc.kernels.used() {
        assert_eq!(Some(&v), gb.kernels.used().get(&k), "{k}: the resume ran {v}, not the recorded kernel");
    }
    let (ca, cb) = (run::read_checkpoint(&a).unwrap(), run::read_checkpoint(&b).unwrap());
    assert_eq!(ca, cb, "the resumed run differs from the uninterrupted one");
    // the control: the same run from the start on such a device runs the GEMM kernels, and its numbers differ in
    // the last bits (another summation order), which is why the pins matter
    let gd = gemm_tuned_gpu(&keys);
    run::run(&gd, &cfg(&c, 6), run::Start::Fresh, cache).unwrap();
    assert!(gd.kernels.used().values().all(|v| v.starts_with("gemm_")), "{:?}", gd.kernels.used());
    let cc = run::read_checkpoint(&c).unwrap();
    let max_diff = ca.syn.iter().zip(&cc.syn).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    println!("max |rule − GEMM kernels| after 6 iterations: {max_diff:e}");
    assert_ne!(ca.syn, cc.syn, "the GEMM kernels gave the rule's bits: the control shows nothing");
    assert!(max_diff < 1e-3, "the GEMM kernels' run drifted by {max_diff}");
    // the exported set records the kernels too
    let mut with_set = cfg(&base.join("set"), 2);
    with_set.export_images = true;
    run::run(&ga, &with_set, run::Start::Fresh, cache).unwrap();
    let set = export::read_safetensors(&base.join("set/synset.safetensors")).unwrap();
    let recorded: std::collections::BTreeMap<String, String> = serde_json::from_str(&set.meta["kernels"]).unwrap();
    assert!(!recorded.is_empty() && recorded.iter().all(|(k, v)| ga.kernels.used().get(k) == Some(v)));
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn a_candidate_replaces_the_rule_only_by_winning_every_paired_round() {
    // runs per candidate, the warm-up first; candidate 0 is the rule's kernel
    let rule = vec![9.0, 10.0, 10.0, 10.0, 10.0, 10.0];
    // fastest run 20 % below the rule's, but slower in two rounds: noise, not a faster kernel
    let lucky = vec![9.0, 8.0, 11.0, 8.0, 10.5, 9.0];
    // 5 % faster in every round
    let steady = vec![9.0, 9.5, 9.5, 9.5, 9.5, 9.5];
    // 2 % faster in every round: within the margin
    let close = vec![9.0, 9.8, 9.8, 9.8, 9.8, 9.8];
    // 40 % faster, but only two counted rounds (the budget ran out): too few to tell
    let short = vec![6.0, 6.0, 6.0];
    // 30 % faster in every round, and three of them
    let fast = vec![7.0, 7.0, 7.0, 7.0];
    assert_eq!(tune::choose(&[rule.clone(), lucky.clone(), close.clone(), short.clone()]), 0);
    assert_eq!(tune::choose(&[rule.clone(), lucky.clone(), steady.clone(), close]), 2);
    assert_eq!(tune::choose(&[rule.clone(), steady, short, fast]), 3);
    assert_eq!(tune::choose(&[rule.clone()]), 0);
    assert_eq!(tune::choose(&[rule, vec![1.0]]), 0, "a warm-up alone is not a measurement");
}

#[test]
fn the_pool_convolutions_are_tuned_too() {
    // an evaluation-pool convolution (5×5, LeNet's first) is measured like ConvNet-3's: the direct kernel and
    // every tiling, the pick remembered and run
    use hyperdistill::nn::tune::TuneShape;
    use hyperdistill::shapes::KConvShape;
    let g = Gpu::new().unwrap();
    g.kernels.set_file(None);
    g.kernels.set_mode(Autotune::On);
    let s = KConvShape { n: 3, cin: 1, cout: 6, h: 12, w: 12, k: 5, stride: 1, pad: 2 };
    let picks = tune::KConvPicks::new(&g, &s);
    let (input, weight) = (picks.input(&g), picks.weight(&g));
    let table = g.kernels.table();
    for (op, name) in [("kconv_forward", picks.forward.0.name()), ("kconv_input_grad", input.0.name()), ("kconv_weight_grad", weight.0.name())] {
        let key = s.key(op);
        let t = &table[&key];
        println!("{key}: {} {:.3} ms of {:?}", t.kernel, t.ms, t.candidates);
        assert_eq!(t.kernel, name);
        assert_eq!(t.candidates.len() + t.skipped.len(), ops::KConvKernel::available().len());
        assert!(t.candidates.contains_key("direct") && t.candidates.keys().any(|c| c.starts_with("gemm_")));
        assert_eq!(KConvShape::parse_key(&key), Some((op.to_string(), s)));
        assert_eq!(g.kernels.used()[&key], name);
    }
}

#[test]
fn a_spent_budget_defers_new_shapes_to_a_later_run() {
    // HYPERDISTILL_AUTOTUNE_BUDGET: once a process has measured for that long, a new shape runs the rule and is not
    // written to the table (so a later run measures it); a budget left measures it
    let g = Gpu::new().unwrap();
    g.kernels.set_file(None);
    g.kernels.set_mode(Autotune::On);
    let s = ConvShape { n: 2, cin: 3, cout: 8, h: 6, w: 6, pad: 1 };
    g.kernels.set_budget(0.0);
    let k = tune::conv_kernels(&g, &s);
    assert_eq!((k.forward, k.input, k.weight), (ops::ConvForward::of(&g, &s), ops::ConvBackwardInput::of(&g, &s), ops::ConvBackwardWeight::of(&g, &s)));
    assert!(g.kernels.table().is_empty() && g.kernels.spent() == 0.0, "nothing measured with no budget");
    assert_eq!(g.kernels.deferred().len(), 3);
    assert!(hyperdistill::selfcheck::kernel_table(&g).contains("rule: this run's measuring budget was spent"));
    g.kernels.set_budget(f64::INFINITY);
    tune::conv_kernels(&g, &s);
    assert_eq!(g.kernels.table().len(), 3, "a later run (budget left) measures the deferred shapes");
    // refresh measures every shape it meets, whatever the budget (a bound would re-time the same first shapes on
    // every refreshing run)
    g.kernels.set_budget(0.0);
    g.kernels.set_mode(Autotune::Refresh);
    let spent = g.kernels.spent();
    tune::conv_kernels(&g, &s);
    assert!(g.kernels.spent() > spent, "refresh skipped a shape for the budget");
    assert_eq!(Gpu::new().unwrap().kernels.budget(), hyperdistill::gpu::TUNE_BUDGET_S);
}
