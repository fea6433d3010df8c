//! `/api/v2/oauth/*`: what the consent page of the web UI reads and posts, and the admins'
//! list of registered clients. Guarded like the rest of the session API (cookie, CSRF on
//! POST); a bearer token can't consent, so no token ever makes a grant.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tessera_core::ErrorCode;
use tessera_oauth::{AuthorizeParams, AuthorizeRequest, Consent, OAuthError, OAuthService};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::ApiState;
use crate::auth::{Access, Caller, Via, authenticate};
use crate::body::JsonObject;
use crate::error::{ApiError, ErrorBody};

/// Which authorization request the consent page shows: the query of `/oauth/authorize`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ConsentQuery {
    /// The original query string of `/oauth/authorize` (URL-encoded).
    pub request: String,
}

/// What the user decided.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ConsentDecision {
    /// The original query string of `/oauth/authorize`.
    pub request: String,
    /// Allow (true) or Deny (false).
    pub approve: bool,
    /// Scopes left ticked (a subset of the offered ones; never `mcp:admin`).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Grant lifetime in days, 1-365 (default 30).
    pub expires_in_days: Option<i64>,
    /// Optional requests per hour.
    pub rate_limit_per_hour: Option<i64>,
    /// Keep the grants in force to this client for this resource (`active_grants` of the
    /// view) beside the new one; by default the new grant replaces them.
    #[serde(default)]
    pub keep_previous: bool,
}

/// Where the browser goes next: the client's redirect URI with `code` (or `error`), `state`
/// and `iss`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentRedirect {
    /// The URL to navigate to.
    pub redirect_to: String,
}

/// The authorization request as the consent page shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentView {
    /// The client.
    pub client_id: String,
    /// Its name.
    pub client_name: String,
    /// `dynamic` or `metadata_document`.
    pub client_kind: String,
    /// Where the client comes from (the CIMD URL's host, or "registered dynamically ...").
    pub client_origin: String,
    /// Host the answer is sent to.
    pub redirect_host: String,
    /// Requested scopes, to show pre-ticked.
    pub scopes: Vec<String>,
    /// Scopes the person may choose from: the requested ones, the `read:X` of each `write:X`,
    /// and `call:S/TOOL` for each tool of server `S` the request covers.
    pub offered: Vec<String>,
    /// The resource the grant is for (RFC 8707): the access tokens' `aud`.
    pub resource: String,
    /// The registered server that resource belongs to; absent for Tessera's own `/mcp`.
    pub server: Option<ConsentServer>,
    /// The signed-in person's grants in force to this client for this resource, newest
    /// first: approving replaces them unless `keep_previous` is sent.
    pub active_grants: Vec<ActiveGrantView>,
}

/// A grant in force that a new consent would replace.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActiveGrantView {
    /// Its token id.
    pub id: Uuid,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// When it was granted.
    pub created_at: DateTime<Utc>,
}

/// A registered server a client asks access to.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentServer {
    /// Its name (the `S` of `read:S`, `write:S`, `call:S/TOOL`).
    pub name: String,
    /// The admin's description.
    pub description: Option<String>,
    /// Whether it checks tokens itself (a direct server) instead of being served at `/mcp/S`.
    pub direct: bool,
    /// Its known tools, hidden ones left out.
    pub tools: Vec<ConsentTool>,
}

/// A tool of a registered server.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentTool {
    /// Tool name.
    pub name: String,
    /// Its description upstream.
    pub description: Option<String>,
    /// `read` (callable with `read:S`) or `write` (needs `write:S` or `call:S/TOOL`).
    pub access: String,
}

impl From<AuthorizeRequest> for ConsentView {
    fn from(r: AuthorizeRequest) -> Self {
        let client_kind = serde_json::to_value(r.client_kind).ok().and_then(|v| v.as_str().map(str::to_owned));
        Self {
            client_id: r.client_id,
            client_name: r.client_name,
            client_kind: client_kind.unwrap_or_default(),
            client_origin: r.client_origin,
            redirect_host: r.redirect_host,
            scopes: r.scopes,
            offered: r.offered,
            resource: r.resource,
            server: r.server.map(|s| ConsentServer {
                name: s.name,
                description: s.description,
                direct: s.direct,
                tools: s
                    .tools
                    .into_iter()
                    .map(|t| ConsentTool { name: t.name, description: t.description, access: t.access.to_owned() })
                    .collect(),
            }),
            active_grants: Vec::new(),
        }
    }
}

fn oauth(state: &ApiState) -> Result<&OAuthService, ApiError> {
    state.oauth.as_ref().ok_or(ApiError::NotFound("route"))
}

fn session_only(caller: &Caller) -> Result<(), ApiError> {
    match caller.via {
        Via::Session(_) => Ok(()),
        Via::Token(_) => Err(ApiError::Forbidden {
            code: ErrorCode::SessionRequired,
            message: "only a signed-in person can approve an OAuth client".to_owned(),
            details: None,
            missing_scope: None,
        }),
    }
}

fn invalid(e: &OAuthError) -> ApiError {
    match e {
        OAuthError::TemporarilyUnavailable => ApiError::Unavailable,
        OAuthError::ServerError => ApiError::Internal,
        _ => ApiError::bad_request(e.error_code(), e.to_string()),
    }
}

