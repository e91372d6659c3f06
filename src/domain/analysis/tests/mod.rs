//! Rules of DESIGN §3, one test each, driven through `apply` like the engine drives it.

use std::time::Duration;

use chrono::TimeZone;

use super::*;
use crate::domain::judge::{Judgement, Outcome};
use crate::domain::strategy::{
    DEFAULT_GATE_TIMEOUT, DEFAULT_MAX_CHECKS, OnInconclusiveLimit, Promotion, Step,
};

const INTERVAL: Duration = Duration::from_secs(30);

fn plan(weights: &[u8]) -> Plan {
    Plan {
        steps: weights
            .iter()
            .map(|&weight| Step {
                weight,
                checks: 1,
                max_checks: DEFAULT_MAX_CHECKS,
            })
            .collect(),
        interval: INTERVAL,
        failure_limit: 0,
        inconclusive_limit: 2,
        promotion: Promotion::Auto,
        confirm_promotion: false,
        gate_timeout: DEFAULT_GATE_TIMEOUT,
        on_inconclusive_limit: OnInconclusiveLimit::Rollback,
        workload: false,
    }
}

/// Drives one analysis the way the engine does: every `SetWeight` is answered by the
/// router (unless `router_down`), and time moves on by one interval per check.
struct Harness {
    state: AnalysisState,
    now: Timestamp,
    commands: Vec<Command>,
    router_down: bool,
}

impl Harness {
    fn new(plan: Plan) -> Self {
        let now = chrono::Utc
            .with_ymd_and_hms(2026, 11, 22, 12, 0, 0)
            .unwrap();
        Self {
            state: AnalysisState::new(plan, now),
            now,
            commands: Vec::new(),
            router_down: false,
        }
    }

    fn started(plan: Plan) -> Self {
        let mut harness = Self::new(plan);
        harness.send(Event::Start);
        harness
    }

    fn try_send(&mut self, event: Event) -> Result<(), Rejected> {
        let (state, commands) = apply(&self.state, &event, self.now)?;
        self.state = state;
        self.commands.extend(commands.iter().cloned());
        for command in commands {
            if let Command::SetWeight { weight } = command {
                if self.router_down {
                    continue;
                }
                self.send(Event::WeightApplied { weight });
            }
        }
        Ok(())
    }

    fn send(&mut self, event: Event) {
        self.try_send(event).expect("event accepted");
    }

    fn operate(&mut self, operation: Operation) -> Result<(), Rejected> {
        self.try_send(Event::Operation {
            operation,
            actor: "alice".into(),
            reason: "testing".into(),
        })
    }

    /// Runs one check whose metrics come out as `outcomes`.
    fn check(&mut self, outcomes: &[Judgement]) {
        if let Some(at) = self.state.next_check_at {
            self.now = at;
        }
        let results = outcomes
            .iter()
            .enumerate()
            .map(|(i, judgement)| MetricResult {
                metric: format!("metric-{i}"),
                judgement: judgement.clone(),
                dry_run: false,
            })
            .collect();
        self.check_results(results);
    }

    /// Runs one check with these results (dry-run metrics among them, say).
    fn check_results(&mut self, results: Vec<MetricResult>) {
        if let Some(at) = self.state.next_check_at {
            self.now = at;
        }
        let number = self.state.checks_done + 1;
        self.send(Event::CheckCompleted { number, results });
    }

    fn checks(&mut self, count: usize, outcome: Judgement) {
        for _ in 0..count {
            self.check(std::slice::from_ref(&outcome));
        }
    }

    fn weights_asked(&self) -> Vec<u8> {
        self.commands
            .iter()
            .filter_map(|c| match c {
                Command::SetWeight { weight } => Some(*weight),
                _ => None,
            })
            .collect()
    }
}

fn pass() -> Judgement {
    Judgement::new(Outcome::Pass, "ok").with_value(0.01)
}
fn fail() -> Judgement {
    Judgement::new(Outcome::Fail, "0.2 is above max 0.05").with_value(0.2)
}
fn no_data() -> Judgement {
    Judgement::new(
        Outcome::Inconclusive,
        "no data: the query returned no series",
    )
}
fn query_error() -> Judgement {
    Judgement::error("connection refused")
}
fn gathering() -> Judgement {
    Judgement::new(Outcome::Inconclusive, "gathering evidence").gathering()
}

