//! Many analyses on one process. Starts the canaryd binary against a Prometheus
//! stand-in that answers at once and counts what it is asked, then N analyses (router
//! `none`, the built-in error-rate and p99 templates, one service each) and prints,
//! per N: canaryd's CPU and peak RSS, Prometheus queries per second and per interval,
//! check lag p99, webhook p99 and the time of a `/metrics` scrape.
//!
//! `cargo bench --bench scale -- --analyses 1000,5000,10000 --interval 10s --measure 60s`
//! Under `cargo test` it runs a short version (200 analyses, 2 s interval, 10 s) and
//! checks that queries scale with templates, not analyses, and that no check is lost.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::standin;
use support::*;

struct Settings {
    counts: Vec<usize>,
    interval: Duration,
    measure: Duration,
    full: bool,
}

fn settings() -> Settings {
    let value = bench_setting;
    let duration = |text: String| humantime::parse_duration(&text).expect("a duration");
    Settings {
        counts: value("--analyses", "200", "1000,5000,10000")
            .split(',')
            .map(|n| n.parse().expect("a count"))
            .collect(),
        interval: duration(value("--interval", "2s", "10s")),
        measure: duration(value("--measure", "10s", "60s")),
        full: full_bench(),
    }
}

fn strategies(interval: Duration) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("shop")).unwrap();
    let text = format!(
        "apiVersion: canaryd/v1\nkind: Strategy\nmetadata:\n  name: web\n  team: shop\nspec:\n  service: web\n  \
         router:\n    type: none\n  interval: {}\n  steps:\n    - weight: 10\n      checks: 100000\n  metrics:\n    \
         - name: error-rate\n      template: http-error-rate\n      max: 0.05\n    \
         - name: p99-latency\n      template: http-latency-p99\n      max: 0.3\n",
        humantime::format_duration(interval)
    );
    std::fs::write(dir.path().join("shop/web.yaml"), text).unwrap();
    dir
}

fn main() {
    let settings = settings();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!("| analyses | canaryd CPU | peak RSS | Prometheus queries/s | per interval | check lag p99 | webhook p99 | /metrics scrape |");
        println!("|---|---|---|---|---|---|---|---|");
        for &count in &settings.counts {
            run(count, &settings).await;
        }
    });
}

async fn run(count: usize, settings: &Settings) {
    let prometheus = standin::StandIn::start().await;
    let strategies = strategies(settings.interval);
    let logs = tempfile::tempdir().unwrap();
    let canaryd = Canaryd::start(strategies.path(), &prometheus.url(), &[], logs.path()).await;
    let webhook_p99 = start_all(&canaryd, count).await;
    // Let every analysis settle on its grid before measuring.
    tokio::time::sleep(settings.interval * 2).await;
    let pid = canaryd.process.pid();
    let (cpu_before, queries_before, lag_before) =
        (cpu_seconds(pid), prometheus.queries(), lag(&canaryd).await);
    let started = Instant::now();
    tokio::time::sleep(settings.measure).await;
    let elapsed = started.elapsed().as_secs_f64();
    let cores = (cpu_seconds(pid) - cpu_before) / elapsed;
    let per_second = (prometheus.queries() - queries_before) as f64 / elapsed;
    let per_interval = per_second * settings.interval.as_secs_f64();
    let lag_p99 = lag(&canaryd).await.since(&lag_before).quantile(0.99);
    let scrape = Instant::now();
    let metrics = reqwest::get(canaryd.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let scrape = scrape.elapsed();
    let rss = peak_rss_mib(pid);
    let rss_now = rss_mib(pid, "VmRSS:");
    println!(
        "| {count} | {cores:.2} core | {rss:.0} MiB ({rss_now:.0} now) | {per_second:.1} | {per_interval:.1} | {:.2} s | {:.1} ms | {:.0} ms ({} KiB) |",
        lag_p99,
        webhook_p99.as_secs_f64() * 1000.0,
        scrape.as_secs_f64() * 1000.0,
        metrics.len() / 1024
    );
    if !settings.full {
        // Two templates on the canary track: the error rate's two leaves and the p99's one.
        assert!(
            per_interval <= 4.5,
            "{per_interval} queries per interval for {count} analyses"
        );
        assert!(prometheus.max_in_flight() <= 16, "backpressure bound held");
        let checks = lag(&canaryd).await.since(&lag_before).count;
        let expected = (count as f64 * settings.measure.as_secs_f64()
            / settings.interval.as_secs_f64()) as u64;
        assert!(
            checks + count as u64 >= expected,
            "{checks} checks, about {expected} due: none skipped"
        );
    }
}

/// Starts `count` analyses one after another; the p99 of their webhooks.
async fn start_all(canaryd: &Canaryd, count: usize) -> Duration {
    let client = reqwest::Client::new();
    let mut latencies = Vec::with_capacity(count);
    for n in 0..count {
        let body =
            json!({"strategy": "shop/web", "service": format!("svc-{n}"), "environment": "prod"});
        let sent = Instant::now();
        let response = client
            .post(canaryd.url("/api/v1/analyses"))
            .json(&body)
            .send()
            .await
            .unwrap();
        latencies.push(sent.elapsed());
        assert_eq!(response.status().as_u16(), 202, "webhook {n}");
    }
    latencies.sort();
    latencies[((latencies.len() - 1) as f64 * 0.99).round() as usize]
}

/// User and system CPU time of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn peak_rss_mib(pid: u32) -> f64 {
    rss_mib(pid, "VmHWM:")
}

fn rss_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    let kib: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024.0
}

/// `canaryd_check_lag_seconds`, as cumulative buckets.
struct Lag {
    buckets: Vec<(f64, u64)>,
    count: u64,
}

impl Lag {
    fn since(&self, before: &Lag) -> Lag {
        let buckets = self
            .buckets
            .iter()
            .zip(&before.buckets)
            .map(|((le, now), (_, then))| (*le, now - then))
            .collect();
        Lag {
            buckets,
            count: self.count - before.count,
        }
    }

    fn quantile(&self, q: f64) -> f64 {
        let rank = (self.count as f64 * q).ceil() as u64;
        self.buckets
            .iter()
            .find(|(_, n)| *n >= rank)
            .map_or(f64::INFINITY, |(le, _)| *le)
    }
}

async fn lag(canaryd: &Canaryd) -> Lag {
    let text = reqwest::get(canaryd.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut buckets = Vec::new();
    let mut count = 0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("canaryd_check_lag_seconds_bucket{le=\"") {
            let (le, value) = rest.split_once("\"} ").unwrap();
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            buckets.push((le, value.trim().parse().unwrap()));
        } else if let Some(value) = line.strip_prefix("canaryd_check_lag_seconds_count ") {
            count = value.trim().parse().unwrap();
        }
    }
    Lag { buckets, count }
}
