//! view: two-dimensional pictures of feature clouds for the app, in f64 on the CPU.
//!
//! Poincaré disk (hyperbolic): every hyperboloid point x is seen from a centre μ on the hyperboloid (the real
//! data's centroid, or a class centroid after a click). Moving μ to the origin o = (√k, 0, …) is a Lorentz
//! isometry; we apply it as "log map at μ, then parallel transport μ → o", which yields a tangent vector at the
//! origin whose Euclidean norm is exactly the geodesic distance d(μ, x). PCA over the real points' vectors picks
//! the two directions to draw; the point is placed along its projected direction at Poincaré radius
//! tanh(d / 2√k) (unit disk), so the distance to the centre is preserved exactly and only the direction is
//! approximated.
//!
//! Euclidean contrast: the raw features, centred on the real mean and projected on their own top two PCs.
//!
//! What is drawn comes from `ViewFeatures`: a fixed random "view" ConvNet-3 of the run's seed embeds a seeded sample of
//! real images (`shown_real`) and the synthetic set; the app computes it every iteration, `report` once per snapshot.

use crate::data::Dataset;
use crate::hdd::{geoopt, HddParams};
use crate::nn::convnet::{ConvNetConfig, ConvNetParams};
use crate::rng;

/// The real images the views show: the first `per_class` of each class in a seeded shuffle (fewer where a class has
/// fewer), normalised and class-major, with their labels and the number per class.
pub fn shown_real(ds: &Dataset, per_class: usize, seed: u64) -> (Vec<f32>, Vec<usize>, usize) {
    let class_idx = ds.class_indices(&ds.train);
    let per = per_class.min(class_idx.iter().map(Vec::len).min().unwrap_or(0)).max(1);
    let mut r = rng::stream(seed, "app-view-real");
    let mut real = vec![];
    let mut labels = vec![];
    for (c, idx) in class_idx.iter().enumerate() {
        let mut pool = idx.clone();
        for i in 0..per.min(pool.len()) {
            let j = rand::RngExt::random_range(&mut r, i..pool.len());
            pool.swap(i, j);
        }
        let n = per.min(pool.len());
        real.extend(ds.normalized(&ds.train, &pool[..n]));
        labels.extend(std::iter::repeat_n(c, n));
    }
    (real, labels, per)
}

/// The view network of a seed: a random ConvNet-3 of the distillation's width, fixed for the whole session so that
/// snapshots are comparable.
pub fn view_net(ds: &Dataset, width: usize, seed: u64) -> Result<ConvNetParams, crate::nn::convnet::ConfigError> {
    let cfg = ConvNetConfig::new(ds.shape(), width, ds.classes.len())?;
    Ok(ConvNetParams::init(&cfg, &mut rng::stream(seed, "app-view-net")))
}

/// The classes shown by default: all of them up to ten, else ten spread evenly over the label range (first and last
/// included).
pub fn default_classes(classes: usize) -> Vec<usize> {
    if classes <= 10 {
        return (0..classes).collect();
    }
    (0..10).map(|i| (i * (classes - 1) + 4) / 9).collect()
}

/// A distinct colour per class (the app's and the report's): up to ten classes, Petroff's ten-colour sequence, chosen
/// to stay distinguishable under the common colour-vision deficiencies (M. A. Petroff, "Accessible Color Sequences for
/// Data Visualization", 2021; matplotlib's `petroff10`); beyond ten, evenly spaced hues (shown ten at a time: the
/// app's class picker).
pub fn class_rgb(c: usize, classes: usize) -> [u8; 3] {
    const PETROFF10: [[u8; 3]; 10] = [
        [0x3f, 0x90, 0xda], [0xff, 0xa9, 0x0e], [0xbd, 0x1f, 0x01], [0x94, 0xa4, 0xa2], [0x83, 0x2d, 0xb6],
        [0xa9, 0x6b, 0x59], [0xe7, 0x63, 0x00], [0xb9, 0xac, 0x70], [0x71, 0x75, 0x81], [0x92, 0xda, 0xdd],
    ];
    if classes <= 10 {
        return PETROFF10[c % 10];
    }
    // HSV (h, 0.75, 0.9) → RGB
    let (h, s, v) = (c as f64 / classes as f64 * 6.0, 0.75, 0.9);
    let i = h.floor();
    let f = h - i;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    let (r, g, b) = match i as i64 % 6 {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    };
    [(r * 255.0).round() as u8, (g * 255.0).round() as u8, (b * 255.0).round() as u8]
}

