//! The transitions of the analysis state machine (the rules of DESIGN §3).

use super::{
    AnalysisState, Command, Event, MetricResult, Operation, Record, RecordKind, SYSTEM_ACTOR,
    Status, Waiting,
};
use crate::domain::Timestamp;
use crate::domain::judge::Outcome;
use crate::domain::strategy::OnInconclusiveLimit;

/// An operation asked in a status that does not allow it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} an analysis that is {status}; allowed when {}", operation.as_str(), list(allowed))]
pub struct Rejected {
    pub operation: Operation,
    pub status: Status,
    pub allowed: &'static [Status],
}

/// The first point of `interval`'s grid at or after `at`.
pub fn on_grid(at: Timestamp, interval: std::time::Duration) -> Timestamp {
    let step = (interval.as_millis().div_ceil(1000).max(1) * 1000) as i64;
    let ms = at.timestamp_millis();
    let aligned = ms.div_euclid(step) * step + if ms.rem_euclid(step) == 0 { 0 } else { step };
    chrono::DateTime::from_timestamp_millis(aligned).unwrap_or(at)
}

fn list(statuses: &[Status]) -> String {
    let names: Vec<_> = statuses.iter().map(|s| s.as_str()).collect();
    names.join(", ")
}

/// Applies `event` to `state` at time `now`. Events that no longer apply (a late
/// check result, a start of an analysis already started) leave the state unchanged
/// and return no commands; only operations are refused, so callers can answer 409.
pub fn apply(
    state: &AnalysisState,
    event: &Event,
    now: Timestamp,
) -> Result<(AnalysisState, Vec<Command>), Rejected> {
    let mut t = Transition::new(state, now);
    match event {
        Event::Start => t.start(),
        Event::CheckCompleted { number, results } => t.check_completed(*number, results),
        Event::WeightApplied { weight } => t.weight_applied(*weight),
        Event::RouterFailed { weight, error } => t.router_failed(*weight, error),
        Event::PromotionConfirmed => t.promotion_confirmed(),
        Event::Operation {
            operation,
            actor,
            reason,
        } => t.operation(*operation, actor, reason)?,
        Event::Superseded { by } => t.superseded(by),
        Event::Displaced { owner } => t.displaced(owner),
        Event::WorkloadDone { step } => t.workload_done(*step),
        Event::WorkloadFailed { step, reason } => t.workload_failed(*step, reason),
    }
    Ok(t.finish(state))
}

/// A transition under construction: the next state and the commands it needs.
pub(super) struct Transition {
    pub(super) state: AnalysisState,
    pub(super) commands: Vec<Command>,
    pub(super) now: Timestamp,
}

/// How one check came out, all metrics considered.
enum CheckVerdict<'a> {
    Failed(&'a MetricResult),
    /// No data or a query error: counts toward `inconclusiveLimit`.
    Missing(&'a MetricResult),
    /// A judge has data but not yet enough evidence: holds the step.
    Holding,
    Passed,
}

/// `None` when the check had no deciding metrics at all: that is missing data, never a
/// pass. Dry-run metrics are shown with their outcome but never decide.
fn classify(results: &[MetricResult], must_decide: bool) -> Option<CheckVerdict<'_>> {
    let results: Vec<&MetricResult> = results.iter().filter(|r| !r.dry_run).collect();
    if results.is_empty() {
        return None;
    }
    let find = |wanted: fn(&MetricResult) -> bool| results.iter().copied().find(|r| wanted(r));
    if let Some(failed) = find(|r| r.judgement.outcome == Outcome::Fail) {
        return Some(CheckVerdict::Failed(failed));
    }
    // A judge still gathering at the step's last check had its chance to decide.
    let missing = |r: &MetricResult| match r.judgement.outcome {
        Outcome::Error => true,
        Outcome::Inconclusive => !r.judgement.gathering,
        _ => false,
    };
    if let Some(missing) = results.iter().copied().find(|r| missing(r)) {
        return Some(CheckVerdict::Missing(missing));
    }
    if let Some(holding) = find(|r| r.judgement.outcome == Outcome::Inconclusive) {
        return Some(if must_decide {
            CheckVerdict::Missing(holding)
        } else {
            CheckVerdict::Holding
        });
    }
    Some(CheckVerdict::Passed)
}

/// One check as a whole, as an analysis counts it: FAIL when a deciding metric
/// failed; INCONCLUSIVE when one had no data, an error, or not yet enough evidence;
/// PASS when every deciding metric passed. Dry-run metrics never decide.
pub fn check_outcome(results: &[MetricResult]) -> Outcome {
    match classify(results, false) {
        Some(CheckVerdict::Failed(_)) => Outcome::Fail,
        Some(CheckVerdict::Passed) => Outcome::Pass,
        Some(CheckVerdict::Missing(_) | CheckVerdict::Holding) | None => Outcome::Inconclusive,
    }
}

