//! Canary against stable (`compare: stable`): the same query for both tracks, judged
//! by ratio (`maxRatio`, `minRatio`) and absolute difference (`maxIncrease`).
//!
//! A zero baseline is handled explicitly: the ratio is then unbounded, so a non-zero
//! canary is judged on `maxIncrease` when it is set and fails `maxRatio` otherwise;
//! it is never passed for want of a ratio.

use super::{Judgement, Outcome, show, usable};
use crate::domain::strategy::{CompareLimits, OnNoData};

pub fn judge(
    canary: Option<f64>,
    stable: Option<f64>,
    limits: CompareLimits,
    on_no_data: OnNoData,
) -> Judgement {
    let (canary, stable) = match (usable(canary), usable(stable)) {
        (Some(canary), Some(stable)) => (canary, stable),
        (None, _) => {
            return Judgement::no_data(on_no_data, "the canary query returned no usable value");
        }
        (Some(canary), None) => {
            return Judgement::no_data(
                on_no_data,
                "the stable query returned no usable value; nothing to compare with",
            )
            .with_statistic("canary", canary);
        }
    };
    let increase = canary - stable;
    let ratio = if stable != 0.0 {
        Some(canary / stable)
    } else if canary == 0.0 {
        Some(1.0)
    } else {
        None // unbounded
    };
    let mut failures = Vec::new();
    if let Some(max_increase) = limits.max_increase.filter(|max| increase > *max) {
        failures.push(format!(
            "increase {} is above maxIncrease {}",
            show(increase),
            show(max_increase)
        ));
    }
    // With a zero baseline and maxIncrease set, the absolute increase alone decides.
    let ratio_applies = ratio.is_some() || limits.max_increase.is_none();
    if let Some(max_ratio) = limits.max_ratio.filter(|_| ratio_applies) {
        match ratio {
            Some(r) if r > max_ratio => failures.push(format!("ratio {} is above maxRatio {}", show(r), show(max_ratio))),
            None if canary > 0.0 => failures.push(format!(
                "stable is 0 and canary is {}: the ratio is unbounded, above maxRatio {} (set maxIncrease to tolerate small absolute values)",
                show(canary),
                show(max_ratio)
            )),
            _ => {}
        }
    }
    if let Some(min_ratio) = limits.min_ratio.filter(|_| ratio_applies) {
        match ratio {
            Some(r) if r < min_ratio => failures.push(format!(
                "ratio {} is below minRatio {}",
                show(r),
                show(min_ratio)
            )),
            None if canary < 0.0 => failures.push(format!(
                "stable is 0 and canary is {}: below minRatio",
                show(canary)
            )),
            _ => {}
        }
    }
    let described = format!("canary {} vs stable {}", show(canary), show(stable));
    let judgement = if failures.is_empty() {
        let ratio_text = ratio.map_or("unbounded ratio".to_string(), |r| {
            format!("ratio {}", show(r))
        });
        Judgement::new(
            Outcome::Pass,
            format!(
                "{described}: {ratio_text}, increase {} within limits",
                show(increase)
            ),
        )
    } else {
        Judgement::new(
            Outcome::Fail,
            format!("{described}: {}", failures.join("; ")),
        )
    };
    let mut judgement = judgement
        .with_value(canary)
        .with_statistic("canary", canary)
        .with_statistic("stable", stable)
        .with_statistic("increase", increase);
    if let Some(ratio) = ratio {
        judgement = judgement.with_statistic("ratio", ratio);
    }
    for (name, limit) in [
        ("maxRatio", limits.max_ratio),
        ("minRatio", limits.min_ratio),
        ("maxIncrease", limits.max_increase),
    ] {
        if let Some(limit) = limit {
            judgement = judgement.with_statistic(name, limit);
        }
    }
    judgement
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_ratio: Option<f64>, max_increase: Option<f64>) -> CompareLimits {
        CompareLimits {
            max_ratio,
            min_ratio: None,
            max_increase,
        }
    }

    #[test]
    fn judges_ratio_and_increase() {
        let table = [
            (0.20, 0.18, limits(Some(1.25), None), Outcome::Pass),
            (0.30, 0.20, limits(Some(1.25), None), Outcome::Fail),
            (0.30, 0.20, limits(None, Some(0.2)), Outcome::Pass),
            (0.30, 0.05, limits(None, Some(0.2)), Outcome::Fail),
            (0.30, 0.20, limits(Some(2.0), Some(0.05)), Outcome::Fail),
        ];
        for (canary, stable, limits, expected) in table {
            let judgement = judge(Some(canary), Some(stable), limits, OnNoData::Inconclusive);
            assert_eq!(
                judgement.outcome, expected,
                "{canary} vs {stable} with {limits:?}: {}",
                judgement.reason
            );
        }
    }

    #[test]
    fn a_non_zero_canary_against_a_zero_baseline_is_never_silently_passed() {
        let judgement = judge(
            Some(0.04),
            Some(0.0),
            limits(Some(1.5), None),
            OnNoData::Inconclusive,
        );
        assert_eq!(judgement.outcome, Outcome::Fail);
        assert!(
            judgement.reason.contains("ratio is unbounded"),
            "{}",
            judgement.reason
        );
        assert!(!judgement.statistics.contains_key("ratio"));
    }

    #[test]
    fn a_zero_baseline_is_judged_on_the_absolute_increase_when_one_is_allowed() {
        let small = judge(
            Some(0.004),
            Some(0.0),
            limits(Some(1.5), Some(0.01)),
            OnNoData::Inconclusive,
        );
        assert_eq!(small.outcome, Outcome::Pass, "{}", small.reason);
        let large = judge(
            Some(0.04),
            Some(0.0),
            limits(Some(1.5), Some(0.01)),
            OnNoData::Inconclusive,
        );
        assert_eq!(large.outcome, Outcome::Fail, "{}", large.reason);
    }

    #[test]
    fn both_tracks_at_zero_pass() {
        let judgement = judge(
            Some(0.0),
            Some(0.0),
            limits(Some(1.2), None),
            OnNoData::Inconclusive,
        );
        assert_eq!(judgement.outcome, Outcome::Pass);
        assert_eq!(judgement.statistics["ratio"], 1.0);
    }

    #[test]
    fn a_missing_side_is_no_data() {
        for (canary, stable) in [
            (None, Some(1.0)),
            (Some(1.0), None),
            (Some(f64::NAN), Some(1.0)),
        ] {
            let judgement = judge(
                canary,
                stable,
                limits(Some(1.2), None),
                OnNoData::Inconclusive,
            );
            assert_eq!(judgement.outcome, Outcome::Inconclusive);
            assert!(!judgement.gathering);
        }
    }

    #[test]
    fn min_ratio_catches_a_drop() {
        let limits = CompareLimits {
            min_ratio: Some(0.9),
            ..CompareLimits::default()
        };
        let judgement = judge(Some(80.0), Some(100.0), limits, OnNoData::Inconclusive);
        assert_eq!(judgement.outcome, Outcome::Fail);
        assert!(judgement.reason.contains("ratio 0.8 is below minRatio 0.9"));
    }
}
