//! `canaryd backtest STRATEGY --service S --environment E --from T1 --to T2`: replays
//! the strategy's steps and judges over past Prometheus data and prints each check,
//! its outcome, and the verdict the strategy would have reached (`--json` for tools).
//! Times are RFC 3339 (`2026-11-24T09:00:00Z`) or a duration ago (`3h`).

use std::process::ExitCode;

use anyhow::bail;

use crate::domain::Timestamp;
use crate::engine::backtest::{Backtest, replay};

#[derive(Debug, clap::Args)]
pub struct BacktestArgs {
    #[command(flatten)]
    pub target: super::check::TargetArgs,
    /// Start of the replay: RFC 3339, or a duration ago (`3h`).
    #[arg(long, value_parser = parse_time)]
    pub from: Timestamp,
    /// End of the replay (default: now).
    #[arg(long, value_parser = parse_time)]
    pub to: Option<Timestamp>,
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
    let to = args.to.unwrap_or_else(chrono::Utc::now);
    if to <= args.from {
        bail!("--to {to} is not after --from {}", args.from);
    }
    let target = args.target.resolve()?;
    let (prometheus, strategy, variables) =
        (&target.prometheus, &target.strategy, &target.variables);
    let backtest = replay(prometheus, strategy, variables, args.from, to).await;
    if args.target.json {
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
    println!(
        "backtest of {} in {}",
        args.target.strategy, args.target.environment
    );
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
