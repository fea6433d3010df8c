//! `/api/v2/tokens`: issue, list, get, patch, revoke, rotate, validate. Handlers parse,
//! call the store, and map; the rules live in `tessera-core` and the store.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde::de::DeserializeOwned;
use tessera_auth::{Outcome, bearer_token};
use tessera_core::mint::expiry_from_days;
use tessera_core::scope::{CATALOG, ScopeError, ScopeSet};
use tessera_store::{IssueRequest, TokenFilter, TokenPatch, TokenRecord, TokenStatus};
use uuid::Uuid;

use crate::ApiState;
use crate::auth::{Access, Caller, authenticate};
use crate::cursor;
use crate::error::{ApiError, ErrorBody, invalid_json};
use crate::models::{
    AuditPageView, AuditQuery, CreateTokenRequest, IssuedTokenView, ListQuery, PatchTokenRequest, RevokeRequest,
    RotateRequest, StatusFilter, TokenPageView, TokenView, ValidationView,
};

/// Default lifetime of a new token, in days.
const DEFAULT_DAYS: i64 = 30;
/// Default and largest page sizes.
const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 100;
/// Default and largest number of audit entries.
const DEFAULT_AUDIT_LIMIT: i64 = 50;
const MAX_AUDIT_LIMIT: i64 = 200;
/// Longest rotation grace, in seconds (one day).
const MAX_GRACE_SECS: i64 = 86_400;
/// Largest optional body accepted by revoke and rotate.
const SMALL_BODY_LIMIT: usize = 16 * 1024;

/// Issue a token; its secret is in the answer and nowhere else, ever.
#[utoipa::path(
    post, path = "/api/v2/tokens", tag = "tokens",
    request_body = CreateTokenRequest,
    responses(
        (status = 201, description = "Issued; `Location` names the new token", body = IssuedTokenView,
            headers(("Location" = String, description = "URL of the new token"))),
        (status = 400, description = "Invalid name, scopes, expiry or rate limit; `mcp:admin` requested", body = ErrorBody),
        (status = 401, description = "Not signed in / bad bearer token", body = ErrorBody),
        (status = 429, description = "The bearer token's rate limit is used up; see `Retry-After` and `RateLimit-*`", body = ErrorBody),
        (status = 403, description = "CSRF failure, missing `write:tokens`, or scopes beyond the credential's own", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 503, description = "The database is unreachable; retry after `Retry-After`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("session" = []), ("bearer" = ["write:tokens"]))
)]
pub async fn create(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: web::Json<CreateTokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let caller = authenticate(&req, &state, Access::Write, now).await?;
    let body = body.into_inner();
    let name = check_name(&body.name)?;
    let description = check_description(body.description)?;
    let scopes = parse_grant(&body.scopes)?;
    check_within_credential(&caller, &scopes)?;
    let expires_at = expiry_from_days(now, body.expires_in_days.unwrap_or(DEFAULT_DAYS))
        .map_err(|e| ApiError::bad_request("invalid_expiry", e.to_string()))?;
    let rate_limit_per_hour = check_rate_limit(body.rate_limit_per_hour)?;
    let request = IssueRequest {
        user_id: caller.user.id,
        name,
        description,
        scopes,
        expires_at,
        rate_limit_per_hour,
        issuer: state.config.issuer.clone(),
        audience: state.config.audience.clone(),
    };
    let issued = state.store.issue_token(&state.validator.key_ring(), &request, now, &caller.actor()).await?;
    Ok(created(IssuedTokenView::new(issued.record, issued.secret, now)))
}

