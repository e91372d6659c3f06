//! `canaryd validate` as CI runs it: exit codes and `path:line:col: message` lines.

use std::path::Path;
use std::process::Command;

fn validate(args: &[&Path]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_canaryd"))
        .arg("validate")
        .args(args)
        .output()
        .expect("canaryd runs");
    (
        output.status.code().expect("exit code"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_shipped_strategies_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("strategies");
    let (code, stdout, stderr) = validate(&[&root]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.trim(), "3 strategies valid");
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
            "{prefix}/payments/checkout-api.yaml:19:15: steps[1].weight must be within 1..=100, found 0"
        )
    );
    assert!(
        lines[1].starts_with(&format!(
            "{prefix}/search/indexer.yaml:13:13: interval: '2 fortnights' is not a duration"
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
