// norm.wgsl — instance norm as ConvNet uses it: GroupNorm with one group per channel, eps 1e-5,
// biased variance, per-channel affine (gamma, beta). NCHW; one plane = the HW values of (n, c).
//   x̂ = (x − μ)·r, r = 1/sqrt(σ² + eps);  y = γ[c]·x̂ + β[c]
//
// entry point     bindings (group 0, in order)                                   one invocation per
// forward         0 x, 1 gamma, 2 beta, 3 y (rw), 4 stats (rw) [N·C·2] = (μ, r)     plane (n, c)
// backward        0 x, 1 gamma, 2 stats, 3 dy, 4 dx (rw), 5 partial (rw) [N·C·2]    plane (n, c)
//                   dx = r·(g − mean(g) − x̂·mean(g·x̂)), g = γ·dy; partial = (Σ dy·x̂, Σ dy) for this plane
// param_grad      0 partial, 1 dgamma (rw) [C], 2 dbeta (rw) [C]                     channel c (sums partial over n)
// forward_relu_pool  0 x, 1 gamma, 2 beta, 3 y (rw) [N,C,H/2,W/2], 4 stats (rw)     plane (n, c)
//                   the forward-only block tail: norm, ReLU and 2×2 average pooling in one pass over the
//                   pooled outputs, nothing kept for a backward pass (H, W set; HW = H·W)
// forward_relu_pool_v4, backward_relu_pool_v4  as forward_relu_pool / backward_relu_pool, planes as vec4 and pooled
//                   values as vec2 (W % 4 == 0)
// forward_relu_pool_rows_v4  as forward_relu_pool, plus 5 rowstats [N,C/4,H,2,4] from conv.wgsl's *_row_v4_stats   plane (n, c)
//                   (the statistics merged from the rows' instead of two passes over the plane; W % 4 == 0, C % 4 == 0)
// backward_relu_pool 0 x, 1 gamma, 2 stats, 3 dy [N,C,H/2,W/2], 4 dx (rw), 5 partial (rw), 6 beta        plane (n, c)
//                   the training block tail's backward after forward_relu_pool: the ReLU mask recomputed from x,
//                   stats, γ, β (nothing else kept), AvgPool's gradient read from the pooled dy, then backward's maths
//                   (H, W set and even; HW = H·W)
// Dispatch: N·C, N·C, C, N·C and N·C invocations; workgroup 64. A plane is at most 64·64 values, so one thread
// per plane keeps the kernel barrier-free (fast on lavapipe) while N·C threads still fill a GPU.

override N: u32;
override C: u32;
override HW: u32;
// forward_relu_pool only
override H: u32 = 0u;
override W: u32 = 0u;
const EPS: f32 = 1e-5;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read> beta: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats_out: array<f32>;

// backward (x at 0, gamma at 1)
@group(0) @binding(2) var<storage, read> stats: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
@group(0) @binding(5) var<storage, read_write> partial_out: array<f32>;

// param_grad
@group(0) @binding(0) var<storage, read> partial: array<f32>;
@group(0) @binding(1) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(2) var<storage, read_write> dbeta: array<f32>;

