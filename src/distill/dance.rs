//! DANCE and DANCE+HDD (method.md §4.2, §6.10): one iteration = pick one of the first num_premodel experts and
//! λ ~ U(0, 1), load the middle encoder θ = λ·θ_init + (1 − λ)·θ_final → per class: the class's real batch and its
//! expanded synthetic images through IDC's DiffAug (color, crop, cutout in sequence, one parameter set shared by
//! both sides), matching term (the MSE of the feature means, or λ_H·d_L for DANCE+HDD), backward, a pixel step →
//! calibration: per class CE(θ_final(aug(syn_c)), c) and a pixel step → clamp the pixels to [0, 1]. The pixels are
//! kept in the normalised space; DANCE's pixel-space learning rate becomes lr/std_c² per channel and its [0, 1]
//! box [−mean_c/std_c, (1 − mean_c)/std_c]. One command buffer, one submit, no read-back.

use rand::RngExt;
use wgpu::Buffer;

use super::{copy_f32, Distiller};
use crate::augment::{self, Op};
use crate::data::Dataset;
use crate::experts::Expert;
use crate::gpu::{Gpu, GpuError};
use crate::lorentz;
use crate::mosaic;
use crate::nn::convnet::{ConvNetConfig, GpuConvNet, Upstream, Workspace};
use crate::nn::ops;
use crate::rng::{self, ChaCha8Rng};

/// IDC's DiffAug for DANCE's matching and calibration: color and cutout always, crop between them.
pub const DANCE_OPS: [Op; 3] = [Op::Color, Op::Crop, Op::Cutout];

pub(super) struct Dance {
    experts: Vec<Expert>,
    fin_net: GpuConvNet,
    /// Synthetic images per class in use: 4·ipc with the multi-formation mosaic, else ipc.
    pub(super) per_syn: usize,
    /// Per class and op: the matching parameters of the real side [b, 8] and the synthetic side [e, 8], and the
    /// calibration parameters [e, 8] of every calibration pass.
    real_params: Vec<Vec<Buffer>>,
    syn_params: Vec<Vec<Buffer>>,
    calib_params: Vec<Vec<Vec<Buffer>>>,
    real_tmp: [Buffer; 2],
    syn_c: Buffer,
    exp: Buffer,
    exp_tmp: [Buffer; 2],
    exp_scratch: Buffer,
    syn_ws: Workspace,
    syn_labels: Vec<Buffer>,
    d_exp: Buffer,
    d_syn_c: Buffer,
    d_step: Buffer,
    dm_sq: Buffer,
    dm_loss: Buffer,
    ce_loss: Buffer,
    hdd: lorentz::gpu::HddBuffers,
    pub(super) loss_all: Buffer,
    rng: ChaCha8Rng,
    /// Per channel: the learning rate in the normalised space and the [0, 1] box there.
    lrs: Vec<f32>,
    lo: Vec<f32>,
    hi: Vec<f32>,
}

/// The initial synthetic set with the multi-formation mosaic: four distinct real images of the class per stored
/// image, each downsampled by nearest neighbour (IDC's 'mix' initialisation).
pub(super) fn mosaic_init(ds: &Dataset, class_idx: &[Vec<usize>], ipc: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    super::idm::mosaic_init_with(ds, class_idx, ipc, rng, mosaic::compose_nearest)
}

