//! The metrics backend port: PromQL instant and range queries.

use std::time::Duration;

use async_trait::async_trait;

use crate::domain::Timestamp;

/// Why a query gave no answer (as opposed to an answer of "no data").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The backend could not be reached or did not answer in time.
    #[error("Prometheus query failed: {0}")]
    Unreachable(String),
    /// The backend answered with an error (bad query, overload, refused).
    #[error("Prometheus query failed: {0}")]
    Refused(String),
    /// The answer has a shape a check cannot use (several series, a matrix...).
    #[error("{0}")]
    Shape(String),
    /// The query could not be rendered from its template.
    #[error("{0}")]
    Render(String),
    /// The client could not be configured (credentials, headers, URL).
    #[error("{0}")]
    Config(String),
}

impl QueryError {
    /// A low-cardinality label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            QueryError::Unreachable(_) => "unreachable",
            QueryError::Refused(_) => "refused",
            QueryError::Shape(_) => "shape",
            QueryError::Render(_) => "render",
            QueryError::Config(_) => "config",
        }
    }
}

/// One series of an instant vector: its labels and its value.
pub type LabelledValue = (std::collections::BTreeMap<String, String>, f64);

/// A PromQL-compatible metrics backend.
#[async_trait]
pub trait MetricsSource: Send + Sync {
    /// An instant query's whole vector, each series with its labels (what a grouped
    /// query answers for many analyses at once). A scalar is one series without labels.
    async fn instant_vector(
        &self,
        query: &str,
        at: Option<Timestamp>,
    ) -> Result<Vec<LabelledValue>, QueryError> {
        let _ = (query, at);
        Err(QueryError::Config(
            "this metrics source answers single values only".into(),
        ))
    }
    /// An instant query evaluated at `at` (Prometheus's `time` parameter; now when
    /// `None`): `Ok(None)` when it returned no series.
    async fn instant(&self, query: &str, at: Option<Timestamp>) -> Result<Option<f64>, QueryError>;
    /// A range query's sample values over `[end − range, end]` every `step`.
    async fn range(
        &self,
        query: &str,
        end: Timestamp,
        range: Duration,
        step: Duration,
    ) -> Result<Vec<f64>, QueryError>;
}
