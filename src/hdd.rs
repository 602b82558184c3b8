//! hdd: HDD's hyperbolic term (method.md §1.3–1.6) — features mapped onto the Lorentz model, Law centroids per class,
//! the geodesic distance between a class's real and synthetic centroids, its gradient — on the CPU (the reference that
//! follows geoopt literally in f64, and an f64 mirror of the GPU kernels' stable formulas with their analytic
//! gradient) and on the GPU (`gpu`, `shaders/hdd.wgsl`). `HddParams` are the term's settings (k, clamp, map, weights);
//! λ multiplies it in `distill::matching`.
//!
//! Notation: geoopt's k (hyperboloid ⟨x,x⟩_L = −k), features v ∈ R^D per sample, hyperboloid point
//! x = (t, s). A class's samples give T = Σ t_i, S = Σ s_i; the Law centroid's Klein coordinate is S/T.
//!
//! Why not the naive Klein form in f32: with the radius clamp on, every sample sits at t = √k·cosh 10, so for
//! one synthetic image per class |S/T| = tanh 10 rounds to 1.0 in f32 and 1 − |κ|² vanishes. We never form
//! 1 − |κ|² by subtraction. Instead −⟨A,A⟩ = T² − |S|² is assembled from non-negative pieces:
//!   T² − |S|² = (T − R)(T + R) + R²·Σ_i w_i |u_i − ū|²,  T − R = Σ_i k/(t_i + r_i),
//! with r_i = |s_i|, R = Σ r_i, u_i = s_i/r_i, w_i = r_i/R, ū = S/R (the last term is R² − |S|², written as a
//! weighted variance). Then 1 − |κ|² = (T² − |S|²)/T² to full relative precision.

/// Parity default of the radius clamp (geoopt's EXP_MAX_NORM in the HDD code).
pub const EXP_MAX_NORM: f64 = 10.0;
/// Floors used by geoopt in the HDD code.
pub const NORM_FLOOR_SQ: f64 = 1e-8;
pub const ACOSH_FLOOR: f64 = 1e-15;

/// How Euclidean features reach the hyperboloid (method.md §1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LorentzMap {
    /// expmap0 then projx (DM+HDD; IDM+HDD on CIFAR-10, Fashion-MNIST, SVHN).
    Expmap,
    /// projx of (0, v) only (IDM+HDD on CIFAR-100 and Tiny ImageNet).
    Projx,
}

impl std::str::FromStr for LorentzMap {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "expmap" => Ok(LorentzMap::Expmap),
            "projx" => Ok(LorentzMap::Projx),
            o => Err(format!("'{o}': use expmap or projx")),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HddParams {
    /// geoopt's k > 0 (curvature −1/k).
    pub k: f64,
    /// Clamp of the geodesic radius parameter in expmap0 (Some(10) for parity; None = off).
    pub clamp: Option<f64>,
    pub map: LorentzMap,
    /// The paper's hierarchical weighting (method.md §6.6; not in the authors' code, off by default): each sample
    /// enters its class's Law centroid with weight w = τ/sinh τ, τ = its geodesic distance from the origin / √k.
    /// Under the radius clamp every τ is the same, so the weights cancel.
    pub weighted: bool,
}

impl HddParams {
    /// DM+HDD's released setting: k = 1, clamp 10, expmap0, no weights.
    pub fn dm_parity() -> Self {
        HddParams { k: 1.0, clamp: Some(EXP_MAX_NORM), map: LorentzMap::Expmap, weighted: false }
    }
}

/// w(τ) = τ/sinh τ and dw/dτ, stable at both ends (series near 0; exponentials instead of sinh for large τ).
pub fn hierarchy_weight(tau: f64) -> (f64, f64) {
    if tau < 0.05 {
        let t2 = tau * tau;
        (1.0 - t2 / 6.0 + 7.0 * t2 * t2 / 360.0 - 31.0 * t2 * t2 * t2 / 15120.0, -tau / 3.0 + 7.0 * tau * t2 / 90.0 - 31.0 * tau * t2 * t2 / 2520.0)
    } else {
        let e2 = (-2.0 * tau).exp();
        let w = 2.0 * tau * (-tau).exp() / (1.0 - e2);
        (w, w * (1.0 / tau - (1.0 + e2) / (1.0 - e2)))
    }
}

/// geoopt's definitions, literally, in f64. Slow and clear: the ground truth of the tests.
pub mod geoopt {
    use super::*;

