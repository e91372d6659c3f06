//! The strategy YAML exactly as written: serde structs with `deny_unknown_fields` and
//! `Spanned` values wherever validation may need to point at a line and column.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::domain::strategy::{
    Direction, NanStrategy, NotificationFormat, OnInconclusiveLimit, OnNoData, Promotion,
};

pub type S<T> = Spanned<T>;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawStrategyFile {
    #[schemars(with = "String", extend("const" = "canaryd/v1"))]
    pub api_version: S<String>,
    #[schemars(with = "String", extend("const" = "Strategy"))]
    pub kind: S<String>,
    pub metadata: RawMetadata,
    pub spec: RawSpec,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawMetadata {
    #[schemars(with = "String", length(min = 1))]
    pub name: S<String>,
    #[schemars(with = "String", length(min = 1))]
    pub team: S<String>,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSpec {
    #[schemars(with = "String", regex(pattern = r"^[A-Za-z0-9._-]{1,128}$"))]
    pub service: S<String>,
    #[schemars(
        with = "Option<String>",
        regex(pattern = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    )]
    pub namespace: Option<S<String>>,
    #[schemars(with = "RawRouter")]
    pub router: S<RawRouter>,
    #[schemars(with = "String", regex(pattern = r"^\s*([0-9]+\s*[a-zA-Zµ]+\s*)+$"))]
    pub interval: S<String>,
    #[schemars(
        with = "Option<String>",
        regex(pattern = r"^\s*([0-9]+\s*[a-zA-Zµ]+\s*)+$")
    )]
    pub window: Option<S<String>>,
    #[schemars(with = "Vec<RawStep>")]
    pub steps: S<Vec<RawStep>>,
    pub failure_limit: Option<u32>,
    pub inconclusive_limit: Option<u32>,
    /// rollback (default) | pause
    pub on_inconclusive_limit: Option<OnInconclusiveLimit>,
    pub promotion: Option<Promotion>,
    #[schemars(with = "Vec<RawMetric>")]
    pub metrics: S<Vec<RawMetric>>,
    #[serde(default)]
    pub notifications: Vec<RawNotification>,
    #[schemars(with = "Option<BTreeMap<String, Option<String>>>")]
    pub variables: Option<S<BTreeMap<String, Option<String>>>>,
    /// `semver-sha`: a webhook's imageTag must be `<semver>-<short-sha>`.
    #[schemars(with = "Option<String>", extend("enum" = ["semver-sha", null]))]
    pub image_tag_rule: Option<S<String>>,
    pub gates: Option<RawGates>,
    #[schemars(with = "Option<RawWorkload>")]
    pub workload: Option<S<RawWorkload>>,
}

