//! data: datasets in their standard on-disk formats, the embedded default, and verified downloads.
//!
//! Every loader produces a `Dataset`: u8 pixels (N×C×H×W, one copy), u32 labels, class names, and the
//! normalisation statistics of method.md §2.1. Loaders never panic on bad input: every fault becomes a
//! `DataError` naming the file and what is wrong with it.

pub mod cifar;
pub mod embedded;
#[cfg(not(target_arch = "wasm32"))]
pub mod fetch;
pub mod folder;
pub mod idx;
pub mod source;
pub mod svhn;

use std::path::Path;

/// What went wrong reading a dataset; always names the file (or archive member).
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{file}: {msg}")]
    Format { file: String, msg: String },
    #[error("{file}: {source}")]
    Io { file: String, source: std::io::Error },
    #[error("{0}")]
    Layout(String),
}

pub(crate) fn bad(file: impl std::fmt::Display, msg: impl Into<String>) -> DataError {
    DataError::Format { file: file.to_string(), msg: msg.into() }
}

pub(crate) fn io_err(file: impl std::fmt::Display, source: std::io::Error) -> DataError {
    DataError::Io { file: file.to_string(), source }
}

/// One split: images as u8 N×C×H×W (channel-planar, like the tensors the network takes) and labels.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Split {
    pub images: Vec<u8>,
    pub labels: Vec<u32>,
}

impl Split {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// The datasets whose statistics and class names the papers fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Known {
    Mnist,
    FashionMnist,
    Svhn,
    Cifar10,
    Cifar100,
    TinyImageNet,
}

pub const FASHION_CLASSES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
pub const CIFAR10_CLASSES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

impl Known {
    pub const ALL: [Known; 6] =
        [Known::Mnist, Known::FashionMnist, Known::Svhn, Known::Cifar10, Known::Cifar100, Known::TinyImageNet];

    pub fn name(self) -> &'static str {
        match self {
            Known::Mnist => "mnist",
            Known::FashionMnist => "fashion-mnist",
            Known::Svhn => "svhn",
            Known::Cifar10 => "cifar10",
            Known::Cifar100 => "cifar100",
            Known::TinyImageNet => "tiny-imagenet",
        }
    }

    /// Accepts the usual spellings: "fashion-mnist", "FashionMNIST", "fmnist", "cifar-10", "tiny", …
    pub fn parse(s: &str) -> Option<Known> {
        let k: String = s.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
        Some(match k.as_str() {
            "mnist" => Known::Mnist,
            "fashionmnist" | "fmnist" => Known::FashionMnist,
            "svhn" => Known::Svhn,
            "cifar10" => Known::Cifar10,
            "cifar100" => Known::Cifar100,
            "tinyimagenet" | "tiny" | "tinyimagenet200" => Known::TinyImageNet,
            _ => return None,
        })
    }

    /// Per-channel normalisation (method.md §2.1).
    pub fn mean_std(self) -> (Vec<f32>, Vec<f32>) {
        let (m, s): (&[f32], &[f32]) = match self {
            Known::Mnist => (&[0.1307], &[0.3081]),
            Known::FashionMnist => (&[0.2861], &[0.3530]),
            Known::Svhn => (&[0.4377, 0.4438, 0.4728], &[0.1980, 0.2010, 0.1970]),
            Known::Cifar10 => (&[0.4914, 0.4822, 0.4465], &[0.2023, 0.1994, 0.2010]),
            Known::Cifar100 => (&[0.5071, 0.4866, 0.4409], &[0.2673, 0.2564, 0.2762]),
            Known::TinyImageNet => (&[0.485, 0.456, 0.406], &[0.229, 0.224, 0.225]),
        };
        (m.to_vec(), s.to_vec())
    }

    pub fn channels(self) -> usize {
        match self {
            Known::Mnist | Known::FashionMnist => 1,
            _ => 3,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// "fashion-mnist", "cifar10", … or the folder's name for other image folders.
    pub name: String,
    pub known: Option<Known>,
    pub classes: Vec<String>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// Per-channel mean and std of pixels in [0, 1]; normalised = (x/255 − mean) / std.
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    pub train: Split,
    pub test: Split,
    /// Where it was loaded from (a path, or "embedded").
    pub source: String,
    /// Set when only some classes were kept (a class shard): their training images, no test split.
    pub subset: Option<Subset>,
}

/// What a dataset loaded for some classes only still knows of the whole: which classes it kept and every class's
/// number of training images (a distillation's real batch size and checks depend on the smallest class of all).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Subset {
    pub classes: Vec<usize>,
    pub train_counts: Vec<usize>,
}

