// mosaic.wgsl — IDM's partition-and-expansion (method.md §4.1): each stored image [C,H,W] is a 2×2 mosaic of
// half-resolution images; `expand` splits it into its quadrants q = 0 TL [:h,:w], 1 BL [h:,:w], 2 TR [:h,w:],
// 3 BR [h:,w:] (h = H/2, w = W/2) and upsamples each ×2 bilinearly as F.interpolate(scale_factor=2,
// mode='bilinear', align_corners=False): source = max((r + 0.5)/2 − 0.5, 0), taps floor(source) and the next
// row clamped to the quadrant's edge. Output is quadrant-major, as torch.cat([a, b, c, d]): image q·M + i.
// `expand_backward` is its exact adjoint, gathered per input pixel (no atomics): each input pixel belongs to one
// quadrant and receives from output rows 2u−1 … 2u+2 and columns 2v−1 … 2v+2 of that quadrant's image.
//
// entry point       bindings (group 0, in order)                 invocations (one each)
// expand            0 x [M,C,H,W], 1 y (rw) [4M,C,H,W]             output element
// expand_backward   0 dy [4M,C,H,W], 1 dx (rw) [M,C,H,W]           input element
// Workgroup 64. H and W are even (checked by the caller).

override M: u32;
override C: u32;
override H: u32;
override W: u32;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;

// The two source taps of output index r along an axis of half-length `half`, and the second tap's weight.
struct Taps { i0: u32, i1: u32, l: f32 }

fn taps(r: u32, half: u32) -> Taps {
    let src = max((f32(r) + 0.5) * 0.5 - 0.5, 0.0);
    let i0 = min(u32(floor(src)), half - 1u);
    return Taps(i0, min(i0 + 1u, half - 1u), src - f32(i0));
}

// Weight with which output index r reads source index u (0 when it does not).
fn weight(r: u32, u: u32, half: u32) -> f32 {
    let t = taps(r, half);
    return select(0.0, 1.0 - t.l, t.i0 == u) + select(0.0, t.l, t.i1 == u);
}

@compute @workgroup_size(64)
fn expand(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= 4u * M * C * H * W) { return; }
    let s = id % W;
    let r = (id / W) % H;
    let ch = (id / (W * H)) % C;
    let o = id / (W * H * C);
    let q = o / M;
    let i = o % M;
    let hh = H / 2u;
    let hw = W / 2u;
    let r0 = select(0u, hh, q == 1u || q == 3u);
    let c0 = select(0u, hw, q >= 2u);
    let tr = taps(r, hh);
    let tc = taps(s, hw);
    let base = (i * C + ch) * H * W;
    let row0 = base + (r0 + tr.i0) * W + c0;
    let row1 = base + (r0 + tr.i1) * W + c0;
    let top = (1.0 - tc.l) * x[row0 + tc.i0] + tc.l * x[row0 + tc.i1];
    let bottom = (1.0 - tc.l) * x[row1 + tc.i0] + tc.l * x[row1 + tc.i1];
    y[id] = (1.0 - tr.l) * top + tr.l * bottom;
}

@compute @workgroup_size(64)
fn expand_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear_id(gid, nwg);
    if (id >= M * C * H * W) { return; }
    let sx = id % W;
    let rx = (id / W) % H;
    let ch = (id / (W * H)) % C;
    let i = id / (W * H * C);
    let hh = H / 2u;
    let hw = W / 2u;
    let bottom = rx >= hh;
    let right = sx >= hw;
    let q = select(0u, 1u, bottom) + select(0u, 2u, right);
    let u = rx - select(0u, hh, bottom);
    let v = sx - select(0u, hw, right);
    let base = ((q * M + i) * C + ch) * H * W;
    var acc = 0.0;
    for (var r = max(2u * u, 1u) - 1u; r <= min(2u * u + 2u, H - 1u); r++) {
        let wr = weight(r, u, hh);
        if (wr == 0.0) { continue; }
        var row = 0.0;
        for (var s = max(2u * v, 1u) - 1u; s <= min(2u * v + 2u, W - 1u); s++) {
            row += weight(s, v, hw) * dy[base + r * W + s];
        }
        acc += wr * row;
    }
    dx[id] = acc;
}
