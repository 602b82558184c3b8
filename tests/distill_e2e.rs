//! Distillation and evaluation end to end on the embedded Fashion-MNIST subset at a tiny width: bad options
//! are refused before any work, DM and DM+HDD each lower their own matching loss, and the evaluation
//! protocol trains a network that beats chance.

mod common;
use common::*;
use hyperdistill::data;
use hyperdistill::distill::{DistillConfig, Distiller, Method};
use hyperdistill::eval::{self, EvalConfig};

fn tiny(method: Method) -> DistillConfig {
    DistillConfig { method, ipc: 2, batch_real: 32, width: 8, iterations: 0, seed: 3, ..DistillConfig::default() }
}

#[test]
fn bad_options_are_refused_before_work() {
    let ds = data::open("embedded", std::path::Path::new("/none")).unwrap();
    let cases: Vec<(DistillConfig, &str)> = vec![
        (DistillConfig { ipc: 0, ..tiny(Method::Dm) }, "ipc must be at least 1"),
        (DistillConfig { ipc: 501, ..tiny(Method::Dm) }, "larger than the smallest training class"),
        (DistillConfig { k: 0.0, ..tiny(Method::DmHdd) }, "k must be positive"),
        (DistillConfig { lr_img: -1.0, ..tiny(Method::Dm) }, "lr_img must be non-negative"),
        (DistillConfig { dsa: "color_blur".into(), ..tiny(Method::Dm) }, "unknown DSA op 'blur'"),
    ];
    for (cfg, want) in cases {
        let e = cfg.validate(&ds).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
        let e = Distiller::new(gpu(), &ds, cfg).err().expect("refused").to_string();
        assert!(e.contains(want), "{e}");
    }
}

/// Mean loss of iterations [from, to) — each iteration draws a new network, so compare averages.
fn run(method: Method) -> (f32, f32) {
    let ds = data::open("embedded", std::path::Path::new("/none")).unwrap();
    let mut d = Distiller::new(gpu(), &ds, tiny(method)).unwrap();
    let mut losses = vec![];
    for _ in 0..30 {
        d.step(&ds).unwrap();
        losses.push(d.loss().unwrap().0);
    }
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    let first = losses[..5].iter().sum::<f32>() / 5.0;
    let last = losses[25..].iter().sum::<f32>() / 5.0;
    println!("{method:?}: mean loss of iterations 1–5 {first:.4}, of 26–30 {last:.4}");
    (first, last)
}

#[test]
fn dm_lowers_its_loss() {
    let (first, last) = run(Method::Dm);
    assert!(last < 0.8 * first, "DM loss did not fall: {first} → {last}");
}

#[test]
fn dm_hdd_lowers_its_loss() {
    let (first, last) = run(Method::DmHdd);
    assert!(last < 0.8 * first, "HDD loss did not fall: {first} → {last}");
}

#[test]
fn evaluation_protocol_learns_from_real_images() {
    let ds = data::open("embedded", std::path::Path::new("/none")).unwrap();
    // 10 real images per class as the "synthetic" set
    let idx: Vec<usize> = ds.class_indices(&ds.train).iter().flat_map(|c| c[..10].to_vec()).collect();
    let images = ds.normalized(&ds.train, &idx);
    let labels: Vec<u32> = idx.iter().map(|&i| ds.train.labels[i]).collect();
    let cfg = EvalConfig { epochs: 40, nets: 1, width: 8, quick: true, ..EvalConfig::default() };
    let r = eval::evaluate(gpu(), &ds, &images, &labels, &cfg, 1, &mut |_, _| {}).unwrap();
    println!("10 real images per class, width 8, 41 epochs: test accuracy {:.3}", r.mean);
    assert!(r.mean > 0.4, "accuracy {} is barely above chance (0.1)", r.mean);
}

