// augment.wgsl — differentiable siamese augmentation (DSA): color, crop, cutout, flip, scale and rotate
// (scale and rotate are one affine op: bilinear sampling, zero padding, align_corners = false), forward and
// backward to the input. Each image has its own op and parameters: params [N, 8] = [kind, p0 … p6] as
// src/augment.rs `AugParams` documents, so one dispatch serves a batch whose classes drew different ops.
// Images [N, C, H, W].
//
// entry point  bindings (group 0, in order)                          invocations
// image_sum    0 src, 1 sums (rw) [N]                                   N (per-image sum, for color's means)
// forward      0 x, 1 params, 2 sums (of x), 3 y (rw)                   N·C·H·W, one output element each
// backward     0 dy, 1 params, 2 sums (of dy), 3 dx (rw)                N·C·H·W, one input element each (a gather:
//                                                                        no atomics; the affine op visits the
//                                                                        6×6 outputs that can sample this pixel)
// image_sum_v4, forward_v4, backward_v4   as image_sum, forward and backward, images as vec4 (W % 4 == 0)    N and N·C·H·W/4 (4 outputs each)
// cutmix       0 x, 1 mix (u32) [4 + N] = (row0, row1, col0, col1, perm…), 2 y (rw)    N·C·H·W: y[n] = x[n]
//              outside the box [row0, row1) × [col0, col1), x[perm[n]] inside (CutMix after DSA; DANCE's evaluation)
// Workgroup 64.

override N: u32;
override C: u32;
override H: u32;
override W: u32;

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> sums_rw: array<f32>;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read> sums: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(64)
fn image_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = linear_id(gid, nwg);
    if (n >= N) { return; }
    let len = C * H * W;
    var s = 0.0;
    for (var k = 0u; k < len; k++) { s += src[n * len + k]; }
    sums_rw[n] = s;
}

fn p(n: u32, k: u32) -> f32 { return params[n * 8u + k]; }

// Source (row, col) in pixels sampled by output pixel (i, j) under θ = (p1 p2; p3 p4).
fn affine_source(n: u32, i: f32, j: f32) -> vec2<f32> {
    let xn = (2.0 * j + 1.0) / f32(W) - 1.0;
    let yn = (2.0 * i + 1.0) / f32(H) - 1.0;
    let xs = p(n, 1u) * xn + p(n, 2u) * yn;
    let ys = p(n, 3u) * xn + p(n, 4u) * yn;
    return vec2<f32>(((ys + 1.0) * f32(H) - 1.0) * 0.5, ((xs + 1.0) * f32(W) - 1.0) * 0.5);
}

