//! A JSON body extractor whose rejections speak the API's error format: 415 for a
//! wrong content type, 413 past the body limit, 400 for malformed JSON, 422 for JSON
//! that is well-formed but does not fit (an unknown field, a missing one, a wrong type).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::errors::ApiError;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let is_json = content_type
            .split(';')
            .next()
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("expected Content-Type: application/json, got {content_type:?}"),
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "body_too_large",
                        format!("the body is over {MAX_BODY_BYTES} bytes"),
                    )
                } else {
                    ApiError::bad_request(format!("cannot read the body: {rejection}"))
                }
            })?;
        parse(&bytes).map(JsonBody)
    }
}

/// An optional JSON body: an empty body is `None`; otherwise as `JsonBody`.
pub struct MaybeJson<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for MaybeJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let empty = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|length| length.trim() == "0")
            || (!request.headers().contains_key(header::CONTENT_LENGTH)
                && !request.headers().contains_key(header::TRANSFER_ENCODING));
        if empty {
            return Ok(MaybeJson(None));
        }
        JsonBody::from_request(request, state)
            .await
            .map(|JsonBody(value)| MaybeJson(Some(value)))
    }
}

/// Parses a body, telling malformed JSON (400) from JSON that does not fit (422).
/// Every body of the API is an object: serde would read a struct from an array too
/// (`[]` as an operation with no reason), so anything else is refused first.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() {
        return Err(ApiError::invalid("the body must be a JSON object"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        rejection(Some(path).filter(|p| p != "."), error.into_inner())
    })?;
    deserializer.end().map_err(|error| rejection(None, error))?;
    Ok(value)
}

/// A value that does not fit names its field (`deployedAt: input contains invalid
/// characters…`); malformed JSON says where it broke.
fn rejection(field: Option<String>, error: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match (error.classify(), field) {
        (Category::Data, Some(field)) => ApiError::invalid(format!("{field}: {error}")),
        (Category::Data, None) => ApiError::invalid(error.to_string()),
        (Category::Syntax | Category::Eof | Category::Io, _) => {
            ApiError::bad_request(format!("malformed JSON: {error}"))
        }
    }
}
