//! Runs analyses: one tokio task per active analysis feeds events to the state machine
//! and executes the commands it returns through the ports. Every transition is stored
//! before its commands run, so after a crash each analysis resumes where it stood.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::domain::analysis::{Event, Operation, Record, RecordKind, Rejected, Status};
use crate::domain::record::{Analysis, EventRecord};
use crate::domain::strategy::{Strategy, StrategyId};
use crate::ports::{
    AnalysisQuery, AnalysisStore, Change, FreezeStore, IdempotencyKey, MetricsSource, Notifier,
    PromotionGate, RouterProvider, StoreError,
};
use crate::telemetry::Telemetry;

mod checks;
mod freezes;
pub mod request;
mod runner;

pub use request::{InvalidRequest, StartRequest};

/// Strategies by id, replaced whole when the folder is reloaded.
pub type Strategies = BTreeMap<StrategyId, Strategy>;

#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Attempts of one weight change before the router is reported as failing.
    pub router_attempts: u32,
    /// First pause between attempts; doubles up to `router_backoff_max`.
    pub router_backoff: Duration,
    pub router_backoff_max: Duration,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            router_attempts: 3,
            router_backoff: Duration::from_millis(200),
            router_backoff_max: Duration::from_secs(5),
        }
    }
}

/// The ports the engine works through.
pub struct Ports {
    pub store: Arc<dyn AnalysisStore>,
    pub freezes: Arc<dyn FreezeStore>,
    pub telemetry: Arc<Telemetry>,
    pub gate: Arc<dyn PromotionGate>,
    pub metrics: Arc<dyn MetricsSource>,
    pub routers: Arc<dyn RouterProvider>,
    pub notifier: Arc<dyn Notifier>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("strategy {0} is not loaded")]
    UnknownStrategy(String),
    #[error("{0}")]
    Invalid(#[from] InvalidRequest),
    #[error("analysis {0} not found")]
    NotFound(String),
    #[error("{0}")]
    Rejected(#[from] Rejected),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("canaryd is shutting down")]
    ShuttingDown,
    #[error("Idempotency-Key {0:?} was already used for a different request")]
    IdempotencyConflict(String),
    /// The strategy's router cannot be driven by this canaryd.
    #[error("{0}")]
    RouterUnavailable(String),
}

/// What a webhook started: a new analysis, or the one an earlier retry started.
pub struct Started {
    pub analysis: Analysis,
    /// True when the `Idempotency-Key` named an analysis that already existed.
    pub existing: bool,
}

type Reply = oneshot::Sender<Result<Analysis, Rejected>>;

/// What a running analysis task receives.
struct Message {
    event: Event,
    reply: Option<Reply>,
}

struct Inner {
    ports: Ports,
    settings: EngineSettings,
    strategies: RwLock<Arc<Strategies>>,
    /// Inboxes of running analysis tasks. A std `Mutex`: never held across an await.
    running: Mutex<HashMap<String, mpsc::Sender<Message>>>,
    /// Serialises operations on analyses that have no task (terminal ones).
    idle_operations: tokio::sync::Mutex<()>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    pub fn new(ports: Ports, strategies: Strategies, settings: EngineSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                ports,
                settings,
                strategies: RwLock::new(Arc::new(strategies)),
                running: Mutex::new(HashMap::new()),
                idle_operations: tokio::sync::Mutex::new(()),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
            }),
        }
    }

    pub fn strategies(&self) -> Arc<Strategies> {
        self.inner.strategies()
    }

    /// Replaces the loaded strategies; running analyses use the new metrics from their
    /// next check on (their steps and route were fixed when they were created).
    pub fn set_strategies(&self, strategies: Strategies) {
        if let Ok(mut current) = self.inner.strategies.write() {
            *current = Arc::new(strategies);
        }
    }

    pub fn store(&self) -> &Arc<dyn AnalysisStore> {
        &self.inner.ports.store
    }

    /// Starts an analysis for a CI request; it supersedes any active analysis of the
    /// same strategy, service and environment. With an idempotency key, a retry of the
    /// same request returns the analysis the first one started.
    pub async fn start(
        &self,
        request: StartRequest,
        actor: &str,
        key: Option<&str>,
    ) -> Result<Started, EngineError> {
        if self.inner.shutdown.is_cancelled() {
            return Err(EngineError::ShuttingDown);
        }
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
            return Ok(Started {
                analysis: existing,
                existing: true,
            });
        }
        let now = chrono::Utc::now();
        let analysis = request.into_analysis(strategy, uuid::Uuid::now_v7().to_string(), now)?;
        // Refuse now rather than start something that could not even be rolled back.
        if let Err(error) = self.inner.ports.routers.router(&analysis.route) {
            return Err(EngineError::RouterUnavailable(error.message));
        }
        let freeze = self.freeze_of(&analysis.environment).await?;
        let mut message = format!(
            "created by {actor} for {} {} in {}",
            analysis.service,
            analysis.image_tag.as_deref().unwrap_or("(no image tag)"),
            analysis.environment
        );
        if let Some(freeze) = &freeze {
            message.push_str(&format!(
                "; waiting: {} is frozen ({})",
                freeze.environment, freeze.reason
            ));
        }
        let record = Record {
            kind: RecordKind::StatusChanged,
            actor: actor.to_string(),
            message,
        };
        let change = Change {
            events: vec![EventRecord { at: now, record }],
            checks: Vec::new(),
        };
        match self
            .inner
            .ports
            .store
            .create(&analysis, &change, key.as_ref())
            .await
        {
            Err(StoreError::KeyTaken) => {
                // A concurrent retry with the same key won the race.
                let existing = self
                    .existing(key.as_ref())
                    .await?
                    .ok_or_else(|| StoreError::Backend("idempotency key vanished".into()))?;
                return Ok(Started {
                    analysis: existing,
                    existing: true,
                });
            }
            other => other?,
        }
        self.inner.ports.telemetry.analysis_created(&analysis);
        self.supersede(&analysis).await?;
        self.spawn(analysis.clone(), false);
        if freeze.is_none() {
            self.send(&analysis.id, Event::Start, false).await;
        }
        tracing::info!(id = %analysis.id, strategy = %analysis.strategy, environment = %analysis.environment, "analysis accepted");
        Ok(Started {
            analysis,
            existing: false,
        })
    }

    /// The analysis an idempotency key already names, if the request is the same one.
    async fn existing(
        &self,
        key: Option<&IdempotencyKey>,
    ) -> Result<Option<Analysis>, EngineError> {
        let Some(key) = key else { return Ok(None) };
        let Some((id, digest)) = self.inner.ports.store.find_key(&key.team, &key.key).await? else {
            return Ok(None);
        };
        if digest != key.request_digest {
            return Err(EngineError::IdempotencyConflict(key.key.clone()));
        }
        Ok(self.inner.ports.store.get(&id).await?)
    }

    /// Applies an operation (pause, resume, promote, rollback, abort, retry).
    pub async fn operate(
        &self,
        id: &str,
        operation: Operation,
        actor: &str,
        reason: &str,
    ) -> Result<Analysis, EngineError> {
        let event = Event::Operation {
            operation,
            actor: actor.to_string(),
            reason: reason.to_string(),
        };
        if let Some(result) = self.ask(id, event.clone()).await {
            return Ok(result?);
        }
        // No task: the analysis is terminal (only retry may apply) or unknown.
        let _guard = self.inner.idle_operations.lock().await;
        if let Some(result) = self.ask(id, event.clone()).await {
            return Ok(result?);
        }
        let analysis = self
            .inner
            .ports
            .store
            .get(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(id.to_string()))?;
        // The analysis's own task applies it, exactly as for a running one.
        let (reply, answer) = oneshot::channel();
        let first = Message {
            event,
            reply: Some(reply),
        };
        self.spawn_with(analysis, false, Some(first));
        let updated = answer.await.map_err(|_| EngineError::ShuttingDown)??;
        let frozen = self.freeze_of(&updated.environment).await?.is_some();
        if !updated.state.status.is_terminal() && !frozen {
            self.send(&updated.id, Event::Start, false).await;
        }
        Ok(updated)
    }

    /// Resumes every non-terminal analysis, reconciling each router's real weight first.
    pub async fn resume_all(&self) -> Result<usize, EngineError> {
        let active = AnalysisQuery {
            statuses: Status::ALL
                .into_iter()
                .filter(|s| !s.is_terminal())
                .collect(),
            ..AnalysisQuery::default()
        };
        let analyses = self.inner.ports.store.list(&active).await?;
        let frozen: Vec<String> = self
            .freezes()
            .await?
            .into_iter()
            .map(|f| f.environment)
            .collect();
        let count = analyses.len();
        for analysis in analyses {
            self.inner.ports.telemetry.analysis_created(&analysis);
            self.inner
                .ports
                .telemetry
                .weight_applied(&analysis, analysis.state.canary_weight);
            let pending =
                analysis.state.status == Status::Pending && !frozen.contains(&analysis.environment);
            let id = analysis.id.clone();
            self.spawn(analysis, true);
            if pending {
                self.send(&id, Event::Start, false).await;
            }
        }
        Ok(count)
    }

    /// Stops every analysis task after its current step; state is already stored.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }

    async fn supersede(&self, newer: &Analysis) -> Result<(), EngineError> {
        let active = AnalysisQuery {
            statuses: Status::ALL
                .into_iter()
                .filter(|s| !s.is_terminal())
                .collect(),
            team: Some(newer.strategy.team.clone()),
            environment: Some(newer.environment.clone()),
            limit: None,
        };
        for older in self.inner.ports.store.list(&active).await? {
            let same = older.strategy == newer.strategy && older.service == newer.service;
            if same && older.id != newer.id {
                // Waits until the older task has stopped touching the router.
                self.send(
                    &older.id,
                    Event::Superseded {
                        by: newer.id.clone(),
                    },
                    true,
                )
                .await;
            }
        }
        Ok(())
    }

    fn spawn(&self, analysis: Analysis, resumed: bool) {
        self.spawn_with(analysis, resumed, None);
    }

    fn spawn_with(&self, analysis: Analysis, resumed: bool, first: Option<Message>) {
        let (sender, inbox) = mpsc::channel(64);
        if let Ok(mut running) = self.inner.running.lock() {
            running.insert(analysis.id.clone(), sender);
        }
        let inner = Arc::clone(&self.inner);
        self.inner
            .tasks
            .spawn(runner::run(inner, analysis, inbox, resumed, first));
    }

    /// Sends an event to a running analysis; with `wait`, until it has been applied.
    async fn send(&self, id: &str, event: Event, wait: bool) {
        if wait {
            let _ = self.ask(id, event).await;
        } else if let Some(sender) = self.inner.sender(id) {
            let _ = sender.send(Message { event, reply: None }).await;
        }
    }

    /// Asks a running analysis to apply an event; `None` when it has no task.
    async fn ask(&self, id: &str, event: Event) -> Option<Result<Analysis, Rejected>> {
        let sender = self.inner.sender(id)?;
        let (reply, answer) = oneshot::channel();
        sender
            .send(Message {
                event,
                reply: Some(reply),
            })
            .await
            .ok()?;
        answer.await.ok()
    }
}

impl Inner {
    fn strategies(&self) -> Arc<Strategies> {
        self.strategies
            .read()
            .map(|s| Arc::clone(&s))
            .unwrap_or_default()
    }

    fn sender(&self, id: &str) -> Option<mpsc::Sender<Message>> {
        self.running.lock().ok()?.get(id).cloned()
    }

    /// Forgets a finished task's inbox, unless a newer task of the same analysis (a
    /// retry) has registered its own since: only a closed inbox is removed.
    fn finished(&self, id: &str) {
        if let Ok(mut running) = self.running.lock()
            && running.get(id).is_some_and(mpsc::Sender::is_closed)
        {
            running.remove(id);
        }
    }
}

/// `team/name` → id.
pub fn parse_strategy_id(text: &str) -> Option<StrategyId> {
    let (team, name) = text.split_once('/')?;
    (!team.is_empty() && !name.is_empty() && !name.contains('/')).then(|| StrategyId {
        team: team.to_string(),
        name: name.to_string(),
    })
}
