//! The canary workload: the Deployment an analysis runs its canary beside, rendered
//! when the analysis is created, and the steps the engine takes on it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::record::RouteTarget;
use super::strategy::WorkloadSpec;
use super::template::{MissingVariable, Variables};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadTarget {
    pub namespace: String,
    /// The stable Deployment; the canary is `<deployment>-canary`.
    pub deployment: String,
    /// The container whose image changes; `None` for the first one.
    pub container: Option<String>,
    #[serde(with = "super::analysis::duration_ms")]
    pub progress_deadline: Duration,
    /// The canary's replicas; `None` for the stable's count.
    pub canary_replicas: Option<u32>,
    /// The Services the route sends stable and canary traffic to, where the router
    /// names them: canaryd checks their selectors before it starts.
    pub stable_service: Option<String>,
    pub canary_service: Option<String>,
}

impl WorkloadTarget {
    pub fn canary_deployment(&self) -> String {
        format!("{}-canary", self.deployment)
    }

    /// Renders a strategy's workload for one analysis. The Services come from the route:
    /// an HTTPRoute's or a TrafficSplit's backends, or an Istio destination's short host.
    pub fn render(
        spec: &WorkloadSpec,
        route: &RouteTarget,
        variables: &Variables,
    ) -> Result<Self, MissingVariable> {
        let (stable_service, canary_service) = match route {
            RouteTarget::GatewayApi(t) | RouteTarget::Smi(t) => (
                Some(t.stable_backend.clone()),
                Some(t.canary_backend.clone()),
            ),
            RouteTarget::Istio(t) => (
                Some(short_host(&t.stable_backend)),
                Some(short_host(&t.canary_backend)),
            ),
            _ => (None, None),
        };
        Ok(Self {
            namespace: spec.namespace.render(variables)?,
            deployment: spec.deployment.render(variables)?,
            container: spec.container.clone(),
            progress_deadline: spec.progress_deadline,
            canary_replicas: spec.canary_replicas,
            stable_service,
            canary_service,
        })
    }
}

/// `reviews.prod.svc.cluster.local` → `reviews`.
fn short_host(host: &str) -> String {
    host.split('.').next().unwrap_or(host).to_string()
}

/// What the engine does to the workload, one step at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WorkloadStep {
    /// Create or update the canary Deployment with the new image and wait until it is
    /// available.
    DeployCanary,
    /// Give the stable Deployment the canary's image and wait for its rollout.
    PromoteStable,
    /// Scale the canary Deployment to 0.
    ScaleCanaryDown,
}

impl WorkloadStep {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadStep::DeployCanary => "deploy the canary",
            WorkloadStep::PromoteStable => "promote the stable Deployment",
            WorkloadStep::ScaleCanaryDown => "scale the canary to 0",
        }
    }
}

/// Where the workload stands for one analysis; stored with its state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadState {
    /// The step the engine is taking, if any.
    pub pending: Option<WorkloadStep>,
    /// Since when it has been taken (for the progress deadline).
    pub since: Option<super::Timestamp>,
    /// The stable Deployment runs the canary's image.
    pub stable_promoted: bool,
}
