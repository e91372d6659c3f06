//! Decoding of Prometheus HTTP API answers (`/api/v1/query`, `/api/v1/query_range`),
//! and the reading of them as a check needs. Pure, so the decoder is fuzzed on its
//! own; every decoding error names its line and column in the answer.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::ports::{LabelledValue, QueryError};

/// The largest answer read. A grouped query for 10,000 analyses answers about 2 MiB.
pub const MAX_ANSWER_BYTES: usize = 32 << 20;

/// A query's result, by its `resultType`.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Scalar(f64),
    Vector(Vec<LabelledValue>),
    Matrix(Vec<(BTreeMap<String, String>, Vec<f64>)>),
}

/// `{"status":"success","data":{…}}` or `{"status":"error","errorType":…,"error":…}`.
/// Plain structs, not a tagged enum: serde buffers tagged enums and loses positions.
#[derive(Deserialize)]
struct Envelope<'a> {
    status: String,
    #[serde(borrow, default)]
    data: Option<Data<'a>>,
    #[serde(rename = "errorType", default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(rename = "resultType")]
    result_type: String,
    #[serde(borrow)]
    result: &'a RawValue,
}

#[derive(Deserialize)]
struct Instant {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    /// Required: a native histogram sample (`histogram`) is not a value.
    value: (f64, Value),
}

#[derive(Deserialize)]
struct Range {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, Value)>,
}

/// A sample's value, which the API sends as a string ("0.25", "NaN", "+Inf").
struct Value(f64);

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse()
            .map(Value)
            .map_err(|_| D::Error::custom(format!("{text:?} is not a sample value")))
    }
}

/// Decodes one answer from its HTTP status, content type and body.
pub fn decode(status: u16, content_type: Option<&str>, body: &[u8]) -> Result<Answer, QueryError> {
    if !content_type.is_some_and(is_json) {
        let what = content_type.unwrap_or("no content type");
        let message = format!("Prometheus answered HTTP {status} with {what:?}, not JSON");
        return Err(if (200..300).contains(&status) {
            QueryError::Shape(message)
        } else {
            QueryError::Unreachable(message)
        });
    }
    let malformed = |error: String| {
        QueryError::Shape(format!(
            "Prometheus answered HTTP {status} with JSON that is not a query result: {error}"
        ))
    };
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| malformed(e.to_string()))?;
    match (envelope.status.as_str(), envelope.data) {
        ("success", Some(data)) => result(body, &data).map_err(malformed),
        ("success", None) => Err(malformed("\"data\" is missing".into())),
        ("error", _) => Err(QueryError::Refused(format!(
            "Prometheus answered HTTP {status}, {}: {}",
            envelope.error_type.as_deref().unwrap_or("no errorType"),
            envelope.error.as_deref().unwrap_or("no error message")
        ))),
        (other, _) => Err(malformed(format!("unknown \"status\" {other:?}"))),
    }
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// Reads `data.result` by `data.resultType`; an error's position is in the whole body.
fn result(body: &[u8], data: &Data) -> Result<Answer, String> {
    let text = data.result.get();
    let parsed = match data.result_type.as_str() {
        "scalar" => serde_json::from_str::<(f64, Value)>(text).map(|(_, v)| Answer::Scalar(v.0)),
        "vector" => serde_json::from_str::<Vec<Instant>>(text).map(vector_of),
        "matrix" => serde_json::from_str::<Vec<Range>>(text).map(matrix_of),
        other => return Err(format!("unknown \"resultType\" {other:?}")),
    };
    parsed.map_err(|e| in_body(body, text, &e))
}

fn vector_of(series: Vec<Instant>) -> Answer {
    Answer::Vector(
        series
            .into_iter()
            .map(|s| (s.metric, s.value.1.0))
            .collect(),
    )
}

fn matrix_of(series: Vec<Range>) -> Answer {
    Answer::Matrix(
        series
            .into_iter()
            .map(|s| (s.metric, s.values.into_iter().map(|(_, v)| v.0).collect()))
            .collect(),
    )
}

/// An error inside `data.result`, placed at its line and column in the whole body.
fn in_body(body: &[u8], result: &str, error: &serde_json::Error) -> String {
    let start = (result.as_ptr() as usize).saturating_sub(body.as_ptr() as usize);
    let before = &body[..start.min(body.len())];
    let base_line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let base_column = start
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
    let (line, column) = match error.line() {
        1 => (base_line, base_column + error.column()),
        n => (base_line + n - 1, error.column()),
    };
    let message = error.to_string();
    let message = message.split(" at line ").next().unwrap_or(&message);
    format!("data.result: {message} at line {line} column {column}")
}

/// An instant query's whole vector; a scalar is one series without labels.
pub fn vector(answer: Answer) -> Result<Vec<LabelledValue>, QueryError> {
    match answer {
        Answer::Scalar(value) => Ok(vec![(BTreeMap::new(), value)]),
        Answer::Vector(series) => Ok(series),
        Answer::Matrix(_) => Err(not_instant()),
    }
}

/// An instant query's one value: none for an empty vector.
pub fn instant(answer: Answer) -> Result<Option<f64>, QueryError> {
    match answer {
        Answer::Scalar(value) => Ok(Some(value)),
        Answer::Vector(series) => match series.as_slice() {
            [] => Ok(None),
            [(_, value)] => Ok(Some(*value)),
            many => Err(several_series(many.len())),
        },
        Answer::Matrix(_) => Err(not_instant()),
    }
}

/// A range query's one series of values.
pub fn range(answer: Answer) -> Result<Vec<f64>, QueryError> {
    match answer {
        Answer::Matrix(mut series) => match series.len() {
            0 => Ok(Vec::new()),
            1 => Ok(series.remove(0).1),
            many => Err(several_series(many)),
        },
        _ => Err(QueryError::Shape(
            "a range query did not return a matrix".into(),
        )),
    }
}

fn not_instant() -> QueryError {
    QueryError::Shape("the query returned a range vector; a check needs an instant value".into())
}

fn several_series(count: usize) -> QueryError {
    QueryError::Shape(format!(
        "the query returned {count} series; a check needs exactly one: aggregate it (e.g. sum(...) or max(...))"
    ))
}

#[cfg(test)]
mod tests;
