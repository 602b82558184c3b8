// conv_input.wgsl — the input gradient of the 3×3 convolution: dx = convᵀ(dy, w) (conv_common.wgsl first).
//
// entry point       bindings (group 0, in order)                     one invocation computes
// backward_input_v4 0 dy, 1 wi, 2 dx (rw), all as vec4               4 input channels × the 8 columns of block XB of one row of dx
// backward_input8_v4 as backward_input_v4                            8 input channels × the 8 columns of block XB
// backward_input8_row_v4 as backward_input_v4                        8 input channels × a whole row of dx (W, WO ≤ 64)
// transpose_weight_in 0 w, 1 wi (rw)                                 one weight: wi[co,ky,kx,ci] = w[co,ci,ky,kx]
// backward_input_c1v4 0 dy (as vec4), 1 w, 2 dx (rw, as vec4)        1 input channel × the 8 columns of block XB of one row of dx
// backward_input_r1v4 as backward_input_c1v4                          1 input channel × a whole row of dx (W, WO ≤ 64)
// backward_input_r2v4 as backward_input_c1v4                          1 input channel × two whole rows of dx (H even)
// backward_input    0 dy, 1 w, 2 dx (rw)                             4 input channels × 8 adjacent columns of one row
// backward_input8   as backward_input                                8 input channels × 8 columns (CIN % 8 == 0)
// Dispatch: N·⌈CIN/4⌉·H·⌈W/8⌉ (backward_input; CIN/8 for backward_input8), N·(CIN/4)·H per column block XB = 0 .. ⌈W/8⌉
//           (backward_input_v4; CIN/8 for backward_input8_v4; N·(CIN/8)·H once for backward_input8_row_v4; N·CIN·H for
//           backward_input_c1v4 and backward_input_r1v4; N·CIN·H/2 for backward_input_r2v4), COUT·CIN·9
//           (transpose_weight_in); workgroup 64.

// backward_input
@group(0) @binding(0) var<storage, read> dy_bi: array<f32>;

@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

fn dy_at(rowbase: u32, col: i32) -> f32 {
    let inside = col >= 0 && col < i32(WO);
    return select(0.0, dy_bi[rowbase + u32(clamp(col, 0, i32(WO) - 1))], inside);
}

// w[co,ci,ky,kx] for 4 consecutive input channels ci0..ci0+3 (0 past CIN); unconditional loads when CIN % 4 == 0.
fn w4_in(co: u32, ci0: u32, ky: u32, kx: u32) -> vec4<f32> {
    if (CIN % 4u == 0u) {
        let b = (co * CIN + ci0) * 9u + ky * 3u + kx;
        return vec4<f32>(w[b], w[b + 9u], w[b + 18u], w[b + 27u]);
    }
    var r = vec4<f32>(0.0);
    for (var c = 0u; c < 4u; c++) {
        let ci = ci0 + c;
        if (ci < CIN) { r[c] = w[((co * CIN + ci) * 3u + ky) * 3u + kx]; }
    }
    return r;
}

// dx[n,ci,iy,ix] = Σ_co Σ_ky Σ_kx w[co,ci,ky,kx] · dy[n,co,iy+PAD−ky,ix+PAD−kx]  (the transposed convolution)
@compute @workgroup_size(64)
fn backward_input(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let xblocks = (W + XW - 1u) / XW;
    let cblocks = (CIN + 3u) / 4u;
    let id = linear_id(gid, nwg);
    if (id >= N * cblocks * H * xblocks) { return; }
    let xb = id % xblocks;
    let iy = (id / xblocks) % H;
    let cb = (id / (xblocks * H)) % cblocks;
    let n = id / (xblocks * H * cblocks);
    let ix0 = xb * XW;
    let ci0 = cb * 4u;

    var acc = array<vec4<f32>, 8>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0),
                                  vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    let c0 = i32(ix0 + PAD) - 2;
    for (var co = 0u; co < COUT; co++) {
        for (var ky = 0u; ky < 3u; ky++) {
            let oy = i32(iy + PAD) - i32(ky);
            if (oy < 0 || oy >= i32(HO)) { continue; }
            let rb = ((n * COUT + co) * HO + u32(oy)) * WO;
            // dy columns ix0 + PAD − 2 + t, t = 0..9, reach input column j through tap kx = j + 2 − t
            var u: array<f32, 10>;
            for (var t = 0u; t < 10u; t++) { u[t] = dy_at(rb, c0 + i32(t)); }
            let k0 = w4_in(co, ci0, ky, 0u); let k1 = w4_in(co, ci0, ky, 1u); let k2 = w4_in(co, ci0, ky, 2u);
            for (var j = 0u; j < 8u; j++) {
                acc[j] += u[j + 2u] * k0 + u[j + 1u] * k1 + u[j] * k2;
            }
        }
    }
    for (var j = 0u; j < 8u; j++) {
        let ix = ix0 + j;
        if (ix >= W) { break; }
        for (var c = 0u; c < 4u; c++) {
            let ci = ci0 + c;
            if (ci < CIN) { dx[((n * CIN + ci) * H + iy) * W + ix] = acc[j][c]; }
        }
    }
}

