//! data::svhn: SVHN cropped digits, the official `train_32x32.mat` / `test_32x32.mat` (MATLAB v5, read with
//! the `matfile` crate). `X` is uint8 [32, 32, 3, N] in MATLAB's column-major order, `y` is [N, 1] with
//! label 10 standing for digit 0.

use std::io::Read;

use super::source::Source;
use super::{bad, DataError, Dataset, Known, Split};

/// MATLAB v5's tag type of a zlib-compressed element.
const MI_COMPRESSED: u32 = 15;

/// The bytes the file's compressed elements inflate to, counted by streaming each into nothing: refused past
/// `cap` before the `matfile` crate (which inflates without a bound) sees the file.
fn check_inflated_size(file: &str, bytes: &[u8], cap: u64) -> Result<(), DataError> {
    if bytes.len() < 128 {
        return Ok(()); // too short for a header: matfile says so
    }
    let little = &bytes[126..128] == b"IM";
    let word = |at: usize| -> Option<u32> {
        let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if little { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) })
    };
    let mut at = 128;
    let mut total = 0u64;
    while let (Some(ty), Some(size)) = (word(at), at.checked_add(4).and_then(word)) {
        if ty >> 16 != 0 {
            at = at.saturating_add(8); // a small data element: tag and data in 8 bytes
            continue;
        }
        let from = at.saturating_add(8).min(bytes.len());
        let data = &bytes[from..from.saturating_add(size as usize).min(bytes.len())];
        if ty == MI_COMPRESSED {
            let mut z = flate2::read::ZlibDecoder::new(data).take(cap.saturating_sub(total).saturating_add(1));
            total += std::io::copy(&mut z, &mut std::io::sink()).unwrap_or(0);
            if total > cap {
                return Err(super::source::too_large(file, cap));
            }
        }
        // compressed elements are not padded, the others to 8 bytes
        let len = if ty == MI_COMPRESSED { size as u64 } else { (size as u64).div_ceil(8) * 8 };
        at = usize::try_from(at as u64 + 8 + len).unwrap_or(usize::MAX);
    }
    Ok(())
}

/// Parse one SVHN .mat file into a split.
pub fn parse_mat(file: &str, bytes: &[u8]) -> Result<Split, DataError> {
    check_inflated_size(file, bytes, super::source::Limits::get().file_bytes)?;
    let mat = matfile::MatFile::parse(bytes).map_err(|e| bad(file, format!("not a readable MATLAB v5 file: {e}")))?;
    let x = mat.find_by_name("X").ok_or_else(|| bad(file, "no array named 'X'"))?;
    let y = mat.find_by_name("y").ok_or_else(|| bad(file, "no array named 'y'"))?;
    let size = x.size();
    if size.len() != 4 || size[0] != 32 || size[1] != 32 || size[2] != 3 {
        return Err(bad(file, format!("'X' has shape {size:?}, expected [32, 32, 3, N]")));
    }
    let n = size[3];
    let matfile::NumericData::UInt8 { real: px, .. } = x.data() else {
        return Err(bad(file, "'X' is not uint8"));
    };
    if px.len() != 32 * 32 * 3 * n {
        return Err(bad(file, format!("'X' holds {} values, its shape needs {}", px.len(), 32 * 32 * 3 * n)));
    }
    let labels_f: Vec<f64> = match y.data() {
        matfile::NumericData::Double { real, .. } => real.clone(),
        matfile::NumericData::UInt8 { real, .. } => real.iter().map(|&v| v as f64).collect(),
        matfile::NumericData::Single { real, .. } => real.iter().map(|&v| v as f64).collect(),
        _ => return Err(bad(file, "'y' is neither double nor uint8")),
    };
    if labels_f.len() != n {
        return Err(bad(file, format!("{} labels for {n} images", labels_f.len())));
    }
    let mut labels = Vec::with_capacity(n);
    for (i, &v) in labels_f.iter().enumerate() {
        if v.fract() != 0.0 || !(0.0..=10.0).contains(&v) {
            return Err(bad(file, format!("label {i} is {v}, expected an integer 1..10 (10 = digit 0)")));
        }
        labels.push(if v == 10.0 { 0 } else { v as u32 });
    }
    // column-major (row, col, channel, n) → our N×C×H×W
    let mut images = Vec::with_capacity(px.len());
    for i in 0..n {
        for c in 0..3 {
            for row in 0..32 {
                for col in 0..32 {
                    images.push(px[row + 32 * col + 1024 * c + 3072 * i]);
                }
            }
        }
    }
    Ok(Split { images, labels })
}

pub fn detect(src: &Source) -> Result<Option<Dataset>, DataError> {
    let (train_f, test_f) = match (src.find("train_32x32.mat"), src.find("test_32x32.mat")) {
        (None, None) => return Ok(None),
        (Some(a), Some(b)) => (a, b),
        (Some(a), None) => return Err(bad(src.display(a), "SVHN test_32x32.mat is missing beside it")),
        (None, Some(b)) => return Err(bad(src.display(b), "SVHN train_32x32.mat is missing beside it")),
    };
    let train = parse_mat(&src.display(train_f), &src.read(train_f)?)?;
    let test = parse_mat(&src.display(test_f), &src.read(test_f)?)?;
    let classes = (0..10).map(|d| d.to_string()).collect();
    Ok(Some(Dataset::known(Known::Svhn, classes, 32, 32, train, test, src.display(""))))
}
