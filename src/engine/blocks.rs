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

/// What holds PENDING analyses back: the freezes and the blocks in force, read once
/// for every analysis they are asked about.
pub(super) struct Holds {
    freezes: Vec<crate::ports::Freeze>,
    blocks: Vec<Block>,
}

impl Holds {
    pub(super) async fn read(ports: &super::Ports) -> Result<Holds, crate::ports::StoreError> {
        Ok(Holds {
            freezes: ports.freezes.freezes().await?,
            blocks: ports.blocks.blocks().await?,
        })
    }

    /// Why `analysis` must wait before it starts: a freeze of its environment or a
    /// block of its scope.
    pub(super) fn of(&self, analysis: &Analysis) -> Option<String> {
        if let Some(freeze) = self
            .freezes
            .iter()
            .find(|f| f.environment == analysis.environment)
        {
            return Some(format!(
                "{} is frozen ({})",
                freeze.environment, freeze.reason
            ));
        }
        let scope = scope_of(analysis);
        self.blocks
            .iter()
            .find(|b| b.scope == scope)
            .map(Block::holding)
    }
}

impl Engine {
    pub async fn blocks(&self) -> Result<Vec<Block>, EngineError> {
        Ok(self.inner.ports.blocks.blocks().await?)
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
        let holds = Holds::read(&self.inner.ports).await?;
        for analysis in pending {
            if holds.of(&analysis).is_some() {
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
