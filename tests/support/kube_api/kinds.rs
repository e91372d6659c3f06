//! The kinds the server serves, built in or from a CRD file, and the server's rules for
//! stored objects: validation, the metadata it owns, `generation`, merge patches.

use serde_json::{Value, json};

use super::{fixture, schema};

type TypedCheck = fn(&Value) -> Result<(), String>;

/// A kind the server serves: built in, or from a CRD.
#[derive(Clone)]
pub(super) struct Kind {
    pub(super) group: String,
    pub(super) plural: String,
    pub(super) kind: String,
    pub(super) namespaced: bool,
    /// Served versions, each with its schema (`None` for built-ins).
    pub(super) versions: Vec<(String, Option<Value>)>,
    /// Checks a built-in object against its k8s-openapi type.
    pub(super) typed: Option<TypedCheck>,
}

fn typed<T: serde::de::DeserializeOwned + serde::Serialize>(value: &Value) -> Result<(), String> {
    let object: T = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    // Round trip: a field the type does not know would be lost, so it is refused.
    let back = serde_json::to_value(&object).map_err(|e| e.to_string())?;
    match unknown_field(value, &back, "") {
        Some(field) => Err(format!("unknown field {field:?}")),
        None => Ok(()),
    }
}

/// The first field of `sent` that did not survive the round trip to `back`.
fn unknown_field(sent: &Value, back: &Value, path: &str) -> Option<String> {
    match (sent, back) {
        (Value::Object(sent), Value::Object(back)) => sent.iter().find_map(|(key, value)| {
            let at = format!("{path}.{key}");
            match back.get(key) {
                None if !value.is_null() => Some(at.trim_start_matches('.').to_string()),
                None => None,
                Some(back) => unknown_field(value, back, &at),
            }
        }),
        (Value::Array(sent), Value::Array(back)) => sent
            .iter()
            .zip(back)
            .enumerate()
            .find_map(|(i, (s, b))| unknown_field(s, b, &format!("{path}[{i}]"))),
        _ => None,
    }
}

pub(super) fn built_ins() -> Vec<Kind> {
    use k8s_openapi::api::{
        apps::v1::Deployment,
        core::v1::{Pod, Service},
        networking::v1::Ingress,
    };
    let kind = |group: &str, version: &str, plural: &str, kind: &str, check| Kind {
        group: group.into(),
        plural: plural.into(),
        kind: kind.into(),
        namespaced: true,
        versions: vec![(version.into(), None)],
        typed: Some(check),
    };
    vec![
        kind(
            "networking.k8s.io",
            "v1",
            "ingresses",
            "Ingress",
            typed::<Ingress>,
        ),
        kind(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            typed::<Deployment>,
        ),
        kind("", "v1", "services", "Service", typed::<Service>),
        kind("", "v1", "pods", "Pod", typed::<Pod>),
    ]
}

/// A CRD file's kind, with the schema of every served version.
pub(super) fn crd_kind(file: &str) -> Kind {
    let text = std::fs::read_to_string(fixture(file)).unwrap();
    let crd: Value = serde_saphyr::from_str(&text).unwrap();
    let spec = &crd["spec"];
    let versions = spec["versions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["served"] == true)
        .map(|v| {
            let name = v["name"].as_str().unwrap().to_string();
            (name, Some(v["schema"]["openAPIV3Schema"].clone()))
        })
        .collect();
    Kind {
        group: spec["group"].as_str().unwrap().into(),
        plural: spec["names"]["plural"].as_str().unwrap().into(),
        kind: spec["names"]["kind"].as_str().unwrap().into(),
        namespaced: spec["scope"] == "Namespaced",
        versions,
        typed: None,
    }
}

pub(super) fn split_api_version(api_version: &str) -> (String, String) {
    match api_version.split_once('/') {
        Some((group, version)) => (group.to_string(), version.to_string()),
        None => (String::new(), api_version.to_string()),
    }
}

pub(super) fn key_of(kind: &Kind, object: &Value) -> (String, String, String, String) {
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default");
    let name = object["metadata"]["name"].as_str().unwrap();
    (
        kind.group.clone(),
        kind.plural.clone(),
        namespace.to_string(),
        name.to_string(),
    )
}

/// Validates against the kind's schema (storage version first) or its typed form.
pub(super) fn check(kind: &Kind, object: &mut Value) -> Result<(), Vec<schema::FieldError>> {
    if let Some(typed) = kind.typed {
        return typed(object).map_err(|why| {
            vec![schema::FieldError {
                reason: "FieldValueInvalid",
                field: String::new(),
                message: why,
            }]
        });
    }
    let version = object["apiVersion"]
        .as_str()
        .map(split_api_version)
        .map(|(_, v)| v);
    let schema = kind
        .versions
        .iter()
        .find(|(name, _)| Some(name) == version.as_ref())
        .or(kind.versions.first())
        .and_then(|(_, schema)| schema.clone())
        .unwrap_or(Value::Null);
    let errors = schema::validate(&schema, object);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The server's part of a write: metadata it owns, and `generation` raised when
/// anything that counts changed (for a custom resource anything outside metadata; for
/// built-ins the spec, or a Deployment's annotations).
pub(super) fn stamp(object: &mut Value, before: Option<&Value>, version: u64, custom: bool) {
    let generation = match before {
        None => 1,
        Some(before) => {
            let old = before["metadata"]["generation"].as_i64().unwrap_or(1);
            let changed = if custom {
                strip_metadata(before) != strip_metadata(object)
            } else {
                before["spec"] != object["spec"]
                    || (object["kind"] == "Deployment"
                        && before["metadata"]["annotations"] != object["metadata"]["annotations"])
            };
            old + i64::from(changed)
        }
    };
    let metadata = object["metadata"].as_object_mut().unwrap();
    metadata.insert("resourceVersion".into(), json!(version.to_string()));
    metadata.insert("generation".into(), json!(generation));
    metadata.entry("namespace").or_insert(json!("default"));
    let uid = before
        .and_then(|b| b["metadata"]["uid"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("00000000-0000-4000-8000-{version:012}"));
    metadata.insert("uid".into(), json!(uid));
    if let Some(status) = before.map(|b| b["status"].clone()).filter(|s| !s.is_null()) {
        // Writes to the main resource keep the stored status.
        object["status"] = status;
    }
}

fn strip_metadata(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(fields) = copy.as_object_mut() {
        fields.remove("metadata");
        fields.remove("status");
    }
    copy
}

/// RFC 7386.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let fields = target.as_object_mut().unwrap();
    for (key, value) in patch {
        if value.is_null() {
            fields.remove(key);
        } else {
            merge_patch(fields.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}
