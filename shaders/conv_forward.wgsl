// conv_forward.wgsl — the forward pass of the 3×3 convolution: y = conv(x, w) + b (conv_common.wgsl first).
//
// entry point       bindings (group 0, in order)                     one invocation computes
// forward           0 x, 1 w, 2 b, 3 y (rw)                          4 output channels × 8 adjacent columns of one row
// forward8          as forward                                       8 output channels × 8 columns (COUT % 8 == 0)
// forward_v4        0 x, 1 wt, 2 b, 3 y (rw); x, wt, y as vec4      4 output channels × the 8 columns of block XB (a pipeline constant) of one row
// forward8_v4       as forward_v4                                    8 output channels × the 8 columns of block XB
// forward_row_v4    as forward_v4                                    4 output channels × a whole output row (W, WO ≤ 64)
// forward8_row_v4   as forward_v4                                    8 output channels × a whole output row (W, WO ≤ 64)
// forward_row_v4_stats, forward8_row_v4_stats  as forward_row_v4 / forward8_row_v4, plus 4 rowstats (rw) [N,COUT/4,HO,2] as vec4:
//                   each output row's mean and Σ (y − mean)² per channel, for norm.wgsl's forward_relu_pool_rows_v4
// transpose_weight  0 w, 1 wt (rw)                                   one weight: wt[ci,ky,kx,co] = w[co,ci,ky,kx]
// Dispatch: invocations = N·⌈COUT/4⌉·HO·⌈WO/8⌉ (forward; COUT/8 for forward8),
//           N·(COUT/4)·HO per column block XB = 0 .. ⌈WO/8⌉ (forward_v4; COUT/8 for forward8_v4; N·(COUT/4)·HO once for
//           forward_row_v4, N·(COUT/8)·HO for forward8_row_v4 and the _stats variants), COUT·CIN·9 (transpose_weight);
//           workgroup 64.

// The GPU-class implicit-GEMM forms of all three passes are in conv_gemm.wgsl.

// Value of x[n,c,row,col] with zero outside the image; `rowbase` = ((n·CIN + c)·H + row)·W.
fn x_at(rowbase: u32, col: i32) -> f32 {
    let inside = col >= 0 && col < i32(W);
    return select(0.0, x[rowbase + u32(clamp(col, 0, i32(W) - 1))], inside);
}

// w[co,ci,ky,kx] for 4 consecutive output channels co0..co0+3 (0 past COUT). When COUT is a multiple of 4
// (every width the papers use) the test folds away at pipeline creation and the four loads are unconditional.
fn w4_out(co0: u32, ci: u32, ky: u32, kx: u32) -> vec4<f32> {
    if (COUT % 4u == 0u) {
        let b = (co0 * CIN + ci) * 9u + ky * 3u + kx;
        let s = CIN * 9u;
        return vec4<f32>(w[b], w[b + s], w[b + 2u * s], w[b + 3u * s]);
    }
    var r = vec4<f32>(0.0);
    for (var c = 0u; c < 4u; c++) {
        let co = co0 + c;
        if (co < COUT) { r[c] = w[((co * CIN + ci) * 3u + ky) * 3u + kx]; }
    }
    return r;
}

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let xblocks = (WO + XW - 1u) / XW;
    let cblocks = (COUT + 3u) / 4u;
    let id = linear_id(gid, nwg);
    if (id >= N * cblocks * HO * xblocks) { return; }
    let xb = id % xblocks;
    let oy = (id / xblocks) % HO;
    let cb = (id / (xblocks * HO)) % cblocks;
    let n = id / (xblocks * HO * cblocks);
    let ox0 = xb * XW;
    let co0 = cb * 4u;

    // acc[j] holds output column ox0 + j for channels co0..co0+3.
    var bias = vec4<f32>(0.0);
    for (var c = 0u; c < 4u; c++) { if (co0 + c < COUT) { bias[c] = b[co0 + c]; } }
    var acc = array<vec4<f32>, 8>(bias, bias, bias, bias, bias, bias, bias, bias);
    let c0 = i32(ox0) - i32(PAD);
    for (var ci = 0u; ci < CIN; ci++) {
        for (var ky = 0u; ky < 3u; ky++) {
            let iy = i32(oy + ky) - i32(PAD);
            if (iy < 0 || iy >= i32(H)) { continue; }
            let rb = ((n * CIN + ci) * H + u32(iy)) * W;
            // input columns ox0 − PAD + t, t = 0..9, feed output column j through tap kx = t − j
            var v: array<f32, 10>;
            for (var t = 0u; t < 10u; t++) { v[t] = x_at(rb, c0 + i32(t)); }
            let k0 = w4_out(co0, ci, ky, 0u); let k1 = w4_out(co0, ci, ky, 1u); let k2 = w4_out(co0, ci, ky, 2u);
            for (var j = 0u; j < 8u; j++) {
                acc[j] += v[j] * k0 + v[j + 1u] * k1 + v[j + 2u] * k2;
            }
        }
    }
    for (var j = 0u; j < 8u; j++) {
        let ox = ox0 + j;
        if (ox >= WO) { break; }
        for (var c = 0u; c < 4u; c++) {
            let co = co0 + c;
            if (co < COUT) { y[((n * COUT + co) * HO + oy) * WO + ox] = acc[j][c]; }
        }
    }
}

