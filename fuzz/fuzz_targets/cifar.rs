#![no_main]
//! CIFAR-10/100 binary records: any bytes give Ok or a DataError, never a panic.
use hyperdistill::data::{cifar, Split};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let (label_bytes, classes) = if mode & 1 == 0 { (1, 10) } else { (2, 100) };
    let mut split = Split::default();
    if cifar::parse_records("fuzz.bin", rest, label_bytes, classes, &mut split).is_ok() {
        assert_eq!(split.images.len(), split.labels.len() * 3072);
        assert!(split.labels.iter().all(|&l| (l as usize) < classes));
    }
});
