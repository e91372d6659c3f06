//! A Kubernetes API server for tests, since none can run on these machines. It speaks
//! the real API's HTTP and JSON for the verbs canaryd uses, against objects kept in
//! memory:
//! - GET of an object or a labelled list, JSON merge PATCH, and POST (create), with
//!   the `resourceVersion` rules: a patch or update that names a stale one gets 409;
//! - `Status` bodies for 401, 403, 404, 409, 415 and 422 with the server's messages, and
//!   the plain-text `404 page not found` for an API whose CRD is not installed;
//! - RBAC: a token is a user, and a user may use only the verbs it was granted;
//!   SelfSubjectAccessReviews answer from the same grants;
//! - every object written is validated against its CRD's schema (the real CRDs in
//!   `tests/fixtures/kubernetes/crds`) or, for built-in kinds, against `k8s-openapi`'s
//!   types, and a custom resource's `generation` goes up on any change outside metadata.
//!
//! `controller.rs` emulates the Deployment controller; `mesh.rs` is the data plane: it
//! splits requests as the emulated objects say.
#![allow(dead_code)]

pub mod controller;
pub mod mesh;
pub mod objects;
pub mod schema;
pub mod status;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::{Value, json};

pub const TOKEN: &str = "canaryd-test-token";
pub const USER: &str = "system:serviceaccount:canaryd:canaryd";

type TypedCheck = fn(&Value) -> Result<(), String>;

/// A kind the server serves: built in, or from a CRD.
#[derive(Clone)]
struct Kind {
    group: String,
    plural: String,
    kind: String,
    namespaced: bool,
    /// Served versions, each with its schema (`None` for built-ins).
    versions: Vec<(String, Option<Value>)>,
    /// Checks a built-in object against its k8s-openapi type.
    typed: Option<TypedCheck>,
}

/// One request as the server saw it, for assertions.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub content_type: String,
    pub status: u16,
    /// `verb group/resource` as RBAC sees it.
    pub permission: (String, String, String),
    pub body: Value,
}

type Edit = Box<dyn FnOnce(&mut Value) + Send>;

#[derive(Default)]
struct State {
    kinds: Vec<Kind>,
    /// (group, plural, namespace, name) → the stored object.
    objects: BTreeMap<(String, String, String, String), Value>,
    resource_version: u64,
    /// Grants of the test user: (verb, group, resource); `None` grants everything.
    grants: Option<BTreeSet<(String, String, String)>>,
    /// Edits someone else makes just before canaryd's next patch of an object lands.
    interleaved: Vec<((String, String, String, String), Edit)>,
    log: Vec<Logged>,
    /// The Deployment controller's rollouts, and what pods of an image do.
    rollouts: BTreeMap<(String, String, String, String), controller::Rollout>,
    fates: BTreeMap<String, controller::Fate>,
}

#[derive(Clone)]
pub struct KubeApi {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

pub fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kubernetes")
        .join(path)
}

pub const GATEWAY_CRD: &str = "crds/gateway.networking.k8s.io_httproutes.yaml";
pub const ISTIO_CRD: &str = "crds/istio_virtualservices.networking.istio.io.yaml";
pub const SMI_CRD: &str = "crds/smi-sdk-go_split.smi-spec.io_trafficsplits.yaml";
pub const LINKERD_SMI_CRD: &str = "crds/linkerd-smi_trafficsplit-crd.yaml";

fn typed<T: serde::de::DeserializeOwned + serde::Serialize>(value: &Value) -> Result<(), String> {
    let object: T = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    // Round trip: a field the type does not know would be lost, so it is refused.
    let back = serde_json::to_value(&object).map_err(|e| e.to_string())?;
    match unknown_field(value, &back, "") {
        Some(field) => Err(format!("unknown field {field:?}")),
        None => Ok(()),
    }
}

/// The first field of `sent` that did not survive the round trip to `back`.
fn unknown_field(sent: &Value, back: &Value, path: &str) -> Option<String> {
    match (sent, back) {
        (Value::Object(sent), Value::Object(back)) => sent.iter().find_map(|(key, value)| {
            let at = format!("{path}.{key}");
            match back.get(key) {
                None if !value.is_null() => Some(at.trim_start_matches('.').to_string()),
                None => None,
                Some(back) => unknown_field(value, back, &at),
            }
        }),
        (Value::Array(sent), Value::Array(back)) => sent
            .iter()
            .zip(back)
            .enumerate()
            .find_map(|(i, (s, b))| unknown_field(s, b, &format!("{path}[{i}]"))),
        _ => None,
    }
}

fn built_ins() -> Vec<Kind> {
    use k8s_openapi::api::{
        apps::v1::Deployment,
        core::v1::{Pod, Service},
        networking::v1::Ingress,
    };
    let kind = |group: &str, version: &str, plural: &str, kind: &str, check| Kind {
        group: group.into(),
        plural: plural.into(),
        kind: kind.into(),
        namespaced: true,
        versions: vec![(version.into(), None)],
        typed: Some(check),
    };
    vec![
        kind(
            "networking.k8s.io",
            "v1",
            "ingresses",
            "Ingress",
            typed::<Ingress>,
        ),
        kind(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            typed::<Deployment>,
        ),
        kind("", "v1", "services", "Service", typed::<Service>),
        kind("", "v1", "pods", "Pod", typed::<Pod>),
    ]
}

