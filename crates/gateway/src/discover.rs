//! Tools known at registration: Tessera connects to a new upstream as an MCP client (rmcp's
//! Streamable HTTP client), lists every page of its tools with the server's own headers, and
//! closes the session. What it lists is pinned (issue #26); the gateway still learns changes
//! from later listings.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hyper::http::{HeaderName, HeaderValue};
use rmcp::ServiceExt;
use rmcp::model::{ClientConfig, Implementation};
use rmcp::service::ClientInitializeError;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use tessera_core::catalog::ToolName;
use tessera_core::upstream::UpstreamHeader;
use tessera_store::{DiscoveredTool, ServedDefinition};
use tessera_tokens::{ToolListing, ToolSource};

use crate::upstream::innermost;

/// Largest `tools/list` answer read at registration (as a forwarded body is bounded).
const MAX_LISTING_BYTES: usize = 4 * 1024 * 1024;

/// Lists an HTTP upstream's tools, giving up after `timeout` in all.
#[derive(Debug, Clone)]
pub struct HttpToolSource {
    timeout: Duration,
    /// Set where stdio servers can be started (their tools are listed by a process of their own).
    stdio: Option<crate::StdioConfig>,
}

impl HttpToolSource {
    /// A source that waits at most `timeout` for the whole exchange.
    pub fn new(timeout: Duration) -> Arc<Self> {
        // rmcp's client builds its reqwest client on rustls without a built-in provider: the
        // process-wide one is ring, as for every other TLS client of Tessera. Installing
        // twice is refused harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Arc::new(Self { timeout, stdio: None })
    }

    /// A source that also lists stdio servers' tools, starting each once with `stdio`.
    pub fn with_stdio(timeout: Duration, stdio: crate::StdioConfig) -> Arc<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Arc::new(Self { timeout, stdio: Some(stdio) })
    }
}

impl ToolSource for HttpToolSource {
    fn list_tools<'a>(&'a self, url: &'a str, headers: &'a [UpstreamHeader]) -> ToolListing<'a> {
        Box::pin(async move {
            match tokio::time::timeout(self.timeout, list(url, headers)).await {
                Ok(listed) => listed,
                Err(_) => Err(format!("no answer within {} s", self.timeout.as_secs())),
            }
        })
    }

    fn list_stdio_tools<'a>(&'a self, name: &'a str, command: &'a tessera_tokens::StdioCommand) -> ToolListing<'a> {
        Box::pin(async move {
            let Some(config) = &self.stdio else { return Err("stdio servers cannot be started here".to_owned()) };
            let tools = crate::StdioPool::list_once(config, name, command).await?;
            Ok(discovered(tools))
        })
    }
}

async fn list(url: &str, headers: &[UpstreamHeader]) -> Result<Vec<DiscoveredTool>, String> {
    let mut custom = HashMap::new();
    for h in headers {
        let name = HeaderName::try_from(h.name()).map_err(|_| format!("header {} cannot be sent", h.name()))?;
        let mut value =
            HeaderValue::try_from(h.expose_value()).map_err(|_| format!("header {} cannot be sent", h.name()))?;
        value.set_sensitive(true);
        custom.insert(name, value);
    }
    let config = StreamableHttpClientTransportConfig::with_uri(url)
        .custom_headers(custom)
        .max_json_response_size(MAX_LISTING_BYTES);
    let info = ClientConfig::new(Default::default(), Implementation::new("tessera", env!("CARGO_PKG_VERSION")));
    let client = info
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .map_err(|e| format!("the MCP handshake failed: {}", handshake_failure(&e)))?;
    let listed = client.list_all_tools().await.map_err(|e| format!("tools/list failed: {}", innermost(&e)));
    // Closing ends the upstream session (DELETE); a failure there changes nothing we learnt.
    let _ = client.cancel().await;
    Ok(discovered(listed?))
}

/// The tools as recorded and pinned.
fn discovered(tools: Vec<rmcp::model::Tool>) -> Vec<DiscoveredTool> {
    tools
        .into_iter()
        .filter(|t| ToolName::parse(&t.name).is_ok())
        .map(|t| {
            // Pinned as served: the tool written back as JSON, as a listing through the
            // gateway reads it (a field rmcp cannot read is not pinned; it is not shown either).
            let definition = serde_json::to_value(&t).ok().map(|v| ServedDefinition::of(&v));
            DiscoveredTool {
                name: t.name.into_owned(),
                description: t.description.map(|d| d.into_owned()),
                read_only_hint: t.annotations.and_then(|a| a.read_only_hint),
                definition,
            }
        })
        .collect()
}

/// The cause worth showing: rmcp's transport error names its worker type, and keeps the
/// reason (refused, a status) in a field that is not its `source`.
fn handshake_failure(e: &ClientInitializeError) -> String {
    match e {
        ClientInitializeError::TransportError { error, .. } => innermost(error),
        other => other.to_string(),
    }
}
