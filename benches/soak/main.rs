//! Fault-injection soak: canaryd under the live set-up (real Prometheus, real HAProxy,
//! the demo service under load) while a seeded schedule restarts Prometheus or makes
//! it slow or deaf, has HAProxy's Runtime API refuse or hang, fills the disk under the
//! SQLite file, sends malformed and oversized webhooks, reloads a broken strategy
//! folder and kill -9s canaryd. Four lanes run analyses back to back, two of a healthy
//! build and two of a build with 30% errors. The invariants:
//! - never promoted unless the last step's checks passed in a row with data, and a
//!   failing build never at all;
//! - weight 0 within two intervals of a FAIL beyond `failureLimit`, or that long after
//!   the router accepts again (or canaryd is back);
//! - no analysis lost or duplicated; every audit trail without a gap;
//! - RSS at the end within 20% of RSS one minute into the last process's life.
//!
//! `cargo bench --bench soak -- --duration 10m --seed 7`; under `cargo test` it runs
//! for 2 minutes. The disk fault needs root (to mount a tmpfs); without it, it is
//! reported as skipped.

#[path = "../../tests/support/mod.rs"]
mod support;

mod drive;
mod faults;
mod invariants;
mod schedule;
mod webhooks;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use drive::{LANES, Shared};
use faults::{FaultProxy, SmallDisk};
use support::lanes::LaneHaproxy;
use support::*;

const INTERVAL: Duration = Duration::from_secs(2);

/// When the soak's clock started: every line it prints says how long after.
static BEGAN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn elapsed(at: Instant) -> String {
    let began = *BEGAN.get_or_init(Instant::now);
    format!("+{:.1}s", at.saturating_duration_since(began).as_secs_f64())
}

const STRATEGY: &str = "apiVersion: canaryd/v1\nkind: Strategy\nmetadata:\n  name: lane\n  team: soak\nspec:\n  service: healthy\n  \
    variables:\n    lane: null\n  router:\n    type: haproxy\n    haproxy:\n      address: ADMIN\n      backend: \"{{lane}}\"\n      \
    stableServer: stable\n      canaryServer: canary\n  interval: 2s\n  window: 4s\n  steps:\n    - weight: 20\n      checks: 2\n    \
    - weight: 50\n      checks: 2\n    - weight: 100\n  inconclusiveLimit: 4\n  metrics:\n    \
    - name: error-rate\n      template: http-error-rate\n      max: 0.05\n";

fn main() {
    let duration = humantime::parse_duration(&bench_setting("--duration", "2m", "10m"))
        .expect("--duration such as 10m");
    let seed: u64 = bench_setting("--seed", "20261202", "20261202")
        .parse()
        .expect("--seed is a number");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(soak(duration, seed));
}

async fn soak(duration: Duration, seed: u64) {
    eprintln!("soak: {duration:?}, seed {seed}");
    let healthy = (
        DemoInstance::start_service("healthy", "stable", 0.0, 2).await,
        DemoInstance::start_service("healthy", "canary", 0.0, 2).await,
    );
    let failing = (
        DemoInstance::start_service("failing", "stable", 0.0, 2).await,
        DemoInstance::start_service("failing", "canary", 0.3, 2).await,
    );
    let instances = [&healthy.0, &healthy.1, &failing.0, &failing.1];
    let targets: Vec<String> = instances.iter().map(|d| d.target()).collect();
    let prometheus = PrometheusServer::start(&targets).await;
    let prometheus_proxy = FaultProxy::start(prometheus.port).await;

    let work = tempfile::tempdir().unwrap();
    let pairs = [
        (healthy.0.port, healthy.1.port),
        (failing.0.port, failing.1.port),
    ];
    let haproxy =
        LaneHaproxy::start(LANES, |lane| pairs[usize::from(!drive::is_healthy(lane))]).await;
    let admin = haproxy.admin;
    let router_proxy = FaultProxy::start(admin).await;
    let _loads = haproxy.load(20);

    let strategies = work.path().join("strategies");
    std::fs::create_dir_all(strategies.join("soak")).unwrap();
    let strategy = STRATEGY.replace("ADMIN", &format!("127.0.0.1:{}", router_proxy.port));
    std::fs::write(strategies.join("soak/lane.yaml"), strategy).unwrap();
    let disk = SmallDisk::mount(&work.path().join("disk"), 24);
    let database_dir = disk
        .as_ref()
        .map_or(work.path().to_path_buf(), |d| d.dir.clone());
    let database = format!("sqlite://{}", database_dir.join("canaryd.db").display());
    let prometheus_url = format!("http://127.0.0.1:{}", prometheus_proxy.port);
    let logs = work.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let restart = {
        let (strategies, logs) = (strategies.clone(), logs.clone());
        move |port: u16| {
            let (strategies, logs, database, url) = (
                strategies.clone(),
                logs.clone(),
                database.clone(),
                prometheus_url.clone(),
            );
            Box::pin(async move {
                let extra = ["--prometheus-timeout", "3s", "--reload-interval", "0s"];
                Canaryd::start_with_database(port, &strategies, &url, &database, &extra, &logs)
                    .await
            }) as std::pin::Pin<Box<dyn Future<Output = Canaryd>>>
        }
    };
    let canaryd = restart(free_port()).await;
    let shared = Arc::new(Shared::default());
    shared
        .canaryd_pid
        .store(canaryd.process.pid(), Ordering::SeqCst);
    let base = canaryd.url("");
    let clock = invariants::Clock::now();
    let began = *BEGAN.get_or_init(Instant::now);
    let disk_skipped = disk.is_none();
    let mut targets = schedule::Targets {
        prometheus,
        prometheus_targets: targets.len(),
        prometheus_proxy,
        router_proxy,
        disk,
        canaryd,
        restart: Box::new(restart),
        strategies,
        shared: Arc::clone(&shared),
    };
    let watching = Arc::new(AtomicBool::new(false));
    let monitor = {
        let (shared, done) = (Arc::clone(&shared), Arc::clone(&watching));
        std::thread::spawn(move || drive::watch_weights(admin, shared, done))
    };
    let memory = tokio::spawn(drive::sample_memory(
        Arc::clone(&shared),
        Arc::clone(&watching),
    ));
    let lanes: Vec<_> = (0..LANES)
        .map(|lane| tokio::spawn(drive::lane(base.clone(), lane, Arc::clone(&shared))))
        .collect();

    let end = began + duration;
    let last_kill = end - Duration::from_secs(75).min(duration / 2);
    let injected = schedule::run(&mut targets, seed, end, last_kill).await;
    shared.stop.store(true, Ordering::SeqCst);
    for lane in lanes {
        tokio::time::timeout(Duration::from_secs(120), lane)
            .await
            .expect("every lane's last analysis reaches a verdict")
            .unwrap();
    }
    watching.store(true, Ordering::SeqCst);
    monitor.join().unwrap();
    memory.await.unwrap();
    report::check_and_print(
        &targets.canaryd,
        &shared,
        &injected,
        (&clock, began, disk_skipped),
    )
    .await;
}

mod report;
