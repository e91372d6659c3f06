//! Deployment groups: which analyses were started together.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::group::DeploymentGroup;

#[async_trait]
pub trait GroupStore: Send + Sync {
    /// Stores a group whose members are already stored analyses.
    async fn create_group(&self, group: &DeploymentGroup) -> Result<(), StoreError>;
    async fn group(&self, id: &str) -> Result<Option<DeploymentGroup>, StoreError>;
}