// forward with 8 output channels × 8 columns per invocation: 192 multiply-adds per 34 loads (forward: 96 per
// 22). On CPU adapters the loads, not the arithmetic, bound these kernels (benches/NOTES.md).
@compute @workgroup_size(64)
fn forward8(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let xblocks = (WO + XW - 1u) / XW;
    let cblocks = (COUT + 7u) / 8u;
    let id = linear_id(gid, nwg);
    if (id >= N * cblocks * HO * xblocks) { return; }
    let xb = id % xblocks;
    let oy = (id / xblocks) % HO;
    let cb = (id / (xblocks * HO)) % cblocks;
    let n = id / (xblocks * HO * cblocks);
    let ox0 = xb * XW;
    let co0 = cb * 8u;

    var blo = vec4<f32>(0.0);
    var bhi = vec4<f32>(0.0);
    for (var c = 0u; c < 4u; c++) {
        if (co0 + c < COUT) { blo[c] = b[co0 + c]; }
        if (co0 + 4u + c < COUT) { bhi[c] = b[co0 + 4u + c]; }
    }
    var lo = array<vec4<f32>, 8>(blo, blo, blo, blo, blo, blo, blo, blo);
    var hi = array<vec4<f32>, 8>(bhi, bhi, bhi, bhi, bhi, bhi, bhi, bhi);
    let c0 = i32(ox0) - i32(PAD);
    for (var ci = 0u; ci < CIN; ci++) {
        for (var ky = 0u; ky < 3u; ky++) {
            let iy = i32(oy + ky) - i32(PAD);
            if (iy < 0 || iy >= i32(H)) { continue; }
            let rb = ((n * CIN + ci) * H + u32(iy)) * W;
            var v: array<f32, 10>;
            for (var t = 0u; t < 10u; t++) { v[t] = x_at(rb, c0 + i32(t)); }
            let k0 = w4_out(co0, ci, ky, 0u); let k1 = w4_out(co0, ci, ky, 1u); let k2 = w4_out(co0, ci, ky, 2u);
            let h0 = w4_out(co0 + 4u, ci, ky, 0u); let h1 = w4_out(co0 + 4u, ci, ky, 1u); let h2 = w4_out(co0 + 4u, ci, ky, 2u);
            for (var j = 0u; j < 8u; j++) {
                lo[j] += v[j] * k0 + v[j + 1u] * k1 + v[j + 2u] * k2;
                hi[j] += v[j] * h0 + v[j + 1u] * h1 + v[j + 2u] * h2;
            }
        }
    }
    for (var j = 0u; j < 8u; j++) {
        let ox = ox0 + j;
        if (ox >= WO) { break; }
        for (var c = 0u; c < 4u; c++) {
            if (co0 + c < COUT) { y[((n * COUT + co0 + c) * HO + oy) * WO + ox] = lo[j][c]; }
            if (co0 + 4u + c < COUT) { y[((n * COUT + co0 + 4u + c) * HO + oy) * WO + ox] = hi[j][c]; }
        }
    }
}

@group(0) @binding(1) var<storage, read> wt4: array<vec4<f32>>;

