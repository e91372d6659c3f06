//! Simulated canaries: the sequential (SPRT) error-rate judge against a plain
//! per-interval threshold check (Flagger's rule) and a single fixed-horizon check.
//!
//! `cargo bench --bench sequential_simulation` runs 10,000 canaries per scenario and
//! prints a table; under `cargo test` it runs 200 to keep the code exercised.
//!
//! Setting: a 5% error-rate limit, 100 canary requests per check interval, α = 0.01,
//! β = 0.05, `acceptable` = 3% (a canary at 3% is healthy and must be promoted).
//! - sequential: canaryd's judge on the counts since the step began, at every interval,
//!   up to 100 intervals (then the point estimate decides);
//! - per-interval threshold: each interval's own error rate > 5% is a failed check;
//!   the first failed check rolls back; 10 passing checks promote (Flagger's
//!   `threshold: 1`, `iterations: 10`);
//! - fixed horizon: one look after n requests, rate > 5% rolls back, with n chosen for
//!   the same α and β as the sequential test (normal approximation).

use canaryd::domain::judge::{Outcome, sequential};
use canaryd::domain::strategy::{OnNoData, SequentialConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const LIMIT: f64 = 0.05;
const REQUESTS_PER_INTERVAL: u64 = 100;
const MAX_INTERVALS: u64 = 100;
const FLAGGER_CHECKS: u64 = 10;
const CONFIG: SequentialConfig = SequentialConfig {
    max: LIMIT,
    acceptable: 0.03,
    alpha: 0.01,
    beta: 0.05,
};

/// Simulates one canary at a true error rate.
type Simulation = Box<dyn Fn(&mut StdRng) -> Run>;

/// How one simulated canary ended: rolled back or not, after how many requests.
struct Run {
    rolled_back: bool,
    requests: u64,
}

fn errors_in(rng: &mut StdRng, requests: u64, rate: f64) -> u64 {
    (0..requests).filter(|_| rng.random::<f64>() < rate).count() as u64
}

fn sequential_run(rng: &mut StdRng, rate: f64) -> Run {
    let (mut errors, mut requests) = (0, 0);
    for interval in 1..=MAX_INTERVALS {
        errors += errors_in(rng, REQUESTS_PER_INTERVAL, rate);
        requests += REQUESTS_PER_INTERVAL;
        let must_decide = interval == MAX_INTERVALS;
        let judgement = sequential::judge(
            Some(errors as f64),
            Some(requests as f64),
            &CONFIG,
            must_decide,
            OnNoData::Inconclusive,
        );
        match judgement.outcome {
            Outcome::Fail => {
                return Run {
                    rolled_back: true,
                    requests,
                };
            }
            Outcome::Pass => {
                return Run {
                    rolled_back: false,
                    requests,
                };
            }
            _ => {}
        }
    }
    unreachable!("the last interval decides")
}

fn per_interval_threshold_run(rng: &mut StdRng, rate: f64) -> Run {
    for check in 1..=FLAGGER_CHECKS {
        let errors = errors_in(rng, REQUESTS_PER_INTERVAL, rate);
        if errors as f64 / REQUESTS_PER_INTERVAL as f64 > LIMIT {
            return Run {
                rolled_back: true,
                requests: check * REQUESTS_PER_INTERVAL,
            };
        }
    }
    Run {
        rolled_back: false,
        requests: FLAGGER_CHECKS * REQUESTS_PER_INTERVAL,
    }
}

/// Requests a single look needs for the same α (at `acceptable`) and β (at the limit).
fn fixed_horizon_requests() -> u64 {
    let (z_alpha, z_beta) = (2.326_347_874, 1.644_853_627); // Φ⁻¹(0.99), Φ⁻¹(0.95)
    let (p0, p1) = (CONFIG.acceptable, CONFIG.max);
    let spread = z_alpha * (p0 * (1.0 - p0)).sqrt() + z_beta * (p1 * (1.0 - p1)).sqrt();
    ((spread / (p1 - p0)).powi(2)).ceil() as u64
}

fn fixed_horizon_run(rng: &mut StdRng, rate: f64, horizon: u64) -> Run {
    // The cut-off between the two hypotheses that gives the chosen α.
    let p0 = CONFIG.acceptable;
    let cutoff = p0 + 2.326_347_874 * (p0 * (1.0 - p0) / horizon as f64).sqrt();
    let errors = errors_in(rng, horizon, rate);
    Run {
        rolled_back: errors as f64 / horizon as f64 > cutoff,
        requests: horizon,
    }
}

fn summarize(runs: &[Run]) -> (f64, u64) {
    let rolled_back = runs.iter().filter(|r| r.rolled_back).count() as f64 / runs.len() as f64;
    let mut requests: Vec<u64> = runs.iter().map(|r| r.requests).collect();
    requests.sort_unstable();
    (rolled_back, requests[requests.len() / 2])
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let canaries = if full { 10_000 } else { 200 };
    let horizon = fixed_horizon_requests();
    println!(
        "{canaries} simulated canaries per scenario; limit {}%, {} requests per interval",
        LIMIT * 100.0,
        REQUESTS_PER_INTERVAL
    );
    println!("| true error rate | judge | rolled back | median requests to decision |");
    println!("|---|---|---|---|");
    for (rate, meaning) in [
        (0.03, "healthy: rollbacks are false"),
        (0.05, "at the limit"),
        (0.10, "regression: promotions are misses"),
    ] {
        let mut rng = StdRng::seed_from_u64((rate * 1000.0) as u64);
        let judges: [(&str, Simulation); 3] = [
            (
                "sequential (SPRT)",
                Box::new(move |rng| sequential_run(rng, rate)),
            ),
            (
                "per-interval threshold (Flagger)",
                Box::new(move |rng| per_interval_threshold_run(rng, rate)),
            ),
            (
                "fixed horizon, same α/β",
                Box::new(move |rng| fixed_horizon_run(rng, rate, horizon)),
            ),
        ];
        for (name, run) in &judges {
            let runs: Vec<Run> = (0..canaries).map(|_| run(&mut rng)).collect();
            let (rolled_back, median) = summarize(&runs);
            println!(
                "| {}% ({meaning}) | {name} | {:.2}% | {median} |",
                rate * 100.0,
                rolled_back * 100.0
            );
        }
    }
}