async fn checked(service: &OAuthService, request: &str) -> Result<AuthorizeRequest, ApiError> {
    let params = web::Query::<AuthorizeParams>::from_query(request)
        .map_err(|_| ApiError::bad_request(ErrorCode::InvalidRequest, "malformed authorization request"))?;
    service.check_authorize(&params).await.map_err(|e| invalid(&e))
}

/// The authorization request behind a consent page: client, origin, requested scopes.
#[utoipa::path(
    get, path = "/api/v2/oauth/consent", tag = "oauth",
    params(ConsentQuery),
    responses(
        (status = 200, description = "The request, checked", body = ConsentView),
        (status = 400, description = "The request is invalid (its OAuth error code)", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "A bearer token can't consent", body = ErrorBody),
        (status = 404, description = "The authorization server is off", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn show(
    req: HttpRequest,
    state: web::Data<ApiState>,
    query: web::Query<ConsentQuery>,
) -> Result<web::Json<ConsentView>, ApiError> {
    let service = oauth(&state)?;
    let now = Utc::now();
    let caller = authenticate(&req, &state, Access::Read, now).await?;
    session_only(&caller)?;
    let request = checked(service, &query.request).await?;
    let (request, grants) = service.for_person(caller.user.id, request, now).await.map_err(|e| invalid(&e))?;
    let mut view = ConsentView::from(request);
    view.active_grants =
        grants.into_iter().map(|g| ActiveGrantView { id: g.id, scopes: g.scopes, created_at: g.created_at }).collect();
    Ok(web::Json(view))
}

/// Allow or deny an authorization request; the answer says where the browser goes.
#[utoipa::path(
    post, path = "/api/v2/oauth/consent", tag = "oauth",
    request_body = ConsentDecision,
    responses(
        (status = 200, description = "Redirect the browser to `redirect_to`", body = ConsentRedirect),
        (status = 400, description = "Invalid request, scopes beyond the requested ones, bad lifetime or limit", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "CSRF failure, or a bearer token", body = ErrorBody),
        (status = 404, description = "The authorization server is off", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn decide(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: JsonObject<ConsentDecision>,
) -> Result<HttpResponse, ApiError> {
    let service = oauth(&state)?;
    let now = Utc::now();
    let caller = authenticate(&req, &state, Access::Write, now).await?;
    session_only(&caller)?;
    let request = checked(service, &body.request).await?;
    let (request, _) = service.for_person(caller.user.id, request, now).await.map_err(|e| invalid(&e))?;
    let redirect_to = if body.approve {
        let consent = Consent {
            scopes: body.scopes.clone(),
            expires_in_days: body.expires_in_days,
            rate_limit_per_hour: body.rate_limit_per_hour,
            keep_previous: body.keep_previous,
        };
        service.approve(caller.user.id, caller.ip.clone(), &request, &consent, now).await
    } else {
        service.deny(caller.user.id, caller.ip.clone(), &request).await
    }
    .map_err(|e| invalid(&e))?;
    Ok(HttpResponse::Ok().insert_header(("cache-control", "no-store")).json(ConsentRedirect { redirect_to }))
}

/// Most clients listed at once.
const CLIENTS_LIMIT: i64 = 200;

/// A registered OAuth client.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthClientView {
    /// `client_id`.
    pub client_id: String,
    /// `dynamic` (RFC 7591) or `metadata_document` (CIMD).
    pub kind: String,
    /// Display name.
    pub client_name: String,
    /// Registered redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Registration instant.
    pub created_at: chrono::DateTime<Utc>,
    /// Its grants (tokens made through it) neither expired nor revoked.
    pub active_grants: i64,
}

/// The registered OAuth clients, newest first (administrators only).
#[utoipa::path(
    get, path = "/api/v2/oauth/clients", tag = "oauth",
    responses(
        (status = 200, description = "At most 200 clients, newest first", body = [OAuthClientView]),
        (status = 403, description = "Not an administrator (or a token without `mcp:admin`)", body = ErrorBody),
        (status = 404, description = "The authorization server is off", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["read:tokens", "mcp:admin"]))
)]
pub async fn clients(
    req: HttpRequest,
    state: web::Data<ApiState>,
) -> Result<web::Json<Vec<OAuthClientView>>, ApiError> {
    oauth(&state)?;
    let now = Utc::now();
    let caller = authenticate(&req, &state, Access::Read, now).await?;
    if !caller.requester().sees_everyone() {
        return Err(ApiError::Forbidden {
            code: ErrorCode::AdminOnly,
            message: "only administrators see every registered OAuth client".to_owned(),
            details: None,
            missing_scope: None,
        });
    }
    let list = state.store.oauth_clients(CLIENTS_LIMIT, now).await?;
    Ok(web::Json(
        list.into_iter()
            .map(|listed| OAuthClientView {
                client_id: listed.client.id,
                kind: listed.client.kind,
                client_name: listed.client.name,
                redirect_uris: listed.client.redirect_uris,
                created_at: listed.client.created_at,
                active_grants: listed.active_grants,
            })
            .collect(),
    ))
}
