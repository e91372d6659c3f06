//! One owner per route, through the real server over HTTP. A recording router notes
//! the writer (analysis and route epoch) of every write, so each test can say exactly
//! who drove the route, and when.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use canaryd::adapters::notify::WebhookSettings;
use canaryd::adapters::prometheus::PrometheusSettings;
use canaryd::domain::record::RouteTarget;
use canaryd::engine::EngineSettings;
use canaryd::ports::{RouterError, RouterProvider, TrafficRouter, Writer};
use canaryd::server::{Settings, assemble};
use reqwest::Client;
use serde_json::{Value, json};
use support::postgres::PostgresServer;
use support::wait_for;
use tempfile::TempDir;

/// One write the router was asked for.
#[derive(Debug, Clone, PartialEq)]
struct Write {
    analysis: String,
    epoch: i64,
    weight: u8,
    applied: bool,
}

#[derive(Default)]
struct Recording {
    writes: Mutex<Vec<Write>>,
    weight: Mutex<u8>,
    refusing: AtomicBool,
}

struct RecordingRouter(Arc<Recording>);

#[async_trait]
impl TrafficRouter for RecordingRouter {
    async fn set_weight(&self, weight: u8, writer: &Writer) -> Result<(), RouterError> {
        let applied = !self.0.refusing.load(Ordering::SeqCst);
        self.0.writes.lock().unwrap().push(Write {
            analysis: writer.analysis_id.clone(),
            epoch: writer.epoch,
            weight,
            applied,
        });
        if !applied {
            return Err(RouterError::Refused("the test router refuses".into()));
        }
        *self.0.weight.lock().unwrap() = weight;
        Ok(())
    }

    async fn weight(&self) -> Result<u8, RouterError> {
        Ok(*self.0.weight.lock().unwrap())
    }
}

impl RouterProvider for RecordingRouter {
    fn router(&self, _target: &RouteTarget) -> Result<Box<dyn TrafficRouter>, RouterError> {
        Ok(Box::new(RecordingRouter(Arc::clone(&self.0))))
    }
}

const STRATEGY: &str = "apiVersion: canaryd/v1\nkind: Strategy\nmetadata:\n  name: checkout\n  team: payments\nspec:\n  service: checkout\n  router:\n    type: none\n  interval: 1h\n  steps:\n    - weight: 25\n    - weight: 50\n    - weight: 100\n  metrics:\n    - name: error-rate\n      template: http-error-rate\n      max: 0.05\n";

struct Server {
    url: String,
    client: Client,
    router: Arc<Recording>,
    _dir: TempDir,
}

async fn server() -> Server {
    server_on(None).await
}

/// The server on `database` (a SQLite file of its own by default).
async fn server_on(database: Option<String>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("strategies");
    std::fs::create_dir_all(root.join("payments")).unwrap();
    std::fs::write(root.join("payments/checkout.yaml"), STRATEGY).unwrap();
    let loaded = canaryd::strategy_files::load_dir(&root);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let router = Arc::new(Recording::default());
    let mut prometheus = PrometheusSettings::new("http://127.0.0.1:9");
    prometheus.timeout = Duration::from_millis(200);
    let engine = EngineSettings {
        router_backoff: Duration::from_millis(20),
        router_backoff_max: Duration::from_millis(100),
        ..EngineSettings::default()
    };
    let assembled = assemble(Settings {
        cluster: canaryd::adapters::kube::Cluster::none("no cluster in this test"),
        strategies: loaded.strategies,
        database_url: database
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("canaryd.db").display())),
        prometheus,
        auth: None,
        engine,
        webhooks: WebhookSettings::default(),
        routers: Some(Arc::new(RecordingRouter(Arc::clone(&router)))),
    })
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, assembled.app).await });
    Server {
        url,
        client: Client::new(),
        router,
        _dir: dir,
    }
}

