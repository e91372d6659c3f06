//! HAProxy over its Runtime API (`stats socket … level admin`), on a unix socket or TCP.
//!
//! A canary weight of w% gives the canary server weight w and the stable server
//! 100 − w, with absolute weights (`N%` would be relative to the initial weight). Each
//! command is sent on its own connection (HAProxy's non-interactive mode answers and
//! closes), and every change is read back with `get weight` before it counts.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::time::timeout;

use crate::ports::{RouterError, TrafficRouter, Writer};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Address {
    Unix(PathBuf),
    Tcp(String),
}

#[derive(Debug, Clone)]
pub struct Haproxy {
    address: Address,
    backend: String,
    stable_server: String,
    canary_server: String,
    timeout: Duration,
}

/// HAProxy's own answers are short; anything longer is not a Runtime API.
const MAX_REPLY_BYTES: u64 = 64 * 1024;

impl Haproxy {
    pub fn new(
        address: &str,
        backend: &str,
        stable_server: &str,
        canary_server: &str,
        timeout: Duration,
    ) -> Result<Self, RouterError> {
        for (what, name) in [
            ("backend", backend),
            ("stable server", stable_server),
            ("canary server", canary_server),
        ] {
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c));
            if !valid {
                return Err(RouterError::Unsupported(format!(
                    "HAProxy {what} name {name:?} is not a valid HAProxy name"
                )));
            }
        }
        let address = match address.strip_prefix("unix:") {
            Some(path) => Address::Unix(PathBuf::from(path)),
            None => Address::Tcp(address.strip_prefix("tcp:").unwrap_or(address).to_string()),
        };
        Ok(Self {
            address,
            backend: backend.to_string(),
            stable_server: stable_server.to_string(),
            canary_server: canary_server.to_string(),
            timeout,
        })
    }

    fn where_(&self) -> String {
        match &self.address {
            Address::Unix(path) => format!("unix:{}", path.display()),
            Address::Tcp(address) => address.clone(),
        }
    }

    /// Sends one command and returns HAProxy's answer.
    async fn command(&self, line: &str) -> Result<String, RouterError> {
        let exchange = async {
            match &self.address {
                Address::Unix(path) => exchange(UnixStream::connect(path).await?, line).await,
                Address::Tcp(address) => exchange(TcpStream::connect(address).await?, line).await,
            }
        };
        match timeout(self.timeout, exchange).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(error)) => Err(RouterError::Unreachable(format!(
                "HAProxy Runtime API at {} failed on '{line}': {error}",
                self.where_()
            ))),
            Err(_) => Err(RouterError::Unreachable(format!(
                "HAProxy Runtime API at {} did not answer '{line}' within {:?}",
                self.where_(),
                self.timeout
            ))),
        }
    }

    async fn set_server_weight(&self, server: &str, weight: u8) -> Result<(), RouterError> {
        let line = format!("set server {}/{server} weight {weight}", self.backend);
        let reply = self.command(&line).await?;
        set_reply(&line, &reply)
    }

    async fn server_weight(&self, server: &str) -> Result<u32, RouterError> {
        let line = format!("get weight {}/{server}", self.backend);
        let reply = self.command(&line).await?;
        weight_reply(&line, &reply)
    }

    async fn weights(&self) -> Result<(u32, u32), RouterError> {
        Ok((
            self.server_weight(&self.stable_server).await?,
            self.server_weight(&self.canary_server).await?,
        ))
    }
}

/// HAProxy answers a `set server … weight` it applied with an empty line; anything
/// else is its refusal.
pub fn set_reply(command: &str, reply: &str) -> Result<(), RouterError> {
    if reply.trim().is_empty() {
        Ok(())
    } else {
        Err(RouterError::Refused(format!(
            "HAProxy refused '{command}': {}",
            printable(reply)
        )))
    }
}

/// `get weight b/s` answers `10 (initial 1)`: the current weight, 0..=256.
pub fn weight_reply(command: &str, reply: &str) -> Result<u32, RouterError> {
    let mut words = reply.split_whitespace();
    let weight = words.next().and_then(|first| first.parse().ok());
    let initial = words.next().is_none_or(|w| w.starts_with("(initial"));
    match weight {
        Some(weight) if weight <= 256 && initial => Ok(weight),
        _ => Err(RouterError::Refused(format!(
            "HAProxy answered {} to '{command}'",
            printable(reply)
        ))),
    }
}

