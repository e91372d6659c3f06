//! Group commits. Saves of analyses under way queue for one committer, which writes
//! everything queued while the previous commit was on its way to disk in one
//! transaction: one fsync for many analyses instead of one each. Each save stays
//! fenced on its own (a savepoint apiece: a stale writer's save is undone alone), and
//! each caller hears back only after the commit that holds its save, so a router
//! command still waits for its own decision to be durable.

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::{Dialect, SqlStore, Tx, backend, begin_write};
use crate::domain::record::Analysis;
use crate::ports::{Change, Lease, StoreError};

/// Saves queued at most; a caller beyond it waits for room.
const QUEUE: usize = 1024;
/// Saves in one transaction at most.
const MAX_BATCH: usize = 512;

struct Pending {
    analysis: Analysis,
    change: Change,
    lease: Lease,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

pub(super) struct GroupCommit {
    sender: mpsc::Sender<Pending>,
}

impl GroupCommit {
    pub(super) fn start(pool: AnyPool, dialect: Dialect) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(commit_batches(pool, dialect, receiver));
        Self { sender }
    }

    pub(super) async fn save(
        &self,
        analysis: &Analysis,
        change: &Change,
        lease: &Lease,
    ) -> Result<(), StoreError> {
        let stopped = || backend("the store's committer has stopped");
        // Room in the queue first, the copy after: saves waiting for room hold only a
        // reference, so a burst of checks does not copy every analysis at once.
        let room = self.sender.reserve().await.map_err(|_| stopped())?;
        let (reply, answer) = oneshot::channel();
        room.send(Pending {
            analysis: analysis.clone(),
            change: change.clone(),
            lease: lease.clone(),
            reply,
        });
        answer.await.map_err(|_| stopped())?
    }
}

async fn commit_batches(pool: AnyPool, dialect: Dialect, mut receiver: mpsc::Receiver<Pending>) {
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        commit(&pool, dialect, batch).await;
    }
}

async fn commit(pool: &AnyPool, dialect: Dialect, batch: Vec<Pending>) {
    let mut tx = match begin_write(pool, dialect).await {
        Ok(tx) => tx,
        Err(error) => return reply_all(batch, &error),
    };
    let mut results = Vec::with_capacity(batch.len());
    for pending in &batch {
        results.push(save_one(&mut tx, pending).await);
    }
    match tx.commit().await {
        Ok(()) => {
            for (pending, result) in batch.into_iter().zip(results) {
                let _ = pending.reply.send(result);
            }
        }
        Err(error) => reply_all(batch, &backend(error)),
    }
}

/// One save inside the group's transaction; undone alone if it fails.
async fn save_one(tx: &mut Tx, pending: &Pending) -> Result<(), StoreError> {
    let savepoint = |sql: &'static str| sqlx::query(sql);
    savepoint("SAVEPOINT one_save")
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    let result =
        SqlStore::write_running(tx, &pending.analysis, &pending.change, &pending.lease).await;
    let undo = if result.is_ok() {
        "RELEASE SAVEPOINT one_save"
    } else {
        "ROLLBACK TO SAVEPOINT one_save"
    };
    savepoint(undo).execute(&mut **tx).await.map_err(backend)?;
    if result.is_err() {
        savepoint("RELEASE SAVEPOINT one_save")
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
    }
    result
}

fn reply_all(batch: Vec<Pending>, error: &StoreError) {
    for pending in batch {
        let _ = pending.reply.send(Err(backend(error.to_string())));
    }
}
