//! Every GPU kernel against its CPU reference on fresh random inputs, over shapes chosen so that
//! channel counts, widths and totals do not divide the blocking factor (4) or the workgroup (64).
//! Outputs start as NaN, so an element a kernel forgets to write fails.

mod common;
use common::*;
use hyperdistill::nn::ops;
use rand::RngExt;
use hyperdistill::reference as r;
use hyperdistill::shapes::{ConvShape, LinearShape, NormShape, PoolShape};

const TOL: f64 = 1e-4;

fn conv_shapes() -> Vec<ConvShape> {
    vec![
        ConvShape { n: 2, cin: 3, cout: 5, h: 7, w: 7, pad: 1 },
        ConvShape { n: 1, cin: 1, cout: 6, h: 6, w: 5, pad: 3 }, // 28×28-style padding, output larger than input
        ConvShape { n: 3, cin: 6, cout: 8, h: 5, w: 9, pad: 1 },
        ConvShape { n: 2, cin: 16, cout: 12, h: 8, w: 8, pad: 1 },
        ConvShape { n: 1, cin: 3, cout: 4, h: 10, w: 10, pad: 3 },
        ConvShape { n: 9, cin: 1, cout: 7, h: 11, w: 6, pad: 3 }, // the batch split over several threads
        ConvShape { n: 2, cin: 5, cout: 16, h: 9, w: 11, pad: 1 }, // two blocks of 8 output channels
        ConvShape { n: 2, cin: 16, cout: 8, h: 17, w: 10, pad: 1 }, // two blocks of 8 input channels
        ConvShape { n: 2, cin: 3, cout: 72, h: 9, w: 8, pad: 1 }, // two 64-channel tiles, three 64-position tiles
        // vec4 kernels (W % 4 == 0): two column blocks, the second partial; 4 but not 8 output channels
        ConvShape { n: 2, cin: 5, cout: 12, h: 6, w: 12, pad: 1 },
        // 28×28-style padding 3 on a width that is a multiple of 4: four column blocks, chunks past both edges
        ConvShape { n: 2, cin: 1, cout: 8, h: 12, w: 12, pad: 3 },
        // a map narrower than one column block
        ConvShape { n: 3, cin: 4, cout: 16, h: 4, w: 4, pad: 1 },
        // vec4 input gradients: padding 3 (dy 12 wide, dx 8), and two dx column blocks, the second partial
        ConvShape { n: 2, cin: 8, cout: 3, h: 8, w: 8, pad: 3 },
        ConvShape { n: 2, cin: 8, cout: 5, h: 5, w: 12, pad: 1 },
        // vec4 weight gradient: three column blocks, the last partial; 60 columns (eight blocks, the last partial)
        ConvShape { n: 2, cin: 5, cout: 16, h: 6, w: 20, pad: 1 },
        ConvShape { n: 1, cin: 2, cout: 8, h: 3, w: 60, pad: 1 },
        // 8-channel whole-row input gradient on 60-wide rows (15 chunks)
        ConvShape { n: 1, cin: 8, cout: 4, h: 3, w: 60, pad: 1 },
        // implicit GEMM: 1092 positions summed in two split-K chunks (552 + 540, neither a multiple of a tile)
        ConvShape { n: 6, cin: 3, cout: 10, h: 14, w: 13, pad: 1 },
    ]
}

#[test]
fn conv_forward_matches_reference() {
    let g = gpu();
    let mut rng = rng(1);
    for s in conv_shapes() {
        let x = rand_vec(&mut rng, s.x_len(), 1.0);
        let w = rand_vec(&mut rng, s.w_len(), 0.5);
        let b = rand_vec(&mut rng, s.cout, 0.5);
        let want = r::conv_forward(&s, &x, &w, &b);
        let kernels = ops::ConvForward::available(&s);
        let vec4 = kernels.iter().any(|k| matches!(k, ops::ConvForward::Vec4(_)));
        assert_eq!(vec4, s.w % 4 == 0 && s.wo() % 4 == 0 && s.cout % 4 == 0, "vec4 kernels offered for {s:?}: {kernels:?}");
        let row = kernels.contains(&ops::ConvForward::Row(4));
        assert_eq!(row, vec4 && s.wo() <= 64, "whole-row forward offered for {s:?}: {kernels:?}");
        assert_eq!(kernels.contains(&ops::ConvForward::Row(8)), row && s.cout % 8 == 0, "8-channel whole-row forward for {s:?}");
        for k in kernels {
            let y = poisoned(g, s.y_len());
            let wt = poisoned(g, s.w_len());
            let mut enc = g.encoder();
            ops::conv_forward_with(g, &mut enc, k, &s, &up(g, &x), &up(g, &w), &up(g, &b), &y, &wt);
            g.submit_wait(enc);
            check(&format!("conv_forward {} {s:?}", k.name()), &down(g, &y, s.y_len()), &want, TOL);
        }
    }
}

