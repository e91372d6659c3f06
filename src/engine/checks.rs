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

/// Runs every metric of the strategy once, concurrently.
pub async fn run(
    metrics: &dyn MetricsSource,
    strategy: Option<&Strategy>,
    analysis: &Analysis,
    now: Timestamp,
) -> CheckRun {
    let state = &analysis.state;
    let number = state.checks_done + 1;
    let must_decide = state.next_check_must_decide();
    let record = |metric: &str, queries: Vec<String>, judgement: Judgement, dry_run| CheckRecord {
        check: number,
        step: state.step_index + 1,
        canary_weight: state.canary_weight,
        at: now,
        metric: metric.to_string(),
        queries,
        judgement,
        dry_run,
    };
    let Some(strategy) = strategy else {
        let judgement = Judgement::error(format!(
            "strategy {} is no longer loaded",
            analysis.strategy
        ));
        let records = vec![record("strategy", Vec::new(), judgement.clone(), false)];
        let results = vec![MetricResult {
            metric: "strategy".into(),
            judgement,
            dry_run: false,
        }];
        return CheckRun { results, records };
    };
    let step_elapsed = state.step_started_at.map_or(strategy.interval, |started| {
        (now - started).to_std().unwrap_or(Duration::ZERO)
    });
    let context = QueryContext {
        variables: &analysis.variables,
        window: strategy.window,
        step_window: Duration::from_secs(step_elapsed.as_secs_f64().ceil().max(1.0) as u64),
        now,
    };
    let gathered = join_all(
        strategy
            .metrics
            .iter()
            .map(|metric| gather(metrics, metric, &context)),
    )
    .await;
    let mut run = CheckRun {
        results: Vec::new(),
        records: Vec::new(),
    };
    for (metric, (queries, measured)) in strategy.metrics.iter().zip(gathered) {
        let judgement = match measured {
            Ok(measurement) => judge::evaluate(
                &metric.judge,
                measurement.with_nan_strategy(metric.nan_strategy),
                metric.on_no_data,
                must_decide,
            ),
            Err(error) => Judgement::error(error.to_string()),
        };
        run.records.push(record(
            &metric.name,
            queries,
            judgement.clone(),
            metric.dry_run,
        ));
        run.results.push(MetricResult {
            metric: metric.name.clone(),
            judgement,
            dry_run: metric.dry_run,
        });
    }
    run
}

struct QueryContext<'a> {
    variables: &'a Variables,
    window: Duration,
    step_window: Duration,
    now: Timestamp,
}

impl QueryContext<'_> {
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
    let rendered: Result<Vec<String>, QueryError> = match &metric.judge {
        JudgeSpec::Threshold { query, .. } => {
            vec![context.render(query, "canary")].into_iter().collect()
        }
        JudgeSpec::CompareStable { query, .. } | JudgeSpec::MannWhitney { query, .. } => vec![
            context.render(query, "canary"),
            context.render(query, "stable"),
        ]
        .into_iter()
        .collect(),
        JudgeSpec::Sequential {
            errors, requests, ..
        } => vec![
            context.render(errors, "canary"),
            context.render(requests, "canary"),
        ]
        .into_iter()
        .collect(),
    };
    let queries = match rendered {
        Ok(queries) => queries,
        Err(error) => return (Vec::new(), Err(error)),
    };
    let measured = measure(source, &metric.judge, &queries, context).await;
    (queries, measured)
}

async fn measure(
    source: &dyn MetricsSource,
    spec: &JudgeSpec,
    queries: &[String],
    context: &QueryContext<'_>,
) -> Result<Measurement, QueryError> {
    match spec {
        JudgeSpec::Threshold { .. } => Ok(Measurement::Value(source.instant(&queries[0]).await?)),
        JudgeSpec::CompareStable { .. } => {
            let (canary, stable) =
                futures::join!(source.instant(&queries[0]), source.instant(&queries[1]));
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
            let (errors, requests) =
                futures::join!(source.instant(&queries[0]), source.instant(&queries[1]));
            Ok(Measurement::Counts {
                errors: errors?,
                requests: requests?,
            })
        }
    }
}
