//! distill: DM and DM+HDD on the GPU (method.md §2.3, §1.5): synthetic images learned by matching the
//! features of a fresh random ConvNet-3 per iteration, with siamese DSA per class. IDM and IDM+HDD (§4.1) live
//! in the submodule `idm` (queue of partly trained nets, mosaic, CE regulariser, a pixel step per class).
//!
//! One iteration is one command buffer, one submit, no read-back (the loss is read only when asked for):
//!   new random net → per class: copy its real batch, augment (the class's siamese op), embed →
//!   augment all synthetic images, embed them in chunks (each chunk keeps its activations) →
//!   DM or HDD term and its gradient on the synthetic features → backward through the net and the
//!   augmentation → SGD (momentum 0.5) on the pixels.

use rand::RngExt;
use serde::{Deserialize, Serialize};
use wgpu::Buffer;

use crate::augment::{self, Op};
use crate::data::Dataset;
use crate::gpu::{Gpu, GpuError};
use crate::lorentz::{self, Hyperbolic, LorentzMap};
use crate::nn::convnet::{ConvNetConfig, ConvNetParams, GpuConvNet, Upstream, Workspace};
use crate::nn::ops;
use crate::rng::{self, ChaCha8Rng};

mod dance;
mod idm;
pub use dance::DANCE_OPS;
pub use idm::INITIAL_NETS as IDM_INITIAL_NETS;

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
    /// IDM's loop: queue of partly trained nets, CE regulariser, a pixel step per class.
    pub fn idm(self) -> bool {
        matches!(self, Method::Idm | Method::IdmHdd)
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
            clamp: Some(lorentz::EXP_MAX_NORM),
            map: LorentzMap::Expmap,
            weighted_centroid: false,
            dsa: augment::DEFAULT_STRATEGY.to_string(),
            init: Init::Real,
            idm: IdmConfig::default(),
            dance: DanceConfig::default(),
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

    /// Synthetic images are mosaics (IDM's partition, DANCE's multi-formation: stored 2×2, expanded ×4 for
    /// matching and evaluation).
    pub fn uses_mosaic(&self) -> bool {
        (self.method.idm() && self.idm.mosaic) || (self.method.dance() && self.dance.mosaic)
    }

    pub fn ops(&self) -> Result<Vec<Op>, String> {
        Op::parse_strategy(&self.dsa)
    }

    pub fn hyperbolic(&self) -> Hyperbolic {
        Hyperbolic { k: self.k, clamp: self.clamp, map: self.map, weighted: self.weighted_centroid }
    }

    /// Reject bad options before any work starts.
    pub fn validate(&self, ds: &Dataset) -> Result<(), String> {
        use crate::validate::{non_negative_f32, positive_f32, unit_interval};
        if self.ipc == 0 {
            return Err("ipc must be at least 1".into());
        }
        let smallest = ds.class_indices(&ds.train).iter().map(Vec::len).min().unwrap_or(0);
        if self.ipc > smallest {
            return Err(format!("ipc {} is larger than the smallest training class ({smallest} images)", self.ipc));
        }
        if self.batch_real == 0 {
            return Err("batch_real must be at least 1".into());
        }
        if self.width == 0 {
            return Err("width must be at least 1".into());
        }
        positive_f32("k", self.k)?;
        non_negative_f32("lr_img", self.lr_img as f64)?;
        unit_interval("momentum_img", self.momentum_img as f64, false)?;
        positive_f32("lambda", self.lambda as f64)?;
        if let Some(c) = self.clamp {
            positive_f32("clamp", c)?;
        }
        ConvNetConfig::new(ds.shape(), self.width, ds.classes.len()).map_err(|e| e.to_string())?;
        self.ops()?;
        if self.method.dance() {
            let d = &self.dance;
            if d.experts == 0 || d.num_premodel == 0 || d.expert_epochs == 0 || d.expert_batch == 0 {
                return Err("dance: experts, num_premodel, expert_epochs and expert_batch must be at least 1".into());
            }
            if d.mosaic {
                crate::mosaic::check_shape(ds.height, ds.width)?;
            }
            if ds.channels > 3 {
                return Err(format!("dance: at most 3 channels, not {}", ds.channels));
            }
        }
        if self.method.idm() {
            let i = &self.idm;
            if i.mosaic {
                crate::mosaic::check_shape(ds.height, ds.width)?;
            }
            if i.net_generate_interval == 0 || i.net_num == 0 || i.net_batch == 0 || i.acc_reset_every == 0 {
                return Err("idm: net_generate_interval, net_num, net_batch and acc_reset_every must be at least 1".into());
            }
            if i.net_batch > ds.train.len() {
                return Err(format!("idm: net_batch {} is larger than the training set ({} images)", i.net_batch, ds.train.len()));
            }
            non_negative_f32("idm: ce_weight", i.ce_weight as f64)?;
            non_negative_f32("idm: net_lr", i.net_lr as f64)?;
            non_negative_f32("idm: net_weight_decay", i.net_weight_decay as f64)?;
            unit_interval("idm: net_momentum", i.net_momentum as f64, false)?;
        }
        Ok(())
    }
}