#[test]
fn conv_forward_with_row_stats_matches_reference() {
    // the whole-row kernels' variants that also write each row's statistics for the norm
    let g = gpu();
    let mut rng = rng(12);
    let mut ran = 0;
    for s in conv_shapes() {
        for k in ops::ConvForward::available(&s).into_iter().filter(|k| matches!(k, ops::ConvForward::Row(_))) {
            let x = rand_vec(&mut rng, s.x_len(), 1.0);
            let w = rand_vec(&mut rng, s.w_len(), 0.5);
            let b: Vec<f64> = rand_vec(&mut rng, s.cout, 0.5).iter().map(|v| v + 2.0).collect(); // rows with a mean far from 0
            let want = r::conv_forward(&s, &x, &w, &b);
            let want_stats = r::row_stats(s.n, s.cout, s.ho(), s.wo(), &want);
            let (y, wt, rs) = (poisoned(g, s.y_len()), poisoned(g, s.w_len()), poisoned(g, ops::row_stats_len(&s)));
            let mut enc = g.encoder();
            ops::conv_forward_row_stats(g, &mut enc, k, &s, &up(g, &x), &up(g, &w), &up(g, &b), &y, &wt, &rs);
            g.submit_wait(enc);
            check(&format!("conv_forward {}_stats y {s:?}", k.name()), &down(g, &y, s.y_len()), &want, TOL);
            check(&format!("conv_forward {}_stats rows {s:?}", k.name()), &down(g, &rs, want_stats.len()), &want_stats, TOL);
            ran += 1;
        }
    }
    assert!(ran >= 8, "only {ran} whole-row shapes");
}

#[test]
fn norm_relu_pool_from_row_stats_matches_reference() {
    // the forward block tail with the plane statistics merged from row statistics, against the reference ops;
    // planes with a large mean against their spread (the merge must not cancel)
    let g = gpu();
    let mut rng = rng(13);
    for (n, c, h, w, offset) in [(2, 4, 8, 8, 0.7), (3, 8, 16, 16, 0.7), (2, 4, 28, 28, 0.3), (1, 12, 6, 60, 0.0), (2, 4, 8, 4, 30.0)] {
        let s = NormShape { n, c, hw: h * w };
        let x: Vec<f64> = rand_vec(&mut rng, s.len(), 2.0).iter().map(|v| v + offset).collect();
        let gamma = rand_vec(&mut rng, c, 1.5);
        let beta = rand_vec(&mut rng, c, 0.5);
        let (want_y, want_stats) = r::norm_relu_pool_forward(&s, h, w, &x, &gamma, &beta);
        let rows = r::row_stats(n, c, h, w, &x);
        let (y, stats) = (poisoned(g, want_y.len()), poisoned(g, 2 * s.planes()));
        let mut enc = g.encoder();
        ops::norm_relu_pool_forward_rows(g, &mut enc, &s, h, w, &up(g, &x), &up(g, &gamma), &up(g, &beta), &y, &stats, &up(g, &rows));
        g.submit_wait(enc);
        check(&format!("norm_relu_pool_rows {n}x{c}x{h}x{w} +{offset}"), &down(g, &y, want_y.len()), &want_y, TOL);
        check(&format!("norm_relu_pool_rows stats {n}x{c}x{h}x{w} +{offset}"), &down(g, &stats, 2 * s.planes()), &want_stats, TOL);
    }
}

