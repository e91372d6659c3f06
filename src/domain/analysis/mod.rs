//! The analysis state machine: `(state, event, now) -> (state, Vec<Command>)`.
//!
//! It decides and never acts: shifting traffic, notifying and recording are
//! `Command`s the engine executes, and their results come back as `Event`s. That
//! keeps every rule of the analysis testable with plain `#[test]`s and lets the same
//! code resume an analysis from its stored state.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Timestamp;
use super::judge::Judgement;
use super::strategy::{DEFAULT_GATE_TIMEOUT, OnInconclusiveLimit, Promotion, Step, Strategy};
use super::workload::{WorkloadState, WorkloadStep};

mod machine;
mod operations;
#[cfg(test)]
mod tests;
mod waiting;
mod workload;

pub use machine::{Rejected, apply, check_outcome};

/// Where an analysis stands. Terminal: DEPLOYED, ROLLED_BACK, FAILED, CANCELLED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Pending,
    Running,
    Paused,
    Promoting,
    Deployed,
    RollingBack,
    RolledBack,
    Failed,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 9] = [
        Status::Pending,
        Status::Running,
        Status::Paused,
        Status::Promoting,
        Status::Deployed,
        Status::RollingBack,
        Status::RolledBack,
        Status::Failed,
        Status::Cancelled,
    ];

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Deployed | Status::RolledBack | Status::Failed | Status::Cancelled
        )
    }

    /// `ROLLED_BACK`, as in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Running => "RUNNING",
            Status::Paused => "PAUSED",
            Status::Promoting => "PROMOTING",
            Status::Deployed => "DEPLOYED",
            Status::RollingBack => "ROLLING_BACK",
            Status::RolledBack => "ROLLED_BACK",
            Status::Failed => "FAILED",
            Status::Cancelled => "CANCELLED",
        }
    }

    /// Parses `ROLLED_BACK` or `rolled_back`.
    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(text))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The part of a strategy an analysis follows, frozen when the analysis is created so
/// that editing a strategy file never changes an analysis already under way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub steps: Vec<Step>,
    #[serde(with = "duration_ms")]
    pub interval: Duration,
    pub failure_limit: u32,
    pub inconclusive_limit: u32,
    pub promotion: Promotion,
    /// Promotion waits for an outside confirmation (the `confirm-promotion` gate).
    pub confirm_promotion: bool,
    /// How long promotion waits for the gate before pausing for a person.
    #[serde(with = "duration_ms", default = "default_gate_timeout")]
    pub gate_timeout: Duration,
    #[serde(default)]
    pub on_inconclusive_limit: OnInconclusiveLimit,
    /// canaryd deploys the canary and promotes the stable Deployment (`spec.workload`).
    #[serde(default)]
    pub workload: bool,
}

fn default_gate_timeout() -> Duration {
    DEFAULT_GATE_TIMEOUT
}

impl Plan {
    pub fn from_strategy(strategy: &Strategy) -> Self {
        Self {
            steps: strategy.steps.clone(),
            interval: strategy.interval,
            failure_limit: strategy.failure_limit,
            inconclusive_limit: strategy.inconclusive_limit,
            promotion: strategy.promotion,
            confirm_promotion: strategy.confirm_promotion.is_some(),
            gate_timeout: strategy.gate_timeout,
            on_inconclusive_limit: strategy.on_inconclusive_limit,
            workload: strategy.workload.is_some(),
        }
    }
}

/// Why a PAUSED or PROMOTING analysis waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Waiting {
    /// Paused by an operator.
    Operator,
    /// All steps passed under `promotion: manual`: waits for `/promote`.
    ManualPromotion,
    /// PROMOTING behind the confirm-promotion gate; checks keep running meanwhile.
    Confirmation,
    /// PAUSED because evidence stayed missing beyond `inconclusiveLimit`
    /// (`onInconclusiveLimit: pause`); checks keep running meanwhile.
    Inconclusive,
}

impl Waiting {
    /// Whether checks keep running while the analysis waits for this: every wait but
    /// an operator's pause keeps watching, and still rolls back on failure.
    pub fn keeps_watching(self) -> bool {
        !matches!(self, Waiting::Operator)
    }
}

/// The decision state of one analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisState {
    pub status: Status,
    pub plan: Plan,
    /// Index into `plan.steps`.
    pub step_index: usize,
    /// The weight the router last confirmed.
    pub canary_weight: u8,
    /// The weight asked of the router; equal to `canary_weight` once it is applied.
    pub target_weight: u8,
    pub checks_in_step: u32,
    pub passed_in_step: u32,
    /// Failed checks over the whole analysis.
    pub failures: u32,
    /// Consecutive checks without data or with errors.
    pub consecutive_inconclusive: u32,
    /// Checks completed over the whole analysis; check results name the number they
    /// answer so a late result is never counted twice or against the wrong step.
    pub checks_done: u64,
    pub next_check_at: Option<Timestamp>,
    pub step_started_at: Option<Timestamp>,
    pub waiting: Option<Waiting>,
    /// Since when the analysis waits (for the gate's timeout).
    #[serde(default)]
    pub waiting_since: Option<Timestamp>,
    /// While ROLLING_BACK: the status reached once the canary weight is 0.
    pub rollback_outcome: Option<Status>,
    /// Why the analysis is in its status (the verdict's reason once terminal).
    pub reason: String,
    pub started_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    pub updated_at: Timestamp,
    /// The canary workload's progress, when the plan deploys one.
    #[serde(default)]
    pub workload: WorkloadState,
}

