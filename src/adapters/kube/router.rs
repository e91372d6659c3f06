//! The traffic router over one Kubernetes object: read it, compute the patch that sets
//! the canary's weight, send it with the resourceVersion it was computed from, and read
//! the object back.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::WRITER_ANNOTATION;
use super::errors::{api_error, is_conflict};
use super::object::Object;
use super::splits::Split;
use crate::ports::{RouterError, TrafficRouter, Writer};

/// Reads and patches tried before a run of 409s counts as a refusal: each 409 means
/// someone else changed the object between canaryd's read and its write.
const CONFLICT_ATTEMPTS: u32 = 5;

pub struct KubeRouter {
    object: Object,
    split: Box<dyn Split>,
}

impl KubeRouter {
    pub(super) fn new(client: kube::Client, split: Box<dyn Split>) -> Self {
        let object = Object::new(client, split.kind(), split.namespace(), split.name());
        Self { object, split }
    }

    /// The patch that sets `weight` on `current`, guarded by its resourceVersion and
    /// signed with the writer.
    fn guarded_patch(
        &self,
        current: &Value,
        weight: u8,
        writer: &Writer,
    ) -> Result<Value, RouterError> {
        let mut patch = self
            .split
            .patch(current, weight)
            .map_err(RouterError::Invalid)?;
        let version = current
            .pointer("/metadata/resourceVersion")
            .cloned()
            .ok_or_else(|| {
                RouterError::Refused(format!("{} has no resourceVersion", self.object.what()))
            })?;
        let metadata = json!({
            "resourceVersion": version,
            "annotations": { WRITER_ANNOTATION: writer.to_string() },
        });
        merge(&mut patch, &json!({ "metadata": metadata }));
        Ok(patch)
    }
}

#[async_trait]
impl TrafficRouter for KubeRouter {
    async fn set_weight(&self, weight: u8, writer: &Writer) -> Result<(), RouterError> {
        let what = self.object.what();
        let mut conflicts = 0;
        loop {
            let current = self.object.get().await?;
            let patch = self.guarded_patch(&current, weight, writer)?;
            match self.object.merge_patch(&patch).await {
                Ok(()) => break,
                Err(error) if is_conflict(&error) && conflicts + 1 < CONFLICT_ATTEMPTS => {
                    conflicts += 1;
                    tracing::info!(object = %what, conflicts, "changed by someone else since it was read; reading it again");
                }
                Err(error) => return Err(api_error(error, "patch", &what)),
            }
        }
        let seen = self.weight().await?;
        if seen != weight {
            return Err(RouterError::NotApplied(format!(
                "{what} holds a canary weight of {seen}% after canaryd set {weight}%"
            )));
        }
        Ok(())
    }

    async fn weight(&self) -> Result<u8, RouterError> {
        let current = self.object.get().await?;
        self.split.weight(&current).map_err(RouterError::Invalid)
    }

    /// The object exists at a served version, canaryd may get and patch it, and it can
    /// carry the split.
    async fn preflight(&self) -> Result<(), RouterError> {
        let current = self.object.get().await?;
        for verb in ["get", "patch"] {
            self.object.may(verb).await?;
        }
        self.split
            .patch(&current, 0)
            .map_err(RouterError::Invalid)?;
        Ok(())
    }
}

/// RFC 7386 merge of `patch` into `target`, for building one patch from two.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}