/// Features of the fixed view network for the shown real images and all synthetic images.
pub struct ViewFeatures {
    pub hdd: HddParams,
    pub classes: usize,
    /// Euclidean features v (length D), real then synthetic, with their labels.
    pub real_feat: Vec<Vec<f64>>,
    pub syn_feat: Vec<Vec<f64>>,
    pub real_labels: Vec<usize>,
    pub syn_labels: Vec<usize>,
    /// The same on the hyperboloid (length D + 1).
    pub real_pts: Vec<Vec<f64>>,
    pub syn_pts: Vec<Vec<f64>>,
    /// Law centroids per class, and of all real points.
    pub real_centroids: Vec<Vec<f64>>,
    pub syn_centroids: Vec<Vec<f64>>,
    pub real_centre: Vec<f64>,
    /// Per class: geodesic distance between the centroids, and DM's mean-feature MSE (mean over dimensions).
    pub class_dist: Vec<f64>,
    pub class_mse: Vec<f64>,
}

impl ViewFeatures {
    pub fn from_features(hdd: HddParams, classes: usize, feats: &[f32], dim: usize, real_labels: Vec<usize>, syn_labels: Vec<usize>) -> Self {
        let rows: Vec<Vec<f64>> = feats.chunks(dim).map(|r| r.iter().map(|&v| v as f64).collect()).collect();
        let (real_feat, syn_feat) = {
            let (a, b) = rows.split_at(real_labels.len());
            (a.to_vec(), b.to_vec())
        };
        let to_pts = |v: &[Vec<f64>]| v.iter().map(|f| geoopt::to_hyperboloid(f, &hdd)).collect::<Vec<_>>();
        let (real_pts, syn_pts) = (to_pts(&real_feat), to_pts(&syn_feat));
        let per_class = |pts: &[Vec<f64>], labels: &[usize], c: usize| -> Vec<Vec<f64>> {
            pts.iter().zip(labels).filter(|(_, l)| **l == c).map(|(p, _)| p.clone()).collect()
        };
        let mut real_centroids = vec![];
        let mut syn_centroids = vec![];
        let mut class_dist = vec![];
        let mut class_mse = vec![];
        for c in 0..classes {
            let (r, s) = (per_class(&real_pts, &real_labels, c), per_class(&syn_pts, &syn_labels, c));
            let (cr, cs) = (geoopt::centroid(&r, hdd.k), geoopt::centroid(&s, hdd.k));
            class_dist.push(geoopt::dist(&cr, &cs, hdd.k));
            real_centroids.push(cr);
            syn_centroids.push(cs);
            let mean = |f: &[Vec<f64>], labels: &[usize]| {
                let mut m = vec![0.0; dim];
                let rows: Vec<&Vec<f64>> = f.iter().zip(labels).filter(|(_, l)| **l == c).map(|(x, _)| x).collect();
                for x in &rows {
                    m.iter_mut().zip(x.iter()).for_each(|(a, b)| *a += b / rows.len() as f64);
                }
                m
            };
            let (mr, ms) = (mean(&real_feat, &real_labels), mean(&syn_feat, &syn_labels));
            class_mse.push(mr.iter().zip(&ms).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / dim as f64);
        }
        let real_centre = geoopt::centroid(&real_pts, hdd.k);
        ViewFeatures { hdd, classes, real_feat, syn_feat, real_labels, syn_labels, real_pts, syn_pts, real_centroids, syn_centroids, real_centre, class_dist, class_mse }
    }

    /// ‖v‖/√k of a feature: the geodesic radius expmap0 would give it before the clamp.
    pub fn radius(&self, v: &[f64]) -> f64 {
        norm(v) / self.hdd.k.sqrt()
    }

