//! The store's ownership rules, asserted the same way on SQLite and on a real
//! PostgreSQL cluster: one owner per route, succession and hand-over, fenced writes,
//! retries as take-overs, expired replicas' analyses taken over, and the inbox.

mod support;

use std::time::Duration;

use canaryd::adapters::store::sql::SqlStore;
use canaryd::domain::analysis::Status;
use canaryd::domain::record::{Analysis, RouteTarget};
use canaryd::ports::{
    AnalysisStore, Change, InboxMessage, InboxStore, Lease, LeaseStore, Replica, RouteStore,
    StoreError, TakeOver, Wake,
};
use support::postgres::PostgresServer;

/// An analysis on HAProxy backend `backend`: analyses on one backend share a route.
fn analysis(id: &str, backend: &str) -> Analysis {
    Analysis {
        route: RouteTarget::Haproxy {
            address: "127.0.0.1:9999".into(),
            backend: backend.into(),
            stable_server: "stable".into(),
            canary_server: "canary".into(),
        },
        ..support::sample::analysis(id)
    }
}

fn with_status(mut analysis: Analysis, status: Status) -> Analysis {
    analysis.state.status = status;
    analysis
}

fn replica(id: &str) -> Replica {
    Replica {
        id: id.to_string(),
        description: format!("test {id}"),
    }
}

const TTL: Duration = Duration::from_secs(30);

/// Every rule, in one story, against one store.
async fn ownership_rules(store: &SqlStore) {
    store.register(&replica("r1"), TTL).await.unwrap();
    let none = Change::default();
    let a = analysis("a", "checkout");
    let key = a.route_key();

    // A free route is owned at once.
    let created_a = store.create(&a, &none, None, "r1").await.unwrap();
    assert_eq!(created_a.epoch, Some(1));
    assert!(created_a.wakes.is_empty());
    let lease_a = created_a.lease.clone();
    assert!(store.may_drive(&key, "a", 1, &lease_a).await.unwrap());

    // A second analysis waits as successor; the owner is superseded.
    let b = analysis("b", "checkout");
    let created_b = store.create(&b, &none, None, "r1").await.unwrap();
    assert_eq!(created_b.epoch, None);
    assert_eq!(
        created_b.wakes,
        vec![Wake::Superseded {
            id: "a".into(),
            by: "b".into()
        }]
    );
    assert!(
        !store
            .may_drive(&key, "b", 1, &created_b.lease)
            .await
            .unwrap()
    );

    // A third replaces the successor, which is superseded too.
    let c = analysis("c", "checkout");
    let created_c = store.create(&c, &none, None, "r1").await.unwrap();
    assert_eq!(created_c.wakes.len(), 2, "{:?}", created_c.wakes);
    assert!(created_c.wakes.contains(&Wake::Superseded {
        id: "b".into(),
        by: "c".into()
    }));
    let route = store.route(&key).await.unwrap();
    assert_eq!(route.owner.as_deref(), Some("a"));
    assert_eq!(route.successor.as_deref(), Some("c"));

    // The cancelled successor does not take the route when it ends.
    let b_done = with_status(b.clone(), Status::Cancelled);
    let wakes = store.save(&b_done, &none, &created_b.lease).await.unwrap();
    assert!(wakes.is_empty());

    // A stale lease is refused and writes nothing.
    let stale = Lease {
        replica: "r1".into(),
        token: 99,
    };
    let refused = store
        .save(&with_status(a.clone(), Status::Running), &none, &stale)
        .await;
    assert!(matches!(refused, Err(StoreError::Fenced(_))), "{refused:?}");
    assert_eq!(
        store.get("a").await.unwrap().unwrap().state.status,
        Status::Pending
    );

    // The owner ends: the route passes to the successor under a new epoch.
    let a_done = with_status(a.clone(), Status::Cancelled);
    let wakes = store.save(&a_done, &none, &lease_a).await.unwrap();
    assert_eq!(
        wakes,
        vec![Wake::RouteGranted {
            id: "c".into(),
            epoch: 2
        }]
    );
    assert!(!store.may_drive(&key, "a", 1, &lease_a).await.unwrap());
    assert!(
        store
            .may_drive(&key, "c", 2, &created_c.lease)
            .await
            .unwrap()
    );

    // Retrying the ended owner while the route is busy is refused, naming the owner.
    let retried = with_status(a.clone(), Status::Pending);
    let busy = store
        .take_over(&retried, Status::Cancelled, &none, "r1")
        .await
        .unwrap();
    assert_eq!(busy, TakeOver::Busy { owner: "c".into() });

    // Once the route is free, a retry takes it over with a new lease token.
    let c_done = with_status(c.clone(), Status::RolledBack);
    store.save(&c_done, &none, &created_c.lease).await.unwrap();
    let retried_c = with_status(c.clone(), Status::Pending);
    let TakeOver::Owned(owned) = store
        .take_over(&retried_c, Status::RolledBack, &none, "r1")
        .await
        .unwrap()
    else {
        panic!("the free route was not taken over");
    };
    assert_eq!(owned.lease.token, created_c.lease.token + 1);
    assert_eq!(owned.epoch, Some(4));
    // A second retry of the same stored state loses the race.
    let again = store
        .take_over(&retried_c, Status::RolledBack, &none, "r1")
        .await;
    assert!(
        matches!(
            again,
            Ok(TakeOver::Busy { .. }) | Err(StoreError::Conflict(_))
        ),
        "{again:?}"
    );
}

