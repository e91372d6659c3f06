//! The HTTP API of DESIGN §4 against the real server on port 0: every endpoint, every
//! error path, access control across two teams, idempotent retries, and an OpenAPI
//! document whose every path answers as documented.

use std::time::Duration;

use canaryd::adapters::notify::WebhookSettings;
use canaryd::adapters::prometheus::PrometheusSettings;
use canaryd::auth::Tokens;
use canaryd::engine::EngineSettings;
use canaryd::server::{Settings, assemble};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

mod support;
use support::wait_for;

const STRATEGY: &str = "apiVersion: canaryd/v1\nkind: Strategy\nmetadata:\n  name: NAME\n  team: TEAM\nspec:\n  service: SERVICE\n  router:\n    type: none\n  interval: 1h\n  steps:\n    - weight: 10\n    - weight: 100\n  EXTRA\n  metrics:\n    - name: error-rate\n      template: http-error-rate\n      max: 0.05\n";

struct Api {
    url: String,
    client: Client,
    _dir: TempDir,
}

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Tokens: payments-ci, payments-operator, search-operator, admin (token = name + "-secret").
fn auth_file(dir: &TempDir) -> std::path::PathBuf {
    let mut text = String::from("tokens:\n");
    for (name, team, role) in [
        ("payments-ci", "payments", "ci"),
        ("payments-operator", "payments", "operator"),
        ("search-operator", "search", "operator"),
        ("admin", "*", "admin"),
    ] {
        text.push_str(&format!(
            "  - name: {name}\n    team: \"{team}\"\n    role: {role}\n    sha256: {}\n",
            hash(&format!("{name}-secret"))
        ));
    }
    let path = dir.path().join("auth.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn api(with_auth: bool) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("strategies");
    for (team, name, service, extra) in [
        (
            "payments",
            "checkout",
            "checkout-api",
            "imageTagRule: semver-sha\n  variables:\n    region: eu-west-1",
        ),
        ("search", "indexer", "indexer", "failureLimit: 1"),
    ] {
        std::fs::create_dir_all(root.join(team)).unwrap();
        let text = STRATEGY
            .replace("NAME", name)
            .replace("TEAM", team)
            .replace("SERVICE", service)
            .replace("EXTRA", extra);
        std::fs::write(root.join(team).join(format!("{name}.yaml")), text).unwrap();
    }
    let gateway = STRATEGY
        .replace("NAME", "web")
        .replace("TEAM", "search")
        .replace("SERVICE", "web")
        .replace("EXTRA", "failureLimit: 0")
        .replace(
            "    type: none\n",
            "    type: gateway-api\n    gatewayApi:\n      httpRoute: web\n      stableService: web-stable\n      canaryService: web-canary\n",
        );
    std::fs::write(root.join("search").join("web.yaml"), gateway).unwrap();
    let loaded = canaryd::strategy_files::load_dir(&root);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let auth = with_auth.then(|| Tokens::load(&auth_file(&dir)).unwrap());
    let mut prometheus = PrometheusSettings::new("http://127.0.0.1:9");
    prometheus.timeout = Duration::from_millis(200);
    let server = assemble(Settings {
        strategies: loaded.strategies,
        database_url: format!("sqlite://{}", dir.path().join("canaryd.db").display()),
        prometheus,
        auth,
        engine: EngineSettings::default(),
        webhooks: WebhookSettings::default(),
        routers: None,
        cluster: canaryd::adapters::kube::Cluster::none("no cluster in this test"),
    })
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, server.app).await });
    Api {
        url,
        client: Client::new(),
        _dir: dir,
    }
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(format!("{token}-secret"));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, None, Some(body)).await
    }

    async fn start(&self, body: Value) -> String {
        let (status, answer) = self.post("/api/v1/analyses", body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        answer["id"].as_str().unwrap().to_string()
    }

    async fn wait_status(&self, id: &str, wanted: &str) -> Value {
        wait_for(
            &format!("{id} to be {wanted}"),
            Duration::from_secs(10),
            || async {
                let (_, analysis) = self.get(&format!("/api/v1/analyses/{id}")).await;
                (analysis["status"] == wanted).then_some(analysis)
            },
        )
        .await
    }
}

fn checkout() -> Value {
    json!({"strategy": "payments/checkout", "environment": "production", "imageTag": "1.4.2-de54b1c",
           "gitCommit": "de54b1c", "gitBranch": "main", "triggeredBy": "ci-pipeline"})
}