fn at(base: u32, r: i32, q: i32) -> f32 {
    let inside = r >= 0 && q >= 0 && r < i32(H) && q < i32(W);
    let idx = base + u32(clamp(r, 0, i32(H) - 1)) * W + u32(clamp(q, 0, i32(W) - 1));
    return select(0.0, src[idx], inside);
}

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= N * C * H * W) { return; }
    let j = id % W;
    let i = (id / W) % H;
    let ch = (id / (W * H)) % C;
    let n = id / (W * H * C);
    let plane = H * W;
    let base = (n * C + ch) * plane;       // this channel's plane
    let kind = u32(p(n, 0u));
    var y = src[id];
    switch kind {
        case 1u: {
            let b = p(n, 1u);
            let s = p(n, 2u);
            let ct = p(n, 3u);
            let m2 = sums[n] / f32(C * plane) + b;
            var m1 = 0.0;
            for (var c2 = 0u; c2 < C; c2++) { m1 += src[(n * C + c2) * plane + i * W + j]; }
            m1 = m1 / f32(C) + b;
            y = ((src[id] + b - m1) * s + m1 - m2) * ct + m2;
        }
        case 2u: {
            y = at(base, i32(i) + i32(p(n, 1u)), i32(j) + i32(p(n, 2u)));
        }
        case 3u: {
            let cut = f32(i) >= p(n, 1u) && f32(i) < p(n, 2u) && f32(j) >= p(n, 3u) && f32(j) < p(n, 4u);
            y = select(src[id], 0.0, cut);
        }
        case 4u: {
            if (p(n, 1u) > 0.5) { y = src[base + i * W + (W - 1u - j)]; }
        }
        case 5u: {
            let s = affine_source(n, f32(i), f32(j));
            let y0 = floor(s.x);
            let x0 = floor(s.y);
            let fy = s.x - y0;
            let fx = s.y - x0;
            let r = i32(y0);
            let q = i32(x0);
            y = (1.0 - fy) * ((1.0 - fx) * at(base, r, q) + fx * at(base, r, q + 1))
              + fy * ((1.0 - fx) * at(base, r + 1, q) + fx * at(base, r + 1, q + 1));
        }
        default: {}
    }
    dst[id] = y;
}

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= N * C * H * W) { return; }
    let j = id % W;
    let i = (id / W) % H;
    let ch = (id / (W * H)) % C;
    let n = id / (W * H * C);
    let plane = H * W;
    let base = (n * C + ch) * plane;
    let kind = u32(p(n, 0u));
    var g = src[id];   // src holds dy here
    switch kind {
        case 1u: {
            let s = p(n, 2u);
            let ct = p(n, 3u);
            var pix = 0.0;
            for (var c2 = 0u; c2 < C; c2++) { pix += src[(n * C + c2) * plane + i * W + j]; }
            g = s * ct * src[id] + (1.0 - s) * ct / f32(C) * pix + (1.0 - ct) * sums[n] / f32(C * plane);
        }
        case 2u: {
            // output (i', j') read input (i' + tx, j' + ty): this pixel was read by (i − tx, j − ty)
            g = at(base, i32(i) - i32(p(n, 1u)), i32(j) - i32(p(n, 2u)));
        }
        case 3u: {
            let cut = f32(i) >= p(n, 1u) && f32(i) < p(n, 2u) && f32(j) >= p(n, 3u) && f32(j) < p(n, 4u);
            g = select(src[id], 0.0, cut);
        }
        case 4u: {
            if (p(n, 1u) > 0.5) { g = src[base + i * W + (W - 1u - j)]; }
        }
        case 5u: {
            // outputs o whose bilinear taps include this pixel lie near θ⁻¹(this pixel): visit a 6×6 window
            let t00 = p(n, 1u);
            let t01 = p(n, 2u);
            let t10 = p(n, 3u);
            let t11 = p(n, 4u);
            let det = t00 * t11 - t01 * t10;
            g = 0.0;
            if (abs(det) > 1e-6) {
                let xs = (2.0 * f32(j) + 1.0) / f32(W) - 1.0;
                let ys = (2.0 * f32(i) + 1.0) / f32(H) - 1.0;
                let xn = (t11 * xs - t01 * ys) / det;
                let yn = (-t10 * xs + t00 * ys) / det;
                let ci = i32(floor(((yn + 1.0) * f32(H) - 1.0) * 0.5));
                let cj = i32(floor(((xn + 1.0) * f32(W) - 1.0) * 0.5));
                for (var oi = ci - 2; oi <= ci + 3; oi++) {
                    if (oi < 0 || oi >= i32(H)) { continue; }
                    for (var oj = cj - 2; oj <= cj + 3; oj++) {
                        if (oj < 0 || oj >= i32(W)) { continue; }
                        let s = affine_source(n, f32(oi), f32(oj));
                        let wy = max(0.0, 1.0 - abs(s.x - f32(i)));
                        let wx = max(0.0, 1.0 - abs(s.y - f32(j)));
                        g += wy * wx * src[base + u32(oi) * W + u32(oj)];
                    }
                }
            }
        }
        default: {}
    }
    dst[id] = g;
}

// ---- image_sum_v4, forward_v4, backward_v4 (CPU adapters; W % 4 == 0): the same maths with 4 adjacent columns per invocation.
// On llvmpipe a kernel pays per load/store instruction (benches/NOTES.md, session 11): the image read and written as
// vec4, an image's op and parameters loaded once for 4 outputs instead of for each. Gathers (crop, scale, rotate)
// stay scalar, read as a component of a vec4 load (an entry point must not read one binding through two variables).
// Invocations: N (image_sum_v4), N·C·H·W/4 (forward_v4, backward_v4).
@group(0) @binding(0) var<storage, read> src4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dst4: array<vec4<f32>>;

@compute @workgroup_size(64)
fn image_sum_v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = linear_id(gid, nwg);
    if (n >= N) { return; }
    let len = C * H * W / 4u;
    var s = vec4<f32>(0.0);
    for (var k = 0u; k < len; k++) { s += src4[n * len + k]; }
    sums_rw[n] = s.x + s.y + s.z + s.w;
}

