//! A Prometheus stand-in for load tests: answers `/api/v1/query` (at once, or after a
//! set delay) with healthy values (no errors, 10 requests/s, p99 10 ms), one series per
//! service of a grouped query, and counts the requests and the most in flight at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use axum::extract::{Form, Query, State};
use axum::routing::get;
use serde_json::{Value, json};

#[derive(Default)]
struct Counts {
    queries: AtomicU64,
    in_flight: AtomicUsize,
    most: AtomicUsize,
    delay: std::time::Duration,
}

pub struct StandIn {
    port: u16,
    counts: Arc<Counts>,
}

impl StandIn {
    pub async fn start() -> Self {
        Self::slow(std::time::Duration::ZERO).await
    }

    /// One that takes `delay` to answer each query.
    pub async fn slow(delay: std::time::Duration) -> Self {
        let counts = Arc::new(Counts {
            delay,
            ..Counts::default()
        });
        let app = axum::Router::new()
            .route("/api/v1/query", get(by_query).post(by_form))
            .route("/-/ready", get(|| async { "ready" }))
            .with_state(Arc::clone(&counts));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { port, counts }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn queries(&self) -> u64 {
        self.counts.queries.load(Ordering::Relaxed)
    }

    pub fn max_in_flight(&self) -> usize {
        self.counts.most.load(Ordering::Relaxed)
    }
}

async fn by_query(
    State(counts): State<Arc<Counts>>,
    Query(params): Query<HashMap<String, String>>,
) -> axum::Json<Value> {
    answer(&counts, &params).await
}

async fn by_form(
    State(counts): State<Arc<Counts>>,
    Form(params): Form<HashMap<String, String>>,
) -> axum::Json<Value> {
    answer(&counts, &params).await
}

async fn answer(counts: &Counts, params: &HashMap<String, String>) -> axum::Json<Value> {
    counts.queries.fetch_add(1, Ordering::Relaxed);
    let now = counts.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    counts.most.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(counts.delay).await;
    let query = params.get("query").cloned().unwrap_or_default();
    let time: f64 = params
        .get("time")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0.0);
    let value = if query.contains("code=~\"5..\"") {
        "0"
    } else if query.contains("histogram_quantile") {
        "0.01"
    } else {
        "10"
    };
    // A grouped query names its services in a regex alternation.
    let services: Vec<String> = match query.split_once("service=~\"") {
        Some((_, rest)) => rest
            .split('"')
            .next()
            .unwrap_or("")
            .split('|')
            .map(|s| s.replace("\\\\", ""))
            .collect(),
        None => vec![String::new()],
    };
    let result: Vec<Value> = services
        .iter()
        .map(|service| {
            let metric = if service.is_empty() {
                json!({})
            } else {
                json!({"service": service})
            };
            json!({"metric": metric, "value": [time, value]})
        })
        .collect();
    counts.in_flight.fetch_sub(1, Ordering::SeqCst);
    axum::Json(json!({"status": "success", "data": {"resultType": "vector", "result": result}}))
}
