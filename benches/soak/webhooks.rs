//! Malformed and oversized webhooks: each must be refused with a 4xx that says why,
//! and none may start anything.

use std::time::Duration;

use crate::drive::Shared;
use crate::support::Canaryd;

/// (what, content type, body)
fn bad_requests() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let valid = r#"{"strategy":"soak/lane","service":"healthy","environment":"lane00","variables":{"lane":"lane00"}}"#;
    vec![
        (
            "not JSON",
            "application/json",
            b"{\"strategy\": soak".to_vec(),
        ),
        ("an array", "application/json", b"[]".to_vec()),
        ("null", "application/json", b"null".to_vec()),
        ("a text body", "text/plain", valid.as_bytes().to_vec()),
        (
            "an unknown field",
            "application/json",
            valid.replace("\"service\"", "\"servcie\"").into_bytes(),
        ),
        (
            "an injected environment",
            "application/json",
            valid
                .replace("lane00\",\"variables", "x\\\"} or vector(1)\",\"variables")
                .into_bytes(),
        ),
        (
            "an unknown strategy",
            "application/json",
            valid.replace("soak/lane", "soak/none").into_bytes(),
        ),
        (
            "an undeclared variable",
            "application/json",
            valid.replace("\"lane\":", "\"zone\":").into_bytes(),
        ),
        (
            "invalid UTF-8",
            "application/json",
            vec![b'{', 0xff, 0xfe, b'}'],
        ),
        ("2 MiB of JSON", "application/json", {
            let mut big = br#"{"strategy":"soak/lane","environment":""#.to_vec();
            big.extend(std::iter::repeat_n(b'a', 2 << 20));
            big.extend_from_slice(b"\"}");
            big
        }),
    ]
}

pub async fn send_bad(canaryd: &Canaryd, shared: &Shared) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    for (what, content_type, body) in bad_requests() {
        let sent = client
            .post(canaryd.url("/api/v1/analyses"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await;
        let Ok(response) = sent else {
            // A connection cut while the body was still being sent: refused all the same.
            continue;
        };
        let status = response.status();
        let answer = response.text().await.unwrap_or_default();
        if !status.is_client_error() || !answer.contains("\"message\"") {
            shared.violation(format!(
                "a webhook with {what} answered {status}: {answer:.200}"
            ));
        }
    }
}
