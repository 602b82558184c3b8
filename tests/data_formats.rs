//! Every dataset format, on small files generated here (CI never reads ../shared): counts, label mapping,
//! pixel values of known images, normalisation; and malformed files, which must give an error naming the
//! file and the fault, never a panic.

mod common;
use common::files::*;
use std::io::Write;
use std::path::Path;

use hyperdistill::data::{self, DataError, Known};

fn open(p: &Path) -> Result<data::Dataset, DataError> {
    data::open_path(p)
}

fn err_of(p: &Path) -> String {
    match open(p) {
        Ok(d) => panic!("expected an error for {}, loaded {} images", p.display(), d.train.len()),
        Err(e) => {
            println!("error as a user sees it: {e}");
            e.to_string()
        }
    }
}

#[test]
fn idx_gzip_and_plain_load_with_fashion_normalisation() {
    let d = TempDir::new("idx");
    write_idx_set(&d, "fashion-mnist", &labels_cycle(30, 10), &labels_cycle(20, 10), true);
    write_idx_set(&d, "plain", &labels_cycle(30, 10), &labels_cycle(20, 10), false);
    let f = open(&d.0.join("fashion-mnist")).unwrap();
    assert_eq!(f.known, Some(Known::FashionMnist));
    assert_eq!((f.train.len(), f.test.len(), f.channels, f.height, f.width), (30, 20, 1, 28, 28));
    assert_eq!(f.classes[9], "Ankle boot");
    assert_eq!(f.train.labels[13], 3);
    assert_eq!(f.image(&f.train, 13)[5 * 28 + 9], px(13, 0, 5, 9));
    let norm = f.normalized(&f.train, &[13]);
    let want = (px(13, 0, 5, 9) as f32 / 255.0 - 0.2861) / 0.3530;
    assert!((norm[5 * 28 + 9] - want).abs() < 1e-6, "{} vs {want}", norm[5 * 28 + 9]);
    assert_eq!(f.class_indices(&f.train)[4], vec![4, 14, 24]);
    // plain files, a neutral directory name: not a known dataset, statistics measured
    let p = open(&d.0.join("plain")).unwrap();
    assert_eq!(p.known, None);
    assert_eq!(p.train, f.train);
    let (m, _) = p.pixel_stats(&p.train);
    assert!((p.mean[0] as f64 - m[0]).abs() < 1e-6);
}

#[test]
fn idx_faults_are_named() {
    let d = TempDir::new("idxbad");
    // truncated image file
    write_idx_set(&d, "trunc", &labels_cycle(10, 10), &labels_cycle(10, 10), false);
    let f = d.path("trunc/train-images-idx3-ubyte");
    let b = std::fs::read(&f).unwrap();
    std::fs::write(&f, &b[..b.len() - 5]).unwrap();
    let e = err_of(&d.0.join("trunc"));
    assert!(e.contains("train-images-idx3-ubyte") && e.contains("truncated"), "{e}");
    // truncated header
    std::fs::write(&f, &b[..10]).unwrap();
    assert!(err_of(&d.0.join("trunc")).contains("truncated IDX image header"));
    // wrong magic
    write_idx_set(&d, "magic", &labels_cycle(10, 10), &labels_cycle(10, 10), true);
    let mut lab = idx_labels(&labels_cycle(10, 10));
    lab[3] = 0x03;
    std::fs::write(d.path("magic/t10k-labels-idx1-ubyte.gz"), gz(&lab)).unwrap();
    let e = err_of(&d.0.join("magic"));
    assert!(e.contains("t10k-labels-idx1-ubyte.gz") && e.contains("wrong magic number 2051"), "{e}");
    // image/label count mismatch
    write_idx_set(&d, "count", &labels_cycle(10, 10), &labels_cycle(10, 10), true);
    std::fs::write(d.path("count/train-labels-idx1-ubyte.gz"), gz(&idx_labels(&labels_cycle(9, 9)))).unwrap();
    assert!(err_of(&d.0.join("count")).contains("9 labels but"));
    // label out of range for Fashion-MNIST
    write_idx_set(&d, "fashion-range", &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12], &labels_cycle(10, 10), true);
    let e = err_of(&d.0.join("fashion-range"));
    assert!(e.contains("train-labels-idx1-ubyte.gz") && e.contains("record 10 has label 12, out of range"), "{e}");
    // an empty class
    write_idx_set(&d, "fashion-empty", &labels_cycle(18, 9), &labels_cycle(10, 10), true);
    assert!(err_of(&d.0.join("fashion-empty")).contains("class 9 ('Ankle boot') has no training images"));
    // a missing file
    write_idx_set(&d, "missing", &labels_cycle(10, 10), &labels_cycle(10, 10), true);
    std::fs::remove_file(d.path("missing/t10k-images-idx3-ubyte.gz")).unwrap();
    assert!(err_of(&d.0.join("missing")).contains("missing t10k-images-idx3-ubyte"));
    // corrupt gzip
    write_idx_set(&d, "gzip", &labels_cycle(10, 10), &labels_cycle(10, 10), true);
    let g = d.path("gzip/train-images-idx3-ubyte.gz");
    let mut b = std::fs::read(&g).unwrap();
    let l = b.len();
    b[l / 2..].iter_mut().for_each(|v| *v = !*v);
    std::fs::write(&g, b).unwrap();
    assert!(err_of(&d.0.join("gzip")).contains("corrupt gzip"));
}

