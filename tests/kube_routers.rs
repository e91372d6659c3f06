//! The four Kubernetes routers against the test API server, through the canaryd binary:
//! the weights land in the emulated objects, nobody else's edits are lost, and an
//! analysis that cannot drive its route is refused at the webhook with the object named.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::kube_api::*;
use support::*;
use tempfile::TempDir;

/// A strategy `shop/web` for `router` (its YAML block), one hour between checks, so the
/// first step's weight stays put.
fn strategies(router: &str) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("shop")).unwrap();
    let text = objects::strategy("shop", "web", router, "", "1h");
    std::fs::write(dir.path().join("shop/web.yaml"), text).unwrap();
    dir
}

const GATEWAY: &str = objects::GATEWAY_ROUTER;
use objects::http_route;

struct Cluster {
    api: KubeApi,
    canaryd: Canaryd,
    _dirs: (TempDir, TempDir),
}

async fn cluster(crds: &[&str], objects: Vec<Value>, router: &str) -> Cluster {
    let api = KubeApi::start(crds).await;
    for object in objects {
        api.apply(object);
    }
    let (strategies, logs) = (strategies(router), tempfile::tempdir().unwrap());
    let kubeconfig = api.kubeconfig(logs.path());
    // Prometheus is never asked: the first check is an hour away.
    let canaryd = Canaryd::start_in_cluster(
        strategies.path(),
        "http://127.0.0.1:9",
        &kubeconfig,
        logs.path(),
    )
    .await;
    Cluster {
        api,
        canaryd,
        _dirs: (strategies, logs),
    }
}

fn webhook() -> Value {
    json!({"strategy": "shop/web", "environment": "prod", "imageTag": "2.0.0"})
}

/// The canary's percent in rule 0 of an HTTPRoute.
fn route_weight(route: &Value) -> u64 {
    let refs = &route["spec"]["rules"][0]["backendRefs"];
    let (stable, canary) = (
        refs[0]["weight"].as_u64().unwrap(),
        refs[1]["weight"].as_u64().unwrap(),
    );
    assert_eq!(stable + canary, 100, "{refs}");
    canary
}

