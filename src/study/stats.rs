//! study::stats: what a study says about its numbers — mean and sample standard deviation over seeds, and for a pair
//! of methods the paired difference with its 95 % confidence interval by Student's t (the seeds pair the runs: same
//! initial images, real batches, networks and augmentations). The t quantile comes from the regularised incomplete
//! beta function (Numerical Recipes' continued fraction), checked against tabulated values in the tests.

/// Mean and sample standard deviation (n − 1; 0 for one value).
pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = v.iter().sum::<f64>() / n;
    let sd = if v.len() > 1 { (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() } else { 0.0 };
    (mean, sd)
}

/// A paired comparison of B against A over the same seeds.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Paired {
    /// Seeds with both runs.
    pub n: usize,
    /// Mean of B − A, its sample standard deviation, and the 95 % confidence interval of the mean (Student's t,
    /// n − 1 degrees of freedom; NaN for fewer than 2 pairs).
    pub mean: f64,
    pub sd: f64,
    pub low: f64,
    pub high: f64,
    /// Two-sided p-value of "no difference" (paired t-test).
    pub p: f64,
}

/// The paired difference of `b` against `a` (equal lengths: pair i is seed i).
pub fn paired(a: &[f64], b: &[f64]) -> Paired {
    assert_eq!(a.len(), b.len(), "paired samples");
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| y - x).collect();
    let n = d.len();
    let (mean, sd) = mean_sd(&d);
    if n < 2 {
        return Paired { n, mean, sd, low: f64::NAN, high: f64::NAN, p: f64::NAN };
    }
    let df = (n - 1) as f64;
    let se = sd / (n as f64).sqrt();
    let t = student_t_quantile(0.975, df);
    let p = if se > 0.0 { 2.0 * (1.0 - student_t_cdf((mean / se).abs(), df)) } else if mean == 0.0 { 1.0 } else { 0.0 };
    Paired { n, mean, sd, low: mean - t * se, high: mean + t * se, p }
}

/// P(T ≤ t) for Student's t with `df` degrees of freedom.
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    let x = df / (df + t * t);
    let tail = 0.5 * incomplete_beta(0.5 * df, 0.5, x);
    if t >= 0.0 { 1.0 - tail } else { tail }
}

/// The `p` quantile of Student's t with `df` degrees of freedom (bisection on the CDF, to 1e-12).
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    let (mut lo, mut hi) = (-1e3, 1e3);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if student_t_cdf(mid, df) < p { lo = mid } else { hi = mid }
        if hi - lo < 1e-12 {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// The regularised incomplete beta function I_x(a, b).
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    // the continued fraction converges fast for x < (a + 1)/(a + b + 2); use the symmetry otherwise
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_cf(a, b, x) / a
    } else {
        1.0 - ln_front.exp() * beta_cf(b, a, 1.0 - x) / b
    }
}

/// The continued fraction of the incomplete beta function (modified Lentz).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    let tiny = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < tiny {
        d = tiny;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < tiny { tiny } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < tiny { tiny } else { c };
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < tiny { tiny } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < tiny { tiny } else { c };
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_the_tables() {
        // two-sided 95 % critical values (the 0.975 quantile), from any t table
        for (df, want) in [(1.0, 12.706_204), (2.0, 4.302_653), (4.0, 2.776_445), (9.0, 2.262_157), (29.0, 2.045_230), (1000.0, 1.962_339)] {
            let got = student_t_quantile(0.975, df);
            assert!((got - want).abs() < 1e-5, "df {df}: {got} vs {want}");
        }
        assert!((student_t_cdf(0.0, 5.0) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn the_paired_interval_matches_a_hand_computation() {
        // B − A = (0.5, 1.0, −0.2, 0.7, 0.5): mean 0.5, sd √(0.195) = 0.441588, se 0.197484, t(0.975, 4) = 2.776445,
        // interval 0.5 ± 0.548304 = (−0.048304, 1.048304); t = 2.531848, two-sided p = 0.064538 (mpmath, 30 digits)
        let a = [80.0, 81.0, 79.5, 80.2, 80.0];
        let b = [80.5, 82.0, 79.3, 80.9, 80.5];
        let p = paired(&a, &b);
        println!("{p:?}");
        assert_eq!(p.n, 5);
        assert!((p.mean - 0.5).abs() < 1e-12);
        assert!((p.sd - 0.441_588).abs() < 1e-6);
        assert!((p.low + 0.048_304).abs() < 1e-6 && (p.high - 1.048_304).abs() < 1e-6, "{p:?}");
        assert!((p.p - 0.064_538).abs() < 1e-6, "{p:?}");
        let (m, s) = mean_sd(&a);
        assert!((m - 80.14).abs() < 1e-12 && (s - 0.545_894).abs() < 1e-6);
    }
}
