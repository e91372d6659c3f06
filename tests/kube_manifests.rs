//! `deploy/kubernetes` and its Postgres overlay render with `kubectl kustomize`, run
//! canaryd as the issue of running in a cluster asks, and grant exactly the
//! permissions canaryd's Kubernetes adapters use.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

fn render(folder: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(&path)
        .output()
        .expect("kubectl on PATH (scripts/install-deps installs it)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    serde_saphyr::from_multiple(&text).unwrap()
}

fn one<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = objects.iter().filter(|o| o["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind}: {found:?}");
    found[0]
}

fn container(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

fn env(deployment: &Value, name: &str) -> Value {
    container(deployment)["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

#[test]
fn the_base_runs_one_locked_down_replica_on_sqlite() {
    let objects = render("deploy/kubernetes");
    let deployment = one(&objects, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(
        deployment["spec"]["strategy"]["type"], "Recreate",
        "never two processes on one SQLite file"
    );
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "canaryd");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let c = container(deployment);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(
        c["resources"]["requests"]["cpu"].is_string()
            && c["resources"]["requests"]["memory"].is_string()
    );
    assert!(
        env(deployment, "CANARYD_DATABASE_URL")["value"]
            .as_str()
            .unwrap()
            .starts_with("sqlite:///var/lib/canaryd/")
    );
    assert!(
        env(deployment, "CANARYD_AUTH_FILE")["value"].is_string(),
        "listening beyond loopback needs tokens"
    );
    let claim = one(&objects, "PersistentVolumeClaim");
    let volumes = pod["volumes"].as_array().unwrap();
    assert!(
        volumes
            .iter()
            .any(|v| v["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"])
    );
    let service = one(&objects, "Service");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
    let monitor = one(&objects, "PodMonitor");
    assert_eq!(
        monitor["spec"]["podMetricsEndpoints"][0]["path"],
        "/metrics"
    );
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
}

#[test]
fn the_strategies_config_map_mounts_as_a_valid_strategies_folder() {
    let objects = render("deploy/kubernetes");
    let config_map = one(&objects, "ConfigMap");
    let deployment = one(&objects, "Deployment");
    let volume = deployment["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["configMap"]["name"] == config_map["metadata"]["name"])
        .expect("the ConfigMap is mounted");
    let folder = tempfile::tempdir().unwrap();
    let items = volume["configMap"]["items"].as_array().unwrap();
    let keys: BTreeSet<&str> = config_map["data"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mounted: BTreeSet<&str> = items.iter().map(|i| i["key"].as_str().unwrap()).collect();
    assert_eq!(keys, mounted, "every strategy in the ConfigMap is mounted");
    for item in items {
        let path = folder.path().join(item["path"].as_str().unwrap());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            config_map["data"][item["key"].as_str().unwrap()]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    }
    let loaded = canaryd::strategy_files::load_dir(folder.path());
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert_eq!(loaded.strategies.len(), items.len());
}

#[test]
fn the_cluster_role_grants_exactly_what_the_adapters_use() {
    let objects = render("deploy/kubernetes");
    let role = one(&objects, "ClusterRole");
    let mut granted = BTreeSet::new();
    for rule in role["rules"].as_array().unwrap() {
        for group in rule["apiGroups"].as_array().unwrap() {
            for resource in rule["resources"].as_array().unwrap() {
                for verb in rule["verbs"].as_array().unwrap() {
                    granted.insert((
                        group.as_str().unwrap(),
                        resource.as_str().unwrap(),
                        verb.as_str().unwrap(),
                    ));
                }
            }
        }
    }
    let used: BTreeSet<(&str, &str, &str)> = canaryd::adapters::kube::PERMISSIONS
        .iter()
        .flat_map(|(group, resource, verbs)| {
            verbs.iter().map(move |verb| (*group, *resource, *verb))
        })
        .collect();
    assert_eq!(granted, used);
    let binding = one(&objects, "ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(
        binding["subjects"][0],
        json!({"kind": "ServiceAccount", "name": "canaryd", "namespace": "canaryd"})
    );
}

#[test]
fn the_postgres_overlay_runs_several_replicas_without_a_volume() {
    let objects = render("deploy/kubernetes-postgres");
    let deployment = one(&objects, "Deployment");
    assert!(deployment["spec"]["replicas"].as_u64().unwrap() > 1);
    assert_eq!(deployment["spec"]["strategy"]["type"], "RollingUpdate");
    let url = env(deployment, "CANARYD_DATABASE_URL");
    assert_eq!(url["valueFrom"]["secretKeyRef"]["name"], "canaryd-postgres");
    assert!(url["value"].is_null(), "the SQLite URL is gone: {url}");
    assert!(objects.iter().all(|o| o["kind"] != "PersistentVolumeClaim"));
    let pod = &deployment["spec"]["template"]["spec"];
    assert!(
        pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["persistentVolumeClaim"].is_null())
    );
    let mounts: Vec<&str> = container(deployment)["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    assert_eq!(mounts, ["/etc/canaryd/strategies", "/etc/canaryd/auth"]);
}
