//! Notifications to a local HTTP receiver (payloads, retries, a dead receiver) and the
//! promotion gates (manual promotion, confirm-promotion), with the engine in-process,
//! a scripted metrics source, and the decide-only router.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use canaryd::adapters::notify::{WebhookSettings, Webhooks};
use canaryd::adapters::router::Routers;
use canaryd::adapters::store::sql::SqlStore;
use canaryd::domain::Timestamp;
use canaryd::domain::analysis::{Operation, Status};
use canaryd::engine::{Engine, EngineSettings, StartRequest};
use canaryd::ports::{AnalysisStore, MetricsSource, QueryError};
use canaryd::strategy_files::{FileIdentity, TemplateCatalog, parse_strategy};
use canaryd::telemetry::{NotificationLabels, Telemetry};
use serde_json::Value;

mod support;
use support::{free_port, wait_for};

/// Answers every query with the value the test sets.
struct Scripted(Mutex<f64>);

#[async_trait]
impl MetricsSource for Scripted {
    async fn instant(
        &self,
        _query: &str,
        _at: Option<canaryd::domain::Timestamp>,
    ) -> Result<Option<f64>, QueryError> {
        Ok(Some(*self.0.lock().unwrap()))
    }
    async fn range(
        &self,
        _: &str,
        _: Timestamp,
        _: Duration,
        _: Duration,
    ) -> Result<Vec<f64>, QueryError> {
        Ok(Vec::new())
    }
}

/// A local webhook receiver: records bodies per path, fails the first `failures[path]`
/// requests with 500, and answers `/gate` with `gate_status`.
#[derive(Default)]
struct Receiver {
    received: Mutex<Vec<(String, Value)>>,
    failures: Mutex<BTreeMap<String, usize>>,
    gate_status: Mutex<u16>,
    gate_calls: AtomicUsize,
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    UrlPath(path): UrlPath<String>,
    Json(body): Json<Value>,
) -> StatusCode {
    if path == "gate" {
        receiver.gate_calls.fetch_add(1, Ordering::SeqCst);
        return StatusCode::from_u16(*receiver.gate_status.lock().unwrap()).unwrap();
    }
    receiver.received.lock().unwrap().push((path.clone(), body));
    let mut failures = receiver.failures.lock().unwrap();
    match failures.get_mut(&path) {
        Some(left) if *left > 0 => {
            *left -= 1;
            StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => StatusCode::OK,
    }
}

async fn receiver() -> (Arc<Receiver>, String) {
    let receiver = Arc::new(Receiver {
        gate_status: Mutex::new(403),
        ..Receiver::default()
    });
    let app = axum::Router::new()
        .route("/{path}", axum::routing::post(receive))
        .with_state(Arc::clone(&receiver));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (receiver, url)
}

struct Setup {
    engine: Engine,
    metrics: Arc<Scripted>,
    telemetry: Arc<Telemetry>,
    store: Arc<SqlStore>,
}

fn strategy(extra: &str) -> canaryd::domain::strategy::Strategy {
    let text = format!(
        "apiVersion: canaryd/v1\nkind: Strategy\nmetadata:\n  name: web\n  team: shop\nspec:\n  service: web\n  router:\n    type: none\n  \
         interval: 1s\n  steps:\n    - weight: 50\n  inconclusiveLimit: 2\n  metrics:\n    - name: error-rate\n      \
         query: error_ratio{{service=\"{{{{service}}}}\"}}\n      max: 0.05\n{extra}"
    );
    let identity = FileIdentity {
        team: "shop".into(),
        name: "web".into(),
    };
    parse_strategy(
        Path::new("shop/web.yaml"),
        &text,
        &identity,
        &TemplateCatalog::default(),
    )
    .expect("valid strategy")
}

async fn setup(extra: &str, error_rate: f64) -> Setup {
    let strategy = strategy(extra);
    let metrics = Arc::new(Scripted(Mutex::new(error_rate)));
    let telemetry = Arc::new(Telemetry::default());
    let store = Arc::new(SqlStore::connect("memory:").await.unwrap());
    let webhooks = Arc::new(Webhooks::new(
        WebhookSettings {
            timeout: Duration::from_secs(2),
            attempts: 4,
            backoff: Duration::from_millis(50),
            public_url: "https://canaryd.example.com".into(),
        },
        Arc::clone(&telemetry),
    ));
    let ports = canaryd::server::ports(
        &store,
        &telemetry,
        webhooks,
        metrics.clone(),
        Arc::new(Routers::default()),
        Arc::new(canaryd::adapters::kube::Cluster::none(
            "no cluster in this test",
        )),
    );
    let strategies = BTreeMap::from([(strategy.id.clone(), strategy)]);
    let engine = Engine::new(ports, strategies, EngineSettings::default());
    engine.start_replica().await.unwrap();
    Setup {
        engine,
        metrics,
        telemetry,
        store,
    }
}

impl Setup {
    async fn start(&self) -> String {
        let request = StartRequest {
            strategy: "shop/web".into(),
            environment: "production".into(),
            image_tag: Some("2.3.0-abc1234".into()),
            ..StartRequest::default()
        };
        self.engine
            .start(request, "ci", None)
            .await
            .unwrap()
            .analysis
            .id
    }

    async fn wait_status(&self, id: &str, status: Status) -> canaryd::domain::record::Analysis {
        wait_for(
            &format!("{id} to be {status}"),
            Duration::from_secs(15),
            || async {
                self.store
                    .get(id)
                    .await
                    .unwrap()
                    .filter(|a| a.state.status == status)
            },
        )
        .await
    }

    fn notifications(&self, format: &str, result: &str) -> u64 {
        let labels = NotificationLabels {
            format: format.into(),
            result: result.into(),
        };
        self.telemetry.notifications.get_or_create(&labels).get()
    }
}

fn notify(url: &str, format: &str, on: &str) -> String {
    format!("  notifications:\n    - url: {url}\n      format: {format}\n      on: [{on}]\n")
}

#[tokio::test]
async fn a_rollback_is_announced_in_json_and_slack_with_the_failing_metric() {
    let (receiver, url) = receiver().await;
    let extra = format!(
        "{}    - url: {url}/slack\n      format: slack\n      on: [rolled_back]\n",
        notify(&format!("{url}/json"), "json", "rolled_back, deployed")
    );
    let setup = setup(&extra, 0.2).await;
    let id = setup.start().await;
    setup.wait_status(&id, Status::RolledBack).await;
    let received = wait_for("both notifications", Duration::from_secs(10), || async {
        let received = receiver.received.lock().unwrap().clone();
        (received.len() == 2).then_some(received)
    })
    .await;
    let body = |path: &str| {
        received
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, b)| b.clone())
            .unwrap()
    };

    let json = body("json");
    assert_eq!(json["status"], "ROLLED_BACK");
    assert_eq!(
        (json["service"].as_str(), json["imageTag"].as_str()),
        (Some("web"), Some("2.3.0-abc1234"))
    );
    assert_eq!(json["failingMetric"]["name"], "error-rate");
    assert_eq!(
        (
            json["failingMetric"]["value"].as_f64(),
            json["failingMetric"]["max"].as_f64()
        ),
        (Some(0.2), Some(0.05))
    );
    assert_eq!(
        json["url"],
        format!("https://canaryd.example.com/api/v1/analyses/{id}")
    );

    let text = body("slack")["text"].as_str().unwrap().to_string();
    for needed in [
        "web",
        "2.3.0-abc1234",
        "ROLLED_BACK",
        "production",
        "error-rate 0.2 (max 0.05)",
        &format!("https://canaryd.example.com/api/v1/analyses/{id}"),
    ] {
        assert!(text.contains(needed), "{text:?} should mention {needed:?}");
    }
    assert_eq!(
        setup.notifications("json", "sent") + setup.notifications("slack", "sent"),
        2
    );
}

