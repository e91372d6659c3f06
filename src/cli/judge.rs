//! `canaryd judge`: offline judging. A JSON request on stdin, a JSON judgement on
//! stdout, with the same judges and statistics as the analyses' check results.
//!
//! ```json
//! {"judge":"mann-whitney","canary":[…],"baseline":[…],"direction":"increase","confidence":0.98}
//! → {"result":"PASS|FAIL|INCONCLUSIVE","reason":"…","statistics":{"u":…,"pValue":…}}
//! ```

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::domain::judge::{Judgement, Outcome, compare, mann_whitney, sequential, threshold};
use crate::domain::strategy::{
    Bounds, CompareLimits, Direction, MannWhitneyConfig, OnNoData, SequentialConfig,
};

/// Largest request read from stdin.
const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(
    tag = "judge",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum JudgeRequest {
    Threshold {
        #[serde(default, deserialize_with = "sample::option")]
        value: Option<f64>,
        max: Option<f64>,
        min: Option<f64>,
        #[serde(default)]
        on_no_data: OnNoData,
    },
    Compare {
        #[serde(default, deserialize_with = "sample::option")]
        canary: Option<f64>,
        #[serde(default, deserialize_with = "sample::option")]
        baseline: Option<f64>,
        max_ratio: Option<f64>,
        min_ratio: Option<f64>,
        max_increase: Option<f64>,
        #[serde(default)]
        on_no_data: OnNoData,
    },
    MannWhitney {
        /// `null` entries (gaps) are dropped, like NaN.
        #[serde(deserialize_with = "sample::list")]
        canary: Vec<Option<f64>>,
        #[serde(deserialize_with = "sample::list")]
        baseline: Vec<Option<f64>>,
        #[serde(default = "default_direction")]
        direction: Direction,
        #[serde(default = "default_confidence")]
        confidence: f64,
        allowed_increase: Option<f64>,
        allowed_decrease: Option<f64>,
        #[serde(default)]
        remove_outliers: bool,
        #[serde(default)]
        must_have_data: bool,
        /// Offline, any data is judged unless a minimum is asked for.
        #[serde(default = "default_min_samples")]
        min_samples: usize,
        #[serde(default)]
        on_no_data: OnNoData,
    },
    Sequential {
        #[serde(default, deserialize_with = "sample::option")]
        errors: Option<f64>,
        #[serde(default, deserialize_with = "sample::option")]
        requests: Option<f64>,
        max: f64,
        acceptable: Option<f64>,
        #[serde(default = "default_alpha")]
        alpha: f64,
        #[serde(default = "default_beta")]
        beta: f64,
        #[serde(default)]
        must_decide: bool,
        #[serde(default)]
        on_no_data: OnNoData,
    },
}

/// Measured values as Prometheus's JSON writes them: a number, `null`, or a string
/// (`"0.05"`, `"NaN"`, `"+Inf"`, `"-Inf"`). The special values are judged exactly as
/// live data is: no data, never a pass. Limits stay plain numbers.
mod sample {
    use serde::{Deserialize, Deserializer, de::Error};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Wire {
        Number(f64),
        Text(String),
    }

    fn value<E: Error>(wire: Option<Wire>) -> Result<Option<f64>, E> {
        let text = match wire {
            None => return Ok(None),
            Some(Wire::Number(number)) => return Ok(Some(number)),
            Some(Wire::Text(text)) => text,
        };
        match text.as_str() {
            "NaN" => Ok(Some(f64::NAN)),
            "+Inf" | "Inf" => Ok(Some(f64::INFINITY)),
            "-Inf" => Ok(Some(f64::NEG_INFINITY)),
            other => other.parse().map(Some).map_err(|_| {
                E::custom(format!(
                    "'{other}' is not a number; write a number, null, \"NaN\", \"+Inf\" or \"-Inf\""
                ))
            }),
        }
    }

    pub fn option<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
        value(Option::<Wire>::deserialize(deserializer)?)
    }

    pub fn list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Option<f64>>, D::Error> {
        Vec::<Option<Wire>>::deserialize(deserializer)?
            .into_iter()
            .map(value)
            .collect()
    }
}

