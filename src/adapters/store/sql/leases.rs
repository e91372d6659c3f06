//! Replica leases and the inbox between replicas. A replica's lease is one row it
//! renews; the analyses it runs point at it. When a row expires, by the database's
//! clock, any replica may take those analyses over, bumping each one's lease token so
//! that the old holder's writes are refused from then on.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;

use super::{Dialect, SqlStore, analysis_from, backend, ms, sql};
use crate::domain::record::Analysis;
use crate::ports::{InboxMessage, InboxStore, Lease, LeaseStore, Replica, StoreError};

/// Answers nobody collected (the asker gave up) are dropped after this long.
const REPLY_RETENTION_MS: i64 = 10 * 60 * 1000;

#[async_trait]
impl LeaseStore for SqlStore {
    async fn register(&self, replica: &Replica, ttl: Duration) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        if self.dialect == Dialect::Sqlite {
            // The process lock proves no other canaryd uses this file.
            sqlx::query("DELETE FROM replicas WHERE id <> $1")
                .bind(&replica.id)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        let now = self.dialect.now_ms();
        sql(format!(
            "INSERT INTO replicas (id, description, started_ms, expires_ms) VALUES ($1, $2, {now}, {now} + $3) \
             ON CONFLICT (id) DO UPDATE SET expires_ms = {now} + $3"
        ))
        .bind(&replica.id)
        .bind(&replica.description)
        .bind(ms(ttl))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn heartbeat(&self, replica_id: &str, ttl: Duration) -> Result<bool, StoreError> {
        let now = self.dialect.now_ms();
        let updated = sql(format!(
            "UPDATE replicas SET expires_ms = {now} + $2 WHERE id = $1 AND expires_ms >= {now}"
        ))
        .bind(replica_id)
        .bind(ms(ttl))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        // Housekeeping rides on the heartbeat: answers nobody collected.
        sql(format!(
            "DELETE FROM replies WHERE created_ms < {now} - {REPLY_RETENTION_MS}"
        ))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(updated.rows_affected() == 1)
    }

    async fn claim_orphans(
        &self,
        replica_id: &str,
        limit: usize,
    ) -> Result<Vec<(Analysis, Lease)>, StoreError> {
        let mut tx = self.begin_write().await?;
        let skip_locked = match self.dialect {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE OF a SKIP LOCKED",
        };
        let rows = sql(format!(
            "SELECT a.id FROM analyses a LEFT JOIN replicas r ON r.id = a.replica \
             WHERE a.active = 1 AND (a.replica IS NULL OR r.id IS NULL OR r.expires_ms < {}) \
             ORDER BY a.created_at LIMIT $1{skip_locked}",
            self.dialect.now_ms()
        ))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get(0).map_err(backend)?;
            let row = sqlx::query(
                "UPDATE analyses SET replica = $1, lease_token = lease_token + 1 \
                 WHERE id = $2 RETURNING document, lease_token",
            )
            .bind(replica_id)
            .bind(&id)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
            let lease = Lease {
                replica: replica_id.to_string(),
                token: row.try_get(1).map_err(backend)?,
            };
            claimed.push((analysis_from(&row, 0)?, lease));
        }
        tx.commit().await.map_err(backend)?;
        Ok(claimed)
    }

    async fn release(&self, replica_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE replicas SET expires_ms = 0 WHERE id = $1")
            .bind(replica_id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl InboxStore for SqlStore {
    async fn post(&self, analysis_id: &str, message: &InboxMessage) -> Result<(), StoreError> {
        sql(format!(
            "INSERT INTO inbox (analysis_id, message, created_ms) VALUES ($1, $2, {})",
            self.dialect.now_ms()
        ))
        .bind(analysis_id)
        .bind(serde_json::to_string(message).map_err(backend)?)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn take(&self, replica_id: &str) -> Result<Vec<(String, InboxMessage)>, StoreError> {
        let rows = sqlx::query(
            "DELETE FROM inbox WHERE seq IN (SELECT i.seq FROM inbox i JOIN analyses a ON a.id = i.analysis_id \
             WHERE a.replica = $1 AND a.active = 1 ORDER BY i.seq LIMIT 500) \
             RETURNING seq, analysis_id, message",
        )
        .bind(replica_id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let mut messages = Vec::with_capacity(rows.len());
        for row in rows {
            let seq: i64 = row.try_get(0).map_err(backend)?;
            let id: String = row.try_get(1).map_err(backend)?;
            let text: String = row.try_get(2).map_err(backend)?;
            let message = serde_json::from_str(&text)
                .map_err(|e| backend(format!("unreadable inbox message {seq}: {e}")))?;
            messages.push((seq, id, message));
        }
        messages.sort_by_key(|(seq, _, _)| *seq);
        Ok(messages
            .into_iter()
            .map(|(_, id, message)| (id, message))
            .collect())
    }

    async fn answer(&self, reply_id: &str, reply: &str) -> Result<(), StoreError> {
        sql(format!(
            "INSERT INTO replies (id, reply, created_ms) VALUES ($1, $2, {})",
            self.dialect.now_ms()
        ))
        .bind(reply_id)
        .bind(reply)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn reply(&self, reply_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("DELETE FROM replies WHERE id = $1 RETURNING reply")
            .bind(reply_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|row| row.try_get(0).map_err(backend)).transpose()
    }
}
