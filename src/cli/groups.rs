//! `canaryd group start | status | cancel | rollback` and `canaryd wait --group`: one
//! release to several scopes at once, from a terminal or a CI job.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::analyses::{table_of, variables};
use super::api::{Connection, print_json};
use super::table;

#[derive(Debug, clap::Subcommand)]
pub enum GroupCommand {
    /// Start one analysis per release, all or none.
    Start(GroupStartArgs),
    /// Where a group and each of its members stand.
    Status(GroupArgs),
    /// Cancel every member (only while all are RUNNING).
    Cancel(GroupOperateArgs),
    /// Roll back every member still under way (refused while FINALIZING).
    Rollback(GroupOperateArgs),
}

#[derive(Debug, clap::Args)]
pub struct GroupStartArgs {
    /// A member, as `STRATEGY:ENVIRONMENT` or `STRATEGY:ENVIRONMENT:SERVICE`; repeat
    /// for each scope.
    #[arg(
        long = "release",
        value_name = "STRATEGY:ENVIRONMENT[:SERVICE]",
        required = true
    )]
    pub releases: Vec<String>,
    #[arg(long)]
    pub image_tag: String,
    /// A name for people, such as the release's.
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub git_commit: Option<String>,
    #[arg(long)]
    pub git_branch: Option<String>,
    /// A strategy variable for every member, `name=value`; repeat for several.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub variables: Vec<String>,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, clap::Args)]
pub struct GroupArgs {
    /// The group id.
    pub id: String,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, clap::Args)]
pub struct GroupOperateArgs {
    /// The group id.
    pub id: String,
    /// Why: kept in every member's audit trail.
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub connection: Connection,
}

pub async fn run(command: GroupCommand) -> anyhow::Result<ExitCode> {
    match command {
        GroupCommand::Start(args) => start(args).await,
        GroupCommand::Status(args) => {
            let group = fetch(&args.connection, &args.id).await?;
            show(&group, args.connection.json);
            Ok(ExitCode::SUCCESS)
        }
        GroupCommand::Cancel(args) => operate("cancel", args).await,
        GroupCommand::Rollback(args) => operate("rollback", args).await,
    }
}

/// `shop/web:eu-west[:web]` as a member of the request.
fn release(text: &str) -> anyhow::Result<Value> {
    let parts: Vec<&str> = text.split(':').collect();
    match parts.as_slice() {
        [strategy, environment] if !strategy.is_empty() && !environment.is_empty() => {
            Ok(json!({"strategy": strategy, "environment": environment}))
        }
        [strategy, environment, service]
            if !strategy.is_empty() && !environment.is_empty() && !service.is_empty() =>
        {
            Ok(json!({"strategy": strategy, "environment": environment, "service": service}))
        }
        _ => bail!(
            "--release {text:?}: expected STRATEGY:ENVIRONMENT or STRATEGY:ENVIRONMENT:SERVICE"
        ),
    }
}

async fn start(args: GroupStartArgs) -> anyhow::Result<ExitCode> {
    let releases: Vec<Value> = args
        .releases
        .iter()
        .map(|text| release(text))
        .collect::<anyhow::Result<_>>()?;
    let mut body = json!({"releases": releases, "imageTag": args.image_tag});
    let optional = [
        ("name", &args.name),
        ("gitCommit", &args.git_commit),
        ("gitBranch", &args.git_branch),
    ];
    for (field, value) in optional {
        if let Some(value) = value {
            body[field] = json!(value);
        }
    }
    let variables = variables(&args.variables)?;
    if !variables.is_empty() {
        body["variables"] = json!(variables);
    }
    let group = args.connection.post("/api/v1/groups", &body, None).await?;
    if args.connection.json {
        print_json(&group);
    } else {
        let id = group["id"].as_str().context("canaryd's answer has no id")?;
        show(&group, false);
        println!("follow it with: canaryd wait --group {id}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn operate(operation: &str, args: GroupOperateArgs) -> anyhow::Result<ExitCode> {
    let path = format!("/api/v1/groups/{}/{operation}", args.id);
    let body = json!({"reason": args.reason});
    let group = args.connection.post(&path, &body, None).await?;
    show(&group, args.connection.json);
    Ok(ExitCode::SUCCESS)
}

async fn fetch(connection: &Connection, id: &str) -> anyhow::Result<Value> {
    connection.get(&format!("/api/v1/groups/{id}"), &[]).await
}

fn members(group: &Value) -> &[Value] {
    group["members"].as_array().map_or(&[][..], Vec::as_slice)
}

/// The group's line, then its members as `list` shows analyses.
fn show(group: &Value, json: bool) {
    if json {
        print_json(group);
        return;
    }
    println!("{}", headline(group, table::colour()));
    println!("{}", table_of(members(group)));
}

/// `group ID (name) STATUS: 1/3 ended`.
fn headline(group: &Value, colour: bool) -> String {
    let all = members(group);
    let ended = all.iter().filter(|m| m["verdict"].is_string()).count();
    let name = group["name"]
        .as_str()
        .map_or(String::new(), |name| format!(" ({name})"));
    format!(
        "group {}{name} {}: {ended}/{} ended",
        table::cell(&group["id"]),
        table::status(&table::cell(&group["status"]), colour),
        all.len()
    )
}

/// `canaryd wait --group ID`: exit 0 once the group is FINALIZED with every member
/// DEPLOYED, 1 when it finalized any other way or the wait timed out.
pub async fn wait(
    connection: &Connection,
    id: &str,
    poll: Duration,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::new();
    loop {
        let group = fetch(connection, id).await?;
        let statuses: Vec<String> = members(&group)
            .iter()
            .map(|m| table::cell(&m["status"]))
            .collect();
        let line = format!("{} {}", headline(&group, false), statuses.join(","));
        if line != last {
            if connection.json {
                println!("{}", serde_json::to_string(&group).unwrap_or_default());
            } else {
                println!("{}", headline(&group, table::colour()));
            }
            last = line;
        }
        if group["status"] == "FINALIZED" {
            let deployed = statuses.iter().all(|s| s == "DEPLOYED");
            return Ok(if deployed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        if tokio::time::Instant::now() >= deadline {
            eprintln!("canaryd: gave up waiting after {timeout:?}");
            return Ok(ExitCode::from(1));
        }
        tokio::time::sleep(poll).await;
    }
}
