//! What is stored about an analysis: its identity, the route it controls (rendered when
//! it was created, so a rollback never depends on the strategy file still existing), its
//! decision state, and the evidence behind every decision.

use serde::{Deserialize, Serialize};

use super::Timestamp;
use super::analysis::{AnalysisState, Record};
use super::judge::Judgement;
use super::strategy::{KubeRoute, NginxRoute, RouterSpec, StrategyId};
use super::template::{MissingVariable, Variables};
use super::workload::WorkloadTarget;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    pub id: String,
    pub strategy: StrategyId,
    pub service: String,
    pub environment: String,
    pub image_tag: Option<String>,
    pub git_commit: Option<String>,
    pub git_branch: Option<String>,
    pub triggered_by: Option<String>,
    /// Template values fixed at creation: service, environment, namespace and the
    /// strategy's declared variables.
    pub variables: Variables,
    pub route: RouteTarget,
    /// The Deployment the canary runs beside, when canaryd deploys it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<WorkloadTarget>,
    pub created_at: Timestamp,
    pub state: AnalysisState,
}

impl Analysis {
    /// The identity of the route this analysis drives: the router type and its rendered
    /// target. A `none` router shifts nothing, so its route is the strategy, service and
    /// environment. At most one active analysis owns a route at any time.
    pub fn route_key(&self) -> String {
        match &self.route {
            RouteTarget::Haproxy {
                address, backend, ..
            } => format!("haproxy:{address}:{backend}"),
            RouteTarget::GatewayApi(target)
            | RouteTarget::Istio(target)
            | RouteTarget::Smi(target) => {
                format!("{}:{}/{}", self.route.kind(), target.namespace, target.name)
            }
            RouteTarget::NginxIngress {
                namespace,
                canary_ingress,
            } => format!("nginx-ingress:{namespace}/{canary_ingress}"),
            RouteTarget::None => format!(
                "none:{}:{}:{}",
                self.strategy, self.service, self.environment
            ),
        }
    }
}

/// The traffic split one analysis controls, with every template rendered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum RouteTarget {
    #[serde(rename_all = "camelCase")]
    Haproxy {
        address: String,
        backend: String,
        stable_server: String,
        canary_server: String,
    },
    #[serde(rename_all = "camelCase")]
    GatewayApi(KubeTarget),
    #[serde(rename_all = "camelCase")]
    Istio(KubeTarget),
    #[serde(rename_all = "camelCase")]
    Smi(KubeTarget),
    #[serde(rename_all = "camelCase")]
    NginxIngress {
        namespace: String,
        canary_ingress: String,
    },
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeTarget {
    pub namespace: String,
    pub name: String,
    pub stable_backend: String,
    pub canary_backend: String,
}

impl RouteTarget {
    pub fn kind(&self) -> &'static str {
        match self {
            RouteTarget::Haproxy { .. } => "haproxy",
            RouteTarget::GatewayApi(_) => "gateway-api",
            RouteTarget::Istio(_) => "istio",
            RouteTarget::Smi(_) => "smi",
            RouteTarget::NginxIngress { .. } => "nginx-ingress",
            RouteTarget::None => "none",
        }
    }

    /// Renders a strategy's router for one analysis.
    pub fn render(spec: &RouterSpec, variables: &Variables) -> Result<Self, MissingVariable> {
        let kube = |route: &KubeRoute| -> Result<KubeTarget, MissingVariable> {
            Ok(KubeTarget {
                namespace: route.namespace.render(variables)?,
                name: route.name.render(variables)?,
                stable_backend: route.stable_backend.render(variables)?,
                canary_backend: route.canary_backend.render(variables)?,
            })
        };
        Ok(match spec {
            RouterSpec::Haproxy(h) => RouteTarget::Haproxy {
                address: h.address.clone(),
                backend: h.backend.render(variables)?,
                stable_server: h.stable_server.clone(),
                canary_server: h.canary_server.clone(),
            },
            RouterSpec::GatewayApi(route) => RouteTarget::GatewayApi(kube(route)?),
            RouterSpec::Istio(route) => RouteTarget::Istio(kube(route)?),
            RouterSpec::Smi(route) => RouteTarget::Smi(kube(route)?),
            RouterSpec::NginxIngress(NginxRoute {
                namespace,
                canary_ingress,
            }) => RouteTarget::NginxIngress {
                namespace: namespace.render(variables)?,
                canary_ingress: canary_ingress.render(variables)?,
            },
            RouterSpec::None => RouteTarget::None,
        })
    }
}

/// One metric's result in one check, with the queries as they were sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckRecord {
    /// The analysis-wide check number.
    pub check: u64,
    /// 1-based step the check ran at.
    pub step: usize,
    pub canary_weight: u8,
    pub at: Timestamp,
    pub metric: String,
    pub queries: Vec<String>,
    #[serde(flatten)]
    pub judgement: Judgement,
    /// A dry-run metric: its outcome never changed the check's result.
    #[serde(default)]
    pub dry_run: bool,
    /// How long after its moment on the grid (`at`) the check's answers were in: a
    /// check is never skipped for being late, only recorded so.
    #[serde(default)]
    pub lag_ms: u64,
}

/// An entry of the audit trail, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRecord {
    pub at: Timestamp,
    #[serde(flatten)]
    pub record: Record,
}
