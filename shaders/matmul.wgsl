// matmul.wgsl — C[M,N] = A[M,K]·B[K,N], row-major f32. Not used by the network: `hyperdistill bench`
// runs it to measure what this adapter can do on plain dense work (the "peak" that the convolution
// kernels are reported against, issue 8). Two designs, because the best one depends on the hardware:
//   regblock4 / regblock8  register blocking with vec4 loads, no workgroup memory and no barrier. On
//                          CPU adapters (lavapipe, SwiftShader) workgroups run as SIMD loops and barriers
//                          are coroutine switches, so this is the fast kernel there (platform.md §3).
//   tiled                  64×64 output tile per 64-thread workgroup, A and B staged through workgroup
//                          memory in K-steps of 16, 8×8 outputs per thread: the classic real-GPU design.
// Shapes: a [M, K/4] vec4, b [K, N/4] vec4, c [M, N/4] vec4. Requirements (the bench picks 1024³):
// K % 16 == 0, N % 64 == 0, M % 64 == 0 (regblock needs only M % 8 and N % 4).
//
// entry point   bindings (group 0)           one invocation per                 dispatch (workgroup 64)
// regblock4     0 a, 1 b, 2 c (rw)           4 rows × 1 vec4 column of C        M/4 · N/4 invocations
// regblock8     0 a, 1 b, 2 c (rw)           8 rows × 1 vec4 column of C        M/8 · N/4 invocations
// regblock88    0 a, 1 b, 2 c (rw)           8 rows × 2 vec4 columns of C       M/8 · N/8 invocations
// tiled         0 a, 1 b, 2 c (rw)           8 rows × 2 vec4 columns of C       M/64 · N/64 workgroups (× 64 invocations)

override M: u32;
override N: u32;
override K: u32;

@group(0) @binding(0) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> c: array<vec4<f32>>;

// Σ over one vec4 of k: row r of A (ar = A[r, k..k+4]) times rows k..k+4 of B (one vec4 column each)
fn fma4(acc: vec4<f32>, ar: vec4<f32>, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) -> vec4<f32> {
    return acc + ar.x * b0 + ar.y * b1 + ar.z * b2 + ar.w * b3;
}

@compute @workgroup_size(64)
fn regblock4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    let n4 = N / 4u;
    let k4 = K / 4u;
    if (id >= (M / 4u) * n4) { return; }
    // neighbouring invocations take neighbouring columns: they share A's rows and read B contiguously
    let col = id % n4;
    let row = (id / n4) * 4u;
    var c0 = vec4<f32>(0.0);
    var c1 = vec4<f32>(0.0);
    var c2 = vec4<f32>(0.0);
    var c3 = vec4<f32>(0.0);
    for (var k = 0u; k < k4; k++) {
        let b0 = b[(4u * k) * n4 + col];
        let b1 = b[(4u * k + 1u) * n4 + col];
        let b2 = b[(4u * k + 2u) * n4 + col];
        let b3 = b[(4u * k + 3u) * n4 + col];
        c0 = fma4(c0, a[row * k4 + k], b0, b1, b2, b3);
        c1 = fma4(c1, a[(row + 1u) * k4 + k], b0, b1, b2, b3);
        c2 = fma4(c2, a[(row + 2u) * k4 + k], b0, b1, b2, b3);
        c3 = fma4(c3, a[(row + 3u) * k4 + k], b0, b1, b2, b3);
    }
    c[row * n4 + col] = c0;
    c[(row + 1u) * n4 + col] = c1;
    c[(row + 2u) * n4 + col] = c2;
    c[(row + 3u) * n4 + col] = c3;
}

// C[row .. row+8, vec4 column col]: regblock8 and uniform8 differ only in how they map threads to (row, col)
fn rows8(row: u32, col: u32) {
    let n4 = N / 4u;
    let k4 = K / 4u;
    var acc: array<vec4<f32>, 8>;
    for (var r = 0u; r < 8u; r++) { acc[r] = vec4<f32>(0.0); }
    for (var k = 0u; k < k4; k++) {
        let b0 = b[(4u * k) * n4 + col];
        let b1 = b[(4u * k + 1u) * n4 + col];
        let b2 = b[(4u * k + 2u) * n4 + col];
        let b3 = b[(4u * k + 3u) * n4 + col];
        for (var r = 0u; r < 8u; r++) {
            acc[r] = fma4(acc[r], a[(row + r) * k4 + k], b0, b1, b2, b3);
        }
    }
    for (var r = 0u; r < 8u; r++) { c[(row + r) * n4 + col] = acc[r]; }
}

@compute @workgroup_size(64)
fn regblock8(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    let n4 = N / 4u;
    if (id >= (M / 8u) * n4) { return; }
    let col = id % n4;
    let row = (id / n4) * 8u;
    rows8(row, col);
}