// y as vec4 (WO % 4 == 0 whenever W % 4 == 0): stores cost a lane loop each too, so 8 vec4 stores replace 32 scalar ones
@group(0) @binding(3) var<storage, read_write> yv: array<vec4<f32>>;

// vals[j][c] = output channel co + c at column XB·8 + j; written as two vec4 of columns per channel
fn store_cols(n: u32, co: u32, oy: u32, vals: array<vec4<f32>, 8>) {
    for (var c = 0u; c < 4u; c++) {
        let r = ((n * COUT + co + c) * HO + oy) * (WO / 4u) + 2u * XB;
        yv[r] = vec4<f32>(vals[0][c], vals[1][c], vals[2][c], vals[3][c]);
        if (XB * XW + 4u < WO) { yv[r + 1u] = vec4<f32>(vals[4][c], vals[5][c], vals[6][c], vals[7][c]); }
    }
}

@compute @workgroup_size(64)
fn forward_v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let cq = COUT / 4u;
    let id = linear_id(gid, nwg);
    if (id >= N * cq * HO) { return; }
    let oy = id % HO;          // neighbouring lanes take neighbouring rows of one channel block
    let cb = (id / HO) % cq;
    let n = id / (HO * cq);
    let bias = vec4<f32>(b[4u * cb], b[4u * cb + 1u], b[4u * cb + 2u], b[4u * cb + 3u]);
    var acc = array<vec4<f32>, 8>(bias, bias, bias, bias, bias, bias, bias, bias);
    for (var ci = 0u; ci < CIN; ci++) {
        for (var ky = 0u; ky < 3u; ky++) {
            let iy = i32(oy + ky) - i32(PAD);
            if (iy < 0 || iy >= i32(H)) { continue; }
            let v = x_row_v4(n, ci, u32(iy));
            let wb = (ci * 9u + ky * 3u) * cq + cb;  // wt4[(ci, ky, kx), channel block]
            let k0 = wt4[wb]; let k1 = wt4[wb + cq]; let k2 = wt4[wb + 2u * cq];
            for (var j = 0u; j < 8u; j++) {
                acc[j] += v[j] * k0 + v[j + 1u] * k1 + v[j + 2u] * k2;
            }
        }
    }
    store_cols(n, 4u * cb, oy, acc);
}

@compute @workgroup_size(64)
fn forward8_v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let cq = COUT / 4u;
    let c8 = COUT / 8u;
    let id = linear_id(gid, nwg);
    if (id >= N * c8 * HO) { return; }
    let oy = id % HO;
    let cb = (id / HO) % c8;
    let n = id / (HO * c8);
    let co0 = 8u * cb;
    let blo = vec4<f32>(b[co0], b[co0 + 1u], b[co0 + 2u], b[co0 + 3u]);
    let bhi = vec4<f32>(b[co0 + 4u], b[co0 + 5u], b[co0 + 6u], b[co0 + 7u]);
    var lo = array<vec4<f32>, 8>(blo, blo, blo, blo, blo, blo, blo, blo);
    var hi = array<vec4<f32>, 8>(bhi, bhi, bhi, bhi, bhi, bhi, bhi, bhi);
    for (var ci = 0u; ci < CIN; ci++) {
        for (var ky = 0u; ky < 3u; ky++) {
            let iy = i32(oy + ky) - i32(PAD);
            if (iy < 0 || iy >= i32(H)) { continue; }
            let v = x_row_v4(n, ci, u32(iy));
            let wb = (ci * 9u + ky * 3u) * cq + 2u * cb;
            let k0 = wt4[wb]; let k1 = wt4[wb + cq]; let k2 = wt4[wb + 2u * cq];
            let h0 = wt4[wb + 1u]; let h1 = wt4[wb + cq + 1u]; let h2 = wt4[wb + 2u * cq + 1u];
            for (var j = 0u; j < 8u; j++) {
                lo[j] += v[j] * k0 + v[j + 1u] * k1 + v[j + 2u] * k2;
                hi[j] += v[j] * h0 + v[j + 1u] * h1 + v[j + 2u] * h2;
            }
        }
    }
    store_cols(n, co0, oy, lo);
    store_cols(n, co0 + 4u, oy, hi);
}