    /// Lorentz (Minkowski) inner product −x0·y0 + Σ xs·ys.
    pub fn inner(x: &[f64], y: &[f64]) -> f64 {
        -x[0] * y[0] + x[1..].iter().zip(&y[1..]).map(|(a, b)| a * b).sum::<f64>()
    }

    /// expmap at the origin of (0, v): n = √max(‖v‖², 1e-8), t = min(n/√k, clamp), x = (√k cosh t, √k sinh t · v/n).
    pub fn expmap0(v: &[f64], h: &HddParams) -> Vec<f64> {
        let sk = h.k.sqrt();
        let n = v.iter().map(|a| a * a).sum::<f64>().max(NORM_FLOOR_SQ).sqrt();
        let mut t = n / sk;
        if let Some(c) = h.clamp {
            t = t.min(c);
        }
        let mut x = Vec::with_capacity(v.len() + 1);
        x.push(sk * t.cosh());
        x.extend(v.iter().map(|a| sk * t.sinh() * a / n));
        x
    }

    /// projx: recompute the time coordinate so that ⟨x,x⟩ = −k.
    pub fn projx(x: &mut [f64], k: f64) {
        x[0] = (k + x[1..].iter().map(|a| a * a).sum::<f64>()).sqrt();
    }

    /// Feature → hyperboloid point by the chosen map.
    pub fn to_hyperboloid(v: &[f64], h: &HddParams) -> Vec<f64> {
        let mut x = match h.map {
            LorentzMap::Expmap => expmap0(v, h),
            LorentzMap::Projx => std::iter::once(0.0).chain(v.iter().copied()).collect(),
        };
        projx(&mut x, h.k);
        x
    }

    /// Law's Lorentzian centroid: √k · a / √max(|⟨a,a⟩|, 1e-8), a = mean of the points.
    pub fn centroid(points: &[Vec<f64>], k: f64) -> Vec<f64> {
        let dim = points[0].len();
        let mut a = vec![0.0; dim];
        for p in points {
            for (ai, pi) in a.iter_mut().zip(p) {
                *ai += pi / points.len() as f64;
            }
        }
        let denom = inner(&a, &a).abs().max(NORM_FLOOR_SQ).sqrt();
        a.iter().map(|v| k.sqrt() * v / denom).collect()
    }

    /// The weighted Law centroid: √k · a / √max(|⟨a,a⟩|, 1e-8), a = Σ w_i x_i / Σ w_i.
    pub fn centroid_weighted(points: &[Vec<f64>], weights: &[f64], k: f64) -> Vec<f64> {
        let total: f64 = weights.iter().sum();
        let mut a = vec![0.0; points[0].len()];
        for (p, w) in points.iter().zip(weights) {
            let share = w / total; // exactly 1 for a lone point, so its centroid is the point itself
            for (ai, pi) in a.iter_mut().zip(p) {
                *ai += share * pi;
            }
        }
        let denom = inner(&a, &a).abs().max(NORM_FLOOR_SQ).sqrt();
        a.iter().map(|v| k.sqrt() * v / denom).collect()
    }

    /// The hierarchical weight of a hyperboloid point: τ/sinh τ with τ = d(origin, x)/√k = arcosh(x0/√k).
    pub fn hierarchy_weight_of(x: &[f64], k: f64) -> f64 {
        let tau = (x[0] / k.sqrt()).max(1.0).acosh();
        if tau == 0.0 { 1.0 } else { tau / tau.sinh() }
    }

    /// geoopt's arcosh: log(z + √max(z² − 1, 1e-15)).
    pub fn arcosh(z: f64) -> f64 {
        (z + (z * z - 1.0).max(ACOSH_FLOOR).sqrt()).ln()
    }

    /// Geodesic distance √k · arcosh(−⟨x,y⟩/k).
    pub fn dist(x: &[f64], y: &[f64], k: f64) -> f64 {
        k.sqrt() * arcosh(-inner(x, y) / k)
    }

