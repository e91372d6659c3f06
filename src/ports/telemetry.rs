//! What the engine reports about analyses, for metrics. The exporter behind it decides
//! names and labels; the engine only says what happened.

use crate::domain::record::{Analysis, CheckRecord};
use crate::domain::strategy::Strategy;

pub trait AnalysisTelemetry: Send + Sync {
    /// The strategies in force: counters whose labels they determine start at 0.
    fn strategies_loaded(&self, strategies: &[&Strategy]);
    /// A new or resumed analysis, with its strategy's metric names: its series exist
    /// from now on, counters at 0.
    fn analysis_created(&self, analysis: &Analysis, metrics: &[&str]);
    fn weight_applied(&self, analysis: &Analysis, weight: u8);
    fn checked(&self, analysis: &Analysis, records: &[CheckRecord]);
    /// The analysis reached its verdict.
    fn finished(&self, analysis: &Analysis);
    /// One failed attempt to drive a router of type `router`.
    fn router_failed(&self, router: &str);
}

/// Reports nothing: for tests that do not look at metrics.
pub struct NoTelemetry;

impl AnalysisTelemetry for NoTelemetry {
    fn strategies_loaded(&self, _strategies: &[&Strategy]) {}
    fn analysis_created(&self, _analysis: &Analysis, _metrics: &[&str]) {}
    fn weight_applied(&self, _analysis: &Analysis, _weight: u8) {}
    fn checked(&self, _analysis: &Analysis, _records: &[CheckRecord]) {}
    fn finished(&self, _analysis: &Analysis) {}
    fn router_failed(&self, _router: &str) {}
}