#[test]
fn dance_protocol_schedules_and_learns() {
    // MultiStepLR ×0.2 at 2/3 and 5/6 of the epochs (1000 and 1250 of 1500), momentum kept; the DM schedule
    // drops ×0.1 after pass E/2 + 1 and restarts the momentum there
    let d = EvalConfig::dance();
    assert_eq!((d.passes(), d.batch, d.dsa.as_str()), (1500, 64, "color_crop_flip_scale_rotate"));
    for (ep, lr) in [(0, 0.01), (999, 0.01), (1000, 0.002), (1249, 0.002), (1250, 0.0004), (1499, 0.0004)] {
        let (got, restart) = d.lr_at(ep);
        assert!((got - lr).abs() < 1e-9 && !restart, "epoch {ep}: lr {got}, want {lr}");
    }
    let dm = EvalConfig::default();
    assert_eq!(dm.passes(), 1001);
    assert_eq!((dm.lr_at(501), dm.lr_at(502)), ((0.01, false), (0.01 * 0.1, true)));
    // 10 real images per class, tested every 10 of 30 epochs, the best accuracy reported
    let ds = data::open("embedded", std::path::Path::new("/none")).unwrap();
    let idx: Vec<usize> = ds.class_indices(&ds.train).iter().flat_map(|c| c[..10].to_vec()).collect();
    let images = ds.normalized(&ds.train, &idx);
    let labels: Vec<u32> = idx.iter().map(|&i| ds.train.labels[i]).collect();
    let cfg = EvalConfig { epochs: 30, nets: 1, width: 8, test_every: 10, quick: true, ..EvalConfig::dance() };
    let r = eval::evaluate(gpu(), &ds, &images, &labels, &cfg, 1, &mut |_, _| {}).unwrap();
    println!("DANCE protocol, 10 real images per class, width 8, 30 epochs: best test accuracy {:.3}", r.mean);
    assert!(r.mean > 0.4, "accuracy {} is barely above chance (0.1)", r.mean);
}

#[test]
fn real_batches_larger_than_one_binding_are_embedded_in_chunks() {
    // A device whose storage bindings hold 16 images' first activation embeds batch_real 40 in chunks 16 + 16 + 8;
    // every kernel works image by image, so the result equals the one-chunk run bit for bit (DM+HDD and IDM+HDD).
    let ds = data::open("embedded", std::path::Path::new("/none")).unwrap();
    let wide = hyperdistill::gpu::Gpu::new().expect("adapter");
    let mut narrow = hyperdistill::gpu::Gpu::new().expect("adapter");
    narrow.limits.max_storage_buffer_binding_size = 16 * 4 * 32 * 32 * 4; // width 4, 32×32 after padding 3, f32
    let idm = hyperdistill::distill::IdmConfig { net_num: 2, net_batch: 16, model_train_steps: 1, ..Default::default() };
    for method in [Method::DmHdd, Method::IdmHdd] {
        let cfg = DistillConfig { method, ipc: 1, batch_real: 40, width: 4, seed: 2, idm: idm.clone(), ..DistillConfig::default() };
        let run = |g: &hyperdistill::gpu::Gpu| {
            let mut d = Distiller::new(g, &ds, cfg.clone()).unwrap();
            for _ in 0..3 {
                d.step(&ds).unwrap();
            }
            (d.synthetic().unwrap().0, d.loss().unwrap().0)
        };
        let ((a, la), (b, lb)) = (run(&wide), run(&narrow));
        println!("{method:?}: loss {la} (one chunk) vs {lb} (chunks of 16)");
        assert!(a == b && la == lb, "{method:?}: chunked real embedding changed the result");
    }
}

/// An iteration is one submit with nothing read back and no GPU buffer created (the loss is read only when
/// logged). Counts, not speed: these hold on any adapter.
#[test]
fn an_iteration_is_one_submit_without_readback_or_new_gpu_objects() {
    let gpu = hyperdistill::gpu::Gpu::new().expect("adapter");
    let ds = hyperdistill::bench::random_dataset(1, 28, 8, 0);
    for method in [Method::Dm, Method::DmHdd] {
        let cfg = DistillConfig { method, ipc: 1, batch_real: 4, width: 4, iterations: 0, seed: 1, ..DistillConfig::default() };
        let mut d = Distiller::new(&gpu, &ds, cfg).unwrap();
        d.step(&ds).unwrap();
        let before = gpu.counters();
        d.step(&ds).unwrap();
        let c = gpu.counters() - before;
        println!("{method:?}: {c:?}");
        assert_eq!((c.submits, c.readbacks, c.buffers_created, c.bind_groups_created), (1, 0, 0, 0), "{c:?}");
        assert!(c.dispatches > 50, "{c:?}");
    }
}