/// List tokens, newest first, one page at a time.
#[utoipa::path(
    get, path = "/api/v2/tokens", tag = "tokens",
    params(ListQuery),
    responses(
        (status = 200, description = "One page", body = TokenPageView),
        (status = 400, description = "Bad limit, cursor or status", body = ErrorBody),
        (status = 401, description = "Not signed in / bad bearer token", body = ErrorBody),
        (status = 429, description = "The bearer token's rate limit is used up; see `Retry-After` and `RateLimit-*`", body = ErrorBody),
        (status = 403, description = "Missing `read:tokens`", body = ErrorBody),
        (status = 503, description = "The database is unreachable; retry after `Retry-After`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("session" = []), ("bearer" = ["read:tokens"]))
)]
pub async fn list(
    req: HttpRequest,
    state: web::Data<ApiState>,
    query: web::Query<ListQuery>,
) -> Result<web::Json<TokenPageView>, ApiError> {
    let now = Utc::now();
    let caller = authenticate(&req, &state, Access::Read, now).await?;
    let query = query.into_inner();
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request("invalid_limit", format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    let after = query.cursor.as_deref().map(cursor::decode).transpose()?;
    let status = match query.status.unwrap_or_default() {
        StatusFilter::All => None,
        StatusFilter::Active => Some(TokenStatus::Active),
        StatusFilter::Revoked => Some(TokenStatus::Revoked),
        StatusFilter::Expired => Some(TokenStatus::Expired),
    };
    let filter = TokenFilter {
        // Admins see every token; everyone else only their own.
        user_id: (!caller.user.is_admin).then_some(caller.user.id),
        status,
        q: query.q.filter(|q| !q.is_empty()),
        limit,
        after,
        now,
    };
    let page = state.store.list_tokens(&filter).await?;
    Ok(web::Json(TokenPageView {
        items: page.items.into_iter().map(|r| TokenView::new(r, now)).collect(),
        next_cursor: page.next_after.map(cursor::encode),
    }))
}

/// One token's metadata.
#[utoipa::path(
    get, path = "/api/v2/tokens/{id}", tag = "tokens",
    params(("id" = Uuid, Path, description = "Token id")),
    responses(
        (status = 200, description = "The token", body = TokenView),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 401, description = "Not signed in / bad bearer token", body = ErrorBody),
        (status = 429, description = "The bearer token's rate limit is used up; see `Retry-After` and `RateLimit-*`", body = ErrorBody),
        (status = 403, description = "Missing `read:tokens`", body = ErrorBody),
        (status = 404, description = "No such token, or another user's", body = ErrorBody),
        (status = 503, description = "The database is unreachable; retry after `Retry-After`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("session" = []), ("bearer" = ["read:tokens"]))
)]
pub async fn get(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<Uuid>,
) -> Result<web::Json<TokenView>, ApiError> {
    let now = Utc::now();
    let caller = authenticate(&req, &state, Access::Read, now).await?;
    let record = visible_token(&state, &caller, id.into_inner()).await?;
    Ok(web::Json(TokenView::new(record, now)))
}

/// One token's audit entries, oldest first.
#[utoipa::path(
    get, path = "/api/v2/tokens/{id}/audit", tag = "tokens",
    params(("id" = Uuid, Path, description = "Token id"), AuditQuery),
    responses(
        (status = 200, description = "The entries", body = AuditPageView),
        (status = 400, description = "The id is not a UUID, or bad limit", body = ErrorBody),
        (status = 401, description = "Not signed in / bad bearer token", body = ErrorBody),
        (status = 429, description = "The bearer token's rate limit is used up; see `Retry-After` and `RateLimit-*`", body = ErrorBody),
        (status = 403, description = "Missing `read:tokens`", body = ErrorBody),
        (status = 404, description = "No such token, or another user's", body = ErrorBody),
        (status = 503, description = "The database is unreachable; retry after `Retry-After`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("session" = []), ("bearer" = ["read:tokens"]))
)]
pub async fn audit(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<Uuid>,
    query: web::Query<AuditQuery>,
) -> Result<web::Json<AuditPageView>, ApiError> {
    let now = Utc::now();
    let caller = authenticate(&req, &state, Access::Read, now).await?;
    let limit = query.limit.unwrap_or(DEFAULT_AUDIT_LIMIT);
    if !(1..=MAX_AUDIT_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request("invalid_limit", format!("limit must be between 1 and {MAX_AUDIT_LIMIT}")));
    }
    let id = id.into_inner();
    visible_token(&state, &caller, id).await?;
    let events = state.store.audit_for_token(id, limit).await?;
    Ok(web::Json(AuditPageView { items: events.into_iter().map(Into::into).collect() }))
}

