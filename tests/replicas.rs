//! Several canaryd replicas on one real PostgreSQL: every replica serves the whole API,
//! an operation sent to any replica reaches the one that runs the analysis, a newer
//! analysis started on one replica supersedes an older one running on another, and a
//! replica killed with SIGKILL has its analyses resumed by another within the lease TTL.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::postgres::PostgresServer;
use support::*;

struct Cluster {
    _postgres: PostgresServer,
    database: String,
    strategies: tempfile::TempDir,
    logs: tempfile::TempDir,
}

const TTL: &str = "3s";

impl Cluster {
    fn new(name: &str) -> Self {
        let postgres = PostgresServer::start();
        let database = postgres.database(name);
        Self {
            _postgres: postgres,
            database,
            strategies: decide_only_strategies(),
            logs: tempfile::tempdir().unwrap(),
        }
    }

    async fn replica(&self) -> Canaryd {
        Canaryd::start_with_database(
            free_port(),
            self.strategies.path(),
            "http://127.0.0.1:9",
            &self.database,
            &["--lease-ttl", TTL],
            self.logs.path(),
        )
        .await
    }
}

async fn post(replica: &Canaryd, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(replica.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let code = response.status().as_u16();
    (code, response.json().await.unwrap_or(Value::Null))
}

async fn wait_status(replica: &Canaryd, id: &str, status: &str) -> Value {
    wait_for(
        &format!("{id} {status}"),
        Duration::from_secs(20),
        || async {
            let analysis = replica.analysis(id).await;
            (analysis["status"] == status && analysis["canaryWeight"] == analysis["targetWeight"])
                .then_some(analysis)
        },
    )
    .await
}

fn body(environment: &str) -> Value {
    json!({"strategy": "shop/web", "environment": environment})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_sent_to_any_replica_reaches_the_one_running_the_analysis() {
    let cluster = Cluster::new("operations");
    let first = cluster.replica().await;
    let second = cluster.replica().await;
    let id = first.start_analysis(body("prod")).await;
    wait_status(&first, &id, "RUNNING").await;
    // Both replicas hold their leases, and each serves the whole API.
    for replica in [&first, &second] {
        let ready = replica.get("/readyz").await;
        assert_eq!(ready["holdsLease"], true, "{ready}");
        let remaining = ready["leaseRemainingMs"].as_u64().unwrap();
        assert!(remaining > 0 && remaining <= 3000, "{ready}");
        assert_eq!(replica.analysis(&id).await["status"], "RUNNING");
    }
    let (code, answer) = post(
        &second,
        &format!("/api/v1/analyses/{id}/pause"),
        json!({"reason": "look"}),
    )
    .await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["status"], "PAUSED", "{answer}");
    // A refusal travels back too, with its 409.
    let (code, answer) = post(
        &second,
        &format!("/api/v1/analyses/{id}/pause"),
        json!({"reason": "again"}),
    )
    .await;
    assert_eq!(code, 409, "{answer}");
    assert_eq!(answer["error"], "not_allowed_in_status", "{answer}");
    let events = first.get(&format!("/api/v1/analyses/{id}/events")).await;
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["message"] == "pause by anonymous: look"),
        "{events}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_analysis_on_one_replica_supersedes_the_one_running_on_another() {
    let cluster = Cluster::new("supersede");
    let first = cluster.replica().await;
    let second = cluster.replica().await;
    let older = first.start_analysis(body("prod")).await;
    wait_status(&first, &older, "RUNNING").await;
    let newer = second.start_analysis(body("prod")).await;
    let cancelled = wait_status(&second, &older, "CANCELLED").await;
    assert_eq!(cancelled["reason"], format!("superseded by {newer}"));
    assert_eq!(cancelled["canaryWeight"], 0);
    let running = wait_status(&first, &newer, "RUNNING").await;
    assert_eq!(running["canaryWeight"], 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replicas_analyses_resume_on_another_within_the_lease_ttl() {
    let cluster = Cluster::new("failover");
    let mut doomed = cluster.replica().await;
    let survivor = cluster.replica().await;
    let mut ids = Vec::new();
    for environment in ["prod", "staging", "dev"] {
        let id = doomed.start_analysis(body(environment)).await;
        wait_status(&doomed, &id, "RUNNING").await;
        ids.push(id);
    }
    doomed.process.kill();
    let killed = Instant::now();
    // The survivor takes each over, reconciles the route (the decide-only router of a
    // new process starts at 0%) and carries on: an operation through it applies.
    for id in &ids {
        wait_for(
            &format!("{id} taken over"),
            Duration::from_secs(15),
            || async {
                let events = survivor.get(&format!("/api/v1/analyses/{id}/events")).await;
                events
                    .as_array()?
                    .iter()
                    .any(|e| {
                        e["message"]
                            .as_str()
                            .is_some_and(|m| m.starts_with("resumed:"))
                    })
                    .then_some(())
            },
        )
        .await;
    }
    let resumed_after = killed.elapsed();
    assert!(
        resumed_after < Duration::from_secs(3 + 2),
        "resumed {resumed_after:?} after the kill; the TTL is {TTL}"
    );
    for id in &ids {
        wait_status(&survivor, id, "RUNNING").await;
        let (code, answer) = post(
            &survivor,
            &format!("/api/v1/analyses/{id}/promote"),
            json!({"reason": "ship"}),
        )
        .await;
        assert_eq!(code, 200, "{answer}");
        wait_status(&survivor, id, "DEPLOYED").await;
    }
    eprintln!("failover: resumed {resumed_after:?} after kill -9 (lease TTL {TTL})");
}
