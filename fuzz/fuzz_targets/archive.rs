#![no_main]
//! A .zip handed over as bytes (the browser's file picker), then the whole layout detection on its members: any bytes
//! give a dataset or a DataError, never a panic, and never memory beyond the per-file bound.
use hyperdistill::data::{self, source::Source};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(src) = Source::from_memory("fuzz", vec![("fuzz.zip".to_string(), data.to_vec())]) {
        if let Ok(ds) = data::open_source(&src, "fuzz") {
            assert_eq!(ds.train.images.len(), ds.train.len() * ds.image_len());
        }
    }
});
