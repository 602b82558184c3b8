#![no_main]
//! SVHN .mat (MATLAB v5, parsed by the matfile crate): any bytes give Ok or a DataError, never a panic.
use hyperdistill::data::svhn;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(split) = svhn::parse_mat("fuzz.mat", data) {
        assert_eq!(split.images.len(), split.labels.len() * 3072);
    }
});
