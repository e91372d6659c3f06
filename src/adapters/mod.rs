//! Implementations of the ports for real systems.

pub mod kube;
pub mod notify;
pub mod prometheus;
pub mod router;
pub mod store;
