//! The canary workload against the test API server and its emulated Deployment
//! controller, through the canaryd binary: deploy, promote, fail to come up, refuse
//! what cannot work, and resume after a kill -9.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::kube_api::controller::Fate;
use support::kube_api::*;
use support::*;
use tempfile::TempDir;

use objects::{IMAGE, labels, permissions, service};

const NEW_IMAGE: &str = "registry.example:5000/shop/web:2.0.0";

fn strategies(deadline: &str) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("shop")).unwrap();
    let workload = objects::workload_block(deadline);
    let text = objects::strategy("shop", "web", objects::GATEWAY_ROUTER, &workload, "1h");
    std::fs::write(dir.path().join("shop/web.yaml"), text).unwrap();
    dir
}

fn objects() -> Vec<Value> {
    let mut objects = objects::workload();
    objects.push(objects::http_route());
    objects
}

struct Cluster {
    api: KubeApi,
    canaryd: Canaryd,
    strategies: TempDir,
    logs: TempDir,
}

impl Cluster {
    async fn start(objects: Vec<Value>, deadline: &str) -> Self {
        let api = KubeApi::start(&[GATEWAY_CRD]).await;
        api.grant_only(&permissions());
        for object in objects {
            api.apply(object);
        }
        let (strategies, logs) = (strategies(deadline), tempfile::tempdir().unwrap());
        let canaryd = launch(&api, &strategies, &logs).await;
        Self {
            api,
            canaryd,
            strategies,
            logs,
        }
    }

    fn deployment(&self, name: &str) -> Option<Value> {
        self.api.object("apps", "deployments", "shop", name)
    }

    fn image(&self, name: &str) -> String {
        let deployment = self.deployment(name).unwrap();
        let containers = deployment["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(
            containers[0]["image"], "envoy:1.30",
            "only the named container changes"
        );
        containers[1]["image"].as_str().unwrap().to_string()
    }

    fn route_weight(&self) -> u64 {
        let route = self
            .api
            .object("gateway.networking.k8s.io", "httproutes", "shop", "web")
            .unwrap();
        route["spec"]["rules"][0]["backendRefs"][1]["weight"]
            .as_u64()
            .unwrap()
    }
}

async fn launch(api: &KubeApi, strategies: &TempDir, logs: &TempDir) -> Canaryd {
    let kubeconfig = api.kubeconfig(logs.path());
    Canaryd::start_in_cluster(
        strategies.path(),
        "http://127.0.0.1:9",
        &kubeconfig,
        logs.path(),
    )
    .await
}

fn webhook() -> Value {
    json!({"strategy": "shop/web", "environment": "prod", "imageTag": "2.0.0"})
}

