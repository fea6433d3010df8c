//! `/api/v2/connections`: each person's own credentials for the servers whose users bring
//! one (connected accounts, issue #25, header mode). A session or a bearer token
//! (`read:tokens` to list, `write:tokens` to change) acts for its own person only; values are
//! write-only.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ApiState;
use crate::auth::{Access, authenticate};
use crate::body::JsonObject;
use crate::error::{ApiError, ErrorBody};

/// One of the caller's connections, or a server they may connect; never the secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionView {
    /// The server (`/mcp/{server}`).
    pub server: String,
    /// `header` (the person types a value) or `oauth` (they sign in at the upstream).
    pub kind: String,
    /// The header the value goes in (`authorization` for `oauth`).
    pub header: String,
    /// When the caller connected (`null`: not connected).
    pub connected_at: Option<DateTime<Utc>>,
    /// Who the upstream says the caller is there (`oauth`, when known; display only).
    pub identity: Option<String>,
    /// When the upstream access token ends (`oauth`; Tessera refreshes it before then).
    pub expires_at: Option<DateTime<Utc>>,
    /// Where to connect in the UI.
    pub connect_url: String,
    /// `oauth`: where the browser goes to connect (starts the upstream's sign-in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_url: Option<String>,
}

/// Who is connected to what (administrators' view); never the secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectedPersonView {
    /// The server.
    pub server: String,
    /// The person's email.
    pub email: String,
    /// `header` or `oauth`.
    pub kind: String,
    /// When they connected.
    pub connected_at: DateTime<Utc>,
    /// Who the upstream says they are (`oauth`, when known).
    pub identity: Option<String>,
}

/// The caller's connections, and (for administrators) everyone's.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionsView {
    /// Each server whose users bring their own credential, and whether the caller has.
    pub connections: Vec<ConnectionView>,
    /// Administrators only: every person's connections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub everyone: Option<Vec<ConnectedPersonView>>,
}

/// `PUT /api/v2/connections/{server}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectRequest {
    /// The caller's credential for the server's header (e.g. a personal access token); stored
    /// encrypted, never shown again.
    pub value: String,
}

/// The caller's connections (every server whose users bring their own credential).
#[utoipa::path(
    get, path = "/api/v2/connections", tag = "connections",
    responses(
        (status = 200, description = "The caller's connections", body = ConnectionsView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Bearer token without `read:tokens`", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["read:tokens"]))
)]
pub async fn list(req: HttpRequest, state: web::Data<ApiState>) -> Result<web::Json<ConnectionsView>, ApiError> {
    let caller = authenticate(&req, &state, Access::Read, Utc::now()).await?;
    let mine = state.servers.connections(Some(caller.user.id)).await?;
    let connections = state
        .servers
        .personal_servers()
        .await?
        .into_iter()
        .map(|(server, auth)| {
            let own = mine.iter().find(|c| c.server == server);
            let public = &state.config.public_url;
            ConnectionView {
                connected_at: own.map(|c| c.connected_at),
                identity: own.and_then(|c| c.identity.clone()),
                expires_at: own.and_then(|c| c.expires_at),
                connect_url: tessera_core::upstream::connect_url(public, &server, Some(caller.user.id)),
                start_url: auth.oauth.is_some().then(|| format!("{public}/api/v2/connections/{server}/connect")),
                kind: auth.kind().to_owned(),
                header: auth.header,
                server,
            }
        })
        .collect();
    let everyone = if caller.user.is_admin {
        let all = state.servers.connections(None).await?;
        Some(
            all.into_iter()
                .map(|c| ConnectedPersonView {
                    server: c.server,
                    email: c.email,
                    kind: c.kind,
                    connected_at: c.connected_at,
                    identity: c.identity,
                })
                .collect(),
        )
    } else {
        None
    };
    Ok(web::Json(ConnectionsView { connections, everyone }))
}

/// Connect (or replace) the caller's own credential for a server.
#[utoipa::path(
    put, path = "/api/v2/connections/{server}", tag = "connections",
    params(("server" = String, Path, description = "Server name")),
    request_body = ConnectRequest,
    responses(
        (status = 204, description = "Connected"),
        (status = 400, description = "Not a valid header value (`invalid_server`), or the server's users do not type their own (`not_connectable`: none, or they connect through OAuth)", body = ErrorBody),
        (status = 403, description = "CSRF failure, or a bearer token without `write:tokens`", body = ErrorBody),
        (status = 404, description = "No such server", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["write:tokens"]))
)]
pub async fn put(
    req: HttpRequest,
    state: web::Data<ApiState>,
    server: web::Path<String>,
    body: JsonObject<ConnectRequest>,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let caller = authenticate(&req, &state, Access::Write, now).await?;
    let value = zeroize::Zeroizing::new(body.into_inner().value);
    state.servers.connect(&caller.actor(), caller.user.id, &server, &value, now).await?;
    Ok(HttpResponse::NoContent().insert_header((header::CACHE_CONTROL, "no-store")).finish())
}

/// Disconnect the caller's credential for a server.
#[utoipa::path(
    delete, path = "/api/v2/connections/{server}", tag = "connections",
    params(("server" = String, Path, description = "Server name")),
    responses(
        (status = 204, description = "Disconnected (or was not connected)"),
        (status = 403, description = "CSRF failure, or a bearer token without `write:tokens`", body = ErrorBody),
        (status = 404, description = "No such server", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["write:tokens"]))
)]
pub async fn delete(
    req: HttpRequest,
    state: web::Data<ApiState>,
    server: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&req, &state, Access::Write, Utc::now()).await?;
    state.servers.disconnect(&caller.actor(), caller.user.id, &server).await?;
    Ok(HttpResponse::NoContent().finish())
}
