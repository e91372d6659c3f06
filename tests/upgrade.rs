//! A SQLite database written by the first version of canaryd (schema 0001 only, no
//! route owners or leases), with the state that version could leave: two RUNNING
//! analyses driving one route. The new canaryd migrates it, loses none of their history,
//! and leaves exactly one owner of the route running; the other ends CANCELLED without
//! touching the router, its reason naming the owner.

mod support;

use std::time::Duration;

use canaryd::domain::analysis::Status;
use canaryd::domain::record::{Analysis, EventRecord};
use canaryd::engine::StartRequest;
use serde_json::Value;
use sqlx::Connection;
use support::*;

/// A RUNNING analysis at step 1 (25%), created `minutes_ago`.
fn running(id: &str, minutes_ago: i64) -> Analysis {
    let strategies = decide_only_strategies();
    let loaded = canaryd::strategy_files::load_dir(strategies.path());
    let strategy = loaded.strategies.values().next().unwrap();
    let created = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
    let request = StartRequest {
        strategy: "shop/web".into(),
        environment: "prod".into(),
        ..StartRequest::default()
    };
    let mut analysis = request.into_analysis(strategy, id.into(), created).unwrap();
    let state = &mut analysis.state;
    state.status = Status::Running;
    state.canary_weight = 25;
    state.target_weight = 25;
    state.started_at = Some(created);
    state.step_started_at = Some(created);
    state.next_check_at = Some(created + chrono::Duration::hours(1));
    state.reason = "started at step 1 of 1".into();
    analysis
}

/// The first version's database: its one migration, and rows as it wrote them.
async fn first_version_database(path: &std::path::Path, analyses: &[Analysis]) {
    let migrations = tempfile::tempdir().unwrap();
    let first = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/migrations/sqlite/0001_init.sql"
    );
    std::fs::copy(first, migrations.path().join("0001_init.sql")).unwrap();
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let migrator = sqlx::migrate::Migrator::new(migrations.path())
        .await
        .unwrap();
    migrator.run(&mut connection).await.unwrap();
    for analysis in analyses {
        let time = |at: &chrono::DateTime<chrono::Utc>| {
            at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        };
        sqlx::query(
            "INSERT INTO analyses (id, team, strategy, service, environment, status, created_at, updated_at, document) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&analysis.id)
        .bind(&analysis.strategy.team)
        .bind(analysis.strategy.to_string())
        .bind(&analysis.service)
        .bind(&analysis.environment)
        .bind("RUNNING")
        .bind(time(&analysis.created_at))
        .bind(time(&analysis.state.updated_at))
        .bind(serde_json::to_string(analysis).unwrap())
        .execute(&mut connection)
        .await
        .unwrap();
        let event = EventRecord {
            at: analysis.created_at,
            record: canaryd::domain::analysis::Record {
                kind: canaryd::domain::analysis::RecordKind::StatusChanged,
                actor: "ci".into(),
                message: format!("created {}", analysis.id),
            },
        };
        sqlx::query(
            "INSERT INTO events (analysis_id, at, kind, actor, message) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&analysis.id)
        .bind(time(&event.at))
        .bind(event.record.kind.as_str())
        .bind(&event.record.actor)
        .bind(&event.record.message)
        .execute(&mut connection)
        .await
        .unwrap();
    }
    connection.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_version_database_migrates_and_keeps_one_owner_per_route() {
    let state = tempfile::tempdir().unwrap();
    let older = running("analysis-older", 30);
    let newer = running("analysis-newer", 10);
    first_version_database(&state.path().join("canaryd.db"), &[older, newer]).await;

    let strategies = decide_only_strategies();
    let canaryd = Canaryd::start(strategies.path(), "http://127.0.0.1:9", &[], state.path()).await;
    let settled = wait_for(
        "one owner of the route",
        Duration::from_secs(20),
        || async {
            let a = canaryd.analysis("analysis-older").await;
            let b = canaryd.analysis("analysis-newer").await;
            let cancelled = [&a, &b]
                .iter()
                .filter(|x| x["status"] == "CANCELLED")
                .count();
            (cancelled == 1).then_some((a, b))
        },
    )
    .await;
    let (owner, displaced) = if settled.0["status"] == "CANCELLED" {
        (settled.1, settled.0)
    } else {
        (settled.0, settled.1)
    };
    assert_eq!(owner["status"], "RUNNING", "{owner}");
    assert_eq!(owner["canaryWeight"], 25, "{owner}");
    assert_eq!(
        displaced["reason"],
        format!(
            "route is owned by analysis {}",
            owner["id"].as_str().unwrap()
        ),
        "{displaced}"
    );
    // Nothing of the first version's history is lost.
    for id in ["analysis-older", "analysis-newer"] {
        let events: Value = canaryd.get(&format!("/api/v1/analyses/{id}/events")).await;
        assert_eq!(events[0]["message"], format!("created {id}"), "{events}");
    }
    // The owner obeys operations as any analysis does.
    let id = owner["id"].as_str().unwrap().to_string();
    let response = reqwest::Client::new()
        .post(canaryd.url(&format!("/api/v1/analyses/{id}/promote")))
        .json(&serde_json::json!({"reason": "after the upgrade"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let deployed = canaryd.wait_terminal(&id, Duration::from_secs(20)).await;
    assert_eq!(deployed["status"], "DEPLOYED");
}
