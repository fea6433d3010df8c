//! `/api/v2/servers`: the registry of upstream MCP servers served at `/mcp/{name}` (admin
//! session or `mcp:admin` bearer). Header values go in and never come out: answers name
//! the headers only.

use std::collections::BTreeMap;
use tessera_core::ErrorCode;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tessera_core::catalog::{ServerName, ToolName};
use tessera_core::upstream::{ToolAccess, UpstreamHeader, UpstreamUrl};
use tessera_core::values::Description;
use tessera_store::ServerRecord;
use tessera_tokens::{Discovery, PersonalHeader, PersonalOAuth, ServerInput, ServerPatch, ToolView};
use utoipa::ToSchema;

use crate::ApiState;
use crate::auth::{Access, authenticate};
use crate::body::JsonObject;
use crate::error::{ApiError, ErrorBody};
use crate::server_pins::{HeldReason, HeldToolView, NewTools};

/// A registered upstream server. Header values are never shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerView {
    /// Its name: served at `/mcp/{name}`, scopes `read:{name}`, `write:{name}`, `call:{name}/TOOL`.
    pub name: String,
    /// The upstream's Streamable HTTP endpoint.
    pub url: String,
    /// Free text.
    pub description: Option<String>,
    /// Names of the headers sent upstream (values are write-only).
    pub headers: Vec<String>,
    /// The resource clients use (a token's `aud` must name it).
    pub resource: String,
    /// The scopes it contributes (besides `call:{name}/TOOL`).
    pub scopes: Vec<String>,
    /// Checks tokens itself (by introspection or JWKS); its resource is its own URL and the
    /// gateway does not serve it.
    pub direct: bool,
    /// What happens to a tool first listed after the first listing (tools are pinned at
    /// their first listing; a changed definition is held until approved).
    pub new_tools: NewTools,
    /// Only in `GET /servers/{name}`: the tools held until an admin approves them, with the
    /// pinned and the served definition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_tools: Option<Vec<HeldToolView>>,
    /// Only in the answer to a `PATCH` that moved a direct server: the tokens in force whose
    /// `aud` names its old URL (no longer accepted by it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_invalidated: Option<u64>,
    /// A direct server's introspection credential: only in the answer that made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<ServerCredentialsView>,
    /// Only in the answer that registered a gateway server: how many tools its `tools/list`
    /// showed when Tessera asked it at once (each is pinned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools_discovered: Option<usize>,
    /// Only in the answer that registered a gateway server it could not ask for its tools:
    /// why. The server is registered; its tools are learnt when a client first lists them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// Whether each user brings their own credential (connected accounts), and how.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_auth: Option<UserAuthView>,
    /// A stdio server's command (its `url` is then `stdio:{name}`); environment names only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<crate::stdio_servers::StdioCommandView>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// How each user of a server brings their own credential (issue #25): `header`, a value each
/// person sets with `PUT /api/v2/connections/{name}`; or `oauth`, each person signs in at the
/// upstream's authorization server through `GET /api/v2/connections/{name}/connect`. The
/// shared headers still apply.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserAuthView {
    /// `header` or `oauth`.
    pub kind: String,
    /// `header`: the header each person's value goes in, e.g. `X-Api-Key` or `Authorization`
    /// (`oauth`: always `authorization`).
    #[serde(default)]
    pub header: String,
    /// `header`: put before each person's value, e.g. `Bearer ` for `Authorization`.
    #[serde(default)]
    pub prefix: String,
    /// `oauth`: the scopes to ask for (absent: what the upstream asks for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// `oauth`: a client registered at the upstream's authorization server (absent: Tessera
    /// registers itself, RFC 7591, or uses its metadata document).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// `oauth`: that client's secret; stored encrypted, never shown.
    #[serde(default, skip_serializing)]
    pub client_secret: Option<String>,
    /// `oauth`: the upstream's authorization server, once discovered (read-only).
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
}

impl std::fmt::Debug for UserAuthView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserAuthView")
            .field("kind", &self.kind)
            .field("header", &self.header)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

/// What the administrator asked for in `user_auth`, checked.
enum Personal {
    Header(PersonalHeader),
    OAuth(PersonalOAuth),
}

/// Longest `scope` or `client_id` accepted.
const MAX_OAUTH_FIELD: usize = 1000;

