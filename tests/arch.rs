//! The cross-architecture pool: each new kernel of shaders/layers.wgsl against its reference on fresh random
//! inputs (outputs poisoned with NaN first), every network of the pool on the GPU against the reference graph
//! (logits, every parameter gradient, the input gradient) on thinner copies, the graph interpreter against the
//! tuned ConvNet-3, the DC code's sizes, and evaluation with `arch` training networks that learn.

mod common;
use common::*;
use hyperdistill::data;
use hyperdistill::eval::{self, EvalConfig};
use hyperdistill::nn::arch::{ref_backward, ref_forward, Arch, Graph, GpuGraphNet};
use hyperdistill::nn::convnet::{ConvNetConfig, ConvNetParams, GpuConvNet};
use hyperdistill::nn::ops;
use hyperdistill::reference as r;
use hyperdistill::shapes::{KConvShape, WindowShape};

const TOL: f64 = 1e-4;

#[test]
fn kconv_kernels_match_reference() {
    let g = gpu();
    let mut rng = rng(31);
    let shapes = [
        // LeNet's and AlexNet's 5×5 (pad 2 and 0, gray pad 4), ResNet's stride-2 3×3 and 1×1 shortcut, odd sides
        KConvShape { n: 2, cin: 3, cout: 5, h: 9, w: 9, k: 5, stride: 1, pad: 2 },
        KConvShape { n: 1, cin: 2, cout: 3, h: 10, w: 10, k: 5, stride: 1, pad: 0 },
        KConvShape { n: 2, cin: 1, cout: 4, h: 7, w: 7, k: 5, stride: 1, pad: 4 },
        KConvShape { n: 3, cin: 4, cout: 6, h: 7, w: 7, k: 3, stride: 2, pad: 1 },
        KConvShape { n: 2, cin: 4, cout: 3, h: 8, w: 8, k: 1, stride: 2, pad: 0 },
        KConvShape { n: 2, cin: 3, cout: 4, h: 6, w: 5, k: 3, stride: 1, pad: 1 },
        // a linear layer (37 → 10) as a 1×1 convolution of 1×1 maps: the GEMM kernels run it too
        KConvShape { n: 5, cin: 37, cout: 10, h: 1, w: 1, k: 1, stride: 1, pad: 0 },
        // enough positions (2·12·12·... ) and channels for the GEMM weight gradient to split its sum (split-K)
        KConvShape { n: 16, cin: 3, cout: 5, h: 12, w: 12, k: 5, stride: 1, pad: 2 },
    ];
    let lin = KConvShape { n: 5, cin: 37, cout: 10, h: 1, w: 1, k: 1, stride: 1, pad: 0 };
    let split = |s: &KConvShape| ops::GEMM_TILES.iter().any(|t| t.kweight_splits(s) > 1);
    assert!(split(&shapes[7]), "a shape whose GEMM weight gradient is split");
    for pass in [0, 2] {
        // both ways of staging the GEMM's A operand: vec4 loads where it is contiguous in aligned fours, scalar elsewhere
        let vec = shapes.iter().filter(|s| ops::gemm_vec_a(s, pass)).count();
        assert!(vec > 0 && vec < shapes.len(), "pass {pass}: {vec} of {} shapes stage A as vec4", shapes.len());
    }
    for s in shapes {
        let tag = format!("k{} s{} p{} {}x{}x{}x{}→{}", s.k, s.stride, s.pad, s.n, s.cin, s.h, s.w, s.cout);
        let x = rand_vec(&mut rng, s.x_len(), 1.0);
        let w = rand_vec(&mut rng, s.w_len(), 0.5);
        let b = rand_vec(&mut rng, s.cout, 0.5);
        let dy = rand_vec(&mut rng, s.y_len(), 1.0);
        let (xb, wb, bb, dyb) = (up(g, &x), up(g, &w), up(g, &b), up(g, &dy));
        let (y, y0, dx, dw, db) = (poisoned(g, s.y_len()), poisoned(g, s.y_len()), poisoned(g, s.x_len()), poisoned(g, s.w_len()), poisoned(g, s.cout));
        let scratch = g.zeros("scratch", ops::kconv_weight_scratch_len_any(&s)).unwrap();
        let mut enc = g.encoder();
        ops::kconv_forward(g, &mut enc, &s, &xb, &wb, Some(&bb), &y);
        ops::kconv_forward(g, &mut enc, &s, &xb, &wb, None, &y0);
        ops::kconv_backward_input(g, &mut enc, &s, &dyb, &wb, &dx);
        ops::kconv_backward_weight(g, &mut enc, &s, &xb, &dyb, &dw, &scratch);
        ops::kconv_backward_bias(g, &mut enc, &s, &dyb, &db);
        g.submit_wait(enc);
        check(&format!("{tag} forward"), &down(g, &y, s.y_len()), &r::kconv_forward(&s, &x, &w, Some(&b)), TOL);
        check(&format!("{tag} forward, no bias"), &down(g, &y0, s.y_len()), &r::kconv_forward(&s, &x, &w, None), TOL);
        check(&format!("{tag} backward_input"), &down(g, &dx, s.x_len()), &r::kconv_backward_input(&s, &dy, &w), TOL);
        check(&format!("{tag} backward_weight"), &down(g, &dw, s.w_len()), &r::kconv_backward_weight(&s, &x, &dy), TOL);
        check(&format!("{tag} backward_bias"), &down(g, &db, s.cout), &r::kconv_backward_bias(&s, &dy), TOL);
        if s == lin {
            let l = hyperdistill::shapes::LinearShape { n: s.n, inp: s.cin, out: s.cout };
            // (the references add in another order: equal to rounding)
            check("1×1 convolution of 1×1 maps = linear layer (references)", &r::kconv_forward(&s, &x, &w, Some(&b)), &r::linear_forward(&l, &x, &w, &b), 1e-6);
        }
        // every implicit-GEMM tiling (conv_gemm.wgsl with K, STRIDE and HAS_BIAS) on the same inputs
        for k in ops::KConvKernel::available().into_iter().filter(|&k| k != ops::KConvKernel::Direct) {
            let (y, y0, dx, dw) = (poisoned(g, s.y_len()), poisoned(g, s.y_len()), poisoned(g, s.x_len()), poisoned(g, s.w_len()));
            let mut enc = g.encoder();
            ops::kconv_forward_with(g, &mut enc, k, &s, &xb, &wb, Some(&bb), &y);
            ops::kconv_forward_with(g, &mut enc, k, &s, &xb, &wb, None, &y0);
            ops::kconv_backward_input_with(g, &mut enc, k, &s, &dyb, &wb, &dx);
            ops::kconv_backward_weight_with(g, &mut enc, k, &s, &xb, &dyb, &dw, &scratch);
            g.submit_wait(enc);
            let tag = format!("{tag} {} (weight split {})", k.name(), k.weight_partials(&s));
            check(&format!("{tag} forward"), &down(g, &y, s.y_len()), &r::kconv_forward(&s, &x, &w, Some(&b)), TOL);
            check(&format!("{tag} forward, no bias"), &down(g, &y0, s.y_len()), &r::kconv_forward(&s, &x, &w, None), TOL);
            check(&format!("{tag} backward_input"), &down(g, &dx, s.x_len()), &r::kconv_backward_input(&s, &dy, &w), TOL);
            check(&format!("{tag} backward_weight"), &down(g, &dw, s.w_len()), &r::kconv_backward_weight(&s, &x, &dy), TOL);
        }
    }
}

