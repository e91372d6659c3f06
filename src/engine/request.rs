//! A CI request to start an analysis, and the rules it must meet before anything is
//! rendered into a PromQL query or a router command.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::Timestamp;
use crate::domain::analysis::{AnalysisState, Plan};
use crate::domain::record::{Analysis, RouteTarget};
use crate::domain::strategy::Strategy;
use crate::domain::template::Variables;
use crate::domain::workload::WorkloadTarget;

/// The webhook body (DESIGN §4).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartRequest {
    /// `<team>/<name>`
    pub strategy: String,
    pub service: Option<String>,
    pub environment: String,
    pub image_tag: Option<String>,
    pub git_commit: Option<String>,
    pub git_branch: Option<String>,
    pub triggered_by: Option<String>,
    /// Absent or `null`: none.
    #[serde(default, deserialize_with = "null_is_none")]
    pub variables: BTreeMap<String, String>,
}

/// A request that cannot start an analysis, naming the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidRequest {
    pub field: String,
    pub message: String,
}

fn invalid(field: &str, message: impl Into<String>) -> InvalidRequest {
    InvalidRequest {
        field: field.to_string(),
        message: message.into(),
    }
}

/// A map that may be given as `null`, as any other optional field may.
pub fn null_is_none<'de, D>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let value: Option<BTreeMap<String, String>> = serde::Deserialize::deserialize(deserializer)?;
    Ok(value.unwrap_or_default())
}

/// Characters allowed in values that end up inside PromQL strings and router names.
pub fn safe_value(value: &str, max_len: usize) -> bool {
    !value.is_empty()
        && value.len() <= max_len
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/@+ ".contains(c))
        && !value.starts_with(' ')
}

