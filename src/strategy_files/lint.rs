//! Warnings: a strategy that is valid but likely to fail for want of data, or to judge
//! samples that are not independent. They never stop a strategy from loading.

use std::time::Duration;

use promql_parser::parser::{Expr, parse};
use serde_saphyr::Location;

use super::diagnostics::FileDiagnostics;

/// What the warnings are measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lint {
    /// The scrape interval of the Prometheus the queries run against.
    pub scrape_interval: Duration,
}

/// Prometheus's own default is 1m; 15s is the common setting and the example config's.
pub const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(15);

impl Default for Lint {
    fn default() -> Self {
        Self {
            scrape_interval: DEFAULT_SCRAPE_INTERVAL,
        }
    }
}

/// Functions whose range selector must hold several samples to return anything.
const RANGE_FUNCTIONS: [&str; 6] = ["rate", "irate", "increase", "delta", "idelta", "deriv"];

/// The ranges of every rate-like function in `query` (empty when it does not parse).
pub fn rate_ranges(query: &str) -> Vec<Duration> {
    let mut ranges = Vec::new();
    if let Ok(expr) = parse(query) {
        collect(&expr, &mut ranges);
    }
    ranges
}

fn collect(expr: &Expr, ranges: &mut Vec<Duration>) {
    match expr {
        Expr::Call(call) => {
            for arg in &call.args.args {
                match arg.as_ref() {
                    Expr::MatrixSelector(m) if RANGE_FUNCTIONS.contains(&call.func.name) => {
                        ranges.push(m.range);
                    }
                    other => collect(other, ranges),
                }
            }
        }
        Expr::Aggregate(a) => {
            collect(&a.expr, ranges);
            if let Some(param) = &a.param {
                collect(param, ranges);
            }
        }
        Expr::Binary(b) => {
            collect(&b.lhs, ranges);
            collect(&b.rhs, ranges);
        }
        Expr::Paren(p) => collect(&p.expr, ranges),
        Expr::Unary(u) => collect(&u.expr, ranges),
        Expr::Subquery(s) => collect(&s.expr, ranges),
        _ => {}
    }
}

fn show(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

impl FileDiagnostics<'_> {
    /// A window under four scrape intervals leaves `rate()` too few samples: it returns
    /// nothing, and canaries fail for want of data.
    pub fn lint_window(&mut self, at: &Location, window: Duration) {
        let scrape = self.lint.scrape_interval;
        if window < scrape * 4 {
            let message = format!(
                "window {} is shorter than 4 scrape intervals (4 × {}): rate() over it may return no data, \
                 and canaries would fail for want of data; make it at least {}",
                show(window),
                show(scrape),
                show(scrape * 4)
            );
            self.warn(at, message);
        }
    }

    /// Samples taken closer together than the range of a `rate()` in the query share
    /// most of their data: the test sees fewer independent samples than it counts.
    pub fn lint_sample_overlap(&mut self, at: &Location, label: &str, query: &str, step: Duration) {
        let Some(range) = rate_ranges(query).into_iter().max() else {
            return;
        };
        if step < range {
            let message = format!(
                "{label}: sampleStep {} is shorter than the range [{}] of a rate() in the query: \
                 the samples overlap and are not independent; use a sampleStep of at least {}",
                show(step),
                show(range),
                show(range)
            );
            self.warn(at, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_ranges_of_rate_like_functions_only() {
        let query =
            "sum(rate(a[5m])) / sum(increase(b[1m])) + max_over_time(c[10m]) - (irate(d[30s]))";
        assert_eq!(
            rate_ranges(query),
            [
                Duration::from_secs(300),
                Duration::from_secs(60),
                Duration::from_secs(30)
            ]
        );
        assert!(rate_ranges("up").is_empty());
        assert!(rate_ranges("sum(").is_empty());
    }
}
