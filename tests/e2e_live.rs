//! canaryd doing its main job against real components: Prometheus (1 s scrapes),
//! HAProxy's Runtime API, demo service instances under load, and the canaryd binary.

mod support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use support::*;
use tempfile::TempDir;

const INTERVAL: Duration = Duration::from_secs(2);

/// Requests per second through HAProxy where a healthy canary must pass: at 0.5% errors,
/// 20% of 250 req/s gives a 2 s check about 100 canary requests, so more than 5% errors
/// by chance is a one-in-a-million event (at 100 req/s it was about one in a hundred).
const HEALTHY_LOAD: u32 = 250;

/// Three steps checked every 2 s over a 4 s window, both built-in HTTP metrics.
fn strategy_body(inconclusive_limit: u32) -> String {
    format!(
        "  interval: 2s\n  window: 4s\n  steps:\n    - weight: 20\n    - weight: 50\n    - weight: 100\n  \
         inconclusiveLimit: {inconclusive_limit}\n  metrics:\n    - name: error-rate\n      template: http-error-rate\n      max: 0.05\n    \
         - name: p99-latency\n      template: http-latency-p99\n      max: 0.3\n"
    )
}

struct Stack {
    prometheus: PrometheusServer,
    haproxy: HaproxyServer,
    canaryd: Canaryd,
    _strategies: TempDir,
    _logs: TempDir,
}

struct Options {
    canary_error_rate: f64,
    canary_latency_ms: u64,
    inconclusive_limit: u32,
    /// Route canaryd's Runtime API traffic through a switchable proxy.
    proxy: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            canary_error_rate: 0.005,
            canary_latency_ms: 5,
            inconclusive_limit: 2,
            proxy: false,
        }
    }
}

async fn stack(options: Options) -> (Stack, Option<SwitchableProxy>) {
    let stable = DemoInstance::start("stable", 0.005, 5).await;
    let canary = DemoInstance::start(
        "canary",
        options.canary_error_rate,
        options.canary_latency_ms,
    )
    .await;
    let prometheus = PrometheusServer::start(&[stable.target(), canary.target()]).await;
    let haproxy = HaproxyServer::start(stable.port, canary.port).await;
    let proxy = if options.proxy {
        Some(SwitchableProxy::start(haproxy.admin_port).await)
    } else {
        None
    };
    let admin_port = proxy.as_ref().map_or(haproxy.admin_port, |p| p.port);
    let strategies = strategy_folder(
        &format!("127.0.0.1:{admin_port}"),
        &strategy_body(options.inconclusive_limit),
    );
    let logs = tempfile::tempdir().unwrap();
    let canaryd = Canaryd::start(strategies.path(), &prometheus.url(), &[], logs.path()).await;
    let stack = Stack {
        prometheus,
        haproxy,
        canaryd,
        _strategies: strategies,
        _logs: logs,
    };
    (stack, proxy)
}

fn webhook() -> Value {
    json!({"strategy": "e2e/demo", "environment": "test", "imageTag": "1.4.0-abc1234", "triggeredBy": "ci"})
}

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_canary_walks_every_step_to_deployed_with_haproxy_following() {
    let (stack, _) = stack(Options::default()).await;
    let _load = Load::start(stack.haproxy.url(), HEALTHY_LOAD);
    let id = stack.canaryd.start_analysis(webhook()).await;

    // Watch HAProxy itself while the analysis runs: each settled step's weight must be
    // what HAProxy reports, stable taking the rest.
    let seen = std::sync::Mutex::new(Vec::new());
    let analysis = wait_for(
        "the healthy canary to finish",
        Duration::from_secs(60),
        || {
            let (canaryd, haproxy, seen, id) = (&stack.canaryd, &stack.haproxy, &seen, &id);
            async move {
                // HAProxy read before and after the analysis: when both agree, that is
                // what it held when the analysis was read (the next step may follow
                // at once).
                let before = haproxy.weights();
                let analysis = canaryd.analysis(id).await;
                let (stable, canary) = haproxy.weights();
                let settled = analysis["canaryWeight"] == analysis["targetWeight"];
                if settled && analysis["status"] == "RUNNING" && before == (stable, canary) {
                    let weight = analysis["canaryWeight"].as_u64().unwrap() as u32;
                    assert_eq!(
                        (stable, canary),
                        (100 - weight, weight),
                        "HAProxy disagrees at step {}",
                        analysis["step"]
                    );
                    let mut seen = seen.lock().unwrap();
                    if seen.last() != Some(&weight) {
                        seen.push(weight);
                    }
                }
                analysis["verdict"].is_string().then_some(analysis)
            }
        },
    )
    .await;
    assert_eq!(analysis["status"], "DEPLOYED", "{analysis:#}");
    assert_eq!(
        *seen.lock().unwrap(),
        [20, 50, 100],
        "HAProxy weights observed step by step"
    );
    assert_eq!(stack.haproxy.weights(), (0, 100));
    let checks = analysis["checks"].as_array().unwrap();
    let steps_passed: Vec<u64> = checks
        .iter()
        .filter(|c| c["metric"] == "error-rate" && c["outcome"] == "PASS")
        .map(|c| c["canaryWeight"].as_u64().unwrap())
        .collect();
    assert!(
        steps_passed.starts_with(&[20]) && steps_passed.ends_with(&[100]),
        "{steps_passed:?}"
    );
    assert!(checks.iter().all(|c| c["outcome"] != "FAIL"), "{checks:#?}");
}

