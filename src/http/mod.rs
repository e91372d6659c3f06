//! The HTTP API (DESIGN §4), built as `router(state)` so tests can drive it directly.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Tokens;
use crate::engine::Engine;
use crate::ports::{DeploymentStore, GroupStore, HistoryStore};
use crate::telemetry::Telemetry;

pub mod analyses;
pub mod blocks;
pub mod caller;
pub mod deployments;
mod document;
pub mod errors;
pub mod freezes;
pub mod groups;
pub mod health;
pub mod json;
pub mod judgements;
pub mod releases;
pub mod strategies;
pub mod views;

#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub history: Arc<dyn HistoryStore>,
    pub deployments: Arc<dyn DeploymentStore>,
    pub groups: Arc<dyn GroupStore>,
    /// `None`: no auth file, every request is allowed (loopback only).
    pub auth: Option<Arc<Tokens>>,
    pub telemetry: Arc<Telemetry>,
}

#[derive(OpenApi)]
#[openapi(info(title = "canaryd", description = "Metrics-driven canary analysis"))]
struct ApiDoc;

/// The API's routes with the OpenAPI document gathered from them.
fn documented() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(analyses::start, analyses::list))
        .routes(routes!(analyses::get))
        .routes(routes!(analyses::events))
        .routes(routes!(analyses::pause))
        .routes(routes!(analyses::resume))
        .routes(routes!(analyses::promote))
        .routes(routes!(analyses::rollback))
        .routes(routes!(analyses::abort))
        .routes(routes!(analyses::retry))
        .routes(routes!(groups::start))
        .routes(routes!(groups::get))
        .routes(routes!(groups::operations::cancel))
        .routes(routes!(groups::operations::rollback))
        .routes(routes!(releases::rollback))
        .routes(routes!(releases::rollforward))
        .routes(routes!(blocks::blocks))
        .routes(routes!(blocks::lift))
        .routes(routes!(judgements::judge))
        .routes(routes!(deployments::history))
        .routes(routes!(deployments::record::record))
        .routes(routes!(deployments::current::current))
        .routes(routes!(deployments::compare::compare))
        .routes(routes!(strategies::list))
        .routes(routes!(strategies::get))
        .routes(routes!(freezes::create, freezes::list))
        .routes(routes!(freezes::delete))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .split_for_parts();
    document::finish(&mut openapi);
    (router, openapi)
}

/// The OpenAPI document, as `/openapi.json` serves it.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    documented().1
}

fn api(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let (router, openapi) = documented();
    (router.with_state(state), openapi)
}

pub fn router(state: AppState) -> Router {
    let telemetry = Arc::clone(&state.telemetry);
    let (router, openapi) = api(state);
    let document = Arc::new(openapi);
    router
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let document = Arc::clone(&document);
                async move { axum::Json((*document).clone()) }
            }),
        )
        .route("/schemas/{file}", axum::routing::get(schema_file))
        .fallback(|| async { errors::ApiError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(json::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(move |request, next| {
            count_requests(Arc::clone(&telemetry), request, next)
        }))
}

/// `/schemas/strategy.json` and `/schemas/template.json`, for editors that fetch a
/// schema by URL. Public, like `/openapi.json`: a schema holds no team's data.
async fn schema_file(
    axum::extract::Path(file): axum::extract::Path<String>,
) -> Result<axum::Json<serde_json::Value>, errors::ApiError> {
    use crate::strategy_files::schema::{SchemaKind, schema};
    [SchemaKind::Strategy, SchemaKind::Template]
        .into_iter()
        .find(|kind| kind.file_name() == file)
        .map(|kind| axum::Json(schema(kind)))
        .ok_or_else(|| {
            errors::ApiError::not_found("no such schema; try strategy.json or template.json")
        })
}

/// Counts every request by route template (never the raw path: ids would explode the
/// label set) and status code.
async fn count_requests(
    telemetry: Arc<Telemetry>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |path| path.as_str().to_string());
    let response = next.run(request).await;
    let labels = crate::telemetry::HttpLabels {
        route,
        code: response.status().as_u16().to_string(),
    };
    telemetry.http_requests.get_or_create(&labels).inc();
    response
}