/// `classes` flags, set for the classes in `keep` (those out of range are ignored).
pub(crate) fn class_mask(keep: &[usize], classes: usize) -> Vec<bool> {
    let mut mask = vec![false; classes];
    for &c in keep.iter().filter(|&&c| c < classes) {
        mask[c] = true;
    }
    mask
}

/// Which classes' training images a load keeps, decided once the class count is known (`None` keeps everything).
pub type KeepClasses<'a> = &'a dyn Fn(usize) -> Result<Vec<usize>, DataError>;

impl Dataset {
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Channels × height × width of one image.
    pub fn shape(&self) -> crate::shapes::ImageShape {
        crate::shapes::ImageShape::new(self.channels, self.height, self.width)
    }

    /// The u8 pixels of image `i` of `split`.
    pub fn image<'a>(&self, split: &'a Split, i: usize) -> &'a [u8] {
        let l = self.image_len();
        &split.images[i * l..(i + 1) * l]
    }

    /// Indices of each class in `split` (distillation samples real images per class).
    pub fn class_indices(&self, split: &Split) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.classes.len()];
        for (i, &l) in split.labels.iter().enumerate() {
            out[l as usize].push(i);
        }
        out
    }

    /// Every class's number of training images, also for classes a subset did not keep.
    pub fn train_counts(&self) -> Vec<usize> {
        match &self.subset {
            Some(s) => s.train_counts.clone(),
            None => self.class_indices(&self.train).iter().map(Vec::len).collect(),
        }
    }

    /// Keep only the training images of `keep` (in their order, so an image's position within its class is
    /// unchanged and so are the real batches drawn for it) and drop the test split.
    pub fn retain_classes(&mut self, keep: &[usize]) {
        let counts = self.train_counts();
        let l = self.image_len();
        let wanted = class_mask(keep, self.classes.len());
        let mut w = 0;
        for i in 0..self.train.len() {
            let y = self.train.labels[i];
            if wanted[y as usize] {
                self.train.images.copy_within(i * l..(i + 1) * l, w * l);
                self.train.labels[w] = y;
                w += 1;
            }
        }
        self.train.images.truncate(w * l);
        self.train.images.shrink_to_fit();
        self.train.labels.truncate(w);
        self.train.labels.shrink_to_fit();
        self.test = Split::default();
        self.subset = Some(Subset { classes: keep.to_vec(), train_counts: counts });
    }

    /// Normalised f32 tensor [indices.len(), C, H, W] for the network.
    pub fn normalized(&self, split: &Split, indices: &[usize]) -> Vec<f32> {
        let plane = self.height * self.width;
        let mut out = Vec::with_capacity(indices.len() * self.image_len());
        for &i in indices {
            for (c, px) in self.image(split, i).chunks_exact(plane).enumerate() {
                let (m, s) = (self.mean[c], self.std[c]);
                out.extend(px.iter().map(|&p| (p as f32 / 255.0 - m) / s));
            }
        }
        out
    }

    /// Per-channel mean and std of a split's pixels in [0, 1] (what `data info` prints).
    pub fn pixel_stats(&self, split: &Split) -> (Vec<f64>, Vec<f64>) {
        let plane = self.height * self.width;
        let mut sum = vec![0f64; self.channels];
        let mut sq = vec![0f64; self.channels];
        for img in split.images.chunks_exact(self.image_len()) {
            for (c, px) in img.chunks_exact(plane).enumerate() {
                for &p in px {
                    let v = p as f64 / 255.0;
                    sum[c] += v;
                    sq[c] += v * v;
                }
            }
        }
        let n = (split.len() * plane).max(1) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let std = sq.iter().zip(&mean).map(|(q, m)| (q / n - m * m).max(0.0).sqrt()).collect();
        (mean, std)
    }

    /// What `hyperdistill data info` prints: name, source, image shape, classes with their counts per split,
    /// normalisation, the measured pixel statistics, and how long loading took (`load_secs`).
    pub fn summary(&self, load_secs: f64) -> Result<String, std::fmt::Error> {
        use std::fmt::Write;
        let mut out = String::new();
        writeln!(out, "dataset     {}", self.name)?;
        writeln!(out, "source      {}", self.source)?;
        writeln!(out, "image       {} × {} × {} (channels × height × width)", self.channels, self.height, self.width)?;
        if self.height != self.width {
            writeln!(out, "note        the networks take square images: this dataset can be inspected but not distilled or evaluated")?;
        }
        writeln!(out, "classes     {}", self.classes.len())?;
        for (split_name, split) in [("train", &self.train), ("test", &self.test)] {
            let counts: Vec<usize> = self.class_indices(split).iter().map(Vec::len).collect();
            let (lo, hi) = (counts.iter().min().copied().unwrap_or(0), counts.iter().max().copied().unwrap_or(0));
            writeln!(out, "{split_name:<11} {} images, per class {lo}..{hi}", split.len())?;
        }
        let show = self.classes.len().min(20);
        let (train_counts, test_counts) = (self.class_indices(&self.train), self.class_indices(&self.test));
        for c in 0..show {
            writeln!(out, "  {c:>3} {:<24} train {:>6}  test {:>6}", self.classes[c], train_counts[c].len(), test_counts[c].len())?;
        }
        if self.classes.len() > show {
            writeln!(out, "  … {} more classes", self.classes.len() - show)?;
        }
        let fmt = |v: &[f32]| v.iter().map(|x| format!("{x:.4}")).collect::<Vec<_>>().join(", ");
        let whose = if self.known.is_some() { " (the papers' values)" } else { " (measured on the training split)" };
        writeln!(out, "normalise   mean [{}], std [{}]{whose}", fmt(&self.mean), fmt(&self.std))?;
        let (m, s) = self.pixel_stats(&self.train);
        let fmt64 = |v: &[f64]| v.iter().map(|x| format!("{x:.4}")).collect::<Vec<_>>().join(", ");
        writeln!(out, "measured    train pixels in [0,1]: mean [{}], std [{}]", fmt64(&m), fmt64(&s))?;
        let mib = (self.train.images.len() + self.test.images.len()) as f64 / (1 << 20) as f64;
        writeln!(out, "loaded in   {load_secs:.2} s, {mib:.1} MiB of pixels")?;
        Ok(out)
    }

    /// Consistency checks every loader ends with: sizes agree, labels in range, no empty training class.
    pub fn validate(&self) -> Result<(), DataError> {
        let l = self.image_len();
        for (name, s) in [("train", &self.train), ("test", &self.test)] {
            if s.images.len() != s.len() * l {
                return Err(bad(&self.source, format!("{name} split: {} pixel bytes for {} images of {l}", s.images.len(), s.len())));
            }
            if let Some(&bad_label) = s.labels.iter().find(|&&y| y as usize >= self.classes.len()) {
                return Err(bad(&self.source, format!("{name} split: label {bad_label} out of range for {} classes", self.classes.len())));
            }
        }
        if self.train.is_empty() {
            return Err(bad(&self.source, "the training split is empty"));
        }
        if let Some(c) = self.train_counts().iter().position(|&n| n == 0) {
            return Err(bad(&self.source, format!("class {c} ('{}') has no training images", self.classes[c])));
        }
        if self.mean.len() != self.channels || self.std.len() != self.channels || self.std.iter().any(|&s| s <= 0.0) {
            return Err(bad(&self.source, "normalisation statistics do not match the channels"));
        }
        Ok(())
    }

    /// A dataset the papers fix: name, channels and statistics come from `k`.
    pub(crate) fn known(k: Known, classes: Vec<String>, height: usize, width: usize, train: Split, test: Split, source: String) -> Self {
        let (mean, std) = k.mean_std();
        Dataset { name: k.name().to_string(), known: Some(k), classes, channels: k.channels(), height, width, mean, std, train, test, source, subset: None }
    }

    /// Fill name, statistics and class names from a known dataset.
    pub(crate) fn with_known(mut self, k: Known) -> Self {
        self.name = k.name().to_string();
        self.known = Some(k);
        let (m, s) = k.mean_std();
        if m.len() == self.channels {
            self.mean = m;
            self.std = s;
        }
        self
    }
}