    /// Distance between the centroids of two feature sets (rows of `dim` values).
    pub fn class_distance(real: &[f64], syn: &[f64], dim: usize, h: &HddParams) -> f64 {
        let pts = |f: &[f64]| f.chunks_exact(dim).map(|v| to_hyperboloid(v, h)).collect::<Vec<_>>();
        let c = |p: Vec<Vec<f64>>| {
            if h.weighted {
                let w: Vec<f64> = p.iter().map(|x| hierarchy_weight_of(x, h.k)).collect();
                centroid_weighted(&p, &w, h.k)
            } else {
                centroid(&p, h.k)
            }
        };
        dist(&c(pts(real)), &c(pts(syn)), h.k)
    }
}

/// Per-sample quantities of the map, as the `sample_stats` kernel stores them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleStats {
    /// s = f·v (the hyperboloid space part)
    pub f: f64,
    /// time coordinate t = √(k + r²)
    pub t: f64,
    /// r = |s|
    pub r: f64,
    /// ∂|s|/∂‖v‖: cosh τ for the expmap (0 when the clamp is active or ‖v‖² is under the floor), 1 for projx
    pub e: f64,
    /// ‖v‖
    pub nv: f64,
    /// hierarchical weight w (1 when off) and ∂w/∂‖v‖
    pub w: f64,
    pub dw: f64,
}

pub fn sample_stats(v: &[f64], h: &HddParams) -> SampleStats {
    let nv2: f64 = v.iter().map(|a| a * a).sum();
    let nv = nv2.sqrt();
    let sk = h.k.sqrt();
    let (f, e) = match h.map {
        // s = v: ∂s/∂v = I = f·P + e·uuᵀ with f = e = 1
        LorentzMap::Projx => (1.0, 1.0),
        LorentzMap::Expmap => {
            let n = nv2.max(NORM_FLOOR_SQ).sqrt();
            let raw = n / sk;
            let clamped = h.clamp.is_some_and(|c| raw > c);
            let tau = if clamped { h.clamp.unwrap() } else { raw };
            let tiny = nv2 < NORM_FLOOR_SQ; // n is then a constant: no radial derivative
            let e = if clamped || tiny { 0.0 } else { tau.cosh() };
            (sk * tau.sinh() / n, e)
        }
    };
    let r = f * nv;
    let t = (h.k + r * r).sqrt();
    // the point's geodesic radius / √k is τ = asinh(r/√k); dτ/d‖v‖ = (∂r/∂‖v‖)/t = e/t
    let (w, dw) = if h.weighted {
        let (w, dwdtau) = hierarchy_weight((r / sk).asinh());
        (w, dwdtau * e / t)
    } else {
        (1.0, 0.0)
    };
    SampleStats { f, t, r, e, nv, w, dw }
}

/// A class's sums: S (vector), T, R, T − R (stable), and Q = T² − |S|² (stable, see the module comment).
#[derive(Clone, Debug, PartialEq)]
pub struct ClassSums {
    pub s: Vec<f64>,
    pub t: f64,
    pub q: f64,
}

pub fn class_sums(feats: &[f64], dim: usize, h: &HddParams) -> (ClassSums, Vec<SampleStats>) {
    let stats: Vec<SampleStats> = feats.chunks_exact(dim).map(|v| sample_stats(v, h)).collect();
    let mut s = vec![0.0; dim];
    let (mut t, mut r, mut t_minus_r) = (0.0, 0.0, 0.0);
    // each sample counts with its weight w_i (1 unless h.weighted): S = Σ w s, T = Σ w t, R = Σ w r
    for (v, st) in feats.chunks_exact(dim).zip(&stats) {
        for (si, vi) in s.iter_mut().zip(v) {
            *si += st.w * st.f * vi;
        }
        t += st.w * st.t;
        r += st.w * st.r;
        t_minus_r += st.w * h.k / (st.t + st.r);
    }
    // R² − |S|² as Σ_i w_i r_i·R·|u_i − ū|², ū = S/R
    let mut spread = 0.0;
    if r > 0.0 {
        for (v, st) in feats.chunks_exact(dim).zip(&stats) {
            if st.nv > 0.0 {
                let d2: f64 = v.iter().zip(&s).map(|(vi, si)| (vi / st.nv - si / r).powi(2)).sum();
                spread += st.w * st.r * r * d2;
            }
        }
    }
    (ClassSums { s, t, q: t_minus_r * (t + r) + spread }, stats)
}

/// Distance between the centroids of real and synthetic features, and ∂d/∂(each synthetic feature),
/// computed with the GPU kernels' formulas (the real side gets no gradient, as in the HDD code).
pub fn class_distance_grad(real: &[f64], syn: &[f64], dim: usize, h: &HddParams) -> (f64, Vec<f64>) {
    let (cr, _) = class_sums(real, dim, h);
    let (cs, stats) = class_sums(syn, dim, h);
    let c = distance_coefficients(&cr, &cs, h.k);
    let mut grad = vec![0.0; syn.len()];
    for (j, (v, st)) in syn.chunks_exact(dim).zip(&stats).enumerate() {
        let g = &mut grad[j * dim..(j + 1) * dim];
        syn_sample_grad(v, st, &cr, &cs, &c, h, g);
    }
    (c.d, grad)
}