fn cifar_records(n: usize, label_bytes: usize, label: impl Fn(usize) -> u8, first: usize) -> Vec<u8> {
    let mut b = vec![];
    for i in first..first + n {
        if label_bytes == 2 {
            b.push(99); // coarse label, ignored
        }
        b.push(label(i));
        for c in 0..3 {
            for y in 0..32 {
                for x in 0..32 {
                    b.push(px(i, c, y, x));
                }
            }
        }
    }
    b
}

#[test]
fn cifar10_and_cifar100_binaries() {
    let d = TempDir::new("cifar");
    let lab = |i: usize| (i % 10) as u8;
    std::fs::write(d.path("c10/cifar-10-batches-bin/data_batch_1.bin"), cifar_records(12, 1, lab, 0)).unwrap();
    std::fs::write(d.path("c10/cifar-10-batches-bin/data_batch_2.bin"), cifar_records(8, 1, lab, 12)).unwrap();
    std::fs::write(d.path("c10/cifar-10-batches-bin/test_batch.bin"), cifar_records(10, 1, lab, 100)).unwrap();
    let ds = open(&d.0.join("c10")).unwrap();
    assert_eq!(ds.known, Some(Known::Cifar10));
    assert_eq!((ds.train.len(), ds.test.len(), ds.channels), (20, 10, 3));
    assert_eq!(ds.classes[3], "cat");
    // image 15 came from batch 2, record 3: label 5, channel-planar pixels
    assert_eq!(ds.train.labels[15], 5);
    assert_eq!(ds.image(&ds.train, 15)[1024 * 2 + 32 * 7 + 30], px(15, 2, 7, 30));
    let n = ds.normalized(&ds.train, &[15]);
    let want = (px(15, 1, 0, 1) as f32 / 255.0 - 0.4822) / 0.1994;
    assert!((n[1024 + 1] - want).abs() < 1e-6);

    let fine = |i: usize| ((i * 7) % 100) as u8;
    std::fs::write(d.path("c100/cifar-100-binary/train.bin"), cifar_records(200, 2, |i| (i % 100) as u8, 0)).unwrap();
    std::fs::write(d.path("c100/cifar-100-binary/test.bin"), cifar_records(5, 2, fine, 0)).unwrap();
    let ds = open(&d.0.join("c100")).unwrap();
    assert_eq!(ds.known, Some(Known::Cifar100));
    assert_eq!(ds.classes.len(), 100);
    assert_eq!(ds.test.labels, vec![0, 7, 14, 21, 28], "the fine label (second byte) is used");
    assert_eq!(ds.classes[99], "worm");
}

#[test]
fn cifar_faults_are_named() {
    let d = TempDir::new("cifarbad");
    let lab = |i: usize| (i % 10) as u8;
    std::fs::write(d.path("t/data_batch_1.bin"), &cifar_records(10, 1, lab, 0)[..3073 * 10 - 7]).unwrap();
    std::fs::write(d.path("t/test_batch.bin"), cifar_records(10, 1, lab, 0)).unwrap();
    let e = err_of(&d.0.join("t"));
    assert!(e.contains("data_batch_1.bin") && e.contains("not a whole number of 3073-byte records"), "{e}");
    std::fs::write(d.path("l/data_batch_1.bin"), cifar_records(10, 1, |i| if i == 4 { 11 } else { 0 }, 0)).unwrap();
    std::fs::write(d.path("l/test_batch.bin"), cifar_records(10, 1, lab, 0)).unwrap();
    assert!(err_of(&d.0.join("l")).contains("record 4: label 11 out of range"));
    std::fs::write(d.path("m/data_batch_1.bin"), cifar_records(10, 1, lab, 0)).unwrap();
    assert!(err_of(&d.0.join("m")).contains("test_batch.bin is missing"));
}

