//! validate: the error every configuration check returns, and the checks shared by every configuration. A float
//! that reaches a kernel must be finite as an f32 (WGSL has no f64, and wgpu refuses a non-finite pipeline
//! constant), so these checks look at the value the GPU will see.

/// A configuration value that cannot be used: which option, and what is wrong with it ("ipc" "must be at least 1").
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{option} {problem}")]
pub struct ConfigError {
    pub option: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(option: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError { option: option.into(), problem: problem.into() }
    }
}

/// `v` ≥ 1.
pub fn at_least_one(option: &str, v: usize) -> Result<(), ConfigError> {
    if v == 0 {
        return Err(ConfigError::new(option, "must be at least 1"));
    }
    Ok(())
}

/// A number as a message shows it: plainly, or in exponent form where that is shorter (1e300, not 301 digits).
pub fn num(v: f64) -> String {
    if v == 0.0 || !v.is_finite() || (1e-4..1e9).contains(&v.abs()) { v.to_string() } else { format!("{v:e}") }
}

/// `v` as the GPU sees it: finite in f32.
pub fn finite_f32(option: &str, v: f64) -> Result<f32, ConfigError> {
    let f = v as f32;
    if !f.is_finite() {
        return Err(ConfigError::new(option, format!("must be a finite number that fits in 32 bits (|x| < 3.4e38), got {}", num(v))));
    }
    Ok(f)
}

/// Finite in f32 and > 0 there (a value that rounds to 0 in f32 is refused too).
pub fn positive_f32(option: &str, v: f64) -> Result<f32, ConfigError> {
    let f = finite_f32(option, v)?;
    if !(f > 0.0) {
        return Err(ConfigError::new(option, format!("must be positive, got {}", num(v))));
    }
    Ok(f)
}

/// Finite in f32 and ≥ 0.
pub fn non_negative_f32(option: &str, v: f64) -> Result<f32, ConfigError> {
    let f = finite_f32(option, v)?;
    if !(f >= 0.0) {
        return Err(ConfigError::new(option, format!("must be non-negative, got {}", num(v))));
    }
    Ok(f)
}

/// In [0, 1) (or [0, 1] with `closed`).
pub fn unit_interval(option: &str, v: f64, closed: bool) -> Result<(), ConfigError> {
    let ok = v >= 0.0 && if closed { v <= 1.0 } else { v < 1.0 };
    if !ok {
        return Err(ConfigError::new(option, format!("must be in [0, 1{}, got {v}", if closed { "]" } else { ")" })));
    }
    Ok(())
}
