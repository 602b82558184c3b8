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