#[tokio::test]
async fn a_receiver_answering_500_is_retried_until_it_takes_the_notification() {
    let (receiver, url) = receiver().await;
    receiver.failures.lock().unwrap().insert("json".into(), 2);
    let setup = setup(&notify(&format!("{url}/json"), "json", "deployed"), 0.01).await;
    let id = setup.start().await;
    setup.wait_status(&id, Status::Deployed).await;
    wait_for(
        "the notification to be delivered",
        Duration::from_secs(10),
        || async { (setup.notifications("json", "sent") == 1).then_some(()) },
    )
    .await;
    assert_eq!(
        receiver.received.lock().unwrap().len(),
        3,
        "two 500s, then delivered"
    );
    assert_eq!(setup.notifications("json", "failed"), 0);
}

#[tokio::test]
async fn a_dead_receiver_changes_nothing_about_the_verdict_and_is_counted() {
    let dead = format!("http://127.0.0.1:{}/hook", free_port());
    let setup = setup(&notify(&dead, "json", "rolled_back"), 0.2).await;
    let id = setup.start().await;
    let analysis = setup.wait_status(&id, Status::RolledBack).await;
    let started = analysis.state.started_at.unwrap();
    let took = (analysis.state.completed_at.unwrap() - started)
        .to_std()
        .unwrap();
    assert!(took < Duration::from_secs(3), "the verdict took {took:?}");
    wait_for(
        "the failed delivery to be counted",
        Duration::from_secs(10),
        || async { (setup.notifications("json", "failed") == 1).then_some(()) },
    )
    .await;
}