/// A minimal uncompressed MATLAB v5 file writer (what scipy.io.savemat writes, without compression).
fn mat_v5(arrays: &[(&str, &[usize], MatData)]) -> Vec<u8> {
    fn pad8(b: &mut Vec<u8>) {
        while b.len() % 8 != 0 {
            b.push(0);
        }
    }
    fn element(ty: u32, payload: &[u8]) -> Vec<u8> {
        let mut b = vec![];
        b.extend(ty.to_le_bytes());
        b.extend((payload.len() as u32).to_le_bytes());
        b.extend(payload);
        pad8(&mut b);
        b
    }
    let mut out = vec![b' '; 116];
    out[..27].copy_from_slice(b"MATLAB 5.0 MAT-file, test. ");
    out.extend([0u8; 8]);
    out.extend(0x0100u16.to_le_bytes());
    out.extend(b"IM");
    for (name, dims, data) in arrays {
        let (class, ty, bytes): (u32, u32, Vec<u8>) = match data {
            MatData::U8(v) => (9, 2, v.clone()),
            MatData::F64(v) => (6, 9, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        };
        let mut m = vec![];
        m.extend(element(6, &[class.to_le_bytes(), 0u32.to_le_bytes()].concat()));
        m.extend(element(5, &dims.iter().flat_map(|&d| (d as i32).to_le_bytes()).collect::<Vec<_>>()));
        m.extend(element(1, name.as_bytes()));
        m.extend(element(ty, &bytes));
        out.extend(element(14, &m));
    }
    out
}

enum MatData {
    U8(Vec<u8>),
    F64(Vec<f64>),
}

fn svhn_file(n: usize, labels: &[f64]) -> Vec<u8> {
    // column-major [32, 32, 3, n]: index = row + 32·col + 1024·c + 3072·i
    let mut x = vec![0u8; 3072 * n];
    for i in 0..n {
        for c in 0..3 {
            for row in 0..32 {
                for col in 0..32 {
                    x[row + 32 * col + 1024 * c + 3072 * i] = px(i, c, row, col);
                }
            }
        }
    }
    mat_v5(&[("X", &[32, 32, 3, n], MatData::U8(x)), ("y", &[n, 1], MatData::F64(labels.to_vec()))])
}

#[test]
fn svhn_mat_files() {
    let d = TempDir::new("svhn");
    let labels: Vec<f64> = (0..12).map(|i| (i % 10 + 1) as f64).collect(); // 1..10
    std::fs::write(d.path("svhn/train_32x32.mat"), svhn_file(12, &labels)).unwrap();
    std::fs::write(d.path("svhn/test_32x32.mat"), svhn_file(3, &[10.0, 1.0, 2.0])).unwrap();
    let ds = open(&d.0.join("svhn")).unwrap();
    assert_eq!(ds.known, Some(Known::Svhn));
    assert_eq!((ds.train.len(), ds.test.len()), (12, 3));
    assert_eq!(ds.test.labels, vec![0, 1, 2], "label 10 is digit 0");
    assert_eq!(ds.train.labels[9], 0);
    // transposed from MATLAB's column-major order into C×H×W rows
    assert_eq!(ds.image(&ds.train, 5)[1024 * 1 + 32 * 3 + 20], px(5, 1, 3, 20));

    std::fs::write(d.path("bad/train_32x32.mat"), mat_v5(&[("X", &[32, 32, 1, 1], MatData::U8(vec![0; 1024])), ("y", &[1, 1], MatData::F64(vec![1.0]))])).unwrap();
    std::fs::write(d.path("bad/test_32x32.mat"), svhn_file(1, &[1.0])).unwrap();
    let e = err_of(&d.0.join("bad"));
    assert!(e.contains("train_32x32.mat") && e.contains("expected [32, 32, 3, N]"), "{e}");
    std::fs::write(d.path("lab/train_32x32.mat"), svhn_file(2, &[3.0, 11.0])).unwrap();
    std::fs::write(d.path("lab/test_32x32.mat"), svhn_file(1, &[1.0])).unwrap();
    assert!(err_of(&d.0.join("lab")).contains("label 1 is 11"));
    std::fs::write(d.path("junk/train_32x32.mat"), b"not a mat file at all").unwrap();
    std::fs::write(d.path("junk/test_32x32.mat"), svhn_file(1, &[1.0])).unwrap();
    assert!(err_of(&d.0.join("junk")).contains("not a readable MATLAB v5 file"));
}

fn folder_files(gray_all: bool) -> Vec<(String, Vec<u8>)> {
    // classes sort as: bird, cat, dog
    let mut v = vec![];
    for (k, class) in ["dog", "cat", "bird"].iter().enumerate() {
        for j in 0..3 {
            let seed = k * 10 + j;
            // one grayscale image in an otherwise RGB set
            let gray = gray_all || (k == 1 && j == 2);
            v.push((format!("train/{class}/{j:04}.png"), png(8, 6, seed, gray)));
        }
        v.push((format!("test/{class}/t.png"), png(8, 6, 100 + k, gray_all)));
    }
    v
}

#[test]
fn image_folders_on_disk_and_in_zip() {
    let d = TempDir::new("folder");
    for (rel, bytes) in folder_files(false) {
        std::fs::write(d.path(&format!("pets/{rel}")), bytes).unwrap();
    }
    let ds = open(&d.0.join("pets")).unwrap();
    assert_eq!(ds.classes, ["bird", "cat", "dog"]);
    assert_eq!((ds.channels, ds.height, ds.width, ds.train.len(), ds.test.len()), (3, 6, 8, 9, 3));
    // sorted files: bird/0000..0002, cat/…, dog/…; cat/0002 (index 5) was grayscale → replicated to RGB
    assert_eq!(ds.train.labels, vec![0, 0, 0, 1, 1, 1, 2, 2, 2]);
    let img = ds.image(&ds.train, 5);
    for c in 0..3 {
        assert_eq!(img[c * 48 + 2 * 8 + 5], px(12, 0, 2, 5), "gray image expanded to RGB, channel {c}");
    }
    let img = ds.image(&ds.train, 7); // dog/0001: seed 1
    assert_eq!(img[2 * 48 + 3 * 8 + 4], px(1, 2, 3, 4));
    assert!(ds.known.is_none() && ds.mean.len() == 3);

    // the same tree inside a zip, under a prefix folder
    let zpath = d.path("pets.zip");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&zpath).unwrap());
    for (rel, bytes) in folder_files(false) {
        z.start_file(format!("Pets-images/{rel}"), zip::write::SimpleFileOptions::default()).unwrap();
        z.write_all(&bytes).unwrap();
    }
    z.finish().unwrap();
    let dz = open(&zpath).unwrap();
    assert_eq!((dz.classes.clone(), dz.train.clone(), dz.test.clone()), (ds.classes.clone(), ds.train.clone(), ds.test.clone()));

    // every image grayscale → a 1-channel dataset
    for (rel, bytes) in folder_files(true) {
        std::fs::write(d.path(&format!("gray/{rel}")), bytes).unwrap();
    }
    let g = open(&d.0.join("gray")).unwrap();
    assert_eq!(g.channels, 1);
    assert_eq!(g.image(&g.train, 7)[3 * 8 + 4], px(1, 0, 3, 4));
}

