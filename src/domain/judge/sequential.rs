//! The sequential error-rate judge: a Wald sequential probability ratio test (SPRT)
//! on the binomial error counts of the canary since its step began.
//!
//! Hypotheses: H0 "the error rate is `acceptable`" (p0) against H1 "the error rate is
//! at the limit `max`" (p1 > p0). After n requests with x errors the log-likelihood
//! ratio is
//!
//!   Λ = x·ln(p1/p0) + (n − x)·ln((1 − p1)/(1 − p0)).
//!
//! Λ ≥ ln((1 − β)/α) rejects H0 (roll back); Λ ≤ ln(β/(1 − α)) accepts it (pass);
//! in between the evidence is not yet enough and the judge answers INCONCLUSIVE while
//! gathering. Wald's inequalities bound the error probabilities of this rule for
//! *every* stopping time, so looking at Λ at each check interval (a group-sequential
//! look at a random, growing n) keeps P(roll back | p ≤ p0) ≤ α/(1 − β) ≈ α and
//! P(pass | p ≥ p1) ≤ β/(1 − α) ≈ β; overshooting a boundary between looks only makes
//! it more conservative. A fixed-horizon threshold check, re-evaluated at every
//! interval, has no such bound: its false rollbacks grow with the number of looks.
//!
//! At a step's last check (`must_decide`) the point estimate x/n against `max` decides.

use super::{Judgement, Outcome, show};
use crate::domain::strategy::{OnNoData, SequentialConfig};

/// The SPRT's state for given counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evidence {
    pub errors: u64,
    pub requests: u64,
    pub log_likelihood_ratio: f64,
    pub reject_at: f64,
    pub accept_at: f64,
}

impl Evidence {
    pub fn new(errors: u64, requests: u64, config: &SequentialConfig) -> Self {
        let (p0, p1) = (config.acceptable, config.max);
        let errors = errors.min(requests);
        let successes = (requests - errors) as f64;
        let log_likelihood_ratio =
            errors as f64 * (p1 / p0).ln() + successes * ((1.0 - p1) / (1.0 - p0)).ln();
        Self {
            errors,
            requests,
            log_likelihood_ratio,
            reject_at: ((1.0 - config.beta) / config.alpha).ln(),
            accept_at: (config.beta / (1.0 - config.alpha)).ln(),
        }
    }

    pub fn error_rate(&self) -> f64 {
        self.errors as f64 / self.requests as f64
    }

    /// `Some(true)` to roll back, `Some(false)` to pass, `None` while gathering.
    pub fn decision(&self) -> Option<bool> {
        if self.log_likelihood_ratio >= self.reject_at {
            Some(true)
        } else if self.log_likelihood_ratio <= self.accept_at {
            Some(false)
        } else {
            None
        }
    }
}

