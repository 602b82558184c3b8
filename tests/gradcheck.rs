//! Finite-difference checks (f64, central differences) of every reference backward, and of the whole
//! ConvNet-3 input and parameter gradients on tiny networks. Each test builds a scalar loss
//! L = Σ r ⊙ f(inputs) with a random r, so that ∂L/∂f = r is the upstream gradient given to the backward.

mod common;
use common::*;
use hyperdistill::nn::convnet::{ref_backward, ref_forward, ConvNetConfig, ConvNetParams};
use hyperdistill::reference as r;
use hyperdistill::nn::arch::{self, Arch, Graph};
use hyperdistill::shapes::{ConvShape, KConvShape, LinearShape, NormShape, PoolShape, WindowShape};
use rand::RngExt;

const H: f64 = 1e-5;
const TOL: f64 = 1e-6;

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Compare `analytic` with central differences of `f` at `x`, over every coordinate or over `sample`
/// random ones; prints the relative error.
fn gradcheck(name: &str, x: &[f64], analytic: &[f64], sample: Option<usize>, f: impl Fn(&[f64]) -> f64) {
    gradcheck_step(name, x, analytic, sample, H, f)
}

/// `gradcheck` with step `h`: whole networks with ReLU and max-pool kinks use a smaller step, so that a central
/// difference straddles a kink far less often (and the O(h²) truncation error shrinks with it).
fn gradcheck_step(name: &str, x: &[f64], analytic: &[f64], sample: Option<usize>, h: f64, f: impl Fn(&[f64]) -> f64) {
    assert_eq!(x.len(), analytic.len());
    let idx: Vec<usize> = match sample {
        Some(k) if k < x.len() => {
            let mut g = rng(x.len() as u64);
            (0..k).map(|_| g.random_range(0..x.len())).collect()
        }
        _ => (0..x.len()).collect(),
    };
    let mut fd = Vec::with_capacity(idx.len());
    let mut an = Vec::with_capacity(idx.len());
    let mut xp = x.to_vec();
    for &i in &idx {
        xp[i] = x[i] + h;
        let up = f(&xp);
        xp[i] = x[i] - h;
        let dn = f(&xp);
        xp[i] = x[i];
        fd.push((up - dn) / (2.0 * h));
        an.push(analytic[i]);
    }
    let norm = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>().sqrt();
    // rounding in the differences grows as 1/h: a gradient below this is 0
    if norm(&fd) < 1e-8 * (H / h).max(1.0) {
        // A truly zero gradient (e.g. a conv bias right before instance norm, which removes any
        // per-channel shift): the analytic gradient must vanish too.
        println!("{name:<44} coords {:<5} zero gradient: |fd| {:.1e} |analytic| {:.1e}", idx.len(), norm(&fd), norm(&an));
        assert!(norm(&an) < 1e-8, "{name}: finite differences give 0 but analytic has norm {:e}", norm(&an));
        return;
    }
    let err = rel_err(&an, &fd);
    println!("{name:<44} coords {:<5} rel {err:.2e}", idx.len());
    assert!(err < TOL, "{name}: analytic vs finite-difference relative error {err:e}");
}

#[test]
fn conv_backward_is_the_gradient() {
    let mut g = rng(11);
    for s in [ConvShape { n: 2, cin: 2, cout: 3, h: 5, w: 4, pad: 1 }, ConvShape { n: 1, cin: 1, cout: 2, h: 4, w: 5, pad: 3 }] {
        let x = rand_vec(&mut g, s.x_len(), 1.0);
        let w = rand_vec(&mut g, s.w_len(), 1.0);
        let b = rand_vec(&mut g, s.cout, 1.0);
        let rr = rand_vec(&mut g, s.y_len(), 1.0);
        gradcheck(&format!("conv dx {s:?}"), &x, &r::conv_backward_input(&s, &rr, &w), None, |v| dot(&rr, &r::conv_forward(&s, v, &w, &b)));
        gradcheck(&format!("conv dw {s:?}"), &w, &r::conv_backward_weight(&s, &x, &rr), None, |v| dot(&rr, &r::conv_forward(&s, &x, v, &b)));
        gradcheck(&format!("conv db {s:?}"), &b, &r::conv_backward_bias(&s, &rr), None, |v| dot(&rr, &r::conv_forward(&s, &x, &w, v)));
    }
}

