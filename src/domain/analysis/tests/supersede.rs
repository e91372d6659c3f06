//! A newer analysis for the route: traffic returns to stable before the route passes on.

use super::*;

#[test]
fn supersede_returns_traffic_to_stable_before_cancelling() {
    let mut h = Harness::started(plan(&[10, 50, 100]));
    h.check(&[pass()]);
    assert_eq!(h.state.canary_weight, 50);
    h.router_down = true;
    h.send(Event::Superseded { by: "an-2".into() });
    // Still watching the route until the router confirms weight 0.
    assert_eq!(h.state.status, Status::RollingBack);
    assert_eq!(h.state.target_weight, 0);
    assert!(
        h.state.reason.starts_with("superseded by an-2"),
        "{}",
        h.state.reason
    );
    h.router_down = false;
    h.send(Event::WeightApplied { weight: 0 });
    assert_eq!(h.state.status, Status::Cancelled);
    assert_eq!(h.weights_asked().last(), Some(&0));
}

#[test]
fn supersede_in_each_status_ends_with_traffic_on_stable() {
    // (how the analysis stands, status after the supersede, asks for weight 0)
    type Case = (fn(&mut Harness), Status, bool);
    let cases: [Case; 5] = [
        (|_| {}, Status::Cancelled, false),
        (|h| h.send(Event::Start), Status::RollingBack, true),
        (
            |h| {
                h.send(Event::Start);
                h.operate(Operation::Pause).unwrap();
            },
            Status::RollingBack,
            true,
        ),
        (
            |h| {
                h.send(Event::Start);
                h.router_down = true;
                h.operate(Operation::Promote).unwrap();
            },
            Status::RollingBack,
            true,
        ),
        (
            |h| {
                h.send(Event::Start);
                h.router_down = true;
                h.operate(Operation::Rollback).unwrap();
            },
            Status::RollingBack,
            false,
        ),
    ];
    for (index, (setup, expected, asks_zero)) in cases.into_iter().enumerate() {
        let mut h = Harness::new(plan(&[10, 100]));
        setup(&mut h);
        // The router holds its answer, to see where the supersede leaves things.
        h.router_down = true;
        let asked_before = h.weights_asked().len();
        h.send(Event::Superseded { by: "an-2".into() });
        assert_eq!(h.state.status, expected, "case {index}");
        let asked: Vec<u8> = h.weights_asked()[asked_before..].to_vec();
        assert_eq!(asked == [0], asks_zero, "case {index}: asked {asked:?}");
        if expected == Status::RollingBack {
            assert_eq!(h.state.target_weight, 0, "case {index}");
        }
    }
}

#[test]
fn a_rollback_under_way_keeps_its_verdict_when_superseded() {
    let mut h = Harness::started(plan(&[10, 100]));
    h.router_down = true;
    h.check(&[fail()]);
    assert_eq!(h.state.status, Status::RollingBack);
    h.send(Event::Superseded { by: "an-2".into() });
    h.router_down = false;
    h.send(Event::WeightApplied { weight: 0 });
    assert_eq!(h.state.status, Status::RolledBack);
}

#[test]
fn a_displaced_analysis_ends_without_asking_the_router_for_anything() {
    let mut h = Harness::started(plan(&[10, 100]));
    let asked = h.weights_asked();
    h.send(Event::Displaced {
        owner: "an-0".into(),
    });
    assert_eq!(h.state.status, Status::Cancelled);
    assert_eq!(h.state.reason, "route is owned by analysis an-0");
    assert_eq!(h.weights_asked(), asked);
}
