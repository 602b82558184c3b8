//! hyperdistill: Hyperbolic Dataset Distillation and the DM family on the GPU (wgpu + WGSL).
//! See ARCHITECTURE.md for what each module owns and which way the dependencies point.

#[cfg(feature = "app")]
pub mod app;
pub mod augment;
#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
pub mod data;
pub mod distill;
#[cfg(not(target_arch = "wasm32"))]
pub mod eval;
pub mod experts;
pub mod export;
pub mod gpu;
pub mod hdd;
pub mod mosaic;
pub mod nn;
#[cfg(not(target_arch = "wasm32"))]
pub mod prune;
pub mod reference;
#[cfg(not(target_arch = "wasm32"))]
pub mod report;
pub mod rng;
#[cfg(not(target_arch = "wasm32"))]
pub mod run;
pub mod selfcheck;
pub mod shaders;
pub mod shapes;
#[cfg(not(target_arch = "wasm32"))]
pub mod study;
pub mod trace;
pub mod validate;
pub mod view;
#[cfg(all(target_arch = "wasm32", feature = "app"))]
pub mod web;
