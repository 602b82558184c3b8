//! reference: every GPU kernel again, as plain CPU code in f64, op for op the same maths as the WGSL.
//! Tests compare the kernels against these functions and check these functions' gradients by
//! finite differences. Clarity over speed.

use crate::shapes::{ConvShape, KConvShape, LinearShape, NormShape, PoolShape, WindowShape};

/// Instance-norm epsilon (PyTorch GroupNorm default), as in shaders/norm.wgsl.
pub const NORM_EPS: f64 = 1e-5;

// ConvNet-3's 3×3, stride-1 convolution is the general one below (`ConvShape::k3`).

/// y[n,co,oy,ox] = b[co] + Σ_ci Σ_ky Σ_kx w[co,ci,ky,kx] · x[n,ci,oy+ky−pad,ox+kx−pad]  (zero outside)
pub fn conv_forward(s: &ConvShape, x: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
    kconv_forward(&s.k3(), x, w, Some(b))
}

/// dx = ∂L/∂x given dy = ∂L/∂y: each output scatters dy·w back onto the inputs it read.
pub fn conv_backward_input(s: &ConvShape, dy: &[f64], w: &[f64]) -> Vec<f64> {
    kconv_backward_input(&s.k3(), dy, w)
}

/// dw[co,ci,ky,kx] = Σ_n,oy,ox dy[n,co,oy,ox] · x[n,ci,oy+ky−pad,ox+kx−pad]
pub fn conv_backward_weight(s: &ConvShape, x: &[f64], dy: &[f64]) -> Vec<f64> {
    kconv_backward_weight(&s.k3(), x, dy)
}

/// db[co] = Σ_n,oy,ox dy[n,co,oy,ox]
pub fn conv_backward_bias(s: &ConvShape, dy: &[f64]) -> Vec<f64> {
    kconv_backward_bias(&s.k3(), dy)
}

/// Instance norm: returns (y, stats) with stats[2·plane] = mean, stats[2·plane+1] = 1/sqrt(var + eps).
pub fn norm_forward(s: &NormShape, x: &[f64], gamma: &[f64], beta: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut y = vec![0.0; s.len()];
    let mut stats = vec![0.0; 2 * s.planes()];
    for p in 0..s.planes() {
        let c = p % s.c;
        let xs = &x[p * s.hw..(p + 1) * s.hw];
        let mu = xs.iter().sum::<f64>() / s.hw as f64;
        let var = xs.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / s.hw as f64;
        let r = 1.0 / (var + NORM_EPS).sqrt();
        for (i, v) in xs.iter().enumerate() {
            y[p * s.hw + i] = (v - mu) * r * gamma[c] + beta[c];
        }
        stats[2 * p] = mu;
        stats[2 * p + 1] = r;
    }
    (y, stats)
}

/// Instance-norm backward: (dx, dgamma, dbeta), with x̂ = (x − μ)·r and g = γ·dy:
/// dx = r·(g − mean(g) − x̂·mean(g·x̂)), dγ = Σ dy·x̂, dβ = Σ dy.
pub fn norm_backward(s: &NormShape, x: &[f64], gamma: &[f64], stats: &[f64], dy: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut dx = vec![0.0; s.len()];
    let mut dgamma = vec![0.0; s.c];
    let mut dbeta = vec![0.0; s.c];
    let inv = 1.0 / s.hw as f64;
    for p in 0..s.planes() {
        let c = p % s.c;
        let (mu, r) = (stats[2 * p], stats[2 * p + 1]);
        let range = p * s.hw..(p + 1) * s.hw;
        let xh: Vec<f64> = x[range.clone()].iter().map(|v| (v - mu) * r).collect();
        let dys = &dy[range];
        let sum_dy: f64 = dys.iter().sum();
        let sum_dy_xh: f64 = dys.iter().zip(&xh).map(|(d, h)| d * h).sum();
        for i in 0..s.hw {
            dx[p * s.hw + i] = r * (gamma[c] * dys[i] - gamma[c] * sum_dy * inv - xh[i] * gamma[c] * sum_dy_xh * inv);
        }
        dgamma[c] += sum_dy_xh;
        dbeta[c] += sum_dy;
    }
    (dx, dgamma, dbeta)
}

pub fn relu_forward(x: &[f64]) -> Vec<f64> {
    x.iter().map(|v| v.max(0.0)).collect()
}