/// A replica whose lease expires loses its analyses to another, and its writes.
async fn expired_replicas_lose_their_analyses(store: &SqlStore, exclusive: bool) {
    let short = Duration::from_millis(300);
    store.register(&replica("old"), short).await.unwrap();
    let none = Change::default();
    let d = analysis("d", "search");
    let created = store.create(&d, &none, None, "old").await.unwrap();
    if exclusive {
        // SQLite: registering proves every other process gone.
        store.register(&replica("new"), TTL).await.unwrap();
    } else {
        store.register(&replica("new"), TTL).await.unwrap();
        assert!(store.claim_orphans("new", 10).await.unwrap().is_empty());
        tokio::time::sleep(short * 2).await;
        assert!(
            !store.heartbeat("old", short).await.unwrap(),
            "an expired lease was renewed"
        );
    }
    let claimed = store.claim_orphans("new", 10).await.unwrap();
    let ids: Vec<&str> = claimed.iter().map(|(a, _)| a.id.as_str()).collect();
    assert!(ids.contains(&"d"), "{ids:?}");
    let (_, lease) = claimed.into_iter().find(|(a, _)| a.id == "d").unwrap();
    assert_eq!(lease.token, created.lease.token + 1);
    let old_write = store.save(&d, &none, &created.lease).await;
    assert!(
        matches!(old_write, Err(StoreError::Fenced(_))),
        "{old_write:?}"
    );
    store.save(&d, &none, &lease).await.unwrap();

    // The inbox reaches the analyses of the replica that holds them, oldest first.
    let event = |reason: &str| InboxMessage::Event {
        event: canaryd::domain::analysis::Event::Operation {
            operation: canaryd::domain::analysis::Operation::Pause,
            actor: "t".into(),
            reason: reason.into(),
        },
        reply_id: Some(format!("reply-{reason}")),
    };
    store.post("d", &event("1")).await.unwrap();
    store.post("d", &event("2")).await.unwrap();
    assert!(store.take("old").await.unwrap().is_empty());
    let taken = store.take("new").await.unwrap();
    assert_eq!(
        taken,
        vec![("d".to_string(), event("1")), ("d".to_string(), event("2"))]
    );
    assert!(store.take("new").await.unwrap().is_empty());
    assert_eq!(store.reply("reply-1").await.unwrap(), None);
    store.answer("reply-1", "{}").await.unwrap();
    assert_eq!(store.reply("reply-1").await.unwrap().as_deref(), Some("{}"));
    assert_eq!(store.reply("reply-1").await.unwrap(), None);
}

#[tokio::test]
async fn sqlite_keeps_one_owner_per_route() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("canaryd.db").display());
    let store = SqlStore::connect(&url).await.unwrap();
    ownership_rules(&store).await;
    expired_replicas_lose_their_analyses(&store, true).await;
}

#[tokio::test]
async fn sqlite_refuses_a_second_process_on_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("canaryd.db").display());
    let _first = SqlStore::connect(&url).await.unwrap();
    let second = SqlStore::connect(&url).await;
    assert!(
        matches!(second, Err(StoreError::InUse { .. })),
        "{:?}",
        second.err()
    );
}

