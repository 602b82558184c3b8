#![no_main]
//! IDX images + labels (optionally gzipped): any bytes give Ok or a DataError, never a panic.
use hyperdistill::data::{idx, source::maybe_gunzip};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    // the first byte splits the rest into an image file and a label file
    let cut = (data[0] as usize * (data.len() - 1)) / 255;
    let (img, lab) = data[1..].split_at(cut.min(data.len() - 1));
    let _ = idx::parse_images("fuzz-images", img);
    let _ = idx::parse_labels("fuzz-labels", lab);
    if let (Ok(i), Ok(l)) = (maybe_gunzip("fuzz-images", img.to_vec()), maybe_gunzip("fuzz-labels", lab.to_vec())) {
        let _ = idx::parse_split("fuzz-images", &i, "fuzz-labels", &l);
    }
});