/// The state of a run between iterations.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub iteration: usize,
    pub syn: Vec<f32>,
    pub momentum: Vec<f32>,
    /// ChaCha word positions of the net, DSA and real-batch streams
    pub rng_words: [u128; 3],
    /// Method state beyond the pixels (IDM: every queue net's parameters, momentum and accuracy meter, oldest
    /// first, named `queue{i}.param{t}`, `queue{i}.momentum{t}`, `queue{i}.meter`), and further stream positions.
    pub extra: Vec<(String, Vec<f32>)>,
    pub extra_words: Vec<u128>,
}

/// A synthetic chunk: images [start, start + n) of the synthetic set and its own workspace.
struct Chunk {
    start: usize,
    n: usize,
    ws: Workspace,
}

pub struct Distiller<'g> {
    gpu: &'g Gpu,
    pub cfg: DistillConfig,
    pub net_cfg: ConvNetConfig,
    classes: usize,
    /// real images per class per iteration: min(batch_real, smallest class)
    pub per_real: usize,
    img: usize,
    class_idx: Vec<Vec<usize>>,
    /// scratch for sampling real batches (reused every iteration)
    pool: Vec<usize>,
    ops: Vec<Op>,
    /// Synthetic pixels [classes·ipc, C, H, W] in the normalised space, class-major.
    pub syn: Buffer,
    syn_mom: Buffer,
    net: GpuConvNet,
    real_all: Buffer,
    real_in: Buffer,
    real_params: Vec<Buffer>,
    /// Real batches go through the net in chunks the storage-binding limit allows: a workspace per chunk size
    /// (full chunks and the remainder), so a class's batch_real may exceed one binding (IDM's 5000 at IPC 1).
    real_ws: Vec<Workspace>,
    real_chunk: usize,
    real_scratch: Buffer,
    real_feat: Buffer,
    syn_aug: Buffer,
    syn_params: Buffer,
    syn_scratch: Buffer,
    chunks: Vec<Chunk>,
    syn_feat: Buffer,
    d_syn_feat: Buffer,
    d_syn_aug: Buffer,
    d_syn: Buffer,
    dm_sq: Buffer,
    dm_loss: Buffer,
    hdd: lorentz::gpu::HddBuffers,
    rng_net: ChaCha8Rng,
    rng_dsa: ChaCha8Rng,
    rng_real: ChaCha8Rng,
    pub iteration: usize,
    bind_groups: std::sync::Arc<crate::gpu::BindGroupCache>,
    /// IDM's state (queue, per-class scratch); None for DM.
    idm: Option<idm::Idm>,
    /// DANCE's state (experts, the trained expert's net, per-class scratch).
    dance: Option<dance::Dance>,
}

