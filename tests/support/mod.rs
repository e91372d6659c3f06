//! Real components for end-to-end tests: Prometheus and HAProxy from Debian's packages,
//! the canaryd binary, demo service instances and load. Everything listens on free
//! loopback ports and is stopped when its guard is dropped. Nothing sleeps in place of
//! waiting: `wait_for` polls a condition until a deadline.
#![allow(dead_code)]

use std::future::Future;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use canaryd::demo::load::{self, LoadStats};
use canaryd::demo::service::{Behaviour, app};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `probe` every 100 ms until it answers `Some`, or panics after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A child process killed when dropped; its output goes to a log file shown on failure.
pub struct Process {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    pub fn spawn(name: &str, command: &mut Command, log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e} (run scripts/install-deps)"));
        Self {
            name: name.to_string(),
            child: Some(child),
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(Child::id)
            .expect("the process is running")
    }

    /// `kill -9`, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends a signal by name (`STOP`, `CONT`, `TERM`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit by itself; its exit code, or `None` at `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status.code().unwrap_or(-1));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("---- last lines of {} ----", self.name);
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
        self.kill();
    }
}

pub struct PrometheusServer {
    pub port: u16,
    dir: TempDir,
    process: Process,
}

impl PrometheusServer {
    /// Starts Prometheus scraping `targets` (host:port) every second.
    pub async fn start(targets: &[String]) -> Self {
        Self::start_with_interval(targets, Duration::from_secs(1)).await
    }

    pub async fn start_with_interval(targets: &[String], scrape: Duration) -> Self {
        Self::start_with(targets, &[], scrape).await
    }

    /// Also scrapes canaryd itself (job `canaryd`), which is not up yet when it starts.
    pub async fn start_with_targets(targets: &[String], canaryd: &[String]) -> Self {
        Self::start_with(targets, canaryd, Duration::from_secs(1)).await
    }