async fn settled(canaryd: &Canaryd, id: &str, weight: u64) -> Value {
    wait_for(
        &format!("analysis {id} to settle at {weight}%"),
        Duration::from_secs(20),
        || async {
            let analysis = canaryd.analysis(id).await;
            (analysis["canaryWeight"] == weight && analysis["targetWeight"] == weight)
                .then_some(analysis)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_api_weights_land_in_the_http_route_and_return_to_stable_on_abort() {
    let c = cluster(&[GATEWAY_CRD], vec![http_route()], GATEWAY).await;
    let id = c.canaryd.start_analysis(webhook()).await;
    settled(&c.canaryd, &id, 10).await;
    let route = c
        .api
        .object("gateway.networking.k8s.io", "httproutes", "shop", "web")
        .unwrap();
    assert_eq!(route_weight(&route), 10);
    assert_eq!(
        route["spec"]["rules"][0]["matches"][0]["path"]["value"], "/",
        "the rest of the rule is kept"
    );
    assert_eq!(
        route["metadata"]["annotations"]["canaryd.io/writer"],
        format!("{id}@1")
    );
    assert_eq!(route["metadata"]["generation"], 2, "one change to the spec");
    let patches: Vec<Logged> = c
        .api
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert!(!patches.is_empty());
    for patch in &patches {
        assert_eq!(patch.content_type, "application/merge-patch+json");
        assert!(
            patch.path.contains("fieldManager=canaryd"),
            "{}",
            patch.path
        );
        assert!(
            patch.body["metadata"]["resourceVersion"].is_string(),
            "every patch is guarded: {}",
            patch.body
        );
    }

    let (code, _) = c
        .canaryd
        .post(
            &format!("/api/v1/analyses/{id}/abort"),
            json!({"reason": "test"}),
        )
        .await;
    assert_eq!(code, 200);
    let analysis = c.canaryd.wait_terminal(&id, Duration::from_secs(20)).await;
    assert_eq!(analysis["status"], "CANCELLED");
    let route = c
        .api
        .object("gateway.networking.k8s.io", "httproutes", "shop", "web")
        .unwrap();
    assert_eq!(route_weight(&route), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_made_between_read_and_write_is_kept_and_the_weight_still_lands() {
    let api_route = http_route();
    let c = cluster(&[GATEWAY_CRD], vec![api_route], GATEWAY).await;
    // Someone adds a hostname after canaryd reads the route and before its patch lands.
    c.api.edit_before_next_patch(
        "gateway.networking.k8s.io",
        "httproutes",
        "shop",
        "web",
        |route| {
            route["spec"]["hostnames"] = json!(["shop.example.com"]);
        },
    );
    let id = c.canaryd.start_analysis(webhook()).await;
    settled(&c.canaryd, &id, 10).await;
    let route = c
        .api
        .object("gateway.networking.k8s.io", "httproutes", "shop", "web")
        .unwrap();
    assert_eq!(
        route["spec"]["hostnames"],
        json!(["shop.example.com"]),
        "the other edit survived"
    );
    assert_eq!(route_weight(&route), 10);
    let statuses: Vec<u16> = c
        .api
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.status)
        .collect();
    assert_eq!(
        statuses,
        [409, 200],
        "the stale patch was refused, then sent again from a fresh read"
    );
}

/// Sends the webhook, expects `code` and `error`, and checks nothing was stored.
async fn refused(c: &Cluster, error: &str, names: &[&str]) -> String {
    let (code, answer) = c.canaryd.post("/api/v1/analyses", webhook()).await;
    assert_eq!(
        (code, answer["error"].as_str().unwrap()),
        (422, error),
        "{answer}"
    );
    let message = answer["message"].as_str().unwrap().to_string();
    for name in names {
        assert!(message.contains(name), "{message:?} should name {name:?}");
    }
    let list = c.canaryd.get("/api/v1/analyses").await;
    assert_eq!(
        list.as_array().map(Vec::len),
        Some(0),
        "nothing stored: {list}"
    );
    assert!(
        c.api.requests().iter().all(|r| r.method != "PATCH"),
        "nothing written"
    );
    message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_route_a_missing_crd_rbac_and_a_missing_backend_are_refused_at_the_webhook() {
    let no_route = cluster(&[GATEWAY_CRD], vec![], GATEWAY).await;
    refused(
        &no_route,
        "route_not_found",
        &["HTTPRoute shop/web not found"],
    )
    .await;

    let no_crd = cluster(&[], vec![], GATEWAY).await;
    let message = refused(
        &no_crd,
        "route_not_found",
        &["HTTPRoute shop/web", "httproutes.gateway.networking.k8s.io"],
    )
    .await;
    assert!(message.contains("CRD"), "{message}");

    let forbidden = cluster(&[GATEWAY_CRD], vec![http_route()], GATEWAY).await;
    forbidden
        .api
        .revoke("patch", "gateway.networking.k8s.io", "httproutes");
    refused(
        &forbidden,
        "route_forbidden",
        &["patch", "HTTPRoute shop/web", "RBAC"],
    )
    .await;

    let mut only_stable = http_route();
    only_stable["spec"]["rules"][0]["backendRefs"] = json!([{"name": "web-stable", "port": 8080}]);
    let no_canary = cluster(&[GATEWAY_CRD], vec![only_stable], GATEWAY).await;
    refused(
        &no_canary,
        "route_invalid",
        &["HTTPRoute shop/web", "\"web-canary\"", "found: web-stable"],
    )
    .await;
}

/// A router of another type: its block, the CRDs it needs, and its object.
struct Case {
    router: &'static str,
    crds: &'static [&'static str],
    object: Value,
}

fn istio() -> Case {
    Case {
        router: objects::ISTIO_ROUTER,
        crds: &[ISTIO_CRD],
        object: objects::virtual_service(),
    }
}

fn smi(crd: &'static [&'static str], api_version: &str) -> Case {
    Case {
        router: objects::SMI_ROUTER,
        crds: crd,
        object: objects::traffic_split(api_version),
    }
}

fn nginx() -> Case {
    Case {
        router: objects::NGINX_ROUTER,
        crds: &[],
        object: objects::canary_ingress(),
    }
}

/// Step 1's weight lands in the object, and a promotion puts all traffic on the canary.
async fn drives(case: Case) {
    let c = cluster(case.crds, vec![case.object.clone()], case.router).await;
    let (group, plural, name) = objects::location(&case.object);
    let object = || c.api.object(group, plural, "shop", name).unwrap();
    let id = c.canaryd.start_analysis(webhook()).await;
    settled(&c.canaryd, &id, 10).await;
    assert_eq!(objects::canary_percent(&object()), 10, "{}", object());
    let kept = &object()["metadata"]["annotations"]["kubernetes.io/ingress.class"];
    assert!(
        case.object["kind"] != "Ingress" || *kept == "nginx",
        "other annotations are kept"
    );
    let (code, answer) = c
        .canaryd
        .post(
            &format!("/api/v1/analyses/{id}/promote"),
            json!({"reason": "test"}),
        )
        .await;
    assert_eq!(code, 200, "{answer}");
    let analysis = c.canaryd.wait_terminal(&id, Duration::from_secs(20)).await;
    assert_eq!(analysis["status"], "DEPLOYED", "{analysis:#}");
    assert_eq!(objects::canary_percent(&object()), 100);
    assert_eq!(
        object()["metadata"]["annotations"]["canaryd.io/writer"],
        format!("{id}@1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_weights_land_in_the_virtual_service_routes() {
    drives(istio()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smi_weights_land_in_the_traffic_split_backends() {
    drives(smi(&[SMI_CRD], "split.smi-spec.io/v1alpha4")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smi_falls_back_to_the_version_linkerd_serves() {
    drives(smi(&[LINKERD_SMI_CRD], "split.smi-spec.io/v1alpha2")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_canary_weights_land_in_the_canary_ingress_annotations() {
    drives(nginx()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adapters_use_every_permission_they_declare_and_no_other() {
    let api = KubeApi::start(&[GATEWAY_CRD, ISTIO_CRD, SMI_CRD]).await;
    api.grant_only(&objects::permissions());
    let mut all = objects::workload();
    all.extend([
        http_route(),
        objects::virtual_service(),
        objects::traffic_split("split.smi-spec.io/v1alpha4"),
        objects::canary_ingress(),
    ]);
    for object in all {
        api.apply(object);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("shop")).unwrap();
    let workload = objects::workload_block("1m");
    let routers = [
        ("gateway", GATEWAY, workload.as_str()),
        ("istio", objects::ISTIO_ROUTER, ""),
        ("smi", objects::SMI_ROUTER, ""),
        ("nginx", objects::NGINX_ROUTER, ""),
    ];
    for (name, router, extra) in routers {
        let text = objects::strategy("shop", name, router, extra, "1h");
        std::fs::write(dir.path().join(format!("shop/{name}.yaml")), text).unwrap();
    }
    let logs = tempfile::tempdir().unwrap();
    let kubeconfig = api.kubeconfig(logs.path());
    let canaryd =
        Canaryd::start_in_cluster(dir.path(), "http://127.0.0.1:9", &kubeconfig, logs.path()).await;
    for (name, _, _) in routers {
        let body =
            json!({"strategy": format!("shop/{name}"), "environment": "prod", "imageTag": "2.0.0"});
        let id = canaryd.start_analysis(body).await;
        settled(&canaryd, &id, 10).await;
        let (code, answer) = canaryd
            .post(
                &format!("/api/v1/analyses/{id}/promote"),
                json!({"reason": "all"}),
            )
            .await;
        assert_eq!(code, 200, "{answer}");
        let analysis = canaryd.wait_terminal(&id, Duration::from_secs(20)).await;
        assert_eq!(analysis["status"], "DEPLOYED", "{name}: {analysis:#}");
    }
    let refused: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.status == 403)
        .collect();
    assert!(
        refused.is_empty(),
        "nothing beyond the declared permissions: {refused:?}"
    );
    let used: std::collections::BTreeSet<(String, String, String)> = api
        .permissions_used()
        .into_iter()
        .filter(|(_, group, _)| group != "authorization.k8s.io")
        .collect();
    let declared = objects::permissions()
        .into_iter()
        .map(|(verb, group, resource)| (verb.to_string(), group.to_string(), resource.to_string()))
        .collect();
    assert_eq!(used, declared, "every declared permission is used");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_taken_away_mid_analysis_holds_the_rollback_until_the_router_obeys() {
    let c = cluster(&[GATEWAY_CRD], vec![http_route()], GATEWAY).await;
    let id = c.canaryd.start_analysis(webhook()).await;
    settled(&c.canaryd, &id, 10).await;
    c.api
        .revoke("patch", "gateway.networking.k8s.io", "httproutes");
    let (code, _) = c
        .canaryd
        .post(
            &format!("/api/v1/analyses/{id}/rollback"),
            json!({"reason": "bad"}),
        )
        .await;
    assert_eq!(code, 200);
    let said = wait_for(
        "the refusal to be recorded",
        Duration::from_secs(20),
        || async {
            let events = c
                .canaryd
                .get(&format!("/api/v1/analyses/{id}/events"))
                .await;
            let messages: Vec<String> = events
                .as_array()?
                .iter()
                .filter_map(|e| e["message"].as_str().map(str::to_string))
                .collect();
            messages.into_iter().find(|m| m.contains("is forbidden"))
        },
    )
    .await;
    assert!(
        said.contains("canaryd may not patch HTTPRoute shop/web"),
        "{said}"
    );
    let analysis = c.canaryd.analysis(&id).await;
    assert_eq!(
        analysis["status"], "ROLLING_BACK",
        "never terminal while the canary keeps traffic"
    );
    assert_eq!(
        route_weight(
            &c.api
                .object("gateway.networking.k8s.io", "httproutes", "shop", "web")
                .unwrap()
        ),
        10
    );
    c.api
        .restore("patch", "gateway.networking.k8s.io", "httproutes");
    let analysis = c.canaryd.wait_terminal(&id, Duration::from_secs(30)).await;
    assert_eq!(analysis["status"], "ROLLED_BACK");
    assert_eq!(
        route_weight(
            &c.api
                .object("gateway.networking.k8s.io", "httproutes", "shop", "web")
                .unwrap()
        ),
        0
    );
}
