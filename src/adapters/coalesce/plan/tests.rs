use super::*;
use crate::strategy_files::catalog::{HTTP_ERROR_RATE, HTTP_LATENCY_P99};

fn rendered(template: &str, service: &str) -> String {
    template
        .replace("{{service}}", service)
        .replace("{{track}}", "canary")
        .replace("{{window}}", "30s")
}

#[test]
fn the_built_in_templates_share_one_shape_across_services() {
    for template in [HTTP_ERROR_RATE, HTTP_LATENCY_P99] {
        let a = plan(&rendered(template, "checkout")).expect("groupable");
        let b = plan(&rendered(template, "search.api")).expect("groupable");
        assert_eq!(a.shape.key, b.shape.key);
        assert_eq!(
            (a.value.as_str(), b.value.as_str()),
            ("checkout", "search.api")
        );
    }
    let error_rate = plan(&rendered(HTTP_ERROR_RATE, "checkout")).unwrap();
    assert_eq!(error_rate.shape.leaves.len(), 2);
    assert!(matches!(error_rate.shape.tree, Node::Arith("/", _, _)));
}

#[test]
fn a_grouped_leaf_matches_every_value_and_groups_by_the_label() {
    let latency = plan(&rendered(HTTP_LATENCY_P99, "checkout")).unwrap();
    let values = ["checkout".to_string(), "search.api".to_string()];
    let query = grouped(&latency.shape.leaves[0], &values).unwrap();
    assert!(
        query.contains(r#"service=~"checkout|search\\.api""#),
        "{query}"
    );
    assert!(query.contains("sum by (le, service)"), "{query}");
    assert!(
        promql_parser::parser::parse(&query).is_ok(),
        "valid PromQL: {query}"
    );
}

#[test]
fn an_escaped_alternation_matches_exactly_its_values() {
    let values = ["a.b", "c|d", "e(f)*", "ünï-cödé_1", "x y", "[z]{2}+?^$"];
    let pattern = values
        .iter()
        .map(|v| escape(v))
        .collect::<Vec<_>>()
        .join("|");
    let regex = regex::Regex::new(&format!("^(?:{pattern})$")).expect("valid");
    for value in values {
        assert!(regex.is_match(value), "{value} in {pattern}");
    }
    for other in ["axb", "c", "d", "ef", "zz", "e(f)", ""] {
        assert!(!regex.is_match(other), "{other} not in {pattern}");
    }
}

#[test]
fn per_value_arithmetic_follows_promql() {
    let error_rate = plan(&rendered(HTTP_ERROR_RATE, "checkout")).unwrap();
    // No 5xx series: `or vector(0)` makes it 0 errors.
    assert_eq!(
        evaluate(&error_rate.shape.tree, &[None, Some(4.0)]),
        Some(0.0)
    );
    assert_eq!(
        evaluate(&error_rate.shape.tree, &[Some(1.0), Some(4.0)]),
        Some(0.25)
    );
    // No requests at all: no data, not 0.
    assert_eq!(evaluate(&error_rate.shape.tree, &[Some(1.0), None]), None);
}

#[test]
fn queries_that_are_not_provably_equivalent_are_sent_as_they_are() {
    for query in [
        r#"max(rate(x{service="a"}[1m]))"#,
        r#"sum by (pod) (rate(x{service="a"}[1m]))"#,
        r#"sum without (pod) (rate(x{service="a"}[1m]))"#,
        r#"sum(rate(x{service="a"}[1m])) / sum(rate(y{service="b"}[1m]))"#,
        r#"sum(rate(x{service="a"}[1m])) / sum(rate(y[1m]))"#,
        r#"sum(rate(x{service=~"a|b"}[1m]))"#,
        r#"sum(rate(x{service="a"}[1m] offset 5m))"#,
        r#"sum(rate(x{service="a"}[1m])) > 0.5"#,
        r#"sum(rate(x{service="a"}[1m])) / on (track) sum(rate(y{service="a"}[1m]))"#,
        r#"sum(max_over_time(x{service="a"}[1m]))"#,
        r#"sum(rate(x{service="a"}[1m])) or sum(rate(y{service="a"}[1m]))"#,
        "vector(1)",
        "not promql (",
    ] {
        assert!(plan(query).is_none(), "{query} must not be grouped");
    }
}

#[test]
fn a_planner_remembers_plans_and_shares_one_shape_per_key() {
    let planner = Planner::default();
    let a = planner
        .plan(&rendered(HTTP_ERROR_RATE, "checkout"))
        .unwrap();
    let again = planner
        .plan(&rendered(HTTP_ERROR_RATE, "checkout"))
        .unwrap();
    let b = planner.plan(&rendered(HTTP_ERROR_RATE, "cart")).unwrap();
    assert!(Arc::ptr_eq(&a.shape, &again.shape) && Arc::ptr_eq(&a.shape, &b.shape));
    assert_eq!((a.value.as_str(), b.value.as_str()), ("checkout", "cart"));
    assert!(planner.plan("max(up)").is_none());
}
