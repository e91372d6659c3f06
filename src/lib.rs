//! canaryd: metrics-driven canary analysis.
#![forbid(unsafe_code)]

pub mod adapters;
pub mod auth;
pub mod cli;
pub mod demo;
pub mod domain;
pub mod engine;
pub mod http;
pub mod ports;
pub mod server;
pub mod strategy_files;
pub mod telemetry;
