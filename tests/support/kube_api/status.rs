//! The API server's error answers: `Status` bodies with the fields in the server's
//! order and its message templates, and the plain-text 404 for an API it does not serve.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use super::schema::FieldError;

#[derive(Serialize)]
struct Status<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    metadata: Value,
    status: &'static str,
    message: String,
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Details<'a>>,
    code: u16,
}

#[derive(Serialize)]
struct Details<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    group: &'a str,
    kind: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    causes: Vec<Cause>,
}

#[derive(Serialize)]
struct Cause {
    reason: &'static str,
    message: String,
    field: String,
}

/// A resource as messages name it: `httproutes.gateway.networking.k8s.io`, or `pods`.
pub struct Resource<'a> {
    pub group: &'a str,
    pub plural: &'a str,
    pub kind: &'a str,
}

impl Resource<'_> {
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

fn respond(code: u16, reason: &'static str, message: String, details: Option<Details>) -> Response {
    let status = Status {
        kind: "Status",
        api_version: "v1",
        metadata: Value::Object(Default::default()),
        status: "Failure",
        message,
        reason,
        details,
        code,
    };
    let mut body = serde_json::to_string(&status).expect("a Status serializes");
    body.push('\n');
    let mut response = (StatusCode::from_u16(code).unwrap(), body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn details<'a>(resource: &'a Resource, name: &'a str) -> Option<Details<'a>> {
    Some(Details {
        name,
        group: resource.group,
        kind: resource.plural,
        causes: Vec::new(),
    })
}

pub fn not_found(resource: &Resource, name: &str) -> Response {
    let message = format!("{} {name:?} not found", resource.qualified());
    respond(404, "NotFound", message, details(resource, name))
}

pub fn conflict(resource: &Resource, name: &str) -> Response {
    let message = format!(
        "Operation cannot be fulfilled on {} {name:?}: the object has been modified; \
         please apply your changes to the latest version and try again",
        resource.qualified()
    );
    respond(409, "Conflict", message, details(resource, name))
}

pub fn already_exists(resource: &Resource, name: &str) -> Response {
    let message = format!("{} {name:?} already exists", resource.qualified());
    respond(409, "AlreadyExists", message, details(resource, name))
}

pub fn forbidden(
    resource: &Resource,
    name: &str,
    user: &str,
    verb: &str,
    namespace: &str,
) -> Response {
    let message = format!(
        "{} {name:?} is forbidden: User {user:?} cannot {verb} resource {:?} in API group {:?} in the namespace {namespace:?}",
        resource.qualified(),
        resource.plural,
        resource.group
    );
    respond(403, "Forbidden", message, details(resource, name))
}

pub fn invalid(resource: &Resource, name: &str, errors: Vec<FieldError>) -> Response {
    let summary: Vec<String> = errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect();
    let message = format!(
        "{} {name:?} is invalid: {}",
        resource.qualified_kind(),
        if summary.len() == 1 {
            summary[0].clone()
        } else {
            format!("[{}]", summary.join(", "))
        }
    );
    let causes = errors
        .into_iter()
        .map(|e| Cause {
            reason: e.reason,
            message: e.message,
            field: e.field,
        })
        .collect();
    let details = Details {
        name,
        group: resource.group,
        kind: resource.kind,
        causes,
    };
    respond(422, "Invalid", message, Some(details))
}

pub fn unsupported_media_type() -> Response {
    let message = "the body of the request was in an unknown format - accepted media types include: \
                   application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
        .to_string();
    respond(415, "UnsupportedMediaType", message, None)
}

pub fn bad_request(message: String) -> Response {
    respond(400, "BadRequest", message, None)
}

pub fn unauthorized() -> Response {
    respond(401, "Unauthorized", "Unauthorized".to_string(), None)
}

/// What the server sends for a group, version or resource it does not serve.
pub fn page_not_found() -> Response {
    let mut response = (StatusCode::NOT_FOUND, "404 page not found\n").into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}