/// Rename, describe, change the rate limit, narrow scopes or shorten expiry.
#[utoipa::path(
    patch, path = "/api/v2/tokens/{id}", tag = "tokens",
    params(("id" = Uuid, Path, description = "Token id")),
    request_body = PatchTokenRequest,
    responses(
        (status = 200, description = "The changed token", body = TokenView),
        (status = 400, description = "Invalid field, scope widening, expiry extension", body = ErrorBody),
        (status = 401, description = "Not signed in / bad bearer token", body = ErrorBody),
        (status = 429, description = "The bearer token's rate limit is used up; see `Retry-After` and `RateLimit-*`", body = ErrorBody),
        (status = 403, description = "CSRF failure or missing `write:tokens`", body = ErrorBody),
        (status = 404, description = "No such token, or another user's", body = ErrorBody),
        (status = 409, description = "The token is no longer active", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 503, description = "The database is unreachable; retry after `Retry-After`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("session" = []), ("bearer" = ["write:tokens"]))
)]
pub async fn patch(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<Uuid>,
    body: web::Json<PatchTokenRequest>,
) -> Result<web::Json<TokenView>, ApiError> {
    let now = Utc::now();
    let caller = authenticate(&req, &state, Access::Write, now).await?;
    let id = id.into_inner();
    visible_token(&state, &caller, id).await?;
    let body = body.into_inner();
    let patch = TokenPatch {
        name: body.name.as_deref().map(check_name).transpose()?,
        description: body.description.map(check_description).transpose()?,
        rate_limit_per_hour: body.rate_limit_per_hour.map(check_rate_limit).transpose()?,
        scopes: body.scopes.as_deref().map(parse_grant).transpose()?,
        expires_at: body.expires_at,
    };
    let record = state.store.patch_token(id, &patch, now, &caller.actor()).await?;
    // This process changed the row: forget its cached state now rather than when NOTIFY arrives.
    state.validator.evict(id);
    Ok(web::Json(TokenView::new(record, now)))
}

/// Revoke a token at once (idempotent); answers with the revoked token's metadata.
#[utoipa::path(
    delete, path = "/api/v2/tokens/{id}", tag = "tokens",
    params(("id" = Uuid, Path, description = "Token id")),
    request_body(content = Option<RevokeRequest>, description = "Optional reason"),
    responses(
        (status = 200, description = "Revoked (or already was)", body = TokenView),
        (status = 400, description = "Reason too long or bad body", body = ErrorBody),
        (status = 401, description = "Not signed in / bad bearer token", body = ErrorBody),
        (status = 429, description = "The bearer token's rate limit is used up; see `Retry-After` and `RateLimit-*`", body = ErrorBody),
        (status = 403, description = "CSRF failure or missing `write:tokens`", body = ErrorBody),
        (status = 404, description = "No such token, or another user's", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 503, description = "The database is unreachable; retry after `Retry-After`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("session" = []), ("bearer" = ["write:tokens"]))
)]
pub async fn revoke(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<Uuid>,
    payload: web::Payload,
) -> Result<web::Json<TokenView>, ApiError> {
    let now = Utc::now();
    let caller = authenticate(&req, &state, Access::Write, now).await?;
    let id = id.into_inner();
    let body: RevokeRequest = optional_body(&req, payload).await?;
    let reason = body.reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
    if reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
        return Err(ApiError::bad_request("invalid_reason", "reason must be at most 500 characters"));
    }
    visible_token(&state, &caller, id).await?;
    let record = state.store.revoke_token(id, reason.as_deref(), now, &caller.actor()).await?;
    state.validator.evict(id);
    Ok(web::Json(TokenView::new(record, now)))
}

