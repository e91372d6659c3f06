//! An analysis task's claim on its route: what it owns when it resumes, how a retry
//! takes the route over, and the fence every router write passes first. A write goes
//! out only while the analysis owns the route under the epoch it holds, its lease is
//! current, and this replica's own lease has time left; anything else stops the task.

use super::operate::OperationError;
use super::runner::{Failure, Runner, Stop, Work};
use crate::domain::analysis::{Event, Record, RecordKind, SYSTEM_ACTOR, Status};
use crate::domain::record::{Analysis, EventRecord};
use crate::ports::{Change, RouteOwnership, StoreError, TakeOver, Writer};

/// Whether a router or workload write may go out.
pub(super) enum Fence {
    Open,
    /// This analysis may no longer drive the route: why.
    Closed(String),
    /// The store could not say; try again later.
    Unknown(String),
}

impl Runner {
    /// After a take-over: find out what this analysis owns, then make the router agree.
    pub(super) async fn resume(&mut self) -> Result<(), Stop> {
        let key = self.analysis.route_key();
        let route = match self.inner.ports.routes.route(&key).await {
            Ok(route) => route,
            Err(error) => {
                tracing::error!(%error, "cannot read the route's owner");
                return self.stall();
            }
        };
        let id = self.analysis.id.clone();
        let route = if [&route.owner, &route.successor]
            .iter()
            .any(|slot| slot.as_deref() == Some(id.as_str()))
        {
            route
        } else {
            self.adopt().await?
        };
        self.settle_ownership(&route);
        if self.analysis.state.status == Status::Pending {
            self.pending.push_back(Work::Begin);
        } else if self.epoch.is_some() {
            self.reconcile().await?;
            self.reconcile_workload();
        }
        Ok(())
    }

    /// An analysis unknown to its route's row (stored by an older canaryd) claims it.
    async fn adopt(&mut self) -> Result<RouteOwnership, Stop> {
        let Some(lease) = self.lease.clone() else {
            return Err(Stop);
        };
        match self.inner.ports.routes.adopt(&self.analysis, &lease).await {
            Ok(route) => Ok(route),
            Err(error) => {
                tracing::error!(%error, "cannot claim the route");
                self.stall()
            }
        }
    }

    /// Owner, successor, or neither: queue what follows from it.
    fn settle_ownership(&mut self, route: &RouteOwnership) {
        let id = self.analysis.id.as_str();
        let newer = route.successor.clone().filter(|s| s != id);
        if route.owner.as_deref() == Some(id) {
            self.epoch = Some(route.epoch);
            if let Some(by) = newer {
                self.pending
                    .push_back(Work::Event(Event::Superseded { by }, Vec::new()));
            }
        } else if route.successor.as_deref() != Some(id) {
            let event = match (newer, route.owner.clone()) {
                (Some(by), _) => Event::Superseded { by },
                (None, owner) => Event::Displaced {
                    owner: owner.unwrap_or_else(|| "another analysis".to_string()),
                },
            };
            self.pending.push_back(Work::Event(event, Vec::new()));
        }
    }

    /// A retry: the terminal analysis becomes its route's owner again, in one
    /// transaction, unless another analysis is active on the route.
    pub(super) async fn take_over(
        &mut self,
        next: &Analysis,
        was: Status,
        change: &Change,
    ) -> Result<(), Failure> {
        let replica = self.inner.replica.id().to_string();
        let routes = &self.inner.ports.routes;
        match routes.take_over(next, was, change, &replica).await {
            Ok(TakeOver::Owned(created)) => {
                self.lease = Some(created.lease);
                self.epoch = created.epoch;
                self.pending.push_back(Work::Begin);
                Ok(())
            }
            Ok(TakeOver::Busy { owner }) => Err(Failure::Refused(OperationError::RouteBusy {
                route: next.route_key(),
                owner,
            })),
            Err(StoreError::Conflict(id)) => Err(Failure::Refused(OperationError::Unavailable(
                format!("analysis {id} was changed by a concurrent operation; try again"),
            ))),
            Err(error) => Err(Failure::Refused(OperationError::Unavailable(
                error.to_string(),
            ))),
        }
    }

