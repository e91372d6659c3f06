//! Runs analyses: one tokio task per analysis this replica holds feeds events to the
//! state machine and executes the commands it returns through the ports. Every
//! transition is stored, fenced by the analysis's lease, before its commands run.
//!
//! - `start`: the webhook, one transaction that also claims the route;
//! - `operate`: operations, delivered to whichever replica runs the analysis;
//! - `replica`: this process's lease, taking over analyses whose replica died, and the
//!   inbox other replicas write to;
//! - `runner`: the task of one analysis; `ownership`: its claim on the route.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::domain::analysis::{Event, Rejected};
use crate::domain::record::Analysis;
use crate::domain::strategy::{Strategy, StrategyId};
use crate::ports::{
    AnalysisStore, AnalysisTelemetry, BlockStore, FreezeStore, InboxStore, Lease, LeaseStore,
    MetricsSource, Notifier, PromotionGate, RouteStore, RouterProvider, StoreError, Wake,
    WorkloadProvider,
};

pub mod backtest;
mod blocks;
pub mod checks;
mod effects;
mod freezes;
mod group;
mod judgement;
mod operate;
mod ownership;
mod persist;
mod replica;
pub mod request;
mod runner;
mod start;
mod waiting;
mod workload;

pub use blocks::scope_of;
pub use group::GroupStartError;
pub use judgement::Judged;
pub use operate::OperationError;
pub use replica::ReplicaHealth;
pub use request::{InvalidRequest, StartRequest, null_is_none};
pub use start::Started;

/// Strategies by id, replaced whole when the folder is reloaded.
pub type Strategies = BTreeMap<StrategyId, Strategy>;

#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Attempts of one weight change before the router is reported as failing.
    pub router_attempts: u32,
    /// First pause between attempts; doubles up to `router_backoff_max`.
    pub router_backoff: Duration,
    pub router_backoff_max: Duration,
    /// How long a replica's lease lasts without a heartbeat (`--lease-ttl`).
    pub lease_ttl: Duration,
    /// True when the store admits one process only (SQLite, behind its file lock): no
    /// other replica can take work over, so an unrenewed lease never stops this one.
    pub exclusive: bool,
    /// How often the inbox is read for events sent by other replicas.
    pub inbox_poll: Duration,
    /// How long an operation waits for the replica that runs the analysis to answer.
    pub remote_timeout: Duration,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            router_attempts: 3,
            router_backoff: Duration::from_millis(200),
            router_backoff_max: Duration::from_secs(5),
            lease_ttl: Duration::from_secs(15),
            exclusive: true,
            inbox_poll: Duration::from_millis(200),
            remote_timeout: Duration::from_secs(20),
        }
    }
}

/// The ports the engine works through.
pub struct Ports {
    pub store: Arc<dyn AnalysisStore>,
    pub routes: Arc<dyn RouteStore>,
    pub leases: Arc<dyn LeaseStore>,
    pub inbox: Arc<dyn InboxStore>,
    pub freezes: Arc<dyn FreezeStore>,
    pub blocks: Arc<dyn BlockStore>,
    pub telemetry: Arc<dyn AnalysisTelemetry>,
    pub gate: Arc<dyn PromotionGate>,
    pub metrics: Arc<dyn MetricsSource>,
    pub routers: Arc<dyn RouterProvider>,
    pub workloads: Arc<dyn WorkloadProvider>,
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
    Operation(#[from] OperationError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("canaryd is shutting down")]
    ShuttingDown,
    #[error("Idempotency-Key {0:?} was already used for a different request")]
    IdempotencyConflict(String),
    /// The analysis's route cannot be driven: no client for its router, an object or
    /// CRD that is missing, credentials that may not change it, or no backends.
    #[error("{0}")]
    Route(crate::ports::RouterError),
    /// The strategy's workload cannot be deployed: a missing Deployment or container,
    /// Services that select the wrong pods, or credentials that may not change them.
    #[error("{0}")]
    Workload(crate::ports::WorkloadError),
}

impl From<Rejected> for EngineError {
    fn from(rejected: Rejected) -> Self {
        EngineError::Operation(OperationError::Rejected(rejected))
    }
}

type Reply = oneshot::Sender<Result<Analysis, OperationError>>;

/// What a running analysis task receives.
enum Input {
    Event(Event),
    /// The route's previous owner ended: this analysis owns it now, under `epoch`.
    Granted {
        epoch: i64,
    },
}

struct Message {
    input: Input,
    reply: Option<Reply>,
}

/// A task's inbox. Messages travel boxed: a channel's first block has room for 32 of
/// whatever it carries, and ten thousand idle tasks then hold 32 pointers each rather
/// than 32 messages.
type Inbox = mpsc::Receiver<Box<Message>>;

/// The sending half of a task's inbox.
#[derive(Clone)]
struct Outbox(mpsc::Sender<Box<Message>>);

impl Outbox {
    /// Waits for room; an error when the task has ended.
    async fn send(&self, message: Message) -> Result<(), ()> {
        self.0.send(Box::new(message)).await.map_err(|_| ())
    }

    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

impl Message {
    fn event(event: Event) -> Self {
        Self {
            input: Input::Event(event),
            reply: None,
        }
    }