fn personal(u: &UserAuthView) -> Result<Personal, ApiError> {
    let invalid = |m: &str| ApiError::bad_request(ErrorCode::InvalidServer, m.to_owned());
    match u.kind.as_str() {
        "header" => {
            if u.scope.is_some() || u.client_id.is_some() || u.client_secret.is_some() {
                return Err(invalid("scope, client_id and client_secret are for user_auth.kind `oauth`"));
            }
            Ok(Personal::Header(PersonalHeader::new(&u.header, &u.prefix).map_err(tessera_tokens::ServerError::from)?))
        }
        "oauth" => {
            if !u.header.is_empty() || !u.prefix.is_empty() {
                return Err(invalid(
                    "an `oauth` server's token always goes in Authorization: give no header or prefix",
                ));
            }
            if u.client_secret.is_some() && u.client_id.is_none() {
                return Err(invalid("user_auth.client_secret needs user_auth.client_id"));
            }
            let printable = |v: &Option<String>| {
                v.as_deref()
                    .is_none_or(|v| !v.is_empty() && v.len() <= MAX_OAUTH_FIELD && v.chars().all(|c| !c.is_control()))
            };
            if !printable(&u.scope) || !printable(&u.client_id) || !printable(&u.client_secret) {
                return Err(invalid(
                    "user_auth.scope, client_id and client_secret must be 1 to 1000 printable characters",
                ));
            }
            Ok(Personal::OAuth(PersonalOAuth {
                scope: u.scope.clone(),
                client_id: u.client_id.clone(),
                client_secret: u.client_secret.clone().map(zeroize::Zeroizing::new),
            }))
        }
        _ => Err(invalid("user_auth.kind must be `header` or `oauth`")),
    }
}

/// A direct server's introspection credential (`client_secret_basic` or `client_secret_post`
/// at `/oauth/introspect`). The secret is shown once; Tessera keeps only its hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerCredentialsView {
    /// Client id.
    pub client_id: String,
    /// Client secret (shown once).
    pub client_secret: String,
}

/// `POST /servers/{name}/credentials`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateCredentialsRequest {
    /// Seconds the old credential keeps working (0 to 30 days; default 0).
    #[serde(default)]
    pub grace_seconds: u32,
}

/// Longest grace a rotated credential may keep.
const MAX_CREDENTIAL_GRACE_SECS: u32 = 30 * 24 * 3600;

/// `POST /servers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateServerRequest {
    /// `[a-z0-9-]{1,32}`, not a built-in resource name.
    pub name: String,
    /// Absolute http(s) URL of its Streamable HTTP endpoint (absent for a stdio server).
    #[serde(default)]
    pub url: Option<String>,
    /// A stdio server instead of a URL: the program Tessera runs and speaks MCP to over its
    /// stdin and stdout (no headers, `direct` or `user_auth` with it).
    #[serde(default)]
    pub command: Option<crate::stdio_servers::StdioCommandRequest>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Headers sent upstream, name → value (its credentials); stored encrypted, never returned.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A server that checks tokens itself (no headers): the answer holds its introspection
    /// credential, shown only this once.
    #[serde(default)]
    pub direct: bool,
    /// Each user brings their own credential for this header (connected accounts).
    #[serde(default)]
    pub user_auth: Option<UserAuthView>,
    /// What happens to a tool first listed after the first listing (default `allow`).
    #[serde(default)]
    pub new_tools: Option<NewTools>,
}

/// `PATCH /servers/{name}`; absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchServerRequest {
    /// New URL.
    #[serde(default)]
    pub url: Option<String>,
    /// New description; `null` clears it.
    #[serde(default, deserialize_with = "crate::models::double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// Replaces every header (name → value); `{}` removes them all. A direct server takes none.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    /// Needed to change a direct server's URL: its tokens name the old URL in `aud` and stop
    /// working for it (the answer's `tokens_invalidated` says how many were in force).
    #[serde(default)]
    pub invalidate_tokens: bool,
    /// New policy for tools first listed from now on.
    #[serde(default)]
    pub new_tools: Option<NewTools>,
}

/// A tool's class: `read` (needs `read:S`), `write` (needs `write:S`), `hidden` (never listed or callable).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AccessClass {
    /// Listed and callable with `read:S`.
    Read,
    /// Needs `write:S` or `call:S/TOOL`.
    Write,
    /// Never listed, never callable.
    Hidden,
}

impl From<ToolAccess> for AccessClass {
    fn from(a: ToolAccess) -> Self {
        match a {
            ToolAccess::Read => Self::Read,
            ToolAccess::Write => Self::Write,
            ToolAccess::Hidden => Self::Hidden,
        }
    }
}

