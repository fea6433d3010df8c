//! Tessera's MCP face: Streamable HTTP at `/mcp` through rmcp, with every request
//! (`initialize` included) authenticated by the shared [`Validator`] before rmcp sees it.
//!
//! Mount it with [`configure`]; call [`McpState::shutdown`] after the server stopped so the
//! last usage counts reach the database.
//!
//! Request flow (`middleware.rs`): Origin guard → bearer header → Validator (signature,
//! row, effective scopes) → JSON-RPC peek (method, tool) → endpoint scopes → rate limit
//! (the process's [`Metering`], shared with the API) → the tool's scope → rmcp (stateless,
//! JSON responses) → usage count and metrics.

#![warn(missing_docs)]

mod compat;
mod error;
mod metadata;
mod metrics;
mod middleware;
mod scan;
mod service;
mod tools;

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use tessera_auth::{Guard, Metering, UsageRecorder, Validator};
use tessera_core::ScopeSet;
use tessera_store::Store;

pub use error::McpDenial;
pub use metrics::Metrics;
pub use middleware::{KNOWN_METHODS, repeated_mcp_header};
pub use service::{Caller, TesseraMcp, tool_scope};

/// How the MCP face behaves.
#[derive(Debug, Clone)]
pub struct McpConfig {
    /// The public base URL, without a trailing slash (the tokens' issuer).
    pub public_url: String,
    /// Browser origins allowed to call `/mcp` (the public URL's origin always is).
    pub allowed_origins: Vec<String>,
    /// Scopes every request to `/mcp` needs (`TESSERA_MCP_REQUIRED_SCOPES`).
    pub required_scopes: ScopeSet,
    /// How often usage counters are written.
    pub usage_flush_interval: Duration,
    /// Proxies whose `X-Forwarded-For` names the client (`TESSERA_TRUSTED_PROXIES`).
    pub trusted_proxies: tessera_auth::TrustedProxies,
    /// Whether Tessera's own OAuth authorization server runs (`TESSERA_OAUTH`), so the
    /// resource metadata names it in `authorization_servers`.
    pub authorization_server: bool,
}

impl McpConfig {
    /// Defaults for `public_url`: required scope `mcp:access`, no extra origins, 1 s flushes.
    pub fn new(public_url: &str) -> Self {
        Self {
            public_url: public_url.trim_end_matches('/').to_owned(),
            allowed_origins: Vec::new(),
            required_scopes: ScopeSet::parse_any(tessera_core::scope::ACCESS).unwrap_or_default(),
            usage_flush_interval: Duration::from_secs(1),
            trusted_proxies: tessera_auth::TrustedProxies::default(),
            authorization_server: true,
        }
    }

    /// The resource tokens must be bound to: `<public url>/mcp`.
    pub fn resource(&self) -> String {
        format!("{}/mcp", self.public_url)
    }

    /// The RFC 9728 metadata URL named in every 401.
    pub fn resource_metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource/mcp", self.public_url)
    }

    /// `Host` values rmcp accepts: the public URL's host (any port) and loopback names.
    fn allowed_hosts(&self) -> Vec<String> {
        let mut hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
        if let Some(host) = host_of(&self.public_url)
            && !hosts.contains(&host)
        {
            hosts.push(host);
        }
        hosts
    }

    /// Whether a browser `Origin` may call the endpoint.
    fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/');
        origin.eq_ignore_ascii_case(&origin_of(&self.public_url))
            || self.allowed_origins.iter().any(|o| o == "*" || o.trim_end_matches('/').eq_ignore_ascii_case(origin))
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    format!("{scheme}://{authority}")
}

/// The host (no port, no brackets) of a URL.
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let host = if let Some(stripped) = authority.strip_prefix('[') {
        stripped.split(']').next()?.to_owned()
    } else {
        authority.split(':').next()?.to_owned()
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// Everything the MCP face shares across workers; cheap to clone.
#[derive(Debug, Clone)]
pub struct McpState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    /// The one bearer guard (over the process's Validator and metering).
    guard: Guard,
    config: McpConfig,
    metering: Arc<Metering>,
    metrics: Metrics,
    service: TesseraMcp,
}

