//! canaryd killed with SIGKILL in the middle of an analysis, then started again on the
//! same SQLite database: the analysis finishes with the right verdict, its audit trail
//! intact, and no step repeated or skipped. Real Prometheus and HAProxy.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;

const BODY: &str = "  interval: 2s\n  window: 4s\n  steps:\n    - weight: 20\n    - weight: 30\n    - weight: 50\n    - weight: 70\n    - weight: 100\n  \
                    inconclusiveLimit: 3\n  metrics:\n    - name: error-rate\n      template: http-error-rate\n      max: 0.05\n";

fn messages(events: &Value, kind: &str) -> Vec<String> {
    events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analysis_survives_kill_9_and_finishes_without_repeating_a_step() {
    let stable = DemoInstance::start("stable", 0.005, 5).await;
    let canary = DemoInstance::start("canary", 0.005, 5).await;
    let prometheus = PrometheusServer::start(&[stable.target(), canary.target()]).await;
    let haproxy = HaproxyServer::start(stable.port, canary.port).await;
    let strategies = strategy_folder(&format!("127.0.0.1:{}", haproxy.admin_port), BODY);
    let state = tempfile::tempdir().unwrap();
    // 250 req/s: a healthy canary's checks see enough requests that noise never fails one.
    let _load = Load::start(haproxy.url(), 250);

    let mut first = Canaryd::start(strategies.path(), &prometheus.url(), &[], state.path()).await;
    let id = first
        .start_analysis(json!({"strategy": "e2e/demo", "environment": "test"}))
        .await;
    let before = wait_for(
        "the analysis to reach step 3",
        Duration::from_secs(60),
        || async {
            let analysis = first.analysis(&id).await;
            (analysis["step"].as_u64() >= Some(3) && analysis["status"] == "RUNNING")
                .then_some(analysis)
        },
    )
    .await;
    let events_before = first.get(&format!("/api/v1/analyses/{id}/events")).await;
    first.process.kill();
    let weight_at_crash = haproxy.weights();

    let second = Canaryd::start(strategies.path(), &prometheus.url(), &[], state.path()).await;
    let resumed = second.analysis(&id).await;
    assert!(
        resumed["checksDone"].as_u64() >= before["checksDone"].as_u64(),
        "{resumed}"
    );
    let analysis = second.wait_terminal(&id, Duration::from_secs(90)).await;
    assert_eq!(analysis["status"], "DEPLOYED", "{analysis:#}");
    assert_eq!(haproxy.weights(), (0, 100));

    // The audit trail from before the crash is intact, and continues.
    let events_after = second.get(&format!("/api/v1/analyses/{id}/events")).await;
    let before_list = events_before.as_array().unwrap();
    assert_eq!(
        &events_after.as_array().unwrap()[..before_list.len()],
        before_list.as_slice()
    );

    // Each step was entered exactly once, in order.
    let steps = messages(&events_after, "stepChanged");
    let expected: Vec<String> = [(2, 30), (3, 50), (4, 70), (5, 100)]
        .iter()
        .map(|(step, weight)| format!("step {} passed; step {step} of 5 at {weight}%", step - 1))
        .collect();
    assert_eq!(
        steps, expected,
        "(HAProxy stable/canary at the crash: {weight_at_crash:?})"
    );

    // Check numbers run on without a gap or a repeat, and weights never go back.
    let checks = analysis["checks"].as_array().unwrap();
    let numbers: Vec<u64> = checks
        .iter()
        .map(|c| c["check"].as_u64().unwrap())
        .collect();
    let expected_numbers: Vec<u64> = (1..=numbers.len() as u64).collect();
    assert_eq!(numbers, expected_numbers);
    let weights: Vec<u64> = checks
        .iter()
        .map(|c| c["canaryWeight"].as_u64().unwrap())
        .collect();
    assert!(weights.windows(2).all(|w| w[0] <= w[1]), "{weights:?}");
}

/// Webhooks in flight when the process is killed: after the restart, every stored
/// analysis either runs (the one owner of the route) or ended, and a retry with the
/// same Idempotency-Key finds what the first call stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_webhooks_leaves_no_analysis_without_an_owner() {
    let strategies = decide_only_strategies();
    let state = tempfile::tempdir().unwrap();
    let prometheus = "http://127.0.0.1:9";
    let mut canaryd = Canaryd::start(strategies.path(), prometheus, &[], state.path()).await;
    let client = reqwest::Client::new();
    let mut keys = Vec::new();
    // Killed a few milliseconds into each round, then (the last round) only once two
    // starts were answered, so some webhooks are stored whatever the machine's load.
    let kills = [Some(0u64), Some(1), Some(3), Some(6), Some(12), None];
    for (round, delay_ms) in kills.into_iter().enumerate() {
        let url = canaryd.url("/api/v1/analyses");
        let mut calls = Vec::new();
        for n in 0..4 {
            let key = format!("round-{round}-call-{n}");
            keys.push(key.clone());
            let request = client
                .post(&url)
                .header("Idempotency-Key", key)
                .json(&json!({"strategy": "shop/web", "environment": "prod"}));
            calls.push(tokio::spawn(async move { request.send().await }));
        }
        match delay_ms {
            Some(delay_ms) => tokio::time::sleep(Duration::from_millis(delay_ms)).await,
            None => {
                for first in calls.drain(..2) {
                    let _ = first.await;
                }
            }
        }
        canaryd.process.kill();
        for call in calls {
            let _ = call.await;
        }
        canaryd = Canaryd::start(strategies.path(), prometheus, &[], state.path()).await;
    }
    let list = wait_for("one active analysis", Duration::from_secs(20), || async {
        let list = canaryd.get("/api/v1/analyses?limit=200").await;
        let list = list.as_array()?.clone();
        let active: Vec<&Value> = list.iter().filter(|a| a["verdict"].is_null()).collect();
        (active.len() == 1 && active[0]["canaryWeight"] == 25).then_some(list)
    })
    .await;
    assert!(
        list.len() > 1,
        "some webhooks were stored before a kill: {list:?}"
    );
    for analysis in list.iter().filter(|a| !a["verdict"].is_null()) {
        assert_eq!(analysis["status"], "CANCELLED", "{analysis}");
    }
    // A retry of every call: the same analysis when the first was stored, else a new one.
    let stored: Vec<&str> = list.iter().map(|a| a["id"].as_str().unwrap()).collect();
    for key in keys {
        let response = client
            .post(canaryd.url("/api/v1/analyses"))
            .header("Idempotency-Key", &key)
            .json(&json!({"strategy": "shop/web", "environment": "prod"}))
            .send()
            .await
            .unwrap();
        let code = response.status().as_u16();
        let answer: Value = response.json().await.unwrap();
        let id = answer["id"].as_str().unwrap().to_string();
        match code {
            200 => assert!(stored.contains(&id.as_str()), "{key}: {answer}"),
            202 => assert!(!stored.contains(&id.as_str()), "{key}: {answer}"),
            other => panic!("{key}: {other} {answer}"),
        }
    }
}
