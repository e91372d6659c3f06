//! This process as a replica: its lease in the database, renewed by a heartbeat; the
//! take-over of analyses whose replica's lease expired (or, at boot, of everything a
//! crashed predecessor left); and the inbox through which other replicas reach the
//! analyses this one runs.
//!
//! Local time decides when this replica must stop: its lease is trusted until the
//! instant the last successful heartbeat was *sent* plus the TTL, which is never later
//! than the expiry the database recorded. Other replicas compare expiries on the
//! database's clock, so no two clocks are ever compared.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::runner::Boot;
use super::{Engine, EngineError, Inner, Message};
use crate::adapters::store::process_lock::describe_self;
use crate::domain::record::Analysis;
use crate::ports::{InboxMessage, Lease, Replica};

/// Analyses taken over per round, so that one round never holds a long transaction.
const CLAIM_BATCH: usize = 500;

pub(super) struct ReplicaLease {
    replica: Replica,
    exclusive: bool,
    valid_until: Mutex<Option<Instant>>,
    /// Cancelled when this replica lost its lease: it must stop and start afresh.
    lost: CancellationToken,
}

/// What `/readyz` reports about this replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaHealth {
    pub replica: String,
    pub holds_lease: bool,
    pub lease_remaining: Option<Duration>,
}

impl ReplicaLease {
    pub(super) fn new(exclusive: bool) -> Self {
        Self {
            replica: Replica {
                id: uuid::Uuid::now_v7().to_string(),
                description: describe_self(),
            },
            exclusive,
            valid_until: Mutex::new(None),
            lost: CancellationToken::new(),
        }
    }

    pub(super) fn id(&self) -> &str {
        &self.replica.id
    }

    fn remaining(&self) -> Option<Duration> {
        let until = (*self.valid_until.lock().ok()?)?;
        until.checked_duration_since(Instant::now())
    }

    /// Whether this replica may still act for at least `margin`.
    pub(super) fn may_act(&self, margin: Duration) -> bool {
        if self.lost.is_cancelled() {
            return false;
        }
        self.exclusive || self.remaining().is_some_and(|left| left > margin)
    }

    fn renewed(&self, sent: Instant, ttl: Duration) {
        if let Ok(mut until) = self.valid_until.lock() {
            *until = Some(sent + ttl);
        }
    }
}

impl Engine {
    /// Registers this replica, takes over every analysis left without a live replica,
    /// and starts the heartbeat (and, with several replicas, the inbox). Returns how
    /// many analyses it resumed.
    pub async fn start_replica(&self) -> Result<usize, EngineError> {
        let inner = &self.inner;
        let ttl = inner.settings.lease_ttl;
        let sent = Instant::now();
        inner
            .ports
            .leases
            .register(&inner.replica.replica, ttl)
            .await?;
        inner.replica.renewed(sent, ttl);
        let resumed = inner.claim_orphans().await?;
        tracing::info!(replica = %inner.replica.id(), ?ttl, resumed, "replica registered");
        inner.tasks.spawn(heartbeat(Arc::clone(inner)));
        if !inner.settings.exclusive {
            inner.tasks.spawn(read_inbox(Arc::clone(inner)));
        }
        Ok(resumed)
    }

    pub fn health(&self) -> ReplicaHealth {
        let lease = &self.inner.replica;
        ReplicaHealth {
            replica: lease.id().to_string(),
            holds_lease: lease.may_act(Duration::ZERO),
            // Alone on its database, a replica's hold cannot run out.
            lease_remaining: if lease.exclusive {
                None
            } else {
                lease.remaining()
            },
        }
    }

    /// Resolves when this replica has lost its lease: the process should exit, and be
    /// started again as a new replica.
    pub async fn lease_lost(&self) {
        self.inner.replica.lost.cancelled().await;
    }
}

impl Inner {
    /// Takes over analyses whose replica is gone, round by round; returns how many.
    async fn claim_orphans(self: &Arc<Self>) -> Result<usize, EngineError> {
        let mut total = 0;
        loop {
            let claimed = self
                .ports
                .leases
                .claim_orphans(self.replica.id(), CLAIM_BATCH)
                .await?;
            let count = claimed.len();
            for (analysis, lease) in claimed {
                self.resume(analysis, lease);
            }
            total += count;
            if count < CLAIM_BATCH {
                return Ok(total);
            }
        }
    }