    /// True when the clamp bites for every shown point (then all sit at one distance from the origin).
    pub fn clamp_binds_all(&self) -> bool {
        match (self.hdd.clamp, self.hdd.map) {
            (Some(c), crate::hdd::LorentzMap::Expmap) => {
                self.real_feat.iter().chain(&self.syn_feat).all(|v| self.radius(v) >= c)
            }
            _ => false,
        }
    }
}


/// −⟨μ, x⟩_L / k, never below 1 (rounding can push it under for coincident points).
fn cosh_ratio(mu: &[f64], x: &[f64], k: f64) -> f64 {
    (-geoopt::inner(mu, x) / k).max(1.0)
}

/// Tangent vector at the origin (spatial part, length D) that represents x as seen from μ:
/// log_μ(x) transported along the geodesic μ → o. Its norm is d(μ, x).
pub fn log_from(mu: &[f64], x: &[f64], k: f64) -> Vec<f64> {
    let sk = k.sqrt();
    let alpha = cosh_ratio(mu, x, k);
    let d = sk * geoopt::arcosh(alpha);
    // u = x − α μ is tangent at μ (⟨μ,u⟩ = 0) with Lorentz norm √(k(α² − 1)).
    let u_norm = (k * (alpha * alpha - 1.0)).max(0.0).sqrt();
    let scale = if u_norm > 1e-300 { d / u_norm } else { 1.0 };
    let v: Vec<f64> = x.iter().zip(mu).map(|(xi, mi)| scale * (xi - alpha * mi)).collect();
    // parallel transport μ → o: PT(v) = v + ⟨o, v⟩/(k − ⟨μ, o⟩)·(μ + o), with ⟨o, v⟩ = −√k v₀ and ⟨μ, o⟩ = −√k μ₀
    let coef = (-sk * v[0]) / (k + sk * mu[0]);
    v[1..].iter().zip(&mu[1..]).map(|(vi, mi)| vi + coef * mi).collect()
}

/// Points on the geodesic from a to b (both on the hyperboloid), `steps + 1` of them, ends included.
pub fn geodesic(a: &[f64], b: &[f64], k: f64, steps: usize) -> Vec<Vec<f64>> {
    let sk = k.sqrt();
    let alpha = cosh_ratio(a, b, k);
    let d = sk * geoopt::arcosh(alpha);
    let u_norm = (k * (alpha * alpha - 1.0)).max(0.0).sqrt();
    if u_norm < 1e-12 {
        return vec![a.to_vec(), b.to_vec()];
    }
    // γ(τ) = cosh(τ/√k)·a + √k·sinh(τ/√k)·w, w = (b − α a)/‖b − α a‖_L, reaching b at τ = d
    (0..=steps)
        .map(|s| {
            let tau = d * s as f64 / steps as f64;
            let (c, sh) = ((tau / sk).cosh(), sk * (tau / sk).sinh() / u_norm);
            a.iter().zip(b).map(|(ai, bi)| c * ai + sh * (bi - alpha * ai)).collect()
        })
        .collect()
}

