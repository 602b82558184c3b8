// loss.wgsl — softmax cross-entropy with hard labels, fused with its gradient.
// Shapes: logits [N,K], labels [N] (u32), loss [N] (per-sample −log softmax(z)[label]), dlogits [N,K].
//   dlogits[n,k] = SCALE·(softmax(z_n)[k] − [k = label_n]); SCALE = 1/N gives the gradient of the batch mean.
//
// entry point   bindings (group 0, in order)                                   one invocation per
// softmax_xent  0 logits, 1 labels, 2 loss (rw), 3 dlogits (rw)                sample n
// softmax_xent_weighted  the same + 4 meter [2] = (correct, seen): SCALE is multiplied by the network's running
//               training accuracy in percent, 100·correct/seen (0 before any training step): IDM's CE weight acc_i
// softmax_xent_mix  0 logits, 1 labels, 2 loss (rw), 3 dlogits (rw), 4 mix [1] = (ratio), 5 labels_b: CutMix's
//               ratio·CE(labels) + (1 − ratio)·CE(labels_b), dlogits = SCALE·(softmax − ratio·onehot − (1 − ratio)·onehot_b)
// Dispatch: N invocations; workgroup 64. A label ≥ K gives loss NaN (callers validate labels on load).

override N: u32;
override K: u32;
override SCALE: f32 = 1.0;

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read_write> loss: array<f32>;
@group(0) @binding(3) var<storage, read_write> dlogits: array<f32>;
@group(0) @binding(4) var<storage, read> meter: array<f32>;
@group(0) @binding(4) var<storage, read> mix: array<f32>;
@group(0) @binding(5) var<storage, read> labels_b: array<u32>;

// log Σ_k exp(logits[base + k]), with the maximum subtracted first
fn log_sum_exp(base: u32) -> f32 {
    var m = logits[base];
    for (var k = 1u; k < K; k++) { m = max(m, logits[base + k]); }
    var s = 0.0;
    for (var k = 0u; k < K; k++) { s += exp(logits[base + k] - m); }
    return m + log(s);
}

fn xent(n: u32, scale: f32) {
    let base = n * K;
    let lse = log_sum_exp(base);
    let label = labels[n];
    var picked = bitcast<f32>(0x7fc00000u);  // NaN unless the label is in range
    if (label < K) { picked = logits[base + label]; }
    loss[n] = lse - picked;
    for (var k = 0u; k < K; k++) {
        let p = exp(logits[base + k] - lse);
        dlogits[base + k] = scale * (p - select(0.0, 1.0, k == label));
    }
}

@compute @workgroup_size(64)
fn softmax_xent(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = linear_id(gid, nwg);
    if (n >= N) { return; }
    xent(n, SCALE);
}

@compute @workgroup_size(64)
fn softmax_xent_weighted(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = linear_id(gid, nwg);
    if (n >= N) { return; }
    let acc = select(0.0, 100.0 * meter[0] / meter[1], meter[1] > 0.0);
    xent(n, SCALE * acc);
}

@compute @workgroup_size(64)
fn softmax_xent_mix(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = linear_id(gid, nwg);
    if (n >= N) { return; }
    let ratio = mix[0];
    let base = n * K;
    let lse = log_sum_exp(base);
    let la = labels[n];
    let lb = labels_b[n];
    loss[n] = lse - ratio * logits[base + min(la, K - 1u)] - (1.0 - ratio) * logits[base + min(lb, K - 1u)];
    for (var k = 0u; k < K; k++) {
        let p = exp(logits[base + k] - lse);
        dlogits[base + k] = SCALE * (p - ratio * select(0.0, 1.0, k == la) - (1.0 - ratio) * select(0.0, 1.0, k == lb));
    }
}
