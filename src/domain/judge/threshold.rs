//! The static threshold judge: the canary's value against `min`/`max`.

use super::{Judgement, Outcome, show, usable};
use crate::domain::strategy::{Bounds, OnNoData};

/// Judges one measured value. `None`, NaN and ±Inf are no data.
pub fn judge(value: Option<f64>, bounds: Bounds, on_no_data: OnNoData) -> Judgement {
    let Some(value) = usable(value) else {
        let what = match value {
            Some(raw) => format!("the query returned {raw}"),
            None => "the query returned no series".to_string(),
        };
        return with_limits(Judgement::no_data(on_no_data, &what), bounds);
    };
    let judgement = match (bounds.min, bounds.max) {
        (_, Some(max)) if value > max => Judgement::new(
            Outcome::Fail,
            format!("{} is above max {}", show(value), show(max)),
        ),
        (Some(min), _) if value < min => Judgement::new(
            Outcome::Fail,
            format!("{} is below min {}", show(value), show(min)),
        ),
        _ => Judgement::new(
            Outcome::Pass,
            format!("{} is within {}", show(value), describe(bounds)),
        ),
    };
    with_limits(judgement.with_value(value), bounds)
}

fn with_limits(mut judgement: Judgement, bounds: Bounds) -> Judgement {
    if let Some(max) = bounds.max {
        judgement = judgement.with_statistic("max", max);
    }
    if let Some(min) = bounds.min {
        judgement = judgement.with_statistic("min", min);
    }
    judgement
}

fn describe(bounds: Bounds) -> String {
    match (bounds.min, bounds.max) {
        (Some(min), Some(max)) => format!("[{}, {}]", show(min), show(max)),
        (None, Some(max)) => format!("max {}", show(max)),
        (Some(min), None) => format!("min {}", show(min)),
        (None, None) => "no limits".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX_5_PERCENT: Bounds = Bounds {
        min: None,
        max: Some(0.05),
    };

    #[test]
    fn judges_values_against_bounds() {
        let both = Bounds {
            min: Some(10.0),
            max: Some(20.0),
        };
        let table = [
            (0.01, MAX_5_PERCENT, Outcome::Pass),
            (0.05, MAX_5_PERCENT, Outcome::Pass),
            (0.0501, MAX_5_PERCENT, Outcome::Fail),
            (9.9, both, Outcome::Fail),
            (10.0, both, Outcome::Pass),
            (20.1, both, Outcome::Fail),
        ];
        for (value, bounds, expected) in table {
            let judgement = judge(Some(value), bounds, OnNoData::Inconclusive);
            assert_eq!(judgement.outcome, expected, "{value} against {bounds:?}");
            assert_eq!(judgement.value, Some(value));
        }
    }

    #[test]
    fn explains_a_failure_with_value_and_limit() {
        let judgement = judge(Some(0.2), MAX_5_PERCENT, OnNoData::Inconclusive);
        assert_eq!(judgement.reason, "0.2 is above max 0.05");
        assert_eq!(judgement.statistics["max"], 0.05);
    }

    #[test]
    fn nan_and_infinity_are_no_data_never_a_pass() {
        for raw in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let judgement = judge(Some(raw), MAX_5_PERCENT, OnNoData::Inconclusive);
            assert_eq!(judgement.outcome, Outcome::Inconclusive, "{raw}");
            assert!(
                judgement.reason.starts_with("no data"),
                "{}",
                judgement.reason
            );
            assert_eq!(judgement.value, None);
        }
    }

    #[test]
    fn on_no_data_chooses_the_outcome_of_a_missing_series() {
        let table = [
            (OnNoData::Inconclusive, Outcome::Inconclusive),
            (OnNoData::Fail, Outcome::Fail),
            (OnNoData::Pass, Outcome::Pass),
        ];
        for (policy, expected) in table {
            assert_eq!(judge(None, MAX_5_PERCENT, policy).outcome, expected);
        }
    }

    #[test]
    fn no_data_is_never_gathering_evidence() {
        assert!(!judge(None, MAX_5_PERCENT, OnNoData::Inconclusive).gathering);
    }
}
