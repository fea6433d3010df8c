//! Who is calling: a browser session (cookie + CSRF token on unsafe methods) or a script's
//! bearer token checked by the one [`tessera_auth::Validator`].

use std::fmt;

use actix_web::HttpRequest;
use actix_web::http::{Method, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tessera_auth::{Decision, Outcome, bearer_token};
use tessera_core::scope::ScopeSet;
use tessera_core::validate::Principal;
use tessera_store::{Actor, User};
use uuid::Uuid;

use crate::ApiState;
use crate::error::ApiError;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "tessera_session";
/// Header carrying the CSRF token on unsafe methods of a cookie session.
pub const CSRF_HEADER: &str = "X-CSRF-Token";
/// Scope a bearer credential needs to read tokens.
pub const READ_SCOPE: &str = "read:tokens";
/// Scope a bearer credential needs to change tokens.
pub const WRITE_SCOPE: &str = "write:tokens";

/// What an endpoint does with tokens, hence which scope a bearer credential needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads (`read:tokens`).
    Read,
    /// Changes (`write:tokens`).
    Write,
}

/// A session id: the cookie's value. Only its hash is stored; it is never printed.
pub struct SessionId(String);

impl SessionId {
    /// 256 random bits, base64url.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// What the store keeps.
    pub fn sha256(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }

    /// The CSRF token bound to this session: derived, so it needs no storage, and one-way,
    /// so it does not reveal the session id.
    pub fn csrf_token(&self) -> String {
        let digest = Sha256::new().chain_update(b"tessera-csrf\0").chain_update(self.0.as_bytes()).finalize();
        URL_SAFE_NO_PAD.encode(digest)
    }

    /// The `Set-Cookie` value that installs this session.
    pub fn set_cookie(&self, max_age_secs: i64, secure: bool) -> String {
        cookie_header(&self.0, max_age_secs, secure)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId([redacted])")
    }
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    cookie_header("", 0, secure)
}

fn cookie_header(value: &str, max_age_secs: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_secs}{secure}")
}

/// How the caller proved who they are.
pub enum Via {
    /// A browser session.
    Session(SessionId),
    /// A bearer token used as API credential.
    Token(Principal),
}

/// An authenticated caller.
pub struct Caller {
    /// The account acting.
    pub user: User,
    /// Session or token.
    pub via: Via,
    /// Client address.
    pub ip: Option<String>,
}

impl Caller {
    /// Who to name in the audit log.
    pub fn actor(&self) -> Actor {
        Actor { user_id: Some(self.user.id), token_id: self.token_id(), ip: self.ip.clone() }
    }

    /// The token used as credential, if any.
    pub fn token_id(&self) -> Option<Uuid> {
        match &self.via {
            Via::Token(p) => Some(p.token_id),
            Via::Session(_) => None,
        }
    }

    /// Whether the caller may see tokens of `owner` (their own, or any for admins).
    pub fn can_see(&self, owner: Uuid) -> bool {
        self.user.is_admin || self.user.id == owner
    }

    /// The effective scopes of a bearer credential; `None` for a session (a person may
    /// grant any non-admin catalog scope).
    pub fn credential_scopes(&self) -> Option<&ScopeSet> {
        match &self.via {
            Via::Token(p) => Some(&p.effective),
            Via::Session(_) => None,
        }
    }
}

/// The client address: the socket peer, or what a trusted proxy says in `X-Forwarded-For`
/// (`TESSERA_TRUSTED_PROXIES`; none by default).
pub fn client_ip(req: &HttpRequest) -> Option<String> {
    let none = tessera_auth::TrustedProxies::default();
    let trusted = req.app_data::<actix_web::web::Data<ApiState>>().map_or(&none, |s| &s.config.trusted_proxies);
    let forwarded = req.headers().get_all("x-forwarded-for").filter_map(|v| v.to_str().ok());
    let ip = trusted.client_ip(req.peer_addr().map(|a| a.ip()), forwarded);
    ip.map(|ip| ip.to_string())
}

/// Authenticates the request for `access`: bearer token when an `Authorization` header is
/// present, else the session cookie (with the CSRF check on unsafe methods).
pub async fn authenticate(
    req: &HttpRequest,
    state: &ApiState,
    access: Access,
    now: DateTime<Utc>,
) -> Result<Caller, ApiError> {
    let ip = client_ip(req);
    if req.headers().contains_key(header::AUTHORIZATION) {
        return bearer_caller(req, state, access, now, ip).await;
    }
    match session_cookie(req) {
        Some(id) => session_caller(req, state, id, now, ip).await,
        None => Err(ApiError::Unauthenticated {
            code: "unauthenticated",
            message: "sign in, or send a bearer token with read:tokens / write:tokens".to_owned(),
            invalid_token: false,
        }),
    }
}

