//! Judges turn measured values into a metric's outcome, with the evidence and a
//! one-line reason a person can read. All judges are pure functions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::strategy::{NanStrategy, OnNoData};

pub mod compare;
pub mod mann_whitney;
pub mod sequential;
pub mod threshold;

/// The outcome of one metric in one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    Pass,
    Fail,
    /// No data, too few samples, or a judge still gathering evidence.
    Inconclusive,
    /// The query itself failed.
    Error,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Pass,
        Outcome::Fail,
        Outcome::Inconclusive,
        Outcome::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Inconclusive => "INCONCLUSIVE",
            Outcome::Error => "ERROR",
        }
    }
}

/// A judge's answer for one metric, with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Judgement {
    pub outcome: Outcome,
    /// True when the judge has data but not yet enough evidence to decide: such an
    /// INCONCLUSIVE holds the step without counting toward `inconclusiveLimit`.
    #[serde(default)]
    pub gathering: bool,
    pub reason: String,
    /// The value compared with the limits, when there is one.
    #[serde(default)]
    pub value: Option<f64>,
    /// Named statistics behind the decision (p-values, ratios, counts, limits).
    #[serde(default)]
    pub statistics: BTreeMap<String, f64>,
}

impl Judgement {
    pub fn new(outcome: Outcome, reason: impl Into<String>) -> Self {
        Self {
            outcome,
            gathering: false,
            reason: reason.into(),
            value: None,
            statistics: BTreeMap::new(),
        }
    }

    /// The query failed; an error is never a pass.
    pub fn error(reason: impl Into<String>) -> Self {
        Self::new(Outcome::Error, reason)
    }

    /// No usable data, mapped through the metric's `onNoData`.
    pub fn no_data(on_no_data: OnNoData, what: &str) -> Self {
        let outcome = match on_no_data {
            OnNoData::Inconclusive => Outcome::Inconclusive,
            OnNoData::Fail => Outcome::Fail,
            OnNoData::Pass => Outcome::Pass,
        };
        Self::new(outcome, format!("no data: {what}"))
    }

    pub fn with_value(mut self, value: f64) -> Self {
        self.value = Some(value);
        self
    }

    pub fn with_statistic(mut self, name: &str, value: f64) -> Self {
        self.statistics.insert(name.to_string(), value);
        self
    }

    /// Marks an INCONCLUSIVE that has evidence and is still gathering more.
    pub fn gathering(mut self) -> Self {
        self.gathering = true;
        self
    }
}

/// A measurement is usable only when it is a finite number: NaN (0/0 in PromQL, or
/// a quantile over empty buckets) and ±Inf are treated as no data, never as a pass.
pub fn usable(value: Option<f64>) -> Option<f64> {
    value.filter(|v| v.is_finite())
}

/// Formats a number for a reason line: short, but exact enough to compare.
pub fn show(value: f64) -> String {
    let text = format!("{value:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

/// What was measured for one metric, ready to be judged.
#[derive(Debug, Clone, PartialEq)]
pub enum Measurement {
    /// The canary's value (threshold judge).
    Value(Option<f64>),
    /// The same query for both tracks (compare: stable).
    Pair {
        canary: Option<f64>,
        stable: Option<f64>,
    },
    /// Samples over the window for both tracks (Mann-Whitney).
    Samples { canary: Vec<f64>, stable: Vec<f64> },
    /// Counts since the step began (sequential).
    Counts {
        errors: Option<f64>,
        requests: Option<f64>,
    },
}

impl Measurement {
    /// With `replace`, a gap (NaN, ±Inf or no series) counts as zero, as Kayenta's
    /// `nanStrategy: replace` does for counts; with `remove` it stays no data.
    pub fn with_nan_strategy(self, strategy: NanStrategy) -> Self {
        if strategy == NanStrategy::Remove {
            return self;
        }
        let zero = |value: Option<f64>| Some(usable(value).unwrap_or(0.0));
        let zeros = |values: Vec<f64>| {
            values
                .into_iter()
                .map(|v| if v.is_finite() { v } else { 0.0 })
                .collect()
        };
        match self {
            Measurement::Value(value) => Measurement::Value(zero(value)),
            Measurement::Pair { canary, stable } => Measurement::Pair {
                canary: zero(canary),
                stable: zero(stable),
            },
            Measurement::Samples { canary, stable } => Measurement::Samples {
                canary: zeros(canary),
                stable: zeros(stable),
            },
            Measurement::Counts { errors, requests } => Measurement::Counts {
                errors: zero(errors),
                requests: zero(requests),
            },
        }
    }
}

/// Judges a measurement with the metric's judge. `must_decide` is set at a step's
/// last check: a judge still gathering evidence must then decide.
pub fn evaluate(
    spec: &super::strategy::JudgeSpec,
    measurement: Measurement,
    on_no_data: OnNoData,
    must_decide: bool,
) -> Judgement {
    use super::strategy::JudgeSpec;
    match (spec, measurement) {
        (JudgeSpec::Threshold { bounds, .. }, Measurement::Value(value)) => {
            threshold::judge(value, *bounds, on_no_data)
        }
        (JudgeSpec::CompareStable { limits, .. }, Measurement::Pair { canary, stable }) => {
            compare::judge(canary, stable, *limits, on_no_data)
        }
        (JudgeSpec::MannWhitney { config, .. }, Measurement::Samples { canary, stable }) => {
            mann_whitney::judge(&canary, &stable, config, on_no_data)
        }
        (JudgeSpec::Sequential { config, .. }, Measurement::Counts { errors, requests }) => {
            sequential::judge(errors, requests, config, must_decide, on_no_data)
        }
        (_, measurement) => Judgement::error(format!(
            "internal: measurement {measurement:?} does not fit the judge"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::strategy::Bounds;

    #[test]
    fn nan_strategy_replace_counts_a_gap_as_zero_and_remove_keeps_it_missing() {
        let bounds = Bounds {
            min: None,
            max: Some(5.0),
        };
        // (measured, strategy, outcome)
        let cases = [
            (None, NanStrategy::Remove, Outcome::Inconclusive),
            (Some(f64::NAN), NanStrategy::Remove, Outcome::Inconclusive),
            (None, NanStrategy::Replace, Outcome::Pass),
            (Some(f64::NAN), NanStrategy::Replace, Outcome::Pass),
            (Some(f64::INFINITY), NanStrategy::Replace, Outcome::Pass),
            (Some(7.0), NanStrategy::Replace, Outcome::Fail),
        ];
        for (value, strategy, expected) in cases {
            let measurement = Measurement::Value(value).with_nan_strategy(strategy);
            let Measurement::Value(seen) = measurement else {
                panic!("a value stays a value");
            };
            let judged = threshold::judge(seen, bounds, OnNoData::Inconclusive);
            assert_eq!(judged.outcome, expected, "{value:?} with {strategy:?}");
        }
        let samples = Measurement::Samples {
            canary: vec![1.0, f64::NAN],
            stable: vec![f64::NEG_INFINITY],
        }
        .with_nan_strategy(NanStrategy::Replace);
        assert_eq!(
            samples,
            Measurement::Samples {
                canary: vec![1.0, 0.0],
                stable: vec![0.0]
            }
        );
    }
}
