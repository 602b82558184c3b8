//! data::idx: the IDX format of MNIST and Fashion-MNIST (big-endian; magic 2051 = u8 images
//! [n, rows, cols], 2049 = u8 labels [n]), gzip-compressed or plain.

use super::source::{maybe_gunzip, Source};
use super::{bad, DataError, Dataset, Known, Split, FASHION_CLASSES};

pub const IMAGES_MAGIC: u32 = 2051;
pub const LABELS_MAGIC: u32 = 2049;

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parse an IDX image file: (n, rows, cols, pixels).
pub fn parse_images<'a>(file: &str, b: &'a [u8]) -> Result<(usize, usize, usize, &'a [u8]), DataError> {
    if b.len() < 16 {
        return Err(bad(file, format!("truncated IDX image header ({} bytes, need 16)", b.len())));
    }
    let magic = be_u32(b, 0);
    if magic != IMAGES_MAGIC {
        return Err(bad(file, format!("wrong magic number {magic} for an IDX image file (expected {IMAGES_MAGIC})")));
    }
    let (n, rows, cols) = (be_u32(b, 4) as usize, be_u32(b, 8) as usize, be_u32(b, 12) as usize);
    if rows == 0 || cols == 0 {
        return Err(bad(file, format!("image size {rows}×{cols} is empty")));
    }
    let want = n.checked_mul(rows).and_then(|v| v.checked_mul(cols)).ok_or_else(|| bad(file, "image dimensions overflow"))?;
    let have = b.len() - 16;
    if have != want {
        let what = if have < want { "truncated" } else { "has trailing bytes" };
        return Err(bad(file, format!("{what}: header says {n} images of {rows}×{cols} = {want} bytes, file holds {have}")));
    }
    Ok((n, rows, cols, &b[16..]))
}

/// Parse an IDX label file.
pub fn parse_labels(file: &str, b: &[u8]) -> Result<Vec<u32>, DataError> {
    if b.len() < 8 {
        return Err(bad(file, format!("truncated IDX label header ({} bytes, need 8)", b.len())));
    }
    let magic = be_u32(b, 0);
    if magic != LABELS_MAGIC {
        return Err(bad(file, format!("wrong magic number {magic} for an IDX label file (expected {LABELS_MAGIC})")));
    }
    let n = be_u32(b, 4) as usize;
    let have = b.len() - 8;
    if have != n {
        let what = if have < n { "truncated" } else { "has trailing bytes" };
        return Err(bad(file, format!("{what}: header says {n} labels, file holds {have}")));
    }
    Ok(b[8..].iter().map(|&v| v as u32).collect())
}

/// Images + labels of one split, with the count check between them.
pub fn parse_split(img_name: &str, img: &[u8], lab_name: &str, lab: &[u8]) -> Result<(Split, usize, usize), DataError> {
    let (n, rows, cols, px) = parse_images(img_name, img)?;
    let labels = parse_labels(lab_name, lab)?;
    if labels.len() != n {
        return Err(bad(lab_name, format!("{} labels but {img_name} has {n} images", labels.len())));
    }
    Ok((Split { images: px.to_vec(), labels }, rows, cols))
}

/// The standard file names, with the '.' variant some mirrors use, each optionally gzipped.
fn find_idx<'a>(src: &'a Source, stem: &str) -> Option<&'a str> {
    let dotted = stem.replacen("-idx", ".idx", 1);
    [format!("{stem}.gz"), stem.to_string(), format!("{dotted}.gz"), dotted].iter().find_map(|n| src.find(n))
}

/// Load an IDX directory when `src` holds one; `hint` (the path) tells MNIST from Fashion-MNIST.
pub fn detect(src: &Source, hint: &str) -> Result<Option<Dataset>, DataError> {
    let Some(train_img) = find_idx(src, "train-images-idx3-ubyte") else { return Ok(None) };
    let names = ["train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];
    let mut found = vec![train_img];
    for n in names {
        found.push(find_idx(src, n).ok_or_else(|| bad(src.display(train_img), format!("IDX dataset is missing {n}[.gz] beside it")))?);
    }
    let read = |rel: &str| -> Result<Vec<u8>, DataError> { maybe_gunzip(&src.display(rel), src.read(rel)?) };
    let (train, rows, cols) = parse_split(&src.display(found[0]), &read(found[0])?, &src.display(found[1]), &read(found[1])?)?;
    let (test, trows, tcols) = parse_split(&src.display(found[2]), &read(found[2])?, &src.display(found[3]), &read(found[3])?)?;
    if (rows, cols) != (trows, tcols) {
        return Err(bad(src.display(found[2]), format!("test images are {trows}×{tcols}, training images {rows}×{cols}")));
    }
    let h = hint.to_ascii_lowercase();
    let known = if h.contains("fashion") || h.contains("fmnist") {
        Some(Known::FashionMnist)
    } else if h.contains("mnist") {
        Some(Known::Mnist)
    } else {
        None
    };
    Ok(Some(build(train, test, rows, cols, known, hint, &src.display(""))))
}

/// Assemble an IDX dataset (shared with the embedded subset).
pub(crate) fn build(train: Split, test: Split, rows: usize, cols: usize, known: Option<Known>, hint: &str, source: &str) -> Dataset {
    let num_classes = match known {
        Some(_) => 10,
        None => train.labels.iter().chain(&test.labels).max().map_or(1, |&m| m as usize + 1),
    };
    let classes: Vec<String> = match known {
        Some(Known::FashionMnist) => FASHION_CLASSES.iter().map(|s| s.to_string()).collect(),
        _ => (0..num_classes).map(|i| i.to_string()).collect(),
    };
    let ds = Dataset {
        name: hint.to_string(),
        known: None,
        classes,
        channels: 1,
        height: rows,
        width: cols,
        mean: vec![0.5],
        std: vec![0.5],
        train,
        test,
        source: source.trim_end_matches('/').to_string(),
    };
    match known {
        Some(k) => ds.with_known(k),
        None => {
            let (m, s) = ds.pixel_stats(&ds.train);
            Dataset { mean: vec![m[0] as f32], std: vec![(s[0] as f32).max(1e-3)], ..ds }
        }
    }
}
