// conv_weight.wgsl — the parameter gradients of the 3×3 convolution: dw = Σ dy ⊗ x, db = Σ dy (conv_common.wgsl first).
//
// entry point       bindings (group 0, in order)                     one invocation computes
// backward_weight   0 x, 1 dy, 2 partial (rw) [NSPLIT,COUT,CIN,3,3] 4 output channels × 9 taps of one ci, over images n ≡ split
// backward_weight4_v4 0 x, 1 dy (both as vec4), 2 partial (rw) [HO,COUT,CIN,3,3]  4 output channels × 9 taps of one ci, over output row oy of every image
// backward_weight8_row_v4 as backward_weight4_v4                       8 output channels × 9 taps of one ci, over output row oy of every image, whole rows (W, WO ≤ 64)
// reduce_weight     0 partial, 1 dw (rw)                             one weight: the sum over the NSPLIT partials
// backward_bias     0 dy, 1 db (rw)                                  a 64-wide workgroup: db[co], summed over N·HO·WO
// Dispatch: NSPLIT·⌈COUT/4⌉·CIN (backward_weight), HO·CIN·COUT/4 (backward_weight4_v4; NSPLIT = HO), HO·CIN·COUT/8
//           (backward_weight8_row_v4; NSPLIT = HO), COUT·CIN·9 (reduce_weight), 64·COUT (backward_bias: a workgroup per
//           channel); workgroup 64.

// backward_weight (x at 0)
@group(0) @binding(1) var<storage, read> dy_bw: array<f32>;

@group(0) @binding(2) var<storage, read_write> dw: array<f32>;

// backward_bias
@group(0) @binding(0) var<storage, read> dy_bb: array<f32>;

@group(0) @binding(1) var<storage, read_write> db: array<f32>;

// dw[co,ci,ky,kx] = Σ_n Σ_oy Σ_ox dy[n,co,oy,ox] · x[n,ci,oy+ky−PAD,ox+kx−PAD], in two steps:
// backward_weight: thread (split s, 4-channel block, ci) sums the images n ≡ s (mod NSPLIT) into
//   partial[s, co, ci, ky, kx], holding 4 output channels × 9 taps in registers and walking 4 output columns
//   at a time (144 multiply-adds per 34 loads; the transpose of `forward`'s blocking);
// reduce_weight: dw = Σ_s partial[s] (one thread per weight).
override NSPLIT: u32 = 1u;

fn x_at2(n: u32, ci: u32, iy: i32, col: i32) -> f32 {
    let inside = iy >= 0 && iy < i32(H) && col >= 0 && col < i32(W);
    let idx = ((n * CIN + ci) * H + u32(clamp(iy, 0, i32(H) - 1))) * W + u32(clamp(col, 0, i32(W) - 1));
    return select(0.0, x[idx], inside);
}

fn dy4(n: u32, co0: u32, oy: u32, ox: u32) -> vec4<f32> {
    var r = vec4<f32>(0.0);
    if (ox < WO) {
        for (var c = 0u; c < 4u; c++) {
            let co = co0 + c;
            if (co < COUT) { r[c] = dy_bw[((n * COUT + co) * HO + oy) * WO + ox]; }
        }
    }
    return r;
}