fn default_direction() -> Direction {
    Direction::Increase
}
fn default_confidence() -> f64 {
    0.98
}
fn default_min_samples() -> usize {
    1
}
fn default_alpha() -> f64 {
    0.01
}
fn default_beta() -> f64 {
    0.05
}

#[derive(Debug, Serialize)]
pub struct JudgeResponse {
    pub result: Outcome,
    pub reason: String,
    pub gathering: bool,
    pub statistics: BTreeMap<String, f64>,
}

impl From<Judgement> for JudgeResponse {
    fn from(judgement: Judgement) -> Self {
        Self {
            result: judgement.outcome,
            reason: judgement.reason,
            gathering: judgement.gathering,
            statistics: judgement.statistics,
        }
    }
}

/// Judges one request.
pub fn evaluate(request: JudgeRequest) -> anyhow::Result<Judgement> {
    Ok(match request {
        JudgeRequest::Threshold {
            value,
            max,
            min,
            on_no_data,
        } => {
            if max.is_none() && min.is_none() {
                bail!("threshold needs max, min or both");
            }
            threshold::judge(value, Bounds { min, max }, on_no_data)
        }
        JudgeRequest::Compare {
            canary,
            baseline,
            max_ratio,
            min_ratio,
            max_increase,
            on_no_data,
        } => {
            let limits = CompareLimits {
                max_ratio,
                min_ratio,
                max_increase,
            };
            if limits == CompareLimits::default() {
                bail!("compare needs maxRatio, minRatio or maxIncrease");
            }
            compare::judge(canary, baseline, limits, on_no_data)
        }
        JudgeRequest::MannWhitney {
            canary,
            baseline,
            direction,
            confidence,
            allowed_increase,
            allowed_decrease,
            remove_outliers,
            must_have_data,
            min_samples,
            on_no_data,
        } => {
            if !(confidence > 0.0 && confidence < 1.0) {
                bail!("confidence must be between 0 and 1 (exclusive), got {confidence}");
            }
            let config = MannWhitneyConfig {
                direction,
                confidence,
                allowed_increase,
                allowed_decrease,
                remove_outliers,
                must_have_data,
                sample_step: Duration::from_secs(1),
                min_samples: min_samples.max(1),
            };
            let values = |v: Vec<Option<f64>>| {
                v.into_iter()
                    .map(|x| x.unwrap_or(f64::NAN))
                    .collect::<Vec<_>>()
            };
            mann_whitney::judge(&values(canary), &values(baseline), &config, on_no_data)
        }
        JudgeRequest::Sequential {
            errors,
            requests,
            max,
            acceptable,
            alpha,
            beta,
            must_decide,
            on_no_data,
        } => {
            let acceptable = acceptable.unwrap_or(max / 2.0);
            if !(max > 0.0 && max < 1.0 && acceptable > 0.0 && acceptable < max) {
                bail!(
                    "sequential needs 0 < acceptable < max < 1, got acceptable {acceptable} and max {max}"
                );
            }
            if !(alpha > 0.0 && alpha < 0.5 && beta > 0.0 && beta < 0.5) {
                bail!("alpha and beta must be within (0, 0.5), got {alpha} and {beta}");
            }
            let config = SequentialConfig {
                max,
                acceptable,
                alpha,
                beta,
            };
            sequential::judge(errors, requests, &config, must_decide, on_no_data)
        }
    })
}

pub fn run() -> anyhow::Result<()> {
    let mut input = String::new();
    std::io::stdin()
        .take(MAX_INPUT_BYTES)
        .read_to_string(&mut input)
        .context("reading the request from stdin")?;
    let response = answer(&input)?;
    println!("{}", serde_json::to_string(&response)?);
    Ok(())
}

/// Judges one request given as JSON text.
pub fn answer(input: &str) -> anyhow::Result<JudgeResponse> {
    let request: JudgeRequest =
        serde_json::from_str(input).context("the request on stdin is not a valid judge request")?;
    Ok(JudgeResponse::from(evaluate(request)?))
}
