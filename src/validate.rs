//! validate: checks shared by every configuration. A float that reaches a kernel must be finite as an f32 (WGSL has
//! no f64, and wgpu refuses a non-finite pipeline constant), so these checks look at the value the GPU will see.

/// `v` as the GPU sees it: finite in f32.
pub fn finite_f32(name: &str, v: f64) -> Result<f32, String> {
    let f = v as f32;
    if !f.is_finite() {
        return Err(format!("{name} must be a finite number that fits in 32 bits (|x| < 3.4e38), got {v}"));
    }
    Ok(f)
}

/// Finite in f32 and > 0 there (a value that rounds to 0 in f32 is refused too).
pub fn positive_f32(name: &str, v: f64) -> Result<f32, String> {
    let f = finite_f32(name, v)?;
    if !(f > 0.0) {
        return Err(format!("{name} must be positive, got {v}"));
    }
    Ok(f)
}

/// Finite in f32 and ≥ 0.
pub fn non_negative_f32(name: &str, v: f64) -> Result<f32, String> {
    let f = finite_f32(name, v)?;
    if !(f >= 0.0) {
        return Err(format!("{name} must be non-negative, got {v}"));
    }
    Ok(f)
}

/// In [0, 1) (or [0, 1] with `closed`).
pub fn unit_interval(name: &str, v: f64, closed: bool) -> Result<(), String> {
    let ok = v >= 0.0 && if closed { v <= 1.0 } else { v < 1.0 };
    if !ok {
        return Err(format!("{name} must be in [0, 1{}, got {v}", if closed { "]" } else { ")" }));
    }
    Ok(())
}
