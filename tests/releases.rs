//! Emergency releases over HTTP against a real server with an auth file: a rollback to
//! the last known-good release, the refusal of FAILED and ROLLED_BACK targets, a roll
//! forward, the notification the platform acts on, and the block that holds new
//! analyses of the scope until someone lifts it with a reason.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use support::teams::{TeamServer, shop_and_bank_strategies};
use support::*;

const TOKENS: [(&str, &str, &str); 3] = [
    ("shop-ci", "shop", "ci"),
    ("shop-operator", "shop", "operator"),
    ("bank-operator", "bank", "operator"),
];

/// Collects what canaryd notifies.
async fn receiver() -> (Arc<Mutex<Vec<Value>>>, String) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |State(received): State<Arc<Mutex<Vec<Value>>>>, Json(body): Json<Value>| async move {
                    received.lock().unwrap().push(body);
                },
            ),
        )
        .with_state(Arc::clone(&received));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (received, url)
}

/// shop/web notifying `url`, with prod's history: v1 and v2 DEPLOYED, then v3
/// ROLLED_BACK and v4 FAILED (recorded by the pipeline).
async fn server(url: &str) -> TeamServer {
    let strategies = shop_and_bank_strategies();
    let web = strategies.path().join("shop/web.yaml");
    let text = std::fs::read_to_string(&web).unwrap()
        + &format!(
            "  notifications:\n    - url: {url}\n      format: json\n      on: [deployed]\n"
        );
    std::fs::write(&web, text).unwrap();
    let server = TeamServer::start(strategies, &TOKENS).await;
    let history = [
        ("v1", "DEPLOYED", "10:00"),
        ("v2", "DEPLOYED", "11:00"),
        ("v3", "ROLLED_BACK", "12:00"),
        ("v4", "FAILED", "13:00"),
    ];
    for (tag, status, time) in history {
        let body = json!({"service": "web", "environment": "prod", "imageTag": tag, "status": status,
            "deployedAt": format!("2026-11-30T{time}:00Z"), "completedAt": format!("2026-11-30T{time}:30Z")});
        let (code, answer) = server.post("shop-ci", "/api/v1/deployments", body).await;
        assert_eq!(code, 201, "{answer}");
    }
    server
}

fn release(to: Option<&str>) -> Value {
    let mut body =
        json!({"strategy": "shop/web", "environment": "prod", "reason": "checkout errors"});
    if let Some(to) = to {
        body["to"] = json!(to);
    }
    body
}

async fn start(server: &TeamServer, environment: &str) -> String {
    let body = json!({"strategy": "shop/web", "environment": environment, "imageTag": "v5"});
    let (code, started) = server.post("shop-ci", "/api/v1/analyses", body).await;
    assert_eq!(code, 202, "{started}");
    started["id"].as_str().unwrap().to_string()
}

