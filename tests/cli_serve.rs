//! `canaryd serve` as an operator meets it: safe refusals at start, and JSON logs whose
//! lines carry the analysis span (id, team, service, environment).

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::*;

/// `canaryd serve` with a memory store on `listen`, over `strategies`, plus `extra`.
fn serve(listen: &str, strategies: &tempfile::TempDir, extra: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_canaryd"))
        .args([
            "serve",
            "--listen",
            listen,
            "--database-url",
            "memory:",
            "--strategies",
        ])
        .arg(strategies.path())
        .args(extra)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn refuses_to_listen_beyond_loopback_without_an_auth_file() {
    let strategies = decide_only_strategies();
    let (code, stderr) = serve("0.0.0.0:0", &strategies, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without --auth-file"),
        "{stderr}"
    );
}

#[test]
fn refuses_to_start_with_broken_strategies_naming_every_error() {
    let strategies = decide_only_strategies();
    let path = strategies.path().join("shop/web.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("weight: 25", "weight: 250");
    std::fs::write(&path, text).unwrap();
    let (code, stderr) = serve("127.0.0.1:0", &strategies, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("shop/web.yaml:12:15: steps[0].weight must be within 1..=100, found 250"),
        "{stderr}"
    );
}

#[test]
fn refuses_an_auth_file_with_mistakes() {
    let strategies = decide_only_strategies();
    let auth = strategies.path().join("auth.yaml");
    std::fs::write(
        &auth,
        "tokens:\n  - name: ci\n    team: shop\n    role: ci\n    sha256: nothex\n",
    )
    .unwrap();
    let (code, stderr) = serve(
        "127.0.0.1:0",
        &strategies,
        &["--auth-file", &auth.display().to_string()],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("auth.yaml:2:5: token 'ci': sha256 must be 64 hex digits"),
        "{stderr}"
    );
}

#[tokio::test]
async fn json_logs_carry_the_analysis_span() {
    let strategies = decide_only_strategies();
    let logs = tempfile::tempdir().unwrap();
    let canaryd = Canaryd::start(
        strategies.path(),
        "http://127.0.0.1:9",
        &["--log-format", "json"],
        logs.path(),
    )
    .await;
    let id = canaryd
        .start_analysis(json!({"strategy": "shop/web", "environment": "staging"}))
        .await;
    let line = wait_for(
        "a log line of the analysis",
        Duration::from_secs(10),
        || async {
            let log = canaryd.process.log();
            log.lines()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .find(|line| {
                    line["message"] == "canary weight applied" && line["span"]["id"] == id.as_str()
                })
        },
    )
    .await;
    assert_eq!(line["span"]["name"], "analysis");
    assert_eq!(
        (
            line["span"]["team"].as_str(),
            line["span"]["service"].as_str()
        ),
        (Some("shop"), Some("web"))
    );
    assert_eq!(line["span"]["environment"], "staging");
    assert_eq!(line["weight"], 25);
}

#[tokio::test]
async fn sighup_reloads_strategies_and_keeps_the_old_ones_when_the_new_are_broken() {
    let strategies = decide_only_strategies();
    let logs = tempfile::tempdir().unwrap();
    // Only SIGHUP reloads here: the folder is not watched.
    let quiet = ["--reload-interval", "0s"];
    let canaryd =
        Canaryd::start(strategies.path(), "http://127.0.0.1:9", &quiet, logs.path()).await;
    let path = strategies.path().join("shop/web.yaml");
    let original = std::fs::read_to_string(&path).unwrap();
    let hang_up = || {
        let status = Command::new("kill")
            .arg("-HUP")
            .arg(canaryd.process.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    };
    let first_weight = || async {
        canaryd.get("/api/v1/strategies/shop/web").await["steps"][0]["weight"].as_u64()
    };
    assert_eq!(first_weight().await, Some(25));

    std::fs::write(&path, original.replace("weight: 25", "weight: 40")).unwrap();
    hang_up();
    wait_for(
        "the edited strategy to be served",
        Duration::from_secs(10),
        || async { (first_weight().await == Some(40)).then_some(()) },
    )
    .await;

    std::fs::write(&path, original.replace("weight: 25", "weight: 400")).unwrap();
    hang_up();
    wait_for(
        "the refusal to be logged",
        Duration::from_secs(10),
        || async {
            canaryd
                .process
                .log()
                .contains("strategies not reloaded")
                .then_some(())
        },
    )
    .await;
    assert!(
        canaryd
            .process
            .log()
            .contains("steps[0].weight must be within 1..=100, found 400")
    );
    assert_eq!(
        first_weight().await,
        Some(40),
        "the previous strategies stay in force"
    );
}

/// Lays out `files` as Kubernetes mounts a ConfigMap: the files in a timestamped
/// folder, `..data` pointing at it, and each team folder a link through `..data`.
fn mount_version(root: &std::path::Path, version: &str, files: &[(&str, String)]) {
    let folder = root.join(version);
    for (path, text) in files {
        let path = folder.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    // The swap is atomic: a new link renamed over the old one.
    let next = root.join("..data_tmp");
    std::os::unix::fs::symlink(version, &next).unwrap();
    std::fs::rename(&next, root.join("..data")).unwrap();
    if !root.join("shop").exists() {
        std::os::unix::fs::symlink("..data/shop", root.join("shop")).unwrap();
    }
}

#[tokio::test]
async fn a_mounted_config_map_that_changes_is_reloaded_without_a_signal() {
    let original =
        std::fs::read_to_string(decide_only_strategies().path().join("shop/web.yaml")).unwrap();
    let mount = tempfile::tempdir().unwrap();
    mount_version(
        mount.path(),
        "..2026_12_01_10_00_00.1",
        &[("shop/web.yaml", original.clone())],
    );
    let logs = tempfile::tempdir().unwrap();
    let watch = ["--reload-interval", "200ms"];
    let canaryd = Canaryd::start(mount.path(), "http://127.0.0.1:9", &watch, logs.path()).await;
    let first_weight = || async {
        canaryd.get("/api/v1/strategies/shop/web").await["steps"][0]["weight"].as_u64()
    };
    assert_eq!(first_weight().await, Some(25));
    let edited = original.replace("weight: 25", "weight: 40");
    mount_version(
        mount.path(),
        "..2026_12_01_10_05_00.2",
        &[("shop/web.yaml", edited)],
    );
    wait_for(
        "the new ConfigMap version to be served",
        Duration::from_secs(10),
        || async { (first_weight().await == Some(40)).then_some(()) },
    )
    .await;
    assert!(
        canaryd.process.log().contains("files changed"),
        "{}",
        canaryd.process.log()
    );
    let broken = original.replace("weight: 25", "weight: 0");
    mount_version(
        mount.path(),
        "..2026_12_01_10_10_00.3",
        &[("shop/web.yaml", broken)],
    );
    wait_for(
        "the broken version to be refused",
        Duration::from_secs(10),
        || async {
            canaryd
                .process
                .log()
                .contains("strategies not reloaded")
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        first_weight().await,
        Some(40),
        "the previous strategies stay in force"
    );
}

#[tokio::test]
async fn a_second_process_on_one_sqlite_file_refuses_to_start_naming_the_first() {
    let strategies = decide_only_strategies();
    let state = tempfile::tempdir().unwrap();
    let first = Canaryd::start(strategies.path(), "http://127.0.0.1:9", &[], state.path()).await;
    let database = state.path().join("canaryd.db");
    let output = Command::new(env!("CARGO_BIN_EXE_canaryd"))
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--database-url")
        .arg(format!("sqlite://{}", database.display()))
        .arg("--strategies")
        .arg(strategies.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&database.display().to_string()), "{stderr}");
    assert!(
        stderr.contains(&format!("pid {}", first.process.pid())),
        "{stderr}"
    );
    // The first one is untouched and still serves.
    let health = reqwest::get(first.url("/readyz")).await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let ready: Value = health.json().await.unwrap();
    assert_eq!(ready["holdsLease"], true, "{ready}");
    assert!(
        ready["leaseRemainingMs"].is_null(),
        "SQLite's hold cannot expire: {ready}"
    );
}

#[tokio::test]
async fn serve_logs_the_warnings_of_strategies_that_load_but_will_likely_disappoint() {
    let strategies = decide_only_strategies();
    let path = strategies.path().join("shop/web.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("interval: 1h\n", "interval: 10s\n  window: 30s\n");
    std::fs::write(&path, text).unwrap();
    let state = tempfile::tempdir().unwrap();
    let canaryd = Canaryd::start(strategies.path(), "http://127.0.0.1:9", &[], state.path()).await;
    let log = canaryd.process.log();
    assert!(
        log.contains(
            "shop/web.yaml:11:11: warning: window 30s is shorter than 4 scrape intervals (4 × 15s)"
        ),
        "{log}"
    );
}