/// A reply as it may go into an error: trimmed, quoted with control characters
/// escaped, and at most about 200 bytes however it is escaped.
fn printable(reply: &str) -> String {
    let mut shown = String::from('"');
    for c in reply.trim().chars() {
        if shown.len() >= 200 {
            shown.push('…');
            break;
        }
        shown.extend(c.escape_debug());
    }
    shown.push('"');
    shown
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    line: &str,
) -> std::io::Result<String> {
    stream.write_all(format!("{line}\n").as_bytes()).await?;
    stream.flush().await?;
    let mut reply = String::new();
    (&mut stream)
        .take(MAX_REPLY_BYTES)
        .read_to_string(&mut reply)
        .await?;
    Ok(reply)
}

#[async_trait]
impl TrafficRouter for Haproxy {
    /// HAProxy keeps no note of who wrote a weight; the writer is named in the log.
    async fn set_weight(&self, weight: u8, _writer: &Writer) -> Result<(), RouterError> {
        let canary = weight.min(100);
        let stable = 100 - canary;
        // Take traffic away first, so a half-applied change errs toward less canary.
        if canary == 0 {
            self.set_server_weight(&self.canary_server, canary).await?;
            self.set_server_weight(&self.stable_server, stable).await?;
        } else {
            self.set_server_weight(&self.stable_server, stable).await?;
            self.set_server_weight(&self.canary_server, canary).await?;
        }
        let applied = self.weights().await?;
        if applied != (u32::from(stable), u32::from(canary)) {
            return Err(RouterError::NotApplied(format!(
                "HAProxy reports stable/canary weights {}/{} after setting {stable}/{canary}",
                applied.0, applied.1
            )));
        }
        Ok(())
    }

    async fn weight(&self) -> Result<u8, RouterError> {
        let (stable, canary) = self.weights().await?;
        let total = stable + canary;
        if total == 0 {
            return Ok(0);
        }
        Ok(u8::try_from((canary * 100 + total / 2) / total).unwrap_or(100))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_replies_are_read_and_anything_else_is_a_refusal() {
        let command = "get weight demo/canary";
        assert_eq!(weight_reply(command, "10 (initial 1)\n").unwrap(), 10);
        assert_eq!(weight_reply(command, "0").unwrap(), 0);
        for reply in [
            "",
            "No such server.\n",
            "300 (initial 1)",
            "-1",
            "7 apples",
            "\u{1b}[31m",
        ] {
            let error = weight_reply(command, reply).unwrap_err();
            assert_eq!(error.metric_label(), "refused", "{reply:?}");
            assert!(error.to_string().contains(command), "{error}");
        }
        for long in ["x".repeat(1000), "\u{1c}".repeat(1000)] {
            let error = weight_reply(command, &long).unwrap_err().to_string();
            assert!(error.len() < 300 && error.contains('…'), "{error}");
        }
        assert!(set_reply("set server demo/canary weight 5", "\n").is_ok());
        let refused = set_reply("set server demo/canary weight 5", "No such backend.\n");
        assert!(
            refused
                .unwrap_err()
                .to_string()
                .ends_with("\"No such backend.\"")
        );
    }

    #[test]
    fn names_that_could_inject_commands_are_refused() {
        let error = Haproxy::new(
            "127.0.0.1:1",
            "demo;shutdown",
            "stable",
            "canary",
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(error.to_string().contains("not a valid HAProxy name"));
        assert!(
            Haproxy::new(
                "unix:/run/h.sock",
                "demo",
                "stable",
                "canary\nx",
                Duration::from_secs(1)
            )
            .is_err()
        );
    }

    #[tokio::test]
    async fn an_unreachable_runtime_api_is_an_error_naming_the_address() {
        let router = Haproxy::new(
            "127.0.0.1:9",
            "demo",
            "stable",
            "canary",
            Duration::from_millis(500),
        )
        .unwrap();
        let writer = Writer {
            analysis_id: "a".into(),
            epoch: 1,
        };
        let error = router.set_weight(0, &writer).await.unwrap_err();
        assert_eq!(error.metric_label(), "unreachable");
        assert!(error.to_string().contains("127.0.0.1:9"), "{error}");
    }
}
