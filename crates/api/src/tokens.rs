//! `/api/v2/tokens`: issue, list, get, patch, revoke, rotate, validate. Handlers parse the
//! request into value types, call the lifecycle service (`tessera-tokens`), and map; the
//! rules live in `tessera_core::lifecycle`, their HTTP mapping in [`crate::error`].

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use tessera_auth::{Denial, Verdict};
use tessera_core::ErrorCode;
use tessera_core::catalog::Catalog;
use tessera_core::scope::{ScopeError, ScopeSet};
use tessera_core::values::{Description, Grace, Lifetime, RateLimit, RevokeReason, TokenName};
use tessera_store::{TokenFilter, TokenRecord, TokenStatus};
use tessera_tokens::{IssueInput, PatchInput, RevokeCause};
use uuid::Uuid;

use crate::ApiState;
use crate::auth::{Access, Caller, authenticate};
use crate::body::{JsonObject, optional_body};
use crate::cursor;
use crate::error::{ApiError, ErrorBody};
use crate::models::{
    AuditPageView, AuditQuery, CreateTokenRequest, IssuedTokenView, LimitsView, ListQuery, PatchTokenRequest,
    RevokeRequest, RotateRequest, ServerToolsView, StatusFilter, TokenPageView, TokenView, ValidationView,
};

/// Default and largest page sizes.
const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 100;
/// Default and largest number of audit entries.
const DEFAULT_AUDIT_LIMIT: i64 = 50;
const MAX_AUDIT_LIMIT: i64 = 200;

/// Issue a token; its secret is in the answer and nowhere else, ever.
///
/// A token minted by a bearer token is bounded by it: it expires no later than its maker and
/// its rate limit is no looser (an unlimited request under a limited maker gets the maker's
/// limit); `expires_at` and `rate_limit_per_hour` in the answer say what was granted, and
/// `minted_by` names the maker. Revoking the maker revokes it too.
#[utoipa::path(
    post, path = "/api/v2/tokens", tag = "tokens",
    request_body = CreateTokenRequest,
    responses(
        (status = 201, description = "Issued; `Location` names the new token", body = IssuedTokenView,
            headers(("Location" = String, description = "URL of the new token"))),
        (status = 400, description = "Invalid name, scopes, expiry or rate limit; `mcp:admin` requested", body = ErrorBody),
        (status = 403, description = "CSRF failure, missing `write:tokens`, or scopes beyond the credential's own \
            (`scope_exceeds_credential`)", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["write:tokens"]))
)]
pub async fn create(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: JsonObject<CreateTokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let caller = authenticate(&req, &state, Access::Write, now).await?;
    let body = body.into_inner();
    let input = IssueInput {
        owner: caller.user.id,
        name: TokenName::parse(&body.name)?,
        description: body.description.as_deref().map(Description::parse).transpose()?,
        scopes: parse_grant(&state.servers.catalog().await?, &body.scopes)?,
        lifetime: body.expires_in_days.map_or(Ok(Lifetime::default_days()), Lifetime::from_days)?,
        rate_limit: body.rate_limit_per_hour.map(|l| RateLimit::new(l.into())).transpose()?,
    };
    let issued = state.tokens.issue(&caller.requester(), caller.ip.clone(), input, now).await?;
    Ok(created(IssuedTokenView::new(issued.record, issued.secret, now)))
}