#[test]
fn a_healthy_canary_walks_every_step_and_is_deployed() {
    let mut h = Harness::started(plan(&[5, 25, 50, 100]));
    h.checks(4, pass());
    assert_eq!(h.state.status, Status::Deployed);
    assert_eq!(h.weights_asked(), [5, 25, 50, 100, 100]);
    assert_eq!(h.state.canary_weight, 100);
    assert!(h.state.completed_at.is_some());
    assert_eq!(h.state.next_check_at, None);
}

#[test]
fn a_pending_analysis_runs_no_check_and_shifts_nothing() {
    let mut h = Harness::new(plan(&[10, 100]));
    h.check(&[pass()]);
    assert_eq!(h.state.status, Status::Pending);
    assert!(h.commands.is_empty());
}

#[test]
fn rolls_back_on_first_failure_when_failure_limit_is_zero() {
    let mut h = Harness::started(plan(&[5, 50, 100]));
    h.check(&[fail()]);
    assert_eq!(h.state.status, Status::RolledBack);
    assert_eq!(h.state.canary_weight, 0);
    assert!(
        h.state.reason.contains("0.2 is above max 0.05"),
        "{}",
        h.state.reason
    );
}

#[test]
fn tolerates_failures_up_to_the_failure_limit() {
    let mut p = plan(&[10, 100]);
    p.failure_limit = 2;
    let mut h = Harness::started(p);
    h.checks(2, fail());
    assert_eq!(h.state.status, Status::Running);
    h.check(&[fail()]);
    assert_eq!(h.state.status, Status::RolledBack);
    assert!(h.state.reason.contains("3 failed checks, failureLimit 2"));
}

#[test]
fn failures_count_over_the_whole_analysis_not_per_step() {
    let mut p = plan(&[10, 50, 100]);
    p.failure_limit = 1;
    let mut h = Harness::started(p);
    h.check(&[fail()]);
    h.check(&[pass()]);
    assert_eq!(h.state.step_index, 1);
    h.check(&[fail()]);
    assert_eq!(h.state.status, Status::RolledBack);
}

#[test]
fn one_failing_metric_fails_the_check_whatever_the_others_say() {
    let mut h = Harness::started(plan(&[10, 100]));
    h.check(&[pass(), fail(), no_data()]);
    assert_eq!(h.state.status, Status::RolledBack);
    assert!(h.state.reason.starts_with("metric-1 failed"));
}

#[test]
fn never_promotes_while_checks_are_inconclusive() {
    let mut h = Harness::started(plan(&[50, 100]));
    h.checks(2, no_data());
    assert_eq!(h.state.status, Status::Running);
    assert_eq!(h.state.step_index, 0);
    assert_eq!(h.weights_asked(), [50]);
}

#[test]
fn a_step_passes_only_on_passing_checks_without_a_gap_in_the_data() {
    let mut p = plan(&[50, 100]);
    p.steps[0].checks = 2;
    let mut h = Harness::started(p);
    h.check(&[pass()]);
    h.check(&[query_error()]);
    h.check(&[pass()]);
    assert_eq!(h.state.step_index, 0, "a pass, a gap, a pass: still at 50%");
    h.check(&[pass()]);
    assert_eq!(h.state.step_index, 1);
    assert_eq!(h.weights_asked(), [50, 100]);
}

#[test]
fn rolls_back_once_inconclusive_checks_exceed_the_limit() {
    let mut h = Harness::started(plan(&[50, 100]));
    h.checks(3, no_data());
    assert_eq!(h.state.status, Status::RolledBack);
    assert!(
        h.state
            .reason
            .starts_with("3 consecutive inconclusive checks exceed inconclusiveLimit 2"),
        "{}",
        h.state.reason
    );
}

#[test]
fn query_errors_count_toward_the_inconclusive_limit() {
    let mut h = Harness::started(plan(&[50, 100]));
    h.check(&[query_error()]);
    h.check(&[no_data()]);
    h.check(&[query_error()]);
    assert_eq!(h.state.status, Status::RolledBack);
    assert!(h.state.reason.contains("connection refused"));
}