/// dx = dy where the forward input was > 0, else 0.
pub fn relu_backward(x: &[f64], dy: &[f64]) -> Vec<f64> {
    x.iter().zip(dy).map(|(v, d)| if *v > 0.0 { *d } else { 0.0 }).collect()
}

pub fn pool_forward(s: &PoolShape, x: &[f64]) -> Vec<f64> {
    let (ho, wo) = (s.h / 2, s.w / 2);
    let mut y = vec![0.0; s.y_len()];
    for p in 0..s.planes {
        for oy in 0..ho {
            for ox in 0..wo {
                let at = |dy: usize, dx: usize| x[(p * s.h + 2 * oy + dy) * s.w + 2 * ox + dx];
                y[(p * ho + oy) * wo + ox] = 0.25 * (at(0, 0) + at(0, 1) + at(1, 0) + at(1, 1));
            }
        }
    }
    y
}

pub fn pool_backward(s: &PoolShape, dy: &[f64]) -> Vec<f64> {
    let (ho, wo) = (s.h / 2, s.w / 2);
    let mut dx = vec![0.0; s.x_len()];
    for p in 0..s.planes {
        for iy in 0..s.h {
            for ix in 0..s.w {
                dx[(p * s.h + iy) * s.w + ix] = 0.25 * dy[(p * ho + iy / 2) * wo + ix / 2];
            }
        }
    }
    dx
}

/// y[n,o] = b[o] + Σ_i x[n,i]·w[o,i]
pub fn linear_forward(s: &LinearShape, x: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; s.n * s.out];
    for n in 0..s.n {
        for o in 0..s.out {
            y[n * s.out + o] = b[o] + (0..s.inp).map(|i| x[n * s.inp + i] * w[o * s.inp + i]).sum::<f64>();
        }
    }
    y
}

pub fn linear_backward_input(s: &LinearShape, dy: &[f64], w: &[f64]) -> Vec<f64> {
    let mut dx = vec![0.0; s.n * s.inp];
    for n in 0..s.n {
        for i in 0..s.inp {
            dx[n * s.inp + i] = (0..s.out).map(|o| dy[n * s.out + o] * w[o * s.inp + i]).sum();
        }
    }
    dx
}

/// (dw, db)
pub fn linear_backward_params(s: &LinearShape, x: &[f64], dy: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut dw = vec![0.0; s.out * s.inp];
    let mut db = vec![0.0; s.out];
    for o in 0..s.out {
        for n in 0..s.n {
            let g = dy[n * s.out + o];
            db[o] += g;
            for i in 0..s.inp {
                dw[o * s.inp + i] += g * x[n * s.inp + i];
            }
        }
    }
    (dw, db)
}

/// Softmax cross-entropy with hard labels: (per-sample loss, scale·(softmax − onehot)).
pub fn softmax_xent(n: usize, k: usize, logits: &[f64], labels: &[u32], scale: f64) -> (Vec<f64>, Vec<f64>) {
    let mut loss = vec![0.0; n];
    let mut d = vec![0.0; n * k];
    for i in 0..n {
        let z = &logits[i * k..(i + 1) * k];
        let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        let label = labels[i] as usize;
        loss[i] = lse - z[label];
        for j in 0..k {
            d[i * k + j] = scale * ((z[j] - lse).exp() - if j == label { 1.0 } else { 0.0 });
        }
    }
    (loss, d)
}

/// CutMix's loss with two label sets: ratio·CE(labels) + (1 − ratio)·CE(labels_b), and its gradient × scale.
#[allow(clippy::too_many_arguments)]
pub fn softmax_xent_mix(n: usize, k: usize, logits: &[f64], labels: &[u32], labels_b: &[u32], ratio: f64, scale: f64) -> (Vec<f64>, Vec<f64>) {
    let (la, da) = softmax_xent(n, k, logits, labels, scale);
    let (lb, db) = softmax_xent(n, k, logits, labels_b, scale);
    let mix = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| ratio * x + (1.0 - ratio) * y).collect::<Vec<_>>();
    (mix(&la, &lb), mix(&da, &db))
}

/// torch.optim.SGD: (new param, new buf).
pub fn sgd(param: &[f64], grad: &[f64], buf: &[f64], lr: f64, momentum: f64, wd: f64) -> (Vec<f64>, Vec<f64>) {
    let mut p = param.to_vec();
    let mut b = buf.to_vec();
    for i in 0..p.len() {
        b[i] = momentum * b[i] + grad[i] + wd * param[i];
        p[i] -= lr * b[i];
    }
    (p, b)
}