fn indexer(environment: &str) -> Value {
    json!({"strategy": "search/indexer", "environment": environment})
}

fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str, says: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"], code, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{message:?} should say {says:?}");
}

#[tokio::test]
async fn the_webhook_starts_an_analysis_that_get_shows_in_full() {
    let api = api(false).await;
    let (status, accepted) = api.post("/api/v1/analyses", checkout()).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = accepted["id"].as_str().unwrap();
    assert_eq!(accepted["statusUrl"], format!("/api/v1/analyses/{id}"));
    assert_eq!(accepted["status"], "PENDING");
    // RUNNING is stored before the router confirms the first step's weight.
    let analysis = wait_for(
        "the first step's weight",
        Duration::from_secs(10),
        || async {
            let (_, analysis) = api.get(&format!("/api/v1/analyses/{id}")).await;
            (analysis["status"] == "RUNNING" && analysis["canaryWeight"] == 10).then_some(analysis)
        },
    )
    .await;
    assert_eq!(analysis["targetWeight"], 10);
    assert_eq!(analysis["step"], 1);
    assert_eq!(analysis["steps"], json!([10, 100]));
    assert_eq!(analysis["imageTag"], "1.4.2-de54b1c");
    assert_eq!(analysis["strategy"], "payments/checkout");
    assert_eq!(analysis["checks"], json!([]));
    assert!(analysis["verdict"].is_null());
}

