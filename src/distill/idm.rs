//! distill::idm: IDM and IDM+HDD (method.md §4.1, §1.5, §1.7): one iteration = (queue upkeep) → per class: embed the
//! class's real batch and its expanded synthetic images with one net drawn from the queue, matching term (DM's squared
//! mean distance or HDD's λ·d_L) + ce_weight · acc% · CE on the synthetic logits, backward through the net, the
//! augmentation and the mosaic, an SGD step on all pixels (the other classes move by their momentum, as
//! `optimizer_img.step()` on the whole tensor does) → train `fetch_net_num` queue nets for `model_train_steps`
//! steps each on random real batches. All of it is one command buffer, one submit, no read-back: the running
//! training accuracy that weights the CE term stays on the GPU (`ops::tally`, `ops::softmax_xent_weighted`).

use std::collections::VecDeque;

use rand::RngExt;
use wgpu::{Buffer, CommandEncoder};

use super::copy_f32;
use super::core::Core;
use super::per_class::PerClass;
use crate::augment;
use crate::data::Dataset;
use crate::gpu::{Gpu, GpuError};
use crate::nn::convnet::{ConvNetParams, GpuConvNet, GpuGrads, Upstream, Workspace};
use crate::nn::ops;
use crate::rng;

/// Random nets in the queue before iteration 0's push (the IDM code starts with 3).
pub const INITIAL_NETS: usize = 3;

/// A queue net: its parameters, its own optimiser state, and its running training accuracy (correct, seen).
struct QueueNet {
    net: GpuConvNet,
    momentum: Vec<Buffer>,
    meter: Buffer,
}

impl QueueNet {
    fn new(gpu: &Gpu, params: &ConvNetParams) -> Result<Self, GpuError> {
        let net = GpuConvNet::new(gpu, params)?;
        let momentum = params.cfg.tensor_lens().iter().map(|&l| gpu.zeros("idm_momentum", l)).collect::<Result<_, _>>()?;
        Ok(QueueNet { net, momentum, meter: gpu.zeros("idm_meter", 2)? })
    }
}

/// IDM's state: the queue, its training scratch, and the class-by-class buffers.
pub struct Idm {
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
    /// Per class: the siamese parameters of the real batch [per_real, 8] and of the expanded images [per_syn, 8].
    real_params: Vec<Buffer>,
    syn_params: Vec<Buffer>,
    pub class: PerClass,
    /// All training indices in order between draws; partially shuffled for each batch (a uniform draw of distinct
    /// images) and restored by undoing the swaps.
    pool: Vec<usize>,
    host_x: Vec<f32>,
    host_y: Vec<u32>,
}

/// Copies an IDM iteration takes for a trace (`distill::trace`) while it runs: its class steps reuse one set of
/// buffers, so each class's values are copied out between the steps; the chosen net and its accuracy meter are copied
/// before the queue trains.
pub struct IdmTrace {
    pub net: Vec<Buffer>,
    pub meter: Buffer,
    /// Per owned class: its real features [b, dim], expanded and augmented images [e, …], their features [e, dim],
    /// logits [e, classes] and cross-entropies [e].
    pub real: Buffer,
    pub aug: Buffer,
    pub embed: Buffer,
    pub logits: Buffer,
    pub ce: Buffer,
}

impl IdmTrace {
    // traces are written natively only (distill::trace)
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub fn new(core: &Core, idm: &Idm) -> Result<Self, GpuError> {
        let gpu = core.gpu;
        let (o, e, dim) = (core.owned.len(), idm.class.per_syn, core.dim());
        let copy = |label: &str, n: usize| super::copy_buffer(gpu, label, n);
        Ok(IdmTrace {
            net: core.net_cfg.tensor_lens().iter().map(|&l| copy("trace_net", l)).collect(),
            meter: copy("trace_meter", 2),
            real: copy("trace_real", o * core.per_real * dim),
            aug: copy("trace_aug", o * e * core.img.len()),
            embed: copy("trace_embed", o * e * dim),
            logits: copy("trace_logits", o * e * core.classes),
            ce: copy("trace_ce", o * e),
        })
    }
}