/// Waits until the analysis has run `more` checks beyond `after`.
async fn checks_beyond(
    setup: &Setup,
    id: &str,
    after: u64,
    more: u64,
) -> canaryd::domain::record::Analysis {
    wait_for("more checks", Duration::from_secs(15), || async {
        let analysis = setup.store.get(id).await.unwrap()?;
        (analysis.state.checks_done >= after + more).then_some(analysis)
    })
    .await
}

#[tokio::test]
async fn a_manual_strategy_keeps_watching_while_it_waits_for_promotion() {
    let setup = setup("  promotion: manual\n", 0.01).await;
    let id = setup.start().await;
    let paused = setup.wait_status(&id, Status::Paused).await;
    assert!(
        paused.state.reason.contains("waiting for manual promotion"),
        "{}",
        paused.state.reason
    );
    let still = checks_beyond(&setup, &id, paused.state.checks_done, 2).await;
    assert_eq!(
        (still.state.status, still.state.canary_weight),
        (Status::Paused, 50)
    );
    setup
        .engine
        .operate(&id, Operation::Promote, "release-manager", "approved")
        .await
        .unwrap();
    let deployed = setup.wait_status(&id, Status::Deployed).await;
    assert_eq!(deployed.state.canary_weight, 100);

    // The next canary starts failing while it waits: it is rolled back, unattended.
    let next = setup.start().await;
    let paused = setup.wait_status(&next, Status::Paused).await;
    *setup.metrics.0.lock().unwrap() = 0.3;
    checks_beyond(&setup, &next, paused.state.checks_done, 1).await;
    let rolled_back = setup.wait_status(&next, Status::RolledBack).await;
    assert_eq!(rolled_back.state.canary_weight, 0);
    assert!(
        rolled_back.state.reason.contains("error-rate failed"),
        "{}",
        rolled_back.state.reason
    );
}

#[tokio::test]
async fn confirm_promotion_answering_403_holds_promotion_while_a_failing_check_still_rolls_back() {
    let (receiver, url) = receiver().await;
    let setup = setup(
        &format!("  gates:\n    confirmPromotion: {url}/gate\n"),
        0.01,
    )
    .await;
    let id = setup.start().await;
    setup.wait_status(&id, Status::Promoting).await;
    wait_for(
        "the gate to be asked twice",
        Duration::from_secs(10),
        || async { (receiver.gate_calls.load(Ordering::SeqCst) >= 2).then_some(()) },
    )
    .await;
    let held = setup.store.get(&id).await.unwrap().unwrap();
    assert_eq!(
        (held.state.status, held.state.canary_weight),
        (Status::Promoting, 50),
        "held at the last step"
    );
    assert!(held.state.checks_done >= 2, "checks go on behind the gate");

    *setup.metrics.0.lock().unwrap() = 0.3;
    let rolled_back = setup.wait_status(&id, Status::RolledBack).await;
    assert_eq!(rolled_back.state.canary_weight, 0);
    assert!(
        rolled_back.state.reason.starts_with("error-rate failed"),
        "{}",
        rolled_back.state.reason
    );
}

#[tokio::test]
async fn confirm_promotion_answering_2xx_promotes() {
    let (receiver, url) = receiver().await;
    *receiver.gate_status.lock().unwrap() = 200;
    let setup = setup(
        &format!("  gates:\n    confirmPromotion: {url}/gate\n"),
        0.01,
    )
    .await;
    let id = setup.start().await;
    let deployed = setup.wait_status(&id, Status::Deployed).await;
    assert_eq!(deployed.state.canary_weight, 100);
    assert!(receiver.gate_calls.load(Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn a_retried_analysis_notifies_and_runs_to_its_verdict() {
    let (receiver, url) = receiver().await;
    let setup = setup(
        &notify(&format!("{url}/json"), "json", "pending, deployed"),
        0.2,
    )
    .await;
    let id = setup.start().await;
    setup.wait_status(&id, Status::RolledBack).await;
    *setup.metrics.0.lock().unwrap() = 0.01;
    let retried = setup
        .engine
        .operate(&id, Operation::Retry, "release-manager", "fixed")
        .await
        .unwrap();
    assert_eq!(retried.state.status, Status::Pending);
    setup.wait_status(&id, Status::Deployed).await;
    let statuses = wait_for(
        "the pending and deployed notifications",
        Duration::from_secs(10),
        || async {
            let received = receiver.received.lock().unwrap().clone();
            let statuses: Vec<String> = received
                .iter()
                .map(|(_, body)| body["status"].as_str().unwrap().to_string())
                .collect();
            (statuses.len() == 2).then_some(statuses)
        },
    )
    .await;
    assert_eq!(statuses, ["PENDING", "DEPLOYED"]);
    let refused = setup
        .engine
        .operate(&id, Operation::Abort, "someone", "too late")
        .await;
    assert!(refused.is_err(), "abort of a DEPLOYED analysis is refused");
}
