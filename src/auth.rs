//! Access control: bearer tokens listed, as SHA-256 hashes, in an auth file with a team
//! and a role. `ci` starts analyses for its team; `operator` also runs operations for
//! its team; `admin` may do everything, for every team (`team: "*"`).
//!
//! A presented token is hashed and compared with every entry in constant time, so
//! neither the comparison nor the position of a match leaks through timing.

use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::strategy_files::Diagnostic;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Ci,
    Operator,
    Admin,
}

/// Who a valid token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Shown as the actor in the audit trail.
    pub name: String,
    /// A team, or `*` for an admin of all teams.
    pub team: String,
    pub role: Role,
}

impl Principal {
    fn covers(&self, team: &str) -> bool {
        self.team == "*" || self.team == team
    }

    /// Reading a team's analyses, strategies and history.
    pub fn may_read(&self, team: &str) -> bool {
        self.covers(team)
    }

    /// Starting an analysis of one of the team's strategies.
    pub fn may_start(&self, team: &str) -> bool {
        self.covers(team)
    }

    /// Pause, resume, promote, roll back, abort, retry.
    pub fn may_operate(&self, team: &str) -> bool {
        self.role >= Role::Operator && self.covers(team)
    }

    /// Freezes concern every team of an environment.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthFile {
    tokens: Vec<serde_saphyr::Spanned<RawToken>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    name: String,
    team: String,
    role: Role,
    sha256: String,
}

/// The tokens of an auth file.
#[derive(Debug, Clone)]
pub struct Tokens {
    entries: Vec<([u8; 32], Principal)>,
}

impl Tokens {
    /// Reads an auth file; every mistake is reported with its position.
    pub fn load(path: &Path) -> Result<Self, Vec<Diagnostic>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![Diagnostic {
                path: path.to_path_buf(),
                line: 1,
                column: 1,
                message: format!("cannot read the auth file: {e}"),
            }]
        })?;
        Self::parse(path, &text)
    }

    /// Parses an auth file's text; `path` names it in the diagnostics.
    pub fn parse(path: &Path, text: &str) -> Result<Self, Vec<Diagnostic>> {
        let at = |line, column, message: String| Diagnostic {
            path: path.to_path_buf(),
            line,
            column,
            message,
        };
        let raw: RawAuthFile = serde_saphyr::from_str(text).map_err(|e| {
            let location = e.location();
            let (line, column) = location.map_or((1, 1), |l| (l.line(), l.column()));
            vec![at(line, column, e.without_snippet().to_string())]
        })?;
        let mut errors = Vec::new();
        let mut entries = Vec::new();
        for token in &raw.tokens {
            let (line, column) = (token.referenced.line(), token.referenced.column());
            let token = &token.value;
            let hash = parse_sha256(&token.sha256);
            if hash.is_none() {
                errors.push(at(
                    line,
                    column,
                    format!("token '{}': sha256 must be 64 hex digits", token.name),
                ));
            }
            if token.team == "*" && token.role != Role::Admin {
                errors.push(at(
                    line,
                    column,
                    format!("token '{}': team '*' is only for role admin", token.name),
                ));
            }
            if token.name.trim().is_empty() || token.team.trim().is_empty() {
                errors.push(at(
                    line,
                    column,
                    "a token needs a name and a team".to_string(),
                ));
            }
            if entries
                .iter()
                .any(|(_, p): &([u8; 32], Principal)| p.name == token.name)
            {
                errors.push(at(
                    line,
                    column,
                    format!("token name '{}' is used twice", token.name),
                ));
            }
            if hash == Some(EMPTY_TOKEN_SHA256) {
                errors.push(at(
                    line,
                    column,
                    format!(
                        "token '{}': sha256 is the hash of an empty token",
                        token.name
                    ),
                ));
            }
            if let Some(other) = entries.iter().find(|(h, _)| Some(*h) == hash) {
                errors.push(at(
                    line,
                    column,
                    format!(
                        "token '{}': the same sha256 as token '{}'; each token must be its own",
                        token.name, other.1.name
                    ),
                ));
            }
            if let Some(hash) = hash {
                let principal = Principal {
                    name: token.name.clone(),
                    team: token.team.clone(),
                    role: token.role,
                };
                entries.push((hash, principal));
            }
        }
        if errors.is_empty() {
            Ok(Self { entries })
        } else {
            Err(errors)
        }
    }

    /// The principal of a bearer token, comparing against every entry in constant time.
    pub fn authenticate(&self, token: &str) -> Option<&Principal> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (hash, principal) in &self.entries {
            if bool::from(hash.ct_eq(&presented)) {
                found = Some(principal);
            }
        }
        found
    }
}

/// sha256 of the empty string: such an entry would let `Authorization: Bearer ` in.
const EMPTY_TOKEN_SHA256: [u8; 32] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

fn parse_sha256(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(token: &str) -> String {
        crate::engine::request::to_hex(&Sha256::digest(token.as_bytes()))
    }

    fn load(text: &str) -> Result<Tokens, Vec<Diagnostic>> {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        Tokens::load(file.path())
    }

    #[test]
    fn authenticates_by_hash_and_tells_roles_apart() {
        let text = format!(
            "tokens:\n  - name: payments-ci\n    team: payments\n    role: ci\n    sha256: {}\n  - name: root\n    team: \"*\"\n    role: admin\n    sha256: {}\n",
            hash("s3cret-ci"),
            hash("s3cret-admin")
        );
        let tokens = load(&text).unwrap();
        let ci = tokens.authenticate("s3cret-ci").unwrap();
        assert_eq!(ci.name, "payments-ci");
        assert!(ci.may_start("payments") && !ci.may_start("search"));
        assert!(!ci.may_operate("payments"));
        let admin = tokens.authenticate("s3cret-admin").unwrap();
        assert!(admin.may_operate("search") && admin.is_admin());
        assert!(tokens.authenticate("wrong").is_none());
        assert!(
            tokens.authenticate(&hash("s3cret-ci")).is_none(),
            "the hash itself is not a token"
        );
    }

    #[test]
    fn an_empty_token_and_a_shared_hash_are_refused() {
        assert_eq!(hash(""), to_hex_of(&EMPTY_TOKEN_SHA256));
        let text = format!(
            "tokens:\n  - name: open\n    team: payments\n    role: ci\n    sha256: {}\n  - name: a\n    team: payments\n    role: ci\n    sha256: {}\n  - name: b\n    team: search\n    role: operator\n    sha256: {}\n",
            hash(""),
            hash("shared"),
            hash("shared")
        );
        let messages: Vec<_> = Tokens::parse(Path::new("auth.yaml"), &text)
            .unwrap_err()
            .into_iter()
            .map(|e| format!("{}:{}: {}", e.line, e.column, e.message))
            .collect();
        assert_eq!(
            messages,
            [
                "2:5: token 'open': sha256 is the hash of an empty token",
                "10:5: token 'b': the same sha256 as token 'a'; each token must be its own",
            ]
        );
    }

    fn to_hex_of(bytes: &[u8]) -> String {
        crate::engine::request::to_hex(bytes)
    }

    #[test]
    fn reports_bad_entries_with_their_position() {
        let text = "tokens:\n  - name: a\n    team: \"*\"\n    role: ci\n    sha256: abc\n";
        let errors = load(text).unwrap_err();
        let messages: Vec<_> = errors
            .iter()
            .map(|e| format!("{}:{}: {}", e.line, e.column, e.message))
            .collect();
        assert_eq!(
            messages,
            [
                "2:5: token 'a': sha256 must be 64 hex digits",
                "2:5: token 'a': team '*' is only for role admin"
            ]
        );
    }
}
