//! The pool after SQLite gave up a transaction on its own: a full database file.

use std::time::Duration;

use super::SqlStore;
use crate::domain::analysis::{AnalysisState, Plan};
use crate::domain::record::{Analysis, RouteTarget};
use crate::domain::strategy::{Promotion, Step, StrategyId};
use crate::ports::{AnalysisStore, Change, LeaseStore, Replica};

fn analysis(id: &str) -> Analysis {
    let now = chrono::Utc::now();
    let plan = Plan {
        steps: vec![Step {
            weight: 10,
            checks: 1,
            max_checks: 10,
        }],
        interval: Duration::from_secs(30),
        failure_limit: 0,
        inconclusive_limit: 2,
        promotion: Promotion::Auto,
        confirm_promotion: false,
        gate_timeout: Duration::from_secs(3600),
        on_inconclusive_limit: Default::default(),
        workload: false,
    };
    Analysis {
        id: id.to_string(),
        strategy: StrategyId {
            team: "payments".into(),
            name: "checkout".into(),
        },
        service: "checkout".into(),
        environment: "prod".into(),
        image_tag: Some("x".repeat(2000)),
        git_commit: None,
        git_branch: None,
        triggered_by: None,
        variables: Default::default(),
        route: RouteTarget::None,
        workload: None,
        created_at: now,
        state: AnalysisState::new(plan, now),
    }
}

#[tokio::test]
async fn a_transaction_sqlite_abandoned_on_a_full_disk_does_not_wedge_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("canaryd.db").display());
    let replica = Replica {
        id: "r1".into(),
        description: "test".into(),
    };
    let ttl = Duration::from_secs(30);
    drop(SqlStore::connect(&url).await.unwrap());

    // A page limit below the file's size holds it at that size: the next page is "full".
    let capped = vec!["PRAGMA max_page_count = 1".to_string()];
    let store = SqlStore::connect_with(&url, capped).await.unwrap();
    store.register(&replica, ttl).await.unwrap();
    let mut full = None;
    for n in 0..200 {
        let id = format!("a{n}");
        match store
            .create(&analysis(&id), &Change::default(), None, "r1")
            .await
        {
            Ok(_) => continue,
            Err(error) => {
                full = Some(error.to_string());
                break;
            }
        }
    }
    let full = full.expect("a capped database fills up");
    assert!(full.contains("full"), "{full}");

    // A write that needs no new page still commits, on whichever connection it gets.
    for _ in 0..20 {
        store.register(&replica, ttl).await.unwrap();
    }
}
