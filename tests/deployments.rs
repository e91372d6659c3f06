//! Deployments made outside canaryd, over HTTP against a real server with an auth file:
//! seed 001's history reproduced through `POST /api/v1/deployments`, the history merged
//! with canaryd's own analyses, what runs where now, how two releases differ, and every
//! refusal with its reason and nothing stored.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::teams::{TeamServer, shop_and_bank_strategies};
use support::*;

/// Tokens `<name>-secret`: shop-ci, shop-operator (team shop), bank-ci (team bank).
const TOKENS: [(&str, &str, &str); 3] = [
    ("shop-ci", "shop", "ci"),
    ("shop-operator", "shop", "operator"),
    ("bank-ci", "bank", "ci"),
];

struct Server(TeamServer);

impl std::ops::Deref for Server {
    type Target = TeamServer;
    fn deref(&self) -> &TeamServer {
        &self.0
    }
}

impl Server {
    /// canaryd with shop/web (service `web`) and bank/ledger (service `ledger`).
    async fn start() -> Self {
        Self(TeamServer::start(shop_and_bank_strategies(), &TOKENS).await)
    }

    /// Records `body` as shop-ci and returns the stored record.
    async fn record(&self, body: Value) -> Value {
        let (status, answer) = self.post("shop-ci", "/api/v1/deployments", body).await;
        assert_eq!(status, 201, "{answer}");
        answer
    }

