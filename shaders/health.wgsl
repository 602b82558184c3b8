// health.wgsl — divergence detection: whether a buffer holds a NaN or an infinity, and since which iteration. A run
// reads the two words back with what it reads anyway (the loss, when it logs), so an iteration stays one submit with
// nothing read back. WGSL has no isnan/isinf: a value is non-finite when its exponent bits are all ones.
//
// entry point    bindings (group 0, in order)                                          invocations
// check_finite   0 x [N], 1 health (rw, u32) [2] = (first bad iteration, this iteration)   N: health[0] = min(health[0],
//                                                                                          health[1]) where x[i] is not finite
// Workgroup 64.

override N: u32;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> health: array<atomic<u32>>;

@compute @workgroup_size(64)
fn check_finite(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    if (i >= N) { return; }
    if ((bitcast<u32>(x[i]) & 0x7f800000u) == 0x7f800000u) {
        atomicMin(&health[0], atomicLoad(&health[1]));
    }
}
