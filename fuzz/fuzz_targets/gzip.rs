#![no_main]
//! Gzip streams (every member of a multi-member file, trailing bytes refused): any bytes give the decoded bytes or a
//! DataError, never a panic; an IDX image file read from the same bytes as a stream agrees with reading it whole.
use hyperdistill::data::{idx, source::maybe_gunzip};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let whole = maybe_gunzip("fuzz.gz", data.to_vec());
    let streamed = idx::read_images("fuzz.gz", &mut &data[..]);
    if let (Ok(bytes), Ok((n, rows, cols, px))) = (&whole, &streamed) {
        assert_eq!(bytes.len(), 16 + n * rows * cols);
        assert_eq!(&bytes[16..], &px[..]);
    }
});