#[test]
fn pool_and_add_kernels_match_reference() {
    let g = gpu();
    let mut rng = rng(32);
    for s in [
        WindowShape { planes: 6, h: 8, w: 8, k: 2 },
        WindowShape { planes: 3, h: 7, w: 9, k: 2 },
        WindowShape { planes: 4, h: 4, w: 4, k: 4 },
        WindowShape { planes: 2, h: 10, w: 6, k: 3 },
    ] {
        let tag = format!("{}x{}x{} k{}", s.planes, s.h, s.w, s.k);
        let mut x = rand_vec(&mut rng, s.x_len(), 1.0);
        // ReLU outputs tie at 0: a quarter of the inputs are exactly 0, so whole windows tie and the first wins
        for v in x.iter_mut().step_by(4) {
            *v = 0.0;
        }
        for v in x.iter_mut().skip(1).step_by(4) {
            *v = 0.0;
        }
        let dy = rand_vec(&mut rng, s.y_len(), 1.0);
        let (xb, dyb) = (up(g, &x), up(g, &dy));
        let (mx, ax, mdx, adx) = (poisoned(g, s.y_len()), poisoned(g, s.y_len()), poisoned(g, s.x_len()), poisoned(g, s.x_len()));
        let mut enc = g.encoder();
        ops::maxpool_forward(g, &mut enc, &s, &xb, &mx);
        ops::avgpool_forward(g, &mut enc, &s, &xb, &ax);
        ops::maxpool_backward(g, &mut enc, &s, &xb, &dyb, &mdx);
        ops::avgpool_backward(g, &mut enc, &s, &dyb, &adx);
        g.submit_wait(enc);
        check(&format!("{tag} maxpool forward"), &down(g, &mx, s.y_len()), &r::maxpool_forward(&s, &x), 1e-6);
        check(&format!("{tag} avgpool forward"), &down(g, &ax, s.y_len()), &r::avgpool_forward(&s, &x), TOL);
        check(&format!("{tag} maxpool backward"), &down(g, &mdx, s.x_len()), &r::maxpool_backward(&s, &x, &dy), 1e-6);
        check(&format!("{tag} avgpool backward"), &down(g, &adx, s.x_len()), &r::avgpool_backward(&s, &dy), TOL);
    }
    // the tie rule itself: an all-zero window sends its gradient to its top-left element only
    let s = WindowShape { planes: 1, h: 2, w: 2, k: 2 };
    assert_eq!(r::maxpool_backward(&s, &[0.0; 4], &[1.0]), vec![1.0, 0.0, 0.0, 0.0]);
    let a = rand_vec(&mut rng, 1000, 1.0);
    let b = rand_vec(&mut rng, 1000, 1.0);
    let (ab, bb, y, acc) = (up(g, &a), up(g, &b), poisoned(g, 1000), up(g, &b));
    let mut enc = g.encoder();
    ops::add(g, &mut enc, 1000, &ab, &bb, &y);
    ops::accumulate(g, &mut enc, 1000, &ab, &acc);
    g.submit_wait(enc);
    check("add", &down(g, &y, 1000), &r::add(&a, &b), 1e-6);
    check("accumulate", &down(g, &acc, 1000), &r::add(&a, &b), 1e-6);
}