#[test]
fn image_folder_faults_are_named() {
    let d = TempDir::new("folderbad");
    for (rel, bytes) in folder_files(false) {
        std::fs::write(d.path(&format!("a/{rel}")), bytes).unwrap();
    }
    std::fs::write(d.path("a/train/cat/broken.png"), b"\x89PNG garbage").unwrap();
    let e = err_of(&d.0.join("a"));
    assert!(e.contains("broken.png") && e.contains("unreadable image"), "{e}");
    for (rel, bytes) in folder_files(false) {
        std::fs::write(d.path(&format!("b/{rel}")), bytes).unwrap();
    }
    std::fs::write(d.path("b/train/dog/big.png"), png(9, 6, 0, false)).unwrap();
    assert!(err_of(&d.0.join("b")).contains("image is 9×6, but the dataset's images are 8×6"));
    // a zip with images but no class folders
    let zpath = d.path("flat.zip");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&zpath).unwrap());
    for i in 0..3 {
        z.start_file(format!("{i}.png"), zip::write::SimpleFileOptions::default()).unwrap();
        z.write_all(&png(4, 4, i, false)).unwrap();
    }
    z.finish().unwrap();
    assert!(err_of(&zpath).contains("no class folders"));
    // not a zip at all
    std::fs::write(d.path("fake.zip"), b"hello").unwrap();
    assert!(err_of(&d.0.join("fake.zip")).contains("not a readable zip archive"));
    // a directory with nothing we know
    std::fs::write(d.path("empty/readme.txt"), b"hi").unwrap();
    assert!(err_of(&d.0.join("empty")).contains("no dataset layout recognised"));
}

