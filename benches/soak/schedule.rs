//! The seeded fault schedule: one fault at a time, for a few seconds, with calm
//! between. Each fault is undone before the next begins.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::drive::Shared;
use crate::faults::{FAULTS, Fault, FaultProxy, Mode, SmallDisk, Window};
use crate::support::{Canaryd, PrometheusServer, wait_for};

/// Starts canaryd again on a port, as after a crash.
pub type Restart = Box<dyn Fn(u16) -> std::pin::Pin<Box<dyn Future<Output = Canaryd>>>>;

/// Everything the schedule may break.
pub struct Targets {
    pub prometheus: PrometheusServer,
    pub prometheus_targets: usize,
    pub prometheus_proxy: FaultProxy,
    pub router_proxy: FaultProxy,
    pub disk: Option<SmallDisk>,
    pub canaryd: Canaryd,
    pub restart: Restart,
    pub strategies: PathBuf,
    pub shared: Arc<Shared>,
}

/// What the schedule did: faults by kind, and the windows that excuse a late rollback.
#[derive(Default)]
pub struct Injected {
    pub counts: BTreeMap<Fault, usize>,
    pub excused: Vec<Window>,
    /// When canaryd last started.
    pub last_start: Option<Instant>,
}

/// Every kind of fault once, in a seeded order, with kill -9 in the first four, so
/// even a short run sees each kind and a restart early enough for memory to settle.
fn deck(rng: &mut StdRng) -> Vec<Fault> {
    let mut deck = FAULTS.to_vec();
    deck.shuffle(rng);
    let kill = deck.iter().position(|f| *f == Fault::Kill9).unwrap_or(0);
    let early = rng.random_range(0..4);
    deck.swap(kill, early);
    deck.reverse();
    deck
}

/// Injects faults until `end`, each kind once per deck; kill -9 only before
/// `last_kill`, so memory is measured over one long-lived process.
pub async fn run(targets: &mut Targets, seed: u64, end: Instant, last_kill: Instant) -> Injected {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut injected = Injected::default();
    let mut faults = Vec::new();
    while Instant::now() + Duration::from_secs(12) < end {
        tokio::time::sleep(Duration::from_millis(rng.random_range(2000..5000))).await;
        if faults.is_empty() {
            faults = deck(&mut rng);
        }
        let fault = faults.pop().unwrap_or(Fault::PrometheusDrop);
        let fault = match fault {
            Fault::Kill9 if Instant::now() > last_kill => Fault::PrometheusDrop,
            Fault::DiskFull if targets.disk.is_none() => Fault::RouterHangs,
            other => other,
        };
        let hold = Duration::from_millis(rng.random_range(3000..8000));
        let from = Instant::now();
        inject(targets, fault, hold, &mut rng).await;
        if matches!(
            fault,
            Fault::RouterRefuses | Fault::RouterHangs | Fault::Kill9
        ) {
            injected.excused.push(Window {
                from,
                to: Instant::now(),
            });
        }
        if fault == Fault::Kill9 {
            injected.last_start = Some(Instant::now());
        }
        *injected.counts.entry(fault).or_default() += 1;
    }
    // Calm to the end: the soak runs for the whole duration asked.
    tokio::time::sleep_until(end.into()).await;
    injected
}

async fn inject(targets: &mut Targets, fault: Fault, hold: Duration, rng: &mut StdRng) {
    eprintln!(
        "soak: {} {fault:?} for {hold:?}",
        crate::elapsed(Instant::now())
    );
    match fault {
        Fault::PrometheusRestart => {
            let count = targets.prometheus_targets;
            targets.prometheus.restart(count).await;
        }
        Fault::PrometheusSlow => {
            let delay = Duration::from_millis(rng.random_range(1000..8000));
            hold_mode(&targets.prometheus_proxy, Mode::Delay, delay, hold).await;
        }
        Fault::PrometheusDrop => {
            hold_mode(&targets.prometheus_proxy, Mode::Drop, Duration::ZERO, hold).await;
        }
        Fault::RouterRefuses => {
            hold_mode(&targets.router_proxy, Mode::Refuse, Duration::ZERO, hold).await;
        }
        Fault::RouterHangs => {
            hold_mode(&targets.router_proxy, Mode::Hang, Duration::ZERO, hold).await;
        }
        Fault::DiskFull => {
            let disk = targets.disk.as_ref().unwrap();
            disk.fill();
            tokio::time::sleep(hold).await;
            disk.empty();
        }
        Fault::BadWebhooks => crate::webhooks::send_bad(&targets.canaryd, &targets.shared).await,
        Fault::BrokenReload => broken_reload(targets).await,
        Fault::Kill9 => {
            targets.canaryd.process.kill();
            let port = targets.canaryd.port;
            targets.canaryd = (targets.restart)(port).await;
            let pid = targets.canaryd.process.pid();
            targets.shared.canaryd_pid.store(pid, Ordering::SeqCst);
        }
    }
}

async fn hold_mode(proxy: &FaultProxy, mode: Mode, delay: Duration, hold: Duration) {
    proxy.set(mode, delay);
    tokio::time::sleep(hold).await;
    proxy.set(Mode::Pass, Duration::ZERO);
}

/// A broken file and SIGHUP: the reload must be refused whole and the strategy in
/// force must stay; then the file goes and the next SIGHUP loads cleanly.
async fn broken_reload(targets: &Targets) {
    let broken = targets.strategies.join("soak/broken.yaml");
    std::fs::write(
        &broken,
        "apiVersion: canaryd/v1\nkind: Strategy\nspec: [unclosed\n",
    )
    .unwrap();
    let refused = count(&targets.canaryd, "strategies not reloaded");
    targets.canaryd.process.signal("HUP");
    wait_for(
        "the broken reload to be refused",
        Duration::from_secs(10),
        || async { (count(&targets.canaryd, "strategies not reloaded") > refused).then_some(()) },
    )
    .await;
    let listed = targets.canaryd.get("/api/v1/strategies").await;
    if !listed.to_string().contains("soak/lane") {
        targets.shared.violation(format!(
            "after a refused reload the strategies are {listed}"
        ));
    }
    std::fs::remove_file(&broken).unwrap();
    let reloaded = count(&targets.canaryd, "strategies reloaded");
    targets.canaryd.process.signal("HUP");
    wait_for(
        "the fixed folder to reload",
        Duration::from_secs(10),
        || async { (count(&targets.canaryd, "strategies reloaded") > reloaded).then_some(()) },
    )
    .await;
}

fn count(canaryd: &Canaryd, message: &str) -> usize {
    canaryd.process.log().matches(message).count()
}
