//! Chaos on real components: three canaryd replicas on one PostgreSQL, thirty analyses
//! on thirty HAProxy backends, half of them with a failing canary, while replicas are
//! killed with SIGKILL (and a few frozen with SIGSTOP past their lease) on a seeded
//! schedule. Every analysis must reach the verdict its canary deserves, no check number
//! may repeat or skip, and every router write must come from the analysis's owner under
//! its newest lease. The longest gap between two checks of one analysis is reported.
//!
//! `CANARYD_CHAOS_SEED` picks the schedule (printed on every run).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use support::lanes::LaneHaproxy;
use support::postgres::PostgresServer;
use support::*;

const LANES: usize = 30;
const REPLICAS: usize = 3;
const FAULTS: usize = 12;
const TTL_SECONDS: u64 = 3;
const INTERVAL_SECONDS: u64 = 2;

const STRATEGY: &str = "apiVersion: canaryd/v1\nkind: Strategy\nmetadata:\n  name: lane\n  team: chaos\nspec:\n  service: healthy\n  \
    variables:\n    lane: null\n  router:\n    type: haproxy\n    haproxy:\n      address: ADMIN\n      backend: \"{{lane}}\"\n      \
    stableServer: stable\n      canaryServer: canary\n  interval: 2s\n  window: 4s\n  steps:\n    - weight: 20\n      checks: 3\n    \
    - weight: 40\n      checks: 3\n    - weight: 60\n      checks: 3\n    - weight: 100\n  inconclusiveLimit: 5\n  metrics:\n    \
    - name: error-rate\n      template: http-error-rate\n      max: 0.05\n";

struct Fleet {
    slots: Vec<Canaryd>,
    strategies: tempfile::TempDir,
    database: String,
    logs: tempfile::TempDir,
}

impl Fleet {
    async fn replica(&self) -> Canaryd {
        Canaryd::start_with_database(
            free_port(),
            self.strategies.path(),
            &self.prometheus_url(),
            &self.database,
            &[
                "--lease-ttl",
                &format!("{TTL_SECONDS}s"),
                "--log-format",
                "json",
            ],
            self.logs.path(),
        )
        .await
    }

    fn prometheus_url(&self) -> String {
        std::fs::read_to_string(self.strategies.path().join("prometheus-url")).unwrap()
    }
}

#[derive(Debug)]
struct Faults {
    kills: usize,
    freezes: usize,
}

/// Starts one wave of ten analyses, each webhook sent to a replica at random.
async fn wave(fleet: &Fleet, rng: &mut StdRng, wave: usize, lanes: &mut BTreeMap<String, usize>) {
    for lane in (wave * 10)..(wave * 10 + 10) {
        let service = if lane < LANES / 2 {
            "healthy"
        } else {
            "failing"
        };
        let body = json!({"strategy": "chaos/lane", "service": service, "environment": "prod",
                          "variables": {"lane": format!("lane{lane:02}")}});
        let slot = rng.random_range(0..REPLICAS);
        lanes.insert(fleet.slots[slot].start_analysis(body).await, lane);
    }
}

/// The fault schedule, with the second and third waves of analyses arriving during it.
async fn inject(
    fleet: &mut Fleet,
    rng: &mut StdRng,
    lanes: &mut BTreeMap<String, usize>,
) -> Faults {
    let mut faults = Faults {
        kills: 0,
        freezes: 0,
    };
    for n in 0..FAULTS {
        if n == 2 || n == 4 {
            wave(fleet, rng, n / 2, lanes).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(2000..3500))).await;
        let slot = rng.random_range(0..REPLICAS);
        if n % 6 == 5 {
            // Frozen past its lease: others take over; on waking it must notice, write
            // nothing, and exit.
            fleet.slots[slot].process.signal("STOP");
            tokio::time::sleep(Duration::from_secs(TTL_SECONDS + 2)).await;
            fleet.slots[slot].process.signal("CONT");
            let code = fleet.slots[slot]
                .process
                .wait_exit(Duration::from_secs(10))
                .await;
            assert_eq!(code, Some(1), "a replica that lost its lease exits 1");
            faults.freezes += 1;
        } else {
            fleet.slots[slot].process.kill();
            faults.kills += 1;
        }
        fleet.slots[slot] = fleet.replica().await;
    }
    faults
}

/// A router write as a replica logged it.
struct LoggedWrite {
    at: String,
    analysis: String,
    lease: i64,
    replica: String,
}

fn logged_writes(fleet: &Fleet) -> Vec<LoggedWrite> {
    let mut writes = Vec::new();
    for entry in std::fs::read_dir(fleet.logs.path()).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        for line in text.lines() {
            let Ok(event) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if event["message"] != "canary weight applied" {
                continue;
            }
            let writer = event["writer"].as_str().unwrap();
            writes.push(LoggedWrite {
                at: event["timestamp"].as_str().unwrap().to_string(),
                analysis: writer.split('@').next().unwrap().to_string(),
                lease: event["lease"].as_i64().unwrap(),
                replica: event["replica"].as_str().unwrap().to_string(),
            });
        }
    }
    writes.sort_by(|a, b| a.at.cmp(&b.at));
    writes
}

