//! The webhook (`POST /api/v1/analyses`), body and headers, through the real axum
//! router with auth on: a 4xx that names the field, or an accepted start that the API
//! then shows to its team. Never a 5xx, never a panic.
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use canaryd_fuzz::webhook_server::{Server, TOKENS};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

/// As on the wire: `Name: value` header lines, a blank line, the body. A first line
/// `token N` presents test token N (0..=2) as the bearer; without any `Content-Type`
/// header the request says JSON.
struct Input {
    token: Option<usize>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Input {
    fn parse(data: &[u8]) -> Self {
        let end = data.windows(2).position(|w| w == b"\n\n");
        let (head, body) = match end {
            Some(end) => (&data[..end], &data[end + 2..]),
            None => (&data[..0], data),
        };
        let head = String::from_utf8_lossy(head);
        let mut lines = head.lines().peekable();
        let token = lines
            .next_if(|l| l.starts_with("token "))
            .and_then(|l| l["token ".len()..].trim().parse().ok());
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        Self {
            token,
            headers,
            body: body.to_vec(),
        }
    }
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(Server::start)
}

fuzz_target!(|data: &[u8]| {
    let input = Input::parse(data);
    let server = server();
    let Some(request) = request(&input) else {
        return;
    };
    let (status, body) = server.runtime.block_on(async {
        let response = server
            .app
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        (status, body)
    });
    let json: serde_json::Value = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{status} with a body that is not JSON ({e}): {body:?}"));
    // The one 5xx allowed: the strategy needs a Kubernetes API and none is configured.
    let no_cluster = status == StatusCode::SERVICE_UNAVAILABLE
        && matches!(
            json["error"].as_str(),
            Some("router_unavailable" | "workload_unavailable")
        );
    assert!(!status.is_server_error() || no_cluster, "{status}: {json}");
    if status.is_client_error() || no_cluster {
        let message = json["message"].as_str().expect("an error has a message");
        assert!(
            json["error"].is_string() && !message.trim().is_empty(),
            "{json}"
        );
    } else {
        assert!(
            matches!(status, StatusCode::OK | StatusCode::ACCEPTED),
            "{status}"
        );
        let id = json["id"].as_str().expect("a started analysis has an id");
        server.seen_and_ended(id);
    }
});

fn request(input: &Input) -> Option<Request<Body>> {
    let mut builder = Request::post("/api/v1/analyses");
    if let Some((_, token)) = input.token.and_then(|i| TOKENS.get(i)) {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let typed = input
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
    if !typed {
        builder = builder.header("content-type", "application/json");
    }
    for (name, value) in input.headers.iter().take(16) {
        builder = builder.header(name.as_str(), value.as_str());
    }
    // Headers the http crate itself refuses never reach canaryd.
    builder.body(Body::from(input.body.clone())).ok()
}