/// What the `class_distance` kernel computes per class.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Coefficients {
    pub d: f64,
    /// g_s = c_delta·δ + c_b·b is ∂d/∂S_s, with δ = b − a, a = S_r/T_r, b = S_s/T_s
    pub c_delta: f64,
    pub c_b: f64,
    /// ∂d/∂T_s
    pub g_t: f64,
}

pub fn distance_coefficients(cr: &ClassSums, cs: &ClassSums, k: f64) -> Coefficients {
    let (tr, ts) = (cr.t, cs.t);
    let (mut dd, mut da, mut db_, mut aa) = (0.0, 0.0, 0.0, 0.0); // |δ|², δ·a, δ·b, |a|²
    for (sr, ss) in cr.s.iter().zip(&cs.s) {
        let (a, b) = (sr / tr, ss / ts);
        let delta = b - a;
        dd += delta * delta;
        da += delta * a;
        db_ += delta * b;
        aa += a * a;
    }
    let wa = cr.q / (tr * tr); // 1 − |a|²
    let wb = cs.q / (ts * ts); // 1 − |b|²
    let p2 = if aa > 0.0 { da * da / aa } else { 0.0 };
    let num = p2 + wa * (dd - p2).max(0.0);
    let w2 = num / (wa * wb); // sinh²(d/√k) = q² − 1
    let w = w2.sqrt();
    let d = k.sqrt() * w.asinh();
    // dθ/dq = 1/√(q² − 1); geoopt's floor makes it 1/(q + √1e-15) when q² − 1 < 1e-15
    let q = (1.0 + w2).sqrt();
    let theta = if w2 >= ACOSH_FLOOR { 1.0 / w } else { 1.0 / (q + ACOSH_FLOOR.sqrt()) };
    // ∂q/∂b = [(1 − |b|²)δ + (δ·b) b] / [(1 − |a|²)^½ (1 − |b|²)^{3/2}];  ∂b/∂S = 1/T_s
    let base = k.sqrt() * theta / (wa.sqrt() * wb.sqrt() * ts);
    let c_delta = base;
    let c_b = base * db_ / wb;
    // ∂d/∂T_s = −(b·g_s)·… = −(c_delta·(δ·b) + c_b·|b|²), |b|² = 1 − wb
    let g_t = -(c_delta * db_ + c_b * (1.0 - wb));
    Coefficients { d, c_delta, c_b, g_t }
}

/// ∂d/∂v_j for one synthetic sample (the `syn_grad` kernel): ∂s/∂v = f·P_j + e·u_j u_jᵀ, P_j = I − u_j u_jᵀ.
/// The sample enters the sums as (w s_j, w t_j). With G = g_s + g_t·s_j/t_j (∂d/∂s_j per unit weight), the
/// tangential part is w·f·P_j g_s, where P_j b is computed as P_j (S − w s_j)/T_s; the radial part u·G is written
/// so that nothing cancels when one sample dominates its class (one image per class, centroid near the boundary):
///   u·G = c_δ (u·δ − (δ·b)·r/t) + c_b (u·(S − w s_j)/T + r(w t − T)/(T t) + (1 − |b|²)·r/t).
/// With weights, the weight's own dependence adds ψ_j·(∂w/∂‖v‖)·u, ψ_j = ∂d/∂w_j = g_s·(s_j − b t_j).
pub fn syn_sample_grad(v: &[f64], st: &SampleStats, cr: &ClassSums, cs: &ClassSums, c: &Coefficients, _h: &HddParams, out: &mut [f64]) {
    let (tr, ts) = (cr.t, cs.t);
    let w = st.w;
    if st.nv * st.nv < NORM_FLOOR_SQ {
        // n is floored to a constant: s = f·v with f constant, ∂s/∂v = f·I, G = g_s + g_t·f·v/t (w is constant too)
        for (i, o) in out.iter_mut().enumerate() {
            let (a, b) = (cr.s[i] / tr, cs.s[i] / ts);
            let gs = c.c_delta * (b - a) + c.c_b * b;
            *o = w * st.f * (gs + c.g_t * st.f * v[i] / st.t);
        }
        return;
    }
    let u = |i: usize| v[i] / st.nv;
    let (mut ud, mut urest, mut db, mut psi) = (0.0, 0.0, 0.0, 0.0); // u·δ, u·(S − w s_j), δ·b, ψ_j
    for i in 0..v.len() {
        let (a, b) = (cr.s[i] / tr, cs.s[i] / ts);
        ud += u(i) * (b - a);
        urest += u(i) * (cs.s[i] - w * st.f * v[i]);
        db += (b - a) * b;
        // s_j − b t_j = (s_j (T − w t_j) − (S − w s_j) t_j)/T: both brackets vanish exactly for a lone sample
        psi += (c.c_delta * (b - a) + c.c_b * b) * (st.f * v[i] * (ts - w * st.t) - (cs.s[i] - w * st.f * v[i]) * st.t) / ts;
    }
    let wb = cs.q / (ts * ts);
    let radial = c.c_delta * (ud - db * st.r / st.t) + c.c_b * (urest / ts + st.r * (w * st.t - ts) / (ts * st.t) + wb * st.r / st.t);
    for (i, o) in out.iter_mut().enumerate() {
        let (a, b) = (cr.s[i] / tr, cs.s[i] / ts);
        let p_delta = (b - a) - u(i) * ud;
        let p_b = ((cs.s[i] - w * st.f * v[i]) - u(i) * urest) / ts;
        *o = w * (st.f * (c.c_delta * p_delta + c.c_b * p_b) + st.e * radial * u(i)) + psi * st.dw * u(i);
    }
}

