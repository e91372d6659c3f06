//! Recorded deployments, and the newest DEPLOYED release of a service per environment.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{SqlStore, analysis_from, backend, parse_time, sql, time};
use crate::domain::deployment::{DeploymentStatus, RecordedDeployment};
use crate::ports::{Current, DeploymentStore, RecordQuery, StoreError};

const COLUMNS: &str = "id, team, service, environment, image_tag, git_commit, git_branch, \
                       status, deployed_at, completed_at, actor, recorded_at";

#[async_trait]
impl DeploymentStore for SqlStore {
    async fn record_deployment(&self, deployment: &RecordedDeployment) -> Result<(), StoreError> {
        sql(format!(
            "INSERT INTO recorded_deployments ({COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(&deployment.id)
        .bind(&deployment.team)
        .bind(&deployment.service)
        .bind(&deployment.environment)
        .bind(&deployment.image_tag)
        .bind(deployment.git_commit.clone())
        .bind(deployment.git_branch.clone())
        .bind(deployment.status.as_str())
        .bind(time(&deployment.deployed_at))
        .bind(deployment.completed_at.as_ref().map(time))
        .bind(&deployment.actor)
        .bind(time(&deployment.recorded_at))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn recorded_deployment(
        &self,
        id: &str,
    ) -> Result<Option<RecordedDeployment>, StoreError> {
        let row = sql(format!(
            "SELECT {COLUMNS} FROM recorded_deployments WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(recorded_from).transpose()
    }

    async fn recorded_deployments(
        &self,
        query: &RecordQuery,
    ) -> Result<Vec<RecordedDeployment>, StoreError> {
        let mut text = format!("SELECT {COLUMNS} FROM recorded_deployments WHERE 1 = 1");
        let mut values: Vec<&str> = Vec::new();
        let filters = [
            ("team", &query.team),
            ("service", &query.service),
            ("environment", &query.environment),
        ];
        for (column, value) in filters {
            if let Some(value) = value {
                values.push(value);
                text.push_str(&format!(" AND {column} = ${}", values.len()));
            }
        }
        text.push_str(&format!(
            " ORDER BY deployed_at DESC, recorded_at DESC, id DESC LIMIT ${}",
            values.len() + 1
        ));
        let limit = i64::try_from(query.limit.unwrap_or(usize::MAX)).unwrap_or(i64::MAX);
        let mut statement = sql(text);
        for value in values {
            statement = statement.bind(value);
        }
        let rows = statement
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(recorded_from).collect()
    }

    async fn current(&self, service: &str, team: Option<&str>) -> Result<Current, StoreError> {
        // One row per environment: the newest by when it settled. A team filter that is
        // absent matches every team (`$2 IS NULL`).
        let analyses = sql("SELECT document FROM (SELECT document, ROW_NUMBER() OVER \
             (PARTITION BY environment ORDER BY updated_at DESC, id DESC) AS newest \
             FROM analyses WHERE service = $1 AND status = 'DEPLOYED' \
             AND ($2 IS NULL OR team = $2)) AS latest WHERE newest = 1"
            .to_string())
        .bind(service)
        .bind(team)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let recorded = sql(format!(
            "SELECT {COLUMNS} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY environment \
             ORDER BY COALESCE(completed_at, deployed_at) DESC, recorded_at DESC, id DESC) \
             AS newest FROM recorded_deployments WHERE service = $1 AND status = 'DEPLOYED' \
             AND ($2 IS NULL OR team = $2)) AS latest WHERE newest = 1"
        ))
        .bind(service)
        .bind(team)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(Current {
            analyses: analyses
                .iter()
                .map(|row| analysis_from(row, 0))
                .collect::<Result<_, _>>()?,
            recorded: recorded
                .iter()
                .map(recorded_from)
                .collect::<Result<_, _>>()?,
        })
    }
}

fn recorded_from(row: &AnyRow) -> Result<RecordedDeployment, StoreError> {
    let text =
        |column: usize| -> Result<String, StoreError> { row.try_get(column).map_err(backend) };
    let optional = |column: usize| -> Result<Option<String>, StoreError> {
        row.try_get(column).map_err(backend)
    };
    let status = text(7)?;
    Ok(RecordedDeployment {
        id: text(0)?,
        team: text(1)?,
        service: text(2)?,
        environment: text(3)?,
        image_tag: text(4)?,
        git_commit: optional(5)?,
        git_branch: optional(6)?,
        status: DeploymentStatus::parse(&status)
            .ok_or_else(|| backend(format!("unknown deployment status {status:?}")))?,
        deployed_at: parse_time(&text(8)?)?,
        completed_at: optional(9)?.as_deref().map(parse_time).transpose()?,
        actor: text(10)?,
        recorded_at: parse_time(&text(11)?)?,
    })
}
