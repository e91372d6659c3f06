//! Analyses: creation with its route claim, fenced saves, reads.

use async_trait::async_trait;
use sqlx::Row;

use super::{SqlStore, Tx, analysis_from, backend, document, sql, time};
use crate::domain::record::Analysis;
use crate::ports::{
    AnalysisQuery, AnalysisStore, Change, Created, IdempotencyKey, InboxMessage, Lease, StoreError,
    Wake,
};

impl SqlStore {
    /// The fenced part of a save: the analysis row, if this lease still holds it, and
    /// the records of the change.
    pub(super) async fn write_running(
        tx: &mut Tx,
        analysis: &Analysis,
        change: &Change,
        lease: &Lease,
    ) -> Result<(), StoreError> {
        let terminal = analysis.state.status.is_terminal();
        let updated = sqlx::query(
            "UPDATE analyses SET status = $1, updated_at = $2, document = $3, active = $4 \
             WHERE id = $5 AND replica = $6 AND lease_token = $7",
        )
        .bind(analysis.state.status.as_str())
        .bind(time(&analysis.state.updated_at))
        .bind(document(analysis)?)
        .bind(i64::from(!terminal))
        .bind(&analysis.id)
        .bind(&lease.replica)
        .bind(lease.token)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::Fenced(analysis.id.clone()));
        }
        Self::append(tx, &analysis.id, change).await
    }

    pub(super) async fn append(tx: &mut Tx, id: &str, change: &Change) -> Result<(), StoreError> {
        for event in &change.events {
            sqlx::query(
                "INSERT INTO events (analysis_id, at, kind, actor, message) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(time(&event.at))
            .bind(event.record.kind.as_str())
            .bind(&event.record.actor)
            .bind(&event.record.message)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
        }
        for check in &change.checks {
            sqlx::query(
                "INSERT INTO checks (analysis_id, check_number, step, metric, at, outcome, value, queries, document) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(id)
            .bind(i64::try_from(check.check).unwrap_or(i64::MAX))
            .bind(i64::try_from(check.step).unwrap_or(i64::MAX))
            .bind(&check.metric)
            .bind(time(&check.at))
            .bind(check.judgement.outcome.as_str())
            .bind(check.judgement.value)
            .bind(check.queries.join("\n"))
            .bind(serde_json::to_string(check).map_err(backend)?)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
        }
        Ok(())
    }

    /// Queues each wake for an analysis that another replica runs (or nobody yet: the
    /// replica that claims it reads it). The engine delivers the rest itself.
    pub(super) async fn queue_remote(
        &self,
        tx: &mut Tx,
        wakes: &[Wake],
        replica: &str,
    ) -> Result<(), StoreError> {
        for wake in wakes {
            let id = match wake {
                Wake::Superseded { id, .. } | Wake::RouteGranted { id, .. } => id,
            };
            let message = InboxMessage::Wake { wake: wake.clone() };
            sql(format!(
                "INSERT INTO inbox (analysis_id, message, created_ms) SELECT $1, $2, {} \
                 WHERE EXISTS (SELECT 1 FROM analyses WHERE id = $1 AND (replica IS NULL OR replica <> $3))",
                self.dialect.now_ms()
            ))
            .bind(id)
            .bind(serde_json::to_string(&message).map_err(backend)?)
            .bind(replica)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
        }
        Ok(())
    }

    async fn insert_analysis(
        tx: &mut Tx,
        analysis: &Analysis,
        replica: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO analyses (id, team, strategy, service, environment, status, created_at, updated_at, \
             document, replica, lease_token, active) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, 1)",
        )
        .bind(&analysis.id)
        .bind(&analysis.strategy.team)
        .bind(analysis.strategy.to_string())
        .bind(&analysis.service)
        .bind(&analysis.environment)
        .bind(analysis.state.status.as_str())
        .bind(time(&analysis.created_at))
        .bind(time(&analysis.state.updated_at))
        .bind(document(analysis)?)
        .bind(replica)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn insert_key(
        tx: &mut Tx,
        analysis: &Analysis,
        key: &IdempotencyKey,
    ) -> Result<(), StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (team, key, analysis_id, request_digest, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&key.team)
        .bind(&key.key)
        .bind(&analysis.id)
        .bind(&key.request_digest)
        .bind(time(&analysis.created_at))
        .execute(&mut **tx)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(error)
                if error
                    .as_database_error()
                    .is_some_and(|e| e.is_unique_violation()) =>
            {
                Err(StoreError::KeyTaken)
            }
            Err(error) => Err(backend(error)),
        }
    }

    /// A save in a transaction of its own: a terminal analysis, which hands its route
    /// over, or any save when group commits are off.
    async fn save_alone(
        &self,
        analysis: &Analysis,
        change: &Change,
        lease: &Lease,
    ) -> Result<Vec<Wake>, StoreError> {
        let terminal = analysis.state.status.is_terminal();
        let mut tx = self.begin_write().await?;
        // Lock the route before the analysis row, as every transaction does.
        let route = if terminal {
            Some(self.lock_route(&mut tx, &analysis.route_key()).await?)
        } else {
            None
        };
        Self::write_running(&mut tx, analysis, change, lease).await?;
        let wakes = match route {
            Some(route) => self.hand_over(&mut tx, analysis, &route).await?,
            None => Vec::new(),
        };
        self.queue_remote(&mut tx, &wakes, &lease.replica).await?;
        tx.commit().await.map_err(backend)?;
        Ok(wakes)
    }
}

