//! Objects for the tests, as a team would apply them: the route objects of each router
//! type, a stable Deployment and its Services, all for service `web` in `shop`, and
//! the strategy router blocks that drive them.

use serde_json::{Value, json};

pub const IMAGE: &str = "registry.example:5000/shop/web:1.0.0";

pub const GATEWAY_ROUTER: &str = "    type: gateway-api\n    gatewayApi:\n      namespace: shop\n      httpRoute: web\n      \
                                  stableService: web-stable\n      canaryService: web-canary\n";
pub const ISTIO_ROUTER: &str = "    type: istio\n    istio:\n      namespace: shop\n      virtualService: web\n      \
                                stableHost: web-stable\n      canaryHost: web-canary\n";
pub const SMI_ROUTER: &str = "    type: smi\n    smi:\n      namespace: shop\n      trafficSplit: web\n      \
                              stableService: web-stable\n      canaryService: web-canary\n";
pub const NGINX_ROUTER: &str = "    type: nginx-ingress\n    nginxIngress:\n      namespace: shop\n      canaryIngress: web-canary\n";

pub fn http_route() -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "parentRefs": [{"name": "public"}],
            "rules": [{
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [
                    {"name": "web-stable", "port": 8080, "weight": 100},
                    {"name": "web-canary", "port": 8080, "weight": 0},
                ],
            }],
        },
    })
}

pub fn virtual_service() -> Value {
    json!({
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"hosts": ["web"], "http": [{"name": "primary", "route": [
            {"destination": {"host": "web-stable"}, "weight": 100},
            {"destination": {"host": "web-canary"}, "weight": 0}]}]},
    })
}

pub fn traffic_split(api_version: &str) -> Value {
    json!({
        "apiVersion": api_version, "kind": "TrafficSplit",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"service": "web", "backends": [
            {"service": "web-stable", "weight": 100}, {"service": "web-canary", "weight": 0}]},
    })
}

pub fn canary_ingress() -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web-canary", "namespace": "shop", "annotations": {"kubernetes.io/ingress.class": "nginx"}},
        "spec": {"rules": [{"host": "shop.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "web-canary", "port": {"number": 8080}}}}]}}]},
    })
}

pub fn labels(track: &str) -> Value {
    json!({"app": "web", "track": track})
}

/// The stable Deployment: a sidecar, then the `app` container that canaryd updates.
pub fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels("stable")},
            "template": {
                "metadata": {"labels": labels("stable")},
                "spec": {"containers": [
                    {"name": "sidecar", "image": "envoy:1.30"},
                    {"name": "app", "image": IMAGE, "ports": [{"containerPort": 8080}]},
                ]},
            },
        },
    })
}

pub fn service(name: &str, selector: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "shop"},
           "spec": {"selector": selector, "ports": [{"port": 8080}]}})
}

/// The stable Deployment and the stable and canary Services.
pub fn workload() -> Vec<Value> {
    vec![
        deployment(),
        service("web-stable", labels("stable")),
        service("web-canary", labels("canary")),
    ]
}

/// The `workload:` block of a strategy for the Deployment above.
pub fn workload_block(deadline: &str) -> String {
    format!(
        "  workload:\n    deployment: web\n    namespace: shop\n    container: app\n    progressDeadline: {deadline}\n"
    )
}

/// Exactly the permissions canaryd declares (and its Role grants).
pub fn permissions() -> Vec<(&'static str, &'static str, &'static str)> {
    canaryd::adapters::kube::PERMISSIONS
        .iter()
        .flat_map(|(group, resource, verbs)| {
            verbs.iter().map(move |verb| (*verb, *group, *resource))
        })
        .collect()
}

/// A strategy `<team>/<name>` for `web` in `shop` with `router` (its YAML block) and
/// `extra` spec lines, `interval` between checks, steps 10% and 60%.
pub fn strategy(team: &str, name: &str, router: &str, extra: &str, interval: &str) -> String {
    format!(
        "apiVersion: canaryd/v1\nkind: Strategy\nmetadata:\n  name: {name}\n  team: {team}\nspec:\n  service: web\n  namespace: shop\n  \
         router:\n{router}{extra}  interval: {interval}\n  steps:\n    - weight: 10\n    - weight: 60\n  metrics:\n    \
         - name: error-rate\n      template: http-error-rate\n      max: 0.05\n"
    )
}

/// The canary's percent as a route object of any of the four kinds holds it, the way
/// the gateway, mesh or ingress controller would read it.
pub fn canary_percent(object: &Value) -> u64 {
    let weight = |w: &Value| w.as_u64().unwrap_or(0);
    let (stable, canary) = match object["kind"].as_str().unwrap() {
        "HTTPRoute" => {
            let refs = &object["spec"]["rules"][0]["backendRefs"];
            (weight(&refs[0]["weight"]), weight(&refs[1]["weight"]))
        }
        "VirtualService" => {
            let route = &object["spec"]["http"][0]["route"];
            (weight(&route[0]["weight"]), weight(&route[1]["weight"]))
        }
        "TrafficSplit" => {
            let backends = &object["spec"]["backends"];
            (
                weight(&backends[0]["weight"]),
                weight(&backends[1]["weight"]),
            )
        }
        "Ingress" => {
            let annotations = &object["metadata"]["annotations"];
            if annotations["nginx.ingress.kubernetes.io/canary"] != "true" {
                return 0;
            }
            let canary = annotations["nginx.ingress.kubernetes.io/canary-weight"]
                .as_str()
                .unwrap_or("0");
            let canary: u64 = canary.parse().unwrap();
            (100 - canary, canary)
        }
        other => panic!("not a route object: {other}"),
    };
    assert_eq!(stable + canary, 100, "weights are complementary: {object}");
    canary
}

/// Where a route object of a router type lives: (group, plural, name) in `shop`.
pub fn location(object: &Value) -> (&'static str, &'static str, &'static str) {
    match object["kind"].as_str().unwrap() {
        "HTTPRoute" => ("gateway.networking.k8s.io", "httproutes", "web"),
        "VirtualService" => ("networking.istio.io", "virtualservices", "web"),
        "TrafficSplit" => ("split.smi-spec.io", "trafficsplits", "web"),
        "Ingress" => ("networking.k8s.io", "ingresses", "web-canary"),
        other => panic!("not a route object: {other}"),
    }
}