/// Runs one analysis under load and checks it was rolled back for `metric`, with
/// HAProxy back on stable; returns the analysis.
async fn rolled_back_for(options: Options, metric: &str) -> Value {
    let (stack, _) = stack(options).await;
    let _load = Load::start(stack.haproxy.url(), 100);
    let id = stack.canaryd.start_analysis(webhook()).await;
    let analysis = stack
        .canaryd
        .wait_terminal(&id, Duration::from_secs(60))
        .await;
    assert_eq!(analysis["status"], "ROLLED_BACK", "{analysis:#}");
    let reason = analysis["reason"].as_str().unwrap();
    assert!(reason.starts_with(&format!("{metric} failed")), "{reason}");
    assert_eq!(stack.haproxy.weights(), (100, 0));
    analysis
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_at_twenty_percent_errors_is_rolled_back_within_two_intervals() {
    let options = Options {
        canary_error_rate: 0.2,
        ..Options::default()
    };
    let analysis = rolled_back_for(options, "error-rate").await;
    let checks = analysis["checks"].as_array().unwrap();
    let first_seeing_errors = checks
        .iter()
        .find(|c| c["metric"] == "error-rate" && c["value"].as_f64().is_some_and(|v| v > 0.0))
        .expect("a check saw the errors");
    let reaction = time(&analysis["completedAt"]) - time(&first_seeing_errors["at"]);
    assert!(
        reaction.to_std().unwrap() <= 2 * INTERVAL,
        "rolled back {reaction} after the first check that saw errors"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_latency_regression_is_rolled_back() {
    // No errors at all: at a low weight a check sees a dozen canary requests, and one
    // background error among them (0.5%) would fail error-rate before latency decides.
    let options = Options {
        canary_latency_ms: 500,
        canary_error_rate: 0.0,
        ..Options::default()
    };
    let analysis = rolled_back_for(options, "p99-latency").await;
    let failing = analysis["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["metric"] == "p99-latency" && c["outcome"] == "FAIL")
        .expect("a failing latency check")
        .clone();
    assert!(failing["value"].as_f64().unwrap() > 0.3, "{failing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_without_traffic_is_never_deployed_and_rolls_back_for_no_data() {
    let (stack, _) = stack(Options::default()).await;
    // No load at all: both queries divide 0 by 0.
    let id = stack.canaryd.start_analysis(webhook()).await;
    let analysis = stack
        .canaryd
        .wait_terminal(&id, Duration::from_secs(60))
        .await;

    assert_eq!(analysis["status"], "ROLLED_BACK", "{analysis:#}");
    let reason = analysis["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("3 consecutive inconclusive checks exceed inconclusiveLimit 2"),
        "{reason}"
    );
    assert!(reason.contains("no data"), "{reason}");
    assert_eq!(analysis["step"], 1, "never left the first step");
    assert_eq!(stack.haproxy.weights(), (100, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_gone_for_good_rolls_back_after_the_inconclusive_limit_without_promoting() {
    let (mut stack, _) = stack(Options::default()).await;
    let _load = Load::start(stack.haproxy.url(), HEALTHY_LOAD);
    let id = stack.canaryd.start_analysis(webhook()).await;
    wait_for("a first passing check", Duration::from_secs(30), || async {
        let analysis = stack.canaryd.analysis(&id).await;
        (analysis["checksDone"].as_u64() >= Some(1) && analysis["step"].as_u64() >= Some(2))
            .then_some(())
    })
    .await;
    stack.prometheus.kill();
    let analysis = stack
        .canaryd
        .wait_terminal(&id, Duration::from_secs(60))
        .await;

    assert_eq!(analysis["status"], "ROLLED_BACK", "{analysis:#}");
    let reason = analysis["reason"].as_str().unwrap();
    assert!(
        reason.contains("inconclusiveLimit 2") && reason.contains("Prometheus query failed"),
        "{reason}"
    );
    let outcomes: Vec<&str> = analysis["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes
            .iter()
            .rev()
            .take(6)
            .filter(|o| **o == "ERROR")
            .count(),
        6,
        "{outcomes:?}"
    );
    assert_eq!(stack.haproxy.weights(), (100, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_back_within_the_inconclusive_limit_lets_the_canary_finish() {
    let (mut stack, _) = stack(Options {
        inconclusive_limit: 4,
        ..Options::default()
    })
    .await;
    let _load = Load::start(stack.haproxy.url(), HEALTHY_LOAD);
    let id = stack.canaryd.start_analysis(webhook()).await;
    wait_for("a first passing check", Duration::from_secs(30), || async {
        (stack.canaryd.analysis(&id).await["checksDone"].as_u64() >= Some(1)).then_some(())
    })
    .await;
    stack.prometheus.kill();
    let during = wait_for(
        "a check that finds Prometheus gone",
        Duration::from_secs(20),
        || async {
            let analysis = stack.canaryd.analysis(&id).await;
            analysis["checks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["outcome"] == "ERROR")
                .then_some(analysis)
        },
    )
    .await;
    assert_ne!(during["status"], "PROMOTING");
    assert_ne!(during["status"], "DEPLOYED");
    stack.prometheus.restart(2).await;
    let analysis = stack
        .canaryd
        .wait_terminal(&id, Duration::from_secs(90))
        .await;

    assert_eq!(analysis["status"], "DEPLOYED", "{analysis:#}");
    // No step advanced on an ERROR check: every step change follows a passing check.
    let checks = analysis["checks"].as_array().unwrap();
    for pair in checks.windows(2) {
        if pair[1]["canaryWeight"] != pair[0]["canaryWeight"] {
            assert_eq!(pair[0]["outcome"], "PASS", "step left after {:#}", pair[0]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_keeps_retrying_an_unreachable_runtime_api_until_weight_is_zero() {
    let (stack, proxy) = stack(Options {
        canary_error_rate: 0.2,
        proxy: true,
        ..Options::default()
    })
    .await;
    let proxy = proxy.unwrap();
    let _load = Load::start(stack.haproxy.url(), 100);
    let id = stack.canaryd.start_analysis(webhook()).await;
    wait_for(
        "canaryd to confirm the first step's weight",
        Duration::from_secs(20),
        // canaryd's own confirmation, after its read-back: closing the proxy between the
        // set and the read-back would (rightly) fail the step instead.
        || async {
            let analysis = stack.canaryd.analysis(&id).await;
            (analysis["status"] == "RUNNING" && analysis["canaryWeight"] == 20).then_some(())
        },
    )
    .await;
    assert_eq!(stack.haproxy.weights(), (80, 20));
    proxy.set_open(false);

    let retrying = wait_for(
        "several refused rollback attempts",
        Duration::from_secs(40),
        || async {
            let events = stack
                .canaryd
                .get(&format!("/api/v1/analyses/{id}/events"))
                .await;
            let analysis = stack.canaryd.analysis(&id).await;
            let refused = events.as_array().map_or(0, |e| {
                e.iter().filter(|e| e["kind"] == "routerError").count()
            });
            (analysis["status"] == "ROLLING_BACK" && refused >= 2).then_some(analysis)
        },
    )
    .await;
    assert_eq!(retrying["canaryWeight"], 20);
    assert_eq!(
        stack.haproxy.weights(),
        (80, 20),
        "nothing reached HAProxy while it was unreachable"
    );

    proxy.set_open(true);
    let analysis = stack
        .canaryd
        .wait_terminal(&id, Duration::from_secs(30))
        .await;
    assert_eq!(analysis["status"], "ROLLED_BACK", "{analysis:#}");
    assert_eq!(stack.haproxy.weights(), (100, 0));
}