// as `at`, through the vec4 view
fn at4(base: u32, r: i32, q: i32) -> f32 {
    let inside = r >= 0 && q >= 0 && r < i32(H) && q < i32(W);
    let idx = base + u32(clamp(r, 0, i32(H) - 1)) * W + u32(clamp(q, 0, i32(W) - 1));
    return select(0.0, src4[idx / 4u][idx % 4u], inside);
}

// affine_source with θ = (t.x t.y; t.z t.w) already loaded
fn affine_source_t(t: vec4<f32>, i: f32, j: f32) -> vec2<f32> {
    let xn = (2.0 * j + 1.0) / f32(W) - 1.0;
    let yn = (2.0 * i + 1.0) / f32(H) - 1.0;
    return vec2<f32>(((t.z * xn + t.w * yn + 1.0) * f32(H) - 1.0) * 0.5, ((t.x * xn + t.y * yn + 1.0) * f32(W) - 1.0) * 0.5);
}

// bilinear sample of output pixel (i, j) under θ = (t.x t.y; t.z t.w), as forward's case 5
fn affine4(base: u32, t: vec4<f32>, i: f32, j: f32) -> f32 {
    let s = affine_source_t(t, i, j);
    let y0 = floor(s.x);
    let x0 = floor(s.y);
    let fy = s.x - y0;
    let fx = s.y - x0;
    let r = i32(y0);
    let q = i32(x0);
    return (1.0 - fy) * ((1.0 - fx) * at4(base, r, q) + fx * at4(base, r, q + 1))
         + fy * ((1.0 - fx) * at4(base, r + 1, q) + fx * at4(base, r + 1, q + 1));
}

// the 4 pixels of vec4 index id: columns 4·jq .. 4·jq + 3 of row i of image n, whose channel plane starts at base
struct Quad { jq: u32, i: u32, n: u32, base: u32 }

fn quad(id: u32) -> Quad {
    let wq = W / 4u;
    let n = id / (wq * H * C);
    return Quad(id % wq, (id / wq) % H, n, (n * C + (id / (wq * H)) % C) * H * W);
}

// an image's 4 op parameters, loaded once for its 4 pixels
fn params4(n: u32) -> vec4<f32> {
    return vec4<f32>(p(n, 1u), p(n, 2u), p(n, 3u), p(n, 4u));
}

// the same 4 pixels in every channel of the image, summed (color's per-pixel channel mean, and its transpose)
fn channel_sum4(q: Quad) -> vec4<f32> {
    var s = vec4<f32>(0.0);
    for (var c2 = 0u; c2 < C; c2++) { s += src4[((q.n * C + c2) * H + q.i) * (W / 4u) + q.jq]; }
    return s;
}

// crop's shift by (dr, dc) pixels, zero outside (forward: +(tx, ty); its transpose: −(tx, ty))
fn shift4(q: Quad, dr: i32, dc: i32) -> vec4<f32> {
    let r = i32(q.i) + dr;
    let c = i32(4u * q.jq) + dc;
    return vec4<f32>(at4(q.base, r, c), at4(q.base, r, c + 1), at4(q.base, r, c + 2), at4(q.base, r, c + 3));
}

// cutout (pv = row0, row1, col0, col1) and flip (pv.x > 0.5) of 4 pixels: each its own transpose
fn cutout4(q: Quad, pv: vec4<f32>, v: vec4<f32>) -> vec4<f32> {
    let j0 = 4u * q.jq;
    let cols = vec4<f32>(f32(j0), f32(j0 + 1u), f32(j0 + 2u), f32(j0 + 3u));
    let row = f32(q.i) >= pv.x && f32(q.i) < pv.y;
    return select(v, vec4<f32>(0.0), (cols >= vec4<f32>(pv.z)) & (cols < vec4<f32>(pv.w)) & vec4<bool>(row));
}

fn flip4(q: Quad, pv: vec4<f32>, v: vec4<f32>) -> vec4<f32> {
    // columns W − 1 − 4jq − 3 .. W − 1 − 4jq: one aligned vec4 (W % 4 == 0), reversed
    if (pv.x > 0.5) { return src4[(q.base + q.i * W) / 4u + (W / 4u - 1u - q.jq)].wzyx; }
    return v;
}

