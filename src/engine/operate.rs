//! Operations (pause, resume, promote, rollback, abort, retry). Whichever replica
//! receives one, the analysis's own task applies it: directly when it runs here,
//! through the database inbox when another replica runs it. A terminal analysis has no
//! task; one is started for the operation (only retry applies, as a route take-over).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::runner::Boot;
use super::{Engine, EngineError, Inner, Input, Message};
use crate::domain::analysis::{Event, Operation, Rejected};
use crate::domain::record::Analysis;
use crate::ports::InboxMessage;

/// Why an operation was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum OperationError {
    #[error("{0}")]
    Rejected(#[serde(with = "rejected")] Rejected),
    /// Another analysis is active on the route (a retry would take it from it).
    #[error(
        "route {route} is busy: analysis {owner} is active on it; abort it or wait for it to end"
    )]
    RouteBusy { route: String, owner: String },
    /// The analysis's task could not answer (stopping, stalled, or on a replica that
    /// did not answer in time).
    #[error("{0}")]
    Unavailable(String),
}

impl OperationError {
    pub(super) fn unavailable(id: &str) -> Self {
        OperationError::Unavailable(format!(
            "analysis {id} stopped before the operation was stored; it resumes from its last stored state"
        ))
    }
}

/// `Rejected` on the wire: the allowed statuses follow from the operation.
mod rejected {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::domain::analysis::{Operation, Rejected, Status};

    #[derive(Serialize, Deserialize)]
    struct Wire {
        operation: Operation,
        status: Status,
    }

    pub fn serialize<S: Serializer>(rejected: &Rejected, serializer: S) -> Result<S::Ok, S::Error> {
        Wire {
            operation: rejected.operation,
            status: rejected.status,
        }
        .serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Rejected, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        Ok(Rejected {
            operation: wire.operation,
            status: wire.status,
            allowed: wire.operation.allowed_in(),
        })
    }
}

type Outcome = Result<Analysis, OperationError>;

impl Engine {
    /// Applies an operation and answers with the analysis as it then stands.
    pub async fn operate(
        &self,
        id: &str,
        operation: Operation,
        actor: &str,
        reason: &str,
    ) -> Result<Analysis, EngineError> {
        let event = Event::Operation {
            operation,
            actor: actor.to_string(),
            reason: reason.to_string(),
        };
        if let Some(outcome) = self.inner.ask(id, event.clone()).await {
            return Ok(outcome?);
        }
        let _guard = self.inner.idle_operations.lock().await;
        if let Some(outcome) = self.inner.ask(id, event.clone()).await {
            return Ok(outcome?);
        }
        let analysis = self
            .inner
            .ports
            .store
            .get(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(id.to_string()))?;
        if analysis.state.status.is_terminal() {
            return self.operate_idle(analysis, event).await;
        }
        if let Some(lease) = self.inner.take_stalled(id) {
            let (first, answer) = asking(event);
            self.spawn(analysis, Boot::Resumed { lease }, Some(first));
            return Ok(answer.await.map_err(|_| EngineError::ShuttingDown)??);
        }
        Ok(self.operate_remote(id, event).await?)
    }

    /// A terminal analysis: its task starts for this one operation.
    async fn operate_idle(
        &self,
        analysis: Analysis,
        event: Event,
    ) -> Result<Analysis, EngineError> {
        // Refused operations need no task.
        crate::domain::analysis::apply(&analysis.state, &event, chrono::Utc::now())?;
        let (first, answer) = asking(event);
        if !self.spawn(analysis, Boot::Idle, Some(first)) {
            return Err(
                OperationError::Unavailable("the analysis is busy; try again".into()).into(),
            );
        }
        Ok(answer.await.map_err(|_| EngineError::ShuttingDown)??)
    }

    /// The analysis runs on another replica: ask it through the inbox.
    async fn operate_remote(&self, id: &str, event: Event) -> Result<Analysis, OperationError> {
        let reply_id = uuid::Uuid::now_v7().to_string();
        let message = InboxMessage::Event {
            event,
            reply_id: Some(reply_id.clone()),
        };
        let inbox = &self.inner.ports.inbox;
        let unavailable = |e: crate::ports::StoreError| OperationError::Unavailable(e.to_string());
        inbox.post(id, &message).await.map_err(unavailable)?;
        let deadline = Instant::now() + self.inner.settings.remote_timeout;
        while Instant::now() < deadline {
            if let Some(text) = inbox.reply(&reply_id).await.map_err(unavailable)? {
                return serde_json::from_str::<Outcome>(&text).map_err(|e| {
                    OperationError::Unavailable(format!("unreadable answer from the replica: {e}"))
                })?;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(OperationError::Unavailable(format!(
            "the replica running analysis {id} did not answer within {:?}; the operation may \
             still apply when it does: look at the analysis's events before trying again",
            self.inner.settings.remote_timeout
        )))
    }
}

fn asking(event: Event) -> (Message, oneshot::Receiver<Outcome>) {
    let (reply, answer) = oneshot::channel();
    let message = Message {
        input: Input::Event(event),
        reply: Some(reply),
    };
    (message, answer)
}

impl Inner {
    /// Asks this replica's task of an analysis to apply an event; `None` when none runs.
    pub(super) async fn ask(&self, id: &str, event: Event) -> Option<Outcome> {
        let sender = self.sender(id)?;
        let (message, answer) = asking(event);
        sender.send(message).await.ok()?;
        answer.await.ok()
    }

    /// Answers an operation another replica forwarded.
    pub(super) async fn answer_remote(&self, id: &str, event: Event) -> Outcome {
        match self.ask(id, event).await {
            Some(outcome) => outcome,
            None => Err(OperationError::Unavailable(format!(
                "analysis {id} is not running on the replica that holds it; it resumes shortly"
            ))),
        }
    }
}
