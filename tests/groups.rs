//! Deployment groups over HTTP against a real server with an auth file: seed 002's rules
//! (FINALIZED only when every member is terminal, cancel only while all are RUNNING,
//! rollback refused while FINALIZING), all-or-none starts, and team scoping.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::teams::{TeamServer, shop_and_bank_strategies};
use support::*;

const TOKENS: [(&str, &str, &str); 4] = [
    ("shop-ci", "shop", "ci"),
    ("shop-operator", "shop", "operator"),
    ("bank-operator", "bank", "operator"),
    ("admin", "*", "admin"),
];

fn group_of(environments: &[&str]) -> Value {
    let releases: Vec<Value> = environments
        .iter()
        .map(|environment| json!({"strategy": "shop/web", "environment": environment}))
        .collect();
    json!({"name": "spring release", "releases": releases, "imageTag": "v2.1.0-abc1234"})
}

/// Starts a group as shop-ci and waits until every member is RUNNING.
async fn start_running(server: &TeamServer, body: Value) -> Value {
    let (status, group) = server.post("shop-ci", "/api/v1/groups", body).await;
    assert_eq!(status, 202, "{group}");
    let path = group["statusUrl"].as_str().unwrap().to_string();
    wait_for("every member to run", Duration::from_secs(20), || async {
        let (_, group) = server.get("shop-ci", &path).await;
        let members = group["members"].as_array()?.clone();
        members
            .iter()
            .all(|m| m["status"] == "RUNNING")
            .then_some(group)
    })
    .await
}

fn member(group: &Value, index: usize) -> String {
    group["members"][index]["id"].as_str().unwrap().to_string()
}

async fn operate(server: &TeamServer, id: &str, operation: &str) -> Value {
    let path = format!("/api/v1/analyses/{id}/{operation}");
    let (status, answer) = server
        .post("shop-operator", &path, json!({"reason": "by hand"}))
        .await;
    assert_eq!(status, 200, "{answer}");
    answer
}

