//! The Deployment controller, emulated: each Deployment's pods follow its template, and
//! its `status` follows its pods over time, as the real controller and kubelet report
//! them. The image decides a pod's fate: ready after a moment (the default), stuck in
//! `CrashLoopBackOff`, or stuck in `ImagePullBackOff`. A rollout not available within
//! `progressDeadlineSeconds` gets `Progressing=False/ProgressDeadlineExceeded`.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::State;

/// What happens to a pod running an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Ready,
    CrashLoop,
    ImagePull,
}

/// A rollout the controller is working on: the template it rolls out and since when.
pub(super) struct Rollout {
    generation: i64,
    started: Instant,
}

/// How long pods take to become ready.
pub const READY_AFTER: Duration = Duration::from_millis(400);

pub(super) fn spawn(state: Arc<Mutex<State>>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let mut state = state.lock().unwrap();
            reconcile(&mut state);
        }
    });
}

type Key = (String, String, String, String);

fn reconcile(state: &mut State) {
    let deployments: Vec<Key> = state
        .objects
        .keys()
        .filter(|(group, plural, _, _)| group == "apps" && plural == "deployments")
        .cloned()
        .collect();
    for key in deployments {
        reconcile_one(state, &key);
    }
}

fn template_hash(template: &Value) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    template.to_string().hash(&mut hasher);
    format!("{:x}", hasher.finish())[..10].to_string()
}

fn reconcile_one(state: &mut State, key: &Key) {
    let deployment = state.objects[key].clone();
    let generation = deployment["metadata"]["generation"].as_i64().unwrap_or(1);
    let now = Instant::now();
    let rollout = state.rollouts.entry(key.clone()).or_insert(Rollout {
        generation: 0,
        started: now,
    });
    if rollout.generation != generation {
        *rollout = Rollout {
            generation,
            started: now,
        };
    }
    let elapsed = now.duration_since(rollout.started);
    let replicas = deployment["spec"]["replicas"].as_i64().unwrap_or(1).max(0);
    let ready = run_pods(state, key, &deployment, replicas, elapsed);
    let deadline = deployment["spec"]["progressDeadlineSeconds"]
        .as_u64()
        .unwrap_or(600);
    let status = status(
        generation,
        replicas,
        ready,
        elapsed > Duration::from_secs(deadline),
    );
    if deployment["status"] != status {
        state.resource_version += 1;
        let version = state.resource_version.to_string();
        let stored = state.objects.get_mut(key).unwrap();
        stored["status"] = status;
        stored["metadata"]["resourceVersion"] = json!(version);
    }
}

/// Makes the Deployment's pods follow its template; returns how many are ready.
fn run_pods(
    state: &mut State,
    key: &Key,
    deployment: &Value,
    replicas: i64,
    elapsed: Duration,
) -> i64 {
    let (namespace, name) = (&key.2, &key.3);
    let hash = template_hash(&deployment["spec"]["template"]);
    // Pods of an older template, or beyond the replica count, go at once.
    for (pod_key, pod) in pods_of(state, namespace, name) {
        let index = pod["metadata"]["name"]
            .as_str()
            .unwrap()
            .rsplit('-')
            .next()
            .unwrap()
            .parse::<i64>()
            .unwrap_or(0);
        if pod["metadata"]["labels"]["pod-template-hash"] != json!(hash) || index >= replicas {
            state.objects.remove(&pod_key);
        }
    }
    let mut ready = 0;
    for index in 0..replicas {
        let mut pod = pod(deployment, &hash, index, &state.fates, elapsed);
        if pod["status"]["conditions"][0]["status"] == "True" {
            ready += 1;
        }
        let pod_name = pod["metadata"]["name"].as_str().unwrap().to_string();
        let pod_key = (
            String::new(),
            "pods".to_string(),
            namespace.clone(),
            pod_name,
        );
        if state.objects.get(&pod_key).map(|p| &p["status"]) != Some(&pod["status"]) {
            state.resource_version += 1;
            pod["metadata"]["resourceVersion"] = json!(state.resource_version.to_string());
            state.objects.insert(pod_key, pod);
        }
    }
    ready
}

