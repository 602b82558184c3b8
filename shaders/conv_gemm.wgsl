// conv_gemm.wgsl — the three passes of a K×K convolution (any stride and zero padding) as implicit GEMMs, for GPUs:
// C[GM, GN] = A[GM, GK] · B[GK, GN] with both operands gathered on the fly from the tensors (im2col without the copy).
// One entry point; the pipeline constant PASS picks the pass, BM × BN the output tile of a workgroup and TM × TN the
// register block of an invocation, so that the autotuner (src/nn/tune.rs) can time several tilings of the same pass and
// keep the fastest. ConvNet-3's 3×3 stride-1 convolutions (K = 3, STRIDE = 1, the defaults) and the evaluation pool's
// 5×5, strided 3×3 and 1×1 ones (layers.wgsl's shapes) run on it alike; so would a linear layer (K = H = W = 1).
//
//   KK = K·K taps, t = ky·K + kx; x̃ / dỹ the zero-padded taps
//   PASS 0 forward          y[n,co,oy,ox] = Σ_k w[co,k] · x̃[k,(n,oy,ox)] + b[co]     GM = COUT, GN = N·HO·WO, GK = CIN·KK
//   PASS 1 input gradient   dx[n,ci,iy,ix] = Σ_k w[(co,t),ci] · dỹ[(co,t),(n,iy,ix)]  GM = CIN,  GN = N·H·W,   GK = COUT·KK
//   PASS 2 weight gradient  part[s,co,(ci,t)] = Σ_{q ∈ split s} dy[co,q] · x̃[q,(ci,t)] GM = COUT, GN = CIN·KK,  GK = N·HO·WO
//                           (split-K: the sum over q is cut into NSPLIT chunks of KCHUNK, layers.wgsl's
//                           conv_reduce_weight adds them up in a fixed order; NSPLIT = 1 writes dw directly)
// with k = (ci, ky, kx) or (co, ky, kx), and x̃[(ci,t),(n,oy,ox)] = x[n, ci, oy·STRIDE + ky − PAD, ox·STRIDE + kx − PAD].
//
// entry point  bindings (group 0, in order)                                  one workgroup computes
// gemm         0 a-source, 1 b-source, 2 bias, 3 out (rw),                  a BM × BN tile of C (of split s for PASS 2);
//              4 the a-source again as vec4 (read only if VEC_A = 1;          an invocation a TM × TN block of it
//                else any buffer of ≥ 16 bytes):
//                PASS 0: w, x, b (read only if HAS_BIAS = 1), y, w ·
//                PASS 1: w, dy, (unused: w), dx, (unused) ·
//                PASS 2: dy, x, (unused: dy), partials [NSPLIT,COUT,CIN,K,K], dy
// Dispatch: TILES_M·TILES_N·NSPLIT workgroups of THREADS = (BM/TM)·(BN/TN) invocations (gpu::dispatch_workgroups).
//
// Why this shape: a GEMM tile reuses each staged operand element BM (or BN) times from workgroup memory, which is what
// lets a GPU approach its FMA peak (arithmetic intensity of a tile: 2·BM·BN·BK FLOPs per (BM + BN)·BK·4 bytes staged,
// 16 FLOP/B at 64×64; benches/NOTES.md has the model). Consecutive invocations load consecutive addresses of whichever
// operand is contiguous (x̃ and dỹ along the image row, w and dy along k), so global loads coalesce. On CPU adapters
// the barriers are coroutine switches and these kernels lose to the register-blocked ones (docs/platform.md §3): the
// autotuner measures that rather than assuming it.

override N: u32;
override CIN: u32;
override COUT: u32;
override H: u32;
override W: u32;
override PAD: u32;
override K: u32 = 3u;        // kernel side
override STRIDE: u32 = 1u;
override HAS_BIAS: u32 = 1u;  // PASS 0: add b
override HO: u32 = (H + 2u * PAD - K) / STRIDE + 1u;
override WO: u32 = (W + 2u * PAD - K) / STRIDE + 1u;
override KK: u32 = K * K;

