// common.wgsl — prepended to every kernel file by src/shaders.rs.
// Kernels launch a 1-D range of invocations over a 2-D grid of 64-thread workgroups (x ≤ 65535,
// see gpu::grid); linear_id() turns the built-ins back into the flat index. Each kernel returns
// early when the index passes its own total.
const WG: u32 = 64u;

fn linear_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

