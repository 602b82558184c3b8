// conv.wgsl — 3×3 convolution, stride 1, zero padding PAD (1; 3 on the first conv for 28×28 inputs), NCHW, f32.
// Shapes: x [N,CIN,H,W], w [COUT,CIN,3,3], b [COUT], y [N,COUT,HO,WO] with HO = H + 2·PAD − 2.
//
// entry point       bindings (group 0, in order)                     one invocation computes
// forward           0 x, 1 w, 2 b, 3 y (rw)                          4 output channels × 8 adjacent columns of one row
// forward8          as forward                                       8 output channels × 8 columns (COUT % 8 == 0)
// forward_tiled     as forward                                       8 channels × 8 positions of a 64×64 workgroup tile (implicit GEMM, workgroup memory)
// forward_v4        0 x, 1 wt, 2 b, 3 y (rw); x, wt, y as vec4      4 output channels × the 8 columns of block XB (a pipeline constant) of one row
// forward8_v4       as forward_v4                                    8 output channels × the 8 columns of block XB
// forward_row_v4    as forward_v4                                    4 output channels × a whole output row (W, WO ≤ 64)
// forward8_row_v4   as forward_v4                                    8 output channels × a whole output row (W, WO ≤ 64)
// forward_row_v4_stats, forward8_row_v4_stats  as forward_row_v4 / forward8_row_v4, plus 4 rowstats (rw) [N,COUT/4,HO,2] as vec4:
//                   each output row's mean and Σ (y − mean)² per channel, for norm.wgsl's forward_relu_pool_rows_v4
// transpose_weight  0 w, 1 wt (rw)                                   one weight: wt[ci,ky,kx,co] = w[co,ci,ky,kx]
// backward_input_v4 0 dy, 1 wi, 2 dx (rw), all as vec4               4 input channels × the 8 columns of block XB of one row of dx
// backward_input8_v4 as backward_input_v4                            8 input channels × the 8 columns of block XB
// backward_input8_row_v4 as backward_input_v4                        8 input channels × a whole row of dx (W, WO ≤ 64)
// transpose_weight_in 0 w, 1 wi (rw)                                 one weight: wi[co,ky,kx,ci] = w[co,ci,ky,kx]
// backward_input_c1v4 0 dy (as vec4), 1 w, 2 dx (rw, as vec4)        1 input channel × the 8 columns of block XB of one row of dx
// backward_input_r1v4 as backward_input_c1v4                          1 input channel × a whole row of dx (W, WO ≤ 64)
// backward_input_r2v4 as backward_input_c1v4                          1 input channel × two whole rows of dx (H even)
// backward_input    0 dy, 1 w, 2 dx (rw)                             4 input channels × 8 adjacent columns of one row
// backward_input8   as backward_input                                8 input channels × 8 columns (CIN % 8 == 0)
// backward_weight   0 x, 1 dy, 2 partial (rw) [NSPLIT,COUT,CIN,3,3] 4 output channels × 9 taps of one ci, over images n ≡ split
// backward_weight4_v4 0 x, 1 dy (both as vec4), 2 partial (rw) [HO,COUT,CIN,3,3]  4 output channels × 9 taps of one ci, over output row oy of every image
// backward_weight8_row_v4 as backward_weight4_v4                       8 output channels × 9 taps of one ci, over output row oy of every image, whole rows (W, WO ≤ 64)
// reduce_weight     0 partial, 1 dw (rw)                             one weight: the sum over the NSPLIT partials
// backward_bias     0 dy, 1 db (rw)                                  a 64-wide workgroup: db[co], summed over N·HO·WO
// Dispatch: invocations = N·⌈COUT/4⌉·HO·⌈WO/8⌉ (forward; COUT/8 for forward8; 64·⌈COUT/64⌉·⌈N·HO·WO/64⌉ for forward_tiled),
//           N·(COUT/4)·HO per column block XB = 0 .. ⌈WO/8⌉ (forward_v4; COUT/8 for forward8_v4; N·(COUT/4)·HO once for forward_row_v4, N·(COUT/8)·HO for forward8_row_v4), COUT·CIN·9 (transpose_weight),
//           N·⌈CIN/4⌉·H·⌈W/8⌉ (backward_input; CIN/8 for backward_input8), N·(CIN/4)·H per column block XB = 0 .. ⌈W/8⌉
//           (backward_input_v4; CIN/8 for backward_input8_v4; N·(CIN/8)·H once for backward_input8_row_v4; N·CIN·H for backward_input_c1v4 and backward_input_r1v4; N·CIN·H/2 for backward_input_r2v4), COUT·CIN·9 (transpose_weight_in),
//           NSPLIT·⌈COUT/4⌉·CIN (backward_weight), HO·CIN·COUT/4 (backward_weight4_v4; NSPLIT = HO), HO·CIN·COUT/8 (backward_weight8_row_v4; NSPLIT = HO), COUT·CIN·9 (reduce_weight), 64·COUT (backward_bias: a workgroup per channel); workgroup 64.
// Why no workgroup memory (but in forward_tiled, for GPUs, and backward_bias's one final reduction): on lavapipe
// barriers are coroutine switches and register blocking alone is 3–10× faster than shared-memory tiling
// (shared/docs/platform.md §3). Real-GPU variants come with the performance work; this file is the portable
// baseline that every test runs.