override PASS: u32;
override GM: u32;        // rows of C
override GN: u32;        // columns of C
override GK: u32;        // the summed dimension
override BM: u32 = 64u;  // tile rows
override BN: u32 = 64u;  // tile columns
override TM: u32 = 8u;   // rows per invocation (≤ 8)
override TN: u32 = 8u;   // columns per invocation (≤ 8)
override THREADS: u32 = 64u;  // (BM / TM) · (BN / TN)
override TILES_N: u32;   // ⌈GN / BN⌉
override TILES_M: u32;   // ⌈GM / BM⌉
override NSPLIT: u32 = 1u;
override KCHUNK: u32;    // GK for PASS 0 and 1; ⌈GK / NSPLIT⌉ rounded up to BK for PASS 2
// 1: stage A with vec4 loads (the host sets it where A is contiguous along k in aligned runs of 4: PASS 0 with
// GK % 4 == 0, PASS 2 with HO·WO % 4 == 0, so that k0, the chunk ends and the image boundaries are multiples of 4)
override VEC_A: u32 = 0u;

const BK: u32 = 8u;      // depth of the slice staged per barrier pair

@group(0) @binding(0) var<storage, read> a_src: array<f32>;
@group(0) @binding(1) var<storage, read> b_src: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> c_out: array<f32>;
@group(0) @binding(4) var<storage, read> a_src4: array<vec4<f32>>;

var<workgroup> a_tile: array<f32, BK * BM>;  // [BK][BM]
var<workgroup> b_tile: array<f32, BK * BN>;  // [BK][BN]

// A[m, k]; 0 outside C's rows or past the chunk's end
fn a_at(m: u32, k: u32, k_end: u32) -> f32 {
    if (m >= GM || k >= k_end) { return 0.0; }
    if (PASS == 0u) {
        return a_src[m * GK + k];                        // w [COUT, CIN·9] as stored
    } else if (PASS == 1u) {
        let co = k / KK;
        return a_src[(co * CIN + m) * KK + k % KK];      // w[co, ci = m, t]
    }
    let n = k / (HO * WO);
    return a_src[(n * COUT + m) * HO * WO + k % (HO * WO)];  // dy[n, co = m, oy, ox]
}

// x̃[(ci, t), p] = x[n, ci, oy·STRIDE + ky − PAD, ox·STRIDE + kx − PAD] at output position p = (n, oy, ox), tap
// t = ky·K + kx
fn x_tap(p: u32, ci: u32, t: u32) -> f32 {
    let ox = p % WO;
    let oy = (p / WO) % HO;
    let n = p / (WO * HO);
    let iy = i32(oy * STRIDE + t / K) - i32(PAD);
    let ix = i32(ox * STRIDE + t % K) - i32(PAD);
    if (iy < 0 || iy >= i32(H) || ix < 0 || ix >= i32(W)) { return 0.0; }
    return b_src[((n * CIN + ci) * H + u32(iy)) * W + u32(ix)];
}

// B[k, c]; 0 outside C's columns, past the chunk's end, or on a padding tap
fn b_at(k: u32, c: u32, k_end: u32) -> f32 {
    if (c >= GN || k >= k_end) { return 0.0; }
    if (PASS == 0u) {
        return x_tap(c, k / KK, k % KK);                 // x̃[(ci, t), (n, oy, ox)]
    } else if (PASS == 1u) {
        // dỹ[(co, ky, kx), (n, iy, ix)] = dy[n, co, oy, ox] where oy·STRIDE = iy + PAD − ky (and likewise ox), else 0
        let co = k / KK;
        let t = k % KK;
        let ix = c % W;
        let iy = (c / W) % H;
        let n = c / (W * H);
        let sy = i32(iy + PAD) - i32(t / K);
        let sx = i32(ix + PAD) - i32(t % K);
        if (sy < 0 || sx < 0) { return 0.0; }
        let oy = u32(sy) / STRIDE;
        let ox = u32(sx) / STRIDE;
        if (u32(sy) % STRIDE != 0u || u32(sx) % STRIDE != 0u || oy >= HO || ox >= WO) { return 0.0; }
        return b_src[((n * COUT + co) * HO + oy) * WO + ox];
    }
    return x_tap(k, c / KK, c % KK);                     // x̃ᵀ[(n, oy, ox), (ci, t)]
}

