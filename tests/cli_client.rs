//! The commands for people and CI against a real canaryd: each one's text and `--json`
//! output, its effect seen through the API, and canaryd's own message with exit 2
//! when it refuses.

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use support::*;

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

/// A start that names every optional piece a CI job sends.
const KEYED_START: [&str; 10] = [
    "start",
    "shop/web",
    "--environment",
    "prod",
    "--image-tag",
    "1.0.0",
    "--git-commit",
    "abc1234",
    "--idempotency-key",
    "ci-run-1",
];

impl Ran {
    /// A refusal: exit 2, and canaryd's answer (`status`) on stderr.
    fn refused(self, status: &str) -> String {
        assert_eq!(self.code, 2, "stdout: {}", self.stdout);
        assert!(self.stderr.contains(status), "{}", self.stderr);
        self.stderr
    }

    fn ok(self) -> String {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self.stdout
    }

    fn json(self) -> Value {
        let stdout = self.ok();
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }
}

/// `canaryd ARGS` against `canaryd`, with `token` as `CANARYD_TOKEN` if given.
fn cli(canaryd: &Canaryd, token: Option<&str>, args: &[&str]) -> Ran {
    let mut command = Command::new(env!("CARGO_BIN_EXE_canaryd"));
    command
        .args(args)
        .env("CANARYD_URL", canaryd.url(""))
        .env_remove("CANARYD_TOKEN");
    if let Some(token) = token {
        command.env("CANARYD_TOKEN", token);
    }
    let output = command.output().unwrap();
    Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

async fn server(extra: &[&str]) -> (Canaryd, tempfile::TempDir, tempfile::TempDir) {
    let strategies = decide_only_strategies();
    let logs = tempfile::tempdir().unwrap();
    let canaryd = Canaryd::start(strategies.path(), "http://127.0.0.1:9", extra, logs.path()).await;
    (canaryd, strategies, logs)
}

async fn wait_status(canaryd: &Canaryd, id: &str, status: &str) {
    wait_for(
        &format!("{id} {status}"),
        Duration::from_secs(20),
        || async { (canaryd.analysis(id).await["status"] == status).then_some(()) },
    )
    .await;
}

fn start(canaryd: &Canaryd, tag: &str) -> String {
    let started = cli(
        canaryd,
        None,
        &[
            "start",
            "shop/web",
            "--environment",
            "prod",
            "--image-tag",
            tag,
            "--json",
        ],
    );
    started.json()["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_list_status_and_every_operation_with_its_reason() {
    let (canaryd, _strategies, _logs) = server(&[]).await;
    let with = |extra: &[&'static str]| [&KEYED_START[..], extra].concat();
    // A strategy without that variable refuses it, naming it.
    let stderr = cli(&canaryd, None, &with(&["--var", "unused=1"])).refused("422");
    assert!(stderr.contains("unused"), "{stderr}");

    let text = cli(&canaryd, None, &KEYED_START).ok();
    let id = text.split_whitespace().nth(1).unwrap().to_string();
    assert!(text.starts_with(&format!("started {id} ")), "{text}");
    assert!(text.contains(&format!("canaryd wait {id}")), "{text}");
    assert!(!text.contains('\x1b'), "no colour off a terminal: {text:?}");
    let again = cli(&canaryd, None, &with(&["--json"])).json();
    assert_eq!(
        again["id"],
        id.as_str(),
        "the key makes a retry the same start"
    );
    wait_status(&canaryd, &id, "RUNNING").await;

    let listed = cli(&canaryd, None, &["list"]).ok();
    let lines: Vec<&str> = listed.lines().collect();
    assert!(
        lines[0].starts_with("ID ") && lines[0].contains("STATUS"),
        "{listed}"
    );
    let column = lines[0].find("STATUS").unwrap();
    let row = lines
        .iter()
        .find(|l| l.starts_with(&id))
        .expect("the analysis is listed");
    assert_eq!(&row[column..column + 7], "RUNNING", "{listed}");
    assert!(
        row.contains("shop/web") && row.contains("1.0.0") && row.contains("25%"),
        "{row}"
    );
    let listed = cli(&canaryd, None, &["list", "--status", "RUNNING", "--json"]).json();
    assert_eq!(listed.as_array().unwrap().len(), 1);

    let status = cli(&canaryd, None, &["status", &id]).ok();
    assert!(
        status.starts_with("RUNNING step 1/1 canary 25%"),
        "{status}"
    );
    assert_eq!(
        cli(&canaryd, None, &["status", &id, "--json"]).json()["id"],
        id.as_str()
    );

    for (operation, reason, status) in [
        ("pause", "looking at a graph", "PAUSED"),
        ("resume", "graph is fine", "RUNNING"),
        ("rollback", "customer reports", "ROLLED_BACK"),
        ("retry", "was a false alarm", "RUNNING"),
        ("promote", "release now", "DEPLOYED"),
    ] {
        let answer = cli(
            &canaryd,
            None,
            &[operation, &id, "--reason", reason, "--json"],
        )
        .json();
        assert_eq!(answer["id"], id.as_str(), "{operation}");
        wait_status(&canaryd, &id, status).await;
        let events = canaryd.get(&format!("/api/v1/analyses/{id}/events")).await;
        assert!(events.to_string().contains(reason), "{operation}: {events}");
    }

    let other = start(&canaryd, "1.0.1");
    wait_status(&canaryd, &other, "RUNNING").await;
    let aborted = cli(
        &canaryd,
        None,
        &["abort", &other, "--reason", "wrong build"],
    )
    .ok();
    assert!(
        aborted.contains("wrong build") || aborted.starts_with("CANCELLED"),
        "{aborted}"
    );
    wait_status(&canaryd, &other, "CANCELLED").await;

    // Refusals: canaryd's message, and a non-zero exit.
    cli(&canaryd, None, &["pause", &other, "--reason", "too late"]).refused("409");
    let missing = cli(&canaryd, None, &["status", "no-such-analysis"]).refused("404");
    assert!(missing.contains("no-such-analysis"), "{missing}");
    let no_reason = cli(&canaryd, None, &["rollback", &other]);
    assert_eq!(no_reason.code, 2, "{}", no_reason.stderr);
    assert!(
        no_reason.stderr.contains("--reason"),
        "{}",
        no_reason.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_freeze_and_unfreeze() {
    let (canaryd, _strategies, _logs) = server(&[]).await;
    let frozen = cli(
        &canaryd,
        None,
        &["freeze", "prod", "--reason", "holiday", "--json"],
    )
    .json();
    let freeze = frozen["id"].as_str().unwrap().to_string();
    let waiting = start(&canaryd, "2.0.0");
    let status = cli(&canaryd, None, &["status", &waiting]).ok();
    assert!(
        status.starts_with("PENDING"),
        "a frozen environment holds it: {status}"
    );

    let text = cli(&canaryd, None, &["unfreeze", &freeze]).ok();
    assert_eq!(text.trim(), format!("lifted {freeze}"));
    wait_status(&canaryd, &waiting, "RUNNING").await;
    cli(&canaryd, None, &["unfreeze", &freeze]).refused("404");
    let text = cli(
        &canaryd,
        None,
        &["freeze", "staging", "--reason", "migration"],
    )
    .ok();
    assert!(text.starts_with("froze staging ("), "{text}");

    cli(&canaryd, None, &["promote", &waiting, "--reason", "ship"]).ok();
    wait_status(&canaryd, &waiting, "DEPLOYED").await;
    let history = cli(&canaryd, None, &["history", "--environment", "prod"]).ok();
    let lines: Vec<&str> = history.lines().collect();
    assert!(
        lines[0].starts_with("ID ") && lines[0].contains("IMAGE"),
        "{history}"
    );
    let row = lines
        .iter()
        .find(|l| l.contains("2.0.0"))
        .expect("the release is in history");
    assert!(row.contains("DEPLOYED"), "{row}");
    let history = cli(
        &canaryd,
        None,
        &["history", "--environment", "prod", "--json"],
    )
    .json();
    assert_eq!(history[0]["imageTag"], "2.0.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_refused_with_the_servers_message() {
    let dir = tempfile::tempdir().unwrap();
    let hash = format!("{:x}", Sha256::digest(b"shop-ci-token"));
    let auth = dir.path().join("auth.yaml");
    let text =
        format!("tokens:\n  - name: shop-ci\n    team: shop\n    role: ci\n    sha256: {hash}\n");
    std::fs::write(&auth, text).unwrap();
    let (canaryd, _strategies, _logs) = server(&["--auth-file", auth.to_str().unwrap()]).await;

    let refused = cli(&canaryd, Some("not-the-token"), &["list"]).refused("401");
    assert!(
        !refused.contains("not-the-token"),
        "the token is never echoed"
    );
    let id = {
        let args = [
            "start",
            "shop/web",
            "--environment",
            "prod",
            "--image-tag",
            "3.0.0",
            "--json",
        ];
        cli(&canaryd, Some("shop-ci-token"), &args).json()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // A CI token starts analyses but may not freeze an environment.
    cli(
        &canaryd,
        Some("shop-ci-token"),
        &["freeze", "prod", "--reason", "x"],
    )
    .refused("403");
    let listed = cli(&canaryd, Some("shop-ci-token"), &["list", "--json"]).json();
    assert_eq!(listed[0]["id"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_record_current_and_compare() {
    let (canaryd, _strategies, _logs) = server(&[]).await;
    let promoted = start(&canaryd, "2.0.0");
    wait_status(&canaryd, &promoted, "RUNNING").await;
    cli(&canaryd, None, &["promote", &promoted, "--reason", "ship"]).ok();
    wait_status(&canaryd, &promoted, "DEPLOYED").await;

    let record = |environment: &str, tag: &str, extra: &[&str]| {
        let args = [
            &[
                "deployments",
                "record",
                "--service",
                "web",
                "--environment",
                environment,
            ][..],
            &["--image-tag", tag, "--status", "DEPLOYED"],
            extra,
        ]
        .concat();
        cli(&canaryd, None, &args)
    };
    let text = record("staging", "2.1.0", &["--git-commit", "abc1234"]).ok();
    assert!(text.starts_with("recorded "), "{text}");
    assert!(
        text.trim_end().ends_with("web 2.1.0 in staging DEPLOYED"),
        "{text}"
    );
    let recorded = record("dev", "2.2.0", &["--json"]).json();
    let stderr = record("dev", "2.2.0", &["--deployed-at", "yesterday"]).refused("422");
    assert!(stderr.contains("deployedAt"), "{stderr}");

    let current = cli(&canaryd, None, &["deployments", "current", "web"]).ok();
    let lines: Vec<&str> = current.lines().collect();
    assert!(lines[0].starts_with("ENVIRONMENT  IMAGE"), "{current}");
    let prod = lines.iter().find(|l| l.starts_with("prod ")).expect("prod");
    assert!(
        prod.contains("2.0.0") && prod.contains("analysis"),
        "{prod}"
    );
    let staging = lines
        .iter()
        .find(|l| l.starts_with("staging "))
        .expect("staging");
    assert!(
        staging.contains("2.1.0") && staging.contains("recorded"),
        "{staging}"
    );
    assert_eq!(
        lines.last().unwrap(),
        &"drift: 3 images run (2.2.0, 2.0.0, 2.1.0)"
    );
    let json = cli(&canaryd, None, &["deployments", "current", "web", "--json"]).json();
    assert_eq!(json["drift"], true);

    let to = recorded["id"].as_str().unwrap();
    let compared = cli(&canaryd, None, &["deployments", "compare", &promoted, to]).ok();
    let image = compared.lines().find(|l| l.contains("imageTag")).unwrap();
    assert!(
        image.starts_with("*imageTag") && image.contains("2.0.0") && image.contains("2.2.0"),
        "{image}"
    );
    let source = compared.lines().find(|l| l.contains("source")).unwrap();
    assert!(source.starts_with("*source"), "{source}");
    let json = cli(
        &canaryd,
        None,
        &["deployments", "compare", &promoted, to, "--json"],
    )
    .json();
    assert_eq!(json["to"]["imageTag"], "2.2.0");
    cli(
        &canaryd,
        None,
        &["deployments", "compare", &promoted, "nope"],
    )
    .refused("404");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_start_status_wait_cancel_and_rollback() {
    let (canaryd, _strategies, _logs) = server(&[]).await;
    let start = [
        "group",
        "start",
        "--release",
        "shop/web:eu-west",
        "--release",
        "shop/web:us-east:web",
        "--image-tag",
        "2.0.0",
        "--name",
        "spring",
    ];
    let text = cli(&canaryd, None, &start).ok();
    let id = text.split_whitespace().nth(1).unwrap().to_string();
    assert!(text.starts_with(&format!("group {id} (spring) ")), "{text}");
    assert!(text.contains("0/2 ended"), "{text}");
    assert!(
        text.contains(&format!("canaryd wait --group {id}")),
        "{text}"
    );
    let stderr = cli(
        &canaryd,
        None,
        &[
            "group",
            "start",
            "--release",
            "shop/web",
            "--image-tag",
            "1",
        ],
    )
    .refused("STRATEGY:ENVIRONMENT");
    assert!(!stderr.contains("POST"), "refused before sending: {stderr}");

    let group = cli(&canaryd, None, &["group", "status", &id, "--json"]).json();
    let members: Vec<String> = (0..2)
        .map(|i| group["members"][i]["id"].as_str().unwrap().to_string())
        .collect();
    for member in &members {
        wait_status(&canaryd, member, "RUNNING").await;
    }
    let status = cli(&canaryd, None, &["group", "status", &id]).ok();
    assert!(status.contains("RUNNING: 0/2 ended"), "{status}");
    assert!(
        status.contains(&members[0]) && status.contains("eu-west"),
        "{status}"
    );

    // One member promoted and one rolled back: wait --group ends, and says no.
    cli(
        &canaryd,
        None,
        &["promote", &members[0], "--reason", "fine"],
    )
    .ok();
    cli(
        &canaryd,
        None,
        &["rollback", &members[1], "--reason", "slow"],
    )
    .ok();
    let waited = cli(&canaryd, None, &["wait", "--group", &id, "--poll", "100ms"]);
    assert_eq!(waited.code, 1, "{}", waited.stdout);
    assert!(
        waited.stdout.contains("FINALIZED: 2/2 ended"),
        "{}",
        waited.stdout
    );

    // A second group, every member promoted: wait --group says yes.
    let text = cli(&canaryd, None, &start).ok();
    let second = text.split_whitespace().nth(1).unwrap().to_string();
    let group = cli(&canaryd, None, &["group", "status", &second, "--json"]).json();
    for i in 0..2 {
        let member = group["members"][i]["id"].as_str().unwrap();
        wait_status(&canaryd, member, "RUNNING").await;
        cli(&canaryd, None, &["promote", member, "--reason", "fine"]).ok();
    }
    let waited = cli(
        &canaryd,
        None,
        &["wait", "--group", &second, "--poll", "100ms"],
    );
    assert_eq!(waited.code, 0, "{}", waited.stdout);

    // Cancel is refused once members have ended; rollback of a FINALIZED group has
    // nothing left to do.
    let stderr = cli(&canaryd, None, &["group", "cancel", &id, "--reason", "r"]).refused("409");
    assert!(stderr.contains("every member is RUNNING"), "{stderr}");
    let rolled = cli(
        &canaryd,
        None,
        &["group", "rollback", &id, "--reason", "r", "--json"],
    )
    .json();
    assert_eq!(rolled["status"], "FINALIZED");

    // A third group cancelled while both members run.
    let text = cli(&canaryd, None, &start).ok();
    let third = text.split_whitespace().nth(1).unwrap().to_string();
    let group = cli(&canaryd, None, &["group", "status", &third, "--json"]).json();
    for i in 0..2 {
        wait_status(
            &canaryd,
            group["members"][i]["id"].as_str().unwrap(),
            "RUNNING",
        )
        .await;
    }
    let cancelled = cli(
        &canaryd,
        None,
        &["group", "cancel", &third, "--reason", "called off"],
    )
    .ok();
    assert!(
        cancelled.starts_with(&format!("group {third} ")),
        "{cancelled}"
    );
    // Each member returns its traffic to stable before it ends CANCELLED.
    let waited = cli(
        &canaryd,
        None,
        &["wait", "--group", &third, "--poll", "100ms"],
    );
    assert_eq!(waited.code, 1, "{}", waited.stdout);
    let group = cli(&canaryd, None, &["group", "status", &third, "--json"]).json();
    for i in 0..2 {
        assert_eq!(group["members"][i]["verdict"], "CANCELLED", "{group}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_rollback_rollforward_blocks_and_unblock() {
    let (canaryd, _strategies, _logs) = server(&[]).await;
    for (tag, status) in [
        ("v1", "DEPLOYED"),
        ("v2", "DEPLOYED"),
        ("v3", "ROLLED_BACK"),
    ] {
        let record = [
            "deployments",
            "record",
            "--service",
            "web",
            "--environment",
            "prod",
            "--image-tag",
            tag,
            "--status",
            status,
        ];
        cli(&canaryd, None, &record).ok();
    }
    let rollback = |extra: &[&'static str]| {
        let base = [
            "release",
            "rollback",
            "shop/web",
            "--environment",
            "prod",
            "--reason",
            "errors",
        ];
        [&base[..], extra].concat()
    };
    let stderr = cli(&canaryd, None, &rollback(&["--to", "v3"])).refused("409");
    assert!(stderr.contains("it ended ROLLED_BACK"), "{stderr}");

    let text = cli(&canaryd, None, &rollback(&[])).ok();
    assert!(
        text.starts_with("rollback: prod v2 -> v1 (release "),
        "{text}"
    );
    let block = text
        .lines()
        .nth(1)
        .unwrap()
        .trim_start_matches("blocked: ")
        .to_string();
    assert!(text.contains(&format!("canaryd unblock {block}")), "{text}");

    let listed = cli(&canaryd, None, &["blocks"]).ok();
    assert!(
        listed.starts_with("ID ") && listed.contains(&block) && listed.contains("rollback"),
        "{listed}"
    );
    let forward = [
        "release",
        "rollforward",
        "shop/web",
        "--environment",
        "prod",
        "--to",
        "v2",
        "--reason",
        "fixed",
        "--json",
    ];
    let answer = cli(&canaryd, None, &forward).json();
    assert_eq!(answer["imageTag"], "v2");

    let lifted = cli(
        &canaryd,
        None,
        &["unblock", &block, "--reason", "all clear"],
    )
    .ok();
    assert_eq!(lifted.trim(), format!("lifted {block}"));
    let left = cli(&canaryd, None, &["blocks", "--json"]).json();
    assert_eq!(
        left.as_array().unwrap().len(),
        1,
        "the roll forward's block stays: {left}"
    );
    cli(&canaryd, None, &["unblock", &block, "--reason", "again"]).refused("404");
}
