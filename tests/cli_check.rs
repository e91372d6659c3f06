//! `canaryd check`, the preflight, against a real Prometheus scraping the demo service:
//! a typo'd metric name exits 1 naming the metric, and the shipped examples pass when
//! the demo exports what they read.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::*;

fn check(strategies: &Path, prometheus: &str, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_canaryd"))
        .arg("check")
        .args(args)
        .arg("--strategies")
        .arg(strategies)
        .arg("--prometheus-url")
        .arg(prometheus)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

struct Demo {
    prometheus: PrometheusServer,
    _instances: (DemoInstance, DemoInstance),
    _load: (Load, Load),
}

async fn demo() -> Demo {
    let stable = DemoInstance::start("stable", 0.0, 2).await;
    let canary = DemoInstance::start("canary", 0.0, 2).await;
    let prometheus = PrometheusServer::start(&[stable.target(), canary.target()]).await;
    let load = (
        Load::start(format!("http://{}/", stable.target()), 50),
        Load::start(format!("http://{}/", canary.target()), 50),
    );
    Demo {
        prometheus,
        _instances: (stable, canary),
        _load: load,
    }
}

/// Runs the preflight until it passes (the first scrapes take a few seconds).
async fn passes(strategies: &Path, prometheus: &str, args: &[&str]) -> Value {
    wait_for(
        &format!("check {args:?} to pass"),
        Duration::from_secs(40),
        || async {
            let mut with_json = args.to_vec();
            with_json.push("--json");
            let (code, stdout, _) = check(strategies, prometheus, &with_json);
            (code == 0).then(|| serde_json::from_str(&stdout).unwrap())
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typo_in_a_metric_name_exits_one_naming_the_metric() {
    let demo = demo().await;
    let strategies = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(strategies.path().join("e2e")).unwrap();
    std::fs::write(
        strategies.path().join("e2e/demo.yaml"),
        "apiVersion: canaryd/v1\nkind: Strategy\nmetadata:\n  name: demo\n  team: e2e\nspec:\n  service: demo\n  router:\n    type: none\n  \
         interval: 10s\n  steps:\n    - weight: 100\n  metrics:\n    - name: error-rate\n      template: http-error-rate\n      max: 0.05\n    \
         - name: request-rate\n      query: sum(rate(http_requests_totl{service=\"{{service}}\",track=\"{{track}}\"}[{{window}}]))\n      min: 1\n",
    )
    .unwrap();
    let url = demo.prometheus.url();
    let args = ["e2e/demo", "--environment", "test"];
    // Once error-rate has data on both tracks, the typo'd request-rate alone is missing.
    let stdout = wait_for(
        "error-rate to have data",
        Duration::from_secs(40),
        || async {
            let (code, stdout, stderr) = check(strategies.path(), &url, &args);
            assert_eq!(code, 1, "{stdout}{stderr}");
            stdout
                .lines()
                .any(|line| line == "no data for: request-rate")
                .then_some(stdout)
        },
    )
    .await;
    assert!(stdout.contains("error-rate: PASS (data)"), "{stdout}");
    assert!(
        stdout.contains("http_requests_totl{service=\"demo\",track=\"canary\"}"),
        "{stdout}"
    );
    assert!(
        stdout.contains("covers 4 scrape intervals of 1s"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_examples_pass_against_the_demo_where_it_exports_their_metrics() {
    let demo = demo().await;
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("strategies");
    let url = demo.prometheus.url();
    for strategy in ["payments/checkout-api", "storefront/web"] {
        let report = passes(
            &shipped,
            &url,
            &[strategy, "--service", "demo", "--environment", "test"],
        )
        .await;
        for metric in report["metrics"].as_array().unwrap() {
            assert_eq!(metric["hasData"], true, "{strategy}: {metric}");
            for query in metric["queries"].as_array().unwrap() {
                assert_eq!(query["series"], 1, "{strategy}: {query}");
            }
        }
        assert_eq!(report["windowCoversFourScrapes"], true);
    }
    // The indexer reads a queue depth the demo does not export: the preflight says so.
    let (code, stdout, _) = check(
        &shipped,
        &url,
        &[
            "search/indexer",
            "--service",
            "demo",
            "--environment",
            "test",
        ],
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("no data for: queue-depth"), "{stdout}");
}