impl Idm {
    /// The queue's first nets (drawn from the core's network stream, as the IDM code starts with them) and IDM's buffers.
    pub fn new(core: &Core, ds: &Dataset) -> Result<Self, GpuError> {
        let gpu = core.gpu;
        let o = core.cfg.idm.clone();
        let class = PerClass::new(core, o.mosaic)?;
        let steps = o.fetch_net_num * o.model_train_steps;
        let img = core.img.len();
        let mut slots = vec![];
        for _ in 0..INITIAL_NETS.min(o.net_num) {
            slots.push(QueueNet::new(gpu, &ConvNetParams::init(&core.net_cfg, &mut core.rng("idm-initial-net", &[slots.len()])))?);
        }
        let first = &slots[0].net;
        Ok(Idm {
            queue: (0..slots.len()).collect(),
            grads: first.grads(gpu)?,
            train_ws: first.workspace(gpu, o.net_batch)?,
            train_x: super::copy_buffer(gpu, "idm_train_x", steps.max(1) * o.net_batch * img),
            train_y: super::copy_buffer(gpu, "idm_train_y", steps.max(1) * o.net_batch),
            labels_in: gpu.zeros("idm_labels_in", o.net_batch)?,
            hits: gpu.zeros("idm_hits", o.net_batch)?,
            train_loss: gpu.zeros("idm_train_loss", o.net_batch)?,
            real_params: core.real_params()?,
            syn_params: (0..core.classes).map(|_| gpu.zeros("idm_syn_params", class.per_syn * 8)).collect::<Result<_, _>>()?,
            class,
            slots,
            pool: (0..ds.train.len()).collect(),
            host_x: Vec::with_capacity(steps * o.net_batch * img),
            host_y: Vec::with_capacity(steps * o.net_batch),
        })
    }

