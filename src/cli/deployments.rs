//! `canaryd deployments record | current | compare`: a pipeline records a deployment it
//! made; people see what each environment runs and how two releases differ.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::{Value, json};

use super::api::{Connection, print_json};
use super::table;

#[derive(Debug, clap::Subcommand)]
pub enum DeploymentsCommand {
    /// Record a deployment made outside canaryd (a CD pipeline, on completion).
    Record(RecordArgs),
    /// The image each environment of a service runs now, and whether they drift.
    Current(CurrentArgs),
    /// How two releases (analyses or recorded deployments) differ.
    Compare(CompareArgs),
}

#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    #[arg(long)]
    pub service: String,
    #[arg(long)]
    pub environment: String,
    #[arg(long)]
    pub image_tag: String,
    /// PENDING, DEPLOYED, FAILED or ROLLED_BACK.
    #[arg(long)]
    pub status: String,
    #[arg(long)]
    pub git_commit: Option<String>,
    #[arg(long)]
    pub git_branch: Option<String>,
    /// RFC 3339; default: now.
    #[arg(long)]
    pub deployed_at: Option<String>,
    /// RFC 3339; default: now, except for PENDING.
    #[arg(long)]
    pub completed_at: Option<String>,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, clap::Args)]
pub struct CurrentArgs {
    pub service: String,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    pub from: String,
    pub to: String,
    #[command(flatten)]
    pub connection: Connection,
}

pub async fn run(command: DeploymentsCommand) -> anyhow::Result<ExitCode> {
    match command {
        DeploymentsCommand::Record(args) => record(args).await,
        DeploymentsCommand::Current(args) => current(args).await,
        DeploymentsCommand::Compare(args) => compare(args).await,
    }
}

async fn record(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let mut body = json!({
        "service": args.service,
        "environment": args.environment,
        "imageTag": args.image_tag,
        "status": args.status,
    });
    let optional = [
        ("gitCommit", args.git_commit),
        ("gitBranch", args.git_branch),
        ("deployedAt", args.deployed_at),
        ("completedAt", args.completed_at),
    ];
    for (field, value) in optional {
        if let Some(value) = value {
            body[field] = Value::String(value);
        }
    }
    let recorded = args
        .connection
        .post("/api/v1/deployments", &body, None)
        .await?;
    if args.connection.json {
        print_json(&recorded);
    } else {
        let id = recorded["id"]
            .as_str()
            .context("canaryd's answer has no id")?;
        println!(
            "recorded {id}: {} {} in {} {}",
            table::cell(&recorded["service"]),
            table::cell(&recorded["imageTag"]),
            table::cell(&recorded["environment"]),
            table::status(recorded["status"].as_str().unwrap_or("?"), table::colour()),
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn current(args: CurrentArgs) -> anyhow::Result<ExitCode> {
    let query = [("service", args.service.clone())];
    let answer = args
        .connection
        .get("/api/v1/deployments/current", &query)
        .await?;
    if args.connection.json {
        print_json(&answer);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = answer["environments"].as_array().map_or(Vec::new(), |all| {
        all.iter()
            .map(|running| {
                let mut row: Vec<String> = ["environment", "imageTag", "gitCommit", "source", "id"]
                    .iter()
                    .map(|field| table::cell(&running[*field]))
                    .collect();
                row.push(table::time(&running["completedAt"]));
                row
            })
            .collect()
    });
    let headers = ["ENVIRONMENT", "IMAGE", "COMMIT", "SOURCE", "ID", "SINCE"];
    println!("{}", table::render(&headers, &rows, false));
    let images: Vec<String> = answer["images"]
        .as_array()
        .map_or(Vec::new(), |all| all.iter().map(table::cell).collect());
    match answer["drift"].as_bool() {
        Some(true) => println!("drift: {} images run ({})", images.len(), images.join(", ")),
        _ => println!("no drift"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn compare(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let query = [("from", args.from.clone()), ("to", args.to.clone())];
    let answer = args
        .connection
        .get("/api/v1/deployments/compare", &query)
        .await?;
    if args.connection.json {
        print_json(&answer);
        return Ok(ExitCode::SUCCESS);
    }
    let changed: Vec<&str> = answer["changed"].as_array().map_or(Vec::new(), |all| {
        all.iter().filter_map(Value::as_str).collect()
    });
    let shown = |value: &Value| match value {
        Value::Object(_) | Value::Array(_) => value.to_string(),
        other => table::cell(other),
    };
    let fields = [
        "id",
        "source",
        "status",
        "imageTag",
        "gitCommit",
        "gitBranch",
        "strategy",
        "variables",
        "strategySnapshot",
        "actor",
        "deployedAt",
        "completedAt",
    ];
    let rows: Vec<Vec<String>> = fields
        .iter()
        .map(|field| {
            let mark = if changed.contains(field) { "*" } else { "" };
            let cut = |text: String| text.chars().take(60).collect::<String>();
            vec![
                format!("{mark}{field}"),
                cut(shown(&answer["from"][*field])),
                cut(shown(&answer["to"][*field])),
            ]
        })
        .collect();
    println!("{}", table::render(&["FIELD", "FROM", "TO"], &rows, false));
    println!(
        "changed: {}",
        if changed.is_empty() {
            "nothing".to_string()
        } else {
            changed.join(", ")
        }
    );
    Ok(ExitCode::SUCCESS)
}
