//! What an analysis task does besides deciding and driving the router: it runs its
//! checks, tells people about status changes, and asks the confirm-promotion gate.
//! None of these waits on the decision path.

use std::sync::Arc;

use super::runner::{Runner, Work};
use super::{Message, checks};
use crate::domain::analysis::{Event, Status};
use crate::domain::judge::Outcome;
use crate::ports::Notice;

impl Runner {
    /// Sends the strategy's notifications for a status, off the decision path.
    pub(super) fn notify(&self, status: Status, reason: String) {
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
    pub(super) fn ask_gate(&self) {
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
                    let _ = inbox.send(Message::event(Event::PromotionConfirmed)).await;
                }
            } else {
                let url = crate::telemetry::redacted(&url);
                tracing::info!(id = %analysis.id, %url, "confirm-promotion did not agree yet");
            }
        });
    }

    pub(super) async fn check(&mut self) {
        // The check's moment on its grid, however late the task got to it.
        let due = self
            .analysis
            .state
            .next_check_at
            .unwrap_or_else(chrono::Utc::now);
        let strategies = self.inner.strategies();
        let strategy = strategies.get(&self.analysis.strategy);
        let run = checks::run(
            self.inner.ports.metrics.as_ref(),
            strategy,
            &self.analysis,
            due,
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
}
