//! Analysis storage.

pub mod memory;
