//! Requests: the path as the API server routes it, authentication, RBAC, then the verb.

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::kinds::{Kind, check, merge_patch, stamp};
use super::status::{self, Resource};
use super::{State, TOKEN, USER};

/// What a path names.
struct Target {
    group: String,
    version: String,
    namespace: Option<String>,
    plural: String,
    name: Option<String>,
}

fn parse(path: &str) -> Option<Target> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match parts.as_slice() {
        ["api", version, rest @ ..] => (String::new(), version.to_string(), rest),
        ["apis", group, version, rest @ ..] => (group.to_string(), version.to_string(), rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", namespace, rest @ ..] if !rest.is_empty() => {
            (Some(namespace.to_string()), rest)
        }
        rest => (None, rest),
    };
    let (plural, name) = match rest {
        [plural] => (plural.to_string(), None),
        [plural, name] => (plural.to_string(), Some(name.to_string())),
        _ => return None,
    };
    Some(Target {
        group,
        version,
        namespace,
        plural,
        name,
    })
}

fn verb(method: &Method, named: bool) -> &'static str {
    match (method.as_str(), named) {
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("PATCH", _) => "patch",
        ("PUT", _) => "update",
        ("POST", _) => "create",
        ("DELETE", _) => "delete",
        _ => "unknown",
    }
}

type Permission = (String, String, String);

pub(super) fn handle(
    state: &mut State,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    content_type: &str,
    body: Value,
) -> (Response, Permission) {
    let Some(target) = parse(uri.path()) else {
        return (status::page_not_found(), Default::default());
    };
    let verb = verb(method, target.name.is_some());
    let permission = (
        verb.to_string(),
        target.group.clone(),
        target.plural.clone(),
    );
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok());
    if bearer != Some(&format!("Bearer {TOKEN}")) {
        return (status::unauthorized(), permission);
    }
    if target.group == "authorization.k8s.io" && target.plural == "selfsubjectaccessreviews" {
        return (access_review(state, body), permission);
    }
    let response = match served(state, &target) {
        None => status::page_not_found(),
        Some(kind) if !allowed(state, &permission) => {
            let resource = Resource {
                group: &kind.group,
                plural: &kind.plural,
                kind: &kind.kind,
            };
            let name = target.name.clone().unwrap_or_default();
            let namespace = target.namespace.clone().unwrap_or_default();
            status::forbidden(&resource, &name, USER, verb, &namespace)
        }
        Some(kind) => serve(state, &kind, &target, verb, uri, content_type, body),
    };
    (response, permission)
}

/// The verb on an object or collection the caller may use.
fn serve(
    state: &mut State,
    kind: &Kind,
    target: &Target,
    verb: &str,
    uri: &Uri,
    content_type: &str,
    body: Value,
) -> Response {
    let resource = Resource {
        group: &kind.group,
        plural: &kind.plural,
        kind: &kind.kind,
    };
    let namespace = target.namespace.clone().unwrap_or_default();
    let name = target.name.clone().unwrap_or_default();
    let key = (
        kind.group.clone(),
        kind.plural.clone(),
        namespace.clone(),
        name.clone(),
    );
    match verb {
        "get" => match state.objects.get(&key) {
            Some(object) => served_as(object, target).into_response_json(),
            None => status::not_found(&resource, &name),
        },
        "list" => list(state, kind, target, uri),
        "patch" => patch(state, kind, key, target, content_type, body),
        "create" => create(state, kind, &namespace, target, body),
        _ => status::bad_request(format!(
            "the test API server does not emulate {verb} {}",
            uri.path()
        )),
    }
}

fn served(state: &State, target: &Target) -> Option<Kind> {
    state
        .kinds
        .iter()
        .find(|k| {
            k.group == target.group
                && k.plural == target.plural
                && k.versions.iter().any(|(v, _)| *v == target.version)
        })
        .cloned()
}

fn allowed(state: &State, permission: &Permission) -> bool {
    state
        .grants
        .as_ref()
        .is_none_or(|grants| grants.contains(permission))
}

trait JsonResponse {
    fn into_response_json(self) -> Response;
}

impl JsonResponse for Value {
    fn into_response_json(self) -> Response {
        let mut response = (StatusCode::OK, self.to_string()).into_response();
        response
            .headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        response
    }
}

/// The stored object as the requested version presents it.
fn served_as(object: &Value, target: &Target) -> Value {
    let mut object = object.clone();
    object["apiVersion"] = if target.group.is_empty() {
        json!(target.version)
    } else {
        json!(format!("{}/{}", target.group, target.version))
    };
    object
}

