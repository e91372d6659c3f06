//! Waits that keep the task serving its inbox: a failing router's backoff, and the
//! pause between looks at a rollout. A message that comes first is served at once, so
//! an operation never waits behind either.

use std::time::Duration;

use super::Inbox;
use super::runner::{Runner, Stop, Work};

impl Runner {
    /// Waits before trying a failing router again, serving the inbox meanwhile; false
    /// when a message came first (the shift is queued again, to be looked at anew).
    pub(super) async fn back_off(&mut self, weight: u8, inbox: &mut Inbox) -> Result<bool, Stop> {
        let backoff = self.backoff(self.router_failures);
        tokio::select! {
            () = self.inner.shutdown.cancelled() => Err(Stop),
            () = tokio::time::sleep(backoff) => Ok(true),
            message = inbox.recv() => {
                self.pending.push_front(Work::Shift(weight));
                match message {
                    Some(message) => self.on_message(*message).await.map(|()| false),
                    None => Err(Stop),
                }
            }
        }
    }

    /// Queues `work` again after `pause`, or at once after a message, which is served
    /// first so an operation never waits for a rollout.
    pub(super) async fn wait_serving_inbox(
        &mut self,
        pause: Duration,
        work: Work,
        inbox: &mut Inbox,
    ) -> Result<(), Stop> {
        tokio::select! {
            () = self.inner.shutdown.cancelled() => Err(Stop),
            () = tokio::time::sleep(pause) => {
                self.pending.push_back(work);
                Ok(())
            }
            message = inbox.recv() => {
                self.pending.push_back(work);
                match message {
                    Some(message) => self.on_message(*message).await,
                    None => Err(Stop),
                }
            }
        }
    }
}
