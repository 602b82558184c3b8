#![no_main]
//! Tiny ImageNet val_annotations.txt: any text gives Ok or a DataError, never a panic.
use std::collections::BTreeMap;

use hyperdistill::data::folder::parse_val_annotations;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let index: BTreeMap<&str, u32> = [("n01443537", 0u32), ("n01629819", 1), ("n", 2)].into_iter().collect();
    if let Ok(rows) = parse_val_annotations("fuzz_annotations.txt", &text, &index) {
        assert!(rows.iter().all(|(f, l)| !f.contains('/') && *l < 3));
    }
});
