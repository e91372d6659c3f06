//! Strategy validation: each mistake is reported with its exact line and column.

use std::path::Path;

use super::*;
use crate::domain::strategy::{JudgeSpec, NanStrategy, OnInconclusiveLimit, Promotion, RouterSpec};

const VALID: &str = r#"apiVersion: canaryd/v1
kind: Strategy
metadata:
  name: checkout-api
  team: payments
spec:
  service: checkout-api
  router:
    type: haproxy
    haproxy:
      address: 127.0.0.1:9999
      backend: "{{service}}"
      stableServer: stable
      canaryServer: canary
  interval: 30s
  steps:
    - weight: 5
    - weight: 50
      checks: 2
    - weight: 100
  metrics:
    - name: error-rate
      template: http-error-rate
      max: 0.05
    - name: p99-latency
      query: histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{service="{{service}}",track="{{track}}"}[{{window}}])))
      max: 0.3
"#;

fn identity() -> FileIdentity {
    FileIdentity {
        team: "payments".into(),
        name: "checkout-api".into(),
    }
}

fn parse(source: &str) -> Result<Strategy, Vec<Diagnostic>> {
    let path = Path::new("strategies/payments/checkout-api.yaml");
    parse_strategy(path, source, &identity(), &TemplateCatalog::default())
}

/// The errors of VALID with `from` replaced by `to`, as `line:col: message`.
fn errors_after(from: &str, to: &str) -> Vec<String> {
    assert!(
        VALID.contains(from),
        "{from:?} is not in the valid strategy"
    );
    let source = VALID.replacen(from, to, 1);
    let errors = parse(&source).expect_err("the mistake is caught");
    errors
        .iter()
        .map(|e| format!("{}:{}: {}", e.line, e.column, e.message))
        .collect()
}

macro_rules! mistakes {
    ($($name:ident: $from:expr => $to:expr, $expected:expr;)*) => {
        $(
            #[test]
            fn $name() {
                assert_eq!(errors_after($from, $to), [$expected]);
            }
        )*
    };
}

