//! `/api/v2/auth`: sign in (sets the session cookie), sign out, who am I.

use std::time::Instant;
use tessera_core::ErrorCode;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use tessera_core::password::{Password, dummy_verify, verify_password};
use tessera_store::{Actor, AuditAction, User};

use crate::ApiState;
use crate::auth::{Access, SessionId, Via, authenticate, clear_cookie, client_ip};
use crate::body::JsonObject;
use crate::error::{ApiError, ErrorBody};
use crate::models::{LoginRequest, LoginView, MeView, UserView};

/// Sign in with email and password; sets an HttpOnly, SameSite=Strict session cookie.
#[utoipa::path(
    post, path = "/api/v2/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = LoginView,
            headers(("Set-Cookie" = String, description = "`tessera_session`: HttpOnly; SameSite=Strict; Path=/"))),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Wrong email or password", body = ErrorBody),
        (status = 403, description = "Password sign-in is turned off (`password_login_disabled`): sign in with SSO", body = ErrorBody),
        (status = 429, description = "Too many failed logins from this address or for this account", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
    ),
    security(())
)]
pub async fn login(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: JsonObject<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    if !state.config.password_login {
        return Err(ApiError::Forbidden {
            code: ErrorCode::PasswordLoginDisabled,
            message: "password sign-in is turned off on this server; sign in with SSO".to_owned(),
            details: None,
            missing_scope: None,
        });
    }
    let now = Utc::now();
    let LoginRequest { email, password } = body.into_inner();
    // Before anything else (throttle keys, lookups, audit rows): a bounded, storable email.
    check_email(&email)?;
    let password = Password::new(password);
    let ip = client_ip(&req);
    let ip_key = ip.clone().unwrap_or_default();
    let account = email.trim().to_lowercase();
    let actor = Actor { user_id: None, token_id: None, ip: ip.clone() };
    // The slot is taken before the password is checked, so a burst of concurrent attempts
    // gets no more checks than the limit allows.
    let attempt = match state.throttle.reserve(&ip_key, &account, Instant::now()) {
        Ok(attempt) => attempt,
        Err(throttled) => {
            // One audit row when a key starts being throttled, not one per refused request.
            if throttled.first {
                state
                    .store
                    .audit(
                        &actor,
                        AuditAction::LoginFailed,
                        None,
                        serde_json::json!({"email": account, "reason": "throttled"}),
                    )
                    .await?;
            }
            return Err(ApiError::TooManyRequests {
                message: "too many failed sign-in attempts; wait before trying again".to_owned(),
                retry_after: throttled.retry_after,
                limit: None,
            });
        }
    };
    match sign_in(&state, actor, &account, password).await {
        Ok(Some(user)) => {
            state.throttle.succeeded(attempt);
            start_session(&state, user, ip, now).await
        }
        Ok(None) => {
            // The reservation stays: it is this failure's count.
            drop(attempt);
            Err(ApiError::Unauthenticated {
                code: ErrorCode::InvalidCredentials,
                message: "wrong email or password".to_owned(),
                invalid_token: false,
            })
        }
        Err(e) => {
            // Undecided (database out of reach, server saturated): not a failed guess.
            state.throttle.release(attempt);
            Err(e)
        }
    }
}

/// Checks the password of `account`: `Some(user)` when it is right and the account enabled,
/// `None` (audited) when not.
async fn sign_in(
    state: &ApiState,
    mut actor: Actor,
    account: &str,
    password: Password,
) -> Result<Option<User>, ApiError> {
    let found = state.store.credentials(account).await?;
    actor.user_id = found.as_ref().map(|(u, _)| u.id);
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), hash),
        None => (None, None),
    };
    // argon2id costs tens of milliseconds of CPU and ~19 MiB: bounded process-wide, and kept
    // off the async workers. The permit moves into the blocking task so it is held until the
    // computation ends, even if the client disconnects meanwhile.
    let Some(permit) = state.throttle.password_permit().await else {
        return Err(ApiError::Busy { retry_after: 1 });
    };
    let verified = web::block(move || {
        let verified = match hash {
            Some(phc) => verify_password(&password, &phc),
            None => {
                // Unknown accounts take as long as known ones, so they cannot be told apart.
                dummy_verify(&password);
                false
            }
        };
        drop(permit);
        verified
    })
    .await
    .map_err(|_| ApiError::Internal)?;
    match user {
        Some(user) if verified && user.disabled_at.is_none() => Ok(Some(user)),
        _ => {
            state
                .store
                .audit(
                    &actor,
                    AuditAction::LoginFailed,
                    None,
                    serde_json::json!({"email": account, "reason": "bad_credentials"}),
                )
                .await?;
            Ok(None)
        }
    }
}