#[test]
fn a_passing_check_resets_the_consecutive_inconclusive_count() {
    let mut p = plan(&[50, 100]);
    p.steps[0].checks = 3;
    let mut h = Harness::started(p);
    h.checks(2, no_data());
    h.check(&[pass()]);
    h.checks(2, no_data());
    assert_eq!(h.state.status, Status::Running);
    assert_eq!(h.state.consecutive_inconclusive, 2);
}

#[test]
fn missing_data_in_one_metric_holds_a_step_even_when_others_pass() {
    let mut h = Harness::started(plan(&[50, 100]));
    h.check(&[pass(), no_data()]);
    assert_eq!(h.state.step_index, 0);
    assert_eq!(h.state.passed_in_step, 0);
}

#[test]
fn a_step_needs_its_required_passing_checks() {
    let mut p = plan(&[25, 100]);
    p.steps[0].checks = 3;
    let mut h = Harness::started(p);
    h.checks(2, pass());
    assert_eq!(h.state.step_index, 0);
    h.check(&[pass()]);
    assert_eq!(h.state.step_index, 1);
    assert_eq!(h.state.canary_weight, 100);
}

#[test]
fn gathering_evidence_holds_the_step_without_counting_toward_the_limit() {
    let mut h = Harness::started(plan(&[25, 100]));
    h.checks(5, gathering());
    assert_eq!(h.state.status, Status::Running);
    assert_eq!(h.state.consecutive_inconclusive, 0);
    assert_eq!(h.state.step_index, 0);
}

#[test]
fn the_last_check_of_a_step_must_decide() {
    let mut p = plan(&[25, 100]);
    p.steps[0].max_checks = 4;
    p.inconclusive_limit = 0;
    let mut h = Harness::started(p);
    h.checks(3, gathering());
    assert!(h.state.next_check_must_decide());
    assert_eq!(h.state.status, Status::Running);
    h.check(&[gathering()]);
    assert_eq!(h.state.status, Status::RolledBack);
    assert!(h.state.reason.contains("gathering evidence"));
}

#[test]
fn checks_wait_until_the_router_applied_the_step_weight() {
    let mut h = Harness::new(plan(&[10, 100]));
    h.router_down = true;
    h.send(Event::Start);
    assert_eq!(h.state.next_check_at, None);
    h.check(&[pass()]);
    assert_eq!(
        h.state.checks_done, 0,
        "a check before the weight applied is ignored"
    );
    h.router_down = false;
    h.send(Event::WeightApplied { weight: 10 });
    assert_eq!(h.state.next_check_at, Some(h.now + INTERVAL));
}

#[test]
fn a_late_check_result_is_never_counted_twice() {
    let mut p = plan(&[10, 100]);
    p.steps[0].checks = 2;
    let mut h = Harness::started(p);
    h.check(&[pass()]);
    let stale = Event::CheckCompleted {
        number: 1,
        results: vec![MetricResult {
            metric: "m".into(),
            judgement: pass(),
            dry_run: false,
        }],
    };
    let (state, commands) = apply(&h.state, &stale, h.now).unwrap();
    assert_eq!(state, h.state);
    assert!(commands.is_empty());
}

#[test]
fn a_check_with_no_metrics_is_missing_data_not_a_pass() {
    let mut p = plan(&[10, 100]);
    p.inconclusive_limit = 0;
    let mut h = Harness::started(p);
    h.check(&[]);
    assert_eq!(h.state.status, Status::RolledBack);
}

#[test]
fn manual_promotion_waits_in_paused_until_promoted() {
    let mut p = plan(&[50]);
    p.promotion = Promotion::Manual;
    let mut h = Harness::started(p);
    h.check(&[pass()]);
    assert_eq!(h.state.status, Status::Paused);
    assert_eq!(h.state.waiting, Some(Waiting::ManualPromotion));
    assert_eq!(h.state.canary_weight, 50);
    h.operate(Operation::Promote).unwrap();
    assert_eq!(h.state.status, Status::Deployed);
}

