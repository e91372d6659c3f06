//! Deployment groups: the group row and its members, written in one transaction.

use async_trait::async_trait;
use sqlx::Row;

use super::{SqlStore, backend, parse_time, sql, time};
use crate::domain::group::{DeploymentGroup, GroupMember};
use crate::ports::{GroupStore, StoreError};

#[async_trait]
impl GroupStore for SqlStore {
    async fn create_group(&self, group: &DeploymentGroup) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sql(
            "INSERT INTO deployment_groups (id, name, image_tag, git_commit, actor, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)"
                .to_string(),
        )
        .bind(&group.id)
        .bind(group.name.clone())
        .bind(&group.image_tag)
        .bind(group.git_commit.clone())
        .bind(&group.actor)
        .bind(time(&group.created_at))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        for (position, member) in group.members.iter().enumerate() {
            sql(
                "INSERT INTO group_members (group_id, position, analysis_id, team) \
                 VALUES ($1, $2, $3, $4)"
                    .to_string(),
            )
            .bind(&group.id)
            .bind(i64::try_from(position).map_err(backend)?)
            .bind(&member.analysis_id)
            .bind(&member.team)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn group(&self, id: &str) -> Result<Option<DeploymentGroup>, StoreError> {
        let row = sql("SELECT id, name, image_tag, git_commit, actor, created_at \
             FROM deployment_groups WHERE id = $1"
            .to_string())
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        let Some(row) = row else { return Ok(None) };
        let members = sql("SELECT analysis_id, team FROM group_members \
             WHERE group_id = $1 ORDER BY position"
            .to_string())
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let created_at: String = row.try_get(5).map_err(backend)?;
        Ok(Some(DeploymentGroup {
            id: row.try_get(0).map_err(backend)?,
            name: row.try_get(1).map_err(backend)?,
            image_tag: row.try_get(2).map_err(backend)?,
            git_commit: row.try_get(3).map_err(backend)?,
            actor: row.try_get(4).map_err(backend)?,
            created_at: parse_time(&created_at)?,
            members: members
                .iter()
                .map(|member| {
                    Ok(GroupMember {
                        analysis_id: member.try_get(0).map_err(backend)?,
                        team: member.try_get(1).map_err(backend)?,
                    })
                })
                .collect::<Result<_, StoreError>>()?,
        }))
    }
}