    /// An analysis of shop/web brought to `operation`'s end by shop-operator.
    async fn analysis(&self, environment: &str, tag: &str, operation: &str) -> Value {
        let start = json!({"strategy": "shop/web", "environment": environment, "imageTag": tag});
        let (status, started) = self.post("shop-operator", "/api/v1/analyses", start).await;
        assert_eq!(status, 202, "{started}");
        let id = started["id"].as_str().unwrap().to_string();
        let path = format!("/api/v1/analyses/{id}");
        wait_for("the analysis to run", Duration::from_secs(20), || async {
            let (_, analysis) = self.get("shop-operator", &path).await;
            (analysis["status"] == "RUNNING").then_some(())
        })
        .await;
        let reason = json!({"reason": "release review"});
        let (status, answer) = self
            .post("shop-operator", &format!("{path}/{operation}"), reason)
            .await;
        assert_eq!(status, 200, "{answer}");
        wait_for("the verdict", Duration::from_secs(20), || async {
            let (_, analysis) = self.get("shop-operator", &path).await;
            analysis["verdict"].is_string().then_some(analysis)
        })
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_history_is_reproduced_through_recorded_deployments() {
    let server = Server::start().await;
    // Seed 001's example, oldest first, as a CD pipeline would record it on completion.
    let seed = json!([
        {"id": "uuid-1", "imageTag": "v2.1.0-abc1234", "gitCommit": "abc1234", "gitBranch": "main",
         "environment": "dev", "status": "DEPLOYED",
         "deployedAt": "2026-02-12T10:00:00Z", "completedAt": "2026-02-12T10:05:00Z"},
        {"id": "uuid-2", "imageTag": "v2.0.0-def5678", "gitCommit": "def5678", "gitBranch": "main",
         "environment": "dev", "status": "ROLLED_BACK",
         "deployedAt": "2026-02-11T14:00:00Z", "completedAt": "2026-02-11T14:08:00Z"}
    ]);
    let mut expected = Vec::new();
    for entry in seed.as_array().unwrap().iter().rev() {
        let mut body = entry.clone();
        body.as_object_mut().unwrap().remove("id");
        body["service"] = json!("web");
        let stored = server.record(body).await;
        assert_eq!(stored["team"], "shop");
        assert_eq!(stored["actor"], "shop-ci");
        let mut shown = entry.clone();
        shown["id"] = stored["id"].clone();
        expected.insert(0, shown);
    }
    let (status, history) = server
        .get(
            "shop-ci",
            "/api/v1/deployments/history?environment=dev&limit=10",
        )
        .await;
    assert_eq!(status, 200, "{history}");
    // Byte for byte the seed's answer, but for the ids canaryd gave.
    let normalise = |value: &Value| {
        let mut value = value.clone();
        for entry in value.as_array_mut().unwrap() {
            for at in ["deployedAt", "completedAt"] {
                let time: chrono::DateTime<chrono::Utc> =
                    entry[at].as_str().unwrap().parse().unwrap();
                entry[at] = json!(time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            }
        }
        value
    };
    assert_eq!(normalise(&history), Value::Array(expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_current_and_compare_cover_canaryd_and_recorded_releases() {
    let server = Server::start().await;
    let promoted = server.analysis("prod", "1.0.0", "promote").await;
    assert_eq!(promoted["status"], "DEPLOYED");
    let rolled_back = server.analysis("prod", "1.0.1", "rollback").await;
    assert_eq!(rolled_back["status"], "ROLLED_BACK");
    let analysis_id = promoted["id"].as_str().unwrap();

    // Only canaryd's promotion so far: prod runs 1.0.0, from the analysis.
    let (_, current) = server
        .get("shop-ci", "/api/v1/deployments/current?service=web")
        .await;
    assert_eq!(current["environments"][0]["imageTag"], "1.0.0", "{current}");
    assert_eq!(current["environments"][0]["source"], "analysis");
    assert_eq!(current["drift"], false);

    let hotfix = server
        .record(
            json!({"service": "web", "environment": "prod", "imageTag": "1.1.0",
                       "gitCommit": "abcdef1", "status": "DEPLOYED"}),
        )
        .await;
    server
        .record(json!({"service": "web", "environment": "prod", "imageTag": "1.2.0", "status": "FAILED"}))
        .await;
    server
        .record(json!({"service": "web", "environment": "staging", "imageTag": "1.3.0", "status": "DEPLOYED"}))
        .await;

    // The hotfix replaced canaryd's promotion in prod; the FAILED one replaced nothing.
    let (_, current) = server
        .get("shop-ci", "/api/v1/deployments/current?service=web")
        .await;
    let running: Vec<(String, String, String)> = current["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let field = |name: &str| e[name].as_str().unwrap().to_string();
            (field("environment"), field("imageTag"), field("source"))
        })
        .collect();
    let own =
        |e: &str, tag: &str, source: &str| (e.to_string(), tag.to_string(), source.to_string());
    assert_eq!(
        running,
        [
            own("prod", "1.1.0", "recorded"),
            own("staging", "1.3.0", "recorded")
        ]
    );
    assert_eq!(current["drift"], true);
    assert_eq!(current["images"], json!(["1.1.0", "1.3.0"]));

    // History: every change to prod, newest first, whoever made it.
    let (_, history) = server
        .get("shop-ci", "/api/v1/deployments/history?environment=prod")
        .await;
    let shown: Vec<(&str, &str)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["imageTag"].as_str().unwrap(),
                d["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("1.2.0", "FAILED"),
            ("1.1.0", "DEPLOYED"),
            ("1.0.1", "ROLLED_BACK"),
            ("1.0.0", "DEPLOYED")
        ]
    );

    // Compare canaryd's release with the pipeline's.
    let path = format!(
        "/api/v1/deployments/compare?from={analysis_id}&to={}",
        hotfix["id"].as_str().unwrap()
    );
    let (status, comparison) = server.get("shop-ci", &path).await;
    assert_eq!(status, 200, "{comparison}");
    assert_eq!(comparison["from"]["source"], "analysis");
    assert_eq!(comparison["from"]["strategy"], "shop/web");
    assert_eq!(comparison["from"]["actor"], "shop-operator");
    assert_eq!(
        comparison["from"]["strategySnapshot"]["steps"][0]["weight"],
        25
    );
    assert_eq!(comparison["from"]["variables"]["environment"], "prod");
    assert_eq!(comparison["to"]["source"], "recorded");
    assert_eq!(comparison["to"]["actor"], "shop-ci");
    let changed: Vec<&str> = comparison["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for field in [
        "imageTag",
        "gitCommit",
        "strategy",
        "strategySnapshot",
        "variables",
        "actor",
        "deployedAt",
    ] {
        assert!(changed.contains(&field), "{field} in {changed:?}");
    }
    for same in ["service", "environment", "status", "gitBranch"] {
        assert!(!changed.contains(&same), "{same} in {changed:?}");
    }
    let (_, itself) = server
        .get(
            "shop-ci",
            &format!("/api/v1/deployments/compare?from={analysis_id}&to={analysis_id}"),
        )
        .await;
    assert_eq!(itself["changed"], json!([]));
    let (status, missing) = server
        .get(
            "shop-ci",
            &format!("/api/v1/deployments/compare?from={analysis_id}&to=nope"),
        )
        .await;
    assert_eq!(status, 404, "{missing}");
    assert!(
        missing["message"].as_str().unwrap().contains("nope"),
        "{missing}"
    );

    // The metrics count the recorded ones, by team, environment and status.
    let metrics = reqwest::get(server.canaryd.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "canaryd_recorded_deployments_total{team=\"shop\",environment=\"prod\",status=\"DEPLOYED\"} 1",
        "canaryd_recorded_deployments_total{team=\"shop\",environment=\"prod\",status=\"FAILED\"} 1",
        "canaryd_recorded_deployment_duration_seconds_count{team=\"shop\",verdict=\"DEPLOYED\"} 2",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }

    // Another team sees none of it and may not compare it.
    let (_, theirs) = server
        .get("bank-ci", "/api/v1/deployments/current?service=web")
        .await;
    assert_eq!(theirs["environments"], json!([]), "{theirs}");
    let (_, their_history) = server
        .get("bank-ci", "/api/v1/deployments/history?environment=prod")
        .await;
    assert_eq!(their_history, json!([]));
    let (status, refused) = server.get("bank-ci", &path).await;
    assert_eq!(status, 403, "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_breaks_a_rule_is_refused_by_name_and_nothing_is_stored() {
    let server = Server::start().await;
    let good =
        json!({"service": "web", "environment": "dev", "imageTag": "1.0.0", "status": "DEPLOYED"});
    let with = |field: &str, value: Value| {
        let mut body = good.clone();
        body[field] = value;
        body
    };
    let refusals = [
        (
            with("service", json!("unknown")),
            "shop-ci",
            422,
            "no loaded strategy names service \"unknown\"",
        ),
        (
            with("service", json!("ledger")),
            "shop-ci",
            403,
            "team bank",
        ),
        (
            with("status", json!("CANCELLED")),
            "shop-ci",
            422,
            "status: one of PENDING, DEPLOYED, FAILED, ROLLED_BACK",
        ),
        (
            with("environment", json!("prod east")),
            "shop-ci",
            422,
            "environment:",
        ),
        (
            with("gitCommit", json!("not-hex")),
            "shop-ci",
            422,
            "gitCommit:",
        ),
        (
            with("deployedAt", json!("2999-01-01T00:00:00Z")),
            "shop-ci",
            422,
            "deployedAt: later than canaryd's clock",
        ),
        (
            with("completedAt", json!("2026-01-01T00:00:00Z"))
                .as_object()
                .cloned()
                .map(|mut b| {
                    b.insert("deployedAt".into(), json!("2026-01-02T00:00:00Z"));
                    Value::Object(b)
                })
                .unwrap(),
            "shop-ci",
            422,
            "completedAt: before deployedAt",
        ),
        (
            json!({"service": "web", "environment": "dev", "imageTag": "1.0.0", "status": "PENDING",
                   "completedAt": "2026-01-01T00:00:00Z"}),
            "shop-ci",
            422,
            "a PENDING deployment has not completed",
        ),
        (
            with("image_tag", json!("1.0.0")),
            "shop-ci",
            422,
            "unknown field `image_tag`",
        ),
        (good.clone(), "wrong", 401, "not valid"),
    ];
    for (body, token, status, message) in refusals {
        let (got, answer) = server
            .post(token, "/api/v1/deployments", body.clone())
            .await;
        assert_eq!(got, status, "{body}: {answer}");
        let text = answer["message"].as_str().unwrap_or_default();
        assert!(
            text.contains(message),
            "{body}: {message:?} not in {text:?}"
        );
    }
    let (_, history) = server
        .get("shop-ci", "/api/v1/deployments/history?environment=dev")
        .await;
    assert_eq!(history, json!([]), "a refused record is never stored");
    // The same body with a token of the service's team is taken.
    let (status, _) = server
        .post(
            "bank-ci",
            "/api/v1/deployments",
            with("service", json!("ledger")),
        )
        .await;
    assert_eq!(status, 201);
}