@compute @workgroup_size(64)
fn forward_v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);  // vec4 index of the 4 outputs
    if (id >= N * C * H * (W / 4u)) { return; }
    let q = quad(id);
    let pv = params4(q.n);
    var y = src4[id];
    switch u32(p(q.n, 0u)) {
        case 1u: {
            let b = vec4<f32>(pv.x);
            let m2 = vec4<f32>(sums[q.n] / f32(C * H * W)) + b;
            let m1 = channel_sum4(q) / f32(C) + b;
            y = ((y + b - m1) * pv.y + m1 - m2) * pv.z + m2;
        }
        case 2u: { y = shift4(q, i32(pv.x), i32(pv.y)); }
        case 3u: { y = cutout4(q, pv, y); }
        case 4u: { y = flip4(q, pv, y); }
        case 5u: {
            let fi = f32(q.i);
            let j0 = 4u * q.jq;
            y = vec4<f32>(affine4(q.base, pv, fi, f32(j0)), affine4(q.base, pv, fi, f32(j0 + 1u)),
                          affine4(q.base, pv, fi, f32(j0 + 2u)), affine4(q.base, pv, fi, f32(j0 + 3u)));
        }
        default: {}
    }
    dst4[id] = y;
}

// ∂L/∂x at pixel (i, j) of the affine op (θ = t): backward's case 5, the outputs in a 6×6 window around θ⁻¹(pixel)
fn affine4_adjoint(base: u32, t: vec4<f32>, i: u32, j: u32) -> f32 {
    let det = t.x * t.w - t.y * t.z;
    var g = 0.0;
    if (abs(det) > 1e-6) {
        let xs = (2.0 * f32(j) + 1.0) / f32(W) - 1.0;
        let ys = (2.0 * f32(i) + 1.0) / f32(H) - 1.0;
        let xn = (t.w * xs - t.y * ys) / det;
        let yn = (-t.z * xs + t.x * ys) / det;
        let ci = i32(floor(((yn + 1.0) * f32(H) - 1.0) * 0.5));
        let cj = i32(floor(((xn + 1.0) * f32(W) - 1.0) * 0.5));
        for (var oi = ci - 2; oi <= ci + 3; oi++) {
            if (oi < 0 || oi >= i32(H)) { continue; }
            for (var oj = cj - 2; oj <= cj + 3; oj++) {
                if (oj < 0 || oj >= i32(W)) { continue; }
                let s = affine_source_t(t, f32(oi), f32(oj));
                let wy = max(0.0, 1.0 - abs(s.x - f32(i)));
                let wx = max(0.0, 1.0 - abs(s.y - f32(j)));
                let idx = base + u32(oi) * W + u32(oj);
                g += wy * wx * src4[idx / 4u][idx % 4u];
            }
        }
    }
    return g;
}

// backward with 4 adjacent columns per invocation (src4 holds dy, dst4 receives dx), as forward_v4
@compute @workgroup_size(64)
fn backward_v4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= N * C * H * (W / 4u)) { return; }
    let q = quad(id);
    let pv = params4(q.n);
    var g = src4[id];
    switch u32(p(q.n, 0u)) {
        case 1u: {
            g = pv.y * pv.z * g + (1.0 - pv.y) * pv.z / f32(C) * channel_sum4(q) + vec4<f32>((1.0 - pv.z) * sums[q.n] / f32(C * H * W));
        }
        // output (i', j') read input (i' + tx, j' + ty): this pixel was read by (i − tx, j − ty)
        case 2u: { g = shift4(q, -i32(pv.x), -i32(pv.y)); }
        case 3u: { g = cutout4(q, pv, g); }
        case 4u: { g = flip4(q, pv, g); }
        case 5u: {
            let j0 = 4u * q.jq;
            g = vec4<f32>(affine4_adjoint(q.base, pv, q.i, j0), affine4_adjoint(q.base, pv, q.i, j0 + 1u),
                          affine4_adjoint(q.base, pv, q.i, j0 + 2u), affine4_adjoint(q.base, pv, q.i, j0 + 3u));
        }
        default: {}
    }
    dst4[id] = g;
}

@group(0) @binding(0) var<storage, read> cm_x: array<f32>;
@group(0) @binding(1) var<storage, read> cm_mix: array<u32>;
@group(0) @binding(2) var<storage, read_write> cm_y: array<f32>;

@compute @workgroup_size(64)
fn cutmix(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= N * C * H * W) { return; }
    let col = id % W;
    let row = (id / W) % H;
    let n = id / (C * H * W);
    let inside = row >= cm_mix[0] && row < cm_mix[1] && col >= cm_mix[2] && col < cm_mix[3];
    let src_img = select(n, cm_mix[4u + n], inside);
    cm_y[id] = cm_x[src_img * C * H * W + id % (C * H * W)];
}
