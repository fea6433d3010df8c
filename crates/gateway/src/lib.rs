//! Tessera's gateway: each registered upstream MCP server `S` served at `/mcp/S` (Streamable
//! HTTP), every request checked by the shared Validator for the audience `{mcp}/S`, rate
//! limited and counted like the built-in `/mcp`, and authorized per server and per tool
//! (`read:S`, `write:S`, `call:S/TOOL`) before it is forwarded with the server's own
//! configured headers, never the client's `Authorization` or `Cookie`.
//!
//! Mount it with [`configure`] *before* `tessera_mcp::configure`: both live under `/mcp`.

#![warn(missing_docs)]

mod filter;
mod list;
mod proxy;
mod rpc;
mod sessions;
mod upstream;

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpResponse, guard, web};
use serde_json::json;
use tessera_auth::{Metering, Validator};
use tessera_core::catalog::{RESERVED_SERVER_NAMES, ServerName};
use tessera_core::upstream::ToolAccess;
use tessera_tokens::{ServerError, ServerService};

pub use filter::{Classes, Refusal, authorize, filter_tools};

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
    validator: Arc<Validator>,
    metering: Arc<Metering>,
    config: GatewayConfig,
    /// The fallback when a worker's own client cannot be built (it was built once here).
    client: upstream::UpstreamClient,
    sessions: sessions::Sessions,
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
        Ok(Self { inner: Arc::new(Inner { servers, validator, metering, config, client, sessions }) })
    }
}

impl Inner {
    /// The calling worker thread's upstream client.
    fn client(&self) -> upstream::UpstreamClient {
        upstream::UpstreamClient::for_this_thread(&self.client)
    }
}

/// Mounts `/mcp/{server}` and `/.well-known/oauth-protected-resource/mcp/{server}`.
pub fn configure(state: GatewayState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        // Built-in paths under /mcp (`/mcp/sse`, ...) are reserved names: left to the built-in.
        let is_server = guard::fn_guard(|ctx| {
            let path = ctx.head().uri.path();
            let name = path.trim_start_matches("/mcp/").trim_end_matches('/');
            !RESERVED_SERVER_NAMES.contains(&name)
        });
        cfg.app_data(web::Data::new(state))
            .service(
                web::resource(["/mcp/{server}", "/mcp/{server}/"])
                    .guard(is_server)
                    .route(web::post().to(proxy::handle))
                    .route(web::get().to(proxy::handle))
                    .route(web::delete().to(proxy::handle))
                    .default_service(web::to(|| async {
                        HttpResponse::MethodNotAllowed().insert_header((header::ALLOW, "POST, GET, DELETE")).json(
                            json!({
                                "error": tessera_core::ErrorCode::MethodNotAllowed, "message": "this path answers POST, GET and DELETE"
                            }),
                        )
                    })),
            )
            .service(
                web::resource("/.well-known/oauth-protected-resource/mcp/{server}")
                    .route(web::get().to(protected_resource)),
            );
    }
}

/// RFC 9728 metadata of one gateway server, with its own scopes: `read:S`, `write:S`,
/// `execute:mcp` and `call:S/TOOL` for each of its known, visible tools.
async fn protected_resource(state: web::Data<GatewayState>, name: web::Path<String>) -> HttpResponse {
    let Ok(server) = ServerName::parse(&name) else { return not_found() };
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
