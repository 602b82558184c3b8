//! Hostile inputs, generated here: files whose headers lie about sizes, decompression bombs, non-square images,
//! symbolic-link folders and loops, multi-member and garbage-tailed gzip, labels out of range, and option values the
//! GPU cannot take. Each must end in a clear error that names the file or option (or load correctly), never in a
//! panic, an abort, or memory that follows a number the file made up.

mod common;
use common::files::*;

use std::io::Write;
use std::process::Command;

use hyperdistill::data::{self, source::Source};

fn hyperdistill(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hyperdistill")).args(args).envs(env.iter().copied()).output().expect("binary runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("$ hyperdistill {}\n{text}", args.join(" "));
    assert!(out.status.code().is_some(), "killed by a signal: {:?}", out.status);
    assert!(!text.contains("panicked"), "a panic: {text}");
    (out.status.success(), text)
}

fn crc32(b: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(b);
    c.sum()
}

/// A zip with one stored member `name` holding `data`, whose zip64 extra fields claim `claimed` uncompressed bytes.
fn zip_claiming(name: &str, data: &[u8], claimed: u64) -> Vec<u8> {
    let u16le = |v: u16| v.to_le_bytes();
    let u32le = |v: u32| v.to_le_bytes();
    let mut extra = vec![];
    extra.extend(u16le(1)); // zip64 extended information
    extra.extend(u16le(16));
    extra.extend(claimed.to_le_bytes()); // uncompressed size
    extra.extend((data.len() as u64).to_le_bytes()); // compressed size
    let crc = crc32(data);
    let mut z = vec![];
    // local file header
    z.extend(u32le(0x0403_4b50));
    z.extend(u16le(45));
    z.extend(u16le(0));
    z.extend(u16le(0)); // stored
    z.extend(u16le(0));
    z.extend(u16le(0x21));
    z.extend(u32le(crc));
    z.extend(u32le(u32::MAX));
    z.extend(u32le(u32::MAX));
    z.extend(u16le(name.len() as u16));
    z.extend(u16le(extra.len() as u16));
    z.extend(name.as_bytes());
    z.extend(&extra);
    z.extend(data);
    let cd_start = z.len();
    z.extend(u32le(0x0201_4b50));
    z.extend(u16le(45));
    z.extend(u16le(45));
    z.extend(u16le(0));
    z.extend(u16le(0));
    z.extend(u16le(0));
    z.extend(u16le(0x21));
    z.extend(u32le(crc));
    z.extend(u32le(u32::MAX));
    z.extend(u32le(u32::MAX));
    z.extend(u16le(name.len() as u16));
    z.extend(u16le(extra.len() as u16));
    z.extend(u16le(0)); // comment
    z.extend(u16le(0)); // disk
    z.extend(u16le(0));
    z.extend(u32le(0));
    z.extend(u32le(0)); // local header offset
    z.extend(name.as_bytes());
    z.extend(&extra);
    let cd_len = z.len() - cd_start;
    z.extend(u32le(0x0605_4b50));
    z.extend(u16le(0));
    z.extend(u16le(0));
    z.extend(u16le(1));
    z.extend(u16le(1));
    z.extend(u32le(cd_len as u32));
    z.extend(u32le(cd_start as u32));
    z.extend(u16le(0));
    z
}

#[test]
fn sizes_claimed_by_zip_headers_are_not_allocated() {
    let d = TempDir::new("zip64");
    for claimed in [1u64 << 44, u64::MAX] {
        let bytes = zip_claiming("train-images-idx3-ubyte", b"not an idx file", claimed);
        // on disk
        let p = d.path(&format!("claim-{claimed}.zip"));
        std::fs::write(&p, &bytes).unwrap();
        match Source::open(&p) {
            Ok(src) => {
                let r = src.read("train-images-idx3-ubyte");
                println!("claimed {claimed}: read gives {:?}", r.as_ref().map(Vec::len).map_err(ToString::to_string));
                assert!(r.is_err() || r.unwrap().len() < 64);
            }
            Err(e) => println!("claimed {claimed}: {e}"),
        }
        let e = data::open_path(&p).unwrap_err().to_string();
        println!("{e}");
        // given as bytes (the browser's file picker)
        let r = Source::from_memory("picked", vec![("set.zip".into(), bytes.clone())]);
        println!("from memory: {:?}", r.as_ref().map(|s| s.files().len()).map_err(ToString::to_string));
        let (ok, text) = hyperdistill(&["data", "info", p.to_str().unwrap()], &[]);
        assert!(!ok && text.contains("claim-"), "{text}");
    }
}

#[test]
fn decompression_is_bounded_by_the_format_and_the_file_cap() {
    let d = TempDir::new("bomb");
    // an IDX header announcing 2 images of 28×28, followed by 64 MiB of zeros: reading stops one byte past the
    // announced 1568, and says the file has trailing bytes
    let mut body = idx_images(2, 28, 28);
    body.resize(body.len() + (64 << 20), 0);
    let bomb = gz(&body);
    assert!(bomb.len() < 1 << 20, "the bomb is small: {} bytes", bomb.len());
    let e = data::idx::read_images("bomb.gz", &mut &bomb[..]).unwrap_err().to_string();
    println!("{e}");
    assert!(e.contains("bomb.gz") && e.contains("trailing bytes"), "{e}");
    // a header announcing more than the per-file cap is refused before anything is read
    let mut lie = vec![];
    for v in [2051u32, 100_000, 4096, 4096] {
        lie.extend(v.to_be_bytes());
    }
    let e = data::idx::parse_images("lie", &lie).unwrap_err().to_string();
    println!("{e}");
    assert!(e.contains("HYPERDISTILL_MAX_FILE_MB"), "{e}");
    // a zip member that inflates past the cap (CIFAR binary, read as a whole file): the cap stops it
    let zpath = d.path("cifar.zip");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&zpath).unwrap());
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    z.start_file("data_batch_1.bin", opts).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..48 {
        z.write_all(&zeros).unwrap();
    }
    z.start_file("test_batch.bin", opts).unwrap();
    z.write_all(&[0u8; 3073]).unwrap();
    z.finish().unwrap();
    let (ok, text) = hyperdistill(&["data", "info", zpath.to_str().unwrap()], &[("HYPERDISTILL_MAX_FILE_MB", "16")]);
    assert!(!ok && text.contains("data_batch_1.bin") && text.contains("more than 16 MiB"), "{text}");
}

