//! The faults the soak injects: proxies in front of Prometheus and of HAProxy's
//! Runtime API that can delay, drop, refuse or hang, a small tmpfs to fill, and the
//! record of when each fault was in force.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a proxy does with the next connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pass,
    /// Waits this long (`delay_ms`) before passing the connection on.
    Delay,
    /// Closes the connection without an answer.
    Drop,
    /// Answers HAProxy's own refusal, `Permission denied`.
    Refuse,
    /// Reads the command and never answers.
    Hang,
}

const MODES: [Mode; 5] = [
    Mode::Pass,
    Mode::Delay,
    Mode::Drop,
    Mode::Refuse,
    Mode::Hang,
];

/// A TCP proxy to `127.0.0.1:upstream` whose mode can change at any time.
#[derive(Clone)]
pub struct FaultProxy {
    pub port: u16,
    mode: Arc<AtomicU8>,
    delay_ms: Arc<AtomicU64>,
}

impl FaultProxy {
    pub async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Self {
            port: listener.local_addr().unwrap().port(),
            mode: Arc::new(AtomicU8::new(0)),
            delay_ms: Arc::new(AtomicU64::new(0)),
        };
        let serving = proxy.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                tokio::spawn(serving.clone().serve(inbound, upstream));
            }
        });
        proxy
    }

    pub fn set(&self, mode: Mode, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
        let index = MODES.iter().position(|m| *m == mode).unwrap();
        self.mode.store(index as u8, Ordering::SeqCst);
    }

    fn mode(&self) -> Mode {
        MODES[usize::from(self.mode.load(Ordering::SeqCst))]
    }

    async fn serve(self, mut inbound: TcpStream, upstream: u16) {
        match self.mode() {
            Mode::Pass => {}
            Mode::Delay => {
                let delay = self.delay_ms.load(Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            Mode::Drop => return,
            Mode::Refuse => {
                let mut command = [0u8; 512];
                let _ = inbound.read(&mut command).await;
                let _ = inbound.write_all(b"Permission denied\n").await;
                return;
            }
            Mode::Hang => {
                let mut sink = Vec::new();
                let _ =
                    tokio::time::timeout(Duration::from_secs(60), inbound.read_to_end(&mut sink))
                        .await;
                return;
            }
        }
        if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", upstream)).await {
            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
        }
    }
}

/// A tmpfs for the SQLite file, which can be filled to the last byte and emptied.
pub struct SmallDisk {
    pub dir: PathBuf,
    filler: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `mib` MiB at `dir`; `None` where mounting is not allowed.
    pub fn mount(dir: &Path, mib: u32) -> Option<Self> {
        std::fs::create_dir_all(dir).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| Self {
            dir: dir.to_path_buf(),
            filler: dir.join("filler"),
        })
    }

    /// Writes until the disk is full (ENOSPC).
    pub fn fill(&self) {
        use std::io::Write;
        let mut file = std::fs::File::create(&self.filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        let _ = file.flush();
    }

    pub fn empty(&self) {
        let _ = std::fs::remove_file(&self.filler);
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

/// The kinds of fault, as the schedule picks them and the report counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    PrometheusRestart,
    PrometheusSlow,
    PrometheusDrop,
    RouterRefuses,
    RouterHangs,
    DiskFull,
    BadWebhooks,
    BrokenReload,
    Kill9,
}

pub const FAULTS: [Fault; 9] = [
    Fault::PrometheusRestart,
    Fault::PrometheusSlow,
    Fault::PrometheusDrop,
    Fault::RouterRefuses,
    Fault::RouterHangs,
    Fault::DiskFull,
    Fault::BadWebhooks,
    Fault::BrokenReload,
    Fault::Kill9,
];

/// When a fault that excuses a slow rollback was in force: the router refusing or
/// hanging, or canaryd not running.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub from: Instant,
    pub to: Instant,
}

/// The latest moment a rollback may take effect: `due`, pushed past every window that
/// overlaps the wait, plus `grace` after each.
pub fn excused_deadline(known: Instant, grace: Duration, windows: &[Window]) -> Instant {
    let mut deadline = known + grace;
    let mut sorted = windows.to_vec();
    sorted.sort_by_key(|w| w.from);
    for window in sorted {
        if window.from <= deadline && window.to >= known {
            deadline = deadline.max(window.to + grace);
        }
    }
    deadline
}
