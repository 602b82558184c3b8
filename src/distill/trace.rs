//! distill::trace: everything one distillation iteration (DM, IDM) used and produced, read back from the GPU after the iteration ran, so that
//! a tool outside the project (benches/trace_check.py, in PyTorch) can recompute the iteration from its inputs alone
//! and compare. Tracing adds read-backs after the submit and changes nothing the iteration computes.
//!
//! A DM / DM+HDD trace holds (shapes for `classes` owned classes, `b` real and `ipc` synthetic images per class, `D`
//! features):
//!   net.features.{0,1,4,5,8,9}.{weight,bias}, net.classifier.{weight,bias}   the iteration's network, PyTorch names
//!                                                        and layouts of the DC code's `ConvNet` (networks.py)
//!   real.indices [classes, b] i64       each class's real batch: positions in the training split as loaded
//!   real.images [classes·b, C, H, W]    that batch as fed, normalised, before augmentation
//!   dsa.op [classes] i64                the class's DSA op: index into the `dsa_ops` metadata list
//!   dsa.values [classes, 3] f64         its parameters in the DC code's units (`augment::Op::dc_values`), 0-padded
//!   dsa.params [classes, 8] f32         the same as the augmentation kernel read them (`augment::AugParams`)
//!   syn.before / syn.after [classes·ipc, C, H, W]     the synthetic images before and after the step
//!   syn.momentum_before / syn.momentum_after          the SGD momentum buffer before and after the step
//!   syn.augmented [classes·ipc, C, H, W]              the synthetic images after DSA, as the network saw them
//!   real.embed [classes·b, D], syn.embed [classes·ipc, D]   the features
//!   loss.per_class [classes]            DM: Σ_d (mean_r − mean_s)²; HDD: λ·d_L
//!   syn.embed_grad [classes·ipc, D]     ∂loss/∂syn.embed;  syn.grad [classes·ipc, C, H, W]: ∂loss/∂syn.before
//!   HDD: hdd.real_points [classes·b, D + 1], hdd.syn_points, hdd.real_centroid [classes, D + 1], hdd.syn_centroid,
//!        hdd.distance [classes] (see `hdd::gpu::Geometry`)
//! An IDM / IDM+HDD trace holds the same inputs and, per class in the order of its steps (each class's values taken
//! from the GPU between the steps, `idm::IdmTrace`): the net chosen from the queue (`net.*`) and its accuracy meter
//! before the steps (`idm.meter` [2] = correct, seen), real.embed, syn.augmented / syn.embed over the class's e
//! expanded images (e = 4·ipc with the mosaic), syn.logits [classes·e, K], syn.ce [classes·e], loss.per_class (the
//! matching term; hdd.distance for IDM+HDD), syn.grad (each class's own step gradient), and the images and momentum
//! after the last class's step.
//! and its metadata says what the numbers mean (method, options, shapes, normalisation, adapter).

#[cfg(not(target_arch = "wasm32"))]
use crate::trace::Trace;

