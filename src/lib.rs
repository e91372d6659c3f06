//! canaryd: metrics-driven canary analysis.
#![forbid(unsafe_code)]

pub mod cli;
pub mod domain;
pub mod strategy_files;
