//! PromQL parsing that fails closed. promql-parser panics on some inputs (a duration
//! too large for `std::time::Duration`, found by fuzzing the strategy loader); here
//! such a panic is an error like any other, not a crashed reload or check.

use promql_parser::parser::Expr;

/// Parses `query`; every failure, a panic in the parser included, is an `Err`.
pub fn parse(query: &str) -> Result<Expr, String> {
    std::panic::catch_unwind(|| promql_parser::parser::parse(query)).unwrap_or_else(|_| {
        Err("the PromQL parser gave up on it (a number or duration out of range?)".to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_beyond_any_clock_is_an_error_not_a_panic() {
        let huge = format!("rate(x[5m])[{}:1m]", "8".repeat(64));
        let error = parse(&huge).unwrap_err();
        assert!(error.contains("out of range"), "{error}");
        assert!(parse("sum(rate(x[5m]))").is_ok());
        assert!(parse("sum(").is_err());
    }
}