@compute @workgroup_size(64)
fn backward_weight(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let cblocks = (COUT + 3u) / 4u;
    let id = linear_id(gid, nwg);
    if (id >= NSPLIT * cblocks * CIN) { return; }
    let ci = id % CIN;
    let cb = (id / CIN) % cblocks;
    let split = id / (CIN * cblocks);
    let co0 = cb * 4u;
    var a00 = vec4<f32>(0.0); var a01 = vec4<f32>(0.0); var a02 = vec4<f32>(0.0);
    var a10 = vec4<f32>(0.0); var a11 = vec4<f32>(0.0); var a12 = vec4<f32>(0.0);
    var a20 = vec4<f32>(0.0); var a21 = vec4<f32>(0.0); var a22 = vec4<f32>(0.0);
    for (var n = split; n < N; n += NSPLIT) {
        for (var oy = 0u; oy < HO; oy++) {
            let r0 = i32(oy) - i32(PAD);
            for (var ox0 = 0u; ox0 < WO; ox0 += 4u) {
                let d0 = dy4(n, co0, oy, ox0); let d1 = dy4(n, co0, oy, ox0 + 1u);
                let d2 = dy4(n, co0, oy, ox0 + 2u); let d3 = dy4(n, co0, oy, ox0 + 3u);
                let c0 = i32(ox0) - i32(PAD);
                // input row oy + ky − PAD, columns ox0 − PAD + t (t = 0..5) meet output column j at tap kx = t − j
                var v0 = x_at2(n, ci, r0, c0); var v1 = x_at2(n, ci, r0, c0 + 1); var v2 = x_at2(n, ci, r0, c0 + 2);
                var v3 = x_at2(n, ci, r0, c0 + 3); var v4 = x_at2(n, ci, r0, c0 + 4); var v5 = x_at2(n, ci, r0, c0 + 5);
                a00 += d0 * v0 + d1 * v1 + d2 * v2 + d3 * v3;
                a01 += d0 * v1 + d1 * v2 + d2 * v3 + d3 * v4;
                a02 += d0 * v2 + d1 * v3 + d2 * v4 + d3 * v5;
                v0 = x_at2(n, ci, r0 + 1, c0); v1 = x_at2(n, ci, r0 + 1, c0 + 1); v2 = x_at2(n, ci, r0 + 1, c0 + 2);
                v3 = x_at2(n, ci, r0 + 1, c0 + 3); v4 = x_at2(n, ci, r0 + 1, c0 + 4); v5 = x_at2(n, ci, r0 + 1, c0 + 5);
                a10 += d0 * v0 + d1 * v1 + d2 * v2 + d3 * v3;
                a11 += d0 * v1 + d1 * v2 + d2 * v3 + d3 * v4;
                a12 += d0 * v2 + d1 * v3 + d2 * v4 + d3 * v5;
                v0 = x_at2(n, ci, r0 + 2, c0); v1 = x_at2(n, ci, r0 + 2, c0 + 1); v2 = x_at2(n, ci, r0 + 2, c0 + 2);
                v3 = x_at2(n, ci, r0 + 2, c0 + 3); v4 = x_at2(n, ci, r0 + 2, c0 + 4); v5 = x_at2(n, ci, r0 + 2, c0 + 5);
                a20 += d0 * v0 + d1 * v1 + d2 * v2 + d3 * v3;
                a21 += d0 * v1 + d1 * v2 + d2 * v3 + d3 * v4;
                a22 += d0 * v2 + d1 * v3 + d2 * v4 + d3 * v5;
            }
        }
    }
    var acc = array<vec4<f32>, 9>(a00, a01, a02, a10, a11, a12, a20, a21, a22);
    for (var c = 0u; c < 4u; c++) {
        let co = co0 + c;
        if (co >= COUT) { break; }
        for (var t = 0u; t < 9u; t++) {
            dw[(split * COUT * CIN + co * CIN + ci) * 9u + t] = acc[t][c];
        }
    }
}

// backward_weight4_v4 (CPU adapters): thread (output row oy, ci, 4-channel block) sums, over all images and the
// columns of row oy, dy[n, co0..co0+3, oy, ·] · x[n, ci, oy+ky−PAD, · + kx − PAD] into partial[oy, co, ci, ky, kx];
// reduce_weight then sums the HO rows (NSPLIT = HO). The forward's lessons applied to the weight gradient: dy and x
// read as vec4 (8 + 12 vec4 loads per 288 multiply-adds for each 8-column block), neighbouring lanes on neighbouring
// rows of one plane (as forward8_v4), and the column blocks walked by calls with literal block numbers, so that
// after inlining every chunk offset and edge test is a constant (WO ≤ 64: eight calls, those past WO fold to
// nothing). Needs W % 4 == 0, WO % 4 == 0, COUT % 4 == 0, PAD ≤ 4, WO ≤ 64.
// lavapipe, width 128, batch 16 (benches/NOTES.md, session 12), against backward_weight: 16×16 maps 10.1 → 16.5
// GFLOP/s, 8×8 8.7 → 20.8.
@group(0) @binding(1) var<storage, read> dyv_bw: array<vec4<f32>>;

