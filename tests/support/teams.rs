//! canaryd with an auth file, driven over HTTP as a named token: the token of `name` is
//! `<name>-secret`. For tests of team scoping and roles.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use super::{Canaryd, decide_only_strategies};

/// An auth file at `dir/auth.yaml` with one token per (name, team, role).
pub fn auth_file(dir: &Path, tokens: &[(&str, &str, &str)]) -> PathBuf {
    let mut text = String::from("tokens:\n");
    for (name, team, role) in tokens {
        let hash = format!("{:x}", Sha256::digest(format!("{name}-secret")));
        text.push_str(&format!(
            "  - name: {name}\n    team: \"{team}\"\n    role: {role}\n    sha256: {hash}\n"
        ));
    }
    let path = dir.join("auth.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// shop/web (service `web`) and bank/ledger (service `ledger`), deciding only.
pub fn shop_and_bank_strategies() -> TempDir {
    let strategies = decide_only_strategies();
    let bank = std::fs::read_to_string(strategies.path().join("shop/web.yaml"))
        .unwrap()
        .replace("name: web", "name: ledger")
        .replace("team: shop", "team: bank")
        .replace("service: web", "service: ledger");
    std::fs::create_dir_all(strategies.path().join("bank")).unwrap();
    std::fs::write(strategies.path().join("bank/ledger.yaml"), bank).unwrap();
    strategies
}

pub struct TeamServer {
    pub canaryd: Canaryd,
    client: reqwest::Client,
    _dirs: (TempDir, TempDir),
}

impl TeamServer {
    /// canaryd on `strategies`, with these tokens, and Prometheus nowhere.
    pub async fn start(strategies: TempDir, tokens: &[(&str, &str, &str)]) -> Self {
        let logs = tempfile::tempdir().unwrap();
        let auth = auth_file(logs.path(), tokens);
        let extra = ["--auth-file", auth.to_str().unwrap()];
        let canaryd =
            Canaryd::start(strategies.path(), "http://127.0.0.1:9", &extra, logs.path()).await;
        Self {
            canaryd,
            client: reqwest::Client::new(),
            _dirs: (strategies, logs),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder, token: &str) -> (u16, Value) {
        let response = request
            .bearer_auth(format!("{token}-secret"))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        let request = self.client.post(self.canaryd.url(path)).json(&body);
        self.send(request, token).await
    }

    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        self.send(self.client.get(self.canaryd.url(path)), token)
            .await
    }
}