impl From<AccessClass> for ToolAccess {
    fn from(a: AccessClass) -> Self {
        match a {
            AccessClass::Read => Self::Read,
            AccessClass::Write => Self::Write,
            AccessClass::Hidden => Self::Hidden,
        }
    }
}

/// A tool of a server.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerToolView {
    /// Tool name.
    pub name: String,
    /// Its description upstream.
    pub description: Option<String>,
    /// The upstream's `readOnlyHint`, if any.
    pub read_only_hint: Option<bool>,
    /// The admin's override, if any.
    pub access_override: Option<AccessClass>,
    /// The class in force.
    pub access: AccessClass,
    /// The scope that calls just this tool.
    pub scope: String,
    /// When the gateway last saw it in a `tools/list` (`null`: only overridden so far).
    pub discovered_at: Option<DateTime<Utc>>,
    /// Whether its definition is pinned.
    pub pinned: bool,
    /// Why it is held (hidden, calls refused with `tool_changed`) until approved; `null`:
    /// not held.
    pub held: Option<HeldReason>,
}

/// `PATCH /servers/{name}/tools`: tool name → class, or `null` to drop the override.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchToolsRequest {
    /// Tool name → its class (`read`, `write` or `hidden`), or `null` to clear the override.
    #[schema(schema_with = tool_overrides_schema)]
    pub tools: BTreeMap<String, Option<AccessClass>>,
}

/// The schema of [`PatchToolsRequest::tools`]: an object whose values are an
/// [`AccessClass`] or `null` (utoipa can't derive a map of optional values itself).
fn tool_overrides_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    let value = OneOfBuilder::new()
        .item(utoipa::openapi::Ref::from_schema_name("AccessClass"))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .build();
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(Schema::OneOf(value)))
        .description(Some("Tool name → its class (`read`, `write` or `hidden`), or `null` to clear the override."))
        .build()
}

/// Most tool overrides one request may set.
const MAX_TOOL_PATCH: usize = 200;

/// List the registered servers.
#[utoipa::path(
    get, path = "/api/v2/servers", tag = "servers",
    responses(
        (status = 200, description = "Every server, by name", body = [ServerView]),
        (status = 403, description = "Not an administrator, or the token lacks `mcp:admin`", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["mcp:admin"]))
)]
pub async fn list(req: HttpRequest, state: web::Data<ApiState>) -> Result<web::Json<Vec<ServerView>>, ApiError> {
    authenticate(&req, &state, Access::Admin, Utc::now()).await?;
    let servers = state.servers.list().await?;
    let personal = state.servers.personal_servers().await?;
    let mut views = Vec::with_capacity(servers.len());
    for s in servers {
        let auth = personal.iter().find(|(n, _)| *n == s.name).map(|(_, a)| user_auth_view(a));
        let command = crate::stdio_servers::view(&state.servers, &s).await?;
        views.push(ServerView { user_auth: auth, command, ..view(&state, s) });
    }
    Ok(web::Json(views))
}

