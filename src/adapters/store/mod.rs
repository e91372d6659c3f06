//! Durable state: one SQL store over SQLite (one process) or Postgres (several replicas).

pub mod process_lock;
pub mod sql;
