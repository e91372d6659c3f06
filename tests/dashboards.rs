//! The Grafana dashboards: well-formed, and every panel query returns data from a real
//! Prometheus that scraped canaryd while one canary was promoted and one rolled back,
//! and a pipeline recorded two deployments of its own.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use support::*;

const DASHBOARDS: [&str; 2] = ["canaryd-overview.json", "canaryd-analysis.json"];
const KNOWN_VARIABLES: [&str; 7] = [
    "datasource",
    "team",
    "service",
    "environment",
    "__rate_interval",
    "__interval",
    "__range",
];

fn dashboard(name: &str) -> Value {
    let path = format!("{}/dashboards/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every PromQL expression of a dashboard: panel targets and annotations.
fn queries(board: &Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for panel in board["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            found.push((
                format!("panel '{}'", panel["title"].as_str().unwrap()),
                target["expr"].as_str().unwrap().to_string(),
            ));
        }
    }
    for annotation in board["annotations"]["list"].as_array().unwrap() {
        if let Some(expr) = annotation["expr"].as_str() {
            found.push((
                format!("annotation '{}'", annotation["name"].as_str().unwrap()),
                expr.to_string(),
            ));
        }
    }
    found
}

/// `$name` and `${name}` references in a text.
fn variables(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        let after = &rest[at + 1..];
        let (name, used) = match after.strip_prefix('{') {
            Some(inner) => {
                let end = inner.find('}').unwrap_or(inner.len());
                (inner[..end].to_string(), end + 2)
            }
            None => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (after[..end].to_string(), end + 1)
            }
        };
        names.push(name);
        rest = &rest[(at + used).min(rest.len())..];
    }
    names
}

#[test]
fn dashboards_are_well_formed_with_unique_panels_and_known_variables() {
    for name in DASHBOARDS {
        let board = dashboard(name);
        assert!(board["schemaVersion"].as_u64().unwrap() >= 36, "{name}");
        let defined: BTreeSet<&str> = board["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        for needed in ["datasource", "team", "service", "environment"] {
            assert!(
                defined.contains(needed),
                "{name} lacks the {needed} variable"
            );
        }
        let mut ids = BTreeSet::new();
        for panel in board["panels"].as_array().unwrap() {
            assert!(
                ids.insert(panel["id"].as_u64().unwrap()),
                "{name}: panel id {} twice",
                panel["id"]
            );
            assert_eq!(
                panel["datasource"]["uid"], "${datasource}",
                "{name}: {}",
                panel["title"]
            );
            assert!(
                !panel["targets"].as_array().unwrap().is_empty(),
                "{name}: {} has no query",
                panel["title"]
            );
        }
        let text = serde_json::to_string(&board).unwrap();
        for variable in variables(&text) {
            assert!(
                KNOWN_VARIABLES.contains(&variable.as_str()),
                "{name} uses unknown variable ${variable}"
            );
        }
        for (place, expr) in queries(&board) {
            let rendered = substitute(&expr);
            promql_parser::parser::parse(&rendered)
                .unwrap_or_else(|e| panic!("{name} {place}: {e}: {rendered}"));
        }
    }
}

fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "30s")
        .replace("$__interval", "15s")
        .replace("$__range", "1h")
        .replace("$team", "e2e")
        .replace("$service", "demo")
        .replace("$environment", "test")
}

async fn query(prometheus: &str, expr: &str) -> Vec<Value> {
    query_at(prometheus, expr, None).await
}

