//! The whole ConvNet-3 on the GPU against the reference network: embed, logits, input gradient and
//! every parameter gradient, from both upstreams (embed, as distribution matching uses it; logits, as
//! training uses it). Outputs are poisoned with NaN first.

mod common;
use common::*;
use hyperdistill::nn::convnet::{ref_backward, ref_forward, BlockTail, ConvNetConfig, ConvNetParams, GpuConvNet, Upstream, NUM_TENSORS};

const TOL: f64 = 1e-4;

fn poison(g: &hyperdistill::gpu::Gpu, b: &wgpu::Buffer, len: usize) {
    g.write(b, &vec![f32::NAN; len]);
}

fn run(cfg: ConvNetConfig, n: usize, seed: u64) {
    // the device's block tail, and the separate kernels wherever it fuses them (both must match the reference)
    let g = gpu();
    let mut tails = vec![BlockTail::of(g)];
    if tails[0] != BlockTail::Separate {
        tails.push(BlockTail::Separate);
    }
    for tail in tails {
        run_tail(cfg, n, seed, tail);
    }
}

/// Tensors 1, 5, 9: the conv biases (4 tensors per block: w, b, γ, β).
fn is_conv_bias(t: usize) -> bool {
    t < 12 && t % 4 == 1
}

fn run_tail(cfg: ConvNetConfig, n: usize, seed: u64, tail: BlockTail) {
    run_tail_on(gpu(), cfg, n, seed, tail)
}

fn run_tail_on(g: &hyperdistill::gpu::Gpu, cfg: ConvNetConfig, n: usize, seed: u64, tail: BlockTail) {
    let mut rng = rng(seed);
    let params = ConvNetParams::init(&cfg, &mut rng);
    let p64 = params.to_f64();
    let x = rand_vec(&mut rng, cfg.input_len(n), 1.5);
    let de = rand_vec(&mut rng, n * cfg.embed_dim(), 1.0);
    let dl = rand_vec(&mut rng, n * cfg.classes, 1.0);
    let tag = format!("{}x{}x{} w{} n{} {tail:?}", cfg.channels, cfg.image, cfg.image, cfg.width, n);

    let net = GpuConvNet::new(g, &params).unwrap();
    let ws = net.workspace_with(g, n, tail).unwrap();
    assert_eq!(ws.tail, tail);
    println!("{tag} forward kernels {:?}", ws.kernels.iter().map(|k| k.forward).collect::<Vec<_>>());
    let grads = net.grads(g).unwrap();
    let lens = cfg.tensor_lens();
    g.write(&ws.x, &to_f32(&x));
    let act = ref_forward(&cfg, &p64, &x, n);

    // the forward-only path (fused norm + ReLU + pool) gives the same embedding and logits
    poison(g, &ws.embed, n * cfg.embed_dim());
    poison(g, &ws.logits, n * cfg.classes);
    let mut enc = g.encoder();
    net.forward_only(g, &mut enc, &ws, true);
    g.submit_wait(enc);
    check(&format!("{tag} forward_only embed"), &down(g, &ws.embed, n * cfg.embed_dim()), &act.embed, TOL);
    check(&format!("{tag} forward_only logits"), &down(g, &ws.logits, n * cfg.classes), &act.logits, TOL);

    for upstream in [Upstream::Embed, Upstream::Logits, Upstream::EmbedAndLogits] {
        poison(g, &ws.embed, n * cfg.embed_dim());
        poison(g, &ws.logits, n * cfg.classes);
        poison(g, &ws.dx, cfg.input_len(n));
        for (t, l) in grads.tensors.iter().zip(lens).enumerate().filter(|(i, _)| !is_conv_bias(*i)).map(|(_, p)| p) {
            poison(g, t, l);
        }
        if upstream != Upstream::Logits {
            g.write(&ws.d_embed, &to_f32(&de));
        }
        if upstream != Upstream::Embed {
            g.write(&ws.d_logits, &to_f32(&dl));
        }
        let mut enc = g.encoder();
        net.forward(g, &mut enc, &ws, true);
        net.backward(g, &mut enc, &ws, upstream, true, Some(&grads));
        g.submit_wait(enc);

        check(&format!("{tag} embed"), &down(g, &ws.embed, n * cfg.embed_dim()), &act.embed, TOL);
        check(&format!("{tag} logits"), &down(g, &ws.logits, n * cfg.classes), &act.logits, TOL);
        let (rdx, rgrads) = match upstream {
            Upstream::Embed => ref_backward(&cfg, &p64, &act, Some(&de), None),
            Upstream::Logits => ref_backward(&cfg, &p64, &act, None, Some(&dl)),
            Upstream::EmbedAndLogits => ref_backward(&cfg, &p64, &act, Some(&de), Some(&dl)),
        };
        check(&format!("{tag} {upstream:?} dx"), &down(g, &ws.dx, cfg.input_len(n)), &rdx, TOL);
        // The fc gradients are only produced from the logits upstream.
        let last = if upstream == Upstream::Embed { 12 } else { NUM_TENSORS };
        for t in 0..last {
            let got = down(g, &grads.tensors[t], lens[t]);
            if is_conv_bias(t) {
                // conv bias before instance norm: the true gradient is exactly 0 (tests/gradcheck.rs: finite
                // differences give 0), so backward leaves these tensors as `grads` allocated them, zero (not
                // poisoned above); the f64 reference gives rounding noise
                let max_ref = rgrads[t].iter().fold(0.0f64, |m, v| m.max(v.abs()));
                println!("{tag} {upstream:?} grad {t} (conv bias, exactly 0 in exact arithmetic): gpu {:?}, max|ref| {max_ref:.1e}", &got[..2]);
                assert!(got.iter().all(|&v| v == 0.0), "conv bias gradient {t} should be left zero, got {got:?}");
                assert!(max_ref < 1e-9, "reference conv bias gradient {t} should vanish, got {max_ref:e}");
            } else {
                check(&format!("{tag} {upstream:?} grad {t}"), &got, &rgrads[t], TOL);
            }
        }
    }
}