#[test]
fn norm_backward_is_the_gradient() {
    let mut g = rng(12);
    let s = NormShape { n: 2, c: 3, hw: 6 };
    let x = rand_vec(&mut g, s.len(), 2.0);
    let gamma = rand_vec(&mut g, s.c, 2.0);
    let beta = rand_vec(&mut g, s.c, 1.0);
    let rr = rand_vec(&mut g, s.len(), 1.0);
    let (_, stats) = r::norm_forward(&s, &x, &gamma, &beta);
    let (dx, dg, db) = r::norm_backward(&s, &x, &gamma, &stats, &rr);
    gradcheck("norm dx", &x, &dx, None, |v| dot(&rr, &r::norm_forward(&s, v, &gamma, &beta).0));
    gradcheck("norm dgamma", &gamma, &dg, None, |v| dot(&rr, &r::norm_forward(&s, &x, v, &beta).0));
    gradcheck("norm dbeta", &beta, &db, None, |v| dot(&rr, &r::norm_forward(&s, &x, &gamma, v).0));
}

#[test]
fn relu_pool_linear_xent_backwards_are_gradients() {
    let mut g = rng(13);
    // ReLU is piecewise linear: keep inputs at least 0.05 away from the kink at 0.
    let x: Vec<f64> = rand_vec(&mut g, 40, 1.0).iter().map(|v| v + 0.05f64.copysign(*v)).collect();
    let rr = rand_vec(&mut g, 40, 1.0);
    gradcheck("relu dx", &x, &r::relu_backward(&x, &rr), None, |v| dot(&rr, &r::relu_forward(v)));

    let ps = PoolShape { planes: 3, h: 4, w: 6 };
    let x = rand_vec(&mut g, ps.x_len(), 1.0);
    let rr = rand_vec(&mut g, ps.y_len(), 1.0);
    gradcheck("pool dx", &x, &r::pool_backward(&ps, &rr), None, |v| dot(&rr, &r::pool_forward(&ps, v)));

    let ls = LinearShape { n: 3, inp: 7, out: 4 };
    let x = rand_vec(&mut g, 21, 1.0);
    let w = rand_vec(&mut g, 28, 1.0);
    let b = rand_vec(&mut g, 4, 1.0);
    let rr = rand_vec(&mut g, 12, 1.0);
    let (dw, db) = r::linear_backward_params(&ls, &x, &rr);
    gradcheck("linear dx", &x, &r::linear_backward_input(&ls, &rr, &w), None, |v| dot(&rr, &r::linear_forward(&ls, v, &w, &b)));
    gradcheck("linear dw", &w, &dw, None, |v| dot(&rr, &r::linear_forward(&ls, &x, v, &b)));
    gradcheck("linear db", &b, &db, None, |v| dot(&rr, &r::linear_forward(&ls, &x, &w, v)));

    let (n, k) = (4, 5);
    let z = rand_vec(&mut g, n * k, 3.0);
    let labels = [0u32, 4, 2, 2];
    let scale = 1.0 / n as f64;
    let (_, dz) = r::softmax_xent(n, k, &z, &labels, scale);
    gradcheck("softmax_xent dlogits (batch mean)", &z, &dz, None, |v| {
        scale * r::softmax_xent(n, k, v, &labels, scale).0.iter().sum::<f64>()
    });
}

/// Whole ConvNet-3: L = Σ r_e ⊙ embed + Σ r_l ⊙ logits; checks ∂L/∂x and every parameter tensor.
fn check_convnet(cfg: ConvNetConfig, n: usize, seed: u64) {
    let mut g = rng(seed);
    let p = ConvNetParams::init(&cfg, &mut g).to_f64();
    let x = rand_vec(&mut g, cfg.input_len(n), 1.0);
    let re = rand_vec(&mut g, n * cfg.embed_dim(), 1.0);
    let rl = rand_vec(&mut g, n * cfg.classes, 1.0);
    let loss = |p: &[Vec<f64>], x: &[f64]| {
        let a = ref_forward(&cfg, p, x, n);
        dot(&re, &a.embed) + dot(&rl, &a.logits)
    };
    let act = ref_forward(&cfg, &p, &x, n);
    let (dx, grads) = ref_backward(&cfg, &p, &act, Some(&re), Some(&rl));
    gradcheck(&format!("convnet {}px dx", cfg.image), &x, &dx, Some(60), |v| loss(&p, v));
    for (t, gt) in grads.iter().enumerate() {
        gradcheck(&format!("convnet {}px param tensor {t}", cfg.image), &p[t], gt, Some(30), |v| {
            let mut q = p.clone();
            q[t] = v.to_vec();
            loss(&q, &x)
        });
    }
}

