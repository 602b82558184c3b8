//! IDM and IDM+HDD end to end on the embedded Fashion-MNIST subset at a tiny width: each lowers its own matching
//! loss against a fixed net, the queue grows and is capped, the CE regulariser is weighted by the net's running
//! training accuracy (zero before any training step), an iteration stays one submit without read-back, the
//! mosaic initialisation holds downscaled real images, and evaluation sees the expanded set.

mod common;
use common::*;
use hyperdistill::data::{self, Dataset};
use hyperdistill::distill::{DistillConfig, Distiller, IdmConfig, Method, IDM_INITIAL_NETS};

fn embedded() -> Dataset {
    data::open("embedded", std::path::Path::new("/none")).unwrap()
}

fn tiny(method: Method, idm: IdmConfig) -> DistillConfig {
    let mut c = DistillConfig { method, ipc: 2, width: 8, seed: 5, ..DistillConfig::default() };
    c.apply_method_defaults();
    DistillConfig { batch_real: 32, idm: IdmConfig { net_batch: 16, ..idm }, ..c }
}

/// One net that never trains: the matching loss must fall as the pixels adapt to it.
fn fixed_net() -> IdmConfig {
    IdmConfig { net_num: 1, net_generate_interval: 1000, model_train_steps: 0, ..IdmConfig::default() }
}

fn mean(v: &[f32]) -> f32 {
    v.iter().sum::<f32>() / v.len() as f32
}

#[test]
fn idm_and_idm_hdd_lower_their_matching_loss_against_a_fixed_net() {
    let ds = embedded();
    for method in [Method::Idm, Method::IdmHdd] {
        let mut d = Distiller::new(gpu(), &ds, tiny(method, fixed_net())).unwrap();
        let mut losses = vec![];
        for _ in 0..20 {
            d.step(&ds).unwrap();
            losses.push(d.loss().unwrap().0);
        }
        assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
        let (first, last) = (mean(&losses[..4]), mean(&losses[16..]));
        println!("{method:?} (lr_img {}): matching loss of iterations 1–4 {first:.4}, of 17–20 {last:.4}", d.cfg().lr_img);
        assert!(last < 0.8 * first, "{method:?}: {first} → {last}");
        assert_eq!(d.queue_len(), 1);
    }
}

#[test]
fn the_queue_grows_every_interval_and_is_capped() {
    let ds = embedded();
    let idm = IdmConfig { net_num: 5, net_generate_interval: 2, fetch_net_num: 2, model_train_steps: 2, ..IdmConfig::default() };
    let mut d = Distiller::new(gpu(), &ds, tiny(Method::IdmHdd, idm)).unwrap();
    assert_eq!(d.queue_len(), IDM_INITIAL_NETS);
    let mut lens = vec![];
    for _ in 0..7 {
        d.step(&ds).unwrap();
        lens.push(d.queue_len());
    }
    println!("queue lengths after iterations 1–7: {lens:?}");
    // pushes at iterations 0, 2, 4, 6 onto 3 initial nets, capped at 5
    assert_eq!(lens, vec![4, 4, 5, 5, 5, 5, 5]);
    let (loss, per_class) = d.loss().unwrap();
    assert!(loss.is_finite() && per_class.len() == 10 && per_class.iter().all(|&l| l > 0.0), "{per_class:?}");
}

#[test]
fn the_ce_term_is_weighted_by_the_running_training_accuracy() {
    // The CE weight is ce_weight · acc% of the chosen net; before any training step every meter is empty, so the
    // first iteration cannot depend on ce_weight. Later, once queue nets have trained, it must.
    let ds = embedded();
    let idm = IdmConfig { net_num: 2, net_generate_interval: 1000, fetch_net_num: 2, model_train_steps: 3, ..IdmConfig::default() };
    let syn_after = |ce: f32, steps: usize| {
        let mut d = Distiller::new(gpu(), &ds, tiny(Method::Idm, IdmConfig { ce_weight: ce, ..idm.clone() })).unwrap();
        for _ in 0..steps {
            d.step(&ds).unwrap();
        }
        d.synthetic().unwrap().0
    };
    let diff = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    let first = diff(&syn_after(0.0, 1), &syn_after(0.5, 1));
    let later = diff(&syn_after(0.0, 3), &syn_after(0.5, 3));
    println!("max |Δ pixel| between ce_weight 0 and 0.5: after 1 iteration {first:e}, after 3 {later:e}");
    assert_eq!(first, 0.0);
    assert!(later > 1e-3, "the CE term had no effect once nets had trained: {later}");
}

