//! `canaryd history`, `canaryd freeze` and `canaryd unfreeze`: what ran in an
//! environment, and stopping or resuming its analyses.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::{Value, json};

use super::api::{Connection, print_json};
use super::table;

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    #[arg(long)]
    pub environment: String,
    /// At most this many, newest first.
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, clap::Args)]
pub struct FreezeArgs {
    /// The environment to freeze: new analyses there wait as PENDING.
    pub environment: String,
    /// Why: shown to everyone whose analysis waits.
    #[arg(long)]
    pub reason: String,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, clap::Args)]
pub struct UnfreezeArgs {
    /// The freeze id, as `canaryd freeze` printed it.
    pub id: String,
    #[command(flatten)]
    pub connection: Connection,
}

fn row(deployment: &Value) -> Vec<String> {
    let mut row: Vec<String> = ["id", "imageTag", "gitCommit", "status"]
        .iter()
        .map(|field| table::cell(&deployment[*field]))
        .collect();
    row.push(table::time(&deployment["deployedAt"]));
    row.push(table::time(&deployment["completedAt"]));
    row
}

pub async fn history(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let query = [
        ("environment", args.environment.clone()),
        ("limit", args.limit.to_string()),
    ];
    let path = "/api/v1/deployments/history";
    let answer = args.connection.get(path, &query).await?;
    if args.connection.json {
        print_json(&answer);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = answer
        .as_array()
        .map_or(Vec::new(), |d| d.iter().map(row).collect());
    let headers = ["ID", "IMAGE", "COMMIT", "STATUS", "DEPLOYED", "COMPLETED"];
    println!("{}", table::render(&headers, &rows, table::colour()));
    Ok(ExitCode::SUCCESS)
}

pub async fn freeze(args: FreezeArgs) -> anyhow::Result<ExitCode> {
    let body = json!({"environment": args.environment, "reason": args.reason});
    let freeze = args.connection.post("/api/v1/freezes", &body, None).await?;
    if args.connection.json {
        print_json(&freeze);
    } else {
        let id = freeze["id"]
            .as_str()
            .context("canaryd's answer has no id")?;
        println!(
            "froze {} ({id}); lift it with: canaryd unfreeze {id}",
            args.environment
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn unfreeze(args: UnfreezeArgs) -> anyhow::Result<ExitCode> {
    args.connection
        .delete(&format!("/api/v1/freezes/{}", args.id))
        .await?;
    if args.connection.json {
        print_json(&json!({"id": args.id, "lifted": true}));
    } else {
        println!("lifted {}", args.id);
    }
    Ok(ExitCode::SUCCESS)
}
