//! Every WGSL file parses and validates with naga: no adapter needed, so this runs first everywhere.

#[test]
fn every_shader_validates_with_naga() {
    let mut failures = Vec::new();
    for s in hyperdistill::shaders::ALL {
        match hyperdistill::shaders::validate(s) {
            Ok(()) => println!("{:<16} ok ({} bytes)", s.name, s.source.len()),
            Err(e) => failures.push(format!("{}:\n{e}", s.name)),
        }
    }
    assert!(failures.is_empty(), "invalid shaders:\n{}", failures.join("\n"));
}
