//! IDM and IDM+HDD (method.md §4.1, §1.5, §1.7): one iteration = (queue upkeep) → per class: embed the class's
//! real batch and its expanded synthetic images with one net drawn from the queue, matching term (DM's squared
//! mean distance or HDD's λ·d_L) + ce_weight · acc% · CE on the synthetic logits, backward through the net, the
//! augmentation and the mosaic, an SGD step on all pixels (the other classes move by their momentum, as
//! `optimizer_img.step()` on the whole tensor does) → train `fetch_net_num` queue nets for `model_train_steps`
//! steps each on random real batches. All of it is one command buffer, one submit, no read-back: the running
//! training accuracy that weights the CE term stays on the GPU (`ops::tally`, `ops::softmax_xent_weighted`).

use std::collections::VecDeque;

use rand::RngExt;
use wgpu::Buffer;

use super::{copy_f32, Distiller, Init};
use crate::augment;
use crate::data::Dataset;
use crate::gpu::{Gpu, GpuError};
use crate::lorentz;
use crate::mosaic;
use crate::nn::convnet::{ConvNetConfig, ConvNetParams, GpuConvNet, GpuGrads, Upstream, Workspace};
use crate::nn::ops;
use crate::rng::{self, ChaCha8Rng};

/// Random nets in the queue before iteration 0's push (the IDM code starts with 3).
pub const INITIAL_NETS: usize = 3;

/// A queue net: its parameters, its own optimiser state, and its running training accuracy (correct, seen).
struct QueueNet {
    net: GpuConvNet,
    momentum: Vec<Buffer>,
    meter: Buffer,
}

pub(super) struct Idm {
    /// Slots allocated as the queue grows (at most net_num) and then reused, oldest first: bind groups stay valid.
    slots: Vec<QueueNet>,
    /// Slot indices, oldest first.
    queue: VecDeque<usize>,
    grads: GpuGrads,
    train_ws: Workspace,
    /// The iteration's training batches [steps, net_batch, img] and labels [steps, net_batch], written once.
    train_x: Buffer,
    train_y: Buffer,
    labels_in: Buffer,
    hits: Buffer,
    train_loss: Buffer,
    /// Synthetic images per class in matching: 4·ipc with the mosaic, else ipc.
    pub(super) per_syn: usize,
    syn_c: Buffer,
    exp: Buffer,
    syn_params: Vec<Buffer>,
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
    /// Per-class matching terms of the last iteration: DM [classes], HDD [classes, COEF_STRIDE].
    pub(super) loss_all: Buffer,
    /// Net choices and training batches.
    rng: ChaCha8Rng,
    /// All training indices in order between draws; partially shuffled for each batch (a uniform draw of distinct
    /// images) and restored by undoing the swaps.
    pool: Vec<usize>,
    host_x: Vec<f32>,
    host_y: Vec<u32>,
}

impl QueueNet {
    fn new(gpu: &Gpu, params: &ConvNetParams) -> Result<Self, GpuError> {
        let net = GpuConvNet::new(gpu, params)?;
        let momentum = params.cfg.tensor_lens().iter().map(|&l| gpu.zeros("idm_momentum", l)).collect::<Result<_, _>>()?;
        Ok(QueueNet { net, momentum, meter: gpu.zeros("idm_meter", 2)? })
    }
}

/// The initial synthetic set with the mosaic: each image holds four distinct random real images of its class
/// (fewer distinct ones only when the class is smaller than 4·ipc), each downscaled ×0.5.
pub(super) fn mosaic_init(ds: &Dataset, class_idx: &[Vec<usize>], ipc: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    mosaic_init_with(ds, class_idx, ipc, rng, mosaic::compose)
}

