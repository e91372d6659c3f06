//! Validated strategy types: what a team's YAML means once every rule has been checked.
//!
//! Values of these types are only built by `strategy_files`, which reports every
//! mistake with its position; code that holds a `Strategy` may rely on its invariants
//! (weights strictly increasing within 1..=100, interval >= 1 s, each metric with a limit).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::template::Template;

/// `<team>/<name>`, the identity of a strategy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StrategyId {
    pub team: String,
    pub name: String,
}

impl fmt::Display for StrategyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.team, self.name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Strategy {
    pub id: StrategyId,
    pub description: String,
    /// Default value of `{{service}}`; a webhook may name another.
    pub service: String,
    /// Value of `{{namespace}}` and the default namespace of Kubernetes routers.
    pub namespace: String,
    pub router: RouterSpec,
    /// Time between checks.
    pub interval: Duration,
    /// Value of `{{window}}`: the range a query looks back over (default: the interval).
    pub window: Duration,
    pub steps: Vec<Step>,
    pub failure_limit: u32,
    pub inconclusive_limit: u32,
    pub promotion: Promotion,
    pub metrics: Vec<MetricCheck>,
    pub notifications: Vec<Notification>,
    /// Extra template variables a webhook may set, with their defaults (None: required).
    pub variables: BTreeMap<String, Option<String>>,
    /// When set, a webhook's `imageTag` must be `<semver>-<short-sha>`.
    pub require_semver_sha_tag: bool,
    /// When set, promotion waits until this URL answers 2xx.
    pub confirm_promotion: Option<String>,
    /// How long promotion waits for the gate before the analysis pauses for a person.
    pub gate_timeout: Duration,
    /// What happens when inconclusive checks exceed `inconclusiveLimit`.
    pub on_inconclusive_limit: OnInconclusiveLimit,
    /// The Deployment whose canary canaryd runs, if canaryd deploys at all.
    pub workload: Option<WorkloadSpec>,
}

/// `spec.workload`: canaryd runs the webhook's image as `<deployment>-canary` beside
/// the stable Deployment, and promotes by giving the stable Deployment that image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadSpec {
    pub deployment: Template,
    pub namespace: Template,
    /// The container whose image changes; `None` for the first one.
    pub container: Option<String>,
    /// How long the canary (and, on promotion, the stable) may take to become available.
    pub progress_deadline: Duration,
    /// The canary's replicas; `None` for as many as the stable has.
    pub canary_replicas: Option<u32>,
}

/// Kubernetes' own default for a Deployment's `progressDeadlineSeconds`.
pub const DEFAULT_PROGRESS_DEADLINE: Duration = Duration::from_secs(600);

pub const DEFAULT_GATE_TIMEOUT: Duration = Duration::from_secs(3600);

/// What an analysis does when evidence stays missing beyond `inconclusiveLimit`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum OnInconclusiveLimit {
    /// Roll back: no evidence, no promotion.
    #[default]
    Rollback,
    /// Pause for a person, checks still running (a FAIL still rolls back).
    Pause,
}

/// What a NaN (or a missing value) means for a metric (Kayenta's `nanStrategy`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum NanStrategy {
    /// A gap is no data (and never a pass).
    #[default]
    Remove,
    /// A gap is zero: for counts, where no series means nothing happened.
    Replace,
}

/// One traffic step: the canary's weight and how much evidence leaves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// Canary traffic weight in percent, 1..=100.
    pub weight: u8,
    /// Passing checks needed to leave this step.
    pub checks: u32,
    /// Most checks the step may take while a judge gathers evidence.
    pub max_checks: u32,
}

pub const DEFAULT_MAX_CHECKS: u32 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Promotion {
    Auto,
    Manual,
}

/// What a metric without data counts as.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum OnNoData {
    #[default]
    Inconclusive,
    Fail,
    Pass,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricCheck {
    pub name: String,
    pub on_no_data: OnNoData,
    /// Measured, stored, exported and shown, but never changes a check's result.
    pub dry_run: bool,
    pub nan_strategy: NanStrategy,
    pub judge: JudgeSpec,
}

