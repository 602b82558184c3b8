//! shaders: the WGSL sources, each file prefixed with `shaders/common.wgsl`, embedded at compile time.

/// One WGSL kernel family (one file under `shaders/`).
pub struct Shader {
    pub name: &'static str,
    pub source: &'static str,
}

macro_rules! shader {
    ($id:ident, $file:literal) => {
        pub static $id: Shader = Shader {
            name: $file,
            source: concat!(include_str!("../shaders/common.wgsl"), include_str!(concat!("../shaders/", $file))),
        };
    };
}

shader!(CONV, "conv.wgsl");
shader!(NORM, "norm.wgsl");
shader!(ACTIVATION, "activation.wgsl");
shader!(LINEAR, "linear.wgsl");
shader!(LOSS, "loss.wgsl");
shader!(LORENTZ, "lorentz.wgsl");
shader!(AUGMENT, "augment.wgsl");
shader!(MATCHING, "matching.wgsl");
shader!(OPTIM, "optim.wgsl");
shader!(MATMUL, "matmul.wgsl");
shader!(MOSAIC, "mosaic.wgsl");
shader!(LAYERS, "layers.wgsl");

/// Every shader, for validation tests and pipeline warm-up.
pub static ALL: &[&Shader] = &[&CONV, &NORM, &ACTIVATION, &LINEAR, &LOSS, &LORENTZ, &AUGMENT, &MATCHING, &OPTIM, &MATMUL, &MOSAIC, &LAYERS];

/// Parse and validate a shader with naga, without any adapter. Returns the error rendered with
/// source context on failure.
pub fn validate(shader: &Shader) -> Result<(), String> {
    let module = naga::front::wgsl::parse_str(shader.source).map_err(|e| e.emit_to_string(shader.source))?;
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty())
        .validate(&module)
        .map_err(|e| e.emit_to_string(shader.source))?;
    Ok(())
}
