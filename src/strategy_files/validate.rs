//! Raw strategy → validated `Strategy`, collecting every mistake with its position.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_saphyr::Spanned;

use super::catalog::TemplateCatalog;
use super::diagnostics::FileDiagnostics;
use super::metrics::{self, MetricContext};
use super::raw::{RawNotification, RawSpec, RawStep, RawStrategyFile};
use crate::domain::analysis::Status;
use crate::domain::strategy::{
    DEFAULT_GATE_TIMEOUT, DEFAULT_MAX_CHECKS, Notification, Promotion, Step, Strategy, StrategyId,
};
use crate::domain::template::{BUILTIN_VARIABLES, Template};

pub const API_VERSION: &str = "canaryd/v1";
pub const DEFAULT_INCONCLUSIVE_LIMIT: u32 = 3;

/// What the file's place on disk says the strategy must be called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileIdentity {
    pub team: String,
    pub name: String,
}

/// Validates one strategy file; `None` when it had any error (all are in `d`).
pub fn strategy(
    d: &mut FileDiagnostics,
    raw: RawStrategyFile,
    identity: &FileIdentity,
    catalog: &TemplateCatalog,
) -> Option<Strategy> {
    let errors_before = d.errors.len();
    header(d, &raw.api_version, &raw.kind, "Strategy");
    let meta = &raw.metadata;
    if meta.team.value != identity.team {
        let message = format!(
            "metadata.team '{}' must match the folder '{}'",
            meta.team.value, identity.team
        );
        d.error(&meta.team.referenced, message);
    }
    if meta.name.value != identity.name {
        let message = format!(
            "metadata.name '{}' must match the file name '{}'",
            meta.name.value, identity.name
        );
        d.error(&meta.name.referenced, message);
    }
    let id = StrategyId {
        team: meta.team.value.clone(),
        name: meta.name.value.clone(),
    };
    let description = meta.description.clone();
    let strategy = spec(d, raw.spec, id, description, catalog);
    if d.errors.len() > errors_before {
        return None;
    }
    strategy
}

/// Checks `apiVersion` and `kind`.
pub fn header(
    d: &mut FileDiagnostics,
    api_version: &Spanned<String>,
    kind: &Spanned<String>,
    expected: &str,
) {
    if api_version.value != API_VERSION {
        let message = format!(
            "apiVersion must be '{API_VERSION}', found '{}'",
            api_version.value
        );
        d.error(&api_version.referenced, message);
    }
    if kind.value != expected {
        d.error(
            &kind.referenced,
            format!("kind must be '{expected}', found '{}'", kind.value),
        );
    }
}

fn spec(
    d: &mut FileDiagnostics,
    spec: RawSpec,
    id: StrategyId,
    description: String,
    catalog: &TemplateCatalog,
) -> Option<Strategy> {
    let variables = declared_variables(d, spec.variables.as_ref());
    let known = |name: &str| BUILTIN_VARIABLES.contains(&name) || variables.contains_key(name);
    let service = service_name(d, &spec.service);
    let namespace = spec
        .namespace
        .as_ref()
        .map_or("default".to_string(), |n| namespace_name(d, n));
    let interval = duration(d, &spec.interval, "interval");
    let window = match &spec.window {
        Some(window) => duration(d, window, "window"),
        None => interval,
    };
    if let Some(window) = window {
        let at = spec.window.as_ref().unwrap_or(&spec.interval).referenced;
        d.lint_window(&at, window);
    }
    let steps = steps(d, &spec.steps);
    let router = super::router::router(d, &spec.router, &known);
    let workload = super::workload::workload(d, spec.workload.as_ref(), router.as_ref(), &known);
    let notifications = spec
        .notifications
        .iter()
        .filter_map(|n| notification(d, n))
        .collect();
    let require_semver_sha_tag = image_tag_rule(d, spec.image_tag_rule.as_ref());
    let gates = spec.gates.unwrap_or_default();
    let confirm_promotion = gates
        .confirm_promotion
        .and_then(|url| http_url(d, &url, "gates.confirmPromotion"));
    let gate_timeout = match &gates.timeout {
        Some(timeout) => duration(d, timeout, "gates.timeout"),
        None => Some(DEFAULT_GATE_TIMEOUT),
    };
    let context = MetricContext {
        known: &known,
        catalog,
        service: service.as_deref().unwrap_or("service"),
        namespace: &namespace,
        window: window.unwrap_or(Duration::from_secs(60)),
        interval: interval.unwrap_or(Duration::from_secs(60)),
        variables: &variables,
    };
    let metrics = metrics::metrics(d, &spec.metrics, &context);
    if !spec.metrics.value.is_empty() && metrics.iter().all(|m| m.dry_run) {
        let message = "metrics: every metric is dryRun; at least one must decide".to_string();
        d.error(&spec.metrics.referenced, message);
    }
    Some(Strategy {
        id,
        description,
        service: service?,
        namespace,
        router: router?,
        interval: interval?,
        window: window?,
        steps: steps?,
        failure_limit: spec.failure_limit.unwrap_or(0),
        inconclusive_limit: spec
            .inconclusive_limit
            .unwrap_or(DEFAULT_INCONCLUSIVE_LIMIT),
        promotion: spec.promotion.unwrap_or(Promotion::Auto),
        metrics,
        notifications,
        variables,
        require_semver_sha_tag,
        confirm_promotion,
        gate_timeout: gate_timeout?,
        on_inconclusive_limit: spec.on_inconclusive_limit.unwrap_or_default(),
        workload: workload?,
    })
}