fn summary(results: &[MetricResult]) -> String {
    let parts: Vec<_> = results
        .iter()
        .map(|r| {
            let dry_run = if r.dry_run { " (dry run)" } else { "" };
            format!(
                "{} {}{dry_run}: {}",
                r.metric,
                r.judgement.outcome.as_str(),
                r.judgement.reason
            )
        })
        .collect();
    parts.join("; ")
}

impl Transition {
    fn new(state: &AnalysisState, now: Timestamp) -> Self {
        Self {
            state: state.clone(),
            commands: Vec::new(),
            now,
        }
    }

    fn finish(mut self, before: &AnalysisState) -> (AnalysisState, Vec<Command>) {
        if self.commands.is_empty() && self.state == *before {
            return (self.state, self.commands);
        }
        self.state.updated_at = self.now;
        (self.state, self.commands)
    }

    pub(super) fn record(&mut self, kind: RecordKind, actor: &str, message: String) {
        self.commands.push(Command::Record(Record {
            kind,
            actor: actor.to_string(),
            message,
        }));
    }

    pub(super) fn change_status(&mut self, status: Status, actor: &str, reason: String) {
        let from = self.state.status;
        self.state.status = status;
        self.state.reason = reason.clone();
        if status.is_terminal() {
            self.state.completed_at = Some(self.now);
            self.state.next_check_at = None;
            self.state.waiting = None;
            self.state.waiting_since = None;
            self.state.rollback_outcome = None;
        }
        self.record(
            RecordKind::StatusChanged,
            actor,
            format!("{from} -> {status}: {reason}"),
        );
        self.commands.push(Command::Notify { status, reason });
    }

    /// Asks the router for a weight; checks wait until it is applied.
    pub(super) fn shift(&mut self, weight: u8) {
        self.state.target_weight = weight;
        self.state.next_check_at = None;
        self.commands.push(Command::SetWeight { weight });
    }

    /// The next check falls on the interval's grid: the first multiple of the interval
    /// (in whole seconds, since the Unix epoch) at least one interval from now. Analyses
    /// with one interval check at the same moments, so their queries can be shared.
    pub(super) fn schedule_check(&mut self) {
        let interval = self.state.plan.interval;
        self.state.next_check_at = Some(on_grid(self.now + interval, interval));
    }

    pub(super) fn begin_rollback(&mut self, outcome: Status, actor: &str, reason: String) {
        self.state.rollback_outcome = Some(outcome);
        // A deploy or promotion under way is abandoned; the canary is scaled down last.
        self.state.workload.pending = None;
        self.state.workload.since = None;
        self.state.waiting = None;
        self.state.waiting_since = None;
        self.change_status(Status::RollingBack, actor, reason);
        self.shift(0);
    }

    fn start(&mut self) {
        if self.state.status != Status::Pending {
            return;
        }
        self.state.started_at.get_or_insert(self.now);
        self.state.step_index = 0;
        if self.state.plan.workload {
            return self.deploy_first();
        }
        let first = self.state.plan.steps[0].weight;
        self.change_status(
            Status::Running,
            SYSTEM_ACTOR,
            format!("started at step 1 of {}", self.state.plan.steps.len()),
        );
        self.shift(first);
    }

    fn weight_applied(&mut self, weight: u8) {
        self.state.canary_weight = weight;
        if weight != self.state.target_weight {
            return;
        }
        match self.state.status {
            Status::Running => {
                self.state.step_started_at = Some(self.now);
                self.schedule_check();
            }
            Status::Promoting if weight == 100 && !self.state.plan.workload => self.change_status(
                Status::Deployed,
                SYSTEM_ACTOR,
                "promoted: all traffic on the canary".to_string(),
            ),
            Status::Promoting if weight == 0 && self.state.workload.stable_promoted => {
                self.scale_down_first();
            }
            Status::RollingBack if weight == 0 => self.back_on_stable(),
            // A wait that keeps watching, confirmed (after a restart, or stored by a
            // version that stopped checks while waiting): its next check is due.
            Status::Paused | Status::Promoting
                if self.state.runs_checks() && self.state.next_check_at.is_none() =>
            {
                self.schedule_check();
            }
            _ => {}
        }
    }

    fn router_failed(&mut self, weight: u8, error: &str) {
        if weight != self.state.target_weight || self.state.status.is_terminal() {
            return;
        }
        let message = format!("router could not set canary weight {weight}%: {error}");
        self.record(RecordKind::RouterError, SYSTEM_ACTOR, message.clone());
        match self.state.status {
            Status::Running | Status::Paused => {
                self.begin_rollback(Status::Failed, SYSTEM_ACTOR, message);
            }
            // Rolling back and promoting are retried until the router obeys.
            Status::RollingBack | Status::Promoting => self.shift(weight),
            _ => {}
        }
    }