async fn at_weight(canaryd: &Canaryd, id: &str, weight: u64) {
    wait_for(
        &format!("analysis {id} at {weight}%"),
        Duration::from_secs(20),
        || async {
            let a = canaryd.analysis(id).await;
            (a["canaryWeight"] == weight && a["targetWeight"] == weight && a["status"] == "RUNNING")
                .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canary_is_deployed_before_traffic_and_promotion_goes_through_the_stable_deployment() {
    let c = Cluster::start(objects(), "1m").await;
    let id = c.canaryd.start_analysis(webhook()).await;
    at_weight(&c.canaryd, &id, 10).await;
    let canary = c.deployment("web-canary").expect("the canary Deployment");
    assert_eq!(
        c.image("web-canary"),
        NEW_IMAGE,
        "the tag changed, the repository kept"
    );
    assert_eq!(canary["spec"]["replicas"], 2, "the stable's replica count");
    assert_eq!(canary["spec"]["selector"]["matchLabels"], labels("canary"));
    assert_eq!(
        canary["spec"]["template"]["metadata"]["labels"],
        labels("canary")
    );
    assert_eq!(
        canary["status"]["availableReplicas"], 2,
        "shifted only once available"
    );
    assert_eq!(c.route_weight(), 10);
    assert_eq!(
        c.image("web"),
        IMAGE,
        "the stable is untouched until promotion"
    );

    let (code, answer) = c
        .canaryd
        .post(
            &format!("/api/v1/analyses/{id}/promote"),
            json!({"reason": "ship it"}),
        )
        .await;
    assert_eq!(code, 200, "{answer}");
    let analysis = c.canaryd.wait_terminal(&id, Duration::from_secs(20)).await;
    assert_eq!(analysis["status"], "DEPLOYED", "{analysis:#}");
    assert_eq!(
        c.image("web"),
        NEW_IMAGE,
        "the stable Deployment runs the new image"
    );
    let stable = c.deployment("web").unwrap();
    assert_eq!(stable["status"]["updatedReplicas"], 2, "and has rolled out");
    assert_eq!(
        c.route_weight(),
        0,
        "all traffic back on the stable Service"
    );
    assert_eq!(
        c.deployment("web-canary").unwrap()["spec"]["replicas"],
        0,
        "the canary is scaled to 0"
    );
}

/// An analysis whose canary pods meet `fate` ends FAILED naming the pods' state, with
/// no traffic ever sent to the canary and the canary scaled to 0.
async fn never_available(fate: Fate, reason: &str) {
    let c = Cluster::start(objects(), "2s").await;
    c.api.pods_of_image(NEW_IMAGE, fate);
    let id = c.canaryd.start_analysis(webhook()).await;
    let analysis = c.canaryd.wait_terminal(&id, Duration::from_secs(20)).await;
    assert_eq!(analysis["status"], "FAILED", "{analysis:#}");
    let said = analysis["reason"].as_str().unwrap();
    assert!(
        said.contains(reason) && said.contains("progress deadline"),
        "{said}"
    );
    assert_eq!(c.route_weight(), 0);
    assert!(
        c.api
            .requests()
            .iter()
            .filter(|r| r.path.contains("httproutes") && r.method == "PATCH")
            .all(|r| r.body["spec"]["rules"][0]["backendRefs"][1]["weight"] == 0),
        "the canary never took traffic"
    );
    assert_eq!(c.deployment("web-canary").unwrap()["spec"]["replicas"], 0);
    assert_eq!(c.image("web"), IMAGE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_in_crash_loop_back_off_fails_with_that_reason() {
    never_available(Fate::CrashLoop, "CrashLoopBackOff").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_whose_image_cannot_be_pulled_fails_with_that_reason() {
    never_available(Fate::ImagePull, "ImagePullBackOff").await;
}

async fn refused(
    objects: Vec<Value>,
    setup: impl FnOnce(&KubeApi),
    body: Value,
    error: &str,
    names: &[&str],
) {
    let c = Cluster::start(objects, "1m").await;
    setup(&c.api);
    let (code, answer) = c.canaryd.post("/api/v1/analyses", body).await;
    assert_eq!(
        (code, answer["error"].as_str().unwrap()),
        (422, error),
        "{answer}"
    );
    let message = answer["message"].as_str().unwrap();
    for name in names {
        assert!(message.contains(name), "{message:?} should name {name:?}");
    }
    assert_eq!(
        c.canaryd.get("/api/v1/analyses").await,
        json!([]),
        "nothing stored"
    );
    assert!(c.deployment("web-canary").is_none(), "nothing deployed");
    assert!(
        c.api.requests().iter().all(|r| r.method != "PATCH"),
        "nothing changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_work_is_refused_at_the_webhook_naming_the_object() {
    let mut open_stable = objects();
    open_stable[1] = service("web-stable", json!({"app": "web"}));
    refused(
        open_stable,
        |_| {},
        webhook(),
        "workload_invalid",
        &["Service shop/web-stable", "also selects the canary's pods"],
    )
    .await;

    let mut blind_canary = objects();
    blind_canary[2] = service("web-canary", labels("stable"));
    refused(
        blind_canary,
        |_| {},
        webhook(),
        "workload_invalid",
        &["Service shop/web-canary", "does not select"],
    )
    .await;

    let no_deployment = objects().into_iter().skip(1).collect();
    refused(
        no_deployment,
        |_| {},
        webhook(),
        "workload_not_found",
        &["Deployment shop/web not found"],
    )
    .await;

    let mut shared_selector = objects();
    shared_selector[0]["spec"]["selector"]["matchLabels"] = json!({"app": "web"});
    refused(
        shared_selector,
        |_| {},
        webhook(),
        "workload_invalid",
        &["Deployment shop/web's selector", "track: stable"],
    )
    .await;

    let forbid = |api: &KubeApi| api.revoke("create", "apps", "deployments");
    refused(
        objects(),
        forbid,
        webhook(),
        "workload_forbidden",
        &["create", "Deployment shop/web-canary", "deployments.apps"],
    )
    .await;

    let untagged = json!({"strategy": "shop/web", "environment": "prod"});
    refused(
        objects(),
        |_| {},
        untagged,
        "invalid_request",
        &["imageTag"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_kill_the_analysis_resumes_and_puts_a_deleted_canary_back() {
    let mut c = Cluster::start(objects(), "1m").await;
    let id = c.canaryd.start_analysis(webhook()).await;
    at_weight(&c.canaryd, &id, 10).await;
    c.canaryd.process.kill();
    // While canaryd is down, someone deletes the canary.
    c.api.delete("apps", "deployments", "shop", "web-canary");
    c.canaryd = launch(&c.api, &c.strategies, &c.logs).await;
    wait_for(
        "the canary Deployment to be back",
        Duration::from_secs(20),
        || async {
            c.deployment("web-canary")
                .filter(|d| d["status"]["availableReplicas"] == 2)
                .map(|_| ())
        },
    )
    .await;
    assert_eq!(c.image("web-canary"), NEW_IMAGE);
    assert_eq!(c.route_weight(), 10, "the route kept its step");
    let (code, _) = c
        .canaryd
        .post(
            &format!("/api/v1/analyses/{id}/promote"),
            json!({"reason": "resumed"}),
        )
        .await;
    assert_eq!(code, 200);
    let analysis = c.canaryd.wait_terminal(&id, Duration::from_secs(20)).await;
    assert_eq!(analysis["status"], "DEPLOYED", "{analysis:#}");
    assert_eq!(c.image("web"), NEW_IMAGE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_none_router_canaryd_deploys_and_promotes_and_moves_no_traffic() {
    let api = KubeApi::start(&[]).await;
    api.grant_only(&permissions());
    for object in objects::workload() {
        api.apply(object);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("shop")).unwrap();
    let text = objects::strategy(
        "shop",
        "web",
        "    type: none\n",
        &objects::workload_block("1m"),
        "1h",
    );
    std::fs::write(dir.path().join("shop/web.yaml"), text).unwrap();
    let logs = tempfile::tempdir().unwrap();
    let canaryd = launch(&api, &dir, &logs).await;
    let id = canaryd.start_analysis(webhook()).await;
    at_weight(&canaryd, &id, 10).await;
    let canary = api
        .object("apps", "deployments", "shop", "web-canary")
        .unwrap();
    assert_eq!(canary["status"]["availableReplicas"], 2);
    let (code, _) = canaryd
        .post(
            &format!("/api/v1/analyses/{id}/promote"),
            json!({"reason": "go"}),
        )
        .await;
    assert_eq!(code, 200);
    let analysis = canaryd.wait_terminal(&id, Duration::from_secs(20)).await;
    assert_eq!(analysis["status"], "DEPLOYED", "{analysis:#}");
    let stable = api.object("apps", "deployments", "shop", "web").unwrap();
    assert_eq!(
        stable["spec"]["template"]["spec"]["containers"][1]["image"],
        NEW_IMAGE
    );
    assert!(
        api.requests().iter().all(|r| !r.path.contains("services")),
        "no Services to check without a router"
    );
}
