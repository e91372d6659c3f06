//! Deployments made elsewhere: what a CD pipeline reports when it has changed an
//! environment without canaryd (a plain rollout, a hotfix, another tool's canary). They
//! sit beside canaryd's own analyses in the history, so that history shows every change.

use serde::{Deserialize, Serialize};

use super::Timestamp;
use super::analysis::Status;

/// The statuses a pipeline reports (seed 001): not yet complete, active, failed during
/// rollout, rolled back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentStatus {
    Pending,
    Deployed,
    Failed,
    RolledBack,
}

impl DeploymentStatus {
    pub const ALL: [DeploymentStatus; 4] = [
        DeploymentStatus::Pending,
        DeploymentStatus::Deployed,
        DeploymentStatus::Failed,
        DeploymentStatus::RolledBack,
    ];

    pub fn as_str(self) -> &'static str {
        self.as_status().as_str()
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// The analysis status of the same name, so both kinds of record read alike.
    pub fn as_status(self) -> Status {
        match self {
            DeploymentStatus::Pending => Status::Pending,
            DeploymentStatus::Deployed => Status::Deployed,
            DeploymentStatus::Failed => Status::Failed,
            DeploymentStatus::RolledBack => Status::RolledBack,
        }
    }
}

/// One deployment as its pipeline reported it, with who reported it and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedDeployment {
    pub id: String,
    /// The team whose strategy names the service.
    pub team: String,
    pub service: String,
    pub environment: String,
    pub image_tag: String,
    pub git_commit: Option<String>,
    pub git_branch: Option<String>,
    pub status: DeploymentStatus,
    pub deployed_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    /// The token that recorded it (`anonymous` without an auth file).
    pub actor: String,
    pub recorded_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_as_the_seed_and_the_analyses_write_them() {
        for status in DeploymentStatus::ALL {
            assert_eq!(DeploymentStatus::parse(status.as_str()), Some(status));
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        assert_eq!(DeploymentStatus::RolledBack.as_str(), "ROLLED_BACK");
        for refused in ["CANCELLED", "RUNNING", "deployed", ""] {
            assert_eq!(DeploymentStatus::parse(refused), None, "{refused}");
        }
    }
}