#[test]
fn conv_backward_matches_reference() {
    let g = gpu();
    let mut rng = rng(2);
    let mut most_splits = 0;
    for s in conv_shapes() {
        let x = rand_vec(&mut rng, s.x_len(), 1.0);
        let w = rand_vec(&mut rng, s.w_len(), 0.5);
        let dy = rand_vec(&mut rng, s.y_len(), 1.0);
        let (dx, dw, db) = (poisoned(g, s.x_len()), poisoned(g, s.w_len()), poisoned(g, s.cout));
        let scratch = poisoned(g, ops::conv_weight_scratch_len(g, &s));
        let (xb, wb, dyb) = (up(g, &x), up(g, &w), up(g, &dy));
        let mut enc = g.encoder();
        let wt = poisoned(g, s.w_len());
        ops::conv_backward_input(g, &mut enc, &s, &dyb, &wb, &dx, &wt);
        ops::conv_backward_weight(g, &mut enc, &s, &xb, &dyb, &dw, &scratch);
        ops::conv_backward_bias(g, &mut enc, &s, &dyb, &db);
        g.submit_wait(enc);
        let want_dx = r::conv_backward_input(&s, &dy, &w);
        check(&format!("conv_backward_input {s:?}"), &down(g, &dx, s.x_len()), &want_dx, TOL);
        let kernels = ops::ConvBackwardInput::available(&s);
        let vec4 = kernels.iter().any(|k| matches!(k, ops::ConvBackwardInput::Vec4(_)));
        assert_eq!(vec4, s.wo() % 4 == 0 && s.w % 4 == 0 && s.cin % 4 == 0, "vec4 kernels offered for {s:?}: {kernels:?}");
        let c1 = kernels.contains(&ops::ConvBackwardInput::Channel1Vec4);
        assert_eq!(c1, s.wo() % 4 == 0 && s.w % 4 == 0, "one-channel vec4 kernel offered for {s:?}: {kernels:?}");
        let r1 = kernels.contains(&ops::ConvBackwardInput::Row1Vec4);
        assert_eq!(r1, c1 && s.wo() <= 64, "whole-row vec4 kernel offered for {s:?}: {kernels:?}");
        let r2 = kernels.contains(&ops::ConvBackwardInput::Row2Vec4);
        assert_eq!(r2, r1 && s.h % 2 == 0, "two-row vec4 kernel offered for {s:?}: {kernels:?}");
        let r8 = kernels.contains(&ops::ConvBackwardInput::Row8);
        assert_eq!(r8, r1 && s.cin % 8 == 0, "8-channel whole-row kernel offered for {s:?}: {kernels:?}");
        for k in kernels {
            let dx = poisoned(g, s.x_len());
            let wt = poisoned(g, s.w_len());
            let mut enc = g.encoder();
            ops::conv_backward_input_with(g, &mut enc, k, &s, &dyb, &wb, &dx, &wt);
            g.submit_wait(enc);
            check(&format!("conv_backward_input {} {s:?}", k.name()), &down(g, &dx, s.x_len()), &want_dx, TOL);
        }
        let want_dw = r::conv_backward_weight(&s, &x, &dy);
        check(&format!("conv_backward_weight {s:?}"), &down(g, &dw, s.w_len()), &want_dw, TOL);
        let kernels = ops::ConvBackwardWeight::available(&s);
        let rows = kernels.contains(&ops::ConvBackwardWeight::RowsVec4);
        assert_eq!(rows, s.wo() % 4 == 0 && s.w % 4 == 0 && s.cout % 4 == 0, "vec4 weight-gradient kernel offered for {s:?}: {kernels:?}");
        let row8 = kernels.contains(&ops::ConvBackwardWeight::Row8);
        assert_eq!(row8, rows && s.w <= 64 && s.cout % 8 == 0, "whole-row weight-gradient kernel offered for {s:?}: {kernels:?}");
        for t in ops::GEMM_TILES {
            most_splits = most_splits.max(t.weight_splits(&s));
        }
        for k in kernels {
            let dw = poisoned(g, s.w_len());
            let scratch = poisoned(g, k.scratch_len(&s));
            let mut enc = g.encoder();
            ops::conv_backward_weight_with(g, &mut enc, k, &s, &xb, &dyb, &dw, &scratch);
            g.submit_wait(enc);
            check(&format!("conv_backward_weight {} {s:?}", k.name()), &down(g, &dw, s.w_len()), &want_dw, TOL);
        }
        check(&format!("conv_backward_bias {s:?}"), &down(g, &db, s.cout), &r::conv_backward_bias(&s, &dy), TOL);
    }
    assert!(most_splits >= 2, "no shape runs the GEMM weight gradient split-K (partial sums, then reduce_weight)");
}

/// The norm kernels this device runs (one thread per plane; one subgroup per plane where it has subgroups of a
/// fixed size), said aloud so that a run shows which were compared.
fn norm_kernels(g: &hyperdistill::gpu::Gpu) -> Vec<ops::NormKernel> {
    let ks = ops::NormKernel::available(g);
    let i = &g.info;
    println!("norm kernels {ks:?} (subgroups: feature {}, size {}..={})", g.device.features().contains(wgpu::Features::SUBGROUP),
        i.subgroup_min_size, i.subgroup_max_size);
    if g.device.features().contains(wgpu::Features::SUBGROUP) && i.subgroup_min_size == i.subgroup_max_size {
        assert!(ks.contains(&ops::NormKernel::Subgroup(i.subgroup_min_size)), "a fixed-size subgroup device must run norm_sg");
    }
    ks
}

#[test]
fn instance_norm_matches_reference() {
    let g = gpu();
    let mut rng = rng(3);
    // planes smaller than, equal to and not a multiple of every subgroup size (8, 32)
    for s in [NormShape { n: 2, c: 3, hw: 7 }, NormShape { n: 3, c: 5, hw: 64 }, NormShape { n: 13, c: 7, hw: 16 }, NormShape { n: 2, c: 2, hw: 100 }] {
        // an offset and a scale per call, as conv outputs have
        let x: Vec<f64> = rand_vec(&mut rng, s.len(), 2.0).iter().map(|v| v + 0.7).collect();
        let gamma = rand_vec(&mut rng, s.c, 1.5);
        let beta = rand_vec(&mut rng, s.c, 0.5);
        let dy = rand_vec(&mut rng, s.len(), 1.0);
        let (ry, rstats) = r::norm_forward(&s, &x, &gamma, &beta);
        let (rdx, rdg, rdb) = r::norm_backward(&s, &x, &gamma, &rstats, &dy);
        for k in norm_kernels(g) {
            let (y, stats) = (poisoned(g, s.len()), poisoned(g, 2 * s.planes()));
            let (dx, partial, dg, db) = (poisoned(g, s.len()), poisoned(g, 2 * s.planes()), poisoned(g, s.c), poisoned(g, s.c));
            let (xb, gb) = (up(g, &x), up(g, &gamma));
            let mut enc = g.encoder();
            ops::norm_forward_with(g, &mut enc, k, &s, &xb, &gb, &up(g, &beta), &y, &stats);
            ops::norm_backward_with(g, &mut enc, k, &s, &xb, &gb, &stats, &up(g, &dy), &dx, &partial);
            ops::norm_param_grad(g, &mut enc, &s, &partial, &dg, &db);
            g.submit_wait(enc);
            check(&format!("norm_forward {k:?} y {s:?}"), &down(g, &y, s.len()), &ry, TOL);
            check(&format!("norm_forward {k:?} stats {s:?}"), &down(g, &stats, 2 * s.planes()), &rstats, TOL);
            check(&format!("norm_backward {k:?} dx {s:?}"), &down(g, &dx, s.len()), &rdx, TOL);
            check(&format!("norm {k:?} dgamma {s:?}"), &down(g, &dg, s.c), &rdg, TOL);
            check(&format!("norm {k:?} dbeta {s:?}"), &down(g, &db, s.c), &rdb, TOL);
        }
    }
}