/// One network of the pool, GPU against reference: logits, ∂L/∂x and every parameter gradient.
fn graph_matches_reference(g: &hyperdistill::gpu::Gpu, graph: &Graph, n: usize, seed: u64) {
    let mut rng = rng(seed);
    let params = graph.init(&mut rng);
    let p64: Vec<Vec<f64>> = params.iter().map(|t| to_f64(t)).collect();
    let x = rand_vec(&mut rng, n * graph.input.size(), 1.5);
    let dl = rand_vec(&mut rng, n * graph.classes, 1.0);
    let tag = format!("{} {}x{}x{} n{}", graph.arch.name(), graph.input.c, graph.input.h, graph.input.w, n);
    let net = GpuGraphNet::new(g, graph, &params).unwrap();
    let ws = net.workspace(g, n, true).unwrap();
    let grads = net.grads(g).unwrap();
    let lens = graph.tensor_lens();
    let act = ref_forward(graph, &p64, &x, n);
    let (rdx, rgrads) = ref_backward(graph, &p64, &act, &dl);
    // A conv bias whose output only instance norms read has gradient 0 exactly; backward leaves that tensor as
    // `grads` allocated it (zero), so it is not poisoned. Every other gradient must be written.
    let vanishing = |t: usize| rgrads[t].iter().map(|v| v * v).sum::<f64>().sqrt() < 1e-9;
    for (t, &l) in grads.tensors.iter().zip(&lens).enumerate().filter(|(t, _)| !vanishing(*t)).map(|(_, p)| p) {
        g.write(t, &vec![f32::NAN; l]);
    }
    g.write(&ws.grads[0], &vec![f32::NAN; x.len()]);
    g.write(ws.x(), &to_f32(&x));
    g.write(ws.d_logits(), &to_f32(&dl));
    let mut enc = g.encoder();
    net.forward(g, &mut enc, &ws);
    net.backward(g, &mut enc, &ws, &grads, true);
    g.submit_wait(enc);
    check(&format!("{tag} logits"), &down(g, ws.logits(), n * graph.classes), act.logits(), TOL);
    check(&format!("{tag} dx"), &down(g, &ws.grads[0], x.len()), &rdx, TOL);
    let mut worst = 0.0f64;
    for t in 0..lens.len() {
        let got = down(g, &grads.tensors[t], lens[t]);
        let want = &rgrads[t];
        if vanishing(t) {
            assert!(got.iter().all(|&v| v == 0.0), "{tag} grad {t} should be left zero, got {got:?}");
            continue;
        }
        let e = rel_err(&got, want);
        assert!(e < TOL, "{tag} grad {t} (len {}): relative error {e:e}", lens[t]);
        worst = worst.max(e);
    }
    println!("{tag}: {} parameter tensors, worst relative error {worst:.2e}", lens.len());
}

