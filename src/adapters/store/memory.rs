//! An in-memory store: for tests and `--database-url memory:`. Nothing survives a restart.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::domain::record::{Analysis, CheckRecord, EventRecord};
use crate::ports::{AnalysisQuery, AnalysisStore, Change, HistoryStore, StoreError};

#[derive(Default)]
struct Entry {
    analysis: Option<Analysis>,
    checks: Vec<CheckRecord>,
    events: Vec<EventRecord>,
}

/// A std `Mutex`: it is never held across an `.await`.
#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, Entry>>,
}

impl MemoryStore {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Entry>) -> T) -> Result<T, StoreError> {
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| StoreError::Backend("memory store poisoned".into()))?;
        Ok(f(&mut entries))
    }
}

#[async_trait]
impl AnalysisStore for MemoryStore {
    async fn create(&self, analysis: &Analysis, change: &Change) -> Result<(), StoreError> {
        self.with(|entries| {
            let entry = entries.entry(analysis.id.clone()).or_default();
            entry.analysis = Some(analysis.clone());
            entry.events.extend(change.events.iter().cloned());
            entry.checks.extend(change.checks.iter().cloned());
        })
    }

    async fn save(&self, analysis: &Analysis, change: &Change) -> Result<(), StoreError> {
        self.with(|entries| {
            let entry = entries
                .get_mut(&analysis.id)
                .ok_or_else(|| StoreError::NotFound(analysis.id.clone()))?;
            entry.analysis = Some(analysis.clone());
            entry.events.extend(change.events.iter().cloned());
            entry.checks.extend(change.checks.iter().cloned());
            Ok(())
        })?
    }

    async fn get(&self, id: &str) -> Result<Option<Analysis>, StoreError> {
        self.with(|entries| entries.get(id).and_then(|e| e.analysis.clone()))
    }

    async fn list(&self, query: &AnalysisQuery) -> Result<Vec<Analysis>, StoreError> {
        self.with(|entries| {
            let mut found: Vec<Analysis> = entries
                .values()
                .filter_map(|e| e.analysis.clone())
                .filter(|a| query.statuses.is_empty() || query.statuses.contains(&a.state.status))
                .filter(|a| query.team.as_ref().is_none_or(|t| &a.strategy.team == t))
                .filter(|a| {
                    query
                        .environment
                        .as_ref()
                        .is_none_or(|e| &a.environment == e)
                })
                .collect();
            found.sort_by(|a, b| {
                b.created_at
                    .cmp(&a.created_at)
                    .then_with(|| b.id.cmp(&a.id))
            });
            found.truncate(query.limit.unwrap_or(usize::MAX));
            found
        })
    }
}

#[async_trait]
impl HistoryStore for MemoryStore {
    async fn checks(&self, id: &str) -> Result<Vec<CheckRecord>, StoreError> {
        self.with(|entries| {
            entries
                .get(id)
                .map(|e| e.checks.clone())
                .unwrap_or_default()
        })
    }

    async fn events(&self, id: &str) -> Result<Vec<EventRecord>, StoreError> {
        self.with(|entries| {
            entries
                .get(id)
                .map(|e| e.events.clone())
                .unwrap_or_default()
        })
    }
}
