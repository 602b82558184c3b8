//! data::idx: the IDX format of MNIST and Fashion-MNIST (big-endian; magic 2051 = u8 images
//! [n, rows, cols], 2049 = u8 labels [n]), gzip-compressed or plain.

use std::io::Read;

use super::source::{decoded, read_err, Limits, Source};
use super::{bad, DataError, Dataset, Known, Split, FASHION_CLASSES};

pub const IMAGES_MAGIC: u32 = 2051;
pub const LABELS_MAGIC: u32 = 2049;

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The header of an IDX file (`N` bytes), or an error that says the file is too short for one.
fn header<const N: usize>(file: &str, r: &mut dyn Read, what: &str) -> Result<[u8; N], DataError> {
    let mut h = [0u8; N];
    let mut got = 0;
    while got < N {
        match r.read(&mut h[got..]).map_err(|e| read_err(file, e))? {
            0 => return Err(bad(file, format!("truncated IDX {what} header ({got} bytes, need {N})"))),
            n => got += n,
        }
    }
    Ok(h)
}

/// Exactly the `want` bytes the header announced, and nothing after them. Memory follows the bytes that arrive,
/// not the announcement, and an announcement beyond `Limits::file_bytes` is refused before anything is read.
fn body(file: &str, r: &mut dyn Read, want: u64, announced: impl Fn() -> String) -> Result<Vec<u8>, DataError> {
    let cap = Limits::get().file_bytes;
    if want > cap {
        return Err(bad(file, format!("{}, more than the {} MiB a dataset file may hold here (set HYPERDISTILL_MAX_FILE_MB to allow more)", announced(), cap >> 20)));
    }
    let mut buf = Vec::new();
    r.take(want).read_to_end(&mut buf).map_err(|e| read_err(file, e))?;
    if (buf.len() as u64) < want {
        return Err(bad(file, format!("truncated: {}, the file holds {}", announced(), buf.len())));
    }
    let mut one = [0u8; 1];
    if r.read(&mut one).map_err(|e| read_err(file, e))? > 0 {
        return Err(bad(file, format!("has trailing bytes: {}, the file holds more", announced())));
    }
    Ok(buf)
}

/// Read an IDX image file (plain or gzipped, from a stream): (n, rows, cols, pixels).
pub fn read_images(file: &str, r: &mut dyn Read) -> Result<(usize, usize, usize, Vec<u8>), DataError> {
    let mut r = decoded(r).map_err(|e| read_err(file, e))?;
    let h = header::<16>(file, &mut r, "image")?;
    let magic = be_u32(&h, 0);
    if magic != IMAGES_MAGIC {
        return Err(bad(file, format!("wrong magic number {magic} for an IDX image file (expected {IMAGES_MAGIC})")));
    }
    let (n, rows, cols) = (be_u32(&h, 4) as u64, be_u32(&h, 8) as u64, be_u32(&h, 12) as u64);
    if rows == 0 || cols == 0 {
        return Err(bad(file, format!("image size {rows}×{cols} is empty")));
    }
    let want = n.checked_mul(rows).and_then(|v| v.checked_mul(cols)).ok_or_else(|| bad(file, "image dimensions overflow"))?;
    let px = body(file, &mut r, want, || format!("header says {n} images of {rows}×{cols} = {want} bytes"))?;
    Ok((n as usize, rows as usize, cols as usize, px))
}

/// Read an IDX label file (plain or gzipped, from a stream).
pub fn read_labels(file: &str, r: &mut dyn Read) -> Result<Vec<u32>, DataError> {
    let mut r = decoded(r).map_err(|e| read_err(file, e))?;
    let h = header::<8>(file, &mut r, "label")?;
    let magic = be_u32(&h, 0);
    if magic != LABELS_MAGIC {
        return Err(bad(file, format!("wrong magic number {magic} for an IDX label file (expected {LABELS_MAGIC})")));
    }
    let n = be_u32(&h, 4) as u64;
    let labels = body(file, &mut r, n, || format!("header says {n} labels"))?;
    Ok(labels.into_iter().map(u32::from).collect())
}

