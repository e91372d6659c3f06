//! Validation of `spec.router`: the type, and the one block that goes with it.

use serde_saphyr::Spanned;

use super::diagnostics::FileDiagnostics;
use super::raw::{RawHaproxy, RawRouter};
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
    refuse_other_blocks(d, raw, kind);
    let mut block = Block { d, kind, known };
    let at = raw.kind.referenced;
    match kind {
        "haproxy" => {
            let h = &present(block.d, kind, at, &raw.haproxy)?.value;
            block.haproxy(h)
        }
        "gateway-api" => {
            let g = &present(block.d, kind, at, &raw.gateway_api)?.value;
            let fields = [
                (&g.http_route, "httpRoute"),
                (&g.stable_service, "stableService"),
                (&g.canary_service, "canaryService"),
            ];
            block.kube(&g.namespace, fields).map(RouterSpec::GatewayApi)
        }
        "istio" => {
            let i = &present(block.d, kind, at, &raw.istio)?.value;
            let fields = [
                (&i.virtual_service, "virtualService"),
                (&i.stable_host, "stableHost"),
                (&i.canary_host, "canaryHost"),
            ];
            block.kube(&i.namespace, fields).map(RouterSpec::Istio)
        }
        "smi" => {
            let s = &present(block.d, kind, at, &raw.smi)?.value;
            let fields = [
                (&s.traffic_split, "trafficSplit"),
                (&s.stable_service, "stableService"),
                (&s.canary_service, "canaryService"),
            ];
            block.kube(&s.namespace, fields).map(RouterSpec::Smi)
        }
        "nginx-ingress" => {
            let n = &present(block.d, kind, at, &raw.nginx_ingress)?.value;
            let canary_ingress = block.field(&n.canary_ingress, "canaryIngress");
            Some(RouterSpec::NginxIngress(NginxRoute {
                namespace: namespace(&n.namespace)?,
                canary_ingress: canary_ingress?,
            }))
        }
        _ => Some(RouterSpec::None),
    }
}

/// Only the block of the router's type may be set.
fn refuse_other_blocks(d: &mut FileDiagnostics, raw: &RawRouter, kind: &str) {
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
}

/// The block of the router's type, or an error at `router.type` saying it is missing.
fn present<'a, T>(
    d: &mut FileDiagnostics,
    kind: &str,
    at: serde_saphyr::Location,
    block: &'a Option<Spanned<T>>,
) -> Option<&'a Spanned<T>> {
    if block.is_none() {
        let message = format!(
            "router.type is '{kind}' but router.{} is missing",
            camel(kind)
        );
        d.error(&at, message);
    }
    block.as_ref()
}

/// `{{namespace}}` unless the block names one.
fn namespace(value: &Option<Spanned<String>>) -> Option<Template> {
    match value {
        Some(namespace) => Template::parse(&namespace.value, |_| true).ok(),
        None => Template::parse("{{namespace}}", |_| true).ok(),
    }
}

/// The router block being validated.
struct Block<'d, 'f, 'k> {
    d: &'d mut FileDiagnostics<'f>,
    kind: &'d str,
    known: &'k dyn Fn(&str) -> bool,
}

impl Block<'_, '_, '_> {
    fn field(&mut self, value: &Spanned<String>, name: &str) -> Option<Template> {
        let path = format!("router.{}.{name}", camel(self.kind));
        self.d.template(value, self.known, &path)
    }

    fn haproxy(&mut self, h: &RawHaproxy) -> Option<RouterSpec> {
        let backend = self.field(&h.backend, "backend");
        let address = non_empty(self.d, &h.address, "router.haproxy.address");
        Some(RouterSpec::Haproxy(HaproxyRoute {
            address: address?,
            backend: backend?,
            stable_server: h.stable_server.value.clone(),
            canary_server: h.canary_server.value.clone(),
        }))
    }

    /// A Kubernetes route: the object's name, then the stable and canary backends,
    /// each with its YAML field name. Every field is checked before any is required.
    fn kube(
        &mut self,
        namespace_field: &Option<Spanned<String>>,
        [name, stable, canary]: [(&Spanned<String>, &str); 3],
    ) -> Option<KubeRoute> {
        let (name, stable, canary) = (
            self.field(name.0, name.1),
            self.field(stable.0, stable.1),
            self.field(canary.0, canary.1),
        );
        Some(KubeRoute {
            namespace: namespace(namespace_field)?,
            name: name?,
            stable_backend: stable?,
            canary_backend: canary?,
        })
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
