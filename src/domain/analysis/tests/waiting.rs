//! Waiting states that keep watching, the gate's rules and timeout, dry-run metrics and
//! pausing on doubt.

use super::*;

fn gates_asked(h: &Harness) -> usize {
    h.commands
        .iter()
        .filter(|c| **c == Command::ConfirmPromotion)
        .count()
}

#[test]
fn a_manual_promotion_keeps_watching_and_still_rolls_back_on_failure() {
    let mut p = plan(&[60]);
    p.promotion = Promotion::Manual;
    let mut h = Harness::started(p);
    h.check(&[pass()]);
    assert_eq!(h.state.status, Status::Paused);
    assert!(h.state.runs_checks(), "waiting for a person still watches");
    assert!(h.state.next_check_at.is_some());
    h.checks(3, pass());
    assert_eq!(
        (h.state.status, h.state.canary_weight),
        (Status::Paused, 60)
    );
    h.check(&[fail()]);
    assert_eq!(h.state.status, Status::RolledBack);
    assert_eq!(h.state.canary_weight, 0);
}

#[test]
fn an_operators_pause_alone_stops_checks() {
    let mut h = Harness::started(plan(&[10, 100]));
    h.operate(Operation::Pause).unwrap();
    assert!(!h.state.runs_checks());
    assert_eq!(h.state.next_check_at, None);
    // A check result arriving anyway changes nothing.
    h.check(&[fail()]);
    assert_eq!(h.state.status, Status::Paused);
}

#[test]
fn the_gate_is_asked_only_after_a_check_that_passed_completely() {
    let mut p = plan(&[50]);
    p.confirm_promotion = true;
    p.failure_limit = 1;
    let mut h = Harness::started(p);
    h.check(&[pass()]);
    assert_eq!(h.state.status, Status::Promoting);
    assert_eq!(
        gates_asked(&h),
        1,
        "the check that passed the last step asks once"
    );
    // (check outcome, asks the gate again)
    let cases = [
        (vec![no_data()], false),
        (vec![pass(), fail()], false),
        (vec![pass(), gathering()], false),
        (vec![pass(), pass()], true),
    ];
    for (outcomes, asks) in cases {
        let before = gates_asked(&h);
        h.check(&outcomes);
        assert_eq!(h.state.status, Status::Promoting, "{outcomes:?}");
        assert_eq!(gates_asked(&h) > before, asks, "{outcomes:?}");
    }
}

#[test]
fn an_operator_may_promote_past_a_gate_that_never_answers() {
    let mut p = plan(&[50]);
    p.confirm_promotion = true;
    let mut h = Harness::started(p);
    h.check(&[pass()]);
    assert_eq!(h.state.status, Status::Promoting);
    h.operate(Operation::Promote).unwrap();
    assert_eq!(h.state.status, Status::Deployed);
    assert!(h.commands.iter().any(|c| matches!(c, Command::Record(r)
        if r.kind == RecordKind::StepChanged && r.message.starts_with("gate overridden"))));
}

#[test]
fn a_gate_that_times_out_pauses_for_a_person_and_does_not_roll_back() {
    let mut p = plan(&[50]);
    p.confirm_promotion = true;
    p.gate_timeout = INTERVAL * 3;
    let mut h = Harness::started(p);
    h.check(&[pass()]);
    h.checks(2, pass());
    assert_eq!(h.state.status, Status::Promoting, "within the timeout");
    h.check(&[pass()]);
    assert_eq!(h.state.status, Status::Paused);
    assert_eq!(h.state.waiting, Some(Waiting::ManualPromotion));
    assert!(
        h.state
            .reason
            .starts_with("confirm-promotion did not agree within 1m 30s"),
        "{}",
        h.state.reason
    );
    assert_eq!(h.state.canary_weight, 50);
    assert!(h.state.runs_checks());
    h.operate(Operation::Promote).unwrap();
    assert_eq!(h.state.status, Status::Deployed);
}

#[test]
fn a_dry_run_metric_is_recorded_but_never_decides() {
    let mut h = Harness::started(plan(&[10, 100]));
    let dry = |judgement: Judgement| MetricResult {
        metric: "latency-trial".into(),
        judgement,
        dry_run: true,
    };
    let deciding = MetricResult {
        metric: "error-rate".into(),
        judgement: pass(),
        dry_run: false,
    };
    h.check_results(vec![deciding.clone(), dry(fail())]);
    assert_eq!(
        h.state.step_index, 1,
        "a failing dry-run metric did not hold the step"
    );
    assert_eq!(h.state.failures, 0);
    assert!(h.commands.iter().any(|c| matches!(c, Command::Record(r)
        if r.message.contains("latency-trial FAIL (dry run)"))));
    // Only dry-run results: no deciding evidence, so missing data.
    h.check_results(vec![dry(pass())]);
    assert_eq!(h.state.consecutive_inconclusive, 1);
}

#[test]
fn on_inconclusive_limit_pause_waits_for_a_person_and_keeps_watching() {
    let mut p = plan(&[10, 100]);
    p.inconclusive_limit = 1;
    p.on_inconclusive_limit = OnInconclusiveLimit::Pause;
    let mut h = Harness::started(p);
    h.checks(2, no_data());
    assert_eq!(h.state.status, Status::Paused);
    assert_eq!(h.state.waiting, Some(Waiting::Inconclusive));
    assert_eq!(h.state.canary_weight, 10);
    assert!(
        h.state.reason.ends_with("paused for a person"),
        "{}",
        h.state.reason
    );
    h.checks(2, no_data());
    assert_eq!(h.state.status, Status::Paused, "more doubt changes nothing");
    h.operate(Operation::Resume).unwrap();
    assert_eq!(
        (h.state.status, h.state.consecutive_inconclusive),
        (Status::Running, 0)
    );
    h.checks(2, no_data());
    h.check(&[fail()]);
    assert_eq!(
        h.state.status,
        Status::RolledBack,
        "a failure while paused still rolls back"
    );
}

#[test]
fn a_resumed_wait_without_a_scheduled_check_starts_watching_again() {
    // As the first version stored a manual promotion: PAUSED, no next check.
    let mut p = plan(&[60]);
    p.promotion = Promotion::Manual;
    let mut h = Harness::started(p);
    h.check(&[pass()]);
    h.state.next_check_at = None;
    h.send(Event::WeightApplied { weight: 60 });
    assert_eq!(h.state.status, Status::Paused);
    assert!(
        h.state.next_check_at.is_some(),
        "the router's confirmation schedules a check"
    );
    h.check(&[fail()]);
    assert_eq!(h.state.status, Status::RolledBack);
}
