//! Traffic routers, and the provider that builds the right one for a route target.

use std::time::Duration;

use crate::domain::record::RouteTarget;
use crate::ports::{RouterError, RouterProvider, TrafficRouter};

pub mod haproxy;
pub mod none;

/// Builds HAProxy and decide-only routers; Kubernetes routers need a cluster client.
pub struct Routers {
    pub haproxy_timeout: Duration,
}

impl Default for Routers {
    fn default() -> Self {
        Self {
            haproxy_timeout: Duration::from_secs(2),
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
            other => Err(RouterError::Unsupported(format!(
                "the {} router needs a Kubernetes client, and none is configured",
                other.kind()
            ))),
        }
    }
}