/// DM matching: (per-class loss, gradient w.r.t. the synthetic features). Features are class-major.
pub fn dm_matching(classes: usize, per_real: usize, per_syn: usize, dim: usize, real: &[f64], syn: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut loss = vec![0.0; classes];
    let mut grad = vec![0.0; syn.len()];
    for c in 0..classes {
        for d in 0..dim {
            let mr = (0..per_real).map(|i| real[(c * per_real + i) * dim + d]).sum::<f64>() / per_real as f64;
            let ms = (0..per_syn).map(|j| syn[(c * per_syn + j) * dim + d]).sum::<f64>() / per_syn as f64;
            loss[c] += (mr - ms) * (mr - ms);
            for j in 0..per_syn {
                grad[(c * per_syn + j) * dim + d] = -2.0 * (mr - ms) / per_syn as f64;
            }
        }
    }
    (loss, grad)
}

/// c[m,n] = a[m,k]·b[k,n], row-major (twin of `nn::ops::matmul`, every kernel variant).
pub fn matmul(m: usize, n: usize, k: usize, a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
        }
    }
    c
}

/// Twin of `nn::ops::norm_relu_pool_forward`: the three reference ops in a row; returns (pooled, stats).
pub fn norm_relu_pool_forward(s: &NormShape, h: usize, w: usize, x: &[f64], gamma: &[f64], beta: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let (y, stats) = norm_forward(s, x, gamma, beta);
    (pool_forward(&PoolShape { planes: s.planes(), h, w }, &relu_forward(&y)), stats)
}

