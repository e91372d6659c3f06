//! Deployment groups: one release to several scopes at once. Each member is an analysis
//! of its own, with its own route; the group adds a status over all of them and the
//! rules for cancelling or rolling back the whole group.

use serde::{Deserialize, Serialize};

use super::Timestamp;
use super::analysis::Status;

/// A stored group: who started which analyses, in the order the request listed them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentGroup {
    pub id: String,
    pub name: Option<String>,
    pub image_tag: String,
    pub git_commit: Option<String>,
    pub actor: String,
    pub created_at: Timestamp,
    pub members: Vec<GroupMember>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMember {
    pub analysis_id: String,
    /// The team of the member's strategy: every check of a caller is made per member.
    pub team: String,
}

/// Where a group stands, from its members' statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GroupStatus {
    /// At least one member is still PENDING, RUNNING or PAUSED.
    Running,
    /// The last members are PROMOTING or ROLLING_BACK; every other one is terminal.
    Finalizing,
    /// Every member is terminal.
    Finalized,
}

impl GroupStatus {
    pub fn of(statuses: &[Status]) -> GroupStatus {
        if statuses.iter().all(|s| s.is_terminal()) {
            GroupStatus::Finalized
        } else if statuses
            .iter()
            .all(|s| s.is_terminal() || matches!(s, Status::Promoting | Status::RollingBack))
        {
            GroupStatus::Finalizing
        } else {
            GroupStatus::Running
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GroupStatus::Running => "RUNNING",
            GroupStatus::Finalizing => "FINALIZING",
            GroupStatus::Finalized => "FINALIZED",
        }
    }
}

/// Why a group may not be cancelled: only while every member is still RUNNING.
/// `members` pairs each analysis id with its status.
pub fn cancel_refusal(members: &[(&str, Status)]) -> Option<String> {
    let left: Vec<String> = members
        .iter()
        .filter(|(_, status)| *status != Status::Running)
        .map(|(id, status)| format!("{id} is {}", status.as_str()))
        .collect();
    (!left.is_empty()).then(|| {
        format!(
            "a group can be cancelled only while every member is RUNNING: {}; roll the group back instead",
            left.join(", ")
        )
    })
}

/// Why a group may not be rolled back: never while it is FINALIZING, when its last
/// members are already promoting or rolling back.
pub fn rollback_refusal(members: &[(&str, Status)]) -> Option<String> {
    let statuses: Vec<Status> = members.iter().map(|(_, status)| *status).collect();
    (GroupStatus::of(&statuses) == GroupStatus::Finalizing).then(|| {
        let finishing: Vec<String> = members
            .iter()
            .filter(|(_, status)| !status.is_terminal())
            .map(|(id, status)| format!("{id} is {}", status.as_str()))
            .collect();
        format!(
            "the group is FINALIZING ({}): its verdict is being carried out and can no longer be rolled back as a group",
            finishing.join(", ")
        )
    })
}

/// What rolling a group back does to one member: PENDING ones never shifted traffic
/// and are cancelled; RUNNING, PAUSED and PROMOTING ones roll back; the rest are left
/// alone (already terminal, or already rolling back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberRollback {
    Abort,
    Rollback,
    Leave,
}

impl MemberRollback {
    pub fn of(status: Status) -> MemberRollback {
        match status {
            Status::Pending => MemberRollback::Abort,
            Status::Running | Status::Paused | Status::Promoting => MemberRollback::Rollback,
            _ => MemberRollback::Leave,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    #[test]
    fn finalized_only_when_every_member_is_terminal() {
        assert_eq!(
            GroupStatus::of(&[Deployed, RolledBack]),
            GroupStatus::Finalized
        );
        assert_eq!(GroupStatus::of(&[Deployed, Running]), GroupStatus::Running);
        assert_eq!(
            GroupStatus::of(&[Deployed, Promoting]),
            GroupStatus::Finalizing
        );
        assert_eq!(
            GroupStatus::of(&[RollingBack, Promoting]),
            GroupStatus::Finalizing
        );
        assert_eq!(GroupStatus::of(&[Promoting, Paused]), GroupStatus::Running);
        assert_eq!(GroupStatus::of(&[Pending]), GroupStatus::Running);
    }

    #[test]
    fn cancel_needs_every_member_running() {
        assert_eq!(cancel_refusal(&[("a", Running), ("b", Running)]), None);
        let refused = cancel_refusal(&[("a", Running), ("b", Deployed), ("c", Paused)]).unwrap();
        assert!(refused.contains("b is DEPLOYED, c is PAUSED"), "{refused}");
        assert!(!refused.contains("a is"), "{refused}");
    }

    #[test]
    fn rollback_is_refused_only_while_finalizing() {
        assert_eq!(rollback_refusal(&[("a", Running), ("b", Promoting)]), None);
        assert_eq!(rollback_refusal(&[("a", Deployed), ("b", Failed)]), None);
        let refused = rollback_refusal(&[("a", Deployed), ("b", Promoting)]).unwrap();
        assert!(refused.contains("b is PROMOTING"), "{refused}");
        assert!(!refused.contains("a is"), "{refused}");
    }

    #[test]
    fn rolling_back_a_member_depends_on_where_it_stands() {
        assert_eq!(MemberRollback::of(Pending), MemberRollback::Abort);
        for status in [Running, Paused, Promoting] {
            assert_eq!(MemberRollback::of(status), MemberRollback::Rollback);
        }
        for status in [RollingBack, Deployed, RolledBack, Failed, Cancelled] {
            assert_eq!(MemberRollback::of(status), MemberRollback::Leave);
        }
    }
}
