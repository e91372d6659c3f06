//! Validation of `spec.router`: the type, and the one block that goes with it.

use serde_saphyr::Spanned;

use super::diagnostics::FileDiagnostics;
use super::raw::RawRouter;
use super::validate::non_empty;
use crate::domain::strategy::{HaproxyRoute, KubeRoute, NginxRoute, RouterSpec};
use crate::domain::template::Template;

const ROUTER_KINDS: [&str; 6] = [
    "haproxy",
    "gateway-api",
    "nginx-ingress",
    "istio",
    "smi",
    "none",
];

pub fn router(
    d: &mut FileDiagnostics,
    router: &Spanned<RawRouter>,
    known: &dyn Fn(&str) -> bool,
) -> Option<RouterSpec> {
    let raw = &router.value;
    let kind = raw.kind.value.as_str();
    if !ROUTER_KINDS.contains(&kind) {
        let message = format!(
            "router.type '{kind}' is not one of {}",
            ROUTER_KINDS.join(", ")
        );
        d.error(&raw.kind.referenced, message);
        return None;
    }
    let blocks = [
        ("haproxy", raw.haproxy.as_ref().map(|b| b.referenced)),
        (
            "gateway-api",
            raw.gateway_api.as_ref().map(|b| b.referenced),
        ),
        (
            "nginx-ingress",
            raw.nginx_ingress.as_ref().map(|b| b.referenced),
        ),
        ("istio", raw.istio.as_ref().map(|b| b.referenced)),
        ("smi", raw.smi.as_ref().map(|b| b.referenced)),
    ];
    for (name, location) in blocks {
        if let Some(location) = location.filter(|_| name != kind) {
            d.error(
                &location,
                format!("router.{} is set but router.type is '{kind}'", camel(name)),
            );
        }
    }
    let missing = |d: &mut FileDiagnostics| {
        let message = format!(
            "router.type is '{kind}' but router.{} is missing",
            camel(kind)
        );
        d.error(&raw.kind.referenced, message);
    };
    let field = |d: &mut FileDiagnostics, value: &Spanned<String>, name: &str| {
        d.template(value, known, &format!("router.{}.{name}", camel(kind)))
    };
    let namespace = |value: &Option<Spanned<String>>| match value {
        Some(namespace) => Template::parse(&namespace.value, |_| true).ok(),
        None => Template::parse("{{namespace}}", |_| true).ok(),
    };
    match kind {
        "haproxy" => {
            let Some(h) = &raw.haproxy else {
                missing(d);
                return None;
            };
            let h = &h.value;
            let backend = field(d, &h.backend, "backend");
            let address = non_empty(d, &h.address, "router.haproxy.address");
            Some(RouterSpec::Haproxy(HaproxyRoute {
                address: address?,
                backend: backend?,
                stable_server: h.stable_server.value.clone(),
                canary_server: h.canary_server.value.clone(),
            }))
        }
        "gateway-api" => {
            let Some(g) = &raw.gateway_api else {
                missing(d);
                return None;
            };
            let g = &g.value;
            let (name, stable, canary) = (
                field(d, &g.http_route, "httpRoute"),
                field(d, &g.stable_service, "stableService"),
                field(d, &g.canary_service, "canaryService"),
            );
            Some(RouterSpec::GatewayApi(KubeRoute {
                namespace: namespace(&g.namespace)?,
                name: name?,
                stable_backend: stable?,
                canary_backend: canary?,
            }))
        }
        "istio" => {
            let Some(i) = &raw.istio else {
                missing(d);
                return None;
            };
            let i = &i.value;
            let (name, stable, canary) = (
                field(d, &i.virtual_service, "virtualService"),
                field(d, &i.stable_host, "stableHost"),
                field(d, &i.canary_host, "canaryHost"),
            );
            Some(RouterSpec::Istio(KubeRoute {
                namespace: namespace(&i.namespace)?,
                name: name?,
                stable_backend: stable?,
                canary_backend: canary?,
            }))
        }
        "smi" => {
            let Some(s) = &raw.smi else {
                missing(d);
                return None;
            };
            let s = &s.value;
            let (name, stable, canary) = (
                field(d, &s.traffic_split, "trafficSplit"),
                field(d, &s.stable_service, "stableService"),
                field(d, &s.canary_service, "canaryService"),
            );
            Some(RouterSpec::Smi(KubeRoute {
                namespace: namespace(&s.namespace)?,
                name: name?,
                stable_backend: stable?,
                canary_backend: canary?,
            }))
        }
        "nginx-ingress" => {
            let Some(n) = &raw.nginx_ingress else {
                missing(d);
                return None;
            };
            let n = &n.value;
            let canary_ingress = field(d, &n.canary_ingress, "canaryIngress");
            Some(RouterSpec::NginxIngress(NginxRoute {
                namespace: namespace(&n.namespace)?,
                canary_ingress: canary_ingress?,
            }))
        }
        _ => Some(RouterSpec::None),
    }
}

/// `gateway-api` → `gatewayApi`, as the YAML field is spelled.
fn camel(kind: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in kind.chars() {
        if c == '-' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}
