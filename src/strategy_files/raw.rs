//! The strategy YAML exactly as written: serde structs with `deny_unknown_fields` and
//! `Spanned` values wherever validation may need to point at a line and column.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::domain::strategy::{
    Direction, NanStrategy, NotificationFormat, OnInconclusiveLimit, OnNoData, Promotion,
};

pub type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawStrategyFile {
    pub api_version: S<String>,
    pub kind: S<String>,
    pub metadata: RawMetadata,
    pub spec: RawSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawMetadata {
    pub name: S<String>,
    pub team: S<String>,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSpec {
    pub service: S<String>,
    pub namespace: Option<S<String>>,
    pub router: S<RawRouter>,
    pub interval: S<String>,
    pub window: Option<S<String>>,
    pub steps: S<Vec<RawStep>>,
    pub failure_limit: Option<u32>,
    pub inconclusive_limit: Option<u32>,
    /// rollback (default) | pause
    pub on_inconclusive_limit: Option<OnInconclusiveLimit>,
    pub promotion: Option<Promotion>,
    pub metrics: S<Vec<RawMetric>>,
    #[serde(default)]
    pub notifications: Vec<RawNotification>,
    pub variables: Option<S<BTreeMap<String, Option<String>>>>,
    /// `semver-sha`: a webhook's imageTag must be `<semver>-<short-sha>`.
    pub image_tag_rule: Option<S<String>>,
    pub gates: Option<RawGates>,
    pub workload: Option<S<RawWorkload>>,
}

/// `spec.workload`: the Deployment whose canary canaryd runs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawWorkload {
    pub deployment: S<String>,
    pub namespace: Option<S<String>>,
    pub container: Option<S<String>>,
    pub progress_deadline: Option<S<String>>,
    pub canary_replicas: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawRouter {
    #[serde(rename = "type")]
    pub kind: S<String>,
    pub haproxy: Option<S<RawHaproxy>>,
    pub gateway_api: Option<S<RawGatewayApi>>,
    pub nginx_ingress: Option<S<RawNginxIngress>>,
    pub istio: Option<S<RawIstio>>,
    pub smi: Option<S<RawSmi>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawHaproxy {
    pub address: S<String>,
    pub backend: S<String>,
    pub stable_server: S<String>,
    pub canary_server: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawGatewayApi {
    pub namespace: Option<S<String>>,
    pub http_route: S<String>,
    pub stable_service: S<String>,
    pub canary_service: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawNginxIngress {
    pub namespace: Option<S<String>>,
    /// The canary Ingress, whose `canary-weight` annotation is set.
    pub canary_ingress: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawIstio {
    pub namespace: Option<S<String>>,
    pub virtual_service: S<String>,
    pub stable_host: S<String>,
    pub canary_host: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSmi {
    pub namespace: Option<S<String>>,
    pub traffic_split: S<String>,
    pub stable_service: S<String>,
    pub canary_service: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawStep {
    pub weight: S<i64>,
    pub checks: Option<S<i64>>,
    pub max_checks: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawMetric {
    pub name: S<String>,
    pub template: Option<S<String>>,
    pub query: Option<S<String>>,
    /// threshold (default) | mann-whitney | sequential
    pub judge: Option<S<String>>,
    /// stable: run for both tracks and compare
    pub compare: Option<S<String>>,
    pub max: Option<S<f64>>,
    pub min: Option<S<f64>>,
    pub max_ratio: Option<S<f64>>,
    pub min_ratio: Option<S<f64>>,
    pub max_increase: Option<S<f64>>,
    #[serde(default)]
    pub on_no_data: OnNoData,
    /// Measured and shown, never deciding.
    pub dry_run: Option<S<bool>>,
    /// remove (default): a gap is no data | replace: a gap is zero
    #[serde(default)]
    pub nan_strategy: NanStrategy,
    // mann-whitney
    pub direction: Option<S<Direction>>,
    pub confidence: Option<S<f64>>,
    pub allowed_increase: Option<S<f64>>,
    pub allowed_decrease: Option<S<f64>>,
    pub remove_outliers: Option<S<bool>>,
    pub must_have_data: Option<S<bool>>,
    pub sample_step: Option<S<String>>,
    pub min_samples: Option<S<i64>>,
    // sequential
    pub errors: Option<S<String>>,
    pub requests: Option<S<String>>,
    pub acceptable: Option<S<f64>>,
    pub alpha: Option<S<f64>>,
    pub beta: Option<S<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawNotification {
    pub url: S<String>,
    #[serde(default = "default_format")]
    pub format: NotificationFormat,
    pub on: S<Vec<S<String>>>,
}

fn default_format() -> NotificationFormat {
    NotificationFormat::Json
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawGates {
    /// Promotion waits until this URL answers 2xx.
    pub confirm_promotion: Option<S<String>>,
    /// How long it waits before pausing for a person (default 1h).
    pub timeout: Option<S<String>>,
}

/// `strategies/_templates/<name>.yaml`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTemplateFile {
    pub api_version: S<String>,
    pub kind: S<String>,
    pub metadata: RawTemplateMetadata,
    pub spec: RawTemplateSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTemplateMetadata {
    pub name: S<String>,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawTemplateSpec {
    pub query: S<String>,
}