/// Top two principal directions of `rows` (each of length D) about `mean`, by power iteration with
/// deflation. Deterministic; `prev` (last basis) fixes the signs so the picture does not flip between frames.
pub fn pca2(rows: &[Vec<f64>], mean: &[f64], prev: Option<&[Vec<f64>; 2]>) -> [Vec<f64>; 2] {
    let dim = mean.len();
    let centred: Vec<Vec<f64>> = rows.iter().map(|r| r.iter().zip(mean).map(|(a, m)| a - m).collect()).collect();
    let mut basis: [Vec<f64>; 2] = [vec![0.0; dim], vec![0.0; dim]];
    for j in 0..2 {
        // start from a fixed, generic vector
        let mut v: Vec<f64> = (0..dim).map(|i| 1.0 + ((i * 7 + j * 13) % 11) as f64 * 0.1).collect();
        for _ in 0..100 {
            let mut w = vec![0.0; dim];
            for r in &centred {
                let p = dot(r, &v);
                w.iter_mut().zip(r).for_each(|(wi, ri)| *wi += p * ri);
            }
            for b in &basis[..j] {
                let p = dot(&w, b);
                w.iter_mut().zip(b).for_each(|(wi, bi)| *wi -= p * bi);
            }
            let n = norm(&w);
            if n < 1e-300 {
                break;
            }
            let next: Vec<f64> = w.iter().map(|a| a / n).collect();
            let change: f64 = next.iter().zip(&v).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            v = next;
            if change < 1e-10 {
                break;
            }
        }
        if norm(&v) > 0.0 {
            let n = norm(&v);
            v.iter_mut().for_each(|a| *a /= n);
        }
        let sign = match prev {
            Some(p) if p[j].len() == dim => dot(&p[j], &v),
            _ => v.iter().copied().fold(0.0f64, |acc, a| if a.abs() > acc.abs() { a } else { acc }),
        };
        if sign < 0.0 {
            v.iter_mut().for_each(|a| *a = -*a);
        }
        basis[j] = v;
    }
    basis
}

pub fn norm(v: &[f64]) -> f64 {
    v.iter().map(|a| a * a).sum::<f64>().sqrt()
}

/// How the disk turns a geodesic distance d from its centre into a radius: ρ = tanh(d / (2 s √k)). s = 1 is the exact
/// Poincaré disk; s > 1 divides every distance from the centre by s — a similarity of the picture that keeps the order
/// of distances and every angle (the same points drawn at curvature −1/(k s²)). With the authors' settings features lie
/// 8–10 units from any centre and the exact picture puts them all on the rim (tanh 4.5 ≈ 0.9998).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RadialScale {
    Exact,
    /// s chosen so that the median real point is drawn at radius `AUTO_RADIUS`
    Auto,
    Factor(f64),
}

/// Where `RadialScale::Auto` puts the median real point.
pub const AUTO_RADIUS: f64 = 0.5;

impl RadialScale {
    /// The factor s for points at distances `real_dist` from the centre.
    pub fn factor(self, real_dist: &[f64], k: f64) -> f64 {
        match self {
            RadialScale::Exact => 1.0,
            RadialScale::Factor(s) if s.is_finite() && s > 0.0 => s,
            RadialScale::Factor(_) => 1.0,
            RadialScale::Auto => {
                let mut d: Vec<f64> = real_dist.iter().copied().filter(|x| x.is_finite()).collect();
                if d.is_empty() {
                    return 1.0;
                }
                d.sort_by(f64::total_cmp);
                let median = d[d.len() / 2];
                // tanh(median / (2 s √k)) = AUTO_RADIUS
                let s = median / (2.0 * k.sqrt() * AUTO_RADIUS.atanh());
                if s.is_finite() && s > 0.0 { s } else { 1.0 }
            }
        }
    }
}

/// The drawn radius of a point at geodesic distance `d` from the centre, at scale `s`.
pub fn disk_radius(d: f64, k: f64, s: f64) -> f64 {
    (d / (2.0 * s * k.sqrt())).tanh()
}