#[test]
fn the_confirmation_gate_holds_promotion_while_checks_go_on() {
    let mut p = plan(&[50]);
    p.confirm_promotion = true;
    let mut h = Harness::started(p);
    h.check(&[pass()]);
    assert_eq!(h.state.status, Status::Promoting);
    assert!(h.commands.contains(&Command::ConfirmPromotion));
    h.check(&[pass()]);
    assert_eq!(h.state.status, Status::Promoting);
    assert_eq!(h.state.canary_weight, 50);
    h.check(&[fail()]);
    assert_eq!(h.state.status, Status::RolledBack);
}

#[test]
fn a_confirmed_promotion_shifts_all_traffic() {
    let mut p = plan(&[50]);
    p.confirm_promotion = true;
    let mut h = Harness::started(p);
    h.check(&[pass()]);
    h.send(Event::PromotionConfirmed);
    assert_eq!(h.state.status, Status::Deployed);
    assert_eq!(h.state.canary_weight, 100);
}

#[test]
fn rollback_retries_the_router_until_the_canary_weight_is_zero() {
    let mut h = Harness::started(plan(&[40, 100]));
    h.router_down = true;
    h.check(&[fail()]);
    assert_eq!(h.state.status, Status::RollingBack);
    for _ in 0..3 {
        h.send(Event::RouterFailed {
            weight: 0,
            error: "connection refused".into(),
        });
        assert_eq!(h.state.status, Status::RollingBack);
        assert_eq!(h.commands.last(), Some(&Command::SetWeight { weight: 0 }));
    }
    h.send(Event::WeightApplied { weight: 0 });
    assert_eq!(h.state.status, Status::RolledBack);
}

#[test]
fn a_router_refusing_a_step_fails_the_analysis_after_returning_traffic() {
    let mut h = Harness::started(plan(&[10, 50, 100]));
    h.router_down = true;
    h.check(&[pass()]);
    h.send(Event::RouterFailed {
        weight: 50,
        error: "no such backend".into(),
    });
    assert_eq!(h.state.status, Status::RollingBack);
    h.send(Event::WeightApplied { weight: 0 });
    assert_eq!(h.state.status, Status::Failed);
    assert!(h.state.reason.contains("could not set canary weight 50%"));
}

#[test]
fn promotion_is_retried_when_the_router_refuses() {
    let mut h = Harness::started(plan(&[50]));
    h.router_down = true;
    h.check(&[pass()]);
    h.send(Event::RouterFailed {
        weight: 100,
        error: "timeout".into(),
    });
    assert_eq!(h.state.status, Status::Promoting);
    assert_eq!(h.commands.last(), Some(&Command::SetWeight { weight: 100 }));
}

#[test]
fn pause_stops_checks_and_resume_schedules_them_again() {
    let mut h = Harness::started(plan(&[10, 100]));
    h.operate(Operation::Pause).unwrap();
    assert_eq!(h.state.status, Status::Paused);
    assert_eq!(h.state.next_check_at, None);
    h.check(&[pass()]);
    assert_eq!(h.state.checks_done, 0);
    h.operate(Operation::Resume).unwrap();
    assert_eq!(h.state.status, Status::Running);
    assert_eq!(h.state.next_check_at, Some(h.now + INTERVAL));
}

#[test]
fn promote_skips_the_remaining_steps() {
    let mut h = Harness::started(plan(&[5, 25, 50]));
    h.operate(Operation::Promote).unwrap();
    assert_eq!(h.state.status, Status::Deployed);
    assert_eq!(h.weights_asked(), [5, 100]);
}

#[test]
fn abort_returns_traffic_and_cancels() {
    let mut h = Harness::started(plan(&[30, 100]));
    h.operate(Operation::Abort).unwrap();
    assert_eq!(h.state.status, Status::Cancelled);
    assert_eq!(h.state.canary_weight, 0);
}

#[test]
fn abort_of_a_pending_analysis_touches_no_traffic() {
    let mut h = Harness::new(plan(&[30, 100]));
    h.operate(Operation::Abort).unwrap();
    assert_eq!(h.state.status, Status::Cancelled);
    assert!(h.weights_asked().is_empty());
}

