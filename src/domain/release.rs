//! Emergency releases: rolling a scope back to a known-good release, or forward to a
//! newer one, and the block that then holds automatic promotions in that scope until
//! someone lifts it.

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// Where releases go: one strategy's service in one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scope {
    /// `<team>/<name>`
    pub strategy: String,
    pub service: String,
    pub environment: String,
}

/// A hold on a scope, set by an emergency rollback or roll forward: new analyses there
/// wait in PENDING until it is lifted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Block {
    pub id: String,
    pub team: String,
    #[serde(flatten)]
    pub scope: Scope,
    /// `rollback` or `rollforward`.
    pub cause: String,
    /// The image the scope was sent to.
    pub image_tag: String,
    pub reason: String,
    pub actor: String,
    pub created_at: Timestamp,
}

impl Block {
    /// The PENDING reason of an analysis this block holds.
    pub fn holding(&self) -> String {
        format!(
            "blocked after emergency {} to {} (block {}: {}); lift it with DELETE /api/v1/blocks/{}",
            self.cause, self.image_tag, self.id, self.reason, self.id
        )
    }
}

/// One release the scope has seen, from an analysis or a recorded deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub id: String,
    pub image_tag: String,
    /// DEPLOYED, FAILED, ROLLED_BACK, CANCELLED or PENDING, as the history shows it.
    pub status: String,
    /// When it settled (or began, while pending); newest wins.
    pub at: Timestamp,
}

/// Why a release cannot be the target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetRefused {
    /// The image ran in the scope but never reached DEPLOYED there.
    #[error(
        "{image} is not a known-good release in {environment}: it ended {status} (release {id})"
    )]
    NotGood {
        image: String,
        environment: String,
        status: String,
        id: String,
    },
    #[error("{image} was never deployed in {environment}")]
    Unknown { image: String, environment: String },
    #[error("{environment} already runs {image}")]
    AlreadyRunning { image: String, environment: String },
    #[error("{environment} has no DEPLOYED release before {current} to roll back to")]
    NoEarlier {
        current: String,
        environment: String,
    },
}

/// The release to send the scope to: `to` when given (it must have been DEPLOYED
/// there, and not be what runs now), else the newest DEPLOYED release with another
/// image than the current one.
pub fn target<'a>(
    seen: &'a [Seen],
    to: Option<&str>,
    environment: &str,
) -> Result<&'a Seen, TargetRefused> {
    let mut deployed: Vec<&Seen> = seen.iter().filter(|s| s.status == "DEPLOYED").collect();
    deployed.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.id.cmp(&a.id)));
    let current = deployed.first().map(|s| s.image_tag.as_str());
    let Some(to) = to else {
        let current = current.unwrap_or("(nothing)");
        return deployed
            .into_iter()
            .find(|s| s.image_tag != current)
            .ok_or_else(|| TargetRefused::NoEarlier {
                current: current.to_string(),
                environment: environment.to_string(),
            });
    };
    if current == Some(to) {
        return Err(TargetRefused::AlreadyRunning {
            image: to.to_string(),
            environment: environment.to_string(),
        });
    }
    if let Some(good) = deployed.into_iter().find(|s| s.image_tag == to) {
        return Ok(good);
    }
    let newest_bad = seen
        .iter()
        .filter(|s| s.image_tag == to)
        .max_by(|a, b| a.at.cmp(&b.at));
    Err(match newest_bad {
        Some(bad) => TargetRefused::NotGood {
            image: to.to_string(),
            environment: environment.to_string(),
            status: bad.status.clone(),
            id: bad.id.clone(),
        },
        None => TargetRefused::Unknown {
            image: to.to_string(),
            environment: environment.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(id: &str, tag: &str, status: &str, minute: i64) -> Seen {
        let at = "2026-02-12T10:00:00Z".parse::<Timestamp>().unwrap()
            + chrono::TimeDelta::minutes(minute);
        Seen {
            id: id.into(),
            image_tag: tag.into(),
            status: status.into(),
            at,
        }
    }

    fn history() -> Vec<Seen> {
        vec![
            seen("a", "v1", "DEPLOYED", 0),
            seen("b", "v2", "DEPLOYED", 10),
            seen("c", "v3", "ROLLED_BACK", 20),
            seen("d", "v4", "FAILED", 30),
            seen("e", "v5", "DEPLOYED", 40),
        ]
    }

    #[test]
    fn without_a_target_the_newest_other_deployed_release_is_chosen() {
        assert_eq!(target(&history(), None, "prod").unwrap().id, "b");
        let only = [
            seen("a", "v1", "DEPLOYED", 0),
            seen("x", "v1", "DEPLOYED", 5),
        ];
        let refused = target(&only, None, "prod").unwrap_err();
        assert_eq!(
            refused.to_string(),
            "prod has no DEPLOYED release before v1 to roll back to"
        );
    }

    #[test]
    fn a_named_target_must_have_been_deployed_there() {
        assert_eq!(target(&history(), Some("v1"), "prod").unwrap().id, "a");
        let refused = target(&history(), Some("v3"), "prod").unwrap_err();
        assert_eq!(
            refused.to_string(),
            "v3 is not a known-good release in prod: it ended ROLLED_BACK (release c)"
        );
        let failed = target(&history(), Some("v4"), "prod").unwrap_err();
        assert!(matches!(failed, TargetRefused::NotGood { ref status, .. } if status == "FAILED"));
        assert!(matches!(
            target(&history(), Some("v9"), "prod"),
            Err(TargetRefused::Unknown { .. })
        ));
        assert!(matches!(
            target(&history(), Some("v5"), "prod"),
            Err(TargetRefused::AlreadyRunning { .. })
        ));
    }

    #[test]
    fn an_image_deployed_once_and_failed_later_is_still_known_good() {
        let mut seen_list = history();
        seen_list.push(seen("f", "v1", "FAILED", 50));
        assert_eq!(target(&seen_list, Some("v1"), "prod").unwrap().id, "a");
    }
}
