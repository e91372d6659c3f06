//! Running one check: render each metric's queries, ask the metrics source, judge.
//! Querying and judging are separate steps: `gather` does I/O, `judge::evaluate` decides.

use std::time::Duration;

use futures::future::join_all;

use crate::domain::Timestamp;
use crate::domain::analysis::MetricResult;
use crate::domain::judge::{self, Judgement, Measurement};
use crate::domain::record::{Analysis, CheckRecord};
use crate::domain::strategy::{JudgeSpec, MetricCheck, Strategy};
use crate::domain::template::{Template, Variables, promql_duration};
use crate::ports::{MetricsSource, QueryError};

/// The results of one check, for the state machine and for the record.
pub struct CheckRun {
    pub results: Vec<MetricResult>,
    pub records: Vec<CheckRecord>,
}

/// One evaluation of a strategy's metrics, with or without an analysis behind it (a
/// check, a preflight, a backtest, a decide-only judgement).
pub struct Evaluation<'a> {
    pub strategy: &'a Strategy,
    /// Template values: service, environment, namespace and declared variables.
    pub variables: &'a Variables,
    /// When the queries look back from.
    pub at: Timestamp,
    /// Send `at` as Prometheus's `time`: a replay of the past is evaluated at its own
    /// moment; a live check at the server's now.
    pub pinned: bool,
    /// Value of `{{window}}`.
    pub window: Duration,
    /// Value of `{{stepWindow}}`: time since the step began.
    pub step_elapsed: Duration,
    /// A judge still gathering evidence must decide.
    pub must_decide: bool,
}

/// One metric's result in one evaluation, with the queries as sent.
#[derive(Debug, Clone)]
pub struct MetricOutcome {
    pub metric: String,
    pub queries: Vec<String>,
    pub judgement: Judgement,
    pub dry_run: bool,
}

impl MetricOutcome {
    pub fn result(&self) -> MetricResult {
        MetricResult {
            metric: self.metric.clone(),
            judgement: self.judgement.clone(),
            dry_run: self.dry_run,
        }
    }
}

/// Runs every metric of the strategy once, concurrently, and judges each.
pub async fn evaluate(
    source: &dyn MetricsSource,
    evaluation: &Evaluation<'_>,
) -> Vec<MetricOutcome> {
    let context = QueryContext::of(evaluation);
    let metrics = &evaluation.strategy.metrics;
    let gathered = join_all(metrics.iter().map(|m| gather(source, m, &context))).await;
    metrics
        .iter()
        .zip(gathered)
        .map(|(metric, (queries, measured))| {
            let judgement = match measured {
                Ok(measurement) => judge::evaluate(
                    &metric.judge,
                    measurement.with_nan_strategy(metric.nan_strategy),
                    metric.on_no_data,
                    evaluation.must_decide,
                ),
                Err(error) => Judgement::error(error.to_string()),
            };
            MetricOutcome {
                metric: metric.name.clone(),
                queries,
                judgement,
                dry_run: metric.dry_run,
            }
        })
        .collect()
}

/// A metric's query rendered for one track, as a check would send it.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedQuery {
    pub metric: String,
    pub track: &'static str,
    pub query: Result<String, QueryError>,
}

/// Every query of every metric, for both tracks (a preflight runs them all, including
/// the stable side a threshold judge never asks for).
pub fn rendered_queries(evaluation: &Evaluation<'_>) -> Vec<RenderedQuery> {
    let context = QueryContext::of(evaluation);
    let mut rendered = Vec::new();
    for metric in &evaluation.strategy.metrics {
        for template in metric.judge.queries() {
            for track in ["canary", "stable"] {
                rendered.push(RenderedQuery {
                    metric: metric.name.clone(),
                    track,
                    query: context.render(template, track),
                });
            }
        }
    }
    rendered
}

/// Runs one check of an analysis, evaluated at `due`, its moment on the interval grid
/// (sent as Prometheus's `time`, so checks due together ask the same questions).
pub async fn run(
    metrics: &dyn MetricsSource,
    strategy: Option<&Strategy>,
    analysis: &Analysis,
    due: Timestamp,
) -> CheckRun {
    let state = &analysis.state;
    let outcomes = outcomes(metrics, strategy, analysis, due).await;
    let lag_ms = (chrono::Utc::now() - due).num_milliseconds().max(0) as u64;
    let record = |outcome: &MetricOutcome| CheckRecord {
        check: state.checks_done + 1,
        step: state.step_index + 1,
        canary_weight: state.canary_weight,
        at: due,
        metric: outcome.metric.clone(),
        queries: outcome.queries.clone(),
        judgement: outcome.judgement.clone(),
        dry_run: outcome.dry_run,
        lag_ms,
    };
    CheckRun {
        results: outcomes.iter().map(MetricOutcome::result).collect(),
        records: outcomes.iter().map(record).collect(),
    }
}

