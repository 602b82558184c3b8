//! shaders: the WGSL sources, each file prefixed with `shaders/common.wgsl`, embedded at compile time.

/// One WGSL kernel family (one file under `shaders/`).
pub struct Shader {
    pub name: &'static str,
    pub source: &'static str,
    /// Uses subgroup built-ins: only for devices opened with `wgpu::Features::SUBGROUP` (see `Gpu::subgroup_size`).
    pub subgroups: bool,
}

macro_rules! shader {
    ($id:ident, $file:literal) => {
        shader!($id, $file, false);
    };
    // a pass of a family whose passes share a prefix file (the convolution's conv_common.wgsl)
    ($id:ident, $prefix:literal + $file:literal) => {
        pub static $id: Shader = Shader {
            name: $file,
            source: concat!(include_str!("../shaders/common.wgsl"), include_str!(concat!("../shaders/", $prefix)), include_str!(concat!("../shaders/", $file))),
            subgroups: false,
        };
    };
    ($id:ident, $file:literal, $subgroups:literal) => {
        pub static $id: Shader = Shader {
            name: $file,
            source: concat!(include_str!("../shaders/common.wgsl"), include_str!(concat!("../shaders/", $file))),
            subgroups: $subgroups,
        };
    };
}

shader!(CONV_FORWARD, "conv_common.wgsl" + "conv_forward.wgsl");
shader!(CONV_INPUT, "conv_common.wgsl" + "conv_input.wgsl");
shader!(CONV_WEIGHT, "conv_common.wgsl" + "conv_weight.wgsl");
shader!(CONV_GEMM, "conv_gemm.wgsl");
shader!(NORM, "norm.wgsl");
shader!(NORM_SG, "norm_sg.wgsl", true);
shader!(ACTIVATION, "activation.wgsl");
shader!(LINEAR, "linear.wgsl");
shader!(LOSS, "loss.wgsl");
shader!(HDD, "hdd.wgsl");
shader!(AUGMENT, "augment.wgsl");
shader!(MATCHING, "matching.wgsl");
shader!(OPTIM, "optim.wgsl");
shader!(MATMUL, "matmul.wgsl");
shader!(MOSAIC, "mosaic.wgsl");
shader!(LAYERS, "layers.wgsl");
shader!(HEALTH, "health.wgsl");

/// Every shader, for validation tests and pipeline warm-up.
pub static ALL: &[&Shader] = &[&CONV_FORWARD, &CONV_INPUT, &CONV_WEIGHT, &CONV_GEMM, &NORM, &NORM_SG, &ACTIVATION, &LINEAR, &LOSS, &HDD, &AUGMENT, &MATCHING, &OPTIM, &MATMUL, &MOSAIC, &LAYERS, &HEALTH];

/// Parse and validate a shader with naga, without any adapter. Returns the error rendered with
/// source context on failure.
pub fn validate(shader: &Shader) -> Result<(), String> {
    let module = naga::front::wgsl::parse_str(shader.source).map_err(|e| e.emit_to_string(shader.source))?;
    let caps = if shader.subgroups { naga::valid::Capabilities::SUBGROUP } else { naga::valid::Capabilities::empty() };
    let mut validator = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps);
    if shader.subgroups {
        validator
            .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
            .subgroup_operations(naga::valid::SubgroupOperationSet::BASIC | naga::valid::SubgroupOperationSet::ARITHMETIC);
    }
    validator
        .validate(&module)
        .map_err(|e| e.emit_to_string(shader.source))?;
    Ok(())
}