    pub(super) async fn fence(&self, epoch: i64) -> Fence {
        let margin = self.inner.settings.lease_ttl / 3;
        if !self.inner.replica.may_act(margin) {
            return Fence::Closed("this replica's lease is about to run out".to_string());
        }
        let Some(lease) = &self.lease else {
            return Fence::Closed("the analysis holds no lease".to_string());
        };
        let key = self.analysis.route_key();
        let routes = &self.inner.ports.routes;
        match routes
            .may_drive(&key, &self.analysis.id, epoch, lease)
            .await
        {
            Ok(true) => Fence::Open,
            Ok(false) => Fence::Closed(format!(
                "the analysis no longer owns route {key} under epoch {epoch} with lease {}",
                lease.token
            )),
            Err(error) => Fence::Unknown(format!("cannot check the route's owner: {error}")),
        }
    }

    /// Sets the router's weight through the fence, retrying a few times with backoff.
    pub(super) async fn shift(&mut self, weight: u8) -> Result<Event, Stop> {
        let Some(epoch) = self.epoch else {
            tracing::error!(
                weight,
                "refused a router write: the analysis does not own its route"
            );
            return Err(Stop);
        };
        let router = match &self.router {
            Ok(router) => router,
            Err(error) => {
                return Ok(Event::RouterFailed {
                    weight,
                    error: error.to_string(),
                });
            }
        };
        let writer = Writer {
            analysis_id: self.analysis.id.clone(),
            epoch,
        };
        let attempts = self.inner.settings.router_attempts.max(1);
        let mut last_error = String::new();
        for attempt in 1..=attempts {
            match self
                .attempt(router.as_ref(), weight, &writer, attempt)
                .await?
            {
                Ok(()) => {
                    self.router_failures = 0;
                    return Ok(Event::WeightApplied { weight });
                }
                Err(error) => last_error = error,
            }
            if attempt < attempts {
                tokio::time::sleep(self.backoff(attempt)).await;
            }
        }
        self.router_failures += 1;
        Ok(Event::RouterFailed {
            weight,
            error: last_error,
        })
    }

    /// One write through the fence: `Err(Stop)` when the fence is closed, `Ok(Err)` when
    /// the write did not happen this time.
    async fn attempt(
        &self,
        router: &dyn crate::ports::TrafficRouter,
        weight: u8,
        writer: &Writer,
        attempt: u32,
    ) -> Result<Result<(), String>, Stop> {
        match self.fence(writer.epoch).await {
            Fence::Open => {}
            Fence::Closed(why) => {
                tracing::warn!(weight, %writer, "router write refused: {why}");
                return Err(Stop);
            }
            Fence::Unknown(why) => return Ok(Err(why)),
        }
        let telemetry = &self.inner.ports.telemetry;
        match router.set_weight(weight, writer).await {
            Ok(()) => {
                telemetry.weight_applied(&self.analysis, weight);
                let lease = self.lease.as_ref().map_or(0, |lease| lease.token);
                let replica = self.inner.replica.id();
                tracing::info!(weight, %writer, lease, replica, "canary weight applied");
                Ok(Ok(()))
            }
            Err(error) => {
                telemetry.router_failed(self.analysis.route.kind());
                tracing::warn!(weight, attempt, kind = error.metric_label(), %error, "router refused the weight");
                Ok(Err(error.to_string()))
            }
        }
    }

    /// Compares the router's real weight with what the analysis asked for, and sets
    /// it again where they differ.
    async fn reconcile(&mut self) -> Result<(), Stop> {
        let state = &self.analysis.state;
        if state.status.is_terminal() {
            return Ok(());
        }
        let target = state.target_weight;
        let actual = match &self.router {
            Ok(router) => router.weight().await.ok(),
            Err(_) => None,
        };
        if actual == Some(target) {
            if !state.weight_settled() || state.next_check_at.is_none() && state.runs_checks() {
                let event = Event::WeightApplied { weight: target };
                self.pending.push_back(Work::Event(event, Vec::new()));
            }
            return Ok(());
        }
        let seen = actual.map_or("cannot be read".to_string(), |w| format!("is {w}%"));
        let message = format!(
            "resumed: the router's canary weight {seen}, the analysis expects {target}%; setting it again"
        );
        tracing::warn!("{message}");
        let record = Record {
            kind: RecordKind::RouterError,
            actor: SYSTEM_ACTOR.to_string(),
            message,
        };
        let at = chrono::Utc::now();
        let change = Change {
            events: vec![EventRecord { at, record }],
            checks: Vec::new(),
        };
        let analysis = self.analysis.clone();
        self.persist(&analysis, &change).await?;
        self.pending.push_back(Work::Shift(target));
        Ok(())
    }
}