// (mean, 1/std) of the plane starting at `base`. Two passes (mean, then squared deviations): the one-pass
// E[x²] − E[x]² loses digits in f32.
fn plane_stats(base: u32) -> vec2<f32> {
    var s = 0.0;
    for (var i = 0u; i < HW; i++) { s += x[base + i]; }
    let mu = s / f32(HW);
    var v = 0.0;
    for (var i = 0u; i < HW; i++) { let d = x[base + i] - mu; v += d * d; }
    return vec2<f32>(mu, inverseSqrt(v / f32(HW) + EPS));
}

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let plane = linear_id(gid, nwg);
    if (plane >= N * C) { return; }
    let c = plane % C;
    let base = plane * HW;
    let st = plane_stats(base);
    let mu = st.x;
    let r = st.y;
    let g = gamma[c];
    let bt = beta[c];
    for (var i = 0u; i < HW; i++) { y[base + i] = (x[base + i] - mu) * r * g + bt; }
    stats_out[2u * plane] = mu;
    stats_out[2u * plane + 1u] = r;
}

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let plane = linear_id(gid, nwg);
    if (plane >= N * C) { return; }
    let c = plane % C;
    let base = plane * HW;
    let mu = stats[2u * plane];
    let r = stats[2u * plane + 1u];
    let g = gamma[c];
    var sum_dy = 0.0;
    var sum_dy_xh = 0.0;
    for (var i = 0u; i < HW; i++) {
        let xh = (x[base + i] - mu) * r;
        sum_dy += dy[base + i];
        sum_dy_xh += dy[base + i] * xh;
    }
    let inv = 1.0 / f32(HW);
    let mean_g = g * sum_dy * inv;
    let mean_gx = g * sum_dy_xh * inv;
    for (var i = 0u; i < HW; i++) {
        let xh = (x[base + i] - mu) * r;
        dx[base + i] = r * (g * dy[base + i] - mean_g - xh * mean_gx);
    }
    partial_out[2u * plane] = sum_dy_xh;
    partial_out[2u * plane + 1u] = sum_dy;
}

@compute @workgroup_size(64)
fn param_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = linear_id(gid, nwg);
    if (c >= C) { return; }
    var sg = 0.0;
    var sb = 0.0;
    for (var n = 0u; n < N; n++) {
        sg += partial[2u * (n * C + c)];
        sb += partial[2u * (n * C + c) + 1u];
    }
    dgamma[c] = sg;
    dbeta[c] = sb;
}

// Instance norm + ReLU + AvgPool2d(2, 2) for forwards that no backward follows (real batches, test passes,
// embeddings): one read of the plane for the mean, one for the variance, one for the pooled outputs, instead of
// three kernels each reading and writing the whole activation (20 % of an iteration on lavapipe, NOTES.md).
@compute @workgroup_size(64)
fn forward_relu_pool(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let plane = linear_id(gid, nwg);
    if (plane >= N * C) { return; }
    let c = plane % C;
    let base = plane * HW;
    let st = plane_stats(base);
    let mu = st.x;
    let r = st.y;
    let g = gamma[c];
    let bt = beta[c];
    let ho = H / 2u;
    let wo = W / 2u;
    let out = plane * ho * wo;
    for (var oy = 0u; oy < ho; oy++) {
        let row = base + 2u * oy * W;
        for (var ox = 0u; ox < wo; ox++) {
            let i = row + 2u * ox;
            let a = max((x[i] - mu) * r * g + bt, 0.0);
            let b = max((x[i + 1u] - mu) * r * g + bt, 0.0);
            let cc = max((x[i + W] - mu) * r * g + bt, 0.0);
            let d = max((x[i + W + 1u] - mu) * r * g + bt, 0.0);
            y[out + oy * wo + ox] = 0.25 * (a + b + cc + d);
        }
    }
    stats_out[2u * plane] = mu;
    stats_out[2u * plane + 1u] = r;
}

// backward_relu_pool: ∂L/∂x of pool(relu(γ·x̂ + β)) from ∂L/∂(pooled), for a forward that ran forward_relu_pool. The
// gradient reaching the norm's output at (row, col) is dy[row/2, col/2]/4 where that output, recomputed with the very
// expression forward_relu_pool used, is > 0, else 0; from there as `backward`. Replaces pool_backward, relu_backward
// and backward (three passes writing the whole activation) and lets the training forward skip norm_out and the ReLU
// output: the CPU-adapter path (`NormKernel::PerThread`; benches/NOTES.md, session 14).
@group(0) @binding(6) var<storage, read> beta_b: array<f32>;

// ∂L/∂(norm output) at (row, col) of the plane at `base`; `dbase` is the plane's first pooled gradient
fn relu_pool_grad(base: u32, dbase: u32, row: u32, col: u32, mu: f32, r: f32, g: f32, bt: f32) -> f32 {
    let i = base + row * W + col;
    let d = 0.25 * dy[dbase + (row / 2u) * (W / 2u) + col / 2u];
    return select(0.0, d, (x[i] - mu) * r * g + bt > 0.0);
}

