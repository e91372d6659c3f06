//! Transitions asked from outside the analysis: an operator's operations, and a newer
//! analysis taking the route over.

use super::machine::{Rejected, Transition};
use super::{AnalysisState, Operation, RecordKind, SYSTEM_ACTOR, Status, Waiting};

impl Transition {
    /// A newer analysis wants the route. Traffic goes back to stable first: one that
    /// never shifted ends at once; one that did rolls back to 0 and then ends CANCELLED
    /// (or keeps the verdict of a rollback already under way). Only then does the route
    /// pass to the newer analysis.
    pub(super) fn superseded(&mut self, by: &str) {
        let reason = format!("superseded by {by}");
        match self.state.status {
            status if status.is_terminal() => {}
            Status::Pending => self.change_status(Status::Cancelled, SYSTEM_ACTOR, reason),
            Status::RollingBack => self.record(
                RecordKind::StatusChanged,
                SYSTEM_ACTOR,
                format!("{reason}; finishing the rollback first"),
            ),
            _ => {
                self.record(
                    RecordKind::StepChanged,
                    SYSTEM_ACTOR,
                    format!("{reason}: returning traffic to stable before the route passes on"),
                );
                self.begin_rollback(Status::Cancelled, SYSTEM_ACTOR, reason);
            }
        }
    }

    /// Another analysis owns the route (state left by an older canaryd): end without
    /// touching the router, which is not ours to drive.
    pub(super) fn displaced(&mut self, owner: &str) {
        if !self.state.status.is_terminal() {
            let reason = format!("route is owned by analysis {owner}");
            self.change_status(Status::Cancelled, SYSTEM_ACTOR, reason);
        }
    }

    pub(super) fn operation(
        &mut self,
        operation: Operation,
        actor: &str,
        reason: &str,
    ) -> Result<(), Rejected> {
        let status = self.state.status;
        let allowed = operation.allowed_in();
        if !allowed.contains(&status) {
            return Err(Rejected {
                operation,
                status,
                allowed,
            });
        }
        let op = operation.as_str();
        let said = if reason.is_empty() {
            format!("{op} by {actor}")
        } else {
            format!("{op} by {actor}: {reason}")
        };
        self.record(RecordKind::Operation, actor, said.clone());
        match operation {
            Operation::Pause => {
                self.state.waiting = Some(Waiting::Operator);
                self.state.waiting_since = Some(self.now);
                self.state.next_check_at = None;
                self.change_status(Status::Paused, actor, said);
            }
            Operation::Resume => self.resume(actor, said),
            // In PROMOTING, an operator overrides the gate (or a wait that never ends).
            Operation::Promote if status == Status::Promoting => {
                self.state.waiting = None;
                self.state.waiting_since = None;
                let message = format!("gate overridden: {said}; promoting");
                self.record(RecordKind::StepChanged, actor, message);
                if self.state.workload.pending.is_none() && !self.state.workload.stable_promoted {
                    self.complete_promotion();
                }
            }
            Operation::Promote => self.promote(actor, said),
            Operation::Rollback => self.begin_rollback(Status::RolledBack, actor, said),
            Operation::Abort if status == Status::Pending => {
                self.change_status(Status::Cancelled, actor, said);
            }
            Operation::Abort => self.begin_rollback(Status::Cancelled, actor, said),
            Operation::Retry => {
                let plan = self.state.plan.clone();
                self.state = AnalysisState::new(plan, self.now);
                self.state.status = status;
                self.change_status(Status::Pending, actor, said);
            }
        }
        Ok(())
    }

    fn resume(&mut self, actor: &str, said: String) {
        self.state.waiting = None;
        self.state.waiting_since = None;
        self.state.consecutive_inconclusive = 0;
        self.change_status(Status::Running, actor, said);
        if self.state.weight_settled() {
            self.schedule_check();
        } else {
            let target = self.state.target_weight;
            self.shift(target);
        }
    }
}
