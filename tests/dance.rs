//! DANCE and DANCE+HDD on the embedded Fashion-MNIST subset at a tiny width: the interpolated encoder's weights,
//! experts trained once, saved and reused (retrained when the recipe changes) and better than chance, each method
//! lowering its own matching loss, pixels kept in [0, 1], and an iteration as one submit without read-back.

mod common;
use common::*;
use hyperdistill::data::{self, Dataset};
use hyperdistill::distill::{DanceConfig, DistillConfig, Distiller, Method};
use hyperdistill::experts::{self, Expert, ExpertRecipe};
use hyperdistill::nn::convnet::{ConvNetConfig, ConvNetParams, GpuConvNet};

fn embedded() -> Dataset {
    data::open("embedded", std::path::Path::new("/none")).unwrap()
}

fn recipe() -> ExpertRecipe {
    ExpertRecipe { width: 8, epochs: 2, batch: 128, seed: 4 }
}

fn tiny(method: Method) -> DistillConfig {
    let mut c = DistillConfig { method, ipc: 2, width: 8, seed: 4, ..DistillConfig::default() };
    c.apply_method_defaults();
    DistillConfig { batch_real: 32, dance: DanceConfig { experts: 1, num_premodel: 1, expert_epochs: 1, ..DanceConfig::default() }, ..c }
}

#[test]
fn the_interpolated_encoder_lies_between_the_experts_weights() {
    let cfg = ConvNetConfig::square(1, 28, 8, 10).unwrap();
    let e = Expert { init: ConvNetParams::init(&cfg, &mut rng(1)), fin: ConvNetParams::init(&cfg, &mut rng(2)) };
    for lambda in [0.0f32, 0.3, 1.0] {
        let mid = e.interpolate(lambda);
        for (t, m) in mid.tensors.iter().enumerate() {
            for (i, &v) in m.iter().enumerate() {
                let want = lambda * e.init.tensors[t][i] + (1.0 - lambda) * e.fin.tensors[t][i];
                assert_eq!(v, want, "tensor {t} element {i} at λ = {lambda}");
            }
        }
    }
    assert_eq!(e.interpolate(1.0), e.init);
    assert_eq!(e.interpolate(0.0), e.fin);
}

#[test]
fn experts_are_trained_once_saved_and_reused() {
    let ds = embedded();
    let dir = std::env::temp_dir().join(format!("hd-experts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (first, trained) = experts::load_or_train(gpu(), &ds, Some(&dir), 2, &recipe(), &mut |_, _| {}).unwrap();
    assert_eq!(trained, 2);
    assert!(dir.join("expert00.safetensors").exists() && dir.join("expert01.safetensors").exists());
    assert_ne!(first[0].fin, first[1].fin, "each expert has its own seed");
    assert_ne!(first[0].init, first[0].fin, "training moved the weights");
    let (again, trained) = experts::load_or_train(gpu(), &ds, Some(&dir), 2, &recipe(), &mut |_, _| {}).unwrap();
    assert_eq!((trained, &again), (0, &first), "reused from disk, identical");
    let (_, trained) = experts::load_or_train(gpu(), &ds, Some(&dir), 1, &ExpertRecipe { epochs: 1, ..recipe() }, &mut |_, _| {}).unwrap();
    assert_eq!(trained, 1, "another recipe is not reused");
    // a trained expert classifies the real test split well above chance
    let net = hyperdistill::eval::EvalNet::ConvNet(GpuConvNet::new(gpu(), &first[0].fin).unwrap());
    let acc = hyperdistill::eval::test_accuracy(gpu(), &net, &ds).unwrap();
    println!("expert 0 (width 8, 2 epochs on 5000 images): test accuracy {acc:.3}");
    assert!(acc > 0.5, "{acc}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dance_and_dance_hdd_lower_their_matching_loss_and_keep_pixels_in_range() {
    // One expert whose initial and final weights are the same random net: every interpolated encoder is then that
    // net, so the matching loss must fall as the pixels adapt (as IDM's fixed-net test); calibration off here.
    let ds = embedded();
    let net_cfg = ConvNetConfig::square(1, 28, 8, 10).unwrap();
    let p = ConvNetParams::init(&net_cfg, &mut rng(5));
    for method in [Method::Dance, Method::DanceHdd] {
        // DANCE's MSE is DM's sum / dim (128 here) and its lr is in pixel units (× 1/std² ≈ 8): lr 16 moves the
        // matching term about as fast as DM's lr 1. λ·d_L is not divided by dim, and with DANCE's three augmentation
        // ops per step it overshoots from lr 0.125 (1 in the normalised space) on: lr 0.03 here
        let base = tiny(method);
        let lr = if method == Method::Dance { 16.0 } else { 0.03 };
        let cfg = DistillConfig { lr_img: lr, dance: DanceConfig { iter_calib: 0, ..base.dance.clone() }, ..base };
        let mut d = Distiller::with_experts(gpu(), &ds, cfg, Some(vec![Expert { init: p.clone(), fin: p.clone() }])).unwrap();
        let mut losses = vec![];
        for _ in 0..30 {
            d.step(&ds).unwrap();
            losses.push(d.loss().unwrap().0);
        }
        assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
        // the first loss is the initial images' (the step follows it); the last six average out the augmentations
        let (first, last) = (losses[0], mean(&losses[24..]));
        println!("{method:?}: matching loss of the initial images {first:.5}, mean of iterations 25–30 {last:.5}: {losses:?}");
        assert!(last < 0.85 * first, "{method:?}: {first} → {last}");
        // every pixel, denormalised, lies in [0, 1]
        let (syn, _) = d.synthetic().unwrap();
        let (lo, hi) = syn.iter().map(|&v| v * ds.std[0] + ds.mean[0]).fold((f32::MAX, f32::MIN), |(a, b), p| (a.min(p), b.max(p)));
        println!("{method:?}: pixel range [{lo}, {hi}]");
        assert!(lo >= -1e-5 && hi <= 1.0 + 1e-5);
    }
    // with calibration on (DANCE's defaults), the pixels stay in range too and the loss stays finite
    let mut d = Distiller::new(gpu(), &ds, tiny(Method::Dance)).unwrap();
    for _ in 0..3 {
        d.step(&ds).unwrap();
    }
    assert!(d.loss().unwrap().0.is_finite());
    let (syn, _) = d.synthetic().unwrap();
    assert!(syn.iter().all(|&v| (-1e-5..=1.0 + 1e-5).contains(&(v * ds.std[0] + ds.mean[0]))));
}

#[test]
fn a_dance_iteration_is_one_submit_without_readback() {
    let ds = embedded();
    let g = hyperdistill::gpu::Gpu::new().expect("adapter");
    let mut d = Distiller::new(&g, &ds, tiny(Method::DanceHdd)).unwrap();
    d.step(&ds).unwrap();
    let before = g.counters();
    d.step(&ds).unwrap();
    let c = g.counters() - before;
    println!("DANCE+HDD iteration: {c:?}");
    assert_eq!((c.submits, c.readbacks, c.buffers_created, c.bind_groups_created), (1, 0, 0, 0), "{c:?}");
    let e = Distiller::new(gpu(), &ds, DistillConfig { dance: DanceConfig { num_premodel: 0, ..DanceConfig::default() }, ..tiny(Method::Dance) })
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("at least 1"), "{e}");
}
