//! The Argo Rollouts `AnalysisTemplate` in `deploy/argo-rollouts/`, played as Argo's
//! `web` metric provider plays it: arguments substituted, the request sent as the
//! template configures it to the real server, the result taken at `jsonPath`, and
//! `successCondition` / `failureCondition` evaluated on it. Real Prometheus and demo
//! service; a healthy canary succeeds, a failing one fails.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use canaryd::adapters::notify::WebhookSettings;
use canaryd::adapters::prometheus::PrometheusSettings;
use canaryd::auth::Tokens;
use canaryd::engine::EngineSettings;
use canaryd::server::{Settings, assemble};
use serde_json::Value;
use sha2::{Digest, Sha256};
use support::*;

const TOKEN: &str = "e2e-ci-token";

/// Replaces every `{{args.NAME}}` in every string of `value`.
fn substitute(value: &mut Value, args: &BTreeMap<&str, String>) {
    match value {
        Value::String(text) => {
            for (name, arg) in args {
                *text = text.replace(&format!("{{{{args.{name}}}}}"), arg);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| substitute(v, args)),
        Value::Object(fields) => fields.values_mut().for_each(|v| substitute(v, args)),
        _ => {}
    }
}

/// `{$.a.b}` → the value at a.b (Argo's default `{$}` is the whole body).
fn at_json_path<'a>(body: &'a Value, path: &str) -> &'a Value {
    let inner = path
        .strip_prefix("{$")
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or_else(|| panic!("jsonPath {path:?} is not of the form {{$.field}}"));
    inner
        .split('.')
        .filter(|part| !part.is_empty())
        .fold(body, |value, part| &value[part])
}

/// Evaluates a condition of the form `result == "LITERAL"`, the only form the
/// template uses; any other form fails the test, so the template cannot drift from it.
fn holds(condition: &str, result: &Value) -> bool {
    let literal = condition
        .strip_prefix("result == \"")
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or_else(|| panic!("condition {condition:?} is not `result == \"…\"`"));
    result.as_str() == Some(literal)
}

async fn measure(metric: &Value, args: &BTreeMap<&str, String>) -> (bool, bool) {
    let mut web = metric["provider"]["web"].clone();
    substitute(&mut web, args);
    assert_eq!(web["method"], "POST");
    let mut request = reqwest::Client::new().post(web["url"].as_str().unwrap());
    for header in web["headers"].as_array().unwrap() {
        request = request.header(
            header["key"].as_str().unwrap(),
            header["value"].as_str().unwrap(),
        );
    }
    let timeout = Duration::from_secs(web["timeoutSeconds"].as_u64().unwrap());
    let response = request
        .timeout(timeout)
        .body(web["jsonBody"].to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    let result = at_json_path(&body, web["jsonPath"].as_str().unwrap_or("{$}"));
    (
        holds(metric["successCondition"].as_str().unwrap(), result),
        holds(metric["failureCondition"].as_str().unwrap(), result),
    )
}

async fn server(prometheus: &str, dir: &tempfile::TempDir) -> String {
    let root = dir.path().join("strategies");
    std::fs::create_dir_all(root.join("e2e")).unwrap();
    std::fs::write(
        root.join("e2e/demo.yaml"),
        "apiVersion: canaryd/v1\nkind: Strategy\nmetadata:\n  name: demo\n  team: e2e\nspec:\n  service: demo\n  router:\n    type: none\n  \
         interval: 5s\n  steps:\n    - weight: 100\n  metrics:\n    - name: error-rate\n      template: http-error-rate\n      max: 0.05\n",
    )
    .unwrap();
    let hash: String = Sha256::digest(TOKEN.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let auth = dir.path().join("auth.yaml");
    std::fs::write(
        &auth,
        format!("tokens:\n  - name: e2e-ci\n    team: e2e\n    role: ci\n    sha256: {hash}\n"),
    )
    .unwrap();
    let loaded = canaryd::strategy_files::load_dir(&root);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let assembled = assemble(Settings {
        strategies: loaded.strategies,
        database_url: "memory:".into(),
        prometheus: PrometheusSettings::new(prometheus),
        auth: Some(Tokens::load(&auth).unwrap()),
        engine: EngineSettings::default(),
        webhooks: WebhookSettings::default(),
        routers: None,
        cluster: canaryd::adapters::kube::Cluster::none("no cluster in this test"),
    })
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, assembled.app).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn argo_rollouts_web_metric_succeeds_on_a_healthy_canary_and_fails_on_a_bad_one() {
    let stable = DemoInstance::start("stable", 0.0, 2).await;
    let canary = DemoInstance::start("canary", 0.0, 2).await;
    let prometheus = PrometheusServer::start(&[stable.target(), canary.target()]).await;
    let _load = [
        Load::start(format!("http://{}/", stable.target()), 50),
        Load::start(format!("http://{}/", canary.target()), 50),
    ];
    let dir = tempfile::tempdir().unwrap();
    let url = server(&prometheus.url(), &dir).await;

    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/argo-rollouts/analysis-template.yaml"
    );
    let template: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(template["kind"], "AnalysisTemplate");
    let metric = &template["spec"]["metrics"][0];
    let args = BTreeMap::from([
        ("strategy", "e2e/demo".to_string()),
        ("service", "demo".to_string()),
        ("environment", "test".to_string()),
        ("canaryd-url", url),
        ("canaryd-token", TOKEN.to_string()),
    ]);

    let healthy = wait_for(
        "a successful measurement",
        Duration::from_secs(30),
        || async {
            let (success, failure) = measure(metric, &args).await;
            success.then_some(failure)
        },
    )
    .await;
    assert!(!healthy, "success and failure at once");

    canary.set_behaviour(0.5, 2).await;
    wait_for("a failed measurement", Duration::from_secs(30), || async {
        let (success, failure) = measure(metric, &args).await;
        assert!(!(success && failure));
        failure.then_some(())
    })
    .await;
}
