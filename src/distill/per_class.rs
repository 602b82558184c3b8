//! distill::per_class: what the class-by-class methods (IDM, DANCE) share — one class's images taken out of the set
//! and expanded (the 2×2 mosaic, when on), their features and gradients, the class's matching term, and the step
//! that puts the class's gradient back and moves the pixels.

use wgpu::{Buffer, CommandEncoder};

use super::copy_f32;
use super::core::Core;
use super::matching::{Matching, LOSS_STRIDE};
use crate::gpu::GpuError;
use crate::mosaic;
use crate::nn::convnet::Workspace;
use crate::shapes::MatchShape;

pub struct PerClass {
    /// Images of one class in matching [e = per_syn]: 4·ipc with the mosaic, else ipc.
    pub per_syn: usize,
    pub mosaic: bool,
    /// The term for one class: real [per_real, dim] against synthetic [per_syn, dim].
    pub shape: MatchShape,
    /// One class's stored images [ipc, …] and their expansion [e, …].
    syn_c: Buffer,
    pub exp: Buffer,
    pub exp_scratch: Buffer,
    /// The network's activations for the class's e images (input, features, logits and their gradients).
    pub syn_ws: Workspace,
    /// Per slot: e labels of its class (the CE terms).
    pub syn_labels: Vec<Buffer>,
    pub d_exp: Buffer,
    pub d_syn_c: Buffer,
    /// The step's gradient: zero outside the class being stepped [classes·ipc, …].
    d_step: Buffer,
    pub ce_loss: Buffer,
    /// The class's real features [per_real, dim].
    pub real_feat: Buffer,
    pub matching: Matching,
    /// Per-slot matching terms of the last iteration [owned, LOSS_STRIDE].
    pub loss_all: Buffer,
}

impl PerClass {
    pub fn new(core: &Core, mosaic: bool) -> Result<Self, GpuError> {
        let gpu = core.gpu;
        let (ipc, img, dim) = (core.cfg.ipc, core.img.len(), core.dim());
        let per_syn = if mosaic { 4 * ipc } else { ipc };
        let shape = MatchShape { classes: 1, per_real: core.per_real, per_syn, dim };
        // DANCE's DM term is the mean squared error of the feature means: DM's sum over dimensions divided by D
        let dm_scale = if core.cfg.method.dance() { 1.0 / dim as f32 } else { 1.0 };
        Ok(PerClass {
            per_syn,
            mosaic,
            shape,
            syn_c: gpu.zeros("class_syn", ipc * img)?,
            exp: gpu.zeros("class_exp", per_syn * img)?,
            exp_scratch: gpu.zeros("class_exp_scratch", per_syn)?,
            syn_ws: core.net.workspace(gpu, per_syn)?,
            syn_labels: core.owned.iter().map(|&c| gpu.upload("class_labels", &vec![c as u32; per_syn])).collect::<Result<_, _>>()?,
            d_exp: gpu.zeros("class_d_exp", per_syn * img)?,
            d_syn_c: gpu.zeros("class_d_syn", ipc * img)?,
            d_step: gpu.zeros("class_d_step", core.images() * img)?,
            ce_loss: gpu.zeros("class_ce_loss", per_syn)?,
            real_feat: gpu.zeros("class_real_feat", core.per_real * dim)?,
            matching: Matching::new(gpu, &shape, dm_scale, core.cfg.method.hdd().then(|| (core.cfg.lambda, core.cfg.hdd())))?,
            loss_all: gpu.zeros("class_loss_all", core.owned.len() * LOSS_STRIDE)?,
        })
    }

    /// Floats of one class's stored images.
    fn chunk(core: &Core) -> usize {
        core.cfg.ipc * core.img.len()
    }

    /// The stored images of slot `slot` → `exp` (split and upsampled ×2 with the mosaic, else copied).
    pub fn expand(&self, core: &Core, enc: &mut CommandEncoder, slot: usize) {
        let chunk = Self::chunk(core);
        copy_f32(enc, &core.syn, slot * chunk, &self.syn_c, 0, chunk);
        if self.mosaic {
            mosaic::gpu::expand(core.gpu, enc, core.cfg.ipc, core.img, &self.syn_c, &self.exp);
        } else {
            copy_f32(enc, &self.syn_c, 0, &self.exp, 0, chunk);
        }
    }

    /// The matching term of slot `slot` on `real_feat` and the class's features, its gradient into `syn_ws.d_embed`,
    /// its value into that slot of `loss_all`.
    pub fn match_class(&self, core: &Core, enc: &mut CommandEncoder, slot: usize) {
        self.matching.encode(core.gpu, enc, &self.shape, &self.real_feat, &self.syn_ws.embed, &self.syn_ws.d_embed);
        self.matching.record_class(enc, slot, &self.loss_all);
    }

    /// `d_exp` (the gradient on the expanded images) → through the mosaic's adjoint into `d_syn_c` → a step's gradient
    /// that is zero outside slot `slot`, in `d_step` (returned for the optimiser).
    pub fn contract(&self, core: &Core, enc: &mut CommandEncoder, slot: usize) -> &Buffer {
        let chunk = Self::chunk(core);
        if self.mosaic {
            mosaic::gpu::expand_backward(core.gpu, enc, core.cfg.ipc, core.img, &self.d_exp, &self.d_syn_c);
        } else {
            copy_f32(enc, &self.d_exp, 0, &self.d_syn_c, 0, chunk);
        }
        enc.clear_buffer(&self.d_step, 0, None);
        copy_f32(enc, &self.d_syn_c, 0, &self.d_step, slot * chunk, chunk);
        &self.d_step
    }

    /// A step's gradient that is zero everywhere: the step of a class distilled in another shard, which moves the
    /// pixels here by their momentum alone, as the unsplit run's step of that class does.
    pub fn zero_step(&self, enc: &mut CommandEncoder) -> &Buffer {
        enc.clear_buffer(&self.d_step, 0, None);
        &self.d_step
    }

    /// Keep slot `slot`'s gradient in the pixel gradient that is displayed (`Core::d_syn`).
    pub fn show_gradient(&self, core: &Core, enc: &mut CommandEncoder, slot: usize) {
        let chunk = Self::chunk(core);
        copy_f32(enc, &self.d_syn_c, 0, &core.d_syn, slot * chunk, chunk);
    }
}
