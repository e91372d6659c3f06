//! The Mann-Whitney U test and the judge built on it.
//!
//! `test` matches `scipy.stats.mannwhitneyu(canary, baseline, alternative=…,
//! method="auto")`: U is the canary sample's U; ranks are averaged over ties; the
//! normal approximation carries the tie correction and the continuity correction;
//! the exact null distribution is used when either sample has at most 8 values and
//! there are no ties, as scipy's "auto" does.
//!
//! The exact distribution is the Gaussian binomial coefficient
//! `[m+n choose m]_q = Π_{i=1..m} (1 − q^{n+i}) / (1 − q^i)`, whose coefficient of
//! `q^u` counts the arrangements with U = u. It is computed in `i128` (exact; with
//! m ≤ 8 the largest count, C(m+n, m), fits for any n we will see), so p-values are
//! exact to the last bit of the final division. statrs' own exact method is not used:
//! it is wrong when the first sample is the smaller one and enumerates subsets.

use statrs::distribution::{ContinuousCDF, Normal};

use super::{Judgement, Outcome, show};
use crate::domain::strategy::{Direction, MannWhitneyConfig, OnNoData};

/// Which shift of the canary the p-value is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alternative {
    /// The canary tends to be greater than the baseline.
    Greater,
    /// The canary tends to be less than the baseline.
    Less,
    TwoSided,
}

