//! distill: learning the synthetic images. `Distiller { core, method }`: the core every method shares (images,
//! momentum, random streams, real batches: `core`), and the state of the one method that runs — DM (`dm`), IDM
//! (`idm`) or DANCE (`dance`), each with DM's or HDD's matching term (`matching`); IDM and DANCE share their
//! class-by-class buffers (`per_class`). What a run is asked to do, and the metadata of its sets, is `config`.
//!
//! Every iteration is one command buffer and one submit, with nothing read back: the loss and the pixels stay on
//! the GPU until someone asks for them.

use wgpu::Buffer;

use crate::data::Dataset;
use crate::gpu::{Gpu, GpuError};
use crate::rng::ChaCha8Rng;

pub mod config;
mod core;
mod dance;
mod dm;
mod idm;
mod matching;
mod per_class;
pub mod trace;

pub use config::{DanceConfig, DistillConfig, IdmConfig, Init, Method, SetMetadata};
pub use dance::DANCE_OPS;
pub use idm::INITIAL_NETS as IDM_INITIAL_NETS;

use self::core::Core;
use matching::Matching;

/// The state of a run between iterations. Every random draw is keyed by iteration and class (`rng::keyed`), so no
/// stream position needs keeping: the iteration says where the draws continue.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub iteration: usize,
    /// The classes whose images these are (all of them, or a shard's).
    pub classes: Vec<usize>,
    pub syn: Vec<f32>,
    pub momentum: Vec<f32>,
    /// Method state beyond the pixels (IDM: every queue net's parameters, momentum and accuracy meter, oldest
    /// first, named `queue{i}.param{t}`, `queue{i}.momentum{t}`, `queue{i}.meter`).
    pub extra: Vec<(String, Vec<f32>)>,
}

/// The state of the method that runs.
enum MethodState {
    Dm(dm::Dm),
    Idm(idm::Idm),
    Dance(dance::Dance),
}

pub struct Distiller<'g> {
    core: Core<'g>,
    method: MethodState,
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

/// Copy `n` floats from `src` at float `src_off` to `dst` at float `dst_off`.
pub fn copy_f32(enc: &mut wgpu::CommandEncoder, src: &Buffer, src_off: usize, dst: &Buffer, dst_off: usize, n: usize) {
    enc.copy_buffer_to_buffer(src, (src_off * 4) as u64, dst, (dst_off * 4) as u64, (n * 4) as u64);
}

/// One class's initial images with a mosaic: each stored image holds four distinct random real images of the class
/// (fewer distinct ones only when the class is smaller than 4·ipc), each downscaled ×0.5 — by box filter for IDM's
/// partition, by nearest neighbour for DANCE's multi-formation (IDC's 'mix' initialisation).
fn mosaic_init(ds: &Dataset, idx: &[usize], cfg: &DistillConfig, rng: &mut ChaCha8Rng) -> Vec<f32> {
    use rand::RngExt;
    let compose = if cfg.method.dance() { crate::mosaic::compose_nearest } else { crate::mosaic::compose };
    let (img, ipc) = (ds.image_len(), cfg.ipc);
    let mut out = Vec::with_capacity(ipc * img);
    let mut pool = idx.to_vec();
    let want = (4 * ipc).min(pool.len());
    for i in 0..want {
        let j = rng.random_range(i..pool.len());
        pool.swap(i, j);
    }
    let picks: Vec<usize> = (0..4 * ipc).map(|i| pool[i % want]).collect();
    let imgs = ds.normalized(&ds.train, &picks);
    for k in 0..ipc {
        let q = |j: usize| &imgs[(4 * k + j) * img..(4 * k + j + 1) * img];
        out.extend(compose([q(0), q(1), q(2), q(3)], ds.channels, ds.height, ds.width));
    }
    out
}

impl<'g> Distiller<'g> {
    /// A distiller for `cfg`. DANCE trains its experts here, in memory (`run` and `with_experts` reuse saved ones).
    pub fn new(gpu: &'g Gpu, ds: &Dataset, cfg: DistillConfig) -> Result<Self, anyhow::Error> {
        Self::with_experts(gpu, ds, cfg, None)
    }