@compute @workgroup_size(64)
fn backward_relu_pool(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let plane = linear_id(gid, nwg);
    if (plane >= N * C) { return; }
    let c = plane % C;
    let base = plane * HW;
    let dbase = plane * (HW / 4u);
    let mu = stats[2u * plane];
    let r = stats[2u * plane + 1u];
    let g = gamma[c];
    let bt = beta_b[c];
    var sum_dy = 0.0;
    var sum_dy_xh = 0.0;
    for (var row = 0u; row < H; row++) {
        for (var col = 0u; col < W; col++) {
            let d = relu_pool_grad(base, dbase, row, col, mu, r, g, bt);
            sum_dy += d;
            sum_dy_xh += d * (x[base + row * W + col] - mu) * r;
        }
    }
    let inv = 1.0 / f32(HW);
    let mean_g = g * sum_dy * inv;
    let mean_gx = g * sum_dy_xh * inv;
    for (var row = 0u; row < H; row++) {
        for (var col = 0u; col < W; col++) {
            let i = base + row * W + col;
            let xh = (x[i] - mu) * r;
            dx[i] = r * (g * relu_pool_grad(base, dbase, row, col, mu, r, g, bt) - mean_g - xh * mean_gx);
        }
    }
    partial_out[2u * plane] = sum_dy_xh;
    partial_out[2u * plane + 1u] = sum_dy;
}

// ---- forward_relu_pool_v4 / backward_relu_pool_v4: the block tail for CPU adapters, W % 4 == 0 ----------------
// The same maths as forward_relu_pool and backward_relu_pool with the plane read as vec4 (4 columns per load), the
// pooled values written, and their gradients read, as vec2 (2 pooled columns), dx written as vec4: on llvmpipe a
// kernel pays per load/store instruction, whatever its width (benches/NOTES.md, session 11). Each lane still walks
// its own plane. The ReLU mask is the same expression, component by component.
@group(0) @binding(0) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y2: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read> dy2: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> dx4: array<vec4<f32>>;

// (mean, 1/std) of the plane starting at vec4 index q0, two passes as plane_stats (four partial sums per pass)
fn plane_stats_v4(q0: u32) -> vec2<f32> {
    var s = vec4<f32>(0.0);
    for (var q = 0u; q < HW / 4u; q++) { s += x4[q0 + q]; }
    let mu = (s.x + s.y + s.z + s.w) / f32(HW);
    var v = vec4<f32>(0.0);
    for (var q = 0u; q < HW / 4u; q++) { let d = x4[q0 + q] - vec4<f32>(mu); v += d * d; }
    return vec2<f32>(mu, inverseSqrt((v.x + v.y + v.z + v.w) / f32(HW) + EPS));
}

@compute @workgroup_size(64)
fn forward_relu_pool_v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let plane = linear_id(gid, nwg);
    if (plane >= N * C) { return; }
    relu_pool_plane_v4(plane, plane_stats_v4(plane * (HW / 4u)));
}

// ---- forward_relu_pool_rows_v4: forward_relu_pool_v4 with the plane's statistics merged from the row statistics
// that conv.wgsl's *_row_v4_stats kernels wrote (binding 5, rowstats [N, C/4, H, 2, 4]: per row and channel the row's
// mean and Σ (x − mean)² over its W values), so the plane is read once, not three times. Rows merge one at a time by
// Chan et al.'s pairwise update: exact in exact arithmetic, no E[x²] − E[x]² cancellation. Needs C % 4 == 0.
@group(0) @binding(5) var<storage, read> rowstats: array<f32>;

// (mean, 1/std) of plane (n, c) from its H rows' statistics
fn plane_stats_rows(n: u32, c: u32) -> vec2<f32> {
    let base = (n * (C / 4u) + c / 4u) * H * 8u + c % 4u;  // row r: mean at base + 8r, Σ (x − mean)² at base + 8r + 4
    let wf = f32(W);
    var mu = 0.0;
    var m2 = 0.0;
    for (var r = 0u; r < H; r++) {
        let na = f32(r) * wf;  // values merged so far
        let d = rowstats[base + 8u * r] - mu;
        let t = wf / (na + wf);
        mu += d * t;
        m2 += rowstats[base + 8u * r + 4u] + d * d * na * t;
    }
    return vec2<f32>(mu, inverseSqrt(m2 / f32(HW) + EPS));
}

