//! Wiring: the store, the ports, the engine and the HTTP app, assembled the same way
//! for `canaryd serve` and for tests that run the real server on port 0.

use std::sync::Arc;

use anyhow::bail;

use crate::adapters::prometheus::{Prometheus, PrometheusSettings};
use crate::adapters::router::Routers;
use crate::adapters::store::memory::MemoryStore;
use crate::adapters::store::sql::SqlStore;
use crate::auth::Tokens;
use crate::engine::{Engine, EngineSettings, Ports, Strategies};
use crate::http::{AppState, router};
use crate::ports::{AnalysisStore, FreezeStore, HistoryStore, Notifier};

pub struct Settings {
    pub strategies: Strategies,
    /// `sqlite://PATH` or `memory:`.
    pub database_url: String,
    pub prometheus: PrometheusSettings,
    pub auth: Option<Tokens>,
    pub engine: EngineSettings,
    pub notifier: Arc<dyn Notifier>,
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
    let metrics = Prometheus::new(&settings.prometheus).map_err(|e| anyhow::anyhow!("{e}"))?;
    let ports = Ports {
        store,
        freezes,
        metrics: Arc::new(metrics),
        routers: Arc::new(Routers::default()),
        notifier: settings.notifier,
    };
    let engine = Engine::new(ports, settings.strategies, settings.engine);
    let resumed = engine.resume_all().await?;
    let state = AppState {
        engine: engine.clone(),
        history,
        auth: settings.auth.map(Arc::new),
    };
    Ok(Server {
        engine,
        app: router(state),
        resumed,
    })
}
