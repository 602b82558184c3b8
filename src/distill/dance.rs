//! distill::dance: DANCE and DANCE+HDD (method.md §4.2, §6.10): one iteration = pick one of the first num_premodel
//! experts and λ ~ U(0, 1), load the middle encoder θ = λ·θ_init + (1 − λ)·θ_final → per class: the class's real batch
//! and its expanded synthetic images through IDC's DiffAug (color, crop, cutout in sequence, one parameter set shared
//! by both sides), matching term (the MSE of the feature means, or λ_H·d_L for DANCE+HDD), backward, a pixel step →
//! calibration: per class CE(θ_final(aug(syn_c)), c) and a pixel step → clamp the pixels to [0, 1]. The pixels are
//! kept in the normalised space; DANCE's pixel-space learning rate becomes lr/std_c² per channel and its [0, 1]
//! box [−mean_c/std_c, (1 − mean_c)/std_c]. One command buffer, one submit, no read-back.

use rand::RngExt;
use wgpu::{Buffer, CommandEncoder};

use super::core::Core;
use super::per_class::PerClass;
use crate::augment::{self, Op};
use crate::data::Dataset;
use crate::experts::Expert;
use crate::gpu::GpuError;
use crate::nn::convnet::{GpuConvNet, Upstream};
use crate::nn::ops;

/// IDC's DiffAug for DANCE's matching and calibration: color and cutout always, crop between them.
pub const DANCE_OPS: [Op; 3] = [Op::Color, Op::Crop, Op::Cutout];

/// DANCE's state: the experts, the trained expert's network, the augmentation chains and the class-by-class buffers.
pub struct Dance {
    experts: Vec<Expert>,
    fin_net: GpuConvNet,
    /// Per class and op: the matching parameters of the real side [b, 8] and the synthetic side [e, 8], and the
    /// calibration parameters [e, 8] of every calibration pass.
    real_params: Vec<Vec<Buffer>>,
    syn_params: Vec<Vec<Buffer>>,
    calib_params: Vec<Vec<Vec<Buffer>>>,
    real_tmp: [Buffer; 2],
    exp_tmp: [Buffer; 2],
    pub class: PerClass,
    /// Per channel: the learning rate in the normalised space and the [0, 1] box there.
    lrs: Vec<f32>,
    lo: Vec<f32>,
    hi: Vec<f32>,
}

impl Dance {
    pub fn new(core: &Core, ds: &Dataset, experts: Vec<Expert>) -> Result<Self, GpuError> {
        let gpu = core.gpu;
        let d = &core.cfg;
        let class = PerClass::new(core, d.dance.mosaic)?;
        let (b, e, img) = (core.per_real, class.per_syn, core.img.len());
        let fin_net = GpuConvNet::new(gpu, &experts[0].fin)?;
        let params = |n: usize| -> Result<Vec<Buffer>, GpuError> { DANCE_OPS.iter().map(|_| gpu.zeros("dance_params", n * 8)).collect() };
        let std = &ds.std;
        Ok(Dance {
            real_params: core.owned.iter().map(|_| params(b)).collect::<Result<_, _>>()?,
            syn_params: core.owned.iter().map(|_| params(e)).collect::<Result<_, _>>()?,
            calib_params: (0..d.dance.iter_calib).map(|_| core.owned.iter().map(|_| params(e)).collect::<Result<_, _>>()).collect::<Result<_, _>>()?,
            real_tmp: [gpu.zeros("dance_real_tmp", core.real_chunk * img)?, gpu.zeros("dance_real_tmp", core.real_chunk * img)?],
            exp_tmp: [gpu.zeros("dance_exp_tmp", e * img)?, gpu.zeros("dance_exp_tmp", e * img)?],
            class,
            lrs: std.iter().map(|s| d.lr_img / (s * s)).collect(),
            lo: ds.mean.iter().zip(std).map(|(m, s)| -m / s).collect(),
            hi: ds.mean.iter().zip(std).map(|(m, s)| (1.0 - m) / s).collect(),
            fin_net,
            experts,
        })
    }

    /// The stored images of slot `slot` → expanded → augmented into `syn_ws.x`, with the given parameters per op.
    fn prepare(&self, core: &Core, enc: &mut CommandEncoder, slot: usize, params: &[Buffer]) {
        let cl = &self.class;
        cl.expand(core, enc, slot);
        let p: Vec<&Buffer> = params.iter().collect();
        augment::gpu::forward_chain(core.gpu, enc, cl.per_syn, core.img, &cl.exp, &p, [&self.exp_tmp[0], &self.exp_tmp[1]], &cl.exp_scratch, &cl.syn_ws.x);
    }