/// Row statistics of planes [n, c, h, w] (c a multiple of 4) as the GPU's whole-row conv kernels hand them to the
/// norm: [n, c/4, h, 2, 4] = per row the 4 channels' row means, then their Σ (y − mean)².
pub fn row_stats(n: usize, c: usize, h: usize, w: usize, y: &[f64]) -> Vec<f64> {
    assert!(c % 4 == 0 && y.len() == n * c * h * w);
    let mut out = vec![0.0; n * c * h * 2];
    for ni in 0..n {
        for ch in 0..c {
            for r in 0..h {
                let row = &y[((ni * c + ch) * h + r) * w..][..w];
                let mean = row.iter().sum::<f64>() / w as f64;
                let m2 = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>();
                let at = ((ni * (c / 4) + ch / 4) * h + r) * 8 + ch % 4;
                out[at] = mean;
                out[at + 4] = m2;
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The evaluation pool's layers (shaders/layers.wgsl).

/// Calls f(x index, w index, y index) for every tap of the convolution that reads inside the image (taps on the
/// zero padding contribute nothing), outputs in order and, within one output, ci, ky, kx in order. The forward
/// pass and both backward passes are this one loop with a different multiply-add.
fn kconv_taps(s: &KConvShape, mut f: impl FnMut(usize, usize, usize)) {
    let (ho, wo, k) = (s.ho(), s.wo(), s.k);
    for n in 0..s.n {
        for co in 0..s.cout {
            for oy in 0..ho {
                for ox in 0..wo {
                    let yi = ((n * s.cout + co) * ho + oy) * wo + ox;
                    for ci in 0..s.cin {
                        for ky in 0..k {
                            for kx in 0..k {
                                let (Some(iy), Some(ix)) = ((oy * s.stride + ky).checked_sub(s.pad), (ox * s.stride + kx).checked_sub(s.pad)) else { continue };
                                if iy < s.h && ix < s.w {
                                    f(((n * s.cin + ci) * s.h + iy) * s.w + ix, ((co * s.cin + ci) * k + ky) * k + kx, yi);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// y[n,co,oy,ox] = b[co] + Σ_ci,ky,kx w[co,ci,ky,kx] · x[n,ci,oy·stride+ky−pad,ox·stride+kx−pad]; no bias when `b` is None.
pub fn kconv_forward(s: &KConvShape, x: &[f64], w: &[f64], b: Option<&[f64]>) -> Vec<f64> {
    let plane = s.ho() * s.wo();
    let mut y: Vec<f64> = (0..s.y_len()).map(|i| b.map_or(0.0, |b| b[(i / plane) % s.cout])).collect();
    kconv_taps(s, |xi, wi, yi| y[yi] += w[wi] * x[xi]);
    y
}

/// dx: each output scatters dy·w back onto the inputs it read.
pub fn kconv_backward_input(s: &KConvShape, dy: &[f64], w: &[f64]) -> Vec<f64> {
    let mut dx = vec![0.0; s.x_len()];
    kconv_taps(s, |xi, wi, yi| dx[xi] += dy[yi] * w[wi]);
    dx
}

/// dw[co,ci,ky,kx] = Σ_n,oy,ox dy[n,co,oy,ox] · x[n,ci,oy·stride+ky−pad,ox·stride+kx−pad]
pub fn kconv_backward_weight(s: &KConvShape, x: &[f64], dy: &[f64]) -> Vec<f64> {
    let mut dw = vec![0.0; s.w_len()];
    kconv_taps(s, |xi, wi, yi| dw[wi] += dy[yi] * x[xi]);
    dw
}

/// db[co] = Σ_n,oy,ox dy[n,co,oy,ox]
pub fn kconv_backward_bias(s: &KConvShape, dy: &[f64]) -> Vec<f64> {
    let plane = s.ho() * s.wo();
    (0..s.cout)
        .map(|co| (0..s.n).map(|n| dy[(n * s.cout + co) * plane..][..plane].iter().sum::<f64>()).sum())
        .collect()
}

/// Position (row-major within the plane) of each window's first maximum: a later tap replaces it only when
/// strictly greater, as PyTorch's CPU max pooling records its indices.
fn maxpool_argmax(s: &WindowShape, x: &[f64]) -> Vec<usize> {
    let (ho, wo, k) = (s.ho(), s.wo(), s.k);
    let mut arg = vec![0; s.y_len()];
    for p in 0..s.planes {
        for oy in 0..ho {
            for ox in 0..wo {
                let mut best = oy * k * s.w + ox * k;
                for ky in 0..k {
                    for kx in 0..k {
                        let j = (oy * k + ky) * s.w + ox * k + kx;
                        if x[p * s.h * s.w + j] > x[p * s.h * s.w + best] {
                            best = j;
                        }
                    }
                }
                arg[(p * ho + oy) * wo + ox] = best;
            }
        }
    }
    arg
}

pub fn maxpool_forward(s: &WindowShape, x: &[f64]) -> Vec<f64> {
    let plane = (s.ho() * s.wo()).max(1);
    maxpool_argmax(s, x).iter().enumerate().map(|(i, &j)| x[(i / plane) * s.h * s.w + j]).collect()
}

/// dx = dy at each window's first maximum, 0 elsewhere.
pub fn maxpool_backward(s: &WindowShape, x: &[f64], dy: &[f64]) -> Vec<f64> {
    let plane = (s.ho() * s.wo()).max(1);
    let mut dx = vec![0.0; s.x_len()];
    for (i, &j) in maxpool_argmax(s, x).iter().enumerate() {
        dx[(i / plane) * s.h * s.w + j] += dy[i];
    }
    dx
}

pub fn avgpool_forward(s: &WindowShape, x: &[f64]) -> Vec<f64> {
    let (ho, wo, k) = (s.ho(), s.wo(), s.k);
    let mut y = vec![0.0; s.y_len()];
    for p in 0..s.planes {
        for oy in 0..ho {
            for ox in 0..wo {
                let mut acc = 0.0;
                for ky in 0..k {
                    for kx in 0..k {
                        acc += x[(p * s.h + oy * k + ky) * s.w + ox * k + kx];
                    }
                }
                y[(p * ho + oy) * wo + ox] = acc / (k * k) as f64;
            }
        }
    }
    y
}

/// dx = dy/K² over each window, 0 on rows and columns no window covers.
pub fn avgpool_backward(s: &WindowShape, dy: &[f64]) -> Vec<f64> {
    let (ho, wo, k) = (s.ho(), s.wo(), s.k);
    let mut dx = vec![0.0; s.x_len()];
    for p in 0..s.planes {
        for iy in 0..ho * k {
            for ix in 0..wo * k {
                dx[(p * s.h + iy) * s.w + ix] = dy[(p * ho + iy / k) * wo + ix / k] / (k * k) as f64;
            }
        }
    }
    dx
}

/// ResNet's shortcut join y = a + b (its backward hands dy to both inputs).
pub fn add(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

/// `ops::check_finite`: health[0] = min(health[0], health[1]) if any value of `x` is NaN or infinite.
pub fn check_finite(x: &[f64], health: [u32; 2]) -> [u32; 2] {
    let bad = x.iter().any(|v| !(*v as f32).is_finite());
    [if bad { health[0].min(health[1]) } else { health[0] }, health[1]]
}
