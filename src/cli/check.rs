//! `canaryd check STRATEGY --service S --environment E`: a preflight, for a team's CI
//! before a strategy guards production. Every query is rendered as an analysis would
//! render it, for the canary and the stable track, and run against Prometheus now.
//! Per metric it reports each query's value or error and whether exactly one series
//! came back, whether the window covers four scrape intervals, and what the judge
//! would say. Exit 0 only when every query of every metric returned data.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::adapters::prometheus::{Prometheus, PrometheusSettings};
use crate::domain::judge::usable;
use crate::domain::strategy::Strategy;
use crate::domain::template::Variables;
use crate::engine::checks::{Evaluation, evaluate, rendered_queries};
use crate::engine::{StartRequest, parse_strategy_id};
use crate::ports::MetricsSource;
use crate::strategy_files;

/// What `check` and `backtest` run: a strategy for a service and environment, against
/// a Prometheus.
#[derive(Debug, clap::Args)]
pub struct TargetArgs {
    /// The strategy, `<team>/<name>`.
    pub strategy: String,
    /// Default: the strategy's `spec.service`.
    #[arg(long)]
    pub service: Option<String>,
    #[arg(long)]
    pub environment: String,
    /// A declared variable, `name=value` (repeatable).
    #[arg(long = "var", value_parser = parse_variable)]
    pub variables: Vec<(String, String)>,
    #[arg(long, env = "CANARYD_STRATEGIES", default_value = "./strategies")]
    pub strategies: PathBuf,
    #[arg(
        long,
        env = "CANARYD_PROMETHEUS_URL",
        default_value = "http://127.0.0.1:9090"
    )]
    pub prometheus_url: String,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The loaded strategy, the template values the target gives it, and Prometheus.
pub(super) struct Target {
    pub strategy: Strategy,
    pub variables: Variables,
    pub prometheus: Prometheus,
}