impl Dance {
    pub(super) fn new(gpu: &Gpu, ds: &Dataset, d: &super::DistillConfig, net_cfg: &ConvNetConfig, per_real: usize, real_chunk: usize, experts: Vec<Expert>) -> Result<Self, GpuError> {
        let (classes, img, dim) = (ds.classes.len(), ds.image_len(), net_cfg.embed_dim());
        let per_syn = if d.dance.mosaic { 4 * d.ipc } else { d.ipc };
        let fin_net = GpuConvNet::new(gpu, &experts[0].fin)?;
        let params = |n: usize| -> Result<Vec<Buffer>, GpuError> { DANCE_OPS.iter().map(|_| gpu.zeros("dance_params", n * 8)).collect() };
        let std = &ds.std;
        Ok(Dance {
            real_params: (0..classes).map(|_| params(per_real)).collect::<Result<_, _>>()?,
            syn_params: (0..classes).map(|_| params(per_syn)).collect::<Result<_, _>>()?,
            calib_params: (0..d.dance.iter_calib).map(|_| (0..classes).map(|_| params(per_syn)).collect::<Result<_, _>>()).collect::<Result<_, _>>()?,
            real_tmp: [gpu.zeros("dance_real_tmp", real_chunk * img)?, gpu.zeros("dance_real_tmp", real_chunk * img)?],
            syn_c: gpu.zeros("dance_syn_c", d.ipc * img)?,
            exp: gpu.zeros("dance_exp", per_syn * img)?,
            exp_tmp: [gpu.zeros("dance_exp_tmp", per_syn * img)?, gpu.zeros("dance_exp_tmp", per_syn * img)?],
            exp_scratch: gpu.zeros("dance_exp_scratch", per_syn)?,
            syn_ws: fin_net.workspace(gpu, per_syn)?,
            syn_labels: (0..classes).map(|c| gpu.upload("dance_labels", &vec![c as u32; per_syn])).collect::<Result<_, _>>()?,
            d_exp: gpu.zeros("dance_d_exp", per_syn * img)?,
            d_syn_c: gpu.zeros("dance_d_syn_c", d.ipc * img)?,
            d_step: gpu.zeros("dance_d_step", classes * d.ipc * img)?,
            dm_sq: gpu.zeros("dance_dm_sq", dim)?,
            dm_loss: gpu.zeros("dance_dm_loss", 1)?,
            ce_loss: gpu.zeros("dance_ce_loss", per_syn)?,
            hdd: lorentz::gpu::HddBuffers::new(gpu, &lorentz::gpu::HddShape { classes: 1, per_real, per_syn, dim })?,
            loss_all: gpu.zeros("dance_loss_all", classes * lorentz::gpu::COEF_STRIDE)?,
            rng: rng::stream(d.seed, "dance"),
            lrs: std.iter().map(|s| d.lr_img / (s * s)).collect(),
            lo: ds.mean.iter().zip(std).map(|(m, s)| -m / s).collect(),
            hi: ds.mean.iter().zip(std).map(|(m, s)| (1.0 - m) / s).collect(),
            per_syn,
            fin_net,
            experts,
        })
    }

    #[cfg(not(target_arch = "wasm32"))] // checkpoints are native only
    pub(super) fn rng_word(&self) -> u128 {
        self.rng.get_word_pos()
    }

    pub(super) fn set_rng_word(&mut self, w: u128) {
        self.rng.set_word_pos(w);
    }
}

