//! Traces (`distill --trace`, `eval --trace`): a traced run (DM, DM+HDD, IDM+HDD) equals an untraced one bit for bit;
//! the trace files hold every tensor the check needs, with the right shapes, and agree with the run itself (one
//! iteration's output is the next one's input) and with the crate's f64 reference (the network on the augmented real
//! batch); the DC-unit DSA values give back the window the kernel zeroes. (benches/trace_check.py recomputes traces in PyTorch.)

mod common;
use common::*;
use hyperdistill::augment::{self, Op};
use hyperdistill::distill::{DistillConfig, Method};
use hyperdistill::nn::convnet::{self, ConvNetConfig, ConvNetParams};
use hyperdistill::run::{self, RunConfig};
use safetensors::SafeTensors;

fn cfg(out: &std::path::Path, method: Method, trace: Vec<usize>) -> RunConfig {
    let idm = hyperdistill::distill::IdmConfig { net_num: 3, net_generate_interval: 2, fetch_net_num: 2, model_train_steps: 1, net_batch: 16, ..Default::default() };
    RunConfig {
        dataset: "embedded".into(),
        out: out.to_path_buf(),
        eval_every: 0,
        log_every: 1,
        checkpoint_every: 0,
        trace,
        distill: DistillConfig { method, ipc: 2, iterations: 3, batch_real: 8, width: 8, seed: 5, idm, ..DistillConfig::default() },
        eval: hyperdistill::eval::EvalConfig { nets: 0, ..Default::default() },
        ..RunConfig::default()
    }
}

fn f32s(st: &SafeTensors, name: &str) -> (Vec<usize>, Vec<f32>) {
    let t = st.tensor(name).unwrap_or_else(|_| panic!("trace tensor {name} missing"));
    assert_eq!(t.dtype(), safetensors::Dtype::F32, "{name}");
    (t.shape().to_vec(), t.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect())
}

fn i64s(st: &SafeTensors, name: &str) -> Vec<i64> {
    let t = st.tensor(name).unwrap_or_else(|_| panic!("trace tensor {name} missing"));
    assert_eq!(t.dtype(), safetensors::Dtype::I64, "{name}");
    t.data().chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect()
}

fn f64s(st: &SafeTensors, name: &str) -> Vec<f64> {
    let t = st.tensor(name).unwrap_or_else(|_| panic!("trace tensor {name} missing"));
    assert_eq!(t.dtype(), safetensors::Dtype::F64, "{name}");
    t.data().chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect()
}