#[test]
fn relu_and_pool_match_reference() {
    let g = gpu();
    let mut rng = rng(4);
    for len in [1usize, 63, 1000] {
        let x = rand_vec(&mut rng, len, 1.0);
        let dy = rand_vec(&mut rng, len, 1.0);
        let (y, dx) = (poisoned(g, len), poisoned(g, len));
        let xb = up(g, &x);
        let mut enc = g.encoder();
        ops::relu_forward(g, &mut enc, len, &xb, &y);
        ops::relu_backward(g, &mut enc, len, &xb, &up(g, &dy), &dx);
        g.submit_wait(enc);
        check(&format!("relu_forward len {len}"), &down(g, &y, len), &r::relu_forward(&x), TOL);
        check(&format!("relu_backward len {len}"), &down(g, &dx, len), &r::relu_backward(&x, &dy), TOL);
    }
    for s in [PoolShape { planes: 5, h: 6, w: 10 }, PoolShape { planes: 33, h: 8, w: 8 }, PoolShape { planes: 1, h: 2, w: 2 }] {
        let x = rand_vec(&mut rng, s.x_len(), 1.0);
        let dy = rand_vec(&mut rng, s.y_len(), 1.0);
        let (y, dx) = (poisoned(g, s.y_len()), poisoned(g, s.x_len()));
        let mut enc = g.encoder();
        ops::pool_forward(g, &mut enc, &s, &up(g, &x), &y);
        ops::pool_backward(g, &mut enc, &s, &up(g, &dy), &dx);
        g.submit_wait(enc);
        check(&format!("pool_forward {s:?}"), &down(g, &y, s.y_len()), &r::pool_forward(&s, &x), TOL);
        check(&format!("pool_backward {s:?}"), &down(g, &dx, s.x_len()), &r::pool_backward(&s, &dy), TOL);
    }
}

#[test]
fn linear_matches_reference() {
    let g = gpu();
    let mut rng = rng(5);
    for s in [LinearShape { n: 3, inp: 37, out: 10 }, LinearShape { n: 70, inp: 5, out: 3 }] {
        let x = rand_vec(&mut rng, s.n * s.inp, 1.0);
        let w = rand_vec(&mut rng, s.out * s.inp, 0.5);
        let b = rand_vec(&mut rng, s.out, 0.5);
        let dy = rand_vec(&mut rng, s.n * s.out, 1.0);
        let (y, dx, dw, db) = (poisoned(g, s.n * s.out), poisoned(g, s.n * s.inp), poisoned(g, s.out * s.inp), poisoned(g, s.out));
        let (xb, wb, dyb) = (up(g, &x), up(g, &w), up(g, &dy));
        let mut enc = g.encoder();
        ops::linear_forward(g, &mut enc, &s, &xb, &wb, &up(g, &b), &y);
        ops::linear_backward_input(g, &mut enc, &s, &dyb, &wb, &dx, false);
        ops::linear_backward_params(g, &mut enc, &s, &xb, &dyb, &dw, &db);
        g.submit_wait(enc);
        let (rdw, rdb) = r::linear_backward_params(&s, &x, &dy);
        check(&format!("linear_forward {s:?}"), &down(g, &y, s.n * s.out), &r::linear_forward(&s, &x, &w, &b), TOL);
        check(&format!("linear_backward_input {s:?}"), &down(g, &dx, s.n * s.inp), &r::linear_backward_input(&s, &dy, &w), TOL);
        check(&format!("linear dw {s:?}"), &down(g, &dw, s.out * s.inp), &rdw, TOL);
        check(&format!("linear db {s:?}"), &down(g, &db, s.out), &rdb, TOL);
        // accumulate: a gradient already in dx (IDM's matching term) is kept and the fc path added to it
        let prior = rand_vec(&mut rng, s.n * s.inp, 1.0);
        let acc = up(g, &prior);
        let mut enc = g.encoder();
        ops::linear_backward_input(g, &mut enc, &s, &dyb, &wb, &acc, true);
        g.submit_wait(enc);
        let want: Vec<f64> = r::linear_backward_input(&s, &dy, &w).iter().zip(&prior).map(|(a, b)| a + b).collect();
        check(&format!("linear_backward_input accumulate {s:?}"), &down(g, &acc, s.n * s.inp), &want, TOL);
    }
}

