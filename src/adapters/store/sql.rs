//! The durable store on SQLite (embedded, WAL) through sqlx. Each analysis row holds the
//! analysis as JSON next to the columns queries filter on; events and checks are
//! append-only. Every `save` is one transaction, synchronous=FULL: a decision is on disk
//! before the engine acts on it.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::SecondsFormat;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, Transaction};

use crate::domain::Timestamp;
use crate::domain::analysis::{Record, RecordKind, Status};
use crate::domain::record::{Analysis, CheckRecord, EventRecord};
use crate::ports::{
    AnalysisQuery, AnalysisStore, Change, Freeze, FreezeStore, HistoryStore, IdempotencyKey,
    StoreError,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqlStore {
    pool: SqlitePool,
}

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

fn time(at: &Timestamp) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_time(text: &str) -> Result<Timestamp, StoreError> {
    text.parse()
        .map_err(|e| backend(format!("bad timestamp {text:?} in the database: {e}")))
}

impl SqlStore {
    /// Opens (creating if needed) a SQLite database such as `sqlite://canaryd.db` and
    /// brings its schema up to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| backend(format!("invalid database URL {url:?}: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| backend(format!("cannot open {url}: {e}")))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| backend(format!("cannot migrate {url}: {e}")))?;
        Ok(Self { pool })
    }

    async fn append(
        tx: &mut Transaction<'_, Sqlite>,
        id: &str,
        change: &Change,
    ) -> Result<(), StoreError> {
        for event in &change.events {
            sqlx::query(
                "INSERT INTO events (analysis_id, at, kind, actor, message) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(time(&event.at))
            .bind(event.record.kind.as_str())
            .bind(&event.record.actor)
            .bind(&event.record.message)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
        }
        for check in &change.checks {
            sqlx::query(
                "INSERT INTO checks (analysis_id, check_number, step, metric, at, outcome, value, queries, document) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(i64::try_from(check.check).unwrap_or(i64::MAX))
            .bind(i64::try_from(check.step).unwrap_or(i64::MAX))
            .bind(&check.metric)
            .bind(time(&check.at))
            .bind(check.judgement.outcome.as_str())
            .bind(check.judgement.value)
            .bind(check.queries.join("\n"))
            .bind(serde_json::to_string(check).map_err(backend)?)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
        }
        Ok(())
    }
}

fn document(analysis: &Analysis) -> Result<String, StoreError> {
    serde_json::to_string(analysis).map_err(backend)
}

fn analysis_from(text: &str) -> Result<Analysis, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| backend(format!("unreadable analysis in the database: {e}")))
}

#[async_trait]
impl AnalysisStore for SqlStore {
    async fn create(
        &self,
        analysis: &Analysis,
        change: &Change,
        key: Option<&IdempotencyKey>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query(
            "INSERT INTO analyses (id, team, strategy, service, environment, status, created_at, updated_at, document) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&analysis.id)
        .bind(&analysis.strategy.team)
        .bind(analysis.strategy.to_string())
        .bind(&analysis.service)
        .bind(&analysis.environment)
        .bind(analysis.state.status.as_str())
        .bind(time(&analysis.created_at))
        .bind(time(&analysis.state.updated_at))
        .bind(document(analysis)?)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if let Some(key) = key {
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys (team, key, analysis_id, request_digest, created_at) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(&key.team)
            .bind(&key.key)
            .bind(&analysis.id)
            .bind(&key.request_digest)
            .bind(time(&analysis.created_at))
            .execute(&mut *tx)
            .await;
            if let Err(error) = inserted {
                let taken = error
                    .as_database_error()
                    .is_some_and(|e| e.is_unique_violation());
                return Err(if taken {
                    StoreError::KeyTaken
                } else {
                    backend(error)
                });
            }
        }
        Self::append(&mut tx, &analysis.id, change).await?;
        tx.commit().await.map_err(backend)
    }

    async fn find_key(
        &self,
        team: &str,
        key: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT analysis_id, request_digest FROM idempotency_keys WHERE team = ? AND key = ?",
        )
        .bind(team)
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        Ok(row.map(|row| (row.get(0), row.get(1))))
    }

    async fn save(&self, analysis: &Analysis, change: &Change) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let updated = sqlx::query(
            "UPDATE analyses SET status = ?, updated_at = ?, document = ? WHERE id = ?",
        )
        .bind(analysis.state.status.as_str())
        .bind(time(&analysis.state.updated_at))
        .bind(document(analysis)?)
        .bind(&analysis.id)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(analysis.id.clone()));
        }
        Self::append(&mut tx, &analysis.id, change).await?;
        tx.commit().await.map_err(backend)
    }

    async fn get(&self, id: &str) -> Result<Option<Analysis>, StoreError> {
        let row = sqlx::query("SELECT document FROM analyses WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|row| analysis_from(row.get(0))).transpose()
    }

    async fn list(&self, query: &AnalysisQuery) -> Result<Vec<Analysis>, StoreError> {
        let mut sql = QueryBuilder::<Sqlite>::new("SELECT document FROM analyses WHERE 1 = 1");
        if !query.statuses.is_empty() {
            sql.push(" AND status IN (");
            let mut statuses = sql.separated(", ");
            for status in &query.statuses {
                statuses.push_bind(status.as_str());
            }
            sql.push(")");
        }
        if let Some(team) = &query.team {
            sql.push(" AND team = ").push_bind(team);
        }
        if let Some(environment) = &query.environment {
            sql.push(" AND environment = ").push_bind(environment);
        }
        sql.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(i64::try_from(query.limit.unwrap_or(usize::MAX)).unwrap_or(i64::MAX));
        let rows = sql.build().fetch_all(&self.pool).await.map_err(backend)?;
        rows.iter().map(|row| analysis_from(row.get(0))).collect()
    }
}

#[async_trait]
impl HistoryStore for SqlStore {
    async fn checks(&self, id: &str) -> Result<Vec<CheckRecord>, StoreError> {
        let rows = sqlx::query("SELECT document FROM checks WHERE analysis_id = ? ORDER BY seq")
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|row| {
                serde_json::from_str(row.get(0))
                    .map_err(|e| backend(format!("unreadable check: {e}")))
            })
            .collect()
    }

    async fn events(&self, id: &str) -> Result<Vec<EventRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, kind, actor, message FROM events WHERE analysis_id = ? ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|row| {
                let kind: String = row.get(1);
                Ok(EventRecord {
                    at: parse_time(row.get(0))?,
                    record: Record {
                        kind: RecordKind::parse(&kind)
                            .ok_or_else(|| backend(format!("unknown event kind {kind:?}")))?,
                        actor: row.get(2),
                        message: row.get(3),
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
                let status: String = row.get(2);
                let status = Status::parse(&status)
                    .ok_or_else(|| backend(format!("unknown status {status:?}")))?;
                Ok((row.get(0), row.get(1), status, row.get(3)))
            })
            .collect()
    }
}

#[async_trait]
impl FreezeStore for SqlStore {
    async fn add_freeze(&self, freeze: &Freeze) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO freezes (id, environment, reason, actor, created_at) VALUES (?, ?, ?, ?, ?)")
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
            "DELETE FROM freezes WHERE id = ? RETURNING id, environment, reason, actor, created_at",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(freeze_from).transpose()
    }
}

fn freeze_from(row: &sqlx::sqlite::SqliteRow) -> Result<Freeze, StoreError> {
    Ok(Freeze {
        id: row.get(0),
        environment: row.get(1),
        reason: row.get(2),
        actor: row.get(3),
        created_at: parse_time(row.get(4))?,
    })
}
