//! The command line end to end: `info` runs its self-check, `bench` times a tiny network and writes
//! JSON, and bad options are refused with a clear message.

use std::process::Command;

fn hyperdistill(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hyperdistill")).args(args).output().expect("binary runs")
}

#[test]
fn info_reports_adapter_and_passes_self_check() {
    let out = hyperdistill(&["info"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "info failed");
    for needle in ["adapter", "backend", "max_storage_buffer_binding_size", "max relative error"] {
        assert!(stdout.contains(needle), "info output lacks '{needle}'");
    }
    assert_eq!(stdout.matches("  ok").count(), 3, "both self-check shapes and the kernel check must pass");
    // every kernel the autotuner may pick, against the reference: 7 tilings × 3 passes on each of 2 ConvNet-3 shapes
    // and (with the direct kernel) 8 × 3 on each of 2 pool shapes are 90, plus the register-blocked ones
    let line = stdout.lines().find(|l| l.starts_with("kernel check ")).expect("a kernel check line");
    let n: usize = line["kernel check ".len()..].split(' ').next().unwrap().parse().unwrap();
    assert!(n > 90 && line.contains("12 (pass, shape) pairs against the reference") && line.ends_with("  ok"), "{line}");
}

#[test]
fn bench_writes_json() {
    // every part of the suite at toy sizes: the report's structure, the FLOP counts and the per-iteration counts
    let dir = std::env::temp_dir().join(format!("hd-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("bench.json");
    let out = hyperdistill(&[
        "bench", "--parts", "peak,kernels,distill,eval,passes", "--batch", "3", "--width", "8", "--runs", "2", "--warmup", "1",
        "--matmul", "64", "--ipc", "1", "--batch-real", "4", "--eval-epochs", "1", "--test-images", "20", "--eval-arch", "convnet,mlp", "--json", json.to_str().unwrap(),
    ]);
    println!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "bench failed");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(v["adapter"].as_str().is_some_and(|a| !a.is_empty()));
    // peak: every matmul variant timed, the best one named
    let peak = &v["peak"];
    assert_eq!(peak["timings"].as_array().unwrap().len(), hyperdistill::nn::ops::MatmulKernel::ALL.len());
    assert!(peak["gflops"].as_f64().unwrap() > 0.0);
    // kernels: 2 shapes × 3 layers × 36 kernels (every map side here is a multiple of 4 and at most 64, and width 8
    // allows 8 channels: forward, forward8, forward_v4, forward8_v4, forward_row_v4, forward8_row_v4,
    // forward_row_v4_stats, forward8_row_v4_stats, backward_input, backward_input_c1v4, backward_input_r1v4, backward_input_r2v4, backward_weight,
    // backward_weight4_v4, backward_weight8_row_v4, and the 7 GEMM tilings of each pass), plus backward_input8, backward_input_v4,
    // backward_input8_v4 and backward_input8_row_v4 where CIN = 8 (conv1 and conv2), each with its fraction of the peak
    let kernels = v["kernels"].as_array().unwrap();
    assert_eq!(kernels.len(), 2 * (3 * 36 + 2 * 4));
    for pass in ["forward", "input", "weight"] {
        for t in hyperdistill::nn::ops::GEMM_TILES {
            assert_eq!(kernels.iter().filter(|k| k["pass"] == format!("{pass}_{}", t.name())).count(), 6, "{pass} {}", t.name());
        }
    }
    for (name, count) in
        [("backward_input", 6), ("backward_input8", 4), ("backward_input_v4", 4), ("backward_input8_v4", 4), ("backward_input8_row_v4", 4), ("backward_input_c1v4", 6), ("backward_input_r1v4", 6), ("backward_input_r2v4", 6), ("backward_weight", 6),
         ("backward_weight4_v4", 6), ("backward_weight8_row_v4", 6)]
    {
        assert_eq!(kernels.iter().filter(|k| k["pass"] == name).count(), count, "{name}");
    }
    for name in ["forward", "forward8", "forward_v4", "forward8_v4", "forward_row_v4", "forward8_row_v4", "forward_row_v4_stats",
        "forward8_row_v4_stats"] {
        assert_eq!(kernels.iter().filter(|k| k["pass"] == name).count(), 6, "{name}");
    }
    assert!(kernels.iter().all(|k| k["fraction_of_peak"].as_f64().unwrap() > 0.0));
    // distill: 2 shapes × 2 methods; one submit, no read-back, no buffer created per iteration
    let distill = v["distill"].as_array().unwrap();
    assert_eq!(distill.len(), 4);
    for d in distill {
        let c = &d["per_iteration"];
        assert_eq!((c["submits"].as_u64(), c["readbacks"].as_u64(), c["buffers_created"].as_u64()), (Some(1), Some(0), Some(0)), "{d}");
        assert!(d["buffer_bytes"].as_u64().unwrap() > 0 && d["median_ms"].as_f64().unwrap() > 0.0);
    }
    // eval: 2 shapes × 1 ipc × 2 networks, 10 images trained, 20 test images
    let eval = v["eval"].as_array().unwrap();
    assert_eq!(eval.len(), 4);
    assert_eq!(eval.iter().map(|e| e["arch"].as_str().unwrap()).collect::<Vec<_>>(), ["convnet", "mlp", "convnet", "mlp"]);
    for e in eval {
        assert_eq!((e["images"].as_u64(), e["test_images"].as_u64(), e["epochs_timed"].as_u64()), (Some(10), Some(20), Some(2)));
        assert!(e["test_pass_ms"].as_f64().unwrap() > 0.0);
    }
    let timings = v["passes"].as_array().unwrap();
    assert_eq!(timings.len(), 4, "two shapes × two passes");
    for t in timings {
        assert!(t["median_ms"].as_f64().unwrap() > 0.0);
        assert!(t["gflops"].as_f64().unwrap() > 0.0);
        assert_eq!(t["batch"].as_u64(), Some(3));
    }
    // 1×28×28 at width 8, batch 3: conv MACs = 3·8·(32·32·1 + 16·16·8 + 8·8·8)·9
    let fmnist_fwd = &timings[0];
    let macs = 3.0 * 8.0 * (32.0 * 32.0 * 1.0 + 16.0 * 16.0 * 8.0 + 8.0 * 8.0 * 8.0) * 9.0;
    assert!((fmnist_fwd["gflop"].as_f64().unwrap() - 2.0 * macs / 1e9).abs() < 1e-12);
    // breakdown: one iteration per configuration timed kernel by kernel (its dispatches are the iteration's
    // dispatches), and one evaluation epoch
    let json2 = dir.join("breakdown.json");
    let out = hyperdistill(&[
        "bench", "--parts", "breakdown,distill", "--shapes", "fmnist", "--width", "8", "--runs", "1", "--warmup", "1", "--ipc", "1",
        "--batch-real", "4", "--json", json2.to_str().unwrap(),
    ]);
    println!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let gpu = hyperdistill::gpu::Gpu::new().unwrap();
    if gpu.device.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
        assert!(out.status.success(), "bench --parts breakdown failed");
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json2).unwrap()).unwrap();
        let (b, d) = (v["breakdown"].as_array().unwrap(), v["distill"].as_array().unwrap());
        assert_eq!(b.len(), 2);
        for (b, d) in b.iter().zip(d) {
            let kernels = b["kernels"].as_array().unwrap();
            let dispatches: u64 = kernels.iter().map(|k| k["dispatches"].as_u64().unwrap()).sum();
            assert_eq!(Some(dispatches), d["per_iteration"]["dispatches"].as_u64(), "{b}");
            assert!(b["gpu_ms"].as_f64().unwrap() > 0.0 && kernels.iter().all(|k| k["ms"].as_f64().unwrap() >= 0.0));
            assert!(kernels.iter().any(|k| k["kernel"].as_str().unwrap().starts_with("conv_forward:")));
        }
        // and one evaluation epoch (10 images, one batch): it trains, so it has weight gradients and SGD updates
        let e = v["eval_breakdown"].as_array().unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!((e[0]["images"].as_u64(), e[0]["arch"].as_str()), (Some(10), Some("convnet")));
        let names: Vec<&str> = e[0]["kernels"].as_array().unwrap().iter().map(|k| k["kernel"].as_str().unwrap()).collect();
        for want in ["conv_weight:backward_weight", "conv_weight:reduce_weight", "optim:sgd"] {
            assert!(names.iter().any(|n| n.starts_with(want)), "{want} in {names:?}");
        }
        assert!(e[0]["gpu_ms"].as_f64().unwrap() > 0.0 && e[0]["wall_ms"].as_f64().unwrap() >= e[0]["gpu_ms"].as_f64().unwrap());
    } else {
        assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no timestamp queries"));
    }
    let conv0 = &kernels[0];
    assert_eq!((conv0["layer"].as_u64(), conv0["cin"].as_u64(), conv0["cout"].as_u64(), conv0["side"].as_u64()), (Some(0), Some(1), Some(8), Some(28)));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_options_are_refused_clearly() {
    let out = hyperdistill(&["bench", "--batch", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--batch"));
    let out = hyperdistill(&["bench", "--parts", "speed"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown part 'speed'"));
    let out = hyperdistill(&["bench", "--shapes", "imagenet"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown shape 'imagenet'"));
}

#[test]
fn data_info_on_the_embedded_default_and_bad_paths() {
    let out = hyperdistill(&["data", "info"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(out.status.success());
    assert!(stdout.contains("fashion-mnist") && stdout.contains("5000 images, per class 500..500"));
    assert!(stdout.contains("1000 images, per class 100..100") && stdout.contains("Ankle boot"));
    assert!(stdout.contains("mean [0.2861], std [0.3530]"));
    let out = hyperdistill(&["data", "info", "/definitely/not/here"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("neither a file or directory nor a dataset name"), "{err}");
    let out = hyperdistill(&["data", "fetch", "imagenet-21k"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown dataset 'imagenet-21k'"));
}

#[test]
fn distill_with_hyperbolic_pruning_keeps_the_fraction() {
    let out = std::env::temp_dir().join(format!("hd-cli-prune-{}", std::process::id()));
    let o = hyperdistill(&["distill", "--keep-real", "0.2", "--iterations", "2", "--width", "4", "--ipc", "1", "--batch-real", "8",
        "--eval-nets", "0", "--out", out.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("kept 1000 of 5000 real training images"), "{err}");
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert!(metrics.contains(r#""event":"prune""#) && metrics.contains(r#""train_after":1000"#), "{metrics}");
    let o = hyperdistill(&["distill", "--keep-real", "1.5", "--iterations", "1", "--out", out.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("keep_real must be in (0, 1]"));

    // the other reading: prune the synthetic set (IPC 1 here: one image per class always stays), then evaluate
    let set = out.join("synset.safetensors");
    let o = hyperdistill(&["eval", "--synset", set.to_str().unwrap(), "--keep-syn", "0.5", "--epochs", "1", "--nets", "1", "--width", "4"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("pruned the synthetic set: kept 10 of 10 images (k 1, clamp Some(10.0), Expmap)"), "{err}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("test accuracy"));
    // cross-architecture evaluation: each network of the list in turn
    let o = hyperdistill(&["eval", "--synset", set.to_str().unwrap(), "--eval-arch", "mlp,LeNet", "--epochs", "1", "--nets", "1"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("mlp test accuracy") && stdout.contains("lenet test accuracy"), "{stdout}");
    let o = hyperdistill(&["eval", "--synset", set.to_str().unwrap(), "--eval-arch", "resnet50"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown architecture 'resnet50': use one of convnet, mlp, lenet, alexnet, vgg11, resnet18"));
    let o = hyperdistill(&["eval", "--synset", set.to_str().unwrap(), "--keep-syn", "0"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--keep-syn must be in (0, 1], got 0"));
    // a JSON part holds one network: refused before any network is trained, not after
    let json = set.with_file_name("two.json");
    let o = hyperdistill(&["eval", "--synset", set.to_str().unwrap(), "--eval-arch", "mlp,lenet", "--epochs", "1", "--nets", "1", "--json", json.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("--json takes one network of the pool (--eval-arch), not 2"), "{err}");
    assert!(!err.contains("net 1/1") && !json.exists(), "it trained before refusing: {err}");
}

#[test]
fn distill_idm_hdd_from_the_command_line_and_evaluate_its_mosaics() {
    let out = std::env::temp_dir().join(format!("hd-cli-idm-{}", std::process::id()));
    let o = hyperdistill(&["distill", "--method", "idm+hdd", "--iterations", "2", "--width", "4", "--ipc", "1", "--batch-real", "8",
        "--net-num", "2", "--net-batch", "16", "--model-train-steps", "1", "--eval-nets", "0", "--out", out.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    // --method set the published IDM+HDD values for IPC 1; explicit flags overrode theirs
    let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
    for line in ["method = \"idm+hdd\"", "k = 2.4", "lambda = 100.0", "lr_img = 0.5", "batch_real = 8", "net_generate_interval = 5", "net_num = 2", "ce_weight = 0.5"] {
        assert!(config.contains(line), "config.toml lacks {line}:\n{config}");
    }
    // the stored set holds 10 mosaics; evaluation trains on their 40 quadrants
    let set = out.join("synset.safetensors");
    let o = hyperdistill(&["eval", "--synset", set.to_str().unwrap(), "--epochs", "1", "--nets", "1", "--width", "4"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("evaluating on the 40 expanded images of the 10 stored ones"), "{err}");
    // DANCE's protocol as the other choice
    let o = hyperdistill(&["eval", "--synset", set.to_str().unwrap(), "--protocol", "dance", "--epochs", "2", "--nets", "1", "--width", "4"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("dance protocol, 2 passes, best tested accuracy per net"), "{}", String::from_utf8_lossy(&o.stdout));
    let o = hyperdistill(&["eval", "--synset", set.to_str().unwrap(), "--protocol", "idc"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--protocol idc: use dm or dance"));
    // an IDM run resumes from its checkpoint (the queue travels with it)
    let o = hyperdistill(&["distill", "--resume", out.to_str().unwrap(), "--iterations", "3"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("at iteration 2"), "{err}");
}

#[test]
fn distill_dance_trains_its_experts_once_and_reuses_them() {
    let base = std::env::temp_dir().join(format!("hd-cli-dance-{}", std::process::id()));
    let (a, b) = (base.join("a"), base.join("b"));
    let common = ["distill", "--method", "dance+hdd", "--iterations", "2", "--width", "4", "--ipc", "1", "--batch-real", "8",
        "--experts", "1", "--num-premodel", "1", "--expert-epochs", "1", "--eval-nets", "0"];
    let o = hyperdistill(&[&common[..], &["--out", a.to_str().unwrap()]].concat());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("0 reused, 1 trained"), "{err}");
    let config = std::fs::read_to_string(a.join("config.toml")).unwrap();
    for line in ["method = \"dance+hdd\"", "lr_img = 0.01", "protocol = \"dance\"", "epochs = 1500"] {
        assert!(config.contains(line), "config.toml lacks {line}:\n{config}");
    }
    let experts = a.join("experts");
    // flags override the method's published values, --eval-protocol and --eval-arch included
    let o = hyperdistill(&[&common[..], &["--out", b.to_str().unwrap(), "--expert-dir", experts.to_str().unwrap(), "--eval-protocol", "dm",
        "--eval-arch", "lenet"]].concat());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("1 reused, 0 trained"), "{err}");
    let config = std::fs::read_to_string(b.join("config.toml")).unwrap();
    for line in ["protocol = \"dm\"", "epochs = 1000", "arch = \"lenet\""] {
        assert!(config.contains(line), "config.toml lacks {line}:\n{config}");
    }
    // the run resumes (experts reloaded from the directory its config names)
    let o = hyperdistill(&["distill", "--resume", b.to_str().unwrap(), "--iterations", "3"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && err.contains("1 reused, 0 trained") && err.contains("at iteration 2"), "{err}");
    let _ = std::fs::remove_dir_all(&base);
}