#[test]
fn softmax_xent_matches_reference() {
    let g = gpu();
    let mut rng = rng(6);
    for (n, k) in [(5usize, 10usize), (70, 3), (2, 200)] {
        // large logits check the max-subtraction
        let logits = rand_vec(&mut rng, n * k, 30.0);
        let labels: Vec<u32> = (0..n).map(|i| ((i * 7 + 3) % k) as u32).collect();
        let scale = 1.0 / n as f64;
        let (loss, d) = (poisoned(g, n), poisoned(g, n * k));
        let mut enc = g.encoder();
        ops::softmax_xent(g, &mut enc, n, k, scale as f32, &up(g, &logits), &g.upload("labels", &labels).unwrap(), &loss, &d);
        g.submit_wait(enc);
        let (rl, rd) = r::softmax_xent(n, k, &logits, &labels, scale);
        check(&format!("softmax_xent loss n={n} k={k}"), &down(g, &loss, n), &rl, TOL);
        check(&format!("softmax_xent dlogits n={n} k={k}"), &down(g, &d, n * k), &rd, TOL);
    }
}

#[test]
fn accuracy_weighted_xent_reads_the_running_accuracy_on_the_gpu() {
    // IDM's CE weight: the network's running training accuracy in percent, accumulated by `correct` + `tally`
    // over two batches and read by softmax_xent_weighted without a read-back
    let g = gpu();
    let mut rng = rng(8);
    let (n, k) = (6usize, 4usize);
    let meter = g.zeros("meter", 2).unwrap();
    let mut hits_total = 0.0;
    let mut enc = g.encoder();
    let mut keep = vec![];
    for round in 0..2 {
        let logits = rand_vec(&mut rng, n * k, 3.0);
        let labels: Vec<u32> = (0..n).map(|i| ((i + round) % k) as u32).collect();
        hits_total += (0..n).filter(|&i| (0..k).max_by(|&a, &b| logits[i * k + a].total_cmp(&logits[i * k + b])).unwrap() == labels[i] as usize).count() as f64;
        let (lb, hits) = (g.upload("labels", &labels).unwrap(), poisoned(g, n));
        ops::correct(g, &mut enc, n, k, &up(g, &logits), &lb, &hits);
        ops::tally(g, &mut enc, n, &hits, &meter);
        keep.push((lb, hits));
    }
    let logits = rand_vec(&mut rng, n * k, 3.0);
    let labels: Vec<u32> = vec![2; n];
    let (loss, d) = (poisoned(g, n), poisoned(g, n * k));
    let scale = 0.5 / n as f64;
    ops::softmax_xent_weighted(g, &mut enc, n, k, scale as f32, &up(g, &logits), &g.upload("labels", &labels).unwrap(), &meter, &loss, &d);
    g.submit_wait(enc);
    let m = down(g, &meter, 2);
    println!("meter {m:?}, {hits_total} hits expected");
    assert_eq!(m, vec![hits_total, 2.0 * n as f64]);
    let acc = 100.0 * hits_total / (2 * n) as f64;
    let (rl, rd) = r::softmax_xent(n, k, &logits, &labels, scale * acc);
    check("weighted xent loss", &down(g, &loss, n), &rl, TOL);
    check("weighted xent dlogits", &down(g, &d, n * k), &rd, TOL);
    // before any training step the weight is 0
    let empty = g.zeros("meter", 2).unwrap();
    let mut enc = g.encoder();
    ops::softmax_xent_weighted(g, &mut enc, n, k, scale as f32, &up(g, &logits), &g.upload("labels", &labels).unwrap(), &empty, &loss, &d);
    g.submit_wait(enc);
    assert!(down(g, &d, n * k).iter().all(|&v| v == 0.0));
}

