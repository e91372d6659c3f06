//! End-to-end rollback latency: from the moment a running canary starts failing (its
//! error rate goes from 0.5% to 20%) to the moment HAProxy's canary weight reads 0,
//! with real Prometheus, HAProxy and the canaryd binary.
//!
//! `cargo bench --bench rollback_latency -- --interval 2s --scrape 1s --window 4s --runs 5`
//! Under `cargo test` (no `--bench` argument) it does nothing: it needs a minute or more.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

struct Settings {
    interval: Duration,
    scrape: Duration,
    window: Duration,
    runs: usize,
}

fn settings() -> Settings {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str, default: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| default.to_string())
    };
    let duration = |name, default| {
        humantime::parse_duration(&value(name, default)).expect("a duration such as 2s")
    };
    Settings {
        interval: duration("--interval", "2s"),
        scrape: duration("--scrape", "1s"),
        window: duration("--window", "4s"),
        runs: value("--runs", "5").parse().expect("a number of runs"),
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("rollback_latency: run with `cargo bench --bench rollback_latency`");
        return;
    }
    let settings = settings();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(measure(&settings));
}

async fn measure(settings: &Settings) {
    let stable = DemoInstance::start("stable", 0.005, 5).await;
    let canary = DemoInstance::start("canary", 0.005, 5).await;
    let prometheus =
        PrometheusServer::start_with_interval(&[stable.target(), canary.target()], settings.scrape)
            .await;
    let haproxy = HaproxyServer::start(stable.port, canary.port).await;
    let body = format!(
        "  interval: {}\n  window: {}\n  steps:\n    - weight: 10\n      checks: 1000\n      maxChecks: 1000\n    - weight: 100\n  \
         inconclusiveLimit: 100\n  metrics:\n    - name: error-rate\n      template: http-error-rate\n      max: 0.05\n",
        humantime::format_duration(settings.interval),
        humantime::format_duration(settings.window)
    );
    let strategies = strategy_folder(&format!("127.0.0.1:{}", haproxy.admin_port), &body);
    let logs = tempfile::tempdir().unwrap();
    let canaryd = Canaryd::start(strategies.path(), &prometheus.url(), &[], logs.path()).await;
    let _load = Load::start(haproxy.url(), 200);

    let mut latencies = Vec::new();
    for run in 1..=settings.runs {
        canary.set_behaviour(0.005, 5).await;
        runtime_api(haproxy.admin_port, "set server demo/canary weight 0").unwrap();
        runtime_api(haproxy.admin_port, "set server demo/stable weight 100").unwrap();
        // Let the last run's errors leave the window before the canary starts again.
        wait_for("a clean window", settings.window * 3, || async {
            let query = "sum(rate(http_requests_total{track=\"canary\",code=\"500\"}[".to_string()
                + &humantime::format_duration(settings.window).to_string()
                + "]))";
            let url = format!("{}/api/v1/query", prometheus.url());
            let body: serde_json::Value = reqwest::Client::new()
                .get(url)
                .query(&[("query", query)])
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let value: f64 = body["data"]["result"][0]["value"][1]
                .as_str()?
                .parse()
                .ok()?;
            (value < 0.05).then_some(())
        })
        .await;
        let id = canaryd
            .start_analysis(json!({"strategy": "e2e/demo", "environment": "bench"}))
            .await;
        wait_for("a first passing check", Duration::from_secs(60), || async {
            let analysis = canaryd.analysis(&id).await;
            analysis["checks"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["outcome"] == "PASS"))
                .then_some(())
        })
        .await;
        // Start failing at a random point of the check cycle, as a real regression would.
        let phase = settings.interval.mul_f64(rand::random::<f64>());
        tokio::time::sleep(phase).await;
        canary.set_behaviour(0.2, 5).await;
        let failing_since = Instant::now();
        wait_for(
            "HAProxy's canary weight at 0",
            Duration::from_secs(120),
            || async { (haproxy.weights().1 == 0).then_some(()) },
        )
        .await;
        let latency = failing_since.elapsed();
        println!("run {run}: {:.2} s", latency.as_secs_f64());
        latencies.push(latency.as_secs_f64());
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "interval {}, scrape {}, window {}: rollback latency over {} runs: min {:.2} s, median {:.2} s, max {:.2} s",
        humantime::format_duration(settings.interval),
        humantime::format_duration(settings.scrape),
        humantime::format_duration(settings.window),
        latencies.len(),
        latencies[0],
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
}
