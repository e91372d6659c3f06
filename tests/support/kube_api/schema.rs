//! Validation of a written object against a CRD's OpenAPI v3 schema, as the API server
//! does for a structural schema: types, required fields, bounds, enums, lengths, the
//! `oneOf`/`anyOf`/`not` value rules, defaults applied where a field is absent, and
//! unknown fields refused (the server's `fieldValidation=Strict`). CEL rules
//! (`x-kubernetes-validations`) and string `pattern`s are not evaluated.

use serde_json::{Map, Value};

/// A field error, as the server lists it in a 422 Status's `details.causes`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub reason: &'static str,
    pub field: String,
    pub message: String,
}

/// Validates `value` (defaulting it in place) and returns every field error.
pub fn validate(schema: &Value, value: &mut Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    walk(schema, value, "", &mut errors);
    errors
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn invalid(errors: &mut Vec<FieldError>, path: &str, value: &Value, why: String) {
    errors.push(FieldError {
        reason: "FieldValueInvalid",
        field: path.to_string(),
        message: format!("Invalid value: {value}: {why}"),
    });
}

fn walk(schema: &Value, value: &mut Value, path: &str, errors: &mut Vec<FieldError>) {
    if value.is_null() && schema["nullable"] == true {
        return;
    }
    if schema["x-kubernetes-int-or-string"] == true {
        if !(value.is_i64() || value.is_u64() || value.is_string()) {
            invalid(errors, path, value, "must be an integer or a string".into());
        }
        return;
    }
    let kind = schema["type"].as_str().unwrap_or("");
    if !type_matches(kind, value) {
        let why = format!("{path} in body must be of type {kind}");
        return invalid(errors, path, value, why);
    }
    alternatives(schema, value, path, errors);
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        errors.push(FieldError {
            reason: "FieldValueNotSupported",
            field: path.to_string(),
            message: format!(
                "Unsupported value: {value}: supported values: {}",
                join(allowed)
            ),
        });
    }
    match value {
        Value::Object(fields) => object(schema, fields, path, errors),
        Value::Array(items) => array(schema, items, path, errors),
        Value::String(text) => bounds(
            schema,
            text.chars().count() as f64,
            "Length",
            path,
            &Value::String(text.clone()),
            errors,
        ),
        Value::Number(number) => {
            let n = number.as_f64().unwrap_or(f64::NAN);
            number_bounds(schema, n, path, &Value::Number(number.clone()), errors);
        }
        _ => {}
    }
}

fn type_matches(kind: &str, value: &Value) -> bool {
    match kind {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        _ => true,
    }
}

/// `oneOf` must match exactly one branch, `anyOf` at least one.
fn alternatives(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    for rule in ["oneOf", "anyOf"] {
        if let Some(branches) = schema[rule].as_array() {
            let matched = branches.iter().filter(|b| matches(b, value)).count();
            let ok = if rule == "oneOf" {
                matched == 1
            } else {
                matched >= 1
            };
            if !ok {
                let why =
                    format!("{path} in body must match {rule} of its schemas ({matched} matched)");
                invalid(errors, path, value, why);
            }
        }
    }
}

fn join(values: &[Value]) -> String {
    values
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn object(
    schema: &Value,
    fields: &mut Map<String, Value>,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    let properties = schema["properties"].as_object();
    defaults_and_required(schema, fields, path, errors);
    let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true;
    let additional = schema.get("additionalProperties");
    for (key, value) in fields.iter_mut() {
        let at = child(path, key);
        // ObjectMeta is validated by the server's own rules, not the CRD schema.
        if path.is_empty() && (key == "metadata" || key == "apiVersion" || key == "kind") {
            continue;
        }
        match (properties.and_then(|p| p.get(key)), additional) {
            (Some(property), _) => walk(property, value, &at, errors),
            (None, Some(Value::Object(_))) => walk(additional.unwrap(), value, &at, errors),
            (None, Some(Value::Bool(true))) => {}
            (None, _) if preserve => {}
            (None, _) => errors.push(FieldError {
                reason: "FieldValueTypeInvalid",
                field: at.clone(),
                message: format!("unknown field \"{at}\""),
            }),
        }
    }
    bounds(
        schema,
        fields.len() as f64,
        "Properties",
        path,
        &Value::Null,
        errors,
    );
}

/// Absent fields with a default get it; then required fields must be there.
fn defaults_and_required(
    schema: &Value,
    fields: &mut Map<String, Value>,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    if let Some(properties) = schema["properties"].as_object() {
        for (key, property) in properties {
            if !fields.contains_key(key)
                && let Some(default) = property.get("default")
            {
                fields.insert(key.clone(), default.clone());
            }
        }
    }
    for key in schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !fields.contains_key(key) {
            errors.push(FieldError {
                reason: "FieldValueRequired",
                field: child(path, key),
                message: "Required value".into(),
            });
        }
    }
}

