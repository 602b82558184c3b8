// hdd.wgsl — HDD's hyperbolic term on the GPU: map features to the hyperboloid (expmap0 with the radius
// clamp, or projx), Law centroids per class, the geodesic distance between the real and synthetic centroid
// of each class, and its gradient with respect to every synthetic feature. Formulas and why they avoid
// 1 − |κ|²: src/hdd.rs (its f64 mirror is this file's reference).
// Layout: features [C·PER, D], the PER samples of class c contiguous; sums [C, D + 4] = (S, T, R, T − R).
//
// entry point     bindings (group 0, in order)                                          invocations
// sample_stats    0 feat, 1 stats (rw) [N, 8] = (f, t, r, e, ‖v‖, spread, w, ∂w/∂‖v‖)         N = C·PER
// class_sums      0 feat, 1 stats, 2 sums (rw)                                              C·D (d = 0 also writes T, R, T − R)
// sample_spread   0 feat, 1 stats (rw), 2 sums                                              N: spread_i = r_i·R·|u_i − S/R|²
// class_distance  0 sums_r, 1 stats_r, 2 sums_s, 3 stats_s, 4 coef (rw) [C, 8]            C: (d, c_δ, c_b, g_t, 1 − |b|², 0…), gradient terms × LAMBDA
// syn_grad        0 feat_s, 1 stats_s, 2 sums_r, 3 sums_s, 4 coef, 5 grad (rw) [N_s, D]     N_s = C·PER_S: ∂(LAMBDA·d_c)/∂v_j
// Workgroup 64. The real and the synthetic side each run sample_stats, class_sums, sample_spread with their
// own PER. The real side gets no gradient (detached, as in the HDD code).
// WEIGHTED = 1: the paper's hierarchical weights, each sample entering the sums as (w s, w t) with
// w = τ/sinh τ, τ = asinh(r/√k) its geodesic radius / √k (WEIGHTED = 0: w = 1, the authors' code).

override C: u32;
override D: u32;
override PER: u32 = 1u;     // samples per class of the side being processed (stats, sums, spread)
override PER_R: u32 = 1u;   // class_distance
override PER_S: u32 = 1u;   // class_distance, syn_grad
override K: f32 = 1.0;
override CLAMP: f32 = 10.0; // ≤ 0: no clamp
override MAP: u32 = 0u;     // 0 = expmap0 + projx, 1 = projx only
override LAMBDA: f32 = 1.0;
override WEIGHTED: u32 = 0u;

const NORM_FLOOR_SQ: f32 = 1e-8;
const ACOSH_FLOOR: f32 = 1e-15;
const STATS: u32 = 8u;

@group(0) @binding(0) var<storage, read> feat: array<f32>;
@group(0) @binding(1) var<storage, read_write> stats_rw: array<f32>;
@group(0) @binding(1) var<storage, read> stats: array<f32>;
@group(0) @binding(2) var<storage, read_write> sums_rw: array<f32>;
@group(0) @binding(2) var<storage, read> sums: array<f32>;

// class_distance
@group(0) @binding(0) var<storage, read> cd_sums_r: array<f32>;
@group(0) @binding(1) var<storage, read> cd_stats_r: array<f32>;
@group(0) @binding(2) var<storage, read> cd_sums_s: array<f32>;
@group(0) @binding(3) var<storage, read> cd_stats_s: array<f32>;
@group(0) @binding(4) var<storage, read_write> coef_rw: array<f32>;

// syn_grad (feat at 0, stats at 1)
@group(0) @binding(2) var<storage, read> sg_sums_r: array<f32>;
@group(0) @binding(3) var<storage, read> sg_sums_s: array<f32>;
@group(0) @binding(4) var<storage, read> coef: array<f32>;
@group(0) @binding(5) var<storage, read_write> grad: array<f32>;

fn row(c: u32) -> u32 { return c * (D + 4u); }

// (w, dw/dτ) of w(τ) = τ/sinh τ: a series near 0, exponentials instead of sinh (no overflow) elsewhere
fn hierarchy_weight(tau: f32) -> vec2<f32> {
    if (tau < 0.05) {
        let t2 = tau * tau;
        return vec2<f32>(1.0 - t2 / 6.0 + 7.0 * t2 * t2 / 360.0 - 31.0 * t2 * t2 * t2 / 15120.0,
                         -tau / 3.0 + 7.0 * tau * t2 / 90.0 - 31.0 * tau * t2 * t2 / 2520.0);
    }
    let e2 = exp(-2.0 * tau);
    let w = 2.0 * tau * exp(-tau) / (1.0 - e2);
    return vec2<f32>(w, w * (1.0 / tau - (1.0 + e2) / (1.0 - e2)));
}