#[tokio::test]
async fn postgres_keeps_one_owner_per_route() {
    let postgres = PostgresServer::start();
    let url = postgres.database("contract");
    let store = SqlStore::connect(&url).await.unwrap();
    ownership_rules(&store).await;
    expired_replicas_lose_their_analyses(&store, false).await;
    // A second replica connects to the same, already migrated schema and sees its data.
    let second = SqlStore::connect(&url).await.unwrap();
    let seen = second
        .get("a")
        .await
        .unwrap()
        .expect("the first replica's analysis");
    assert_eq!(seen.state.status, Status::Cancelled);
}

#[tokio::test]
async fn postgres_serialises_concurrent_claims_of_one_route() {
    let postgres = PostgresServer::start();
    let url = postgres.database("race");
    let store = std::sync::Arc::new(SqlStore::connect(&url).await.unwrap());
    store.register(&replica("r1"), TTL).await.unwrap();
    let mut tasks = Vec::new();
    for n in 0..20 {
        let store = std::sync::Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let a = analysis(&format!("race-{n:02}"), "race");
            store
                .create(&a, &Change::default(), None, "r1")
                .await
                .unwrap()
        }));
    }
    let mut owners = 0;
    for task in tasks {
        owners += usize::from(task.await.unwrap().epoch.is_some());
    }
    assert_eq!(
        owners, 1,
        "exactly one of 20 concurrent starts owns the route"
    );
    let route = store
        .route(&analysis("x", "race").route_key())
        .await
        .unwrap();
    assert!(
        route.owner.is_some() && route.successor.is_some(),
        "{route:?}"
    );
}

/// Many analyses saved at once are committed together, and a stale writer among them
/// is refused alone: the others' saves and records are all there.
async fn concurrent_saves_commit_together_and_fence_alone(store: &SqlStore) {
    store.register(&replica("g1"), TTL).await.unwrap();
    let none = Change::default();
    let mut leases = Vec::new();
    for n in 0..40 {
        let analysis = analysis(&format!("g{n}"), &format!("group-{n}"));
        leases.push((
            analysis.clone(),
            store
                .create(&analysis, &none, None, "g1")
                .await
                .unwrap()
                .lease,
        ));
    }
    let saves = leases.iter().enumerate().map(|(n, (analysis, lease))| {
        let lease = if n == 7 {
            Lease {
                replica: "g1".into(),
                token: 999,
            }
        } else {
            lease.clone()
        };
        let running = with_status(analysis.clone(), Status::Running);
        let record = canaryd::domain::analysis::Record {
            kind: canaryd::domain::analysis::RecordKind::StatusChanged,
            actor: "test".into(),
            message: format!("save {n}"),
        };
        let change = Change {
            events: vec![canaryd::domain::record::EventRecord {
                at: chrono::Utc::now(),
                record,
            }],
            checks: Vec::new(),
        };
        async move { store.save(&running, &change, &lease).await }
    });
    let results = futures::future::join_all(saves).await;
    for (n, result) in results.iter().enumerate() {
        let id = format!("g{n}");
        let stored = store.get(&id).await.unwrap().unwrap();
        let events = canaryd::ports::HistoryStore::events(store, &id)
            .await
            .unwrap();
        if n == 7 {
            assert!(matches!(result, Err(StoreError::Fenced(_))), "{result:?}");
            assert_eq!(
                stored.state.status,
                Status::Pending,
                "the stale save wrote nothing"
            );
            assert!(events.iter().all(|e| e.record.message != "save 7"));
        } else {
            assert!(result.is_ok(), "{n}: {result:?}");
            assert_eq!(stored.state.status, Status::Running);
            assert!(
                events
                    .iter()
                    .any(|e| e.record.message == format!("save {n}"))
            );
        }
    }
}

#[tokio::test]
async fn sqlite_commits_concurrent_saves_together() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("canaryd.db").display());
    concurrent_saves_commit_together_and_fence_alone(&SqlStore::connect(&url).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_commits_concurrent_saves_together() {
    let postgres = PostgresServer::start();
    let store = SqlStore::connect(&postgres.database("group"))
        .await
        .unwrap();
    concurrent_saves_commit_together_and_fence_alone(&store).await;
}