#[tokio::test]
async fn bad_webhooks_get_the_right_status_and_a_clear_message() {
    let api = api(false).await;
    let url = format!("{}/api/v1/analyses", api.url);
    let raw = |body: &'static str, content_type: &'static str| {
        let request = api
            .client
            .post(&url)
            .header("content-type", content_type)
            .body(body);
        async move {
            let response = request.send().await.unwrap();
            (
                response.status(),
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, body) = raw("{\"strategy\": ", "application/json").await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "malformed_request",
        "malformed JSON",
    );
    let (status, body) = raw("{}", "text/plain").await;
    assert_error(
        status,
        &body,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "application/json",
    );
    let huge = format!("{{\"strategy\":\"{}\"}}", "x".repeat(70 * 1024));
    let response = api
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert_error(
        status,
        &response.json().await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        "65536",
    );

    let mut cases = vec![
        (
            json!({"strategy": "payments/checkout", "environment": "production", "imageTag": "1.4.2-de54b1c", "colour": "red"}),
            "unknown field `colour`",
        ),
        (
            json!({"environment": "production"}),
            "missing field `strategy`",
        ),
        (
            json!({"strategy": "payments/checkout", "imageTag": "1.4.2-de54b1c"}),
            "missing field `environment`",
        ),
        (
            json!({"strategy": "payments/checkout", "environment": "production", "imageTag": "latest"}),
            "imageTag: 'latest' does not match the strategy's rule <semver>-<short-sha>",
        ),
        (
            json!({"strategy": "payments/checkout", "environment": "production", "imageTag": "1.4.2-de54b1c", "variables": {"zone": "a"}}),
            "variables.zone: not declared by strategy payments/checkout",
        ),
        (
            json!({"strategy": "payments/checkout", "environment": "prod\"uction", "imageTag": "1.4.2-de54b1c"}),
            "environment",
        ),
        (
            json!({"strategy": "payments/checkout", "environment": "production", "service": "x\"}) or vector(1", "imageTag": "1.4.2-de54b1c"}),
            "service",
        ),
        (
            json!({"strategy": "checkout", "environment": "production"}),
            "is not <team>/<name>",
        ),
        (
            json!({"strategy": 42, "environment": "production"}),
            "invalid type",
        ),
    ];
    for (body, says) in cases.drain(..) {
        let (status, answer) = api.post("/api/v1/analyses", body.clone()).await;
        assert_error(
            status,
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            says,
        );
    }
    let (status, answer) = api
        .post(
            "/api/v1/analyses",
            json!({"strategy": "payments/nope", "environment": "production"}),
        )
        .await;
    assert_error(
        status,
        &answer,
        StatusCode::NOT_FOUND,
        "not_found",
        "strategy payments/nope is not loaded",
    );
    let (status, answer) = api
        .post(
            "/api/v1/analyses",
            json!({"strategy": "search/web", "environment": "production"}),
        )
        .await;
    assert_error(
        status,
        &answer,
        StatusCode::SERVICE_UNAVAILABLE,
        "router_unavailable",
        "the gateway-api router needs a Kubernetes client",
    );
    let (status, answer) = api.get("/api/v1/analyses/does-not-exist").await;
    assert_error(
        status,
        &answer,
        StatusCode::NOT_FOUND,
        "not_found",
        "analysis does-not-exist not found",
    );
    let (status, answer) = api.get("/api/v1/nothing-here").await;
    assert_error(
        status,
        &answer,
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint",
    );
}

#[tokio::test]
async fn operations_follow_the_status_rules_and_are_audited() {
    let api = api(false).await;
    let id = api.start(checkout()).await;
    api.wait_status(&id, "RUNNING").await;
    let op = |name: &'static str, reason: &'static str| {
        let path = format!("/api/v1/analyses/{id}/{name}");
        let api = &api;
        async move { api.post(&path, json!({"reason": reason})).await }
    };
    let (status, paused) = op("pause", "investigating a dashboard").await;
    assert_eq!(
        (status, paused["status"].as_str()),
        (StatusCode::OK, Some("PAUSED"))
    );
    let (status, body) = op("pause", "again").await;
    assert_error(
        status,
        &body,
        StatusCode::CONFLICT,
        "not_allowed_in_status",
        "cannot pause an analysis that is PAUSED; allowed when RUNNING",
    );
    let (status, _) = op("resume", "looks fine").await;
    assert_eq!(status, StatusCode::OK);
    let (status, rolled) = op("rollback", "customer complaints").await;
    assert_eq!(status, StatusCode::OK);
    assert!(rolled["status"] == "ROLLING_BACK" || rolled["status"] == "ROLLED_BACK");
    api.wait_status(&id, "ROLLED_BACK").await;
    let (status, body) = op("abort", "too late").await;
    assert_error(
        status,
        &body,
        StatusCode::CONFLICT,
        "not_allowed_in_status",
        "allowed when PENDING, RUNNING, PAUSED, PROMOTING",
    );
    let (status, _) = op("retry", "fixed the config").await;
    assert_eq!(status, StatusCode::OK);
    api.wait_status(&id, "RUNNING").await;
    let (status, promoted) = op("promote", "ship it").await;
    assert_eq!(status, StatusCode::OK, "{promoted}");
    let deployed = api.wait_status(&id, "DEPLOYED").await;
    assert_eq!(deployed["canaryWeight"], 100);
    assert_eq!(deployed["verdict"], "DEPLOYED");
    // An operation without a body is allowed; an unknown one is not an endpoint.
    let empty = api
        .client
        .post(format!("{}/api/v1/analyses/{id}/abort", api.url))
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), StatusCode::CONFLICT);
    let (status, _) = op("explode", "no").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, events) = api.get(&format!("/api/v1/analyses/{id}/events")).await;
    let said: Vec<String> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "operation")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        said,
        [
            "pause by anonymous: investigating a dashboard",
            "resume by anonymous: looks fine",
            "rollback by anonymous: customer complaints",
            "retry by anonymous: fixed the config",
            "promote by anonymous: ship it",
        ]
    );
    assert_eq!(events[0]["actor"], "ci-pipeline");
}

#[tokio::test]
async fn a_new_analysis_supersedes_the_running_one_of_the_same_service_and_environment() {
    let api = api(false).await;
    let first = api.start(indexer("staging")).await;
    api.wait_status(&first, "RUNNING").await;
    let other_env = api.start(indexer("production")).await;
    let second = api.start(indexer("staging")).await;
    let cancelled = api.wait_status(&first, "CANCELLED").await;
    assert_eq!(cancelled["reason"], format!("superseded by {second}"));
    api.wait_status(&second, "RUNNING").await;
    api.wait_status(&other_env, "RUNNING").await;
}

#[tokio::test]
async fn retries_with_the_same_idempotency_key_return_the_same_analysis() {
    let api = api(false).await;
    let post = |body: Value, key: &'static str| {
        let request = api
            .client
            .post(format!("{}/api/v1/analyses", api.url))
            .header("Idempotency-Key", key)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let (first_status, first) = post(checkout(), "build-1234").await;
    let (retry_status, retry) = post(checkout(), "build-1234").await;
    assert_eq!(
        (first_status, retry_status),
        (StatusCode::ACCEPTED, StatusCode::OK)
    );
    assert_eq!(first["id"], retry["id"]);
    let mut changed = checkout();
    changed["imageTag"] = json!("1.4.3-0000000");
    let (status, body) = post(changed, "build-1234").await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
        "already used for a different request",
    );
    let (status, other) = post(checkout(), "build-1235").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_ne!(other["id"], first["id"]);
}

