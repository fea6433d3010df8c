//! `/api/v2/webhooks`: alert webhooks (issue #17) and their delivery log, and
//! `/api/v2/tokens/{id}/alerts`, a token's "activity needing attention".
//!
//! Users register webhooks for their own tokens; administrators may register one for every
//! user's (`all_users`). The signing secret is in the creation answer only.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use tessera_core::ErrorCode;
use tessera_core::alerts::{EVENT_KINDS, MAX_WEBHOOKS_PER_USER, WebhookRuleViolation, check_url, event_set};
use tessera_store::{AlertEvent, Delivery, NewWebhook, Webhook};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ApiState;
use crate::auth::{Access, Caller, authenticate};
use crate::body::JsonObject;
use crate::error::{ApiError, ErrorBody};
use crate::tokens::visible_token;

/// Entries of a delivery log or alert list returned at most.
const LOG_LIMIT: i64 = 100;

/// `POST /webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// Where to POST events (http or https; private and loopback addresses are refused unless
    /// the server allows them).
    #[schema(min_length = 1, max_length = 2000, format = "uri", pattern = "^https?://")]
    pub url: String,
    /// Event kinds to receive; default: all of them.
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// Administrators only: receive the events of every user's tokens.
    #[serde(default)]
    pub all_users: bool,
}

/// `PATCH /webhooks/{id}`: a new URL and/or event kinds (the secret stays).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchWebhookRequest {
    /// New target (the same rules as at registration).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 2000, format = "uri", pattern = "^https?://")]
    pub url: Option<String>,
    /// New event kinds.
    #[serde(default)]
    pub events: Option<Vec<String>>,
}

/// A webhook as the API shows it (never its secret, except once in [`CreatedWebhookView`]).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    /// Id.
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// Target.
    pub url: String,
    /// Event kinds it receives.
    pub events: Vec<String>,
    /// Receives every user's token events.
    pub all_users: bool,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

impl From<Webhook> for WebhookView {
    fn from(w: Webhook) -> Self {
        Self {
            id: w.id,
            user_id: w.user_id,
            url: w.url,
            events: w.events,
            all_users: w.all_users,
            created_at: w.created_at,
        }
    }
}

/// `201` of `POST /webhooks`: the webhook and its signing secret, shown this once.
#[derive(Serialize, ToSchema)]
pub struct CreatedWebhookView {
    /// The webhook.
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// HMAC-SHA256 key of the `Tessera-Signature` header; shown only now.
    pub secret: String,
}

/// One delivery attempt record.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    /// Id (also sent as `Tessera-Delivery`).
    pub id: i64,
    /// The event.
    pub event_id: i64,
    /// Its kind.
    pub kind: String,
    /// Its token (`null`: a server event such as `server.tool_changed`).
    pub token_id: Option<Uuid>,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// Attempts made.
    pub attempts: i32,
    /// Next attempt (pending only).
    pub next_attempt_at: DateTime<Utc>,
    /// HTTP status of the last attempt.
    pub last_status: Option<i32>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        Self {
            id: d.id,
            event_id: d.event_id,
            kind: d.kind,
            token_id: d.token_id,
            state: d.state,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_status: d.last_status,
            last_error: d.last_error,
            updated_at: d.updated_at,
        }
    }
}

/// One alert event of a token.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertView {
    /// Id.
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Kind, e.g. `token.rate_limited`.
    pub kind: String,
    /// Kind-specific facts.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

impl From<AlertEvent> for AlertView {
    fn from(e: AlertEvent) -> Self {
        Self { id: e.id, at: e.at, kind: e.kind, details: e.details }
    }
}

impl From<WebhookRuleViolation> for ApiError {
    fn from(v: WebhookRuleViolation) -> Self {
        let code = match v {
            WebhookRuleViolation::BadUrl => ErrorCode::InvalidUrl,
            WebhookRuleViolation::PrivateTarget => ErrorCode::PrivateTarget,
            WebhookRuleViolation::UnknownEvent(_) | WebhookRuleViolation::NoEvents => ErrorCode::InvalidEvents,
        };
        ApiError::BadRequest {
            code,
            message: v.to_string(),
            details: Some(Box::new(serde_json::json!({"valid_events": EVENT_KINDS}))),
        }
    }
}

/// Register a webhook for your tokens' alert events (administrators: optionally everyone's).
/// Deliveries are `POST`s of JSON signed with `Tessera-Signature: v1=<hex HMAC-SHA256 of
/// "<Tessera-Timestamp>.<body>">`; see the README.
#[utoipa::path(
    post, path = "/api/v2/webhooks", tag = "webhooks",
    request_body = CreateWebhookRequest,
    responses(
        (status = 201, description = "Registered; the secret is in this answer only", body = CreatedWebhookView),
        (status = 400, description = "Bad URL (`invalid_url`), private target (`private_target`) or events", body = ErrorBody),
        (status = 403, description = "CSRF failure, missing `write:tokens`, or `all_users` by a non-admin", body = ErrorBody),
        (status = 409, description = "Already at the limit of webhooks per user (`too_many_webhooks`)", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["write:tokens"]))
)]
pub async fn create(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: JsonObject<CreateWebhookRequest>,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let caller = authenticate(&req, &state, Access::Write, now).await?;
    let body = body.into_inner();
    check_url(&body.url, state.config.webhooks_allow_local)?;
    let events = event_set(body.events.unwrap_or_else(|| EVENT_KINDS.iter().map(|&e| e.to_owned()).collect()))?;
    if body.all_users {
        crate::users::require_admin(&caller)?;
    }
    let secret = new_secret();
    let new = NewWebhook {
        user_id: caller.user.id,
        url: body.url,
        secret: secret.clone(),
        events,
        all_users: body.all_users,
    };
    let hook =
        state.store.create_webhook(&new, MAX_WEBHOOKS_PER_USER, now).await?.ok_or_else(|| ApiError::Conflict {
            code: ErrorCode::TooManyWebhooks,
            message: format!("an account may have at most {MAX_WEBHOOKS_PER_USER} webhooks; delete one first"),
        })?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v2/webhooks/{}", hook.id)))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(CreatedWebhookView { webhook: hook.into(), secret }))
}

