//! The JSON Schemas of strategy and template files: committed copies match what the
//! binary generates and serves, every shipped example is valid under a real JSON
//! Schema validator, and files the loader refuses for their shape are invalid too.

#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn canaryd(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_canaryd"))
        .args(args)
        .output()
        .expect("canaryd runs");
    (
        output.status.code().expect("exit code"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn committed(file: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join("schemas").join(file)).unwrap()
}

fn validator(file: &str) -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(&committed(file)).unwrap();
    jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("YAML")
}

/// Every `.yaml` under `dir`, recursively.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|e| e == "yaml") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The shipped strategies, and the one in the Kubernetes manifests.
fn examples() -> Vec<PathBuf> {
    let root = Path::new(ROOT);
    let mut files = yaml_files(&root.join("strategies"));
    files.extend(yaml_files(&root.join("deploy/kubernetes/strategies")));
    assert!(files.len() >= 5, "{files:?}");
    files
}

fn is_template(path: &Path) -> bool {
    path.components().any(|c| c.as_os_str() == "_templates")
}

#[test]
fn the_committed_schemas_are_the_generated_ones() {
    for (kind, file) in [("strategy", "strategy.json"), ("template", "template.json")] {
        let (code, stdout, stderr) = canaryd(&["schema", kind]);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stdout == committed(file),
            "schemas/{file} is stale: run `cargo run -- schema {kind} > schemas/{file}`"
        );
    }
}

#[test]
fn every_example_is_valid_and_names_its_schema() {
    let (strategy, template) = (validator("strategy.json"), validator("template.json"));
    for path in examples() {
        let text = std::fs::read_to_string(&path).unwrap();
        let (validator, file) = if is_template(&path) {
            (&template, "template.json")
        } else {
            (&strategy, "strategy.json")
        };
        let errors: Vec<String> = validator
            .iter_errors(&yaml(&text))
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
        let first = text.lines().next().unwrap_or_default();
        let named = first
            .strip_prefix("# yaml-language-server: $schema=")
            .unwrap_or_else(|| panic!("{} does not start with its $schema line", path.display()));
        let target = path.parent().unwrap().join(named);
        assert_eq!(
            target.canonicalize().unwrap(),
            Path::new(ROOT)
                .join("schemas")
                .join(file)
                .canonicalize()
                .unwrap(),
            "{}",
            path.display()
        );
    }
}

/// Strategy files broken in their shape: each is refused by the loader and invalid
/// under the schema, which names the field.
#[test]
fn files_broken_in_their_shape_are_invalid_and_refused() {
    let valid =
        std::fs::read_to_string(Path::new(ROOT).join("strategies/search/indexer.yaml")).unwrap();
    let strategy = validator("strategy.json");
    assert!(strategy.is_valid(&yaml(&valid)));
    let broken = [
        (
            "apiVersion: canaryd/v1",
            "apiVersion: canaryd/v2",
            "/apiVersion",
        ),
        ("kind: Strategy", "kind: Rollout", "/kind"),
        (
            "  service: search-indexer",
            "  service: search-indexer\n  colour: blue",
            "/spec",
        ),
        ("    type: none", "    type: linkerd", "/spec/router/type"),
        ("  interval: 2m", "  interval: soon", "/spec/interval"),
        (
            "    - weight: 20",
            "    - weight: 150",
            "/spec/steps/0/weight",
        ),
        (
            "    - weight: 20",
            "    - weight: twenty",
            "/spec/steps/0/weight",
        ),
        ("      max: 1000", "      max: low", "/spec/metrics/0/max"),
        (
            "      max: 1000",
            "      max: 1000\n      judge: magic",
            "/spec/metrics/0/judge",
        ),
    ];
    let root = tempfile::tempdir().unwrap();
    for (from, to, pointer) in broken {
        assert!(valid.contains(from), "the example still has {from:?}");
        let text = valid.replacen(from, to, 1);
        let document = yaml(&text);
        let errors: Vec<_> = strategy.iter_errors(&document).collect();
        assert!(!errors.is_empty(), "{to:?} is invalid under the schema");
        assert!(
            errors
                .iter()
                .any(|e| e.instance_path().to_string() == pointer),
            "{to:?}: errors name {pointer:?}: {:?}",
            errors
                .iter()
                .map(|e| e.instance_path().to_string())
                .collect::<Vec<_>>()
        );
        let dir = root.path().join("search");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("indexer.yaml"), &text).unwrap();
        let (code, stdout, _) = canaryd(&["validate", root.path().to_str().unwrap()]);
        assert_eq!(code, 1, "{to:?} is refused by the loader too: {stdout}");
    }
}

#[test]
fn a_template_without_its_query_is_invalid() {
    let template = validator("template.json");
    let path = Path::new(ROOT).join("strategies/_templates/queue-depth.yaml");
    let valid = std::fs::read_to_string(path).unwrap();
    assert!(template.is_valid(&yaml(&valid)));
    let mut document = yaml(&valid);
    document["spec"].as_object_mut().unwrap().remove("query");
    assert!(!template.is_valid(&document));
    document["spec"]["query"] = Value::String(String::new());
    assert!(!template.is_valid(&document), "an empty query");
}

#[tokio::test]
async fn the_server_serves_the_schemas() {
    let logs = tempfile::tempdir().unwrap();
    let strategies = Path::new(ROOT).join("strategies");
    let canaryd =
        support::Canaryd::start(&strategies, "http://127.0.0.1:9", &[], logs.path()).await;
    for file in ["strategy.json", "template.json"] {
        let response = reqwest::get(canaryd.url(&format!("/schemas/{file}")))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let served: Value = response.json().await.unwrap();
        let expected: Value = serde_json::from_str(&committed(file)).unwrap();
        assert_eq!(served, expected, "{file}");
    }
    let missing = reqwest::get(canaryd.url("/schemas/other.json"))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}
