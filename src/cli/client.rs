//! `canaryd status ID` and `canaryd wait ID`: the API from a CI job. `wait` prints each
//! change and exits 0 when the analysis is DEPLOYED, 1 when it ended any other way.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

#[derive(Debug, clap::Args)]
pub struct ClientArgs {
    /// The analysis id.
    pub id: String,
    /// canaryd's base URL.
    #[arg(long, env = "CANARYD_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Bearer token, when canaryd has an auth file.
    #[arg(long, env = "CANARYD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Time between polls.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub poll: Duration,
    /// Give up (exit 1) after this long.
    #[arg(long, default_value = "2h", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

async fn fetch(args: &ClientArgs) -> anyhow::Result<Value> {
    let url = format!(
        "{}/api/v1/analyses/{}",
        args.url.trim_end_matches('/'),
        args.id
    );
    let mut request = reqwest::Client::new()
        .get(&url)
        .timeout(Duration::from_secs(10));
    if let Some(token) = &args.token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach canaryd at {}", args.url))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .context("canaryd answered something that is not JSON")?;
    if !status.is_success() {
        bail!(
            "{}: {}",
            status,
            body["message"].as_str().unwrap_or("no message")
        );
    }
    Ok(body)
}

fn summary(analysis: &Value) -> String {
    let status = analysis["status"].as_str().unwrap_or("?");
    let position = format!(
        "{status} step {}/{} canary {}%",
        analysis["step"],
        analysis["steps"].as_array().map_or(0, Vec::len),
        analysis["canaryWeight"]
    );
    // While running, the reason is the status change's; it would repeat at every step.
    match status {
        "RUNNING" => position,
        _ => format!("{position} — {}", analysis["reason"].as_str().unwrap_or("")),
    }
}

pub async fn status(args: ClientArgs) -> anyhow::Result<ExitCode> {
    let analysis = fetch(&args).await?;
    println!("{}", summary(&analysis));
    Ok(ExitCode::SUCCESS)
}

pub async fn wait(args: WaitArgs) -> anyhow::Result<ExitCode> {
    let deadline = tokio::time::Instant::now() + args.timeout;
    let mut last = String::new();
    loop {
        let analysis = fetch(&args.client).await?;
        let line = summary(&analysis);
        if line != last {
            println!("{line}");
            last = line;
        }
        if let Some(verdict) = analysis["verdict"].as_str() {
            return Ok(if verdict == "DEPLOYED" {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        if tokio::time::Instant::now() >= deadline {
            eprintln!("canaryd: gave up waiting after {:?}", args.timeout);
            return Ok(ExitCode::from(1));
        }
        tokio::time::sleep(args.poll).await;
    }
}
