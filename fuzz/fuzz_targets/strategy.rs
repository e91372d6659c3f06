//! The strategy loader: YAML bytes → a strategy or diagnostics with file:line:col.
//! A strategy that loads renders only valid PromQL.
#![no_main]

use std::path::Path;

use canaryd::engine::request::StartRequest;
use canaryd::strategy_files::{FileIdentity, parse_strategy};
use canaryd_fuzz::{assert_placed, assert_renders_promql, catalog, tolerate_caught_parser_panics};
use libfuzzer_sys::fuzz_target;

fuzz_target!(init: tolerate_caught_parser_panics(), |data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("strategies/payments/checkout-api.yaml");
    let identity = FileIdentity {
        team: "payments".into(),
        name: "checkout-api".into(),
    };
    match parse_strategy(path, source, &identity, catalog()) {
        Err(diagnostics) => assert_placed(&diagnostics, path, source),
        Ok(strategy) => {
            let mut request = StartRequest {
                strategy: strategy.id.to_string(),
                environment: "production".into(),
                ..StartRequest::default()
            };
            for (name, default) in &strategy.variables {
                if default.is_none() {
                    request.variables.insert(name.clone(), "fuzz-value".into());
                }
            }
            let variables = request
                .template_variables(&strategy)
                .unwrap_or_else(|e| panic!("a loaded strategy refuses a plain request: {e}"));
            assert_renders_promql(&strategy, &variables);
        }
    }
});
