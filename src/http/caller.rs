//! Who is calling: the principal of a bearer token, or anyone when canaryd runs without
//! an auth file (it then listens on loopback only). Checks answer 401 and 403.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::AppState;
use super::errors::ApiError;
use crate::auth::Principal;

pub enum Caller {
    /// No auth file: every request is allowed.
    Open,
    Token(Principal),
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(tokens) = &state.auth else {
            return Ok(Caller::Open);
        };
        let unauthorized =
            |message: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message);
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| unauthorized("an Authorization: Bearer <token> header is required"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| unauthorized("the Authorization header must be 'Bearer <token>'"))?;
        tokens
            .authenticate(token.trim())
            .cloned()
            .map(Caller::Token)
            .ok_or_else(|| unauthorized("the token is not valid"))
    }
}

fn forbidden(message: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

impl Caller {
    /// The actor recorded in the audit trail.
    pub fn actor(&self, fallback: Option<&str>) -> String {
        match self {
            Caller::Token(principal) => principal.name.clone(),
            Caller::Open => fallback.unwrap_or("anonymous").to_string(),
        }
    }

    /// The team this caller is confined to, if any.
    pub fn team(&self) -> Option<&str> {
        match self {
            Caller::Token(principal) if principal.team != "*" => Some(&principal.team),
            _ => None,
        }
    }

    pub fn check_read(&self, team: &str) -> Result<(), ApiError> {
        match self {
            Caller::Token(p) if !p.may_read(team) => Err(forbidden(format!(
                "token '{}' may not read team {team}",
                p.name
            ))),
            _ => Ok(()),
        }
    }

    pub fn check_start(&self, team: &str) -> Result<(), ApiError> {
        match self {
            Caller::Token(p) if !p.may_start(team) => Err(forbidden(format!(
                "token '{}' may not start analyses for team {team}",
                p.name
            ))),
            _ => Ok(()),
        }
    }

    pub fn check_operate(&self, team: &str) -> Result<(), ApiError> {
        match self {
            Caller::Token(p) if !p.may_operate(team) => Err(forbidden(format!(
                "token '{}' ({:?}) may not operate analyses of team {team}: that needs role operator of the team, or admin",
                p.name, p.role
            ))),
            _ => Ok(()),
        }
    }

    pub fn check_admin(&self) -> Result<(), ApiError> {
        match self {
            Caller::Token(p) if !p.is_admin() => {
                Err(forbidden(format!("token '{}' is not an admin", p.name)))
            }
            _ => Ok(()),
        }
    }
}