fn pods_of(state: &State, namespace: &str, deployment: &str) -> Vec<(Key, Value)> {
    state
        .objects
        .iter()
        .filter(|((g, p, ns, _), pod)| {
            g.is_empty()
                && p == "pods"
                && ns == namespace
                && pod["metadata"]["ownerReferences"][0]["name"]
                    .as_str()
                    .is_some_and(|rs| rs.starts_with(&format!("{deployment}-")))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn pod(
    deployment: &Value,
    hash: &str,
    index: i64,
    fates: &BTreeMap<String, Fate>,
    elapsed: Duration,
) -> Value {
    let name = deployment["metadata"]["name"].as_str().unwrap();
    let template = &deployment["spec"]["template"];
    let mut labels = template["metadata"]["labels"].clone();
    labels["pod-template-hash"] = json!(hash);
    let started = elapsed >= READY_AFTER;
    let restarts = (elapsed.as_millis() / READY_AFTER.as_millis()) as i64;
    let containers = template["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let pod_name = format!("{name}-{hash}-{index}");
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| container_status(c, &pod_name, fates, started, restarts))
        .collect();
    let all_ready = statuses.iter().all(|s| s["ready"] == true);
    let pulling = statuses
        .iter()
        .any(|s| s["state"]["waiting"]["reason"] == "ImagePullBackOff");
    let phase = if pulling || !started {
        "Pending"
    } else {
        "Running"
    };
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": pod_name,
            "namespace": deployment["metadata"]["namespace"],
            "labels": labels,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{name}-{hash}"),
                                 "uid": "00000000-0000-4000-8000-000000000001", "controller": true}],
        },
        "spec": template["spec"],
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": if all_ready { "True" } else { "False" },
                            "reason": if all_ready { Value::Null } else { json!("ContainersNotReady") }}],
            "containerStatuses": statuses,
        },
    })
}

/// A container's status: its image's fate, once it had time to start.
fn container_status(
    container: &Value,
    pod: &str,
    fates: &BTreeMap<String, Fate>,
    started: bool,
    restarts: i64,
) -> Value {
    let fate = container["image"]
        .as_str()
        .and_then(|image| fates.get(image))
        .copied()
        .unwrap_or(Fate::Ready);
    let (ready, state) = match (fate, started) {
        (_, false) => (false, json!({"waiting": {"reason": "ContainerCreating"}})),
        (Fate::Ready, true) => (
            true,
            json!({"running": {"startedAt": "2026-12-01T00:00:00Z"}}),
        ),
        (Fate::CrashLoop, true) => (
            false,
            json!({"waiting": {
            "reason": "CrashLoopBackOff",
            "message": format!("back-off 10s restarting failed container={} pod={pod}", container["name"].as_str().unwrap_or(""))}}),
        ),
        (Fate::ImagePull, true) => (
            false,
            json!({"waiting": {
            "reason": "ImagePullBackOff",
            "message": format!("Back-off pulling image {:?}", container["image"].as_str().unwrap_or(""))}}),
        ),
    };
    let restarts = if fate == Fate::CrashLoop { restarts } else { 0 };
    json!({"name": container["name"], "image": container["image"], "imageID": "", "ready": ready,
           "restartCount": restarts, "state": state})
}

fn status(generation: i64, replicas: i64, ready: i64, deadline_passed: bool) -> Value {
    let available = ready == replicas;
    let progressing = if available {
        json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": "ReplicaSet has successfully progressed."})
    } else if deadline_passed {
        json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet has timed out progressing."})
    } else {
        json!({"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated", "message": "ReplicaSet is progressing."})
    };
    let available_condition = if available {
        json!({"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."})
    } else {
        json!({"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability."})
    };
    let mut status = json!({
        "observedGeneration": generation,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "conditions": [available_condition, progressing],
    });
    if replicas > ready {
        status["unavailableReplicas"] = json!(replicas - ready);
    }
    status
}

/// Pods for `image` meet `fate`.
pub(super) fn set_fate(fates: &mut BTreeMap<String, Fate>, image: &str, fate: Fate) {
    fates.insert(image.to_string(), fate);
}
