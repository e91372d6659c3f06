//! Blocks: after an emergency rollback or roll forward, new analyses of that scope wait
//! in PENDING, as behind a freeze, until someone lifts the block with a reason.

use super::{Engine, EngineError, Message};
use crate::domain::analysis::{Event, Status};
use crate::domain::record::Analysis;
use crate::domain::release::{Block, Scope};
use crate::ports::{AnalysisQuery, Lifted, ReleaseNotice};

/// The scope an analysis belongs to.
pub fn scope_of(analysis: &Analysis) -> Scope {
    Scope {
        strategy: analysis.strategy.to_string(),
        service: analysis.service.clone(),
        environment: analysis.environment.clone(),
    }
}

impl Engine {
    /// Why a new analysis must wait before it starts: a freeze of its environment or a
    /// block of its scope.
    pub(super) async fn hold_of(&self, analysis: &Analysis) -> Result<Option<String>, EngineError> {
        if let Some(freeze) = self.freeze_of(&analysis.environment).await? {
            return Ok(Some(format!(
                "{} is frozen ({})",
                freeze.environment, freeze.reason
            )));
        }
        let blocks = self
            .inner
            .ports
            .blocks
            .blocks(Some(&scope_of(analysis)))
            .await?;
        Ok(blocks.first().map(Block::holding))
    }

    pub async fn blocks(&self) -> Result<Vec<Block>, EngineError> {
        Ok(self.inner.ports.blocks.blocks(None).await?)
    }

    pub async fn block(&self, block: &Block) -> Result<(), EngineError> {
        self.inner.ports.blocks.add_block(block).await?;
        tracing::info!(id = %block.id, strategy = %block.scope.strategy, environment = %block.scope.environment,
            actor = %block.actor, "scope blocked");
        Ok(())
    }

    /// Lifts a block; the analyses it held start once nothing else holds them.
    pub async fn unblock(&self, id: &str, lifted: &Lifted) -> Result<Option<Block>, EngineError> {
        let Some(block) = self.inner.ports.blocks.lift_block(id, lifted).await? else {
            return Ok(None);
        };
        tracing::info!(id, actor = %lifted.actor, reason = %lifted.reason, "block lifted");
        let waiting = AnalysisQuery {
            statuses: vec![Status::Pending],
            environment: Some(block.scope.environment.clone()),
            ..AnalysisQuery::default()
        };
        let mut pending = self.inner.ports.store.list(&waiting).await?;
        pending.retain(|analysis| scope_of(analysis) == block.scope);
        pending.reverse(); // oldest first
        self.release_held(pending).await?;
        Ok(Some(block))
    }

    /// Starts each analysis that nothing holds any more; one waiting behind another on
    /// its route starts when the route is handed to it.
    pub(super) async fn release_held(&self, pending: Vec<Analysis>) -> Result<(), EngineError> {
        for analysis in pending {
            if self.hold_of(&analysis).await?.is_some() {
                continue;
            }
            if let Some(sender) = self.inner.sender(&analysis.id) {
                let _ = sender.send(Message::event(Event::Start)).await;
            }
        }
        Ok(())
    }

    /// Tells the strategy's notification targets about a release, off the caller's path.
    pub fn announce(&self, release: ReleaseNotice) {
        let notifier = std::sync::Arc::clone(&self.inner.ports.notifier);
        self.inner
            .tasks
            .spawn(async move { notifier.announce(release).await });
    }
}
