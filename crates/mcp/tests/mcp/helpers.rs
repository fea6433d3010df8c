//! `spawn_app()`: a fresh database and the application as `tessera serve` wires it
//! (testkit's `spawn_app`) on 127.0.0.1:0; these helpers drive its `/mcp`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use tessera_auth::Validator;
use tessera_core::KeyRing;
use tessera_mcp::{McpConfig, McpState};
use tessera_store::{Actor, Store};
use tessera_testkit::{TokenSpec, Tweaks, fresh_db, spawn_app_on, token_service};
use tessera_tokens::TokenService;
use uuid::Uuid;

/// Every test instance claims this public URL (Host checks accept loopback addresses).
pub const PUBLIC: &str = "http://tessera.test";
/// The audience of every valid token.
pub const AUD: &str = "http://tessera.test/mcp";

/// A running server and what the test needs to drive it.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub store: Store,
    pub state: McpState,
    pub ring: Arc<KeyRing>,
    pub handle: ServerHandle,
    pub validator: Arc<Validator>,
}

/// A token and its owner.
pub struct TestToken {
    pub secret: String,
    pub id: Uuid,
    pub user_id: Uuid,
}

impl TestApp {
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base)
    }
}

pub async fn spawn_app() -> TestApp {
    let db = fresh_db().await;
    spawn_instance(db.store, |_| {}).await
}

/// A server over `store`; `tweak` may change the MCP configuration (applied to the
/// defaults, as the face's own constructor would have them, and the flush interval is
/// handed to the composition root, which runs the usage flusher).
pub async fn spawn_instance(store: Store, tweak: impl FnOnce(&mut McpConfig)) -> TestApp {
    let mut mcp = McpConfig::new(PUBLIC);
    tweak(&mut mcp);
    let flush_ms = mcp.usage_flush_interval.as_millis().to_string();
    let tweaks = Tweaks { mcp: Some(Box::new(move |c: &mut McpConfig| *c = mcp)), ..Tweaks::default() };
    let app = spawn_app_on(store, &["--usage-flush-interval-ms", &flush_ms, "--workers", "1"], tweaks).await;
    TestApp {
        base: app.base.clone(),
        store: app.store.clone(),
        state: app.mcp.clone().expect("the MCP face is served"),
        ring: app.state.validator.key_ring(),
        handle: app.handle.clone(),
        validator: Arc::clone(&app.state.validator),
    }
}

pub async fn new_user(store: &Store) -> Uuid {
    store.create_user(&format!("{}@example.com", Uuid::now_v7()), None, false, &Actor::cli()).await.unwrap().id
}

pub struct Issue<'a> {
    pub scopes: &'a str,
    pub user_id: Option<Uuid>,
    pub rate_limit_per_hour: Option<i32>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl<'a> Issue<'a> {
    pub fn scopes(scopes: &'a str) -> Self {
        Self {
            scopes,
            user_id: None,
            rate_limit_per_hour: None,
            issued_at: Utc::now(),
            expires_at: Utc::now() + chrono::Duration::days(1),
        }
    }
}

pub async fn issue(app: &TestApp, scopes: &str) -> TestToken {
    issue_with(app, Issue::scopes(scopes)).await
}

pub async fn issue_with(app: &TestApp, spec: Issue<'_>) -> TestToken {
    let user_id = match spec.user_id {
        Some(id) => id,
        None => new_user(&app.store).await,
    };
    let row = TokenSpec {
        issued_at: spec.issued_at,
        expires_at: spec.expires_at,
        rate_limit_per_hour: spec.rate_limit_per_hour,
        ..TokenSpec::new(user_id, spec.scopes, PUBLIC, AUD)
    };
    let (secret, record) = row.insert(&app.store, &app.ring).await;
    TestToken { secret, id: record.id, user_id }
}

/// The lifecycle service as the CLI wires it, for revoking, rotating and narrowing in tests.
pub fn tokens(app: &TestApp) -> TokenService {
    token_service(&app.store, app.ring.as_ref().clone(), PUBLIC, AUD)
}

/// A JWT with this header and claims, signed with nothing (for `alg: none`).
pub fn unsigned_jwt(header: Value, claims: Value) -> String {
    let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap());
    let c = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    format!("{h}.{c}.")
}

/// The claims part of a token.
pub fn claims_of(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

pub fn initialize_body() -> Value {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}
    })
}

/// A raw JSON-RPC POST to `/mcp` with the usual MCP headers and optional bearer token.
pub async fn post_mcp(app: &TestApp, token: Option<&str>, body: &Value) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(app.mcp_url())
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .header("MCP-Protocol-Version", "2025-06-18")
        .json(body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.unwrap()
}

/// `tools/call` over raw HTTP.
pub async fn call_raw(app: &TestApp, token: &str, tool: &str, args: Value) -> reqwest::Response {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": tool, "arguments": args}});
    post_mcp(app, Some(token), &body).await
}

/// rmcp's own client, connected with `token`.
pub async fn client(app: &TestApp, token: &str) -> RunningService<RoleClient, ()> {
    let config = StreamableHttpClientTransportConfig::with_uri(app.mcp_url()).auth_header(token.to_owned());
    ().serve(StreamableHttpClientTransport::from_config(config)).await.unwrap()
}

/// Names of the tools `token` sees.
pub async fn tool_names(app: &TestApp, token: &str) -> Vec<String> {
    let client = client(app, token).await;
    let tools = client.list_all_tools().await.unwrap();
    let _ = client.cancel().await;
    let mut names: Vec<String> = tools.into_iter().map(|t| t.name.to_string()).collect();
    names.sort();
    names
}

/// Calls a tool through rmcp's client.
pub async fn call(app: &TestApp, token: &str, tool: &str, args: Value) -> CallToolResult {
    let client = client(app, token).await;
    let mut params = CallToolRequestParams::new(tool.to_owned());
    if let Value::Object(map) = args {
        params = params.with_arguments(map);
    }
    let result = client.call_tool(params).await.unwrap();
    let _ = client.cancel().await;
    result
}

/// Polls `check` every 10 ms until it holds or `within` passes; returns the time it took.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < within {
        if check().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// Waits until the validator's change-feed listener caches rows (so eviction is what is tested).
pub async fn wait_for_listener(app: &TestApp, token: &str) {
    let ok = eventually(Duration::from_secs(5), || async {
        let res = post_mcp(app, Some(token), &initialize_body()).await;
        assert_eq!(res.status(), 200);
        app.validator.cache_stats().0 > 0
    })
    .await;
    assert!(ok.is_some(), "the validator's listener never came up");
}

/// The WWW-Authenticate header of a response.
pub fn challenge(res: &reqwest::Response) -> String {
    res.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}