#[test]
fn every_network_of_the_pool_matches_reference() {
    // thinner copies (channels ÷ 16, at least 1) of the DC code's topologies, at both input formats
    for (arch, div) in [(Arch::Mlp, 8), (Arch::LeNet, 1), (Arch::AlexNet, 16), (Arch::Vgg11, 32), (Arch::ResNet18, 32)] {
        for (c, side, seed) in [(1, 28, 1), (3, 32, 2)] {
            let graph = Graph::scaled(arch, c, side, 10, 8, div).unwrap();
            graph_matches_reference(gpu(), &graph, 2, seed);
        }
    }
}

#[test]
fn pool_networks_on_gemm_kernels_match_reference() {
    // every convolution pass of LeNet, AlexNet, VGG11 and ResNet18 pinned to an implicit-GEMM tiling (as the autotuner
    // picks them on GPUs, and a resume pins them), the tilings taken in turn, on a device of its own so that no other
    // test sees the pins
    use hyperdistill::nn::tune::{self, TuneShape};
    let g = hyperdistill::gpu::Gpu::new().unwrap();
    let n = 2;
    let mut pins = std::collections::BTreeMap::new();
    let mut graphs = vec![];
    for (arch, div, c, side) in [(Arch::LeNet, 1, 1, 28), (Arch::AlexNet, 16, 3, 32), (Arch::Vgg11, 32, 1, 28), (Arch::ResNet18, 32, 3, 32)] {
        let graph = Graph::scaled(arch, c, side, 10, 8, div).unwrap();
        for i in (0..graph.nodes.len()).filter(|&i| matches!(graph.nodes[i].layer, hyperdistill::nn::arch::Layer::Conv { .. })) {
            let t = ops::GEMM_TILES[pins.len() / 3 % ops::GEMM_TILES.len()];
            for op in ["kconv_forward", "kconv_input_grad", "kconv_weight_grad"] {
                pins.insert(graph.conv_shape(i, n).key(op), t.name().to_string());
            }
        }
        graphs.push(graph);
    }
    g.kernels.pin(&pins);
    for (i, graph) in graphs.iter().enumerate() {
        graph_matches_reference(&g, graph, n, 40 + i as u64);
    }
    // every pass of every convolution ran its pinned tiling
    let used = g.kernels.used();
    for (key, name) in &pins {
        assert_eq!(used.get(key), Some(name), "{key}");
        assert!(tune::parse_key(key).is_none() && hyperdistill::shapes::KConvShape::parse_key(key).is_some_and(|(_, s)| s.key(&key[..key.find(' ').unwrap()]) == *key));
    }
}

#[test]
fn graph_convnet_is_the_tuned_convnet() {
    // ConvNet-3 written as a graph gives the tuned network's logits with the same parameters (same order)
    let g = gpu();
    for (c, side) in [(1, 28), (3, 32)] {
        let cfg = ConvNetConfig::square(c, side, 8, 10).unwrap();
        let params = ConvNetParams::init(&cfg, &mut rng(5));
        let graph = Graph::new(Arch::ConvNet, c, side, 10, 8).unwrap();
        assert_eq!(graph.tensor_lens(), cfg.tensor_lens().to_vec());
        let x = to_f32(&rand_vec(&mut rng(6), cfg.input_len(3), 1.0));
        let tuned = GpuConvNet::new(g, &params).unwrap();
        let ws = tuned.workspace(g, 3).unwrap();
        let net = GpuGraphNet::new(g, &graph, &params.tensors).unwrap();
        let gws = net.workspace(g, 3, false).unwrap();
        g.write(&ws.x, &x);
        g.write(gws.x(), &x);
        let mut enc = g.encoder();
        tuned.forward_only(g, &mut enc, &ws, true);
        net.forward(g, &mut enc, &gws);
        g.submit_wait(enc);
        check(&format!("graph ConvNet-3 {c}x{side} logits"), &down(g, gws.logits(), 30), &down(g, &ws.logits, 30), 1e-5);
    }
}

#[test]
fn conv_biases_that_only_norms_read_are_recognised() {
    // which conv outputs only instance norms read (their bias gradient is 0 and backward skips it)
    let only_norms = |arch| {
        let g = Graph::new(arch, 3, 32, 10, 128).unwrap();
        (0..g.nodes.len()).filter(|&i| matches!(g.nodes[i].layer, hyperdistill::nn::arch::Layer::Conv { .. })).map(|i| g.feeds_only_norms(i)).collect::<Vec<_>>()
    };
    assert_eq!(only_norms(Arch::ConvNet), vec![true; 3]);
    assert_eq!(only_norms(Arch::Vgg11), vec![true; 8]);
    assert_eq!(only_norms(Arch::AlexNet), vec![false; 5]); // no normalisation: ReLU reads them
    assert_eq!(only_norms(Arch::LeNet), vec![false; 2]);
    assert!(only_norms(Arch::ResNet18).iter().all(|&b| b)); // every conv feeds a norm (bias-free anyway)
}

