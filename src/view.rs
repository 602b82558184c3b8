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

use crate::hdd::geoopt;

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

/// Place one tangent vector (at the origin, norm = distance to the centre) in the unit Poincaré disk.
pub fn to_disk(t: &[f64], basis: &[Vec<f64>; 2], k: f64) -> [f64; 2] {
    let r = norm(t);
    let (px, py) = (dot(t, &basis[0]), dot(t, &basis[1]));
    let pn = (px * px + py * py).sqrt();
    let rho = (r / (2.0 * k.sqrt())).tanh();
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
}

/// Project real and synthetic hyperboloid points, the per-class centroids and the arcs between them.
pub fn disk_picture(
    real: &[Vec<f64>],
    syn: &[Vec<f64>],
    real_centroids: &[Vec<f64>],
    syn_centroids: &[Vec<f64>],
    centre: &[f64],
    k: f64,
    prev_basis: Option<&[Vec<f64>; 2]>,
) -> DiskPicture {
    let logs = |pts: &[Vec<f64>]| pts.iter().map(|x| log_from(centre, x, k)).collect::<Vec<_>>();
    let (lr, ls) = (logs(real), logs(syn));
    let dim = centre.len() - 1;
    // PCA about the origin of the tangent space: the centre itself is the reference point
    let basis = pca2(&lr, &vec![0.0; dim], prev_basis);
    let place = |v: &[Vec<f64>]| v.iter().map(|t| to_disk(t, &basis, k)).collect::<Vec<_>>();
    let arcs = real_centroids
        .iter()
        .zip(syn_centroids)
        .map(|(a, b)| geodesic(a, b, k, 24).iter().map(|p| to_disk(&log_from(centre, p, k), &basis, k)).collect())
        .collect();
    DiskPicture {
        real: place(&lr),
        syn: place(&ls),
        real_centroids: place(&logs(real_centroids)),
        syn_centroids: place(&logs(syn_centroids)),
        arcs,
        real_dist: lr.iter().map(|t| norm(t)).collect(),
        syn_dist: ls.iter().map(|t| norm(t)).collect(),
        basis: Some(basis),
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
        let p = to_disk(&[3.0, 4.0, 0.0, 0.0], &b, k);
        let rho = (p[0] * p[0] + p[1] * p[1]).sqrt();
        // Poincaré distance from the centre of the unit disk scaled by √k: 2√k artanh ρ
        assert!((2.0 * k.sqrt() * rho.atanh() - 5.0).abs() < 1e-9);
    }
}
