//! A store that refuses writes does not hold a rollback back. canaryd runs on a real
//! PostgreSQL that goes read-only (as a database on a full disk, or demoted to a
//! standby, refuses writes) while a canary starts failing: HAProxy must reach weight
//! 0 anyway, the canary must never get traffic again, and the verdict must be stored
//! once the database takes writes again.

mod support;

use std::time::Duration;

use serde_json::json;
use support::postgres::PostgresServer;
use support::*;

const STRATEGY: &str = "  interval: 2s\n  window: 4s\n  steps:\n    - weight: 20\n      checks: 30\n    \
    - weight: 100\n  inconclusiveLimit: 4\n  metrics:\n    - name: error-rate\n      template: http-error-rate\n      max: 0.05\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_canary_loses_its_traffic_while_the_store_refuses_the_verdict() {
    let postgres = PostgresServer::start();
    let database = postgres.database("refusing");
    let stable = DemoInstance::start("stable", 0.0, 2).await;
    let canary = DemoInstance::start("canary", 0.0, 2).await;
    let prometheus = PrometheusServer::start(&[stable.target(), canary.target()]).await;
    let haproxy = HaproxyServer::start(stable.port, canary.port).await;
    let strategies = strategy_folder(&format!("127.0.0.1:{}", haproxy.admin_port), STRATEGY);
    let logs = tempfile::tempdir().unwrap();
    let (port, url) = (free_port(), prometheus.url());
    let canaryd =
        Canaryd::start_with_database(port, strategies.path(), &url, &database, &[], logs.path())
            .await;
    let _load = Load::start(haproxy.url(), 100);
    let id = canaryd
        .start_analysis(json!({"strategy": "e2e/demo", "environment": "test"}))
        .await;
    wait_for(
        "the first step's weight, stored",
        Duration::from_secs(60),
        || async {
            let analysis = canaryd.analysis(&id).await;
            (analysis["status"] == "RUNNING" && analysis["canaryWeight"] == 20).then_some(())
        },
    )
    .await;

    postgres.set_read_only(true);
    canary.set_behaviour(0.5, 2).await;
    wait_for("HAProxy at weight 0", Duration::from_secs(20), || async {
        (haproxy.weights() == (100, 0)).then_some(())
    })
    .await;
    let stored = canaryd.analysis(&id).await;
    assert_eq!(
        stored["status"], "RUNNING",
        "the store took no write: {stored:#}"
    );
    assert!(
        canaryd
            .process
            .log()
            .contains("could not store the rollback"),
        "the refused write is logged"
    );

    postgres.set_read_only(false);
    let analysis = wait_for("the verdict, stored", Duration::from_secs(30), || async {
        assert_eq!(haproxy.weights(), (100, 0), "the canary got traffic again");
        let analysis = canaryd.analysis(&id).await;
        (analysis["status"] == "ROLLED_BACK").then_some(analysis)
    })
    .await;
    let reason = analysis["reason"].as_str().unwrap();
    assert!(reason.starts_with("error-rate failed"), "{reason}");
    assert_eq!(analysis["canaryWeight"], 0);
}