mistakes! {
    reports_an_unknown_field_where_it_stands:
        "      checks: 2" => "      chekcs: 2",
        "19:7: unknown field `chekcs`, expected one of weight, checks, maxChecks";
    reports_a_bad_duration:
        "interval: 30s" => "interval: 30 parsecs",
        "15:13: interval: '30 parsecs' is not a duration (unknown time unit \"parsecs\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations)); write e.g. 30s or 1m";
    reports_an_interval_under_one_second:
        "interval: 30s" => "interval: 500ms",
        "15:13: interval must be at least 1s, found '500ms'";
    reports_a_weight_of_zero:
        "weight: 5\n" => "weight: 0\n",
        "17:15: steps[0].weight must be within 1..=100, found 0";
    reports_a_weight_above_one_hundred:
        "weight: 100" => "weight: 101",
        "20:15: steps[2].weight must be within 1..=100, found 101";
    reports_weights_that_do_not_increase:
        "weight: 50" => "weight: 5",
        "18:15: steps[1].weight must be greater than the previous step's 5, found 5";
    reports_an_unknown_template_with_the_known_ones:
        "template: http-error-rate" => "template: http-error-ratio",
        "23:17: metric 'error-rate': unknown template 'http-error-ratio'; known templates: http-error-rate, http-latency-p99";
    reports_an_unknown_variable_at_its_column_in_the_query:
        "[{{window}}]" => "[{{windw}}]",
        "26:135: metric 'p99-latency': query: unknown template variable 'windw'";
    reports_an_unknown_variable_in_a_router_field:
        "backend: \"{{service}}\"" => "backend: \"{{servce}}\"",
        "12:17: router.haproxy.backend: unknown template variable 'servce'";
    reports_a_team_that_does_not_match_the_folder:
        "team: payments" => "team: billing",
        "5:9: metadata.team 'billing' must match the folder 'payments'";
    reports_a_name_that_does_not_match_the_file:
        "name: checkout-api" => "name: checkout",
        "4:9: metadata.name 'checkout' must match the file name 'checkout-api'";
    reports_a_metric_without_max_or_min:
        "      max: 0.3\n" => "",
        "25:13: metric 'p99-latency' needs a limit: set max, min or both";
    reports_a_query_that_is_not_promql:
        "sum by (le)" => "sum by (le",
        "26:14: metric 'p99-latency': not valid PromQL after rendering for track=canary: unclosed left parenthesis";
    reports_a_number_that_is_not_a_number:
        "weight: 5\n" => "weight: five\n",
        "17:15: expected a whole number";
    reports_an_unknown_router_type:
        "type: haproxy" => "type: envoy",
        "9:11: router.type 'envoy' is not one of haproxy, gateway-api, nginx-ingress, istio, smi, none";
    reports_a_router_block_that_does_not_match_the_type:
        "type: haproxy" => "type: none",
        "11:7: router.haproxy is set but router.type is 'none'";
    reports_a_missing_router_block_at_the_type:
        "type: haproxy\n    haproxy:\n      address: 127.0.0.1:9999\n      backend: \"{{service}}\"\n      stableServer: stable\n      canaryServer: canary\n"
            => "type: gateway-api\n",
        "9:11: router.type is 'gateway-api' but router.gatewayApi is missing";
    reports_an_unknown_variable_in_a_kubernetes_route_field:
        "type: haproxy\n    haproxy:\n      address: 127.0.0.1:9999\n      backend: \"{{service}}\"\n      stableServer: stable\n      canaryServer: canary\n"
            => "type: smi\n    smi:\n      trafficSplit: \"{{servce}}\"\n      stableService: s\n      canaryService: c\n",
        "11:22: router.smi.trafficSplit: unknown template variable 'servce'";
    reports_a_workload_behind_haproxy:
        "  interval: 30s\n" => "  workload:\n    deployment: web\n  interval: 30s\n",
        "16:5: spec.workload needs a Kubernetes router (or none): HAProxy's servers are fixed addresses, not the canary Deployment's pods";
    reports_a_workload_without_canary_replicas:
        "type: haproxy\n    haproxy:\n      address: 127.0.0.1:9999\n      backend: \"{{service}}\"\n      stableServer: stable\n      canaryServer: canary\n  interval: 30s\n"
            => "type: smi\n    smi:\n      trafficSplit: web\n      stableService: s\n      canaryService: c\n  workload:\n    deployment: \"{{service}}\"\n    canaryReplicas: 0\n  interval: 30s\n",
        "16:21: workload.canaryReplicas must be a whole number of at least 1, found 0";
    reports_a_workload_progress_deadline_that_is_not_a_duration:
        "type: haproxy\n    haproxy:\n      address: 127.0.0.1:9999\n      backend: \"{{service}}\"\n      stableServer: stable\n      canaryServer: canary\n  interval: 30s\n"
            => "type: smi\n    smi:\n      trafficSplit: web\n      stableService: s\n      canaryService: c\n  workload:\n    deployment: \"{{service}}\"\n    progressDeadline: soon\n  interval: 30s\n",
        "16:23: workload.progressDeadline: 'soon' is not a duration (expected number at 0); write e.g. 30s or 1m";
    reports_an_unknown_workload_field:
        "type: haproxy\n    haproxy:\n      address: 127.0.0.1:9999\n      backend: \"{{service}}\"\n      stableServer: stable\n      canaryServer: canary\n  interval: 30s\n"
            => "type: smi\n    smi:\n      trafficSplit: web\n      stableService: s\n      canaryService: c\n  workload:\n    deployment: \"{{service}}\"\n    image: web\n  interval: 30s\n",
        "16:5: unknown field `image`, expected one of deployment, namespace, container, progressDeadline, canaryReplicas";
    reports_a_metric_name_used_twice:
        "name: p99-latency" => "name: error-rate",
        "25:13: metric name 'error-rate' is used twice";
    reports_a_metric_with_both_query_and_template:
        "      max: 0.05" => "      max: 0.05\n      query: up",
        "25:14: metric 'error-rate': set either query or template, not both";
    reports_a_wrong_api_version:
        "apiVersion: canaryd/v1" => "apiVersion: canaryd/v2",
        "1:13: apiVersion must be 'canaryd/v1', found 'canaryd/v2'";
    reports_max_checks_below_checks:
        "      checks: 2" => "      checks: 3\n      maxChecks: 2",
        "20:18: steps[1].maxChecks (2) must be at least checks (3)";
    reports_broken_yaml:
        "metadata:" => "metadata: [",
        "3:11: expected mapping start";
    reports_a_limit_that_does_not_apply_to_the_judge:
        "template: http-error-rate" => "template: http-error-rate\n      compare: stable\n      maxRatio: 2",
        "26:12: metric 'error-rate': 'max' does not apply to compare: stable";
}