/// An instant query, at `time` (RFC 3339) or now.
async fn query_at(prometheus: &str, expr: &str, time: Option<&str>) -> Vec<Value> {
    let mut params = vec![("query", expr)];
    params.extend(time.map(|t| ("time", t)));
    let body: Value = reqwest::Client::new()
        .get(format!("{prometheus}/api/v1/query"))
        .query(&params)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "success", "{expr}: {body}");
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_query_returns_data_while_canaries_run_after_a_promotion() {
    let stable = DemoInstance::start("stable", 0.005, 5).await;
    let canary = DemoInstance::start("canary", 0.005, 5).await;
    let canaryd_port = free_port();
    let prometheus = PrometheusServer::start_with_targets(
        &[stable.target(), canary.target()],
        &[format!("127.0.0.1:{canaryd_port}")],
    )
    .await;
    let haproxy = HaproxyServer::start(stable.port, canary.port).await;
    let body = "  interval: 2s\n  window: 4s\n  steps:\n    - weight: 50\n    - weight: 100\n  inconclusiveLimit: 3\n  metrics:\n    - name: error-rate\n      template: http-error-rate\n      max: 0.05\n";
    let strategies = strategy_folder(&format!("127.0.0.1:{}", haproxy.admin_port), body);
    let logs = tempfile::tempdir().unwrap();
    let canaryd = Canaryd::start_on(
        canaryd_port,
        strategies.path(),
        &prometheus.url(),
        &[],
        logs.path(),
    )
    .await;
    let _load = Load::start(haproxy.url(), 250);

    let promoted = canaryd
        .start_analysis(json!({"strategy": "e2e/demo", "environment": "test"}))
        .await;
    let analysis = canaryd
        .wait_terminal(&promoted, Duration::from_secs(60))
        .await;
    assert_eq!(analysis["status"], "DEPLOYED");
    // The panels are read as they stood at the promoted canary's last check, while it
    // ran: a finished analysis leaves no weight or value series behind.
    let checks = analysis["checks"].as_array().unwrap();
    let during = checks.last().unwrap()["at"].as_str().unwrap().to_string();
    runtime_api(haproxy.admin_port, "set server demo/canary weight 0").unwrap();
    runtime_api(haproxy.admin_port, "set server demo/stable weight 100").unwrap();
    canary.set_behaviour(0.3, 5).await;
    let rolled_back = canaryd
        .start_analysis(json!({"strategy": "e2e/demo", "environment": "test"}))
        .await;
    let analysis = canaryd
        .wait_terminal(&rolled_back, Duration::from_secs(60))
        .await;
    assert_eq!(analysis["status"], "ROLLED_BACK");

    // A pipeline records two deployments made without canaryd, as seed 001's do.
    for (status, deployed, completed) in [
        ("DEPLOYED", "2026-02-12T10:00:00Z", "2026-02-12T10:05:00Z"),
        (
            "ROLLED_BACK",
            "2026-02-11T14:00:00Z",
            "2026-02-11T14:08:00Z",
        ),
    ] {
        let record = json!({"service": "demo", "environment": "test", "imageTag": "v2.1.0",
            "status": status, "deployedAt": deployed, "completedAt": completed});
        let (code, answer) = canaryd.post("/api/v1/deployments", record).await;
        assert_eq!(code, 201, "{answer}");
    }

    // Wait until Prometheus has scraped both verdicts and both records (twice each, so
    // increase() has a span).
    let url = prometheus.url();
    wait_for("both verdicts in Prometheus", Duration::from_secs(30), || async {
        let expr = "count_over_time(canaryd_verdicts_total{verdict=~\"DEPLOYED|ROLLED_BACK\"}[1m]) >= 2 and canaryd_verdicts_total == 1";
        let recorded = "count_over_time(canaryd_recorded_deployments_total[1m]) >= 2";
        let seen = query(&url, expr).await.len() == 2 && query(&url, recorded).await.len() == 2;
        seen.then_some(())
    })
    .await;

    wait_for(
        "the finished analysis's gauges to go stale",
        Duration::from_secs(30),
        || async {
            query(&url, "canaryd_canary_weight{service=\"demo\"}")
                .await
                .is_empty()
                .then_some(())
        },
    )
    .await;
    let mut empty = Vec::new();
    for name in DASHBOARDS {
        for (place, expr) in queries(&dashboard(name)) {
            let rendered = substitute(&expr);
            // A live canary's gauges, as it ran; counters and histograms, now.
            let live = [
                "canaryd_canary_weight",
                "canaryd_check_value",
                "canaryd_check_threshold",
            ]
            .iter()
            .any(|gauge| rendered.contains(gauge));
            let at = live.then_some(during.as_str());
            if query_at(&url, &rendered, at).await.is_empty() {
                empty.push(format!("{name} {place}: {rendered}"));
            }
        }
    }
    assert!(
        empty.is_empty(),
        "queries without data:\n{}",
        empty.join("\n")
    );
}
