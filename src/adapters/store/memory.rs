//! An in-memory store: for tests and `--database-url memory:`. Nothing survives a restart.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::domain::analysis::Status;
use crate::domain::record::{Analysis, CheckRecord, EventRecord};
use crate::ports::{
    AnalysisQuery, AnalysisStore, Change, Freeze, FreezeStore, HistoryStore, IdempotencyKey,
    StoreError,
};

#[derive(Default)]
struct Entry {
    analysis: Option<Analysis>,
    checks: Vec<CheckRecord>,
    events: Vec<EventRecord>,
}

#[derive(Default)]
struct Tables {
    analyses: HashMap<String, Entry>,
    keys: HashMap<(String, String), (String, String)>,
    freezes: Vec<Freeze>,
}

/// A std `Mutex`: it is never held across an `.await`.
#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl MemoryStore {
    fn with<T>(&self, f: impl FnOnce(&mut Tables) -> T) -> Result<T, StoreError> {
        let mut tables = self
            .tables
            .lock()
            .map_err(|_| StoreError::Backend("memory store poisoned".into()))?;
        Ok(f(&mut tables))
    }
}

#[async_trait]
impl AnalysisStore for MemoryStore {
    async fn create(
        &self,
        analysis: &Analysis,
        change: &Change,
        key: Option<&IdempotencyKey>,
    ) -> Result<(), StoreError> {
        self.with(|tables| {
            if let Some(key) = key {
                let slot = (key.team.clone(), key.key.clone());
                if tables.keys.contains_key(&slot) {
                    return Err(StoreError::KeyTaken);
                }
                tables
                    .keys
                    .insert(slot, (analysis.id.clone(), key.request_digest.clone()));
            }
            let entry = tables.analyses.entry(analysis.id.clone()).or_default();
            entry.analysis = Some(analysis.clone());
            entry.events.extend(change.events.iter().cloned());
            entry.checks.extend(change.checks.iter().cloned());
            Ok(())
        })?
    }

    async fn find_key(
        &self,
        team: &str,
        key: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        self.with(|tables| {
            tables
                .keys
                .get(&(team.to_string(), key.to_string()))
                .cloned()
        })
    }

    async fn save(&self, analysis: &Analysis, change: &Change) -> Result<(), StoreError> {
        self.with(|tables| {
            let entry = tables
                .analyses
                .get_mut(&analysis.id)
                .ok_or_else(|| StoreError::NotFound(analysis.id.clone()))?;
            entry.analysis = Some(analysis.clone());
            entry.events.extend(change.events.iter().cloned());
            entry.checks.extend(change.checks.iter().cloned());
            Ok(())
        })?
    }

    async fn get(&self, id: &str) -> Result<Option<Analysis>, StoreError> {
        self.with(|tables| tables.analyses.get(id).and_then(|e| e.analysis.clone()))
    }

    async fn list(&self, query: &AnalysisQuery) -> Result<Vec<Analysis>, StoreError> {
        self.with(|tables| {
            let mut found: Vec<Analysis> = tables
                .analyses
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
        self.with(|tables| {
            tables
                .analyses
                .get(id)
                .map(|e| e.checks.clone())
                .unwrap_or_default()
        })
    }

    async fn events(&self, id: &str) -> Result<Vec<EventRecord>, StoreError> {
        self.with(|tables| {
            tables
                .analyses
                .get(id)
                .map(|e| e.events.clone())
                .unwrap_or_default()
        })
    }

    async fn status_counts(&self) -> Result<Vec<(String, String, Status, i64)>, StoreError> {
        self.with(|tables| {
            let mut counts = std::collections::BTreeMap::new();
            for analysis in tables.analyses.values().filter_map(|e| e.analysis.as_ref()) {
                let key = (
                    analysis.strategy.team.clone(),
                    analysis.environment.clone(),
                    analysis.state.status,
                );
                *counts.entry(key).or_insert(0i64) += 1;
            }
            counts
                .into_iter()
                .map(|((team, environment, status), n)| (team, environment, status, n))
                .collect()
        })
    }
}

#[async_trait]
impl FreezeStore for MemoryStore {
    async fn add_freeze(&self, freeze: &Freeze) -> Result<(), StoreError> {
        self.with(|tables| tables.freezes.push(freeze.clone()))
    }

    async fn freezes(&self) -> Result<Vec<Freeze>, StoreError> {
        self.with(|tables| tables.freezes.clone())
    }

    async fn remove_freeze(&self, id: &str) -> Result<Option<Freeze>, StoreError> {
        self.with(|tables| {
            let index = tables.freezes.iter().position(|f| f.id == id)?;
            Some(tables.freezes.remove(index))
        })
    }
}