#[test]
fn loads_a_valid_strategy_with_its_defaults() {
    let strategy = parse(VALID).expect("valid");
    assert_eq!(strategy.id.to_string(), "payments/checkout-api");
    assert_eq!(strategy.interval, std::time::Duration::from_secs(30));
    assert_eq!(strategy.window, strategy.interval);
    let weights: Vec<_> = strategy
        .steps
        .iter()
        .map(|s| (s.weight, s.checks, s.max_checks))
        .collect();
    assert_eq!(weights, [(5, 1, 10), (50, 2, 10), (100, 1, 10)]);
    assert_eq!(
        (strategy.failure_limit, strategy.inconclusive_limit),
        (0, 3)
    );
    assert_eq!(strategy.promotion, Promotion::Auto);
    assert_eq!(strategy.gate_timeout, std::time::Duration::from_secs(3600));
    assert_eq!(
        strategy.on_inconclusive_limit,
        OnInconclusiveLimit::Rollback
    );
    assert!(
        strategy
            .metrics
            .iter()
            .all(|m| !m.dry_run && m.nan_strategy == NanStrategy::Remove)
    );
    assert_eq!(strategy.namespace, "default");
    let RouterSpec::Haproxy(haproxy) = &strategy.router else {
        panic!("haproxy router expected");
    };
    assert_eq!(haproxy.backend.source(), "{{service}}");
    let JudgeSpec::Threshold { query, bounds } = &strategy.metrics[0].judge else {
        panic!("threshold judge expected");
    };
    assert_eq!(bounds.max, Some(0.05));
    assert!(query.source().contains("http_requests_total"));
}

#[test]
fn loads_the_options_peers_users_expect() {
    let source = VALID
        .replace(
            "  interval: 30s\n",
            "  interval: 30s\n  onInconclusiveLimit: pause\n  gates:\n    confirmPromotion: https://gate.example.com/ok\n    timeout: 20m\n",
        )
        .replace(
            "      max: 0.3\n",
            "      max: 0.3\n      dryRun: true\n      nanStrategy: replace\n",
        );
    let strategy = parse(&source).expect("valid");
    assert_eq!(strategy.on_inconclusive_limit, OnInconclusiveLimit::Pause);
    assert_eq!(strategy.gate_timeout, std::time::Duration::from_secs(1200));
    let latency = &strategy.metrics[1];
    assert!(latency.dry_run);
    assert_eq!(latency.nan_strategy, NanStrategy::Replace);
    assert!(!strategy.metrics[0].dry_run);
}

#[test]
fn a_strategy_whose_every_metric_is_dry_run_is_refused() {
    let source = VALID
        .replace("      max: 0.05\n", "      max: 0.05\n      dryRun: true\n")
        .replace("      max: 0.3\n", "      max: 0.3\n      dryRun: true\n");
    let errors: Vec<String> = parse(&source)
        .unwrap_err()
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].ends_with("metrics: every metric is dryRun; at least one must decide"),
        "{errors:?}"
    );
}

#[test]
fn reports_every_mistake_of_a_file_at_once() {
    let source = VALID
        .replacen("team: payments", "team: billing", 1)
        .replacen("weight: 50", "weight: 500", 1)
        .replacen("interval: 30s", "interval: soon", 1)
        .replacen("      max: 0.3\n", "", 1);
    let errors = parse(&source).unwrap_err();
    let lines: Vec<_> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [5, 15, 18, 25], "{errors:#?}");
}

#[test]
fn declared_variables_may_be_used_and_unknown_ones_may_not() {
    let with_region = VALID
        .replacen(
            "  interval: 30s",
            "  variables:\n    region: eu-west-1\n  interval: 30s",
            1,
        )
        .replacen(
            "track=\"{{track}}\"}",
            "track=\"{{track}}\",region=\"{{region}}\"}",
            1,
        );
    let strategy = parse(&with_region).expect("a declared variable is known");
    assert_eq!(strategy.variables["region"].as_deref(), Some("eu-west-1"));
    let shadowing = VALID.replacen(
        "  interval: 30s",
        "  variables:\n    service: x\n  interval: 30s",
        1,
    );
    let errors = parse(&shadowing).unwrap_err();
    assert_eq!(
        errors[0].message,
        "variables: 'service' is a built-in variable and cannot be declared"
    );
    assert_eq!((errors[0].line, errors[0].column), (16, 5));
}

