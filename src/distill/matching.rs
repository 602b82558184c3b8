//! distill::matching: the one term every method matches real and synthetic features with — DM's squared distance of
//! the feature means (× a scale: 1 for DM and IDM, 1/D for DANCE's mean squared error) or HDD's λ·d_L between the
//! Lorentz centroids — with its gradient on the synthetic features and its value per class left on the GPU.

use wgpu::{Buffer, CommandEncoder};

use crate::gpu::{Gpu, GpuError};
use crate::hdd::{self, HddParams};
use crate::nn::ops;
use crate::shapes::MatchShape;

/// f32 per class in `Matching::loss`: HDD keeps the geodesic distance and its gradient coefficients per class,
/// DM one value.
pub const LOSS_STRIDE: usize = hdd::gpu::COEF_STRIDE;

/// The matching term and the scratch it needs for one shape, allocated once.
pub enum Matching {
    /// Σ_d (mean_r − mean_s)² × scale, per class: `loss` [classes], `sq` [classes, dim].
    Dm { scale: f32, sq: Buffer, loss: Buffer },
    /// λ · d_L(real centroid, synthetic centroid), per class: distances and coefficients in `bufs.coef`.
    Hdd { lambda: f32, params: HddParams, bufs: hdd::gpu::HddBuffers },
}

impl Matching {
    /// DM's term (with its scale) or, for `Some((λ, map))`, HDD's.
    pub fn new(gpu: &Gpu, s: &MatchShape, dm_scale: f32, hdd: Option<(f32, HddParams)>) -> Result<Self, GpuError> {
        Ok(match hdd {
            Some((lambda, params)) => Matching::Hdd { lambda, params, bufs: hdd::gpu::HddBuffers::new(gpu, s)? },
            None => Matching::Dm { scale: dm_scale, sq: gpu.zeros("dm_sq", s.classes * s.dim)?, loss: gpu.zeros("dm_loss", s.classes)? },
        })
    }

    /// Record the term on `real` and `syn` features of shape `s`, its gradient with respect to `syn` into `grad`.
    pub fn encode(&self, gpu: &Gpu, enc: &mut CommandEncoder, s: &MatchShape, real: &Buffer, syn: &Buffer, grad: &Buffer) {
        match self {
            Matching::Dm { scale, sq, loss } => ops::dm_matching(gpu, enc, s, *scale, real, syn, sq, loss, grad),
            Matching::Hdd { lambda, params, bufs } => hdd::gpu::encode(gpu, enc, s, params, *lambda, real, syn, bufs, grad),
        }
    }

    /// Where the last term's per-class values live: (buffer, f32 per class).
    pub fn loss(&self) -> (&Buffer, usize) {
        match self {
            Matching::Dm { loss, .. } => (loss, 1),
            Matching::Hdd { bufs, .. } => (&bufs.coef, LOSS_STRIDE),
        }
    }

    /// Copy the values of a one-class term into slot `c` of `all` [classes, LOSS_STRIDE] (class-by-class methods).
    pub fn record_class(&self, enc: &mut CommandEncoder, c: usize, all: &Buffer) {
        let (src, n) = self.loss();
        super::copy_f32(enc, src, 0, all, c * n, n);
    }

    /// The per-class terms in a read-back copy of `loss`'s values (`classes` of them): DM's value, or λ·d_c.
    pub fn per_class(&self, raw: &[f32]) -> Vec<f32> {
        match self {
            Matching::Dm { .. } => raw.to_vec(),
            Matching::Hdd { lambda, .. } => hdd::gpu::distances_from(raw).iter().map(|d| d * lambda).collect(),
        }
    }
}