#[test]
fn gzip_members_are_all_read_and_trailing_garbage_is_refused() {
    let d = TempDir::new("multigz");
    let labels = labels_cycle(20, 2);
    write_idx_set(&d, "set", &labels, &labels_cycle(4, 2), true);
    // the training images as two gzip members (`cat a.gz b.gz`)
    let img = idx_images(20, 28, 28);
    let (a, b) = img.split_at(1000);
    let mut two = gz(a);
    two.extend(gz(b));
    std::fs::write(d.path("set/train-images-idx3-ubyte.gz"), &two).unwrap();
    let ds = data::open_path(&d.0.join("set")).unwrap();
    assert_eq!(ds.train.images, img[16..].to_vec());
    // a valid stream followed by bytes that are no gzip member
    let mut tail = gz(&img);
    tail.extend(b"garbage after the stream");
    std::fs::write(d.path("set/train-images-idx3-ubyte.gz"), &tail).unwrap();
    let e = data::open_path(&d.0.join("set")).unwrap_err().to_string();
    println!("{e}");
    assert!(e.contains("train-images-idx3-ubyte.gz") && e.contains("not another gzip member"), "{e}");
    // a stream cut short
    std::fs::write(d.path("set/train-images-idx3-ubyte.gz"), &gz(&img)[..300]).unwrap();
    let e = data::open_path(&d.0.join("set")).unwrap_err().to_string();
    println!("{e}");
    assert!(e.contains("train-images-idx3-ubyte.gz") && e.contains("ends early"), "{e}");
}

#[cfg(unix)]
#[test]
fn symlinked_class_folders_are_followed_and_loops_end() {
    let d = TempDir::new("symlink");
    for j in 0..3 {
        std::fs::write(d.path(&format!("set/train/cat/{j}.png")), png(8, 8, j, false)).unwrap();
        std::fs::write(d.path(&format!("elsewhere/dog/{j}.png")), png(8, 8, 10 + j, false)).unwrap();
    }
    std::os::unix::fs::symlink(d.0.join("elsewhere/dog"), d.0.join("set/train/dog")).unwrap();
    // a loop: a folder linking to its own parent
    std::os::unix::fs::symlink(d.0.join("set/train"), d.0.join("set/train/cat/loop")).unwrap();
    // a dangling link is skipped
    std::os::unix::fs::symlink(d.0.join("nowhere"), d.0.join("set/train/ghost")).unwrap();
    let ds = data::open_path(&d.0.join("set")).unwrap();
    assert_eq!(ds.classes, vec!["cat".to_string(), "dog".to_string()]);
    assert_eq!(ds.train.len(), 6);
}

#[test]
fn labels_out_of_range_name_the_file_record_and_label() {
    let d = TempDir::new("labels");
    // a generic IDX set (no known name): the test split has label 10, training only 0–9
    let mut test = labels_cycle(12, 10);
    test[7] = 10;
    write_idx_set(&d, "digits", &labels_cycle(30, 10), &test, false);
    let e = data::open_path(&d.0.join("digits")).unwrap_err().to_string();
    println!("{e}");
    assert!(e.contains("t10k-labels-idx1-ubyte") && e.contains("record 7") && e.contains("label 10"), "{e}");
    // a training label that skips classes
    let mut train = labels_cycle(30, 3);
    train[4] = 9;
    write_idx_set(&d, "gaps", &train, &labels_cycle(3, 3), false);
    let e = data::open_path(&d.0.join("gaps")).unwrap_err().to_string();
    println!("{e}");
    assert!(e.contains("train-labels-idx1-ubyte") && e.contains("record 4") && e.contains("label 9") && e.contains("no record has label 3"), "{e}");
    // Fashion-MNIST has 10 classes
    let mut train = labels_cycle(30, 10);
    train[2] = 12;
    write_idx_set(&d, "fashion-mnist", &train, &labels_cycle(10, 10), true);
    let e = data::open_path(&d.0.join("fashion-mnist")).unwrap_err().to_string();
    println!("{e}");
    assert!(e.contains("train-labels-idx1-ubyte.gz") && e.contains("record 2") && e.contains("label 12"), "{e}");
}

#[test]
fn images_with_huge_declared_sides_are_refused_before_decoding() {
    let d = TempDir::new("bigpng");
    // a 5000 × 8 PNG: its side is past the 4096-pixel limit
    std::fs::write(d.path("set/train/a/0.png"), png(5000, 8, 0, true)).unwrap();
    let e = data::open_path(&d.0.join("set")).unwrap_err().to_string();
    println!("{e}");
    assert!(e.contains("0.png") && e.contains("4096"), "{e}");
}