@compute @workgroup_size(64)
fn sample_stats(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= C * PER) { return; }
    var nv2 = 0.0;
    for (var d = 0u; d < D; d++) { let v = feat[i * D + d]; nv2 += v * v; }
    let nv = sqrt(nv2);
    let sk = sqrt(K);
    var f = 1.0;  // projx: s = v, ∂s/∂v = I = f·P + e·uuᵀ with f = e = 1
    var e = 1.0;
    if (MAP == 0u) {
        let n = sqrt(max(nv2, NORM_FLOOR_SQ));
        let raw = n / sk;
        let clamped = CLAMP > 0.0 && raw > CLAMP;
        let tau = select(raw, CLAMP, clamped);
        f = sk * sinh(tau) / n;
        e = select(cosh(tau), 0.0, clamped || nv2 < NORM_FLOOR_SQ);
    }
    let r = f * nv;
    let t = sqrt(K + r * r);
    var w = 1.0;
    var dw = 0.0;
    if (WEIGHTED != 0u) {
        let x = r / sk;
        let hw = hierarchy_weight(log(x + sqrt(x * x + 1.0)));  // τ = asinh(r/√k)
        w = hw.x;
        dw = hw.y * e / t;                                      // dτ/d‖v‖ = (∂r/∂‖v‖)/t
    }
    let b = i * STATS;
    stats_rw[b] = f;
    stats_rw[b + 1u] = t;
    stats_rw[b + 2u] = r;
    stats_rw[b + 3u] = e;
    stats_rw[b + 4u] = nv;
    stats_rw[b + 5u] = 0.0;
    stats_rw[b + 6u] = w;
    stats_rw[b + 7u] = dw;
}

@compute @workgroup_size(64)
fn class_sums(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= C * D) { return; }
    let d = id % D;
    let c = id / D;
    // Kahan summation: S is differenced against the other side's centroid, so its rounding matters.
    var s = 0.0;
    var comp = 0.0;
    for (var j = 0u; j < PER; j++) {
        let i = c * PER + j;
        let y = stats[i * STATS + 6u] * stats[i * STATS] * feat[i * D + d] - comp;
        let t = s + y;
        comp = (t - s) - y;
        s = t;
    }
    sums_rw[row(c) + d] = s;
    if (d == 0u) {
        var tt = 0.0;
        var rr = 0.0;
        var tmr = 0.0;
        for (var j = 0u; j < PER; j++) {
            let b = (c * PER + j) * STATS;
            let w = stats[b + 6u];
            tt += w * stats[b + 1u];
            rr += w * stats[b + 2u];
            tmr += w * K / (stats[b + 1u] + stats[b + 2u]);
        }
        sums_rw[row(c) + D] = tt;
        sums_rw[row(c) + D + 1u] = rr;
        sums_rw[row(c) + D + 2u] = tmr;
    }
}

@compute @workgroup_size(64)
fn sample_spread(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= C * PER) { return; }
    let c = i / PER;
    let b = i * STATS;
    let nv = stats_rw[b + 4u];
    let big_r = sums[row(c) + D + 1u];
    var acc = 0.0;
    if (nv > 0.0 && big_r > 0.0) {
        for (var d = 0u; d < D; d++) {
            let x = feat[i * D + d] / nv - sums[row(c) + d] / big_r;
            acc += x * x;
        }
    }
    stats_rw[b + 5u] = stats_rw[b + 6u] * stats_rw[b + 2u] * big_r * acc;
}

// T² − |S|² for class c, assembled from non-negative pieces (see src/hdd.rs)
fn q_of(c: u32, t: f32, r: f32, tmr: f32, side_s: bool) -> f32 {
    var spread = 0.0;
    if (side_s) {
        for (var j = 0u; j < PER_S; j++) { spread += cd_stats_s[(c * PER_S + j) * STATS + 5u]; }
    } else {
        for (var j = 0u; j < PER_R; j++) { spread += cd_stats_r[(c * PER_R + j) * STATS + 5u]; }
    }
    return tmr * (t + r) + spread;
}

