//! A real canaryd app for the webhook target: the shipped strategies, an auth file,
//! an in-memory store and routers that only remember the weight.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use canaryd::adapters::kube::Cluster;
use canaryd::adapters::notify::WebhookSettings;
use canaryd::adapters::prometheus::PrometheusSettings;
use canaryd::adapters::router::none::DecideOnly;
use canaryd::auth::Tokens;
use canaryd::domain::record::RouteTarget;
use canaryd::engine::EngineSettings;
use canaryd::ports::{RouterError, RouterProvider, TrafficRouter};
use canaryd::server::{Settings, assemble};
use canaryd::strategy_files::load_dir;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

use crate::strategies_root;

/// Names and secrets of the tokens in the auth file.
pub const TOKENS: &[(&str, &str)] = &[
    ("payments-ci", "fuzz-payments-ci-secret"),
    ("search-ci", "fuzz-search-ci-secret"),
    ("admin", "fuzz-admin-secret"),
];

pub struct Server {
    pub runtime: tokio::runtime::Runtime,
    pub app: axum::Router,
}

struct RemembersWeight;

impl RouterProvider for RemembersWeight {
    fn router(&self, _: &RouteTarget) -> Result<Box<dyn TrafficRouter>, RouterError> {
        Ok(Box::new(DecideOnly::default()))
    }
}

impl Server {
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let app = runtime.block_on(app());
        Self { runtime, app }
    }

    /// An accepted analysis is shown to the admin, then aborted, so the fuzzer's
    /// starts do not pile up as running analyses.
    pub fn seen_and_ended(&self, id: &str) {
        let admin = format!("Bearer {}", TOKENS[2].1);
        self.runtime.block_on(async {
            let get = Request::get(format!("/api/v1/analyses/{id}"))
                .header("authorization", &admin)
                .body(Body::empty())
                .unwrap();
            let shown = self.app.clone().oneshot(get).await.unwrap();
            assert_eq!(
                shown.status(),
                StatusCode::OK,
                "an accepted start is not found"
            );
            let abort = Request::post(format!("/api/v1/analyses/{id}/abort"))
                .header("authorization", &admin)
                .header("content-type", "application/json")
                .body(Body::from(r#"{"reason":"fuzzing"}"#))
                .unwrap();
            let ended = self.app.clone().oneshot(abort).await.unwrap();
            let status = ended.status();
            let body = ended.into_body().collect().await.unwrap().to_bytes();
            assert!(
                status == StatusCode::OK || status == StatusCode::CONFLICT,
                "abort answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        });
    }
}

async fn app() -> axum::Router {
    let loaded = load_dir(&strategies_root());
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let dir = std::env::temp_dir().join(format!("canaryd-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let auth = dir.join("auth.yaml");
    std::fs::write(&auth, auth_file()).unwrap();
    let mut prometheus = PrometheusSettings::new("http://127.0.0.1:9");
    prometheus.timeout = Duration::from_millis(100);
    let server = assemble(Settings {
        strategies: loaded.strategies,
        database_url: "memory:".into(),
        prometheus,
        auth: Some(Tokens::load(&auth).expect("the auth file loads")),
        engine: EngineSettings::default(),
        webhooks: WebhookSettings::default(),
        routers: Some(Arc::new(RemembersWeight)),
        cluster: Cluster::none("no cluster while fuzzing"),
    })
    .await
    .expect("canaryd assembles");
    server.app
}

fn auth_file() -> String {
    let teams = ["payments", "search", "*"];
    let roles = ["ci", "ci", "admin"];
    let mut text = String::from("tokens:\n");
    for (((name, secret), team), role) in TOKENS.iter().zip(teams).zip(roles) {
        let hash: String = Sha256::digest(secret.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        text.push_str(&format!(
            "  - name: {name}\n    team: \"{team}\"\n    role: {role}\n    sha256: {hash}\n"
        ));
    }
    text
}