/// `read_images` over bytes in memory.
pub fn parse_images(file: &str, b: &[u8]) -> Result<(usize, usize, usize, Vec<u8>), DataError> {
    read_images(file, &mut &b[..])
}

/// `read_labels` over bytes in memory.
pub fn parse_labels(file: &str, b: &[u8]) -> Result<Vec<u32>, DataError> {
    read_labels(file, &mut &b[..])
}

/// Images + labels of one split, with the count check between them.
pub fn parse_split(img_name: &str, img: &[u8], lab_name: &str, lab: &[u8]) -> Result<(Split, usize, usize), DataError> {
    let (n, rows, cols, px) = parse_images(img_name, img)?;
    let labels = parse_labels(lab_name, lab)?;
    split_of(img_name, n, rows, cols, px, lab_name, labels)
}

fn split_of(img_name: &str, n: usize, rows: usize, cols: usize, images: Vec<u8>, lab_name: &str, labels: Vec<u32>) -> Result<(Split, usize, usize), DataError> {
    if labels.len() != n {
        return Err(bad(lab_name, format!("{} labels but {img_name} has {n} images", labels.len())));
    }
    Ok((Split { images, labels }, rows, cols))
}

/// One split read from `src` as streams: no file is ever held whole in compressed and decoded form at once.
fn read_split(src: &Source, img: &str, lab: &str) -> Result<(Split, usize, usize), DataError> {
    let (img_name, lab_name) = (src.display(img), src.display(lab));
    let (n, rows, cols, px) = src.with_reader(img, |r| read_images(&img_name, r))?;
    let labels = src.with_reader(lab, |r| read_labels(&lab_name, r))?;
    split_of(&img_name, n, rows, cols, px, &lab_name, labels)
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
    let (train, rows, cols) = read_split(src, found[0], found[1])?;
    let (test, trows, tcols) = read_split(src, found[2], found[3])?;
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
    check_labels((&src.display(found[1]), &train.labels), (&src.display(found[3]), &test.labels), known)?;
    Ok(Some(build(train, test, rows, cols, known, hint, &src.display(""))))
}

/// Labels must name classes 0 … N−1, each with training images: N is 10 for MNIST and Fashion-MNIST, else one more
/// than the largest training label. A fault names the label file, the record and the label.
pub fn check_labels(train: (&str, &[u32]), test: (&str, &[u32]), known: Option<Known>) -> Result<(), DataError> {
    let classes = match known {
        Some(_) => 10,
        None => train.1.iter().max().map_or(0, |&m| m as usize + 1),
    };
    let range = |n: usize| if n == 0 { "none".to_string() } else { format!("0–{}", n - 1) };
    for (file, labels) in [train, test] {
        if let Some((i, &l)) = labels.iter().enumerate().find(|(_, l)| **l as usize >= classes) {
            let why = match known {
                Some(k) => format!("{} has {classes} classes", k.name()),
                None => format!("the training labels ({}) only go up to {}", train.0, classes as i64 - 1),
            };
            return Err(bad(file, format!("record {i} has label {l}, out of range: {why} (labels {})", range(classes))));
        }
    }
    if train.1.is_empty() || known.is_some() {
        return Ok(()); // `Dataset::validate` says which class has no training images, by name
    }
    let mut seen = vec![false; classes];
    for &l in train.1 {
        seen[l as usize] = true;
    }
    if let Some(gap) = seen.iter().position(|s| !s) {
        let (i, &top) = train.1.iter().enumerate().max_by_key(|(i, l)| (**l, std::cmp::Reverse(*i))).expect("a training label");
        return Err(bad(train.0, format!(
            "no record has label {gap}, though record {i} has label {top}: labels must number the classes 0 … N−1, each with training images"
        )));
    }
    Ok(())
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
        subset: None,
    };
    match known {
        Some(k) => ds.with_known(k),
        None => {
            let (m, s) = ds.pixel_stats(&ds.train);
            Dataset { mean: vec![m[0] as f32], std: vec![(s[0] as f32).max(1e-3)], ..ds }
        }
    }
}
