//! `/api/v2/users` (administrators): the accounts and their shared, per-user rate limit.

use actix_web::{HttpRequest, web};
use chrono::Utc;
use tessera_core::ErrorCode;
use tessera_core::values::RateLimit;
use uuid::Uuid;

use crate::ApiState;
use crate::auth::{Access, Caller, authenticate};
use crate::body::JsonObject;
use crate::error::{ApiError, ErrorBody};
use crate::models::{PatchUserRequest, UserView};

/// Every account with its per-user rate limit (administrators only).
#[utoipa::path(
    get, path = "/api/v2/users", tag = "users",
    responses(
        (status = 200, description = "Every account, oldest first", body = [UserView]),
        (status = 403, description = "Not an administrator (`admin_required`), or missing `read:tokens`", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["mcp:admin"]))
)]
pub async fn list(req: HttpRequest, state: web::Data<ApiState>) -> Result<web::Json<Vec<UserView>>, ApiError> {
    let caller = authenticate(&req, &state, Access::Read, Utc::now()).await?;
    require_admin(&caller)?;
    Ok(web::Json(state.store.list_users().await?.into_iter().map(UserView::from).collect()))
}

/// Set or clear a user's rate limit, shared by all of their tokens on top of each token's own,
/// and deactivate or reactivate the account (administrators only). A call needs room in both
/// budgets; a 429 names the one used up. Absent fields change nothing.
#[utoipa::path(
    patch, path = "/api/v2/users/{id}", tag = "users",
    params(("id" = Uuid, Path, description = "User id")),
    request_body = PatchUserRequest,
    responses(
        (status = 200, description = "The changed account", body = UserView),
        (status = 400, description = "Limit out of range, or an administrator deactivating themselves", body = ErrorBody),
        (status = 403, description = "CSRF failure, not an administrator (`admin_required`), or missing `write:tokens`", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["mcp:admin"]))
)]
pub async fn patch(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: web::Path<Uuid>,
    body: JsonObject<PatchUserRequest>,
) -> Result<web::Json<UserView>, ApiError> {
    let caller = authenticate(&req, &state, Access::Write, Utc::now()).await?;
    require_admin(&caller)?;
    let id = id.into_inner();
    let body = body.into_inner();
    let limit = body.rate_limit_per_hour.map(|l| l.map(|n| RateLimit::new(n.into())).transpose()).transpose()?;
    if caller.user.id == id && body.active == Some(false) {
        return Err(ApiError::bad_request(ErrorCode::InvalidBody, "administrators cannot deactivate themselves"));
    }
    let mut changed = None;
    if let Some(limit) = limit {
        changed = Some(state.store.set_user_rate_limit(id, limit.map(RateLimit::to_stored), &caller.actor()).await?);
    }
    if let Some(active) = body.active {
        if !active {
            drop(state.servers.revoke_connections_of(id).await);
        }
        changed = Some(state.tokens.set_owner_active(&caller.actor(), id, active, Utc::now()).await?);
    }
    let user = match changed {
        Some(user) => user,
        // Nothing asked: the account as it is.
        None => state.store.user_by_id(id).await?.ok_or(ApiError::NotFound("user"))?,
    };
    Ok(web::Json(UserView::from(user)))
}

/// Cross-user power: an admin's session, or a token carrying `mcp:admin` itself.
pub(crate) fn require_admin(caller: &Caller) -> Result<(), ApiError> {
    if caller.requester().sees_everyone() {
        return Ok(());
    }
    Err(ApiError::Forbidden {
        code: ErrorCode::AdminRequired,
        message: "only administrators may do this".to_owned(),
        details: None,
        missing_scope: None,
    })
}
