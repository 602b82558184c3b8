//! distill::core: what every method shares — the synthetic images of the classes distilled here and their momentum,
//! the pixel gradient, each iteration's real batches and their embedding through a network, the iteration count, and
//! the random draws, each keyed by what it belongs to (`rng::keyed`): the network of iteration t, the real batch and
//! augmentation of class c at iteration t, the initial images of class c.

use rand::RngExt;
use wgpu::{Buffer, CommandEncoder};

use super::{copy_buffer, copy_f32, mosaic_init, DistillConfig, Init};
use crate::augment::{self, Op};
use crate::data::Dataset;
use crate::gpu::{BindGroupCache, Gpu, GpuError};
use crate::nn::convnet::{ConvNetConfig, ConvNetParams, GpuConvNet, Workspace};
use crate::rng::{self, ChaCha8Rng};
use crate::shapes::ImageShape;

pub struct Core<'g> {
    pub gpu: &'g Gpu,
    pub cfg: DistillConfig,
    pub net_cfg: ConvNetConfig,
    /// Classes of the dataset (the network's outputs).
    pub classes: usize,
    /// The classes distilled here, ascending (all of them unless the run is a shard); slot i of every per-class
    /// buffer holds class `owned[i]`.
    pub owned: Vec<usize>,
    /// Real images per class per iteration: min(batch_real, smallest class of the whole dataset).
    pub per_real: usize,
    pub img: ImageShape,
    class_idx: Vec<Vec<usize>>,
    /// Scratch for sampling real batches (reused every iteration).
    pool: Vec<usize>,
    /// The training-split indices of the last real batches [owned, per_real] (a trace writes them).
    pub real_indices: Vec<usize>,
    pub ops: Vec<Op>,
    /// Synthetic pixels [owned·ipc, C, H, W] in the normalised space, class-major.
    pub syn: Buffer,
    pub syn_mom: Buffer,
    /// ∂L/∂x of the last iteration, one f32 per synthetic pixel (IDM and DANCE: each class's own step's gradient).
    pub d_syn: Buffer,
    /// The network of the iteration (DM: a fresh random one; DANCE: the interpolated expert encoder).
    pub net: GpuConvNet,
    /// Every owned class's real batch [owned, per_real, C, H, W] (copied from, never bound).
    pub real_all: Buffer,
    real_in: Buffer,
    /// Real batches go through the net in chunks the storage-binding limit allows: a workspace per chunk size
    /// (full chunks and the remainder), so a class's batch_real may exceed one binding (IDM's 5000 at IPC 1).
    real_ws: Vec<Workspace>,
    pub real_chunk: usize,
    real_scratch: Buffer,
    /// Images one storage binding holds (of the largest activation): the most a workspace may take at once.
    pub max_chunk: usize,
    pub iteration: usize,
    pub bind_groups: std::sync::Arc<BindGroupCache>,
    /// Divergence detection, u32 [2]: the first iteration after which a synthetic pixel was NaN or infinite
    /// (u32::MAX: none yet), and the iteration being run (`ops::check_finite`).
    pub health: Buffer,
}

