//! Decide-only judgements: every metric of a strategy evaluated once, now, exactly as
//! a check would, with no analysis and no router. Other rollout controllers (an Argo
//! Rollouts `web` metric, say) ask it at each of their own steps.

use std::time::Duration;

use super::checks::{Evaluation, MetricOutcome, evaluate};
use super::{Engine, EngineError, InvalidRequest, StartRequest, parse_strategy_id};
use crate::domain::analysis::check_outcome;
use crate::domain::judge::Outcome;

/// The longest look-back a judgement may ask for.
const MAX_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// A judgement: the check's outcome, and each metric's evidence.
pub struct Judged {
    pub outcome: Outcome,
    pub metrics: Vec<MetricOutcome>,
}

impl Engine {
    /// Judges the strategy's metrics for a service and environment now; `window`
    /// overrides the strategy's `{{window}}`.
    pub async fn judge_now(
        &self,
        request: StartRequest,
        window: Option<Duration>,
    ) -> Result<Judged, EngineError> {
        let strategies = self.strategies();
        let strategy = parse_strategy_id(&request.strategy)
            .and_then(|id| strategies.get(&id))
            .ok_or_else(|| EngineError::UnknownStrategy(request.strategy.clone()))?;
        if let Some(window) = window.filter(|w| *w < Duration::from_secs(1) || *w > MAX_WINDOW) {
            return Err(InvalidRequest {
                field: "window".into(),
                message: format!(
                    "{} is not within 1s..=24h",
                    humantime::format_duration(window)
                ),
            }
            .into());
        }
        let now = chrono::Utc::now();
        // The same checks as a webhook's values: only declared variables, only safe values.
        let variables = request.template_variables(strategy)?;
        let evaluation = Evaluation {
            strategy,
            variables: &variables,
            at: now,
            pinned: false,
            window: window.unwrap_or(strategy.window),
            step_elapsed: strategy.interval,
            must_decide: true,
        };
        let metrics = evaluate(self.inner.ports.metrics.as_ref(), &evaluation).await;
        let results: Vec<_> = metrics.iter().map(MetricOutcome::result).collect();
        Ok(Judged {
            outcome: check_outcome(&results),
            metrics,
        })
    }
}
