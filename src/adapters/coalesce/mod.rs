//! Queries shared between analyses. Checks are evaluated at a time pinned to their
//! interval grid, so checks due in the same slot ask the same questions:
//! - an identical query at the same time is sent once, and its answer kept for the
//!   slot (a bounded number of answers);
//! - queries of one shape that differ only in the grouping label's value (the built-in
//!   templates across services) are answered by one query per leaf grouped by that
//!   label (see `plan`); a grouped query that fails falls back to one query each.
//!
//! Unpinned queries (a preflight at "now") go through unchanged.

pub mod plan;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tokio::sync::oneshot;

use crate::domain::Timestamp;
use crate::ports::{LabelledValue, MetricsSource, QueryError};
use plan::{GROUP_LABEL, Plan};

#[derive(Debug, Clone)]
pub struct CoalescingSettings {
    /// How long a batch waits after the last analysis of its slot joined it.
    pub linger: Duration,
    /// How long a batch waits at most.
    pub max_linger: Duration,
    /// Group queries of one shape by label; off, only identical queries are shared.
    pub group: bool,
    /// Most label values in one grouped query.
    pub max_values: usize,
    /// Most answers kept for their slot.
    pub max_answers: usize,
}

impl Default for CoalescingSettings {
    fn default() -> Self {
        Self {
            linger: Duration::from_millis(25),
            max_linger: Duration::from_millis(750),
            group: true,
            max_values: 10_000,
            max_answers: 50_000,
        }
    }
}

/// How long an answer is kept after a newer slot began: late checks of its slot still
/// share it.
const SLOT_MEMORY_MS: i64 = 5_000;

type Answer = Result<Option<f64>, QueryError>;
type SharedAnswer = Shared<BoxFuture<'static, Answer>>;

/// Analyses waiting for one slot's grouped answer.
struct Batch {
    plan: Plan,
    waiters: Vec<(String, String, oneshot::Sender<Answer>)>,
}

pub struct Coalescing {
    inner: Arc<dyn MetricsSource>,
    settings: CoalescingSettings,
    /// (query, time in ms) → its answer, shared by every check that asks it.
    answers: Mutex<HashMap<(String, i64), SharedAnswer>>,
    /// The newest slot asked about, in ms.
    newest_slot: Mutex<i64>,
    planner: plan::Planner,
    /// (shape, time in ms) → the batch collecting values for it.
    batches: Arc<Mutex<HashMap<(String, i64), Batch>>>,
}

