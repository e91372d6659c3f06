//! `{{variable}}` templates for PromQL queries and router fields.
//!
//! A template is parsed once, when a strategy is loaded, so an unknown variable or a
//! malformed placeholder is a load-time error; rendering then cannot fail on syntax.

use std::collections::BTreeMap;
use std::fmt;

/// Variables every analysis provides.
pub const BUILTIN_VARIABLES: &[&str] = &[
    "service",
    "environment",
    "track",
    "window",
    "namespace",
    "stepWindow",
];

/// Values for a template's placeholders, by variable name.
pub type Variables = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Variable(String),
}

/// A parsed `{{variable}}` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    segments: Vec<Segment>,
}

/// Why a template could not be parsed; `offset` is a byte offset into the source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    pub offset: usize,
    pub message: String,
}

impl Template {
    /// Parses `source`, accepting only the variables for which `is_known` answers true.
    pub fn parse(source: &str, is_known: impl Fn(&str) -> bool) -> Result<Self, TemplateError> {
        let mut segments = Vec::new();
        let mut rest = source;
        let mut consumed = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                segments.push(Segment::Literal(rest[..open].to_string()));
            }
            let after_open = &rest[open + 2..];
            let close = after_open.find("}}").ok_or_else(|| TemplateError {
                offset: consumed + open,
                message: "unclosed '{{' in template".to_string(),
            })?;
            let name = after_open[..close].trim();
            if !is_valid_name(name) {
                return Err(TemplateError {
                    offset: consumed + open,
                    message: format!("invalid variable name {name:?} in template"),
                });
            }
            if !is_known(name) {
                return Err(TemplateError {
                    offset: consumed + open,
                    message: format!("unknown template variable '{name}'"),
                });
            }
            segments.push(Segment::Variable(name.to_string()));
            let used = open + 2 + close + 2;
            consumed += used;
            rest = &rest[used..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Literal(rest.to_string()));
        }
        Ok(Self {
            source: source.to_string(),
            segments,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders the template; fails only when a variable has no value.
    pub fn render(&self, variables: &Variables) -> Result<String, MissingVariable> {
        let mut out = String::with_capacity(self.source.len());
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Variable(name) => {
                    let value = variables
                        .get(name)
                        .ok_or_else(|| MissingVariable(name.clone()))?;
                    out.push_str(value);
                }
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// A variable used by a template had no value when it was rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template variable '{0}' has no value")]
pub struct MissingVariable(pub String);

fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Formats a duration as a PromQL duration literal (`30s`, `1500ms`, `2m`).
pub fn promql_duration(duration: std::time::Duration) -> String {
    let millis = duration.as_millis();
    if !millis.is_multiple_of(1000) {
        format!("{millis}ms")
    } else if millis.is_multiple_of(60_000) && millis > 0 {
        format!("{}m", millis / 60_000)
    } else {
        format!("{}s", millis / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(name: &str) -> bool {
        BUILTIN_VARIABLES.contains(&name)
    }

    fn vars(pairs: &[(&str, &str)]) -> Variables {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn renders_every_placeholder_with_or_without_spaces() {
        let template = Template::parse(
            r#"rate(x{service="{{service}}",track="{{ track }}"}[{{window}}])"#,
            known,
        )
        .unwrap();
        let rendered = template
            .render(&vars(&[
                ("service", "checkout"),
                ("track", "canary"),
                ("window", "30s"),
            ]))
            .unwrap();
        assert_eq!(
            rendered,
            r#"rate(x{service="checkout",track="canary"}[30s])"#
        );
    }

    #[test]
    fn rejects_an_unknown_variable_with_its_offset() {
        let error = Template::parse("up{job=\"{{jbo}}\"}", known).unwrap_err();
        assert_eq!(error.offset, 8);
        assert_eq!(error.message, "unknown template variable 'jbo'");
    }

    #[test]
    fn rejects_an_unclosed_placeholder() {
        let error = Template::parse("up{job=\"{{service\"}", known).unwrap_err();
        assert_eq!(error.offset, 8);
        assert!(error.message.contains("unclosed"));
    }

    #[test]
    fn rendering_without_a_value_names_the_variable() {
        let template = Template::parse("{{namespace}}", known).unwrap();
        assert_eq!(
            template.render(&Variables::new()).unwrap_err(),
            MissingVariable("namespace".into())
        );
    }

    #[test]
    fn formats_durations_as_promql_literals() {
        use std::time::Duration;
        assert_eq!(promql_duration(Duration::from_secs(30)), "30s");
        assert_eq!(promql_duration(Duration::from_secs(120)), "2m");
        assert_eq!(promql_duration(Duration::from_secs(90)), "90s");
        assert_eq!(promql_duration(Duration::from_millis(1500)), "1500ms");
    }
}
