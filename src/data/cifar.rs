//! data::cifar: the CIFAR-10 and CIFAR-100 binary versions. CIFAR-10 records are 1 label byte + 3072
//! pixel bytes (1024 R, 1024 G, 1024 B, row-major 32×32); CIFAR-100 records have a coarse and then a fine
//! label byte; the fine label is used.

use super::source::Source;
use super::{bad, DataError, Dataset, Known, Split, CIFAR10_CLASSES};

const PIXELS: usize = 3072;

pub const CIFAR100_CLASSES: [&str; 100] = [
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle", "bowl", "boy",
    "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock",
    "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest",
    "fox", "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion", "lizard",
    "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange", "orchid",
    "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine", "possum",
    "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper",
    "snail", "snake", "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone",
    "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf",
    "woman", "worm",
];

/// Append the records of one CIFAR binary file to `split`. `label_bytes` is 1 (CIFAR-10) or 2 (CIFAR-100),
/// the label used is the last of them and must be below `classes`.
pub fn parse_records(file: &str, b: &[u8], label_bytes: usize, classes: usize, split: &mut Split) -> Result<(), DataError> {
    let rec = label_bytes + PIXELS;
    if b.is_empty() {
        return Err(bad(file, "empty file"));
    }
    if b.len() % rec != 0 {
        return Err(bad(file, format!("truncated or not CIFAR: {} bytes is not a whole number of {rec}-byte records", b.len())));
    }
    split.images.reserve(b.len() / rec * PIXELS);
    for (i, r) in b.chunks_exact(rec).enumerate() {
        let label = r[label_bytes - 1] as usize;
        if label >= classes {
            return Err(bad(file, format!("record {i}: label {label} out of range (< {classes})")));
        }
        split.labels.push(label as u32);
        split.images.extend_from_slice(&r[label_bytes..]);
    }
    Ok(())
}

fn names_from(src: &Source, file: Option<&str>, fallback: &[&str]) -> Vec<String> {
    let from_file = file.and_then(|f| src.read_at_most(f, 1 << 20).ok()).map(|b| {
        String::from_utf8_lossy(&b).lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect::<Vec<_>>()
    });
    match from_file {
        Some(v) if v.len() == fallback.len() => v,
        _ => fallback.iter().map(|s| s.to_string()).collect(),
    }
}

pub fn detect(src: &Source) -> Result<Option<Dataset>, DataError> {
    let (known, label_bytes, train_files, test_file, names): (Known, usize, Vec<&str>, &str, Vec<String>) =
        if let Some(first) = src.find("data_batch_1.bin") {
            let mut train = vec![first];
            train.extend((2..=5).filter_map(|i| src.find(&format!("data_batch_{i}.bin"))));
            let test = src.find("test_batch.bin").ok_or_else(|| bad(src.display(first), "CIFAR-10 test_batch.bin is missing beside it"))?;
            (Known::Cifar10, 1, train, test, names_from(src, src.find("batches.meta.txt"), &CIFAR10_CLASSES))
        } else if let (Some(train), Some(test)) = (src.find("train.bin"), src.find("test.bin")) {
            (Known::Cifar100, 2, vec![train], test, names_from(src, src.find("fine_label_names.txt"), &CIFAR100_CLASSES))
        } else {
            return Ok(None);
        };
    let mut train = Split::default();
    for f in &train_files {
        parse_records(&src.display(f), &src.read(f)?, label_bytes, names.len(), &mut train)?;
    }
    let mut test = Split::default();
    parse_records(&src.display(test_file), &src.read(test_file)?, label_bytes, names.len(), &mut test)?;
    Ok(Some(Dataset::known(known, names, 32, 32, train, test, src.display(""))))
}
