//! hyperdistill: Hyperbolic Dataset Distillation and the DM family on the GPU (wgpu + WGSL).
//! See ARCHITECTURE.md for what each module owns.

pub mod gpu;
pub mod shaders;
