//! Backtest: replays a strategy's steps and judges over past Prometheus data, with the
//! same state machine and judges as a live analysis. Each check is evaluated at the
//! moment it would have run (Prometheus's `time` parameter), so a team can tune its
//! thresholds on last week's incident before the strategy guards production.
//!
//! The replay shifts no traffic: the past's traffic split is what it was. Router
//! answers are taken as immediate; a confirm-promotion gate is taken as agreeing.

use std::time::Duration;

use serde::Serialize;

use super::checks::{Evaluation, MetricOutcome, evaluate};
use crate::domain::Timestamp;
use crate::domain::analysis::{AnalysisState, Command, Event, Plan, Status, apply, check_outcome};
use crate::domain::judge::Outcome;
use crate::domain::strategy::Strategy;
use crate::domain::template::Variables;
use crate::ports::MetricsSource;

/// One replayed check.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayedCheck {
    pub number: u64,
    pub at: Timestamp,
    /// 1-based step, and its canary weight, when the check ran.
    pub step: usize,
    pub canary_weight: u8,
    pub outcome: Outcome,
    pub metrics: Vec<ReplayedMetric>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayedMetric {
    pub metric: String,
    pub outcome: Outcome,
    pub value: Option<f64>,
    pub reason: String,
    pub dry_run: bool,
}

/// Where the replay ended, and why.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Backtest {
    pub checks: Vec<ReplayedCheck>,
    /// The status the strategy would have reached (RUNNING: not decided by `to`).
    pub status: Status,
    pub reason: String,
}

/// Replays the strategy over `[from, to]`.
pub async fn replay(
    source: &dyn MetricsSource,
    strategy: &Strategy,
    variables: &Variables,
    from: Timestamp,
    to: Timestamp,
) -> Backtest {
    let mut state = AnalysisState::new(Plan::from_strategy(strategy), from);
    let mut checks = Vec::new();
    advance(&mut state, Event::Start, from);
    while !state.status.is_terminal() && state.status != Status::Paused {
        let Some(at) = state.next_check_at.filter(|at| *at <= to) else {
            break;
        };
        let outcomes = check_at(source, strategy, variables, &state, at).await;
        let results: Vec<_> = outcomes.iter().map(MetricOutcome::result).collect();
        checks.push(ReplayedCheck {
            number: state.checks_done + 1,
            at,
            step: state.step_index + 1,
            canary_weight: state.canary_weight,
            outcome: check_outcome(&results),
            metrics: outcomes.into_iter().map(replayed).collect(),
        });
        let number = state.checks_done + 1;
        advance(&mut state, Event::CheckCompleted { number, results }, at);
    }
    let reason = if state.status == Status::Running {
        format!(
            "not decided by the end of the replay, at step {}",
            state.step_index + 1
        )
    } else {
        state.reason.clone()
    };
    Backtest {
        checks,
        status: state.status,
        reason,
    }
}

async fn check_at(
    source: &dyn MetricsSource,
    strategy: &Strategy,
    variables: &Variables,
    state: &AnalysisState,
    at: Timestamp,
) -> Vec<MetricOutcome> {
    let step_elapsed = state.step_started_at.map_or(strategy.interval, |started| {
        (at - started).to_std().unwrap_or(Duration::ZERO)
    });
    let evaluation = Evaluation {
        strategy,
        variables,
        at,
        pinned: true,
        window: strategy.window,
        step_elapsed,
        must_decide: state.next_check_must_decide(),
    };
    evaluate(source, &evaluation).await
}

/// Applies an event and answers, at once, what a live analysis waits for: the router
/// applies every weight, the workload is ready, and the gate agrees.
fn advance(state: &mut AnalysisState, event: Event, at: Timestamp) {
    let mut events = vec![event];
    while let Some(event) = events.pop() {
        let Ok((next, commands)) = apply(state, &event, at) else {
            return;
        };
        *state = next;
        for command in commands {
            match command {
                Command::SetWeight { weight } => events.push(Event::WeightApplied { weight }),
                Command::ConfirmPromotion => events.push(Event::PromotionConfirmed),
                Command::Workload { step } => events.push(Event::WorkloadDone { step }),
                Command::Notify { .. } | Command::Record(_) => {}
            }
        }
    }
}

fn replayed(outcome: MetricOutcome) -> ReplayedMetric {
    ReplayedMetric {
        metric: outcome.metric,
        outcome: outcome.judgement.outcome,
        value: outcome.judgement.value,
        reason: outcome.judgement.reason,
        dry_run: outcome.dry_run,
    }
}