/// The GPU path: buffers and dispatches of `shaders/hdd.wgsl`.
pub mod gpu {
    use super::{HddParams, LorentzMap};
    use crate::gpu::{Gpu, GpuError};
    use crate::shaders;
    use crate::shapes::MatchShape;
    use wgpu::{Buffer, CommandEncoder};

    /// Scratch of one HDD evaluation, allocated once per shape and reused.
    pub struct HddBuffers {
        stats_r: Buffer,
        sums_r: Buffer,
        stats_s: Buffer,
        sums_s: Buffer,
        /// [classes, 8] = (d, c_δ, c_b, g_t, 1 − |b|², …) per class; d is the plain geodesic distance (without λ).
        pub coef: Buffer,
    }

    impl HddBuffers {
        pub fn new(gpu: &Gpu, s: &MatchShape) -> Result<Self, GpuError> {
            Ok(HddBuffers {
                stats_r: gpu.zeros("hdd_stats_r", s.classes * s.per_real * 8)?,
                sums_r: gpu.zeros("hdd_sums_r", s.classes * (s.dim + 4))?,
                stats_s: gpu.zeros("hdd_stats_s", s.classes * s.per_syn * 8)?,
                sums_s: gpu.zeros("hdd_sums_s", s.classes * (s.dim + 4))?,
                coef: gpu.zeros("hdd_coef", s.classes * COEF_STRIDE)?,
            })
        }
    }

    fn consts(s: &MatchShape, h: &HddParams, per: usize, lambda: f32) -> Vec<(&'static str, f64)> {
        vec![
            ("C", s.classes as f64),
            ("D", s.dim as f64),
            ("PER", per as f64),
            ("PER_R", s.per_real as f64),
            ("PER_S", s.per_syn as f64),
            ("K", h.k),
            ("CLAMP", h.clamp.unwrap_or(0.0)),
            ("MAP", if h.map == LorentzMap::Expmap { 0.0 } else { 1.0 }),
            ("WEIGHTED", if h.weighted { 1.0 } else { 0.0 }),
            ("LAMBDA", lambda as f64),
        ]
    }