#[tokio::test]
async fn a_frozen_environment_queues_analyses_until_the_freeze_is_lifted() {
    let api = api(false).await;
    let running = api.start(indexer("production")).await;
    api.wait_status(&running, "RUNNING").await;
    let (status, freeze) = api
        .post(
            "/api/v1/freezes",
            json!({"environment": "production", "reason": "Black Friday"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{freeze}");
    let (_, freezes) = api.get("/api/v1/freezes").await;
    assert_eq!(freezes[0]["environment"], "production");
    assert_eq!(freezes[0]["reason"], "Black Friday");

    let waiting = api.start(checkout()).await;
    let elsewhere = api.start(indexer("staging")).await;
    api.wait_status(&elsewhere, "RUNNING").await;
    let (_, pending) = api.get(&format!("/api/v1/analyses/{waiting}")).await;
    assert_eq!(pending["status"], "PENDING");
    let (_, still) = api.get(&format!("/api/v1/analyses/{running}")).await;
    assert_eq!(still["status"], "RUNNING", "running analyses continue");

    let id = freeze["id"].as_str().unwrap();
    let (status, _) = api
        .call(Method::DELETE, &format!("/api/v1/freezes/{id}"), None, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    api.wait_status(&waiting, "RUNNING").await;
    let (status, body) = api
        .call(Method::DELETE, &format!("/api/v1/freezes/{id}"), None, None)
        .await;
    assert_error(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "not_found",
        "not found",
    );
    let (status, body) = api
        .post("/api/v1/freezes", json!({"environment": "", "reason": "x"}))
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request",
        "environment",
    );
}

#[tokio::test]
async fn lists_filter_and_history_has_the_deployment_shape() {
    let api = api(false).await;
    let deployed = api.start(checkout()).await;
    api.wait_status(&deployed, "RUNNING").await;
    api.post(
        &format!("/api/v1/analyses/{deployed}/promote"),
        json!({"reason": "ok"}),
    )
    .await;
    api.wait_status(&deployed, "DEPLOYED").await;
    let running = api.start(indexer("staging")).await;
    api.wait_status(&running, "RUNNING").await;

    let (_, all) = api.get("/api/v1/analyses").await;
    let ids: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [running.as_str(), deployed.as_str()], "newest first");
    for (query, expected) in [
        ("status=DEPLOYED", vec![deployed.as_str()]),
        ("status=RUNNING,PAUSED", vec![running.as_str()]),
        ("team=search", vec![running.as_str()]),
        ("environment=production", vec![deployed.as_str()]),
        ("limit=1", vec![running.as_str()]),
    ] {
        let (status, found) = api.get(&format!("/api/v1/analyses?{query}")).await;
        assert_eq!(status, StatusCode::OK);
        let ids: Vec<&str> = found
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, expected, "{query}");
    }
    for (query, says) in [
        ("status=DONE", "status \"DONE\" is not one of"),
        ("limit=0", "limit must be at least 1"),
        ("limit=9999", "at most 500"),
        ("colour=red", "unknown field"),
    ] {
        let (status, body) = api.get(&format!("/api/v1/analyses?{query}")).await;
        assert_error(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            says,
        );
    }

    let (_, history) = api
        .get("/api/v1/deployments/history?environment=production&limit=10")
        .await;
    let entry = &history[0];
    assert_eq!(entry["id"], deployed.as_str());
    for field in [
        "id",
        "imageTag",
        "gitCommit",
        "gitBranch",
        "environment",
        "status",
        "deployedAt",
        "completedAt",
    ] {
        assert!(
            entry.get(field).is_some(),
            "history entry lacks {field}: {entry}"
        );
    }
    assert_eq!(
        (entry["status"].as_str(), entry["gitBranch"].as_str()),
        (Some("DEPLOYED"), Some("main"))
    );
    let (_, staging) = api
        .get("/api/v1/deployments/history?environment=staging")
        .await;
    assert_eq!(
        staging[0]["status"], "PENDING",
        "a running analysis is a pending deployment"
    );
    assert!(staging[0]["completedAt"].is_null());
}

#[tokio::test]
async fn strategies_are_listed_and_shown() {
    let api = api(false).await;
    let (_, all) = api.get("/api/v1/strategies").await;
    let ids: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["payments/checkout", "search/indexer", "search/web"]);
    let (status, one) = api.get("/api/v1/strategies/search/indexer").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            one["failureLimit"].as_u64(),
            one["interval"].as_str(),
            one["router"].as_str()
        ),
        (Some(1), Some("1h"), Some("none"))
    );
    assert_eq!(one["metrics"][0]["judge"], "threshold");
    let (status, body) = api.get("/api/v1/strategies/search/nope").await;
    assert_error(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "not_found",
        "strategy search/nope is not loaded",
    );
}

