//! Reloading the strategies folder: on SIGHUP, and when its files change, which is how a
//! mounted ConfigMap changes (Kubernetes swaps a `..data` symlink under the folder). A
//! folder with any error is refused whole (every error logged) and the strategies in
//! force stay; analyses under way keep the steps, limits and route they started with.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::engine::Engine;
use crate::strategy_files;

/// SIGHUP reloads the folder.
pub async fn on_hangup(mut hangups: tokio::signal::unix::Signal, engine: Engine, folder: PathBuf) {
    while hangups.recv().await.is_some() {
        reload(&engine, &folder, "SIGHUP");
    }
}

/// Looks at the folder's files every `interval` and reloads when any changed.
pub async fn on_change(engine: Engine, folder: PathBuf, interval: Duration) {
    let mut seen = fingerprint(&folder);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let now = fingerprint(&folder);
        if now != seen {
            seen = now;
            reload(&engine, &folder, "files changed");
        }
    }
}

pub fn reload(engine: &Engine, folder: &Path, why: &str) {
    let loaded = strategy_files::load_dir(folder);
    log_warnings(&loaded);
    if loaded.errors.is_empty() {
        tracing::info!(count = loaded.strategies.len(), why, "strategies reloaded");
        engine.set_strategies(loaded.strategies);
    } else {
        for error in &loaded.errors {
            tracing::error!("{error}");
        }
        tracing::error!(
            errors = loaded.errors.len(),
            why,
            "strategies not reloaded; the previous ones stay in force"
        );
    }
}

/// Strategies that load but will likely disappoint (measured against a 15s scrape
/// interval; `canaryd validate --prometheus-url` measures against the real one).
pub fn log_warnings(loaded: &strategy_files::Loaded) {
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
}

/// The names and contents of every file under `folder`, following symlinks and
/// skipping hidden entries (a ConfigMap's `..data` and its timestamped folders).
fn fingerprint(folder: &Path) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut pending = vec![folder.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            let hidden = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_none_or(|n| n.starts_with('.'));
            if hidden {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(contents) = std::fs::read(&path) {
                path.hash(&mut hasher);
                contents.hash(&mut hasher);
            }
        }
    }
    hasher.finish()
}
