//! Recorded deployments, what each environment runs now, and deployment groups, asserted
//! the same way on SQLite and on a real PostgreSQL cluster (the newest-per-environment
//! query is a window function, which each dialect must run as the other does).

mod support;

use std::time::Duration;

use canaryd::adapters::store::sql::SqlStore;
use canaryd::domain::analysis::Status;
use canaryd::domain::deployment::{DeploymentStatus, RecordedDeployment};
use canaryd::domain::group::{DeploymentGroup, GroupMember};
use canaryd::domain::record::Analysis;
use canaryd::ports::{
    AnalysisStore, Change, DeploymentStore, GroupStore, LeaseStore, RecordQuery, Replica,
};
use chrono::{DateTime, TimeDelta, Utc};
use support::postgres::PostgresServer;

fn at(minutes: i64) -> DateTime<Utc> {
    "2026-02-12T10:00:00Z".parse::<DateTime<Utc>>().unwrap() + TimeDelta::minutes(minutes)
}

fn recorded(id: &str, team: &str, environment: &str, tag: &str) -> RecordedDeployment {
    RecordedDeployment {
        id: id.into(),
        team: team.into(),
        service: "checkout".into(),
        environment: environment.into(),
        image_tag: tag.into(),
        git_commit: Some("abc1234".into()),
        git_branch: None,
        status: DeploymentStatus::Deployed,
        deployed_at: at(0),
        completed_at: Some(at(5)),
        actor: "pipeline".into(),
        recorded_at: at(5),
    }
}

/// A decide-only analysis of `checkout` in `environment`, as created.
fn analysis(id: &str, environment: &str, tag: &str) -> Analysis {
    Analysis {
        environment: environment.into(),
        image_tag: Some(tag.into()),
        ..support::sample::analysis(id)
    }
}

/// Stores `analysis` and brings it to `status`, as the engine would.
async fn finish(store: &SqlStore, mut analysis: Analysis, status: Status) {
    let created = store
        .create(&analysis, &Change::default(), None, "r1")
        .await
        .unwrap();
    analysis.state.status = status;
    analysis.state.completed_at = Some(Utc::now());
    store
        .save(&analysis, &Change::default(), &created.lease)
        .await
        .unwrap();
}

async fn contract(store: &SqlStore) {
    let replica = Replica {
        id: "r1".into(),
        description: "test".into(),
    };
    store
        .register(&replica, Duration::from_secs(30))
        .await
        .unwrap();

    let mut older = recorded("r-old", "payments", "prod", "1.0.0");
    older.deployed_at = at(-60);
    older.completed_at = Some(at(-55));
    let mut failed = recorded("r-failed", "payments", "prod", "1.2.0");
    failed.status = DeploymentStatus::Failed;
    failed.deployed_at = at(10);
    failed.completed_at = Some(at(12));
    let mut pending = recorded("r-pending", "payments", "staging", "1.3.0");
    pending.status = DeploymentStatus::Pending;
    pending.completed_at = None;
    pending.deployed_at = at(20);
    let others = recorded("r-others", "search", "prod", "9.9.9");
    for deployment in [
        &older,
        &recorded("r-new", "payments", "prod", "1.1.0"),
        &failed,
        &pending,
        &others,
    ] {
        store.record_deployment(deployment).await.unwrap();
    }

    // Read back whole, and listed newest first within the filters.
    let read = store.recorded_deployment("r-failed").await.unwrap();
    assert_eq!(read.as_ref(), Some(&failed));
    assert_eq!(store.recorded_deployment("none").await.unwrap(), None);
    let prod = RecordQuery {
        team: Some("payments".into()),
        environment: Some("prod".into()),
        ..RecordQuery::default()
    };
    let ids: Vec<String> = store
        .recorded_deployments(&prod)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(ids, ["r-failed", "r-new", "r-old"]);
    let one = RecordQuery {
        limit: Some(1),
        ..RecordQuery::default()
    };
    let newest = store.recorded_deployments(&one).await.unwrap();
    assert_eq!(newest.len(), 1);
    assert_eq!(newest[0].id, "r-pending");

    // Current: the newest DEPLOYED per environment, never a FAILED or PENDING one, and
    // within the team when one is given.
    let current = store.current("checkout", Some("payments")).await.unwrap();
    let running: Vec<(String, String)> = current
        .recorded
        .iter()
        .map(|d| (d.environment.clone(), d.image_tag.clone()))
        .collect();
    assert_eq!(running, [("prod".to_string(), "1.1.0".to_string())]);
    let everyone = store.current("checkout", None).await.unwrap();
    assert_eq!(everyone.recorded.len(), 1, "one row per environment");
    assert!(
        store
            .current("nothing", None)
            .await
            .unwrap()
            .recorded
            .is_empty()
    );

    // canaryd's own: only analyses that ended DEPLOYED, the newest per environment.
    finish(store, analysis("a-1", "prod", "2.0.0"), Status::Deployed).await;
    finish(store, analysis("a-2", "prod", "2.1.0"), Status::Deployed).await;
    finish(store, analysis("a-3", "prod", "2.2.0"), Status::RolledBack).await;
    finish(store, analysis("a-4", "dev", "2.3.0"), Status::Deployed).await;
    let current = store.current("checkout", Some("payments")).await.unwrap();
    let mut running: Vec<(String, Option<String>)> = current
        .analyses
        .iter()
        .map(|a| (a.environment.clone(), a.image_tag.clone()))
        .collect();
    running.sort();
    assert_eq!(
        running,
        [
            ("dev".to_string(), Some("2.3.0".to_string())),
            ("prod".to_string(), Some("2.1.0".to_string()))
        ]
    );
    let search = store.current("checkout", Some("search")).await.unwrap();
    assert!(search.analyses.is_empty());
    assert_eq!(search.recorded.len(), 1);
}

/// A group keeps its members in the request's order, with each one's team.
async fn groups(store: &SqlStore) {
    let members = ["m-3", "m-1", "m-2"].map(|id| GroupMember {
        analysis_id: id.into(),
        team: if id == "m-1" { "search" } else { "payments" }.into(),
    });
    let group = DeploymentGroup {
        id: "g-1".into(),
        name: Some("spring release".into()),
        image_tag: "v2.1.0".into(),
        git_commit: None,
        actor: "release-bot".into(),
        created_at: at(1),
        members: members.to_vec(),
    };
    store.create_group(&group).await.unwrap();
    assert_eq!(store.group("g-1").await.unwrap(), Some(group.clone()));
    assert_eq!(store.group("g-2").await.unwrap(), None);
    assert!(
        store.create_group(&group).await.is_err(),
        "an id is stored once"
    );
    assert_eq!(
        store.group("g-1").await.unwrap(),
        Some(group),
        "and kept whole"
    );
}

#[tokio::test]
async fn sqlite_records_deployments_and_knows_what_runs_where() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("canaryd.db").display());
    let store = SqlStore::connect(&url).await.unwrap();
    contract(&store).await;
    groups(&store).await;
}

#[tokio::test]
async fn postgres_records_deployments_and_knows_what_runs_where() {
    let postgres = PostgresServer::start();
    let url = postgres.database("deployments");
    let store = SqlStore::connect(&url).await.unwrap();
    contract(&store).await;
    groups(&store).await;
}
