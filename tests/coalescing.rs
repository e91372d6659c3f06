//! Shared queries against a real Prometheus: one grouped query per leaf answers every
//! service exactly as its own query would, over the same data at the same moment;
//! what cannot be grouped is still answered correctly; and verdicts are the same with
//! coalescing on and off.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use canaryd::adapters::coalesce::{Coalescing, CoalescingSettings};
use canaryd::adapters::prometheus::{Prometheus, PrometheusSettings};
use canaryd::domain::Timestamp;
use canaryd::ports::{LabelledValue, MetricsSource, QueryError};
use serde_json::json;
use support::*;

/// Counts the requests that reach Prometheus.
struct Counted {
    inner: Prometheus,
    sent: AtomicUsize,
}

#[async_trait]
impl MetricsSource for Counted {
    async fn instant(&self, query: &str, at: Option<Timestamp>) -> Result<Option<f64>, QueryError> {
        self.sent.fetch_add(1, Ordering::SeqCst);
        self.inner.instant(query, at).await
    }

    async fn instant_vector(
        &self,
        query: &str,
        at: Option<Timestamp>,
    ) -> Result<Vec<LabelledValue>, QueryError> {
        self.sent.fetch_add(1, Ordering::SeqCst);
        self.inner.instant_vector(query, at).await
    }

    async fn range(
        &self,
        query: &str,
        end: Timestamp,
        range: Duration,
        step: Duration,
    ) -> Result<Vec<f64>, QueryError> {
        self.inner.range(query, end, range, step).await
    }
}

const ERROR_RATE: &str = r#"(sum(rate(http_requests_total{service="SERVICE",track="canary",code=~"5.."}[10s])) or vector(0))
/
sum(rate(http_requests_total{service="SERVICE",track="canary"}[10s]))"#;
const LATENCY: &str = r#"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{service="SERVICE",track="canary"}[10s])))"#;

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
        (a, b) => a == b,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouped_queries_answer_each_service_as_its_own_query_would() {
    let services = [("checkout", 0.02), ("search.api", 0.0), ("cart", 0.3)];
    let (_instances, loads, prometheus) = canaries_under_load(&services, 60).await;
    let direct = Prometheus::new(&PrometheusSettings::new(prometheus.url())).unwrap();
    let at = wait_for(
        "a few seconds of data for every service",
        Duration::from_secs(30),
        || async {
            let at = chrono::Utc::now() - chrono::Duration::seconds(1);
            let at = chrono::DateTime::from_timestamp(at.timestamp(), 0).unwrap();
            for (service, _) in services {
                let query = ERROR_RATE.replace("SERVICE", service);
                direct.instant(&query, Some(at)).await.ok()??;
            }
            Some(at)
        },
    )
    .await;
    drop(loads);

    let counted = Arc::new(Counted {
        inner: Prometheus::new(&PrometheusSettings::new(prometheus.url())).unwrap(),
        sent: AtomicUsize::new(0),
    });
    let shared = Arc::new(Coalescing::new(
        counted.clone(),
        CoalescingSettings::default(),
    ));
    // The three services' checks, plus a service without data, all due at `at`.
    let mut queries = Vec::new();
    for service in ["checkout", "search.api", "cart", "ghost"] {
        queries.push(ERROR_RATE.replace("SERVICE", service));
        queries.push(LATENCY.replace("SERVICE", service));
    }
    let together =
        futures::future::join_all(queries.iter().map(|q| shared.instant(q, Some(at)))).await;
    assert_eq!(
        counted.sent.load(Ordering::SeqCst),
        3,
        "one query per leaf: two for the error rate, one for latency"
    );
    for (query, grouped) in queries.iter().zip(together) {
        let own = direct.instant(query, Some(at)).await.unwrap();
        let grouped = grouped.unwrap();
        assert!(
            close(own, grouped),
            "{query}\nown {own:?}, grouped {grouped:?}"
        );
        assert_eq!(own.is_none(), query.contains("ghost"), "{query}: {own:?}");
    }

    // What cannot be grouped is sent as it is, and answered the same.
    let ungroupable = r#"max(rate(http_requests_total{service="cart",code=~"5.."}[10s]))"#;
    let before = counted.sent.load(Ordering::SeqCst);
    let answer = shared.instant(ungroupable, Some(at)).await.unwrap();
    assert_eq!(counted.sent.load(Ordering::SeqCst), before + 1);
    assert!(close(
        answer,
        direct.instant(ungroupable, Some(at)).await.unwrap()
    ));
    // And an identical query of the same slot is not sent again.
    shared.instant(ungroupable, Some(at)).await.unwrap();
    assert_eq!(counted.sent.load(Ordering::SeqCst), before + 1);
}

fn strategy(dir: &std::path::Path) {
    std::fs::create_dir_all(dir.join("shop")).unwrap();
    let text = "apiVersion: canaryd/v1\nkind: Strategy\nmetadata:\n  name: web\n  team: shop\nspec:\n  service: web\n  \
                router:\n    type: none\n  interval: 2s\n  window: 4s\n  steps:\n    - weight: 50\n    - weight: 100\n  \
                inconclusiveLimit: 3\n  metrics:\n    - name: error-rate\n      template: http-error-rate\n      max: 0.05\n    \
                - name: p99-latency\n      template: http-latency-p99\n      max: 0.3\n";
    std::fs::write(dir.join("shop/web.yaml"), text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdicts_are_the_same_with_coalescing_on_and_off() {
    // Three services' canaries: two healthy, one failing; `none` routes nothing, so
    // each instance takes its own load throughout.
    let services = [("alpha", 0.0), ("beta", 0.0), ("gamma", 0.4)];
    let (_instances, _loads, prometheus) = canaries_under_load(&services, 60).await;
    let strategies = tempfile::tempdir().unwrap();
    strategy(strategies.path());
    let mut verdicts = Vec::new();
    for switch in ["on", "off"] {
        let logs = tempfile::tempdir().unwrap();
        let extra = ["--query-coalescing", switch];
        let canaryd =
            Canaryd::start(strategies.path(), &prometheus.url(), &extra, logs.path()).await;
        let mut ids = Vec::new();
        for (service, _) in services {
            let body = json!({"strategy": "shop/web", "service": service, "environment": "prod"});
            ids.push(canaryd.start_analysis(body).await);
        }
        let mut these = Vec::new();
        for id in ids {
            let analysis = canaryd.wait_terminal(&id, Duration::from_secs(60)).await;
            these.push(analysis["status"].as_str().unwrap().to_string());
        }
        verdicts.push(these);
    }
    assert_eq!(verdicts[0], ["DEPLOYED", "DEPLOYED", "ROLLED_BACK"]);
    assert_eq!(verdicts[0], verdicts[1], "coalescing on, then off");
}