/// Letters, digits, '-', '_' or '.': a service or environment name.
pub fn name_like(value: &str, max_len: usize) -> bool {
    !value.is_empty()
        && value.len() <= max_len
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// A git commit id: 4 to 64 hexadecimal digits.
pub fn is_commit(commit: &str) -> bool {
    (4..=64).contains(&commit.len()) && commit.chars().all(|c| c.is_ascii_hexdigit())
}

/// `<semver>-<short-sha>`, e.g. `1.2.3-de54b1c`, `v2.1.0-abc1234` or `1.2.3-rc.1-de54b1c`.
pub fn is_semver_sha(tag: &str) -> bool {
    let tag = tag.strip_prefix('v').unwrap_or(tag);
    let Some((version, sha)) = tag.rsplit_once('-') else {
        return false;
    };
    let sha_ok = (7..=40).contains(&sha.len())
        && sha
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
    let (core, prerelease) = match version.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (version, None),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    let core_ok = numbers.len() == 3
        && numbers.iter().all(|n| {
            !n.is_empty()
                && n.chars().all(|c| c.is_ascii_digit())
                && (n.len() == 1 || !n.starts_with('0'))
        });
    let pre_ok = prerelease.is_none_or(|p| {
        p.split('.').all(|part| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
    });
    sha_ok && core_ok && pre_ok
}

impl StartRequest {
    /// A digest of the request, to tell a retry from a different request under one key.
    pub fn digest(&self) -> String {
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        to_hex(&Sha256::digest(canonical))
    }

    /// The template values the request gives the strategy's queries (service,
    /// environment, namespace and declared variables), every one checked as safe to
    /// render into PromQL. A judgement or a preflight needs no more than this.
    pub fn template_variables(&self, strategy: &Strategy) -> Result<Variables, InvalidRequest> {
        if !name_like(&self.environment, 63) {
            return Err(invalid(
                "environment",
                "required: letters, digits, '-', '_' or '.', at most 63",
            ));
        }
        let service = self
            .service
            .clone()
            .unwrap_or_else(|| strategy.service.clone());
        if !name_like(&service, 128) {
            return Err(invalid(
                "service",
                "letters, digits, '-', '_' or '.', at most 128",
            ));
        }
        self.variables(strategy, &service)
    }

    /// Checks the request against the strategy and builds the PENDING analysis.
    pub fn into_analysis(
        self,
        strategy: &Strategy,
        id: String,
        now: Timestamp,
    ) -> Result<Analysis, InvalidRequest> {
        let variables = self.template_variables(strategy)?;
        let service = variables.get("service").cloned().unwrap_or_default();
        self.check_provenance(strategy)?;
        let route = RouteTarget::render(&strategy.router, &variables)
            .map_err(|missing| invalid("variables", missing.to_string()))?;
        let workload = match &strategy.workload {
            Some(_) if self.image_tag.is_none() => {
                return Err(invalid(
                    "imageTag",
                    format!(
                        "strategy {} deploys the canary itself and needs the image tag to run",
                        strategy.id
                    ),
                ));
            }
            Some(spec) => Some(
                WorkloadTarget::render(spec, &route, &variables)
                    .map_err(|missing| invalid("variables", missing.to_string()))?,
            ),
            None => None,
        };
        Ok(Analysis {
            id,
            strategy: strategy.id.clone(),
            service,
            environment: self.environment,
            image_tag: self.image_tag,
            git_commit: self.git_commit,
            git_branch: self.git_branch,
            triggered_by: self.triggered_by,
            variables,
            route,
            workload,
            created_at: now,
            state: AnalysisState::new(Plan::from_strategy(strategy), now),
        })
    }

    fn check_provenance(&self, strategy: &Strategy) -> Result<(), InvalidRequest> {
        match &self.image_tag {
            Some(tag) if strategy.require_semver_sha_tag && !is_semver_sha(tag) => {
                return Err(invalid(
                    "imageTag",
                    format!(
                        "'{tag}' does not match the strategy's rule <semver>-<short-sha> (e.g. 1.2.3-de54b1c)"
                    ),
                ));
            }
            None if strategy.require_semver_sha_tag => {
                return Err(invalid(
                    "imageTag",
                    "required by the strategy's rule <semver>-<short-sha>",
                ));
            }
            Some(tag) if !name_like(tag, 128) => {
                return Err(invalid(
                    "imageTag",
                    "letters, digits, '-', '_' or '.', at most 128",
                ));
            }
            _ => {}
        }
        if self.git_commit.as_deref().is_some_and(|c| !is_commit(c)) {
            return Err(invalid("gitCommit", "a hexadecimal commit id"));
        }
        if self
            .git_branch
            .as_ref()
            .is_some_and(|b| !safe_value(b, 255))
        {
            return Err(invalid(
                "gitBranch",
                "at most 255 characters of letters, digits and -_.:/@+",
            ));
        }
        if self
            .triggered_by
            .as_ref()
            .is_some_and(|t| !safe_value(t, 255))
        {
            return Err(invalid(
                "triggeredBy",
                "at most 255 characters of letters, digits and -_.:/@+",
            ));
        }
        Ok(())
    }

    fn variables(&self, strategy: &Strategy, service: &str) -> Result<Variables, InvalidRequest> {
        let mut values = Variables::new();
        for (name, value) in &self.variables {
            if !strategy.variables.contains_key(name) {
                let declared: Vec<_> = strategy.variables.keys().map(String::as_str).collect();
                return Err(invalid(
                    &format!("variables.{name}"),
                    format!(
                        "not declared by strategy {} (declared: {})",
                        strategy.id,
                        declared.join(", ")
                    ),
                ));
            }
            if !safe_value(value, 256) {
                return Err(invalid(
                    &format!("variables.{name}"),
                    "at most 256 characters of letters, digits and -_.:/@+",
                ));
            }
            values.insert(name.clone(), value.clone());
        }
        for (name, default) in &strategy.variables {
            if !values.contains_key(name) {
                let value = default.clone().ok_or_else(|| {
                    invalid(&format!("variables.{name}"), "required by the strategy")
                })?;
                values.insert(name.clone(), value);
            }
        }
        values.insert("service".into(), service.to_string());
        values.insert("environment".into(), self.environment.clone());
        values.insert("namespace".into(), strategy.namespace.clone());
        Ok(values)
    }
}

/// Lower-case hex of bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_sha_tags() {
        for good in [
            "1.2.3-de54b1c",
            "0.10.0-0123456789abcdef",
            "1.2.3-rc.1-de54b1c",
        ] {
            assert!(is_semver_sha(good), "{good}");
        }
        for bad in [
            "1.2.3",
            "latest",
            "1.2-de54b1c",
            "1.2.3-DE54B1C",
            "01.2.3-de54b1c",
            "1.2.3-de54",
            "V1.2.3-de54b1c",
        ] {
            assert!(!is_semver_sha(bad), "{bad}");
        }
    }
}
