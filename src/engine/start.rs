//! The CI webhook: a new analysis, stored with its claim on the route in one
//! transaction. It owns the route when no other analysis is active on it; otherwise it
//! waits as the route's successor while the owner returns traffic to stable.

use super::runner::Boot;
use super::{Engine, EngineError, parse_strategy_id};
use crate::domain::analysis::{Record, RecordKind};
use crate::domain::record::{Analysis, EventRecord};
use crate::ports::{Change, IdempotencyKey, StoreError};

use super::request::StartRequest;

pub(super) enum Prepared {
    New(Analysis, Option<IdempotencyKey>),
    Existing(Started),
}

/// What a webhook started: a new analysis, or the one an earlier retry started.
pub struct Started {
    pub analysis: Analysis,
    /// True when the `Idempotency-Key` named an analysis that already existed.
    pub existing: bool,
}

impl Engine {
    /// Starts an analysis for a CI request; it supersedes the active analysis of the
    /// same route. With an idempotency key, a retry of the same request returns the
    /// analysis the first one started.
    ///
    /// The work runs in a task of its own: a caller that goes away (a dropped HTTP
    /// connection) cannot leave a stored analysis without its task.
    pub async fn start(
        &self,
        request: StartRequest,
        actor: &str,
        key: Option<&str>,
    ) -> Result<Started, EngineError> {
        if self.inner.shutdown.is_cancelled() {
            return Err(EngineError::ShuttingDown);
        }
        let engine = self.clone();
        let (actor, key) = (actor.to_string(), key.map(str::to_string));
        self.inner
            .tasks
            .spawn(async move { engine.start_now(request, &actor, key.as_deref()).await })
            .await
            .map_err(|_| EngineError::ShuttingDown)?
    }

    async fn start_now(
        &self,
        request: StartRequest,
        actor: &str,
        key: Option<&str>,
    ) -> Result<Started, EngineError> {
        match self.prepare(request, key).await? {
            Prepared::New(analysis, key) => self.create(analysis, key, actor).await,
            Prepared::Existing(existing) => Ok(existing),
        }
    }

    /// Stores a prepared analysis with its claim on the route, and launches its task.
    pub(super) async fn create(
        &self,
        mut analysis: Analysis,
        key: Option<IdempotencyKey>,
        actor: &str,
    ) -> Result<Started, EngineError> {
        let change = self.creation(&mut analysis, actor).await?;
        // Open its inbox first: a newer analysis may supersede this one the moment the
        // transaction commits, before its task runs.
        let inbox = self
            .inner
            .register(&analysis.id)
            .ok_or_else(|| StoreError::Backend("analysis id in use".into()))?;
        let store = &self.inner.ports.store;
        let replica = self.inner.replica.id();
        let created = match store
            .create(&analysis, &change, key.as_ref(), replica)
            .await
        {
            Ok(created) => created,
            Err(error) => {
                self.inner.unregister(&analysis.id);
                if matches!(error, StoreError::KeyTaken) {
                    // A concurrent retry with the same key won the race.
                    return self.existing(key.as_ref()).await?.ok_or_else(|| {
                        StoreError::Backend("idempotency key vanished".into()).into()
                    });
                }
                return Err(error.into());
            }
        };
        self.inner.analysis_created(&analysis);
        let boot = Boot::Created {
            lease: created.lease,
            epoch: created.epoch,
        };
        self.inner.launch(analysis.clone(), inbox, boot, None);
        self.inner.deliver(created.wakes).await;
        tracing::info!(id = %analysis.id, strategy = %analysis.strategy, environment = %analysis.environment,
            owns_route = created.epoch.is_some(), "analysis accepted");
        Ok(Started {
            analysis,
            existing: false,
        })
    }

    /// The analysis a request asks for, checked against its strategy and router.
    pub(super) async fn prepare(
        &self,
        request: StartRequest,
        key: Option<&str>,
    ) -> Result<Prepared, EngineError> {
        let strategies = self.strategies();
        let strategy = parse_strategy_id(&request.strategy)
            .and_then(|id| strategies.get(&id))
            .ok_or_else(|| EngineError::UnknownStrategy(request.strategy.clone()))?;
        let key = key.map(|key| IdempotencyKey {
            team: strategy.id.team.clone(),
            key: key.to_string(),
            request_digest: request.digest(),
        });
        if let Some(existing) = self.existing(key.as_ref()).await? {
            return Ok(Prepared::Existing(existing));
        }
        let id = uuid::Uuid::now_v7().to_string();
        let analysis = request.into_analysis(strategy, id, chrono::Utc::now())?;
        // Refuse now rather than start something that could not even be rolled back.
        let router = self.inner.ports.routers.router(&analysis.route);
        router
            .map_err(EngineError::Route)?
            .preflight()
            .await
            .map_err(EngineError::Route)?;
        if let Some(target) = &analysis.workload {
            let tag = analysis.image_tag.as_deref().unwrap_or_default();
            let workloads = &self.inner.ports.workloads;
            let workload = workloads
                .workload(target, tag)
                .map_err(EngineError::Workload)?;
            workload.preflight().await.map_err(EngineError::Workload)?;
        }
        Ok(Prepared::New(analysis, key))
    }

    /// The audit record of a new analysis.
    async fn creation(&self, analysis: &mut Analysis, actor: &str) -> Result<Change, EngineError> {
        let mut message = format!(
            "created by {actor} for {} {} in {}",
            analysis.service,
            analysis.image_tag.as_deref().unwrap_or("(no image tag)"),
            analysis.environment
        );
        if let Some(hold) = super::blocks::Holds::read(&self.inner.ports)
            .await?
            .of(analysis)
        {
            message.push_str(&format!("; waiting: {hold}"));
            analysis.state.reason = format!("waiting: {hold}");
        }
        let record = Record {
            kind: RecordKind::StatusChanged,
            actor: actor.to_string(),
            message,
        };
        Ok(Change {
            events: vec![EventRecord {
                at: analysis.created_at,
                record,
            }],
            checks: Vec::new(),
        })
    }

    /// The analysis an idempotency key already names, if the request is the same one.
    async fn existing(&self, key: Option<&IdempotencyKey>) -> Result<Option<Started>, EngineError> {
        let Some(key) = key else { return Ok(None) };
        let store = &self.inner.ports.store;
        let Some((id, digest)) = store.find_key(&key.team, &key.key).await? else {
            return Ok(None);
        };
        if digest != key.request_digest {
            return Err(EngineError::IdempotencyConflict(key.key.clone()));
        }
        Ok(store.get(&id).await?.map(|analysis| Started {
            analysis,
            existing: true,
        }))
    }
}
