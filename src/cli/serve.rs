//! `canaryd serve`: load strategies, resume analyses, serve the API until SIGTERM/ctrl-c.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};

use super::reload;
use crate::adapters::kube::Cluster;
use crate::adapters::notify::WebhookSettings;
use crate::adapters::prometheus::PrometheusSettings;
use crate::auth::Tokens;
use crate::engine::EngineSettings;
use crate::ports::StoreError;
use crate::server::{Settings, assemble};
use crate::strategy_files;
use crate::telemetry::{LogFormat, init_logging};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CANARYD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Strategies folder (`<team>/<name>.yaml`, `_templates/`).
    #[arg(long, env = "CANARYD_STRATEGIES", default_value = "./strategies")]
    pub strategies: PathBuf,
    /// Prometheus (or Thanos, Mimir, VictoriaMetrics) base URL.
    #[arg(
        long,
        env = "CANARYD_PROMETHEUS_URL",
        default_value = "http://127.0.0.1:9090"
    )]
    pub prometheus_url: String,
    /// Timeout of each query.
    #[arg(long, env = "CANARYD_PROMETHEUS_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub prometheus_timeout: Duration,
    /// Bearer token sent to Prometheus.
    #[arg(long, env = "CANARYD_PROMETHEUS_BEARER_TOKEN", hide_env_values = true)]
    pub prometheus_bearer_token: Option<String>,
    /// `user:password` for basic auth to Prometheus.
    #[arg(long, env = "CANARYD_PROMETHEUS_BASIC_AUTH", hide_env_values = true)]
    pub prometheus_basic_auth: Option<String>,
    /// Extra header for Prometheus, `Name: value` (repeatable; e.g. `X-Scope-OrgID: team`).
    #[arg(
        long = "prometheus-header",
        env = "CANARYD_PROMETHEUS_HEADERS",
        value_delimiter = ','
    )]
    pub prometheus_headers: Vec<String>,
    /// Most Prometheus requests in flight at once; more wait (and their checks run late).
    #[arg(long, env = "CANARYD_PROMETHEUS_MAX_CONCURRENCY", default_value_t = 16)]
    pub prometheus_max_concurrency: usize,
    /// Most Prometheus requests started per second; unlimited when unset.
    #[arg(long, env = "CANARYD_PROMETHEUS_MAX_QPS")]
    pub prometheus_max_qps: Option<f64>,
    /// Share queries between analyses whose checks are due together (`on` or `off`).
    #[arg(long, env = "CANARYD_QUERY_COALESCING", default_value = "on", value_parser = ["on", "off"])]
    pub query_coalescing: String,
    /// Where analyses are stored: `sqlite://PATH` (created if missing), or `memory:`
    /// (nothing survives a restart).
    #[arg(
        long,
        env = "CANARYD_DATABASE_URL",
        default_value = "sqlite://canaryd.db"
    )]
    pub database_url: String,
    /// Auth file of hashed tokens; without it canaryd only listens on loopback.
    #[arg(long, env = "CANARYD_AUTH_FILE")]
    pub auth_file: Option<PathBuf>,
    /// Base URL people reach canaryd at, for links in notifications.
    #[arg(long, env = "CANARYD_PUBLIC_URL")]
    pub public_url: Option<String>,
    #[arg(long, env = "CANARYD_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// How long this replica's hold on its analyses lasts without a heartbeat. With
    /// Postgres, another replica resumes a dead one's analyses after it.
    #[arg(long, env = "CANARYD_LEASE_TTL", default_value = "15s", value_parser = parse_lease_ttl)]
    pub lease_ttl: Duration,
    /// How often the strategies folder is looked at for changed files (a mounted
    /// ConfigMap, say), which are then reloaded as on SIGHUP; `0s` turns it off.
    #[arg(long, env = "CANARYD_RELOAD_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub reload_interval: Duration,
}

fn parse_lease_ttl(text: &str) -> Result<Duration, String> {
    let ttl = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if ttl < Duration::from_secs(3) {
        return Err("must be at least 3s: the heartbeat runs every third of it".into());
    }
    Ok(ttl)
}

impl ServeArgs {
    fn prometheus(&self) -> anyhow::Result<PrometheusSettings> {
        let mut settings = PrometheusSettings::new(self.prometheus_url.clone());
        settings.timeout = self.prometheus_timeout;
        settings.bearer_token = self.prometheus_bearer_token.clone();
        settings.basic_auth = self.prometheus_basic_auth.clone();
        settings.max_concurrent = self.prometheus_max_concurrency.max(1);
        settings.max_qps = self.prometheus_max_qps;
        settings.coalescing = self.query_coalescing == "on";
        for header in &self.prometheus_headers {
            let (name, value) = header
                .split_once(':')
                .with_context(|| format!("--prometheus-header {header:?} is not 'Name: value'"))?;
            settings
                .headers
                .push((name.trim().to_string(), value.trim().to_string()));
        }
        Ok(settings)
    }
}

