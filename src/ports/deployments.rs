//! Deployments recorded by pipelines, and what every environment runs now.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::deployment::RecordedDeployment;
use crate::domain::record::Analysis;

/// Filters for listing recorded deployments, newest `deployedAt` first.
#[derive(Debug, Clone, Default)]
pub struct RecordQuery {
    pub team: Option<String>,
    pub service: Option<String>,
    pub environment: Option<String>,
    pub limit: Option<usize>,
}

/// Per environment, the newest DEPLOYED release of one service from each source.
#[derive(Debug, Clone, Default)]
pub struct Current {
    /// canaryd's own analyses that ended DEPLOYED, the newest of each environment.
    pub analyses: Vec<Analysis>,
    /// Recorded deployments with status DEPLOYED, the newest of each environment.
    pub recorded: Vec<RecordedDeployment>,
}

#[async_trait]
pub trait DeploymentStore: Send + Sync {
    async fn record_deployment(&self, deployment: &RecordedDeployment) -> Result<(), StoreError>;
    async fn recorded_deployment(&self, id: &str)
    -> Result<Option<RecordedDeployment>, StoreError>;
    async fn recorded_deployments(
        &self,
        query: &RecordQuery,
    ) -> Result<Vec<RecordedDeployment>, StoreError>;
    /// What is DEPLOYED of `service`, newest per environment, within `team` if given.
    async fn current(&self, service: &str, team: Option<&str>) -> Result<Current, StoreError>;
}
