//! nn: the network layer. `ops` launches one WGSL kernel per op; `convnet` builds ConvNet-3 from them
//! (and the same network on the CPU reference, for tests).

pub mod arch;
pub mod convnet;
pub mod ops;

pub use convnet::{ConvNetConfig, ConvNetParams, GpuConvNet, Upstream, Workspace};