fn declared_variables(
    d: &mut FileDiagnostics,
    declared: Option<&Spanned<BTreeMap<String, Option<String>>>>,
) -> BTreeMap<String, Option<String>> {
    let Some(declared) = declared else {
        return BTreeMap::new();
    };
    for name in declared.value.keys() {
        if BUILTIN_VARIABLES.contains(&name.as_str()) {
            let message =
                format!("variables: '{name}' is a built-in variable and cannot be declared");
            d.error(&declared.referenced, message);
        } else if Template::parse(&format!("{{{{{name}}}}}"), |_| true).is_err() {
            d.error(
                &declared.referenced,
                format!("variables: '{name}' is not a valid variable name"),
            );
        }
    }
    declared.value.clone()
}

pub fn non_empty(d: &mut FileDiagnostics, value: &Spanned<String>, field: &str) -> Option<String> {
    if value.value.trim().is_empty() {
        d.error(&value.referenced, format!("{field} must not be empty"));
        return None;
    }
    Some(value.value.clone())
}

/// `spec.service` is the default `{{service}}`: it must pass the rule a webhook's
/// `service` passes, or no request could use the strategy as written.
fn service_name(d: &mut FileDiagnostics, value: &Spanned<String>) -> Option<String> {
    let service = non_empty(d, value, "service")?;
    if !crate::engine::request::name_like(&service, 128) {
        d.error(
            &value.referenced,
            format!("service '{service}': letters, digits, '-', '_' or '.', at most 128"),
        );
        return None;
    }
    Some(service)
}

