//! The task that runs one analysis: timers, events, and the commands they produce.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::Instrument;

use super::{Inner, Message, checks};
use crate::domain::analysis::{
    Command, Event, Record, RecordKind, Rejected, SYSTEM_ACTOR, Status, apply,
};
use crate::domain::judge::Outcome;
use crate::domain::record::{Analysis, CheckRecord, EventRecord};
use crate::ports::{Change, Notice, RouterError, TrafficRouter};

/// Work queued for the task, done one item at a time between looks at its inbox.
enum Work {
    Event(Event, Vec<CheckRecord>),
    /// Ask the router for a weight (a `SetWeight` command).
    Shift(u8),
}

struct Runner {
    inner: Arc<Inner>,
    analysis: Analysis,
    router: Result<Box<dyn TrafficRouter>, RouterError>,
    pending: VecDeque<Work>,
    /// Consecutive weight changes that failed; sets the backoff before the next one.
    router_failures: u32,
    /// The last failing metric result, named in notifications.
    last_failure: Option<CheckRecord>,
}

pub(super) async fn run(
    inner: Arc<Inner>,
    analysis: Analysis,
    inbox: mpsc::Receiver<Message>,
    resumed: bool,
    first: Option<Message>,
) {
    let span = tracing::info_span!(
        "analysis",
        id = %analysis.id,
        team = %analysis.strategy.team,
        service = %analysis.service,
        environment = %analysis.environment,
    );
    let id = analysis.id.clone();
    let router = inner.ports.routers.router(&analysis.route);
    let runner = Runner {
        inner: Arc::clone(&inner),
        analysis,
        router,
        pending: VecDeque::new(),
        router_failures: 0,
        last_failure: None,
    };
    runner.run(inbox, resumed, first).instrument(span).await;
    inner.finished(&id);
}

fn change_of(
    commands: &[Command],
    checks: Vec<CheckRecord>,
    now: crate::domain::Timestamp,
) -> Change {
    let events = commands
        .iter()
        .filter_map(|command| match command {
            Command::Record(record) => Some(EventRecord {
                at: now,
                record: record.clone(),
            }),
            _ => None,
        })
        .collect();
    Change { events, checks }
}

impl Runner {
    /// Runs until the analysis is terminal; `first` is handled before anything else
    /// (an operation on a finished analysis, such as retry, starts its task).
    async fn run(
        mut self,
        mut inbox: mpsc::Receiver<Message>,
        resumed: bool,
        first: Option<Message>,
    ) {
        if resumed {
            self.reconcile().await;
        }
        if let Some(message) = first {
            self.on_message(message).await;
        }
        loop {
            if let Some(work) = self.pending.pop_front() {
                if !self.work(work, &mut inbox).await {
                    break;
                }
                continue;
            }
            if self.analysis.state.status.is_terminal() {
                break;
            }
            let due = self.until_next_check();
            tokio::select! {
                () = self.inner.shutdown.cancelled() => break,
                message = inbox.recv() => match message {
                    Some(message) => self.on_message(message).await,
                    None => break,
                },
                () = sleep_or_never(due) => self.check().await,
            }
        }
    }

    /// Does one item of work; false when the task must stop.
    async fn work(&mut self, work: Work, inbox: &mut mpsc::Receiver<Message>) -> bool {
        match work {
            Work::Event(event, checks) => {
                let _ = self.handle(&event, checks).await;
                true
            }
            Work::Shift(weight) if weight != self.analysis.state.target_weight => true,
            Work::Shift(weight) => {
                if self.router_failures > 0 {
                    let backoff = self.backoff(self.router_failures);
                    tokio::select! {
                        () = self.inner.shutdown.cancelled() => return false,
                        () = tokio::time::sleep(backoff) => {}
                        message = inbox.recv() => {
                            // Stay responsive while waiting to try the router again.
                            self.pending.push_front(Work::Shift(weight));
                            match message {
                                Some(message) => self.on_message(message).await,
                                None => return false,
                            }
                            return true;
                        }
                    }
                }
                let event = self.shift(weight).await;
                self.pending.push_back(Work::Event(event, Vec::new()));
                true
            }
        }
    }

