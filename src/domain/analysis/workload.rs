//! Transitions of an analysis that deploys its canary (`spec.workload`): deploy before
//! the first shift, promote by giving the stable Deployment the canary's image, and
//! scale the canary to 0 once traffic is back on stable, after promotion or rollback.

use super::machine::Transition;
use super::{Command, RecordKind, SYSTEM_ACTOR, Status};
use crate::domain::workload::WorkloadStep;

impl Transition {
    /// Asks the engine for a workload step; checks wait until it is done.
    pub(super) fn request(&mut self, step: WorkloadStep) {
        self.state.workload.pending = Some(step);
        self.state.workload.since = Some(self.now);
        self.state.next_check_at = None;
        self.commands.push(Command::Workload { step });
    }

    /// Begins a plan with a workload: the canary is deployed before any traffic moves.
    pub(super) fn deploy_first(&mut self) {
        let steps = self.state.plan.steps.len();
        let reason = format!("started: deploying the canary, then step 1 of {steps}");
        self.change_status(Status::Running, SYSTEM_ACTOR, reason);
        self.request(WorkloadStep::DeployCanary);
    }

    /// All steps passed (or an operator promoted): with a workload, the stable
    /// Deployment takes the canary's image; without one, all traffic goes to the canary.
    pub(super) fn complete_promotion(&mut self) {
        if self.state.plan.workload {
            self.request(WorkloadStep::PromoteStable);
        } else {
            self.shift(100);
        }
    }

    /// Traffic is back on stable: with a workload the canary is scaled to 0 before the
    /// analysis ends. True when that was asked for, and the caller must wait.
    pub(super) fn scale_down_first(&mut self) -> bool {
        if !self.state.plan.workload {
            return false;
        }
        self.request(WorkloadStep::ScaleCanaryDown);
        true
    }

    pub(super) fn workload_done(&mut self, step: WorkloadStep) {
        if self.state.workload.pending != Some(step) || self.state.status.is_terminal() {
            return;
        }
        self.state.workload.pending = None;
        self.state.workload.since = None;
        match (step, self.state.status) {
            (WorkloadStep::DeployCanary, Status::Running) => {
                let first = self.state.plan.steps[0].weight;
                let message = format!("the canary Deployment is available; step 1 at {first}%");
                self.record(RecordKind::StepChanged, SYSTEM_ACTOR, message);
                self.shift(first);
            }
            (WorkloadStep::DeployCanary, Status::Paused) => {
                // Paused by an operator while deploying: `resume` shifts to step 1.
                self.state.target_weight = self.state.plan.steps[0].weight;
                let message = "the canary Deployment is available; step 1 waits for resume";
                self.record(RecordKind::StepChanged, SYSTEM_ACTOR, message.to_string());
            }
            (WorkloadStep::PromoteStable, Status::Promoting) => {
                self.state.workload.stable_promoted = true;
                let message = "the stable Deployment runs the canary's image and has rolled out; \
                               returning all traffic to stable";
                self.record(RecordKind::StepChanged, SYSTEM_ACTOR, message.to_string());
                self.shift(0);
            }
            (WorkloadStep::ScaleCanaryDown, Status::Promoting) => self.change_status(
                Status::Deployed,
                SYSTEM_ACTOR,
                "promoted: the stable Deployment runs the canary's image, all traffic on stable, \
                 canary scaled to 0"
                    .to_string(),
            ),
            (WorkloadStep::ScaleCanaryDown, Status::RollingBack) => self.finish_rollback(),
            _ => {}
        }
    }

    pub(super) fn workload_failed(&mut self, step: WorkloadStep, reason: &str) {
        if self.state.workload.pending != Some(step) || self.state.status.is_terminal() {
            return;
        }
        let message = format!("could not {}: {reason}", step.as_str());
        self.record(RecordKind::RouterError, SYSTEM_ACTOR, message);
        match step {
            WorkloadStep::DeployCanary => {
                let why = format!("the canary did not become available: {reason}");
                self.begin_rollback(Status::Failed, SYSTEM_ACTOR, why);
            }
            WorkloadStep::PromoteStable => {
                let why = format!(
                    "the stable Deployment's rollout did not finish: {reason}; traffic returns to \
                     stable, and the stable Deployment needs a person"
                );
                self.begin_rollback(Status::Failed, SYSTEM_ACTOR, why);
            }
            // Scaling down is retried until it works, like a rollback's weight.
            WorkloadStep::ScaleCanaryDown => self.request(step),
        }
    }

    /// A rollback's weight 0 is applied: the canary is scaled down first, if there is one.
    pub(super) fn back_on_stable(&mut self) {
        if !self.scale_down_first() {
            self.finish_rollback();
        }
    }

    /// The rollback is complete: the verdict it was started for.
    pub(super) fn finish_rollback(&mut self) {
        let outcome = self.state.rollback_outcome.unwrap_or(Status::RolledBack);
        let reason = self.state.reason.clone();
        self.change_status(outcome, SYSTEM_ACTOR, reason);
    }
}