impl Coalescing {
    pub fn new(inner: Arc<dyn MetricsSource>, settings: CoalescingSettings) -> Arc<Self> {
        Arc::new(Self {
            inner,
            settings,
            answers: Mutex::new(HashMap::new()),
            newest_slot: Mutex::new(0),
            planner: plan::Planner::default(),
            batches: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// The shared answer to `query` at `at`: an earlier identical request's, or a new one.
    fn shared(self: &Arc<Self>, query: &str, at: Timestamp) -> SharedAnswer {
        let key = (query.to_string(), at.timestamp_millis());
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(answer) = answers.get(&key) {
            return answer.clone();
        }
        // An answer serves its own slot: when a new slot begins, those more than a few
        // seconds older go; and the map never grows beyond its bound.
        let slot = at.timestamp_millis();
        let mut newest = self.newest_slot.lock().unwrap_or_else(|e| e.into_inner());
        if slot > *newest {
            *newest = slot;
            answers.retain(|(_, old), _| *old >= slot - SLOT_MEMORY_MS);
        }
        if answers.len() >= self.settings.max_answers {
            answers.clear();
        }
        let this = Arc::clone(self);
        let (query, slot) = (query.to_string(), at);
        let answer = async move { this.ask(&query, slot).await }.boxed().shared();
        answers.insert(key, answer.clone());
        answer
    }

    async fn ask(self: Arc<Self>, query: &str, at: Timestamp) -> Answer {
        let planned = if self.settings.group {
            self.planner.plan(query)
        } else {
            None
        };
        match planned {
            Some(plan) => self.join_batch(plan, query, at).await,
            None => self.inner.instant(query, Some(at)).await,
        }
    }

    /// Waits for the slot's grouped answer with the other analyses of this shape.
    async fn join_batch(self: Arc<Self>, plan: Plan, query: &str, at: Timestamp) -> Answer {
        let (sender, receiver) = oneshot::channel();
        let key = (plan.shape.key.clone(), at.timestamp_millis());
        let full = {
            let mut batches = self.batches.lock().unwrap_or_else(|e| e.into_inner());
            let first = !batches.contains_key(&key);
            let value = plan.value.clone();
            let batch = batches.entry(key.clone()).or_insert_with(|| Batch {
                plan,
                waiters: Vec::new(),
            });
            batch.waiters.push((value, query.to_string(), sender));
            if first {
                let this = Arc::clone(&self);
                let key = key.clone();
                tokio::spawn(async move {
                    this.settle(&key).await;
                    this.flush(&key, at).await;
                });
            }
            batch.waiters.len() >= self.settings.max_values
        };
        if full {
            self.flush(&key, at).await;
        }
        receiver.await.unwrap_or_else(|_| {
            Err(QueryError::Unreachable(
                "the grouped query was dropped".into(),
            ))
        })
    }

    /// Waits while analyses keep joining the batch (a slot's checks arrive over as long
    /// as it takes to run them all), `linger` after the last, at most `max_linger`.
    async fn settle(&self, key: &(String, i64)) {
        let started = tokio::time::Instant::now();
        let mut seen = 0;
        loop {
            tokio::time::sleep(self.settings.linger).await;
            let size = {
                let batches = self.batches.lock().unwrap_or_else(|e| e.into_inner());
                batches.get(key).map_or(0, |batch| batch.waiters.len())
            };
            if size == seen || size == 0 || started.elapsed() >= self.settings.max_linger {
                return;
            }
            seen = size;
        }
    }

    async fn flush(&self, key: &(String, i64), at: Timestamp) {
        let batch = self
            .batches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        let Some(batch) = batch else { return };
        let mut values: Vec<String> = batch
            .waiters
            .iter()
            .map(|(value, _, _)| value.clone())
            .collect();
        values.sort();
        values.dedup();
        match self.leaf_results(&batch.plan, &values, at).await {
            Some(results) => {
                for (value, _, sender) in batch.waiters {
                    let leaves: Vec<Option<f64>> = results
                        .iter()
                        .map(|by_value| by_value.get(&value).copied())
                        .collect();
                    let _ = sender.send(Ok(plan::evaluate(&batch.plan.shape.tree, &leaves)));
                }
            }
            None => {
                // Each analysis's own query, all at once (the throttle still bounds them).
                let own = batch
                    .waiters
                    .into_iter()
                    .map(|(_, query, sender)| async move {
                        let _ = sender.send(self.inner.instant(&query, Some(at)).await);
                    });
                futures::future::join_all(own).await;
            }
        }
    }

    /// Each leaf's value per label value, from one grouped query per leaf; `None` when
    /// any of them failed or answered with a shape that does not fit.
    async fn leaf_results(
        &self,
        plan: &Plan,
        values: &[String],
        at: Timestamp,
    ) -> Option<Vec<HashMap<String, f64>>> {
        let mut results = Vec::with_capacity(plan.shape.leaves.len());
        for leaf in &plan.shape.leaves {
            let query = plan::grouped(leaf, values)?;
            let series = match self.inner.instant_vector(&query, Some(at)).await {
                Ok(series) => series,
                Err(error) => {
                    tracing::warn!(kind = error.metric_label(), %error, "grouped query failed; asking each analysis's own");
                    return None;
                }
            };
            results.push(by_value(series)?);
        }
        Some(results)
    }
}

/// The series of a grouped leaf by their label value; two series for one value means
/// the grouping did not hold, and the batch falls back.
fn by_value(series: Vec<LabelledValue>) -> Option<HashMap<String, f64>> {
    let mut by_value = HashMap::new();
    for (labels, value) in series {
        let label = labels.get(GROUP_LABEL)?.clone();
        if by_value.insert(label, value).is_some() {
            return None;
        }
    }
    Some(by_value)
}

#[async_trait]
impl MetricsSource for Arc<Coalescing> {
    async fn instant(&self, query: &str, at: Option<Timestamp>) -> Answer {
        match at {
            Some(at) => self.shared(query, at).await,
            None => self.inner.instant(query, None).await,
        }
    }

    async fn instant_vector(
        &self,
        query: &str,
        at: Option<Timestamp>,
    ) -> Result<Vec<LabelledValue>, QueryError> {
        self.inner.instant_vector(query, at).await
    }

    async fn range(
        &self,
        query: &str,
        end: Timestamp,
        range: Duration,
        step: Duration,
    ) -> Result<Vec<f64>, QueryError> {
        self.inner.range(query, end, range, step).await
    }
}
