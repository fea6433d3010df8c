//! Tessera's gateway: each registered upstream MCP server `S` served at `/mcp/S` (Streamable
//! HTTP), every request checked by the shared Validator for the audience `{mcp}/S`, rate
//! limited and counted like the built-in `/mcp`, and authorized per server and per tool
//! (`read:S`, `write:S`, `call:S/TOOL`) before it is forwarded with the server's own
//! configured headers, never the client's `Authorization` or `Cookie`.
//!
//! Mount it with [`configure`] *before* `tessera_mcp::configure`: both live under `/mcp`.

#![warn(missing_docs)]

mod connect;
mod discover;
mod filter;
mod list;
mod proxy;
mod rpc;
mod sessions;
mod stdio;
mod tasks;
mod upstream;

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::Method;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, guard, web};
use serde_json::json;
use tessera_auth::{Metering, Validator};
use tessera_core::catalog::{RESERVED_SERVER_NAMES, ServerName};
use tessera_core::upstream::ToolAccess;
use tessera_tokens::{ServerError, ServerService};

pub use connect::connect_url;
pub use discover::HttpToolSource;
pub use filter::{Classes, Refusal, authorize, filter_tools};
pub use stdio::{StdioBridge, StdioConfig, StdioLink, StdioPool, Unavailable};

/// Largest request body forwarded upstream.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What the gateway needs to know about its deployment.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Public base URL (no trailing slash); `{public}/mcp/S` is server `S`'s resource.
    pub public_url: String,
    /// Browser origins allowed besides the public URL's own.
    pub allowed_origins: Vec<String>,
    /// How long a non-streaming upstream answer may take (`TESSERA_UPSTREAM_TIMEOUT`).
    pub upstream_timeout: Duration,
    /// Proxies whose `X-Forwarded-For` is believed (usage's `last_used_from`).
    pub trusted_proxies: tessera_auth::TrustedProxies,
    /// Whether Tessera's OAuth authorization server is on, so each server's RFC 9728
    /// metadata names it in `authorization_servers`.
    pub authorization_server: bool,
}

impl GatewayConfig {
    /// Settings for a server reachable at `public_url`, with the default 60 s timeout.
    pub fn new(public_url: &str) -> Self {
        Self {
            public_url: public_url.trim_end_matches('/').to_owned(),
            allowed_origins: Vec::new(),
            upstream_timeout: Duration::from_secs(60),
            trusted_proxies: tessera_auth::TrustedProxies::default(),
            authorization_server: true,
        }
    }

    /// Server `name`'s resource URL (its tokens' `aud`).
    pub fn resource(&self, name: &str) -> String {
        format!("{}/mcp/{name}", self.public_url)
    }

    /// Server `name`'s RFC 9728 metadata URL.
    pub fn metadata_url(&self, name: &str) -> String {
        format!("{}/.well-known/oauth-protected-resource/mcp/{name}", self.public_url)
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/');
        let own = {
            let (scheme, rest) = self.public_url.split_once("://").unwrap_or(("http", &self.public_url));
            format!("{scheme}://{}", rest.split('/').next().unwrap_or(rest))
        };
        origin.eq_ignore_ascii_case(&own)
            || self.allowed_origins.iter().any(|o| o == "*" || o.trim_end_matches('/').eq_ignore_ascii_case(origin))
    }
}

/// The gateway's shared state; cheap to clone.
#[derive(Debug, Clone)]
pub struct GatewayState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    servers: ServerService,
    /// The one bearer guard (over the process's Validator and metering).
    guard: tessera_auth::Guard,
    config: GatewayConfig,
    /// The fallback when a worker's own client cannot be built (it was built once here).
    client: upstream::UpstreamClient,
    sessions: sessions::Sessions,
    /// The stdio servers' bridge, when this process runs them.
    stdio: Option<StdioLink>,
}

impl GatewayState {
    /// The gateway over `servers`, checking tokens with `validator` and counting in `metering`.
    pub fn new(
        servers: ServerService,
        validator: Arc<Validator>,
        metering: Arc<Metering>,
        config: GatewayConfig,
    ) -> Result<Self, rustls::Error> {
        let client = upstream::UpstreamClient::new()?;
        let sessions = sessions::Sessions::default();
        let guard = tessera_auth::Guard::new(validator, metering);
        Ok(Self { inner: Arc::new(Inner { servers, guard, config, client, sessions, stdio: None }) })
    }

    /// The same gateway, serving stdio servers through `link` (before it is shared).
    #[must_use]
    pub fn with_stdio(mut self, link: StdioLink) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.stdio = Some(link);
        }
        self
    }
}

impl Inner {
    /// The calling worker thread's upstream client.
    fn client(&self) -> upstream::UpstreamClient {
        upstream::UpstreamClient::for_this_thread(&self.client)
    }
}

/// Mounts `/mcp/{server}` and `/.well-known/oauth-protected-resource/mcp/{server}`.
///
/// Both are static-prefix scopes with a guard that reads the name, not `{server}` patterns:
/// actix matches a pattern with a regex, and the first pattern in the router is tried for
/// every request, built-in `/mcp` calls included (~8k instructions of each, callgrind).
pub fn configure(state: GatewayState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(state))
            .service(
                web::scope("/mcp")
                    .guard(guard::fn_guard(|ctx| server_segment(ctx.head().uri.path()).is_some()))
                    .default_service(web::to(proxy_route)),
            )
            .service(
                web::scope(METADATA_PREFIX)
                    .guard(guard::fn_guard(|ctx| metadata_segment(ctx.head().uri.path()).is_some()))
                    .default_service(web::to(metadata_route)),
            );
    }
}

