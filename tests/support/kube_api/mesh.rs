//! The data plane a gateway or mesh would be: each request goes to the stable or the
//! canary instance in the proportion the emulated route object holds at that moment.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;

type Weight = Arc<dyn Fn() -> u8 + Send + Sync>;

#[derive(Clone)]
struct Plane {
    stable_port: u16,
    canary_port: u16,
    weight: Weight,
    client: reqwest::Client,
    /// Requests sent to the stable and to the canary.
    counts: Arc<[AtomicU64; 2]>,
}

pub struct Mesh {
    pub port: u16,
    counts: Arc<[AtomicU64; 2]>,
}

impl Mesh {
    /// Splits traffic between two local instances by `weight()`, the canary's percent.
    pub async fn start(
        stable_port: u16,
        canary_port: u16,
        weight: impl Fn() -> u8 + Send + Sync + 'static,
    ) -> Self {
        let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let plane = Plane {
            stable_port,
            canary_port,
            weight: Arc::new(weight),
            client: reqwest::Client::new(),
            counts: Arc::clone(&counts),
        };
        let app = axum::Router::new().fallback(forward).with_state(plane);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { port, counts }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Requests forwarded so far: (stable, canary).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.counts[0].load(Ordering::Relaxed),
            self.counts[1].load(Ordering::Relaxed),
        )
    }
}

async fn forward(State(plane): State<Plane>, uri: Uri) -> impl IntoResponse {
    let canary = rand::random_range(0..100u8) < (plane.weight)();
    plane.counts[usize::from(canary)].fetch_add(1, Ordering::Relaxed);
    let port = if canary {
        plane.canary_port
    } else {
        plane.stable_port
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    match plane
        .client
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .await
    {
        Ok(response) => {
            let code = StatusCode::from_u16(response.status().as_u16()).unwrap();
            (code, response.bytes().await.unwrap_or_default()).into_response()
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}