    async fn on_message(&mut self, message: Message) {
        let result = self
            .handle(&message.event, Vec::new())
            .await
            .map(|()| self.analysis.clone());
        if let Some(reply) = message.reply {
            let _ = reply.send(result);
        }
    }

    /// Applies an event, stores the transition, then queues or starts its commands.
    async fn handle(&mut self, event: &Event, checks: Vec<CheckRecord>) -> Result<(), Rejected> {
        let now = chrono::Utc::now();
        let (state, commands) = apply(&self.analysis.state, event, now)?;
        if state == self.analysis.state && commands.is_empty() {
            return Ok(());
        }
        let before = self.analysis.state.status;
        self.analysis.state = state;
        let change = change_of(&commands, checks, now);
        self.persist(&change).await;
        if before != self.analysis.state.status {
            tracing::info!(from = %before, to = %self.analysis.state.status, reason = %self.analysis.state.reason, "status changed");
            if self.analysis.state.status.is_terminal() {
                self.inner.ports.telemetry.finished(&self.analysis);
            }
        }
        for command in commands {
            match command {
                Command::SetWeight { weight } => self.pending.push_back(Work::Shift(weight)),
                Command::Notify { status, reason } => self.notify(status, reason),
                Command::ConfirmPromotion => self.ask_gate(),
                Command::Record(_) => {}
            }
        }
        Ok(())
    }

