//! distill::config: what a distillation is asked to do — the method, its options and the published defaults, the
//! checks that refuse bad values before any work starts, and the metadata an exported set carries and that
//! evaluation reads back. No GPU here: this part builds for the browser too.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::augment::{self, Op};
use crate::data::Dataset;
use crate::hdd::{self, HddParams, LorentzMap};
use crate::nn::convnet::ConvNetConfig;
use crate::validate::{at_least_one, non_negative_f32, positive_f32, unit_interval, ConfigError};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    #[serde(rename = "dm")]
    Dm,
    #[serde(rename = "dm+hdd")]
    DmHdd,
    #[serde(rename = "idm")]
    Idm,
    #[serde(rename = "idm+hdd")]
    IdmHdd,
    #[serde(rename = "dance")]
    Dance,
    #[serde(rename = "dance+hdd")]
    DanceHdd,
}

impl Method {
    pub fn parse(s: &str) -> Result<Method, String> {
        match s.to_ascii_lowercase().as_str() {
            "dm" => Ok(Method::Dm),
            "dm+hdd" | "dmhdd" | "dm-hdd" | "hdd" => Ok(Method::DmHdd),
            "idm" => Ok(Method::Idm),
            "idm+hdd" | "idmhdd" | "idm-hdd" => Ok(Method::IdmHdd),
            "dance" => Ok(Method::Dance),
            "dance+hdd" | "dancehdd" | "dance-hdd" => Ok(Method::DanceHdd),
            other => Err(format!("unknown method '{other}': use dm, dm+hdd, idm, idm+hdd, dance or dance+hdd")),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Method::Dm => "dm",
            Method::DmHdd => "dm+hdd",
            Method::Idm => "idm",
            Method::IdmHdd => "idm+hdd",
            Method::Dance => "dance",
            Method::DanceHdd => "dance+hdd",
        }
    }
    /// The matching term is HDD's λ·d_L (else the squared distance of feature means).
    pub fn hdd(self) -> bool {
        matches!(self, Method::DmHdd | Method::IdmHdd | Method::DanceHdd)
    }
    /// DANCE's loop: interpolated expert encoder, calibration CE with the trained expert, pixels in [0, 1].
    pub fn dance(self) -> bool {
        matches!(self, Method::Dance | Method::DanceHdd)
    }
    /// Works class by class with a pixel step per class (IDM, DANCE), not one step for the whole set (DM).
    pub fn per_class(self) -> bool {
        self.idm() || self.dance()
    }
    /// The same method with HDD's matching term if it has DM's, and without if it has HDD's (the app's compare mode).
    pub fn twin(self) -> Method {
        match self {
            Method::Dm => Method::DmHdd,
            Method::DmHdd => Method::Dm,
            Method::Idm => Method::IdmHdd,
            Method::IdmHdd => Method::Idm,
            Method::Dance => Method::DanceHdd,
            Method::DanceHdd => Method::Dance,
        }
    }
    /// IDM's loop: queue of partly trained nets, CE regulariser, a pixel step per class.
    pub fn idm(self) -> bool {
        matches!(self, Method::Idm | Method::IdmHdd)
    }
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Method::parse(s)
    }
}

/// DANCE's options (method.md §4.2); the defaults are the released code's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DanceConfig {
    /// Experts trained on the real data (DANCE: 20) …
    pub experts: usize,
    /// … of which the first num_premodel are sampled during condensation (5).
    pub num_premodel: usize,
    /// Expert training: epochs (60) and batch (not in the spec; 128).
    pub expert_epochs: usize,
    pub expert_batch: usize,
    /// Where experts are saved and reused ("" = `experts/` inside the run's output directory).
    pub expert_dir: String,
    /// Calibration passes per iteration (`iter_calib`, 1).
    pub iter_calib: usize,
    /// Multi-formation factor 2: every synthetic image holds 2×2 sub-images (IDC's decode is the same split and
    /// bilinear ×2 upsampling as IDM's mosaic; its initialisation downsamples by nearest neighbour).
    pub mosaic: bool,
}

impl Default for DanceConfig {
    fn default() -> Self {
        DanceConfig { experts: 20, num_premodel: 5, expert_epochs: 60, expert_batch: 128, expert_dir: String::new(), iter_calib: 1, mosaic: true }
    }
}

