//! The soak's verdict: every invariant over every analysis, the faults injected, and
//! the figures; a violation fails the run.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::drive::{LANES, Shared};
use crate::invariants::{self, Clock};
use crate::schedule::Injected;
use crate::support::Canaryd;

pub async fn check_and_print(
    canaryd: &Canaryd,
    shared: &Shared,
    injected: &Injected,
    (clock, began, disk_skipped): (&Clock, Instant, bool),
) {
    let started = shared.started.lock().unwrap().clone();
    let mut verdicts: BTreeMap<String, usize> = BTreeMap::new();
    let mut latencies = Vec::new();
    let mut stored = Vec::new();
    for one in &started {
        let analysis = canaryd.analysis(&one.id).await;
        stored.push(analysis.clone());
        let events = canaryd
            .get(&format!("/api/v1/analyses/{}/events", one.id))
            .await;
        *verdicts
            .entry(analysis["status"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
        invariants::promoted_on_evidence(one, &analysis, shared);
        invariants::trail_without_gaps(one, &analysis, &events, shared);
        let context = (clock, crate::INTERVAL, injected.excused.as_slice());
        if analysis["status"] == "ROLLED_BACK"
            && let Some(latency) = invariants::rolled_back_in_time(one, &analysis, context, shared)
        {
            latencies.push(latency);
        }
    }
    let mut listed = Vec::new();
    for lane in 0..LANES {
        let page = canaryd
            .get(&format!(
                "/api/v1/analyses?environment=lane{lane:02}&limit=500"
            ))
            .await;
        listed.extend(page.as_array().cloned().unwrap_or_default());
    }
    assert!(
        listed.len() < 500 * LANES,
        "more analyses than one page shows"
    );
    invariants::none_lost_or_doubled(&started, &serde_json::Value::Array(listed), shared);
    let since = injected.last_start.unwrap_or(began);
    let memory = invariants::memory_flat(shared, since);

    latencies.sort();
    let slowest = latencies.last().copied().unwrap_or_default();
    let median = latencies
        .get(latencies.len() / 2)
        .copied()
        .unwrap_or_default();
    eprintln!("soak: ran {:?}", began.elapsed());
    eprintln!(
        "soak: faults injected {:?}{}",
        injected.counts,
        if disk_skipped {
            " (disk fault skipped: mounting a tmpfs needs root)"
        } else {
            ""
        }
    );
    eprintln!("soak: {} analyses {verdicts:?}", started.len());
    eprintln!(
        "soak: FAIL to weight 0: median {median:?}, slowest {slowest:?} over {} rollbacks",
        latencies.len()
    );
    eprintln!(
        "soak: weight samples {}",
        shared.weights.lock().unwrap().len()
    );
    match memory {
        Some((minute, end)) => eprintln!(
            "soak: RSS {minute} KiB one minute into the last process, {end} KiB at the end"
        ),
        None => eprintln!("soak: RSS not compared: the last process ran under a minute"),
    }
    // Kept for review after the run's folders are gone.
    let kept = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/soak");
    if std::fs::create_dir_all(&kept).is_ok() {
        let _ = std::fs::write(kept.join("canaryd.log"), canaryd.process.log());
        let analyses = serde_json::to_string_pretty(&stored).unwrap_or_default();
        let _ = std::fs::write(kept.join("analyses.json"), analyses);
    }
    let violations = shared.violations.lock().unwrap();
    eprintln!("soak: {} violations", violations.len());
    assert!(
        violations.is_empty(),
        "invariants violated:\n{}",
        violations.join("\n")
    );
    assert!(
        verdicts.get("DEPLOYED").is_some_and(|n| *n > 0),
        "no promotion at all: {verdicts:?}"
    );
    assert!(
        verdicts.get("ROLLED_BACK").is_some_and(|n| *n > 0),
        "no rollback at all: {verdicts:?}"
    );
}
