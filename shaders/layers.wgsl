// layers.wgsl — the layers the cross-architecture evaluation pool needs beyond ConvNet-3 (MLP, LeNet, AlexNet,
// VGG11, ResNet18 of the DC code): convolution with any square kernel K, stride and zero padding (5×5, 1×1 and
// stride-2 3×3), K×K max and average pooling with stride K, and the residual add. NCHW, f32.
// Shapes: x [N,CIN,H,W], w [COUT,CIN,K,K], b [COUT] (read only when HAS_BIAS = 1; bind any buffer otherwise),
// y [N,COUT,HO,WO] with HO = (H + 2·PAD − K)/STRIDE + 1 (floor, as PyTorch). Pools: [P,H,W] → [P,H/K,W/K] (floor).
//
// entry point            bindings (group 0, in order)                       one invocation computes
// conv_forward           0 x, 1 w, 2 b, 3 y (rw)                            one output y[n,co,oy,ox]
// conv_backward_input    0 dy, 1 w, 2 dx (rw)                               one input gradient dx[n,ci,iy,ix] (a gather: no atomics)
// conv_backward_weight   0 x, 1 dy, 2 partial (rw) [NSPLIT,COUT,CIN,K,K]    one weight's sum over the images n ≡ split (mod NSPLIT)
// conv_reduce_weight     0 partial, 1 dw (rw)                               one weight: the sum over the NSPLIT partials
// conv_backward_bias     0 dy, 1 db (rw)                                    db[co] summed over N·HO·WO
// maxpool_forward        0 x, 1 y (rw)                                      one output: the window's maximum
// maxpool_backward       0 x (forward input), 1 dy, 2 dx (rw)               one input: dy where it is its window's first maximum
//                                                                           (row-major, as PyTorch's CPU kernel), else 0
// avgpool_forward        0 x, 1 y (rw)                                      one output: the window's mean
// avgpool_backward       0 dy, 1 dx (rw)                                    one input: dy/K² of its window (0 outside every window)
// add                    0 a, 1 b, 2 y (rw)                                 y = a + b (ResNet's shortcut join)
// accumulate             0 x, 1 y (rw)                                      y += x (a gradient reaching a tensor by a second path)
// Dispatch (workgroup 64): N·COUT·HO·WO, N·CIN·H·W, NSPLIT·COUT·CIN·K·K, COUT·CIN·K·K, COUT, P·HO·WO, P·H·W, P·HO·WO,
// P·H·W, TOTAL, TOTAL.
// Why one output per invocation and no workgroup memory: these layers only train evaluation networks; the
// barrier-free form is the fast one on lavapipe (platform.md §3) and a plain baseline on GPUs, and K, STRIDE and
// PAD are override constants, so the tap loops have fixed bounds the compiler unrolls.

override N: u32 = 1u;
override CIN: u32 = 1u;
override COUT: u32 = 1u;
override H: u32 = 1u;
override W: u32 = 1u;
override K: u32 = 1u;
override STRIDE: u32 = 1u;
override PAD: u32 = 0u;
override HAS_BIAS: u32 = 0u;
override NSPLIT: u32 = 1u;
override HO: u32 = (H + 2u * PAD - K) / STRIDE + 1u;
override WO: u32 = (W + 2u * PAD - K) / STRIDE + 1u;
override P: u32 = 1u;      // pools: planes
override TOTAL: u32 = 0u;  // add, accumulate

// conv_forward
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
// conv_backward_input (w at 1)
@group(0) @binding(0) var<storage, read> dy_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx_in: array<f32>;
// conv_backward_weight (x at 0)
@group(0) @binding(1) var<storage, read> dy_w: array<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;
// conv_reduce_weight
@group(0) @binding(0) var<storage, read> partial_in: array<f32>;
@group(0) @binding(1) var<storage, read_write> dw: array<f32>;
// conv_backward_bias, avgpool_backward (dy at 0, result at 1)
@group(0) @binding(0) var<storage, read> dy0: array<f32>;
@group(0) @binding(1) var<storage, read_write> out1: array<f32>;
// maxpool_forward, avgpool_forward, accumulate: x at 0, y_pool at 1
@group(0) @binding(1) var<storage, read_write> y1: array<f32>;
// maxpool_backward (x at 0)
@group(0) @binding(1) var<storage, read> dy1: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx2: array<f32>;
// add
@group(0) @binding(0) var<storage, read> a_add: array<f32>;
@group(0) @binding(1) var<storage, read> b_add: array<f32>;
@group(0) @binding(2) var<storage, read_write> y_add: array<f32>;

@compute @workgroup_size(64)
fn conv_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= N * COUT * HO * WO) { return; }
    let ox = id % WO;
    let oy = (id / WO) % HO;
    let co = (id / (WO * HO)) % COUT;
    let n = id / (WO * HO * COUT);
    var acc = 0.0;
    if (HAS_BIAS == 1u) { acc = b[co]; }
    for (var ci = 0u; ci < CIN; ci++) {
        for (var ky = 0u; ky < K; ky++) {
            let iy = i32(oy * STRIDE + ky) - i32(PAD);
            if (iy < 0 || iy >= i32(H)) { continue; }
            let xrow = ((n * CIN + ci) * H + u32(iy)) * W;
            let wrow = ((co * CIN + ci) * K + ky) * K;
            for (var kx = 0u; kx < K; kx++) {
                let ix = i32(ox * STRIDE + kx) - i32(PAD);
                if (ix < 0 || ix >= i32(W)) { continue; }
                acc += w[wrow + kx] * x[xrow + u32(ix)];
            }
        }
    }
    y[id] = acc;
}

