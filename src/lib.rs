//! hyperdistill: Hyperbolic Dataset Distillation and the DM family on the GPU (wgpu + WGSL).
//! See ARCHITECTURE.md for what each module owns and which way the dependencies point.

#[cfg(feature = "app")]
pub mod app;
pub mod augment;
pub mod bench;
pub mod data;
pub mod distill;
pub mod eval;
pub mod export;
pub mod gpu;
pub mod lorentz;
pub mod nn;
pub mod prune;
pub mod reference;
pub mod rng;
pub mod run;
pub mod selfcheck;
pub mod shaders;
pub mod shapes;
pub mod view;