override N: u32;
override CIN: u32;
override COUT: u32;
override H: u32;
override W: u32;
override PAD: u32;
override HO: u32 = H + 2u * PAD - 2u;
override WO: u32 = W + 2u * PAD - 2u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

// backward_input
@group(0) @binding(0) var<storage, read> dy_bi: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
// backward_weight (x at 0)
@group(0) @binding(1) var<storage, read> dy_bw: array<f32>;
@group(0) @binding(2) var<storage, read_write> dw: array<f32>;
// backward_bias
@group(0) @binding(0) var<storage, read> dy_bb: array<f32>;
@group(0) @binding(1) var<storage, read_write> db: array<f32>;

// Value of x[n,c,row,col] with zero outside the image; `rowbase` = ((n·CIN + c)·H + row)·W.
fn x_at(rowbase: u32, col: i32) -> f32 {
    let inside = col >= 0 && col < i32(W);
    return select(0.0, x[rowbase + u32(clamp(col, 0, i32(W) - 1))], inside);
}

fn dy_at(rowbase: u32, col: i32) -> f32 {
    let inside = col >= 0 && col < i32(WO);
    return select(0.0, dy_bi[rowbase + u32(clamp(col, 0, i32(WO) - 1))], inside);
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

// Columns per thread: 8 (96 multiply-adds per 22 loads in the inner step).
const XW: u32 = 8u;

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

// ---- forward_v4 / forward8_v4: the forward for CPU adapters (lavapipe, SwiftShader) ----------------------------
// On llvmpipe a storage load whose address differs between the 8 SIMD lanes is compiled into a loop over the lanes,
// so what a kernel pays for is load *instructions*, whatever their width, and the arithmetic is nearly free. These
// kernels therefore (1) read x as vec4 (4 columns per load; needs W % 4 == 0) and write y as vec4 (WO % 4 == 0),
// (2) read the weights as vec4 of 4 output channels from a transposed copy wt [CIN,3,3,COUT] (`transpose_weight`,
// needs COUT % 4 == 0), and (3) take the column block XB as a pipeline constant, one dispatch per block, so that the
// zero-padding tests on columns fold away and chunks wholly outside the image are never loaded. Measured on
// lavapipe, width 128, batch 16 (benches/NOTES.md, session 11), forward8_v4 against forward: 8×8 maps 11.5 → 23
// GFLOP/s, 16×16 6.6 → 21.6.
override XB: u32 = 0u;
@group(0) @binding(0) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> wt4: array<vec4<f32>>;

// chunk q (columns 4q .. 4q+3) of the row starting at vec4 index rq; zero outside the row
fn x_chunk(rq: u32, q: i32) -> vec4<f32> {
    let inside = q >= 0 && q < i32(W / 4u);
    return select(vec4<f32>(0.0), x4[rq + u32(clamp(q, 0, i32(W / 4u) - 1))], inside);
}

// The 10 inputs of row iy of (n, ci) that output columns XB·8 .. XB·8+7 read: columns XB·8 − PAD + t, t = 0..9,
// gathered from the 4 chunks covering columns XB·8 − 4 .. XB·8 + 11 (PAD ≤ 4).
fn x_row_v4(n: u32, ci: u32, iy: u32) -> array<f32, 10> {
    return x_row_at(n, ci, iy, XB);
}

// x_row_v4 for column block xb; called with literal block numbers the chunk offsets and edge tests fold away too
fn x_row_at(n: u32, ci: u32, iy: u32, xb: u32) -> array<f32, 10> {
    let rq = ((n * CIN + ci) * H + iy) * (W / 4u);
    let q0 = i32(2u * xb) - 1;
    let ch = array<vec4<f32>, 4>(x_chunk(rq, q0), x_chunk(rq, q0 + 1), x_chunk(rq, q0 + 2), x_chunk(rq, q0 + 3));
    var v: array<f32, 10>;
    for (var t = 0u; t < 10u; t++) {
        let c = 4u - PAD + t;
        v[t] = ch[c / 4u][c % 4u];
    }
    return v;
}

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

// forward_row_v4 (CPU adapters: the one-input-channel first layer, and where COUT % 8 != 0): 4 output channels × a
// whole output row per thread (W, WO ≤ 64). Per input channel and kernel row: the x row as W/4 vec4 loads and 3 vec4
// weights (4 channels, from wt) for 12·WO multiply-adds; y written as WO/4 vec4 per channel (forward8_v4: 4 x loads
// and 6 weight loads for 8 × 8 × 3 multiply-adds, 16 stores per 64 outputs). Every array index is a constant: chunks by literal-argument calls.
fn x_row_all(n: u32, ci: u32, iy: u32) -> array<vec4<f32>, 16> {
    let rq = ((n * CIN + ci) * H + iy) * (W / 4u);
    var row: array<vec4<f32>, 16>;
    for (var q = 0u; q < W / 4u; q++) { row[q] = x4[rq + q]; }
    return row;
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

// (image, channel block, output row) of whole-row thread `id` over `blocks` channel blocks
fn row_thread(id: u32, blocks: u32) -> vec3<u32> {
    return vec3<u32>(id / (HO * blocks), (id / HO) % blocks, id % HO);
}

@compute @workgroup_size(64)
fn forward_row_v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= N * (COUT / 4u) * HO) { return; }
    let t = row_thread(id, COUT / 4u);
    fr4_store(t.x, t.y, t.z, fr4_acc(t.x, t.y, t.z));
}