/// IDM's options (method.md §4.1, §1.7); the defaults are the released code's for CIFAR-10 IPC 10.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdmConfig {
    /// Partition and expansion (`--aug`): every synthetic image is a 2×2 mosaic of half-resolution images,
    /// split and upsampled ×2 in matching and in evaluation.
    pub mosaic: bool,
    /// Push a fresh random net onto the queue every this many iterations (from iteration 0).
    pub net_generate_interval: usize,
    /// Queue length; the oldest net leaves when a new one would exceed it.
    pub net_num: usize,
    /// Nets trained after each iteration's image update …
    pub fetch_net_num: usize,
    /// … for this many SGD steps each, on batches of `net_batch` random real images (all classes, no augmentation).
    pub model_train_steps: usize,
    pub net_batch: usize,
    pub net_lr: f32,
    pub net_momentum: f32,
    /// `--net_decay`: 5e-4.
    pub net_weight_decay: f32,
    /// Weight of the class-aware CE regulariser, multiplied by the chosen net's running training accuracy in %.
    pub ce_weight: f32,
    /// The running accuracies restart every this many iterations (the IDM code resets them at each evaluation).
    pub acc_reset_every: usize,
}

impl Default for IdmConfig {
    fn default() -> Self {
        IdmConfig {
            mosaic: true,
            net_generate_interval: 30,
            net_num: 100,
            fetch_net_num: 2,
            model_train_steps: 10,
            net_batch: 256,
            net_lr: 0.01,
            net_momentum: 0.9,
            net_weight_decay: 5e-4,
            ce_weight: 0.5,
            acc_reset_every: 100,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// ipc distinct random real images per class (the papers' `--init real`)
    Real,
    /// standard normal pixels in the normalised space
    Noise,
}

impl std::str::FromStr for Init {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "real" => Ok(Init::Real),
            "noise" => Ok(Init::Noise),
            o => Err(format!("'{o}': use real or noise")),
        }
    }
}

/// Every option of a distillation run; the defaults are DM+HDD as the authors released it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistillConfig {
    pub method: Method,
    pub ipc: usize,
    pub iterations: usize,
    pub batch_real: usize,
    pub lr_img: f32,
    pub momentum_img: f32,
    /// ConvNet width (channels of every conv layer).
    pub width: usize,
    pub seed: u64,
    /// HDD: geoopt's k, λ, radius clamp (None = off) and map.
    pub k: f64,
    pub lambda: f32,
    #[serde(with = "clamp_serde")]
    pub clamp: Option<f64>,
    pub map: LorentzMap,
    /// HDD: the paper's hierarchical weights w = τ/sinh τ in the centroids (off in the authors' code; no effect
    /// under the clamp, where every sample has the same τ).
    pub weighted_centroid: bool,
    /// DSA strategy, e.g. "color_crop_cutout_flip_scale_rotate"; "none" disables augmentation.
    pub dsa: String,
    pub init: Init,
    /// IDM and IDM+HDD only.
    pub idm: IdmConfig,
    /// DANCE and DANCE+HDD only.
    pub dance: DanceConfig,
    /// The classes this run distills (a shard of a run split over processes: `--shard`, `--classes`); empty = all.
    /// Every random draw is keyed by iteration and class, so a shard computes exactly the unsplit run's images of
    /// its classes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<usize>,
}

/// The clamp in TOML: a number, or "off" (TOML has no null, and a missing key would mean the default, 10).
mod clamp_serde {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(c: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match c {
            Some(v) => s.serialize_f64(*v),
            None => s.serialize_str("off"),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Num(f64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Num(v) => Ok(Some(v)),
            Repr::Text(t) if t == "off" => Ok(None),
            Repr::Text(t) => Err(serde::de::Error::custom(format!("clamp: a number or \"off\", not \"{t}\""))),
        }
    }
}

impl Default for DistillConfig {
    fn default() -> Self {
        DistillConfig {
            method: Method::DmHdd,
            ipc: 10,
            iterations: 20000,
            batch_real: 256,
            lr_img: 1.0,
            momentum_img: 0.5,
            width: 128,
            seed: 0,
            k: 1.0,
            lambda: 20.0,
            clamp: Some(hdd::EXP_MAX_NORM),
            map: LorentzMap::Expmap,
            weighted_centroid: false,
            dsa: augment::DEFAULT_STRATEGY.to_string(),
            init: Init::Real,
            idm: IdmConfig::default(),
            dance: DanceConfig::default(),
            classes: vec![],
        }
    }
}

impl DistillConfig {
    /// Set what the authors' scripts use for `method` at `ipc` (method.md §1.5, §1.7; CIFAR-10 rows, which the
    /// Fashion-MNIST and SVHN runs share): DM+HDD k 1, λ 20, lr_img 1, 20000 iterations; IDM+HDD k 2.4, λ 100,
    /// lr_img 0.5/1/0.2 and ce_weight 0.5/0.5/0.1 at IPC 1/10/50, 10000 iterations, batch_real 5000 and a new net
    /// every 5 iterations at IPC 1; plain IDM lr_img 0.2 at every IPC. Dataset-specific choices (CIFAR-100 and
    /// Tiny ImageNet: projx, other k and λ) are in the presets under `presets/`.
    pub fn apply_method_defaults(&mut self) {
        let ipc = self.ipc;
        let d = DistillConfig::default();
        self.idm = IdmConfig::default();
        self.dance = DanceConfig::default();
        match self.method {
            Method::Dm | Method::DmHdd => {
                (self.k, self.lambda, self.lr_img, self.iterations, self.batch_real) = (d.k, d.lambda, d.lr_img, d.iterations, d.batch_real);
            }
            Method::Idm | Method::IdmHdd => {
                (self.k, self.lambda, self.iterations) = (2.4, 100.0, 10000);
                let (lr, ce) = match ipc {
                    1 => (0.5, 0.5),
                    i if i >= 50 => (0.2, 0.1),
                    _ => (1.0, 0.5),
                };
                self.lr_img = if self.method == Method::IdmHdd { lr } else { 0.2 };
                self.idm.ce_weight = ce;
                self.batch_real = if ipc == 1 { 5000 } else { 256 };
                self.idm.net_generate_interval = if ipc == 1 { 5 } else { 30 };
            }
            Method::Dance | Method::DanceHdd => {
                // lr_img 0.01·IPC in [0, 1] pixel space (carried per channel into the normalised space), niter
                // 10000, batch_real 128; DANCE+HDD: IDM+HDD's k and λ (method.md §6.10)
                (self.k, self.lambda, self.iterations, self.batch_real) = (2.4, 100.0, 10000, 128);
                self.lr_img = (0.01 * ipc as f64) as f32; // f64 first: 0.01 · 10 is 0.1, not 0.099999994
            }
        }
        self.momentum_img = 0.5;
    }

