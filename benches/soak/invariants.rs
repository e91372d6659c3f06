//! The invariants, read from what canaryd stored and what HAProxy reported.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::drive::{Shared, Started, is_healthy};
use crate::faults::{Window, excused_deadline};

/// Steps of `soak/lane`: (weight, passing checks needed).
pub const STEPS: [(u64, usize); 3] = [(20, 2), (50, 2), (100, 1)];

/// Turns a stored wall-clock time into the soak's monotonic clock.
pub struct Clock {
    pub wall: DateTime<Utc>,
    pub mono: Instant,
}

impl Clock {
    pub fn now() -> Self {
        Self {
            wall: Utc::now(),
            mono: Instant::now(),
        }
    }

    fn instant(&self, at: DateTime<Utc>) -> Instant {
        match (at - self.wall).to_std() {
            Ok(after) => self.mono + after,
            Err(_) => self.mono - (self.wall - at).to_std().unwrap_or_default(),
        }
    }
}

fn checks(analysis: &Value) -> Vec<&Value> {
    analysis["checks"]
        .as_array()
        .map(|c| c.iter().collect())
        .unwrap_or_default()
}

/// Promoted only when the last step's required checks passed one after the other with
/// data, and never a failing build.
pub fn promoted_on_evidence(started: &Started, analysis: &Value, shared: &Shared) {
    if analysis["status"] != "DEPLOYED" {
        return;
    }
    let id = &started.id;
    if !is_healthy(started.lane) {
        shared.violation(format!("{id}: a failing build was DEPLOYED"));
    }
    let last_step = STEPS.len() as u64;
    let trailing_passes = checks(analysis)
        .iter()
        .rev()
        .take_while(|c| c["step"] == last_step && c["outcome"] == "PASS")
        .count();
    let needed = STEPS[STEPS.len() - 1].1;
    let gap = checks(analysis)
        .iter()
        .rev()
        .take(needed)
        .any(|c| c["value"].is_null());
    if trailing_passes < needed || gap {
        shared.violation(format!(
            "{id}: DEPLOYED after {trailing_passes} passing checks with data at its last step"
        ));
    }
}

/// A FAIL beyond `failureLimit` takes the lane to weight 0 within two intervals,
/// or that long after a window in which the router refused or canaryd was down.
/// Returns how long it took.
pub fn rolled_back_in_time(
    started: &Started,
    analysis: &Value,
    context: (&Clock, Duration, &[Window]),
    shared: &Shared,
) -> Option<Duration> {
    let (clock, interval, excused) = context;
    let failed = checks(analysis)
        .into_iter()
        .rev()
        .find(|c| c["outcome"] == "FAIL")?;
    let at: DateTime<Utc> = failed["at"].as_str()?.parse().ok()?;
    let lag = Duration::from_millis(failed["lagMs"].as_u64().unwrap_or(0));
    let known = clock.instant(at) + lag;
    let deadline = excused_deadline(known, interval * 2, excused);
    let weights = shared.weights.lock().unwrap();
    let zero = weights
        .iter()
        .find(|(when, lane, weight)| *lane == started.lane && *when >= known && *weight == 0)
        .map(|(when, ..)| *when);
    // The monitor reads every 250 ms, and a read may itself take a moment.
    let slack = Duration::from_millis(600);
    match zero {
        Some(when) if when <= deadline + slack => Some(when.saturating_duration_since(known)),
        Some(when) => {
            shared.violation(format!(
                "{}: weight 0 {:?} after the FAIL at {}; allowed {:?}",
                started.id,
                when - known,
                crate::elapsed(known),
                deadline - known
            ));
            None
        }
        None => {
            shared.violation(format!(
                "{}: never back at weight 0 after its FAIL",
                started.id
            ));
            None
        }
    }
}

/// Check numbers run 1..=checksDone, and the audit trail has one check event for each,
/// in order, ending with the verdict.
pub fn trail_without_gaps(started: &Started, analysis: &Value, events: &Value, shared: &Shared) {
    let id = &started.id;
    let numbers: BTreeSet<u64> = checks(analysis)
        .iter()
        .filter_map(|c| c["check"].as_u64())
        .collect();
    let done = analysis["checksDone"].as_u64().unwrap_or(0);
    if numbers != (1..=done).collect() {
        shared.violation(format!(
            "{id}: check numbers {numbers:?} for {done} checks done"
        ));
    }
    let events = events.as_array().cloned().unwrap_or_default();
    let mut checked: BTreeMap<u64, usize> = BTreeMap::new();
    for event in events.iter().filter(|e| e["kind"] == "check") {
        let message = event["message"].as_str().unwrap_or_default();
        if let Some(n) = message
            .strip_prefix("check ")
            .and_then(|m| m.split_whitespace().next()?.parse().ok())
        {
            *checked.entry(n).or_default() += 1;
        }
    }
    let expected: BTreeMap<u64, usize> = (1..=done).map(|n| (n, 1)).collect();
    if checked != expected {
        shared.violation(format!("{id}: check events {checked:?} for {done} checks"));
    }
    let times: Vec<&str> = events.iter().filter_map(|e| e["at"].as_str()).collect();
    if times.windows(2).any(|w| w[0] > w[1]) {
        shared.violation(format!("{id}: events out of order"));
    }
    let last = events
        .last()
        .map(|e| e["message"].to_string())
        .unwrap_or_default();
    let status = analysis["status"].as_str().unwrap_or_default();
    if !last.contains(status) {
        shared.violation(format!("{id}: the trail ends with {last}, not {status}"));
    }
}

/// Every start is stored once, and nothing else is.
pub fn none_lost_or_doubled(started: &[Started], listed: &Value, shared: &Shared) {
    let listed: Vec<&str> = listed["analyses"]
        .as_array()
        .or(listed.as_array())
        .map(|a| a.iter().filter_map(|v| v["id"].as_str()).collect())
        .unwrap_or_default();
    let unique: BTreeSet<&str> = listed.iter().copied().collect();
    if unique.len() != listed.len() {
        shared.violation(format!(
            "{} listed, {} distinct",
            listed.len(),
            unique.len()
        ));
    }
    let ours: BTreeSet<&str> = started.iter().map(|s| s.id.as_str()).collect();
    if ours != unique {
        let lost: Vec<_> = ours.difference(&unique).collect();
        let extra: Vec<_> = unique.difference(&ours).collect();
        shared.violation(format!("lost {lost:?}, unknown {extra:?}"));
    }
}

/// RSS at the end within 20% of RSS one minute into the last canaryd's life.
pub fn memory_flat(shared: &Shared, since: Instant) -> Option<(u64, u64)> {
    let rss = shared.rss.lock().unwrap();
    let pid = rss.last()?.2;
    let at_minute = rss
        .iter()
        .find(|(when, _, p)| *p == pid && *when >= since + Duration::from_secs(60))?
        .1;
    let end = rss.last()?.1;
    if end as f64 > at_minute as f64 * 1.2 {
        shared.violation(format!("RSS grew from {at_minute} KiB to {end} KiB"));
    }
    Some((at_minute, end))
}
