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
mod kinds;
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

    /// Gives `verb` on `resource` back to the test user.
    pub fn restore(&self, verb: &str, group: &str, resource: &str) {
        let grant = (verb.to_string(), group.to_string(), resource.to_string());
        if let Some(grants) = self.state.lock().unwrap().grants.as_mut() {
            grants.insert(grant);
        }
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

/// Every verb on every kind served. (SelfSubjectAccessReviews need no grant: every
/// authenticated user may create them.)
fn every_grant(kinds: &[Kind]) -> BTreeSet<(String, String, String)> {
    let mut grants = BTreeSet::new();
    for kind in kinds {
        for verb in [
            "get", "list", "watch", "create", "update", "patch", "delete",
        ] {
            grants.insert((verb.to_string(), kind.group.clone(), kind.plural.clone()));
        }
    }
    grants
}

mod handlers;
use handlers::handle;
use kinds::{Kind, built_ins, check, crd_kind, key_of, split_api_version, stamp};