async fn bearer_caller(
    req: &HttpRequest,
    state: &ApiState,
    access: Access,
    now: DateTime<Utc>,
    ip: Option<String>,
) -> Result<Caller, ApiError> {
    let token = bearer_token(req.headers().get_all(header::AUTHORIZATION).map(|v| v.as_bytes())).map_err(|e| {
        ApiError::Unauthenticated { code: e.code(), message: e.to_string(), invalid_token: e.token_presented() }
    })?;
    let principal = state.validator.validate(token, now).await?;
    admit(req, state, &principal, now, ip.clone())?;
    let count = |outcome| record_use(req, state, &principal, outcome, now, ip.clone());
    let needed = match access {
        Access::Read => READ_SCOPE,
        Access::Write => WRITE_SCOPE,
    };
    if !principal.effective.contains(needed) {
        // The precise cause goes to the log; the client gets a stable code.
        tracing::info!(token_id = %principal.token_id, needed, "bearer credential lacks scope");
        count(Outcome::Forbidden);
        return Err(ApiError::Forbidden {
            code: "insufficient_scope",
            message: format!("this token lacks the `{needed}` scope"),
            details: Some(Box::new(serde_json::json!({ "required_scope": needed }))),
            missing_scope: Some(needed),
        });
    }
    let user = state.store.user_by_id(principal.user_id).await?.ok_or(ApiError::Unauthenticated {
        code: "not_found",
        message: "the token's owner no longer exists".to_owned(),
        invalid_token: true,
    })?;
    count(Outcome::Ok);
    Ok(Caller { user, via: Via::Token(principal), ip })
}

/// Spends one request of the token's rate limit (one budget per token across the API and
/// `/mcp`, DESIGN.md "Validation" step 5); when it is used up, counts a 429 and refuses.
pub(crate) fn admit(
    req: &HttpRequest,
    state: &ApiState,
    principal: &Principal,
    now: DateTime<Utc>,
    ip: Option<String>,
) -> Result<(), ApiError> {
    match state.metering.limits.check(principal.token_id, principal.rate_limit_per_hour) {
        Decision::Limited { limit, retry_after_secs } => {
            record_use(req, state, principal, Outcome::RateLimited, now, ip);
            Err(ApiError::TooManyRequests {
                message: format!("this token's rate limit ({limit} requests per hour) is used up; retry later"),
                retry_after: retry_after_secs,
                limit: Some(limit),
            })
        }
        Decision::Unlimited | Decision::Allowed { .. } => Ok(()),
    }
}

/// Counts one bearer call in the token's usage, under `api <METHOD> <route pattern>`.
pub(crate) fn record_use(
    req: &HttpRequest,
    state: &ApiState,
    principal: &Principal,
    outcome: Outcome,
    now: DateTime<Utc>,
    ip: Option<String>,
) {
    let route = req.match_pattern().unwrap_or_else(|| "other".to_owned());
    let label = format!("api {} {route}", req.method());
    state.metering.usage.record(principal.token_id, &label, outcome, now, ip);
}

async fn session_caller(
    req: &HttpRequest,
    state: &ApiState,
    id: SessionId,
    now: DateTime<Utc>,
    ip: Option<String>,
) -> Result<Caller, ApiError> {
    let user = state.store.session_user(&id.sha256(), now).await?.ok_or(ApiError::Unauthenticated {
        code: "session_expired",
        message: "the session has expired or was ended; sign in again".to_owned(),
        invalid_token: false,
    })?;
    if is_unsafe(req.method()) {
        let sent = req.headers().get(CSRF_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
        if !constant_time_eq(sent, id.csrf_token().as_bytes()) {
            return Err(ApiError::Forbidden {
                code: "csrf_failed",
                message: format!("missing or wrong {CSRF_HEADER} header (get it from login or /api/v2/auth/me)"),
                details: None,
                missing_scope: None,
            });
        }
    }
    Ok(Caller { user, via: Via::Session(id), ip })
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The session cookie's value, if the request carries one.
pub fn session_cookie(req: &HttpRequest) -> Option<SessionId> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == SESSION_COOKIE && !value.is_empty())
        .map(|(_, value)| SessionId(value.to_owned()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_id_debug_is_redacted() {
        let id = SessionId::generate();
        assert_eq!(format!("{id:?}"), "SessionId([redacted])");
    }

    #[test]
    fn csrf_token_is_bound_to_the_session_and_differs_from_it() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert_ne!(a.csrf_token(), b.csrf_token());
        assert_eq!(a.csrf_token(), a.csrf_token());
        assert!(!a.csrf_token().contains(&a.0));
    }

    #[test]
    fn cookie_is_http_only_strict_and_secure_only_over_https() {
        let id = SessionId::generate();
        let plain = id.set_cookie(60, false);
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Strict") && plain.contains("Path=/"));
        assert!(!plain.contains("Secure"));
        assert!(id.set_cookie(60, true).ends_with("; Secure"));
    }
}