// Shared by forward8_row_v4 and backward_input8_row_v4. Column c of a held row of `len` values (W for x rows, WO
// for dy rows), zero outside; c is a constant after inlining, so this is a register pick, not a lane-looped gather.
fn held_col(row: array<vec4<f32>, 16>, len: u32, c: i32) -> f32 {
    let k = u32(clamp(c, 0, i32(len) - 1));
    return select(0.0, row[k / 4u][k % 4u], c >= 0 && c < i32(len));
}

// Output chunk q (columns 4q .. 4q + 3, of `outs`) of 8 channels, a[c], plus one kernel row k applied to a held row:
// tap kx of output column o reads held column o + c0 + step·kx (forward: c0 = −PAD, step 1 over an x row; input
// gradient: c0 = PAD, step −1 over a dy row). k[0..2]: taps 0..2 as vec4 of channels 0..3, k[3..5] of channels 4..7.
fn row8_chunk(q: u32, outs: u32, len: u32, c0: i32, step: i32, row: array<vec4<f32>, 16>, k: array<vec4<f32>, 6>,
              a: array<vec4<f32>, 8>) -> array<vec4<f32>, 8> {
    if (4u * q >= outs) { return a; }
    let c = i32(4u * q) + c0;
    let c1 = c + step;
    let c2 = c + 2 * step;
    let s0 = vec4<f32>(held_col(row, len, c), held_col(row, len, c + 1), held_col(row, len, c + 2), held_col(row, len, c + 3));
    let s1 = vec4<f32>(held_col(row, len, c1), held_col(row, len, c1 + 1), held_col(row, len, c1 + 2), held_col(row, len, c1 + 3));
    let s2 = vec4<f32>(held_col(row, len, c2), held_col(row, len, c2 + 1), held_col(row, len, c2 + 2), held_col(row, len, c2 + 3));
    return array<vec4<f32>, 8>(
        a[0] + s0 * k[0].x + s1 * k[1].x + s2 * k[2].x, a[1] + s0 * k[0].y + s1 * k[1].y + s2 * k[2].y,
        a[2] + s0 * k[0].z + s1 * k[1].z + s2 * k[2].z, a[3] + s0 * k[0].w + s1 * k[1].w + s2 * k[2].w,
        a[4] + s0 * k[3].x + s1 * k[4].x + s2 * k[5].x, a[5] + s0 * k[3].y + s1 * k[4].y + s2 * k[5].y,
        a[6] + s0 * k[3].z + s1 * k[4].z + s2 * k[5].z, a[7] + s0 * k[3].w + s1 * k[4].w + s2 * k[5].w);
}

