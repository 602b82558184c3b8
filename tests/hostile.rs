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

#[test]
fn option_values_the_gpu_cannot_take_are_refused_by_name() {
    let d = TempDir::new("options");
    let out = d.0.join("run");
    let o = out.to_str().unwrap();
    let small = ["distill", "--iterations", "1", "--width", "8", "--batch-real", "8", "--ipc", "1", "--eval-nets", "0", "--out", o];
    for (flag, value, needle) in [("--clamp", "inf", "clamp"), ("--clamp", "1e300", "clamp"), ("--k", "1e300", "k must"), ("--k", "1e-300", "k must"), ("--lambda", "nan", "lambda")] {
        let mut args = small.to_vec();
        args.extend([flag, value]);
        let (ok, text) = hyperdistill(&args, &[]);
        assert!(!ok && text.contains(needle), "{flag} {value}: {text}");
    }
    // [eval] batch = 0 in a configuration file: refused before the distillation starts
    let cfg = d.path("bad.toml");
    std::fs::write(&cfg, "[eval]\nbatch = 0\n").unwrap();
    let mut args = small.to_vec();
    args.retain(|a| *a != "--eval-nets" && *a != "0");
    args.extend(["--config", cfg.to_str().unwrap()]);
    let (ok, text) = hyperdistill(&args, &[]);
    assert!(!ok && text.contains("batch must be at least 1"), "{text}");
    assert!(!out.join("checkpoint.safetensors").exists(), "a refused run wrote a checkpoint");
}

#[test]
fn non_square_images_are_refused_with_a_message() {
    let d = TempDir::new("nonsquare");
    for (class, seed) in [("a", 0), ("b", 1)] {
        for j in 0..3 {
            std::fs::write(d.path(&format!("set/train/{class}/{j}.png")), png(16, 8, seed * 10 + j, true)).unwrap();
        }
        std::fs::write(d.path(&format!("set/test/{class}/0.png")), png(16, 8, seed, true)).unwrap();
    }
    let set = d.0.join("set");
    let out = d.0.join("run");
    let (ok, text) = hyperdistill(&["data", "info", set.to_str().unwrap()], &[]);
    assert!(ok && text.contains("1 × 8 × 16"), "{text}");
    let (ok, text) =
        hyperdistill(&["distill", "--dataset", set.to_str().unwrap(), "--iterations", "1", "--width", "8", "--ipc", "1", "--eval-nets", "0", "--out", out.to_str().unwrap()], &[]);
    assert!(!ok && text.contains("8×16") && text.contains("square"), "{text}");
}

#[test]
fn eval_refuses_no_networks_missing_datasets_and_diverged_sets() {
    let d = TempDir::new("evalbad");
    let mut set = hyperdistill::export::SynSet {
        images: vec![0.0; 2 * 28 * 28],
        labels: vec![0, 1],
        c: 1,
        h: 28,
        w: 28,
        meta: [("dataset_spec".to_string(), d.0.join("moved-away").display().to_string())].into_iter().collect(),
    };
    let p = d.path("s.safetensors");
    hyperdistill::export::write_safetensors(&p, &set).unwrap();
    let (ok, text) = hyperdistill(&["eval", "--synset", p.to_str().unwrap(), "--nets", "0"], &[]);
    assert!(!ok && text.contains("nets must be at least 1"), "{text}");
    let (ok, text) = hyperdistill(&["eval", "--synset", p.to_str().unwrap(), "--epochs", "1", "--nets", "1"], &[]);
    assert!(!ok && text.contains("moved-away") && text.contains("--dataset") && text.contains("s.safetensors"), "{text}");
    set.images[5] = f32::NAN;
    hyperdistill::export::write_safetensors(&p, &set).unwrap();
    let (ok, text) = hyperdistill(&["eval", "--synset", p.to_str().unwrap(), "--dataset", "embedded", "--epochs", "1", "--nets", "1", "--width", "8"], &[]);
    assert!(!ok && text.contains("1 NaN or infinite pixel"), "{text}");
}