fn x_rowcol(row: array<vec4<f32>, 16>, c: i32) -> f32 {
    let k = u32(clamp(c, 0, i32(W) - 1));
    return select(0.0, row[k / 4u][k % 4u], c >= 0 && c < i32(W));
}

// output chunk q (columns 4q .. 4q + 3) of the 4 channels, a[c], plus kernel row (k0, k1, k2) (vec4 over channels)
// applied to the held x row: output column o reads x column o − PAD + kx
fn fr_chunk(q: u32, row: array<vec4<f32>, 16>, k0: vec4<f32>, k1: vec4<f32>, k2: vec4<f32>, a: array<vec4<f32>, 4>) -> array<vec4<f32>, 4> {
    if (4u * q >= WO) { return a; }
    let c = i32(4u * q) - i32(PAD);
    let s0 = vec4<f32>(x_rowcol(row, c), x_rowcol(row, c + 1), x_rowcol(row, c + 2), x_rowcol(row, c + 3));
    let s1 = vec4<f32>(x_rowcol(row, c + 1), x_rowcol(row, c + 2), x_rowcol(row, c + 3), x_rowcol(row, c + 4));
    let s2 = vec4<f32>(x_rowcol(row, c + 2), x_rowcol(row, c + 3), x_rowcol(row, c + 4), x_rowcol(row, c + 5));
    return array<vec4<f32>, 4>(a[0] + s0 * k0.x + s1 * k1.x + s2 * k2.x, a[1] + s0 * k0.y + s1 * k1.y + s2 * k2.y,
                               a[2] + s0 * k0.z + s1 * k1.z + s2 * k2.z, a[3] + s0 * k0.w + s1 * k1.w + s2 * k2.w);
}

// the 4 channels' whole output row oy of image n (acc[q][c]: output chunk q of channel 4cb + c), bias included
fn fr4_acc(n: u32, cb: u32, oy: u32) -> array<array<vec4<f32>, 4>, 16> {
    let cq = COUT / 4u;
    let bv = array<vec4<f32>, 4>(vec4<f32>(b[4u * cb]), vec4<f32>(b[4u * cb + 1u]), vec4<f32>(b[4u * cb + 2u]), vec4<f32>(b[4u * cb + 3u]));
    var acc: array<array<vec4<f32>, 4>, 16>;
    for (var q = 0u; q < 16u; q++) { acc[q] = bv; }
    for (var ci = 0u; ci < CIN; ci++) {
        for (var ky = 0u; ky < 3u; ky++) {
            let iy = i32(oy + ky) - i32(PAD);
            if (iy < 0 || iy >= i32(H)) { continue; }
            let row = x_row_all(n, ci, u32(iy));
            let wb = (ci * 9u + ky * 3u) * cq + cb;  // wt4[(ci, ky, kx), channel block]
            let k0 = wt4[wb]; let k1 = wt4[wb + cq]; let k2 = wt4[wb + 2u * cq];
            acc[0] = fr_chunk(0u, row, k0, k1, k2, acc[0]); acc[1] = fr_chunk(1u, row, k0, k1, k2, acc[1]);
            acc[2] = fr_chunk(2u, row, k0, k1, k2, acc[2]); acc[3] = fr_chunk(3u, row, k0, k1, k2, acc[3]);
            acc[4] = fr_chunk(4u, row, k0, k1, k2, acc[4]); acc[5] = fr_chunk(5u, row, k0, k1, k2, acc[5]);
            acc[6] = fr_chunk(6u, row, k0, k1, k2, acc[6]); acc[7] = fr_chunk(7u, row, k0, k1, k2, acc[7]);
            acc[8] = fr_chunk(8u, row, k0, k1, k2, acc[8]); acc[9] = fr_chunk(9u, row, k0, k1, k2, acc[9]);
            acc[10] = fr_chunk(10u, row, k0, k1, k2, acc[10]); acc[11] = fr_chunk(11u, row, k0, k1, k2, acc[11]);
            acc[12] = fr_chunk(12u, row, k0, k1, k2, acc[12]); acc[13] = fr_chunk(13u, row, k0, k1, k2, acc[13]);
            acc[14] = fr_chunk(14u, row, k0, k1, k2, acc[14]); acc[15] = fr_chunk(15u, row, k0, k1, k2, acc[15]);
        }
    }
    return acc;
}

