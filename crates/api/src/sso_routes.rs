//! `/api/v2/auth/oidc/*`: sign-in through the configured OpenID provider (single sign-on),
//! and `/api/v2/auth/methods`: which ways of signing in this server offers.
//!
//! The sign-in's `state`, `nonce` and PKCE verifier travel in a short-lived cookie sealed
//! with the server's secret key (so any replica can finish a sign-in another began, and an
//! anonymous visitor costs no database row). It is `SameSite=Lax`: the provider sends the
//! browser back with a cross-site navigation, which a `Strict` cookie would not follow.
//! Every failure sends the browser back to the sign-in page with a code it explains; no
//! failure makes a session.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use tessera_core::sealed::SealKey;
use tessera_sso::{Flow, Provider, rules};
use tessera_store::{Actor, IdpPerson, IdpSignIn};
use utoipa::{IntoParams, ToSchema};

use crate::ApiState;
use crate::auth::client_ip;
use crate::error::ApiError;

/// Name of the cookie holding a sign-in in progress.
const FLOW_COOKIE: &str = "tessera_sso";
/// How long a sign-in may take at the provider.
const FLOW_SECS: i64 = 600;
/// Binds the sealed cookie to its purpose.
const FLOW_CONTEXT: &[u8] = b"tessera-sso-flow";

/// The single sign-on of this server: the provider and the key that seals sign-ins in
/// progress.
#[derive(Debug)]
pub struct Sso {
    provider: Provider,
    seal: SealKey,
}

impl Sso {
    /// Sign-in through `provider`, sealing flows with `seal` (the server's secret key).
    pub fn new(provider: Provider, seal: SealKey) -> Self {
        Self { provider, seal }
    }
}

/// What the flow cookie carries.
#[derive(Serialize, Deserialize)]
struct FlowCookie {
    s: String,
    n: String,
    v: String,
    /// Where the UI returns to.
    r: String,
    /// Expiry, seconds since the epoch.
    e: i64,
}

/// Query of `GET /api/v2/auth/oidc/login`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct SsoLoginQuery {
    /// A UI route (`#/...`) to open after signing in, e.g. an OAuth consent page.
    pub return_to: Option<String>,
}

/// Query of the provider's redirect back.
#[derive(Debug, Deserialize, IntoParams)]
pub struct SsoCallbackQuery {
    /// The authorization code.
    pub code: Option<String>,
    /// The `state` sent with the sign-in.
    pub state: Option<String>,
    /// The provider's error (e.g. `access_denied`).
    pub error: Option<String>,
}

/// Ways of signing in.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthMethods {
    /// Email and password (`POST /api/v2/auth/login`).
    pub password: bool,
    /// Single sign-on through the organisation's identity provider (`GET /api/v2/auth/oidc/login`).
    pub sso: bool,
}

/// Which ways of signing in this server offers (the sign-in page asks before it shows).
#[utoipa::path(
    get, path = "/api/v2/auth/methods", tag = "auth",
    responses((status = 200, description = "The sign-in methods on offer", body = AuthMethods)),
    security(())
)]
pub async fn methods(state: web::Data<ApiState>) -> web::Json<AuthMethods> {
    web::Json(AuthMethods { password: state.config.password_login, sso: state.sso.is_some() })
}

/// Starts a sign-in at the identity provider (authorization code with PKCE S256, `state`
/// and `nonce`).
#[utoipa::path(
    get, path = "/api/v2/auth/oidc/login", tag = "auth",
    params(SsoLoginQuery),
    responses(
        (status = 303, description = "To the identity provider, or back to the sign-in page with `?sso_error=provider_unreachable`",
            headers(("Location" = String, description = "Where to go"))),
        (status = 404, description = "Single sign-on is not configured", body = crate::error::ErrorBody),
    ),
    security(())
)]
pub async fn login(state: web::Data<ApiState>, query: web::Query<SsoLoginQuery>) -> Result<HttpResponse, ApiError> {
    let Some(sso) = &state.sso else { return Err(ApiError::NotFound("single sign-on")) };
    let secure = state.config.secure_cookies;
    let flow = Flow::generate();
    let url = match sso.provider.authorization_url(&flow).await {
        Ok(url) => url,
        Err(e) => {
            tracing::warn!(error = %e, "single sign-on could not start");
            return Ok(back_to_sign_in(e.code(), secure));
        }
    };
    let cookie = FlowCookie {
        s: flow.state,
        n: flow.nonce,
        v: flow.verifier,
        r: rules::return_to(query.return_to.as_deref()),
        e: Utc::now().timestamp().saturating_add(FLOW_SECS),
    };
    let value = crate::sealed_cookie::seal(&sso.seal, FLOW_CONTEXT, &cookie).ok_or(ApiError::Internal)?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, url.as_str()))
        .insert_header((header::SET_COOKIE, flow_cookie(&value, FLOW_SECS, secure)))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// The identity provider's redirect back: checks the answer, signs the person in (creating