    /// Sends the strategy's notifications for a status, off the decision path.
    fn notify(&self, status: Status, reason: String) {
        let strategies = self.inner.strategies();
        let targets: Vec<_> = strategies
            .get(&self.analysis.strategy)
            .map(|s| {
                s.notifications
                    .iter()
                    .filter(|n| n.on.contains(&status))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if targets.is_empty() {
            return;
        }
        let failing = self
            .last_failure
            .clone()
            .filter(|_| status.is_terminal() || status == Status::RollingBack);
        let notice = Notice {
            analysis: self.analysis.clone(),
            reason,
            failing,
            targets,
        };
        let notifier = Arc::clone(&self.inner.ports.notifier);
        self.inner
            .tasks
            .spawn(async move { notifier.notify(notice).await });
    }

    /// Asks the confirm-promotion gate; a yes comes back as an event.
    fn ask_gate(&self) {
        let strategies = self.inner.strategies();
        let Some(url) = strategies
            .get(&self.analysis.strategy)
            .and_then(|s| s.confirm_promotion.clone())
        else {
            return;
        };
        let (gate, analysis, inner) = (
            Arc::clone(&self.inner.ports.gate),
            self.analysis.clone(),
            Arc::clone(&self.inner),
        );
        self.inner.tasks.spawn(async move {
            if gate.confirm(&url, &analysis).await {
                if let Some(inbox) = inner.sender(&analysis.id) {
                    let _ = inbox
                        .send(Message {
                            event: Event::PromotionConfirmed,
                            reply: None,
                        })
                        .await;
                }
            } else {
                let url = crate::telemetry::redacted(&url);
                tracing::info!(id = %analysis.id, %url, "confirm-promotion did not agree yet");
            }
        });
    }

    /// Stores the analysis; a failing store is retried: no command runs before its
    /// decision is durable.
    async fn persist(&self, change: &Change) {
        let mut attempt = 0;
        loop {
            match self.inner.ports.store.save(&self.analysis, change).await {
                Ok(()) => return,
                Err(error) => {
                    attempt += 1;
                    tracing::error!(%error, attempt, "could not store the analysis; retrying");
                    tokio::select! {
                        () = self.inner.shutdown.cancelled() => return,
                        () = tokio::time::sleep(self.backoff(attempt)) => {}
                    }
                }
            }
        }
    }

    /// Sets the router's weight, retrying a few times with backoff.
    async fn shift(&mut self, weight: u8) -> Event {
        let router = match &self.router {
            Ok(router) => router,
            Err(error) => {
                return Event::RouterFailed {
                    weight,
                    error: error.message.clone(),
                };
            }
        };
        let attempts = self.inner.settings.router_attempts.max(1);
        let mut last_error = String::new();
        for attempt in 1..=attempts {
            match router.set_weight(weight).await {
                Ok(()) => {
                    self.router_failures = 0;
                    self.inner
                        .ports
                        .telemetry
                        .weight_applied(&self.analysis, weight);
                    tracing::info!(weight, "canary weight applied");
                    return Event::WeightApplied { weight };
                }
                Err(error) => {
                    let router = crate::telemetry::RouterLabels {
                        router: self.analysis.route.kind().to_string(),
                    };
                    self.inner
                        .ports
                        .telemetry
                        .router_errors
                        .get_or_create(&router)
                        .inc();
                    tracing::warn!(weight, attempt, %error, "router refused the weight");
                    last_error = error.message;
                    if attempt < attempts {
                        tokio::time::sleep(self.backoff(attempt)).await;
                    }
                }
            }
        }
        self.router_failures += 1;
        Event::RouterFailed {
            weight,
            error: last_error,
        }
    }

    fn backoff(&self, failures: u32) -> Duration {
        let settings = &self.inner.settings;
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
        settings
            .router_backoff
            .saturating_mul(factor)
            .min(settings.router_backoff_max)
    }

    fn until_next_check(&self) -> Option<Duration> {
        let state = &self.analysis.state;
        if !state.runs_checks() || !state.weight_settled() {
            return None;
        }
        let at = state.next_check_at?;
        Some((at - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO))
    }

    async fn check(&mut self) {
        let now = chrono::Utc::now();
        let strategies = self.inner.strategies();
        let strategy = strategies.get(&self.analysis.strategy);
        let run = checks::run(
            self.inner.ports.metrics.as_ref(),
            strategy,
            &self.analysis,
            now,
        )
        .await;
        self.inner
            .ports
            .telemetry
            .checked(&self.analysis, &run.records);
        if let Some(failed) = run
            .records
            .iter()
            .find(|r| r.judgement.outcome == Outcome::Fail)
        {
            self.last_failure = Some(failed.clone());
        }
        let number = self.analysis.state.checks_done + 1;
        let event = Event::CheckCompleted {
            number,
            results: run.results,
        };
        self.pending.push_back(Work::Event(event, run.records));
    }

    /// After a restart: compare the router's real weight with what the analysis asked
    /// for, and set it again where they differ.
    async fn reconcile(&mut self) {
        let state = &self.analysis.state;
        if matches!(state.status, Status::Pending) || state.status.is_terminal() {
            return;
        }
        let target = state.target_weight;
        let actual = match &self.router {
            Ok(router) => router.weight().await.ok(),
            Err(_) => None,
        };
        if actual == Some(target) {
            if !state.weight_settled()
                || state.next_check_at.is_none() && state.status == Status::Running
            {
                self.pending.push_back(Work::Event(
                    Event::WeightApplied { weight: target },
                    Vec::new(),
                ));
            }
            return;
        }
        let seen = actual.map_or("cannot be read".to_string(), |w| format!("is {w}%"));
        let message = format!(
            "resumed: the router's canary weight {seen}, the analysis expects {target}%; setting it again"
        );
        tracing::warn!("{message}");
        let record = Record {
            kind: RecordKind::RouterError,
            actor: SYSTEM_ACTOR.to_string(),
            message,
        };
        let change = Change {
            events: vec![EventRecord {
                at: chrono::Utc::now(),
                record,
            }],
            checks: Vec::new(),
        };
        self.persist(&change).await;
        self.pending.push_back(Work::Shift(target));
    }
}

async fn sleep_or_never(duration: Option<Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}