/// Creates the session of a signed-in user and answers with its cookie.
async fn start_session(
    state: &ApiState,
    user: User,
    ip: Option<String>,
    now: chrono::DateTime<Utc>,
) -> Result<HttpResponse, ApiError> {
    let (cookie, view) = open_session(state, user, ip, now, "password").await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::SET_COOKIE, cookie))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(view))
}

/// Creates and audits the session of a user signed in by `method`: its `Set-Cookie` value
/// and what the sign-in answers.
pub(crate) async fn open_session(
    state: &ApiState,
    user: User,
    ip: Option<String>,
    now: chrono::DateTime<Utc>,
    method: &str,
) -> Result<(String, LoginView), ApiError> {
    let actor = Actor { user_id: Some(user.id), token_id: None, ip: ip.clone() };
    let session = SessionId::generate();
    let expires_at = now + state.config.session_ttl;
    state.store.create_session(&session.sha256(), user.id, now, expires_at, ip.as_deref()).await?;
    let details = serde_json::json!({"expires_at": expires_at, "method": method});
    state.store.audit(&actor, AuditAction::Login, None, details).await?;
    let cookie = session.set_cookie(state.config.session_ttl.num_seconds(), state.config.secure_cookies);
    Ok((cookie, LoginView { user: user.into(), csrf_token: session.csrf_token(), expires_at }))
}

/// Longest email accepted at sign-in (RFC 5321's 64-octet local part, `@`, 255-octet
/// domain). Anything longer names no account and is refused before it costs anything.
pub const MAX_EMAIL_CHARS: usize = 320;

/// Refuses an email no account can have: too long, or holding U+0000 (PostgreSQL's `text`
/// and `jsonb` cannot store it, so it used to fail on the database as a 500).
fn check_email(email: &str) -> Result<(), ApiError> {
    let problem = if email.len() > MAX_EMAIL_CHARS * 4 || email.chars().count() > MAX_EMAIL_CHARS {
        format!("`email` must be at most {MAX_EMAIL_CHARS} characters")
    } else if email.contains('\0') {
        "`email` must not contain NUL characters".to_owned()
    } else {
        return Ok(());
    };
    Err(ApiError::BadRequest {
        code: ErrorCode::InvalidEmail,
        message: problem,
        details: Some(Box::new(serde_json::json!({ "field": "email" }))),
    })
}

/// End the current session and clear its cookie.
#[utoipa::path(
    post, path = "/api/v2/auth/logout", tag = "auth",
    responses(
        (status = 204, description = "Signed out; the cookie is cleared"),
        (status = 400, description = "Called with a bearer token, not a session (`not_a_session`): revoke a token instead", body = ErrorBody),
        (status = 401, description = "No session", body = ErrorBody),
        (status = 403, description = "CSRF failure", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn logout(req: HttpRequest, state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&req, &state, Access::Write, Utc::now()).await?;
    let Via::Session(session) = &caller.via else {
        return Err(ApiError::bad_request(
            ErrorCode::NotASession,
            "logout ends a browser session; revoke a token instead",
        ));
    };
    state.store.delete_session(&session.sha256()).await?;
    state.store.audit(&caller.actor(), AuditAction::Logout, None, serde_json::json!({})).await?;
    Ok(HttpResponse::NoContent()
        .insert_header((header::SET_COOKIE, clear_cookie(state.config.secure_cookies)))
        .finish())
}

/// The calling account, and the session's CSRF token.
#[utoipa::path(
    get, path = "/api/v2/auth/me", tag = "auth",
    responses(
        (status = 200, description = "The caller", body = MeView),
        (status = 403, description = "Bearer token without `read:tokens`", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["read:tokens"]))
)]
pub async fn me(req: HttpRequest, state: web::Data<ApiState>) -> Result<web::Json<MeView>, ApiError> {
    let caller = authenticate(&req, &state, Access::Read, Utc::now()).await?;
    let view = match &caller.via {
        Via::Session(session) => MeView {
            user: UserView::from(caller.user.clone()),
            auth: "session".to_owned(),
            csrf_token: Some(session.csrf_token()),
            token_id: None,
            scopes: None,
        },
        Via::Token(principal) => MeView {
            user: UserView::from(caller.user.clone()),
            auth: "token".to_owned(),
            csrf_token: None,
            token_id: Some(principal.token_id),
            scopes: Some(principal.effective.to_vec()),
        },
    };
    Ok(web::Json(view))
}