/// `spec.workload`: the Deployment whose canary canaryd runs.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawWorkload {
    #[schemars(with = "String", length(min = 1))]
    pub deployment: S<String>,
    #[schemars(with = "Option<String>")]
    pub namespace: Option<S<String>>,
    #[schemars(with = "Option<String>")]
    pub container: Option<S<String>>,
    #[schemars(
        with = "Option<String>",
        regex(pattern = r"^\s*([0-9]+\s*[a-zA-Zµ]+\s*)+$")
    )]
    pub progress_deadline: Option<S<String>>,
    #[schemars(with = "Option<i64>", range(min = 1))]
    pub canary_replicas: Option<S<i64>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawRouter {
    #[serde(rename = "type")]
    #[schemars(with = "String", extend("enum" = ["haproxy", "gateway-api", "nginx-ingress", "istio", "smi", "none"]))]
    pub kind: S<String>,
    #[schemars(with = "Option<RawHaproxy>")]
    pub haproxy: Option<S<RawHaproxy>>,
    #[schemars(with = "Option<RawGatewayApi>")]
    pub gateway_api: Option<S<RawGatewayApi>>,
    #[schemars(with = "Option<RawNginxIngress>")]
    pub nginx_ingress: Option<S<RawNginxIngress>>,
    #[schemars(with = "Option<RawIstio>")]
    pub istio: Option<S<RawIstio>>,
    #[schemars(with = "Option<RawSmi>")]
    pub smi: Option<S<RawSmi>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawHaproxy {
    #[schemars(with = "String", length(min = 1))]
    pub address: S<String>,
    #[schemars(with = "String", length(min = 1))]
    pub backend: S<String>,
    #[schemars(with = "String", length(min = 1))]
    pub stable_server: S<String>,
    #[schemars(with = "String", length(min = 1))]
    pub canary_server: S<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawGatewayApi {
    #[schemars(with = "Option<String>")]
    pub namespace: Option<S<String>>,
    #[schemars(with = "String", length(min = 1))]
    pub http_route: S<String>,
    #[schemars(with = "String", length(min = 1))]
    pub stable_service: S<String>,
    #[schemars(with = "String", length(min = 1))]
    pub canary_service: S<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawNginxIngress {
    #[schemars(with = "Option<String>")]
    pub namespace: Option<S<String>>,
    /// The canary Ingress, whose `canary-weight` annotation is set.
    #[schemars(with = "String", length(min = 1))]
    pub canary_ingress: S<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawIstio {
    #[schemars(with = "Option<String>")]
    pub namespace: Option<S<String>>,
    #[schemars(with = "String", length(min = 1))]
    pub virtual_service: S<String>,
    #[schemars(with = "String", length(min = 1))]
    pub stable_host: S<String>,
    #[schemars(with = "String", length(min = 1))]
    pub canary_host: S<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSmi {
    #[schemars(with = "Option<String>")]
    pub namespace: Option<S<String>>,
    #[schemars(with = "String", length(min = 1))]
    pub traffic_split: S<String>,
    #[schemars(with = "String", length(min = 1))]
    pub stable_service: S<String>,
    #[schemars(with = "String", length(min = 1))]
    pub canary_service: S<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawStep {
    #[schemars(with = "i64", range(min = 1, max = 100))]
    pub weight: S<i64>,
    #[schemars(with = "Option<i64>", range(min = 1))]
    pub checks: Option<S<i64>>,
    #[schemars(with = "Option<i64>", range(min = 1))]
    pub max_checks: Option<S<i64>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawMetric {
    #[schemars(with = "String", length(min = 1))]
    pub name: S<String>,
    #[schemars(with = "Option<String>")]
    pub template: Option<S<String>>,
    #[schemars(with = "Option<String>", length(min = 1))]
    pub query: Option<S<String>>,
    /// threshold (default) | mann-whitney | sequential
    #[schemars(with = "Option<String>", extend("enum" = ["threshold", "mann-whitney", "sequential", null]))]
    pub judge: Option<S<String>>,
    /// stable: run for both tracks and compare
    #[schemars(with = "Option<String>", extend("enum" = ["stable", null]))]
    pub compare: Option<S<String>>,
    #[schemars(with = "Option<f64>")]
    pub max: Option<S<f64>>,
    #[schemars(with = "Option<f64>")]
    pub min: Option<S<f64>>,
    #[schemars(with = "Option<f64>")]
    pub max_ratio: Option<S<f64>>,
    #[schemars(with = "Option<f64>")]
    pub min_ratio: Option<S<f64>>,
    #[schemars(with = "Option<f64>")]
    pub max_increase: Option<S<f64>>,
    #[serde(default)]
    pub on_no_data: OnNoData,
    /// Measured and shown, never deciding.
    #[schemars(with = "Option<bool>")]
    pub dry_run: Option<S<bool>>,
    /// remove (default): a gap is no data | replace: a gap is zero
    #[serde(default)]
    pub nan_strategy: NanStrategy,
    // mann-whitney
    #[schemars(with = "Option<Direction>")]
    pub direction: Option<S<Direction>>,
    #[schemars(with = "Option<f64>")]
    pub confidence: Option<S<f64>>,
    #[schemars(with = "Option<f64>")]
    pub allowed_increase: Option<S<f64>>,
    #[schemars(with = "Option<f64>")]
    pub allowed_decrease: Option<S<f64>>,
    #[schemars(with = "Option<bool>")]
    pub remove_outliers: Option<S<bool>>,
    #[schemars(with = "Option<bool>")]
    pub must_have_data: Option<S<bool>>,
    #[schemars(
        with = "Option<String>",
        regex(pattern = r"^\s*([0-9]+\s*[a-zA-Zµ]+\s*)+$")
    )]
    pub sample_step: Option<S<String>>,
    #[schemars(with = "Option<i64>", range(min = 1))]
    pub min_samples: Option<S<i64>>,
    // sequential
    #[schemars(with = "Option<String>")]
    pub errors: Option<S<String>>,
    #[schemars(with = "Option<String>")]
    pub requests: Option<S<String>>,
    #[schemars(with = "Option<f64>")]
    pub acceptable: Option<S<f64>>,
    #[schemars(with = "Option<f64>")]
    pub alpha: Option<S<f64>>,
    #[schemars(with = "Option<f64>")]
    pub beta: Option<S<f64>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawNotification {
    #[schemars(with = "String", length(min = 1))]
    pub url: S<String>,
    #[serde(default = "default_format")]
    pub format: NotificationFormat,
    #[schemars(with = "Vec<String>")]
    pub on: S<Vec<S<String>>>,
}

fn default_format() -> NotificationFormat {
    NotificationFormat::Json
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawGates {
    /// Promotion waits until this URL answers 2xx.
    #[schemars(with = "Option<String>")]
    pub confirm_promotion: Option<S<String>>,
    /// How long it waits before pausing for a person (default 1h).
    #[schemars(
        with = "Option<String>",
        regex(pattern = r"^\s*([0-9]+\s*[a-zA-Zµ]+\s*)+$")
    )]
    pub timeout: Option<S<String>>,
}

/// `strategies/_templates/<name>.yaml`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTemplateFile {
    #[schemars(with = "String", extend("const" = "canaryd/v1"))]
    pub api_version: S<String>,
    #[schemars(with = "String", extend("const" = "MetricTemplate"))]
    pub kind: S<String>,
    pub metadata: RawTemplateMetadata,
    pub spec: RawTemplateSpec,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTemplateMetadata {
    #[schemars(with = "String", length(min = 1))]
    pub name: S<String>,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTemplateSpec {
    #[schemars(with = "String", length(min = 1))]
    pub query: S<String>,
}