impl AnalysisState {
    /// A new analysis, PENDING until the engine starts it.
    pub fn new(plan: Plan, now: Timestamp) -> Self {
        Self {
            status: Status::Pending,
            plan,
            step_index: 0,
            canary_weight: 0,
            target_weight: 0,
            checks_in_step: 0,
            passed_in_step: 0,
            failures: 0,
            consecutive_inconclusive: 0,
            checks_done: 0,
            next_check_at: None,
            step_started_at: None,
            waiting: None,
            waiting_since: None,
            rollback_outcome: None,
            reason: "accepted".to_string(),
            started_at: None,
            completed_at: None,
            updated_at: now,
            workload: WorkloadState::default(),
        }
    }

    pub fn step(&self) -> Option<&Step> {
        self.plan.steps.get(self.step_index)
    }

    /// True when the router has applied the weight the analysis asked for.
    pub fn weight_settled(&self) -> bool {
        self.canary_weight == self.target_weight
    }

    /// Whether checks run in this state at all.
    pub fn runs_checks(&self) -> bool {
        // The canary takes no traffic while it deploys, and the decision is made once
        // the stable Deployment is being promoted.
        if self.workload.pending.is_some() {
            return false;
        }
        match self.status {
            Status::Running => true,
            Status::Paused => self.waiting.is_some_and(Waiting::keeps_watching),
            Status::Promoting => self.waiting == Some(Waiting::Confirmation),
            _ => false,
        }
    }

    /// The next check is the step's last chance: judges still gathering evidence
    /// must decide on their point estimate.
    pub fn next_check_must_decide(&self) -> bool {
        self.step()
            .is_some_and(|step| self.checks_in_step + 1 >= step.max_checks)
    }
}

/// One metric's judgement in a check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricResult {
    pub metric: String,
    pub judgement: Judgement,
    /// A dry-run metric: shown with its outcome, never deciding.
    #[serde(default)]
    pub dry_run: bool,
}

/// An operation asked by a person or a pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    Pause,
    Resume,
    Promote,
    Rollback,
    Abort,
    Retry,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Pause => "pause",
            Operation::Resume => "resume",
            Operation::Promote => "promote",
            Operation::Rollback => "rollback",
            Operation::Abort => "abort",
            Operation::Retry => "retry",
        }
    }

    /// The statuses in which this operation is allowed.
    pub fn allowed_in(self) -> &'static [Status] {
        use Status::*;
        match self {
            Operation::Pause => &[Running],
            Operation::Resume => &[Paused],
            Operation::Promote => &[Running, Paused, Promoting],
            Operation::Rollback => &[Running, Paused, Promoting],
            Operation::Abort => &[Pending, Running, Paused, Promoting],
            Operation::Retry => &[Failed, RolledBack],
        }
    }
}

/// Something that happened to an analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Event {
    /// Begin (or, after a freeze, finally begin) shifting traffic.
    Start,
    /// A check finished; `number` is `checks_done + 1` of the state it was run for.
    CheckCompleted {
        number: u64,
        results: Vec<MetricResult>,
    },
    /// The router applied a weight.
    WeightApplied { weight: u8 },
    /// The router could not apply a weight, after the engine's own retries.
    RouterFailed { weight: u8, error: String },
    /// The confirm-promotion gate answered.
    PromotionConfirmed,
    Operation {
        operation: Operation,
        actor: String,
        reason: String,
    },
    /// A newer analysis for the same route arrived.
    Superseded { by: String },
    /// Another analysis owns the route this one believed it drove.
    Displaced { owner: String },
    /// The engine finished a workload step.
    WorkloadDone { step: WorkloadStep },
    /// A workload step cannot finish: the canary did not become available in time,
    /// or the API refused.
    WorkloadFailed { step: WorkloadStep, reason: String },
}

/// What the engine must do after a transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Command {
    /// Set the canary's traffic weight, then answer `WeightApplied` or `RouterFailed`.
    SetWeight { weight: u8 },
    /// The status changed: tell whoever listens.
    Notify { status: Status, reason: String },
    /// Ask the confirm-promotion gate; answer `PromotionConfirmed` once it agrees.
    ConfirmPromotion,
    /// Append to the audit trail.
    Record(Record),
    /// Take a step on the workload, then answer `WorkloadDone` or `WorkloadFailed`.
    Workload { step: WorkloadStep },
}

/// An entry of the audit trail: who decided what, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub kind: RecordKind,
    pub actor: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RecordKind {
    StatusChanged,
    StepChanged,
    Check,
    Operation,
    RouterError,
}

impl RecordKind {
    pub const ALL: [RecordKind; 5] = [
        RecordKind::StatusChanged,
        RecordKind::StepChanged,
        RecordKind::Check,
        RecordKind::Operation,
        RecordKind::RouterError,
    ];

    pub fn parse(text: &str) -> Option<RecordKind> {
        RecordKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::StatusChanged => "statusChanged",
            RecordKind::StepChanged => "stepChanged",
            RecordKind::Check => "check",
            RecordKind::Operation => "operation",
            RecordKind::RouterError => "routerError",
        }
    }
}

/// The actor of decisions canaryd takes on its own.
pub const SYSTEM_ACTOR: &str = "canaryd";

pub(crate) mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}
