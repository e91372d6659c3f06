//! Freezes: while an environment is frozen, new analyses wait in PENDING; they start
//! once its last freeze is lifted. Running analyses are not touched.

use super::{Engine, EngineError};
use crate::domain::analysis::Status;
use crate::ports::{AnalysisQuery, Freeze};

impl Engine {
    pub async fn freezes(&self) -> Result<Vec<Freeze>, EngineError> {
        Ok(self.inner.ports.freezes.freezes().await?)
    }

    /// Freezes an environment: analyses created from now on wait in PENDING; running
    /// ones continue.
    pub async fn freeze(
        &self,
        environment: &str,
        reason: &str,
        actor: &str,
    ) -> Result<Freeze, EngineError> {
        let freeze = Freeze {
            id: uuid::Uuid::now_v7().to_string(),
            environment: environment.to_string(),
            reason: reason.to_string(),
            actor: actor.to_string(),
            created_at: chrono::Utc::now(),
        };
        self.inner.ports.freezes.add_freeze(&freeze).await?;
        tracing::info!(environment, reason, actor, "environment frozen");
        Ok(freeze)
    }

    /// Lifts a freeze; once nothing holds them any more (no other freeze of the
    /// environment, no block of their scope), its waiting analyses start.
    pub async fn unfreeze(&self, id: &str, actor: &str) -> Result<Option<Freeze>, EngineError> {
        let Some(freeze) = self.inner.ports.freezes.remove_freeze(id).await? else {
            return Ok(None);
        };
        tracing::info!(environment = %freeze.environment, actor, "freeze lifted");
        let waiting = AnalysisQuery {
            statuses: vec![Status::Pending],
            environment: Some(freeze.environment.clone()),
            ..AnalysisQuery::default()
        };
        let mut pending = self.inner.ports.store.list(&waiting).await?;
        pending.reverse(); // oldest first
        self.release_held(pending).await?;
        Ok(Some(freeze))
    }
}