    fn resume(self: &Arc<Self>, analysis: Analysis, lease: Lease) {
        tracing::info!(id = %analysis.id, status = %analysis.state.status, "taking the analysis over");
        self.analysis_created(&analysis);
        self.ports
            .telemetry
            .weight_applied(&analysis, analysis.state.canary_weight);
        self.spawn(analysis, Boot::Resumed { lease }, None);
    }

    /// Starts again the analyses that stopped because the store failed.
    async fn restart_stalled(self: &Arc<Self>) {
        let stalled: Vec<(String, Lease)> = match self.stalled.lock() {
            Ok(mut stalled) => stalled.drain().collect(),
            Err(_) => return,
        };
        for (id, lease) in stalled {
            match self.ports.store.get(&id).await {
                Ok(Some(analysis)) => self.resume(analysis, lease),
                Ok(None) => {}
                Err(_) => self.stalled(&id, &lease),
            }
        }
    }

    fn lose_lease(&self, why: &str) {
        tracing::error!(replica = %self.replica.id(), "lost this replica's lease: {why}; stopping every analysis");
        self.replica.lost.cancel();
        self.shutdown.cancel();
    }
}

/// Renews the lease every third of the TTL; takes over orphans and restarts stalled
/// analyses on the way.
async fn heartbeat(inner: Arc<Inner>) {
    let ttl = inner.settings.lease_ttl;
    loop {
        tokio::select! {
            () = inner.shutdown.cancelled() => return,
            () = tokio::time::sleep(ttl / 3) => {}
        }
        let sent = Instant::now();
        match inner.ports.leases.heartbeat(inner.replica.id(), ttl).await {
            Ok(true) => inner.replica.renewed(sent, ttl),
            Ok(false) if !inner.settings.exclusive => {
                return inner.lose_lease("it expired before the heartbeat");
            }
            Ok(false) => {
                // Alone on the database: take the lease back.
                let registered = inner.ports.leases.register(&inner.replica.replica, ttl);
                if registered.await.is_ok() {
                    inner.replica.renewed(sent, ttl);
                }
            }
            Err(error) => tracing::warn!(%error, "heartbeat failed"),
        }
        if !inner.replica.may_act(Duration::ZERO) {
            return inner.lose_lease("no heartbeat succeeded within the lease TTL");
        }
        if let Err(error) = inner.claim_orphans().await {
            tracing::warn!(%error, "could not look for analyses to take over");
        }
        inner.restart_stalled().await;
    }
}

/// Delivers what other replicas sent to the analyses this one runs.
async fn read_inbox(inner: Arc<Inner>) {
    loop {
        tokio::select! {
            () = inner.shutdown.cancelled() => return,
            () = tokio::time::sleep(inner.settings.inbox_poll) => {}
        }
        let messages = match inner.ports.inbox.take(inner.replica.id()).await {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!(%error, "cannot read the inbox");
                continue;
            }
        };
        for (id, message) in messages {
            match message {
                InboxMessage::Wake { wake } => inner.deliver(vec![wake]).await,
                InboxMessage::Event {
                    event,
                    reply_id: None,
                } => {
                    if let Some(sender) = inner.sender(&id) {
                        let _ = sender.send(Message::event(event)).await;
                    }
                }
                InboxMessage::Event {
                    event,
                    reply_id: Some(reply_id),
                } => {
                    // Answered apart: a task busy with its router must not hold up others.
                    inner
                        .tasks
                        .spawn(answer(Arc::clone(&inner), id, event, reply_id));
                }
            }
        }
    }
}

async fn answer(
    inner: Arc<Inner>,
    id: String,
    event: crate::domain::analysis::Event,
    reply_id: String,
) {
    let outcome = inner.answer_remote(&id, event).await;
    let text = serde_json::to_string(&outcome).unwrap_or_default();
    if let Err(error) = inner.ports.inbox.answer(&reply_id, &text).await {
        tracing::warn!(%error, "cannot answer a forwarded operation");
    }
}