/// How a metric is judged, with the queries that feed it.
#[derive(Debug, Clone, PartialEq)]
pub enum JudgeSpec {
    /// The canary's value against fixed bounds.
    Threshold { query: Template, bounds: Bounds },
    /// The canary's value against the stable track's value of the same query.
    CompareStable {
        query: Template,
        limits: CompareLimits,
    },
    /// Canary samples against stable samples over the window.
    MannWhitney {
        query: Template,
        config: MannWhitneyConfig,
    },
    /// Error and request counts since the step began, judged sequentially.
    Sequential {
        errors: Template,
        requests: Template,
        config: SequentialConfig,
    },
}

impl JudgeSpec {
    /// The query templates this judge runs.
    pub fn queries(&self) -> Vec<&Template> {
        match self {
            JudgeSpec::Threshold { query, .. }
            | JudgeSpec::CompareStable { query, .. }
            | JudgeSpec::MannWhitney { query, .. } => vec![query],
            JudgeSpec::Sequential {
                errors, requests, ..
            } => vec![errors, requests],
        }
    }
}

/// Fixed limits on a value; at least one is set.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Bounds {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// Limits on canary against stable; at least one is set.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompareLimits {
    /// Largest allowed canary / stable.
    pub max_ratio: Option<f64>,
    /// Smallest allowed canary / stable.
    pub min_ratio: Option<f64>,
    /// Largest allowed canary − stable (absolute).
    pub max_increase: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// A rise in the canary is bad (latency, errors).
    Increase,
    /// A fall in the canary is bad (throughput, success rate).
    Decrease,
    /// Any shift is bad.
    Either,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MannWhitneyConfig {
    pub direction: Direction,
    /// 1 − significance level, e.g. 0.98.
    pub confidence: f64,
    /// Tolerated ratio of canary mean to stable mean in the bad direction (e.g. 1.1).
    pub allowed_increase: Option<f64>,
    pub allowed_decrease: Option<f64>,
    pub remove_outliers: bool,
    /// Without data on either side the metric fails rather than being inconclusive.
    pub must_have_data: bool,
    /// Resolution of the range query that gathers samples.
    pub sample_step: Duration,
    /// Fewest samples per side before the test is run.
    pub min_samples: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SequentialConfig {
    /// The error-rate limit: a canary above it should be rolled back.
    pub max: f64,
    /// Error rate still considered good (H0); defaults to half the limit.
    pub acceptable: f64,
    /// Probability of rolling back a canary whose error rate is `acceptable`.
    pub alpha: f64,
    /// Probability of promoting a canary whose error rate is `max`.
    pub beta: f64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouterSpec {
    Haproxy(HaproxyRoute),
    GatewayApi(KubeRoute),
    NginxIngress(NginxRoute),
    Istio(KubeRoute),
    Smi(KubeRoute),
    None,
}

impl RouterSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            RouterSpec::Haproxy(_) => "haproxy",
            RouterSpec::GatewayApi(_) => "gateway-api",
            RouterSpec::NginxIngress(_) => "nginx-ingress",
            RouterSpec::Istio(_) => "istio",
            RouterSpec::Smi(_) => "smi",
            RouterSpec::None => "none",
        }
    }
}

/// HAProxy Runtime API: two servers of one backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaproxyRoute {
    /// `unix:/path/to/admin.sock` or `host:port`.
    pub address: String,
    pub backend: Template,
    pub stable_server: String,
    pub canary_server: String,
}

/// A Kubernetes object whose backend weights are patched: an HTTPRoute (gateway-api),
/// a VirtualService (istio) or a TrafficSplit (smi).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeRoute {
    pub namespace: Template,
    /// Name of the object to patch.
    pub name: Template,
    /// Backend (Service, or Istio destination host) that receives stable traffic.
    pub stable_backend: Template,
    /// Backend that receives canary traffic.
    pub canary_backend: Template,
}

/// NGINX ingress canaries: the weight is the canary Ingress's `canary-weight` annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NginxRoute {
    pub namespace: Template,
    pub canary_ingress: Template,
}

/// Where to tell people about an analysis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub url: String,
    pub format: NotificationFormat,
    /// Statuses (as in `rolled_back`) that trigger this notification.
    pub on: Vec<super::analysis::Status>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotificationFormat {
    Slack,
    Json,
}

impl NotificationFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationFormat::Slack => "slack",
            NotificationFormat::Json => "json",
        }
    }
}
