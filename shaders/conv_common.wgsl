// conv_common.wgsl — what the three passes of the 3×3 convolution share (prepended to conv_forward.wgsl,
// conv_input.wgsl and conv_weight.wgsl): the shape constants, the input bindings, and the helpers that read rows of x
// (plain or as vec4 chunks) and apply held rows to kernel rows. Stride 1, zero padding PAD (1; 3 on the first conv for
// 28×28 inputs), NCHW, f32. Shapes: x [N,CIN,H,W], w [COUT,CIN,3,3], b [COUT], y [N,COUT,HO,WO], HO = H + 2·PAD − 2.
// Why no workgroup memory (but in backward_bias's one final reduction; the GPU-class GEMMs are conv_gemm.wgsl): on lavapipe
// barriers are coroutine switches and register blocking alone is 3–10× faster than shared-memory tiling
// (docs/platform.md §3). On llvmpipe a storage load whose address differs between the 8 SIMD lanes is compiled into a
// loop over the lanes, so load *instructions* set the speed: hence vec4 loads and stores and whole held rows
// (benches/NOTES.md, sessions 11–15).

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



// Columns per thread: 8 (96 multiply-adds per 22 loads in the inner step).
const XW: u32 = 8u;

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

// (image, channel block, output row) of whole-row thread `id` over `blocks` channel blocks
fn row_thread(id: u32, blocks: u32) -> vec3<u32> {
    return vec3<u32>(id / (HO * blocks), (id / HO) % blocks, id % HO);
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

// wt[ci,ky,kx,co] = w[co,ci,ky,kx] (bindings: 0 w, 1 wt (rw)); COUT·CIN·9 invocations, one per weight
@group(0) @binding(0) var<storage, read> w_src: array<f32>;

@group(0) @binding(1) var<storage, read_write> wt_dst: array<f32>;
