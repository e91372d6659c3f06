//! What keeps the soak busy and what watches it: one driver per lane that starts an
//! analysis, follows it to its verdict and starts the next; a monitor that reads every
//! lane's canary weight from HAProxy itself; and a sampler of canaryd's memory.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::runtime_api;

pub const LANES: usize = 4;

/// Lanes below this one canary the healthy build; the rest a build with 30% errors.
pub const HEALTHY_LANES: usize = 2;

pub fn is_healthy(lane: usize) -> bool {
    lane < HEALTHY_LANES
}

/// An analysis the soak started, with its lane.
#[derive(Debug, Clone)]
pub struct Started {
    pub id: String,
    pub lane: usize,
}

/// What the watchers share with the schedule and the final checks.
#[derive(Default)]
pub struct Shared {
    pub stop: AtomicBool,
    pub started: Mutex<Vec<Started>>,
    /// (when, lane, canary weight) as HAProxy reported it.
    pub weights: Mutex<Vec<(Instant, usize, u32)>>,
    /// Broken while it happened, so a failure names the moment.
    pub violations: Mutex<Vec<String>>,
    pub canaryd_pid: AtomicU32,
    /// (when, VmRSS in KiB, pid).
    pub rss: Mutex<Vec<(Instant, u64, u32)>>,
}

impl Shared {
    pub fn violation(&self, what: String) {
        eprintln!("soak: VIOLATION {what}");
        self.violations.lock().unwrap().push(what);
    }
}

/// Starts analyses on `lane` one after the other until the soak stops.
pub async fn lane(base: String, lane: usize, shared: Arc<Shared>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut attempt = 0;
    while !shared.stop.load(Ordering::SeqCst) {
        attempt += 1;
        let service = if is_healthy(lane) {
            "healthy"
        } else {
            "failing"
        };
        let body = json!({"strategy": "soak/lane", "service": service,
            "environment": format!("lane{lane:02}"), "imageTag": format!("build-{attempt}"),
            "variables": {"lane": format!("lane{lane:02}")}});
        // The same key on every retry: a start retried after a lost answer is one start.
        let key = format!("soak-lane{lane:02}-{attempt}");
        let id = start(&client, &base, &body, &key, &shared).await;
        shared.started.lock().unwrap().push(Started {
            id: id.clone(),
            lane,
        });
        follow(&client, &base, &id).await;
        seen_by_monitor(lane, Instant::now(), &shared).await;
    }
}

/// Waits until the monitor has read the lane's weight since `since`: the weight a
/// verdict left is then on record before the next analysis moves it.
async fn seen_by_monitor(lane: usize, since: Instant, shared: &Shared) {
    let seen = || {
        let weights = shared.weights.lock().unwrap();
        weights
            .iter()
            .rev()
            .take(4 * LANES)
            .any(|(when, l, _)| *l == lane && *when > since)
    };
    while !seen() && !shared.stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn start(
    client: &reqwest::Client,
    base: &str,
    body: &Value,
    key: &str,
    shared: &Shared,
) -> String {
    loop {
        let sent = client
            .post(format!("{base}/api/v1/analyses"))
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await;
        if let Ok(response) = sent {
            let status = response.status().as_u16();
            let answer: Value = response.json().await.unwrap_or_default();
            match status {
                200 | 202 => return answer["id"].as_str().unwrap().to_string(),
                // The store is full or canaryd is starting: a retry is the client's job.
                503 => {}
                _ => shared.violation(format!("a valid start answered {status}: {answer}")),
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Polls until the analysis has a verdict; canaryd may be down for a while meanwhile.
async fn follow(client: &reqwest::Client, base: &str, id: &str) {
    loop {
        let view = client
            .get(format!("{base}/api/v1/analyses/{id}"))
            .send()
            .await;
        if let Ok(response) = view
            && let Ok(view) = response.json::<Value>().await
            && view["verdict"].is_string()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Reads every lane's canary weight from HAProxy's own Runtime API (not through the
/// faulty proxy) every 250 ms. A failing build's lane at 100% is a violation at once.
pub fn watch_weights(admin: u16, shared: Arc<Shared>, done: Arc<AtomicBool>) {
    while !done.load(Ordering::SeqCst) {
        for lane in 0..LANES {
            let reply = runtime_api(admin, &format!("get weight lane{lane:02}/canary"));
            let Some(weight) = reply
                .ok()
                .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
            else {
                continue;
            };
            if !is_healthy(lane) && weight >= 100 {
                shared.violation(format!(
                    "lane {lane} (failing build) at canary weight {weight}"
                ));
            }
            shared
                .weights
                .lock()
                .unwrap()
                .push((Instant::now(), lane, weight));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Samples canaryd's VmRSS every second.
pub async fn sample_memory(shared: Arc<Shared>, done: Arc<AtomicBool>) {
    while !done.load(Ordering::SeqCst) {
        let pid = shared.canaryd_pid.load(Ordering::SeqCst);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let rss = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok());
        if let Some(rss) = rss {
            shared.rss.lock().unwrap().push((Instant::now(), rss, pid));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
