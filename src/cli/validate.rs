//! `canaryd validate [PATH…]`: exit 0 when every strategy is valid, else 1 with
//! every error on stderr as `path:line:col: message`. Warnings (`path:line:col:
//! warning: …`) never fail it; they are measured against `--scrape-interval`, or the
//! scrape interval of the Prometheus at `--prometheus-url`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use crate::strategy_files::{self, DEFAULT_SCRAPE_INTERVAL, Lint};

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Strategy folders or files (default: the strategies folder).
    pub paths: Vec<PathBuf>,
    #[arg(
        long,
        env = "CANARYD_STRATEGIES",
        default_value = "./strategies",
        hide = true
    )]
    pub strategies: PathBuf,
    /// Scrape interval of the Prometheus the queries run against (default 15s).
    #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "prometheus_url")]
    pub scrape_interval: Option<Duration>,
    /// Read the scrape interval from this Prometheus's configuration.
    #[arg(long)]
    pub prometheus_url: Option<String>,
}

pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let paths = if args.paths.is_empty() {
        vec![args.strategies.clone()]
    } else {
        args.paths.clone()
    };
    let scrape_interval = match (&args.prometheus_url, args.scrape_interval) {
        (Some(url), _) => tokio::runtime::Runtime::new()?.block_on(scrape_interval_of(url))?,
        (None, given) => given.unwrap_or(DEFAULT_SCRAPE_INTERVAL),
    };
    let loaded = strategy_files::load_paths(&paths, Lint { scrape_interval });
    for warning in &loaded.warnings {
        eprintln!("{warning}");
    }
    for error in &loaded.errors {
        eprintln!("{error}");
    }
    if loaded.errors.is_empty() {
        println!("{} strategies valid", loaded.strategies.len());
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "{} errors; {} strategies valid",
        loaded.errors.len(),
        loaded.strategies.len()
    );
    Ok(ExitCode::from(1))
}

#[derive(Deserialize)]
struct ConfigAnswer {
    data: ConfigData,
}

#[derive(Deserialize)]
struct ConfigData {
    yaml: String,
}

#[derive(Deserialize, Default)]
struct PrometheusConfig {
    #[serde(default)]
    global: Global,
}

#[derive(Deserialize, Default)]
struct Global {
    scrape_interval: Option<String>,
}

/// The global scrape interval in a Prometheus's running configuration (Prometheus's
/// default, 1m, when the configuration sets none).
pub(super) async fn scrape_interval_of(url: &str) -> anyhow::Result<Duration> {
    let endpoint = format!("{}/api/v1/status/config", url.trim_end_matches('/'));
    let answer: ConfigAnswer = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?
        .get(&endpoint)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("cannot read the configuration of {endpoint}"))?
        .json()
        .await
        .with_context(|| format!("{endpoint} did not answer with a Prometheus configuration"))?;
    let config: PrometheusConfig = serde_saphyr::from_str(&answer.data.yaml)
        .with_context(|| format!("cannot read the YAML configuration from {endpoint}"))?;
    match config.global.scrape_interval {
        Some(text) => humantime::parse_duration(&text)
            .with_context(|| format!("scrape_interval {text:?} from {endpoint} is not a duration")),
        None => Ok(Duration::from_secs(60)),
    }
}