#[test]
fn tiny_imagenet_layout() {
    let d = TempDir::new("tiny");
    let root = "tiny-imagenet-200";
    std::fs::write(d.path(&format!("{root}/wnids.txt")), "n02\nn01\n").unwrap();
    std::fs::write(d.path(&format!("{root}/words.txt")), "n01\tgoldfish, Carassius auratus\nn02\ttabby, tabby cat\nn03\tother\n").unwrap();
    for (w, k) in [("n01", 0), ("n02", 1)] {
        for j in 0..2 {
            std::fs::write(d.path(&format!("{root}/train/{w}/images/{w}_{j}.JPEG")), png(64, 64, k * 10 + j, false)).unwrap();
        }
        std::fs::write(d.path(&format!("{root}/train/{w}/{w}_boxes.txt")), "").unwrap();
    }
    std::fs::write(d.path(&format!("{root}/val/images/val_0.JPEG")), png(64, 64, 50, false)).unwrap();
    std::fs::write(d.path(&format!("{root}/val/images/val_1.JPEG")), png(64, 64, 51, true)).unwrap();
    std::fs::write(d.path(&format!("{root}/val/val_annotations.txt")), "val_0.JPEG\tn02\t0\t0\t10\t10\nval_1.JPEG\tn01\t1\t1\t5\t5\n").unwrap();
    let ds = open(&d.0.join(root)).unwrap();
    assert_eq!(ds.known, Some(Known::TinyImageNet));
    assert_eq!(ds.classes, ["goldfish", "tabby"], "sorted wnids, names from words.txt");
    assert_eq!((ds.channels, ds.height, ds.train.len(), ds.test.len()), (3, 64, 4, 2));
    assert_eq!(ds.test.labels, vec![1, 0]);
    assert_eq!(ds.image(&ds.train, 3)[64 * 5 + 6], px(11, 0, 5, 6));
    assert_eq!(ds.mean, vec![0.485, 0.456, 0.406]);
    // a class shard keeps its classes' training images only, in their order, and knows every class's count
    let keep_tabby = |_: usize| -> Result<Vec<usize>, DataError> { Ok(vec![1]) };
    let shard = data::open_keeping(d.0.join(root).to_str().unwrap(), Path::new("/nonexistent"), Some(&keep_tabby)).unwrap();
    let mut trimmed = ds.clone();
    trimmed.retain_classes(&[1]);
    assert!(shard == trimmed, "decoding one class = decoding all and keeping one");
    assert_eq!((shard.train.labels.clone(), shard.test.len(), shard.train_counts()), (vec![1, 1], 0, vec![2, 2]));
    assert_eq!(shard.image(&shard.train, 1), ds.image(&ds.train, 3));
    // … and does not even decode the others: a broken goldfish image fails the whole load, not tabby's
    std::fs::write(d.path(&format!("{root}/train/n01/images/n01_9.JPEG")), b"not an image").unwrap();
    assert!(err_of(&d.0.join(root)).contains("n01_9.JPEG"));
    let shard = data::open_keeping(d.0.join(root).to_str().unwrap(), Path::new("/nonexistent"), Some(&keep_tabby)).unwrap();
    assert!(shard.train == trimmed.train, "the tabby images as before");
    assert_eq!(shard.train_counts(), vec![3, 2], "the goldfish file counted, not decoded");
    std::fs::remove_file(d.path(&format!("{root}/train/n01/images/n01_9.JPEG"))).unwrap();
    std::fs::write(d.path(&format!("{root}/val/val_annotations.txt")), "val_0.JPEG\tn09\t0\n").unwrap();
    assert!(err_of(&d.0.join(root)).contains("unknown class 'n09'"));
}