    /// `syn_ws.dx` → through the augmentation and the mosaic → a pixel step on all images (zero gradient outside the
    /// slot).
    fn step(&self, core: &Core, enc: &mut CommandEncoder, slot: usize, params: &[Buffer]) {
        let cl = &self.class;
        let p: Vec<&Buffer> = params.iter().collect();
        augment::gpu::backward_chain(core.gpu, enc, cl.per_syn, core.img, &cl.syn_ws.dx, &p, [&self.exp_tmp[0], &self.exp_tmp[1]], &cl.exp_scratch, &cl.d_exp);
        let d_step = cl.contract(core, enc, slot);
        self.pixel_step(core, enc, d_step);
    }

    /// The pixel step with `grad` (DANCE's learning rate per channel).
    fn pixel_step(&self, core: &Core, enc: &mut CommandEncoder, grad: &Buffer) {
        ops::sgd_channels(core.gpu, enc, core.syn_len(), core.img.plane(), &self.lrs, core.cfg.momentum_img, grad, &core.syn, &core.syn_mom);
    }

    /// One DANCE / DANCE+HDD iteration, recorded into `enc`.
    pub fn encode(&mut self, core: &mut Core, ds: &Dataset, enc: &mut CommandEncoder) {
        let gpu = core.gpu;
        let (classes, b, e, t) = (core.classes, core.per_real, self.class.per_syn, core.iteration);
        let (h, w) = (core.img.h, core.img.w);

        // the middle encoder of one of the first num_premodel experts, and that expert's trained weights
        let mut r = core.rng("dance", &[t]);
        let pick = r.random_range(0..core.cfg.dance.num_premodel.min(self.experts.len()));
        let lambda: f32 = r.random();
        core.net.load(gpu, &self.experts[pick].interpolate(lambda));
        self.fin_net.load(gpu, &self.experts[pick].fin);
        core.sample_real_batches(ds, t);
        for (slot, &c) in core.owned.iter().enumerate() {
            let mut r = core.rng("dsa", &[t, c]);
            for (k, &op) in DANCE_OPS.iter().enumerate() {
                let p = augment::draw(op, &mut r, h, w);
                gpu.write(&self.real_params[slot][k], &vec![p; b]);
                gpu.write(&self.syn_params[slot][k], &vec![p; e]);
            }
            for (pass, per_slot) in self.calib_params.iter().enumerate() {
                let mut r = core.rng("dsa-calib", &[t, c, pass]);
                for (k, &op) in DANCE_OPS.iter().enumerate() {
                    gpu.write(&per_slot[slot][k], &vec![augment::draw(op, &mut r, h, w); e]);
                }
            }
        }

        let cl = &self.class;
        // pseudo long-term distribution alignment with the middle encoder, a step per class in class order (a class of
        // another shard moves these pixels by their momentum only)
        for c in 0..classes {
            let Ok(slot) = core.owned.binary_search(&c) else {
                let zero = cl.zero_step(enc);
                self.pixel_step(core, enc, zero);
                continue;
            };
            let chain: Vec<&Buffer> = self.real_params[slot].iter().collect();
            core.embed_real_class(enc, &core.net, slot, &chain, [&self.real_tmp[0], &self.real_tmp[1]], (&cl.real_feat, 0));
            self.prepare(core, enc, slot, &self.syn_params[slot]);
            core.net.forward(gpu, enc, &cl.syn_ws, false);
            cl.match_class(core, enc, slot);
            core.net.backward(gpu, enc, &cl.syn_ws, Upstream::Embed, true, None);
            self.step(core, enc, slot, &self.syn_params[slot]);
            cl.show_gradient(core, enc, slot);
        }
        // distribution calibration with the trained expert
        for pass in &self.calib_params {
            for c in 0..classes {
                let Ok(slot) = core.owned.binary_search(&c) else {
                    let zero = cl.zero_step(enc);
                    self.pixel_step(core, enc, zero);
                    continue;
                };
                let params = &pass[slot];
                self.prepare(core, enc, slot, params);
                self.fin_net.forward(gpu, enc, &cl.syn_ws, true);
                ops::softmax_xent(gpu, enc, e, classes, 1.0 / e as f32, &cl.syn_ws.logits, &cl.syn_labels[slot], &cl.ce_loss, &cl.syn_ws.d_logits);
                self.fin_net.backward(gpu, enc, &cl.syn_ws, Upstream::Logits, true, None);
                self.step(core, enc, slot, params);
            }
        }
        ops::clamp_channels(gpu, enc, core.syn_len(), core.img.plane(), &self.lo, &self.hi, &core.syn);
    }
}
