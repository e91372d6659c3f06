//! Metric templates: the built-in ones and those of `strategies/_templates/`.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Share of 5xx responses of one track. `or vector(0)` turns "no 5xx series yet" into
/// zero errors; with no requests at all the division stays empty (no data).
pub const HTTP_ERROR_RATE: &str = r#"(sum(rate(http_requests_total{service="{{service}}",track="{{track}}",code=~"5.."}[{{window}}])) or vector(0))
/
sum(rate(http_requests_total{service="{{service}}",track="{{track}}"}[{{window}}]))"#;

/// p99 latency of one track, in seconds.
pub const HTTP_LATENCY_P99: &str = r#"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{service="{{service}}",track="{{track}}"}[{{window}}])))"#;

/// Errors since the step began, for the sequential judge (zero when none yet).
pub const HTTP_ERRORS_SINCE_STEP: &str = r#"sum(increase(http_requests_total{service="{{service}}",track="{{track}}",code=~"5.."}[{{stepWindow}}])) or vector(0)"#;

/// Requests since the step began, for the sequential judge.
pub const HTTP_REQUESTS_SINCE_STEP: &str = r#"sum(increase(http_requests_total{service="{{service}}",track="{{track}}"}[{{stepWindow}}]))"#;

/// A template's query and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    pub query: String,
    pub description: String,
    /// `None` for built-in templates.
    pub path: Option<PathBuf>,
}

/// Every template a strategy may name in `template:`.
#[derive(Debug, Clone)]
pub struct TemplateCatalog {
    entries: BTreeMap<String, CatalogEntry>,
}

impl Default for TemplateCatalog {
    fn default() -> Self {
        let builtin = |query: &str, description: &str| CatalogEntry {
            query: query.to_string(),
            description: description.to_string(),
            path: None,
        };
        let entries = BTreeMap::from([
            (
                "http-error-rate".to_string(),
                builtin(HTTP_ERROR_RATE, "share of 5xx responses of a track"),
            ),
            (
                "http-latency-p99".to_string(),
                builtin(HTTP_LATENCY_P99, "p99 latency of a track, in seconds"),
            ),
        ]);
        Self { entries }
    }
}

impl TemplateCatalog {
    pub fn get(&self, name: &str) -> Option<&CatalogEntry> {
        self.entries.get(name)
    }

    /// Adds a team template; a name already taken (by a built-in) is refused.
    pub fn insert(&mut self, name: String, entry: CatalogEntry) -> Result<(), CatalogEntry> {
        match self.entries.get(&name) {
            Some(existing) => Err(existing.clone()),
            None => {
                self.entries.insert(name, entry);
                Ok(())
            }
        }
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }
}
