//! `canaryd backtest` over a known history in a real Prometheus: TSDB blocks made with
//! `promtool tsdb create-blocks-from openmetrics` hold two hours of a demo service, a
//! healthy canary at 1% errors, then an incident at 20%. The replay of the healthy
//! period reaches DEPLOYED; the replay across the incident rolls back at the first
//! check whose window takes the incident in, and not before.

mod support;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};
use serde_json::Value;
use support::*;

const STRATEGY: &str = "apiVersion: canaryd/v1\nkind: Strategy\nmetadata:\n  name: demo\n  team: e2e\nspec:\n  service: demo\n  router:\n    type: none\n  \
    interval: 1m\n  window: 2m\n  steps:\n    - weight: 10\n      checks: 3\n    - weight: 50\n      checks: 3\n    - weight: 100\n  \
    metrics:\n    - name: error-rate\n      template: http-error-rate\n      max: 0.05\n";

const RESOLUTION: i64 = 15;
const REQUESTS_PER_SECOND: f64 = 10.0;

/// The history: per series, counters every 15 s; the canary's error share turns from
/// 1% to 20% for the increments after `incident`.
fn openmetrics(start: DateTime<Utc>, end: DateTime<Utc>, incident: DateTime<Utc>) -> String {
    let mut text =
        String::from("# HELP http_requests Requests served.\n# TYPE http_requests counter\n");
    for track in ["stable", "canary"] {
        for code in ["200", "500"] {
            let mut total = 0.0;
            let mut at = start.timestamp();
            while at <= end.timestamp() {
                let error_share = if track == "canary" && at > incident.timestamp() {
                    0.20
                } else {
                    0.01
                };
                let share = if code == "500" {
                    error_share
                } else {
                    1.0 - error_share
                };
                if at > start.timestamp() {
                    total += REQUESTS_PER_SECOND * RESOLUTION as f64 * share;
                }
                writeln!(
                    text,
                    "http_requests_total{{service=\"demo\",track=\"{track}\",code=\"{code}\"}} {total} {at}"
                )
                .unwrap();
                at += RESOLUTION;
            }
        }
    }
    text.push_str("# EOF\n");
    text
}

/// Prometheus serving the blocks in `data`, scraping nothing.
fn prometheus_over(data: &Path, port: u16) -> Process {
    let config = data.parent().unwrap().join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 15s\n").unwrap();
    Process::spawn(
        "prometheus",
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg("--storage.tsdb.retention.time=30d")
            .arg("--log.level=warn"),
        data.parent().unwrap().join("prometheus.log"),
    )
}

fn backtest(strategies: &Path, url: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> (i32, Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_canaryd"))
        .args(["backtest", "e2e/demo", "--environment", "test", "--json"])
        .arg("--from")
        .arg(from.to_rfc3339())
        .arg("--to")
        .arg(to.to_rfc3339())
        .arg("--strategies")
        .arg(strategies)
        .arg("--prometheus-url")
        .arg(url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|_| panic!("{stdout}{}", String::from_utf8_lossy(&output.stderr)));
    (output.status.code().unwrap_or(-1), report)
}

fn outcomes(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["outcome"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backtest_deploys_over_a_healthy_hour_and_rolls_back_at_the_incident() {
    let end = (Utc::now() - chrono::Duration::hours(1))
        .duration_trunc(chrono::Duration::minutes(1))
        .unwrap();
    let start = end - chrono::Duration::hours(2);
    let incident = start + chrono::Duration::minutes(80);
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history.om");
    std::fs::write(&history, openmetrics(start, end, incident)).unwrap();
    let data = dir.path().join("data");
    let status = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&history)
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );

    let port = free_port();
    let _prometheus = prometheus_over(&data, port);
    let url = format!("http://127.0.0.1:{port}");
    let at_incident = incident.timestamp().to_string();
    wait_for(
        "Prometheus to serve the history",
        Duration::from_secs(30),
        || async {
            let answer: Value = reqwest::Client::new()
                .get(format!("{url}/api/v1/query"))
                .query(&[
                    ("query", "count(http_requests_total)"),
                    ("time", at_incident.as_str()),
                ])
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (answer["data"]["result"][0]["value"][1] == "4").then_some(())
        },
    )
    .await;

    let strategies = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(strategies.path().join("e2e")).unwrap();
    std::fs::write(strategies.path().join("e2e/demo.yaml"), STRATEGY).unwrap();

    // Healthy: 3 checks at 10%, 3 at 50%, 1 at 100%.
    let healthy_from = start + chrono::Duration::minutes(5);
    let (code, report) = backtest(
        strategies.path(),
        &url,
        healthy_from,
        healthy_from + chrono::Duration::minutes(30),
    );
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["status"], "DEPLOYED", "{report:#}");
    assert_eq!(outcomes(&report), vec!["PASS"; 7]);
    let first = &report["checks"][0];
    assert!(
        (first["metrics"][0]["value"].as_f64().unwrap() - 0.01).abs() < 0.002,
        "{first}"
    );

    // Across the incident: checks at 4, 3, 2 and 1 minute before it and at it pass (their
    // 2m windows are all before it); the next one's window holds a minute at 20%.
    let from = incident - chrono::Duration::minutes(5);
    let (code, report) = backtest(
        strategies.path(),
        &url,
        from,
        from + chrono::Duration::minutes(20),
    );
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["status"], "ROLLED_BACK", "{report:#}");
    assert_eq!(
        outcomes(&report),
        ["PASS", "PASS", "PASS", "PASS", "PASS", "FAIL"]
    );
    let failing = &report["checks"][5];
    assert_eq!(
        failing["at"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap(),
        incident + chrono::Duration::minutes(1)
    );
    assert_eq!(failing["step"], 2);
    let value = failing["metrics"][0]["value"].as_f64().unwrap();
    assert!(
        value > 0.05 && value < 0.2,
        "the window mixes both periods: {value}"
    );
}