impl Server {
    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .request(method, format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn start(&self) -> String {
        let body = json!({"strategy": "payments/checkout", "environment": "prod"});
        let (status, answer) = self
            .call(reqwest::Method::POST, "/api/v1/analyses", body)
            .await;
        assert_eq!(status, 202, "{answer}");
        answer["id"].as_str().unwrap().to_string()
    }

    async fn operate(&self, id: &str, operation: &str) -> (u16, Value) {
        let path = format!("/api/v1/analyses/{id}/{operation}");
        self.call(reqwest::Method::POST, &path, json!({"reason": "test"}))
            .await
    }

    async fn analysis(&self, id: &str) -> Value {
        self.call(
            reqwest::Method::GET,
            &format!("/api/v1/analyses/{id}"),
            Value::Null,
        )
        .await
        .1
    }

    async fn wait_until(&self, id: &str, what: &str, test: impl Fn(&Value) -> bool) -> Value {
        wait_for(
            &format!("{id}: {what}"),
            Duration::from_secs(20),
            || async {
                let analysis = self.analysis(id).await;
                test(&analysis).then_some(analysis)
            },
        )
        .await
    }

    async fn wait_status(&self, id: &str, status: &str) -> Value {
        self.wait_until(id, status, |a| a["status"] == status).await
    }

    async fn wait_weight(&self, id: &str, weight: u64) -> Value {
        self.wait_until(id, &format!("weight {weight}"), |a| {
            a["canaryWeight"] == weight && a["targetWeight"] == weight
        })
        .await
    }

    fn writes(&self) -> Vec<Write> {
        self.router.writes.lock().unwrap().clone()
    }

    fn weight(&self) -> u8 {
        *self.router.weight.lock().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supersede_behind_a_freeze_returns_traffic_to_stable_and_leaves_it_there() {
    let server = server().await;
    let older = server.start().await;
    server.wait_weight(&older, 25).await;
    let (status, _) = server
        .call(
            reqwest::Method::POST,
            "/api/v1/freezes",
            json!({"environment": "prod", "reason": "holiday"}),
        )
        .await;
    assert_eq!(status, 201);
    let newer = server.start().await;
    let cancelled = server.wait_status(&older, "CANCELLED").await;
    assert!(
        cancelled["reason"].as_str().unwrap().contains(&newer),
        "{cancelled}"
    );
    assert_eq!(
        server.weight(),
        0,
        "the superseded analysis returned traffic to stable"
    );
    assert_eq!(server.analysis(&newer).await["status"], "PENDING");
    // Aborting the waiting analysis leaves nothing on the canary, and it never wrote.
    let (status, answer) = server.operate(&newer, "abort").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(server.weight(), 0);
    assert!(
        server.writes().iter().all(|w| w.analysis == older),
        "{:?}",
        server.writes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_superseded_analysis_never_writes_after_it_ends() {
    let server = server().await;
    let older = server.start().await;
    server.wait_weight(&older, 25).await;
    // The router flaps while the older one promotes: its shift to 100% is in backoff.
    server.router.refusing.store(true, Ordering::SeqCst);
    let (status, _) = server.operate(&older, "promote").await;
    assert_eq!(status, 200);
    wait_for(
        "a refused write of 100%",
        Duration::from_secs(10),
        || async {
            server
                .writes()
                .iter()
                .any(|w| w.weight == 100 && !w.applied)
                .then_some(())
        },
    )
    .await;
    let newer = server.start().await;
    server
        .wait_until(&older, "rolling back", |a| a["targetWeight"] == 0)
        .await;
    server.router.refusing.store(false, Ordering::SeqCst);
    server.wait_status(&older, "CANCELLED").await;
    server.wait_weight(&newer, 25).await;

    let writes = server.writes();
    let last_of_older = writes.iter().rposition(|w| w.analysis == older).unwrap();
    let first_of_newer = writes.iter().position(|w| w.analysis == newer).unwrap();
    assert!(last_of_older < first_of_newer, "{writes:?}");
    assert_eq!(writes[last_of_older].weight, 0, "{writes:?}");
    assert!(
        !writes.iter().any(|w| w.weight == 100 && w.applied),
        "the untested canary never got all traffic: {writes:?}"
    );
    let epochs: Vec<i64> = writes.iter().map(|w| w.epoch).collect();
    assert!(epochs.windows(2).all(|p| p[0] <= p[1]), "{writes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_on_a_busy_route_is_refused_naming_the_active_analysis() {
    let server = server().await;
    let first = server.start().await;
    server.wait_weight(&first, 25).await;
    assert_eq!(server.operate(&first, "rollback").await.0, 200);
    server.wait_status(&first, "ROLLED_BACK").await;
    let second = server.start().await;
    server.wait_weight(&second, 25).await;

    let (status, answer) = server.operate(&first, "retry").await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["error"], "route_busy", "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains(&second),
        "{answer}"
    );
    assert_eq!(server.analysis(&first).await["status"], "ROLLED_BACK");
    assert!(
        server
            .writes()
            .iter()
            .filter(|w| w.analysis == first)
            .count()
            == 2
    );

    // Once the route is free, the retry takes it over and starts from step 1.
    assert_eq!(server.operate(&second, "abort").await.0, 200);
    server.wait_status(&second, "CANCELLED").await;
    let (status, answer) = server.operate(&first, "retry").await;
    assert_eq!(status, 200, "{answer}");
    server.wait_weight(&first, 25).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_webhooks_leave_exactly_one_active_analysis() {
    let server = Arc::new(server().await);
    let mut calls = Vec::new();
    for _ in 0..20 {
        let server = Arc::clone(&server);
        calls.push(tokio::spawn(async move { server.start().await }));
    }
    let mut ids = Vec::new();
    for call in calls {
        ids.push(call.await.unwrap());
    }
    let settled = wait_for("all but one to end", Duration::from_secs(30), || async {
        let mut statuses = Vec::new();
        for id in &ids {
            statuses.push((id.clone(), server.analysis(id).await));
        }
        let active = statuses
            .iter()
            .filter(|(_, a)| a["verdict"].is_null())
            .count();
        (active == 1).then_some(statuses)
    })
    .await;
    let (winner, _) = settled
        .iter()
        .find(|(_, a)| a["verdict"].is_null())
        .unwrap();
    let running = server.wait_weight(winner, 25).await;
    assert_eq!(running["status"], "RUNNING", "{running}");
    for (_, analysis) in settled.iter().filter(|(id, _)| id != winner) {
        assert_eq!(analysis["status"], "CANCELLED", "{analysis}");
        assert!(
            analysis["reason"]
                .as_str()
                .unwrap()
                .starts_with("superseded by"),
            "{analysis}"
        );
    }
    // At any moment one analysis drove the route: writes never go back in epoch.
    let writes = server.writes();
    let epochs: Vec<i64> = writes.iter().map(|w| w.epoch).collect();
    assert!(epochs.windows(2).all(|p| p[0] <= p[1]), "{writes:?}");
    assert_eq!(server.weight(), 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_whose_caller_hangs_up_still_starts_its_analysis() {
    let server = server().await;
    let impatient = Client::builder()
        .timeout(Duration::from_millis(1))
        .build()
        .unwrap();
    for _ in 0..10 {
        let _ = impatient
            .post(format!("{}/api/v1/analyses", server.url))
            .json(&json!({"strategy": "payments/checkout", "environment": "prod"}))
            .send()
            .await;
    }
    server.start().await;
    // The hung-up starts run on in their own tasks, so any of them may commit last:
    // whichever did owns the route, runs, and every other one ended.
    let settled = wait_for(
        "exactly one active analysis",
        Duration::from_secs(20),
        || async {
            let (_, list) = server
                .call(
                    reqwest::Method::GET,
                    "/api/v1/analyses?limit=100",
                    Value::Null,
                )
                .await;
            let list = list.as_array()?.clone();
            let active: Vec<&Value> = list.iter().filter(|a| a["verdict"].is_null()).collect();
            (active.len() == 1 && active[0]["canaryWeight"] == 25).then_some(list)
        },
    )
    .await;
    assert!(
        settled.len() >= 2,
        "the hung-up calls stored analyses: {settled:?}"
    );
    for analysis in settled.iter().filter(|a| !a["verdict"].is_null()) {
        assert_eq!(analysis["status"], "CANCELLED", "{analysis}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_stops_the_analysis_before_any_router_write_and_it_resumes_after() {
    let postgres = PostgresServer::start();
    let server = server_on(Some(postgres.database("failing"))).await;
    let id = server.start().await;
    server.wait_weight(&id, 25).await;
    let writes_before = server.writes();

    postgres.stop();
    let (status, answer) = server.operate(&id, "promote").await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(
        server.writes(),
        writes_before,
        "no router write without a stored decision"
    );

    postgres.start_again();
    // The analysis resumes from what was stored (RUNNING at 25%), and obeys again.
    let (status, answer) = wait_for(
        "the analysis to answer again",
        Duration::from_secs(30),
        || async {
            let (status, answer) = server.operate(&id, "promote").await;
            (status == 200).then_some((status, answer))
        },
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let deployed = server.wait_status(&id, "DEPLOYED").await;
    assert_eq!(deployed["canaryWeight"], 100);
    let weights: Vec<u8> = server.writes().iter().map(|w| w.weight).collect();
    assert_eq!(weights.first(), Some(&25));
    assert_eq!(weights.last(), Some(&100));
}