// backward_input with 8 input channels × 8 columns per invocation (CIN % 8 == 0); as forward8 against forward.
@compute @workgroup_size(64)
fn backward_input8(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let xblocks = (W + XW - 1u) / XW;
    let cblocks = CIN / 8u;
    let id = linear_id(gid, nwg);
    if (id >= N * cblocks * H * xblocks) { return; }
    let xb = id % xblocks;
    let iy = (id / xblocks) % H;
    let cb = (id / (xblocks * H)) % cblocks;
    let n = id / (xblocks * H * cblocks);
    let ix0 = xb * XW;
    let ci0 = cb * 8u;

    var lo = array<vec4<f32>, 8>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0),
                                 vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var hi = lo;
    let c0 = i32(ix0 + PAD) - 2;
    for (var co = 0u; co < COUT; co++) {
        for (var ky = 0u; ky < 3u; ky++) {
            let oy = i32(iy + PAD) - i32(ky);
            if (oy < 0 || oy >= i32(HO)) { continue; }
            let rb = ((n * COUT + co) * HO + u32(oy)) * WO;
            var u: array<f32, 10>;
            for (var t = 0u; t < 10u; t++) { u[t] = dy_at(rb, c0 + i32(t)); }
            let k0 = w4_in(co, ci0, ky, 0u); let k1 = w4_in(co, ci0, ky, 1u); let k2 = w4_in(co, ci0, ky, 2u);
            let h0 = w4_in(co, ci0 + 4u, ky, 0u); let h1 = w4_in(co, ci0 + 4u, ky, 1u); let h2 = w4_in(co, ci0 + 4u, ky, 2u);
            for (var j = 0u; j < 8u; j++) {
                lo[j] += u[j + 2u] * k0 + u[j + 1u] * k1 + u[j] * k2;
                hi[j] += u[j + 2u] * h0 + u[j + 1u] * h1 + u[j] * h2;
            }
        }
    }
    for (var j = 0u; j < 8u; j++) {
        let ix = ix0 + j;
        if (ix >= W) { break; }
        for (var c = 0u; c < 4u; c++) {
            dx[((n * CIN + ci0 + c) * H + iy) * W + ix] = lo[j][c];
            dx[((n * CIN + ci0 + 4u + c) * H + iy) * W + ix] = hi[j][c];
        }
    }
}

// ---- backward_input_v4 / backward_input8_v4: the input gradient for CPU adapters --------------------------------
// The transpose of forward_v4: dy read as vec4 (WO % 4 == 0), the weights as vec4 of 4 input channels from a copy
// wi [COUT,3,3,CIN] (`transpose_weight_in`, CIN % 4 == 0), dx written as vec4 (W % 4 == 0), the column block XB of dx
// a pipeline constant.
@group(0) @binding(0) var<storage, read> dyv: array<vec4<f32>>;

@group(0) @binding(1) var<storage, read> wi4: array<vec4<f32>>;

fn dy_chunk(rq: u32, q: i32) -> vec4<f32> {
    let inside = q >= 0 && q < i32(WO / 4u);
    return select(vec4<f32>(0.0), dyv[rq + u32(clamp(q, 0, i32(WO / 4u) - 1))], inside);
}

