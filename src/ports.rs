//! The small traits the engine works through. Adapters implement them for Prometheus,
//! HAProxy, Kubernetes, SQL databases and webhooks; tests use in-memory versions.

use std::time::Duration;

use async_trait::async_trait;

use crate::domain::Timestamp;
use crate::domain::analysis::Status;
use crate::domain::record::{Analysis, CheckRecord, EventRecord, RouteTarget};

/// Why a query gave no answer (as opposed to an answer of "no data").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

/// A PromQL-compatible metrics backend.
#[async_trait]
pub trait MetricsSource: Send + Sync {
    /// An instant query: `Ok(None)` when it returned no series.
    async fn instant(&self, query: &str) -> Result<Option<f64>, QueryError>;
    /// A range query's sample values over `[end − range, end]` every `step`.
    async fn range(
        &self,
        query: &str,
        end: Timestamp,
        range: Duration,
        step: Duration,
    ) -> Result<Vec<f64>, QueryError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RouterError {
    pub message: String,
}

impl RouterError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Moves traffic between the stable and the canary of one route.
#[async_trait]
pub trait TrafficRouter: Send + Sync {
    /// Sets the canary's share of traffic in percent (the stable gets the rest) and
    /// verifies it took effect.
    async fn set_weight(&self, weight: u8) -> Result<(), RouterError>;
    /// The canary's current share as the router reports it.
    async fn weight(&self) -> Result<u8, RouterError>;
}

/// Builds the router for a route target.
pub trait RouterProvider: Send + Sync {
    fn router(&self, target: &RouteTarget) -> Result<Box<dyn TrafficRouter>, RouterError>;
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("analysis {0} not found")]
    NotFound(String),
    /// The idempotency key is already taken (by a concurrent request).
    #[error("idempotency key already used")]
    KeyTaken,
    #[error("storage failed: {0}")]
    Backend(String),
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

/// Durable analyses: each `save` stores the new state with its history atomically.
#[async_trait]
pub trait AnalysisStore: Send + Sync {
    /// Stores a new analysis; with a key, atomically records it too (`KeyTaken` if it exists).
    async fn create(
        &self,
        analysis: &Analysis,
        change: &Change,
        key: Option<&IdempotencyKey>,
    ) -> Result<(), StoreError>;
    /// The analysis id and request digest stored under a key.
    async fn find_key(&self, team: &str, key: &str)
    -> Result<Option<(String, String)>, StoreError>;
    async fn save(&self, analysis: &Analysis, change: &Change) -> Result<(), StoreError>;
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
