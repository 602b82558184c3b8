//! With no backend to search, opening the GPU must fail with an error that tells the user what to
//! install, not panic and not hang.

use hyperdistill::gpu::{Gpu, GpuError};

#[test]
fn missing_adapter_gives_install_hint() {
    let err = match Gpu::with_backends(wgpu::Backends::empty()) {
        Ok(g) => panic!("expected no adapter with no backends, got {}", g.describe()),
        Err(e) => e,
    };
    let msg = err.to_string();
    println!("{msg}");
    assert!(matches!(err, GpuError::NoAdapter { .. }), "wrong error kind: {err:?}");
    assert!(msg.contains("mesa-vulkan-drivers"), "the message must name the Debian package: {msg}");
    assert!(msg.contains("Vulkan") && msg.contains("Metal") && msg.contains("DX12"), "{msg}");
}
