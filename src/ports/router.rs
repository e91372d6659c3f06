//! The traffic router port. Every write names its writer: the analysis that owns the
//! route and the route's epoch, so a router that can record it does, and the engine can
//! refuse a write from an analysis that no longer owns the route.

use async_trait::async_trait;

use crate::domain::record::RouteTarget;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouterError {
    /// The router's API could not be reached or did not answer in time.
    #[error("{0}")]
    Unreachable(String),
    /// The router answered, and refused the command.
    #[error("{0}")]
    Refused(String),
    /// The command was accepted but the read-back shows another weight.
    #[error("{0}")]
    NotApplied(String),
    /// The route target cannot be driven as configured (a bad name, no client).
    #[error("{0}")]
    Unsupported(String),
    /// The writer no longer owns the route (or its lease ran out): nothing was sent.
    #[error("{0}")]
    Fenced(String),
    /// The object to drive, or the API that serves it (a CRD), does not exist.
    #[error("{0}")]
    Missing(String),
    /// canaryd's credentials may not change the object.
    #[error("{0}")]
    Forbidden(String),
    /// The object exists but cannot carry the split (no stable or canary backend).
    #[error("{0}")]
    Invalid(String),
}

impl RouterError {
    /// A low-cardinality label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            RouterError::Unreachable(_) => "unreachable",
            RouterError::Refused(_) => "refused",
            RouterError::NotApplied(_) => "not_applied",
            RouterError::Unsupported(_) => "unsupported",
            RouterError::Fenced(_) => "fenced",
            RouterError::Missing(_) => "missing",
            RouterError::Forbidden(_) => "forbidden",
            RouterError::Invalid(_) => "invalid",
        }
    }
}

/// Who writes a weight: the owning analysis and the route epoch it owns it under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writer {
    pub analysis_id: String,
    pub epoch: i64,
}

impl std::fmt::Display for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.analysis_id, self.epoch)
    }
}

/// Moves traffic between the stable and the canary of one route.
#[async_trait]
pub trait TrafficRouter: Send + Sync {
    /// Sets the canary's share of traffic in percent (the stable gets the rest) and
    /// verifies it took effect.
    async fn set_weight(&self, weight: u8, writer: &Writer) -> Result<(), RouterError>;
    /// The canary's current share as the router reports it.
    async fn weight(&self) -> Result<u8, RouterError>;
    /// Checks, before an analysis starts, that the route can be driven at all: the
    /// object exists, its API is installed, canaryd may change it, and it has both
    /// backends. Routers with nothing to check accept.
    async fn preflight(&self) -> Result<(), RouterError> {
        Ok(())
    }
}

/// Builds the router for a route target.
pub trait RouterProvider: Send + Sync {
    fn router(&self, target: &RouteTarget) -> Result<Box<dyn TrafficRouter>, RouterError>;
}