async fn wait_member(server: &TeamServer, group: &str, index: usize, status: &str) -> Value {
    let path = format!("/api/v1/groups/{group}");
    wait_for(
        &format!("member {index} {status}"),
        Duration::from_secs(20),
        || async {
            let (_, group) = server.get("shop-ci", &path).await;
            (group["members"][index]["status"] == status).then_some(group)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_is_finalized_only_when_every_member_is_terminal() {
    let server = TeamServer::start(shop_and_bank_strategies(), &TOKENS).await;
    let group = start_running(&server, group_of(&["eu-west", "us-east", "ap-south"])).await;
    let id = group["id"].as_str().unwrap().to_string();
    assert_eq!(group["status"], "RUNNING");
    assert_eq!(group["name"], "spring release");
    assert_eq!(group["createdBy"], "shop-ci");
    let environments: Vec<&str> = (0..3)
        .map(|i| group["members"][i]["environment"].as_str().unwrap())
        .collect();
    assert_eq!(
        environments,
        ["eu-west", "us-east", "ap-south"],
        "in request order"
    );

    operate(&server, &member(&group, 0), "promote").await;
    let after_one = wait_member(&server, &id, 0, "DEPLOYED").await;
    assert_eq!(after_one["status"], "RUNNING", "two members still run");
    operate(&server, &member(&group, 1), "rollback").await;
    let after_two = wait_member(&server, &id, 1, "ROLLED_BACK").await;
    assert_eq!(after_two["status"], "RUNNING", "one member still runs");
    operate(&server, &member(&group, 2), "promote").await;
    let done = wait_member(&server, &id, 2, "DEPLOYED").await;
    assert_eq!(done["status"], "FINALIZED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_is_refused_once_a_member_has_left_running() {
    let server = TeamServer::start(shop_and_bank_strategies(), &TOKENS).await;
    let reason = json!({"reason": "release called off"});

    // While every member runs, cancel ends them all, the reason in each audit trail.
    let all_running = start_running(&server, group_of(&["eu-west", "us-east"])).await;
    let path = format!("{}/cancel", all_running["statusUrl"].as_str().unwrap());
    let (status, ci) = server.post("shop-ci", &path, reason.clone()).await;
    assert_eq!(status, 403, "a ci token may not operate: {ci}");
    let (status, cancelled) = server.post("shop-operator", &path, reason.clone()).await;
    assert_eq!(status, 200, "{cancelled}");
    let group_id = all_running["id"].as_str().unwrap();
    for index in 0..2 {
        // Each member returns its traffic to stable first, then ends CANCELLED.
        let group = wait_member(&server, group_id, index, "CANCELLED").await;
        assert_eq!(group["members"][index]["verdict"], "CANCELLED", "{group}");
        let id = member(&all_running, index);
        let events = server
            .get("shop-operator", &format!("/api/v1/analyses/{id}/events"))
            .await
            .1;
        let trail = events.to_string();
        assert!(
            trail.contains("release called off") && trail.contains("shop-operator"),
            "{trail}"
        );
    }

    // Once one member is DEPLOYED, cancel is refused and changes nothing.
    let group = start_running(&server, group_of(&["eu-west", "us-east"])).await;
    let deployed = member(&group, 0);
    operate(&server, &deployed, "promote").await;
    wait_member(&server, group["id"].as_str().unwrap(), 0, "DEPLOYED").await;
    let path = format!("{}/cancel", group["statusUrl"].as_str().unwrap());
    let (status, refused) = server.post("shop-operator", &path, reason).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"], "not_allowed_in_status");
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("{deployed} is DEPLOYED")),
        "{message}"
    );
    let still = server
        .get("shop-ci", group["statusUrl"].as_str().unwrap())
        .await
        .1;
    assert_eq!(still["members"][1]["status"], "RUNNING", "{still}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_starts_all_members_or_none_within_the_callers_teams() {
    let server = TeamServer::start(shop_and_bank_strategies(), &TOKENS).await;
    let mut mixed = group_of(&["eu-west"]);
    mixed["releases"]
        .as_array_mut()
        .unwrap()
        .push(json!({"strategy": "bank/ledger", "environment": "eu-west"}));
    let (status, answer) = server.post("shop-ci", "/api/v1/groups", mixed).await;
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .starts_with("releases[1]:"),
        "{answer}"
    );

    let mut unknown = group_of(&["eu-west"]);
    unknown["releases"]
        .as_array_mut()
        .unwrap()
        .push(json!({"strategy": "shop/nope", "environment": "eu-west"}));
    let (status, answer) = server.post("shop-ci", "/api/v1/groups", unknown).await;
    assert_eq!(status, 404, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("releases[1]"),
        "{answer}"
    );

    let (status, answer) = server
        .post(
            "shop-ci",
            "/api/v1/groups",
            group_of(&["eu-west", "eu-west"]),
        )
        .await;
    assert_eq!(status, 422, "one route twice: {answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("releases[0] already drives"),
        "{answer}"
    );

    let (status, answer) = server
        .post("shop-ci", "/api/v1/groups", group_of(&[]))
        .await;
    assert_eq!(status, 422, "{answer}");

    let (_, listed) = server.get("admin", "/api/v1/analyses").await;
    assert_eq!(
        listed,
        json!([]),
        "no refused group left an analysis behind"
    );

    // Another team's token can neither read nor operate a shop group.
    let group = start_running(&server, group_of(&["eu-west"])).await;
    let path = group["statusUrl"].as_str().unwrap();
    assert_eq!(server.get("bank-operator", path).await.0, 403);
    let (status, _) = server
        .post("bank-operator", &format!("{path}/rollback"), json!({}))
        .await;
    assert_eq!(status, 403);
    assert_eq!(server.get("admin", path).await.0, 200);
    assert_eq!(server.get("admin", "/api/v1/groups/nope").await.0, 404);
}

/// shop/web (router none) and shop/edge, whose HAProxy Runtime API is reached through
/// a proxy the test can close.
fn web_and_edge(admin_address: &str) -> tempfile::TempDir {
    let strategies = shop_and_bank_strategies();
    let edge = std::fs::read_to_string(strategies.path().join("shop/web.yaml"))
        .unwrap()
        .replace("name: web", "name: edge")
        .replace("service: web", "service: edge")
        .replace(
            "    type: none\n",
            &format!(
                "    type: haproxy\n    haproxy:\n      address: {admin_address}\n      backend: demo\n      stableServer: stable\n      canaryServer: canary\n"
            ),
        );
    std::fs::write(strategies.path().join("shop/edge.yaml"), edge).unwrap();
    strategies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_is_refused_while_the_group_is_finalizing() {
    let haproxy = HaproxyServer::start(free_port(), free_port()).await;
    let proxy = SwitchableProxy::start(haproxy.admin_port).await;
    let strategies = web_and_edge(&format!("127.0.0.1:{}", proxy.port));
    let server = TeamServer::start(strategies, &TOKENS).await;
    let body = json!({"releases": [
        {"strategy": "shop/web", "environment": "eu-west"},
        {"strategy": "shop/edge", "environment": "eu-west"}], "imageTag": "v3"});
    let group = start_running(&server, body).await;
    let id = group["id"].as_str().unwrap().to_string();
    wait_for("edge at 25%", Duration::from_secs(20), || async {
        (haproxy.weights() == (75, 25)).then_some(())
    })
    .await;

    operate(&server, &member(&group, 0), "promote").await;
    wait_member(&server, &id, 0, "DEPLOYED").await;
    // The Runtime API stops answering: edge's promotion is retried until it does.
    proxy.set_open(false);
    operate(&server, &member(&group, 1), "promote").await;
    let finalizing = wait_for("FINALIZING", Duration::from_secs(20), || async {
        let (_, group) = server.get("shop-ci", &format!("/api/v1/groups/{id}")).await;
        (group["status"] == "FINALIZING").then_some(group)
    })
    .await;
    assert_eq!(
        finalizing["members"][1]["status"], "PROMOTING",
        "{finalizing}"
    );

    let path = format!("/api/v1/groups/{id}/rollback");
    let (status, refused) = server
        .post("shop-operator", &path, json!({"reason": "too late"}))
        .await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("FINALIZING"),
        "{refused}"
    );

    proxy.set_open(true);
    let done = wait_member(&server, &id, 1, "DEPLOYED").await;
    assert_eq!(done["status"], "FINALIZED");
    assert_eq!(
        haproxy.weights(),
        (0, 100),
        "the promotion went through, not a rollback"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_of_a_running_group_rolls_back_every_member_still_under_way() {
    let server = TeamServer::start(shop_and_bank_strategies(), &TOKENS).await;
    let group = start_running(&server, group_of(&["eu-west", "us-east", "ap-south"])).await;
    let id = group["id"].as_str().unwrap().to_string();
    operate(&server, &member(&group, 0), "promote").await;
    wait_member(&server, &id, 0, "DEPLOYED").await;
    operate(&server, &member(&group, 1), "pause").await;

    let path = format!("/api/v1/groups/{id}/rollback");
    let (status, rolled) = server
        .post("shop-operator", &path, json!({"reason": "errors in eu"}))
        .await;
    assert_eq!(status, 200, "{rolled}");
    let done = wait_for("FINALIZED", Duration::from_secs(20), || async {
        let (_, group) = server.get("shop-ci", &format!("/api/v1/groups/{id}")).await;
        (group["status"] == "FINALIZED").then_some(group)
    })
    .await;
    let statuses: Vec<&str> = (0..3)
        .map(|i| done["members"][i]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["DEPLOYED", "ROLLED_BACK", "ROLLED_BACK"],
        "{done}"
    );
    assert_eq!(done["status"], "FINALIZED");
    assert!(
        done["members"][1]["reason"]
            .as_str()
            .unwrap()
            .contains("errors in eu"),
        "{done}"
    );
}