const METADATA_PREFIX: &str = "/.well-known/oauth-protected-resource/mcp";

/// The server named by a gateway path, `/mcp/NAME` or `/mcp/NAME/`; the built-in paths
/// under `/mcp` (`/mcp/sse`, ...) are reserved names and left to the built-in server.
fn server_segment(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/mcp/")?;
    let name = rest.strip_suffix('/').unwrap_or(rest);
    (!name.is_empty() && !name.contains('/') && !RESERVED_SERVER_NAMES.contains(&name)).then_some(name)
}

/// The server named by a metadata path, `/.well-known/oauth-protected-resource/mcp/NAME`.
fn metadata_segment(path: &str) -> Option<&str> {
    let name = path.strip_prefix(METADATA_PREFIX)?.strip_prefix('/')?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

async fn proxy_route(req: HttpRequest, payload: web::Payload, state: web::Data<GatewayState>) -> HttpResponse {
    if !matches!(*req.method(), Method::POST | Method::GET | Method::DELETE) {
        return method_not_allowed("POST, GET, DELETE");
    }
    let Some(name) = server_segment(req.path()).map(str::to_owned) else { return not_found() };
    proxy::handle(req, payload, name, state).await
}

async fn metadata_route(req: HttpRequest, state: web::Data<GatewayState>) -> HttpResponse {
    if req.method() != Method::GET {
        return method_not_allowed("GET");
    }
    let Some(name) = metadata_segment(req.path()) else { return not_found() };
    protected_resource(&state, name).await
}

fn method_not_allowed(allow: &'static str) -> HttpResponse {
    HttpResponse::MethodNotAllowed().insert_header((header::ALLOW, allow)).json(json!({
        "error": tessera_core::ErrorCode::MethodNotAllowed,
        "message": format!("this path answers {allow}"),
    }))
}

/// RFC 9728 metadata of one gateway server, with its own scopes: `read:S`, `write:S`,
/// `execute:mcp` and `call:S/TOOL` for each of its known, visible tools.
async fn protected_resource(state: &GatewayState, name: &str) -> HttpResponse {
    let Ok(server) = ServerName::parse(name) else { return not_found() };
    // The registry cache the proxy reads: clients fetch this document before every
    // authorization, and it must agree with what the proxy enforces.
    let entry = match state.inner.servers.gateway_server(server.as_str()).await {
        Ok(entry) if entry.record.direct => return not_found(),
        Ok(entry) => entry,
        Err(ServerError::NotFound) => return not_found(),
        Err(e) => return unavailable(&e),
    };
    let (record, tools) = (&entry.record, &entry.tools);
    let config = &state.inner.config;
    let s = &record.name;
    let mut scopes = vec![format!("read:{s}"), format!("write:{s}"), filter::EXECUTE.to_owned()];
    scopes
        .extend(tools.iter().filter(|t| t.access != ToolAccess::Hidden).map(|t| format!("call:{s}/{}", t.record.name)));
    let mut doc = json!({
        "resource": config.resource(s),
        "scopes_supported": scopes,
        "bearer_methods_supported": ["header"],
        "resource_name": record.description.clone().unwrap_or_else(|| format!("{s} (through Tessera)")),
    });
    // With the authorization server off, naming one would start flows that go nowhere.
    if config.authorization_server {
        doc["authorization_servers"] = json!([config.public_url]);
    }
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "public, max-age=60")).json(doc)
}

pub(crate) fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(json!({"error": tessera_core::ErrorCode::NotFound, "message": "no such MCP server"}))
}

pub(crate) fn unavailable(e: &ServerError) -> HttpResponse {
    tracing::warn!(error = %e, "server registry unavailable");
    HttpResponse::ServiceUnavailable()
        .insert_header((header::RETRY_AFTER, "5"))
        .json(json!({"error": tessera_core::ErrorCode::TemporarilyUnavailable, "message": "the server registry cannot be read right now"}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_path_names_one_server_and_never_a_built_in_path() {
        assert_eq!(server_segment("/mcp/notes"), Some("notes"));
        assert_eq!(server_segment("/mcp/notes/"), Some("notes"));
        for path in ["/mcp", "/mcp/", "/mcp/notes/x", "/mcp/notes//", "/mcpnotes", "/api/mcp/notes", "/mcp/sse"] {
            assert_eq!(server_segment(path), None, "{path}");
        }
        assert_eq!(metadata_segment("/.well-known/oauth-protected-resource/mcp/notes"), Some("notes"));
        for path in [
            "/.well-known/oauth-protected-resource/mcp",
            "/.well-known/oauth-protected-resource/mcp/",
            "/.well-known/oauth-protected-resource/mcp/notes/",
            "/.well-known/oauth-protected-resource/mcpnotes",
        ] {
            assert_eq!(metadata_segment(path), None, "{path}");
        }
    }
}