fn fr4_store(n: u32, cb: u32, oy: u32, acc: array<array<vec4<f32>, 4>, 16>) {
    for (var c = 0u; c < 4u; c++) {
        let r = ((n * COUT + 4u * cb + c) * HO + oy) * (WO / 4u);
        for (var q = 0u; q < WO / 4u; q++) { yv[r + q] = acc[q][c]; }
    }
}

@compute @workgroup_size(64)
fn forward_row_v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= N * (COUT / 4u) * HO) { return; }
    let t = row_thread(id, COUT / 4u);
    fr4_store(t.x, t.y, t.z, fr4_acc(t.x, t.y, t.z));
}

// the bias as vec4 (COUT % 8 == 0 here): 2 loads instead of 8
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;

// output chunk q of the 8 channels starting at row index r (channel stride HO·WO/4 vec4)
fn fr8_store(q: u32, r: u32, a: array<vec4<f32>, 8>) {
    if (4u * q >= WO) { return; }
    let st = HO * (WO / 4u);
    yv[r + q] = a[0]; yv[r + st + q] = a[1]; yv[r + 2u * st + q] = a[2]; yv[r + 3u * st + q] = a[3];
    yv[r + 4u * st + q] = a[4]; yv[r + 5u * st + q] = a[5]; yv[r + 6u * st + q] = a[6]; yv[r + 7u * st + q] = a[7];
}

// forward8_row_v4 (CPU adapters, every layer with more than one input channel and rows at most 64 wide):
// forward_row_v4 with 8 output channels per thread, so each x row load and each vec4 weight serve twice the
// multiply-adds. Measured on lavapipe (width 128, batch 16, fastest of 21 runs) against forward8_v4 / forward_row_v4:
// 16×16 maps 21.5 / 27.9 → 35.2 GFLOP/s, 8×8 23.9 / 24.5 → 25.2, 3×32×32 15.3 / 22.0 → 23.6. With one input channel
// it loses to forward_row_v4 (16.7 → 15.3): 9 multiply-adds per output leave the stores (WO/4 per channel, the same
// in both) in charge, and 8 × WO accumulators spill.
// the 8 channels' whole output row oy of image n (acc[q][c]: output chunk q of channel 8cb + c), bias included
fn fr8_acc(n: u32, cb: u32, oy: u32) -> array<array<vec4<f32>, 8>, 16> {
    let cq = COUT / 4u;
    let blo = b4[2u * cb];
    let bhi = b4[2u * cb + 1u];
    let bv = array<vec4<f32>, 8>(vec4<f32>(blo.x), vec4<f32>(blo.y), vec4<f32>(blo.z), vec4<f32>(blo.w),
                                 vec4<f32>(bhi.x), vec4<f32>(bhi.y), vec4<f32>(bhi.z), vec4<f32>(bhi.w));
    var acc = array<array<vec4<f32>, 8>, 16>(bv, bv, bv, bv, bv, bv, bv, bv, bv, bv, bv, bv, bv, bv, bv, bv);  // acc[q][c]
    for (var ci = 0u; ci < CIN; ci++) {
        for (var ky = 0u; ky < 3u; ky++) {
            let iy = i32(oy + ky) - i32(PAD);
            if (iy < 0 || iy >= i32(H)) { continue; }
            let row = x_row_all(n, ci, u32(iy));
            let wb = (ci * 9u + ky * 3u) * cq + 2u * cb;  // wt4[(ci, ky, kx), channel block 2cb and 2cb + 1]
            let k = array<vec4<f32>, 6>(wt4[wb], wt4[wb + cq], wt4[wb + 2u * cq], wt4[wb + 1u], wt4[wb + cq + 1u], wt4[wb + 2u * cq + 1u]);
            acc = row8_add(WO, W, -i32(PAD), 1, row, k, acc);
        }
    }
    return acc;
}

