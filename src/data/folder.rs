//! data::folder: image folders (torchvision ImageFolder: `root/<class>/<image>`, class names sorted), with
//! `train/` and `test/` (or `val/`) splits, on disk or inside a .zip; and Tiny ImageNet's own layout
//! (`wnids.txt`, `words.txt`, `train/<wnid>/images/*.JPEG`, `val/images/*` + `val/val_annotations.txt`).
//!
//! Images are decoded as RGB; if every image of the dataset is grayscale the dataset becomes 1-channel,
//! otherwise grayscale images are expanded to RGB. All images must share one size.

use std::collections::{BTreeMap, BTreeSet};

use super::source::Source;
use super::{bad, DataError, Dataset, KeepClasses, Known, Split, Subset, CIFAR10_CLASSES};

const IMAGE_EXT: [&str; 5] = ["jpg", "jpeg", "png", "bmp", "jpe"];

fn is_image(path: &str) -> bool {
    path.rsplit_once('.').is_some_and(|(_, e)| IMAGE_EXT.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

fn split_kind(component: &str) -> Option<bool> {
    // Some(true) = train, Some(false) = test
    match component.to_ascii_lowercase().as_str() {
        "train" | "training" => Some(true),
        "test" | "val" | "valid" | "validation" | "testing" => Some(false),
        _ => None,
    }
}

/// The most bytes one image file may hold (larger ones are refused before they are read whole).
const IMAGE_FILE_BYTES: u64 = 64 << 20;

/// Decode one image file, refusing sides beyond `Limits::image_side` before any pixel buffer is allocated.
fn decode_image(name: &str, bytes: &[u8], side: u32) -> Result<image::DynamicImage, DataError> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| bad(name, format!("unreadable image: {e}")))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(side);
    limits.max_image_height = Some(side);
    reader.limits(limits);
    reader.decode().map_err(|e| match e {
        image::ImageError::Limits(l) => bad(name, format!("image too large ({l}): at most {side} pixels a side")),
        e => bad(name, format!("unreadable image: {e}")),
    })
}