/// Open a dataset from a path (directory, .zip, or file) or a name: "embedded" (the built-in Fashion-MNIST
/// subset), or a known name looked up in `cache_dir` (where `data fetch` stores downloads).
pub fn open(spec: &str, cache_dir: &Path) -> Result<Dataset, DataError> {
    open_keeping(spec, cache_dir, None)
}

/// `open`, keeping only the training images of the classes `keep` picks (and no test split) when given: a class
/// shard's memory is its share of the dataset. Tiny ImageNet does not even decode the other classes' images; the
/// other formats are read whole (their files mix the classes) and trimmed before anything else is allocated.
pub fn open_keeping(spec: &str, cache_dir: &Path, keep: Option<KeepClasses>) -> Result<Dataset, DataError> {
    let mut ds = open_any(spec, cache_dir, keep)?;
    if let (Some(keep), None) = (keep, &ds.subset) {
        let classes = keep(ds.classes.len())?;
        if classes.len() < ds.classes.len() {
            ds.retain_classes(&classes);
        }
    }
    Ok(ds)
}

fn open_any(spec: &str, cache_dir: &Path, keep: Option<KeepClasses>) -> Result<Dataset, DataError> {
    if spec.is_empty() || spec == "embedded" {
        return embedded::load();
    }
    if let Some(name) = spec.strip_prefix("memory:") {
        let files = memory().lock().unwrap_or_else(|p| p.into_inner()).get(name).cloned();
        let files = files.ok_or_else(|| DataError::Layout(format!("no files were loaded under the name '{name}'")))?;
        return open_source_keeping(&source::Source::from_memory(name, files)?, name, keep);
    }
    let path = Path::new(spec);
    if path.exists() {
        return open_path_keeping(path, keep);
    }
    if let Some(k) = Known::parse(spec) {
        let dir = cache_dir.join(k.name());
        if dir.exists() {
            return open_path_keeping(&dir, keep);
        }
        return Err(DataError::Layout(format!(
            "dataset '{}' is not in the cache ({}); run `hyperdistill data fetch {}` or give a path",
            k.name(),
            dir.display(),
            k.name()
        )));
    }
    Err(DataError::Layout(format!(
        "'{spec}' is neither a file or directory nor a dataset name (embedded, {})",
        Known::ALL.map(Known::name).join(", ")
    )))
}

