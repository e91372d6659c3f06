//! The workload port: the canary Deployment beside the stable one. Each call takes one
//! step as far as it goes now and says where the rollout stands, so the engine can
//! serve operations between calls and keep the progress deadline itself.

use async_trait::async_trait;

use super::Writer;
use crate::domain::workload::{WorkloadStep, WorkloadTarget};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadError {
    /// The API could not be reached or did not answer in time: try again.
    #[error("{0}")]
    Unreachable(String),
    /// A Deployment, Service or container named by the strategy does not exist.
    #[error("{0}")]
    Missing(String),
    /// canaryd's credentials may not do what the step needs.
    #[error("{0}")]
    Forbidden(String),
    /// The objects exist but cannot be used as they are (selectors that overlap).
    #[error("{0}")]
    Invalid(String),
    /// The API refused the change.
    #[error("{0}")]
    Refused(String),
    /// No client to reach the workload with.
    #[error("{0}")]
    Unsupported(String),
}

impl WorkloadError {
    /// A low-cardinality label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            WorkloadError::Unreachable(_) => "unreachable",
            WorkloadError::Missing(_) => "missing",
            WorkloadError::Forbidden(_) => "forbidden",
            WorkloadError::Invalid(_) => "invalid",
            WorkloadError::Refused(_) => "refused",
            WorkloadError::Unsupported(_) => "unsupported",
        }
    }

    /// Worth trying again: the API did not answer, rather than said no.
    pub fn is_transient(&self) -> bool {
        matches!(self, WorkloadError::Unreachable(_))
    }
}

/// Where a workload step stands after one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Done,
    /// Not yet: what it waits for (pods not ready, and why).
    Waiting(String),
    /// It cannot finish: the rollout failed (a progress deadline passed).
    Failed(String),
}

#[async_trait]
pub trait Workload: Send + Sync {
    /// Checks, before an analysis starts, that the stable Deployment and its container
    /// exist, that the Services select the right pods, and that canaryd may do every
    /// step.
    async fn preflight(&self) -> Result<(), WorkloadError>;
    /// Takes `step` as far as it goes now: makes its change if it is not made yet, and
    /// reports the rollout.
    async fn advance(&self, step: WorkloadStep, writer: &Writer)
    -> Result<Progress, WorkloadError>;
}

/// Builds the workload for a target and the image tag the canary runs.
pub trait WorkloadProvider: Send + Sync {
    fn workload(
        &self,
        target: &WorkloadTarget,
        image_tag: &str,
    ) -> Result<Box<dyn Workload>, WorkloadError>;
}