/// Replace a token by a new one (same name, scopes and limit); the old one keeps working
/// for `grace_seconds`, then fails as `rotated`.
#[utoipa::path(
    post, path = "/api/v2/tokens/{id}/rotate", tag = "tokens",
    params(("id" = Uuid, Path, description = "Token id")),
    request_body(content = Option<RotateRequest>, description = "Optional grace period"),
    responses(
        (status = 201, description = "The replacement, with its secret", body = IssuedTokenView,
            headers(("Location" = String, description = "URL of the new token"))),
        (status = 400, description = "Grace out of range or bad body", body = ErrorBody),
        (status = 401, description = "Not signed in / bad bearer token", body = ErrorBody),
        (status = 429, description = "The bearer token's rate limit is used up; see `Retry-After` and `RateLimit-*`", body = ErrorBody),
        (status = 403, description = "CSRF failure, missing `write:tokens`, or scopes beyond the credential's own", body = ErrorBody),
        (status = 404, description = "No such token, or another user's", body = ErrorBody),
        (status = 409, description = "Not active, or already rotated", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 503, description = "The database is unreachable; retry after `Retry-After`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
    security(("session" = []), ("bearer" = ["write:tokens"]))
)]
pub async fn rotate(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<Uuid>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let caller = authenticate(&req, &state, Access::Write, now).await?;
    let id = id.into_inner();
    let body: RotateRequest = optional_body(&req, payload).await?;
    let grace = body.grace_seconds.unwrap_or(0);
    if !(0..=MAX_GRACE_SECS).contains(&grace) {
        return Err(ApiError::bad_request(
            "invalid_grace",
            format!("grace_seconds must be between 0 and {MAX_GRACE_SECS}"),
        ));
    }
    let old = visible_token(&state, &caller, id).await?;
    check_within_credential(&caller, &ScopeSet::parse_lenient(&old.scopes.join(" ")))?;
    let issued = state
        .store
        .rotate_token(
            &state.validator.key_ring(),
            &state.config.issuer,
            id,
            chrono::Duration::seconds(grace),
            now,
            &caller.actor(),
        )
        .await?;
    state.validator.evict(id);
    Ok(created(IssuedTokenView::new(issued.record, issued.secret, now)))
}

/// Check the token in `Authorization: Bearer` with exactly the MCP server's validation.
#[utoipa::path(
    post, path = "/api/v2/tokens/validate", tag = "tokens",
    responses(
        (status = 200, description = "The token is active", body = ValidationView),
        (status = 401, description = "Not active: `error` is the reason (`expired`, `revoked`, `rotated`, \
            `not_found`, `invalid_signature`, `malformed`, `missing_token`, ...) and `active` is false", body = ErrorBody),
        (status = 429, description = "The token's rate limit is used up (validating counts as a use); \
            `Retry-After` and `RateLimit-*` headers say when to retry", body = ErrorBody),
        (status = 503, description = "Token state unavailable; retry after `Retry-After`", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn validate(req: HttpRequest, state: web::Data<ApiState>) -> Result<web::Json<ValidationView>, ApiError> {
    let token = bearer_token(req.headers().get_all(header::AUTHORIZATION).map(|v| v.as_bytes()))
        .map_err(|e| ApiError::Inactive { code: e.code(), message: e.to_string() })?;
    let now = Utc::now();
    let principal = state.validator.validate(token, now).await.map_err(|e| match e {
        tessera_auth::AuthError::Rejected(r) => ApiError::Inactive { code: r.code(), message: r.message() },
        other => ApiError::from(other),
    })?;
    // Validating a token is using it: same rate limit and usage as any other call.
    let ip = crate::auth::client_ip(&req);
    crate::auth::admit(&req, &state, &principal, now, ip.clone())?;
    crate::auth::record_use(&req, &state, &principal, Outcome::Ok, now, ip);
    Ok(web::Json(ValidationView {
        active: true,
        id: principal.token_id,
        sub: principal.user_id,
        name: principal.name,
        scopes: principal.effective.to_vec(),
        expires_at: principal.expires_at,
        rate_limit_per_hour: principal.rate_limit_per_hour,
    }))
}

/// The token if the caller may see it; another user's token is "not found", never "forbidden",
/// so ids cannot be probed.
pub async fn visible_token(state: &ApiState, caller: &Caller, id: Uuid) -> Result<TokenRecord, ApiError> {
    match state.store.get_token(id).await? {
        Some(record) if caller.can_see(record.user_id) => Ok(record),
        _ => Err(ApiError::NotFound("token")),
    }
}

fn created(view: IssuedTokenView) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v2/tokens/{}", view.metadata.id)))
        // The body holds a secret: no cache may keep it.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(view)
}

fn check_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    let len = name.chars().count();
    if !(1..=100).contains(&len) {
        return Err(ApiError::bad_request("invalid_name", "name must be 1 to 100 characters"));
    }
    Ok(name.to_owned())
}

