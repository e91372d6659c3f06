//! Wiring: the store, the ports, the engine and the HTTP app, assembled the same way
//! for `canaryd serve` and for tests that run the real server on port 0.

use std::sync::Arc;

use anyhow::bail;

use crate::adapters::notify::{WebhookSettings, Webhooks};
use crate::adapters::prometheus::{Prometheus, PrometheusSettings};
use crate::adapters::router::Routers;
use crate::adapters::store::memory::MemoryStore;
use crate::adapters::store::sql::SqlStore;
use crate::auth::Tokens;
use crate::engine::{Engine, EngineSettings, Ports, Strategies};
use crate::http::{AppState, router};
use crate::ports::{AnalysisStore, FreezeStore, HistoryStore};
use crate::telemetry::{Telemetry, TimedMetrics};

pub struct Settings {
    pub strategies: Strategies,
    /// `sqlite://PATH` or `memory:`.
    pub database_url: String,
    pub prometheus: PrometheusSettings,
    pub auth: Option<Tokens>,
    pub engine: EngineSettings,
    pub webhooks: WebhookSettings,
}

pub struct Server {
    pub engine: Engine,
    pub app: axum::Router,
    /// Analyses resumed at start.
    pub resumed: usize,
}

type Stores = (
    Arc<dyn AnalysisStore>,
    Arc<dyn FreezeStore>,
    Arc<dyn HistoryStore>,
);

async fn open_store(url: &str) -> anyhow::Result<Stores> {
    if url == "memory:" {
        let store = Arc::new(MemoryStore::default());
        return Ok((store.clone(), store.clone(), store));
    }
    if url.starts_with("sqlite:") {
        let store = Arc::new(SqlStore::connect(url).await?);
        return Ok((store.clone(), store.clone(), store));
    }
    bail!("unsupported database URL {url:?}: use sqlite://PATH or memory:")
}

/// Opens the store, resumes every active analysis and builds the HTTP app.
pub async fn assemble(settings: Settings) -> anyhow::Result<Server> {
    let (store, freezes, history) = open_store(&settings.database_url).await?;
    let telemetry = Arc::new(Telemetry::default());
    let prometheus = Prometheus::new(&settings.prometheus).map_err(|e| anyhow::anyhow!("{e}"))?;
    let metrics = TimedMetrics {
        inner: Arc::new(prometheus),
        telemetry: Arc::clone(&telemetry),
    };
    let webhooks = Arc::new(Webhooks::new(settings.webhooks, Arc::clone(&telemetry)));
    let ports = Ports {
        store,
        freezes,
        telemetry: Arc::clone(&telemetry),
        gate: webhooks.clone(),
        metrics: Arc::new(metrics),
        routers: Arc::new(Routers::default()),
        notifier: webhooks,
    };
    let engine = Engine::new(ports, settings.strategies, settings.engine);
    let resumed = engine.resume_all().await?;
    let state = AppState {
        engine: engine.clone(),
        history,
        auth: settings.auth.map(Arc::new),
        telemetry,
    };
    Ok(Server {
        engine,
        app: router(state),
        resumed,
    })
}