/// the account on first sign-in, refreshing groups and admin status) and opens the UI.
#[utoipa::path(
    get, path = "/api/v2/auth/oidc/callback", tag = "auth",
    params(SsoCallbackQuery),
    responses(
        (status = 303, description = "Signed in (session cookie set) and on to the UI; or back to the sign-in page with `?sso_error=CODE`",
            headers(("Location" = String, description = "Where to go"))),
        (status = 404, description = "Single sign-on is not configured", body = crate::error::ErrorBody),
    ),
    security(())
)]
pub async fn callback(
    req: HttpRequest,
    state: web::Data<ApiState>,
    query: web::Query<SsoCallbackQuery>,
) -> Result<HttpResponse, ApiError> {
    let Some(sso) = &state.sso else { return Err(ApiError::NotFound("single sign-on")) };
    let secure = state.config.secure_cookies;
    let now = Utc::now();
    let Some(flow) = open_flow(&req, &sso.seal, now.timestamp()) else {
        return Ok(back_to_sign_in("expired", secure));
    };
    if query.state.as_deref() != Some(flow.s.as_str()) {
        return Ok(back_to_sign_in("invalid_response", secure));
    }
    if query.error.is_some() {
        return Ok(back_to_sign_in("denied", secure));
    }
    let Some(code) = query.code.as_deref() else { return Ok(back_to_sign_in("invalid_response", secure)) };
    let pending = Flow { state: flow.s, nonce: flow.n, verifier: flow.v };
    let identity = match sso.provider.sign_in(code, &pending, now.timestamp()).await {
        Ok(identity) => identity,
        Err(e) => {
            tracing::warn!(error = %e, "single sign-on refused");
            return Ok(back_to_sign_in(e.code(), secure));
        }
    };
    let config = sso.provider.config();
    let person = IdpPerson {
        issuer: config.issuer.as_str().trim_end_matches('/'),
        subject: &identity.subject,
        email: &identity.email,
        groups: &identity.groups,
        admin: (!config.admin_groups.is_empty()).then(|| rules::is_admin(&identity.groups, &config.admin_groups)),
    };
    let ip = client_ip(&req);
    let actor = Actor { user_id: None, token_id: None, ip: ip.clone() };
    let signed_in = match state.store.sign_in_from_idp(&person, &actor).await {
        // Another account already holds this email (or it is a SCIM userName of another).
        Err(tessera_store::StoreError::Conflict(_)) => return Ok(back_to_sign_in("account_conflict", secure)),
        other => other?,
    };
    let user = match signed_in {
        IdpSignIn::Account { user, narrower, .. } => {
            if narrower {
                state.tokens.narrow_to_allowance(user.id, now).await?;
            }
            user
        }
        IdpSignIn::Disabled => return Ok(back_to_sign_in("account_disabled", secure)),
        IdpSignIn::Conflict => return Ok(back_to_sign_in("account_conflict", secure)),
    };
    let (session_cookie, _) = crate::auth_routes::open_session(&state, user, ip, now, "oidc").await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/{}", flow.r)))
        .append_header((header::SET_COOKIE, session_cookie))
        .append_header((header::SET_COOKIE, flow_cookie("", 0, secure)))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// The sign-in in progress, if the request carries a cookie this server sealed that has not
/// expired.
fn open_flow(req: &HttpRequest, seal: &SealKey, now_secs: i64) -> Option<FlowCookie> {
    let flow: FlowCookie = crate::sealed_cookie::open(req, FLOW_COOKIE, seal, FLOW_CONTEXT)?;
    (flow.e > now_secs).then_some(flow)
}

fn flow_cookie(value: &str, max_age: i64, secure: bool) -> String {
    crate::sealed_cookie::header(FLOW_COOKIE, value, "/api/v2/auth/oidc", max_age, secure)
}

/// Back to the sign-in page, which explains `code`; the flow cookie is cleared.
fn back_to_sign_in(code: &str, secure: bool) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/?sso_error={code}#/tokens")))
        .insert_header((header::SET_COOKIE, flow_cookie("", 0, secure)))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}