/// Decode `files` (relative path, class index) into a split; `dataset_files` counts the images of both splits, for
/// the memory bound checked once the image size is known. Updates the dataset's image size and all-gray flag.
fn decode_all(src: &Source, files: &[(String, u32)], dataset_files: usize, size: &mut Option<(u32, u32)>, gray: &mut bool, what: &str) -> Result<Split, DataError> {
    let limits = super::source::Limits::get();
    let bar = indicatif::ProgressBar::new(files.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("{spinner} loading {msg} {bar:30} {pos}/{len} images (ETA {eta})").expect("valid template"),
    );
    bar.set_message(what.to_string());
    let mut split = Split { images: Vec::new(), labels: Vec::with_capacity(files.len()) };
    for (rel, label) in files {
        let name = src.display(rel);
        let bytes = src.read_at_most(rel, IMAGE_FILE_BYTES)?;
        let img = decode_image(&name, &bytes, limits.image_side)?;
        let (w, h) = (img.width(), img.height());
        match *size {
            None => {
                *size = Some((w, h));
                let need = (dataset_files as u64).saturating_mul(w as u64 * h as u64 * 3);
                if need > limits.dataset_bytes {
                    return Err(bad(&name, format!(
                        "{dataset_files} images of {w}×{h} would need {} MiB of memory, more than the {} MiB a dataset may hold here \
                         (set HYPERDISTILL_MAX_DATASET_MB to allow more)",
                        need >> 20,
                        limits.dataset_bytes >> 20
                    )));
                }
            }
            Some((w0, h0)) if (w0, h0) != (w, h) => {
                return Err(bad(&name, format!("image is {w}×{h}, but the dataset's images are {w0}×{h0}")));
            }
            _ => {}
        }
        if split.images.is_empty() {
            split.images.reserve(files.len() * (w * h * 3) as usize);
        }
        *gray &= !img.color().has_color();
        let rgb = img.to_rgb8();
        // HWC interleaved → CHW planes
        for c in 0..3 {
            split.images.extend(rgb.pixels().map(|p| p.0[c]));
        }
        split.labels.push(*label);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(split)
}

/// Keep only the first plane of each 3-plane image (used when every image was grayscale).
fn to_gray(split: &mut Split, plane: usize) {
    let n = split.len();
    for i in 0..n {
        split.images.copy_within(i * 3 * plane..i * 3 * plane + plane, i * plane);
    }
    split.images.truncate(n * plane);
    split.images.shrink_to_fit();
}

/// Decode both splits and assemble the dataset; statistics come from a known dataset or the training split.
fn assemble(src: &Source, name: &str, classes: Vec<String>, train: Vec<(String, u32)>, test: Vec<(String, u32)>, known: Option<Known>) -> Result<Dataset, DataError> {
    let mut size = None;
    let mut gray = true;
    let all = train.len() + test.len();
    let mut tr = decode_all(src, &train, all, &mut size, &mut gray, "train")?;
    let mut te = decode_all(src, &test, all, &mut size, &mut gray, "test")?;
    let (w, h) = size.ok_or_else(|| DataError::Layout(format!("{}: no images found", src.display(""))))?;
    let plane = (w * h) as usize;
    let channels = if gray && known.is_none_or(|k| k.channels() == 1) {
        to_gray(&mut tr, plane);
        to_gray(&mut te, plane);
        1
    } else {
        3
    };
    let ds = Dataset {
        name: name.to_string(),
        known: None,
        classes,
        channels,
        height: h as usize,
        width: w as usize,
        mean: vec![0.5; channels],
        std: vec![0.5; channels],
        train: tr,
        test: te,
        source: src.display(""),
        subset: None,
    };
    Ok(match known {
        Some(k) if k.channels() == channels => ds.with_known(k),
        _ => {
            let (m, s) = ds.pixel_stats(&ds.train);
            let mean = m.iter().map(|&v| v as f32).collect();
            let std = s.iter().map(|&v| (v as f32).max(1e-3)).collect();
            Dataset { mean, std, ..ds }
        }
    })
}

/// Image folders: `[prefix/]train/<class>/<img>` + `[prefix/]test|val/<class>/<img>`, or a single
/// `[prefix/]<class>/<img>` level (training split only). Returns None when `src` holds no images.
pub fn detect_image_folder(src: &Source, hint: &str) -> Result<Option<Dataset>, DataError> {
    let images: Vec<&String> = src.files().iter().filter(|f| is_image(f)).collect();
    if images.is_empty() {
        return Ok(None);
    }
    // (is_train, class, path)
    let mut entries: Vec<(bool, String, String)> = vec![];
    for f in &images {
        let parts: Vec<&str> = f.split('/').collect();
        if parts.len() >= 3 {
            if let Some(is_train) = split_kind(parts[parts.len() - 3]) {
                entries.push((is_train, parts[parts.len() - 2].to_string(), f.to_string()));
            }
        }
    }
    if entries.is_empty() {
        // single level: class = the image's folder
        for f in &images {
            let parts: Vec<&str> = f.split('/').collect();
            if parts.len() >= 2 {
                entries.push((true, parts[parts.len() - 2].to_string(), f.to_string()));
            }
        }
    }
    if entries.is_empty() {
        return Err(DataError::Layout(format!(
            "{}: {} images but no class folders; expected <class>/<image> or train/<class>/<image> + test/<class>/<image>",
            src.display(""),
            images.len()
        )));
    }
    let class_set: BTreeSet<&str> = entries.iter().filter(|e| e.0).map(|e| e.1.as_str()).collect();
    if class_set.is_empty() {
        return Err(DataError::Layout(format!("{}: a test split but no train/<class>/ folders", src.display(""))));
    }
    let classes: Vec<String> = class_set.iter().map(|s| s.to_string()).collect();
    let index: BTreeMap<&str, u32> = classes.iter().enumerate().map(|(i, c)| (c.as_str(), i as u32)).collect();
    let mut train = vec![];
    let mut test = vec![];
    for (is_train, class, path) in &entries {
        let Some(&label) = index.get(class.as_str()) else {
            return Err(bad(src.display(path), format!("test class '{class}' has no training folder")));
        };
        if *is_train { train.push((path.clone(), label)) } else { test.push((path.clone(), label)) }
    }
    let known = (classes.iter().map(String::as_str).eq(CIFAR10_CLASSES)).then_some(Known::Cifar10);
    let name = hint.to_string();
    let mut ds = assemble(src, &name, classes, train, test, known)?;
    if ds.known == Some(Known::Cifar10) && (ds.height, ds.width) != (32, 32) {
        // same class names, other resolution: not CIFAR-10's statistics
        ds.known = None;
        ds.name = name;
    }
    Ok(Some(ds))
}

/// Tiny ImageNet-200 as distributed (`tiny-imagenet-200/` directory or its .zip).
pub fn detect_tiny(src: &Source, keep: Option<KeepClasses>) -> Result<Option<Dataset>, DataError> {
    let Some(wnids_path) = src.find("wnids.txt") else { return Ok(None) };
    let prefix = wnids_path.strip_suffix("wnids.txt").unwrap_or("").to_string();
    // the text files of the layout are small: 64 MiB is far beyond any real one
    let text = |rel: &str| -> Result<String, DataError> { Ok(String::from_utf8_lossy(&src.read_at_most(rel, 64 << 20)?).into_owned()) };
    let mut wnids: Vec<String> = text(wnids_path)?.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
    wnids.sort(); // ImageFolder order, as the DM/IDM code loads it
    wnids.dedup();
    if wnids.is_empty() {
        return Err(bad(src.display(wnids_path), "no class ids"));
    }
    let index: BTreeMap<&str, u32> = wnids.iter().enumerate().map(|(i, w)| (w.as_str(), i as u32)).collect();
    let words: BTreeMap<String, String> = match src.find("words.txt") {
        Some(w) => text(w)?
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(id, names)| (id.trim().to_string(), names.split(',').next().unwrap_or("").trim().to_string()))
            .collect(),
        None => BTreeMap::new(),
    };
    let classes: Vec<String> = wnids.iter().map(|w| words.get(w).cloned().unwrap_or_else(|| w.clone())).collect();

    let train_prefix = format!("{prefix}train/");
    let mut train = vec![];
    for f in src.files().iter().filter(|f| f.starts_with(&train_prefix) && is_image(f)) {
        let wnid = f[train_prefix.len()..].split('/').next().unwrap_or("");
        let label = *index.get(wnid).ok_or_else(|| bad(src.display(f), format!("class folder '{wnid}' is not in wnids.txt")))?;
        train.push((f.clone(), label));
    }
    let ann_path = format!("{prefix}val/val_annotations.txt");
    let mut test = vec![];
    if src.files().contains(&ann_path) {
        let file = src.display(&ann_path);
        for (image, label) in parse_val_annotations(&file, &text(&ann_path)?, &index)? {
            test.push((format!("{prefix}val/images/{image}"), label));
        }
    }
    let Some(keep) = keep else {
        return assemble(src, "tiny-imagenet", classes, train, test, Some(Known::TinyImageNet)).map(Some);
    };
    // a class subset: the statistics are the papers' (not measured), so the other classes need not be decoded at all
    let mut train_counts = vec![0usize; classes.len()];
    for (_, y) in &train {
        train_counts[*y as usize] += 1;
    }
    let kept = keep(classes.len())?;
    if kept.len() >= classes.len() {
        return assemble(src, "tiny-imagenet", classes, train, test, Some(Known::TinyImageNet)).map(Some);
    }
    let wanted = super::class_mask(&kept, classes.len());
    train.retain(|(_, y)| wanted[*y as usize]);
    let mut ds = assemble(src, "tiny-imagenet", classes, train, vec![], Some(Known::TinyImageNet))?;
    ds.subset = Some(Subset { classes: kept, train_counts });
    Ok(Some(ds))
}

/// Parse Tiny ImageNet's `val_annotations.txt` (`<file>\t<wnid>\t<x0>\t<y0>\t<x1>\t<y1>` per line) into
/// (image file, class index) pairs; `file` names the source in errors.
pub fn parse_val_annotations(file: &str, text: &str, index: &BTreeMap<&str, u32>) -> Result<Vec<(String, u32)>, DataError> {
    let mut out = vec![];
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut cols = line.split('\t');
        let (Some(image), Some(wnid)) = (cols.next(), cols.next()) else {
            return Err(bad(file, format!("line {}: expected '<file>\\t<wnid>\\t…'", i + 1)));
        };
        let image = image.trim();
        if image.is_empty() || image.contains('/') || image.contains("..") {
            return Err(bad(file, format!("line {}: '{image}' is not a file name", i + 1)));
        }
        let label = *index.get(wnid.trim()).ok_or_else(|| bad(file, format!("line {}: unknown class '{wnid}'", i + 1)))?;
        out.push((image.to_string(), label));
    }
    Ok(out)
}
