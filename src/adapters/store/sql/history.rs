//! The evidence, the audit trail, status counts and freezes.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{SqlStore, backend, parse_time, time};
use crate::domain::analysis::{Record, RecordKind, Status};
use crate::domain::record::{CheckRecord, EventRecord};
use crate::ports::{Freeze, FreezeStore, HistoryStore, StoreError};

fn text(row: &AnyRow, column: usize) -> Result<String, StoreError> {
    row.try_get(column).map_err(backend)
}

#[async_trait]
impl HistoryStore for SqlStore {
    async fn checks(&self, id: &str) -> Result<Vec<CheckRecord>, StoreError> {
        let rows = sqlx::query("SELECT document FROM checks WHERE analysis_id = $1 ORDER BY seq")
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|row| {
                serde_json::from_str(&text(row, 0)?)
                    .map_err(|e| backend(format!("unreadable check: {e}")))
            })
            .collect()
    }

    async fn events(&self, id: &str) -> Result<Vec<EventRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, kind, actor, message FROM events WHERE analysis_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|row| {
                let kind = text(row, 1)?;
                Ok(EventRecord {
                    at: parse_time(&text(row, 0)?)?,
                    record: Record {
                        kind: RecordKind::parse(&kind)
                            .ok_or_else(|| backend(format!("unknown event kind {kind:?}")))?,
                        actor: text(row, 2)?,
                        message: text(row, 3)?,
                    },
                })
            })
            .collect()
    }

    async fn status_counts(&self) -> Result<Vec<(String, String, Status, i64)>, StoreError> {
        let rows = sqlx::query("SELECT team, environment, status, COUNT(*) FROM analyses GROUP BY team, environment, status")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|row| {
                let status = text(row, 2)?;
                let status = Status::parse(&status)
                    .ok_or_else(|| backend(format!("unknown status {status:?}")))?;
                let count: i64 = row.try_get(3).map_err(backend)?;
                Ok((text(row, 0)?, text(row, 1)?, status, count))
            })
            .collect()
    }
}

#[async_trait]
impl FreezeStore for SqlStore {
    async fn add_freeze(&self, freeze: &Freeze) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO freezes (id, environment, reason, actor, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&freeze.id)
            .bind(&freeze.environment)
            .bind(&freeze.reason)
            .bind(&freeze.actor)
            .bind(time(&freeze.created_at))
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn freezes(&self) -> Result<Vec<Freeze>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, environment, reason, actor, created_at FROM freezes ORDER BY created_at",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(freeze_from).collect()
    }

    /// One statement: two concurrent lifts of one freeze cannot both succeed.
    async fn remove_freeze(&self, id: &str) -> Result<Option<Freeze>, StoreError> {
        let row = sqlx::query(
            "DELETE FROM freezes WHERE id = $1 RETURNING id, environment, reason, actor, created_at",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(freeze_from).transpose()
    }
}

fn freeze_from(row: &AnyRow) -> Result<Freeze, StoreError> {
    Ok(Freeze {
        id: text(row, 0)?,
        environment: text(row, 1)?,
        reason: text(row, 2)?,
        actor: text(row, 3)?,
        created_at: parse_time(&text(row, 4)?)?,
    })
}
