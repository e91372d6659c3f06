//! The pure core of canaryd: strategies, templates, judges and the analysis state
//! machine. Nothing here performs I/O, awaits, or reads the clock; callers pass `now`.

pub mod analysis;
pub mod deployment;
pub mod group;
pub mod judge;
pub mod promql;
pub mod record;
pub mod release;
pub mod strategy;
pub mod template;
pub mod workload;

/// A point in time. The domain never reads the clock: callers pass it in.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
