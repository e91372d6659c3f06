//! What the Kubernetes API answered, as the router port's errors, naming the object.

use crate::ports::RouterError;

/// A failed call to the API about `what` (`HTTPRoute payments/checkout`) while trying
/// to `verb` it.
pub fn api_error(error: kube::Error, verb: &str, what: &str) -> RouterError {
    let status = match error {
        kube::Error::Api(status) => status,
        other => {
            return RouterError::Unreachable(format!(
                "the Kubernetes API did not answer a {verb} of {what}: {other}"
            ));
        }
    };
    let message = status.message.trim();
    match status.code {
        404 if crd_missing(&status) => RouterError::Missing(format!(
            "{what}: its API is not served by the cluster; is the CRD installed? ({message})"
        )),
        404 => RouterError::Missing(format!("{what} not found")),
        401 => RouterError::Forbidden(format!(
            "the Kubernetes API refused canaryd's credentials for a {verb} of {what}: {message}"
        )),
        403 => RouterError::Forbidden(format!("canaryd may not {verb} {what}: {message}")),
        409 | 422 | 415 | 400 => RouterError::Refused(format!(
            "the Kubernetes API refused a {verb} of {what}: {message}"
        )),
        _ => RouterError::Unreachable(format!(
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