fn check_description(description: Option<String>) -> Result<Option<String>, ApiError> {
    match description {
        Some(d) if d.chars().count() > 1000 => {
            Err(ApiError::bad_request("invalid_description", "description must be at most 1000 characters"))
        }
        other => Ok(other),
    }
}

fn check_rate_limit(limit: Option<i32>) -> Result<Option<i32>, ApiError> {
    match limit {
        Some(l) if !(1..=1_000_000).contains(&l) => Err(ApiError::bad_request(
            "invalid_rate_limit",
            format!("rate_limit_per_hour must be between 1 and 1000000 (or null for unlimited), got {l}"),
        )),
        other => Ok(other),
    }
}

/// Parses requested scopes: catalog only; `mcp:admin` is refused with a pointer to the CLI.
fn parse_grant(scopes: &[String]) -> Result<ScopeSet, ApiError> {
    let valid: Vec<&str> = CATALOG.to_vec();
    let set = ScopeSet::from_grant(scopes).map_err(|e| match e {
        ScopeError::Empty => ApiError::BadRequest {
            code: "invalid_scopes",
            message: format!("at least one scope is required; valid scopes are: {}", valid.join(", ")),
            details: Some(Box::new(serde_json::json!({ "valid_scopes": valid }))),
        },
        ScopeError::Unknown { unknown, .. } => ApiError::BadRequest {
            code: "unknown_scope",
            message: format!("unknown scope(s) {}; valid scopes are: {}", unknown.join(", "), valid.join(", ")),
            details: Some(Box::new(serde_json::json!({ "unknown": unknown, "valid_scopes": valid }))),
        },
    })?;
    if set.has_admin() {
        return Err(ApiError::bad_request(
            "admin_scope_forbidden",
            "mcp:admin cannot be granted through the API; it is granted by the CLI only (`tessera user promote`)",
        ));
    }
    Ok(set)
}

/// A token used as API credential can only mint or rotate within its own effective scopes.
fn check_within_credential(caller: &Caller, scopes: &ScopeSet) -> Result<(), ApiError> {
    let Some(own) = caller.credential_scopes() else { return Ok(()) };
    let missing = scopes.missing_from(own);
    if missing.is_empty() {
        return Ok(());
    }
    Err(ApiError::Forbidden {
        code: "scope_exceeds_credential",
        message: format!("this token cannot grant scopes it does not hold: {}", missing.join(" ")),
        details: Some(Box::new(serde_json::json!({ "missing": missing }))),
        missing_scope: None,
    })
}

/// A JSON body that may be absent (revoke, rotate): empty means the defaults.
async fn optional_body<T: DeserializeOwned + Default>(req: &HttpRequest, payload: web::Payload) -> Result<T, ApiError> {
    let bytes = match payload.to_bytes_limited(SMALL_BODY_LIMIT).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => return Err(ApiError::bad_request("invalid_body", "the request body could not be read")),
        Err(_) => return Err(ApiError::PayloadTooLarge(format!("the body must be at most {SMALL_BODY_LIMIT} bytes"))),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/json"));
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    serde_json::from_slice(&bytes).map_err(|e| invalid_json(&e))
}
