//! A demo service and a load generator, for the local demo and the end-to-end tests.
//!
//! The service answers `GET /` with a configurable error rate and latency, and exposes
//! `http_requests_total{service,track,code}` and `http_request_duration_seconds` on
//! `/metrics`. `PUT /admin/behaviour` changes its behaviour while it runs.

pub mod load;
pub mod service;
