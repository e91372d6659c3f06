//! Where a Deployment's rollout stands, decided as `kubectl rollout status` decides it,
//! and why its pods are not ready, as their container states say.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;

/// The rollout of one Deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    Done,
    Waiting(String),
    /// `Progressing=False` with `ProgressDeadlineExceeded`.
    Failed(String),
}

/// kubectl's order: nothing is decided before the controller has seen the latest
/// generation; then a passed deadline, then replicas still to update, old replicas
/// still to go, and updated replicas not yet available.
pub fn rollout(deployment: &Deployment) -> Rollout {
    let name = deployment.metadata.name.as_deref().unwrap_or("");
    let generation = deployment.metadata.generation.unwrap_or(0);
    let Some(status) = &deployment.status else {
        return Rollout::Waiting(format!("Deployment {name} has no status yet"));
    };
    if status.observed_generation.unwrap_or(0) < generation {
        return Rollout::Waiting(format!(
            "waiting for the Deployment controller to observe {name}'s generation {generation}"
        ));
    }
    let exceeded = status.conditions.iter().flatten().find(|c| {
        c.type_.as_deref() == Some("Progressing")
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    if let Some(condition) = exceeded {
        let message = condition.message.clone().unwrap_or_default();
        return Rollout::Failed(format!(
            "Deployment {name} exceeded its progress deadline: {message}"
        ));
    }
    let wanted = deployment.spec.replicas.unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < wanted {
        return Rollout::Waiting(format!("{updated} of {wanted} replicas of {name} updated"));
    }
    if replicas > updated {
        let old = replicas - updated;
        return Rollout::Waiting(format!("{old} old replicas of {name} pending termination"));
    }
    if available < updated {
        return Rollout::Waiting(format!(
            "{available} of {updated} updated replicas of {name} available"
        ));
    }
    Rollout::Done
}

/// Why pods are not ready: `pod web-canary-x: container app CrashLoopBackOff (back-off …)`.
/// Empty when every pod is ready or none says why.
pub fn pod_troubles(pods: &[Pod]) -> Vec<String> {
    let mut troubles = Vec::new();
    for pod in pods {
        let name = pod.metadata.name.as_deref().unwrap_or("");
        let statuses = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref());
        for container in statuses.into_iter().flatten().filter(|c| !c.ready) {
            let state = container.state.as_ref();
            let (reason, message) = match (
                state.and_then(|s| s.waiting.as_ref()),
                state.and_then(|s| s.terminated.as_ref()),
            ) {
                (Some(waiting), _) => (waiting.reason.clone(), waiting.message.clone()),
                (None, Some(terminated)) => (terminated.reason.clone(), terminated.message.clone()),
                _ => (None, None),
            };
            let Some(reason) = reason else { continue };
            let mut trouble = format!("pod {name}: container {} {reason}", container.name);
            if container.restart_count > 0 {
                trouble.push_str(&format!(" after {} restarts", container.restart_count));
            }
            if let Some(message) = message.filter(|m| !m.is_empty()) {
                trouble.push_str(&format!(" ({message})"));
            }
            troubles.push(trouble);
        }
    }
    troubles
}