fn fr8_store_row(n: u32, cb: u32, oy: u32, acc: array<array<vec4<f32>, 8>, 16>) {
    let r = ((n * COUT + 8u * cb) * HO + oy) * (WO / 4u);
    fr8_store(0u, r, acc[0]); fr8_store(1u, r, acc[1]); fr8_store(2u, r, acc[2]); fr8_store(3u, r, acc[3]);
    fr8_store(4u, r, acc[4]); fr8_store(5u, r, acc[5]); fr8_store(6u, r, acc[6]); fr8_store(7u, r, acc[7]);
    fr8_store(8u, r, acc[8]); fr8_store(9u, r, acc[9]); fr8_store(10u, r, acc[10]); fr8_store(11u, r, acc[11]);
    fr8_store(12u, r, acc[12]); fr8_store(13u, r, acc[13]); fr8_store(14u, r, acc[14]); fr8_store(15u, r, acc[15]);
}

@compute @workgroup_size(64)
fn forward8_row_v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= N * (COUT / 8u) * HO) { return; }
    let t = row_thread(id, COUT / 8u);
    fr8_store_row(t.x, t.y, t.z, fr8_acc(t.x, t.y, t.z));
}

// ---- forward_row_v4_stats / forward8_row_v4_stats: the whole-row kernels that also hand the instance norm
// after them each row's statistics, so that norm.wgsl's forward_relu_pool_rows_v4 reads the plane once instead of
// three times (two statistics passes and the normalising one). The row is still in registers here: its mean and
// Σ (y − mean)² cost arithmetic and two vec4 stores per 4 channels. The norm merges rows pairwise-exactly (Chan et
// al.), so no E[y²] − E[y]² cancellation. Binding 4, rowstats (rw) [N, COUT/4, HO, 2] as vec4: (the 4 channels'
// row means, their Σ (y − mean)²).
@group(0) @binding(4) var<storage, read_write> rowstats: array<vec4<f32>>;

fn hsum(v: vec4<f32>) -> f32 { return v.x + v.y + v.z + v.w; }

// running sums over chunk q of 4 channels' rows (a[c]: chunk q of channel c), chunks past WO skipped
fn rs_sum(q: u32, a: array<vec4<f32>, 4>, s: vec4<f32>) -> vec4<f32> {
    if (4u * q >= WO) { return s; }
    return s + vec4<f32>(hsum(a[0]), hsum(a[1]), hsum(a[2]), hsum(a[3]));
}

fn rs_m2(q: u32, a: array<vec4<f32>, 4>, m: vec4<f32>, s: vec4<f32>) -> vec4<f32> {
    if (4u * q >= WO) { return s; }
    let d0 = a[0] - vec4<f32>(m.x);
    let d1 = a[1] - vec4<f32>(m.y);
    let d2 = a[2] - vec4<f32>(m.z);
    let d3 = a[3] - vec4<f32>(m.w);
    return s + vec4<f32>(dot(d0, d0), dot(d1, d1), dot(d2, d2), dot(d3, d3));
}

// (row means, Σ (y − mean)²) of channels 4cb .. 4cb + 3 from their chunks a[q][c] (chunk calls with literal numbers)
fn row_stats4(a: array<array<vec4<f32>, 4>, 16>) -> array<vec4<f32>, 2> {
    var s = vec4<f32>(0.0);
    s = rs_sum(0u, a[0], s); s = rs_sum(1u, a[1], s); s = rs_sum(2u, a[2], s); s = rs_sum(3u, a[3], s);
    s = rs_sum(4u, a[4], s); s = rs_sum(5u, a[5], s); s = rs_sum(6u, a[6], s); s = rs_sum(7u, a[7], s);
    s = rs_sum(8u, a[8], s); s = rs_sum(9u, a[9], s); s = rs_sum(10u, a[10], s); s = rs_sum(11u, a[11], s);
    s = rs_sum(12u, a[12], s); s = rs_sum(13u, a[13], s); s = rs_sum(14u, a[14], s); s = rs_sum(15u, a[15], s);
    let m = s / f32(WO);
    var v = vec4<f32>(0.0);
    v = rs_m2(0u, a[0], m, v); v = rs_m2(1u, a[1], m, v); v = rs_m2(2u, a[2], m, v); v = rs_m2(3u, a[3], m, v);
    v = rs_m2(4u, a[4], m, v); v = rs_m2(5u, a[5], m, v); v = rs_m2(6u, a[6], m, v); v = rs_m2(7u, a[7], m, v);
    v = rs_m2(8u, a[8], m, v); v = rs_m2(9u, a[9], m, v); v = rs_m2(10u, a[10], m, v); v = rs_m2(11u, a[11], m, v);
    v = rs_m2(12u, a[12], m, v); v = rs_m2(13u, a[13], m, v); v = rs_m2(14u, a[14], m, v); v = rs_m2(15u, a[15], m, v);
    return array<vec4<f32>, 2>(m, v);
}

