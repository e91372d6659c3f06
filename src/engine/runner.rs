//! The task that runs one analysis: timers, events, and the commands they produce.
//!
//! A transition is stored before any of its commands runs. When it cannot be stored
//! (shutdown, the store failing, or the lease gone to another replica) the task stops
//! where it stands, and its queued commands are dropped: the stored state is the truth
//! the analysis resumes from. One exception: a transition that takes the canary's
//! traffic away (a rollback, an abort) sets weight 0 through the fence while the store
//! refuses it, and waits in memory until the store takes it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use super::operate::OperationError;
use super::{Inbox, Inner, Input, Message};
use crate::domain::analysis::{Command, Event, Status, apply};
use crate::domain::record::{Analysis, CheckRecord, EventRecord};
use crate::domain::workload::WorkloadStep;
use crate::ports::{Change, Lease, RouterError, TrafficRouter, Workload, WorkloadError};

/// How a task starts.
pub(super) enum Boot {
    /// Just created: its lease, and the route's epoch if it owns the route already.
    Created { lease: Lease, epoch: Option<i64> },
    /// Taken over (after a restart, or from a replica that died): reconcile first.
    Resumed { lease: Lease },
    /// A terminal analysis, woken for an operation given as the first message.
    Idle,
}

/// Work queued for the task, done one item at a time between looks at its inbox.
pub(super) enum Work {
    Event(Event, Vec<CheckRecord>),
    /// Ask the router for a weight (a `SetWeight` command).
    Shift(u8),
    /// Start, if this analysis is PENDING, owns its route and is not frozen.
    Begin,
    /// Take a step on the canary workload (a `Workload` command).
    Workload(WorkloadStep),
    /// After a take-over: put the canary Deployment back as the analysis left it.
    EnsureCanary,
}

/// The task must stop: its state could not be stored, or it may no longer act.
pub(super) struct Stop;

/// Why an event was not applied.
pub(super) enum Failure {
    Refused(OperationError),
    Stop,
}

impl From<Stop> for Failure {
    fn from(_: Stop) -> Self {
        Failure::Stop
    }
}

pub(super) struct Runner {
    pub(super) inner: Arc<Inner>,
    pub(super) analysis: Analysis,
    pub(super) router: Result<Box<dyn TrafficRouter>, RouterError>,
    /// The canary workload, when the analysis deploys one.
    pub(super) workload: Option<Result<Box<dyn Workload>, WorkloadError>>,
    pub(super) pending: VecDeque<Work>,
    /// What this task's writes are fenced by; `None` only for an idle terminal analysis.
    pub(super) lease: Option<Lease>,
    /// The route's epoch while this analysis owns the route; `None` while it waits.
    pub(super) epoch: Option<i64>,
    /// Consecutive weight changes that failed; sets the backoff before the next one.
    pub(super) router_failures: u32,
    /// The last failing metric result, named in notifications.
    pub(super) last_failure: Option<CheckRecord>,
}