    /// As `new`, with DANCE's experts given (ignored by the other methods).
    pub fn with_experts(gpu: &'g Gpu, ds: &Dataset, cfg: DistillConfig, experts: Option<Vec<crate::experts::Expert>>) -> Result<Self, anyhow::Error> {
        cfg.validate(ds)?;
        let experts = match (cfg.method.dance(), experts) {
            (false, _) => vec![],
            (true, Some(e)) if !e.is_empty() => e,
            (true, _) => train_experts(gpu, ds, &cfg)?,
        };
        let method_name = cfg.method.name();
        let core = Core::new(gpu, ds, cfg)?;
        let method = if core.cfg.method.idm() {
            MethodState::Idm(idm::Idm::new(&core, ds)?)
        } else if core.cfg.method.dance() {
            MethodState::Dance(dance::Dance::new(&core, ds, experts)?)
        } else {
            MethodState::Dm(dm::Dm::new(&core)?)
        };
        let d = Distiller { core, method };
        if let Some(pc) = d.per_class() {
            if pc.per_syn > d.core.max_chunk {
                anyhow::bail!("{method_name} embeds {} synthetic images per class at once, more than this adapter's storage binding allows ({})", pc.per_syn, d.core.max_chunk);
            }
        }
        Ok(d)
    }

    /// The class-by-class buffers (IDM, DANCE).
    fn per_class(&self) -> Option<&per_class::PerClass> {
        match &self.method {
            MethodState::Dm(_) => None,
            MethodState::Idm(i) => Some(&i.class),
            MethodState::Dance(d) => Some(&d.class),
        }
    }

    /// One distillation iteration (one submit).
    pub fn step(&mut self, ds: &Dataset) -> Result<(), GpuError> {
        self.step_with(ds, None)
    }

    /// `step`, with IDM's copies for a trace taken on the way (`trace`).
    fn step_with(&mut self, ds: &Dataset, idm_trace: Option<&idm::IdmTrace>) -> Result<(), GpuError> {
        let gpu = self.core.gpu;
        // every buffer an iteration binds lives as long as the distiller: from the second iteration on, no bind
        // group is created
        let _cache = self.core.bind_groups.activate();
        let mut enc = gpu.encoder();
        // the iteration this step completes, which `check_finite` records if it leaves a pixel NaN or infinite
        gpu.write_at(&self.core.health, 4, &[(self.core.iteration + 1) as u32]);
        match &mut self.method {
            MethodState::Dm(m) => m.encode(&mut self.core, ds, &mut enc),
            MethodState::Idm(m) => m.encode(&mut self.core, ds, &mut enc, idm_trace)?,
            MethodState::Dance(m) => m.encode(&mut self.core, ds, &mut enc),
        }
        crate::nn::ops::check_finite(gpu, &mut enc, self.core.syn_len(), &self.core.syn, &self.core.health);
        gpu.submit_wait(enc);
        self.core.iteration += 1;
        Ok(())
    }

    pub fn cfg(&self) -> &DistillConfig {
        &self.core.cfg
    }

    /// Iterations done.
    pub fn iteration(&self) -> usize {
        self.core.iteration
    }

    /// Real images per class per iteration: min(batch_real, smallest class).
    pub fn per_real(&self) -> usize {
        self.core.per_real
    }

    /// Synthetic pixels [classes·ipc, C, H, W] in the normalised space, class-major.
    pub fn syn(&self) -> &Buffer {
        &self.core.syn
    }

    /// The matching term of the method that runs (one class's, for the class-by-class methods).
    fn matching(&self) -> &Matching {
        match &self.method {
            MethodState::Dm(m) => &m.matching,
            MethodState::Idm(m) => &m.class.matching,
            MethodState::Dance(m) => &m.class.matching,
        }
    }