#[test]
fn sgd_and_dm_matching_match_reference() {
    let g = gpu();
    let mut rng = rng(7);
    for (lr, mom, wd) in [(1.0, 0.5, 0.0), (0.01, 0.9, 5e-4)] {
        let n = 1000;
        let (p, gr, b) = (rand_vec(&mut rng, n, 1.0), rand_vec(&mut rng, n, 1.0), rand_vec(&mut rng, n, 1.0));
        let (pb, bb) = (up(g, &p), up(g, &b));
        let mut enc = g.encoder();
        ops::sgd(g, &mut enc, n, ops::Sgd { lr: lr as f32, momentum: mom as f32, weight_decay: wd as f32 }, &up(g, &gr), &pb, &bb);
        g.submit_wait(enc);
        let (rp, rb) = r::sgd(&p, &gr, &b, lr, mom, wd);
        check(&format!("sgd param lr {lr} momentum {mom} wd {wd}"), &down(g, &pb, n), &rp, TOL);
        check(&format!("sgd buf lr {lr} momentum {mom} wd {wd}"), &down(g, &bb, n), &rb, TOL);
    }
    for (classes, per_real, per_syn, dim) in [(3, 7, 1, 65), (10, 32, 10, 128)] {
        let real = rand_vec(&mut rng, classes * per_real * dim, 1.0);
        let syn = rand_vec(&mut rng, classes * per_syn * dim, 1.0);
        let (sq, loss, grad) = (poisoned(g, classes * dim), poisoned(g, classes), poisoned(g, syn.len()));
        let mut enc = g.encoder();
        ops::dm_matching(g, &mut enc, &hyperdistill::shapes::MatchShape { classes, per_real, per_syn, dim }, 1.0, &up(g, &real), &up(g, &syn), &sq, &loss, &grad);
        g.submit_wait(enc);
        let (rl, rg) = r::dm_matching(classes, per_real, per_syn, dim, &real, &syn);
        check(&format!("dm loss {classes}x{per_real}/{per_syn}x{dim}"), &down(g, &loss, classes), &rl, TOL);
        check(&format!("dm grad {classes}x{per_real}/{per_syn}x{dim}"), &down(g, &grad, syn.len()), &rg, TOL);
    }
    // argmax accuracy
    let logits = vec![0.1, 0.9, 0.0, 2.0, -1.0, 0.5, 0.2, 0.2, 0.7];
    let labels: Vec<u32> = vec![1, 0, 0];
    let out = poisoned(g, 3);
    let mut enc = g.encoder();
    ops::correct(g, &mut enc, 3, 3, &up(g, &logits), &g.upload("labels", &labels).unwrap(), &out);
    g.submit_wait(enc);
    assert_eq!(down(g, &out, 3), vec![1.0, 1.0, 0.0]);
}

#[test]
fn matmul_kernels_match_reference() {
    // the bench's yardstick kernels: several tiles and K-steps, so tile and step indexing are exercised
    let g = gpu();
    let mut rng = rng(9);
    for (m, n, k) in [(64, 64, 16), (128, 192, 48)] {
        let a = rand_vec(&mut rng, m * k, 1.0);
        let b = rand_vec(&mut rng, k * n, 1.0);
        let want = r::matmul(m, n, k, &a, &b);
        let (ab, bb) = (up(g, &a), up(g, &b));
        for kernel in ops::MatmulKernel::ALL {
            let c = poisoned(g, m * n);
            let mut enc = g.encoder();
            ops::matmul(g, &mut enc, kernel, m, n, k, &ab, &bb, &c);
            g.submit_wait(enc);
            check(&format!("matmul {} {m}x{n}x{k}", kernel.name()), &down(g, &c, m * n), &want, TOL);
        }
    }
}

#[test]
fn network_without_runtime_bounds_checks_matches_reference() {
    // HYPERDISTILL_SHADER_BOUNDS_CHECKS=off builds the shaders without wgpu's clamps: the whole ConvNet-3
    // (forward and backward to the input, both shapes) must still agree with the f64 reference
    let mut g = hyperdistill::gpu::Gpu::new().expect("adapter");
    g.bounds_checks = false;
    for r in hyperdistill::selfcheck::run(&g, 3).unwrap() {
        println!("{:<26} embed rel {:.2e}, input grad rel {:.2e}", r.shape, r.embed_rel_err, r.input_grad_rel_err);
        assert!(r.passed(), "{}: {:e} / {:e}", r.shape, r.embed_rel_err, r.input_grad_rel_err);
    }
}

#[test]
fn fused_norm_relu_pool_backward_matches_reference() {
    // the training block tail's backward against the reference ops in a row: pool, ReLU (mask from the forward's
    // norm output), norm; dx and the per-plane sums (Σ dy·x̂, Σ dy) that give dγ, dβ
    let g = gpu();
    let mut rng = rng(12);
    for (n, c, h, w) in [(2, 3, 8, 8), (3, 5, 16, 16), (1, 4, 6, 10), (2, 3, 32, 32), (1, 2, 4, 12)] {
        let s = NormShape { n, c, hw: h * w };
        let ps = PoolShape { planes: n * c, h, w };
        let x: Vec<f64> = rand_vec(&mut rng, s.len(), 2.0).iter().map(|v| v + 0.7).collect();
        let gamma = rand_vec(&mut rng, c, 1.5);
        let beta = rand_vec(&mut rng, c, 0.5);
        let dy = rand_vec(&mut rng, ps.y_len(), 1.0);
        // the statistics as the GPU forward wrote them, so that both sides use the same mean and 1/std
        let (xb, gb, bb) = (up(g, &x), up(g, &gamma), up(g, &beta));
        let (y, stats) = (poisoned(g, ps.y_len()), poisoned(g, 2 * s.planes()));
        let mut enc = g.encoder();
        ops::norm_relu_pool_forward_with(g, &mut enc, ops::NormKernel::PerThread, &s, h, w, &xb, &gb, &bb, &y, &stats);
        g.submit_wait(enc);
        let st = down(g, &stats, 2 * s.planes());
        let (norm_out, _) = r::norm_forward(&s, &x, &gamma, &beta);
        let d_relu = r::pool_backward(&ps, &dy);
        let d_norm = r::relu_backward(&norm_out, &d_relu);
        let (want_dx, _, _) = r::norm_backward(&s, &x, &gamma, &st, &d_norm);
        let mut want_partial = vec![0.0; 2 * s.planes()];
        for p in 0..s.planes() {
            let (mu, rr) = (st[2 * p], st[2 * p + 1]);
            for i in p * s.hw..(p + 1) * s.hw {
                want_partial[2 * p] += d_norm[i] * (x[i] - mu) * rr;
                want_partial[2 * p + 1] += d_norm[i];
            }
        }
        // the scalar kernel everywhere, the vec4 one where rows are a multiple of 4 wide (the choice there)
        assert_eq!(ops::tail_vec4(ops::NormKernel::PerThread, h, w), w % 4 == 0);
        for vec4 in [false, true].into_iter().filter(|&v| !v || w % 4 == 0) {
            let (dx, partial) = (poisoned(g, s.len()), poisoned(g, 2 * s.planes()));
            let mut enc = g.encoder();
            ops::norm_relu_pool_backward_v(g, &mut enc, vec4, &s, h, w, &xb, &gb, &bb, &stats, &up(g, &dy), &dx, &partial);
            g.submit_wait(enc);
            check(&format!("norm_relu_pool_backward vec4 {vec4} dx {n}×{c}×{h}×{w}"), &down(g, &dx, s.len()), &want_dx, TOL);
            check(&format!("norm_relu_pool_backward vec4 {vec4} partial {n}×{c}×{h}×{w}"), &down(g, &partial, 2 * s.planes()), &want_partial, TOL);
        }
    }
}