impl Distiller<'_> {
    /// One DANCE / DANCE+HDD iteration (one submit).
    pub(super) fn step_dance(&mut self, ds: &Dataset) -> Result<(), GpuError> {
        let mut dance = self.dance.take().expect("a DANCE distiller");
        self.encode_dance(&mut dance, ds);
        self.dance = Some(dance);
        Ok(())
    }

    fn encode_dance(&mut self, dn: &mut Dance, ds: &Dataset) {
        let gpu = self.gpu;
        let _cache = self.bind_groups.activate();
        let (classes, ipc, b, img) = (self.classes, self.cfg.ipc, self.per_real, self.img);
        let (h, w, ch) = (ds.height, ds.width, ds.channels);
        let (e, dim, m) = (dn.per_syn, self.net_cfg.embed_dim(), classes * ipc);
        let chunk = ipc * img;
        let mosaic_on = self.cfg.dance.mosaic;

        // the middle encoder of one of the first num_premodel experts, and that expert's trained weights
        let pick = dn.rng.random_range(0..self.cfg.dance.num_premodel.min(dn.experts.len()));
        let lambda: f32 = dn.rng.random();
        self.net.load(gpu, &dn.experts[pick].interpolate(lambda));
        dn.fin_net.load(gpu, &dn.experts[pick].fin);
        self.sample_real_batches(ds);
        for c in 0..classes {
            for (k, &op) in DANCE_OPS.iter().enumerate() {
                let p = augment::draw(op, &mut self.rng_dsa, h, w);
                gpu.write(&dn.real_params[c][k], &vec![p; b]);
                gpu.write(&dn.syn_params[c][k], &vec![p; e]);
            }
        }
        for pass in &dn.calib_params {
            for per_op in pass {
                for (k, &op) in DANCE_OPS.iter().enumerate() {
                    gpu.write(&per_op[k], &vec![augment::draw(op, &mut self.rng_dsa, h, w); e]);
                }
            }
        }

        let mut enc = gpu.encoder();
        let hyp = self.cfg.hyperbolic();
        // class c's stored images → expanded → augmented into syn_ws.x, with the given parameters per op
        let prepare = |enc: &mut wgpu::CommandEncoder, dn: &Dance, c: usize, params: &[Buffer]| {
            copy_f32(enc, &self.syn, c * chunk, &dn.syn_c, 0, chunk);
            if mosaic_on {
                mosaic::gpu::expand(gpu, enc, ipc, ch, h, w, &dn.syn_c, &dn.exp);
            } else {
                copy_f32(enc, &dn.syn_c, 0, &dn.exp, 0, chunk);
            }
            let p: Vec<&Buffer> = params.iter().collect();
            augment::gpu::forward_chain(gpu, enc, e, ch, h, w, &dn.exp, &p, [&dn.exp_tmp[0], &dn.exp_tmp[1]], &dn.exp_scratch, &dn.syn_ws.x);
        };
        // syn_ws.dx → through the augmentation and the mosaic → a pixel step on all images (zero gradient outside c)
        let step = |enc: &mut wgpu::CommandEncoder, dn: &Dance, c: usize, params: &[Buffer]| {
            let p: Vec<&Buffer> = params.iter().collect();
            augment::gpu::backward_chain(gpu, enc, e, ch, h, w, &dn.syn_ws.dx, &p, [&dn.exp_tmp[0], &dn.exp_tmp[1]], &dn.exp_scratch, &dn.d_exp);
            if mosaic_on {
                mosaic::gpu::expand_backward(gpu, enc, ipc, ch, h, w, &dn.d_exp, &dn.d_syn_c);
            } else {
                copy_f32(enc, &dn.d_exp, 0, &dn.d_syn_c, 0, chunk);
            }
            enc.clear_buffer(&dn.d_step, 0, None);
            copy_f32(enc, &dn.d_syn_c, 0, &dn.d_step, c * chunk, chunk);
            ops::sgd_channels(gpu, enc, m * img, h * w, &dn.lrs, self.cfg.momentum_img, &dn.d_step, &self.syn, &self.syn_mom);
        };

        // pseudo long-term distribution alignment with the middle encoder
        for c in 0..classes {
            let chain: Vec<&Buffer> = dn.real_params[c].iter().collect();
            self.embed_real_class(&mut enc, &self.net, c, ds, &chain, [&dn.real_tmp[0], &dn.real_tmp[1]], &self.real_feat, 0);
            prepare(&mut enc, dn, c, &dn.syn_params[c]);
            self.net.forward(gpu, &mut enc, &dn.syn_ws, false);
            if self.cfg.method.hdd() {
                let shape = lorentz::gpu::HddShape { classes: 1, per_real: b, per_syn: e, dim };
                lorentz::gpu::encode(gpu, &mut enc, &shape, &hyp, self.cfg.lambda, &self.real_feat, &dn.syn_ws.embed, &dn.hdd, &dn.syn_ws.d_embed);
                let s = lorentz::gpu::COEF_STRIDE;
                copy_f32(&mut enc, &dn.hdd.coef, 0, &dn.loss_all, c * s, s);
            } else {
                // MSE of the feature means: DM's sum over dimensions divided by the dimension
                ops::dm_matching(gpu, &mut enc, 1, b, e, dim, 1.0 / dim as f32, &self.real_feat, &dn.syn_ws.embed, &dn.dm_sq, &dn.dm_loss, &dn.syn_ws.d_embed);
                copy_f32(&mut enc, &dn.dm_loss, 0, &dn.loss_all, c, 1);
            }
            self.net.backward(gpu, &mut enc, &dn.syn_ws, Upstream::Embed, true, None);
            step(&mut enc, dn, c, &dn.syn_params[c]);
            copy_f32(&mut enc, &dn.d_syn_c, 0, &self.d_syn, c * chunk, chunk);
        }
        // distribution calibration with the trained expert
        for pass in &dn.calib_params {
            for (c, params) in pass.iter().enumerate() {
                prepare(&mut enc, dn, c, params);
                dn.fin_net.forward(gpu, &mut enc, &dn.syn_ws, true);
                ops::softmax_xent(gpu, &mut enc, e, classes, 1.0 / e as f32, &dn.syn_ws.logits, &dn.syn_labels[c], &dn.ce_loss, &dn.syn_ws.d_logits);
                dn.fin_net.backward(gpu, &mut enc, &dn.syn_ws, Upstream::Logits, true, None);
                step(&mut enc, dn, c, params);
            }
        }
        ops::clamp_channels(gpu, &mut enc, m * img, h * w, &dn.lo, &dn.hi, &self.syn);
        gpu.submit_wait(enc);
        self.iteration += 1;
    }
}