/// Judges counts read from Prometheus (`increase()` gives fractional counts; they are
/// rounded to whole requests).
pub fn judge(
    errors: Option<f64>,
    requests: Option<f64>,
    config: &SequentialConfig,
    must_decide: bool,
    on_no_data: OnNoData,
) -> Judgement {
    let requests = match requests.filter(|r| r.is_finite() && *r >= 0.5) {
        Some(requests) => requests.round() as u64,
        None => return Judgement::no_data(on_no_data, "no canary requests since the step began"),
    };
    let Some(errors) = errors.filter(|e| e.is_finite() && *e >= 0.0) else {
        return Judgement::no_data(on_no_data, "the errors query returned no usable value");
    };
    let evidence = Evidence::new(errors.round() as u64, requests, config);
    let rate = evidence.error_rate();
    let counts = format!(
        "{} errors in {} requests ({}%)",
        evidence.errors,
        evidence.requests,
        show(rate * 100.0)
    );
    let judgement = match (evidence.decision(), must_decide) {
        (Some(true), _) => Judgement::new(
            Outcome::Fail,
            format!(
                "{counts}: error rate above the limit {}% (SPRT, α={})",
                show(config.max * 100.0),
                show(config.alpha)
            ),
        ),
        (Some(false), _) => Judgement::new(
            Outcome::Pass,
            format!(
                "{counts}: error rate below the limit {}% (SPRT, β={})",
                show(config.max * 100.0),
                show(config.beta)
            ),
        ),
        (None, true) if rate > config.max => Judgement::new(
            Outcome::Fail,
            format!(
                "{counts}: above the limit {}% at the step's last check",
                show(config.max * 100.0)
            ),
        ),
        (None, true) => Judgement::new(
            Outcome::Pass,
            format!(
                "{counts}: within the limit {}% at the step's last check",
                show(config.max * 100.0)
            ),
        ),
        (None, false) => Judgement::new(
            Outcome::Inconclusive,
            format!(
                "{counts}: gathering evidence (log-likelihood ratio {} between {} and {})",
                show(evidence.log_likelihood_ratio),
                show(evidence.accept_at),
                show(evidence.reject_at)
            ),
        )
        .gathering(),
    };
    judgement
        .with_value(rate)
        .with_statistic("errors", evidence.errors as f64)
        .with_statistic("requests", evidence.requests as f64)
        .with_statistic("errorRate", rate)
        .with_statistic("logLikelihoodRatio", evidence.log_likelihood_ratio)
        .with_statistic("rejectAt", evidence.reject_at)
        .with_statistic("acceptAt", evidence.accept_at)
        .with_statistic("max", config.max)
        .with_statistic("acceptable", config.acceptable)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: SequentialConfig = SequentialConfig {
        max: 0.05,
        acceptable: 0.025,
        alpha: 0.01,
        beta: 0.05,
    };

    fn outcome(errors: f64, requests: f64, must_decide: bool) -> Judgement {
        judge(
            Some(errors),
            Some(requests),
            &CONFIG,
            must_decide,
            OnNoData::Inconclusive,
        )
    }

    #[test]
    fn a_clear_regression_fails_early() {
        let judgement = outcome(20.0, 100.0, false);
        assert_eq!(judgement.outcome, Outcome::Fail, "{}", judgement.reason);
        assert!(
            judgement
                .reason
                .starts_with("20 errors in 100 requests (20%)")
        );
    }

    #[test]
    fn a_healthy_canary_passes_once_evidence_suffices() {
        assert_eq!(outcome(0.0, 50.0, false).outcome, Outcome::Inconclusive);
        let judgement = outcome(2.0, 400.0, false);
        assert_eq!(judgement.outcome, Outcome::Pass, "{}", judgement.reason);
    }

    #[test]
    fn little_evidence_holds_the_step_as_gathering() {
        let judgement = outcome(1.0, 30.0, false);
        assert_eq!(judgement.outcome, Outcome::Inconclusive);
        assert!(judgement.gathering);
        assert!(judgement.reason.contains("gathering evidence"));
    }

    #[test]
    fn the_last_check_decides_on_the_point_estimate() {
        assert_eq!(outcome(2.0, 30.0, true).outcome, Outcome::Fail);
        assert_eq!(outcome(1.0, 30.0, true).outcome, Outcome::Pass);
    }

    #[test]
    fn no_requests_is_no_data_not_gathering() {
        for requests in [None, Some(0.0), Some(f64::NAN)] {
            let judgement = judge(Some(0.0), requests, &CONFIG, false, OnNoData::Inconclusive);
            assert_eq!(judgement.outcome, Outcome::Inconclusive);
            assert!(!judgement.gathering);
        }
    }

    #[test]
    fn fractional_counts_from_increase_are_rounded() {
        let judgement = outcome(19.6, 100.4, false);
        assert_eq!(judgement.statistics["errors"], 20.0);
        assert_eq!(judgement.statistics["requests"], 100.0);
    }

    #[test]
    fn boundaries_follow_walds_formulas() {
        let evidence = Evidence::new(0, 0, &CONFIG);
        assert!((evidence.reject_at - (0.95f64 / 0.01).ln()).abs() < 1e-12);
        assert!((evidence.accept_at - (0.05f64 / 0.99).ln()).abs() < 1e-12);
    }
}