#[test]
fn fused_norm_relu_pool_matches_reference() {
    // the forward-only block tail against the three reference ops in a row (odd sides: pooling floors)
    let g = gpu();
    let mut rng = rng(11);
    for (n, c, h, w) in [(2, 3, 8, 8), (3, 5, 16, 16), (1, 4, 7, 9), (2, 3, 28, 28), (1, 2, 6, 10)] {
        let s = NormShape { n, c, hw: h * w };
        let x: Vec<f64> = rand_vec(&mut rng, s.len(), 2.0).iter().map(|v| v + 0.7).collect();
        let gamma = rand_vec(&mut rng, c, 1.5);
        let beta = rand_vec(&mut rng, c, 0.5);
        let (want_y, want_stats) = r::norm_relu_pool_forward(&s, h, w, &x, &gamma, &beta);
        // every norm kernel; the per-thread one also as vec4 where rows are a multiple of 4 wide
        let per_thread_vec4 = w % 4 == 0 && h % 2 == 0;
        for (k, vec4) in norm_kernels(g).into_iter().flat_map(|k| [(k, false), (k, true)]).filter(|&(k, v)| !v || (k == ops::NormKernel::PerThread && per_thread_vec4)) {
            let (y, stats) = (poisoned(g, want_y.len()), poisoned(g, 2 * s.planes()));
            let mut enc = g.encoder();
            ops::norm_relu_pool_forward_v(g, &mut enc, k, vec4, &s, h, w, &up(g, &x), &up(g, &gamma), &up(g, &beta), &y, &stats);
            g.submit_wait(enc);
            check(&format!("norm_relu_pool {k:?} vec4 {vec4} {n}x{c}x{h}x{w}"), &down(g, &y, want_y.len()), &want_y, TOL);
            check(&format!("norm_relu_pool {k:?} vec4 {vec4} stats {n}x{c}x{h}x{w}"), &down(g, &stats, 2 * s.planes()), &want_stats, TOL);
        }
    }
}

#[test]
fn cutmix_and_its_two_label_loss_match_the_reference() {
    // DANCE's evaluation: the CutMix box from another image of the batch, and ratio·CE(a) + (1 − ratio)·CE(b)
    use hyperdistill::augment::{self, CutMix};
    let g = gpu();
    let mut r = rng(10);
    let (n, c, h, w, k) = (7, 3, 12, 10, 5);
    let mut drawn = 0;
    for trial in 0..40 {
        let Some(m) = CutMix::draw(&mut r, n, h, w, 0.5, 1.0) else { continue };
        drawn += 1;
        let mut sorted = m.perm.clone();
        sorted.sort();
        assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "a permutation of the batch");
        let area = (m.rows.1 - m.rows.0) * (m.cols.1 - m.cols.0);
        assert!((m.ratio - (1.0 - area as f64 / (h * w) as f64)).abs() < 1e-12 && m.rows.1 <= h && m.cols.1 <= w);
        let x: Vec<f64> = rand_vec(&mut r, n * c * h * w, 1.0).iter().map(|&v| v as f32 as f64).collect();
        let y = poisoned(g, x.len());
        let mut enc = g.encoder();
        augment::gpu::cutmix(g, &mut enc, n, hyperdistill::shapes::ImageShape::new(c, h, w), &up(g, &x), &g.upload("mix", &m.words()).unwrap(), &y);
        g.submit_wait(enc);
        assert!(down(g, &y, x.len()) == m.apply(&x, c, h, w), "cutmix draw {trial}: the kernel copies, it must match exactly");
        let logits = rand_vec(&mut r, n * k, 3.0);
        let labels: Vec<u32> = (0..n).map(|i| (i % k) as u32).collect();
        let labels_b: Vec<u32> = m.perm.iter().map(|&i| labels[i]).collect();
        let (loss, d) = (poisoned(g, n), poisoned(g, n * k));
        let mut enc = g.encoder();
        ops::softmax_xent_mix(g, &mut enc, n, k, 1.0 / n as f32, &up(g, &logits), &g.upload("la", &labels).unwrap(),
            &g.upload("lb", &labels_b).unwrap(), &g.upload("ratio", &[m.ratio as f32]).unwrap(), &loss, &d);
        g.submit_wait(enc);
        let (rl, rd) = r::softmax_xent_mix(n, k, &logits, &labels, &labels_b, m.ratio as f32 as f64, 1.0 / n as f64);
        check("xent_mix loss", &down(g, &loss, n), &rl, TOL);
        check("xent_mix dlogits", &down(g, &d, n * k), &rd, TOL);
    }
    println!("CutMix applied in {drawn} of 40 batches (p = 0.5)");
    assert!((8..=32).contains(&drawn));
    assert!(CutMix::draw(&mut r, n, h, w, 0.0, 1.0).is_none(), "p = 0 never mixes");
}