#[test]
fn a_traced_run_equals_an_untraced_one_and_its_traces_are_complete() {
    let base = std::env::temp_dir().join(format!("hd-trace-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let cache = std::path::Path::new("/none");
    for method in [Method::Dm, Method::DmHdd, Method::IdmHdd] {
        let (plain, traced) = (base.join(format!("{}-plain", method.name())), base.join(format!("{}-traced", method.name())));
        run::run(gpu(), &cfg(&plain, method, vec![]), run::Start::Fresh, cache).unwrap();
        run::run(gpu(), &cfg(&traced, method, vec![1, 2]), run::Start::Fresh, cache).unwrap();

        // the same set, momentum and losses, bit for bit
        let ck_plain = run::read_checkpoint(&plain).unwrap();
        let ck = run::read_checkpoint(&traced).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&ck_plain.syn), bits(&ck.syn), "{}: traced set differs", method.name());
        assert_eq!(bits(&ck_plain.momentum), bits(&ck.momentum), "{}: traced momentum differs", method.name());
        let losses = |dir: &std::path::Path| -> Vec<String> {
            std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap().lines().filter(|l| l.contains("\"loss\"")).map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                format!("{} {}", v["loss"], v["per_class"])
            }).collect()
        };
        assert_eq!(losses(&plain), losses(&traced), "{}: traced losses differ", method.name());
        assert!(!traced.join("trace/iter_0.safetensors").exists(), "only the listed iterations are traced");

        let bytes1 = std::fs::read(traced.join("trace/iter_1.safetensors")).unwrap();
        let bytes2 = std::fs::read(traced.join("trace/iter_2.safetensors")).unwrap();
        let (t1, t2) = (SafeTensors::deserialize(&bytes1).unwrap(), SafeTensors::deserialize(&bytes2).unwrap());
        let (_, meta) = SafeTensors::read_metadata(&bytes2).unwrap();
        let meta = meta.metadata().clone().unwrap();
        assert_eq!(meta["method"], method.name());
        assert_eq!(meta["iteration"], "2");
        let (classes, ipc, b) = (10usize, 2usize, 8usize);
        // IDM matches each class's 2×2 mosaics expanded into 4 images each
        let e = if method.idm() { 4 * ipc } else { ipc };
        let (c, h, w) = (1usize, 28usize, 28usize);
        let net_cfg = ConvNetConfig::square(c, h, 8, classes).unwrap();
        let dim = net_cfg.embed_dim();
        let mut expect: Vec<(&str, Vec<usize>)> = vec![
            ("real.images", vec![classes * b, c, h, w]),
            ("syn.before", vec![classes * ipc, c, h, w]),
            ("syn.momentum_before", vec![classes * ipc, c, h, w]),
            ("syn.augmented", vec![classes * e, c, h, w]),
            ("real.embed", vec![classes * b, dim]),
            ("syn.embed", vec![classes * e, dim]),
            ("loss.per_class", vec![classes]),
            ("syn.grad", vec![classes * ipc, c, h, w]),
            ("syn.momentum_after", vec![classes * ipc, c, h, w]),
            ("syn.after", vec![classes * ipc, c, h, w]),
            ("dsa.params", vec![classes, 8]),
        ];
        let names = hyperdistill::trace::torch_tensors(&net_cfg);
        let net_names: Vec<String> = names.iter().map(|(n, _)| format!("net.{n}")).collect();
        for ((_, shape), name) in names.iter().zip(&net_names) {
            expect.push((name, shape.clone()));
        }
        if method.idm() {
            expect.extend([("syn.logits", vec![classes * e, classes]), ("syn.ce", vec![classes * e]), ("idm.meter", vec![2])]);
        } else {
            expect.push(("syn.embed_grad", vec![classes * ipc, dim]));
        }
        for (name, shape) in &expect {
            assert_eq!(&f32s(&t2, name).0, shape, "{name}");
        }
        assert_eq!(i64s(&t2, "real.indices").len(), classes * b);
        assert_eq!(i64s(&t2, "dsa.op").len(), classes);
        assert_eq!(f64s(&t2, "dsa.values").len(), classes * 3);
        if method == Method::DmHdd {
            for (name, len) in [("hdd.real_points", classes * b * (dim + 1)), ("hdd.syn_points", classes * ipc * (dim + 1)),
                ("hdd.real_centroid", classes * (dim + 1)), ("hdd.syn_centroid", classes * (dim + 1))] {
                assert_eq!(f64s(&t2, name).len(), len, "{name}");
            }
        }
        if method.hdd() {
            // the distances are the loss without λ
            let lambda: f64 = meta["lambda"].parse().unwrap();
            let (d, l) = (f64s(&t2, "hdd.distance"), f32s(&t2, "loss.per_class").1);
            check("hdd.distance × λ = loss", &d.iter().map(|v| v * lambda).collect::<Vec<_>>(), &to_f64(&l), 1e-6);
        } else {
            assert!(t2.tensor("hdd.distance").is_err(), "DM has no HDD tensors");
        }

        // iteration 1's output is iteration 2's input, bit for bit; the last trace's output is the run's result
        assert_eq!(f32s(&t1, "syn.after").1, f32s(&t2, "syn.before").1);
        assert_eq!(f32s(&t1, "syn.momentum_after").1, f32s(&t2, "syn.momentum_before").1);
        assert_eq!(bits(&f32s(&t2, "syn.after").1), bits(&ck.syn), "the last trace's output is the run's result");

        // the network is iteration 2's random network; each real index is an image of its class, fed normalised
        let ds = hyperdistill::data::open("embedded", cache).unwrap();
        let params = ConvNetParams { cfg: net_cfg, tensors: net_names.iter().map(|n| f32s(&t2, n).1).collect() };
        if !method.idm() {
            // DM: iteration 2's fresh random network (IDM: a net of its queue)
            assert_eq!(params, ConvNetParams::init(&net_cfg, &mut hyperdistill::rng::keyed(5, "net", &[2])));
        }
        let idx = i64s(&t2, "real.indices");
        for (k, &i) in idx.iter().enumerate() {
            assert_eq!(ds.train.labels[i as usize] as usize, k / b, "real index {i} in class {}'s batch", k / b);
        }
        let idx: Vec<usize> = idx.iter().map(|&i| i as usize).collect();
        assert_eq!(f32s(&t2, "real.images").1, ds.normalized(&ds.train, &idx));

        // the real features are the f64 reference network's on the real batch augmented with the traced parameters
        let real = to_f64(&f32s(&t2, "real.images").1);
        let aug = f32s(&t2, "dsa.params").1;
        let per_image: Vec<augment::AugParams> = (0..classes * b).map(|k| augment::AugParams(aug[(k / b) * 8..(k / b) * 8 + 8].try_into().unwrap())).collect();
        let x = augment::reference::forward(&real, &per_image, c, h, w);
        let want = convnet::ref_forward(&net_cfg, &params.to_f64(), &x, classes * b).embed;
        check(&format!("{} real.embed vs reference", method.name()), &to_f64(&f32s(&t2, "real.embed").1), &want, 1e-4);
    }
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn dc_values_give_back_the_cutout_window_and_the_affine_maps() {
    // the DC code zeroes rows clamp(o − L/2 + i, 0, H − 1) for i < L: the same rows as the kernel's [row0, row1)
    let mut r = rng(3);
    for side in [28usize, 32, 64] {
        for _ in 0..500 {
            let p = augment::draw(Op::Cutout, &mut r, side, side);
            let v = Op::Cutout.dc_values(&p, side, side);
            let l = (side as f64 * 0.5 + 0.5) as i64;
            for (o, (lo, hi)) in [(v[0] as i64, (p.0[1], p.0[2])), (v[1] as i64, (p.0[3], p.0[4]))] {
                let rows: std::collections::BTreeSet<i64> = (0..l).map(|i| (o - l / 2 + i).clamp(0, side as i64 - 1)).collect();
                let want: std::collections::BTreeSet<i64> = (lo as i64..hi as i64).collect();
                assert_eq!(rows, want, "side {side}, offset {o}");
                assert!((0..=side as i64).contains(&o), "offset {o} within the DC code's randint range");
            }
        }
    }
    for _ in 0..100 {
        let p = augment::draw(Op::Rotate, &mut r, 32, 32);
        let theta = Op::Rotate.dc_values(&p, 32, 32)[0];
        assert!((theta.cos() - p.0[1] as f64).abs() < 1e-6 && (theta.sin() - p.0[3] as f64).abs() < 1e-6);
        assert!(theta.abs() <= 15f64.to_radians() + 1e-6);
        let p = augment::draw(Op::Color, &mut r, 32, 32);
        let v = Op::Color.dc_values(&p, 32, 32);
        assert!(v.iter().all(|u| (0.0..=1.0).contains(u)), "color draws are uniform in [0, 1): {v:?}");
    }
}

