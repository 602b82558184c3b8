//! nn: the network layer. `ops` launches one WGSL kernel per op; `convnet` builds ConvNet-3 from them
//! (and the same network on the CPU reference, for tests); `tune` decides which kernel runs each convolution pass
//! of a shape (measured on the device, pinned by a resume, or the rule).

pub mod arch;
pub mod convnet;
pub mod ops;
pub mod tune;

pub use convnet::{ConvNetConfig, ConvNetParams, GpuConvNet, Upstream, Workspace};