/// `spec.namespace` renders into queries as `{{namespace}}`: a Kubernetes namespace
/// name (RFC 1123 label), nothing that could end a PromQL string.
fn namespace_name(d: &mut FileDiagnostics, value: &Spanned<String>) -> String {
    let name = &value.value;
    let valid = (1..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !valid {
        d.error(
            &value.referenced,
            format!("namespace '{name}' is not a Kubernetes namespace name: lower-case letters, digits and '-', at most 63"),
        );
    }
    name.clone()
}

/// Parses a humantime duration (`30s`, `1m30s`) of at least one second.
pub fn duration(d: &mut FileDiagnostics, value: &Spanned<String>, field: &str) -> Option<Duration> {
    match humantime::parse_duration(value.value.trim()) {
        Err(error) => {
            let message = format!(
                "{field}: '{}' is not a duration ({error}); write e.g. 30s or 1m",
                value.value
            );
            d.error(&value.referenced, message);
            None
        }
        Ok(parsed) if parsed < Duration::from_secs(1) => {
            d.error(
                &value.referenced,
                format!("{field} must be at least 1s, found '{}'", value.value),
            );
            None
        }
        Ok(parsed) => Some(parsed),
    }
}

fn steps(d: &mut FileDiagnostics, steps: &Spanned<Vec<RawStep>>) -> Option<Vec<Step>> {
    if steps.value.is_empty() {
        d.error(&steps.referenced, "steps must list at least one step");
        return None;
    }
    let before = d.errors.len();
    let mut previous: Option<i64> = None;
    let mut valid = Vec::new();
    for (index, raw) in steps.value.iter().enumerate() {
        let at = format!("steps[{index}]");
        let weight = raw.weight.value;
        if !(1..=100).contains(&weight) {
            d.error(
                &raw.weight.referenced,
                format!("{at}.weight must be within 1..=100, found {weight}"),
            );
        } else if let Some(previous) = previous.filter(|p| weight <= *p) {
            let message = format!(
                "{at}.weight must be greater than the previous step's {previous}, found {weight}"
            );
            d.error(&raw.weight.referenced, message);
        }
        if (1..=100).contains(&weight) {
            previous = Some(weight);
        }
        let checks = positive(d, raw.checks.as_ref(), 1, &format!("{at}.checks"));
        let max_checks = positive(
            d,
            raw.max_checks.as_ref(),
            DEFAULT_MAX_CHECKS.max(checks),
            &format!("{at}.maxChecks"),
        );
        if max_checks < checks {
            let location = raw
                .max_checks
                .as_ref()
                .map(|m| m.referenced)
                .unwrap_or(raw.weight.referenced);
            d.error(
                &location,
                format!("{at}.maxChecks ({max_checks}) must be at least checks ({checks})"),
            );
        }
        valid.push(Step {
            weight: u8::try_from(weight).unwrap_or(0),
            checks,
            max_checks,
        });
    }
    (d.errors.len() == before).then_some(valid)
}

fn positive(
    d: &mut FileDiagnostics,
    value: Option<&Spanned<i64>>,
    default: u32,
    field: &str,
) -> u32 {
    let Some(value) = value else {
        return default;
    };
    match u32::try_from(value.value) {
        Ok(n) if n >= 1 => n,
        _ => {
            d.error(
                &value.referenced,
                format!(
                    "{field} must be a whole number of at least 1, found {}",
                    value.value
                ),
            );
            default
        }
    }
}

fn notification(d: &mut FileDiagnostics, raw: &RawNotification) -> Option<Notification> {
    let url = http_url(d, &raw.url, "notifications.url");
    let mut on = Vec::new();
    for status in &raw.on.value {
        match Status::parse(&status.value) {
            Some(parsed) => on.push(parsed),
            None => {
                let names: Vec<_> = Status::ALL
                    .iter()
                    .map(|s| s.as_str().to_lowercase())
                    .collect();
                let message = format!(
                    "notifications.on: '{}' is not a status; use {}",
                    status.value,
                    names.join(", ")
                );
                d.error(&status.referenced, message);
            }
        }
    }
    if raw.on.value.is_empty() {
        d.error(
            &raw.on.referenced,
            "notifications.on must name at least one status",
        );
    }
    Some(Notification {
        url: url?,
        format: raw.format,
        on,
    })
}

fn http_url(d: &mut FileDiagnostics, value: &Spanned<String>, field: &str) -> Option<String> {
    let url = value.value.trim();
    let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
    if !scheme_ok || url.len() <= "https://".len() {
        d.error(
            &value.referenced,
            format!("{field} must be an http:// or https:// URL, found '{url}'"),
        );
        return None;
    }
    Some(url.to_string())
}

fn image_tag_rule(d: &mut FileDiagnostics, rule: Option<&Spanned<String>>) -> bool {
    match rule {
        None => false,
        Some(rule) if rule.value == "semver-sha" => true,
        Some(rule) => {
            d.error(
                &rule.referenced,
                format!("imageTagRule must be 'semver-sha', found '{}'", rule.value),
            );
            false
        }
    }
}

/// Names used twice in a list, with the place of each repeat.
pub fn duplicates<'a>(
    names: impl Iterator<Item = &'a Spanned<String>>,
) -> Vec<&'a Spanned<String>> {
    let mut seen = BTreeSet::new();
    names
        .filter(|name| !seen.insert(name.value.as_str()))
        .collect()
}