    /// Record the whole HDD term: per-class distances into `bufs.coef` and ∂(λ·Σ_c d_c)/∂syn into `grad`
    /// [classes·per_syn, dim]. Nothing is read back.
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        gpu: &Gpu,
        enc: &mut CommandEncoder,
        s: &MatchShape,
        h: &HddParams,
        lambda: f32,
        real: &Buffer,
        syn: &Buffer,
        bufs: &HddBuffers,
        grad: &Buffer,
    ) {
        let sh = &shaders::HDD;
        for (feat, stats, sums, per) in [(real, &bufs.stats_r, &bufs.sums_r, s.per_real), (syn, &bufs.stats_s, &bufs.sums_s, s.per_syn)] {
            let c = consts(s, h, per, lambda);
            let n = (s.classes * per) as u64;
            gpu.dispatch(enc, sh, "sample_stats", &c, &[feat, stats], n);
            gpu.dispatch(enc, sh, "class_sums", &c, &[feat, stats, sums], (s.classes * s.dim) as u64);
            gpu.dispatch(enc, sh, "sample_spread", &c, &[feat, stats, sums], n);
        }
        let c = consts(s, h, s.per_syn, lambda);
        gpu.dispatch(enc, sh, "class_distance", &c, &[&bufs.sums_r, &bufs.stats_r, &bufs.sums_s, &bufs.stats_s, &bufs.coef], s.classes as u64);
        gpu.dispatch(enc, sh, "syn_grad", &c, &[syn, &bufs.stats_s, &bufs.sums_r, &bufs.sums_s, &bufs.coef, grad], (s.classes * s.per_syn) as u64);
    }

    /// Read the per-class distances back (only when they are displayed or logged).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_distances(gpu: &Gpu, bufs: &HddBuffers, classes: usize) -> Result<Vec<f32>, GpuError> {
        Ok(distances_from(&gpu.read_f32(&bufs.coef, classes * COEF_STRIDE)?))
    }

    /// What the kernels computed of the hyperbolic geometry, for a trace (f64, assembled from the f32 they wrote).
    #[derive(Clone, Debug, PartialEq)]
    pub struct Geometry {
        /// Each sample's hyperboloid point (t, f·v) [classes·per, dim + 1]: t and f are the `sample_stats` kernel's;
        /// the kernels never store the point itself.
        pub real_points: Vec<f64>,
        pub syn_points: Vec<f64>,
        /// Law's centroid per class [classes, dim + 1]: √k·(T, S)/√Q from the kernels' sums, Q = T² − |S|² assembled
        /// as they assemble it ((T − R)(T + R) + Σ spread).
        pub real_centroids: Vec<f64>,
        pub syn_centroids: Vec<f64>,
        /// The geodesic distance per class (without λ), as `class_distance` wrote it.
        pub distances: Vec<f64>,
    }

    /// Read back what the last `encode` computed on `real` and `syn` features (given here as read back).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_geometry(gpu: &Gpu, s: &MatchShape, h: &HddParams, bufs: &HddBuffers, real: &[f32], syn: &[f32]) -> Result<Geometry, GpuError> {
        let (c, d) = (s.classes, s.dim);
        let raw = gpu.read_many(&[
            (&bufs.stats_r, c * s.per_real * 8),
            (&bufs.sums_r, c * (d + 4)),
            (&bufs.stats_s, c * s.per_syn * 8),
            (&bufs.sums_s, c * (d + 4)),
            (&bufs.coef, c * COEF_STRIDE),
        ])?;
        let side = |feat: &[f32], stats: &[f32], sums: &[f32], per: usize| {
            let mut points = Vec::with_capacity(c * per * (d + 1));
            for (v, st) in feat.chunks_exact(d).zip(stats.chunks_exact(8)) {
                points.push(st[1] as f64);
                points.extend(v.iter().map(|&x| st[0] as f64 * x as f64));
            }
            let mut centroids = Vec::with_capacity(c * (d + 1));
            for (k, row) in sums.chunks_exact(d + 4).enumerate() {
                let (t, r, t_minus_r) = (row[d] as f64, row[d + 1] as f64, row[d + 2] as f64);
                let spread: f64 = stats[k * per * 8..(k + 1) * per * 8].chunks_exact(8).map(|st| st[5] as f64).sum();
                let scale = h.k.sqrt() / (t_minus_r * (t + r) + spread).max(super::NORM_FLOOR_SQ).sqrt();
                centroids.push(t * scale);
                centroids.extend(row[..d].iter().map(|&x| x as f64 * scale));
            }
            (points, centroids)
        };
        let (real_points, real_centroids) = side(real, &raw[0], &raw[1], s.per_real);
        let (syn_points, syn_centroids) = side(syn, &raw[2], &raw[3], s.per_syn);
        let distances = distances_from(&raw[4]).into_iter().map(f64::from).collect();
        Ok(Geometry { real_points, syn_points, real_centroids, syn_centroids, distances })
    }

    /// f32 per class in `HddBuffers::coef`; the first is the class's geodesic distance.
    pub const COEF_STRIDE: usize = 8;

    /// The per-class distances in a read-back copy of `HddBuffers::coef`.
    pub fn distances_from(coef: &[f32]) -> Vec<f32> {
        coef.chunks_exact(COEF_STRIDE).map(|c| c[0]).collect()
    }
}