/// The analysis's task. The runner lives on the heap and the future holds only a
/// pointer to it: thousands of idle tasks then cost little more than their state.
pub(super) fn run(
    inner: Arc<Inner>,
    analysis: Analysis,
    inbox: Inbox,
    boot: Boot,
    first: Option<Message>,
) -> impl Future<Output = ()> + Send + 'static {
    let span = tracing::info_span!(
        "analysis",
        id = %analysis.id,
        team = %analysis.strategy.team,
        service = %analysis.service,
        environment = %analysis.environment,
    );
    let id = analysis.id.clone();
    let router = inner.ports.routers.router(&analysis.route);
    let workload = analysis.workload.as_ref().map(|target| {
        let tag = analysis.image_tag.as_deref().unwrap_or_default();
        inner.ports.workloads.workload(target, tag)
    });
    let runner = Box::new(Runner {
        inner: Arc::clone(&inner),
        analysis,
        router,
        workload,
        pending: VecDeque::new(),
        lease: None,
        epoch: None,
        router_failures: 0,
        last_failure: None,
    });
    async move {
        runner.run(inbox, boot, first).instrument(span).await;
        inner.finished(&id);
    }
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
    /// Runs until the analysis is terminal or the task must stop.
    async fn run(mut self: Box<Self>, mut inbox: Inbox, boot: Boot, first: Option<Message>) {
        let booted = match boot {
            Boot::Created { lease, epoch } => {
                self.lease = Some(lease);
                self.epoch = epoch;
                self.pending.push_back(Work::Begin);
                Ok(())
            }
            Boot::Resumed { lease } => {
                self.lease = Some(lease);
                Box::pin(self.resume()).await
            }
            Boot::Idle => Ok(()),
        };
        if booted.is_err() {
            return;
        }
        if let Some(message) = first
            && Box::pin(self.on_message(message)).await.is_err()
        {
            return;
        }
        while self.step(&mut inbox).await.is_ok() {}
    }

    /// One turn of the loop: queued work first, then the inbox or the next check.
    async fn step(&mut self, inbox: &mut Inbox) -> Result<(), Stop> {
        // Work, messages and checks run boxed: an idle task (most of them, most of the
        // time) then holds only this small future, not the largest of theirs.
        if let Some(work) = self.pending.pop_front() {
            return Box::pin(self.work(work, inbox)).await;
        }
        if self.analysis.state.status.is_terminal() {
            return Err(Stop);
        }
        let due = self.until_next_check();
        tokio::select! {
            () = self.inner.shutdown.cancelled() => Err(Stop),
            message = inbox.recv() => match message {
                Some(message) => Box::pin(self.on_message(*message)).await,
                None => Err(Stop),
            },
            () = sleep_or_never(due) => {
                Box::pin(self.check()).await;
                Ok(())
            }
        }
    }

    /// Does one item of work.
    async fn work(&mut self, work: Work, inbox: &mut Inbox) -> Result<(), Stop> {
        match work {
            Work::Event(event, checks) => match self.handle(&event, checks).await {
                Err(Failure::Stop) => Err(Stop),
                _ => Ok(()),
            },
            Work::Begin => self.begin().await,
            Work::Workload(step) => self.take_workload_step(step, inbox).await,
            Work::EnsureCanary => self.ensure_canary().await,
            // A terminal analysis never touches the router again, and a weight that is
            // no longer the target is not worth setting.
            Work::Shift(_) if self.analysis.state.status.is_terminal() => Ok(()),
            Work::Shift(weight) if weight != self.analysis.state.target_weight => Ok(()),
            Work::Shift(weight) => {
                if self.router_failures > 0 && !self.back_off(weight, inbox).await? {
                    return Ok(());
                }
                let event = self.shift(weight).await?;
                self.pending.push_back(Work::Event(event, Vec::new()));
                Ok(())
            }
        }
    }

    pub(super) async fn on_message(&mut self, message: Message) -> Result<(), Stop> {
        let event = match message.input {
            Input::Granted { epoch } => {
                tracing::info!(epoch, "the route is ours now");
                self.epoch = Some(epoch);
                self.pending.push_back(Work::Begin);
                return Ok(());
            }
            Input::Event(Event::Start) => {
                self.pending.push_back(Work::Begin);
                return Ok(());
            }
            Input::Event(event) => event,
        };
        let outcome = self.handle(&event, Vec::new()).await;
        let (reply, result) = match outcome {
            Ok(()) => (Ok(self.analysis.clone()), Ok(())),
            Err(Failure::Refused(error)) => (Err(error), Ok(())),
            Err(Failure::Stop) => (
                Err(OperationError::unavailable(&self.analysis.id)),
                Err(Stop),
            ),
        };
        if let Some(sender) = message.reply {
            let _ = sender.send(reply);
        }
        result
    }

    /// Starts a PENDING analysis that owns its route, unless its environment is frozen
    /// or its scope blocked.
    async fn begin(&mut self) -> Result<(), Stop> {
        if self.analysis.state.status != Status::Pending || self.epoch.is_none() {
            return Ok(());
        }
        match super::blocks::Holds::read(&self.inner.ports).await {
            Ok(holds) if holds.of(&self.analysis).is_none() => {}
            Ok(_) => return Ok(()),
            Err(error) => {
                tracing::error!(%error, "cannot read freezes and blocks; the analysis waits for the store");
                return self.stall();
            }
        }
        match self.handle(&Event::Start, Vec::new()).await {
            Err(Failure::Stop) => Err(Stop),
            _ => Ok(()),
        }
    }

    /// Applies an event and stores the transition; only then queues its commands.
    pub(super) async fn handle(
        &mut self,
        event: &Event,
        checks: Vec<CheckRecord>,
    ) -> Result<(), Failure> {
        let now = chrono::Utc::now();
        let (state, commands) = apply(&self.analysis.state, event, now)
            .map_err(|rejected| Failure::Refused(OperationError::Rejected(rejected)))?;
        if state == self.analysis.state && commands.is_empty() {
            return Ok(());
        }
        let before = self.analysis.state.status;
        let change = change_of(&commands, checks, now);
        let withdraws = commands
            .iter()
            .any(|command| matches!(command, Command::SetWeight { weight: 0 }));
        self.store_transition(state, &change, withdraws).await?;
        self.after_transition(before);
        for command in commands {
            match command {
                Command::SetWeight { weight } => self.pending.push_back(Work::Shift(weight)),
                Command::Notify { status, reason } => self.notify(status, reason),
                Command::ConfirmPromotion => self.ask_gate(),
                Command::Workload { step } => self.pending.push_back(Work::Workload(step)),
                Command::Record(_) => {}
            }
        }
        Ok(())
    }

    /// Makes `state` the analysis's own once it is stored. The usual transition is
    /// stored in place, with no copy of the analysis; a terminal analysis coming back
    /// (a retry) must first take its route over again. A transition that `withdraws`
    /// the canary's traffic is not held back by a store that refuses it.
    async fn store_transition(
        &mut self,
        state: crate::domain::analysis::AnalysisState,
        change: &Change,
        withdraws: bool,
    ) -> Result<(), Failure> {
        let before = self.analysis.state.status;
        if before.is_terminal() && !state.status.is_terminal() {
            let mut next = self.analysis.clone();
            next.state = state;
            self.take_over(&next, before, change).await?;
            self.analysis = next;
            return Ok(());
        }
        let previous = std::mem::replace(&mut self.analysis.state, state);
        let stored = if withdraws {
            self.persist_withdrawal(change).await
        } else {
            self.persist(&self.analysis, change).await
        };
        if let Err(stop) = stored {
            self.analysis.state = previous;
            return Err(stop.into());
        }
        Ok(())
    }

    fn after_transition(&self, before: Status) {
        let status = self.analysis.state.status;
        if before != status {
            tracing::info!(from = %before, to = %status, reason = %self.analysis.state.reason, "status changed");
            if status.is_terminal() {
                self.inner.ports.telemetry.finished(&self.analysis);
            }
        }
    }

    pub(super) fn backoff(&self, failures: u32) -> Duration {
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
}

async fn sleep_or_never(duration: Option<Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}