#[test]
fn every_judge_is_parsed_with_its_settings() {
    let source = VALID.replacen(
        "      max: 0.3\n",
        "      max: 0.3
    - name: p90-vs-stable
      template: http-latency-p99
      compare: stable
      maxRatio: 1.25
    - name: latency-distribution
      template: http-latency-p99
      judge: mann-whitney
      direction: increase
      confidence: 0.99
      minSamples: 3
    - name: errors-sequential
      judge: sequential
      max: 0.05
      alpha: 0.01
",
        1,
    );
    let strategy = parse(&source).expect("valid");
    let kinds: Vec<_> = strategy
        .metrics
        .iter()
        .map(|m| match &m.judge {
            JudgeSpec::Threshold { .. } => "threshold",
            JudgeSpec::CompareStable { .. } => "compare",
            JudgeSpec::MannWhitney { config, .. } => {
                assert_eq!(config.confidence, 0.99);
                "mann-whitney"
            }
            JudgeSpec::Sequential { config, errors, .. } => {
                assert_eq!(
                    (config.max, config.acceptable, config.alpha),
                    (0.05, 0.025, 0.01)
                );
                assert!(errors.source().contains("{{stepWindow}}"));
                "sequential"
            }
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "threshold",
            "threshold",
            "compare",
            "mann-whitney",
            "sequential"
        ]
    );
}

#[test]
fn a_folder_is_loaded_with_its_templates_and_reports_all_files_errors() {
    let root = tempfile::tempdir().unwrap();
    let write = |relative: &str, text: &str| {
        let path = root.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "_templates/queue-depth.yaml",
        "apiVersion: canaryd/v1\nkind: MetricTemplate\nmetadata:\n  name: queue-depth\nspec:\n  query: max(queue_depth{service=\"{{service}}\",track=\"{{track}}\"})\n",
    );
    write(
        "payments/checkout-api.yaml",
        &VALID.replacen("template: http-error-rate", "template: queue-depth", 1),
    );
    write(
        "search/indexer.yaml",
        &VALID.replacen("team: payments", "team: search", 1),
    );
    write(
        "orders/broken.yaml",
        &VALID.replacen("weight: 50", "weight: 0", 1),
    );
    write("stray.yaml", VALID);
    let loaded = load_dir(root.path());
    let ids: Vec<_> = loaded.strategies.keys().map(ToString::to_string).collect();
    assert_eq!(ids, ["payments/checkout-api"]);
    let reported: Vec<_> = loaded
        .errors
        .iter()
        .map(|e| {
            let relative = e
                .path
                .strip_prefix(root.path())
                .unwrap()
                .display()
                .to_string();
            format!("{relative}:{}:{}", e.line, e.column)
        })
        .collect();
    assert_eq!(
        reported,
        [
            "orders/broken.yaml:4:9",
            "orders/broken.yaml:5:9",
            "orders/broken.yaml:18:15",
            "search/indexer.yaml:4:9",
            "stray.yaml:1:1"
        ],
        "{:#?}",
        loaded.errors
    );
}

#[test]
fn diagnostics_print_as_path_line_column_message() {
    let diagnostic = Diagnostic {
        path: "strategies/a/b.yaml".into(),
        line: 3,
        column: 7,
        message: "oops".into(),
    };
    assert_eq!(diagnostic.to_string(), "strategies/a/b.yaml:3:7: oops");
}

fn mann_whitney_source(extra: &str) -> String {
    VALID.replace(
        "    - name: p99-latency\n",
        &format!(
            "    - name: latency-shift\n      query: histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{{service=\"{{{{service}}}}\",track=\"{{{{track}}}}\"}}[1m])))\n      judge: mann-whitney\n{extra}    - name: p99-latency\n"
        ),
    )
}

