// matching.wgsl — DM's distribution-matching term and its gradient. Real features [C·B, D] (no gradient),
// synthetic features [C·M, D], class-major. Per class: L_c = Σ_d (mean_r[d] − mean_s[d])² (a sum over the
// D dimensions, not a mean, as in the DM code); ∂L_c/∂e_s[j, d] = −2·(mean_r[d] − mean_s[d])/M. Both × SCALE
// (DANCE's MSE of the means is SCALE = 1/D).
//
// entry point   bindings (group 0, in order)                                   invocations
// dm            0 real, 1 syn, 2 sq (rw) [C·D], 3 grad (rw) [C·M, D]              C·D, one (class, dimension) each
// class_total   0 sq, 1 loss (rw) [C]                                            C: L_c = Σ_d sq
// Workgroup 64.

override C: u32;
override D: u32;
override B: u32;   // real samples per class
override M: u32;   // synthetic samples per class
override SCALE: f32 = 1.0;

@group(0) @binding(0) var<storage, read> real: array<f32>;
@group(0) @binding(1) var<storage, read> syn: array<f32>;
@group(0) @binding(2) var<storage, read_write> sq: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;

@group(0) @binding(0) var<storage, read> sq_in: array<f32>;
@group(0) @binding(1) var<storage, read_write> loss: array<f32>;

@compute @workgroup_size(64)
fn dm(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= C * D) { return; }
    let d = id % D;
    let c = id / D;
    var mr = 0.0;
    for (var i = 0u; i < B; i++) { mr += real[(c * B + i) * D + d]; }
    mr /= f32(B);
    var ms = 0.0;
    for (var j = 0u; j < M; j++) { ms += syn[(c * M + j) * D + d]; }
    ms /= f32(M);
    let diff = mr - ms;
    sq[id] = SCALE * diff * diff;
    let g = -2.0 * SCALE * diff / f32(M);
    for (var j = 0u; j < M; j++) { grad[(c * M + j) * D + d] = g; }
}

@compute @workgroup_size(64)
fn class_total(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = linear_id(gid, nwg);
    if (c >= C) { return; }
    var s = 0.0;
    for (var d = 0u; d < D; d++) { s += sq_in[c * D + d]; }
    loss[c] = s;
}