/// Register an upstream server.
#[utoipa::path(
    post, path = "/api/v2/servers", tag = "servers",
    request_body = CreateServerRequest,
    responses(
        (status = 201, description = "Registered; `Location` names it", body = ServerView),
        (status = 400, description = "Invalid name, URL, command, environment, description or header; headers on a direct server (`direct_server_headers`)", body = ErrorBody),
        (status = 403, description = "Not an administrator, CSRF failure, or the token lacks `mcp:admin`", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["mcp:admin"]))
)]
pub async fn create(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: JsonObject<CreateServerRequest>,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let caller = authenticate(&req, &state, Access::Admin, now).await?;
    let body = body.into_inner();
    if let Some(command) = &body.command {
        if body.url.is_some() || body.direct || body.user_auth.is_some() || !body.headers.is_empty() {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidServer,
                "a stdio server (command) takes no url, headers, direct or user_auth",
            ));
        }
        let new_tools = body.new_tools.map(Into::into).unwrap_or_default();
        let (actor, description) = (caller.actor(), body.description.as_deref());
        let record =
            crate::stdio_servers::add(&state.servers, &actor, &body.name, description, new_tools, command, now).await?;
        return created(&state, record).await;
    }
    let input = ServerInput {
        name: ServerName::parse(&body.name).map_err(tessera_tokens::ServerError::from)?,
        url: UpstreamUrl::parse(body.url.as_deref().unwrap_or_default()).map_err(tessera_tokens::ServerError::from)?,
        description: body.description.as_deref().map(Description::parse).transpose()?,
        headers: headers(&body.headers)?,
        new_tools: body.new_tools.map(Into::into).unwrap_or_default(),
    };
    let personal = match &body.user_auth {
        Some(_) if body.direct => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidServer,
                "a direct server checks tokens itself: it takes no user_auth",
            ));
        }
        Some(u) => Some(personal(u)?),
        None => None,
    };
    let (record, credentials) = if body.direct {
        let (record, c) = state.servers.add_direct(&caller.actor(), input, now).await?;
        (record, Some(ServerCredentialsView { client_id: c.client_id, client_secret: c.secret }))
    } else {
        (state.servers.add(&caller.actor(), input, now).await?, None)
    };
    match &personal {
        Some(Personal::Header(p)) => state.servers.set_personal_header(&caller.actor(), &record.name, Some(p)).await?,
        Some(Personal::OAuth(o)) => state.servers.set_personal_oauth(&caller.actor(), &record.name, o).await?,
        None => {}
    }
    // A server whose users bring their own credential is listed at the first connected call.
    let discovery =
        if body.direct || personal.is_some() { Discovery::Skipped } else { discover(&state, &record).await };
    let user_auth = match &personal {
        Some(_) => state.servers.personal_header(&record).await?.as_ref().map(user_auth_view),
        None => None,
    };
    let mut answer = view(&state, record);
    answer.user_auth = user_auth;
    answer.credentials = credentials;
    Ok(registered(answer, discovery))
}

/// The answer to a registered stdio server: its view, command, and what listing its tools gave.
async fn created(state: &ApiState, record: ServerRecord) -> Result<HttpResponse, ApiError> {
    let discovery = discover(state, &record).await;
    let command = crate::stdio_servers::view(&state.servers, &record).await?;
    let answer = ServerView { command, ..view(state, record) };
    Ok(registered(answer, discovery))
}

/// 201 with the new server's view and what asking it for its tools gave.
fn registered(mut answer: ServerView, discovery: Discovery) -> HttpResponse {
    match discovery {
        Discovery::Found { tools, .. } => answer.tools_discovered = Some(tools),
        Discovery::Failed(why) => answer.warning = Some(format!("could not list the server's tools: {why}")),
        Discovery::Skipped => {}
    }
    HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v2/servers/{}", answer.name)))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(answer)
}

/// Asks a newly registered server for its tools. Registration already happened, so a
/// failure here (even the database's) is reported in the answer, never as an error status.
async fn discover(state: &ApiState, record: &ServerRecord) -> Discovery {
    state.servers.discover(record, Utc::now()).await.unwrap_or_else(|e| {
        tracing::warn!(server = %record.name, error = %e, "could not record the tools discovered at registration");
        Discovery::Failed("they could not be recorded".to_owned())
    })
}

/// Issue a new introspection credential for a direct server; the old one keeps working for
/// `grace_seconds`.
#[utoipa::path(
    post, path = "/api/v2/servers/{name}/credentials", tag = "servers",
    params(("name" = String, Path, description = "Server name")),
    request_body = RotateCredentialsRequest,
    responses(
        (status = 201, description = "The new credential (shown once)", body = ServerCredentialsView),
        (status = 400, description = "Grace out of range", body = ErrorBody),
        (status = 403, description = "Not an administrator, CSRF failure, or the token lacks `mcp:admin`", body = ErrorBody),
        (status = 404, description = "No such direct server", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["mcp:admin"]))
)]
pub async fn rotate_credentials(
    req: HttpRequest,
    state: web::Data<ApiState>,
    name: web::Path<String>,
    body: JsonObject<RotateCredentialsRequest>,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let caller = authenticate(&req, &state, Access::Admin, now).await?;
    if body.grace_seconds > MAX_CREDENTIAL_GRACE_SECS {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidGrace,
            format!("grace_seconds must be at most {MAX_CREDENTIAL_GRACE_SECS}"),
        ));
    }
    let grace = chrono::Duration::seconds(i64::from(body.grace_seconds));
    let c = state.servers.rotate_credentials(&caller.actor(), &name, grace, now).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(ServerCredentialsView { client_id: c.client_id, client_secret: c.secret }))
}