#[test]
fn the_same_set_gives_the_same_bytes() {
    let meta: std::collections::BTreeMap<String, String> = (0..40).map(|i| (format!("key{i:02}"), format!("value {i}"))).collect();
    let set = hyperdistill::export::SynSet { images: (0..12).map(|i| i as f32).collect(), labels: vec![0, 1, 2], c: 1, h: 2, w: 2, meta };
    let a = hyperdistill::export::safetensors_bytes(&set).unwrap();
    let b = hyperdistill::export::safetensors_bytes(&set.clone()).unwrap();
    assert_eq!(a, b, "two writes of one set differ");
    // and the file reads back, metadata included, with the header 8-byte aligned as the format requires
    let n = u64::from_le_bytes(a[..8].try_into().unwrap()) as usize;
    assert_eq!(n % 8, 0);
    let header = std::str::from_utf8(&a[8..8 + n]).unwrap();
    assert!(header.find("key00").unwrap() < header.find("key39").unwrap(), "{header}");
    let d = TempDir::new("bytes");
    let p = d.path("s.safetensors");
    std::fs::write(&p, &a).unwrap();
    assert_eq!(hyperdistill::export::read_safetensors(&p).unwrap(), set);
}

#[test]
fn a_failed_write_leaves_no_temporary_file_and_the_old_file_intact() {
    let d = TempDir::new("atomic");
    let p = d.path("synset.safetensors");
    std::fs::write(&p, b"the previous run's set").unwrap();
    let e = hyperdistill::export::atomic_write_with(&p, |f| {
        f.write_all(b"half of it")?;
        Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left on device"))
    })
    .unwrap_err();
    println!("{e:#}");
    assert!(format!("{e:#}").contains("no space left"));
    let left: Vec<_> = std::fs::read_dir(&d.0).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(left, vec!["synset.safetensors".to_string()], "a temporary file stayed behind");
    assert_eq!(std::fs::read(&p).unwrap(), b"the previous run's set");
}

#[test]
fn a_diverging_run_stops_names_the_iteration_and_keeps_the_last_good_checkpoint() {
    let d = TempDir::new("diverge");
    let base = ["distill", "--iterations", "12", "--width", "8", "--batch-real", "8", "--ipc", "1", "--eval-nets", "0", "--checkpoint-every", "1", "--log-every", "4"];
    // a learning rate that overflows the pixels within a few iterations, and a λ that does at once
    for (flag, value, tag) in [("--lr-img", "3e37", "lr"), ("--lambda", "3e38", "lambda")] {
        let out = d.0.join(tag);
        let mut args = base.to_vec();
        args.extend([flag, value, "--out", out.to_str().unwrap()]);
        let (ok, text) = hyperdistill(&args, &[]);
        assert!(!ok && text.contains("diverged at iteration"), "{text}");
        let at: usize = text.split("diverged at iteration ").nth(1).unwrap().split(':').next().unwrap().parse().unwrap();
        assert!(!out.join("synset.safetensors").exists(), "a diverged set was exported");
        let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
        assert!(metrics.contains(&format!("\"event\":\"diverged\",\"iteration\":{at}")), "{metrics}");
        match hyperdistill::run::read_checkpoint(&out) {
            Ok(ck) => {
                println!("{tag}: diverged at {at}, checkpoint kept at {}", ck.iteration);
                assert!(ck.iteration < at && ck.syn.iter().chain(&ck.momentum).all(|v| v.is_finite()));
                assert!(text.contains(&format!("the last good checkpoint (iteration {})", ck.iteration)), "{text}");
            }
            Err(_) => {
                println!("{tag}: diverged at {at}, before any checkpoint");
                assert!(at <= 1 && text.contains("no checkpoint had been written yet"), "{text}");
            }
        }
    }
}