#[test]
fn convnet_28px_gray_matches_reference() {
    run(ConvNetConfig::square(1, 28, 8, 10).unwrap(), 3, 31);
}

#[test]
fn convnet_32px_rgb_matches_reference() {
    run(ConvNetConfig::square(3, 32, 10, 10).unwrap(), 2, 32);
}

#[test]
fn convnet_64px_matches_reference() {
    run(ConvNetConfig::square(3, 64, 4, 5).unwrap(), 1, 33);
}

#[test]
fn convnet_on_gemm_kernels_matches_reference() {
    // every convolution pass pinned to an implicit-GEMM tiling (as the autotuner picks them on GPUs; a resume pins
    // them the same way), one tiling per block, on a device of its own so that no other test sees the pins
    use hyperdistill::nn::{ops, tune};
    let g = hyperdistill::gpu::Gpu::new().unwrap();
    let (cfg, n) = (ConvNetConfig::square(1, 28, 16, 10).unwrap(), 3);
    let tiles = [ops::GEMM_TILES[0], ops::GEMM_TILES[4], ops::GEMM_TILES[6]];
    let mut pins = std::collections::BTreeMap::new();
    for (s, t) in cfg.conv_shapes(n).iter().zip(tiles) {
        for op in ["conv_forward", "conv_input_grad", "conv_weight_grad"] {
            pins.insert(tune::key(op, s), t.name().to_string());
        }
    }
    g.kernels.pin(&pins);
    let ws = GpuConvNet::new(&g, &ConvNetParams::init(&cfg, &mut rng(5))).unwrap().workspace(&g, n).unwrap();
    for (k, t) in ws.kernels.iter().zip(tiles) {
        assert_eq!((k.forward, k.input(&g), k.weight(&g)), (ops::ConvForward::Gemm(t), ops::ConvBackwardInput::Gemm(t), ops::ConvBackwardWeight::Gemm(t)));
    }
    for tail in [BlockTail::of(&g), BlockTail::Separate] {
        run_tail_on(&g, cfg, n, 21, tail);
    }
}

#[test]
fn embed_dims_follow_the_paper() {
    assert_eq!(ConvNetConfig::square(1, 28, 128, 10).unwrap().embed_dim(), 2048);
    assert_eq!(ConvNetConfig::square(3, 32, 128, 10).unwrap().embed_dim(), 2048);
    assert_eq!(ConvNetConfig::square(3, 64, 128, 200).unwrap().embed_dim(), 8192);
    assert!(ConvNetConfig::square(3, 30, 128, 10).is_err());
    assert!(ConvNetConfig::square(3, 32, 0, 10).is_err());
}

#[test]
fn init_is_pytorch_default_and_seeded() {
    let cfg = ConvNetConfig::square(3, 32, 128, 10).unwrap();
    let a = ConvNetParams::init(&cfg, &mut hyperdistill::rng::stream(5, "init"));
    let b = ConvNetParams::init(&cfg, &mut hyperdistill::rng::stream(5, "init"));
    let c = ConvNetParams::init(&cfg, &mut hyperdistill::rng::stream(6, "init"));
    assert_eq!(a, b, "same seed, same network");
    assert_ne!(a.tensors[0], c.tensors[0], "another seed, another network");
    // conv1 (index 4): 128·128·9 weights, fan_in 1152 → U(±1/√1152)
    let bound = 1.0 / (128.0f64 * 9.0).sqrt();
    let w = &a.tensors[4];
    let mean = w.iter().map(|&v| v as f64).sum::<f64>() / w.len() as f64;
    let var = w.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / w.len() as f64;
    println!("conv1 weights: bound {bound:.5}, mean {mean:.2e}, var {var:.3e} (expected {:.3e})", bound * bound / 3.0);
    assert!(w.iter().all(|&v| (v as f64).abs() <= bound));
    assert!(mean.abs() < 0.02 * bound);
    assert!((var / (bound * bound / 3.0) - 1.0).abs() < 0.02);
    let b0 = 1.0 / 27.0f64.sqrt(); // conv0 bias: fan_in 3·9
    assert!(a.tensors[1].iter().all(|&v| (v as f64).abs() <= b0));
    assert!(a.tensors[2].iter().all(|&v| v == 1.0) && a.tensors[3].iter().all(|&v| v == 0.0));
    let fc_bound = 1.0 / 2048.0f64.sqrt();
    assert!(a.tensors[12].iter().chain(&a.tensors[13]).all(|&v| (v as f64).abs() <= fc_bound));
    assert_eq!(a.num_params(), 3 * 128 * 9 + 128 + 256 + 2 * (128 * 128 * 9 + 128 + 256) + 2048 * 10 + 10);
}
