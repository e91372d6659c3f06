//! The Prometheus answer decoder, on arbitrary bytes and on arbitrary JSON in the API's
//! shape: an answer or an error that says where, never a panic.
#![no_main]

use canaryd::adapters::prometheus::{answer, decode};
use canaryd::ports::QueryError;
use libfuzzer_sys::fuzz_target;

/// The first line: the HTTP status, then `json` for a JSON content type, then
/// optionally a `resultType` to wrap the body in as
/// `{"status":"success","data":{"resultType":…,"result":<body>}}`. The rest: the body.
struct Input {
    status: u16,
    json: bool,
    enveloped: Option<String>,
    body: Vec<u8>,
}

impl Input {
    fn parse(data: &[u8]) -> Self {
        let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
        let head = String::from_utf8_lossy(&data[..split]);
        let mut words = head.split_whitespace();
        let status = words.next().and_then(|w| w.parse().ok()).unwrap_or(200);
        let json = words.next() == Some("json");
        let enveloped = words.next().map(str::to_string);
        let body = data.get(split + 1..).unwrap_or_default().to_vec();
        Self {
            status,
            json,
            enveloped,
            body,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let input = Input::parse(data);
    let body = match input.enveloped {
        Some(kind) => {
            let mut body =
                format!(r#"{{"status":"success","data":{{"resultType":"{kind}","result":"#)
                    .into_bytes();
            body.extend_from_slice(&input.body);
            body.extend_from_slice(b"}}");
            body
        }
        None => input.body,
    };
    let content_type = input.json.then_some("application/json");
    match decode(input.status, content_type, &body) {
        Ok(decoded) => {
            let _ = answer::vector(decoded.clone());
            let _ = answer::instant(decoded.clone());
            let _ = answer::range(decoded);
        }
        Err(QueryError::Shape(message)) if message.contains("not a query result") => {
            let placed = message.contains(" at line ")
                || ["\"data\"", "\"status\"", "\"resultType\""]
                    .iter()
                    .any(|field| message.contains(field));
            assert!(placed, "no place in {message:?}");
        }
        Err(QueryError::Shape(_) | QueryError::Unreachable(_) | QueryError::Refused(_)) => {}
        Err(other) => panic!(
            "an answer cannot be a {} error: {other}",
            other.metric_label()
        ),
    }
});
