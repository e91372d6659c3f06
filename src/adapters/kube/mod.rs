//! Kubernetes, through `kube` and `k8s-openapi`: one client, the four routers that
//! patch an HTTPRoute, a VirtualService, a TrafficSplit or an NGINX canary Ingress,
//! and the errors the API answers with, turned into the router port's.
//!
//! Nothing outside this module knows about kube. Every write is a JSON merge patch
//! under field manager `canaryd` that carries the `metadata.resourceVersion` it was
//! computed from, so an edit someone else made in between is never overwritten: the
//! API answers 409 and the router reads the object again.

mod access;
mod errors;
mod object;
mod rollout;
mod router;
mod splits;
mod template;
mod workload;

use std::time::Duration;

pub use router::KubeRouter;

use crate::domain::record::RouteTarget;
use crate::domain::workload::WorkloadTarget;
use crate::ports::{RouterError, TrafficRouter, Workload, WorkloadError, WorkloadProvider};

/// The field manager canaryd writes under, and the annotation that names the writer.
pub const FIELD_MANAGER: &str = "canaryd";
pub const WRITER_ANNOTATION: &str = "canaryd.io/writer";

/// A client for the cluster canaryd runs in or is pointed at, or why there is none.
#[derive(Clone)]
pub struct Cluster {
    client: Result<kube::Client, String>,
    server: Option<String>,
}

impl Cluster {
    /// The configuration `kubectl` would use: in-cluster service-account credentials,
    /// or `KUBECONFIG` / `~/.kube/config` (a plain `http://` server such as
    /// `kubectl proxy` works too).
    pub async fn infer() -> Self {
        match kube::Config::infer().await {
            Ok(config) => Self {
                server: Some(config.cluster_url.to_string()),
                client: Self::client(config),
            },
            Err(error) => Self::none(&format!("no Kubernetes configuration found: {error}")),
        }
    }

    /// No cluster: Kubernetes routers answer with `why`.
    pub fn none(why: &str) -> Self {
        Self {
            client: Err(why.to_string()),
            server: None,
        }
    }

    fn client(mut config: kube::Config) -> Result<kube::Client, String> {
        config.connect_timeout = Some(Duration::from_secs(5));
        config.read_timeout = Some(Duration::from_secs(10));
        config.write_timeout = Some(Duration::from_secs(10));
        kube::Client::try_from(config).map_err(|e| format!("Kubernetes client: {e}"))
    }

    /// A description for logs: the server URL, never a credential.
    pub fn describe(&self) -> String {
        match (&self.client, &self.server) {
            (Ok(_), Some(server)) => format!("Kubernetes API at {server}"),
            (Ok(_), None) => "Kubernetes API".to_string(),
            (Err(why), _) => why.clone(),
        }
    }

    pub fn is_configured(&self) -> bool {
        self.client.is_ok()
    }

    /// The router for a Kubernetes route target; `None` for other targets.
    pub fn router(
        &self,
        target: &RouteTarget,
    ) -> Option<Result<Box<dyn TrafficRouter>, RouterError>> {
        let split = splits::for_target(target)?;
        let client = match &self.client {
            Ok(client) => client.clone(),
            Err(why) => {
                let message = format!(
                    "the {} router needs a Kubernetes client: {why}",
                    target.kind()
                );
                return Some(Err(RouterError::Unsupported(message)));
            }
        };
        Some(Ok(Box::new(KubeRouter::new(client, split))))
    }
}

impl WorkloadProvider for Cluster {
    fn workload(
        &self,
        target: &WorkloadTarget,
        image_tag: &str,
    ) -> Result<Box<dyn Workload>, WorkloadError> {
        match &self.client {
            Ok(client) => Ok(Box::new(workload::KubeWorkload {
                client: client.clone(),
                target: target.clone(),
                image_tag: image_tag.to_string(),
            })),
            Err(why) => Err(WorkloadError::Unsupported(format!(
                "spec.workload needs a Kubernetes client: {why}"
            ))),
        }
    }
}

/// Every permission canaryd's adapters use, by API group and resource: what the
/// Role in `deploy/kubernetes` grants, no more. SelfSubjectAccessReviews need no
/// grant: every authenticated user may create them.
pub const PERMISSIONS: &[(&str, &str, &[&str])] = &[
    ("gateway.networking.k8s.io", "httproutes", &["get", "patch"]),
    ("networking.istio.io", "virtualservices", &["get", "patch"]),
    ("split.smi-spec.io", "trafficsplits", &["get", "patch"]),
    ("networking.k8s.io", "ingresses", &["get", "patch"]),
    ("apps", "deployments", &["get", "create", "patch"]),
    ("", "services", &["get"]),
    ("", "pods", &["list"]),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::KubeTarget;

    /// kube and reqwest must agree on one TLS provider, or the first HTTPS request
    /// panics; a refused connection must come back as an error naming the object.
    #[tokio::test]
    async fn an_https_api_that_refuses_is_unreachable_not_a_panic() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = kube::Config::new(format!("https://127.0.0.1:{port}").parse().unwrap());
        let cluster = Cluster {
            client: Cluster::client(config),
            server: None,
        };
        let target = RouteTarget::GatewayApi(KubeTarget {
            namespace: "shop".into(),
            name: "web".into(),
            stable_backend: "web-stable".into(),
            canary_backend: "web-canary".into(),
        });
        let router = cluster.router(&target).unwrap().unwrap();
        let error = router.weight().await.unwrap_err();
        assert!(matches!(error, RouterError::Unreachable(_)), "{error:?}");
        assert!(error.to_string().contains("HTTPRoute shop/web"), "{error}");
    }
}