#[test]
fn convnet_gradients_28px_padding_3() {
    check_convnet(ConvNetConfig::square(1, 28, 3, 4).unwrap(), 2, 21);
}

#[test]
fn convnet_gradients_16px_rgb() {
    check_convnet(ConvNetConfig::square(3, 16, 4, 3).unwrap(), 2, 22);
}

#[test]
fn dm_matching_gradient_is_the_gradient() {
    let mut g = rng(14);
    let (c, b, m, d) = (2, 5, 3, 4);
    let real = rand_vec(&mut g, c * b * d, 1.0);
    let syn = rand_vec(&mut g, c * m * d, 1.0);
    let (_, grad) = r::dm_matching(c, b, m, d, &real, &syn);
    gradcheck("dm matching d/d syn", &syn, &grad, None, |s| r::dm_matching(c, b, m, d, &real, s).0.iter().sum());
}

#[test]
fn kconv_and_window_pool_backwards_are_gradients() {
    let mut g = rng(14);
    for s in [
        KConvShape { n: 2, cin: 2, cout: 3, h: 7, w: 6, k: 5, stride: 1, pad: 2 },
        KConvShape { n: 1, cin: 3, cout: 2, h: 7, w: 7, k: 3, stride: 2, pad: 1 },
        KConvShape { n: 2, cin: 2, cout: 3, h: 6, w: 6, k: 1, stride: 2, pad: 0 },
    ] {
        let x = rand_vec(&mut g, s.x_len(), 1.0);
        let w = rand_vec(&mut g, s.w_len(), 1.0);
        let b = rand_vec(&mut g, s.cout, 1.0);
        let rr = rand_vec(&mut g, s.y_len(), 1.0);
        let tag = format!("kconv k{} s{} p{}", s.k, s.stride, s.pad);
        gradcheck(&format!("{tag} dx"), &x, &r::kconv_backward_input(&s, &rr, &w), None, |v| dot(&rr, &r::kconv_forward(&s, v, &w, Some(&b))));
        gradcheck(&format!("{tag} dw"), &w, &r::kconv_backward_weight(&s, &x, &rr), None, |v| dot(&rr, &r::kconv_forward(&s, &x, v, Some(&b))));
        gradcheck(&format!("{tag} db"), &b, &r::kconv_backward_bias(&s, &rr), None, |v| dot(&rr, &r::kconv_forward(&s, &x, &w, Some(v))));
    }
    // max pooling is differentiable away from ties: distinct random inputs; odd sides exercise the floor mode
    for s in [WindowShape { planes: 3, h: 4, w: 6, k: 2 }, WindowShape { planes: 2, h: 7, w: 5, k: 2 }, WindowShape { planes: 2, h: 8, w: 8, k: 4 }] {
        let x = rand_vec(&mut g, s.x_len(), 1.0);
        let rr = rand_vec(&mut g, s.y_len(), 1.0);
        gradcheck(&format!("maxpool dx {s:?}"), &x, &r::maxpool_backward(&s, &x, &rr), None, |v| dot(&rr, &r::maxpool_forward(&s, v)));
        gradcheck(&format!("avgpool dx {s:?}"), &x, &r::avgpool_backward(&s, &rr), None, |v| dot(&rr, &r::avgpool_forward(&s, v)));
    }
}

/// Central differences of `f` at coordinate i of `x` with step h.
fn central(f: &impl Fn(&[f64]) -> f64, x: &[f64], i: usize, h: f64) -> f64 {
    let mut xp = x.to_vec();
    xp[i] = x[i] + h;
    let up = f(&xp);
    xp[i] = x[i] - h;
    (up - f(&xp)) / (2.0 * h)
}

