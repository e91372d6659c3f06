//! `canaryd validate` as CI runs it: exit codes and `path:line:col: message` lines.

mod support;

use std::path::Path;
use std::process::Command;

fn validate(paths: &[&Path]) -> (i32, String, String) {
    validate_with(&[], paths)
}

#[test]
fn the_shipped_strategies_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("strategies");
    let (code, stdout, stderr) = validate(&[&root]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim(), "3 strategies valid");
    assert!(
        stderr.is_empty(),
        "the examples raise no warning either: {stderr}"
    );
}

#[test]
fn exits_one_and_prints_every_error_of_every_file() {
    let root = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("strategies");
    for (team, name, from, to) in [
        ("payments", "checkout-api", "weight: 25", "weight: 0"),
        (
            "search",
            "indexer",
            "interval: 2m",
            "interval: 2 fortnights",
        ),
    ] {
        let text =
            std::fs::read_to_string(shipped.join(team).join(format!("{name}.yaml"))).unwrap();
        assert!(text.contains(from));
        std::fs::create_dir_all(root.path().join(team)).unwrap();
        let path = root.path().join(team).join(format!("{name}.yaml"));
        std::fs::write(path, text.replacen(from, to, 1)).unwrap();
    }
    std::fs::create_dir_all(root.path().join("_templates")).unwrap();
    std::fs::copy(
        shipped.join("_templates/queue-depth.yaml"),
        root.path().join("_templates/queue-depth.yaml"),
    )
    .unwrap();

    let (code, _, stderr) = validate(&[root.path()]);
    assert_eq!(code, 1);
    let lines: Vec<_> = stderr.lines().collect();
    let prefix = root.path().display().to_string();
    assert_eq!(
        lines[0],
        format!(
            "{prefix}/payments/checkout-api.yaml:21:15: steps[1].weight must be within 1..=100, found 0"
        )
    );
    assert!(
        lines[1].starts_with(&format!(
            "{prefix}/search/indexer.yaml:14:13: interval: '2 fortnights' is not a duration"
        )),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2], "2 errors; 0 strategies valid");
}

#[test]
fn a_single_file_is_validated_with_the_templates_of_its_folder() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("strategies/search/indexer.yaml");
    let (code, stdout, stderr) = validate(&[&file]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim(), "1 strategies valid");
}

/// A strategy whose window is `window`, in a folder of its own.
fn strategy_with_window(window: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("shop")).unwrap();
    std::fs::write(
        root.path().join("shop/web.yaml"),
        format!(
            "apiVersion: canaryd/v1\nkind: Strategy\nmetadata:\n  name: web\n  team: shop\nspec:\n  service: web\n  router:\n    type: none\n  \
             interval: 10s\n  window: {window}\n  steps:\n    - weight: 25\n  metrics:\n    - name: error-rate\n      template: http-error-rate\n      max: 0.05\n"
        ),
    )
    .unwrap();
    root
}

/// `canaryd validate EXTRA… PATH…`: its exit code, stdout and stderr.
fn validate_with(extra: &[&str], paths: &[&Path]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_canaryd"))
        .arg("validate")
        .args(extra)
        .args(paths)
        .output()
        .expect("canaryd runs");
    (
        output.status.code().expect("exit code"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_window_under_four_scrape_intervals_is_a_warning_that_does_not_fail() {
    let root = strategy_with_window("30s");
    let (code, stdout, stderr) = validate_with(&[], &[root.path()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim(), "1 strategies valid");
    assert!(
        stderr.contains(
            "shop/web.yaml:11:11: warning: window 30s is shorter than 4 scrape intervals (4 × 15s)"
        ),
        "{stderr}"
    );
    let (code, _, stderr) = validate_with(&["--scrape-interval", "5s"], &[root.path()]);
    assert_eq!(code, 0);
    assert!(stderr.is_empty(), "30s covers 4 × 5s: {stderr}");
}

#[tokio::test]
async fn the_scrape_interval_is_read_from_a_real_prometheus() {
    let demo = support::DemoInstance::start("stable", 0.0, 1).await;
    let prometheus = support::PrometheusServer::start(&[demo.target()]).await;
    // This Prometheus scrapes every second: 3s is under 4 intervals, 4s is not.
    let short = strategy_with_window("3s");
    let (code, _, stderr) =
        validate_with(&["--prometheus-url", &prometheus.url()], &[short.path()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("warning: window 3s is shorter than 4 scrape intervals (4 × 1s)"),
        "{stderr}"
    );
    let enough = strategy_with_window("4s");
    let (_, _, stderr) = validate_with(&["--prometheus-url", &prometheus.url()], &[enough.path()]);
    assert!(stderr.is_empty(), "{stderr}");
    let (code, _, stderr) = validate_with(
        &["--prometheus-url", "http://127.0.0.1:9"],
        &[enough.path()],
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("cannot read the configuration of http://127.0.0.1:9/api/v1/status/config"),
        "{stderr}"
    );
}