// dx[n,ci,iy,ix] = Σ_co Σ_(ky,kx) w[co,ci,ky,kx] · dy[n,co,oy,ox] over the taps with oy·STRIDE + ky = iy + PAD.
@compute @workgroup_size(64)
fn conv_backward_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= N * CIN * H * W) { return; }
    let ix = id % W;
    let iy = (id / W) % H;
    let ci = (id / (W * H)) % CIN;
    let n = id / (W * H * CIN);
    var acc = 0.0;
    for (var ky = 0u; ky < K; ky++) {
        let ty = i32(iy + PAD) - i32(ky);
        if (ty < 0 || u32(ty) % STRIDE != 0u || u32(ty) / STRIDE >= HO) { continue; }
        let oy = u32(ty) / STRIDE;
        for (var kx = 0u; kx < K; kx++) {
            let tx = i32(ix + PAD) - i32(kx);
            if (tx < 0 || u32(tx) % STRIDE != 0u || u32(tx) / STRIDE >= WO) { continue; }
            let ox = u32(tx) / STRIDE;
            for (var co = 0u; co < COUT; co++) {
                acc += w[((co * CIN + ci) * K + ky) * K + kx] * dy_in[((n * COUT + co) * HO + oy) * WO + ox];
            }
        }
    }
    dx_in[id] = acc;
}

@compute @workgroup_size(64)
fn conv_backward_weight(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let wlen = COUT * CIN * K * K;
    let id = linear_id(gid, nwg);
    if (id >= NSPLIT * wlen) { return; }
    let kx = id % K;
    let ky = (id / K) % K;
    let ci = (id / (K * K)) % CIN;
    let co = (id / (K * K * CIN)) % COUT;
    let split = id / wlen;
    var acc = 0.0;
    for (var n = split; n < N; n += NSPLIT) {
        for (var oy = 0u; oy < HO; oy++) {
            let iy = i32(oy * STRIDE + ky) - i32(PAD);
            if (iy < 0 || iy >= i32(H)) { continue; }
            let xrow = ((n * CIN + ci) * H + u32(iy)) * W;
            let dyrow = ((n * COUT + co) * HO + oy) * WO;
            for (var ox = 0u; ox < WO; ox++) {
                let ix = i32(ox * STRIDE + kx) - i32(PAD);
                if (ix < 0 || ix >= i32(W)) { continue; }
                acc += x[xrow + u32(ix)] * dy_w[dyrow + ox];
            }
        }
    }
    partial[id] = acc;
}

@compute @workgroup_size(64)
fn conv_reduce_weight(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let wlen = COUT * CIN * K * K;
    let id = linear_id(gid, nwg);
    if (id >= wlen) { return; }
    var acc = 0.0;
    for (var s = 0u; s < NSPLIT; s++) { acc += partial_in[s * wlen + id]; }
    dw[id] = acc;
}

@compute @workgroup_size(64)
fn conv_backward_bias(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let co = linear_id(gid, nwg);
    if (co >= COUT) { return; }
    var acc = 0.0;
    for (var n = 0u; n < N; n++) {
        let base = (n * COUT + co) * HO * WO;
        for (var i = 0u; i < HO * WO; i++) { acc += dy0[base + i]; }
    }
    out1[co] = acc;
}

// Pools: windows K×K with stride K; HP × WP outputs per plane.
override HP: u32 = H / K;
override WP: u32 = W / K;

@compute @workgroup_size(64)
fn maxpool_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= P * HP * WP) { return; }
    let ox = id % WP;
    let oy = (id / WP) % HP;
    let p = id / (WP * HP);
    var m = x[(p * H + oy * K) * W + ox * K];
    for (var ky = 0u; ky < K; ky++) {
        for (var kx = 0u; kx < K; kx++) {
            m = max(m, x[(p * H + oy * K + ky) * W + ox * K + kx]);
        }
    }
    y1[id] = m;
}

@compute @workgroup_size(64)
fn maxpool_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= P * H * W) { return; }
    let ix = id % W;
    let iy = (id / W) % H;
    let p = id / (W * H);
    let oy = iy / K;
    let ox = ix / K;
    if (oy >= HP || ox >= WP) { dx2[id] = 0.0; return; }
    // the window's first maximum in row-major order (strictly greater replaces), as the forward's max
    var best = oy * K * W + ox * K;
    var m = x[p * H * W + best];
    for (var ky = 0u; ky < K; ky++) {
        for (var kx = 0u; kx < K; kx++) {
            let j = (oy * K + ky) * W + ox * K + kx;
            let v = x[p * H * W + j];
            if (v > m) { m = v; best = j; }
        }
    }
    dx2[id] = select(0.0, dy1[(p * HP + oy) * WP + ox], best == iy * W + ix);
}

@compute @workgroup_size(64)
fn avgpool_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= P * HP * WP) { return; }
    let ox = id % WP;
    let oy = (id / WP) % HP;
    let p = id / (WP * HP);
    var acc = 0.0;
    for (var ky = 0u; ky < K; ky++) {
        for (var kx = 0u; kx < K; kx++) {
            acc += x[(p * H + oy * K + ky) * W + ox * K + kx];
        }
    }
    y1[id] = acc / f32(K * K);
}

@compute @workgroup_size(64)
fn avgpool_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= P * H * W) { return; }
    let ix = id % W;
    let iy = (id / W) % H;
    let p = id / (W * H);
    let oy = iy / K;
    let ox = ix / K;
    if (oy >= HP || ox >= WP) { out1[id] = 0.0; return; }
    out1[id] = dy0[(p * HP + oy) * WP + ox] / f32(K * K);
}

@compute @workgroup_size(64)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= TOTAL) { return; }
    y_add[i] = a_add[i] + b_add[i];
}

@compute @workgroup_size(64)
fn accumulate(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= TOTAL) { return; }
    y1[i] += x[i];
}
