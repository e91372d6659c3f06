//! Plans with a workload: deploy before any traffic moves, promote through the stable
//! Deployment, and scale the canary down once traffic is back on stable.

use super::*;
use crate::domain::workload::WorkloadStep;

fn with_workload(weights: &[u8]) -> Plan {
    Plan {
        workload: true,
        ..plan(weights)
    }
}

fn steps_asked(h: &Harness) -> Vec<WorkloadStep> {
    h.commands
        .iter()
        .filter_map(|c| match c {
            Command::Workload { step } => Some(*step),
            _ => None,
        })
        .collect()
}

fn done(h: &mut Harness, step: WorkloadStep) {
    h.send(Event::WorkloadDone { step });
}

#[test]
fn no_traffic_moves_and_no_check_runs_until_the_canary_is_available() {
    let mut h = Harness::started(with_workload(&[10, 100]));
    assert_eq!(h.state.status, Status::Running);
    assert_eq!(steps_asked(&h), [WorkloadStep::DeployCanary]);
    assert!(h.weights_asked().is_empty());
    assert!(!h.state.runs_checks());
    done(&mut h, WorkloadStep::DeployCanary);
    assert_eq!(h.weights_asked(), [10]);
    assert!(h.state.runs_checks() && h.state.next_check_at.is_some());
}

#[test]
fn a_promotion_gives_the_stable_the_image_then_returns_traffic_and_scales_down() {
    let mut h = Harness::started(with_workload(&[10, 100]));
    done(&mut h, WorkloadStep::DeployCanary);
    h.checks(2, pass());
    assert_eq!(h.state.status, Status::Promoting);
    assert_eq!(steps_asked(&h).last(), Some(&WorkloadStep::PromoteStable));
    assert!(!h.state.runs_checks(), "decided: no more checks");
    assert_eq!(
        h.weights_asked(),
        [10, 100],
        "no shift to 100% as a promotion"
    );
    done(&mut h, WorkloadStep::PromoteStable);
    assert_eq!(
        h.weights_asked().last(),
        Some(&0),
        "all traffic back to the stable Service"
    );
    assert_eq!(h.state.status, Status::Promoting);
    assert_eq!(steps_asked(&h).last(), Some(&WorkloadStep::ScaleCanaryDown));
    done(&mut h, WorkloadStep::ScaleCanaryDown);
    assert_eq!(h.state.status, Status::Deployed);
    assert!(
        h.state
            .reason
            .contains("stable Deployment runs the canary's image"),
        "{}",
        h.state.reason
    );
}

#[test]
fn a_canary_that_never_becomes_available_fails_with_the_pods_reason() {
    let mut h = Harness::started(with_workload(&[10, 100]));
    let reason = "pod web-canary-0: container app CrashLoopBackOff after 3 restarts".to_string();
    h.send(Event::WorkloadFailed {
        step: WorkloadStep::DeployCanary,
        reason,
    });
    assert_eq!(h.state.status, Status::RollingBack);
    assert_eq!(
        steps_asked(&h).last(),
        Some(&WorkloadStep::ScaleCanaryDown),
        "weight 0 came back at once"
    );
    done(&mut h, WorkloadStep::ScaleCanaryDown);
    assert_eq!(h.state.status, Status::Failed);
    assert!(
        h.state.reason.contains("CrashLoopBackOff"),
        "{}",
        h.state.reason
    );
}

#[test]
fn a_rollback_sets_the_weight_to_zero_before_scaling_the_canary_down() {
    let mut h = Harness::started(with_workload(&[10, 100]));
    done(&mut h, WorkloadStep::DeployCanary);
    h.router_down = true;
    h.check(&[fail()]);
    assert_eq!(h.state.status, Status::RollingBack);
    assert_eq!(
        steps_asked(&h),
        [WorkloadStep::DeployCanary],
        "not before the weight is 0"
    );
    h.router_down = false;
    h.send(Event::WeightApplied { weight: 0 });
    assert_eq!(steps_asked(&h).last(), Some(&WorkloadStep::ScaleCanaryDown));
    assert_eq!(
        h.state.status,
        Status::RollingBack,
        "still watching until scaled down"
    );
    h.send(Event::WorkloadFailed {
        step: WorkloadStep::ScaleCanaryDown,
        reason: "503".into(),
    });
    assert_eq!(
        steps_asked(&h)
            .iter()
            .filter(|s| **s == WorkloadStep::ScaleCanaryDown)
            .count(),
        2,
        "retried"
    );
    done(&mut h, WorkloadStep::ScaleCanaryDown);
    assert_eq!(h.state.status, Status::RolledBack);
}

#[test]
fn an_abort_while_deploying_abandons_the_deploy_and_scales_down() {
    let mut h = Harness::started(with_workload(&[10, 100]));
    h.operate(Operation::Abort).unwrap();
    assert_eq!(
        h.state.workload.pending,
        Some(WorkloadStep::ScaleCanaryDown)
    );
    done(&mut h, WorkloadStep::DeployCanary);
    assert!(
        h.weights_asked().iter().all(|w| *w == 0),
        "a late deploy answer shifts nothing"
    );
    done(&mut h, WorkloadStep::ScaleCanaryDown);
    assert_eq!(h.state.status, Status::Cancelled);
}

#[test]
fn a_failed_stable_rollout_returns_traffic_and_says_the_stable_needs_a_person() {
    let mut h = Harness::started(with_workload(&[100]));
    done(&mut h, WorkloadStep::DeployCanary);
    h.check(&[pass()]);
    let reason = "Deployment shop/web exceeded its progress deadline".to_string();
    h.send(Event::WorkloadFailed {
        step: WorkloadStep::PromoteStable,
        reason,
    });
    assert_eq!(h.weights_asked().last(), Some(&0));
    done(&mut h, WorkloadStep::ScaleCanaryDown);
    assert_eq!(h.state.status, Status::Failed);
    assert!(
        h.state.reason.contains("needs a person"),
        "{}",
        h.state.reason
    );
}
