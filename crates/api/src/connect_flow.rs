//! Connecting an account at an OAuth-protected upstream (issue #25, `--user-auth oauth`):
//! `GET /api/v2/connections/{server}/connect` sends the signed-in person's browser to the
//! upstream's authorization server (code flow, PKCE S256, `state`, RFC 8707 `resource`);
//! `GET /api/v2/connections/callback` finishes it. The flow is bound to the person who began
//! it by a sealed `SameSite=Lax` cookie (the return is a cross-site navigation, which our
//! `Strict` session cookie does not follow), so a callback opened anywhere else connects no
//! one. Every outcome sends the browser to the Connections page with a code it explains.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use tessera_store::Actor;
use tessera_tokens::{Callback, ConnectUrls, ServerError};
use utoipa::IntoParams;
use uuid::Uuid;

use crate::ApiState;
use crate::auth::{Access, authenticate, client_ip};
use crate::error::ApiError;

const FLOW_COOKIE: &str = "tessera_connect";
const FLOW_CONTEXT: &[u8] = b"tessera-connect-flow";
const FLOW_PATH: &str = "/api/v2/connections";
/// How long a connection may take at the upstream.
const FLOW_SECS: i64 = 600;

/// What the flow cookie carries.
#[derive(Serialize, Deserialize)]
struct FlowCookie {
    /// The person connecting.
    u: Uuid,
    /// The server.
    n: String,
    s: String,
    v: String,
    /// Expiry, seconds since the epoch.
    e: i64,
}

/// Query of `GET /api/v2/connections/{server}/connect`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ConnectQuery {
    /// The person the connect link was made for (the gateway's links carry it); anyone else
    /// signed in is refused.
    #[serde(rename = "for")]
    pub for_user: Option<Uuid>,
}

/// Query of the upstream's redirect back.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ConnectCallbackQuery {
    /// The authorization code.
    pub code: Option<String>,
    /// The `state` sent with the request.
    pub state: Option<String>,
    /// The authorization server's error (e.g. `access_denied`).
    pub error: Option<String>,
}

/// Tessera's own addresses in every flow.
pub(crate) fn urls(state: &ApiState) -> ConnectUrls {
    let public = &state.config.public_url;
    ConnectUrls {
        redirect_uri: format!("{public}/api/v2/connections/callback"),
        metadata_document: format!("{public}/api/v2/connections/client-metadata.json"),
        public_https: public.starts_with("https://"),
    }
}