    fn check_completed(&mut self, number: u64, results: &[MetricResult]) {
        let current = number == self.state.checks_done + 1;
        if !self.state.runs_checks() || !current || !self.state.weight_settled() {
            return;
        }
        let must_decide = self.state.next_check_must_decide();
        self.state.checks_done = number;
        self.state.checks_in_step += 1;
        let step = self.state.step_index + 1;
        let weight = self.state.canary_weight;
        let Some(verdict) = classify(results, must_decide) else {
            self.record(
                RecordKind::Check,
                SYSTEM_ACTOR,
                format!("check {number} had no metrics"),
            );
            return self.missing_data("the check had no metrics".to_string());
        };
        self.record(
            RecordKind::Check,
            SYSTEM_ACTOR,
            format!(
                "check {number} at step {step} ({weight}%): {}",
                summary(results)
            ),
        );
        match verdict {
            CheckVerdict::Failed(failed) => self.failed(failed),
            CheckVerdict::Missing(missing) => {
                let why = format!("{}: {}", missing.metric, missing.judgement.reason);
                self.missing_data(why);
            }
            CheckVerdict::Holding => {
                self.state.consecutive_inconclusive = 0;
                self.after_check();
            }
            CheckVerdict::Passed => {
                self.state.consecutive_inconclusive = 0;
                self.state.passed_in_step += 1;
                self.passed();
            }
        }
        self.gate_timed_out();
    }

    fn failed(&mut self, failed: &MetricResult) {
        self.state.consecutive_inconclusive = 0;
        self.state.failures += 1;
        let limit = self.state.plan.failure_limit;
        if self.state.failures > limit {
            let reason = format!(
                "{} failed: {} ({} failed checks, failureLimit {limit})",
                failed.metric, failed.judgement.reason, self.state.failures
            );
            self.begin_rollback(Status::RolledBack, SYSTEM_ACTOR, reason);
        } else {
            self.after_check();
        }
    }

    /// A check without data breaks the step's evidence: the passes a step needs must
    /// follow one another, so promotion never rests on checks with a gap between them.
    fn missing_data(&mut self, why: String) {
        self.state.passed_in_step = 0;
        self.state.consecutive_inconclusive += 1;
        let limit = self.state.plan.inconclusive_limit;
        let count = self.state.consecutive_inconclusive;
        if count <= limit {
            return self.after_check();
        }
        let reason = format!(
            "{count} consecutive inconclusive checks exceed inconclusiveLimit {limit}: {why}"
        );
        match self.state.plan.on_inconclusive_limit {
            OnInconclusiveLimit::Rollback => {
                self.begin_rollback(Status::RolledBack, SYSTEM_ACTOR, reason);
            }
            OnInconclusiveLimit::Pause if self.state.waiting == Some(Waiting::Inconclusive) => {
                self.after_check();
            }
            OnInconclusiveLimit::Pause => {
                self.state.waiting = Some(Waiting::Inconclusive);
                self.state.waiting_since = Some(self.now);
                self.change_status(
                    Status::Paused,
                    SYSTEM_ACTOR,
                    format!("{reason}; paused for a person"),
                );
                self.after_check();
            }
        }
    }

    /// Keep checking at this step: the next point of the grid after the check just run,
    /// or, when the check ran so late that it has passed, the next one after now (the
    /// lag is recorded with the check; a slot is never checked twice).
    pub(super) fn after_check(&mut self) {
        let interval = self.state.plan.interval;
        let next = self
            .state
            .next_check_at
            .map(|due| on_grid(due + interval, interval))
            .filter(|next| *next > self.now);
        self.state.next_check_at = Some(next.unwrap_or_else(|| on_grid(self.now, interval)));
    }

    fn passed(&mut self) {
        let Some(step) = self.state.step().copied() else {
            return;
        };
        match self.state.status {
            // Behind the gate, only a check that passed completely asks it again.
            Status::Promoting => {
                self.after_check();
                return self.commands.push(Command::ConfirmPromotion);
            }
            // Waiting for a person: keep watching, decide nothing.
            Status::Paused => return self.after_check(),
            _ if self.state.passed_in_step < step.checks => return self.after_check(),
            _ => {}
        }
        let next = self.state.step_index + 1;
        if let Some(next_step) = self.state.plan.steps.get(next).copied() {
            self.state.step_index = next;
            self.state.checks_in_step = 0;
            self.state.passed_in_step = 0;
            self.record(
                RecordKind::StepChanged,
                SYSTEM_ACTOR,
                format!(
                    "step {} passed; step {} of {} at {}%",
                    next,
                    next + 1,
                    self.state.plan.steps.len(),
                    next_step.weight
                ),
            );
            self.shift(next_step.weight);
        } else {
            self.all_steps_passed();
        }
    }

    pub(super) fn promote(&mut self, actor: &str, reason: String) {
        self.state.waiting = None;
        self.state.waiting_since = None;
        self.change_status(Status::Promoting, actor, reason);
        self.complete_promotion();
    }
}
