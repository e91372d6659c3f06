//! A Prometheus that slows down delays checks; it does not pile up requests or memory.
//! Each late check is evaluated at its own moment on the grid and says how late it was.

mod support;

use std::time::Duration;

use serde_json::json;
use support::standin::StandIn;
use support::*;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_prometheus_delays_checks_without_piling_up_requests_or_memory() {
    let prometheus = StandIn::slow(Duration::from_millis(400)).await;
    let strategies = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(strategies.path().join("shop")).unwrap();
    std::fs::write(
        strategies.path().join("shop/web.yaml"),
        "apiVersion: canaryd/v1\nkind: Strategy\nmetadata:\n  name: web\n  team: shop\nspec:\n  service: web\n  \
         router:\n    type: none\n  interval: 1s\n  steps:\n    - weight: 10\n      checks: 100000\n  metrics:\n    \
         - name: error-rate\n      template: http-error-rate\n      max: 0.05\n",
    )
    .unwrap();
    let logs = tempfile::tempdir().unwrap();
    // Without sharing, 150 analyses ask 300 questions a second of a backend that
    // answers 10 a second through 4 connections.
    let extra = [
        "--query-coalescing",
        "off",
        "--prometheus-max-concurrency",
        "4",
    ];
    let canaryd = Canaryd::start(strategies.path(), &prometheus.url(), &extra, logs.path()).await;
    let mut ids = Vec::new();
    for n in 0..150 {
        let body =
            json!({"strategy": "shop/web", "service": format!("svc-{n}"), "environment": "prod"});
        ids.push(canaryd.start_analysis(body).await);
    }
    let pid = canaryd.process.pid();
    wait_for(
        "checks to queue behind the slow backend",
        Duration::from_secs(30),
        || async { (prometheus.queries() > 40).then_some(()) },
    )
    .await;
    let early = rss_kib(pid);
    let queries = prometheus.queries();
    wait_for(
        "ten more seconds of backlog",
        Duration::from_secs(60),
        || async { (prometheus.queries() > queries + 80).then_some(()) },
    )
    .await;
    let late = rss_kib(pid);
    assert!(
        prometheus.max_in_flight() <= 4,
        "in flight: {}",
        prometheus.max_in_flight()
    );
    assert!(
        late < early + early / 4,
        "RSS grew from {early} KiB to {late} KiB"
    );
    // Checks ran late, and said so: each waits its turn for one of four connections.
    let lag = wait_for(
        "a check recorded as late",
        Duration::from_secs(60),
        || async {
            for id in ids.iter().step_by(15) {
                let analysis = canaryd.analysis(id).await;
                assert_eq!(analysis["status"], "RUNNING", "late is not a verdict");
                let lags = analysis["checks"]
                    .as_array()?
                    .iter()
                    .filter_map(|c| c["lagMs"].as_u64())
                    .max();
                if let Some(lag) = lags.filter(|lag| *lag >= 1000) {
                    return Some(lag);
                }
            }
            None
        },
    )
    .await;
    assert!(lag >= 1000, "a backlog of seconds: lag {lag} ms");
}