// dy row oy of (n, co), columns XB·8 + PAD − 2 + t (t = 0..9), from the 4 chunks over columns XB·8 − 4 .. XB·8 + 11
fn dy_row_v4(n: u32, co: u32, oy: u32) -> array<f32, 10> {
    let rq = ((n * COUT + co) * HO + oy) * (WO / 4u);
    let q0 = i32(2u * XB) - 1;
    let ch = array<vec4<f32>, 4>(dy_chunk(rq, q0), dy_chunk(rq, q0 + 1), dy_chunk(rq, q0 + 2), dy_chunk(rq, q0 + 3));
    var u: array<f32, 10>;
    for (var t = 0u; t < 10u; t++) {
        let c = PAD + 2u + t;
        u[t] = ch[c / 4u][c % 4u];
    }
    return u;
}

@group(0) @binding(2) var<storage, read_write> dxv: array<vec4<f32>>;

// as store_cols, for dx (W % 4 == 0 whenever WO % 4 == 0 and PAD is 1 or 3)
fn store_dx_cols(n: u32, ci: u32, iy: u32, vals: array<vec4<f32>, 8>) {
    for (var c = 0u; c < 4u; c++) {
        let r = ((n * CIN + ci + c) * H + iy) * (W / 4u) + 2u * XB;
        dxv[r] = vec4<f32>(vals[0][c], vals[1][c], vals[2][c], vals[3][c]);
        if (XB * XW + 4u < W) { dxv[r + 1u] = vec4<f32>(vals[4][c], vals[5][c], vals[6][c], vals[7][c]); }
    }
}

@compute @workgroup_size(64)
fn backward_input_v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let cq = CIN / 4u;
    let id = linear_id(gid, nwg);
    if (id >= N * cq * H) { return; }
    let iy = id % H;
    let cb = (id / H) % cq;
    let n = id / (H * cq);
    var acc = array<vec4<f32>, 8>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0),
                                  vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var co = 0u; co < COUT; co++) {
        for (var ky = 0u; ky < 3u; ky++) {
            let oy = i32(iy + PAD) - i32(ky);
            if (oy < 0 || oy >= i32(HO)) { continue; }
            let u = dy_row_v4(n, co, u32(oy));
            let wb = (co * 9u + ky * 3u) * cq + cb;  // wi4[(co, ky, kx), input-channel block]
            let k0 = wi4[wb]; let k1 = wi4[wb + cq]; let k2 = wi4[wb + 2u * cq];
            for (var j = 0u; j < 8u; j++) {
                acc[j] += u[j + 2u] * k0 + u[j + 1u] * k1 + u[j] * k2;
            }
        }
    }
    store_dx_cols(n, 4u * cb, iy, acc);
}

@compute @workgroup_size(64)
fn backward_input8_v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let cq = CIN / 4u;
    let c8 = CIN / 8u;
    let id = linear_id(gid, nwg);
    if (id >= N * c8 * H) { return; }
    let iy = id % H;
    let cb = (id / H) % c8;
    let n = id / (H * c8);
    var lo = array<vec4<f32>, 8>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0),
                                 vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var hi = lo;
    for (var co = 0u; co < COUT; co++) {
        for (var ky = 0u; ky < 3u; ky++) {
            let oy = i32(iy + PAD) - i32(ky);
            if (oy < 0 || oy >= i32(HO)) { continue; }
            let u = dy_row_v4(n, co, u32(oy));
            let wb = (co * 9u + ky * 3u) * cq + 2u * cb;
            let k0 = wi4[wb]; let k1 = wi4[wb + cq]; let k2 = wi4[wb + 2u * cq];
            let h0 = wi4[wb + 1u]; let h1 = wi4[wb + cq + 1u]; let h2 = wi4[wb + 2u * cq + 1u];
            for (var j = 0u; j < 8u; j++) {
                lo[j] += u[j + 2u] * k0 + u[j + 1u] * k1 + u[j] * k2;
                hi[j] += u[j + 2u] * h0 + u[j + 1u] * h1 + u[j] * h2;
            }
        }
    }
    store_dx_cols(n, 8u * cb, iy, lo);
    store_dx_cols(n, 8u * cb + 4u, iy, hi);
}

// dx chunk q of the 8 channels starting at row index r (channel stride H·W/4 vec4)
fn bi8_store(q: u32, r: u32, a: array<vec4<f32>, 8>) {
    if (4u * q >= W) { return; }
    let st = H * (W / 4u);
    dxv[r + q] = a[0]; dxv[r + st + q] = a[1]; dxv[r + 2u * st + q] = a[2]; dxv[r + 3u * st + q] = a[3];
    dxv[r + 4u * st + q] = a[4]; dxv[r + 5u * st + q] = a[5]; dxv[r + 6u * st + q] = a[6]; dxv[r + 7u * st + q] = a[7];
}