#[async_trait]
impl AnalysisStore for SqlStore {
    async fn create(
        &self,
        analysis: &Analysis,
        change: &Change,
        key: Option<&IdempotencyKey>,
        replica: &str,
    ) -> Result<Created, StoreError> {
        let mut tx = self.begin_write().await?;
        Self::insert_analysis(&mut tx, analysis, replica).await?;
        if let Some(key) = key {
            Self::insert_key(&mut tx, analysis, key).await?;
        }
        let (epoch, wakes) = self.claim_route(&mut tx, analysis).await?;
        self.queue_remote(&mut tx, &wakes, replica).await?;
        Self::append(&mut tx, &analysis.id, change).await?;
        tx.commit().await.map_err(backend)?;
        Ok(Created {
            lease: Lease {
                replica: replica.to_string(),
                token: 1,
            },
            epoch,
            wakes,
        })
    }

    async fn find_key(
        &self,
        team: &str,
        key: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT analysis_id, request_digest FROM idempotency_keys WHERE team = $1 AND key = $2",
        )
        .bind(team)
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(|row| {
            Ok((
                row.try_get(0).map_err(backend)?,
                row.try_get(1).map_err(backend)?,
            ))
        })
        .transpose()
    }

    async fn save(
        &self,
        analysis: &Analysis,
        change: &Change,
        lease: &Lease,
    ) -> Result<Vec<Wake>, StoreError> {
        let terminal = analysis.state.status.is_terminal();
        if !terminal && let Some(group) = &self.group {
            return group
                .save(analysis, change, lease)
                .await
                .map(|()| Vec::new());
        }
        // Boxed: the usual save above then waits in a small future, not this one's.
        Box::pin(self.save_alone(analysis, change, lease)).await
    }

    async fn get(&self, id: &str) -> Result<Option<Analysis>, StoreError> {
        let row = sqlx::query("SELECT document FROM analyses WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|row| analysis_from(&row, 0)).transpose()
    }

    async fn list(&self, query: &AnalysisQuery) -> Result<Vec<Analysis>, StoreError> {
        let mut text = String::from("SELECT document FROM analyses WHERE 1 = 1");
        let mut values: Vec<String> = Vec::new();
        let placeholder = |values: &mut Vec<String>, value: &str| {
            values.push(value.to_string());
            format!("${}", values.len())
        };
        if !query.statuses.is_empty() {
            let list: Vec<String> = query
                .statuses
                .iter()
                .map(|status| placeholder(&mut values, status.as_str()))
                .collect();
            text.push_str(&format!(" AND status IN ({})", list.join(", ")));
        }
        if let Some(team) = &query.team {
            text.push_str(&format!(" AND team = {}", placeholder(&mut values, team)));
        }
        if let Some(environment) = &query.environment {
            let environment = placeholder(&mut values, environment);
            text.push_str(&format!(" AND environment = {environment}"));
        }
        let limit = i64::try_from(query.limit.unwrap_or(usize::MAX)).unwrap_or(i64::MAX);
        text.push_str(&format!(
            " ORDER BY created_at DESC, id DESC LIMIT ${}",
            values.len() + 1
        ));
        let mut statement = sql(text);
        for value in values {
            statement = statement.bind(value);
        }
        let rows = statement
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(|row| analysis_from(row, 0)).collect()
    }
}