#[test]
fn mosaic_initialisation_holds_downscaled_real_images_and_evaluation_sees_four_times_as_many() {
    let ds = embedded();
    let d = Distiller::new(gpu(), &ds, tiny(Method::Idm, fixed_net())).unwrap();
    let (syn, labels) = d.synthetic().unwrap();
    let img = ds.image_len();
    assert_eq!(labels.len(), 20);
    // every quadrant of every stored image is the 2×2 box average of some real training image of its class
    let classes = ds.class_indices(&ds.train);
    let half = ds.height / 2;
    for (k, &c) in labels.iter().enumerate() {
        for q in 0..4 {
            let (r0, c0) = hyperdistill::mosaic::quadrant_origin(q, ds.height, ds.width);
            let quad: Vec<f32> = (0..half * half).map(|p| syn[k * img + (r0 + p / half) * ds.width + c0 + p % half]).collect();
            let found = classes[c as usize].iter().any(|&i| {
                let real = ds.normalized(&ds.train, &[i]);
                let down = hyperdistill::mosaic::compose([&real, &real, &real, &real], 1, ds.height, ds.width);
                (0..half * half).all(|p| (down[(p / half) * ds.width + p % half] - quad[p]).abs() < 1e-5)
            });
            assert!(found, "image {k} quadrant {q} is not a downscaled real image of class {c}");
        }
    }
    let (images, eval_labels) = d.eval_set().unwrap();
    assert_eq!((images.len(), eval_labels.len()), (4 * syn.len(), 80));
    assert_eq!(&eval_labels[..20], &labels[..], "quadrant-major, labels tiled");
    // without the mosaic the stored set is evaluated as is
    let plain = Distiller::new(gpu(), &ds, tiny(Method::Idm, IdmConfig { mosaic: false, ..fixed_net() })).unwrap();
    assert_eq!(plain.eval_set().unwrap().1.len(), 20);
}

#[test]
fn an_idm_iteration_is_one_submit_without_readback_and_bad_options_are_refused() {
    let ds = embedded();
    // one slot, replaced by a fresh net every iteration and trained: every role reuses the same buffers
    let idm = IdmConfig { net_num: 1, net_generate_interval: 1, fetch_net_num: 1, model_train_steps: 2, ..IdmConfig::default() };
    let g = hyperdistill::gpu::Gpu::new().expect("adapter");
    let mut d = Distiller::new(&g, &ds, tiny(Method::IdmHdd, idm)).unwrap();
    d.step(&ds).unwrap(); // warm-up: pipelines and bind groups
    d.step(&ds).unwrap();
    let before = g.counters();
    d.step(&ds).unwrap();
    let c = g.counters() - before;
    println!("IDM+HDD iteration: {c:?}");
    assert_eq!((c.submits, c.readbacks, c.buffers_created, c.bind_groups_created), (1, 0, 0, 0), "{c:?}");
    for (cfg, want) in [
        (DistillConfig { idm: IdmConfig { net_num: 0, ..IdmConfig::default() }, ..tiny(Method::Idm, fixed_net()) }, "at least 1"),
        (DistillConfig { idm: IdmConfig { net_batch: 100_000, ..IdmConfig::default() }, ..tiny(Method::Idm, fixed_net()) }, "larger than the training set"),
        (DistillConfig { idm: IdmConfig { ce_weight: -1.0, ..IdmConfig::default() }, ..tiny(Method::Idm, fixed_net()) }, "non-negative"),
    ] {
        let e = Distiller::new(gpu(), &ds, cfg).err().expect("refused").to_string();
        assert!(e.contains(want), "{e}");
    }
}
