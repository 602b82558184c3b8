// optim.wgsl — SGD with momentum and weight decay, as torch.optim.SGD (dampening 0, no Nesterov):
//   d = g + WD·p;  buf = MOMENTUM·buf + d;  p = p − LR·buf
// (buf starts at 0, so the first step sets buf = d, as PyTorch does.) Used for the synthetic pixels
// (momentum 0.5, no weight decay) and for network weights in evaluation (0.9, 5e-4).
// Also `correct`: 1 where argmax(logits) equals the label, for test accuracy.
//
// entry point   bindings (group 0, in order)                            invocations
// sgd           0 grad, 1 param (rw), 2 buf (rw)                          N
// correct       0 logits [N, K], 1 labels (u32) [N], 2 out (rw) [N]       N
// sgd_channels  as sgd, LR per channel: LR0/LR1/LR2 for element i of channel (i / PLANE) % CH (no weight decay)
// clamp_channels 0 x (rw): x = clamp(x, LOc, HIc) per channel             N
// tally         0 hits [N] (from correct), 1 meter (rw) [2]               1: meter += (Σ hits, N), a running
//               training accuracy kept on the GPU (IDM's acc_meters), read by loss.wgsl's softmax_xent_weighted
// Workgroup 64.

override N: u32;
override K: u32 = 1u;
override LR: f32 = 0.01;
override MOMENTUM: f32 = 0.0;
override WD: f32 = 0.0;
override PLANE: u32 = 1u;
override CH: u32 = 1u;
override LR0: f32 = 0.0;
override LR1: f32 = 0.0;
override LR2: f32 = 0.0;
override LO0: f32 = 0.0;
override LO1: f32 = 0.0;
override LO2: f32 = 0.0;
override HI0: f32 = 0.0;
override HI1: f32 = 0.0;
override HI2: f32 = 0.0;

@group(0) @binding(0) var<storage, read> grad: array<f32>;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read_write> buf: array<f32>;

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@group(0) @binding(0) var<storage, read_write> cx: array<f32>;

@group(0) @binding(0) var<storage, read> hits: array<f32>;
@group(0) @binding(1) var<storage, read_write> meter: array<f32>;

@compute @workgroup_size(64)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= N) { return; }
    let d = grad[i] + WD * param[i];
    let b = MOMENTUM * buf[i] + d;
    buf[i] = b;
    param[i] = param[i] - LR * b;
}

@compute @workgroup_size(64)
fn correct(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = linear_id(gid, nwg);
    if (n >= N) { return; }
    var best = 0u;
    for (var k = 1u; k < K; k++) { if (logits[n * K + k] > logits[n * K + best]) { best = k; } }
    out[n] = select(0.0, 1.0, best == labels[n]);
}

@compute @workgroup_size(64)
fn tally(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    if (linear_id(gid, nwg) != 0u) { return; }
    var s = 0.0;
    for (var i = 0u; i < N; i++) { s += hits[i]; }
    meter[0] = meter[0] + s;
    meter[1] = meter[1] + f32(N);
}

fn per_channel(i: u32, a: f32, b: f32, c: f32) -> f32 {
    let ch = (i / PLANE) % CH;
    return select(select(c, b, ch == 1u), a, ch == 0u);
}

@compute @workgroup_size(64)
fn sgd_channels(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= N) { return; }
    let b = MOMENTUM * buf[i] + grad[i];
    buf[i] = b;
    param[i] = param[i] - per_channel(i, LR0, LR1, LR2) * b;
}

@compute @workgroup_size(64)
fn clamp_channels(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= N) { return; }
    cx[i] = clamp(cx[i], per_channel(i, LO0, LO1, LO2), per_channel(i, HI0, HI1, HI2));
}
