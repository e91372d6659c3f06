use serde_json::{Value, json};

use super::*;

fn kube_target() -> KubeTarget {
    KubeTarget {
        namespace: "shop".into(),
        name: "web".into(),
        stable_backend: "web-stable".into(),
        canary_backend: "web-canary".into(),
    }
}

fn http_route(refs: Value) -> Value {
    json!({"metadata": {"name": "web", "resourceVersion": "7"},
           "spec": {"parentRefs": [{"name": "gw"}],
                    "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": refs}]}})
}

fn split(target: RouteTarget) -> Box<dyn Split> {
    for_target(&target).expect("a Kubernetes target")
}

#[test]
fn an_http_route_gets_complementary_weights_and_keeps_everything_else() {
    let route = http_route(json!([
        {"name": "web-stable", "port": 80},
        {"name": "web-canary", "port": 80, "weight": 0},
    ]));
    let split = split(RouteTarget::GatewayApi(kube_target()));
    assert_eq!(
        split.weight(&route).unwrap(),
        0,
        "no weight on stable means 1"
    );
    let patch = split.patch(&route, 25).unwrap();
    let rules = &patch["spec"]["rules"];
    assert_eq!(rules[0]["matches"][0]["path"]["value"], "/");
    assert_eq!(
        rules[0]["backendRefs"][0],
        json!({"name": "web-stable", "port": 80, "weight": 75})
    );
    assert_eq!(rules[0]["backendRefs"][1]["weight"], 25);
    let mut patched = route.clone();
    patched["spec"]["rules"] = rules.clone();
    assert_eq!(split.weight(&patched).unwrap(), 25);
}

#[test]
fn a_route_without_the_canary_backend_names_what_it_found() {
    let route =
        http_route(json!([{"name": "web-stable", "port": 80}, {"name": "other", "port": 80}]));
    let error = split(RouteTarget::GatewayApi(kube_target()))
        .patch(&route, 10)
        .unwrap_err();
    assert!(error.contains("HTTPRoute shop/web"), "{error}");
    assert!(error.contains("\"web-canary\""), "{error}");
    assert!(error.contains("found: web-stable, other"), "{error}");
}

#[test]
fn a_third_backend_beside_the_pair_is_refused() {
    let route = http_route(json!([
        {"name": "web-stable"}, {"name": "web-canary"}, {"name": "mirror"}
    ]));
    let error = split(RouteTarget::GatewayApi(kube_target()))
        .weight(&route)
        .unwrap_err();
    assert!(error.contains("\"mirror\""), "{error}");
}

#[test]
fn istio_destinations_are_found_by_host() {
    let service = json!({"metadata": {"resourceVersion": "1"}, "spec": {"hosts": ["web"], "http": [
        {"name": "api", "route": [
            {"destination": {"host": "web-stable"}, "weight": 100},
            {"destination": {"host": "web-canary"}}]}]}});
    let split = split(RouteTarget::Istio(kube_target()));
    assert_eq!(split.weight(&service).unwrap(), 0);
    let patch = split.patch(&service, 50).unwrap();
    assert_eq!(patch["spec"]["http"][0]["name"], "api");
    assert_eq!(patch["spec"]["http"][0]["route"][0]["weight"], 50);
    assert_eq!(patch["spec"]["http"][0]["route"][1]["weight"], 50);
}

#[test]
fn an_smi_split_has_one_list_of_backends() {
    let traffic = json!({"metadata": {}, "spec": {"service": "web", "backends": [
        {"service": "web-stable", "weight": 900}, {"service": "web-canary", "weight": 100}]}});
    let split = split(RouteTarget::Smi(kube_target()));
    assert_eq!(split.weight(&traffic).unwrap(), 10, "weights are relative");
    let patch = split.patch(&traffic, 100).unwrap();
    assert_eq!(patch["spec"]["backends"][0]["weight"], 0);
    assert_eq!(patch["spec"]["backends"][1]["weight"], 100);
}

#[test]
fn nginx_canary_weights_are_string_annotations() {
    let target = RouteTarget::NginxIngress {
        namespace: "shop".into(),
        canary_ingress: "web-canary".into(),
    };
    let split = split(target);
    let plain = json!({"metadata": {"annotations": {"kubernetes.io/ingress.class": "nginx"}}});
    assert_eq!(split.weight(&plain).unwrap(), 0);
    let patch = split.patch(&plain, 30).unwrap();
    assert_eq!(
        patch,
        json!({"metadata": {"annotations": {
            "nginx.ingress.kubernetes.io/canary": "true",
            "nginx.ingress.kubernetes.io/canary-weight": "30"}}})
    );
    let odd = json!({"metadata": {"annotations": {"nginx.ingress.kubernetes.io/canary-weight-total": "1000"}}});
    assert!(
        split
            .patch(&odd, 30)
            .unwrap_err()
            .contains("canary-weight-total")
    );
}