// channels o .. o + 3 of an 8-channel accumulator (o a literal 0 or 4: every index a constant after inlining)
fn half4(a: array<array<vec4<f32>, 8>, 16>, o: u32) -> array<array<vec4<f32>, 4>, 16> {
    return array<array<vec4<f32>, 4>, 16>(
        array<vec4<f32>, 4>(a[0][o], a[0][o + 1u], a[0][o + 2u], a[0][o + 3u]),
        array<vec4<f32>, 4>(a[1][o], a[1][o + 1u], a[1][o + 2u], a[1][o + 3u]),
        array<vec4<f32>, 4>(a[2][o], a[2][o + 1u], a[2][o + 2u], a[2][o + 3u]),
        array<vec4<f32>, 4>(a[3][o], a[3][o + 1u], a[3][o + 2u], a[3][o + 3u]),
        array<vec4<f32>, 4>(a[4][o], a[4][o + 1u], a[4][o + 2u], a[4][o + 3u]),
        array<vec4<f32>, 4>(a[5][o], a[5][o + 1u], a[5][o + 2u], a[5][o + 3u]),
        array<vec4<f32>, 4>(a[6][o], a[6][o + 1u], a[6][o + 2u], a[6][o + 3u]),
        array<vec4<f32>, 4>(a[7][o], a[7][o + 1u], a[7][o + 2u], a[7][o + 3u]),
        array<vec4<f32>, 4>(a[8][o], a[8][o + 1u], a[8][o + 2u], a[8][o + 3u]),
        array<vec4<f32>, 4>(a[9][o], a[9][o + 1u], a[9][o + 2u], a[9][o + 3u]),
        array<vec4<f32>, 4>(a[10][o], a[10][o + 1u], a[10][o + 2u], a[10][o + 3u]),
        array<vec4<f32>, 4>(a[11][o], a[11][o + 1u], a[11][o + 2u], a[11][o + 3u]),
        array<vec4<f32>, 4>(a[12][o], a[12][o + 1u], a[12][o + 2u], a[12][o + 3u]),
        array<vec4<f32>, 4>(a[13][o], a[13][o + 1u], a[13][o + 2u], a[13][o + 3u]),
        array<vec4<f32>, 4>(a[14][o], a[14][o + 1u], a[14][o + 2u], a[14][o + 3u]),
        array<vec4<f32>, 4>(a[15][o], a[15][o + 1u], a[15][o + 2u], a[15][o + 3u]));
}

fn store_row_stats(n: u32, cq4: u32, oy: u32, st: array<vec4<f32>, 2>) {
    let i = ((n * (COUT / 4u) + cq4) * HO + oy) * 2u;
    rowstats[i] = st[0];
    rowstats[i + 1u] = st[1];
}

@compute @workgroup_size(64)
fn forward_row_v4_stats(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= N * (COUT / 4u) * HO) { return; }
    let t = row_thread(id, COUT / 4u);
    let acc = fr4_acc(t.x, t.y, t.z);
    fr4_store(t.x, t.y, t.z, acc);
    store_row_stats(t.x, t.y, t.z, row_stats4(acc));
}

@compute @workgroup_size(64)
fn forward8_row_v4_stats(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= N * (COUT / 8u) * HO) { return; }
    let t = row_thread(id, COUT / 8u);
    let acc = fr8_acc(t.x, t.y, t.z);
    fr8_store_row(t.x, t.y, t.z, acc);
    store_row_stats(t.x, 2u * t.y, t.z, row_stats4(half4(acc, 0u)));
    store_row_stats(t.x, 2u * t.y + 1u, t.z, row_stats4(half4(acc, 4u)));
}

@compute @workgroup_size(64)
fn transpose_weight(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);  // index into wt: (ci·9 + tap)·COUT + co
    if (i >= COUT * CIN * 9u) { return; }
    let co = i % COUT;
    let tap = (i / COUT) % 9u;
    let ci = i / (COUT * 9u);
    wt_dst[i] = w_src[(co * CIN + ci) * 9u + tap];
}