// backward_input8_row_v4 (CPU adapters, rows at most 64 wide): forward8_row_v4's shape for the input gradient,
// 8 input channels × a whole dx row per thread. Per output channel and kernel row: the dy row as WO/4 vec4 loads and 6
// vec4 weights (wi [COUT,3,3,CIN]) for 24·W multiply-adds; dx written as W/4 vec4 per channel once at the end.
// dx column x reads dy column x + PAD − kx. (row8_add with c0 = PAD, step −1.)
@compute @workgroup_size(64)
fn backward_input8_row_v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let cq = CIN / 4u;
    let c8 = CIN / 8u;
    let id = linear_id(gid, nwg);
    if (id >= N * c8 * H) { return; }
    let iy = id % H;
    let cb = (id / H) % c8;
    let n = id / (H * c8);
    let z = vec4<f32>(0.0);
    let zv = array<vec4<f32>, 8>(z, z, z, z, z, z, z, z);
    var acc = array<array<vec4<f32>, 8>, 16>(zv, zv, zv, zv, zv, zv, zv, zv, zv, zv, zv, zv, zv, zv, zv, zv);  // acc[q][c]
    for (var co = 0u; co < COUT; co++) {
        for (var ky = 0u; ky < 3u; ky++) {
            let oy = i32(iy + PAD) - i32(ky);
            if (oy < 0 || oy >= i32(HO)) { continue; }
            let row = dy_row_all(n, co, u32(oy));
            let wb = (co * 9u + ky * 3u) * cq + 2u * cb;  // wi4[(co, ky, kx), input-channel block 2cb and 2cb + 1]
            let k = array<vec4<f32>, 6>(wi4[wb], wi4[wb + cq], wi4[wb + 2u * cq], wi4[wb + 1u], wi4[wb + cq + 1u], wi4[wb + 2u * cq + 1u]);
            acc = row8_add(W, WO, i32(PAD), -1, row, k, acc);
        }
    }
    let r = ((n * CIN + 8u * cb) * H + iy) * (W / 4u);
    bi8_store(0u, r, acc[0]); bi8_store(1u, r, acc[1]); bi8_store(2u, r, acc[2]); bi8_store(3u, r, acc[3]);
    bi8_store(4u, r, acc[4]); bi8_store(5u, r, acc[5]); bi8_store(6u, r, acc[6]); bi8_store(7u, r, acc[7]);
    bi8_store(8u, r, acc[8]); bi8_store(9u, r, acc[9]); bi8_store(10u, r, acc[10]); bi8_store(11u, r, acc[11]);
    bi8_store(12u, r, acc[12]); bi8_store(13u, r, acc[13]); bi8_store(14u, r, acc[14]); bi8_store(15u, r, acc[15]);
}

// backward_input_c1v4: one input channel × the 8 columns of block XB per thread, for the first layer's 1 or 3 input
// channels, where the channel-blocked kernels waste most of their lanes (CIN = 1 fills 1 of 4 channels). dy read and
// dx written as vec4 (W, WO multiples of 4); the 3 weights per step are scalar loads from w as stored.
@compute @workgroup_size(64)
fn backward_input_c1v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= N * CIN * H) { return; }
    let iy = id % H;
    let ci = (id / H) % CIN;
    let n = id / (H * CIN);
    var lo = vec4<f32>(0.0);  // columns XB·8 .. +3
    var hi = vec4<f32>(0.0);  // columns XB·8 + 4 .. +7
    for (var co = 0u; co < COUT; co++) {
        for (var ky = 0u; ky < 3u; ky++) {
            let oy = i32(iy + PAD) - i32(ky);
            if (oy < 0 || oy >= i32(HO)) { continue; }
            let u = dy_row_v4(n, co, u32(oy));
            let wb = (co * CIN + ci) * 9u + ky * 3u;
            let k0 = w[wb]; let k1 = w[wb + 1u]; let k2 = w[wb + 2u];
            // input column XB·8 + j gets dy column XB·8 + j + PAD − kx = u[j + 2 − kx]
            lo += vec4<f32>(u[2], u[3], u[4], u[5]) * k0 + vec4<f32>(u[1], u[2], u[3], u[4]) * k1 + vec4<f32>(u[0], u[1], u[2], u[3]) * k2;
            hi += vec4<f32>(u[6], u[7], u[8], u[9]) * k0 + vec4<f32>(u[5], u[6], u[7], u[8]) * k1 + vec4<f32>(u[4], u[5], u[6], u[7]) * k2;
        }
    }
    let r = ((n * CIN + ci) * H + iy) * (W / 4u) + 2u * XB;
    dxv[r] = lo;
    if (XB * XW + 4u < W) { dxv[r + 1u] = hi; }
}