    /// A fresh random net enters the queue; past net_num the oldest leaves and its slot is reused.
    fn push(&mut self, gpu: &Gpu, enc: &mut CommandEncoder, params: &ConvNetParams, net_num: usize) -> Result<(), GpuError> {
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
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    /// Every queue net's parameters, momentum and meter, oldest first (one read-back).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn state(&self, gpu: &Gpu) -> Result<Vec<(String, Vec<f32>)>, GpuError> {
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
    pub fn restore(&mut self, gpu: &Gpu, tensors: &[(String, Vec<f32>)]) -> Result<(), anyhow::Error> {
        let find = |name: &str| tensors.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        let cfg = self.slots[0].net.cfg;
        let lens = cfg.tensor_lens();
        let count = (0..).take_while(|i| find(&format!("queue{i}.meter")).is_some()).count();
        if count == 0 {
            anyhow::bail!("the checkpoint has no IDM queue");
        }
        let mut params = ConvNetParams::init(&cfg, &mut rng::stream(0, "idm-restore"));
        while self.slots.len() < count {
            self.slots.push(QueueNet::new(gpu, &params)?);
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
                    _ => anyhow::bail!("checkpoint: queue net {i} tensor {t} is missing or of another network shape"),
                }
            }
            q.net.load(gpu, &params);
            gpu.write(&q.meter, find(&format!("queue{i}.meter")).expect("counted above"));
        }
        self.queue = (0..count).collect();
        Ok(())
    }

    /// One IDM / IDM+HDD iteration, recorded into `enc`.
    pub fn encode(&mut self, core: &mut Core, ds: &Dataset, enc: &mut CommandEncoder, trace: Option<&IdmTrace>) -> Result<(), GpuError> {
        let gpu = core.gpu;
        let o = core.cfg.idm.clone();
        let (classes, b, img) = (core.classes, core.per_real, core.img.len());
        let (e, m) = (self.class.per_syn, core.images());
        let it = core.iteration;

        // queue upkeep, then the net this iteration matches with
        if it > 0 && it % o.acc_reset_every == 0 {
            for s in &self.slots {
                enc.clear_buffer(&s.meter, 0, None);
            }
        }
        if it % o.net_generate_interval == 0 {
            self.push(gpu, enc, &core.net_params(it), o.net_num)?;
        }
        let pick = core.rng("idm-pick", &[it]).random_range(0..self.queue.len());
        let chosen = &self.slots[self.queue[pick]];
        if let Some(tr) = trace {
            for ((p, dst), l) in chosen.net.params.iter().zip(&tr.net).zip(core.net_cfg.tensor_lens()) {
                copy_f32(enc, p, 0, dst, 0, l);
            }
            copy_f32(enc, &chosen.meter, 0, &tr.meter, 0, 2);
        }

        core.sample_real_batches(ds, it);
        for (slot, &c) in core.owned.iter().enumerate() {
            let p = core.siamese(it, c);
            gpu.write(&self.real_params[slot], &vec![p; b]);
            gpu.write(&self.syn_params[slot], &vec![p; e]);
        }

        let cl = &self.class;
        // a step per class, in class order; a class of another shard moves these pixels by their momentum only
        for c in 0..classes {
            let Ok(slot) = core.owned.binary_search(&c) else {
                let zero = cl.zero_step(enc);
                ops::sgd(gpu, enc, m * img, core.pixel_sgd(), zero, &core.syn, &core.syn_mom);
                continue;
            };
            // real side: forward only, in chunks, into the class's real features [b, dim]
            core.embed_real_siamese(enc, &chosen.net, slot, &self.real_params[slot], (&cl.real_feat, 0));
            // synthetic side: split + expand, augment, forward keeping activations and logits
            cl.expand(core, enc, slot);
            augment::gpu::forward(gpu, enc, e, core.img, &cl.exp, &self.syn_params[slot], &cl.exp_scratch, &cl.syn_ws.x);
            chosen.net.forward(gpu, enc, &cl.syn_ws, true);
            cl.match_class(core, enc, slot);
            // class-aware CE regulariser: ce_weight · acc% · mean CE → syn_ws.d_logits
            ops::softmax_xent_weighted(gpu, enc, e, classes, o.ce_weight / e as f32, &cl.syn_ws.logits, &cl.syn_labels[slot], &chosen.meter, &cl.ce_loss, &cl.syn_ws.d_logits);
            if let Some(tr) = trace {
                let dim = core.dim();
                copy_f32(enc, &cl.real_feat, 0, &tr.real, slot * b * dim, b * dim);
                copy_f32(enc, &cl.syn_ws.x, 0, &tr.aug, slot * e * img, e * img);
                copy_f32(enc, &cl.syn_ws.embed, 0, &tr.embed, slot * e * dim, e * dim);
                copy_f32(enc, &cl.syn_ws.logits, 0, &tr.logits, slot * e * classes, e * classes);
                copy_f32(enc, &cl.ce_loss, 0, &tr.ce, slot * e, e);
            }
            chosen.net.backward(gpu, enc, &cl.syn_ws, Upstream::EmbedAndLogits, true, None);
            augment::gpu::backward(gpu, enc, e, core.img, &cl.syn_ws.dx, &self.syn_params[slot], &cl.exp_scratch, &cl.d_exp);
            // the step's gradient is zero outside class c; d_syn keeps every class's own gradient for display
            let d_step = cl.contract(core, enc, slot);
            cl.show_gradient(core, enc, slot);
            ops::sgd(gpu, enc, m * img, core.pixel_sgd(), d_step, &core.syn, &core.syn_mom);
        }

        // the queue's training draws from its own stream for this iteration: every shard trains the same nets alike
        let mut r = core.rng("idm-train", &[it]);
        // train fetch_net_num distinct queue nets, model_train_steps plain-CE steps each (no augmentation)
        let picks = o.fetch_net_num.min(self.queue.len());
        let mut order: Vec<usize> = self.queue.iter().copied().collect();
        for i in 0..picks {
            let j = r.random_range(i..order.len());
            order.swap(i, j);
        }
        let nb = o.net_batch;
        let steps = picks * o.model_train_steps;
        self.host_x.clear();
        self.host_y.clear();
        let mut swaps = Vec::with_capacity(nb);
        for _ in 0..steps {
            // a partial Fisher-Yates draw from the identity order, then the swaps undone in reverse: the pool is the
            // identity again in O(nb), so each draw depends only on the stream position (which checkpoints keep)
            swaps.clear();
            for i in 0..nb {
                let j = r.random_range(i..self.pool.len());
                self.pool.swap(i, j);
                swaps.push(j);
            }
            self.host_x.extend(ds.normalized(&ds.train, &self.pool[..nb]));
            self.host_y.extend(self.pool[..nb].iter().map(|&i| ds.train.labels[i]));
            for (i, &j) in swaps.iter().enumerate().rev() {
                self.pool.swap(i, j);
            }
        }
        if steps > 0 {
            gpu.write(&self.train_x, &self.host_x);
            gpu.write(&self.train_y, &self.host_y);
        }
        let lens = core.net_cfg.tensor_lens();
        for (k, &s) in order[..picks].iter().enumerate() {
            let q = &self.slots[s];
            for t in 0..o.model_train_steps {
                let step = k * o.model_train_steps + t;
                copy_f32(enc, &self.train_x, step * nb * img, &self.train_ws.x, 0, nb * img);
                copy_f32(enc, &self.train_y, step * nb, &self.labels_in, 0, nb);
                q.net.forward(gpu, enc, &self.train_ws, true);
                ops::softmax_xent(gpu, enc, nb, classes, 1.0 / nb as f32, &self.train_ws.logits, &self.labels_in, &self.train_loss, &self.train_ws.d_logits);
                ops::correct(gpu, enc, nb, classes, &self.train_ws.logits, &self.labels_in, &self.hits);
                ops::tally(gpu, enc, nb, &self.hits, &q.meter);
                q.net.backward(gpu, enc, &self.train_ws, Upstream::Logits, false, Some(&self.grads));
                for (i, &l) in lens.iter().enumerate() {
                    ops::sgd(gpu, enc, l, ops::Sgd { lr: o.net_lr, momentum: o.net_momentum, weight_decay: o.net_weight_decay }, &self.grads.tensors[i], &q.net.params[i], &q.momentum[i]);
                }
            }
        }
        Ok(())
    }

    /// What an iteration traced with `bufs` computed, into a trace (after the submit): the chosen net (PyTorch names)
    /// and its accuracy meter before the class steps, and per class its real features, its expanded and augmented
    /// images, their features, logits and cross-entropies, the matching term (and HDD's distance).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn trace_into(&self, core: &Core, bufs: &IdmTrace, tr: &mut crate::trace::Trace) -> Result<(), GpuError> {
        let gpu = core.gpu;
        let (o, b, e, dim, k) = (core.owned.len(), core.per_real, self.class.per_syn, core.dim(), core.classes);
        let img = core.img;
        let lens = core.net_cfg.tensor_lens();
        let mut parts: Vec<(&Buffer, usize)> = bufs.net.iter().zip(lens).collect();
        let (loss_buf, stride) = (&self.class.loss_all, self.class.matching.loss().1);
        parts.extend([(&bufs.meter, 2), (&bufs.real, o * b * dim), (&bufs.aug, o * e * img.len()), (&bufs.embed, o * e * dim),
            (&bufs.logits, o * e * k), (&bufs.ce, o * e), (loss_buf, o * stride)]);
        let mut raw = gpu.read_many(&parts)?.into_iter();
        let mut next = || raw.next().expect("one read-back per buffer");
        let params = ConvNetParams { cfg: core.net_cfg, tensors: (0..lens.len()).map(|_| next()).collect() };
        tr.convnet("net.", &params);
        tr.f32("idm.meter", &[2], next());
        tr.f32("real.embed", &[o * b, dim], next());
        tr.f32("syn.augmented", &[o * e, img.c, img.h, img.w], next());
        tr.f32("syn.embed", &[o * e, dim], next());
        tr.f32("syn.logits", &[o * e, k], next());
        tr.f32("syn.ce", &[o * e], next());
        let loss = next();
        tr.f32("loss.per_class", &[o], self.class.matching.per_class(&loss));
        if let super::matching::Matching::Hdd { .. } = &self.class.matching {
            tr.f64("hdd.distance", &[o], crate::hdd::gpu::distances_from(&loss).into_iter().map(f64::from).collect());
        }
        let c = &core.cfg.idm;
        tr.meta("ce_weight", c.ce_weight);
        tr.meta("mosaic", self.class.mosaic);
        tr.meta("per_syn", e);
        Ok(())
    }
}
