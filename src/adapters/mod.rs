//! Implementations of the ports for real systems.

pub mod coalesce;
pub mod kube;
pub mod notify;
pub mod prometheus;
pub mod router;
pub mod store;
pub mod throttle;
