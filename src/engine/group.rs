//! A deployment group's start: one analysis per member, all or none. Every member is
//! checked (its strategy, its request, its router's and workload's preflight) before
//! the first is stored, so a group with one bad member starts nothing. A store that
//! fails half-way is the one case left: the members already stored are aborted, with
//! the reason in their audit trail.

use super::start::Prepared;
use super::{Engine, EngineError, InvalidRequest, StartRequest};
use crate::domain::analysis::Operation;
use crate::domain::record::Analysis;

/// Why a group did not start: the member (its index in the request) and the error.
#[derive(Debug, thiserror::Error)]
#[error("releases[{index}]: {error}")]
pub struct GroupStartError {
    pub index: usize,
    pub error: EngineError,
}

impl Engine {
    /// Starts one analysis per request, in order; each then runs on its own.
    pub async fn start_group(
        &self,
        requests: Vec<StartRequest>,
        actor: &str,
    ) -> Result<Vec<Analysis>, GroupStartError> {
        let stopping = |index| GroupStartError {
            index,
            error: EngineError::ShuttingDown,
        };
        if self.inner.shutdown.is_cancelled() {
            return Err(stopping(0));
        }
        let engine = self.clone();
        let actor = actor.to_string();
        self.inner
            .tasks
            .spawn(async move { engine.start_group_now(requests, &actor).await })
            .await
            .map_err(|_| stopping(0))?
    }

    async fn start_group_now(
        &self,
        requests: Vec<StartRequest>,
        actor: &str,
    ) -> Result<Vec<Analysis>, GroupStartError> {
        let prepared = self.prepare_members(requests).await?;
        let mut started: Vec<Analysis> = Vec::with_capacity(prepared.len());
        for (index, analysis) in prepared.into_iter().enumerate() {
            match self.create(analysis, None, actor).await {
                Ok(created) => started.push(created.analysis),
                Err(error) => {
                    let reason = format!("the group could not start releases[{index}]: {error}");
                    self.abort_members(&started, &reason).await;
                    return Err(GroupStartError { index, error });
                }
            }
        }
        Ok(started)
    }

    /// Every member checked, none stored. Two members on one route would supersede
    /// each other, so that is refused too.
    async fn prepare_members(
        &self,
        requests: Vec<StartRequest>,
    ) -> Result<Vec<Analysis>, GroupStartError> {
        let mut prepared: Vec<Analysis> = Vec::with_capacity(requests.len());
        for (index, request) in requests.into_iter().enumerate() {
            let failed = |error| GroupStartError { index, error };
            let Prepared::New(analysis, _) = self.prepare(request, None).await.map_err(failed)?
            else {
                unreachable!("without an idempotency key, nothing exists beforehand")
            };
            let route = analysis.route_key();
            if let Some(other) = prepared.iter().position(|a| a.route_key() == route) {
                return Err(failed(EngineError::Invalid(InvalidRequest {
                    field: "environment".into(),
                    message: format!(
                        "releases[{other}] already drives route {route}; one group cannot run two analyses on one route"
                    ),
                })));
            }
            prepared.push(analysis);
        }
        Ok(prepared)
    }

    /// Aborts each of `started` (best effort: one that cannot be aborted runs on alone,
    /// watched like any other), logging any that refuses.
    pub async fn abort_members(&self, started: &[Analysis], reason: &str) {
        for analysis in started {
            let aborted = self
                .operate(
                    &analysis.id,
                    Operation::Abort,
                    crate::domain::analysis::SYSTEM_ACTOR,
                    reason,
                )
                .await;
            if let Err(error) = aborted {
                tracing::error!(id = %analysis.id, %error, "a member of a group that did not start could not be aborted");
            }
        }
    }
}