// acc[9c + t] gets, component by component, dy[n, co0 + c, oy, columns of block xb] · x(tap t) over the same
// columns: the four components are four column phases, added together only at the end, so that neither dy nor x
// needs transposing (an in-register transpose indexed by a loop counter is what llvmpipe could not unroll:
// the arrays went to the stack, read lane by lane, 6× slower than the scalar kernel).
fn bw_block(xb: u32, n: u32, ci: u32, co0: u32, oy: u32, acc: array<vec4<f32>, 36>) -> array<vec4<f32>, 36> {
    if (xb * XW >= WO) { return acc; }
    // d[2c + q] = dy[n, co0 + c, oy, 8xb + 4q .. +3]
    var d: array<vec4<f32>, 8>;
    for (var c = 0u; c < 4u; c++) {
        let r = ((n * COUT + co0 + c) * HO + oy) * (WO / 4u) + 2u * xb;
        d[2u * c] = dyv_bw[r];
        if (xb * XW + 4u < WO) { d[2u * c + 1u] = dyv_bw[r + 1u]; } else { d[2u * c + 1u] = vec4<f32>(0.0); }
    }
    // one call per kernel row with a literal ky, so that every accumulator index is a constant
    return bw_row(2u, xb, n, ci, oy, d, bw_row(1u, xb, n, ci, oy, d, bw_row(0u, xb, n, ci, oy, d, acc)));
}

fn bw_row(ky: u32, xb: u32, n: u32, ci: u32, oy: u32, d: array<vec4<f32>, 8>, acc: array<vec4<f32>, 36>) -> array<vec4<f32>, 36> {
    let iy = i32(oy + ky) - i32(PAD);
    if (iy < 0 || iy >= i32(H)) { return acc; }
    let v = x_row_at(n, ci, u32(iy), xb);
    var a = acc;
    for (var kx = 0u; kx < 3u; kx++) {
        // x at columns 8xb − PAD + kx + (0..3) and + (4..7): what dy's two chunks meet at tap (ky, kx)
        let s0 = vec4<f32>(v[kx], v[kx + 1u], v[kx + 2u], v[kx + 3u]);
        let s1 = vec4<f32>(v[kx + 4u], v[kx + 5u], v[kx + 6u], v[kx + 7u]);
        for (var c = 0u; c < 4u; c++) {
            let t = 9u * c + 3u * ky + kx;
            a[t] += d[2u * c] * s0 + d[2u * c + 1u] * s1;
        }
    }
    return a;
}

@compute @workgroup_size(64)
fn backward_weight4_v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let cq = COUT / 4u;
    let id = linear_id(gid, nwg);
    if (id >= HO * CIN * cq) { return; }
    let oy = id % HO;          // neighbouring lanes take neighbouring rows
    let ci = (id / HO) % CIN;
    let co0 = 4u * (id / (HO * CIN));
    var acc: array<vec4<f32>, 36>;
    for (var n = 0u; n < N; n++) {
        acc = bw_block(0u, n, ci, co0, oy, acc);
        acc = bw_block(1u, n, ci, co0, oy, acc);
        acc = bw_block(2u, n, ci, co0, oy, acc);
        acc = bw_block(3u, n, ci, co0, oy, acc);
        acc = bw_block(4u, n, ci, co0, oy, acc);
        acc = bw_block(5u, n, ci, co0, oy, acc);
        acc = bw_block(6u, n, ci, co0, oy, acc);
        acc = bw_block(7u, n, ci, co0, oy, acc);
    }
    for (var c = 0u; c < 4u; c++) {
        for (var t = 0u; t < 9u; t++) {
            let p = acc[9u * c + t];
            dw[((oy * COUT + co0 + c) * CIN + ci) * 9u + t] = p.x + p.y + p.z + p.w;
        }
    }
}

// backward_weight8_row_v4 (CPU adapters, rows at most 64 wide): the whole-row shape for the weight gradient.
// Thread (output row oy, ci, 8-channel block) holds the three x rows oy − PAD + ky of image n (zero rows outside
// the image) and walks dy row oy of each of its 8 channels chunk by chunk: one vec4 load of dy per 36 multiply-adds
// (4 column phases × 9 taps), the x rows loaded once per image for all 8 channels. Per image: 8·WO/4 + 3·W/4 vec4
// loads for 72·WO multiply-adds (backward_weight4_v4: 20 loads per 288 for each 8-column block). As there, the four
// components are column phases summed only when the partial sum for row oy is written; reduce_weight sums the rows.
// Measured on lavapipe (width 128, batch 16, fastest of 21 runs, fraction of the matmul peak; benches/NOTES.md, session
// 14) against backward_weight4_v4: first layers 84 → 108 % (1×28×28) and 74 → 109 % (3×32×32), 16×16 maps 89 → 113 %;
// 8×8 maps 108 → 107 % (not chosen there). With 4 channels per thread it was 96–104 % (not kept).
fn x_row_or_zero(n: u32, ci: u32, iy: i32) -> array<vec4<f32>, 16> {
    var row: array<vec4<f32>, 16>;
    if (iy >= 0 && iy < i32(H)) { row = x_row_all(n, ci, u32(iy)); }
    return row;
}