fn array(schema: &Value, items: &mut [Value], path: &str, errors: &mut Vec<FieldError>) {
    if let Some(item) = schema.get("items") {
        for (index, value) in items.iter_mut().enumerate() {
            walk(item, value, &format!("{path}[{index}]"), errors);
        }
    }
    bounds(
        schema,
        items.len() as f64,
        "Items",
        path,
        &Value::Null,
        errors,
    );
}

/// `minLength`/`maxLength`, `minItems`/`maxItems`, `minProperties`/`maxProperties`.
fn bounds(
    schema: &Value,
    n: f64,
    what: &str,
    path: &str,
    value: &Value,
    errors: &mut Vec<FieldError>,
) {
    let (min, max) = (format!("min{what}"), format!("max{what}"));
    let noun = match what {
        "Length" => "characters",
        "Items" => "items",
        _ => "properties",
    };
    if let Some(limit) = schema[&min].as_f64().filter(|limit| n < *limit) {
        let why = format!("{path} in body should have at least {limit} {noun}");
        invalid(errors, path, value, why);
    }
    if let Some(limit) = schema[&max].as_f64().filter(|limit| n > *limit) {
        let why = format!("{path} in body should have at most {limit} {noun}");
        invalid(errors, path, value, why);
    }
}

fn number_bounds(schema: &Value, n: f64, path: &str, value: &Value, errors: &mut Vec<FieldError>) {
    if let Some(min) = schema["minimum"].as_f64().filter(|min| n < *min) {
        invalid(
            errors,
            path,
            value,
            format!("{path} in body should be greater than or equal to {min}"),
        );
    }
    if let Some(max) = schema["maximum"].as_f64().filter(|max| n > *max) {
        invalid(
            errors,
            path,
            value,
            format!("{path} in body should be less than or equal to {max}"),
        );
    }
}

/// Whether `value` satisfies a value-validation branch: `required`, `not`, nested
/// `anyOf`/`oneOf`/`allOf` and `properties`, as CRD schemas use them for exclusive fields.
fn matches(schema: &Value, value: &Value) -> bool {
    if let Some(required) = schema["required"].as_array() {
        let fields = value.as_object();
        let present = |k: &Value| {
            k.as_str()
                .is_some_and(|k| fields.is_some_and(|f| f.contains_key(k)))
        };
        if !required.iter().all(present) {
            return false;
        }
    }
    if let Some(not) = schema.get("not")
        && matches(not, value)
    {
        return false;
    }
    if let Some(any) = schema["anyOf"].as_array()
        && !any.iter().any(|b| matches(b, value))
    {
        return false;
    }
    if let Some(one) = schema["oneOf"].as_array()
        && one.iter().filter(|b| matches(b, value)).count() != 1
    {
        return false;
    }
    if let Some(all) = schema["allOf"].as_array()
        && !all.iter().all(|b| matches(b, value))
    {
        return false;
    }
    if let (Some(properties), Some(fields)) = (schema["properties"].as_object(), value.as_object())
    {
        for (key, property) in properties {
            if let Some(field) = fields.get(key)
                && !matches(property, field)
            {
                return false;
            }
        }
    }
    true
}