    async fn start_with(targets: &[String], canaryd: &[String], scrape: Duration) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let quote = |list: &[String]| {
            list.iter()
                .map(|t| format!("'{t}'"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let scrape = format!("{}ms", scrape.as_millis());
        let mut config = format!(
            "global:\n  scrape_interval: {scrape}\n  evaluation_interval: {scrape}\nscrape_configs:\n  - job_name: demo\n    static_configs:\n      - targets: [{}]\n",
            quote(targets)
        );
        if !canaryd.is_empty() {
            config.push_str(&format!(
                "  - job_name: canaryd\n    static_configs:\n      - targets: [{}]\n",
                quote(canaryd)
            ));
        }
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let port = free_port();
        let process = Self::spawn(dir.path(), port);
        let server = Self { port, dir, process };
        server.wait_ready(targets.len()).await;
        server
    }

    fn spawn(dir: &Path, port: u16) -> Process {
        Process::spawn(
            "prometheus",
            Command::new("prometheus")
                .arg(format!(
                    "--config.file={}",
                    dir.join("prometheus.yml").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                ))
                .arg("--log.level=warn"),
            dir.join("prometheus.log"),
        )
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits until Prometheus answers and has scraped every target at least once.
    async fn wait_ready(&self, targets: usize) {
        let url = format!("{}/api/v1/query", self.url());
        wait_for(
            "Prometheus to scrape every target",
            Duration::from_secs(30),
            || {
                let url = url.clone();
                async move {
                    let body: Value = reqwest::Client::new()
                        .get(&url)
                        .query(&[("query", "count(up == 1)")])
                        .send()
                        .await
                        .ok()?
                        .json()
                        .await
                        .ok()?;
                    let value = body["data"]["result"][0]["value"][1]
                        .as_str()?
                        .parse::<usize>()
                        .ok()?;
                    (value == targets).then_some(())
                }
            },
        )
        .await;
    }

    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts it again on the same port with the same data.
    pub async fn restart(&mut self, targets: usize) {
        self.process.kill();
        self.process = Self::spawn(self.dir.path(), self.port);
        self.wait_ready(targets).await;
    }
}

pub struct HaproxyServer {
    pub frontend_port: u16,
    pub admin_port: u16,
    _dir: TempDir,
    _process: Process,
}

impl HaproxyServer {
    /// One backend `demo` with servers `stable` (weight 100) and `canary` (weight 0).
    pub async fn start(stable_port: u16, canary_port: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (frontend_port, admin_port) = (free_port(), free_port());
        let config = format!(
            "global\n    stats socket ipv4@127.0.0.1:{admin_port} level admin\n\
             defaults\n    mode http\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n\
             frontend fe\n    bind 127.0.0.1:{frontend_port}\n    default_backend demo\n\
             backend demo\n    balance roundrobin\n    server stable 127.0.0.1:{stable_port} weight 100\n    server canary 127.0.0.1:{canary_port} weight 0\n"
        );
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let process = Process::spawn(
            "haproxy",
            Command::new("haproxy").arg("-f").arg(&path).arg("-db"),
            dir.path().join("haproxy.log"),
        );
        let server = Self {
            frontend_port,
            admin_port,
            _dir: dir,
            _process: process,
        };
        wait_for("HAProxy's Runtime API", Duration::from_secs(15), || async {
            runtime_api(server.admin_port, "show info")
                .ok()
                .filter(|r| r.contains("Name:"))
                .map(|_| ())
        })
        .await;
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.frontend_port)
    }

    /// (stable, canary) weights as HAProxy reports them.
    pub fn weights(&self) -> (u32, u32) {
        let read = |server: &str| {
            let reply = runtime_api(self.admin_port, &format!("get weight demo/{server}")).unwrap();
            reply
                .split_whitespace()
                .next()
                .unwrap()
                .parse::<u32>()
                .unwrap()
        };
        (read("stable"), read("canary"))
    }
}

/// Sends one command to a HAProxy Runtime API on TCP.
pub fn runtime_api(port: u16, command: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(format!("{command}\n").as_bytes())?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}

/// A demo service instance running in this test's runtime.
pub struct DemoInstance {
    pub port: u16,
}

impl DemoInstance {
    pub async fn start(track: &str, error_rate: f64, latency_ms: u64) -> Self {
        Self::start_service("demo", track, error_rate, latency_ms).await
    }

    /// An instance whose series carry `service`.
    pub async fn start_service(
        service: &str,
        track: &str,
        error_rate: f64,
        latency_ms: u64,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let router = app(
            service,
            track,
            Behaviour {
                error_rate,
                latency_ms,
            },
        );
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { port }
    }

    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub async fn set_behaviour(&self, error_rate: f64, latency_ms: u64) {
        reqwest::Client::new()
            .put(format!("http://127.0.0.1:{}/admin/behaviour", self.port))
            .json(&json!({"errorRate": error_rate, "latencyMs": latency_ms}))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }
}

/// True under `cargo bench`; a benchmark run by `cargo test` is its short version.
pub fn full_bench() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// A benchmark's setting: `--name VALUE` on the command line, else the long default
/// under `cargo bench` and the short one under `cargo test`.
pub fn bench_setting(name: &str, short: &str, long: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| (if full_bench() { long } else { short }).to_string())
}

/// One canary demo instance per `(service, error rate)`, each under its own steady
/// load, and Prometheus scraping them all.
pub async fn canaries_under_load(
    services: &[(&str, f64)],
    rate: u32,
) -> (Vec<DemoInstance>, Vec<Load>, PrometheusServer) {
    let mut instances = Vec::new();
    let mut loads = Vec::new();
    for (service, errors) in services {
        let instance = DemoInstance::start_service(service, "canary", *errors, 5).await;
        loads.push(Load::start(
            format!("http://127.0.0.1:{}/", instance.port),
            rate,
        ));
        instances.push(instance);
    }
    let targets: Vec<String> = instances.iter().map(DemoInstance::target).collect();
    let prometheus = PrometheusServer::start(&targets).await;
    (instances, loads, prometheus)
}

/// Steady load until dropped.
pub struct Load {
    stop: CancellationToken,
    pub stats: Arc<LoadStats>,
}

impl Load {
    pub fn start(url: String, rate: u32) -> Self {
        let stop = CancellationToken::new();
        let stats = Arc::new(LoadStats::default());
        tokio::spawn(load::run(url, rate, 128, stop.clone(), Arc::clone(&stats)));
        Self { stop, stats }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The canaryd binary, serving on a free port.
pub struct Canaryd {
    pub port: u16,
    pub process: Process,
    client: reqwest::Client,
}

impl Canaryd {
    pub async fn start(
        strategies: &Path,
        prometheus_url: &str,
        extra: &[&str],
        log_dir: &Path,
    ) -> Self {
        Self::start_on(free_port(), strategies, prometheus_url, extra, log_dir).await
    }

    /// On a port chosen beforehand (so Prometheus can be told to scrape it).
    pub async fn start_on(
        port: u16,
        strategies: &Path,
        prometheus_url: &str,
        extra: &[&str],
        log_dir: &Path,
    ) -> Self {
        let database = format!("sqlite://{}", log_dir.join("canaryd.db").display());
        Self::start_with_database(port, strategies, prometheus_url, &database, extra, log_dir).await
    }

    /// On `database_url` (a Postgres replica, say); logs go to `log_dir`.
    pub async fn start_with_database(
        port: u16,
        strategies: &Path,
        prometheus_url: &str,
        database_url: &str,
        extra: &[&str],
        log_dir: &Path,
    ) -> Self {
        let database = (port, database_url);
        Self::launch(database, strategies, prometheus_url, extra, &[], log_dir).await
    }

    /// With `KUBECONFIG` pointing at a (test) Kubernetes API server.
    pub async fn start_in_cluster(
        strategies: &Path,
        prometheus_url: &str,
        kubeconfig: &Path,
        log_dir: &Path,
    ) -> Self {
        let database = format!("sqlite://{}", log_dir.join("canaryd.db").display());
        let env = [("KUBECONFIG", kubeconfig.to_str().unwrap())];
        Self::launch(
            (free_port(), &database),
            strategies,
            prometheus_url,
            &[],
            &env,
            log_dir,
        )
        .await
    }

    async fn launch(
        (port, database_url): (u16, &str),
        strategies: &Path,
        prometheus_url: &str,
        extra: &[&str],
        env: &[(&str, &str)],
        log_dir: &Path,
    ) -> Self {
        let process = Process::spawn(
            "canaryd",
            Command::new(env!("CARGO_BIN_EXE_canaryd"))
                .arg("serve")
                .arg("--listen")
                .arg(format!("127.0.0.1:{port}"))
                .arg("--strategies")
                .arg(strategies)
                .arg("--prometheus-url")
                .arg(prometheus_url)
                .arg("--database-url")
                .arg(database_url)
                .args(extra)
                .envs(env.iter().copied())
                .env("RUST_LOG", "info"),
            log_dir.join(format!("canaryd-{port}.log")),
        );
        let canaryd = Self {
            port,
            process,
            client: reqwest::Client::new(),
        };
        wait_for(
            "canaryd to answer /healthz",
            Duration::from_secs(20),
            || async {
                canaryd
                    .client
                    .get(canaryd.url("/healthz"))
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(|_| ())
            },
        )
        .await;
        canaryd
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Starts an analysis and returns its id.
    pub async fn start_analysis(&self, body: Value) -> String {
        let response = self
            .client
            .post(self.url("/api/v1/analyses"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(status.as_u16(), 202, "{answer}");
        answer["id"].as_str().unwrap().to_string()
    }

    /// POSTs `body` to `path`; the status and the JSON answer.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    pub async fn analysis(&self, id: &str) -> Value {
        self.get(&format!("/api/v1/analyses/{id}")).await
    }

    pub async fn get(&self, path: &str) -> Value {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits until the analysis reaches a terminal status, and returns it.
    pub async fn wait_terminal(&self, id: &str, timeout: Duration) -> Value {
        wait_for(&format!("analysis {id} to finish"), timeout, || async {
            let analysis = self.analysis(id).await;
            analysis["verdict"].is_string().then_some(analysis)
        })
        .await
    }
}

/// A folder with one strategy, `e2e/demo`, against HAProxy at `admin_address`.
pub fn strategy_folder(admin_address: &str, body: &str) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("e2e")).unwrap();
    let text = format!(
        "apiVersion: canaryd/v1\nkind: Strategy\nmetadata:\n  name: demo\n  team: e2e\nspec:\n  service: demo\n  router:\n    type: haproxy\n    haproxy:\n      address: {admin_address}\n      backend: demo\n      stableServer: stable\n      canaryServer: canary\n{body}"
    );
    std::fs::write(dir.path().join("e2e/demo.yaml"), text).unwrap();
    dir
}

/// A folder with one strategy, `shop/web`, that decides but shifts nothing (router
/// `none`), with an hour between checks: for tests of everything but judging.
pub fn decide_only_strategies() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("shop")).unwrap();
    std::fs::write(
        dir.path().join("shop/web.yaml"),
        "apiVersion: canaryd/v1\nkind: Strategy\nmetadata:\n  name: web\n  team: shop\nspec:\n  service: web\n  router:\n    type: none\n  \
         interval: 1h\n  steps:\n    - weight: 25\n  metrics:\n    - name: error-rate\n      template: http-error-rate\n      max: 0.05\n",
    )
    .unwrap();
    dir
}

/// A TCP proxy that can stop passing connections, to make an address unreachable.
pub struct SwitchableProxy {
    pub port: u16,
    open: Arc<AtomicBool>,
}

impl SwitchableProxy {
    pub async fn start(upstream_port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(true));
        let gate = Arc::clone(&open);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !gate.load(Ordering::SeqCst) {
                    drop(inbound); // refused: closed without an answer
                    continue;
                }
                tokio::spawn(async move {
                    if let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream_port)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self { port, open }
    }

    pub fn set_open(&self, open: bool) {
        self.open.store(open, Ordering::SeqCst);
    }
}
pub mod kube_api;
pub mod lanes;
pub mod postgres;
pub mod sample;
pub mod standin;
pub mod teams;