/// One server.
#[utoipa::path(
    get, path = "/api/v2/servers/{name}", tag = "servers",
    params(("name" = String, Path, description = "Server name")),
    responses(
        (status = 200, description = "The server, with `held_tools`", body = ServerView),
        (status = 403, description = "Not an administrator, or the token lacks `mcp:admin`", body = ErrorBody),
        (status = 404, description = "No such server", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["mcp:admin"]))
)]
pub async fn get(
    req: HttpRequest,
    state: web::Data<ApiState>,
    name: web::Path<String>,
) -> Result<web::Json<ServerView>, ApiError> {
    authenticate(&req, &state, Access::Admin, Utc::now()).await?;
    let record = state.servers.get(&name).await?;
    let auth = state.servers.personal_header(&record).await?;
    let tools = state.servers.tools(&record).await?;
    let command = crate::stdio_servers::view(&state.servers, &record).await?;
    let mut answer = ServerView { user_auth: auth.as_ref().map(user_auth_view), command, ..view(&state, record) };
    answer.held_tools = Some(crate::server_pins::held(&tools));
    Ok(web::Json(answer))
}

/// Change a server's URL, description or headers.
#[utoipa::path(
    patch, path = "/api/v2/servers/{name}", tag = "servers",
    params(("name" = String, Path, description = "Server name")),
    request_body = PatchServerRequest,
    responses(
        (status = 200, description = "The changed server", body = ServerView),
        (status = 400, description = "Invalid URL, description or header; headers on a direct server (`direct_server_headers`)", body = ErrorBody),
        (status = 403, description = "Not an administrator, CSRF failure, or the token lacks `mcp:admin`", body = ErrorBody),
        (status = 404, description = "No such server", body = ErrorBody),
        (status = 409, description = "A direct server's new URL without `invalidate_tokens` (`direct_server_url_is_audience`)", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["mcp:admin"]))
)]
pub async fn patch(
    req: HttpRequest,
    state: web::Data<ApiState>,
    name: web::Path<String>,
    body: JsonObject<PatchServerRequest>,
) -> Result<web::Json<ServerView>, ApiError> {
    let now = Utc::now();
    let caller = authenticate(&req, &state, Access::Admin, now).await?;
    let body = body.into_inner();
    let patch = ServerPatch {
        url: body.url.as_deref().map(UpstreamUrl::parse).transpose().map_err(tessera_tokens::ServerError::from)?,
        description: body.description.map(|d| d.as_deref().map(Description::parse).transpose()).transpose()?,
        headers: body.headers.as_ref().map(headers).transpose()?,
        new_tools: body.new_tools.map(Into::into),
        invalidate_tokens: body.invalidate_tokens,
    };
    let patched = state.servers.patch(&caller.actor(), &name, patch, now).await?;
    let mut answer = view(&state, patched.record);
    answer.tokens_invalidated = patched.tokens_invalidated;
    Ok(web::Json(answer))
}

/// Remove a server: `/mcp/{name}` stops answering and every token loses its scopes.
#[utoipa::path(
    delete, path = "/api/v2/servers/{name}", tag = "servers",
    params(("name" = String, Path, description = "Server name")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Not an administrator, CSRF failure, or the token lacks `mcp:admin`", body = ErrorBody),
        (status = 404, description = "No such server", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["mcp:admin"]))
)]
pub async fn remove(
    req: HttpRequest,
    state: web::Data<ApiState>,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let caller = authenticate(&req, &state, Access::Admin, Utc::now()).await?;
    state.servers.remove(&caller.actor(), &name).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A server's tools (as last discovered through the gateway, and overridden) with their class.
#[utoipa::path(
    get, path = "/api/v2/servers/{name}/tools", tag = "servers",
    params(("name" = String, Path, description = "Server name")),
    responses(
        (status = 200, description = "Its tools, by name", body = [ServerToolView]),
        (status = 403, description = "Not an administrator, or the token lacks `mcp:admin`", body = ErrorBody),
        (status = 404, description = "No such server", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["mcp:admin"]))
)]
pub async fn tools(
    req: HttpRequest,
    state: web::Data<ApiState>,
    name: web::Path<String>,
) -> Result<web::Json<Vec<ServerToolView>>, ApiError> {
    authenticate(&req, &state, Access::Admin, Utc::now()).await?;
    let server = state.servers.get(&name).await?;
    let tools = state.servers.tools(&server).await?;
    Ok(web::Json(tools.into_iter().map(|t| tool_view(&server, t)).collect()))
}

