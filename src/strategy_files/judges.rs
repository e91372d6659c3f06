//! The settings and limits of each judge, as a metric sets them.

use std::time::Duration;

use serde_saphyr::Spanned;

use super::catalog::{HTTP_ERRORS_SINCE_STEP, HTTP_REQUESTS_SINCE_STEP};
use super::diagnostics::FileDiagnostics;
use super::metrics::{MetricContext, counts_query, only_fields, single_query};
use super::raw::RawMetric;
use super::validate::duration;
use crate::domain::strategy::{
    Bounds, CompareLimits, Direction, JudgeSpec, MannWhitneyConfig, SequentialConfig,
};

pub(super) fn threshold(
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

pub(super) fn compare_stable(
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

pub(super) fn mann_whitney(
    d: &mut FileDiagnostics,
    raw: &RawMetric,
    context: &MetricContext,
    label: &str,
) -> Option<JudgeSpec> {
    only_fields(d, raw, label, "judge: mann-whitney", &["mann-whitney"]);
    let query = single_query(d, raw, context, label, &["canary", "stable"]);
    let confidence = mann_whitney_limits(d, raw, label);
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
    if let (Some(step), Some(query)) = (sample_step, &query) {
        samples_per_window(d, raw, context, label, step, min_samples);
        if let Ok(rendered) = query.render(&context.sample_variables("canary")) {
            let at = raw
                .sample_step
                .as_ref()
                .map_or(raw.name.referenced, |s| s.referenced);
            d.lint_sample_overlap(&at, label, &rendered, step);
        }
    }
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

/// `confidence` within (0.5, 1), and the tolerated effects as ratios of means; returns
/// the confidence.
fn mann_whitney_limits(d: &mut FileDiagnostics, raw: &RawMetric, label: &str) -> f64 {
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
    confidence
}

/// A window that holds fewer samples than `minSamples` can never be judged: every
/// check would be INCONCLUSIVE, and healthy canaries roll back.
fn samples_per_window(
    d: &mut FileDiagnostics,
    raw: &RawMetric,
    context: &MetricContext,
    label: &str,
    step: Duration,
    min_samples: usize,
) {
    let samples = (context.window.as_secs_f64() / step.as_secs_f64()).floor() as usize;
    if samples >= min_samples {
        return;
    }
    let at = raw
        .min_samples
        .as_ref()
        .map(|m| m.referenced)
        .or(raw.sample_step.as_ref().map(|s| s.referenced))
        .unwrap_or(raw.name.referenced);
    let message = format!(
        "{label}: window {} / sampleStep {} gives {samples} samples per track, fewer than minSamples {min_samples}: \
         the judge could never decide; lengthen spec.window, shorten sampleStep or lower minSamples",
        humantime::format_duration(context.window),
        humantime::format_duration(step),
    );
    d.error(&at, message);
}

pub(super) fn sequential(
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