/// Exit 1 when the database is held by another canaryd or this replica lost its lease
/// (a supervisor starts it again as a new replica); errors otherwise.
pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging(args.log_format);
    let mut settings = args.settings()?;
    settings.cluster = Cluster::infer().await;
    if settings.cluster.is_configured() {
        tracing::info!("Kubernetes routers use the {}", settings.cluster.describe());
    } else {
        tracing::info!(
            "Kubernetes routers unavailable: {}",
            settings.cluster.describe()
        );
    }
    let server = match assemble(settings).await {
        Ok(server) => server,
        Err(error) => {
            if let Some(in_use @ StoreError::InUse { .. }) = error.downcast_ref::<StoreError>() {
                eprintln!("canaryd: {in_use}");
                return Ok(ExitCode::from(1));
            }
            return Err(error);
        }
    };
    tracing::info!(resumed = server.resumed, "analyses resumed");
    // Registered before the port opens, so a SIGHUP can never find the default action
    // (which would end the process).
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot listen for SIGHUP")?;
    tokio::spawn(reload::on_hangup(
        hangups,
        server.engine.clone(),
        args.strategies.clone(),
    ));
    if !args.reload_interval.is_zero() {
        let (engine, folder) = (server.engine.clone(), args.strategies.clone());
        tokio::spawn(reload::on_change(engine, folder, args.reload_interval));
    }
    let lost_lease = serve_until_stopped(&args, server).await?;
    if lost_lease {
        eprintln!("canaryd: this replica lost its lease and stopped; start it again");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

impl ServeArgs {
    /// Everything `serve` needs, checked: the auth file, the listen address it allows,
    /// and a strategies folder without a single error.
    fn settings(&self) -> anyhow::Result<Settings> {
        let auth = match &self.auth_file {
            Some(path) => Some(Tokens::load(path).map_err(|errors| {
                let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
                anyhow::anyhow!("invalid auth file:\n{}", lines.join("\n"))
            })?),
            None => None,
        };
        if self.auth_file.is_none() && !self.listen.ip().is_loopback() {
            bail!(
                "refusing to listen on {} without --auth-file: anyone could start and roll back canaries. \
                 Listen on loopback or give an auth file",
                self.listen
            );
        }
        let loaded = strategy_files::load_dir(&self.strategies);
        reload::log_warnings(&loaded);
        if !loaded.errors.is_empty() {
            for error in &loaded.errors {
                tracing::error!("{error}");
            }
            bail!(
                "{} errors in {}; fix them or check with 'canaryd validate'",
                loaded.errors.len(),
                self.strategies.display()
            );
        }
        tracing::info!(count = loaded.strategies.len(), folder = %self.strategies.display(), "strategies loaded");
        Ok(Settings {
            strategies: loaded.strategies,
            database_url: self.database_url.clone(),
            prometheus: self.prometheus()?,
            auth,
            engine: EngineSettings {
                lease_ttl: self.lease_ttl,
                ..EngineSettings::default()
            },
            webhooks: WebhookSettings {
                public_url: self
                    .public_url
                    .clone()
                    .unwrap_or_else(|| format!("http://{}", self.listen)),
                ..WebhookSettings::default()
            },
            routers: None,
            cluster: Cluster::none("not connected yet"),
        })
    }
}

/// Serves until SIGTERM, ctrl-c or the loss of this replica's lease, then stops every
/// analysis after its current step; true when the lease was lost.
async fn serve_until_stopped(
    args: &ServeArgs,
    server: crate::server::Server,
) -> anyhow::Result<bool> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(address = %listener.local_addr()?, "listening");
    let lost_lease = Arc::new(AtomicBool::new(false));
    let stop = {
        let (engine, lost_lease) = (server.engine.clone(), Arc::clone(&lost_lease));
        async move {
            tokio::select! {
                () = shutdown_signal() => {}
                () = engine.lease_lost() => lost_lease.store(true, Ordering::SeqCst),
            }
        }
    };
    axum::serve(listener, server.app)
        .with_graceful_shutdown(stop)
        .await
        .context("HTTP server failed")?;
    tracing::info!(
        "shutting down: analyses stop after their current step and resume at the next start"
    );
    server.engine.shutdown().await;
    Ok(lost_lease.load(Ordering::SeqCst))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
