//! What the path macros cannot say in the OpenAPI document: how the answer of one
//! operation feeds the next (links), and which request bodies may be left out.

use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::{OpenApi, RefOr, Required};

const START: &str = "/api/v1/analyses";

/// The per-analysis operations a started analysis links to: (link name, path, method).
const FOLLOW_UPS: [(&str, &str, &str); 8] = [
    ("GetAnalysis", "/api/v1/analyses/{id}", "get"),
    ("GetEvents", "/api/v1/analyses/{id}/events", "get"),
    ("Pause", "/api/v1/analyses/{id}/pause", "post"),
    ("Resume", "/api/v1/analyses/{id}/resume", "post"),
    ("Promote", "/api/v1/analyses/{id}/promote", "post"),
    ("Rollback", "/api/v1/analyses/{id}/rollback", "post"),
    ("Abort", "/api/v1/analyses/{id}/abort", "post"),
    ("Retry", "/api/v1/analyses/{id}/retry", "post"),
];

/// The finishing touches, in place.
pub fn finish(openapi: &mut OpenApi) {
    add_links(openapi);
    optional_operation_bodies(openapi);
}

/// The follow-ups that are operations (POSTs with a `{reason}` body).
fn operations() -> impl Iterator<Item = &'static str> {
    FOLLOW_UPS
        .into_iter()
        .filter(|(_, _, method)| *method == "post")
        .map(|(_, path, _)| path)
}

/// An operation's `{reason}` body may be left out; when it is given, it is an object
/// (never `null`), which is why the handlers' type cannot say so itself.
fn optional_operation_bodies(openapi: &mut OpenApi) {
    for path in operations() {
        let operation = openapi
            .paths
            .paths
            .get_mut(path)
            .and_then(|item| item.post.as_mut());
        if let Some(RefOr::T(body)) = operation.and_then(|op| op.request_body.as_mut()) {
            body.required = Some(Required::False);
        }
    }
}

/// Adds the links from the webhook's 202 and 200 answers to each follow-up, by
/// `operationRef` (a JSON pointer to the operation, unambiguous where names repeat).
fn add_links(openapi: &mut OpenApi) {
    let Some(start) = openapi
        .paths
        .paths
        .get_mut(START)
        .and_then(|item| item.post.as_mut())
    else {
        return;
    };
    for code in ["202", "200"] {
        let Some(RefOr::T(response)) = start.responses.responses.get_mut(code) else {
            continue;
        };
        for (name, path, method) in FOLLOW_UPS {
            let pointer = path.replace('~', "~0").replace('/', "~1");
            let link = LinkBuilder::new()
                .operation_ref(format!("#/paths/{pointer}/{method}"))
                .parameter("id", "$response.body#/id")
                .description(format!("{method} {path} of the analysis just started"))
                .build();
            response.links.insert(name.to_string(), RefOr::T(link));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_follow_up_is_an_operation_of_the_document() {
        let value = serde_json::to_value(crate::http::openapi_document()).unwrap();
        let links = &value["paths"][START]["post"]["responses"]["202"]["links"];
        for (name, path, method) in FOLLOW_UPS {
            let link = &links[name];
            assert_eq!(link["parameters"]["id"], "$response.body#/id", "{name}");
            let pointer = link["operationRef"]
                .as_str()
                .unwrap()
                .trim_start_matches('#');
            assert!(
                value
                    .pointer(pointer)
                    .is_some_and(|op| op["responses"].is_object()),
                "{name}: {path} {method} is in the document"
            );
        }
    }

    #[test]
    fn operation_bodies_may_be_left_out_but_are_never_null() {
        let value = serde_json::to_value(crate::http::openapi_document()).unwrap();
        assert_eq!(operations().count(), 6);
        for path in operations() {
            let body = &value["paths"][path]["post"]["requestBody"];
            assert_ne!(body["required"], true, "{path}");
            let schema = &body["content"]["application/json"]["schema"];
            assert!(schema["$ref"].is_string(), "{path}: {schema}");
        }
    }
}
