//! `canaryd status ID` and `canaryd wait ID`: where an analysis stands. `wait` prints
//! each change and exits 0 when the analysis is DEPLOYED, 1 when it ended any other way
//! (`wait --group ID`: when every member of the group is DEPLOYED).

use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

use super::api::{Connection, print_json};
use super::table;

#[derive(Debug, clap::Args)]
pub struct ClientArgs {
    /// The analysis id.
    pub id: String,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    /// The analysis id.
    #[arg(required_unless_present = "group", conflicts_with = "group")]
    pub id: Option<String>,
    /// Follow a deployment group instead: exit 0 only when every member is DEPLOYED.
    #[arg(long, value_name = "GROUP_ID")]
    pub group: Option<String>,
    #[command(flatten)]
    pub connection: Connection,
    /// Time between polls.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub poll: Duration,
    /// Give up (exit 1) after this long.
    #[arg(long, default_value = "2h", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

async fn fetch(connection: &Connection, id: &str) -> anyhow::Result<Value> {
    let path = format!("/api/v1/analyses/{id}");
    connection.get(&path, &[]).await
}

/// One line: status, step, canary weight and, once it says more than the step, the reason.
pub fn summary(analysis: &Value, colour: bool) -> String {
    let status = analysis["status"].as_str().unwrap_or("?");
    let position = format!(
        "{} step {}/{} canary {}%",
        table::status(status, colour),
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
    let analysis = fetch(&args.connection, &args.id).await?;
    if args.connection.json {
        print_json(&analysis);
    } else {
        println!("{}", summary(&analysis, table::colour()));
    }
    Ok(ExitCode::SUCCESS)
}

/// With `--json`, one compact JSON line per change (the analysis as canaryd shows it).
pub async fn wait(args: WaitArgs) -> anyhow::Result<ExitCode> {
    let (connection, poll, timeout) = (&args.connection, args.poll, args.timeout);
    let id = match (&args.group, &args.id) {
        (Some(group), _) => return super::groups::wait(connection, group, poll, timeout).await,
        (None, Some(id)) => id,
        (None, None) => anyhow::bail!("wait needs an analysis id or --group ID"),
    };
    let deadline = tokio::time::Instant::now() + args.timeout;
    let json = connection.json;
    let mut last = String::new();
    loop {
        let analysis = fetch(connection, id).await?;
        let line = summary(&analysis, false);
        if line != last {
            if json {
                println!("{}", serde_json::to_string(&analysis).unwrap_or_default());
            } else {
                println!("{}", summary(&analysis, table::colour()));
            }
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