/// Your webhooks (administrators: everyone's), newest first.
#[utoipa::path(
    get, path = "/api/v2/webhooks", tag = "webhooks",
    responses(
        (status = 200, description = "Webhooks", body = [WebhookView]),
        (status = 403, description = "Missing `read:tokens`", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["read:tokens"]))
)]
pub async fn list(req: HttpRequest, state: web::Data<ApiState>) -> Result<web::Json<Vec<WebhookView>>, ApiError> {
    let caller = authenticate(&req, &state, Access::Read, Utc::now()).await?;
    let hooks = state.store.list_webhooks(caller.requester().list_scope()).await?;
    Ok(web::Json(hooks.into_iter().map(WebhookView::from).collect()))
}

/// One of your webhooks (administrators: anyone's).
#[utoipa::path(
    get, path = "/api/v2/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "The webhook", body = WebhookView),
        (status = 403, description = "Missing `read:tokens`", body = ErrorBody),
        (status = 404, description = "No such webhook, or another user's", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["read:tokens"]))
)]
pub async fn get(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<Uuid>,
) -> Result<web::Json<WebhookView>, ApiError> {
    let caller = authenticate(&req, &state, Access::Read, Utc::now()).await?;
    Ok(web::Json(visible_webhook(&state, &caller, id.into_inner()).await?.into()))
}

/// Change a webhook's URL and/or event kinds; its secret and delivery log stay.
#[utoipa::path(
    patch, path = "/api/v2/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook id")),
    request_body = PatchWebhookRequest,
    responses(
        (status = 200, description = "The changed webhook", body = WebhookView),
        (status = 400, description = "Bad URL (`invalid_url`), private target (`private_target`) or events", body = ErrorBody),
        (status = 403, description = "CSRF failure or missing `write:tokens`", body = ErrorBody),
        (status = 404, description = "No such webhook, or another user's", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["write:tokens"]))
)]
pub async fn patch(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<Uuid>,
    body: JsonObject<PatchWebhookRequest>,
) -> Result<web::Json<WebhookView>, ApiError> {
    let caller = authenticate(&req, &state, Access::Write, Utc::now()).await?;
    let body = body.into_inner();
    if let Some(url) = &body.url {
        check_url(url, state.config.webhooks_allow_local)?;
    }
    let events = body.events.map(event_set).transpose()?;
    let hook = visible_webhook(&state, &caller, id.into_inner()).await?;
    let hook = state.store.update_webhook(hook.id, body.url.as_deref(), events.as_deref()).await?;
    Ok(web::Json(hook.into()))
}

/// Delete a webhook; its pending deliveries are dropped and it receives nothing more.
#[utoipa::path(
    delete, path = "/api/v2/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "CSRF failure or missing `write:tokens`", body = ErrorBody),
        (status = 404, description = "No such webhook, or another user's", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["write:tokens"]))
)]
pub async fn delete(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let caller = authenticate(&req, &state, Access::Write, now).await?;
    let hook = visible_webhook(&state, &caller, id.into_inner()).await?;
    state.store.delete_webhook(hook.id, now).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A webhook's latest deliveries (up to 100), newest first.
#[utoipa::path(
    get, path = "/api/v2/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "Deliveries", body = [DeliveryView]),
        (status = 403, description = "Missing `read:tokens`", body = ErrorBody),
        (status = 404, description = "No such webhook, or another user's", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["read:tokens"]))
)]
pub async fn deliveries(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<Uuid>,
) -> Result<web::Json<Vec<DeliveryView>>, ApiError> {
    let caller = authenticate(&req, &state, Access::Read, Utc::now()).await?;
    let hook = visible_webhook(&state, &caller, id.into_inner()).await?;
    let log = state.store.webhook_deliveries(hook.id, LOG_LIMIT).await?;
    Ok(web::Json(log.into_iter().map(DeliveryView::from).collect()))
}

/// A token's latest alert events (up to 100), newest first: its "activity needing attention".
#[utoipa::path(
    get, path = "/api/v2/tokens/{id}/alerts", tag = "webhooks",
    params(("id" = Uuid, Path, description = "Token id")),
    responses(
        (status = 200, description = "Alert events", body = [AlertView]),
        (status = 403, description = "Missing `read:tokens`", body = ErrorBody),
        (status = 404, description = "No such token, or another user's", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["read:tokens"]))
)]
pub async fn token_alerts(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<Uuid>,
) -> Result<web::Json<Vec<AlertView>>, ApiError> {
    let caller = authenticate(&req, &state, Access::Read, Utc::now()).await?;
    let token = visible_token(&state, &caller, id.into_inner()).await?;
    let events = state.store.token_alerts(token.id, LOG_LIMIT).await?;
    Ok(web::Json(events.into_iter().map(AlertView::from).collect()))
}

/// Another user's webhook is "not found" unless the caller sees everyone.
async fn visible_webhook(state: &ApiState, caller: &Caller, id: Uuid) -> Result<Webhook, ApiError> {
    match state.store.get_webhook(id).await? {
        Some(hook) if caller.requester().can_see(hook.user_id) => Ok(hook),
        _ => Err(ApiError::NotFound("webhook")),
    }
}

fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("whsec_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}
