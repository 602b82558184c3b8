// activation.wgsl — ReLU and 2×2 average pooling (stride 2), NCHW, elementwise kernels.
//
// entry point        bindings (group 0, in order)              invocations (one output element each)
// relu_forward       0 x, 1 y (rw)                             TOTAL
// relu_backward      0 x (the forward input), 1 dy, 2 dx (rw)  TOTAL; dx = dy where x > 0 (PyTorch's choice at 0: 0)
// pool_forward       0 x [P,H,W], 1 y (rw) [P,H/2,W/2]          P·(H/2)·(W/2), P = N·C planes
// pool_backward      0 dy [P,H/2,W/2], 1 dx (rw) [P,H,W]        P·H·W; dx = dy/4 of the window it fell in
// Workgroup 64. H and W are even for every ConvNet shape (32, 16, 8, 64, …).

override TOTAL: u32 = 0u;  // relu
override P: u32 = 0u;      // pool: planes
override H: u32 = 2u;      // pool: input height
override W: u32 = 2u;      // pool: input width

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;

@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

@group(0) @binding(0) var<storage, read> dy_pool: array<f32>;
@group(0) @binding(1) var<storage, read_write> dx_pool: array<f32>;

@compute @workgroup_size(64)
fn relu_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= TOTAL) { return; }
    y[i] = max(x[i], 0.0);
}

@compute @workgroup_size(64)
fn relu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= TOTAL) { return; }
    dx[i] = select(0.0, dy[i], x[i] > 0.0);
}

@compute @workgroup_size(64)
fn pool_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let ho = H / 2u;
    let wo = W / 2u;
    let i = linear_id(gid, nwg);
    if (i >= P * ho * wo) { return; }
    let ox = i % wo;
    let oy = (i / wo) % ho;
    let p = i / (wo * ho);
    let b = (p * H + 2u * oy) * W + 2u * ox;
    y[i] = 0.25 * (x[b] + x[b + 1u] + x[b + W] + x[b + W + 1u]);
}

@compute @workgroup_size(64)
fn pool_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let ho = H / 2u;
    let wo = W / 2u;
    let i = linear_id(gid, nwg);
    if (i >= P * H * W) { return; }
    let ix = i % W;
    let iy = (i / W) % H;
    let p = i / (W * H);
    dx_pool[i] = 0.25 * dy_pool[(p * ho + iy / 2u) * wo + ix / 2u];
}