#[cfg(not(target_arch = "wasm32"))]
impl super::Distiller<'_> {
    /// Whether `step_traced` can trace this run's method (DM, IDM, with or without HDD; not DANCE yet).
    pub fn traceable(&self) -> bool {
        matches!(self.method, super::MethodState::Dm(_) | super::MethodState::Idm(_))
    }

    /// One iteration exactly as `step` runs it, and its trace (see the module comment). Refused for the methods
    /// `traceable` says no to.
    pub fn step_traced(&mut self, ds: &crate::data::Dataset, adapter: &str) -> anyhow::Result<Trace> {
        if !self.traceable() {
            anyhow::bail!("--trace covers DM and IDM iterations (with or without HDD); {} is not traced yet", self.core.cfg.method.name());
        }
        let (gpu, n, t) = (self.core.gpu, self.core.syn_len(), self.core.iteration);
        let mut before = gpu.read_many(&[(&self.core.syn, n), (&self.core.syn_mom, n)])?.into_iter();
        let idm_trace = match &self.method {
            super::MethodState::Idm(i) => Some(super::idm::IdmTrace::new(&self.core, i)?),
            _ => None,
        };
        self.step_with(ds, idm_trace.as_ref())?;
        let core = &self.core;
        let cfg = &core.cfg;
        let (m, img) = (core.images(), core.img);
        let image = [m, img.c, img.h, img.w];
        let mut tr = Trace::default();
        tr.meta("format", "hyperdistill trace 1");
        tr.meta("kind", "distill");
        tr.meta("method", cfg.method.name());
        tr.meta("iteration", t);
        tr.meta("seed", cfg.seed);
        tr.meta("dataset", &ds.name);
        tr.meta("classes", serde_json::to_string(&core.owned)?);
        tr.meta("num_classes", core.classes);
        tr.meta("ipc", cfg.ipc);
        tr.meta("batch_real", core.per_real);
        tr.meta("image", format!("{}x{}x{}", img.c, img.h, img.w));
        tr.meta("width", cfg.width);
        tr.meta("first_pad", core.net_cfg.first_pad());
        tr.meta("norm_eps", crate::reference::NORM_EPS);
        tr.meta("mean", serde_json::to_string(&ds.mean)?);
        tr.meta("std", serde_json::to_string(&ds.std)?);
        tr.meta("lr_img", cfg.lr_img);
        tr.meta("momentum_img", cfg.momentum_img);
        tr.meta("dsa_strategy", &cfg.dsa);
        tr.meta("dsa_ops", crate::augment::TRACE_OP_NAMES.join(","));
        if cfg.method.hdd() {
            let h = cfg.hdd();
            tr.meta("lambda", cfg.lambda);
            tr.meta("k", h.k);
            tr.meta("clamp", h.clamp.map_or("none".to_string(), |c| c.to_string()));
            tr.meta("map", format!("{:?}", h.map).to_lowercase());
            tr.meta("weighted_centroid", h.weighted);
        }
        tr.meta("adapter", adapter);
        tr.meta("version", env!("CARGO_PKG_VERSION"));

        if let super::MethodState::Dm(_) = &self.method {
            tr.convnet("net.", &core.net_params(t));
        }
        let (classes, b) = (core.owned.len(), core.per_real);
        tr.i64("real.indices", &[classes, b], core.real_indices.iter().map(|&i| i as i64).collect());
        let real = gpu.read_f32(&core.real_all, classes * b * img.len())?;
        tr.f32("real.images", &[classes * b, img.c, img.h, img.w], real);
        let (mut ops, mut values, mut params) = (vec![], vec![], vec![]);
        for &c in &core.owned {
            let (op, p) = core.siamese_op(t, c);
            ops.push(crate::augment::trace_op_index(op));
            values.extend(crate::augment::trace_values(op, &p, img.h, img.w));
            params.extend_from_slice(&p.0);
        }
        tr.i64("dsa.op", &[classes], ops);
        tr.f64("dsa.values", &[classes, 3], values);
        tr.f32("dsa.params", &[classes, 8], params);
        tr.f32("syn.before", &image, before.next().expect("two read-backs"));
        tr.f32("syn.momentum_before", &image, before.next().expect("two read-backs"));
        match (&self.method, &idm_trace) {
            (super::MethodState::Dm(dm), _) => dm.trace_into(core, &mut tr)?,
            (super::MethodState::Idm(idm), Some(bufs)) => idm.trace_into(core, bufs, &mut tr)?,
            _ => {}
        }
        let mut after = gpu.read_many(&[(&core.d_syn, n), (&core.syn_mom, n), (&core.syn, n)])?.into_iter();
        for name in ["syn.grad", "syn.momentum_after", "syn.after"] {
            tr.f32(name, &image, after.next().expect("three read-backs"));
        }
        Ok(tr)
    }
}