/// Override tool classes (a tool need not have been discovered yet); answers the tool list.
#[utoipa::path(
    patch, path = "/api/v2/servers/{name}/tools", tag = "servers",
    params(("name" = String, Path, description = "Server name")),
    request_body = PatchToolsRequest,
    responses(
        (status = 200, description = "Its tools after the change", body = [ServerToolView]),
        (status = 400, description = "Invalid tool name or too many tools", body = ErrorBody),
        (status = 403, description = "Not an administrator, CSRF failure, or the token lacks `mcp:admin`", body = ErrorBody),
        (status = 404, description = "No such server", body = ErrorBody),
    ),
    security(("session" = []), ("bearer" = ["mcp:admin"]))
)]
pub async fn patch_tools(
    req: HttpRequest,
    state: web::Data<ApiState>,
    name: web::Path<String>,
    body: JsonObject<PatchToolsRequest>,
) -> Result<web::Json<Vec<ServerToolView>>, ApiError> {
    let caller = authenticate(&req, &state, Access::Admin, Utc::now()).await?;
    let body = body.into_inner();
    if body.tools.len() > MAX_TOOL_PATCH {
        return Err(ApiError::bad_request(
            ErrorCode::TooManyTools,
            format!("at most {MAX_TOOL_PATCH} tools per request"),
        ));
    }
    let server = state.servers.get(&name).await?;
    let parsed = body
        .tools
        .iter()
        .map(|(tool, access)| Ok((ToolName::parse(tool)?, access.map(ToolAccess::from))))
        .collect::<Result<Vec<_>, tessera_core::catalog::NameError>>()
        .map_err(tessera_tokens::ServerError::from)?;
    for (tool, access) in &parsed {
        state.servers.set_tool_access(&caller.actor(), &server.name, tool, *access).await?;
    }
    let tools = state.servers.tools(&server).await?;
    Ok(web::Json(tools.into_iter().map(|t| tool_view(&server, t)).collect()))
}

fn headers(map: &BTreeMap<String, String>) -> Result<Vec<UpstreamHeader>, ApiError> {
    map.iter()
        .map(|(name, value)| UpstreamHeader::new(name, value))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tessera_tokens::ServerError::from(e).into())
}

fn user_auth_view(a: &tessera_store::UserAuth) -> UserAuthView {
    let oauth = a.oauth.as_ref();
    UserAuthView {
        kind: a.kind().to_owned(),
        header: a.header.clone(),
        prefix: a.prefix.clone(),
        scope: oauth.and_then(|o| o.scope.clone()),
        client_id: oauth.filter(|o| o.preregistered).and_then(|o| o.client_id.clone()),
        client_secret: None,
        issuer: oauth
            .and_then(|o| o.authorization_server.as_ref())
            .and_then(|s| s.get("issuer"))
            .and_then(|i| i.as_str())
            .map(str::to_owned),
    }
}

fn view(state: &ApiState, s: ServerRecord) -> ServerView {
    let base = state.config.audience.first().map_or("", |a| a.trim_end_matches('/'));
    ServerView {
        resource: if s.direct { s.url.clone() } else { format!("{base}/{}", s.name) },
        direct: s.direct,
        new_tools: s.new_tools.into(),
        held_tools: None,
        credentials: None,
        tools_discovered: None,
        warning: None,
        tokens_invalidated: None,
        user_auth: None,
        command: None,
        scopes: vec![format!("read:{}", s.name), format!("write:{}", s.name)],
        name: s.name,
        url: s.url,
        description: s.description,
        headers: s.header_names,
        created_at: s.created_at,
        updated_at: s.updated_at,
    }
}

fn tool_view(server: &ServerRecord, t: ToolView) -> ServerToolView {
    ServerToolView {
        scope: format!("call:{}/{}", server.name, t.record.name),
        access_override: t.record.access.as_deref().and_then(|a| ToolAccess::parse(a).ok()).map(AccessClass::from),
        access: t.access.into(),
        name: t.record.name,
        description: t.record.description,
        read_only_hint: t.record.read_only_hint,
        discovered_at: t.record.discovered_at,
        pinned: t.record.pinned_sha256.is_some(),
        held: t.record.hold.as_deref().map(|h| {
            tessera_core::pins::HoldReason::parse(h).unwrap_or(tessera_core::pins::HoldReason::Changed).into()
        }),
    }
}
