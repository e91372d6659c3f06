//! How an analysis waits at the end of its steps: for a person (manual promotion), or
//! for the confirm-promotion gate, whose wait times out into a pause. Every such wait
//! keeps checking; see `Waiting::keeps_watching`.

use super::machine::Transition;
use super::{Command, RecordKind, SYSTEM_ACTOR, Status, Waiting};
use crate::domain::strategy::Promotion;

impl Transition {
    pub(super) fn all_steps_passed(&mut self) {
        let steps = self.state.plan.steps.len();
        match self.state.plan.promotion {
            Promotion::Manual => {
                self.state.waiting = Some(Waiting::ManualPromotion);
                self.state.waiting_since = Some(self.now);
                let reason =
                    format!("all {steps} steps passed; waiting for manual promotion, checks go on");
                self.change_status(Status::Paused, SYSTEM_ACTOR, reason);
                self.after_check();
            }
            Promotion::Auto if self.state.plan.confirm_promotion => {
                self.state.waiting = Some(Waiting::Confirmation);
                self.state.waiting_since = Some(self.now);
                let reason = format!("all {steps} steps passed; waiting for confirm-promotion");
                self.change_status(Status::Promoting, SYSTEM_ACTOR, reason);
                // The check that passed the last step passed completely: ask the gate.
                self.after_check();
                self.commands.push(Command::ConfirmPromotion);
            }
            Promotion::Auto => {
                self.promote(SYSTEM_ACTOR, format!("all {steps} steps passed"));
            }
        }
    }

    pub(super) fn promotion_confirmed(&mut self) {
        if self.state.status != Status::Promoting
            || self.state.waiting != Some(Waiting::Confirmation)
        {
            return;
        }
        self.state.waiting = None;
        self.record(
            RecordKind::StepChanged,
            SYSTEM_ACTOR,
            "confirm-promotion answered yes; promoting".to_string(),
        );
        self.complete_promotion();
    }

    /// Promotion has waited for the gate longer than the plan allows: pause for a
    /// person (checks go on), never roll back for that alone.
    pub(super) fn gate_timed_out(&mut self) {
        let waiting_for_gate = self.state.status == Status::Promoting
            && self.state.waiting == Some(Waiting::Confirmation);
        let timeout = self.state.plan.gate_timeout;
        let Some(since) = self.state.waiting_since.filter(|_| waiting_for_gate) else {
            return;
        };
        if (self.now - since).to_std().unwrap_or_default() < timeout {
            return;
        }
        self.state.waiting = Some(Waiting::ManualPromotion);
        self.state.waiting_since = Some(self.now);
        let reason = format!(
            "confirm-promotion did not agree within {}; waiting for an operator to promote",
            humantime::format_duration(timeout)
        );
        self.change_status(Status::Paused, SYSTEM_ACTOR, reason);
    }
}