/// List tokens, newest first, one page at a time.
#[utoipa::path(
    get, path = "/api/v2/tokens", tag = "tokens",
    params(ListQuery),
    responses(
        (status = 200, description = "One page", body = TokenPageView),
        (status = 400, description = "Bad limit, cursor or status", body = ErrorBody),
        (status = 403, description = "Missing `read:tokens`", body = ErrorBody),
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
        return Err(ApiError::bad_request(ErrorCode::InvalidLimit, format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    // An empty cursor is the first page, as if none was sent.
    let after = query.cursor.as_deref().filter(|c| !c.is_empty()).map(cursor::decode).transpose()?;
    let status = match query.status.unwrap_or_default() {
        StatusFilter::All => None,
        StatusFilter::Active => Some(TokenStatus::Active),
        StatusFilter::Revoked => Some(TokenStatus::Revoked),
        StatusFilter::Expired => Some(TokenStatus::Expired),
    };
    let filter = TokenFilter {
        // Narrowed to the caller's own tokens unless it sees everyone's (the service decides).
        user_id: None,
        status,
        q: match query.q.filter(|q| !q.is_empty()) {
            // PostgreSQL cannot hold a NUL character: refuse it here rather than answer 500.
            Some(q) if q.contains('\0') => {
                return Err(ApiError::bad_request(ErrorCode::InvalidQuery, "q must not contain NUL characters"));
            }
            other => other,
        },
        limit,
        after,
        now,
    };
    let page = state.tokens.list(&caller.requester(), filter).await?;
    let mut items: Vec<TokenView> = page.items.into_iter().map(|r| TokenView::new(r, now)).collect();
    with_unflushed_use(&state, &mut items);
    Ok(web::Json(TokenPageView { items, next_cursor: page.next_after.map(cursor::encode) }))
}

/// One token's metadata.
#[utoipa::path(
    get, path = "/api/v2/tokens/{id}", tag = "tokens",
    params(("id" = Uuid, Path, description = "Token id")),
    responses(
        (status = 200, description = "The token", body = TokenView),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 403, description = "Missing `read:tokens`", body = ErrorBody),
        (status = 404, description = "No such token, or another user's", body = ErrorBody),
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
    let mut view = TokenView::new(record, now);
    with_unflushed_use(&state, std::slice::from_mut(&mut view));
    Ok(web::Json(view))
}

/// Usage is written once a second; a use this instance counted and has not written yet is
/// shown at once, so a token used a moment ago never reads "never used". (Another instance's
/// unwritten uses appear after its next flush, at most `TESSERA_USAGE_FLUSH_INTERVAL_MS` later.)
pub(crate) fn with_unflushed_use(state: &ApiState, views: &mut [TokenView]) {
    let ids: Vec<Uuid> = views.iter().map(|v| v.id).collect();
    let mut unflushed = state.metering.usage.unflushed_last_uses(&ids);
    for view in views {
        let stored = (view.last_used_at, view.last_used_from.take());
        (view.last_used_at, view.last_used_from) = latest_use(stored, unflushed.remove(&view.id));
    }
}

/// The later of the stored last use and one not yet written (its address, else the stored one).
pub(crate) fn latest_use(
    stored: (Option<DateTime<Utc>>, Option<String>),
    unflushed: Option<(DateTime<Utc>, Option<String>)>,
) -> (Option<DateTime<Utc>>, Option<String>) {
    match unflushed {
        Some((at, from)) if stored.0.is_none_or(|s| at > s) => (Some(at), from.or(stored.1)),
        _ => stored,
    }
}

/// One token's audit entries, oldest first.
#[utoipa::path(
    get, path = "/api/v2/tokens/{id}/audit", tag = "tokens",
    params(("id" = Uuid, Path, description = "Token id"), AuditQuery),
    responses(
        (status = 200, description = "The entries", body = AuditPageView),
        (status = 400, description = "The id is not a UUID, or bad limit", body = ErrorBody),
        (status = 403, description = "Missing `read:tokens`", body = ErrorBody),
        (status = 404, description = "No such token, or another user's", body = ErrorBody),
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
        return Err(ApiError::bad_request(
            ErrorCode::InvalidLimit,
            format!("limit must be between 1 and {MAX_AUDIT_LIMIT}"),
        ));
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
        (status = 403, description = "CSRF failure, missing `write:tokens`, or a bearer token setting a rate \
            limit looser than its own (`rate_limit_exceeds_credential`)", body = ErrorBody),
        (status = 404, description = "No such token, or another user's", body = ErrorBody),
        (status = 409, description = "The token is no longer active", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["write:tokens"]))
)]
pub async fn patch(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<Uuid>,
    body: JsonObject<PatchTokenRequest>,
) -> Result<web::Json<TokenView>, ApiError> {
    let now = Utc::now();
    let caller = authenticate(&req, &state, Access::Write, now).await?;
    let body = body.into_inner();
    let input = PatchInput {
        name: body.name.as_deref().map(TokenName::parse).transpose()?,
        description: body.description.map(|d| d.as_deref().map(Description::parse).transpose()).transpose()?,
        rate_limit: body.rate_limit_per_hour.map(|l| l.map(|l| RateLimit::new(l.into())).transpose()).transpose()?,
        scopes: match body.scopes.as_deref() {
            Some(scopes) => Some(parse_grant(&state.servers.catalog().await?, scopes)?),
            None => None,
        },
        expires_at: body.expires_at,
    };
    let record = state.tokens.patch(&caller.requester(), caller.ip.clone(), id.into_inner(), input, now).await?;
    Ok(web::Json(TokenView::new(record, now)))
}

