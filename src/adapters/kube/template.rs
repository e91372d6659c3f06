//! The canary Deployment, made from the stable one: the same pod template with the
//! webhook's image tag and `track: canary`, selected by the stable's selector with
//! `track: canary`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use crate::domain::workload::WorkloadTarget;

pub const TRACK: &str = "track";

type Labels = BTreeMap<String, String>;

/// `registry:5000/team/app:1.2` with tag `1.3` → `registry:5000/team/app:1.3`; a digest
/// goes too, since the tag names the new image.
pub fn with_tag(image: &str, tag: &str) -> String {
    let without_digest = image.split('@').next().unwrap_or(image);
    let name_start = without_digest.rfind('/').map_or(0, |slash| slash + 1);
    let repository = match without_digest[name_start..].rfind(':') {
        Some(colon) => &without_digest[..name_start + colon],
        None => without_digest,
    };
    format!("{repository}:{tag}")
}

/// The index and image of the named container, or of the first one.
pub fn container_image(
    deployment: &Deployment,
    name: Option<&str>,
) -> Result<(usize, String), String> {
    let what = format!(
        "Deployment {}/{}",
        deployment.metadata.namespace.as_deref().unwrap_or(""),
        deployment.metadata.name.as_deref().unwrap_or("")
    );
    let containers = deployment
        .spec
        .template
        .spec
        .as_ref()
        .map(|p| p.containers.as_slice())
        .unwrap_or_default();
    let found = match name {
        Some(name) => containers.iter().position(|c| c.name == name),
        None => (!containers.is_empty()).then_some(0),
    };
    let Some(index) = found else {
        let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
        return Err(format!(
            "{what} has no container {} (it has: {})",
            name.map_or("at all".to_string(), |n| format!("named {n:?}")),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ));
    };
    let image = containers[index].image.clone().unwrap_or_default();
    Ok((index, image))
}

/// Whether a label selector (equality terms) selects pods with `labels`.
pub fn selects(selector: &Labels, labels: &Labels) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

pub fn selector_text(labels: &Labels) -> String {
    let terms: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if terms.is_empty() {
        "none".to_string()
    } else {
        terms.join(",")
    }
}

fn with_track(labels: Option<&Labels>) -> Labels {
    let mut labels = labels.cloned().unwrap_or_default();
    labels.insert(TRACK.to_string(), "canary".to_string());
    labels
}

/// The canary Deployment for `stable` running `tag`; an error when the stable's own
/// selector would also select the canary's pods.
pub fn canary_of(
    stable: &Deployment,
    target: &WorkloadTarget,
    tag: &str,
) -> Result<Deployment, String> {
    let what = format!("Deployment {}/{}", target.namespace, target.deployment);
    let spec = &stable.spec;
    let (index, image) = container_image(stable, target.container.as_deref())?;
    let mut template = spec.template.clone();
    let pod_labels = with_track(template.metadata.as_ref().and_then(|m| m.labels.as_ref()));
    let stable_selector = spec.selector.match_labels.clone().unwrap_or_default();
    if selects(&stable_selector, &pod_labels) || stable_selector.is_empty() {
        return Err(format!(
            "{what}'s selector ({}) also selects the canary's pods ({}); give the stable pods \
             and the selector {TRACK}: stable",
            selector_text(&stable_selector),
            selector_text(&pod_labels)
        ));
    }
    template.metadata.get_or_insert_default().labels = Some(pod_labels);
    if let Some(pod) = template.spec.as_mut() {
        pod.containers[index].image = Some(with_tag(&image, tag));
    }
    let mut annotations = BTreeMap::new();
    annotations.insert("canaryd.io/stable".to_string(), target.deployment.clone());
    Ok(Deployment {
        metadata: ObjectMeta {
            name: Some(target.canary_deployment()),
            namespace: Some(target.namespace.clone()),
            labels: Some(with_track(stable.metadata.labels.as_ref())),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        spec: canary_spec(spec, target, template, &stable_selector),
        status: None,
    })
}

/// The stable's spec for the canary: its own replicas, selector and deadline.
fn canary_spec(
    stable: &DeploymentSpec,
    target: &WorkloadTarget,
    template: PodTemplateSpec,
    stable_selector: &Labels,
) -> DeploymentSpec {
    let replicas = target
        .canary_replicas
        .map(|n| n as i32)
        .or(stable.replicas)
        .unwrap_or(1);
    let deadline = target.progress_deadline.as_secs().clamp(1, i32::MAX as u64) as i32;
    DeploymentSpec {
        replicas: Some(replicas),
        selector: LabelSelector {
            match_labels: Some(with_track(Some(stable_selector))),
            match_expressions: stable.selector.match_expressions.clone(),
        },
        template,
        progress_deadline_seconds: Some(deadline),
        min_ready_seconds: stable.min_ready_seconds,
        revision_history_limit: stable.revision_history_limit,
        strategy: stable.strategy.clone(),
        paused: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_tag_keeps_the_repository_and_its_registry_port() {
        assert_eq!(
            with_tag("registry:5000/shop/web:1.2.0", "1.3.0"),
            "registry:5000/shop/web:1.3.0"
        );
        assert_eq!(with_tag("web", "2"), "web:2");
        assert_eq!(
            with_tag("ghcr.io/shop/web@sha256:abc", "2"),
            "ghcr.io/shop/web:2"
        );
        assert_eq!(with_tag("shop/web:1@sha256:abc", "2"), "shop/web:2");
    }

    #[test]
    fn selectors_select_by_equality_and_an_empty_one_selects_nothing_here() {
        let labels: Labels = [("app", "web"), ("track", "canary")]
            .map(|(k, v)| (k.into(), v.into()))
            .into();
        let app: Labels = [("app".to_string(), "web".to_string())].into();
        let stable: Labels = [("app", "web"), ("track", "stable")]
            .map(|(k, v)| (k.into(), v.into()))
            .into();
        assert!(selects(&app, &labels));
        assert!(!selects(&stable, &labels));
        assert!(!selects(&Labels::new(), &labels));
    }
}
