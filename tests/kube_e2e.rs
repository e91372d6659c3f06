//! canaryd's main job on Kubernetes, one test per router type: real Prometheus scraping
//! demo instances that stand for the stable and canary pods, a data plane that splits
//! load as the emulated route object says, and the canaryd binary driving the test API
//! server with exactly the permissions its Role grants. A healthy canary walks every
//! step to DEPLOYED through the stable Deployment; a failing one is rolled back, its
//! weight 0 and its Deployment scaled to 0.

mod support;

use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};
use support::kube_api::mesh::Mesh;
use support::kube_api::*;
use support::*;
use tempfile::TempDir;

const TIMEOUT: Duration = Duration::from_secs(60);

struct Stack {
    api: KubeApi,
    canary: DemoInstance,
    canaryd: Canaryd,
    route: Value,
    _parts: (DemoInstance, PrometheusServer, Mesh, Load, TempDir, TempDir),
}

fn strategy(router: &str) -> String {
    let metrics = "  window: 4s\n  inconclusiveLimit: 2\n  metrics:\n    - name: error-rate\n      template: http-error-rate\n      max: 0.05\n    \
                   - name: p99-latency\n      template: http-latency-p99\n      max: 0.3\n";
    let workload = objects::workload_block("30s");
    format!(
        "apiVersion: canaryd/v1\nkind: Strategy\nmetadata:\n  name: web\n  team: shop\nspec:\n  service: web\n  namespace: shop\n  \
         router:\n{router}{workload}  interval: 2s\n  steps:\n    - weight: 20\n    - weight: 50\n    - weight: 100\n{metrics}"
    )
}

async fn stack(router: &str, crds: &[&str], route: Value) -> Stack {
    // Errors only where a test asks for them: any check passes on the healthy canary.
    let stable = DemoInstance::start_service("web", "stable", 0.0, 5).await;
    let canary = DemoInstance::start_service("web", "canary", 0.0, 5).await;
    let prometheus = PrometheusServer::start(&[stable.target(), canary.target()]).await;
    let api = KubeApi::start(crds).await;
    api.grant_only(&objects::permissions());
    for object in objects::workload().into_iter().chain([route.clone()]) {
        api.apply(object);
    }
    let (group, plural, name) = objects::location(&route);
    let reader = api.clone();
    let mesh = Mesh::start(stable.port, canary.port, move || {
        let object = reader.object(group, plural, "shop", name).unwrap();
        objects::canary_percent(&object) as u8
    })
    .await;
    let load = Load::start(mesh.url(), 100);
    let (strategies, logs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::create_dir_all(strategies.path().join("shop")).unwrap();
    std::fs::write(strategies.path().join("shop/web.yaml"), strategy(router)).unwrap();
    let kubeconfig = api.kubeconfig(logs.path());
    let canaryd = Canaryd::start_in_cluster(
        strategies.path(),
        &prometheus.url(),
        &kubeconfig,
        logs.path(),
    )
    .await;
    Stack {
        api,
        canary,
        canaryd,
        route,
        _parts: (stable, prometheus, mesh, load, strategies, logs),
    }
}

impl Stack {
    fn route_weight(&self) -> u64 {
        let (group, plural, name) = objects::location(&self.route);
        objects::canary_percent(&self.api.object(group, plural, "shop", name).unwrap())
    }

    fn deployment(&self, name: &str) -> Value {
        self.api
            .object("apps", "deployments", "shop", name)
            .unwrap()
    }

    fn image(&self, name: &str) -> Value {
        self.deployment(name)["spec"]["template"]["spec"]["containers"][1]["image"].clone()
    }

    /// Runs an analysis of `tag` to its end, noting each step's weight as the route
    /// object held it while the analysis ran at that step.
    async fn run(&self, tag: &str) -> (Value, Vec<u64>) {
        let body = json!({"strategy": "shop/web", "environment": "prod", "imageTag": tag});
        let id = self.canaryd.start_analysis(body).await;
        let seen = Mutex::new(Vec::new());
        let analysis = wait_for(&format!("analysis of {tag} to finish"), TIMEOUT, || async {
            let analysis = self.canaryd.analysis(&id).await;
            let settled = analysis["canaryWeight"] == analysis["targetWeight"];
            if settled && analysis["status"] == "RUNNING" {
                let expected = analysis["canaryWeight"].as_u64().unwrap();
                let held = self.route_weight();
                // The analysis may move on between the two reads; only a match counts.
                let mut seen = seen.lock().unwrap();
                if held == expected && expected > 0 && seen.last() != Some(&held) {
                    seen.push(held);
                }
            }
            analysis["verdict"].is_string().then_some(analysis)
        })
        .await;
        (analysis, seen.into_inner().unwrap())
    }
}

/// A healthy canary, then a failing one, through `router`.
async fn promotes_then_rolls_back(router: &str, crds: &[&str], route: Value) {
    let stack = stack(router, crds, route).await;
    let (analysis, seen) = stack.run("2.0.0").await;
    assert_eq!(analysis["status"], "DEPLOYED", "{analysis:#}");
    assert_eq!(
        seen,
        [20, 50, 100],
        "each step's weight in the route object"
    );
    assert_eq!(
        stack.image("web"),
        "registry.example:5000/shop/web:2.0.0",
        "the stable runs the new image"
    );
    assert_eq!(stack.deployment("web")["status"]["availableReplicas"], 2);
    assert_eq!(stack.route_weight(), 0, "all traffic on the stable Service");
    assert_eq!(stack.deployment("web-canary")["spec"]["replicas"], 0);
    let checks = analysis["checks"].as_array().unwrap();
    assert!(
        checks
            .iter()
            .any(|c| c["outcome"] == "PASS" && c["canaryWeight"] == 100),
        "judged at 100%"
    );

    stack.canary.set_behaviour(0.5, 5).await;
    let (analysis, _) = stack.run("2.1.0").await;
    assert_eq!(analysis["status"], "ROLLED_BACK", "{analysis:#}");
    assert!(
        analysis["reason"].as_str().unwrap().contains("error-rate"),
        "{}",
        analysis["reason"]
    );
    assert_eq!(stack.route_weight(), 0);
    assert_eq!(
        stack.deployment("web-canary")["spec"]["replicas"],
        0,
        "the canary is scaled to 0"
    );
    assert_eq!(
        stack.image("web-canary"),
        "registry.example:5000/shop/web:2.1.0"
    );
    assert_eq!(
        stack.image("web"),
        "registry.example:5000/shop/web:2.0.0",
        "the stable keeps the promoted image"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_api() {
    promotes_then_rolls_back(
        objects::GATEWAY_ROUTER,
        &[GATEWAY_CRD],
        objects::http_route(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio() {
    promotes_then_rolls_back(
        objects::ISTIO_ROUTER,
        &[ISTIO_CRD],
        objects::virtual_service(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smi() {
    let split = objects::traffic_split("split.smi-spec.io/v1alpha4");
    promotes_then_rolls_back(objects::SMI_ROUTER, &[SMI_CRD], split).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_ingress() {
    promotes_then_rolls_back(objects::NGINX_ROUTER, &[], objects::canary_ingress()).await;
}
