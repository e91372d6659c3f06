//! Wiring: the store, the ports, the engine and the HTTP app, assembled the same way
//! for `canaryd serve` and for tests that run the real server on port 0.

use std::sync::Arc;

use crate::adapters::coalesce::{Coalescing, CoalescingSettings};
use crate::adapters::kube::Cluster;
use crate::adapters::notify::{WebhookSettings, Webhooks};
use crate::adapters::prometheus::{Prometheus, PrometheusSettings};
use crate::adapters::router::Routers;
use crate::adapters::store::sql::{Dialect, SqlStore};
use crate::adapters::throttle::Throttled;
use crate::auth::Tokens;
use crate::engine::{Engine, EngineSettings, Ports, Strategies};
use crate::http::{AppState, router};
use crate::ports::{MetricsSource, RouterProvider, WorkloadProvider};
use crate::telemetry::{Telemetry, TimedMetrics};

pub struct Settings {
    pub strategies: Strategies,
    /// `sqlite://PATH`, `postgres://...` or `memory:`.
    pub database_url: String,
    pub prometheus: PrometheusSettings,
    pub auth: Option<Tokens>,
    pub engine: EngineSettings,
    pub webhooks: WebhookSettings,
    /// The routers to drive; `None` for the real ones (HAProxy, decide-only and the
    /// Kubernetes routers over `cluster`).
    pub routers: Option<Arc<dyn RouterProvider>>,
    /// The Kubernetes cluster the Kubernetes routers drive.
    pub cluster: Cluster,
}

pub struct Server {
    pub engine: Engine,
    pub app: axum::Router,
    /// Analyses resumed at start.
    pub resumed: usize,
}

/// The engine's ports over one SQL store (which holds analyses, routes, leases, the
/// inbox and freezes), with webhooks for notifications and the promotion gate.
pub fn ports(
    store: &Arc<SqlStore>,
    telemetry: &Arc<Telemetry>,
    webhooks: Arc<Webhooks>,
    metrics: Arc<dyn MetricsSource>,
    routers: Arc<dyn RouterProvider>,
    workloads: Arc<dyn WorkloadProvider>,
) -> Ports {
    Ports {
        store: store.clone(),
        routes: store.clone(),
        leases: store.clone(),
        inbox: store.clone(),
        freezes: store.clone(),
        blocks: store.clone(),
        telemetry: telemetry.clone(),
        gate: webhooks.clone(),
        metrics,
        routers,
        workloads,
        notifier: webhooks,
    }
}

/// Prometheus behind backpressure, timed, and (unless turned off) shared between
/// analyses: coalescing outermost, so only the queries really sent are timed and
/// throttled.
fn metrics_source(
    settings: &PrometheusSettings,
    telemetry: &Arc<Telemetry>,
) -> anyhow::Result<Arc<dyn MetricsSource>> {
    let prometheus = Prometheus::new(settings).map_err(|e| anyhow::anyhow!("{e}"))?;
    let timed = Arc::new(TimedMetrics {
        inner: Arc::new(prometheus),
        telemetry: Arc::clone(telemetry),
    });
    let throttled = Arc::new(Throttled::new(
        timed,
        settings.max_concurrent,
        settings.max_qps,
    ));
    if !settings.coalescing {
        return Ok(throttled);
    }
    let coalescing = Coalescing::new(throttled, CoalescingSettings::default());
    Ok(Arc::new(coalescing))
}

/// Opens the store, resumes every analysis left without a live replica and builds the
/// HTTP app. A SQLite file already used by another process is refused here.
pub async fn assemble(settings: Settings) -> anyhow::Result<Server> {
    let store = Arc::new(SqlStore::connect(&settings.database_url).await?);
    let telemetry = Arc::new(Telemetry::default());
    let metrics = metrics_source(&settings.prometheus, &telemetry)?;
    let webhooks = Arc::new(Webhooks::new(settings.webhooks, Arc::clone(&telemetry)));
    let routers = settings
        .routers
        .unwrap_or_else(|| Arc::new(Routers::with_cluster(settings.cluster.clone())));
    let workloads = Arc::new(settings.cluster);
    let ports = ports(&store, &telemetry, webhooks, metrics, routers, workloads);
    let engine_settings = EngineSettings {
        exclusive: store.dialect() == Dialect::Sqlite,
        ..settings.engine
    };
    let engine = Engine::new(ports, settings.strategies, engine_settings);
    let resumed = engine.start_replica().await?;
    let state = AppState {
        engine: engine.clone(),
        history: store.clone(),
        deployments: store.clone(),
        groups: store,
        auth: settings.auth.map(Arc::new),
        telemetry,
    };
    Ok(Server {
        engine,
        app: router(state),
        resumed,
    })
}