#[test]
fn abort_is_refused_once_deployed() {
    let mut h = Harness::started(plan(&[100]));
    h.check(&[pass()]);
    let rejected = h.operate(Operation::Abort).unwrap_err();
    assert_eq!(rejected.status, Status::Deployed);
    assert_eq!(
        rejected.to_string(),
        "cannot abort an analysis that is DEPLOYED; allowed when PENDING, RUNNING, PAUSED, PROMOTING"
    );
}

#[test]
fn retry_starts_a_rolled_back_analysis_again_from_step_one() {
    let mut h = Harness::started(plan(&[10, 50, 100]));
    h.check(&[pass()]);
    h.check(&[fail()]);
    assert_eq!(h.state.status, Status::RolledBack);
    h.operate(Operation::Retry).unwrap();
    assert_eq!(h.state.status, Status::Pending);
    assert_eq!(
        (h.state.failures, h.state.step_index, h.state.checks_done),
        (0, 0, 0)
    );
    h.send(Event::Start);
    assert_eq!(h.state.canary_weight, 10);
    h.checks(3, pass());
    assert_eq!(h.state.status, Status::Deployed);
}

#[test]
fn a_terminal_analysis_ignores_supersede_and_late_events() {
    let mut h = Harness::started(plan(&[100]));
    h.check(&[pass()]);
    let before = h.state.clone();
    for event in [
        Event::Superseded { by: "x".into() },
        Event::Start,
        Event::WeightApplied { weight: 3 },
        Event::RouterFailed {
            weight: 0,
            error: "x".into(),
        },
    ] {
        let (state, commands) = apply(&before, &event, h.now).unwrap();
        assert_eq!(state.status, Status::Deployed, "{event:?}");
        assert!(commands.is_empty(), "{event:?}");
    }
}

#[test]
fn operations_are_allowed_exactly_in_their_statuses() {
    use Operation::*;
    use Status::*;
    let table: [(Operation, &[Status]); 6] = [
        (Pause, &[Running]),
        (Resume, &[Paused]),
        (Promote, &[Running, Paused, Promoting]),
        (Rollback, &[Running, Paused, Promoting]),
        (Abort, &[Pending, Running, Paused, Promoting]),
        (Retry, &[Failed, RolledBack]),
    ];
    let base = AnalysisState::new(plan(&[10, 100]), chrono::Utc::now());
    for (operation, allowed) in table {
        for status in Status::ALL {
            let mut state = base.clone();
            state.status = status;
            let event = Event::Operation {
                operation,
                actor: "a".into(),
                reason: String::new(),
            };
            let result = apply(&state, &event, chrono::Utc::now());
            assert_eq!(
                result.is_ok(),
                allowed.contains(&status),
                "{operation:?} in {status:?}"
            );
        }
    }
}

#[test]
fn every_status_change_is_recorded_and_notified_with_its_actor() {
    let mut h = Harness::started(plan(&[10, 100]));
    h.operate(Operation::Rollback).unwrap();
    let changes: Vec<_> = h
        .commands
        .iter()
        .filter_map(|c| match c {
            Command::Record(r) if r.kind == RecordKind::StatusChanged => Some(r.clone()),
            _ => None,
        })
        .collect();
    let messages: Vec<_> = changes.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(messages[1].starts_with("RUNNING -> ROLLING_BACK: rollback by alice: testing"));
    assert_eq!(changes[1].actor, "alice");
    let notified: Vec<_> = h
        .commands
        .iter()
        .filter_map(|c| match c {
            Command::Notify { status, .. } => Some(*status),
            _ => None,
        })
        .collect();
    assert_eq!(
        notified,
        [Status::Running, Status::RollingBack, Status::RolledBack]
    );
}

#[test]
fn statuses_round_trip_through_their_names() {
    for status in Status::ALL {
        assert_eq!(Status::parse(status.as_str()), Some(status));
        assert_eq!(Status::parse(&status.as_str().to_lowercase()), Some(status));
        let json = serde_json::to_string(&status).unwrap();
        assert_eq!(json, format!("\"{}\"", status.as_str()));
    }
}

mod supersede;
mod waiting;
mod workload;