impl<'g> Core<'g> {
    /// The initial synthetic set and every shared buffer, for a validated `cfg`.
    pub fn new(gpu: &'g Gpu, ds: &Dataset, cfg: DistillConfig) -> Result<Self, anyhow::Error> {
        let classes = ds.classes.len();
        let owned = cfg.owned_classes(classes);
        let class_idx = ds.class_indices(&ds.train);
        // the smallest class of the whole dataset, also where only some classes were loaded (a shard)
        let per_real = cfg.batch_real.min(ds.train_counts().into_iter().min().unwrap_or(1));
        let net_cfg = ConvNetConfig::new(ds.shape(), cfg.width, classes)?;
        let img = ds.shape();
        let m = owned.len() * cfg.ipc;
        let syn_host = initial_images(ds, &class_idx, &owned, &cfg);
        // chunks of the synthetic set small enough for the storage-binding limit
        let per_image_bytes = (net_cfg.conv_shapes(1)[0].y_len() * 4) as u64; // the largest activation
        let max_chunk = ((gpu.max_binding_bytes() / per_image_bytes.max(1)) as usize).max(1);
        let real_chunk = per_real.min(max_chunk);
        let net = GpuConvNet::new(gpu, &ConvNetParams::init(&net_cfg, &mut rng::stream(cfg.seed, "net-shape")))?;
        Ok(Core {
            gpu,
            classes,
            per_real,
            img,
            pool: Vec::with_capacity(class_idx.iter().map(Vec::len).max().unwrap_or(0)),
            real_indices: Vec::with_capacity(owned.len() * per_real),
            class_idx,
            ops: cfg.ops()?,
            syn: gpu.upload("syn", &syn_host)?,
            syn_mom: gpu.zeros("syn_mom", m * img.len())?,
            d_syn: gpu.zeros("d_syn", m * img.len())?,
            real_all: copy_buffer(gpu, "real_all", owned.len() * per_real * img.len()),
            real_in: gpu.zeros("real_in", real_chunk * img.len())?,
            real_ws: [real_chunk, per_real % real_chunk].iter().filter(|&&n| n > 0).map(|&n| net.workspace(gpu, n)).collect::<Result<_, _>>()?,
            real_chunk,
            real_scratch: gpu.zeros("real_scratch", real_chunk)?,
            max_chunk,
            net,
            net_cfg,
            owned,
            iteration: 0,
            bind_groups: Default::default(),
            health: gpu.upload("health", &[u32::MAX, 0])?,
            cfg,
        })
    }

    /// The generator of `purpose` keyed by `keys` under the run's seed (e.g. ("real", [t, c])).
    pub fn rng(&self, purpose: &str, keys: &[usize]) -> ChaCha8Rng {
        let keys: Vec<u64> = keys.iter().map(|&k| k as u64).collect();
        rng::keyed(self.cfg.seed, purpose, &keys)
    }

    /// The random network of iteration `t` (DM's per-iteration net, IDM's net pushed at t).
    pub fn net_params(&self, t: usize) -> ConvNetParams {
        ConvNetParams::init(&self.net_cfg, &mut self.rng("net", &[t]))
    }

    /// The siamese DSA parameters of class c at iteration t (one op, one parameter set for the class's real and
    /// synthetic images).
    pub fn siamese(&self, t: usize, c: usize) -> augment::AugParams {
        self.siamese_op(t, c).1
    }

    /// `siamese` with the op drawn (a trace names it).
    pub fn siamese_op(&self, t: usize, c: usize) -> (Option<Op>, augment::AugParams) {
        augment::draw_siamese_op(&self.ops, &mut self.rng("dsa", &[t, c]), self.img.h, self.img.w)
    }

    /// Synthetic images in the set.
    pub fn images(&self) -> usize {
        self.owned.len() * self.cfg.ipc
    }

    /// Number of synthetic pixel values (the length of `syn` and of the pixel gradient `d_syn`).
    pub fn syn_len(&self) -> usize {
        self.images() * self.img.len()
    }

    /// Feature length of the embedding.
    pub fn dim(&self) -> usize {
        self.net_cfg.embed_dim()
    }

    /// The pixels' optimiser: SGD with lr_img and momentum_img, no weight decay.
    pub fn pixel_sgd(&self) -> crate::nn::ops::Sgd {
        crate::nn::ops::Sgd { lr: self.cfg.lr_img, momentum: self.cfg.momentum_img, weight_decay: 0.0 }
    }

    /// Per-slot parameter buffers of a siamese augmentation of the real batch: [per_real, 8] each.
    pub fn real_params(&self) -> Result<Vec<Buffer>, GpuError> {
        self.owned.iter().map(|_| self.gpu.zeros("real_params", self.per_real * 8)).collect()
    }