// backward_input_r1v4: one input channel × a whole row of dx per thread (W, WO ≤ 64), for the first layer. Per output
// channel and kernel row: the dy row as WO/4 vec4 loads and 3 scalar weights for 3·W multiply-adds (the 8-column
// c1v4 reads 4 chunks and 3 weights for 24). The loops over chunks are unrolled by the compiler (constant trip
// counts, small bodies), so `row` and `acc` are indexed by constants only and stay in registers.
fn row_col(row: array<vec4<f32>, 16>, c: i32) -> f32 {
    // dy at column c of the held row, zero outside 0 .. WO − 1 (c is a constant once the loops are unrolled)
    let k = u32(clamp(c, 0, i32(WO) - 1));
    return select(0.0, row[k / 4u][k % 4u], c >= 0 && c < i32(WO));
}

// dx chunk q (columns 4q .. 4q + 3) plus what kernel row (k0, k1, k2) adds from the held dy row: dx column c gets dy
// column c + PAD − kx through weight kx. Chunks past W return a unchanged (folded away for a literal q).
fn r1_chunk(q: u32, row: array<vec4<f32>, 16>, k0: f32, k1: f32, k2: f32, a: vec4<f32>) -> vec4<f32> {
    if (4u * q >= W) { return a; }
    let c = i32(4u * q + PAD);
    return a + vec4<f32>(row_col(row, c), row_col(row, c + 1), row_col(row, c + 2), row_col(row, c + 3)) * k0
             + vec4<f32>(row_col(row, c - 1), row_col(row, c), row_col(row, c + 1), row_col(row, c + 2)) * k1
             + vec4<f32>(row_col(row, c - 2), row_col(row, c - 1), row_col(row, c), row_col(row, c + 1)) * k2;
}

// a + what one dy row adds to one dx row through kernel row (k0, k1, k2). One call per chunk with a literal chunk
// number: as a loop (12 reads of `row` per chunk) it was not unrolled, which put `row` on the stack, read lane by
// lane (measured 100× slower).
fn r1_row_add(row: array<vec4<f32>, 16>, k0: f32, k1: f32, k2: f32, a: array<vec4<f32>, 16>) -> array<vec4<f32>, 16> {
    var b = a;
    b[0] = r1_chunk(0u, row, k0, k1, k2, b[0]); b[1] = r1_chunk(1u, row, k0, k1, k2, b[1]);
    b[2] = r1_chunk(2u, row, k0, k1, k2, b[2]); b[3] = r1_chunk(3u, row, k0, k1, k2, b[3]);
    b[4] = r1_chunk(4u, row, k0, k1, k2, b[4]); b[5] = r1_chunk(5u, row, k0, k1, k2, b[5]);
    b[6] = r1_chunk(6u, row, k0, k1, k2, b[6]); b[7] = r1_chunk(7u, row, k0, k1, k2, b[7]);
    b[8] = r1_chunk(8u, row, k0, k1, k2, b[8]); b[9] = r1_chunk(9u, row, k0, k1, k2, b[9]);
    b[10] = r1_chunk(10u, row, k0, k1, k2, b[10]); b[11] = r1_chunk(11u, row, k0, k1, k2, b[11]);
    b[12] = r1_chunk(12u, row, k0, k1, k2, b[12]); b[13] = r1_chunk(13u, row, k0, k1, k2, b[13]);
    b[14] = r1_chunk(14u, row, k0, k1, k2, b[14]); b[15] = r1_chunk(15u, row, k0, k1, k2, b[15]);
    return b;
}

// dy row oy of (n, co) as WO/4 vec4 (the loop has a one-load body and a constant trip count: unrolled)
fn dy_row_all(n: u32, co: u32, oy: u32) -> array<vec4<f32>, 16> {
    let rq = ((n * COUT + co) * HO + oy) * (WO / 4u);
    var row: array<vec4<f32>, 16>;
    for (var q = 0u; q < WO / 4u; q++) { row[q] = dyv[rq + q]; }
    return row;
}