/// A buffer only copied from and to (never bound), so the storage-binding limit does not apply to it.
fn copy_buffer(gpu: &Gpu, label: &str, floats: usize) -> Buffer {
    gpu.note_buffer_created((floats.max(1) * 4) as u64);
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (floats.max(1) * 4) as u64,
        usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

pub(crate) fn copy_f32(enc: &mut wgpu::CommandEncoder, src: &Buffer, src_off: usize, dst: &Buffer, dst_off: usize, n: usize) {
    enc.copy_buffer_to_buffer(src, (src_off * 4) as u64, dst, (dst_off * 4) as u64, (n * 4) as u64);
}

impl<'g> Distiller<'g> {
    /// A distiller for `cfg`. DANCE trains its experts here, in memory (`run` and `with_experts` reuse saved ones).
    pub fn new(gpu: &'g Gpu, ds: &Dataset, cfg: DistillConfig) -> Result<Self, anyhow::Error> {
        Self::with_experts(gpu, ds, cfg, None)
    }

    /// As `new`, with DANCE's experts given (ignored by the other methods).
    pub fn with_experts(gpu: &'g Gpu, ds: &Dataset, cfg: DistillConfig, experts: Option<Vec<crate::experts::Expert>>) -> Result<Self, anyhow::Error> {
        cfg.validate(ds).map_err(anyhow::Error::msg)?;
        let experts = match (cfg.method.dance(), experts) {
            (false, _) => vec![],
            (true, Some(e)) if !e.is_empty() => e,
            (true, _) => Self::train_experts(gpu, ds, &cfg)?,
        };
        let classes = ds.classes.len();
        let class_idx = ds.class_indices(&ds.train);
        let per_real = cfg.batch_real.min(class_idx.iter().map(Vec::len).min().unwrap_or(1));
        let net_cfg = ConvNetConfig::new(ds.shape(), cfg.width, classes)?;
        let img = ds.image_len();
        let m = classes * cfg.ipc;
        let dim = net_cfg.embed_dim();

        // synthetic initialisation
        let mut rng_init = rng::stream(cfg.seed, "init");
        let mut syn_host = Vec::with_capacity(m * img);
        let mosaic_init = idm::uses_mosaic_init(&cfg);
        if mosaic_init {
            syn_host = if cfg.method.dance() {
                dance::mosaic_init(ds, &class_idx, cfg.ipc, &mut rng_init)
            } else {
                idm::mosaic_init(ds, &class_idx, cfg.ipc, &mut rng_init)
            };
        }
        for idx in class_idx.iter().filter(|_| !mosaic_init) {
            match cfg.init {
                Init::Real => {
                    let mut pool = idx.clone();
                    for i in 0..cfg.ipc {
                        let j = rng_init.random_range(i..pool.len());
                        pool.swap(i, j);
                    }
                    syn_host.extend(ds.normalized(&ds.train, &pool[..cfg.ipc]));
                }
                Init::Noise => {
                    for _ in 0..cfg.ipc * img {
                        // Box–Muller
                        let (u1, u2): (f32, f32) = (rng_init.random::<f32>().max(1e-12), rng_init.random());
                        syn_host.push((-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos());
                    }
                }
            }
        }

        // chunks of the synthetic set small enough for the storage-binding limit
        let per_image_bytes = (net_cfg.conv_shapes(1)[0].y_len() * 4) as u64; // the largest activation
        let max_chunk = ((gpu.max_binding_bytes() / per_image_bytes.max(1)) as usize).max(1);
        let real_chunk = per_real.min(max_chunk);
        let net = GpuConvNet::new(gpu, &ConvNetParams::init(&net_cfg, &mut rng::stream(cfg.seed, "net-shape")))?;
        let mut rng_net = rng::stream(cfg.seed, "iteration-net");
        let is_idm = cfg.method.per_class(); // IDM or DANCE: class by class
        let idm = if cfg.method.idm() { Some(idm::Idm::new(gpu, ds, &cfg, &net_cfg, per_real, &mut rng_net)?) } else { None };
        let dance = if cfg.method.dance() { Some(dance::Dance::new(gpu, ds, &cfg, &net_cfg, per_real, real_chunk, experts)?) } else { None };
        let per_syn = idm.as_ref().map(|i| i.per_syn).or(dance.as_ref().map(|d| d.per_syn)).unwrap_or(0);
        if per_syn > max_chunk {
            anyhow::bail!("{} embeds {per_syn} synthetic images per class at once, more than this adapter's storage binding allows ({max_chunk})", cfg.method.name());
        }
        // DM's whole-set buffers (IDM works class by class and needs none of them)
        let dm_len = |n: usize| if is_idm { 1 } else { n };
        let mut chunks = vec![];
        let mut start = 0;
        while !is_idm && start < m {
            let n = max_chunk.min(m - start);
            chunks.push(Chunk { start, n, ws: net.workspace(gpu, n)? });
            start += n;
        }
        let hdd_shape = lorentz::gpu::HddShape { classes, per_real, per_syn: cfg.ipc, dim };
        Ok(Distiller {
            gpu,
            classes,
            per_real,
            img,
            pool: Vec::with_capacity(class_idx.iter().map(Vec::len).max().unwrap_or(0)),
            class_idx,
            ops: cfg.ops().map_err(anyhow::Error::msg)?,
            syn: gpu.upload("syn", &syn_host)?,
            syn_mom: gpu.zeros("syn_mom", m * img)?,
            real_all: copy_buffer(gpu, "real_all", classes * per_real * img),
            real_in: gpu.zeros("real_in", real_chunk * img)?,
            // DANCE draws its own chained parameters (distill::dance); DM and IDM one op per real image
            real_params: (0..classes).map(|_| gpu.zeros("real_params", if cfg.method.dance() { 1 } else { per_real * 8 })).collect::<Result<_, _>>()?,
            real_ws: [real_chunk, per_real % real_chunk].iter().filter(|&&n| n > 0).map(|&n| net.workspace(gpu, n)).collect::<Result<_, _>>()?,
            real_chunk,
            real_scratch: gpu.zeros("real_scratch", real_chunk)?,
            // DM: every class's real features; IDM: one class's at a time
            real_feat: gpu.zeros("real_feat", if is_idm { per_real * dim } else { classes * per_real * dim })?,
            syn_aug: gpu.zeros("syn_aug", dm_len(m * img))?,
            syn_params: gpu.zeros("syn_params", dm_len(m * 8))?,
            syn_scratch: gpu.zeros("syn_scratch", dm_len(m))?,
            chunks,
            syn_feat: gpu.zeros("syn_feat", dm_len(m * dim))?,
            d_syn_feat: gpu.zeros("d_syn_feat", dm_len(m * dim))?,
            d_syn_aug: gpu.zeros("d_syn_aug", dm_len(m * img))?,
            d_syn: gpu.zeros("d_syn", m * img)?,
            dm_sq: gpu.zeros("dm_sq", classes * dim)?,
            dm_loss: gpu.zeros("dm_loss", classes)?,
            hdd: lorentz::gpu::HddBuffers::new(gpu, &if is_idm { lorentz::gpu::HddShape { classes: 1, per_real: 1, per_syn: 1, dim: 1 } } else { hdd_shape })?,
            net,
            net_cfg,
            rng_net,
            rng_dsa: rng::stream(cfg.seed, "dsa"),
            rng_real: rng::stream(cfg.seed, "real-batches"),
            iteration: 0,
            bind_groups: Default::default(),
            idm,
            dance,
            cfg,
        })
    }

    /// DANCE's experts trained in memory (no directory to keep them in: `run` saves and reuses them instead).
    #[cfg(not(target_arch = "wasm32"))]
    fn train_experts(gpu: &Gpu, ds: &Dataset, cfg: &DistillConfig) -> Result<Vec<crate::experts::Expert>, anyhow::Error> {
        let d = &cfg.dance;
        let recipe = crate::experts::ExpertRecipe { width: cfg.width, epochs: d.expert_epochs, batch: d.expert_batch, seed: cfg.seed };
        Ok(crate::experts::load_or_train(gpu, ds, None, d.experts, &recipe, &mut |_, _| {})?.0)
    }

    #[cfg(target_arch = "wasm32")]
    fn train_experts(_gpu: &Gpu, _ds: &Dataset, _cfg: &DistillConfig) -> Result<Vec<crate::experts::Expert>, anyhow::Error> {
        anyhow::bail!("DANCE needs experts trained on the real data; train them with the native CLI")
    }

    pub fn synthetic_labels(&self) -> Vec<u32> {
        (0..self.classes).flat_map(|c| std::iter::repeat_n(c as u32, self.cfg.ipc)).collect()
    }

    /// Real batches for every class into `real_all`: batch_real distinct images per class.
    fn sample_real_batches(&mut self, ds: &Dataset) {
        let mut real_host = Vec::with_capacity(self.classes * self.per_real * self.img);
        let pool = &mut self.pool;
        for idx in &self.class_idx {
            // refill from the original order, then a partial Fisher–Yates: b distinct images, no allocation
            pool.clear();
            pool.extend_from_slice(idx);
            for i in 0..self.per_real {
                let j = self.rng_real.random_range(i..pool.len());
                pool.swap(i, j);
            }
            real_host.extend(ds.normalized(&ds.train, &pool[..self.per_real]));
        }
        self.gpu.write(&self.real_all, &real_host);
    }

    /// Class c's real batch (in `real_all`) through its siamese augmentation and `net`, forward only, in chunks
    /// of at most `real_chunk` images; the features [batch_real, dim] go to `dst` from float `dst_off` on.
    /// `chain`: the augmentation's parameter buffers, one per op in order (DM, IDM: one); `tmps`: two scratch
    /// buffers of `real_chunk` images for a chain of more than one op.
    #[allow(clippy::too_many_arguments)]
    fn embed_real_class(&self, enc: &mut wgpu::CommandEncoder, net: &GpuConvNet, c: usize, ds: &Dataset, chain: &[&Buffer], tmps: [&Buffer; 2], dst: &Buffer, dst_off: usize) {
        let (b, img, dim) = (self.per_real, self.img, self.net_cfg.embed_dim());
        let mut start = 0;
        while start < b {
            let n = self.real_chunk.min(b - start);
            let ws = self.real_ws.iter().find(|ws| ws.n == n).expect("a workspace for every chunk size");
            copy_f32(enc, &self.real_all, (c * b + start) * img, &self.real_in, 0, n * img);
            // every image of the class shares one parameter set, so the first n entries serve any chunk
            augment::gpu::forward_chain(self.gpu, enc, n, ds.channels, ds.height, ds.width, &self.real_in, chain, tmps, &self.real_scratch, &ws.x);
            net.forward_only(self.gpu, enc, ws, false); // no backward on the real side
            copy_f32(enc, &ws.embed, 0, dst, dst_off + start * dim, n * dim);
            start += n;
        }
    }

    /// One distillation iteration (one submit).
    pub fn step(&mut self, ds: &Dataset) -> Result<(), GpuError> {
        if self.idm.is_some() {
            return self.step_idm(ds);
        }
        if self.dance.is_some() {
            return self.step_dance(ds);
        }
        let gpu = self.gpu;
        // every buffer below lives as long as the distiller: from the second iteration on, no bind group is created
        let _cache = self.bind_groups.activate();
        let (classes, ipc, b, img) = (self.classes, self.cfg.ipc, self.per_real, self.img);
        let dim = self.net_cfg.embed_dim();
        let (h, w, ch) = (ds.height, ds.width, ds.channels);

        // a fresh random network
        self.net.load(gpu, &ConvNetParams::init(&self.net_cfg, &mut self.rng_net));
        self.sample_real_batches(ds);
        // siamese DSA: one op and one parameter set per class, shared by its real and synthetic images
        let mut syn_params = Vec::with_capacity(classes * ipc);
        for c in 0..classes {
            let p = augment::draw_siamese(&self.ops, &mut self.rng_dsa, h, w);
            gpu.write(&self.real_params[c], &vec![p; b]);
            syn_params.extend(std::iter::repeat_n(p, ipc));
        }
        gpu.write(&self.syn_params, &syn_params);

        let mut enc = gpu.encoder();
        for c in 0..classes {
            self.embed_real_class(&mut enc, &self.net, c, ds, &[&self.real_params[c]], [&self.real_in, &self.real_in], &self.real_feat, c * b * dim);
        }
        let m = classes * ipc;
        augment::gpu::forward(gpu, &mut enc, m, ch, h, w, &self.syn, &self.syn_params, &self.syn_scratch, &self.syn_aug);
        for k in &self.chunks {
            copy_f32(&mut enc, &self.syn_aug, k.start * img, &k.ws.x, 0, k.n * img);
            self.net.forward(gpu, &mut enc, &k.ws, false);
            copy_f32(&mut enc, &k.ws.embed, 0, &self.syn_feat, k.start * dim, k.n * dim);
        }
        if self.cfg.method.hdd() {
            let shape = lorentz::gpu::HddShape { classes, per_real: b, per_syn: ipc, dim };
            lorentz::gpu::encode(gpu, &mut enc, &shape, &self.cfg.hyperbolic(), self.cfg.lambda, &self.real_feat, &self.syn_feat, &self.hdd, &self.d_syn_feat)
        } else {
            ops::dm_matching(gpu, &mut enc, classes, b, ipc, dim, 1.0, &self.real_feat, &self.syn_feat, &self.dm_sq, &self.dm_loss, &self.d_syn_feat)
        }
        for k in &self.chunks {
            copy_f32(&mut enc, &self.d_syn_feat, k.start * dim, &k.ws.d_embed, 0, k.n * dim);
            self.net.backward(gpu, &mut enc, &k.ws, Upstream::Embed, true, None);
            copy_f32(&mut enc, &k.ws.dx, 0, &self.d_syn_aug, k.start * img, k.n * img);
        }
        augment::gpu::backward(gpu, &mut enc, m, ch, h, w, &self.d_syn_aug, &self.syn_params, &self.syn_scratch, &self.d_syn);
        ops::sgd(gpu, &mut enc, m * img, self.cfg.lr_img, self.cfg.momentum_img, 0.0, &self.d_syn, &self.syn, &self.syn_mom);
        gpu.submit_wait(enc);
        self.iteration += 1;
        Ok(())
    }

    /// The last iteration's loss: (total, per class). DM: Σ_d (mean_r − mean_s)²; HDD: λ·d_c (and d_c is
    /// the per-class geodesic distance, returned as the second value divided by λ by `distances`).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn loss(&self) -> Result<(f32, Vec<f32>), GpuError> {
        let (buf, len) = self.loss_source();
        Ok(self.loss_from(&self.gpu.read_f32(buf, len)?))
    }

    /// Where the last loss lives on the GPU (buffer, f32 count), for batched read-backs; `loss_from` decodes it.
    /// (IDM: the matching term of each class's step, without the CE regulariser.)
    pub fn loss_source(&self) -> (&wgpu::Buffer, usize) {
        let n = if self.cfg.method.hdd() { self.classes * lorentz::gpu::COEF_STRIDE } else { self.classes };
        match (&self.idm, &self.dance, self.cfg.method.hdd()) {
            (Some(i), _, _) => (&i.loss_all, n),
            (_, Some(d), _) => (&d.loss_all, n),
            (None, None, false) => (&self.dm_loss, n),
            (None, None, true) => (&self.hdd.coef, n),
        }
    }

    pub fn loss_from(&self, raw: &[f32]) -> (f32, Vec<f32>) {
        let per_class: Vec<f32> = if self.cfg.method.hdd() {
            lorentz::gpu::distances_from(raw).iter().map(|d| d * self.cfg.lambda).collect()
        } else {
            raw.to_vec()
        };
        (per_class.iter().sum(), per_class)
    }

    /// ∂L/∂x of the last iteration, one f32 per synthetic pixel.
    pub fn pixel_grad(&self) -> &Buffer {
        &self.d_syn
    }

    /// Number of synthetic pixel values (the length of `syn` and of the pixel gradient `d_syn`).
    pub fn syn_len(&self) -> usize {
        self.classes * self.cfg.ipc * self.img
    }

    /// ‖∂L/∂x‖ per synthetic image, from a read-back copy of `pixel_grad` (the gradient the SGD step used).
    pub fn grad_norms_from(&self, d_syn: &[f32]) -> Vec<f32> {
        d_syn.chunks(self.img).map(|c| c.iter().map(|v| v * v).sum::<f32>().sqrt()).collect()
    }

    /// Everything a run needs to continue exactly: pixels, their momentum, the iteration, and the
    /// positions of the three random streams.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn checkpoint(&self) -> Result<Checkpoint, GpuError> {
        let n = self.syn_len();
        Ok(Checkpoint {
            iteration: self.iteration,
            syn: self.gpu.read_f32(&self.syn, n)?,
            momentum: self.gpu.read_f32(&self.syn_mom, n)?,
            rng_words: [self.rng_net.get_word_pos(), self.rng_dsa.get_word_pos(), self.rng_real.get_word_pos()],
            extra: match &self.idm {
                Some(i) => i.state(self.gpu)?,
                None => vec![],
            },
            extra_words: match (&self.idm, &self.dance) {
                (Some(i), _) => vec![i.rng_word()],
                (_, Some(d)) => vec![d.rng_word()],
                _ => vec![],
            },
        })
    }

    pub fn restore(&mut self, ck: &Checkpoint) -> Result<(), String> {
        let n = self.syn_len();
        if ck.syn.len() != n || ck.momentum.len() != n {
            return Err(format!("checkpoint holds {} values, this run needs {n}", ck.syn.len()));
        }
        self.gpu.write(&self.syn, &ck.syn);
        self.gpu.write(&self.syn_mom, &ck.momentum);
        self.rng_net.set_word_pos(ck.rng_words[0]);
        self.rng_dsa.set_word_pos(ck.rng_words[1]);
        self.rng_real.set_word_pos(ck.rng_words[2]);
        if let Some(i) = &mut self.idm {
            let word = *ck.extra_words.first().ok_or("the checkpoint has no IDM state (written by a DM run?)")?;
            i.restore(self.gpu, &ck.extra, word)?;
        }
        if let Some(d) = &mut self.dance {
            d.set_rng_word(*ck.extra_words.first().ok_or("the checkpoint has no DANCE state (written by another method?)")?);
        }
        self.iteration = ck.iteration;
        Ok(())
    }

    /// The synthetic images (normalised space) and their labels, as stored (IDM: mosaics).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn synthetic(&self) -> Result<(Vec<f32>, Vec<u32>), GpuError> {
        Ok((self.gpu.read_f32(&self.syn, self.syn_len())?, self.synthetic_labels()))
    }

    /// What an evaluation trains on: the stored set, or with IDM's mosaic its 4× expansion.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn eval_set(&self, channels: usize, h: usize, w: usize) -> Result<(Vec<f32>, Vec<u32>), GpuError> {
        let (images, labels) = self.synthetic()?;
        Ok(if self.cfg.uses_mosaic() { crate::mosaic::expand_set(&images, &labels, channels, h, w) } else { (images, labels) })
    }

    /// Number of nets in IDM's queue (0 for DM).
    pub fn queue_len(&self) -> usize {
        self.idm.as_ref().map_or(0, idm::Idm::queue_len)
    }
}