/// A CRD file's kind, with the schema of every served version.
fn crd_kind(file: &str) -> Kind {
    let text = std::fs::read_to_string(fixture(file)).unwrap();
    let crd: Value = serde_saphyr::from_str(&text).unwrap();
    let spec = &crd["spec"];
    let versions = spec["versions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["served"] == true)
        .map(|v| {
            let name = v["name"].as_str().unwrap().to_string();
            (name, Some(v["schema"]["openAPIV3Schema"].clone()))
        })
        .collect();
    Kind {
        group: spec["group"].as_str().unwrap().into(),
        plural: spec["names"]["plural"].as_str().unwrap().into(),
        kind: spec["names"]["kind"].as_str().unwrap().into(),
        namespaced: spec["scope"] == "Namespaced",
        versions,
        typed: None,
    }
}

impl KubeApi {
    /// Serves the built-in kinds and the CRDs named (paths under the fixtures folder).
    pub async fn start(crds: &[&str]) -> Self {
        let mut state = State {
            kinds: built_ins(),
            resource_version: 1000,
            ..State::default()
        };
        state.kinds.extend(crds.iter().map(|file| crd_kind(file)));
        let state = Arc::new(Mutex::new(state));
        controller::spawn(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let api = Self { port, state };
        let handler = api.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let api = handler.clone();
                async move { api.handle(method, uri, headers, body) }
            },
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        api
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A kubeconfig for this server with the test user's token, as `kubectl proxy` or a
    /// plain-HTTP API would be configured.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\n\
             users:\n- name: canaryd\n  user:\n    token: {TOKEN}\n\
             contexts:\n- name: test\n  context:\n    cluster: test\n    user: canaryd\n    namespace: default\n\
             current-context: test\n",
            self.url()
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Grants the test user exactly these `(verb, group, resource)` permissions.
    pub fn grant_only(&self, grants: &[(&str, &str, &str)]) {
        let grants = grants
            .iter()
            .map(|(v, g, r)| (v.to_string(), g.to_string(), r.to_string()))
            .collect();
        self.state.lock().unwrap().grants = Some(grants);
    }

    /// Takes `verb` on `resource` away from the test user.
    pub fn revoke(&self, verb: &str, group: &str, resource: &str) {
        let mut state = self.state.lock().unwrap();
        if state.grants.is_none() {
            state.grants = Some(every_grant(&state.kinds));
        }
        let grant = (verb.to_string(), group.to_string(), resource.to_string());
        state.grants.as_mut().unwrap().remove(&grant);
    }

    /// Stores an object as `kubectl apply` would: validated, with a new resourceVersion.
    pub fn apply(&self, object: Value) {
        let mut state = self.state.lock().unwrap();
        let (group, _) = split_api_version(object["apiVersion"].as_str().unwrap());
        let kind = state
            .kinds
            .iter()
            .find(|k| k.group == group && k.kind == object["kind"])
            .cloned()
            .unwrap_or_else(|| panic!("{} is not served", object["kind"]));
        let key = key_of(&kind, &object);
        let mut object = object;
        if let Err(errors) = check(&kind, &mut object) {
            panic!("fixture object is invalid: {errors:?}");
        }
        let existing = state.objects.get(&key).cloned();
        state.resource_version += 1;
        stamp(
            &mut object,
            existing.as_ref(),
            state.resource_version,
            kind.typed.is_none(),
        );
        state.objects.insert(key, object);
    }

    /// The stored object, as a GET would see it.
    pub fn object(&self, group: &str, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let key = (
            group.to_string(),
            plural.to_string(),
            namespace.to_string(),
            name.to_string(),
        );
        self.state.lock().unwrap().objects.get(&key).cloned()
    }

    /// Changes a stored object directly (as a controller would), with a new resourceVersion.
    pub fn modify(
        &self,
        group: &str,
        plural: &str,
        namespace: &str,
        name: &str,
        edit: impl FnOnce(&mut Value),
    ) {
        let mut state = self.state.lock().unwrap();
        state.resource_version += 1;
        let version = state.resource_version;
        let key = (
            group.to_string(),
            plural.to_string(),
            namespace.to_string(),
            name.to_string(),
        );
        let object = state.objects.get_mut(&key).expect("object to modify");
        edit(object);
        object["metadata"]["resourceVersion"] = json!(version.to_string());
    }

    /// Deletes an object, as `kubectl delete` would.
    pub fn delete(&self, group: &str, plural: &str, namespace: &str, name: &str) {
        let key = (
            group.to_string(),
            plural.to_string(),
            namespace.to_string(),
            name.to_string(),
        );
        let mut state = self.state.lock().unwrap();
        state.objects.remove(&key);
        state.rollouts.remove(&key);
    }

    /// Someone else edits the object after canaryd's next read, just before its next
    /// patch lands: canaryd's patch then carries a stale resourceVersion.
    pub fn edit_before_next_patch(
        &self,
        group: &str,
        plural: &str,
        namespace: &str,
        name: &str,
        edit: impl FnOnce(&mut Value) + Send + 'static,
    ) {
        let key = (
            group.to_string(),
            plural.to_string(),
            namespace.to_string(),
            name.to_string(),
        );
        self.state
            .lock()
            .unwrap()
            .interleaved
            .push((key, Box::new(edit)));
    }

    /// Pods running `image` will meet `fate` (by default they become ready).
    pub fn pods_of_image(&self, image: &str, fate: controller::Fate) {
        controller::set_fate(&mut self.state.lock().unwrap().fates, image, fate);
    }

    pub fn requests(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    /// The (verb, group, resource) permissions requests needed, refused ones included.
    pub fn permissions_used(&self) -> BTreeSet<(String, String, String)> {
        self.requests().into_iter().map(|r| r.permission).collect()
    }

    fn handle(&self, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body_json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let mut state = self.state.lock().unwrap();
        let (response, permission) = handle(
            &mut state,
            &method,
            &uri,
            &headers,
            &content_type,
            body_json.clone(),
        );
        state.log.push(Logged {
            method: method.to_string(),
            path: uri.to_string(),
            content_type,
            status: response.status().as_u16(),
            permission,
            body: body_json,
        });
        response
    }
}

/// Every verb on every kind served, and SelfSubjectAccessReviews.
fn every_grant(kinds: &[Kind]) -> BTreeSet<(String, String, String)> {
    let mut grants = BTreeSet::new();
    for kind in kinds {
        for verb in [
            "get", "list", "watch", "create", "update", "patch", "delete",
        ] {
            grants.insert((verb.to_string(), kind.group.clone(), kind.plural.clone()));
        }
    }
    grants.insert((
        "create".into(),
        "authorization.k8s.io".into(),
        "selfsubjectaccessreviews".into(),
    ));
    grants
}

fn split_api_version(api_version: &str) -> (String, String) {
    match api_version.split_once('/') {
        Some((group, version)) => (group.to_string(), version.to_string()),
        None => (String::new(), api_version.to_string()),
    }
}

fn key_of(kind: &Kind, object: &Value) -> (String, String, String, String) {
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    let name = object["metadata"]["name"].as_str().unwrap();
    (
        kind.group.clone(),
        kind.plural.clone(),
        namespace.to_string(),
        name.to_string(),
    )
}

/// Validates against the kind's schema (storage version first) or its typed form.
fn check(kind: &Kind, object: &mut Value) -> Result<(), Vec<schema::FieldError>> {
    if let Some(typed) = kind.typed {
        return typed(object).map_err(|why| {
            vec![schema::FieldError {
                reason: "FieldValueInvalid",
                field: String::new(),
                message: why,
            }]
        });
    }
    let version = object["apiVersion"]
        .as_str()
        .map(split_api_version)
        .map(|(_, v)| v);
    let schema = kind
        .versions
        .iter()
        .find(|(name, _)| Some(name) == version.as_ref())
        .or(kind.versions.first())
        .and_then(|(_, schema)| schema.clone())
        .unwrap_or(Value::Null);
    let errors = schema::validate(&schema, object);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The server's part of a write: metadata it owns, and `generation` raised when
/// anything that counts changed (for a custom resource anything outside metadata; for
/// built-ins the spec, or a Deployment's annotations).
fn stamp(object: &mut Value, before: Option<&Value>, version: u64, custom: bool) {
    let generation = match before {
        None => 1,
        Some(before) => {
            let old = before["metadata"]["generation"].as_i64().unwrap_or(1);
            let changed = if custom {
                strip_metadata(before) != strip_metadata(object)
            } else {
                before["spec"] != object["spec"]
                    || (object["kind"] == "Deployment"
                        && before["metadata"]["annotations"] != object["metadata"]["annotations"])
            };
            old + i64::from(changed)
        }
    };
    let metadata = object["metadata"].as_object_mut().unwrap();
    metadata.insert("resourceVersion".into(), json!(version.to_string()));
    metadata.insert("generation".into(), json!(generation));
    metadata.entry("namespace").or_insert(json!("default"));
    let uid = before
        .and_then(|b| b["metadata"]["uid"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("00000000-0000-4000-8000-{version:012}"));
    metadata.insert("uid".into(), json!(uid));
    if let Some(status) = before.map(|b| b["status"].clone()).filter(|s| !s.is_null()) {
        // Writes to the main resource keep the stored status.
        object["status"] = status;
    }
}

fn strip_metadata(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(fields) = copy.as_object_mut() {
        fields.remove("metadata");
        fields.remove("status");
    }
    copy
}

/// RFC 7386.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let fields = target.as_object_mut().unwrap();
    for (key, value) in patch {
        if value.is_null() {
            fields.remove(key);
        } else {
            merge_patch(fields.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

mod handlers;
use handlers::handle;