    /// The last iteration's loss: (total, per class). DM: Σ_d (mean_r − mean_s)²; HDD: λ·d_c (d_c the per-class
    /// geodesic distance). IDM and DANCE: the matching term of each class's step, without the CE terms.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn loss(&self) -> Result<(f32, Vec<f32>), GpuError> {
        let (buf, len) = self.loss_source();
        Ok(self.loss_from(&self.core.gpu.read_f32(buf, len)?))
    }

    /// Where the last loss lives on the GPU (buffer, f32 count), for batched read-backs; `loss_from` decodes it.
    pub fn loss_source(&self) -> (&Buffer, usize) {
        let stride = self.matching().loss().1;
        let buf = match &self.method {
            MethodState::Dm(m) => m.matching.loss().0,
            MethodState::Idm(m) => &m.class.loss_all,
            MethodState::Dance(m) => &m.class.loss_all,
        };
        (buf, self.core.owned.len() * stride)
    }

    /// Where the divergence flag lives (buffer, f32-sized words), for reading it back with the loss; `diverged_at`
    /// decodes it.
    pub fn health_source(&self) -> (&Buffer, usize) {
        (&self.core.health, 2)
    }

    /// The iteration after which a synthetic pixel first became NaN or infinite, from a read-back copy of
    /// `health_source` (None: every pixel has stayed finite).
    pub fn diverged_at(raw: &[f32]) -> Option<usize> {
        raw.first().map(|w| w.to_bits()).filter(|&b| b != u32::MAX).map(|b| b as usize)
    }

    pub fn loss_from(&self, raw: &[f32]) -> (f32, Vec<f32>) {
        let per_class = self.matching().per_class(raw);
        (per_class.iter().sum(), per_class)
    }

    /// ∂L/∂x of the last iteration, one f32 per synthetic pixel.
    pub fn pixel_grad(&self) -> &Buffer {
        &self.core.d_syn
    }

    /// Number of synthetic pixel values (the length of `syn` and of the pixel gradient `d_syn`).
    pub fn syn_len(&self) -> usize {
        self.core.syn_len()
    }

    /// ‖∂L/∂x‖ per synthetic image, from a read-back copy of `pixel_grad` (the gradient the SGD step used).
    pub fn grad_norms_from(&self, d_syn: &[f32]) -> Vec<f32> {
        d_syn.chunks(self.core.img.len()).map(|c| c.iter().map(|v| v * v).sum::<f32>().sqrt()).collect()
    }

    pub fn synthetic_labels(&self) -> Vec<u32> {
        self.core.labels()
    }

    /// Everything a run needs to continue exactly: pixels, their momentum, the iteration, and the
    /// positions of the random streams (with IDM's queue).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn checkpoint(&self) -> Result<Checkpoint, GpuError> {
        let (gpu, n) = (self.core.gpu, self.syn_len());
        let extra = match &self.method {
            MethodState::Idm(i) => i.state(gpu)?,
            MethodState::Dm(_) | MethodState::Dance(_) => vec![],
        };
        Ok(Checkpoint {
            iteration: self.core.iteration,
            classes: self.core.owned.clone(),
            syn: gpu.read_f32(&self.core.syn, n)?,
            momentum: gpu.read_f32(&self.core.syn_mom, n)?,
            extra,
        })
    }

    pub fn restore(&mut self, ck: &Checkpoint) -> Result<(), anyhow::Error> {
        let n = self.syn_len();
        if ck.classes != self.core.owned {
            anyhow::bail!("the checkpoint holds classes {:?}, this run distills {:?}", ck.classes, self.core.owned);
        }
        if ck.syn.len() != n || ck.momentum.len() != n {
            anyhow::bail!("checkpoint holds {} values, this run needs {n}", ck.syn.len());
        }
        let gpu = self.core.gpu;
        gpu.write(&self.core.syn, &ck.syn);
        gpu.write(&self.core.syn_mom, &ck.momentum);
        if let MethodState::Idm(i) = &mut self.method {
            i.restore(gpu, &ck.extra)?;
        }
        self.core.iteration = ck.iteration;
        Ok(())
    }

    /// The synthetic images (normalised space) and their labels, as stored (IDM, DANCE: mosaics).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn synthetic(&self) -> Result<(Vec<f32>, Vec<u32>), GpuError> {
        Ok((self.core.gpu.read_f32(&self.core.syn, self.syn_len())?, self.synthetic_labels()))
    }

    /// What an evaluation trains on: the stored set, or with a mosaic its 4× expansion.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn eval_set(&self) -> Result<(Vec<f32>, Vec<u32>), GpuError> {
        let (images, labels) = self.synthetic()?;
        Ok(crate::mosaic::evaluation_set(images, labels, self.core.img, self.core.cfg.uses_mosaic()))
    }

    /// Number of nets in IDM's queue (0 for the other methods).
    pub fn queue_len(&self) -> usize {
        match &self.method {
            MethodState::Idm(i) => i.queue_len(),
            _ => 0,
        }
    }
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