@compute @workgroup_size(64)
fn backward_input_r1v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= N * CIN * H) { return; }
    let iy = id % H;
    let ci = (id / H) % CIN;
    let n = id / (H * CIN);
    var acc: array<vec4<f32>, 16>;  // acc[q] = dx columns 4q .. 4q + 3
    for (var co = 0u; co < COUT; co++) {
        for (var ky = 0u; ky < 3u; ky++) {
            let oy = i32(iy + PAD) - i32(ky);
            if (oy < 0 || oy >= i32(HO)) { continue; }
            let row = dy_row_all(n, co, u32(oy));
            let wb = (co * CIN + ci) * 9u + ky * 3u;
            let k0 = w[wb]; let k1 = w[wb + 1u]; let k2 = w[wb + 2u];
            acc = r1_row_add(row, k0, k1, k2, acc);
        }
    }
    let r = ((n * CIN + ci) * H + iy) * (W / 4u);
    for (var q = 0u; q < W / 4u; q++) { dxv[r + q] = acc[q]; }
}

// backward_input_r2v4: as r1v4 for two dx rows per thread (H even): the 4 dy rows they need are read once each,
// 4·WO/4 + 9 loads per output channel for 2 rows instead of 2·(3·WO/4 + 3).
struct Rows2 { a0: array<vec4<f32>, 16>, a1: array<vec4<f32>, 16> }

// dy row j (0..3) of the four below dx rows iy0, iy0 + 1 (oy = iy0 + PAD − 2 + j) added to both; j is a literal,
// so the kernel rows (ky = 2 − j for row iy0, 3 − j for iy0 + 1) and the weights picked from wk are constants
fn r2_row(j: u32, n: u32, co: u32, iy0: u32, wk: array<f32, 9>, acc: Rows2) -> Rows2 {
    let oy = i32(iy0 + PAD + j) - 2;
    if (oy < 0 || oy >= i32(HO)) { return acc; }
    let row = dy_row_all(n, co, u32(oy));
    var r = acc;
    if (j <= 2u) { let ky = 2u - j; r.a0 = r1_row_add(row, wk[3u * ky], wk[3u * ky + 1u], wk[3u * ky + 2u], r.a0); }
    if (j >= 1u) { let ky = 3u - j; r.a1 = r1_row_add(row, wk[3u * ky], wk[3u * ky + 1u], wk[3u * ky + 2u], r.a1); }
    return r;
}

@compute @workgroup_size(64)
fn backward_input_r2v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    let hp = H / 2u;
    if (id >= N * CIN * hp) { return; }
    let iy0 = 2u * (id % hp);
    let ci = (id / hp) % CIN;
    let n = id / (hp * CIN);
    var acc: Rows2;
    for (var co = 0u; co < COUT; co++) {
        let wb = (co * CIN + ci) * 9u;
        let wk = array<f32, 9>(w[wb], w[wb + 1u], w[wb + 2u], w[wb + 3u], w[wb + 4u], w[wb + 5u], w[wb + 6u], w[wb + 7u], w[wb + 8u]);
        acc = r2_row(0u, n, co, iy0, wk, acc);
        acc = r2_row(1u, n, co, iy0, wk, acc);
        acc = r2_row(2u, n, co, iy0, wk, acc);
        acc = r2_row(3u, n, co, iy0, wk, acc);
    }
    let r = ((n * CIN + ci) * H + iy0) * (W / 4u);
    for (var q = 0u; q < W / 4u; q++) { dxv[r + q] = acc.a0[q]; dxv[r + W / 4u + q] = acc.a1[q]; }
}

// wi[co,ky,kx,ci] = w[co,ci,ky,kx] (bindings: 0 w, 1 wi (rw)); COUT·CIN·9 invocations, one per weight
@compute @workgroup_size(64)
fn transpose_weight_in(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);  // index into wi: (co·9 + tap)·CIN + ci
    if (i >= COUT * CIN * 9u) { return; }
    let ci = i % CIN;
    let tap = (i / CIN) % 9u;
    let co = i / (CIN * 9u);
    wt_dst[i] = w_src[(co * CIN + ci) * 9u + tap];
}
