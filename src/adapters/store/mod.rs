//! Analysis storage.

pub mod memory;
pub mod sql;
