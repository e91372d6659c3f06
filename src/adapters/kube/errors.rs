//! What the Kubernetes API answered, as the router's and the workload's port errors,
//! naming the object.

use crate::ports::{RouterError, WorkloadError};

/// How a call failed, before it becomes a port's error.
pub enum Failure {
    Unreachable(String),
    Missing(String),
    Forbidden(String),
    Refused(String),
}

impl From<Failure> for RouterError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Unreachable(m) => RouterError::Unreachable(m),
            Failure::Missing(m) => RouterError::Missing(m),
            Failure::Forbidden(m) => RouterError::Forbidden(m),
            Failure::Refused(m) => RouterError::Refused(m),
        }
    }
}

impl From<Failure> for WorkloadError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Unreachable(m) => WorkloadError::Unreachable(m),
            Failure::Missing(m) => WorkloadError::Missing(m),
            Failure::Forbidden(m) => WorkloadError::Forbidden(m),
            Failure::Refused(m) => WorkloadError::Refused(m),
        }
    }
}

/// A failed call to the API about `what` (`HTTPRoute payments/checkout`) while trying
/// to `verb` it.
pub fn api_error<E: From<Failure>>(error: kube::Error, verb: &str, what: &str) -> E {
    failure(error, verb, what).into()
}

fn failure(error: kube::Error, verb: &str, what: &str) -> Failure {
    let status = match error {
        kube::Error::Api(status) => status,
        other => {
            return Failure::Unreachable(format!(
                "the Kubernetes API did not answer a {verb} of {what}: {other}"
            ));
        }
    };
    let message = status.message.trim();
    match status.code {
        404 if crd_missing(&status) => Failure::Missing(format!(
            "{what}: its API is not served by the cluster; is the CRD installed? ({message})"
        )),
        404 => Failure::Missing(format!("{what} not found")),
        401 => Failure::Forbidden(format!(
            "the Kubernetes API refused canaryd's credentials for a {verb} of {what}: {message}"
        )),
        403 => Failure::Forbidden(format!("canaryd may not {verb} {what}: {message}")),
        409 | 422 | 415 | 400 => Failure::Refused(format!(
            "the Kubernetes API refused a {verb} of {what}: {message}"
        )),
        _ => Failure::Unreachable(format!(
            "the Kubernetes API failed a {verb} of {what} ({}): {message}",
            status.code
        )),
    }
}

/// A 404 that is not a `NotFound` Status: the plain-text answer the API server gives
/// for a group or version it does not serve, that is, a CRD that is not installed.
pub fn crd_missing(status: &kube::core::Status) -> bool {
    status.code == 404 && status.reason != "NotFound"
}

pub fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

pub fn is_crd_missing(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if crd_missing(status))
}

pub fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404 && status.reason == "NotFound")
}