impl From<Direction> for Alternative {
    fn from(direction: Direction) -> Self {
        match direction {
            Direction::Increase => Alternative::Greater,
            Direction::Decrease => Alternative::Less,
            Direction::Either => Alternative::TwoSided,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Exact,
    Asymptotic,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestResult {
    /// U of the canary sample.
    pub u: f64,
    pub p_value: f64,
    pub method: Method,
}

/// Largest smaller sample for which scipy's "auto" uses the exact distribution.
const EXACT_MAX_SMALLER_SAMPLE: usize = 8;

/// Runs the test; `None` when a sample is empty. Values must be finite.
pub fn test(canary: &[f64], baseline: &[f64], alternative: Alternative) -> Option<TestResult> {
    let (n1, n2) = (canary.len(), baseline.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let ranked = rank(canary, baseline);
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let u1 = ranked.canary_rank_sum - n1f * (n1f + 1.0) / 2.0;
    let u2 = n1f * n2f - u1;
    let (u, factor) = match alternative {
        Alternative::Greater => (u1, 1.0),
        Alternative::Less => (u2, 1.0),
        Alternative::TwoSided => (u1.max(u2), 2.0),
    };
    let exact = n1.min(n2) <= EXACT_MAX_SMALLER_SAMPLE && !ranked.has_ties;
    let (p, method) = if exact {
        (exact_sf(u.round() as usize, n1, n2), Method::Exact)
    } else {
        (
            asymptotic_sf(u, n1f, n2f, ranked.tie_term),
            Method::Asymptotic,
        )
    };
    Some(TestResult {
        u: u1,
        p_value: (p * factor).clamp(0.0, 1.0),
        method,
    })
}

struct Ranked {
    canary_rank_sum: f64,
    /// Σ (t³ − t) over groups of t tied values.
    tie_term: f64,
    has_ties: bool,
}

/// Ranks both samples together, averaging the ranks of tied values.
fn rank(canary: &[f64], baseline: &[f64]) -> Ranked {
    let mut all: Vec<(f64, bool)> = canary
        .iter()
        .map(|&v| (v, true))
        .chain(baseline.iter().map(|&v| (v, false)))
        .collect();
    all.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let mut canary_rank_sum = 0.0;
    let mut tie_term = 0.0;
    let mut start = 0;
    while start < all.len() {
        let mut end = start + 1;
        while end < all.len() && all[end].0 == all[start].0 {
            end += 1;
        }
        let tied = (end - start) as f64;
        // Ranks start+1 ..= end, averaged.
        let average_rank = (start + 1 + end) as f64 / 2.0;
        let canaries = all[start..end].iter().filter(|(_, c)| *c).count() as f64;
        canary_rank_sum += average_rank * canaries;
        tie_term += tied * tied * tied - tied;
        start = end;
    }
    Ranked {
        canary_rank_sum,
        tie_term,
        has_ties: tie_term > 0.0,
    }
}

/// P(U ≥ u) under the normal approximation with tie and continuity corrections.
fn asymptotic_sf(u: f64, n1: f64, n2: f64, tie_term: f64) -> f64 {
    let mu = n1 * n2 / 2.0;
    let n = n1 + n2;
    let s = (n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)))).sqrt();
    let numerator = u - mu - 0.5;
    if s == 0.0 {
        // Every value tied: no evidence of any shift (scipy reaches p = 1 via z = −∞).
        return 1.0;
    }
    let z = numerator / s;
    // Φ(−z) = P(Z ≥ z); statrs' cdf is accurate far into the tail.
    let standard = Normal::standard();
    standard.cdf(-z)
}

/// P(U ≥ u) from the exact null distribution of U for samples of sizes n1 and n2.
fn exact_sf(u: usize, n1: usize, n2: usize) -> f64 {
    let counts = u_counts(n1.min(n2), n1.max(n2));
    let total: i128 = counts.iter().sum();
    let tail: i128 = counts.iter().skip(u).sum();
    tail as f64 / total as f64
}

/// Coefficients of the Gaussian binomial `[m+n choose m]_q`: entry u counts the
/// orderings of m and n values whose U statistic is u.
fn u_counts(m: usize, n: usize) -> Vec<i128> {
    let mut coefficients = vec![0i128; m * n + m + 1];
    coefficients[0] = 1;
    for i in 1..=m {
        let grown = (i - 1) * n + n + i;
        let a = n + i;
        // × (1 − q^a)
        for k in (a..=grown).rev() {
            coefficients[k] -= coefficients[k - a];
        }
        // ÷ (1 − q^i): an exact division, so the series terminates.
        for k in i..=grown {
            coefficients[k] += coefficients[k - i];
        }
    }
    coefficients.truncate(m * n + 1);
    coefficients
}

/// Judges canary samples against stable samples.
pub fn judge(
    canary: &[f64],
    baseline: &[f64],
    config: &MannWhitneyConfig,
    on_no_data: OnNoData,
) -> Judgement {
    let canary = clean(canary, config.remove_outliers);
    let baseline = clean(baseline, config.remove_outliers);
    let alternative = Alternative::from(config.direction);
    let result = test(&canary, &baseline, alternative);
    // Rounded so that confidence 0.98 reads as alpha 0.02, not 0.020000000000000018.
    let alpha = ((1.0 - config.confidence) * 1e12).round() / 1e12;
    let (canary_mean, baseline_mean) = (mean(&canary), mean(&baseline));
    let mut judgement = if canary.len() < config.min_samples || baseline.len() < config.min_samples
    {
        let policy = if config.must_have_data {
            OnNoData::Fail
        } else {
            on_no_data
        };
        let what = format!(
            "{} canary and {} stable samples; minSamples is {}",
            canary.len(),
            baseline.len(),
            config.min_samples
        );
        Judgement::no_data(policy, &what)
    } else if let Some(result) = result {
        decide(result, canary_mean, baseline_mean, alpha, config)
    } else {
        Judgement::no_data(on_no_data, "no samples")
    };
    if let Some(result) = result {
        judgement = judgement
            .with_statistic("u", result.u)
            .with_statistic("pValue", result.p_value)
            .with_statistic("exact", f64::from(u8::from(result.method == Method::Exact)));
    }
    judgement = judgement
        .with_statistic("canarySamples", canary.len() as f64)
        .with_statistic("baselineSamples", baseline.len() as f64)
        .with_statistic("alpha", alpha);
    for (name, value) in [("canaryMean", canary_mean), ("baselineMean", baseline_mean)] {
        if let Some(value) = value {
            judgement = judgement.with_statistic(name, value);
        }
    }
    judgement
}

fn decide(
    result: TestResult,
    canary_mean: Option<f64>,
    baseline_mean: Option<f64>,
    alpha: f64,
    config: &MannWhitneyConfig,
) -> Judgement {
    let p = result.p_value;
    let shift = match config.direction {
        Direction::Increase => "higher than",
        Direction::Decrease => "lower than",
        Direction::Either => "different from",
    };
    if p >= alpha {
        return Judgement::new(
            Outcome::Pass,
            format!(
                "canary not significantly {shift} stable (p={} ≥ {})",
                show_p(p),
                show(alpha)
            ),
        );
    }
    // A significant shift: is it beyond the tolerated effect? An all-zero baseline
    // gives an unbounded ratio, which no tolerance covers. (A constant non-zero
    // baseline gives a finite ratio, judged like any other.)
    let ratio = match (canary_mean, baseline_mean) {
        (Some(c), Some(b)) if b != 0.0 => c / b,
        (Some(c), Some(_)) if c > 0.0 => f64::INFINITY,
        (Some(c), Some(_)) if c < 0.0 => f64::NEG_INFINITY,
        _ => 1.0,
    };
    let tolerated = match config.direction {
        Direction::Increase => config.allowed_increase.is_some_and(|a| ratio <= a),
        Direction::Decrease => config.allowed_decrease.is_some_and(|a| ratio >= a),
        Direction::Either => {
            let up = config
                .allowed_increase
                .is_some_and(|a| ratio >= 1.0 && ratio <= a);
            let down = config
                .allowed_decrease
                .is_some_and(|a| ratio < 1.0 && ratio >= a);
            up || down
        }
    };
    let judgement = if tolerated {
        Judgement::new(
            Outcome::Pass,
            format!(
                "canary significantly {shift} stable (p={}) but the mean ratio {} is within the allowed effect",
                show_p(p),
                show(ratio)
            ),
        )
    } else {
        Judgement::new(
            Outcome::Fail,
            format!(
                "canary significantly {shift} stable (p={} < {}), mean ratio {}",
                show_p(p),
                show(alpha),
                if ratio.is_finite() {
                    show(ratio)
                } else {
                    "unbounded (stable mean is 0)".into()
                }
            ),
        )
    };
    if ratio.is_finite() {
        judgement.with_statistic("meanRatio", ratio)
    } else {
        judgement
    }
}

fn show_p(p: f64) -> String {
    if p < 1e-4 {
        format!("{p:.2e}")
    } else {
        show(p)
    }
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Drops NaN and ±Inf and, when asked, values outside 1.5 IQR of the quartiles.
fn clean(values: &[f64], remove_outliers: bool) -> Vec<f64> {
    let mut finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if !remove_outliers || finite.len() < 4 {
        return finite;
    }
    let mut sorted = finite.clone();
    sorted.sort_unstable_by(f64::total_cmp);
    let (q1, q3) = (quantile(&sorted, 0.25), quantile(&sorted, 0.75));
    let fence = 1.5 * (q3 - q1);
    finite.retain(|v| *v >= q1 - fence && *v <= q3 + fence);
    finite
}

/// Linear-interpolation quantile of sorted values (numpy's default).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    sorted[below] + (sorted[above] - sorted[below]) * (position - below as f64)
}

#[cfg(test)]
mod tests;
