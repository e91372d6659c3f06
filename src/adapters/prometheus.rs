//! `MetricsSource` over the Prometheus HTTP API (prometheus-http-query). Works the same
//! with Thanos, Mimir or VictoriaMetrics: bearer or basic auth and extra headers are
//! configurable, and every query has a timeout.

use std::time::Duration;

use async_trait::async_trait;
use prometheus_http_query::Client;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use crate::domain::Timestamp;
use crate::ports::{LabelledValue, MetricsSource, QueryError};

pub mod answer;
pub use answer::{Answer, MAX_ANSWER_BYTES, decode};

#[derive(Debug, Clone)]
pub struct PrometheusSettings {
    pub url: String,
    pub timeout: Duration,
    pub bearer_token: Option<String>,
    /// `user:password`
    pub basic_auth: Option<String>,
    /// Extra headers, e.g. `X-Scope-OrgID: team-a` for Mimir.
    pub headers: Vec<(String, String)>,
    /// Most requests in flight at once (`serve` only).
    pub max_concurrent: usize,
    /// Most requests started per second, if limited (`serve` only).
    pub max_qps: Option<f64>,
    /// Share queries between analyses (`serve` only).
    pub coalescing: bool,
}

impl PrometheusSettings {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            timeout: Duration::from_secs(5),
            bearer_token: None,
            basic_auth: None,
            headers: Vec::new(),
            max_concurrent: 16,
            max_qps: None,
            coalescing: true,
        }
    }
}

pub struct Prometheus {
    client: Client,
    timeout: Duration,
}

impl Prometheus {
    pub fn new(settings: &PrometheusSettings) -> Result<Self, QueryError> {
        let mut headers = HeaderMap::new();
        let sensitive = |value: String| {
            let mut value = HeaderValue::from_str(&value).map_err(|_| {
                QueryError::Config("credentials contain characters not allowed in a header".into())
            })?;
            value.set_sensitive(true);
            Ok::<_, QueryError>(value)
        };
        if let Some(token) = &settings.bearer_token {
            headers.insert(AUTHORIZATION, sensitive(format!("Bearer {token}"))?);
        }
        if let Some(user_password) = &settings.basic_auth {
            headers.insert(
                AUTHORIZATION,
                sensitive(format!("Basic {}", base64_encode(user_password)))?,
            );
        }
        for (name, value) in &settings.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| QueryError::Config(format!("invalid header name {name:?}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| QueryError::Config(format!("invalid value for header {name}")))?;
            headers.insert(name, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(2)))
            .build()
            .map_err(|e| QueryError::Config(format!("cannot build the HTTP client: {e}")))?;
        let client = Client::from(http, &settings.url).map_err(|e| {
            QueryError::Config(format!("invalid Prometheus URL {:?}: {e}", settings.url))
        })?;
        Ok(Self {
            client,
            timeout: settings.timeout,
        })
    }

    async fn query(&self, query: &str, at: Option<Timestamp>) -> Result<Answer, QueryError> {
        let mut request = self.client.query(query).timeout(self.timeout_ms());
        if let Some(at) = at {
            request = request.at(at.timestamp());
        }
        read(request.post_raw().await.map_err(unreachable)?).await
    }

    fn timeout_ms(&self) -> i64 {
        i64::try_from(self.timeout.as_millis()).unwrap_or(i64::MAX)
    }
}

fn unreachable(error: prometheus_http_query::Error) -> QueryError {
    QueryError::Unreachable(error.to_string())
}

/// Reads an answer of at most [`MAX_ANSWER_BYTES`] and decodes it.
async fn read(mut response: reqwest::Response) -> Result<Answer, QueryError> {
    let status = response.status();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| QueryError::Unreachable(format!("reading the answer: {e}")))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(QueryError::Shape(format!(
                "the answer is larger than {} MiB; aggregate the query",
                MAX_ANSWER_BYTES >> 20
            )));
        }
        body.extend_from_slice(&chunk);
    }
    decode(status.as_u16(), content_type.as_deref(), &body)
}

#[async_trait]
impl MetricsSource for Prometheus {
    async fn instant_vector(
        &self,
        query: &str,
        at: Option<Timestamp>,
    ) -> Result<Vec<LabelledValue>, QueryError> {
        answer::vector(self.query(query, at).await?)
    }

    async fn instant(&self, query: &str, at: Option<Timestamp>) -> Result<Option<f64>, QueryError> {
        answer::instant(self.query(query, at).await?)
    }

    async fn range(
        &self,
        query: &str,
        end: Timestamp,
        range: Duration,
        step: Duration,
    ) -> Result<Vec<f64>, QueryError> {
        let end_seconds = end.timestamp();
        let start_seconds = end_seconds - i64::try_from(range.as_secs()).unwrap_or(i64::MAX);
        let response = self
            .client
            .query_range(query, start_seconds, end_seconds, step.as_secs_f64())
            .timeout(self.timeout_ms())
            .post_raw()
            .await
            .map_err(unreachable)?;
        answer::range(read(response).await?)
    }
}

/// Standard base64 (RFC 4648) for basic auth, to avoid a dependency for six lines.
fn base64_encode(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain), encoded);
        }
    }

    #[tokio::test]
    async fn an_unreachable_prometheus_is_an_error_not_no_data() {
        let mut settings = PrometheusSettings::new("http://127.0.0.1:9");
        settings.timeout = Duration::from_millis(500);
        let prometheus = Prometheus::new(&settings).unwrap();
        let error = prometheus.instant("up", None).await.unwrap_err();
        assert_eq!(error.metric_label(), "unreachable");
        assert!(
            error.to_string().starts_with("Prometheus query failed"),
            "{error}"
        );
    }
}