#[test]
fn a_mann_whitney_window_too_short_for_its_samples_is_an_error() {
    // interval 30s = window: 30s / 10s = 3 samples, fewer than the default minSamples 10.
    let errors: Vec<String> = parse(&mann_whitney_source(""))
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("metric 'latency-shift': window 30s / sampleStep 10s gives 3 samples per track, fewer than minSamples 10"),
        "{errors:?}"
    );
    assert!(parse(&mann_whitney_source("      minSamples: 3\n")).is_ok());
}

#[test]
fn overlapping_samples_and_short_windows_are_warnings() {
    let source = mann_whitney_source("      sampleStep: 5s\n      minSamples: 5\n");
    let (parsed, warnings) = parse_strategy_linted(
        Path::new("payments/checkout-api.yaml"),
        &source,
        &identity(),
        &TemplateCatalog::default(),
        Lint::default(),
    );
    assert!(parsed.is_ok(), "{parsed:?}");
    let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].contains("warning: window 30s is shorter than 4 scrape intervals"),
        "{warnings:?}"
    );
    assert!(
        warnings[1]
            .contains("sampleStep 5s is shorter than the range [1m] of a rate() in the query"),
        "{warnings:?}"
    );
}

#[test]
fn a_workload_defaults_to_the_strategy_namespace_and_kubernetes_deadline() {
    let source = VALID.replacen(
        "type: haproxy\n    haproxy:\n      address: 127.0.0.1:9999\n      backend: \"{{service}}\"\n      stableServer: stable\n      canaryServer: canary\n",
        "type: istio\n    istio:\n      virtualService: web\n      stableHost: web-stable.shop.svc.cluster.local\n      canaryHost: web-canary\n  workload:\n    deployment: \"{{service}}\"\n",
        1,
    );
    let strategy = parse(&source).expect("valid");
    let workload = strategy.workload.clone().expect("a workload");
    assert_eq!(
        workload.progress_deadline,
        crate::domain::strategy::DEFAULT_PROGRESS_DEADLINE
    );
    assert_eq!(
        (&workload.container, workload.canary_replicas),
        (&None, None)
    );
    let variables = [("service", "checkout-api"), ("namespace", "payments")]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into();
    let route = crate::domain::record::RouteTarget::render(&strategy.router, &variables).unwrap();
    let target =
        crate::domain::workload::WorkloadTarget::render(&workload, &route, &variables).unwrap();
    assert_eq!(
        (target.namespace.as_str(), target.deployment.as_str()),
        ("payments", "checkout-api")
    );
    assert_eq!(target.canary_deployment(), "checkout-api-canary");
    assert_eq!(
        target.stable_service.as_deref(),
        Some("web-stable"),
        "an Istio host's short name"
    );
    assert_eq!(target.canary_service.as_deref(), Some("web-canary"));
}

#[test]
fn a_service_or_namespace_that_no_request_could_use_is_refused() {
    // Found by fuzzing: the default service skipped the webhook's rule, so the strategy
    // loaded and then refused every start that did not name another service.
    assert_eq!(
        errors_after("service: checkout-api", "service: checkout-a[i"),
        ["7:12: service 'checkout-a[i': letters, digits, '-', '_' or '.', at most 128"]
    );
    assert_eq!(
        errors_after(
            "service: checkout-api",
            "service: checkout-api\n  namespace: 'x\"} or vector(1) #'"
        ),
        [
            "8:14: namespace 'x\"} or vector(1) #' is not a Kubernetes namespace name: lower-case letters, digits and '-', at most 63"
        ]
    );
    let fine = VALID.replacen(
        "service: checkout-api",
        "service: checkout_api.v2\n  namespace: shop-eu1",
        1,
    );
    assert_eq!(parse(&fine).unwrap().namespace, "shop-eu1");
}

#[test]
fn a_query_the_promql_parser_cannot_survive_is_refused_at_its_place() {
    // Found by fuzzing: promql-parser panicked on a subquery range beyond any clock, so
    // loading such a file took the loader (and a reload) down.
    let huge = format!("[{}:1m]", "8".repeat(64));
    let errors = errors_after("[{{window}}])))", &format!("[{{{{window}}}}])){huge})"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("26:14: metric 'p99-latency': not valid PromQL after rendering")
            && errors[0].contains("out of range"),
        "{errors:?}"
    );
}