    /// The real batches of iteration `t` into `real_all`: batch_real distinct images of each owned class, drawn
    /// from the class's own stream.
    pub fn sample_real_batches(&mut self, ds: &Dataset, t: usize) {
        let mut real_host = Vec::with_capacity(self.owned.len() * self.per_real * self.img.len());
        self.real_indices.clear();
        for &c in &self.owned {
            let mut r = rng::keyed(self.cfg.seed, "real", &[t as u64, c as u64]);
            // refill from the original order, then a partial Fisher–Yates: b distinct images, no allocation
            self.pool.clear();
            self.pool.extend_from_slice(&self.class_idx[c]);
            for i in 0..self.per_real {
                let j = r.random_range(i..self.pool.len());
                self.pool.swap(i, j);
            }
            real_host.extend(ds.normalized(&ds.train, &self.pool[..self.per_real]));
            self.real_indices.extend_from_slice(&self.pool[..self.per_real]);
        }
        self.gpu.write(&self.real_all, &real_host);
    }

    /// The real batch of slot `slot` (in `real_all`) through its siamese augmentation and `net`, forward only, in
    /// chunks of at most `real_chunk` images; the features [batch_real, dim] go to `dst` from float `dst_off` on.
    /// `chain`: the augmentation's parameter buffers, one per op in order (DM, IDM: one); `tmps`: two scratch
    /// buffers of `real_chunk` images for a chain of more than one op (else any two buffers).
    pub fn embed_real_class(&self, enc: &mut CommandEncoder, net: &GpuConvNet, slot: usize, chain: &[&Buffer], tmps: [&Buffer; 2], dst: (&Buffer, usize)) {
        let (b, img, dim) = (self.per_real, self.img.len(), self.dim());
        let mut start = 0;
        while start < b {
            let n = self.real_chunk.min(b - start);
            let ws = self.real_ws.iter().find(|ws| ws.n == n).expect("a workspace for every chunk size");
            copy_f32(enc, &self.real_all, (slot * b + start) * img, &self.real_in, 0, n * img);
            // every image of the class shares one parameter set, so the first n entries serve any chunk
            augment::gpu::forward_chain(self.gpu, enc, n, self.img, &self.real_in, chain, tmps, &self.real_scratch, &ws.x);
            net.forward_only(self.gpu, enc, ws, false); // no backward on the real side
            copy_f32(enc, &ws.embed, 0, dst.0, dst.1 + start * dim, n * dim);
            start += n;
        }
    }

    /// `embed_real_class` with one augmentation op (DM and IDM).
    pub fn embed_real_siamese(&self, enc: &mut CommandEncoder, net: &GpuConvNet, slot: usize, params: &Buffer, dst: (&Buffer, usize)) {
        self.embed_real_class(enc, net, slot, &[params], [&self.real_in, &self.real_in], dst);
    }

    /// The labels of the stored set: class-major, ipc per owned class.
    pub fn labels(&self) -> Vec<u32> {
        self.owned.iter().flat_map(|&c| std::iter::repeat_n(c as u32, self.cfg.ipc)).collect()
    }
}

/// The initial synthetic set: per owned class, ipc distinct random real images (or their 2×2 mosaics, or noise),
/// drawn from the class's own stream.
fn initial_images(ds: &Dataset, class_idx: &[Vec<usize>], owned: &[usize], cfg: &DistillConfig) -> Vec<f32> {
    let mosaic = cfg.uses_mosaic() && cfg.init == Init::Real;
    let mut syn = Vec::with_capacity(owned.len() * cfg.ipc * ds.image_len());
    for &c in owned {
        let mut r = rng::keyed(cfg.seed, "init", &[c as u64]);
        let idx = &class_idx[c];
        if mosaic {
            syn.extend(mosaic_init(ds, idx, cfg, &mut r));
            continue;
        }
        match cfg.init {
            Init::Real => {
                let mut pool = idx.clone();
                for i in 0..cfg.ipc {
                    let j = r.random_range(i..pool.len());
                    pool.swap(i, j);
                }
                syn.extend(ds.normalized(&ds.train, &pool[..cfg.ipc]));
            }
            Init::Noise => {
                for _ in 0..cfg.ipc * ds.image_len() {
                    // Box–Muller
                    let (u1, u2): (f32, f32) = (r.random::<f32>().max(1e-12), r.random());
                    syn.push((-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos());
                }
            }
        }
    }
    syn
}
