//! Blocks set by emergency releases.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::Timestamp;
use crate::domain::release::Block;

/// Who lifted a block, and why: kept with the block.
#[derive(Debug, Clone)]
pub struct Lifted {
    pub actor: String,
    pub reason: String,
    pub at: Timestamp,
}

#[async_trait]
pub trait BlockStore: Send + Sync {
    async fn add_block(&self, block: &Block) -> Result<(), StoreError>;
    /// Blocks not lifted, oldest first.
    async fn blocks(&self) -> Result<Vec<Block>, StoreError>;
    /// Lifts a block; `None` when there is no block with that id that is not lifted.
    async fn lift_block(&self, id: &str, lifted: &Lifted) -> Result<Option<Block>, StoreError>;
}
