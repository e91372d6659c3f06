//! Traffic routers, and the provider that builds the right one for a route target.

use std::time::Duration;

use crate::adapters::kube::Cluster;
use crate::domain::record::RouteTarget;
use crate::ports::{RouterError, RouterProvider, TrafficRouter};

pub mod haproxy;
pub mod none;

/// Builds HAProxy, decide-only and, with a cluster client, Kubernetes routers.
pub struct Routers {
    pub haproxy_timeout: Duration,
    pub cluster: Cluster,
}

impl Default for Routers {
    fn default() -> Self {
        Self {
            haproxy_timeout: Duration::from_secs(2),
            cluster: Cluster::none("no Kubernetes client is configured"),
        }
    }
}

impl Routers {
    /// The routers for `cluster`: its client drives the Kubernetes ones.
    pub fn with_cluster(cluster: Cluster) -> Self {
        Self {
            cluster,
            ..Self::default()
        }
    }
}

impl RouterProvider for Routers {
    fn router(&self, target: &RouteTarget) -> Result<Box<dyn TrafficRouter>, RouterError> {
        match target {
            RouteTarget::Haproxy {
                address,
                backend,
                stable_server,
                canary_server,
            } => Ok(Box::new(haproxy::Haproxy::new(
                address,
                backend,
                stable_server,
                canary_server,
                self.haproxy_timeout,
            )?)),
            RouteTarget::None => Ok(Box::new(none::DecideOnly::default())),
            kubernetes => self.cluster.router(kubernetes).unwrap_or_else(|| {
                Err(RouterError::Unsupported(format!(
                    "no router for {}",
                    kubernetes.kind()
                )))
            }),
        }
    }
}
