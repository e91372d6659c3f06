//! One named object of a kind, found at the first version the cluster serves, read,
//! patched, and asked about with a SelfSubjectAccessReview.

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::Value;
use tokio::sync::OnceCell;

use super::FIELD_MANAGER;
use super::access::{Access, may};
use super::errors::{api_error, is_crd_missing};
use super::splits::Kind;
use crate::ports::RouterError;

pub struct Object {
    client: kube::Client,
    kind: &'static Kind,
    namespace: String,
    name: String,
    /// The API at the first of the kind's versions that the cluster serves.
    api: OnceCell<Api<DynamicObject>>,
}

impl Object {
    pub fn new(client: kube::Client, kind: &'static Kind, namespace: &str, name: &str) -> Self {
        Self {
            client,
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
            api: OnceCell::new(),
        }
    }

    /// `HTTPRoute payments/checkout`, for messages.
    pub fn what(&self) -> String {
        format!("{} {}/{}", self.kind.kind, self.namespace, self.name)
    }

    fn api_at(&self, version: &str) -> Api<DynamicObject> {
        let api_version = if self.kind.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.kind.group)
        };
        let resource = ApiResource {
            group: self.kind.group.to_string(),
            version: version.to_string(),
            api_version,
            kind: self.kind.kind.to_string(),
            plural: self.kind.plural.to_string(),
        };
        Api::namespaced_with(self.client.clone(), &self.namespace, &resource)
    }

    /// The object as the API serves it now.
    pub async fn get(&self) -> Result<Value, RouterError> {
        if let Some(api) = self.api.get() {
            let object = api.get(&self.name).await;
            return object
                .map(to_value)
                .map_err(|e| api_error(e, "get", &self.what()));
        }
        for version in self.kind.versions {
            let api = self.api_at(version);
            match api.get(&self.name).await {
                Err(error) if is_crd_missing(&error) => continue,
                Err(error) => return Err(api_error(error, "get", &self.what())),
                Ok(object) => {
                    let _ = self.api.set(api);
                    return Ok(to_value(object));
                }
            }
        }
        Err(RouterError::Missing(format!(
            "{}: the cluster serves no {} API at {}; is the CRD {} installed?",
            self.what(),
            self.kind.kind,
            self.kind
                .versions
                .iter()
                .map(|v| format!("{}/{v}", self.kind.group))
                .collect::<Vec<_>>()
                .join(", "),
            self.kind.resource()
        )))
    }

    /// A JSON merge patch under field manager `canaryd`; a 409 is returned as it is so
    /// the caller can read the object again.
    pub async fn merge_patch(&self, patch: &Value) -> Result<(), kube::Error> {
        let api = match self.api.get() {
            Some(api) => api.clone(),
            None => self.api_at(self.kind.versions[0]),
        };
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        api.patch(&self.name, &params, &Patch::Merge(patch))
            .await
            .map(|_| ())
    }

    /// Asks the API whether canaryd may `verb` this object.
    pub async fn may(&self, verb: &str) -> Result<(), RouterError> {
        let access = Access {
            group: self.kind.group,
            resource: self.kind.plural,
            namespace: &self.namespace,
            name: Some(&self.name),
        };
        may(&self.client, verb, &access, &self.what())
            .await
            .map_err(RouterError::from)
    }
}

fn to_value(object: DynamicObject) -> Value {
    serde_json::to_value(object).unwrap_or(Value::Null)
}
