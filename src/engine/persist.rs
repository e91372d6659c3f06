//! How an analysis task stores its transitions: under its lease, retrying a store that
//! fails briefly, then stalling until the store answers again; and the one transition
//! that does not wait for the store, a withdrawal of the canary's traffic.

use super::runner::{Runner, Stop};
use crate::domain::analysis::Event;
use crate::domain::record::Analysis;
use crate::ports::{Change, Lease, StoreError};

impl Runner {
    /// Stores a transition under this task's lease, retrying a store that fails
    /// briefly. No command runs unless this succeeds.
    pub(super) async fn persist(&self, next: &Analysis, change: &Change) -> Result<(), Stop> {
        let Some(lease) = self.lease.clone() else {
            return Err(Stop);
        };
        for attempt in 1..=3 {
            if self.inner.shutdown.is_cancelled() {
                return Err(Stop);
            }
            if let Err(error) = self.save_once(next, change, &lease).await? {
                tracing::error!(%error, attempt, "could not store the analysis");
                tokio::select! {
                    () = self.inner.shutdown.cancelled() => return Err(Stop),
                    () = tokio::time::sleep(self.backoff(attempt)) => {}
                }
            } else {
                return Ok(());
            }
        }
        self.stall()
    }

    /// One save under `lease`: `Err(Stop)` when another replica runs the analysis now,
    /// `Ok(Err)` when the store failed and a retry may do better.
    pub(super) async fn save_once(
        &self,
        next: &Analysis,
        change: &Change,
        lease: &Lease,
    ) -> Result<Result<(), StoreError>, Stop> {
        match self.inner.ports.store.save(next, change, lease).await {
            Ok(wakes) => {
                self.inner.deliver_later(wakes);
                Ok(Ok(()))
            }
            Err(StoreError::Fenced(_)) => {
                tracing::warn!("another replica runs this analysis now; this task stops");
                Err(Stop)
            }
            Err(error) => Ok(Err(error)),
        }
    }

    /// Stops the task until the store answers again; the last stored state stays.
    pub(super) fn stall<T>(&self) -> Result<T, Stop> {
        tracing::error!("the analysis stops where it stands until the store answers again");
        if let Some(lease) = &self.lease {
            self.inner.stalled(&self.analysis.id, lease);
        }
        Err(Stop)
    }

    /// Stores a transition that takes the canary's traffic away. When the store refuses
    /// it (a full disk, a database gone read-only), the router goes to weight 0 through
    /// the fence at once, and the transition is offered to the store again and again,
    /// with backoff, until it is taken: a failing canary is never left serving because
    /// its verdict could not be written. Meanwhile the task does nothing else.
    pub(super) async fn persist_withdrawal(&mut self, change: &Change) -> Result<(), Stop> {
        let Some(lease) = self.lease.clone() else {
            return Err(Stop);
        };
        let (mut attempt, mut withdrawn) = (0u32, false);
        loop {
            attempt = attempt.saturating_add(1);
            match self.save_once(&self.analysis, change, &lease).await? {
                Ok(()) => return Ok(()),
                Err(error) => tracing::error!(
                    %error, attempt, withdrawn,
                    "could not store the rollback; the canary gets no traffic meanwhile"
                ),
            }
            if !withdrawn {
                withdrawn = matches!(self.shift(0).await?, Event::WeightApplied { .. });
            }
            tokio::select! {
                () = self.inner.shutdown.cancelled() => return Err(Stop),
                () = tokio::time::sleep(self.backoff(attempt)) => {}
            }
        }
    }
}
