//! What the fuzz targets share: the shipped strategies, and the properties every
//! target checks on what canaryd answers.

pub mod webhook_server;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use canaryd::domain::strategy::Strategy;
use canaryd::domain::template::Variables;
use canaryd::engine::checks::{Evaluation, rendered_queries};
use canaryd::strategy_files::{Diagnostic, TemplateCatalog, load_dir, load_templates};

/// The repository's `strategies/` folder: the examples every team starts from.
pub fn strategies_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../strategies")
}

/// The shipped templates, loaded once.
pub fn catalog() -> &'static TemplateCatalog {
    static CATALOG: OnceLock<TemplateCatalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let mut errors = Vec::new();
        let catalog = load_templates(&strategies_root(), &mut errors);
        assert!(errors.is_empty(), "the shipped templates load: {errors:?}");
        catalog
    })
}

/// The shipped strategies, loaded once.
pub fn shipped() -> &'static [Strategy] {
    static SHIPPED: OnceLock<Vec<Strategy>> = OnceLock::new();
    SHIPPED.get_or_init(|| {
        let loaded = load_dir(&strategies_root());
        assert!(
            loaded.errors.is_empty(),
            "the shipped strategies load: {:?}",
            loaded.errors
        );
        loaded.strategies.into_values().collect()
    })
}

/// Every diagnostic names a real place in `source` and says something.
pub fn assert_placed(diagnostics: &[Diagnostic], path: &Path, source: &str) {
    assert!(!diagnostics.is_empty(), "an error without a diagnostic");
    // YAML breaks lines at CR LF, LF and a lone CR.
    let lines = source.replace("\r\n", "\n").split(['\n', '\r']).count() as u64;
    for d in diagnostics {
        assert_eq!(d.path, path, "{d:?}");
        assert!(d.line >= 1 && d.column >= 1, "no position: {d:?}");
        assert!(
            d.line <= lines + 1,
            "line {} of a {lines}-line file: {d:?}",
            d.line
        );
        assert!(!d.message.trim().is_empty(), "no message: {d:?}");
    }
}

/// Every query `strategy` sends with `variables`, at steps young and old, is PromQL
/// that Prometheus's own grammar accepts.
pub fn assert_renders_promql(strategy: &Strategy, variables: &Variables) {
    for step_elapsed in [
        Duration::ZERO,
        Duration::from_millis(1500),
        strategy.interval * 3,
    ] {
        let evaluation = Evaluation {
            strategy,
            variables,
            at: Default::default(),
            pinned: false,
            window: strategy.window,
            step_elapsed,
            must_decide: false,
        };
        for rendered in rendered_queries(&evaluation) {
            let query = rendered.query.unwrap_or_else(|e| {
                panic!(
                    "{} ({}) does not render: {e}",
                    rendered.metric, rendered.track
                )
            });
            if let Err(error) = promql_parser::parser::parse(&query) {
                panic!(
                    "{} renders invalid PromQL {query:?}: {error}",
                    rendered.metric
                );
            }
        }
    }
}

/// promql-parser panics on some inputs (a duration beyond `std::time::Duration`), and
/// canaryd catches that panic in `domain::promql::parse` and reports a diagnostic.
/// libFuzzer's panic hook aborts before any catch, which would make the handled case a
/// finding. This hook lets exactly that panic unwind to canaryd's catch; every other
/// panic stays fatal.
pub fn tolerate_caught_parser_panics() {
    let fatal = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let trace = std::backtrace::Backtrace::force_capture().to_string();
        let caught = trace.contains("promql_parser") && trace.contains("canaryd::domain::promql::parse");
        if !caught {
            fatal(info);
        }
    }));
}