/// Check numbers are 1..=checksDone, each once; returns the longest gap between checks.
fn checks_without_gaps(analysis: &Value) -> Duration {
    let checks = analysis["checks"].as_array().unwrap();
    let numbers: Vec<u64> = checks
        .iter()
        .map(|c| c["check"].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = (1..=analysis["checksDone"].as_u64().unwrap()).collect();
    assert_eq!(numbers, expected, "check numbers of {}", analysis["id"]);
    let times: Vec<chrono::DateTime<chrono::Utc>> = checks
        .iter()
        .map(|c| c["at"].as_str().unwrap().parse().unwrap())
        .collect();
    times
        .windows(2)
        .map(|pair| (pair[1] - pair[0]).to_std().unwrap_or_default())
        .max()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_killed_at_random_never_lose_an_analysis_or_share_a_route() {
    let seed: u64 = std::env::var("CANARYD_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261201);
    eprintln!("chaos seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);

    let healthy = (
        DemoInstance::start_service("healthy", "stable", 0.0, 2).await,
        DemoInstance::start_service("healthy", "canary", 0.0, 2).await,
    );
    let failing = (
        DemoInstance::start_service("failing", "stable", 0.0, 2).await,
        DemoInstance::start_service("failing", "canary", 0.5, 2).await,
    );
    let targets: Vec<String> = [&healthy.0, &healthy.1, &failing.0, &failing.1]
        .iter()
        .map(|d| d.target())
        .collect();
    let prometheus = PrometheusServer::start(&targets).await;

    let pairs = [
        (healthy.0.port, healthy.1.port),
        (failing.0.port, failing.1.port),
    ];
    let haproxy = LaneHaproxy::start(LANES, |lane| pairs[usize::from(lane >= LANES / 2)]).await;
    let admin = haproxy.admin;
    let _loads = haproxy.load(15);

    let postgres = PostgresServer::start();
    let strategies = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(strategies.path().join("chaos")).unwrap();
    std::fs::write(
        strategies.path().join("chaos/lane.yaml"),
        STRATEGY.replace("ADMIN", &format!("127.0.0.1:{admin}")),
    )
    .unwrap();
    std::fs::write(strategies.path().join("prometheus-url"), prometheus.url()).unwrap();
    let mut fleet = Fleet {
        slots: Vec::new(),
        strategies,
        database: postgres.database("chaos"),
        logs: tempfile::tempdir().unwrap(),
    };
    for _ in 0..REPLICAS {
        let replica = fleet.replica().await;
        fleet.slots.push(replica);
    }

    let mut lanes: BTreeMap<String, usize> = BTreeMap::new();
    let started = Instant::now();
    wave(&fleet, &mut rng, 0, &mut lanes).await;
    let faults = inject(&mut fleet, &mut rng, &mut lanes).await;
    assert_eq!(lanes.len(), LANES);

    let mut longest_gap = Duration::ZERO;
    let mut verdicts = BTreeMap::new();
    for (id, lane) in &lanes {
        let analysis = fleet.slots[0]
            .wait_terminal(id, Duration::from_secs(180))
            .await;
        let deserved = if *lane < LANES / 2 {
            "DEPLOYED"
        } else {
            "ROLLED_BACK"
        };
        assert_eq!(analysis["status"], deserved, "lane {lane}: {analysis:#}");
        longest_gap = longest_gap.max(checks_without_gaps(&analysis));
        *verdicts.entry(deserved).or_insert(0) += 1;
    }

    // Router writes: per analysis, lease tokens never go back, one replica per token.
    let writes = logged_writes(&fleet);
    assert!(
        !writes.is_empty(),
        "the replicas logged their router writes"
    );
    let mut newest: BTreeMap<&str, i64> = BTreeMap::new();
    let mut holders: BTreeMap<(&str, i64), BTreeSet<&str>> = BTreeMap::new();
    for write in &writes {
        let last = newest.entry(&write.analysis).or_insert(write.lease);
        assert!(
            write.lease >= *last,
            "analysis {} written under lease {} after lease {last}",
            write.analysis,
            write.lease
        );
        *last = write.lease;
        holders
            .entry((&write.analysis, write.lease))
            .or_default()
            .insert(&write.replica);
    }
    for ((analysis, lease), replicas) in &holders {
        assert_eq!(
            replicas.len(),
            1,
            "analysis {analysis} lease {lease} written by {replicas:?}"
        );
    }
    eprintln!(
        "chaos: {} analyses {verdicts:?} in {:?}; faults {faults:?}; {} router writes; longest gap between checks {longest_gap:?}",
        lanes.len(),
        started.elapsed(),
        writes.len()
    );
    assert!(faults.kills >= 10, "{faults:?}");
    assert!(
        longest_gap < Duration::from_secs(TTL_SECONDS * 2 + INTERVAL_SECONDS * 2 + 4),
        "longest gap between checks {longest_gap:?}"
    );
}
