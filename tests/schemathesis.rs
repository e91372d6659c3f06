//! Property-based API tests: schemathesis generates requests from `/openapi.json` of a
//! real server with an auth file, follows the document's links (start an analysis, then
//! get, pause, resume, promote, roll back, abort and retry it), and checks every answer:
//! no 5xx, each conforms to the document, a request the document allows is accepted
//! and one it excludes refused, and (a check of ours, `schemathesis/hooks.py`) a team's
//! token is never shown another team's data. Bounded: a fixed seed and a few dozen
//! examples per operation.

#[path = "support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// (token, team of the check; `None` for the admin)
const CALLERS: [(&str, Option<&str>); 3] = [
    ("admin-token", None),
    ("payments-token", Some("payments")),
    ("search-token", Some("search")),
];

fn auth_file(dir: &Path) -> std::path::PathBuf {
    let hash = |token: &str| format!("{:x}", Sha256::digest(token.as_bytes()));
    let text = format!(
        "tokens:\n  - name: root\n    team: \"*\"\n    role: admin\n    sha256: {}\n  \
         - name: payments-op\n    team: payments\n    role: operator\n    sha256: {}\n  \
         - name: search-op\n    team: search\n    role: operator\n    sha256: {}\n",
        hash("admin-token"),
        hash("payments-token"),
        hash("search-token")
    );
    let path = dir.join("auth.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `schemathesis run` against `url` as `token`; its exit status and output.
fn schemathesis(url: &str, token: &str, team: Option<&str>, extra: &[&str]) -> (bool, String) {
    let mut command = Command::new("schemathesis");
    let config = Path::new(ROOT).join("tests/schemathesis/schemathesis.toml");
    command
        .arg("--config-file")
        .arg(config)
        .args(["run", url, "--checks", "all", "--seed", "20261202"])
        .args(["--max-examples", "40"])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(extra)
        .env("PYTHONPATH", Path::new(ROOT).join("tests/schemathesis"))
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("NO_COLOR", "1");
    match team {
        Some(team) => command.env("CANARYD_TEAM", team),
        None => command.env_remove("CANARYD_TEAM"),
    };
    let output = command
        .output()
        .expect("schemathesis runs (scripts/install-deps installs it)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

/// canaryd over the shipped strategies, with the three tokens' auth file in `dir`.
async fn with_auth(dir: &Path) -> support::Canaryd {
    let auth = auth_file(dir);
    let strategies = Path::new(ROOT).join("strategies");
    let extra = ["--auth-file", auth.to_str().unwrap()];
    support::Canaryd::start(&strategies, "http://127.0.0.1:9", &extra, dir).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_answers_every_generated_request_as_its_document_says() {
    let dir = tempfile::tempdir().unwrap();
    let canaryd = with_auth(dir.path()).await;
    let url = canaryd.url("/openapi.json");
    // The admin goes first: its starts leave analyses of several teams behind, which
    // the team tokens that follow must never be shown.
    for (token, team) in CALLERS {
        let url = url.clone();
        let (passed, output) =
            tokio::task::spawn_blocking(move || schemathesis(&url, token, team, &[]))
                .await
                .unwrap();
        assert!(passed, "as {token}:\n{output}");
        assert!(output.contains("passed"), "{output}");
    }
}

/// The team check bites: an admin's answer, read as if a payments token had asked,
/// shows another team's analysis.
#[tokio::test(flavor = "multi_thread")]
async fn the_team_check_fails_when_another_teams_analysis_is_shown() {
    let dir = tempfile::tempdir().unwrap();
    let canaryd = with_auth(dir.path()).await;
    let started = reqwest::Client::new()
        .post(canaryd.url("/api/v1/analyses"))
        .bearer_auth("admin-token")
        .json(&serde_json::json!({"strategy": "search/indexer", "environment": "prod"}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    let url = canaryd.url("/openapi.json");
    let only_the_list = [
        "--include-path",
        "/api/v1/analyses",
        "--include-method",
        "GET",
    ];
    let (passed, output) = tokio::task::spawn_blocking(move || {
        schemathesis(&url, "admin-token", Some("payments"), &only_the_list)
    })
    .await
    .unwrap();
    assert!(!passed, "{output}");
    assert!(
        output.contains("a payments token was shown data of team(s) ['search']"),
        "{output}"
    );
}
