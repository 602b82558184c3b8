// linear.wgsl — fully connected layer y = x·Wᵀ + b (PyTorch nn.Linear layout).
// Shapes: x [N,IN], w [OUT,IN], b [OUT], y [N,OUT].
//
// entry point       bindings (group 0, in order)                 one invocation per
// forward           0 x, 1 w, 2 b, 3 y (rw)                      y[n,o]
// backward_input    0 dy, 1 w, 2 dx (rw)                         dx[n,i] = Σ_o dy[n,o]·w[o,i] (+ dx[n,i] when ACC = 1:
//                                                                 a matching gradient already there is kept, IDM's CE + DM)
// backward_params   0 x, 1 dy, 2 dw (rw), 3 db (rw)              dw[o,i] = Σ_n dy[n,o]·x[n,i]; the i = 0 thread also writes db[o]
// Dispatch: N·OUT, N·IN, OUT·IN invocations; workgroup 64.

override N: u32;
override IN: u32;
override OUT: u32;
override ACC: u32 = 0u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@group(0) @binding(0) var<storage, read> dy_bi: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

@group(0) @binding(1) var<storage, read> dy_bp: array<f32>;
@group(0) @binding(2) var<storage, read_write> dw: array<f32>;
@group(0) @binding(3) var<storage, read_write> db: array<f32>;

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= N * OUT) { return; }
    let o = id % OUT;
    let n = id / OUT;
    var acc = b[o];
    for (var i = 0u; i < IN; i++) { acc += x[n * IN + i] * w[o * IN + i]; }
    y[id] = acc;
}

@compute @workgroup_size(64)
fn backward_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= N * IN) { return; }
    let i = id % IN;
    let n = id / IN;
    var acc = 0.0;
    for (var o = 0u; o < OUT; o++) { acc += dy_bi[n * OUT + o] * w[o * IN + i]; }
    if (ACC != 0u) { acc += dx[id]; }
    dx[id] = acc;
}

@compute @workgroup_size(64)
fn backward_params(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= OUT * IN) { return; }
    let i = id % IN;
    let o = id / IN;
    var acc = 0.0;
    for (var n = 0u; n < N; n++) { acc += dy_bp[n * OUT + o] * x[n * IN + i]; }
    dw[id] = acc;
    if (i == 0u) {
        var s = 0.0;
        for (var n = 0u; n < N; n++) { s += dy_bp[n * OUT + o]; }
        db[o] = s;
    }
}