impl TargetArgs {
    /// Loads the strategy and checks the values as a webhook's would be.
    pub(super) fn resolve(&self) -> anyhow::Result<Target> {
        let mut loaded = strategy_files::load_dir(&self.strategies);
        let id = parse_strategy_id(&self.strategy)
            .with_context(|| format!("{:?} is not <team>/<name>", self.strategy))?;
        let Some(strategy) = loaded.strategies.remove(&id) else {
            for error in &loaded.errors {
                eprintln!("{error}");
            }
            bail!(
                "strategy {} is not loaded from {}",
                self.strategy,
                self.strategies.display()
            );
        };
        let request = StartRequest {
            strategy: self.strategy.clone(),
            service: self.service.clone(),
            environment: self.environment.clone(),
            variables: self.variables.iter().cloned().collect(),
            ..StartRequest::default()
        };
        let variables = request.template_variables(&strategy)?;
        let prometheus = Prometheus::new(&PrometheusSettings::new(self.prometheus_url.clone()))?;
        Ok(Target {
            strategy,
            variables,
            prometheus,
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub target: TargetArgs,
}

pub(super) fn parse_variable(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not name=value"))?;
    Ok((name.to_string(), value.to_string()))
}

/// One query as it went to Prometheus, and what came back.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct QueryReport {
    track: &'static str,
    query: String,
    /// 0 or 1; absent when the query failed (several series is an error).
    series: Option<u8>,
    value: Option<f64>,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct MetricReport {
    metric: String,
    /// What the judge would say now.
    outcome: String,
    reason: String,
    /// Every query returned one series with a number.
    has_data: bool,
    queries: Vec<QueryReport>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    strategy: String,
    service: String,
    environment: String,
    window_seconds: u64,
    scrape_interval_seconds: Option<u64>,
    /// The window covers at least four scrape intervals (`None`: interval unknown).
    window_covers_four_scrapes: Option<bool>,
    metrics: Vec<MetricReport>,
}

pub async fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let args = args.target;
    let Target {
        strategy,
        variables,
        prometheus,
    } = args.resolve()?;
    let strategy = &strategy;
    let scrape = super::validate::scrape_interval_of(&args.prometheus_url).await;
    if let Err(error) = &scrape {
        eprintln!("canaryd: {error:#}; the window is not checked against the scrape interval");
    }
    let evaluation = Evaluation {
        strategy,
        variables: &variables,
        at: chrono::Utc::now(),
        pinned: false,
        window: strategy.window,
        step_elapsed: strategy.interval,
        must_decide: true,
    };
    let metrics = metric_reports(&prometheus, &evaluation).await;
    let scrape = scrape.ok();
    let report = Report {
        strategy: args.strategy.clone(),
        service: variables.get("service").cloned().unwrap_or_default(),
        environment: args.environment.clone(),
        window_seconds: strategy.window.as_secs(),
        scrape_interval_seconds: scrape.map(|s| s.as_secs()),
        window_covers_four_scrapes: scrape.map(|s| strategy.window >= s * 4),
        metrics,
    };
    print(&report, args.json)?;
    let all_data = report.metrics.iter().all(|m| m.has_data);
    Ok(if all_data {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn metric_reports(
    source: &dyn MetricsSource,
    evaluation: &Evaluation<'_>,
) -> Vec<MetricReport> {
    let mut queries: BTreeMap<String, Vec<QueryReport>> = BTreeMap::new();
    for rendered in rendered_queries(evaluation) {
        let report = match rendered.query {
            Ok(query) => query_report(source, rendered.track, query).await,
            Err(error) => QueryReport {
                track: rendered.track,
                query: String::new(),
                series: None,
                value: None,
                error: Some(error.to_string()),
            },
        };
        queries.entry(rendered.metric).or_default().push(report);
    }
    evaluate(source, evaluation)
        .await
        .into_iter()
        .map(|outcome| {
            let queries = queries.remove(&outcome.metric).unwrap_or_default();
            MetricReport {
                has_data: queries.iter().all(|q| usable(q.value).is_some()),
                outcome: outcome.judgement.outcome.as_str().to_string(),
                reason: outcome.judgement.reason,
                metric: outcome.metric,
                queries,
            }
        })
        .collect()
}

async fn query_report(
    source: &dyn MetricsSource,
    track: &'static str,
    query: String,
) -> QueryReport {
    let answer = source.instant(&query, None).await;
    let (series, value, error) = match answer {
        Ok(Some(value)) => (Some(1), Some(value), None),
        Ok(None) => (
            Some(0),
            None,
            Some("no series: the query returned nothing".into()),
        ),
        // Several series is an error too: a check needs exactly one.
        Err(error) => (None, None, Some(error.to_string())),
    };
    QueryReport {
        track,
        query,
        series,
        value,
        error,
    }
}

fn print(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    let window = humantime::format_duration(Duration::from_secs(report.window_seconds));
    let coverage = match (
        report.scrape_interval_seconds,
        report.window_covers_four_scrapes,
    ) {
        (Some(scrape), Some(true)) => format!("covers 4 scrape intervals of {scrape}s"),
        (Some(scrape), _) => {
            format!("SHORTER than 4 scrape intervals of {scrape}s: rate() may return nothing")
        }
        _ => "scrape interval unknown".to_string(),
    };
    println!(
        "{} for {} in {}: window {window} ({coverage})",
        report.strategy, report.service, report.environment
    );
    for metric in &report.metrics {
        let data = if metric.has_data { "data" } else { "NO DATA" };
        println!(
            "  {}: {} ({data}): {}",
            metric.metric, metric.outcome, metric.reason
        );
        for query in &metric.queries {
            let seen = match (query.value, &query.error) {
                (Some(value), _) => format!("{value} (1 series)"),
                (None, Some(error)) => error.clone(),
                (None, None) => "no value".to_string(),
            };
            println!("    {:<6} {seen}\n           {}", query.track, query.query);
        }
    }
    let missing: Vec<&str> = report
        .metrics
        .iter()
        .filter(|m| !m.has_data)
        .map(|m| m.metric.as_str())
        .collect();
    if !missing.is_empty() {
        println!("no data for: {}", missing.join(", "));
    }
    Ok(())
}