    /// The classes distilled here, ascending: `classes`, or all `total` of them.
    pub fn owned_classes(&self, total: usize) -> Vec<usize> {
        if self.classes.is_empty() { (0..total).collect() } else { self.classes.clone() }
    }

    /// Synthetic images are mosaics (IDM's partition, DANCE's multi-formation: stored 2×2, expanded ×4 for
    /// matching and evaluation).
    pub fn uses_mosaic(&self) -> bool {
        (self.method.idm() && self.idm.mosaic) || (self.method.dance() && self.dance.mosaic)
    }

    pub fn ops(&self) -> Result<Vec<Op>, ConfigError> {
        Op::parse_strategy(&self.dsa).map_err(|e| ConfigError::new("dsa", e))
    }

    pub fn hdd(&self) -> HddParams {
        HddParams { k: self.k, clamp: self.clamp, map: self.map, weighted: self.weighted_centroid }
    }

    /// Reject bad options before any work starts.
    pub fn validate(&self, ds: &Dataset) -> Result<(), ConfigError> {
        at_least_one("ipc", self.ipc)?;
        let smallest = ds.train_counts().into_iter().min().unwrap_or(0);
        if self.ipc > smallest {
            return Err(ConfigError::new(format!("ipc {}", self.ipc), format!("is larger than the smallest training class ({smallest} images)")));
        }
        at_least_one("batch_real", self.batch_real)?;
        at_least_one("width", self.width)?;
        positive_f32("k", self.k)?;
        non_negative_f32("lr_img", self.lr_img as f64)?;
        unit_interval("momentum_img", self.momentum_img as f64, false)?;
        positive_f32("lambda", self.lambda as f64)?;
        if let Some(c) = self.clamp {
            positive_f32("clamp", c)?;
        }
        ConvNetConfig::new(ds.shape(), self.width, ds.classes.len()).map_err(|e| ConfigError::new("the dataset's images:", e.to_string()))?;
        if let Some(&c) = self.classes.iter().find(|&&c| c >= ds.classes.len()) {
            return Err(ConfigError::new(format!("classes: class {c}"), format!("does not exist (the dataset has {} classes, 0–{})", ds.classes.len(), ds.classes.len() - 1)));
        }
        if self.classes.windows(2).any(|w| w[0] >= w[1]) {
            return Err(ConfigError::new("classes", "must be ascending, each class once"));
        }
        self.ops()?;
        if self.method.dance() {
            let d = &self.dance;
            for (name, v) in [("experts", d.experts), ("num_premodel", d.num_premodel), ("expert_epochs", d.expert_epochs), ("expert_batch", d.expert_batch)] {
                at_least_one(&format!("dance: {name}"), v)?;
            }
            if d.mosaic {
                crate::mosaic::check_shape(ds.height, ds.width).map_err(|e| ConfigError::new("dance: mosaic:", e))?;
            }
            if ds.channels > 3 {
                return Err(ConfigError::new("dance:", format!("at most 3 channels, not {}", ds.channels)));
            }
        }
        if self.method.idm() {
            let i = &self.idm;
            if i.mosaic {
                crate::mosaic::check_shape(ds.height, ds.width).map_err(|e| ConfigError::new("idm: mosaic:", e))?;
            }
            for (name, v) in [("net_generate_interval", i.net_generate_interval), ("net_num", i.net_num), ("net_batch", i.net_batch), ("acc_reset_every", i.acc_reset_every)] {
                at_least_one(&format!("idm: {name}"), v)?;
            }
            if i.net_batch > ds.train.len() {
                return Err(ConfigError::new(format!("idm: net_batch {}", i.net_batch), format!("is larger than the training set ({} images)", ds.train.len())));
            }
            non_negative_f32("idm: ce_weight", i.ce_weight as f64)?;
            non_negative_f32("idm: net_lr", i.net_lr as f64)?;
            non_negative_f32("idm: net_weight_decay", i.net_weight_decay as f64)?;
            unit_interval("idm: net_momentum", i.net_momentum as f64, false)?;
        }
        Ok(())
    }

