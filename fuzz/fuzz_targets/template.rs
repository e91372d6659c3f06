//! The template renderer with arbitrary variables: a template parses or names its
//! place; rendering fails only for a variable without a value; and a webhook's
//! variables, once accepted, cannot make a shipped strategy send invalid PromQL.
#![no_main]

use std::collections::BTreeMap;

use canaryd::domain::template::Template;
use canaryd::engine::request::StartRequest;
use canaryd_fuzz::{tolerate_caught_parser_panics, assert_renders_promql, shipped};
use libfuzzer_sys::fuzz_target;

/// NUL-separated: the template, the strategy's index, the environment, the service
/// (empty: the strategy's own), then `name=value` variables.
#[derive(Debug)]
struct Input {
    source: String,
    variables: BTreeMap<String, String>,
    strategy: u8,
    environment: String,
    service: Option<String>,
}

impl Input {
    fn parse(text: &str) -> Self {
        let mut fields = text.split('\0');
        let mut next = || fields.next().unwrap_or_default().to_string();
        let (source, strategy, environment, service) = (next(), next(), next(), next());
        let variables = fields
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        Self {
            source,
            variables,
            strategy: strategy.bytes().next().unwrap_or(0),
            environment,
            service: (!service.is_empty()).then_some(service),
        }
    }
}

fuzz_target!(init: tolerate_caught_parser_panics(), |data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let input = Input::parse(text);
    template(&input);
    webhook_variables(input);
});

fn template(input: &Input) {
    let template = match Template::parse(&input.source, |_| true) {
        Ok(template) => template,
        Err(error) => {
            assert!(error.offset < input.source.len(), "{error:?}");
            assert!(input.source.is_char_boundary(error.offset), "{error:?}");
            assert!(input.source[error.offset..].starts_with("{{"), "{error:?}");
            return;
        }
    };
    match template.render(&input.variables) {
        Ok(rendered) => {
            if !input.source.contains("{{") {
                assert_eq!(rendered, input.source);
            }
        }
        Err(missing) => {
            assert!(!input.variables.contains_key(&missing.0), "{missing}");
            assert!(input.source.contains(missing.0.as_str()), "{missing}");
        }
    }
}

fn webhook_variables(input: Input) {
    let strategies = shipped();
    let strategy = &strategies[usize::from(input.strategy) % strategies.len()];
    let request = StartRequest {
        strategy: strategy.id.to_string(),
        environment: input.environment,
        service: input.service,
        variables: input.variables,
        ..StartRequest::default()
    };
    match request.template_variables(strategy) {
        Ok(variables) => assert_renders_promql(strategy, &variables),
        Err(refused) => assert!(!refused.field.is_empty(), "{refused:?}"),
    }
}
