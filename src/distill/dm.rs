//! distill::dm: DM and DM+HDD (method.md §2.3, §1.5): a fresh random ConvNet-3 per iteration, siamese DSA per class,
//! one matching term over all classes and one SGD step on the whole synthetic set.
//!
//! One iteration is one command buffer, one submit, no read-back:
//!   new random net → per class: copy its real batch, augment (the class's siamese op), embed →
//!   augment all synthetic images, embed them in chunks (each chunk keeps its activations) →
//!   matching term and its gradient on the synthetic features → backward through the net and the
//!   augmentation → SGD (momentum 0.5) on the pixels.

use wgpu::{Buffer, CommandEncoder};

use super::core::Core;
use super::copy_f32;
use super::matching::Matching;
use crate::augment;
use crate::data::Dataset;
use crate::gpu::GpuError;
use crate::nn::convnet::{Upstream, Workspace};
use crate::nn::ops;
use crate::shapes::MatchShape;

/// A synthetic chunk: images [start, start + n) of the synthetic set and its own workspace.
struct Chunk {
    start: usize,
    n: usize,
    ws: Workspace,
}

/// DM's state: the whole set's augmented images, features and their gradients, in chunks one binding holds.
pub struct Dm {
    shape: MatchShape,
    /// Per class: the siamese parameters of its real batch [per_real, 8]; the synthetic images' [classes·ipc, 8].
    real_params: Vec<Buffer>,
    syn_params: Buffer,
    /// Every class's real features [classes·per_real, dim].
    real_feat: Buffer,
    syn_aug: Buffer,
    syn_scratch: Buffer,
    chunks: Vec<Chunk>,
    syn_feat: Buffer,
    d_syn_feat: Buffer,
    d_syn_aug: Buffer,
    pub matching: Matching,
}

impl Dm {
    pub fn new(core: &Core) -> Result<Self, GpuError> {
        let gpu = core.gpu;
        let (m, img, dim) = (core.images(), core.img.len(), core.dim());
        let shape = MatchShape { classes: core.owned.len(), per_real: core.per_real, per_syn: core.cfg.ipc, dim };
        let mut chunks = vec![];
        let mut start = 0;
        while start < m {
            let n = core.max_chunk.min(m - start);
            chunks.push(Chunk { start, n, ws: core.net.workspace(gpu, n)? });
            start += n;
        }
        Ok(Dm {
            real_params: core.real_params()?,
            syn_params: gpu.zeros("syn_params", m * 8)?,
            real_feat: gpu.zeros("real_feat", core.owned.len() * core.per_real * dim)?,
            syn_aug: gpu.zeros("syn_aug", m * img)?,
            syn_scratch: gpu.zeros("syn_scratch", m)?,
            chunks,
            syn_feat: gpu.zeros("syn_feat", m * dim)?,
            d_syn_feat: gpu.zeros("d_syn_feat", m * dim)?,
            d_syn_aug: gpu.zeros("d_syn_aug", m * img)?,
            matching: Matching::new(gpu, &shape, 1.0, core.cfg.method.hdd().then(|| (core.cfg.lambda, core.cfg.hdd())))?,
            shape,
        })
    }

    /// One DM / DM+HDD iteration, recorded into `enc`.
    pub fn encode(&self, core: &mut Core, ds: &Dataset, enc: &mut CommandEncoder) {
        let gpu = core.gpu;
        let s = self.shape;
        let (ipc, b, img, dim) = (s.per_syn, s.per_real, core.img.len(), s.dim);
        let (m, t) = (core.images(), core.iteration);

        // a fresh random network
        core.net.load(gpu, &core.net_params(t));
        core.sample_real_batches(ds, t);
        // siamese DSA: one op and one parameter set per class, shared by its real and synthetic images
        let mut syn_params = Vec::with_capacity(m);
        for (slot, &c) in core.owned.iter().enumerate() {
            let p = core.siamese(t, c);
            gpu.write(&self.real_params[slot], &vec![p; b]);
            syn_params.extend(std::iter::repeat_n(p, ipc));
        }
        gpu.write(&self.syn_params, &syn_params);

        for slot in 0..s.classes {
            core.embed_real_siamese(enc, &core.net, slot, &self.real_params[slot], (&self.real_feat, slot * b * dim));
        }
        augment::gpu::forward(gpu, enc, m, core.img, &core.syn, &self.syn_params, &self.syn_scratch, &self.syn_aug);
        for k in &self.chunks {
            copy_f32(enc, &self.syn_aug, k.start * img, &k.ws.x, 0, k.n * img);
            core.net.forward(gpu, enc, &k.ws, false);
            copy_f32(enc, &k.ws.embed, 0, &self.syn_feat, k.start * dim, k.n * dim);
        }
        self.matching.encode(gpu, enc, &s, &self.real_feat, &self.syn_feat, &self.d_syn_feat);
        for k in &self.chunks {
            copy_f32(enc, &self.d_syn_feat, k.start * dim, &k.ws.d_embed, 0, k.n * dim);
            core.net.backward(gpu, enc, &k.ws, Upstream::Embed, true, None);
            copy_f32(enc, &k.ws.dx, 0, &self.d_syn_aug, k.start * img, k.n * img);
        }
        augment::gpu::backward(gpu, enc, m, core.img, &self.d_syn_aug, &self.syn_params, &self.syn_scratch, &core.d_syn);
        ops::sgd(gpu, enc, m * img, core.pixel_sgd(), &core.d_syn, &core.syn, &core.syn_mom);
    }

    /// What this iteration computed beyond the core's buffers, into a trace (after the submit): the synthetic images
    /// as augmented, both sides' features, the term per class and its gradient on the features, HDD's geometry.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn trace_into(&self, core: &Core, tr: &mut crate::trace::Trace) -> Result<(), GpuError> {
        let gpu = core.gpu;
        let s = self.shape;
        let (m, img) = (core.images(), core.img);
        let (loss_buf, stride) = self.matching.loss();
        let raw = gpu.read_many(&[
            (&self.syn_aug, m * img.len()),
            (&self.real_feat, s.classes * s.per_real * s.dim),
            (&self.syn_feat, m * s.dim),
            (&self.d_syn_feat, m * s.dim),
            (loss_buf, s.classes * stride),
        ])?;
        tr.f32("syn.augmented", &[m, img.c, img.h, img.w], raw[0].clone());
        tr.f32("real.embed", &[s.classes * s.per_real, s.dim], raw[1].clone());
        tr.f32("syn.embed", &[m, s.dim], raw[2].clone());
        tr.f32("syn.embed_grad", &[m, s.dim], raw[3].clone());
        tr.f32("loss.per_class", &[s.classes], self.matching.per_class(&raw[4]));
        if let Matching::Hdd { params, bufs, .. } = &self.matching {
            let g = crate::hdd::gpu::read_geometry(gpu, &s, params, bufs, &raw[1], &raw[2])?;
            tr.f64("hdd.real_points", &[s.classes * s.per_real, s.dim + 1], g.real_points);
            tr.f64("hdd.syn_points", &[m, s.dim + 1], g.syn_points);
            tr.f64("hdd.real_centroid", &[s.classes, s.dim + 1], g.real_centroids);
            tr.f64("hdd.syn_centroid", &[s.classes, s.dim + 1], g.syn_centroids);
            tr.f64("hdd.distance", &[s.classes], g.distances);
        }
        Ok(())
    }
}
