//! Validation of `spec.metrics`: the judge, its queries and its limits.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_saphyr::{Location, Spanned};

use super::catalog::{HTTP_ERRORS_SINCE_STEP, HTTP_REQUESTS_SINCE_STEP, TemplateCatalog};
use super::diagnostics::FileDiagnostics;
use super::raw::RawMetric;
use super::validate::{duplicates, duration};
use crate::domain::strategy::{
    Bounds, CompareLimits, Direction, JudgeSpec, MannWhitneyConfig, MetricCheck, SequentialConfig,
};
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
    fn sample_variables(&self, track: &str) -> Variables {
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
        "threshold" if comparing => compare_stable(d, raw, context, &label),
        "threshold" => threshold(d, raw, context, &label),
        "mann-whitney" => mann_whitney(d, raw, context, &label),
        "sequential" => sequential(d, raw, context, &label),
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
fn only_fields(
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

fn threshold(
    d: &mut FileDiagnostics,
    raw: &RawMetric,
    context: &MetricContext,
    label: &str,
) -> Option<JudgeSpec> {
    only_fields(d, raw, label, "the threshold judge", &["threshold", "max"]);
    let query = single_query(d, raw, context, label, &["canary"]);
    let bounds = Bounds {
        max: raw.max.as_ref().map(|m| m.value),
        min: raw.min.as_ref().map(|m| m.value),
    };
    match (&raw.min, &raw.max) {
        (None, None) => d.error(
            &raw.name.referenced,
            format!("{label} needs a limit: set max, min or both"),
        ),
        (Some(min), Some(max)) if min.value > max.value => {
            d.error(
                &min.referenced,
                format!(
                    "{label}: min {} is greater than max {}",
                    min.value, max.value
                ),
            );
        }
        _ => {}
    }
    for limit in [&raw.min, &raw.max].into_iter().flatten() {
        finite(d, limit, label);
    }
    Some(JudgeSpec::Threshold {
        query: query?,
        bounds,
    })
}

fn compare_stable(
    d: &mut FileDiagnostics,
    raw: &RawMetric,
    context: &MetricContext,
    label: &str,
) -> Option<JudgeSpec> {
    only_fields(d, raw, label, "compare: stable", &["compare"]);
    let query = single_query(d, raw, context, label, &["canary", "stable"]);
    let limits = CompareLimits {
        max_ratio: raw.max_ratio.as_ref().map(|v| v.value),
        min_ratio: raw.min_ratio.as_ref().map(|v| v.value),
        max_increase: raw.max_increase.as_ref().map(|v| v.value),
    };
    if limits == CompareLimits::default() {
        d.error(
            &raw.name.referenced,
            format!("{label} compares with stable and needs maxRatio, minRatio or maxIncrease"),
        );
    }
    for ratio in [&raw.max_ratio, &raw.min_ratio].into_iter().flatten() {
        if !(ratio.value > 0.0 && ratio.value.is_finite()) {
            d.error(
                &ratio.referenced,
                format!(
                    "{label}: a ratio must be a positive number, found {}",
                    ratio.value
                ),
            );
        }
    }
    if let Some(increase) = &raw.max_increase {
        finite(d, increase, label);
    }
    Some(JudgeSpec::CompareStable {
        query: query?,
        limits,
    })
}

fn mann_whitney(
    d: &mut FileDiagnostics,
    raw: &RawMetric,
    context: &MetricContext,
    label: &str,
) -> Option<JudgeSpec> {
    only_fields(d, raw, label, "judge: mann-whitney", &["mann-whitney"]);
    let query = single_query(d, raw, context, label, &["canary", "stable"]);
    let confidence = raw.confidence.as_ref().map_or(0.98, |c| c.value);
    if let Some(c) = raw
        .confidence
        .as_ref()
        .filter(|c| !(c.value > 0.5 && c.value < 1.0))
    {
        d.error(
            &c.referenced,
            format!(
                "{label}: confidence must be between 0.5 and 1 (exclusive), found {}",
                c.value
            ),
        );
    }
    if let Some(v) = raw
        .allowed_increase
        .as_ref()
        .filter(|v| !(v.value >= 1.0 && v.value.is_finite()))
    {
        d.error(
            &v.referenced,
            format!(
                "{label}: allowedIncrease is a ratio of means and must be at least 1, found {}",
                v.value
            ),
        );
    }
    if let Some(v) = raw
        .allowed_decrease
        .as_ref()
        .filter(|v| !(v.value > 0.0 && v.value <= 1.0))
    {
        d.error(
            &v.referenced,
            format!(
                "{label}: allowedDecrease is a ratio of means within (0, 1], found {}",
                v.value
            ),
        );
    }
    let sample_step = match &raw.sample_step {
        Some(step) => duration(d, step, &format!("{label}: sampleStep")),
        None => Some(Duration::from_secs(10)),
    };
    let min_samples = match &raw.min_samples {
        Some(n) if n.value >= 3 => n.value as usize,
        Some(n) => {
            d.error(
                &n.referenced,
                format!("{label}: minSamples must be at least 3, found {}", n.value),
            );
            3
        }
        None => 10,
    };
    let config = MannWhitneyConfig {
        direction: raw
            .direction
            .as_ref()
            .map_or(Direction::Increase, |v| v.value),
        confidence,
        allowed_increase: raw.allowed_increase.as_ref().map(|v| v.value),
        allowed_decrease: raw.allowed_decrease.as_ref().map(|v| v.value),
        remove_outliers: raw.remove_outliers.as_ref().is_some_and(|v| v.value),
        must_have_data: raw.must_have_data.as_ref().is_some_and(|v| v.value),
        sample_step: sample_step?,
        min_samples,
    };
    Some(JudgeSpec::MannWhitney {
        query: query?,
        config,
    })
}

fn sequential(
    d: &mut FileDiagnostics,
    raw: &RawMetric,
    context: &MetricContext,
    label: &str,
) -> Option<JudgeSpec> {
    only_fields(d, raw, label, "judge: sequential", &["sequential", "max"]);
    for (field, value) in [("query", &raw.query), ("template", &raw.template)] {
        if let Some(value) = value {
            d.error(
                &value.referenced,
                format!(
                    "{label}: judge sequential reads 'errors' and 'requests' counts, not '{field}'"
                ),
            );
        }
    }
    let errors = counts_query(
        d,
        raw.errors.as_ref(),
        HTTP_ERRORS_SINCE_STEP,
        context,
        label,
        "errors",
    );
    let requests = counts_query(
        d,
        raw.requests.as_ref(),
        HTTP_REQUESTS_SINCE_STEP,
        context,
        label,
        "requests",
    );
    if raw.errors.is_some() != raw.requests.is_some() {
        let at = raw
            .errors
            .as_ref()
            .or(raw.requests.as_ref())
            .map_or(raw.name.referenced, |v| v.referenced);
        d.error(
            &at,
            format!(
                "{label}: set both 'errors' and 'requests', or neither for the built-in HTTP counts"
            ),
        );
    }
    if raw.max.is_none() {
        d.error(
            &raw.name.referenced,
            format!("{label}: judge sequential needs max, the error-rate limit"),
        );
        return None;
    }
    let probability = |d: &mut FileDiagnostics,
                       value: &Option<Spanned<f64>>,
                       field: &str,
                       default: f64,
                       upper: f64| match value {
        Some(v) if v.value > 0.0 && v.value < upper => v.value,
        Some(v) => {
            d.error(
                &v.referenced,
                format!(
                    "{label}: {field} must be within (0, {upper}), found {}",
                    v.value
                ),
            );
            default
        }
        None => default,
    };
    let max_value = probability(d, &raw.max, "max", 0.05, 1.0);
    let acceptable = probability(d, &raw.acceptable, "acceptable", max_value / 2.0, max_value);
    let config = SequentialConfig {
        max: max_value,
        acceptable,
        alpha: probability(d, &raw.alpha, "alpha", 0.01, 0.5),
        beta: probability(d, &raw.beta, "beta", 0.05, 0.5),
    };
    Some(JudgeSpec::Sequential {
        errors: errors?,
        requests: requests?,
        config,
    })
}

fn finite(d: &mut FileDiagnostics, value: &Spanned<f64>, label: &str) {
    if !value.value.is_finite() {
        d.error(
            &value.referenced,
            format!(
                "{label}: a limit must be a finite number, found {}",
                value.value
            ),
        );
    }
}

/// The metric's one query: `query:` or a named `template:`, checked as PromQL for
/// each track it will run on.
fn single_query(
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

fn counts_query(
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
        if let Err(error) = promql_parser::parser::parse(&rendered) {
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