type MemoryFiles = std::collections::HashMap<String, Vec<(String, Vec<u8>)>>;

fn memory() -> &'static std::sync::Mutex<MemoryFiles> {
    static FILES: std::sync::OnceLock<std::sync::Mutex<MemoryFiles>> = std::sync::OnceLock::new();
    FILES.get_or_init(Default::default)
}

/// Keep files given as bytes (the browser's file picker hands them over this way) under `name`;
/// `open("memory:<name>", …)` then reads them like a directory (a single .zip is unpacked).
pub fn register_memory(name: &str, files: Vec<(String, Vec<u8>)>) {
    memory().lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), files);
}

/// Detect the layout under `path` and load it.
pub fn open_path(path: &Path) -> Result<Dataset, DataError> {
    open_path_keeping(path, None)
}

fn open_path_keeping(path: &Path, keep: Option<KeepClasses>) -> Result<Dataset, DataError> {
    let src = source::Source::open(path)?;
    let name_hint = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    open_source_keeping(&src, &name_hint, keep)
}

/// Detect the layout of `src` and load it (`name_hint` names datasets whose files do not).
pub fn open_source(src: &source::Source, name_hint: &str) -> Result<Dataset, DataError> {
    open_source_keeping(src, name_hint, None)
}

fn open_source_keeping(src: &source::Source, name_hint: &str, keep: Option<KeepClasses>) -> Result<Dataset, DataError> {
    let ds = if let Some(ds) = idx::detect(src, name_hint)? {
        ds
    } else if let Some(ds) = cifar::detect(src)? {
        ds
    } else if let Some(ds) = svhn::detect(src)? {
        ds
    } else if let Some(ds) = folder::detect_tiny(src, keep)? {
        ds
    } else if let Some(ds) = folder::detect_image_folder(src, name_hint)? {
        ds
    } else {
        return Err(DataError::Layout(format!(
            "{}: no dataset layout recognised. Expected one of: IDX files (train-images-idx3-ubyte[.gz], …), \
             CIFAR binaries (data_batch_1.bin … test_batch.bin, or train.bin/test.bin), SVHN train_32x32.mat/test_32x32.mat, \
             Tiny ImageNet (wnids.txt, train/, val/), or image folders (train/<class>/*, test/<class>/*)",
            src.display("")
        )));
    };
    ds.validate()?;
    Ok(ds)
}