#[tokio::test]
async fn tokens_confine_each_team_to_its_own_analyses() {
    let api = api(true).await;
    let call = |method: Method, path: String, token: Option<&'static str>, body: Option<Value>| {
        let api = &api;
        async move { api.call(method, &path, token, body).await }
    };
    // No token, a wrong token.
    let (status, body) = call(
        Method::POST,
        "/api/v1/analyses".into(),
        None,
        Some(checkout()),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Authorization: Bearer",
    );
    let wrong = api
        .client
        .get(format!("{}/api/v1/analyses", api.url))
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    // CI starts analyses for its own team only.
    let (status, started) = call(
        Method::POST,
        "/api/v1/analyses".into(),
        Some("payments-ci"),
        Some(checkout()),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let id = started["id"].as_str().unwrap().to_string();
    let (status, body) = call(
        Method::POST,
        "/api/v1/analyses".into(),
        Some("payments-ci"),
        Some(indexer("staging")),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "forbidden",
        "may not start analyses for team search",
    );

    // Operations need an operator of the team (or an admin).
    let pause = format!("/api/v1/analyses/{id}/pause");
    wait_for("the analysis to run", Duration::from_secs(10), || async {
        let (_, a) = call(
            Method::GET,
            format!("/api/v1/analyses/{id}"),
            Some("payments-ci"),
            None,
        )
        .await;
        (a["status"] == "RUNNING").then_some(())
    })
    .await;
    let (status, body) = call(
        Method::POST,
        pause.clone(),
        Some("payments-ci"),
        Some(json!({"reason": "x"})),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "forbidden",
        "needs role operator",
    );
    let (status, body) = call(
        Method::POST,
        pause.clone(),
        Some("search-operator"),
        Some(json!({"reason": "x"})),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "forbidden",
        "may not read team payments",
    );
    let (status, paused) = call(
        Method::POST,
        pause,
        Some("payments-operator"),
        Some(json!({"reason": "checking"})),
    )
    .await;
    assert_eq!(
        (status, paused["status"].as_str()),
        (StatusCode::OK, Some("PAUSED"))
    );

    // Another team can neither read it nor list it.
    let (status, _) = call(
        Method::GET,
        format!("/api/v1/analyses/{id}"),
        Some("search-operator"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        Method::GET,
        format!("/api/v1/analyses/{id}/events"),
        Some("search-operator"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        Method::GET,
        "/api/v1/analyses?team=payments".into(),
        Some("search-operator"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, visible) = call(
        Method::GET,
        "/api/v1/analyses".into(),
        Some("search-operator"),
        None,
    )
    .await;
    assert_eq!(visible, json!([]));
    let (_, strategies) = call(
        Method::GET,
        "/api/v1/strategies".into(),
        Some("search-operator"),
        None,
    )
    .await;
    assert_eq!(strategies.as_array().unwrap().len(), 2, "search's own two");
    let (_, everything) = call(Method::GET, "/api/v1/analyses".into(), Some("admin"), None).await;
    assert_eq!(everything.as_array().unwrap().len(), 1);

    // Freezes are for admins.
    let freeze = json!({"environment": "production", "reason": "incident"});
    let (status, _) = call(
        Method::POST,
        "/api/v1/freezes".into(),
        Some("payments-operator"),
        Some(freeze.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        Method::POST,
        "/api/v1/freezes".into(),
        Some("admin"),
        Some(freeze),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    // The audit trail names the token.
    let (_, events) = call(
        Method::GET,
        format!("/api/v1/analyses/{id}/events"),
        Some("admin"),
        None,
    )
    .await;
    let actors: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(actors.first(), Some(&"payments-ci"));
    assert!(actors.contains(&"payments-operator"));

    // Health, readiness and the API document need no token.
    for path in ["/healthz", "/readyz", "/openapi.json"] {
        let (status, _) = call(Method::GET, path.into(), None, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn every_documented_path_answers_as_documented() {
    let api = api(false).await;
    let id = api.start(indexer("staging")).await;
    api.wait_status(&id, "RUNNING").await;
    let (_, document) = api.get("/openapi.json").await;
    let paths = document["paths"].as_object().expect("paths");
    assert!(paths.len() >= 16, "only {} paths documented", paths.len());
    let (_, freeze) = api
        .post(
            "/api/v1/freezes",
            json!({"environment": "qa", "reason": "doc test"}),
        )
        .await;
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().unwrap() {
            let concrete = path
                .replace(
                    "{id}",
                    if path.starts_with("/api/v1/freezes") {
                        freeze["id"].as_str().unwrap()
                    } else {
                        &id
                    },
                )
                .replace("{team}", "search")
                .replace("{name}", "indexer");
            let body = match (method.as_str(), path.as_str()) {
                ("post", "/api/v1/analyses") => Some(indexer("docs")),
                ("post", "/api/v1/freezes") => {
                    Some(json!({"environment": "docs", "reason": "doc test"}))
                }
                ("post", _) => Some(json!({"reason": "documented"})),
                _ => None,
            };
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, answer) = api.call(method.clone(), &concrete, None, body).await;
            let documented: Vec<&String> =
                operation["responses"].as_object().unwrap().keys().collect();
            assert!(
                documented
                    .iter()
                    .any(|code| code.as_str() == status.as_str()),
                "{method} {concrete} answered {status} ({answer}); documented: {documented:?}"
            );
            if status.is_client_error() {
                assert!(
                    answer["error"].is_string() && answer["message"].is_string(),
                    "{method} {concrete}: {answer}"
                );
            }
        }
    }
}

async fn cli(args: &[&str]) -> (i32, String, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_canaryd"))
        .args(args)
        .output()
        .await
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canaryd_wait_exits_zero_when_deployed_and_one_otherwise() {
    let api = api(false).await;
    let deployed = api.start(checkout()).await;
    let rolled_back = api.start(indexer("staging")).await;
    api.wait_status(&deployed, "RUNNING").await;
    api.wait_status(&rolled_back, "RUNNING").await;
    let wait = |id: String| {
        let url = api.url.clone();
        tokio::spawn(async move { cli(&["wait", &id, "--url", &url, "--poll", "100ms"]).await })
    };
    let (waiting_deployed, waiting_rolled_back) =
        (wait(deployed.clone()), wait(rolled_back.clone()));
    api.post(
        &format!("/api/v1/analyses/{deployed}/promote"),
        json!({"reason": "go"}),
    )
    .await;
    api.post(
        &format!("/api/v1/analyses/{rolled_back}/rollback"),
        json!({"reason": "stop"}),
    )
    .await;

    let (code, stdout, _) = waiting_deployed.await.unwrap();
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout
            .lines()
            .last()
            .unwrap()
            .starts_with("DEPLOYED step 1/2 canary 100% — promoted"),
        "{stdout}"
    );
    let (code, stdout, _) = waiting_rolled_back.await.unwrap();
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("ROLLED_BACK") && stdout.contains("rollback by anonymous: stop"),
        "{stdout}"
    );

    let (code, stdout, _) = cli(&["status", &deployed, "--url", &api.url]).await;
    assert_eq!(
        (code, stdout.starts_with("DEPLOYED")),
        (0, true),
        "{stdout}"
    );
    let (code, _, stderr) = cli(&["status", "nope", "--url", &api.url]).await;
    assert_eq!(code, 2);
    assert!(
        stderr.contains("404") && stderr.contains("analysis nope not found"),
        "{stderr}"
    );
}

#[tokio::test]
async fn counters_start_at_zero_for_every_known_label_combination() {
    let api = api(false).await;
    let scrape = || async {
        api.client
            .get(format!("{}/metrics", api.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let text = scrape().await;
    for router in ["none", "gateway-api"] {
        let line = format!("canaryd_router_errors_total{{router=\"{router}\"}} 0");
        assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
    }
    api.start(indexer("staging")).await;
    let text = scrape().await;
    for result in ["PASS", "FAIL", "INCONCLUSIVE", "ERROR"] {
        let line = format!(
            "canaryd_checks_total{{team=\"search\",service=\"indexer\",environment=\"staging\",metric=\"error-rate\",result=\"{result}\"}} 0"
        );
        assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
    }
}

#[tokio::test]
async fn judgements_are_team_scoped_and_validated_like_webhooks() {
    let api = api(true).await;
    let post = |token: &'static str, body: Value| {
        let api = &api;
        async move {
            api.call(Method::POST, "/api/v1/judgements", Some(token), Some(body))
                .await
        }
    };
    let body = json!({"strategy": "search/indexer", "environment": "staging"});
    // Prometheus is unreachable here: the metric is an ERROR, the judgement INCONCLUSIVE.
    let (status, answer) = post("search-operator", body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["result"], "INCONCLUSIVE", "{answer}");
    assert_eq!(answer["metrics"][0]["outcome"], "ERROR", "{answer}");
    let (status, answer) = post("payments-ci", body).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    // A judgement has no image: a strategy's imageTagRule does not apply to it.
    let checkout = json!({"strategy": "payments/checkout", "environment": "prod"});
    let (status, answer) = post("payments-ci", checkout).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    for (body, code, says) in [
        (
            json!({"strategy": "search/nope", "environment": "staging"}),
            StatusCode::NOT_FOUND,
            "not loaded",
        ),
        (
            json!({"strategy": "search/indexer", "environment": "staging", "window": "soon"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "window",
        ),
        (
            json!({"strategy": "search/indexer", "environment": "staging", "window": "48h"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "within 1s..=24h",
        ),
        (
            json!({"strategy": "search/indexer", "environment": "bad env"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "environment",
        ),
        (
            json!({"strategy": "search/indexer", "environment": "staging", "variables": {"x": "1"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not declared",
        ),
    ] {
        let (status, answer) = post("search-operator", body.clone()).await;
        assert_eq!(status, code, "{body}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(says),
            "{body}: {answer}"
        );
    }
}

#[tokio::test]
async fn the_document_describes_the_bodies_and_filters_the_server_accepts() {
    let api = api(false).await;
    let (_, document) = api.get("/openapi.json").await;
    let schemas = &document["components"]["schemas"];
    let webhook = &schemas["StartRequest"];
    let fields: Vec<&str> = webhook["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for field in ["imageTag", "gitCommit", "gitBranch", "triggeredBy"] {
        assert!(
            fields.contains(&field),
            "{field} is camelCase, as the server reads it: {fields:?}"
        );
    }
    assert_eq!(
        webhook["additionalProperties"], false,
        "unknown fields are refused"
    );
    let pause = &document["paths"]["/api/v1/analyses/{id}/pause"]["post"]["requestBody"];
    let body = &pause["content"]["application/json"]["schema"];
    assert!(
        body["oneOf"].is_null() && body["nullable"].is_null(),
        "null is refused: {body}"
    );
    let params = document["paths"]["/api/v1/analyses"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let param = |name: &str| params.iter().find(|p| p["name"] == name).unwrap()["schema"].clone();
    assert_eq!(
        (
            param("limit")["minimum"].as_f64(),
            param("limit")["maximum"].as_f64()
        ),
        (Some(1.0), Some(500.0))
    );
    assert_eq!(param("environment")["minLength"], 1);
    // And the server does refuse what the document excludes.
    let (status, _) = api.get("/api/v1/analyses?limit=0").await;
    assert_eq!(status, 422);
    let (status, _) = api
        .post(
            "/api/v1/analyses",
            json!({"strategy": "search/indexer", "environment": "x", "image_tag": "1"}),
        )
        .await;
    assert_eq!(status, 422);
}

/// Requests the document allows are the ones the server accepts, and the reverse,
/// for the cases a property-based run against the document found.
#[tokio::test]
async fn empty_filters_are_refused_and_the_document_names_every_rule() {
    let api = api(false).await;
    for path in [
        "/api/v1/analyses?environment=",
        "/api/v1/analyses?status=",
        "/api/v1/analyses?team=",
        "/api/v1/deployments/history?environment=",
        "/api/v1/deployments/history?team=",
    ] {
        let (status, body) = api.get(path).await;
        assert_eq!(status, 422, "{path}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("must not be empty"),
            "{body}"
        );
    }
    let (_, document) = api.get("/openapi.json").await;
    let params = document["paths"]["/api/v1/analyses"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let status = params.iter().find(|p| p["name"] == "status").unwrap();
    let pattern = regex::Regex::new(status["schema"]["pattern"].as_str().unwrap()).unwrap();
    for known in canaryd::domain::analysis::Status::ALL {
        let name = known.as_str();
        assert!(pattern.is_match(name), "{name} is allowed by the document");
        let (code, body) = api
            .get(&format!("/api/v1/analyses?status={name},RUNNING"))
            .await;
        assert_eq!(code, 200, "{name}: {body}");
    }
    assert!(!pattern.is_match("0") && !pattern.is_match("RUNNING,"));
    let schemas = &document["components"]["schemas"];
    for (schema, field, refused) in [
        ("StartRequest", "strategy", ""),
        ("StartRequest", "environment", ""),
        ("StartRequest", "gitCommit", "xyz"),
        ("StartRequest", "triggeredBy", " ci"),
        ("JudgementRequest", "strategy", "indexer"),
        ("JudgementRequest", "environment", "a b"),
    ] {
        let pattern = schemas[schema]["properties"][field]["pattern"]
            .as_str()
            .unwrap_or_else(|| panic!("{schema}.{field} has a pattern"));
        let pattern = regex::Regex::new(pattern).unwrap();
        assert!(
            !pattern.is_match(refused),
            "{schema}.{field} excludes {refused:?}"
        );
        let mut body = json!({"strategy": "search/indexer", "environment": "prod"});
        body[field] = json!(refused);
        let path = if schema == "StartRequest" {
            "/api/v1/analyses"
        } else {
            "/api/v1/judgements"
        };
        let (status, answer) = api.post(path, body).await;
        assert_eq!(status, 422, "{schema}.{field} = {refused:?}: {answer}");
    }
    let freeze = &schemas["FreezeRequest"];
    let judgement = &schemas["JudgementRequest"];
    for (schema, field, refused, path) in [
        (freeze, "environment", "", "/api/v1/freezes"),
        (freeze, "reason", "   ", "/api/v1/freezes"),
        (judgement, "window", "", "/api/v1/judgements"),
    ] {
        let pattern =
            regex::Regex::new(schema["properties"][field]["pattern"].as_str().unwrap()).unwrap();
        assert!(!pattern.is_match(refused), "{field} excludes {refused:?}");
        let mut body =
            json!({"strategy": "search/indexer", "environment": "prod", "reason": "release"});
        if path == "/api/v1/freezes" {
            body = json!({"environment": "prod", "reason": "release"});
        }
        body[field] = json!(refused);
        let (status, answer) = api.post(path, body).await;
        assert_eq!(status, 422, "{path} {field} = {refused:?}: {answer}");
    }
    // A body is an object: an array is not an operation without a reason.
    let (status, answer) = api.post("/api/v1/freezes", json!([])).await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("JSON object"),
        "{answer}"
    );
    // `null` is "not given" for every optional field, variables included.
    let body = json!({"strategy": "search/indexer", "environment": "prod", "variables": null, "service": null});
    let (status, answer) = api.post("/api/v1/judgements", body.clone()).await;
    assert_ne!(status, 422, "{answer}");
    let (status, answer) = api.post("/api/v1/analyses", body).await;
    assert_eq!(status, 202, "{answer}");
    let start = &document["paths"]["/api/v1/analyses"]["post"]["parameters"][0];
    let key = regex::Regex::new(start["schema"]["pattern"].as_str().unwrap()).unwrap();
    assert!(key.is_match("ci-run-42") && !key.is_match("ü") && !key.is_match(&"k".repeat(256)));
    assert!(!key.is_match("a\tb"));
    let tabbed = Client::new()
        .post(format!("{}/api/v1/analyses", api.url))
        .header("Idempotency-Key", "a\tb")
        .json(&json!({"strategy": "search/indexer", "environment": "prod"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        tabbed.status(),
        422,
        "a key the document excludes is refused"
    );
    let judge = &document["paths"]["/api/v1/judgements"]["post"]["responses"];
    assert!(
        judge["415"].is_object() && judge["413"].is_object(),
        "{judge}"
    );
}