/// `mosaic_init` with the given way of putting four full-size images into one mosaic.
pub(super) fn mosaic_init_with(ds: &Dataset, class_idx: &[Vec<usize>], ipc: usize, rng: &mut ChaCha8Rng, compose: fn([&[f32]; 4], usize, usize, usize) -> Vec<f32>) -> Vec<f32> {
    let img = ds.image_len();
    let mut out = Vec::with_capacity(class_idx.len() * ipc * img);
    for idx in class_idx {
        let mut pool = idx.clone();
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
    }
    out
}

impl Idm {
    pub(super) fn new(gpu: &Gpu, ds: &Dataset, d: &super::DistillConfig, net_cfg: &ConvNetConfig, per_real: usize, rng_net: &mut ChaCha8Rng) -> Result<Self, GpuError> {
        let o = &d.idm;
        let (classes, img, dim) = (ds.classes.len(), ds.image_len(), net_cfg.embed_dim());
        let per_syn = if o.mosaic { 4 * d.ipc } else { d.ipc };
        let steps = o.fetch_net_num * o.model_train_steps;
        let mut slots = vec![];
        for _ in 0..INITIAL_NETS.min(o.net_num) {
            slots.push(QueueNet::new(gpu, &ConvNetParams::init(net_cfg, rng_net))?);
        }
        let first = &slots[0].net;
        let label_bufs = (0..classes)
            .map(|c| gpu.upload("idm_syn_labels", &vec![c as u32; per_syn]))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Idm {
            queue: (0..slots.len()).collect(),
            grads: first.grads(gpu)?,
            train_ws: first.workspace(gpu, o.net_batch)?,
            train_x: super::copy_buffer(gpu, "idm_train_x", steps.max(1) * o.net_batch * img),
            train_y: super::copy_buffer(gpu, "idm_train_y", steps.max(1) * o.net_batch),
            labels_in: gpu.zeros("idm_labels_in", o.net_batch)?,
            hits: gpu.zeros("idm_hits", o.net_batch)?,
            train_loss: gpu.zeros("idm_train_loss", o.net_batch)?,
            per_syn,
            syn_c: gpu.zeros("idm_syn_c", d.ipc * img)?,
            exp: gpu.zeros("idm_exp", per_syn * img)?,
            syn_params: (0..classes).map(|_| gpu.zeros("idm_syn_params", per_syn * 8)).collect::<Result<_, _>>()?,
            exp_scratch: gpu.zeros("idm_exp_scratch", per_syn)?,
            syn_ws: first.workspace(gpu, per_syn)?,
            syn_labels: label_bufs,
            d_exp: gpu.zeros("idm_d_exp", per_syn * img)?,
            d_syn_c: gpu.zeros("idm_d_syn_c", d.ipc * img)?,
            d_step: gpu.zeros("idm_d_step", classes * d.ipc * img)?,
            dm_sq: gpu.zeros("idm_dm_sq", dim)?,
            dm_loss: gpu.zeros("idm_dm_loss", 1)?,
            ce_loss: gpu.zeros("idm_ce_loss", per_syn)?,
            hdd: lorentz::gpu::HddBuffers::new(gpu, &lorentz::gpu::HddShape { classes: 1, per_real, per_syn, dim })?,
            loss_all: gpu.zeros("idm_loss_all", classes * lorentz::gpu::COEF_STRIDE)?,
            slots,
            rng: rng::stream(d.seed, "idm"),
            pool: (0..ds.train.len()).collect(),
            host_x: Vec::with_capacity(steps * o.net_batch * img),
            host_y: Vec::with_capacity(steps * o.net_batch),
        })
    }

    /// A fresh random net enters the queue; past net_num the oldest leaves and its slot is reused.
    fn push(&mut self, gpu: &Gpu, enc: &mut wgpu::CommandEncoder, params: &ConvNetParams, net_num: usize) -> Result<(), GpuError> {
        if self.queue.len() < net_num {
            self.slots.push(QueueNet::new(gpu, params)?);
            self.queue.push_back(self.slots.len() - 1);
        } else {
            let s = self.queue.pop_front().expect("a non-empty queue");
            let slot = &self.slots[s];
            slot.net.load(gpu, params);
            for b in slot.momentum.iter().chain([&slot.meter]) {
                enc.clear_buffer(b, 0, None);
            }
            self.queue.push_back(s);
        }
        Ok(())
    }

    /// Queue length now (for tests and the progress display).
    pub(super) fn queue_len(&self) -> usize {
        self.queue.len()
    }

    #[cfg(not(target_arch = "wasm32"))] // checkpoints are native only
    pub(super) fn rng_word(&self) -> u128 {
        self.rng.get_word_pos()
    }

    /// Every queue net's parameters, momentum and meter, oldest first (one read-back).
    #[cfg(not(target_arch = "wasm32"))]
    pub(super) fn state(&self, gpu: &Gpu) -> Result<Vec<(String, Vec<f32>)>, GpuError> {
        let lens = self.slots[0].net.cfg.tensor_lens();
        let mut names = vec![];
        let mut parts: Vec<(&Buffer, usize)> = vec![];
        for (i, &s) in self.queue.iter().enumerate() {
            let q = &self.slots[s];
            for (t, &l) in lens.iter().enumerate() {
                names.push(format!("queue{i}.param{t}"));
                parts.push((&q.net.params[t], l));
                names.push(format!("queue{i}.momentum{t}"));
                parts.push((&q.momentum[t], l));
            }
            names.push(format!("queue{i}.meter"));
            parts.push((&q.meter, 2));
        }
        let mut out: Vec<(String, Vec<f32>)> = names.into_iter().zip(gpu.read_many(&parts)?).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0)); // the order a checkpoint file gives them back in
        Ok(out)
    }

    /// Rebuild the queue from `state`'s tensors: slot i holds the i-th oldest net.
    pub(super) fn restore(&mut self, gpu: &Gpu, tensors: &[(String, Vec<f32>)], rng_word: u128) -> Result<(), String> {
        let find = |name: &str| tensors.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        let cfg = self.slots[0].net.cfg;
        let lens = cfg.tensor_lens();
        let count = (0..).take_while(|i| find(&format!("queue{i}.meter")).is_some()).count();
        if count == 0 {
            return Err("the checkpoint has no IDM queue".into());
        }
        let mut params = ConvNetParams::init(&cfg, &mut rng::stream(0, "idm-restore"));
        while self.slots.len() < count {
            self.slots.push(QueueNet::new(gpu, &params).map_err(|e| e.to_string())?);
        }
        for i in 0..count {
            let q = &self.slots[i];
            for (t, &l) in lens.iter().enumerate() {
                let (p, m) = (find(&format!("queue{i}.param{t}")), find(&format!("queue{i}.momentum{t}")));
                match (p, m) {
                    (Some(p), Some(m)) if p.len() == l && m.len() == l => {
                        params.tensors[t].clone_from(p);
                        gpu.write(&q.momentum[t], m);
                    }
                    _ => return Err(format!("checkpoint: queue net {i} tensor {t} is missing or of another network shape")),
                }
            }
            q.net.load(gpu, &params);
            gpu.write(&q.meter, find(&format!("queue{i}.meter")).expect("counted above"));
        }
        self.queue = (0..count).collect();
        self.rng.set_word_pos(rng_word);
        Ok(())
    }
}

