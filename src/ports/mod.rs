//! The small traits the engine works through. Adapters implement them for Prometheus,
//! HAProxy, Kubernetes, SQL databases and webhooks; tests use in-memory or recording
//! versions.

use async_trait::async_trait;

use crate::domain::Timestamp;
use crate::domain::analysis::Status;
use crate::domain::record::{Analysis, CheckRecord, EventRecord};

mod blocks;
mod deployments;
mod groups;
mod metrics;
mod ownership;
mod router;
mod telemetry;
mod workload;

pub use blocks::{BlockStore, Lifted};
pub use deployments::{Current, DeploymentStore, RecordQuery};
pub use groups::GroupStore;
pub use metrics::{LabelledValue, MetricsSource, QueryError};
pub use ownership::{
    Created, InboxMessage, InboxStore, Lease, LeaseStore, Replica, RouteOwnership, RouteStore,
    TakeOver, Wake,
};
pub use router::{RouterError, RouterProvider, TrafficRouter, Writer};
pub use telemetry::{AnalysisTelemetry, NoTelemetry};
pub use workload::{Progress, Workload, WorkloadError, WorkloadProvider};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("analysis {0} not found")]
    NotFound(String),
    /// The idempotency key is already taken (by a concurrent request).
    #[error("idempotency key already used")]
    KeyTaken,
    /// The write's lease is no longer current: another replica runs the analysis now.
    #[error("analysis {0} is no longer leased to this replica; the write was refused")]
    Fenced(String),
    /// A concurrent change to the same analysis won; nothing was written.
    #[error("analysis {0} was changed concurrently; try again")]
    Conflict(String),
    /// Another process holds the (single-process) database.
    #[error(
        "database {path} is in use by another canaryd ({holder}); SQLite serves one process: \
         stop it, or use Postgres (--database-url postgres://...) for several replicas"
    )]
    InUse { path: String, holder: String },
    #[error("storage failed: {0}")]
    Backend(String),
}

impl StoreError {
    /// A low-cardinality label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            StoreError::NotFound(_) => "not_found",
            StoreError::KeyTaken => "key_taken",
            StoreError::Fenced(_) => "fenced",
            StoreError::Conflict(_) => "conflict",
            StoreError::InUse { .. } => "in_use",
            StoreError::Backend(_) => "backend",
        }
    }
}

/// Filters for listing analyses, newest first.
#[derive(Debug, Clone, Default)]
pub struct AnalysisQuery {
    pub statuses: Vec<Status>,
    pub team: Option<String>,
    pub environment: Option<String>,
    pub limit: Option<usize>,
}

/// What one transition adds to the history of an analysis.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub events: Vec<EventRecord>,
    pub checks: Vec<CheckRecord>,
}

/// A webhook's `Idempotency-Key`, scoped to the caller's team, with a digest of the
/// request so a reused key with another body is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub team: String,
    pub key: String,
    pub request_digest: String,
}

/// Durable analyses: each write stores the new state with its history atomically.
#[async_trait]
pub trait AnalysisStore: Send + Sync {
    /// Stores a new analysis leased to `replica` and, in the same transaction, makes it
    /// its route's owner or the successor of the analysis that owns it (which is then
    /// superseded). With a key, records it too (`KeyTaken` if it exists).
    async fn create(
        &self,
        analysis: &Analysis,
        change: &Change,
        key: Option<&IdempotencyKey>,
        replica: &str,
    ) -> Result<Created, StoreError>;
    /// The analysis id and request digest stored under a key.
    async fn find_key(&self, team: &str, key: &str)
    -> Result<Option<(String, String)>, StoreError>;
    /// Stores a transition, fenced by `lease` (`Fenced` when it is no longer current).
    /// A terminal transition of a route's owner hands the route to its successor; the
    /// wakes name the analyses that must hear of it.
    async fn save(
        &self,
        analysis: &Analysis,
        change: &Change,
        lease: &Lease,
    ) -> Result<Vec<Wake>, StoreError>;
    async fn get(&self, id: &str) -> Result<Option<Analysis>, StoreError>;
    async fn list(&self, query: &AnalysisQuery) -> Result<Vec<Analysis>, StoreError>;
}

/// The evidence and audit trail of analyses.
#[async_trait]
pub trait HistoryStore: Send + Sync {
    async fn checks(&self, id: &str) -> Result<Vec<CheckRecord>, StoreError>;
    async fn events(&self, id: &str) -> Result<Vec<EventRecord>, StoreError>;
    /// How many analyses stand in each (team, environment, status).
    async fn status_counts(&self) -> Result<Vec<(String, String, Status, i64)>, StoreError>;
}

/// Stops new analyses of an environment from starting until it is lifted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Freeze {
    pub id: String,
    pub environment: String,
    pub reason: String,
    pub actor: String,
    pub created_at: Timestamp,
}

#[async_trait]
pub trait FreezeStore: Send + Sync {
    async fn add_freeze(&self, freeze: &Freeze) -> Result<(), StoreError>;
    async fn freezes(&self) -> Result<Vec<Freeze>, StoreError>;
    /// Removes a freeze; `None` when there was none with that id.
    async fn remove_freeze(&self, id: &str) -> Result<Option<Freeze>, StoreError>;
}

/// A status change to tell people about.
#[derive(Debug, Clone)]
pub struct Notice {
    pub analysis: Analysis,
    pub reason: String,
    /// The metric result that decided a failure, when one did.
    pub failing: Option<CheckRecord>,
    /// Where the strategy wants to be told (already filtered to this status).
    pub targets: Vec<crate::domain::strategy::Notification>,
}

/// Tells the outside world about status changes. Runs off the decision path: it must
/// never delay or change a decision.
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn notify(&self, notice: Notice);
    /// An emergency rollback or roll forward, for the platform to act on.
    async fn announce(&self, _release: ReleaseNotice) {}
}

/// A release canaryd decided on outside an analysis: the block it set names the scope,
/// the image, who and why.
#[derive(Debug, Clone)]
pub struct ReleaseNotice {
    pub block: crate::domain::release::Block,
    /// The image the scope ran before.
    pub from: Option<String>,
    /// Every notification target of the scope's strategy.
    pub targets: Vec<crate::domain::strategy::Notification>,
}

/// A notifier that tells no one.
pub struct NoNotifier;

#[async_trait]
impl Notifier for NoNotifier {
    async fn notify(&self, _notice: Notice) {}
}

/// The confirm-promotion gate: promotion waits until the URL answers 2xx.
#[async_trait]
pub trait PromotionGate: Send + Sync {
    /// True when the gate at `url` agrees to promote `analysis`.
    async fn confirm(&self, url: &str, analysis: &Analysis) -> bool;
}
