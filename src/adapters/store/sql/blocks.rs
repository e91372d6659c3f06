//! Blocks: set by emergency releases, lifted (and kept) with who and why.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{SqlStore, backend, parse_time, sql, time};
use crate::domain::release::{Block, Scope};
use crate::ports::{BlockStore, Lifted, StoreError};

const COLUMNS: &str =
    "id, team, strategy, service, environment, cause, image_tag, reason, actor, created_at";

#[async_trait]
impl BlockStore for SqlStore {
    async fn add_block(&self, block: &Block) -> Result<(), StoreError> {
        sql(format!(
            "INSERT INTO blocks ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&block.id)
        .bind(&block.team)
        .bind(&block.scope.strategy)
        .bind(&block.scope.service)
        .bind(&block.scope.environment)
        .bind(&block.cause)
        .bind(&block.image_tag)
        .bind(&block.reason)
        .bind(&block.actor)
        .bind(time(&block.created_at))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn blocks(&self) -> Result<Vec<Block>, StoreError> {
        let rows = sql(format!(
            "SELECT {COLUMNS} FROM blocks WHERE lifted_at IS NULL ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(block_from).collect()
    }

    async fn lift_block(&self, id: &str, lifted: &Lifted) -> Result<Option<Block>, StoreError> {
        let row = sql(format!(
            "UPDATE blocks SET lifted_by = $2, lifted_reason = $3, lifted_at = $4 \
             WHERE id = $1 AND lifted_at IS NULL RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(&lifted.actor)
        .bind(&lifted.reason)
        .bind(time(&lifted.at))
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(block_from).transpose()
    }
}

fn block_from(row: &AnyRow) -> Result<Block, StoreError> {
    let text =
        |column: usize| -> Result<String, StoreError> { row.try_get(column).map_err(backend) };
    Ok(Block {
        id: text(0)?,
        team: text(1)?,
        scope: Scope {
            strategy: text(2)?,
            service: text(3)?,
            environment: text(4)?,
        },
        cause: text(5)?,
        image_tag: text(6)?,
        reason: text(7)?,
        actor: text(8)?,
        created_at: parse_time(&text(9)?)?,
    })
}
