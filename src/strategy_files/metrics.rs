//! Validation of `spec.metrics`: names, the judge, and its queries rendered and
//! checked as PromQL. Each judge's own settings are in `judges`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_saphyr::{Location, Spanned};

use super::catalog::TemplateCatalog;
use super::diagnostics::FileDiagnostics;
use super::judges;
use super::raw::RawMetric;
use super::validate::duplicates;
use crate::domain::strategy::MetricCheck;
use crate::domain::template::{Template, Variables, promql_duration};

/// What metric validation needs to know of the rest of the strategy.
pub struct MetricContext<'a> {
    pub known: &'a dyn Fn(&str) -> bool,
    pub catalog: &'a TemplateCatalog,
    pub service: &'a str,
    pub namespace: &'a str,
    pub window: Duration,
    pub interval: Duration,
    pub variables: &'a BTreeMap<String, Option<String>>,
}

impl MetricContext<'_> {
    /// Stand-in values used to render queries for the PromQL syntax check.
    pub(super) fn sample_variables(&self, track: &str) -> Variables {
        let mut values: Variables = self
            .variables
            .iter()
            .map(|(name, default)| {
                (
                    name.clone(),
                    default.clone().unwrap_or_else(|| "example".into()),
                )
            })
            .collect();
        for (name, value) in [
            ("service", self.service.to_string()),
            ("environment", "production".to_string()),
            ("track", track.to_string()),
            ("window", promql_duration(self.window)),
            ("stepWindow", promql_duration(self.interval)),
            ("namespace", self.namespace.to_string()),
        ] {
            values.insert(name.to_string(), value);
        }
        values
    }
}

pub fn metrics(
    d: &mut FileDiagnostics,
    metrics: &Spanned<Vec<RawMetric>>,
    context: &MetricContext,
) -> Vec<MetricCheck> {
    if metrics.value.is_empty() {
        d.error(
            &metrics.referenced,
            "metrics must list at least one metric: canaryd never promotes without evidence",
        );
    }
    for repeated in duplicates(metrics.value.iter().map(|m| &m.name)) {
        d.error(
            &repeated.referenced,
            format!("metric name '{}' is used twice", repeated.value),
        );
    }
    metrics
        .value
        .iter()
        .filter_map(|raw| metric(d, raw, context))
        .collect()
}

fn metric(
    d: &mut FileDiagnostics,
    raw: &RawMetric,
    context: &MetricContext,
) -> Option<MetricCheck> {
    let name = raw.name.value.clone();
    let label = format!("metric '{name}'");
    if name.trim().is_empty() {
        d.error(&raw.name.referenced, "metric name must not be empty");
    }
    let judge_kind = raw.judge.as_ref().map_or("threshold", |j| j.value.as_str());
    let comparing = match &raw.compare {
        None => false,
        Some(compare) if compare.value == "stable" && judge_kind == "threshold" => true,
        Some(compare) if compare.value == "stable" => {
            d.error(&compare.referenced, format!("{label}: compare applies to the threshold judge; judge '{judge_kind}' compares with stable itself"));
            false
        }
        Some(compare) => {
            d.error(
                &compare.referenced,
                format!(
                    "{label}: compare must be 'stable', found '{}'",
                    compare.value
                ),
            );
            false
        }
    };
    let judge = match judge_kind {
        "threshold" if comparing => judges::compare_stable(d, raw, context, &label),
        "threshold" => judges::threshold(d, raw, context, &label),
        "mann-whitney" => judges::mann_whitney(d, raw, context, &label),
        "sequential" => judges::sequential(d, raw, context, &label),
        other => {
            let at = raw
                .judge
                .as_ref()
                .map_or(raw.name.referenced, |j| j.referenced);
            d.error(
                &at,
                format!(
                    "{label}: judge '{other}' is not one of threshold, mann-whitney, sequential"
                ),
            );
            None
        }
    };
    Some(MetricCheck {
        name,
        on_no_data: raw.on_no_data,
        dry_run: raw.dry_run.as_ref().is_some_and(|d| d.value),
        nan_strategy: raw.nan_strategy,
        judge: judge?,
    })
}

