//! Route ownership and replica leases, kept in the database so that every replica sees
//! the same truth: a route has at most one owning analysis, an analysis is run by one
//! replica at a time, and every write is fenced by the lease it was made under.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Change, StoreError};
use crate::domain::analysis::{Event, Status};
use crate::domain::record::Analysis;

/// Which replica runs an analysis, and the token that fences its writes. The token
/// grows each time another replica (or a retry) takes the analysis over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub replica: String,
    pub token: i64,
}

/// What a committed change means for other analyses. The store has already queued it
/// for analyses run by other replicas; the engine delivers it to its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Wake {
    /// A newer analysis for the same route arrived: return traffic to stable and end.
    Superseded { id: String, by: String },
    /// The route's previous owner ended: this analysis owns it now, under `epoch`.
    RouteGranted { id: String, epoch: i64 },
}

/// A new analysis as stored: its lease, and the route epoch if it owns the route at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub lease: Lease,
    pub epoch: Option<i64>,
    pub wakes: Vec<Wake>,
}

/// A retry's claim on its route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TakeOver {
    Owned(Created),
    /// Another analysis is active on the route.
    Busy {
        owner: String,
    },
}

/// Who owns a route, and who waits for it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteOwnership {
    pub owner: Option<String>,
    pub successor: Option<String>,
    pub epoch: i64,
}

#[async_trait]
pub trait RouteStore: Send + Sync {
    async fn route(&self, route_key: &str) -> Result<RouteOwnership, StoreError>;
    /// Stores `analysis` (a terminal one made PENDING again, last stored as `was`) as
    /// its route's owner, leased to `replica`; `Busy` when another analysis is active.
    async fn take_over(
        &self,
        analysis: &Analysis,
        was: Status,
        change: &Change,
        replica: &str,
    ) -> Result<TakeOver, StoreError>;
    /// Makes an active analysis that lost track of its route (stored by an older
    /// canaryd) its owner when nobody active holds it; the current owner otherwise.
    async fn adopt(&self, analysis: &Analysis, lease: &Lease)
    -> Result<RouteOwnership, StoreError>;
    /// True when `analysis_id` owns `route_key` under `epoch` and still holds `lease`.
    async fn may_drive(
        &self,
        route_key: &str,
        analysis_id: &str,
        epoch: i64,
        lease: &Lease,
    ) -> Result<bool, StoreError>;
}

/// A canaryd process, as other replicas see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub id: String,
    /// `host pid N`: named in messages about who holds what.
    pub description: String,
}

#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Registers a replica with a lease of `ttl`. A single-process store (SQLite) also
    /// ends every other replica's lease: its file lock proves they are gone.
    async fn register(&self, replica: &Replica, ttl: Duration) -> Result<(), StoreError>;
    /// Extends the replica's lease; false when it had already expired (it must stop).
    async fn heartbeat(&self, replica_id: &str, ttl: Duration) -> Result<bool, StoreError>;
    /// Takes over up to `limit` active analyses whose replica's lease has expired.
    async fn claim_orphans(
        &self,
        replica_id: &str,
        limit: usize,
    ) -> Result<Vec<(Analysis, Lease)>, StoreError>;
    /// Ends the replica's lease at once (graceful shutdown), so others resume its work.
    async fn release(&self, replica_id: &str) -> Result<(), StoreError>;
}

/// What one replica tells an analysis that another replica runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum InboxMessage {
    Wake {
        wake: Wake,
    },
    /// An event (an operation); the outcome is answered under `reply_id` when given.
    Event {
        event: Event,
        reply_id: Option<String>,
    },
}

/// Delivers events between replicas through the database.
#[async_trait]
pub trait InboxStore: Send + Sync {
    async fn post(&self, analysis_id: &str, message: &InboxMessage) -> Result<(), StoreError>;
    /// Removes and returns, oldest first, the messages for analyses `replica_id` runs.
    async fn take(&self, replica_id: &str) -> Result<Vec<(String, InboxMessage)>, StoreError>;
    async fn answer(&self, reply_id: &str, reply: &str) -> Result<(), StoreError>;
    /// Removes and returns the answer to `reply_id`, once there is one.
    async fn reply(&self, reply_id: &str) -> Result<Option<String>, StoreError>;
}