impl McpState {
    /// Builds the state with its own [`Metering`]; it spawns nothing: whoever owns the state
    /// starts [`McpState::spawn_usage_flusher`] and keeps its handle.
    pub fn new(store: Store, validator: Arc<Validator>, config: McpConfig) -> Self {
        Self::with_metering(store, validator, config, Arc::new(Metering::default()))
    }

    /// Starts the periodic usage flush of this state's [`Metering`] (embedding and tests; the
    /// `tessera` binary flushes the process's shared metering itself).
    pub fn spawn_usage_flusher(&self) -> tokio::task::JoinHandle<()> {
        self.inner.metering.usage.spawn_flusher(self.inner.store.clone(), self.inner.config.usage_flush_interval)
    }

    /// Builds the state around a [`Metering`] shared with other faces; whoever made it runs
    /// its usage flusher.
    pub fn with_metering(store: Store, validator: Arc<Validator>, config: McpConfig, metering: Arc<Metering>) -> Self {
        let service = TesseraMcp::new(store.clone());
        let guard = Guard::new(validator, Arc::clone(&metering));
        Self { inner: Arc::new(Inner { store, guard, config, metering, metrics: Metrics::default(), service }) }
    }

    /// The configuration.
    pub fn config(&self) -> &McpConfig {
        &self.inner.config
    }

    /// The metrics (tests and diagnostics).
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The usage accumulator (tests and diagnostics).
    pub fn usage(&self) -> &UsageRecorder {
        &self.inner.metering.usage
    }

    /// Writes every pending usage count now.
    pub async fn flush_usage(&self) -> Result<usize, tessera_store::StoreError> {
        self.inner.metering.usage.flush(&self.inner.store).await
    }

    /// Call after the HTTP server stopped: flushes the last usage counts.
    pub async fn shutdown(&self) {
        match self.flush_usage().await {
            Ok(rows) => tracing::info!(rows, "flushed usage at shutdown"),
            Err(e) => tracing::error!(error = %e, "could not flush usage at shutdown"),
        }
    }
}

/// Mounts `/mcp`, `/.well-known/oauth-protected-resource[/mcp]`, `/.well-known/jwks.json`
/// and `/metrics` on an actix app.
///
/// `/mcp/initialize` is a compatibility alias of `/mcp` for clients of the token guide: the
/// same rmcp service behind the same guard, answering every MCP message, not only
/// `initialize`. `/mcp/sse` answers 405 naming `/mcp` (see `compat.rs`).
pub fn configure(state: McpState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        let guard = || actix_web::middleware::from_fn(middleware::authenticate);
        // The alias first: the `/mcp` scope would otherwise claim `/mcp/initialize` as its own.
        let alias = service::streamable_http(state.clone(), "/mcp/initialize");
        let mcp =
            service::streamable_http(state.clone(), "/mcp").route("/sse", web::route().to(compat::sse_not_supported));
        // Any other method on these documents is a 405 naming GET (a bare `.route` would 404).
        let get_only = || web::to(|| async { error::method_not_allowed("GET") });
        cfg.app_data(web::Data::new(state.clone()))
            .service(
                web::resource("/.well-known/oauth-protected-resource")
                    .route(web::get().to(metadata::protected_resource))
                    .default_service(get_only()),
            )
            .service(
                web::resource("/.well-known/oauth-protected-resource/mcp")
                    .route(web::get().to(metadata::protected_resource))
                    .default_service(get_only()),
            )
            .service(
                web::resource("/.well-known/jwks.json")
                    .route(web::get().to(metadata::jwks))
                    .default_service(get_only()),
            )
            .service(web::resource("/metrics").route(web::get().to(metadata::metrics)).default_service(get_only()))
            .service(alias.wrap(guard()))
            .service(mcp.wrap(guard()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_origins_come_from_the_public_url() {
        let c = McpConfig::new("https://mcp.example.com:8443/");
        assert_eq!(c.resource(), "https://mcp.example.com:8443/mcp");
        assert!(c.allowed_hosts().contains(&"mcp.example.com".to_owned()));
        assert!(c.origin_allowed("https://mcp.example.com:8443"));
        assert!(!c.origin_allowed("https://evil.example"));
        assert_eq!(host_of("http://[::1]:8080"), Some("::1".to_owned()));
    }
}