/// Every network of the evaluation pool (thin copies): L = Σ r ⊙ logits; ∂L/∂x and every parameter tensor on a
/// sample of coordinates. ResNet18's block inputs get gradients by two paths (the residual sum). ReLU and max
/// pooling make L piecewise smooth; where a coordinate's step crosses a kink the central differences at h and
/// h/10 disagree, and that coordinate is left out (counted, and at most 5 % of them may be).
#[test]
fn pool_network_gradients() {
    let (mut checked, mut kinks) = (0usize, 0usize);
    for (arch, c, side, div, seed) in
        [(Arch::Mlp, 1, 28, 16, 41), (Arch::LeNet, 3, 32, 2, 42), (Arch::AlexNet, 1, 28, 64, 43), (Arch::Vgg11, 1, 28, 32, 44), (Arch::ResNet18, 3, 32, 64, 45)]
    {
        let graph = Graph::scaled(arch, c, side, 4, 8, div).unwrap();
        let mut g = rng(seed);
        let p: Vec<Vec<f64>> = graph.init(&mut g).iter().map(|t| t.iter().map(|&v| v as f64).collect()).collect();
        let n = 2;
        let x = rand_vec(&mut g, n * graph.input.size(), 1.0);
        let rl = rand_vec(&mut g, n * graph.classes, 1.0);
        let loss = |p: &[Vec<f64>], x: &[f64]| dot(&rl, arch::ref_forward(&graph, p, x, n).logits());
        let act = arch::ref_forward(&graph, &p, &x, n);
        let (dx, grads) = arch::ref_backward(&graph, &p, &act, &rl);
        // (name, point, analytic gradient, loss as a function of that tensor, coordinates sampled)
        type Case<'a> = (String, Vec<f64>, Vec<f64>, Box<dyn Fn(&[f64]) -> f64 + 'a>, usize);
        let mut cases: Vec<Case> =
            vec![(format!("{} dx", arch.name()), x.clone(), dx, Box::new(|v: &[f64]| loss(&p, v)), 30)];
        for (t, gt) in grads.into_iter().enumerate() {
            let (p, x, loss) = (&p, &x, &loss);
            cases.push((format!("{} param tensor {t}", arch.name()), p[t].clone(), gt, Box::new(move |v: &[f64]| {
                let mut q = p.clone();
                q[t] = v.to_vec();
                loss(&q, x)
            }), 8));
        }
        for (name, point, analytic, f, k) in cases {
            let mut pick = rng(point.len() as u64);
            let (mut fd, mut an, mut skipped) = (vec![], vec![], 0);
            for _ in 0..k.min(point.len()) {
                let i = pick.random_range(0..point.len());
                let (d1, d2) = (central(&f, &point, i, H), central(&f, &point, i, H / 10.0));
                if (d1 - d2).abs() > 1e-6 * d1.abs().max(1e-3) {
                    skipped += 1;
                    continue;
                }
                fd.push(d1);
                an.push(analytic[i]);
            }
            checked += fd.len();
            kinks += skipped;
            let norm = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>().sqrt();
            if norm(&fd) < 1e-8 {
                assert!(norm(&an) < 1e-8, "{name}: finite differences give 0 but analytic has norm {:e}", norm(&an));
                println!("{name:<44} coords {:<3} (kinks {skipped}) zero gradient", fd.len());
                continue;
            }
            // relative to the differences, floored at 1e-3: a tensor whose gradient is tiny (a γ feeding a one-channel
            // norm: 1.7e-5) is compared in absolute terms, where rounding in the differences (~1e-11) lives
            let diff: Vec<f64> = an.iter().zip(&fd).map(|(a, b)| a - b).collect();
            let err = norm(&diff) / norm(&fd).max(1e-3);
            println!("{name:<44} coords {:<3} (kinks {skipped}) rel {err:.2e}", fd.len());
            assert!(err < TOL, "{name}: analytic vs finite-difference relative error {err:e}");
        }
    }
    println!("{checked} coordinates checked, {kinks} left out at kinks");
    assert!(kinks * 20 <= checked + kinks, "{kinks} of {} coordinates at kinks: the check is too weak", checked + kinks);
}

