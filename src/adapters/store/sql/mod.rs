//! The durable store through sqlx, on SQLite (embedded, WAL, one process) or Postgres
//! (several replicas), with the same code and one migration folder per dialect. Each
//! analysis row holds the analysis as JSON next to the columns queries filter on; events
//! and checks are append-only. Every write is one transaction and, on SQLite,
//! synchronous=FULL: a decision is on disk before the engine acts on it.
//!
//! Queries use `$N` placeholders, which both dialects accept; the few differences (row
//! locks, the clock, how a write transaction begins) live in `Dialect`.

use std::time::Duration;

use chrono::SecondsFormat;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyConnection, AnyPool, AssertSqlSafe, Connection, Executor, Row, Transaction};

use super::process_lock::ProcessLock;
use crate::domain::Timestamp;
use crate::domain::record::Analysis;
use crate::ports::StoreError;

mod analyses;
mod blocks;
mod deployment_groups;
mod deployments;
mod group;
mod history;
mod leases;
mod routes;
#[cfg(test)]
mod tests;

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Milliseconds since the epoch by the database's clock: leases are compared on one
    /// clock, whatever the replicas' clocks say.
    fn now_ms(self) -> &'static str {
        match self {
            Dialect::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
            Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        }
    }

    /// Locks the selected rows until commit (SQLite's write transactions are already
    /// serial: they begin IMMEDIATE).
    fn for_update(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }
}

pub struct SqlStore {
    pool: AnyPool,
    dialect: Dialect,
    /// Held for the life of the store: one process per SQLite file.
    _lock: Option<ProcessLock>,
    /// Where saves of analyses under way go to be committed together.
    group: Option<group::GroupCommit>,
}

pub(crate) type Tx = Transaction<'static, Any>;

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

fn document(analysis: &Analysis) -> Result<String, StoreError> {
    serde_json::to_string(analysis).map_err(backend)
}

fn analysis_from(row: &AnyRow, column: usize) -> Result<Analysis, StoreError> {
    let text: String = row.try_get(column).map_err(backend)?;
    serde_json::from_str(&text)
        .map_err(|e| backend(format!("unreadable analysis in the database: {e}")))
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// A query built at run time from trusted fragments (the dialect's), never from input.
fn sql(text: String) -> sqlx::query::Query<'static, Any, sqlx::any::AnyArguments> {
    sqlx::query(AssertSqlSafe(text))
}

/// What a database URL names.
enum Target {
    Sqlite {
        url: String,
        file: Option<std::path::PathBuf>,
    },
    Postgres(String),
}

fn target(url: &str) -> Result<Target, StoreError> {
    if url == "memory:" {
        return Ok(Target::Sqlite {
            url: "sqlite::memory:".into(),
            file: None,
        });
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Target::Postgres(url.to_string()));
    }
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Err(backend(format!(
            "unsupported database URL {url:?}: use sqlite://PATH, postgres://... or memory:"
        )));
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = path.strip_prefix("//").unwrap_or(path);
    if path.is_empty() || path == ":memory:" {
        return Ok(Target::Sqlite {
            url: "sqlite::memory:".into(),
            file: None,
        });
    }
    // Created if missing, unless the URL says otherwise.
    let query = if query.contains("mode=") {
        query.to_string()
    } else if query.is_empty() {
        "mode=rwc".to_string()
    } else {
        format!("{query}&mode=rwc")
    };
    Ok(Target::Sqlite {
        url: format!("sqlite://{path}?{query}"),
        file: Some(std::path::PathBuf::from(path)),
    })
}

/// The pragmas a durable store needs on every SQLite connection.
const SQLITE_PRAGMAS: [&str; 4] = [
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA busy_timeout = 5000",
    "PRAGMA foreign_keys = ON",
];

/// SQLite through `Any`, with `pragmas` run on every connection.
async fn sqlite_pool(
    url: &str,
    on_disk: bool,
    pragmas: Vec<String>,
) -> Result<AnyPool, sqlx::Error> {
    let options = AnyPoolOptions::new()
        .idle_timeout(None)
        .max_lifetime(None)
        .after_connect(move |connection, _| {
            let pragmas = pragmas.clone();
            Box::pin(async move {
                for pragma in pragmas {
                    connection.execute(AssertSqlSafe(pragma)).await?;
                }
                Ok(())
            })
        });
    if !on_disk {
        // An in-memory database is one connection's: keep exactly one open, forever.
        return options
            .max_connections(1)
            .min_connections(1)
            .connect(url)
            .await;
    }
    options
        .max_connections(4)
        .min_connections(0)
        .after_release(|connection, _| Box::pin(outside_transaction(connection)))
        .connect(url)
        .await
}

/// Whether a connection handed back may be pooled again: only outside any transaction.
/// On a full disk or an I/O error SQLite rolls the transaction back by itself, sqlx
/// still counts it open, the ROLLBACK it sends when the transaction is dropped fails,
/// and every later BEGIN on that connection would be refused, for ever. Such a
/// connection is closed instead, and the pool opens a fresh one.
async fn outside_transaction(connection: &mut AnyConnection) -> Result<bool, sqlx::Error> {
    // The round trip runs after the ROLLBACK a dropped transaction queued.
    connection.ping().await?;
    Ok(!connection.is_in_transaction())
}

impl SqlStore {
    /// Opens (creating if needed) `sqlite://PATH`, `postgres://...` or `memory:` (a
    /// SQLite database that lives as long as the store) and brings its schema up to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, Vec::new()).await
    }

    /// `connect`, with `extra` pragmas run on every SQLite connection after canaryd's.
    async fn connect_with(url: &str, extra: Vec<String>) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (pool, dialect, lock) = match target(url)? {
            Target::Sqlite {
                url: sqlite_url,
                file,
            } => {
                let lock = file.as_deref().map(ProcessLock::acquire).transpose()?;
                let pragmas = SQLITE_PRAGMAS.iter().map(|p| p.to_string());
                let pragmas = pragmas.chain(extra).collect();
                let pool = sqlite_pool(&sqlite_url, file.is_some(), pragmas)
                    .await
                    .map_err(|e| backend(format!("cannot open {url}: {e}")))?;
                (pool, Dialect::Sqlite, lock)
            }
            Target::Postgres(postgres_url) => {
                let pool = AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect(&postgres_url)
                    .await
                    .map_err(|e| backend(format!("cannot connect to Postgres: {e}")))?;
                (pool, Dialect::Postgres, None)
            }
        };
        let migrator = match dialect {
            Dialect::Sqlite => &SQLITE,
            Dialect::Postgres => &POSTGRES,
        };
        migrator
            .run(&pool)
            .await
            .map_err(|e| backend(format!("cannot migrate the database: {e}")))?;
        let group = Some(group::GroupCommit::start(pool.clone(), dialect));
        Ok(Self {
            pool,
            dialect,
            _lock: lock,
            group,
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// A transaction that will write. On SQLite it takes the write lock at once, so two
    /// of them never deadlock upgrading a read lock.
    async fn begin_write(&self) -> Result<Tx, StoreError> {
        begin_write(&self.pool, self.dialect).await
    }
}

pub(super) async fn begin_write(pool: &AnyPool, dialect: Dialect) -> Result<Tx, StoreError> {
    match dialect {
        Dialect::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
        Dialect::Postgres => pool.begin().await,
    }
    .map_err(backend)
}