async fn status_of(server: &TeamServer, id: &str, status: &str) -> Value {
    wait_for(
        &format!("{id} {status}"),
        Duration::from_secs(20),
        || async {
            let (_, analysis) = server
                .get("shop-operator", &format!("/api/v1/analyses/{id}"))
                .await;
            (analysis["status"] == status).then_some(analysis)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_goes_to_the_last_known_good_release_and_never_to_a_failed_one() {
    let (received, url) = receiver().await;
    let server = server(&url).await;
    let path = "/api/v1/releases/rollback";
    for (to, status) in [("v3", "ROLLED_BACK"), ("v4", "FAILED")] {
        let (code, refused) = server.post("shop-operator", path, release(Some(to))).await;
        assert_eq!(code, 409, "{refused}");
        assert_eq!(refused["error"], "not_known_good");
        let message = refused["message"].as_str().unwrap();
        assert!(
            message.contains(&format!(
                "{to} is not a known-good release in prod: it ended {status}"
            )),
            "{message}"
        );
    }
    let (code, refused) = server
        .post("shop-operator", path, release(Some("v9")))
        .await;
    assert_eq!(code, 409, "never deployed there: {refused}");
    let (code, _) = server.post("shop-ci", path, release(None)).await;
    assert_eq!(code, 403, "a ci token may not roll back");
    let (code, _) = server.post("bank-operator", path, release(None)).await;
    assert_eq!(code, 403, "nor another team's operator");
    let (_, blocks) = server.get("shop-operator", "/api/v1/blocks").await;
    assert_eq!(blocks, json!([]), "no refusal set a block");

    let (code, done) = server.post("shop-operator", path, release(None)).await;
    assert_eq!(code, 201, "{done}");
    assert_eq!(
        (done["from"].as_str(), done["imageTag"].as_str()),
        (Some("v2"), Some("v1"))
    );
    assert_eq!(done["block"]["reason"], "checkout errors");
    assert_eq!(done["block"]["actor"], "shop-operator");
    let (_, current) = server
        .get("shop-ci", "/api/v1/deployments/current?service=web")
        .await;
    assert!(
        current.to_string().contains("\"v1\""),
        "prod runs v1 now: {current}"
    );
    let metrics = reqwest::get(server.canaryd.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counted =
        r#"canaryd_recorded_deployments_total{team="shop",environment="prod",status="DEPLOYED"} 3"#;
    assert!(
        metrics.contains(counted),
        "the rollback counts as a deployment: {metrics}"
    );
    let (_, history) = server
        .get("shop-ci", "/api/v1/deployments/history?environment=prod")
        .await;
    assert_eq!(history[0]["imageTag"], "v1", "{history}");

    let notice = wait_for(
        "the release notification",
        Duration::from_secs(10),
        || async { received.lock().unwrap().first().cloned() },
    )
    .await;
    assert_eq!(notice["event"], "releaseRolledBack");
    assert_eq!(
        (notice["from"].as_str(), notice["imageTag"].as_str()),
        (Some("v2"), Some("v1"))
    );
    assert_eq!(notice["blockId"], done["blockId"]);

    // Forward again to v2, which was DEPLOYED; not to what runs now, and not without a target.
    let forward = "/api/v1/releases/rollforward";
    let (code, _) = server.post("shop-operator", forward, release(None)).await;
    assert_eq!(code, 422);
    let (code, refused) = server
        .post("shop-operator", forward, release(Some("v1")))
        .await;
    assert_eq!(
        (code, refused["error"].as_str()),
        (409, Some("already_running")),
        "{refused}"
    );
    let (code, done) = server
        .post("shop-operator", forward, release(Some("v2")))
        .await;
    assert_eq!(code, 201, "{done}");
    assert_eq!(done["block"]["cause"], "rollforward");
    let (_, blocks) = server.get("shop-operator", "/api/v1/blocks").await;
    assert_eq!(blocks.as_array().unwrap().len(), 2, "{blocks}");
    let (_, theirs) = server.get("bank-operator", "/api/v1/blocks").await;
    assert_eq!(theirs, json!([]), "another team sees none");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_holds_new_analyses_of_its_scope_until_it_is_lifted() {
    let (_received, url) = receiver().await;
    let server = server(&url).await;
    let (code, done) = server
        .post("shop-operator", "/api/v1/releases/rollback", release(None))
        .await;
    assert_eq!(code, 201, "{done}");
    let block = done["blockId"].as_str().unwrap().to_string();

    let held = start(&server, "prod").await;
    let elsewhere = start(&server, "staging").await;
    status_of(&server, &elsewhere, "RUNNING").await;
    let waiting = status_of(&server, &held, "PENDING").await;
    let reason = waiting["reason"].as_str().unwrap();
    assert!(
        reason.contains("blocked after emergency rollback to v1"),
        "{reason}"
    );
    assert!(reason.contains(&block), "{reason}");

    // While an analysis is under way in the scope, no release may change it.
    let (code, refused) = server
        .post(
            "shop-operator",
            "/api/v1/releases/rollforward",
            release(Some("v2")),
        )
        .await;
    assert_eq!(
        (code, refused["error"].as_str()),
        (409, Some("analysis_active")),
        "{refused}"
    );

    let lift = |reason: &str| format!("/api/v1/blocks/{block}?reason={reason}");
    let delete = |token: &'static str, path: String| {
        let client = reqwest::Client::new();
        let url = server.canaryd.url(&path);
        async move {
            client
                .delete(url)
                .bearer_auth(format!("{token}-secret"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        delete("shop-operator", format!("/api/v1/blocks/{block}")).await,
        422,
        "a reason is needed"
    );
    assert_eq!(delete("shop-ci", lift("fixed")).await, 403);
    assert_eq!(delete("bank-operator", lift("fixed")).await, 403);
    assert_eq!(
        server
            .get("shop-operator", &format!("/api/v1/analyses/{held}"))
            .await
            .1["status"],
        "PENDING"
    );
    assert_eq!(delete("shop-operator", lift("checkout%20fixed")).await, 200);
    assert_eq!(
        delete("shop-operator", lift("again")).await,
        404,
        "lifted once"
    );
    status_of(&server, &held, "RUNNING").await;
    let (_, blocks) = server.get("shop-operator", "/api/v1/blocks").await;
    assert_eq!(blocks, json!([]));
}
