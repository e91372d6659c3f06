//! Route ownership at scale: webhook latency with thousands of active analyses, on
//! SQLite and on PostgreSQL, and the time from `kill -9` of a replica to another
//! replica resuming its analyses. Prints figures; the real canaryd binary, router
//! `none` (so nothing but ownership and storage is measured), a throwaway Postgres.
//!
//! `cargo bench --bench ownership -- --analyses 10000 --failover 1000 --lease-ttl 15s`
//! Under `cargo test` it runs a short version (300 analyses, 100 to fail over, 3s TTL)
//! and checks that every webhook was accepted and every analysis resumed in time.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::postgres::PostgresServer;
use support::*;

struct Settings {
    analyses: usize,
    failover: usize,
    lease_ttl: Duration,
}

fn settings() -> Settings {
    let value = bench_setting;
    Settings {
        analyses: value("--analyses", "300", "10000")
            .parse()
            .expect("a count"),
        failover: value("--failover", "100", "1000").parse().expect("a count"),
        lease_ttl: humantime::parse_duration(&value("--lease-ttl", "3s", "15s"))
            .expect("a duration"),
    }
}

fn main() {
    let settings = settings();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let postgres = PostgresServer::start();
        webhooks("sqlite", None, settings.analyses).await;
        let database = postgres.database("webhooks");
        webhooks("postgres", Some(&database), settings.analyses).await;
        failover(&postgres.database("failover"), &settings).await;
    });
}

async fn canaryd(
    strategies: &tempfile::TempDir,
    database: Option<&str>,
    extra: &[&str],
    logs: &std::path::Path,
) -> Canaryd {
    let database = database.map_or_else(
        || format!("sqlite://{}", logs.join("canaryd.db").display()),
        str::to_string,
    );
    let port = free_port();
    Canaryd::start_with_database(
        port,
        strategies.path(),
        "http://127.0.0.1:9",
        &database,
        extra,
        logs,
    )
    .await
}

/// Starts `count` analyses, each on its own route, one after another; prints the
/// latency of the last tenth (with nine tenths already active).
async fn webhooks(store: &str, database: Option<&str>, count: usize) {
    let strategies = decide_only_strategies();
    let logs = tempfile::tempdir().unwrap();
    let server = canaryd(&strategies, database, &[], logs.path()).await;
    let client = reqwest::Client::new();
    let mut latencies = Vec::with_capacity(count);
    for n in 0..count {
        let body =
            json!({"strategy": "shop/web", "service": format!("svc-{n}"), "environment": "prod"});
        let sent = Instant::now();
        let response = client
            .post(server.url("/api/v1/analyses"))
            .json(&body)
            .send()
            .await
            .unwrap();
        latencies.push(sent.elapsed());
        assert_eq!(response.status().as_u16(), 202, "webhook {n}");
    }
    let mut last: Vec<Duration> = latencies[count - count / 10..].to_vec();
    last.sort();
    let at = |q: f64| last[((last.len() - 1) as f64 * q).round() as usize];
    println!(
        "webhooks on {store}: {count} analyses active at the end; with {} to {count} active: p50 {:?}, p99 {:?}, max {:?}",
        count - count / 10,
        at(0.50),
        at(0.99),
        last[last.len() - 1]
    );
}

/// Two replicas; one starts `failover` analyses and is killed; the time until the
/// other has taken over every one of them.
async fn failover(database: &str, settings: &Settings) {
    let strategies = decide_only_strategies();
    let logs = tempfile::tempdir().unwrap();
    let ttl = format!("{}s", settings.lease_ttl.as_secs());
    let extra = ["--lease-ttl", ttl.as_str()];
    let mut doomed = canaryd(&strategies, Some(database), &extra, logs.path()).await;
    let survivor = canaryd(&strategies, Some(database), &extra, logs.path()).await;
    let client = reqwest::Client::new();
    for n in 0..settings.failover {
        let body =
            json!({"strategy": "shop/web", "service": format!("svc-{n}"), "environment": "prod"});
        let response = client
            .post(doomed.url("/api/v1/analyses"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 202);
    }
    doomed.process.kill();
    let killed = Instant::now();
    let taken = |log: &str| log.matches("taking the analysis over").count();
    let first = wait_for("the first take-over", settings.lease_ttl * 3, || async {
        (taken(&survivor.process.log()) > 0).then(|| killed.elapsed())
    })
    .await;
    let all = wait_for("every take-over", settings.lease_ttl * 3, || async {
        (taken(&survivor.process.log()) >= settings.failover).then(|| killed.elapsed())
    })
    .await;
    println!(
        "failover of {} analyses after kill -9, lease TTL {:?}: first resumed after {first:?}, all after {all:?}",
        settings.failover, settings.lease_ttl
    );
    let heartbeat = settings.lease_ttl / 3;
    assert!(
        all <= settings.lease_ttl + heartbeat + Duration::from_secs(2),
        "resumption took {all:?} with a TTL of {:?}",
        settings.lease_ttl
    );
}