    fn of_wake(wake: Wake) -> (String, Self) {
        match wake {
            Wake::Superseded { id, by } => (id, Self::event(Event::Superseded { by })),
            Wake::RouteGranted { id, epoch } => (
                id,
                Self {
                    input: Input::Granted { epoch },
                    reply: None,
                },
            ),
        }
    }
}

struct Inner {
    ports: Ports,
    settings: EngineSettings,
    replica: replica::ReplicaLease,
    strategies: RwLock<Arc<Strategies>>,
    /// Inboxes of this replica's analysis tasks. A std `Mutex`: never held across an
    /// await, so a task can be registered and found without yielding.
    running: Mutex<HashMap<String, Outbox>>,
    /// Analyses whose task stopped because the store failed; started again once the
    /// store answers.
    stalled: Mutex<HashMap<String, Lease>>,
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
        let replica = replica::ReplicaLease::new(settings.exclusive);
        ports
            .telemetry
            .strategies_loaded(&strategies.values().collect::<Vec<_>>());
        Self {
            inner: Arc::new(Inner {
                ports,
                settings,
                replica,
                strategies: RwLock::new(Arc::new(strategies)),
                running: Mutex::new(HashMap::new()),
                stalled: Mutex::new(HashMap::new()),
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
        let loaded: Vec<&Strategy> = strategies.values().collect();
        self.inner.ports.telemetry.strategies_loaded(&loaded);
        if let Ok(mut current) = self.inner.strategies.write() {
            *current = Arc::new(strategies);
        }
    }

    pub fn store(&self) -> &Arc<dyn AnalysisStore> {
        &self.inner.ports.store
    }

    /// Stops every analysis task after its current step (state is already stored) and
    /// ends this replica's lease, so that other replicas resume its work at once.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        let id = self.inner.replica.id();
        if let Err(error) = self.inner.ports.leases.release(id).await {
            tracing::warn!(%error, "could not release this replica's lease; others wait for it to expire");
        }
    }

    fn spawn(&self, analysis: Analysis, boot: runner::Boot, first: Option<Message>) -> bool {
        self.inner.spawn(analysis, boot, first)
    }
}

impl Inner {
    fn strategies(&self) -> Arc<Strategies> {
        self.strategies
            .read()
            .map(|s| Arc::clone(&s))
            .unwrap_or_default()
    }

    /// Tells telemetry of a new or resumed analysis, with its strategy's metrics.
    fn analysis_created(&self, analysis: &Analysis) {
        let strategies = self.strategies();
        let metrics: Vec<&str> = strategies
            .get(&analysis.strategy)
            .map(|s| s.metrics.iter().map(|m| m.name.as_str()).collect())
            .unwrap_or_default();
        self.ports.telemetry.analysis_created(analysis, &metrics);
    }

    fn sender(&self, id: &str) -> Option<Outbox> {
        self.running.lock().ok()?.get(id).cloned()
    }

    /// Starts the task of an analysis unless one runs already; false if one did.
    fn spawn(
        self: &Arc<Self>,
        analysis: Analysis,
        boot: runner::Boot,
        first: Option<Message>,
    ) -> bool {
        match self.register(&analysis.id) {
            Some(inbox) => {
                self.launch(analysis, inbox, boot, first);
                true
            }
            None => false,
        }
    }

    /// Opens the inbox of an analysis's task before the task exists, so that nothing
    /// sent to it in between is lost; `None` when a task runs already.
    fn register(&self, id: &str) -> Option<Inbox> {
        let (sender, inbox) = mpsc::channel(64);
        let sender = Outbox(sender);
        let mut running = self.running.lock().ok()?;
        if running.get(id).is_some_and(|s| !s.is_closed()) {
            return None;
        }
        running.insert(id.to_string(), sender);
        Some(inbox)
    }

    fn launch(
        self: &Arc<Self>,
        analysis: Analysis,
        inbox: Inbox,
        boot: runner::Boot,
        first: Option<Message>,
    ) {
        let inner = Arc::clone(self);
        self.tasks
            .spawn(runner::run(inner, analysis, inbox, boot, first));
    }

    async fn deliver(&self, wakes: Vec<Wake>) {
        for wake in wakes {
            let (id, message) = Message::of_wake(wake);
            if let Some(sender) = self.sender(&id) {
                let _ = sender.send(message).await;
            }
        }
    }

    /// Forgets a finished task's inbox, unless a newer task of the same analysis (a
    /// retry) has registered its own since: only a closed inbox is removed.
    fn finished(&self, id: &str) {
        if let Ok(mut running) = self.running.lock()
            && running.get(id).is_some_and(Outbox::is_closed)
        {
            running.remove(id);
        }
    }

    fn unregister(&self, id: &str) {
        if let Ok(mut running) = self.running.lock() {
            running.remove(id);
        }
    }

    fn stalled(&self, id: &str, lease: &Lease) {
        if let Ok(mut stalled) = self.stalled.lock() {
            stalled.insert(id.to_string(), lease.clone());
        }
    }

    fn take_stalled(&self, id: &str) -> Option<Lease> {
        self.stalled.lock().ok()?.remove(id)
    }

    /// Delivers wakes from a task without making it wait on another task's inbox.
    fn deliver_later(self: &Arc<Self>, wakes: Vec<Wake>) {
        if wakes.is_empty() {
            return;
        }
        let inner = Arc::clone(self);
        self.tasks.spawn(async move { inner.deliver(wakes).await });
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