#[test]
fn per_channel_sgd_and_clamp_match_the_reference() {
    // DANCE's pixel step in the normalised space: lr_c = lr/std_c² per channel, then the [0, 1] box per channel
    let g = gpu();
    let mut rng = rng(11);
    let (n_img, c, plane) = (3, 3, 35);
    let n = n_img * c * plane;
    let (p, gr, b) = (rand_vec(&mut rng, n, 2.0), rand_vec(&mut rng, n, 1.0), rand_vec(&mut rng, n, 1.0));
    let lrs = [0.5f32, 0.25, 2.0];
    let (lo, hi) = ([-1.0f32, -0.5, -2.0], [1.0f32, 0.25, 2.0]);
    let (pb, bb) = (up(g, &p), up(g, &b));
    let mut enc = g.encoder();
    ops::sgd_channels(g, &mut enc, n, plane, &lrs, 0.5, &up(g, &gr), &pb, &bb);
    g.submit_wait(enc);
    let (mut want_p, mut want_b) = (vec![0.0; n], vec![0.0; n]);
    for i in 0..n {
        let ch = (i / plane) % c;
        let (np, nb) = r::sgd(&p[i..i + 1], &gr[i..i + 1], &b[i..i + 1], lrs[ch] as f64, 0.5, 0.0);
        (want_p[i], want_b[i]) = (np[0], nb[0]);
    }
    check("sgd_channels param", &down(g, &pb, n), &want_p, TOL);
    check("sgd_channels buf", &down(g, &bb, n), &want_b, TOL);
    let x = up(g, &p);
    let mut enc = g.encoder();
    ops::clamp_channels(g, &mut enc, n, plane, &lo, &hi, &x);
    g.submit_wait(enc);
    let want: Vec<f64> = p.iter().enumerate().map(|(i, &v)| { let ch = (i / plane) % c; v.clamp(lo[ch] as f64, hi[ch] as f64) }).collect();
    check("clamp_channels", &down(g, &x, n), &want, TOL);
    // one channel (Fashion-MNIST): every element uses LR0 / LO0 / HI0
    let x = up(g, &p);
    let mut enc = g.encoder();
    ops::clamp_channels(g, &mut enc, n, plane, &[-0.1], &[0.1], &x);
    g.submit_wait(enc);
    assert!(down(g, &x, n).iter().all(|v| (-0.1 - 1e-7..=0.1 + 1e-7).contains(v)));
}

#[test]
fn divergence_check_matches_the_reference() {
    // fresh random values, some cases with a NaN or an infinity at a random place: the flag becomes the smaller of
    // itself and the running iteration exactly where the reference says so
    let g = gpu();
    let mut r = rng(91);
    for case in 0..12 {
        let n = r.random_range(1..5000usize);
        let mut x = rand_vec(&mut r, n, 1e30);
        match case % 4 {
            1 => x[r.random_range(0..n)] = f64::NAN,
            2 => x[r.random_range(0..n)] = f64::INFINITY,
            3 => x[n - 1] = -f64::INFINITY,
            _ => {}
        }
        let before = [if case < 8 { u32::MAX } else { r.random_range(0..100u32) }, r.random_range(1..200u32)];
        let health = g.upload("health", &before).unwrap();
        let mut enc = g.encoder();
        ops::check_finite(g, &mut enc, n, &up(g, &x), &health);
        g.submit_wait(enc);
        let got: Vec<u32> = g.read_f32(&health, 2).unwrap().iter().map(|v| v.to_bits()).collect();
        let want = r::check_finite(&x, before);
        println!("check_finite n={n:<5} case {case}: {before:?} → {got:?} (reference {want:?})");
        assert_eq!(got, want.to_vec());
    }
}