/// Place one tangent vector (at the origin, norm = distance to the centre) in the unit Poincaré disk, distances
/// divided by `s` (see `RadialScale`).
pub fn to_disk(t: &[f64], basis: &[Vec<f64>; 2], k: f64, s: f64) -> [f64; 2] {
    let r = norm(t);
    let (px, py) = (dot(t, &basis[0]), dot(t, &basis[1]));
    let pn = (px * px + py * py).sqrt();
    let rho = disk_radius(r, k, s);
    if pn < 1e-300 { [rho, 0.0] } else { [rho * px / pn, rho * py / pn] }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The disk picture of one snapshot, seen from `centre`.
#[derive(Clone, Debug, Default)]
pub struct DiskPicture {
    pub real: Vec<[f64; 2]>,
    pub syn: Vec<[f64; 2]>,
    pub real_centroids: Vec<[f64; 2]>,
    pub syn_centroids: Vec<[f64; 2]>,
    pub arcs: Vec<Vec<[f64; 2]>>,
    /// geodesic distance of every point to the centre (what the disk radius encodes)
    pub real_dist: Vec<f64>,
    pub syn_dist: Vec<f64>,
    pub basis: Option<[Vec<f64>; 2]>,
    /// the radial factor s the picture was drawn with (1 = exact)
    pub scale: f64,
}

/// Project real and synthetic hyperboloid points, the per-class centroids and the arcs between them.
#[allow(clippy::too_many_arguments)]
pub fn disk_picture(
    real: &[Vec<f64>],
    syn: &[Vec<f64>],
    real_centroids: &[Vec<f64>],
    syn_centroids: &[Vec<f64>],
    centre: &[f64],
    k: f64,
    prev_basis: Option<&[Vec<f64>; 2]>,
    scale: RadialScale,
) -> DiskPicture {
    let logs = |pts: &[Vec<f64>]| pts.iter().map(|x| log_from(centre, x, k)).collect::<Vec<_>>();
    let (lr, ls) = (logs(real), logs(syn));
    let real_dist: Vec<f64> = lr.iter().map(|t| norm(t)).collect();
    let s = scale.factor(&real_dist, k);
    let dim = centre.len() - 1;
    // PCA about the origin of the tangent space: the centre itself is the reference point
    let basis = pca2(&lr, &vec![0.0; dim], prev_basis);
    let place = |v: &[Vec<f64>]| v.iter().map(|t| to_disk(t, &basis, k, s)).collect::<Vec<_>>();
    let arcs = real_centroids
        .iter()
        .zip(syn_centroids)
        .map(|(a, b)| geodesic(a, b, k, 24).iter().map(|p| to_disk(&log_from(centre, p, k), &basis, k, s)).collect())
        .collect();
    DiskPicture {
        real: place(&lr),
        syn: place(&ls),
        real_centroids: place(&logs(real_centroids)),
        syn_centroids: place(&logs(syn_centroids)),
        arcs,
        real_dist,
        syn_dist: ls.iter().map(|t| norm(t)).collect(),
        basis: Some(basis),
        scale: s,
    }
}

/// Euclidean contrast: raw features projected on the real features' top two PCs, about the real mean.
pub fn euclidean_picture(real: &[Vec<f64>], syn: &[Vec<f64>], prev: Option<&[Vec<f64>; 2]>) -> (Vec<[f64; 2]>, Vec<[f64; 2]>, [Vec<f64>; 2]) {
    let dim = real.first().map_or(0, Vec::len);
    let mut mean = vec![0.0; dim];
    for r in real {
        mean.iter_mut().zip(r).for_each(|(m, a)| *m += a / real.len() as f64);
    }
    let basis = pca2(real, &mean, prev);
    let proj = |v: &[Vec<f64>]| {
        v.iter()
            .map(|r| {
                let c: Vec<f64> = r.iter().zip(&mean).map(|(a, m)| a - m).collect();
                [dot(&c, &basis[0]), dot(&c, &basis[1])]
            })
            .collect::<Vec<_>>()
    };
    (proj(real), proj(syn), basis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hdd::{HddParams, LorentzMap};

    fn point(v: &[f64], k: f64) -> Vec<f64> {
        geoopt::expmap0(v, &HddParams { k, clamp: None, map: LorentzMap::Expmap, weighted: false })
    }

    #[test]
    fn log_from_preserves_distance_and_is_an_isometry() {
        for &k in &[0.5, 1.0, 2.4] {
            let (a, b, c) = (point(&[0.3, -1.2, 0.7], k), point(&[2.0, 0.1, -0.4], k), point(&[-0.5, 0.9, 1.1], k));
            let (ta, tb) = (log_from(&c, &a, k), log_from(&c, &b, k));
            // distance to the centre is the norm
            assert!((norm(&ta) - geoopt::dist(&c, &a, k)).abs() < 1e-9, "k={k}");
            // the isometry keeps mutual distances: map both back with expmap0 and compare d(a, b)
            let (a2, b2) = (point(&ta, k), point(&tb, k));
            let (d1, d2) = (geoopt::dist(&a, &b, k), geoopt::dist(&a2, &b2, k));
            assert!((d1 - d2).abs() < 1e-8 * d1.max(1.0), "k={k}: {d1} vs {d2}");
            // seen from itself, a point is at the origin
            assert!(norm(&log_from(&c, &c, k)) < 1e-6);
        }
    }

    #[test]
    fn geodesic_ends_and_constant_speed() {
        let k = 1.3;
        let (a, b) = (point(&[0.2, 1.0, -0.3], k), point(&[-1.5, 0.4, 0.8], k));
        let g = geodesic(&a, &b, k, 10);
        assert!(g[0].iter().zip(&a).all(|(x, y)| (x - y).abs() < 1e-9));
        assert!(g[10].iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-8));
        let d = geoopt::dist(&a, &b, k);
        for w in g.windows(2) {
            assert!((geoopt::dist(&w[0], &w[1], k) - d / 10.0).abs() < 1e-7);
            assert!((geoopt::inner(&w[1], &w[1]) + k).abs() < 1e-8); // on the manifold
        }
    }

    #[test]
    fn pca_finds_the_dominant_axes_and_disk_radius_encodes_distance() {
        // points spread mostly along e1, then e2, in 4-D
        let rows: Vec<Vec<f64>> = (0..40).map(|i| {
            let t = i as f64 / 40.0 - 0.5;
            vec![10.0 * t, 3.0 * (i as f64 * 1.7).sin(), 0.1 * (i as f64).cos(), 0.0]
        }).collect();
        let b = pca2(&rows, &[0.0; 4], None);
        assert!(b[0][0].abs() > 0.99, "{:?}", b[0]);
        assert!(b[1][1].abs() > 0.99, "{:?}", b[1]);
        let k = 2.0;
        let p = to_disk(&[3.0, 4.0, 0.0, 0.0], &b, k, 1.0);
        let rho = (p[0] * p[0] + p[1] * p[1]).sqrt();
        // Poincaré distance from the centre of the unit disk scaled by √k: 2√k artanh ρ
        assert!((2.0 * k.sqrt() * rho.atanh() - 5.0).abs() < 1e-9);
        // at scale s the same point is drawn where distance 5/s would be, in the same direction
        let q = to_disk(&[3.0, 4.0, 0.0, 0.0], &b, k, 4.0);
        let rq = (q[0] * q[0] + q[1] * q[1]).sqrt();
        assert!((2.0 * k.sqrt() * 4.0 * rq.atanh() - 5.0).abs() < 1e-9);
        assert!((q[0] / rq - p[0] / rho).abs() < 1e-12 && (q[1] / rq - p[1] / rho).abs() < 1e-12);
    }

    #[test]
    fn auto_scale_puts_the_median_real_point_at_half_radius_and_keeps_the_order() {
        // the authors' regime: every point 8–10 units out, which the exact disk draws on the rim
        let k = 1.0;
        let d: Vec<f64> = (0..101).map(|i| 8.0 + 2.0 * i as f64 / 100.0).collect();
        let exact: Vec<f64> = d.iter().map(|&x| disk_radius(x, k, RadialScale::Exact.factor(&d, k))).collect();
        assert!(exact.iter().all(|&r| r > 0.98), "exact: all on the rim");
        let s = RadialScale::Auto.factor(&d, k);
        let auto: Vec<f64> = d.iter().map(|&x| disk_radius(x, k, s)).collect();
        println!("auto scale s = {s:.3}: radii {:.3}..{:.3} (exact {:.5}..{:.5})", auto[0], auto[100], exact[0], exact[100]);
        assert!((auto[50] - AUTO_RADIUS).abs() < 1e-12);
        assert!(auto.windows(2).all(|w| w[0] < w[1]), "order kept");
        assert_eq!(RadialScale::Factor(3.0).factor(&d, k), 3.0);
        assert_eq!(RadialScale::Factor(f64::NAN).factor(&d, k), 1.0);
        assert_eq!(RadialScale::Auto.factor(&[], k), 1.0);
    }
}
