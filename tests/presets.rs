//! The presets under presets/ (one per published setting, written by presets/generate.py): every file parses as a
//! run configuration and validates against generated data of its dataset's shape, and the values follow
//! method.md §1.5 / §1.7 — the same as `DistillConfig::apply_method_defaults` where the CIFAR-10 rows apply.

use hyperdistill::data::{Dataset, Split};
use hyperdistill::distill::{DistillConfig, Method};
use hyperdistill::hdd::LorentzMap;
use hyperdistill::run::RunConfig;

/// Zero images of the dataset's shape, 50 per class (enough for IPC 50 and IDM's 256-image net batches).
fn shaped(name: &str) -> Dataset {
    let (channels, side, classes) = match name {
        "fashion-mnist" => (1, 28, 10),
        "svhn" | "cifar10" => (3, 32, 10),
        "cifar100" => (3, 32, 100),
        "tiny-imagenet" => (3, 64, 200),
        other => panic!("preset names an unknown dataset '{other}'"),
    };
    let n = classes * 50;
    let split = Split { images: vec![0; n * channels * side * side], labels: (0..n).map(|i| (i % classes) as u32).collect() };
    Dataset {
        name: name.into(),
        known: None,
        classes: (0..classes).map(|c| c.to_string()).collect(),
        channels,
        height: side,
        width: side,
        mean: vec![0.5; channels],
        std: vec![0.25; channels],
        test: Split { images: vec![], labels: vec![] },
        train: split,
        source: "generated".into(),
        subset: None,
    }
}

fn load(rel: &str) -> RunConfig {
    RunConfig::from_toml_file(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("presets").join(rel)).unwrap()
}

#[test]
fn every_preset_parses_and_validates() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("presets");
    let mut count = 0;
    for method in ["dm", "dm_hdd", "idm", "idm_hdd", "dance", "dance_hdd"] {
        for ds in ["fashion-mnist", "svhn", "cifar10", "cifar100", "tiny-imagenet"] {
            for ipc in [1, 10, 50] {
                let path = root.join(method).join(format!("{ds}-ipc{ipc}.toml"));
                let cfg = RunConfig::from_toml_file(&path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                assert_eq!((cfg.dataset.as_str(), cfg.distill.ipc, cfg.distill.method.name().replace('+', "_")), (ds, ipc, method.to_string()));
                let mut d = cfg.distill.clone();
                d.batch_real = d.batch_real.min(50); // the generated data has 50 per class
                d.validate(&shaped(ds)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                count += 1;
            }
        }
    }
    assert_eq!(count, 90);
}

#[test]
fn presets_carry_the_published_values() {
    let dm = load("dm_hdd/cifar100-ipc10.toml").distill;
    assert_eq!((dm.k, dm.lambda, dm.map, dm.lr_img, dm.iterations, dm.batch_real), (1.0, 20.0, LorentzMap::Expmap, 1.0, 20000, 256));
    let c100 = load("idm_hdd/cifar100-ipc10.toml").distill;
    assert_eq!((c100.k, c100.lambda, c100.map, c100.lr_img, c100.idm.ce_weight, c100.idm.model_train_steps), (2.0, 100.0, LorentzMap::Projx, 0.2, 0.1, 50));
    let tiny = load("idm_hdd/tiny-imagenet-ipc50.toml").distill;
    assert_eq!((tiny.k, tiny.lambda, tiny.map, tiny.idm.ce_weight, tiny.idm.acc_reset_every), (0.5, 500.0, LorentzMap::Projx, 0.8, 1000));
    assert_eq!(load("idm/cifar10-ipc10.toml").distill.lr_img, 0.2, "plain IDM: lr_img 0.2 everywhere");
    let dance = load("dance/fashion-mnist-ipc50.toml");
    assert_eq!((dance.distill.lr_img, dance.distill.batch_real, dance.distill.dance.experts, dance.eval.protocol), (0.5, 128, 20, hyperdistill::eval::Protocol::Dance));
    assert_eq!(dance.eval, hyperdistill::eval::EvalConfig::dance());
    // where the CIFAR-10 rows apply, the CLI's --method defaults and the presets agree
    for (file, method, ipc) in [("idm_hdd/fashion-mnist-ipc1.toml", Method::IdmHdd, 1), ("idm_hdd/cifar10-ipc10.toml", Method::IdmHdd, 10),
        ("idm_hdd/svhn-ipc50.toml", Method::IdmHdd, 50), ("idm/cifar10-ipc1.toml", Method::Idm, 1), ("dm_hdd/cifar10-ipc10.toml", Method::DmHdd, 10),
        ("dance/cifar10-ipc10.toml", Method::Dance, 10), ("dance_hdd/svhn-ipc50.toml", Method::DanceHdd, 50)] {
        let preset = load(file).distill;
        let mut cli = DistillConfig { method, ipc, ..DistillConfig::default() };
        cli.apply_method_defaults();
        cli.idm.acc_reset_every = preset.idm.acc_reset_every; // the scripts' eval_interval, not a CLI default
        cli.dance.expert_dir = preset.dance.expert_dir.clone(); // shared per dataset by the presets
        assert_eq!(preset, cli, "{file}");
    }
}