#[test]
fn an_evaluation_step_trace_continues_the_previous_step() {
    let cache = std::path::Path::new("/none");
    let ds = hyperdistill::data::open("embedded", cache).unwrap();
    let idx: Vec<usize> = (0..40).collect();
    let images = ds.normalized(&ds.train, &idx);
    let labels: Vec<u32> = idx.iter().map(|&i| ds.train.labels[i]).collect();
    let cfg = hyperdistill::eval::EvalConfig { width: 8, batch: 16, epochs: 2, nets: 1, ..Default::default() };
    // 40 images in batches of 16: steps 0, 1, 2 in epoch 0; step 3 is the next epoch's first
    let traces: Vec<_> = [2usize, 3].iter().map(|&s| hyperdistill::eval::trace_step(gpu(), &ds, &images, &labels, &cfg, 9, s).unwrap()).collect();
    let bytes: Vec<Vec<u8>> = traces.iter().map(|t| t.to_safetensors().unwrap()).collect();
    let (a, b) = (SafeTensors::deserialize(&bytes[0]).unwrap(), SafeTensors::deserialize(&bytes[1]).unwrap());
    assert_eq!(f32s(&a, "batch.images").0, vec![8, 1, 28, 28], "the last partial batch of the epoch");
    assert_eq!(f32s(&b, "batch.images").0, vec![16, 1, 28, 28]);
    let net_cfg = ConvNetConfig::square(1, 28, 8, 10).unwrap();
    for (name, _) in hyperdistill::trace::torch_tensors(&net_cfg) {
        assert_eq!(f32s(&a, &format!("net_after.{name}")).1, f32s(&b, &format!("net.{name}")).1, "{name}");
        assert_eq!(f32s(&a, &format!("momentum_after.{name}")).1, f32s(&b, &format!("momentum_before.{name}")).1, "{name}");
        assert_eq!(f32s(&a, &format!("grad.{name}")).0, f32s(&a, &format!("net.{name}")).0, "{name}");
    }
    // the batch is what it says: images of the set at its indices, with their labels
    let bi = i64s(&b, "batch.indices");
    let want: Vec<f32> = bi.iter().flat_map(|&i| images[i as usize * 784..(i as usize + 1) * 784].to_vec()).collect();
    assert_eq!(f32s(&b, "batch.images").1, want);
    assert_eq!(i64s(&b, "batch.labels"), bi.iter().map(|&i| labels[i as usize] as i64).collect::<Vec<_>>());
    // the per-sample losses are the cross-entropy of the traced logits
    let (logits, loss) = (f32s(&b, "logits").1, f32s(&b, "loss.per_sample").1);
    let want: Vec<f64> = logits.chunks(10).zip(bi.iter()).map(|(z, &i)| {
        let m = z.iter().fold(f32::MIN, |m, &v| m.max(v)) as f64;
        let lse = m + z.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
        lse - z[labels[i as usize] as usize] as f64
    }).collect();
    check("eval trace: cross-entropy of the logits", &to_f64(&loss), &want, 1e-5);
    let err = hyperdistill::eval::trace_step(gpu(), &ds, &images, &labels, &cfg, 9, 9).unwrap_err().to_string();
    assert!(err.contains("trains 9 steps"), "{err}");
}