// where C[m, c] goes (PASS 2: in split s's partial sums)
fn c_index(m: u32, c: u32, s: u32) -> u32 {
    if (PASS == 0u) {
        let ox = c % WO;
        let oy = (c / WO) % HO;
        let n = c / (WO * HO);
        return ((n * COUT + m) * HO + oy) * WO + ox;
    } else if (PASS == 1u) {
        let ix = c % W;
        let iy = (c / W) % H;
        let n = c / (W * H);
        return ((n * CIN + m) * H + iy) * W + ix;
    }
    return (s * COUT + m) * CIN * KK + c;
}

@compute @workgroup_size(THREADS)
fn gemm(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let g = wid.x + wid.y * nwg.x;
    let tiles = TILES_M * TILES_N;
    if (g >= tiles * NSPLIT) { return; }  // the same for the whole workgroup, so the barriers below stay uniform
    let s = g / tiles;
    let m0 = ((g % tiles) / TILES_N) * BM;
    let c0 = (g % TILES_N) * BN;
    let k_begin = s * KCHUNK;
    let k_end = min(k_begin + KCHUNK, GK);
    let tx = li % (BN / TN);  // columns c0 + tx + j·(BN/TN): neighbouring invocations store neighbouring columns
    let ty = li / (BN / TN);  // rows m0 + ty·TM + i
    var acc: array<f32, 64>;  // acc[i·TN + j]
    for (var i = 0u; i < 64u; i++) { acc[i] = 0.0; }
    for (var k0 = k_begin; k0 < k_end; k0 += BK) {
        // stage A, k fastest across invocations: A is contiguous along k (w for PASS 0, dy for PASS 2; runs of KK
        // taps for PASS 1)
        if (VEC_A == 1u) {
            // four k at a time: a[m, k..k+4] is one aligned vec4 of w (PASS 0) or of dy (PASS 2); k < k_end implies
            // k + 3 < k_end (both multiples of 4)
            for (var e = li; e < BK * BM / 4u; e += THREADS) {
                let kq = (e % (BK / 4u)) * 4u;
                let m = e / (BK / 4u);
                let k = k0 + kq;
                var v = vec4<f32>(0.0);
                if (m0 + m < GM && k < k_end) {
                    if (PASS == 0u) {
                        v = a_src4[((m0 + m) * GK + k) / 4u];
                    } else {
                        let n = k / (HO * WO);
                        v = a_src4[((n * COUT + m0 + m) * HO * WO + k % (HO * WO)) / 4u];
                    }
                }
                for (var j = 0u; j < 4u; j++) { a_tile[(kq + j) * BM + m] = v[j]; }
            }
        } else {
            for (var e = li; e < BK * BM; e += THREADS) {
                let kk = e % BK;
                let m = e / BK;
                a_tile[kk * BM + m] = a_at(m0 + m, k0 + kk, k_end);
            }
        }
        // stage B: columns fastest where B is contiguous along them (image rows for PASS 0 and 1), k for PASS 2
        for (var e = li; e < BK * BN; e += THREADS) {
            var kk: u32;
            var c: u32;
            if (PASS == 2u) { kk = e % BK; c = e / BK; } else { c = e % BN; kk = e / BN; }
            b_tile[kk * BN + c] = b_at(k0 + kk, c0 + c, k_end);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            var a: array<f32, 8>;
            var b: array<f32, 8>;
            for (var i = 0u; i < TM; i++) { a[i] = a_tile[kk * BM + ty * TM + i]; }
            for (var j = 0u; j < TN; j++) { b[j] = b_tile[kk * BN + tx + j * (BN / TN)]; }
            for (var i = 0u; i < TM; i++) {
                for (var j = 0u; j < TN; j++) {
                    acc[i * TN + j] += a[i] * b[j];
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < TM; i++) {
        let m = m0 + ty * TM + i;
        if (m >= GM) { break; }
        var add = 0.0;
        if (PASS == 0u && HAS_BIAS == 1u) { add = bias[m]; }
        for (var j = 0u; j < TN; j++) {
            let c = c0 + tx + j * (BN / TN);
            if (c < GN) { c_out[c_index(m, c, s)] = acc[i * TN + j] + add; }
        }
    }
}