fn list(state: &State, kind: &Kind, target: &Target, uri: &Uri) -> Response {
    let selector: Vec<(String, String)> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.strip_prefix("labelSelector="))
        .flat_map(|s| {
            urlencoding_decode(s)
                .split(',')
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter_map(|term| {
            term.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let items: Vec<Value> = state
        .objects
        .iter()
        .filter(|((g, p, ns, _), _)| {
            *g == kind.group && *p == kind.plural && Some(ns) == target.namespace.as_ref()
        })
        .map(|(_, object)| served_as(object, target))
        .filter(|object| {
            selector
                .iter()
                .all(|(k, v)| object["metadata"]["labels"][k] == json!(v))
        })
        .collect();
    json!({
        "kind": format!("{}List", kind.kind),
        "apiVersion": served_as(&json!({}), target)["apiVersion"],
        "metadata": {"resourceVersion": state.resource_version.to_string()},
        "items": items,
    })
    .into_response_json()
}

fn urlencoding_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn patch(
    state: &mut State,
    kind: &Kind,
    key: (String, String, String, String),
    target: &Target,
    content_type: &str,
    body: Value,
) -> Response {
    let resource = Resource {
        group: &kind.group,
        plural: &kind.plural,
        kind: &kind.kind,
    };
    let name = key.3.clone();
    let media = content_type.split(';').next().unwrap_or("").trim();
    let custom = kind.typed.is_none();
    if media == "application/strategic-merge-patch+json" && !custom {
        return status::bad_request(
            "the test API server does not emulate strategic merge patches".into(),
        );
    }
    if media != "application/merge-patch+json" {
        return status::unsupported_media_type();
    }
    if let Some(at) = state.interleaved.iter().position(|(k, _)| *k == key) {
        let (_, edit) = state.interleaved.remove(at);
        state.resource_version += 1;
        let version = state.resource_version.to_string();
        if let Some(object) = state.objects.get_mut(&key) {
            edit(object);
            object["metadata"]["resourceVersion"] = json!(version);
        }
    }
    let Some(before) = state.objects.get(&key).cloned() else {
        return status::not_found(&resource, &name);
    };
    if let Some(sent) = body.pointer("/metadata/resourceVersion")
        && *sent != before["metadata"]["resourceVersion"]
    {
        return status::conflict(&resource, &name);
    }
    let mut object = served_as(&before, target);
    merge_patch(&mut object, &body);
    if let Err(errors) = check(kind, &mut object) {
        return status::invalid(&resource, &name, errors);
    }
    state.resource_version += 1;
    stamp(&mut object, Some(&before), state.resource_version, custom);
    state.objects.insert(key, object.clone());
    object.into_response_json()
}

fn create(
    state: &mut State,
    kind: &Kind,
    namespace: &str,
    target: &Target,
    mut body: Value,
) -> Response {
    let name = body["metadata"]["name"].as_str().unwrap_or("").to_string();
    let resource = Resource {
        group: &kind.group,
        plural: &kind.plural,
        kind: &kind.kind,
    };
    let key = (
        kind.group.clone(),
        kind.plural.clone(),
        namespace.to_string(),
        name.clone(),
    );
    if state.objects.contains_key(&key) {
        return status::already_exists(&resource, &name);
    }
    if let Err(errors) = check(kind, &mut body) {
        return status::invalid(&resource, &name, errors);
    }
    body["metadata"]["namespace"] = json!(namespace);
    state.resource_version += 1;
    stamp(
        &mut body,
        None,
        state.resource_version,
        kind.typed.is_none(),
    );
    body["apiVersion"] = served_as(&json!({}), target)["apiVersion"].clone();
    state.objects.insert(key, body.clone());
    let mut response = body.into_response_json();
    *response.status_mut() = StatusCode::CREATED;
    response
}

/// A SelfSubjectAccessReview answered from the test user's grants.
fn access_review(state: &State, mut review: Value) -> Response {
    let attributes = &review["spec"]["resourceAttributes"];
    let text = |field: &str| attributes[field].as_str().unwrap_or("").to_string();
    let permission = (text("verb"), text("group"), text("resource"));
    let allowed = allowed(state, &permission);
    let mut answer = json!({"allowed": allowed});
    if !allowed {
        answer["reason"] = json!(format!(
            "RBAC: no rule grants {} on {}.{} to {USER}",
            permission.0, permission.2, permission.1
        ));
    }
    review["status"] = answer;
    review["metadata"] = json!({"creationTimestamp": null});
    let mut response = review.into_response_json();
    *response.status_mut() = StatusCode::CREATED;
    response
}