/// Locations of the fields that belong to each judge, to refuse the ones that don't apply.
fn fields_of(raw: &RawMetric) -> [(&'static str, &'static str, Option<Location>); 16] {
    fn at<T>(field: &Option<Spanned<T>>) -> Option<Location> {
        field.as_ref().map(|f| f.referenced)
    }
    [
        ("max", "max", at(&raw.max)),
        ("min", "threshold", at(&raw.min)),
        ("maxRatio", "compare", at(&raw.max_ratio)),
        ("minRatio", "compare", at(&raw.min_ratio)),
        ("maxIncrease", "compare", at(&raw.max_increase)),
        ("direction", "mann-whitney", at(&raw.direction)),
        ("confidence", "mann-whitney", at(&raw.confidence)),
        ("allowedIncrease", "mann-whitney", at(&raw.allowed_increase)),
        ("allowedDecrease", "mann-whitney", at(&raw.allowed_decrease)),
        ("removeOutliers", "mann-whitney", at(&raw.remove_outliers)),
        ("mustHaveData", "mann-whitney", at(&raw.must_have_data)),
        ("sampleStep", "mann-whitney", at(&raw.sample_step)),
        ("minSamples", "mann-whitney", at(&raw.min_samples)),
        ("acceptable", "sequential", at(&raw.acceptable)),
        ("alpha", "sequential", at(&raw.alpha)),
        ("beta", "sequential", at(&raw.beta)),
    ]
}

/// Refuses fields of other judges; `groups` are the field groups this judge accepts.
pub(super) fn only_fields(
    d: &mut FileDiagnostics,
    raw: &RawMetric,
    label: &str,
    judge: &str,
    groups: &[&str],
) {
    for (field, group, location) in fields_of(raw) {
        if let Some(location) = location.filter(|_| !groups.contains(&group)) {
            d.error(
                &location,
                format!("{label}: '{field}' does not apply to {judge}"),
            );
        }
    }
    for (field, value) in [("errors", &raw.errors), ("requests", &raw.requests)] {
        if let Some(value) = value.as_ref().filter(|_| !groups.contains(&"sequential")) {
            d.error(
                &value.referenced,
                format!("{label}: '{field}' applies only to judge: sequential"),
            );
        }
    }
}

/// The metric's one query: `query:` or a named `template:`, checked as PromQL for
/// each track it will run on.
pub(super) fn single_query(
    d: &mut FileDiagnostics,
    raw: &RawMetric,
    context: &MetricContext,
    label: &str,
    tracks: &[&str],
) -> Option<Template> {
    let (template, at) = match (&raw.query, &raw.template) {
        (Some(query), None) => (
            d.template(query, context.known, &format!("{label}: query"))?,
            query.referenced,
        ),
        (None, Some(name)) => (named_template(d, name, context, label)?, name.referenced),
        (Some(query), Some(_)) => {
            d.error(
                &query.referenced,
                format!("{label}: set either query or template, not both"),
            );
            return None;
        }
        (None, None) => {
            d.error(
                &raw.name.referenced,
                format!("{label} needs a query or a template"),
            );
            return None;
        }
    };
    promql(d, &template, at, context, label, tracks).then_some(template)
}

fn named_template(
    d: &mut FileDiagnostics,
    name: &Spanned<String>,
    context: &MetricContext,
    label: &str,
) -> Option<Template> {
    let Some(entry) = context.catalog.get(&name.value) else {
        let known: Vec<_> = context.catalog.names().collect();
        d.error(
            &name.referenced,
            format!(
                "{label}: unknown template '{}'; known templates: {}",
                name.value,
                known.join(", ")
            ),
        );
        return None;
    };
    match Template::parse(&entry.query, context.known) {
        Ok(template) => Some(template),
        Err(error) => {
            let origin = entry
                .path
                .as_ref()
                .map_or("built-in".to_string(), |p| p.display().to_string());
            d.error(
                &name.referenced,
                format!(
                    "{label}: template '{}' ({origin}): {}",
                    name.value, error.message
                ),
            );
            None
        }
    }
}

pub(super) fn counts_query(
    d: &mut FileDiagnostics,
    value: Option<&Spanned<String>>,
    builtin: &str,
    context: &MetricContext,
    label: &str,
    field: &str,
) -> Option<Template> {
    let (template, at) = match value {
        Some(value) => (
            d.template(value, context.known, &format!("{label}: {field}"))?,
            value.referenced,
        ),
        None => (
            Template::parse(builtin, context.known).ok()?,
            Location::UNKNOWN,
        ),
    };
    promql(d, &template, at, context, label, &["canary"]).then_some(template)
}

/// Renders the template with stand-in values and parses it as PromQL.
fn promql(
    d: &mut FileDiagnostics,
    template: &Template,
    at: Location,
    context: &MetricContext,
    label: &str,
    tracks: &[&str],
) -> bool {
    for track in tracks {
        let Ok(rendered) = template.render(&context.sample_variables(track)) else {
            continue;
        };
        if let Err(error) = crate::domain::promql::parse(&rendered) {
            let error = error.trim().replace('\n', " ");
            d.error(
                &at,
                format!("{label}: not valid PromQL after rendering for track={track}: {error}"),
            );
            return false;
        }
    }
    true
}