/// Revoke a token at once (idempotent); answers with the revoked token's metadata. Every
/// token this token minted through the API (and what those minted) is revoked with it; the
/// audit entry lists them under `also_revoked`.
#[utoipa::path(
    delete, path = "/api/v2/tokens/{id}", tag = "tokens",
    params(("id" = Uuid, Path, description = "Token id")),
    request_body(content = Option<RevokeRequest>, description = "Optional reason"),
    responses(
        (status = 200, description = "Revoked (or already was)", body = TokenView),
        (status = 400, description = "Reason too long or bad body", body = ErrorBody),
        (status = 403, description = "CSRF failure or missing `write:tokens`", body = ErrorBody),
        (status = 404, description = "No such token, or another user's", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
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
    let reason = body.reason.as_deref().map(RevokeReason::parse).transpose()?.flatten();
    let cause = RevokeCause::Requested(reason);
    let revoked = state.tokens.revoke(&caller.requester(), caller.ip.clone(), id, cause, now).await?;
    Ok(web::Json(TokenView::new(revoked.record, now)))
}

/// Replace your own token by a new one (same name, scopes and limit); the old one keeps
/// working for `grace_seconds`, then fails as `rotated`. Rotated by a bearer token, the
/// replacement expires no later than that token.
#[utoipa::path(
    post, path = "/api/v2/tokens/{id}/rotate", tag = "tokens",
    params(("id" = Uuid, Path, description = "Token id")),
    request_body(content = Option<RotateRequest>, description = "Optional grace period"),
    responses(
        (status = 201, description = "The replacement, with its secret", body = IssuedTokenView,
            headers(("Location" = String, description = "URL of the new token"))),
        (status = 400, description = "Grace out of range or bad body", body = ErrorBody),
        (status = 403, description = "CSRF failure, missing `write:tokens`, scopes beyond the credential's own, or \
            another user's token (`not_owner`: nobody, admins included, receives a working secret for another \
            user's identity; revoke it instead, or its owner rotates it)", body = ErrorBody),
        (status = 404, description = "No such token, or another user's", body = ErrorBody),
        (status = 409, description = "Not active, or already rotated", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
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
    let grace = Grace::from_secs(body.grace_seconds.unwrap_or(0))?;
    let issued = state.tokens.rotate(&caller.requester(), caller.ip.clone(), id, grace, now).await?;
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
    // Validating a token is using it: the same guard, rate limit and usage as any other call;
    // no scope is needed to ask about the token itself.
    let ip = crate::auth::client_ip(&req);
    let principal = crate::auth::guarded(&req, &state, Utc::now(), ip, |_| Verdict::Allow, inactive).await?;
    Ok(web::Json(ValidationView {
        active: true,
        id: principal.token_id,
        sub: principal.user_id,
        name: principal.name.clone(),
        scopes: principal.effective.to_vec(),
        expires_at: principal.expires_at,
        rate_limit_per_hour: principal.rate_limit_per_hour,
    }))
}

/// An identification failure answered as "not active" (with `"active": false`); a 503 stays
/// a 503, since saying "inactive" then would make a good token look revoked.
fn inactive(denial: Denial) -> ApiError {
    match denial {
        Denial::Unavailable => ApiError::Denied(denial),
        _ => ApiError::Inactive(denial),
    }
}

/// The token if the caller may see it; another user's token is "not found", never "forbidden",
/// so ids cannot be probed.
pub async fn visible_token(state: &ApiState, caller: &Caller, id: Uuid) -> Result<TokenRecord, ApiError> {
    Ok(state.tokens.get(&caller.requester(), id).await?)
}

fn created(view: IssuedTokenView) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v2/tokens/{}", view.metadata.id)))
        // The body holds a secret: no cache may keep it.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(view)
}

/// Parses requested scopes: the catalog (built-in and registered servers' scopes) and
/// `mcp:admin` (which the lifecycle rules refuse to the API with a pointer to the CLI).
fn parse_grant(catalog: &Catalog, scopes: &[String]) -> Result<ScopeSet, ApiError> {
    let valid: Vec<String> = catalog.grantable().into_iter().filter(|s| s != tessera_core::scope::ADMIN).collect();
    let set = catalog.grant(scopes).map_err(|e| match e {
        ScopeError::Empty => ApiError::BadRequest {
            code: ErrorCode::InvalidScopes,
            message: format!("at least one scope is required; valid scopes are: {}", valid.join(", ")),
            details: Some(Box::new(serde_json::json!({ "valid_scopes": valid }))),
        },
        ScopeError::Unknown { unknown, .. } => ApiError::BadRequest {
            code: ErrorCode::UnknownScope,
            message: format!(
                "unknown scope(s) {}; valid scopes are: {}, and call:SERVER/TOOL for one tool of a registered server",
                unknown.join(", "),
                valid.join(", ")
            ),
            details: Some(Box::new(serde_json::json!({ "unknown": unknown, "valid_scopes": valid }))),
        },
        ScopeError::UnknownTool { scope, server, known } => ApiError::BadRequest {
            code: ErrorCode::UnknownScope,
            message: format!("`{scope}` names no tool of `{server}`; its tools are: {}", known.join(", ")),
            details: Some(Box::new(serde_json::json!({ "unknown": [scope], "server": server, "known_tools": known }))),
        },
    })?;
    Ok(set)
}

/// The bounds every token field must respect, so clients and the web UI need not copy them.
#[utoipa::path(
    get, path = "/api/v2/limits", tag = "tokens",
    responses(
        (status = 200, description = "The bounds of this server and the scopes it grants; signed-in callers \
            also get every registered server's scopes and tools", body = LimitsView),
    ),
    security((), ("session" = []), ("bearer" = ["read:tokens"]))
)]
pub async fn limits(req: HttpRequest, state: web::Data<ApiState>) -> Result<web::Json<LimitsView>, ApiError> {
    let mut view = LimitsView::current();
    // Registered servers and their tools are for signed-in callers only: anonymous ones get
    // the built-in catalog, learn nothing about the upstreams, and cost no database reads.
    let Ok(caller) = authenticate(&req, &state, Access::Read, Utc::now()).await else {
        return Ok(web::Json(view));
    };
    // The token form offers only what the caller's teams allow them to hold.
    let allowance = state.tokens.allowance_of(caller.user.id).await?;
    let allowed = |scope: &str| allowance.missing(&ScopeSet::parse_lenient(scope)).is_empty();
    view.grantable_scopes = state.servers.catalog().await?.grantable();
    view.grantable_scopes.retain(|s| s != tessera_core::scope::ADMIN && allowed(s));
    for server in state.servers.list().await? {
        let tools: Vec<String> = state
            .servers
            .tools(&server)
            .await?
            .into_iter()
            .filter(|t| t.access != tessera_core::upstream::ToolAccess::Hidden)
            .map(|t| t.record.name)
            .filter(|tool| allowed(&format!("call:{}/{tool}", server.name)))
            .collect();
        if tools.is_empty() && !allowed(&format!("read:{}", server.name)) {
            continue;
        }
        view.servers.push(ServerToolsView { tools, name: server.name, description: server.description });
    }
    Ok(web::Json(view))
}