// normalise, ReLU and pool plane `plane` with statistics st = (μ, r) and record them (both forward tails)
fn relu_pool_plane_v4(plane: u32, st: vec2<f32>) {
    let c = plane % C;
    let q0 = plane * (HW / 4u);
    let mu = st.x;
    let r = st.y;
    let g = gamma[c];
    let bt = beta[c];
    let rq = W / 4u;  // vec4 per row
    let out = plane * (HW / 8u);  // vec2 index of the plane's pooled outputs: (H/2)·(W/2)/2 per plane
    for (var oy = 0u; oy < H / 2u; oy++) {
        let top = q0 + 2u * oy * rq;
        for (var qx = 0u; qx < rq; qx++) {
            let a = max((x4[top + qx] - mu) * r * g + bt, vec4<f32>(0.0));
            let b = max((x4[top + rq + qx] - mu) * r * g + bt, vec4<f32>(0.0));
            let t = a + b;
            y2[out + oy * rq + qx] = 0.25 * vec2<f32>(t.x + t.y, t.z + t.w);
        }
    }
    stats_out[2u * plane] = mu;
    stats_out[2u * plane + 1u] = r;
}

@compute @workgroup_size(64)
fn forward_relu_pool_rows_v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let plane = linear_id(gid, nwg);
    if (plane >= N * C) { return; }
    relu_pool_plane_v4(plane, plane_stats_rows(plane / C, plane % C));
}

// ∂L/∂(norm output) for the 4 columns of vec4 `xq` in a row whose pooled gradients start at vec2 index `dq`
fn relu_pool_grad4(xq: vec4<f32>, dq: u32, mu: f32, r: f32, g: f32, bt: f32) -> vec4<f32> {
    let d = 0.25 * dy2[dq];
    return select(vec4<f32>(0.0), vec4<f32>(d.x, d.x, d.y, d.y), (xq - mu) * r * g + bt > vec4<f32>(0.0));
}

@compute @workgroup_size(64)
fn backward_relu_pool_v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let plane = linear_id(gid, nwg);
    if (plane >= N * C) { return; }
    let c = plane % C;
    let q0 = plane * (HW / 4u);
    let dbase = plane * (HW / 8u);
    let mu = stats[2u * plane];
    let r = stats[2u * plane + 1u];
    let g = gamma[c];
    let bt = beta_b[c];
    let rq = W / 4u;
    var sum_dy = vec4<f32>(0.0);
    var sum_dy_xh = vec4<f32>(0.0);
    for (var row = 0u; row < H; row++) {
        for (var qx = 0u; qx < rq; qx++) {
            let xq = x4[q0 + row * rq + qx];
            let d = relu_pool_grad4(xq, dbase + (row / 2u) * rq + qx, mu, r, g, bt);
            sum_dy += d;
            sum_dy_xh += d * (xq - mu) * r;
        }
    }
    let sdy = sum_dy.x + sum_dy.y + sum_dy.z + sum_dy.w;
    let sdx = sum_dy_xh.x + sum_dy_xh.y + sum_dy_xh.z + sum_dy_xh.w;
    let inv = 1.0 / f32(HW);
    let mean_g = g * sdy * inv;
    let mean_gx = g * sdx * inv;
    for (var row = 0u; row < H; row++) {
        for (var qx = 0u; qx < rq; qx++) {
            let i = q0 + row * rq + qx;
            let xq = x4[i];
            let d = relu_pool_grad4(xq, dbase + (row / 2u) * rq + qx, mu, r, g, bt);
            dx4[i] = r * (g * d - mean_g - (xq - mu) * r * mean_gx);
        }
    }
    partial_out[2u * plane] = sdx;
    partial_out[2u * plane + 1u] = sdy;
}