#[test]
fn pool_sizes_are_the_dc_codes() {
    // parameter counts of the DC code's networks (10 classes), from the layer sizes in its networks.py
    let count = |arch, c, side| Graph::new(arch, c, side, 10, 128).unwrap().num_params();
    // MLP: 784·128+128 + 128·128+128 + 128·10+10
    assert_eq!(count(Arch::Mlp, 1, 28), 784 * 128 + 128 + 128 * 128 + 128 + 1280 + 10);
    // LeNet: conv 1→6 5×5, conv 6→16 5×5, 400→120→84→10
    assert_eq!(count(Arch::LeNet, 1, 28), 6 * 25 + 6 + 16 * 6 * 25 + 16 + 400 * 120 + 120 + 120 * 84 + 84 + 840 + 10);
    assert_eq!(count(Arch::LeNet, 3, 32), 6 * 75 + 6 + 16 * 6 * 25 + 16 + 400 * 120 + 120 + 120 * 84 + 84 + 840 + 10);
    // AlexNet: 5 convs with bias, fc 192·4·4 → 10
    let alex = 128 * 3 * 25 + 128 + 192 * 128 * 25 + 192 + 256 * 192 * 9 + 256 + 192 * 256 * 9 + 192 + 192 * 192 * 9 + 192 + 3072 * 10 + 10;
    assert_eq!(count(Arch::AlexNet, 3, 32), alex);
    assert_eq!(count(Arch::AlexNet, 1, 28), alex - 128 * 2 * 25);
    // VGG11: 8 convs (+ bias, + norm γ β), fc 512 → 10
    let vgg: usize = [(3, 64), (64, 128), (128, 256), (256, 256), (256, 512), (512, 512), (512, 512), (512, 512)]
        .iter()
        .map(|&(i, o)| o * i * 9 + 3 * o)
        .sum::<usize>()
        + 5130;
    assert_eq!(count(Arch::Vgg11, 3, 32), vgg);
    // ResNet18 (instance norm, bias-free convs): the well-known 11,173,962 for CIFAR-10 (torchvision-style
    // CIFAR ResNet18 with BatchNorm has the same count: GroupNorm(C, C) has the same γ, β)
    assert_eq!(count(Arch::ResNet18, 3, 32), 11_173_962);
    // every network ends in a 1×1 (or flat) map for both input formats and gives 10 logits
    for arch in Arch::ALL {
        // (64×64: Tiny ImageNet, where the last linear layer takes whatever the last map flattens to)
        for (c, side) in [(1, 28), (3, 32), (3, 64)] {
            let gr = Graph::new(arch, c, side, 10, 128).unwrap();
            assert_eq!(gr.dims(gr.nodes.len()).size(), 10, "{arch:?}");
        }
    }
    assert!(Graph::new(Arch::Vgg11, 3, 8, 10, 128).is_err(), "an 8×8 input cannot pass VGG11's five poolings");
    assert_eq!(Arch::parse("ResNet18"), Ok(Arch::ResNet18));
    assert!(Arch::parse("resnet50").unwrap_err().contains("lenet"));
}

#[test]
fn evaluation_trains_other_architectures() {
    // 10 real images per class, as in distill_e2e's ConvNet test: the small networks of the pool learn from them
    let ds = data::open("embedded", std::path::Path::new("/none")).unwrap();
    let idx: Vec<usize> = ds.class_indices(&ds.train).iter().flat_map(|c| c[..10].to_vec()).collect();
    let images = ds.normalized(&ds.train, &idx);
    let labels: Vec<u32> = idx.iter().map(|&i| ds.train.labels[i]).collect();
    for arch in [Arch::Mlp, Arch::LeNet] {
        // batch 20: five steps per epoch (at batch 256 the un-normalised LeNet moves little in 41 steps of lr 0.01)
        let cfg = EvalConfig { arch, epochs: 40, batch: 20, nets: 1, quick: true, ..EvalConfig::default() };
        let r = eval::evaluate(gpu(), &ds, &images, &labels, &cfg, 1, &mut |_, _| {}).unwrap();
        println!("{}: 10 real images per class, 41 epochs of batch 20: test accuracy {:.3}", arch.name(), r.mean);
        assert!(r.mean > 0.4, "{arch:?}: accuracy {} is barely above chance (0.1)", r.mean);
    }
}