// row8_chunk over a whole row (up to 16 chunks), by calls with literal chunk numbers: every array index a constant
fn row8_add(outs: u32, len: u32, c0: i32, step: i32, row: array<vec4<f32>, 16>, k: array<vec4<f32>, 6>,
            acc: array<array<vec4<f32>, 8>, 16>) -> array<array<vec4<f32>, 8>, 16> {
    return array<array<vec4<f32>, 8>, 16>(
        row8_chunk(0u, outs, len, c0, step, row, k, acc[0]), row8_chunk(1u, outs, len, c0, step, row, k, acc[1]),
        row8_chunk(2u, outs, len, c0, step, row, k, acc[2]), row8_chunk(3u, outs, len, c0, step, row, k, acc[3]),
        row8_chunk(4u, outs, len, c0, step, row, k, acc[4]), row8_chunk(5u, outs, len, c0, step, row, k, acc[5]),
        row8_chunk(6u, outs, len, c0, step, row, k, acc[6]), row8_chunk(7u, outs, len, c0, step, row, k, acc[7]),
        row8_chunk(8u, outs, len, c0, step, row, k, acc[8]), row8_chunk(9u, outs, len, c0, step, row, k, acc[9]),
        row8_chunk(10u, outs, len, c0, step, row, k, acc[10]), row8_chunk(11u, outs, len, c0, step, row, k, acc[11]),
        row8_chunk(12u, outs, len, c0, step, row, k, acc[12]), row8_chunk(13u, outs, len, c0, step, row, k, acc[13]),
        row8_chunk(14u, outs, len, c0, step, row, k, acc[14]), row8_chunk(15u, outs, len, c0, step, row, k, acc[15]));
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

// wt[ci,ky,kx,co] = w[co,ci,ky,kx] (bindings: 0 w, 1 wt (rw)); COUT·CIN·9 invocations, one per weight
@group(0) @binding(0) var<storage, read> w_src: array<f32>;
@group(0) @binding(1) var<storage, read_write> wt_dst: array<f32>;

@compute @workgroup_size(64)
fn transpose_weight(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_id(gid, nwg);  // index into wt: (ci·9 + tap)·COUT + co
    if (i >= COUT * CIN * 9u) { return; }
    let co = i % COUT;
    let tap = (i / COUT) % 9u;
    let ci = i / (COUT * 9u);
    wt_dst[i] = w_src[(co * CIN + ci) * 9u + tap];
}

// forward as an implicit GEMM for real GPUs: y[co, p] = Σ_k w[co, k] · x̃[k, p] with k = (ci, ky, kx) (w is already
// COUT × CIN·9 row-major) and p = (n, oy, ox), x̃ gathered on the fly (im2col without the copy). One 64-thread
// workgroup computes a 64 (co) × 64 (p) tile, staging 16-deep slices of w and x̃ in workgroup memory between
// barriers; each thread keeps 8 co × 8 p accumulators. Not selected on CPU adapters (barriers are slow there).
const CT: u32 = 64u;   // tile side (output channels and positions)
const CK: u32 = 16u;   // K slice per barrier pair
var<workgroup> w_tile: array<f32, 1024>;  // [CK][CT], co fastest
var<workgroup> x_tile: array<f32, 1024>;  // [CK][CT], p fastest

@compute @workgroup_size(64)
fn forward_tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) li: u32) {
    let P = N * HO * WO;
    let K = CIN * 9u;
    let tiles_p = (P + CT - 1u) / CT;
    let tile = wid.x + wid.y * nwg.x;
    if (tile >= ((COUT + CT - 1u) / CT) * tiles_p) { return; }  // uniform per workgroup
    let co_base = (tile / tiles_p) * CT;
    let p_base = (tile % tiles_p) * CT;
    let ty = li / 8u;  // channels co_base + ty·8 .. +8
    let tx = li % 8u;  // positions p_base + tx + 8·j, j = 0..8
    var acc: array<vec4<f32>, 16>;  // acc[2r + h][i] = output (co ty·8 + r, position tx + 8·(4h + i))
    for (var i = 0u; i < 16u; i++) { acc[i] = vec4<f32>(0.0); }
    for (var k0 = 0u; k0 < K; k0 += CK) {
        for (var i = 0u; i < 16u; i++) {
            let idx = li + 64u * i;
            let kk = idx / CT;
            let col = idx % CT;
            let k = k0 + kk;
            // w slice: row co_base + col, column k
            let co = co_base + col;
            var wv = 0.0;
            if (k < K && co < COUT) { wv = w[co * K + k]; }
            w_tile[kk * CT + col] = wv;
            // x̃ slice: row k = (ci, ky, kx), column p = (n, oy, ox)
            let p = p_base + col;
            var xv = 0.0;
            if (k < K && p < P) {
                let ci = k / 9u;
                let ky = (k % 9u) / 3u;
                let kx = k % 3u;
                let ox = p % WO;
                let oy = (p / WO) % HO;
                let n = p / (WO * HO);
                let iy = i32(oy + ky) - i32(PAD);
                let ix = i32(ox + kx) - i32(PAD);
                if (iy >= 0 && iy < i32(H) && ix >= 0 && ix < i32(W)) {
                    xv = x[((n * CIN + ci) * H + u32(iy)) * W + u32(ix)];
                }
            }
            x_tile[kk * CT + col] = xv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < CK; kk++) {
            let xr = kk * CT + tx;
            let b0 = vec4<f32>(x_tile[xr], x_tile[xr + 8u], x_tile[xr + 16u], x_tile[xr + 24u]);
            let b1 = vec4<f32>(x_tile[xr + 32u], x_tile[xr + 40u], x_tile[xr + 48u], x_tile[xr + 56u]);
            for (var r = 0u; r < 8u; r++) {
                let a = w_tile[kk * CT + ty * 8u + r];
                acc[2u * r] += a * b0;
                acc[2u * r + 1u] += a * b1;
            }
        }
        workgroupBarrier();
    }
    for (var r = 0u; r < 8u; r++) {
        let co = co_base + ty * 8u + r;
        if (co >= COUT) { break; }
        for (var j = 0u; j < 8u; j++) {
            let p = p_base + tx + 8u * j;
            if (p >= P) { break; }
            let ox = p % WO;
            let oy = (p / WO) % HO;
            let n = p / (WO * HO);
            y[((n * COUT + co) * HO + oy) * WO + ox] = acc[2u * r + j / 4u][j % 4u] + b[co];
        }
    }
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
