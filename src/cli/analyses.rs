//! `canaryd start`, `canaryd list` and the operations (`pause`, `resume`, `promote`,
//! `rollback`, `abort`, `retry`): the API's analyses from a terminal or a CI job.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::api::{Connection, print_json};
use super::table;

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// The strategy, as `team/name`.
    pub strategy: String,
    #[arg(long)]
    pub environment: String,
    #[arg(long)]
    pub image_tag: String,
    /// The service, when the strategy's is not the one meant.
    #[arg(long)]
    pub service: Option<String>,
    #[arg(long)]
    pub git_commit: Option<String>,
    #[arg(long)]
    pub git_branch: Option<String>,
    /// Who or what starts it (recorded; defaults to the token's name).
    #[arg(long)]
    pub triggered_by: Option<String>,
    /// A strategy variable, `name=value`; repeat for several.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub variables: Vec<String>,
    /// Makes a retried start the same start.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Statuses, comma-separated (`RUNNING,PAUSED`).
    #[arg(long)]
    pub status: Option<String>,
    #[arg(long)]
    pub team: Option<String>,
    #[arg(long)]
    pub environment: Option<String>,
    /// At most this many, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, clap::Args)]
pub struct OperateArgs {
    /// The analysis id.
    pub id: String,
    /// Why: kept in the analysis's audit trail.
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub connection: Connection,
}

pub(super) fn variables(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut variables = BTreeMap::new();
    for pair in pairs {
        let Some((name, value)) = pair.split_once('=') else {
            bail!("--var {pair:?}: expected NAME=VALUE");
        };
        if name.is_empty() {
            bail!("--var {pair:?}: the name is empty");
        }
        variables.insert(name.to_string(), value.to_string());
    }
    Ok(variables)
}

pub async fn start(args: StartArgs) -> anyhow::Result<ExitCode> {
    let mut body = json!({
        "strategy": args.strategy,
        "environment": args.environment,
        "imageTag": args.image_tag,
    });
    let optional = [
        ("service", &args.service),
        ("gitCommit", &args.git_commit),
        ("gitBranch", &args.git_branch),
        ("triggeredBy", &args.triggered_by),
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
    let key = args.idempotency_key.as_deref();
    let answer = args.connection.post("/api/v1/analyses", &body, key).await?;
    if args.connection.json {
        print_json(&answer);
    } else {
        let id = answer["id"]
            .as_str()
            .context("canaryd's answer has no id")?;
        let status = table::status(&table::cell(&answer["status"]), table::colour());
        println!("started {id} {status}\nfollow it with: canaryd wait {id}");
    }
    Ok(ExitCode::SUCCESS)
}

/// One analysis as a row of `canaryd list`.
fn row(analysis: &Value) -> Vec<String> {
    let steps = analysis["steps"].as_array().map_or(0, Vec::len);
    vec![
        table::cell(&analysis["id"]),
        table::cell(&analysis["status"]),
        table::cell(&analysis["strategy"]),
        table::cell(&analysis["service"]),
        table::cell(&analysis["environment"]),
        table::cell(&analysis["imageTag"]),
        format!("{}/{steps}", table::cell(&analysis["step"])),
        format!("{}%", table::cell(&analysis["canaryWeight"])),
        table::time(&analysis["createdAt"]),
    ]
}

pub async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let mut query = vec![("limit", args.limit.to_string())];
    let filters = [
        ("status", &args.status),
        ("team", &args.team),
        ("environment", &args.environment),
    ];
    for (name, value) in filters {
        if let Some(value) = value {
            query.push((name, value.clone()));
        }
    }
    let answer = args.connection.get("/api/v1/analyses", &query).await?;
    if args.connection.json {
        print_json(&answer);
        return Ok(ExitCode::SUCCESS);
    }
    let analyses = answer.as_array().map_or(&[][..], Vec::as_slice);
    println!("{}", table_of(analyses));
    Ok(ExitCode::SUCCESS)
}

/// Analyses as an aligned table, as `list` prints them.
pub(super) fn table_of(analyses: &[Value]) -> String {
    let rows: Vec<Vec<String>> = analyses.iter().map(row).collect();
    let headers = [
        "ID",
        "STATUS",
        "STRATEGY",
        "SERVICE",
        "ENVIRONMENT",
        "IMAGE",
        "STEP",
        "CANARY",
        "CREATED",
    ];
    table::render(&headers, &rows, table::colour())
}

/// One operation on an analysis, with its reason; prints where the analysis stands.
pub async fn operate(operation: &str, args: OperateArgs) -> anyhow::Result<ExitCode> {
    let path = format!("/api/v1/analyses/{}/{operation}", args.id);
    let body = json!({"reason": args.reason});
    let analysis = args.connection.post(&path, &body, None).await?;
    if args.connection.json {
        print_json(&analysis);
    } else {
        println!("{}", super::client::summary(&analysis, table::colour()));
    }
    Ok(ExitCode::SUCCESS)
}