@compute @workgroup_size(64)
fn class_distance(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = linear_id(gid, nwg);
    if (c >= C) { return; }
    let tr = cd_sums_r[row(c) + D];
    let ts = cd_sums_s[row(c) + D];
    var dd = 0.0;
    var da = 0.0;
    var db = 0.0;
    var aa = 0.0;
    for (var d = 0u; d < D; d++) {
        let a = cd_sums_r[row(c) + d] / tr;
        let b = cd_sums_s[row(c) + d] / ts;
        let delta = b - a;
        dd += delta * delta;
        da += delta * a;
        db += delta * b;
        aa += a * a;
    }
    let qr = q_of(c, tr, cd_sums_r[row(c) + D + 1u], cd_sums_r[row(c) + D + 2u], false);
    let qs = q_of(c, ts, cd_sums_s[row(c) + D + 1u], cd_sums_s[row(c) + D + 2u], true);
    let wa = qr / (tr * tr);   // 1 − |a|²
    let wb = qs / (ts * ts);   // 1 − |b|²
    let p2 = select(0.0, da * da / aa, aa > 0.0);
    let num = p2 + wa * max(dd - p2, 0.0);
    let w2 = num / (wa * wb);  // sinh²(d/√k)
    let w = sqrt(w2);
    let sk = sqrt(K);
    let dist = sk * log(w + sqrt(w2 + 1.0)); // asinh(w)
    let q = sqrt(1.0 + w2);
    let theta = select(1.0 / (q + sqrt(ACOSH_FLOOR)), 1.0 / w, w2 >= ACOSH_FLOOR);
    let base = LAMBDA * sk * theta / (sqrt(wa) * sqrt(wb) * ts);
    let c_b = base * db / wb;
    coef_rw[8u * c] = dist;
    coef_rw[8u * c + 1u] = base;
    coef_rw[8u * c + 2u] = c_b;
    coef_rw[8u * c + 3u] = -(base * db + c_b * (1.0 - wb));
    coef_rw[8u * c + 4u] = wb;
}

// ∂s/∂v = f·P_j + e·u uᵀ. Tangential part f·P_j g_s with P_j b = P_j (S − s_j)/T_s; radial part u·G written
// without cancellation when one sample dominates its class (see syn_sample_grad in src/hdd.rs).
@compute @workgroup_size(64)
fn syn_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = linear_id(gid, nwg);
    if (j >= C * PER_S) { return; }
    let c = j / PER_S;
    let b = j * STATS;
    let f = stats[b];
    let t = stats[b + 1u];
    let r = stats[b + 2u];
    let e = stats[b + 3u];
    let nv = stats[b + 4u];
    let w = stats[b + 6u];
    let dw = stats[b + 7u];
    let tr = sg_sums_r[row(c) + D];
    let ts = sg_sums_s[row(c) + D];
    let c_delta = coef[8u * c + 1u];
    let c_b = coef[8u * c + 2u];
    let g_t = coef[8u * c + 3u];
    if (nv * nv < NORM_FLOOR_SQ) {
        // n floored to a constant: s = f·v, ∂L/∂v = f·(g_s + g_t·f·v/t)
        for (var d = 0u; d < D; d++) {
            let a = sg_sums_r[row(c) + d] / tr;
            let bb = sg_sums_s[row(c) + d] / ts;
            let gs = c_delta * (bb - a) + c_b * bb;
            grad[j * D + d] = w * f * (gs + g_t * f * feat[j * D + d] / t);
        }
        return;
    }
    var ud = 0.0;     // u·δ
    var urest = 0.0;  // u·(S − w s_j)
    var db = 0.0;     // δ·b
    var psi = 0.0;    // ∂d/∂w_j = g_s·(s_j − b t_j) (used only with weights)
    for (var d = 0u; d < D; d++) {
        let v = feat[j * D + d];
        let u = v / nv;
        let a = sg_sums_r[row(c) + d] / tr;
        let ss = sg_sums_s[row(c) + d];
        let bb = ss / ts;
        ud += u * (bb - a);
        urest += u * (ss - w * f * v);
        db += (bb - a) * bb;
        // s_j − b t_j = (s_j (T − w t_j) − (S − w s_j) t_j)/T: both brackets vanish exactly for a lone sample
        psi += (c_delta * (bb - a) + c_b * bb) * (f * v * (ts - w * t) - (ss - w * f * v) * t) / ts;
    }
    let wb = coef[8u * c + 4u];
    let radial = c_delta * (ud - db * r / t) + c_b * (urest / ts + r * (w * t - ts) / (ts * t) + wb * r / t);
    for (var d = 0u; d < D; d++) {
        let v = feat[j * D + d];
        let u = v / nv;
        let a = sg_sums_r[row(c) + d] / tr;
        let ss = sg_sums_s[row(c) + d];
        let p_delta = (ss / ts - a) - u * ud;
        let p_b = ((ss - w * f * v) - u * urest) / ts;
        grad[j * D + d] = w * (f * (c_delta * p_delta + c_b * p_b) + e * radial * u) + psi * dw * u;
    }
}