// columns c .. c + 3 of a held x row (zero outside): a register pick once c is a constant
fn x_held4(row: array<vec4<f32>, 16>, c: i32) -> vec4<f32> {
    return vec4<f32>(held_col(row, W, c), held_col(row, W, c + 1), held_col(row, W, c + 2), held_col(row, W, c + 3));
}

// a[3ky + kx] += dy chunk q (columns 4q .. 4q + 3 of the dy row at vec4 index r) · x row ky at columns 4q − PAD + kx ..
fn bwr_chunk(q: u32, r: u32, x0: array<vec4<f32>, 16>, x1: array<vec4<f32>, 16>, x2: array<vec4<f32>, 16>,
             a: array<vec4<f32>, 9>) -> array<vec4<f32>, 9> {
    if (4u * q >= WO) { return a; }
    let d = dyv_bw[r + q];
    let c = i32(4u * q) - i32(PAD);
    return array<vec4<f32>, 9>(
        a[0] + d * x_held4(x0, c), a[1] + d * x_held4(x0, c + 1), a[2] + d * x_held4(x0, c + 2),
        a[3] + d * x_held4(x1, c), a[4] + d * x_held4(x1, c + 1), a[5] + d * x_held4(x1, c + 2),
        a[6] + d * x_held4(x2, c), a[7] + d * x_held4(x2, c + 1), a[8] + d * x_held4(x2, c + 2));
}

// one output channel's 9 taps over a whole dy row, by calls with literal chunk numbers
fn bwr_channel(r: u32, x0: array<vec4<f32>, 16>, x1: array<vec4<f32>, 16>, x2: array<vec4<f32>, 16>,
               a: array<vec4<f32>, 9>) -> array<vec4<f32>, 9> {
    var b = a;
    b = bwr_chunk(0u, r, x0, x1, x2, b); b = bwr_chunk(1u, r, x0, x1, x2, b); b = bwr_chunk(2u, r, x0, x1, x2, b);
    b = bwr_chunk(3u, r, x0, x1, x2, b); b = bwr_chunk(4u, r, x0, x1, x2, b); b = bwr_chunk(5u, r, x0, x1, x2, b);
    b = bwr_chunk(6u, r, x0, x1, x2, b); b = bwr_chunk(7u, r, x0, x1, x2, b); b = bwr_chunk(8u, r, x0, x1, x2, b);
    b = bwr_chunk(9u, r, x0, x1, x2, b); b = bwr_chunk(10u, r, x0, x1, x2, b); b = bwr_chunk(11u, r, x0, x1, x2, b);
    b = bwr_chunk(12u, r, x0, x1, x2, b); b = bwr_chunk(13u, r, x0, x1, x2, b); b = bwr_chunk(14u, r, x0, x1, x2, b);
    return bwr_chunk(15u, r, x0, x1, x2, b);
}

// partial[oy, co, ci, ·] = the 9 taps of a, column phases added
fn bwr_store(oy: u32, co: u32, ci: u32, a: array<vec4<f32>, 9>) {
    let base = ((oy * COUT + co) * CIN + ci) * 9u;
    dw[base] = dot(a[0], vec4<f32>(1.0)); dw[base + 1u] = dot(a[1], vec4<f32>(1.0)); dw[base + 2u] = dot(a[2], vec4<f32>(1.0));
    dw[base + 3u] = dot(a[3], vec4<f32>(1.0)); dw[base + 4u] = dot(a[4], vec4<f32>(1.0)); dw[base + 5u] = dot(a[5], vec4<f32>(1.0));
    dw[base + 6u] = dot(a[6], vec4<f32>(1.0)); dw[base + 7u] = dot(a[7], vec4<f32>(1.0)); dw[base + 8u] = dot(a[8], vec4<f32>(1.0));
}