/// Starts connecting the signed-in person's account at an OAuth-protected upstream.
#[utoipa::path(
    get, path = "/api/v2/connections/{server}/connect", tag = "connections",
    params(("server" = String, Path, description = "Server name"), ConnectQuery),
    responses(
        (status = 303, description = "To the upstream's authorization server; or to the Connections page with `?error=CODE` (`signed_out` without a session, `another_account`, `not_found`, `not_oauth_server`, `upstream_unreachable`, `not_oauth`, `invalid_response`, `address_refused`, `rejected`, `no_client`)",
            headers(("Location" = String, description = "Where to go"))),
    ),
    // A browser navigation: without a session it is sent to the page (which asks to sign in), not refused.
    security((), ("session" = []))
)]
pub async fn start(
    req: HttpRequest,
    state: web::Data<ApiState>,
    server: web::Path<String>,
    query: web::Query<ConnectQuery>,
) -> Result<HttpResponse, ApiError> {
    let secure = state.config.secure_cookies;
    let name = server.into_inner();
    let caller = match authenticate(&req, &state, Access::Read, Utc::now()).await {
        Ok(caller) => caller,
        Err(ApiError::Unauthenticated { .. }) => return Ok(back(Some(&name), "signed_out", secure)),
        Err(e) => return Err(e),
    };
    if query.for_user.is_some_and(|u| u != caller.user.id) {
        return Ok(back(Some(&name), "another_account", secure));
    }
    let (url, flow) = match state.servers.begin_connect(&name, &urls(&state)).await {
        Ok(started) => started,
        Err(e) => return failed(&name, e, secure),
    };
    let cookie = FlowCookie {
        u: caller.user.id,
        n: name,
        s: flow.state,
        v: flow.verifier,
        e: Utc::now().timestamp().saturating_add(FLOW_SECS),
    };
    let key = state.servers.seal_key()?;
    let value = crate::sealed_cookie::seal(&key, FLOW_CONTEXT, &cookie).ok_or(ApiError::Internal)?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, url.as_str()))
        .insert_header((
            header::SET_COOKIE,
            crate::sealed_cookie::header(FLOW_COOKIE, &value, FLOW_PATH, FLOW_SECS, secure),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// The upstream's authorization server sends the browser back here: the code is exchanged
/// and the tokens stored, sealed, for the person who began the flow.
#[utoipa::path(
    get, path = "/api/v2/connections/callback", tag = "connections",
    params(ConnectCallbackQuery),
    responses(
        (status = 303, description = "Connected: to the Connections page with `?connected=1`; or with `?error=CODE` (`expired`, `invalid_response`, `another_account`, `denied`, `rejected`, `upstream_unreachable`, ...)",
            headers(("Location" = String, description = "Where to go"))),
    ),
    security(())
)]
pub async fn callback(
    req: HttpRequest,
    state: web::Data<ApiState>,
    query: web::Query<ConnectCallbackQuery>,
) -> Result<HttpResponse, ApiError> {
    let secure = state.config.secure_cookies;
    let now = Utc::now();
    let key = state.servers.seal_key()?;
    let flow = crate::sealed_cookie::open::<FlowCookie>(&req, FLOW_COOKIE, &key, FLOW_CONTEXT)
        .filter(|f| f.e > now.timestamp());
    let Some(flow) = flow else { return Ok(back(None, "expired", secure)) };
    let name = flow.n.as_str();
    if query.state.as_deref() != Some(flow.s.as_str()) {
        return Ok(back(Some(name), "invalid_response", secure));
    }
    // Someone else signed in in this browser meanwhile: their session must not finish a
    // flow begun for another person.
    if let Ok(signed_in) = authenticate(&req, &state, Access::Read, now).await
        && signed_in.user.id != flow.u
    {
        return Ok(back(Some(name), "another_account", secure));
    }
    if query.error.is_some() {
        return Ok(back(Some(name), "denied", secure));
    }
    let Some(code) = query.code.as_deref() else { return Ok(back(Some(name), "invalid_response", secure)) };
    let actor = Actor { user_id: Some(flow.u), token_id: None, ip: client_ip(&req) };
    let callback = Callback { code, verifier: &flow.v };
    match state.servers.finish_connect(&actor, flow.u, name, callback, &urls(&state), now).await {
        Ok(_) => Ok(to_page(Some(name), "connected=1", secure)),
        Err(e) => failed(name, e, secure),
    }
}

/// Tessera's Client ID Metadata Document, used as its client id at authorization servers
/// that accept them when the public URL is `https`.
#[utoipa::path(
    get, path = "/api/v2/connections/client-metadata.json", tag = "connections",
    responses((status = 200, description = "The metadata document", body = Object)),
    security(())
)]
pub async fn client_metadata(state: web::Data<ApiState>) -> HttpResponse {
    let urls = urls(&state);
    let mut doc = tessera_upstream_oauth::client_metadata(&urls.redirect_uri);
    doc["client_id"] = serde_json::Value::String(urls.metadata_document);
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "public, max-age=3600")).json(doc)
}

/// A failed start or finish: a code for the page, or an error Tessera itself must answer.
fn failed(name: &str, e: ServerError, secure: bool) -> Result<HttpResponse, ApiError> {
    let code = match &e {
        ServerError::NotFound => "not_found",
        ServerError::NotPersonal => "not_oauth_server",
        ServerError::Connect(c) => {
            tracing::warn!(server = %name, error = %c, "connecting an upstream account failed");
            c.code()
        }
        _ => return Err(e.into()),
    };
    Ok(back(Some(name), code, secure))
}

fn back(name: Option<&str>, code: &str, secure: bool) -> HttpResponse {
    to_page(name, &format!("error={code}"), secure)
}

/// To the Connections page (of `name`) with `query`; the flow cookie is cleared.
fn to_page(name: Option<&str>, query: &str, secure: bool) -> HttpResponse {
    let page = match name {
        Some(n) => {
            format!("/#/connections/{}?{query}", url::form_urlencoded::byte_serialize(n.as_bytes()).collect::<String>())
        }
        None => format!("/#/connections?{query}"),
    };
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, page))
        .insert_header((header::SET_COOKIE, crate::sealed_cookie::header(FLOW_COOKIE, "", FLOW_PATH, 0, secure)))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}