impl Distiller<'_> {
    /// One IDM / IDM+HDD iteration (one submit).
    pub(super) fn step_idm(&mut self, ds: &Dataset) -> Result<(), GpuError> {
        let mut idm = self.idm.take().expect("an IDM distiller");
        let r = self.encode_idm(&mut idm, ds);
        self.idm = Some(idm);
        r
    }

    fn encode_idm(&mut self, idm: &mut Idm, ds: &Dataset) -> Result<(), GpuError> {
        let gpu = self.gpu;
        let _cache = self.bind_groups.activate();
        let o = self.cfg.idm.clone();
        let (classes, ipc, b, img) = (self.classes, self.cfg.ipc, self.per_real, self.img);
        let (h, w, ch) = (ds.height, ds.width, ds.channels);
        let (e, dim, m) = (idm.per_syn, self.net_cfg.embed_dim(), classes * ipc);
        let it = self.iteration;
        let mut enc = gpu.encoder();

        // queue upkeep, then the net this iteration matches with
        if it > 0 && it % o.acc_reset_every == 0 {
            for s in &idm.slots {
                enc.clear_buffer(&s.meter, 0, None);
            }
        }
        if it % o.net_generate_interval == 0 {
            idm.push(gpu, &mut enc, &ConvNetParams::init(&self.net_cfg, &mut self.rng_net), o.net_num)?;
        }
        let pick = idm.rng.random_range(0..idm.queue.len());
        let chosen = &idm.slots[idm.queue[pick]];

        self.sample_real_batches(ds);
        for c in 0..classes {
            let p = augment::draw_siamese(&self.ops, &mut self.rng_dsa, h, w);
            gpu.write(&self.real_params[c], &vec![p; b]);
            gpu.write(&idm.syn_params[c], &vec![p; e]);
        }

        let hyp = self.cfg.hyperbolic();
        let chunk = ipc * img;
        for c in 0..classes {
            // real side: forward only, in chunks, into real_feat [b, dim]
            self.embed_real_class(&mut enc, &chosen.net, c, ds, &[&self.real_params[c]], [&self.real_in, &self.real_in], &self.real_feat, 0);
            // synthetic side: split + expand, augment, forward keeping activations and logits
            copy_f32(&mut enc, &self.syn, c * chunk, &idm.syn_c, 0, chunk);
            if o.mosaic {
                mosaic::gpu::expand(gpu, &mut enc, ipc, ch, h, w, &idm.syn_c, &idm.exp);
            } else {
                copy_f32(&mut enc, &idm.syn_c, 0, &idm.exp, 0, chunk);
            }
            augment::gpu::forward(gpu, &mut enc, e, ch, h, w, &idm.exp, &idm.syn_params[c], &idm.exp_scratch, &idm.syn_ws.x);
            chosen.net.forward(gpu, &mut enc, &idm.syn_ws, true);
            // matching term → syn_ws.d_embed
            if self.cfg.method.hdd() {
                let shape = lorentz::gpu::HddShape { classes: 1, per_real: b, per_syn: e, dim };
                lorentz::gpu::encode(gpu, &mut enc, &shape, &hyp, self.cfg.lambda, &self.real_feat, &idm.syn_ws.embed, &idm.hdd, &idm.syn_ws.d_embed);
                let s = lorentz::gpu::COEF_STRIDE;
                copy_f32(&mut enc, &idm.hdd.coef, 0, &idm.loss_all, c * s, s);
            } else {
                ops::dm_matching(gpu, &mut enc, 1, b, e, dim, 1.0, &self.real_feat, &idm.syn_ws.embed, &idm.dm_sq, &idm.dm_loss, &idm.syn_ws.d_embed);
                copy_f32(&mut enc, &idm.dm_loss, 0, &idm.loss_all, c, 1);
            }
            // class-aware CE regulariser: ce_weight · acc% · mean CE → syn_ws.d_logits
            ops::softmax_xent_weighted(gpu, &mut enc, e, classes, o.ce_weight / e as f32, &idm.syn_ws.logits, &idm.syn_labels[c], &chosen.meter, &idm.ce_loss, &idm.syn_ws.d_logits);
            chosen.net.backward(gpu, &mut enc, &idm.syn_ws, Upstream::EmbedAndLogits, true, None);
            augment::gpu::backward(gpu, &mut enc, e, ch, h, w, &idm.syn_ws.dx, &idm.syn_params[c], &idm.exp_scratch, &idm.d_exp);
            if o.mosaic {
                mosaic::gpu::expand_backward(gpu, &mut enc, ipc, ch, h, w, &idm.d_exp, &idm.d_syn_c);
            } else {
                copy_f32(&mut enc, &idm.d_exp, 0, &idm.d_syn_c, 0, chunk);
            }
            // the step's gradient is zero outside class c; d_syn keeps every class's own gradient for display
            enc.clear_buffer(&idm.d_step, 0, None);
            copy_f32(&mut enc, &idm.d_syn_c, 0, &idm.d_step, c * chunk, chunk);
            copy_f32(&mut enc, &idm.d_syn_c, 0, &self.d_syn, c * chunk, chunk);
            ops::sgd(gpu, &mut enc, m * img, self.cfg.lr_img, self.cfg.momentum_img, 0.0, &idm.d_step, &self.syn, &self.syn_mom);
        }

        // train fetch_net_num distinct queue nets, model_train_steps plain-CE steps each (no augmentation)
        let picks = o.fetch_net_num.min(idm.queue.len());
        let mut order: Vec<usize> = idm.queue.iter().copied().collect();
        for i in 0..picks {
            let j = idm.rng.random_range(i..order.len());
            order.swap(i, j);
        }
        let nb = o.net_batch;
        let steps = picks * o.model_train_steps;
        idm.host_x.clear();
        idm.host_y.clear();
        let mut swaps = Vec::with_capacity(nb);
        for _ in 0..steps {
            // a partial Fisher-Yates draw from the identity order, then the swaps undone in reverse: the pool is the
            // identity again in O(nb), so each draw depends only on the stream position (which checkpoints keep)
            swaps.clear();
            for i in 0..nb {
                let j = idm.rng.random_range(i..idm.pool.len());
                idm.pool.swap(i, j);
                swaps.push(j);
            }
            idm.host_x.extend(ds.normalized(&ds.train, &idm.pool[..nb]));
            idm.host_y.extend(idm.pool[..nb].iter().map(|&i| ds.train.labels[i]));
            for (i, &j) in swaps.iter().enumerate().rev() {
                idm.pool.swap(i, j);
            }
        }
        if steps > 0 {
            gpu.write(&idm.train_x, &idm.host_x);
            gpu.write(&idm.train_y, &idm.host_y);
        }
        let lens = self.net_cfg.tensor_lens();
        for (k, &s) in order[..picks].iter().enumerate() {
            let q = &idm.slots[s];
            for t in 0..o.model_train_steps {
                let step = k * o.model_train_steps + t;
                copy_f32(&mut enc, &idm.train_x, step * nb * img, &idm.train_ws.x, 0, nb * img);
                copy_f32(&mut enc, &idm.train_y, step * nb, &idm.labels_in, 0, nb);
                q.net.forward(gpu, &mut enc, &idm.train_ws, true);
                ops::softmax_xent(gpu, &mut enc, nb, classes, 1.0 / nb as f32, &idm.train_ws.logits, &idm.labels_in, &idm.train_loss, &idm.train_ws.d_logits);
                ops::correct(gpu, &mut enc, nb, classes, &idm.train_ws.logits, &idm.labels_in, &idm.hits);
                ops::tally(gpu, &mut enc, nb, &idm.hits, &q.meter);
                q.net.backward(gpu, &mut enc, &idm.train_ws, Upstream::Logits, false, Some(&idm.grads));
                for (i, &l) in lens.iter().enumerate() {
                    ops::sgd(gpu, &mut enc, l, o.net_lr, o.net_momentum, o.net_weight_decay, &idm.grads.tensors[i], &q.net.params[i], &q.momentum[i]);
                }
            }
        }
        gpu.submit_wait(enc);
        self.iteration += 1;
        Ok(())
    }
}

/// Whether `init` fills mosaics (IDM's partition or DANCE's multi-formation, real initialisation).
pub(super) fn uses_mosaic_init(d: &super::DistillConfig) -> bool {
    d.uses_mosaic() && d.init == Init::Real
}