@compute @workgroup_size(64)
fn backward_weight8_row_v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= HO * CIN * (COUT / 8u)) { return; }
    let oy = id % HO;          // neighbouring lanes take neighbouring rows of one plane
    let ci = (id / HO) % CIN;
    let co0 = 8u * (id / (HO * CIN));
    let st = HO * (WO / 4u);   // channel stride of dy in vec4
    var a0: array<vec4<f32>, 9>; var a1: array<vec4<f32>, 9>; var a2: array<vec4<f32>, 9>; var a3: array<vec4<f32>, 9>;
    var a4: array<vec4<f32>, 9>; var a5: array<vec4<f32>, 9>; var a6: array<vec4<f32>, 9>; var a7: array<vec4<f32>, 9>;
    for (var n = 0u; n < N; n++) {
        let iy = i32(oy) - i32(PAD);
        let x0 = x_row_or_zero(n, ci, iy);
        let x1 = x_row_or_zero(n, ci, iy + 1);
        let x2 = x_row_or_zero(n, ci, iy + 2);
        let r = ((n * COUT + co0) * HO + oy) * (WO / 4u);
        a0 = bwr_channel(r, x0, x1, x2, a0); a1 = bwr_channel(r + st, x0, x1, x2, a1);
        a2 = bwr_channel(r + 2u * st, x0, x1, x2, a2); a3 = bwr_channel(r + 3u * st, x0, x1, x2, a3);
        a4 = bwr_channel(r + 4u * st, x0, x1, x2, a4); a5 = bwr_channel(r + 5u * st, x0, x1, x2, a5);
        a6 = bwr_channel(r + 6u * st, x0, x1, x2, a6); a7 = bwr_channel(r + 7u * st, x0, x1, x2, a7);
    }
    bwr_store(oy, co0, ci, a0); bwr_store(oy, co0 + 1u, ci, a1); bwr_store(oy, co0 + 2u, ci, a2); bwr_store(oy, co0 + 3u, ci, a3);
    bwr_store(oy, co0 + 4u, ci, a4); bwr_store(oy, co0 + 5u, ci, a5); bwr_store(oy, co0 + 6u, ci, a6); bwr_store(oy, co0 + 7u, ci, a7);
}

// dw[i] = Σ_s partial[s·COUT·CIN·9 + i]   (bindings: 0 partial, 1 dw (rw)); COUT·CIN·9 invocations
@group(0) @binding(0) var<storage, read> partial_w: array<f32>;

@group(0) @binding(1) var<storage, read_write> dw_out: array<f32>;

@compute @workgroup_size(64)
fn reduce_weight(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);
    let len = COUT * CIN * 9u;
    if (i >= len) { return; }
    var s = 0.0;
    for (var k = 0u; k < NSPLIT; k++) { s += partial_w[k * len + i]; }
    dw_out[i] = s;
}

// backward_bias: one 64-invocation workgroup per output channel; invocation i sums elements i, i + 64, … of each of
// the channel's N planes, then a tree over workgroup memory adds the 64 partial sums. One invocation per channel, as
// before, gave a width-32 layer a single workgroup: nothing to fill a GPU with. On lavapipe it measured the same
// (3 layers of an evaluation epoch at width 32: 6.5 → 5.4–6.9 ms; the loads bound it there; benches/NOTES.md,
// session 14). Six barriers per channel are cheap even where barriers are slow.
var<workgroup> bias_part: array<f32, 64>;

@compute @workgroup_size(64)
fn backward_bias(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) li: u32) {
    let co = wid.x + wid.y * nwg.x;  // uniform per workgroup, so the barriers below stay in uniform control flow
    var acc = 0.0;
    if (co < COUT) {
        for (var n = 0u; n < N; n++) {
            let base = (n * COUT + co) * HO * WO;
            for (var i = li; i < HO * WO; i += 64u) { acc += dy_bb[base + i]; }
        }
    }
    bias_part[li] = acc;
    workgroupBarrier();
    for (var half = 32u; half > 0u; half >>= 1u) {
        if (li < half) { bias_part[li] += bias_part[li + half]; }
        workgroupBarrier();
    }
    if (li == 0u && co < COUT) { db[co] = bias_part[0]; }
}
