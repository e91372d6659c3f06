//! The demo service: one instance per track (stable or canary).

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// How the instance behaves; changeable at run time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Behaviour {
    /// Share of requests answered with 500, 0..=1.
    pub error_rate: f64,
    /// Typical latency; each request takes 90–110% of it.
    pub latency_ms: u64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    service: String,
    track: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TrackLabels {
    service: String,
    track: String,
}

const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
];

#[derive(Clone)]
struct Demo {
    service: String,
    track: String,
    behaviour: Arc<RwLock<Behaviour>>,
    requests: Family<RequestLabels, Counter<u64, AtomicU64>>,
    durations: Family<TrackLabels, Histogram>,
    registry: Arc<Registry>,
}

impl Demo {
    fn new(service: &str, track: &str, behaviour: Behaviour) -> Self {
        let requests = Family::<RequestLabels, Counter<u64, AtomicU64>>::default();
        let durations = Family::<TrackLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(LATENCY_BUCKETS)
        });
        let mut registry = Registry::default();
        registry.register("http_requests", "HTTP requests served", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer a request",
            durations.clone(),
        );
        let demo = Self {
            service: service.to_string(),
            track: track.to_string(),
            behaviour: Arc::new(RwLock::new(behaviour)),
            requests,
            durations,
            registry: Arc::new(registry),
        };
        // Series exist from the first scrape, so rate() has a start point and a track
        // without traffic reads 0/0 = NaN (no data), never a missing series.
        for code in ["200", "500"] {
            let _ = demo.requests.get_or_create(&demo.labels(code));
        }
        let _ = demo.durations.get_or_create(&demo.track_labels());
        demo
    }

    fn labels(&self, code: &str) -> RequestLabels {
        RequestLabels {
            service: self.service.clone(),
            track: self.track.clone(),
            code: code.to_string(),
        }
    }

    fn track_labels(&self) -> TrackLabels {
        TrackLabels {
            service: self.service.clone(),
            track: self.track.clone(),
        }
    }

    fn behaviour(&self) -> Behaviour {
        *self
            .behaviour
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

async fn answer(State(demo): State<Demo>) -> impl IntoResponse {
    let started = Instant::now();
    let behaviour = demo.behaviour();
    let (jitter, fails) = {
        let mut rng = rand::rng();
        (
            rng.random_range(0.9..=1.1),
            rng.random::<f64>() < behaviour.error_rate,
        )
    };
    tokio::time::sleep(Duration::from_secs_f64(
        behaviour.latency_ms as f64 / 1000.0 * jitter,
    ))
    .await;
    let status = if fails {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    demo.requests
        .get_or_create(&demo.labels(status.as_str()))
        .inc();
    demo.durations
        .get_or_create(&demo.track_labels())
        .observe(started.elapsed().as_secs_f64());
    (status, format!("{} {}\n", demo.service, demo.track))
}

async fn metrics(State(demo): State<Demo>) -> impl IntoResponse {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &demo.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        ),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            error.to_string(),
        ),
    }
}

async fn get_behaviour(State(demo): State<Demo>) -> Json<Behaviour> {
    Json(demo.behaviour())
}

async fn set_behaviour(
    State(demo): State<Demo>,
    Json(behaviour): Json<Behaviour>,
) -> Json<Behaviour> {
    if let Ok(mut current) = demo.behaviour.write() {
        *current = behaviour;
    }
    Json(behaviour)
}

/// The demo service's routes for one instance.
pub fn app(service: &str, track: &str, behaviour: Behaviour) -> axum::Router {
    let demo = Demo::new(service, track, behaviour);
    axum::Router::new()
        .route("/", get(answer))
        .route("/metrics", get(metrics))
        .route("/admin/behaviour", get(get_behaviour).put(set_behaviour))
        .with_state(demo)
}
