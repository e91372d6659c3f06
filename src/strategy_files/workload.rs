//! Validation of `spec.workload`: the Deployment canaryd deploys the canary beside.

use serde_saphyr::Spanned;

use super::diagnostics::FileDiagnostics;
use super::raw::RawWorkload;
use super::validate::{duration, non_empty};
use crate::domain::strategy::{DEFAULT_PROGRESS_DEADLINE, RouterSpec, WorkloadSpec};
use crate::domain::template::Template;

pub fn workload(
    d: &mut FileDiagnostics,
    raw: Option<&Spanned<RawWorkload>>,
    router: Option<&RouterSpec>,
    known: &dyn Fn(&str) -> bool,
) -> Option<Option<WorkloadSpec>> {
    let Some(raw) = raw else {
        return Some(None);
    };
    if let Some(RouterSpec::Haproxy(_)) = router {
        let message = "spec.workload needs a Kubernetes router (or none): HAProxy's servers \
                       are fixed addresses, not the canary Deployment's pods";
        d.error(&raw.referenced, message.to_string());
    }
    let w = &raw.value;
    let deployment = d.template(&w.deployment, known, "workload.deployment");
    let namespace = match &w.namespace {
        Some(namespace) => d.template(namespace, known, "workload.namespace"),
        None => Template::parse("{{namespace}}", |_| true).ok(),
    };
    let container = match &w.container {
        Some(container) => Some(non_empty(d, container, "workload.container")?),
        None => None,
    };
    let progress_deadline = match &w.progress_deadline {
        Some(deadline) => duration(d, deadline, "workload.progressDeadline"),
        None => Some(DEFAULT_PROGRESS_DEADLINE),
    };
    let canary_replicas = match &w.canary_replicas {
        None => Some(None),
        Some(replicas) => match u32::try_from(replicas.value) {
            Ok(n) if n >= 1 => Some(Some(n)),
            _ => {
                let message = format!(
                    "workload.canaryReplicas must be a whole number of at least 1, found {}",
                    replicas.value
                );
                d.error(&replicas.referenced, message);
                None
            }
        },
    };
    Some(Some(WorkloadSpec {
        deployment: deployment?,
        namespace: namespace?,
        container,
        progress_deadline: progress_deadline?,
        canary_replicas: canary_replicas?,
    }))
}
