//! Workload steps: each one is taken through the same fence as router writes, polled
//! until it is done while the task keeps serving its inbox, and failed once the
//! progress deadline passes.

use std::time::Duration;

use super::Inbox;
use super::ownership::Fence;
use super::runner::{Runner, Stop, Work};
use crate::domain::analysis::{Event, Status};
use crate::domain::workload::WorkloadStep;
use crate::ports::{Progress, WorkloadError, Writer};

/// How often a rollout under way is looked at again.
const POLL: Duration = Duration::from_secs(1);

impl Runner {
    /// One pass of a workload step; queues its answer, or itself again after a pause.
    pub(super) async fn take_workload_step(
        &mut self,
        step: WorkloadStep,
        inbox: &mut Inbox,
    ) -> Result<(), Stop> {
        let state = &self.analysis.state;
        // A terminal analysis never touches the workload, and a step no longer asked
        // for (a rollback replaced it) is dropped.
        if state.status.is_terminal() || state.workload.pending != Some(step) {
            return Ok(());
        }
        let writer = match self.open_fence(step.as_str()).await? {
            Ok(writer) => writer,
            Err(why) => return self.retry_workload(step, why, inbox).await,
        };
        let outcome = match &self.workload {
            Some(Ok(workload)) => workload.advance(step, &writer).await,
            Some(Err(error)) => Err(error.clone()),
            None => Err(WorkloadError::Unsupported(
                "the analysis has no workload".into(),
            )),
        };
        self.answer(step, outcome, inbox).await
    }

    /// The writer a workload write goes out as, once the fence is open; `Ok(Err(why))`
    /// when the store could not say, `Err(Stop)` when the analysis may no longer act.
    async fn open_fence(&self, what: &str) -> Result<Result<Writer, String>, Stop> {
        let Some(epoch) = self.epoch else {
            tracing::error!("refused to {what}: the analysis does not own its route");
            return Err(Stop);
        };
        match self.fence(epoch).await {
            Fence::Open => Ok(Ok(Writer {
                analysis_id: self.analysis.id.clone(),
                epoch,
            })),
            Fence::Closed(why) => {
                tracing::warn!("refused to {what}: {why}");
                Err(Stop)
            }
            Fence::Unknown(why) => Ok(Err(why)),
        }
    }

    /// Queues what a pass of `step` came to: done, failed, or another pass later. API
    /// errors that may pass are retried until the deadline; scaling down is retried
    /// until it works.
    async fn answer(
        &mut self,
        step: WorkloadStep,
        outcome: Result<Progress, WorkloadError>,
        inbox: &mut Inbox,
    ) -> Result<(), Stop> {
        match outcome {
            Ok(Progress::Done) => {
                tracing::info!(?step, "workload step done");
                self.queue(Event::WorkloadDone { step });
                Ok(())
            }
            Ok(Progress::Failed(reason)) => {
                self.queue(Event::WorkloadFailed { step, reason });
                Ok(())
            }
            Ok(Progress::Waiting(why)) => self.retry_workload(step, why, inbox).await,
            Err(error) if error.is_transient() || step == WorkloadStep::ScaleCanaryDown => {
                tracing::warn!(?step, kind = error.metric_label(), %error, "workload step failed; trying again");
                self.retry_workload(step, error.to_string(), inbox).await
            }
            Err(error) => {
                let reason = error.to_string();
                self.queue(Event::WorkloadFailed { step, reason });
                Ok(())
            }
        }
    }

    fn queue(&mut self, event: Event) {
        self.pending.push_back(Work::Event(event, Vec::new()));
    }

    /// Not done yet: fails the step once its progress deadline has passed (scaling down
    /// has none: it is retried until it works), or looks again after a pause.
    async fn retry_workload(
        &mut self,
        step: WorkloadStep,
        why: String,
        inbox: &mut Inbox,
    ) -> Result<(), Stop> {
        let deadline = self.analysis.workload.as_ref().map(|w| w.progress_deadline);
        let since = self.analysis.state.workload.since;
        if let (Some(deadline), Some(since), true) =
            (deadline, since, step != WorkloadStep::ScaleCanaryDown)
        {
            let waited = (chrono::Utc::now() - since).to_std().unwrap_or_default();
            if waited >= deadline {
                let reason = format!(
                    "not done within the progress deadline of {}: {why}",
                    humantime::format_duration(deadline)
                );
                self.queue(Event::WorkloadFailed { step, reason });
                return Ok(());
            }
        }
        tracing::debug!(?step, "workload step under way: {why}");
        self.wait_serving_inbox(POLL, Work::Workload(step), inbox)
            .await
    }
}

impl Runner {
    /// After a take-over: the step that was under way is taken again (each step is
    /// idempotent), and a canary that should be running is deployed again if it
    /// drifted, before the analysis goes on.
    pub(super) fn reconcile_workload(&mut self) {
        let state = &self.analysis.state;
        if !state.plan.workload || state.status.is_terminal() {
            return;
        }
        if let Some(step) = state.workload.pending {
            tracing::info!(?step, "resumed: taking the workload step again");
            self.pending.push_back(Work::Workload(step));
        } else if !state.workload.stable_promoted && state.status != Status::RollingBack {
            self.pending.push_back(Work::EnsureCanary);
        }
    }

    /// Deploys the canary again as it should be (created if someone deleted it, its
    /// image and replicas restored), without waiting for it: the analysis goes on.
    pub(super) async fn ensure_canary(&mut self) -> Result<(), Stop> {
        if self.analysis.state.status.is_terminal() {
            return Ok(());
        }
        let writer = match self.open_fence("reconcile the canary").await? {
            Ok(writer) => writer,
            Err(why) => {
                tracing::warn!("canary not reconciled: {why}");
                return Ok(());
            }
        };
        if let Some(Ok(workload)) = &self.workload {
            match workload.advance(WorkloadStep::DeployCanary, &writer).await {
                Ok(progress) => tracing::info!(?progress, "resumed: canary Deployment reconciled"),
                Err(error) => {
                    tracing::warn!(kind = error.metric_label(), %error, "resumed: canary Deployment not reconciled")
                }
            }
        }
        Ok(())
    }
}