    /// The metadata every exported set carries: dataset (with `dataset_spec`, what `data::open` was given, so `eval`
    /// can reopen it) and its statistics, method and its hyperparameters, seed, iteration, adapter, version, and the
    /// whole resolved configuration (`config`). `SetMetadata::read` reads back what evaluation needs.
    pub fn metadata(&self, spec: &str, ds: &Dataset, adapter: String, iteration: usize, config_toml: String) -> BTreeMap<String, String> {
        let list = |v: &[f32]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",");
        BTreeMap::from([
            ("dataset".to_string(), ds.name.clone()),
            ("dataset_spec".to_string(), if spec.is_empty() { "embedded".to_string() } else { spec.to_string() }),
            ("dataset_source".to_string(), ds.source.clone()),
            ("classes".to_string(), ds.classes.join("|")),
            ("mean".to_string(), list(&ds.mean)),
            ("std".to_string(), list(&ds.std)),
            ("ipc".to_string(), self.ipc.to_string()),
            ("method".to_string(), self.method.name().to_string()),
            ("mosaic".to_string(), self.uses_mosaic().to_string()),
            ("k".to_string(), self.k.to_string()),
            ("lambda".to_string(), self.lambda.to_string()),
            ("clamp".to_string(), self.clamp.map_or("off".to_string(), |c| c.to_string())),
            ("map".to_string(), format!("{:?}", self.map).to_lowercase()),
            ("weighted_centroid".to_string(), self.weighted_centroid.to_string()),
            ("seed".to_string(), self.seed.to_string()),
            ("iteration".to_string(), iteration.to_string()),
            ("adapter".to_string(), adapter),
            ("version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
            ("config".to_string(), config_toml),
        ])
    }
}

/// What an exported set's metadata says about how it was made, as far as evaluating it needs: the dataset it came
/// from, whether its images are mosaics, and the Lorentz map of its HDD term (defaults where a file is silent).
#[derive(Clone, Debug, PartialEq)]
pub struct SetMetadata {
    /// What `data::open` was given when it was distilled (older files: the dataset's name, or "embedded").
    pub dataset_spec: Option<String>,
    pub mosaic: bool,
    pub hdd: HddParams,
}

impl SetMetadata {
    pub fn read(meta: &BTreeMap<String, String>) -> Result<SetMetadata, ConfigError> {
        let mut h = DistillConfig::default().hdd();
        if let Some(k) = meta.get("k") {
            h.k = k.parse().map_err(|_| ConfigError::new("metadata k", format!("is '{k}', not a number")))?;
        }
        match meta.get("clamp").map(String::as_str) {
            None => {}
            Some("off") => h.clamp = None,
            Some(c) => h.clamp = Some(c.parse().map_err(|_| ConfigError::new("metadata clamp", format!("is '{c}', not a number or 'off'")))?),
        }
        match meta.get("map").map(String::as_str) {
            None | Some("expmap") => {}
            Some("projx") => h.map = LorentzMap::Projx,
            Some(m) => return Err(ConfigError::new("metadata map", format!("is '{m}': expected expmap or projx"))),
        }
        h.weighted = meta.get("weighted_centroid").is_some_and(|w| w == "true");
        // the spec the set was distilled from; older files only name the dataset (the embedded subset's source
        // says "embedded …")
        let dataset_spec = meta.get("dataset_spec").cloned().or_else(|| match (meta.get("dataset_source"), meta.get("dataset")) {
            (Some(src), _) if src.starts_with("embedded") => Some("embedded".into()),
            (_, Some(name)) => Some(name.clone()),
            _ => None,
        });
        Ok(SetMetadata { dataset_spec, mosaic: meta.get("mosaic").is_some_and(|m| m == "true"), hdd: h })
    }
}
