//! The canary workload on Kubernetes: `<deployment>-canary` is the stable Deployment's
//! pod template with the webhook's image tag and `track: canary`; promotion gives the
//! stable Deployment that image; the canary is scaled to 0 at the end.

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::access::{Access, may};
use super::errors::{api_error, is_conflict, is_not_found};
use super::rollout::{Rollout, pod_troubles, rollout};
use super::template::{canary_of, container_image, selector_text, selects};
use super::{FIELD_MANAGER, WRITER_ANNOTATION};
use crate::domain::workload::{WorkloadStep, WorkloadTarget};
use crate::ports::{Progress, Workload, WorkloadError, Writer};

/// Pods' troubles named in a reason; the rest are counted.
const MAX_TROUBLES: usize = 2;

/// Reads and patches tried before a run of 409s counts as a refusal.
const CONFLICT_ATTEMPTS: u32 = 5;

pub struct KubeWorkload {
    pub(super) client: kube::Client,
    pub(super) target: WorkloadTarget,
    pub(super) image_tag: String,
}

type Result<T> = std::result::Result<T, WorkloadError>;

impl KubeWorkload {
    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), &self.target.namespace)
    }

    fn what(&self, name: &str) -> String {
        format!("Deployment {}/{name}", self.target.namespace)
    }

    async fn get(&self, name: &str) -> Result<Option<Deployment>> {
        match self.deployments().get(name).await {
            Ok(deployment) => Ok(Some(deployment)),
            Err(error) if is_not_found(&error) => Ok(None),
            Err(error) => Err(api_error(error, "get", &self.what(name))),
        }
    }

    async fn stable(&self) -> Result<Deployment> {
        let name = &self.target.deployment;
        self.get(name)
            .await?
            .ok_or_else(|| WorkloadError::Missing(format!("{} not found", self.what(name))))
    }

    fn patch_params() -> PatchParams {
        PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        }
    }

    /// A merge patch computed from a fresh read each time, carrying that read's
    /// resourceVersion, so nobody else's edit is overwritten: a 409 reads again.
    async fn patch_guarded(
        &self,
        name: &str,
        writer: &Writer,
        change: impl Fn(&Deployment) -> Result<Option<Value>>,
    ) -> Result<()> {
        let what = self.what(name);
        for attempt in 1..=CONFLICT_ATTEMPTS {
            let Some(current) = self.get(name).await? else {
                return Err(WorkloadError::Missing(format!("{what} not found")));
            };
            let Some(mut patch) = change(&current)? else {
                return Ok(());
            };
            patch["metadata"]["resourceVersion"] = json!(current.metadata.resource_version);
            patch["metadata"]["annotations"][WRITER_ANNOTATION] = json!(writer.to_string());
            match self
                .deployments()
                .patch(name, &Self::patch_params(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                Err(error) if is_conflict(&error) && attempt < CONFLICT_ATTEMPTS => {
                    tracing::info!(object = %what, attempt, "changed by someone else since it was read; reading it again");
                }
                Err(error) => return Err(api_error(error, "patch", &what)),
            }
        }
        Err(WorkloadError::Refused(format!(
            "{what} kept changing under canaryd"
        )))
    }

    /// Where a Deployment's rollout stands, with its pods' troubles when it is stuck.
    async fn progress(&self, deployment: &Deployment) -> Result<Progress> {
        let (state, why) = match rollout(deployment) {
            Rollout::Done => return Ok(Progress::Done),
            Rollout::Waiting(why) => (Progress::Waiting(String::new()), why),
            Rollout::Failed(why) => (Progress::Failed(String::new()), why),
        };
        let troubles = self.pod_troubles(deployment).await?;
        let why = match troubles.len() {
            0 => why,
            1..=MAX_TROUBLES => format!("{why}; {}", troubles.join("; ")),
            n => format!(
                "{why}; {}; and {} more",
                troubles[..MAX_TROUBLES].join("; "),
                n - MAX_TROUBLES
            ),
        };
        Ok(match state {
            Progress::Failed(_) => Progress::Failed(why),
            _ => Progress::Waiting(why),
        })
    }

    async fn pod_troubles(&self, deployment: &Deployment) -> Result<Vec<String>> {
        let labels = deployment
            .spec
            .selector
            .match_labels
            .clone()
            .unwrap_or_default();
        let selector: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.target.namespace);
        let what = format!(
            "the pods of {}",
            self.what(deployment.metadata.name.as_deref().unwrap_or(""))
        );
        let list = pods
            .list(&ListParams::default().labels(&selector.join(",")))
            .await
            .map_err(|e| api_error::<WorkloadError>(e, "list", &what))?;
        Ok(pod_troubles(&list.items))
    }

    async fn deploy_canary(&self, writer: &Writer) -> Result<Progress> {
        let stable = self.stable().await?;
        let mut desired =
            canary_of(&stable, &self.target, &self.image_tag).map_err(WorkloadError::Invalid)?;
        let name = self.target.canary_deployment();
        let annotations = desired.metadata.annotations.get_or_insert_default();
        annotations.insert(WRITER_ANNOTATION.to_string(), writer.to_string());
        match self.get(&name).await? {
            None => self.create_canary(&desired).await?,
            Some(existing) => self.update_canary(&existing, &desired, writer).await?,
        }
        let canary = self
            .get(&name)
            .await?
            .ok_or_else(|| WorkloadError::Missing(format!("{} not found", self.what(&name))))?;
        self.progress(&canary).await
    }

    async fn create_canary(&self, desired: &Deployment) -> Result<()> {
        let name = self.target.canary_deployment();
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        let created = self.deployments().create(&params, desired).await;
        created.map_err(|e| api_error::<WorkloadError>(e, "create", &self.what(&name)))?;
        tracing::info!(deployment = %name, image = %self.image_of(desired), "canary Deployment created");
        Ok(())
    }

    /// Gives an existing canary the desired template and replicas (a canary scaled to 0
    /// by an earlier analysis comes back); its selector cannot change.
    async fn update_canary(
        &self,
        existing: &Deployment,
        desired: &Deployment,
        writer: &Writer,
    ) -> Result<()> {
        let name = self.target.canary_deployment();
        if existing.spec.selector != desired.spec.selector {
            return Err(WorkloadError::Invalid(format!(
                "{} exists with another selector than canaryd gives it; delete it",
                self.what(&name)
            )));
        }
        let wanted = serde_json::to_value(desired).unwrap_or(Value::Null);
        self.patch_guarded(&name, writer, |current| {
            let same = (&current.spec.replicas, &current.spec.template)
                == (&desired.spec.replicas, &desired.spec.template);
            Ok((!same).then(|| {
                json!({
                    "metadata": {"labels": wanted["metadata"]["labels"]},
                    "spec": {
                        "replicas": wanted["spec"]["replicas"],
                        "template": wanted["spec"]["template"],
                        "progressDeadlineSeconds": wanted["spec"]["progressDeadlineSeconds"],
                    },
                })
            }))
        })
        .await
    }

    fn image_of(&self, deployment: &Deployment) -> String {
        container_image(deployment, self.target.container.as_deref())
            .map(|(_, image)| image)
            .unwrap_or_default()
    }

    async fn promote_stable(&self, writer: &Writer) -> Result<Progress> {
        let stable = self.stable().await?;
        let canary =
            canary_of(&stable, &self.target, &self.image_tag).map_err(WorkloadError::Invalid)?;
        let image = self.image_of(&canary);
        let container = self.target.container.clone();
        self.patch_guarded(&self.target.deployment, writer, |current| {
            let (index, now) =
                container_image(current, container.as_deref()).map_err(WorkloadError::Invalid)?;
            if now == image {
                return Ok(None);
            }
            let mut containers = serde_json::to_value(
                current
                    .spec
                    .template
                    .spec
                    .as_ref()
                    .map(|p| p.containers.clone()),
            )
            .unwrap_or(Value::Null);
            containers[index]["image"] = json!(image);
            Ok(Some(
                json!({"spec": {"template": {"spec": {"containers": containers}}}}),
            ))
        })
        .await?;
        let stable = self.stable().await?;
        self.progress(&stable).await
    }

    async fn scale_canary_down(&self, writer: &Writer) -> Result<Progress> {
        let name = self.target.canary_deployment();
        if self.get(&name).await?.is_none() {
            return Ok(Progress::Done);
        }
        self.patch_guarded(&name, writer, |current| {
            let replicas = current.spec.replicas;
            Ok((replicas != Some(0)).then(|| json!({"spec": {"replicas": 0}})))
        })
        .await?;
        tracing::info!(deployment = %name, "canary scaled to 0");
        Ok(Progress::Done)
    }

    /// The Service's selector must (or must not) select the canary's pods.
    async fn check_service(
        &self,
        name: &str,
        canary_labels: &std::collections::BTreeMap<String, String>,
        should: bool,
    ) -> Result<()> {
        let services: Api<Service> = Api::namespaced(self.client.clone(), &self.target.namespace);
        let what = format!("Service {}/{name}", self.target.namespace);
        let service = services
            .get(name)
            .await
            .map_err(|e| api_error::<WorkloadError>(e, "get", &what))?;
        let selector = service.spec.and_then(|s| s.selector).unwrap_or_default();
        if selects(&selector, canary_labels) == should {
            return Ok(());
        }
        let shown = selector_text(&selector);
        Err(WorkloadError::Invalid(if should {
            format!(
                "{what} (selector {shown}) does not select the canary's pods ({}); canary traffic would reach no canary pod",
                selector_text(canary_labels)
            )
        } else {
            format!(
                "{what} (selector {shown}) also selects the canary's pods ({}); give the stable pods and its selector track: stable",
                selector_text(canary_labels)
            )
        }))
    }

    async fn may_do_everything(&self) -> Result<()> {
        let namespace = &self.target.namespace;
        let deployments = |name| Access {
            group: "apps",
            resource: "deployments",
            namespace,
            name,
        };
        let stable = self.what(&self.target.deployment);
        let canary_name = self.target.canary_deployment();
        let canary = self.what(&canary_name);
        let checks = [
            (
                "get",
                deployments(Some(&self.target.deployment)),
                stable.clone(),
            ),
            ("patch", deployments(Some(&self.target.deployment)), stable),
            ("create", deployments(None), canary.clone()),
            ("patch", deployments(Some(&canary_name)), canary),
            (
                "list",
                Access {
                    group: "",
                    resource: "pods",
                    namespace,
                    name: None,
                },
                format!("pods in {namespace}"),
            ),
        ];
        for (verb, access, what) in &checks {
            may(&self.client, verb, access, what)
                .await
                .map_err(WorkloadError::from)?;
        }
        Ok(())
    }
}

#[async_trait]
impl Workload for KubeWorkload {
    async fn preflight(&self) -> Result<()> {
        let stable = self.stable().await?;
        let canary =
            canary_of(&stable, &self.target, &self.image_tag).map_err(WorkloadError::Invalid)?;
        let canary_labels = canary
            .spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        if let Some(service) = &self.target.stable_service {
            self.check_service(service, &canary_labels, false).await?;
        }
        if let Some(service) = &self.target.canary_service {
            self.check_service(service, &canary_labels, true).await?;
        }
        self.may_do_everything().await
    }

    async fn advance(&self, step: WorkloadStep, writer: &Writer) -> Result<Progress> {
        match step {
            WorkloadStep::DeployCanary => self.deploy_canary(writer).await,
            WorkloadStep::PromoteStable => self.promote_stable(writer).await,
            WorkloadStep::ScaleCanaryDown => self.scale_canary_down(writer).await,
        }
    }
}
