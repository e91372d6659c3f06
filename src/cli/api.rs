//! The HTTP side of the commands for people and CI: canaryd's URL and token from flags
//! or `CANARYD_URL` / `CANARYD_TOKEN`, JSON both ways, and, when canaryd refuses, its
//! own message and a non-zero exit.

use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::Value;

/// Where canaryd is, who asks, and how to print the answer.
#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// canaryd's base URL.
    #[arg(long, env = "CANARYD_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Bearer token, when canaryd has an auth file.
    #[arg(long, env = "CANARYD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print canaryd's JSON answer instead of text.
    #[arg(long)]
    pub json: bool,
}

impl Connection {
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        let request = self.request(Method::GET, path).query(query);
        let answer = self.send(request, Method::GET, path).await?;
        Ok(answer.unwrap_or(Value::Null))
    }

    /// POSTs `body`, with an `Idempotency-Key` when given.
    pub async fn post(&self, path: &str, body: &Value, key: Option<&str>) -> anyhow::Result<Value> {
        let mut request = self.request(Method::POST, path).json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let answer = self.send(request, Method::POST, path).await?;
        Ok(answer.unwrap_or(Value::Null))
    }

    /// DELETEs with query parameters, and returns canaryd's answer.
    pub async fn delete_with(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        let request = self.request(Method::DELETE, path).query(query);
        let answer = self.send(request, Method::DELETE, path).await?;
        Ok(answer.unwrap_or(Value::Null))
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<()> {
        let request = self.request(Method::DELETE, path);
        self.send(request, Method::DELETE, path).await.map(drop)
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let url = format!("{}{path}", self.url.trim_end_matches('/'));
        let request = reqwest::Client::new()
            .request(method, &url)
            .timeout(Duration::from_secs(30));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends one request; `None` for an answer without a body (204).
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        method: Method,
        path: &str,
    ) -> anyhow::Result<Option<Value>> {
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach canaryd at {}", self.url))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .with_context(|| format!("{method} {path}: the answer was cut off"))?;
        let parsed: Option<Value> = serde_json::from_str(&text).ok();
        if !status.is_success() {
            let message = parsed
                .as_ref()
                .and_then(|body| body["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| text.chars().take(200).collect());
            bail!("{method} {path}: {status}: {message}");
        }
        if text.is_empty() {
            return Ok(None);
        }
        parsed.map(Some).with_context(|| {
            format!("{method} {path}: canaryd answered something that is not JSON")
        })
    }
}

/// Prints `value` as indented JSON.
pub fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}
