//! `canaryd release rollback | rollforward`, `canaryd blocks` and `canaryd unblock`: send
//! a scope to a known-good release in an emergency, and lift the block that holds new
//! analyses there afterwards.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::api::{Connection, print_json};
use super::table;

#[derive(Debug, clap::Subcommand)]
pub enum ReleaseCommand {
    /// Back to the newest DEPLOYED release before the current one (or --to IMAGE).
    Rollback(ReleaseArgs),
    /// Forward to a release that was DEPLOYED there (--to IMAGE).
    Rollforward(ReleaseArgs),
}

#[derive(Debug, clap::Args)]
pub struct ReleaseArgs {
    /// The strategy, as `team/name`.
    pub strategy: String,
    #[arg(long)]
    pub environment: String,
    #[arg(long)]
    pub service: Option<String>,
    /// The image to go to; it must have been DEPLOYED in that environment.
    #[arg(long)]
    pub to: Option<String>,
    /// Why: kept with the block and sent with the notification.
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, clap::Args)]
pub struct BlocksArgs {
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, clap::Args)]
pub struct UnblockArgs {
    /// The block id, as the release command printed it.
    pub id: String,
    /// Why the block may go.
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub connection: Connection,
}

pub async fn release(command: ReleaseCommand) -> anyhow::Result<ExitCode> {
    let (operation, args) = match command {
        ReleaseCommand::Rollback(args) => ("rollback", args),
        ReleaseCommand::Rollforward(args) => ("rollforward", args),
    };
    let mut body = json!({
        "strategy": args.strategy,
        "environment": args.environment,
        "reason": args.reason,
    });
    for (field, value) in [("service", &args.service), ("to", &args.to)] {
        if let Some(value) = value {
            body[field] = json!(value);
        }
    }
    let path = format!("/api/v1/releases/{operation}");
    let answer = args.connection.post(&path, &body, None).await?;
    if args.connection.json {
        print_json(&answer);
    } else {
        println!(
            "{operation}: {} {} -> {} (release {})\nblocked: {}\nlift it with: canaryd unblock {} --reason \"…\"",
            table::cell(&answer["block"]["environment"]),
            answer["from"].as_str().unwrap_or("(nothing)"),
            table::cell(&answer["imageTag"]),
            table::cell(&answer["targetRelease"]),
            table::cell(&answer["blockId"]),
            table::cell(&answer["blockId"]),
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn row(block: &Value) -> Vec<String> {
    [
        "id",
        "strategy",
        "service",
        "environment",
        "cause",
        "imageTag",
        "actor",
        "reason",
    ]
    .iter()
    .map(|field| table::cell(&block[*field]))
    .chain([table::time(&block["createdAt"])])
    .collect()
}

pub async fn blocks(args: BlocksArgs) -> anyhow::Result<ExitCode> {
    let answer = args.connection.get("/api/v1/blocks", &[]).await?;
    if args.connection.json {
        print_json(&answer);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = answer
        .as_array()
        .map_or(Vec::new(), |a| a.iter().map(row).collect());
    let headers = [
        "ID",
        "STRATEGY",
        "SERVICE",
        "ENVIRONMENT",
        "CAUSE",
        "IMAGE",
        "BY",
        "REASON",
        "SINCE",
    ];
    println!("{}", table::render(&headers, &rows, table::colour()));
    Ok(ExitCode::SUCCESS)
}

pub async fn unblock(args: UnblockArgs) -> anyhow::Result<ExitCode> {
    let path = format!("/api/v1/blocks/{}", args.id);
    let answer = args
        .connection
        .delete_with(&path, &[("reason", args.reason.clone())])
        .await?;
    if args.connection.json {
        print_json(&answer);
    } else {
        println!("lifted {}", args.id);
    }
    Ok(ExitCode::SUCCESS)
}