#[test]
fn embedded_subset_and_names() {
    let ds = data::open("embedded", Path::new("/nonexistent")).unwrap();
    assert_eq!(ds.known, Some(Known::FashionMnist));
    assert_eq!((ds.train.len(), ds.test.len(), ds.channels, ds.height, ds.width), (5000, 1000, 1, 28, 28));
    assert!(ds.class_indices(&ds.train).iter().all(|c| c.len() == 500));
    assert!(ds.class_indices(&ds.test).iter().all(|c| c.len() == 100));
    // formats that mix the classes in one file are read whole and trimmed to the classes kept
    let keep = |n: usize| -> Result<Vec<usize>, DataError> { Ok((1..n).step_by(4).collect()) };
    let part = data::open_keeping("embedded", Path::new("/nonexistent"), Some(&keep)).unwrap();
    assert_eq!((part.train.len(), part.test.len(), part.train_counts()), (1500, 0, vec![500; 10]));
    let whole = ds.class_indices(&ds.train);
    for (c, idx) in part.class_indices(&part.train).iter().enumerate() {
        let want: Vec<&[u8]> = if [1, 5, 9].contains(&c) { whole[c].iter().map(|&i| ds.image(&ds.train, i)).collect() } else { vec![] };
        assert_eq!(idx.iter().map(|&i| part.image(&part.train, i)).collect::<Vec<_>>(), want, "class {c}");
    }
    let (m, s) = ds.pixel_stats(&ds.train);
    println!("embedded train pixels: mean {:.4} std {:.4}", m[0], s[0]);
    assert!((m[0] - 0.2861).abs() < 0.02 && (s[0] - 0.3530).abs() < 0.02, "a fair sample of Fashion-MNIST");
    let e = data::open("cifar10", Path::new("/nonexistent-cache")).unwrap_err().to_string();
    assert!(e.contains("data fetch cifar10"), "{e}");
    let e = data::open("no-such-thing", Path::new("/nonexistent-cache")).unwrap_err().to_string();
    assert!(e.contains("neither a file or directory nor a dataset name"), "{e}");
    for k in Known::ALL {
        assert_eq!(Known::parse(k.name()), Some(k));
    }
    assert_eq!(Known::parse("FashionMNIST"), Some(Known::FashionMnist));
}

/// The browser's file picker hands files over as bytes: the same detection must read them, loose or in one zip.
#[test]
fn files_given_as_bytes_load_like_files_on_disk() {
    let d = TempDir::new("memory");
    write_idx_set(&d, "fashion-mnist", &labels_cycle(30, 10), &labels_cycle(20, 10), true);
    let on_disk = open(&d.0.join("fashion-mnist")).unwrap();
    let names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"];
    let files: Vec<(String, Vec<u8>)> = names.iter().map(|n| (n.to_string(), std::fs::read(d.path(&format!("fashion-mnist/{n}"))).unwrap())).collect();
    data::register_memory("fashion-mnist", files);
    let m = data::open("memory:fashion-mnist", Path::new("/none")).unwrap();
    assert_eq!((m.known, &m.train, &m.test), (Some(Known::FashionMnist), &on_disk.train, &on_disk.test));

    // one zip holding image folders
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (rel, bytes) in folder_files(false) {
        z.start_file(format!("Pets-images/{rel}"), zip::write::SimpleFileOptions::default()).unwrap();
        z.write_all(&bytes).unwrap();
    }
    let zip_bytes = z.finish().unwrap().into_inner();
    data::register_memory("pets.zip", vec![("pets.zip".into(), zip_bytes)]);
    let p = data::open("memory:pets.zip", Path::new("/none")).unwrap();
    assert_eq!(p.classes, ["bird", "cat", "dog"]);
    assert_eq!((p.train.len(), p.test.len()), (9, 3));

    // faults are named: nothing under that name; files that are no dataset
    let e = data::open("memory:nothing", Path::new("/none")).unwrap_err().to_string();
    assert!(e.contains("no files were loaded under the name 'nothing'"), "{e}");
    data::register_memory("junk", vec![("notes.txt".into(), b"hello".to_vec())]);
    let e = data::open("memory:junk", Path::new("/none")).unwrap_err().to_string();
    println!("error as a user sees it: {e}");
    assert!(e.starts_with("junk: no dataset layout recognised"), "{e}");
}