async fn outcomes(
    metrics: &dyn MetricsSource,
    strategy: Option<&Strategy>,
    analysis: &Analysis,
    now: Timestamp,
) -> Vec<MetricOutcome> {
    let state = &analysis.state;
    match strategy {
        None => vec![MetricOutcome {
            metric: "strategy".into(),
            queries: Vec::new(),
            judgement: Judgement::error(format!(
                "strategy {} is no longer loaded",
                analysis.strategy
            )),
            dry_run: false,
        }],
        Some(strategy) => {
            let step_elapsed = state.step_started_at.map_or(strategy.interval, |started| {
                (now - started).to_std().unwrap_or(Duration::ZERO)
            });
            let evaluation = Evaluation {
                strategy,
                variables: &analysis.variables,
                at: now,
                pinned: true,
                window: strategy.window,
                step_elapsed,
                must_decide: state.next_check_must_decide(),
            };
            evaluate(metrics, &evaluation).await
        }
    }
}

struct QueryContext<'a> {
    variables: &'a Variables,
    window: Duration,
    step_window: Duration,
    now: Timestamp,
    pinned: bool,
}

impl<'a> QueryContext<'a> {
    /// The values every query of one evaluation is rendered with; `{{stepWindow}}` is
    /// whole seconds, at least one.
    fn of(evaluation: &Evaluation<'a>) -> Self {
        let step_seconds = evaluation.step_elapsed.as_secs_f64().ceil().max(1.0) as u64;
        Self {
            variables: evaluation.variables,
            window: evaluation.window,
            step_window: Duration::from_secs(step_seconds),
            now: evaluation.at,
            pinned: evaluation.pinned,
        }
    }

    fn render(&self, template: &Template, track: &str) -> Result<String, QueryError> {
        let mut variables = self.variables.clone();
        variables.insert("track".into(), track.into());
        variables.insert("window".into(), promql_duration(self.window));
        variables.insert("stepWindow".into(), promql_duration(self.step_window));
        template
            .render(&variables)
            .map_err(|e| QueryError::Render(e.to_string()))
    }
}

/// Renders and runs a metric's queries; returns them as sent with what they measured.
async fn gather(
    source: &dyn MetricsSource,
    metric: &MetricCheck,
    context: &QueryContext<'_>,
) -> (Vec<String>, Result<Measurement, QueryError>) {
    let rendered = render_metric(&metric.judge, context);
    let queries = match rendered {
        Ok(queries) => queries,
        Err(error) => return (Vec::new(), Err(error)),
    };
    let measured = measure(source, &metric.judge, &queries, context).await;
    (queries, measured)
}

/// A metric's queries as a check sends them: canary (and stable) tracks.
fn render_metric(spec: &JudgeSpec, context: &QueryContext<'_>) -> Result<Vec<String>, QueryError> {
    let queries: Vec<(&Template, &str)> = match spec {
        JudgeSpec::Threshold { query, .. } => vec![(query, "canary")],
        JudgeSpec::CompareStable { query, .. } | JudgeSpec::MannWhitney { query, .. } => {
            vec![(query, "canary"), (query, "stable")]
        }
        JudgeSpec::Sequential {
            errors, requests, ..
        } => vec![(errors, "canary"), (requests, "canary")],
    };
    queries
        .into_iter()
        .map(|(template, track)| context.render(template, track))
        .collect()
}

async fn measure(
    source: &dyn MetricsSource,
    spec: &JudgeSpec,
    queries: &[String],
    context: &QueryContext<'_>,
) -> Result<Measurement, QueryError> {
    let at = context.pinned.then_some(context.now);
    match spec {
        JudgeSpec::Threshold { .. } => {
            Ok(Measurement::Value(source.instant(&queries[0], at).await?))
        }
        JudgeSpec::CompareStable { .. } => {
            let (canary, stable) = futures::join!(
                source.instant(&queries[0], at),
                source.instant(&queries[1], at)
            );
            Ok(Measurement::Pair {
                canary: canary?,
                stable: stable?,
            })
        }
        JudgeSpec::MannWhitney { config, .. } => {
            let range =
                |query| source.range(query, context.now, context.window, config.sample_step);
            let (canary, stable) = futures::join!(range(&queries[0]), range(&queries[1]));
            Ok(Measurement::Samples {
                canary: canary?,
                stable: stable?,
            })
        }
        JudgeSpec::Sequential { .. } => {
            let (errors, requests) = futures::join!(
                source.instant(&queries[0], at),
                source.instant(&queries[1], at)
            );
            Ok(Measurement::Counts {
                errors: errors?,
                requests: requests?,
            })
        }
    }
}