// Rows from the workgroup, columns from the lane: every lane of a workgroup reads the same A element, so the
// compiler can prove the address uniform (llvmpipe then loads it once and broadcasts instead of gathering).
@compute @workgroup_size(64)
fn uniform8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    let n4 = N / 4u;
    let colblocks = (n4 + 63u) / 64u;
    let wg = wid.x + wid.y * nwg.x;
    if (wg >= (M / 8u) * colblocks) { return; }
    let row = (wg / colblocks) * 8u;
    let col = (wg % colblocks) * 64u + li;
    if (col >= n4) { return; }
    rows8(row, col);
}

// C[row .. row+8, vec4 columns 2·cp, 2·cp+1]: 8 × 8 outputs per invocation, 16 vec4 loads per 4-deep k step for
// 256 multiply-adds (regblock8: 12 for 128). On llvmpipe a load whose address varies across lanes costs a loop over
// the lanes whatever its width, so loads per multiply-add are what this kernel cuts (the lesson of conv.wgsl's
// forward8_v4).
@compute @workgroup_size(64)
fn regblock88(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    let n4 = N / 4u;
    let k4 = K / 4u;
    let pairs = n4 / 2u;
    if (id >= (M / 8u) * pairs) { return; }
    let cp = id % pairs;
    let row = (id / pairs) * 8u;
    var lo: array<vec4<f32>, 8>;
    var hi: array<vec4<f32>, 8>;
    for (var r = 0u; r < 8u; r++) { lo[r] = vec4<f32>(0.0); hi[r] = vec4<f32>(0.0); }
    for (var k = 0u; k < k4; k++) {
        let bb = (4u * k) * n4 + 2u * cp;
        let b0 = b[bb]; let b1 = b[bb + n4]; let b2 = b[bb + 2u * n4]; let b3 = b[bb + 3u * n4];
        let e0 = b[bb + 1u]; let e1 = b[bb + n4 + 1u]; let e2 = b[bb + 2u * n4 + 1u]; let e3 = b[bb + 3u * n4 + 1u];
        for (var r = 0u; r < 8u; r++) {
            let ar = a[(row + r) * k4 + k];
            lo[r] = fma4(lo[r], ar, b0, b1, b2, b3);
            hi[r] = fma4(hi[r], ar, e0, e1, e2, e3);
        }
    }
    for (var r = 0u; r < 8u; r++) {
        c[(row + r) * n4 + 2u * cp] = lo[r];
        c[(row + r) * n4 + 2u * cp + 1u] = hi[r];
    }
}

const TILE: u32 = 64u;  // output tile side
const KT: u32 = 16u;    // K step staged per barrier pair
var<workgroup> a_tile: array<f32, 1024>;        // [KT][TILE], A transposed so a thread's 8 rows are contiguous
var<workgroup> b_tile: array<vec4<f32>, 256>;   // [KT][TILE/4]

@compute @workgroup_size(64)
fn tiled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) li: u32) {
    let tile = wid.x + wid.y * nwg.x;
    let tiles_n = N / TILE;
    if (tile >= (M / TILE) * tiles_n) { return; }  // uniform per workgroup: no barrier is skipped by half a group
    let tm = tile / tiles_n;
    let tn = tile % tiles_n;
    let n4 = N / 4u;
    let k4 = K / 4u;
    let ty = li / 8u;  // this thread's rows ty·8 .. ty·8+8 of the tile
    let tx = li % 8u;  // its vec4 columns tx and tx + 8 (32 floats apart)
    var acc: array<vec4<f32>, 16>;
    for (var i = 0u; i < 16u; i++) { acc[i] = vec4<f32>(0.0); }
    for (var k0 = 0u; k0 < K; k0 += KT) {
        // stage A[tm·64 .. +64, k0 .. k0+16] (256 vec4) and B[k0 .. k0+16, tn·64 .. +64] (256 vec4): 4 each per thread
        for (var i = 0u; i < 4u; i++) {
            let idx = li + 64u * i;
            let r = idx / 4u;
            let kq = idx % 4u;
            let v = a[(tm * TILE + r) * k4 + k0 / 4u + kq];
            a_tile[(kq * 4u) * TILE + r] = v.x;
            a_tile[(kq * 4u + 1u) * TILE + r] = v.y;
            a_tile[(kq * 4u + 2u) * TILE + r] = v.z;
            a_tile[(kq * 4u + 3u) * TILE + r] = v.w;
            let kr = idx / 16u;
            let cq = idx % 16u;
            b_tile[kr * 16u + cq] = b[(k0 + kr) * n4 + tn * 16u + cq];
        }
        workgroupBarrier();
        for (var kk = 0u; kk < KT; kk++) {
            let bv0 = b_tile[kk * 16u + tx];
            let bv1 = b_tile[kk * 16u + 8u + tx];
            for (var r = 0u; r < 8u; r++) {
                let ar = a_tile[kk * TILE + ty * 8u + r];
                acc[2u * r] += ar * bv0;
                acc[2u * r + 1u] += ar * bv1;
            }
        }
        workgroupBarrier();
    }
    for (var r = 0u; r < 8u; r++) {
        let row = tm * TILE + ty * 8u + r;
        c[row * n4 + tn * 16u + tx] = acc[2u * r];
        c[row * n4 + tn * 16u + 8u + tx] = acc[2u * r + 1u];
    }
}
