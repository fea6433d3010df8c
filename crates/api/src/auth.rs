//! Who is calling: a browser session (cookie + CSRF token on unsafe methods) or a script's
//! bearer token checked by the one [`tessera_auth::Validator`].

use std::fmt;
use std::sync::Arc;
use tessera_core::ErrorCode;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tessera_auth::{Audience, Denial, Identified, Outcome, RateHeaders, Verdict};
use tessera_core::codec::constant_time_eq;
use tessera_core::lifecycle::{Credential, Requester};
use tessera_core::validate::Principal;
use tessera_core::values::RateLimit;
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
    /// Administration (upstream servers): an admin's session, or `mcp:admin` in the token.
    Admin,
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
    Token(Arc<Principal>),
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

    /// The caller as the lifecycle rules see it: a person (admins see everyone) or a
    /// token credential (cross-user power only with `mcp:admin` in the token itself).
    pub fn requester(&self) -> Requester {
        match &self.via {
            Via::Session(_) => Requester::Person { user_id: self.user.id, is_admin: self.user.is_admin },
            Via::Token(p) => Requester::Token(Credential {
                token_id: p.token_id,
                user_id: p.user_id,
                effective: p.effective.clone(),
                expires_at: p.expires_at,
                rate_limit: p.rate_limit_per_hour.map(RateLimit::from_stored),
            }),
        }
    }
}

/// The client address: the socket peer, or what a trusted proxy says in `X-Forwarded-For`
/// (`TESSERA_TRUSTED_PROXIES`; none by default).
pub fn client_ip(req: &HttpRequest) -> Option<String> {
    let none = tessera_auth::TrustedProxies::default();
    let trusted = req.app_data::<actix_web::web::Data<ApiState>>().map_or(&none, |s| &s.config.trusted_proxies);
    let forwarded = req.headers().get_all("x-forwarded-for").map(|v| v.as_bytes());
    trusted.client_address(req.peer_addr().map(|a| a.ip()), forwarded)
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
        Some(id) => {
            let caller = session_caller(req, state, id, now, ip).await?;
            if access == Access::Admin && !caller.user.is_admin {
                return Err(ApiError::Forbidden {
                    code: ErrorCode::AdminRequired,
                    message: "only an administrator may do this".to_owned(),
                    details: None,
                    missing_scope: None,
                });
            }
            Ok(caller)
        }
        None => Err(ApiError::Unauthenticated {
            code: ErrorCode::Unauthenticated,
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
    let needed = match access {
        Access::Read => READ_SCOPE,
        Access::Write => WRITE_SCOPE,
        Access::Admin => tessera_core::scope::ADMIN,
    };
    let principal = guarded(req, state, now, ip.clone(), |p| Verdict::require(p, [needed]), ApiError::Denied).await?;
    let user = state.store.user_by_id(principal.user_id).await?.ok_or(ApiError::Unauthenticated {
        code: ErrorCode::NotFound,
        message: "the token's owner no longer exists".to_owned(),
        invalid_token: true,
    })?;
    Ok(Caller { user, via: Via::Token(principal), ip })
}

/// The API's face of the one bearer guard: identify the token (built-in audience), decide
/// with `policy`, then spend one request of its rate limit (one budget per token across the
/// API and `/mcp`, DESIGN.md "Validation" step 5). The request is marked so that its
/// outcome is counted in the token's usage under `api <METHOD> <route>` once the response
/// exists ([`count_bearer_use`]): a call answered 404 or 409 is then counted as an error.
/// `refused` renders an identification failure (`Inactive` for `POST /tokens/validate`).
pub(crate) async fn guarded(
    req: &HttpRequest,
    state: &ApiState,
    now: DateTime<Utc>,
    ip: Option<String>,
    policy: impl FnOnce(&Principal) -> Verdict,
    refused: fn(Denial) -> ApiError,
) -> Result<Arc<Principal>, ApiError> {
    let guard = state.guard();
    let authorization = req.headers().get_all(header::AUTHORIZATION).map(|v| v.as_bytes());
    let identified = guard.identify(authorization, Audience::BuiltIn, ip, now).await.map_err(refused)?;
    let route = req.match_pattern().unwrap_or_else(|| "other".to_owned());
    let label = format!("api {} {route}", req.method());
    let verdict = policy(&identified.principal);
    let rate = guard.admit(&identified, &label, verdict).await.map_err(ApiError::Denied)?;
    let principal = Arc::clone(&identified.principal);
    req.extensions_mut().insert(PendingUse { identified, label, rate });
    Ok(principal)
}

/// A bearer call whose usage is recorded when its response is known.
struct PendingUse {
    identified: Identified,
    label: String,
    rate: Option<RateHeaders>,
}

/// Middleware of `/api/v2`: counts each admitted bearer call under `api <METHOD> <route>`
/// with the outcome its response status says (the admission half is [`guarded`]), and
/// sends its `RateLimit-*` headers as every bearer face does.
pub async fn count_bearer_use(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let pending = res.request().extensions_mut().remove::<PendingUse>();
    if let Some(PendingUse { identified, label, rate }) = pending {
        identified.count(&label, Outcome::from_status(res.status().as_u16()));
        if let Some(rate) = rate {
            let headers = res.headers_mut();
            for (name, value) in rate.pairs() {
                headers.insert(header::HeaderName::from_static(name), header::HeaderValue::from(value));
            }
        }
    }
    Ok(res)
}

async fn session_caller(
    req: &HttpRequest,
    state: &ApiState,
    id: SessionId,
    now: DateTime<Utc>,
    ip: Option<String>,
) -> Result<Caller, ApiError> {
    let user = state.store.session_user(&id.sha256(), now).await?.ok_or(ApiError::Unauthenticated {
        code: ErrorCode::SessionExpired,
        message: "the session has expired or was ended; sign in again".to_owned(),
        invalid_token: false,
    })?;
    if is_unsafe(req.method()) {
        let sent = req.headers().get(CSRF_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
        if !constant_time_eq(sent, id.csrf_token().as_bytes()) {
            return Err(ApiError::Forbidden {
                code: ErrorCode::CsrfFailed,
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
    cookie(req, SESSION_COOKIE).map(|value| SessionId(value.to_owned()))
}

/// The non-empty value of cookie `name`, if the request carries one.
pub(crate) fn cookie<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, value)| *n == name && !value.is_empty())
        .map(|(_, value)| value)
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
