//! `canaryd backtest STRATEGY --service S --environment E --from T1 --to T2`: replays
//! the strategy's steps and judges over past Prometheus data and prints each check,
//! its outcome, and the verdict the strategy would have reached (`--json` for tools).
//! Times are RFC 3339 (`2026-11-24T09:00:00Z`) or a duration ago (`3h`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::adapters::prometheus::{Prometheus, PrometheusSettings};
use crate::domain::Timestamp;
use crate::engine::backtest::{Backtest, replay};
use crate::engine::{StartRequest, parse_strategy_id};
use crate::strategy_files;

#[derive(Debug, clap::Args)]
pub struct BacktestArgs {
    /// The strategy, `<team>/<name>`.
    pub strategy: String,
    #[arg(long)]
    pub service: Option<String>,
    #[arg(long)]
    pub environment: String,
    /// A declared variable, `name=value` (repeatable).
    #[arg(long = "var", value_parser = super::check::parse_variable)]
    pub variables: Vec<(String, String)>,
    /// Start of the replay: RFC 3339, or a duration ago (`3h`).
    #[arg(long, value_parser = parse_time)]
    pub from: Timestamp,
    /// End of the replay (default: now).
    #[arg(long, value_parser = parse_time)]
    pub to: Option<Timestamp>,
    #[arg(long, env = "CANARYD_STRATEGIES", default_value = "./strategies")]
    pub strategies: PathBuf,
    #[arg(
        long,
        env = "CANARYD_PROMETHEUS_URL",
        default_value = "http://127.0.0.1:9090"
    )]
    pub prometheus_url: String,
    #[arg(long)]
    pub json: bool,
}

fn parse_time(text: &str) -> Result<Timestamp, String> {
    if let Ok(at) = text.parse::<Timestamp>() {
        return Ok(at);
    }
    let ago = humantime::parse_duration(text)
        .map_err(|_| format!("{text:?} is neither an RFC 3339 time nor a duration ago (3h)"))?;
    chrono::Duration::from_std(ago)
        .map(|ago| chrono::Utc::now() - ago)
        .map_err(|e| e.to_string())
}

/// Exit 0 when the replay reached DEPLOYED, 1 otherwise (as `canaryd wait` does).
pub async fn run(args: BacktestArgs) -> anyhow::Result<ExitCode> {
    let loaded = strategy_files::load_dir(&args.strategies);
    let id = parse_strategy_id(&args.strategy)
        .with_context(|| format!("{:?} is not <team>/<name>", args.strategy))?;
    let Some(strategy) = loaded.strategies.get(&id) else {
        bail!(
            "strategy {} is not loaded from {}",
            args.strategy,
            args.strategies.display()
        );
    };
    let to = args.to.unwrap_or_else(chrono::Utc::now);
    if to <= args.from {
        bail!("--to {to} is not after --from {}", args.from);
    }
    let request = StartRequest {
        strategy: args.strategy.clone(),
        service: args.service.clone(),
        environment: args.environment.clone(),
        variables: args.variables.iter().cloned().collect(),
        ..StartRequest::default()
    };
    let variables = request.template_variables(strategy)?;
    let prometheus = Prometheus::new(&PrometheusSettings::new(args.prometheus_url.clone()))?;
    let backtest = replay(&prometheus, strategy, &variables, args.from, to).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&backtest)?);
    } else {
        print(&args, &backtest);
    }
    let deployed = backtest.status == crate::domain::analysis::Status::Deployed;
    Ok(if deployed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print(args: &BacktestArgs, backtest: &Backtest) {
    println!("backtest of {} in {}", args.strategy, args.environment);
    for check in &backtest.checks {
        let metrics: Vec<String> = check
            .metrics
            .iter()
            .map(|m| {
                let value = m
                    .value
                    .map_or("no value".to_string(), |v| format!("{v:.4}"));
                let dry_run = if m.dry_run { " (dry run)" } else { "" };
                format!("{} {}{dry_run} {value}", m.metric, m.outcome.as_str())
            })
            .collect();
        println!(
            "check {:>3}  {}  step {} ({}%)  {:<12}  {}",
            check.number,
            check.at.format("%Y-%m-%d %H:%M:%S"),
            check.step,
            check.canary_weight,
            check.outcome.as_str(),
            metrics.join("; ")
        );
    }
    println!("verdict: {}: {}", backtest.status, backtest.reason);
}
