//! The gateway at `/mcp/{server}` over real HTTP, in front of a real MCP server: this same
//! process's built-in `/mcp` (rmcp), which checks the credential the gateway sends it.

use std::net::TcpListener;

use clap::Parser;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera::cli::Cli;
use tessera::server::{AppState, Application};
use tessera_store::{Actor, Store};
use tessera_testkit::{TokenSpec, fresh_db};

pub(crate) struct Gateway {
    pub(crate) base: String,
    pub(crate) store: Store,
    pub(crate) state: AppState,
    pub(crate) client: reqwest::Client,
    /// The owner of the upstream's own credential.
    upstream_owner: uuid::Uuid,
}

const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// Tessera with server `up` registered: its upstream is the built-in `/mcp`, reached with a
/// token of another user (so a test can tell whose credential arrived).
pub(crate) async fn spawn() -> Gateway {
    let db = fresh_db().await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let settings = Cli::parse_from(["tessera", "--jwt-secret", SECRET, "--public-url", &base, "serve"]).settings;
    let state = AppState::for_store(db.store.clone(), settings).await.unwrap();
    let app = Application::build(state.clone(), listener).unwrap();
    tokio::spawn(app.run());
    let owner = db.store.create_user("upstream@example.com", None, false, &Actor::cli()).await.unwrap();
    let (upstream_token, _) =
        TokenSpec::new(owner.id, "read:tasks write:tasks execute:mcp", &base, &format!("{base}/mcp"))
            .insert(&db.store, &state.validator.key_ring())
            .await;
    let gw = Gateway { base, store: db.store, state, client: reqwest::Client::new(), upstream_owner: owner.id };
    gw.register("up", &format!("{}/mcp", gw.base), &[("Authorization", &format!("Bearer {upstream_token}"))]).await;
    gw
}

impl Gateway {
    pub(crate) async fn register(&self, name: &str, url: &str, headers: &[(&str, &str)]) {
        use tessera_core::catalog::ServerName;
        use tessera_core::upstream::{UpstreamHeader, UpstreamUrl};
        let input = tessera_tokens::ServerInput {
            name: ServerName::parse(name).unwrap(),
            url: UpstreamUrl::parse(url).unwrap(),
            description: None,
            headers: headers.iter().map(|(n, v)| UpstreamHeader::new(n, v).unwrap()).collect(),
            new_tools: Default::default(),
        };
        self.state.servers.add(&Actor::cli(), input, chrono::Utc::now()).await.unwrap();
    }

    /// A client's token with `scopes`, bound to `/mcp` and `/mcp/up` (as minting does).
    pub(crate) async fn token(&self, scopes: &str) -> String {
        self.token_and_id(scopes).await.0
    }

    pub(crate) async fn token_and_id(&self, scopes: &str) -> (String, uuid::Uuid) {
        let email = format!("{}@example.com", uuid::Uuid::now_v7());
        let user = self.store.create_user(&email, None, false, &Actor::cli()).await.unwrap();
        let spec = TokenSpec {
            audience: vec![
                format!("{}/mcp", self.base),
                format!("{}/mcp/up", self.base),
                format!("{}/mcp/down", self.base),
                format!("{}/mcp/rec", self.base),
                format!("{}/mcp/mine", self.base),
            ],
            ..TokenSpec::new(user.id, scopes, &self.base, &format!("{}/mcp", self.base))
        };
        let (secret, record) = spec.insert(&self.store, &self.state.validator.key_ring()).await;
        (secret, record.id)
    }

    pub(crate) async fn rpc(&self, server: &str, token: &str, body: Value) -> reqwest::Response {
        crate::support::mcp_post(&self.client, &format!("{}/mcp/{server}", self.base), token, &body).await
    }

    async fn tool_names(&self, token: &str) -> Vec<String> {
        let res = self.rpc("up", token, json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})).await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        let tools = body["result"]["tools"].as_array().unwrap_or_else(|| panic!("{body}"));
        tools.iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
    }
}

pub(crate) fn call(tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": tool, "arguments": arguments}})
}

#[tokio::test]
async fn read_scope_lists_only_the_upstreams_read_only_tools() {
    let gw = spawn().await;
    let token = gw.token("read:up").await;
    let mut names = gw.tool_names(&token).await;
    names.sort();
    assert_eq!(names, ["echo", "get_task", "list_tasks", "whoami"]);
}

#[tokio::test]
async fn write_scope_lists_every_tool_and_call_scope_only_its_tool() {
    let gw = spawn().await;
    assert!(gw.tool_names(&gw.token("write:up").await).await.contains(&"delete_task".to_owned()));
    assert_eq!(gw.tool_names(&gw.token("call:up/create_task").await).await, ["create_task"]);
}

#[tokio::test]
async fn calling_a_write_tool_with_read_scope_is_403_naming_the_scope_that_would_allow_it() {
    let gw = spawn().await;
    let token = gw.token("read:up execute:mcp").await;
    let res = gw.rpc("up", &token, call("create_task", json!({"title": "x"}))).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let challenge = res.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#) && challenge.contains(r#"scope="write:up""#),
        "{challenge}"
    );
    assert!(challenge.contains("/.well-known/oauth-protected-resource/mcp/up"), "{challenge}");
    let res = gw.rpc("up", &gw.token("write:up").await, call("create_task", json!({"title": "x"}))).await;
    assert!(res.headers()["www-authenticate"].to_str().unwrap().contains(r#"scope="execute:mcp""#));
}

#[tokio::test]
async fn the_upstream_gets_its_own_credential_never_the_clients() {
    let gw = spawn().await;
    let token = gw.token("read:up execute:mcp").await;
    // Listing first, as clients do, shows the gateway the tool's read-only hint.
    gw.tool_names(&token).await;
    let res = gw.rpc("up", &token, call("whoami", json!({}))).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let text = body["result"]["content"][0]["text"].as_str().unwrap_or_else(|| panic!("{body}"));
    let who: Value = serde_json::from_str(text).unwrap();
    assert_eq!(who["sub"], gw.upstream_owner.to_string());
}

#[tokio::test]
async fn a_tool_never_listed_counts_as_write_class() {
    let gw = spawn().await;
    let res = gw.rpc("up", &gw.token("read:up execute:mcp").await, call("whoami", json!({}))).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_token_not_minted_for_the_server_is_401() {
    let gw = spawn().await;
    let user = gw.store.create_user("plain@example.com", None, false, &Actor::cli()).await.unwrap();
    let (token, _) = TokenSpec::new(user.id, "read:tasks", &gw.base, &format!("{}/mcp", gw.base))
        .insert(&gw.store, &gw.state.validator.key_ring())
        .await;
    let res = gw.rpc("up", &token, json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "wrong_audience");
    let res = gw.rpc("up", "", json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_hidden_tool_is_neither_listed_nor_callable() {
    let gw = spawn().await;
    let tool = tessera_core::catalog::ToolName::parse("echo").unwrap();
    gw.state
        .servers
        .set_tool_access(&Actor::cli(), "up", &tool, Some(tessera_core::upstream::ToolAccess::Hidden))
        .await
        .unwrap();
    let token = gw.token("mcp:admin").await;
    assert!(!gw.tool_names(&token).await.contains(&"echo".to_owned()));
    let res = gw.rpc("up", &token, call("echo", json!({"text": "hi"}))).await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32602, "{body}");
}

#[tokio::test]
async fn an_unreachable_upstream_is_502_with_retry_after() {
    let gw = spawn().await;
    gw.register("down", "http://127.0.0.1:1/mcp", &[]).await;
    let token = gw.token("read:up").await;
    let res = gw.rpc("down", &token, json!({"jsonrpc": "2.0", "id": 9, "method": "ping"})).await;
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["id"], 9);
    assert_eq!(body["error"]["data"]["error"], "upstream_unavailable");
}

#[tokio::test]
async fn a_method_header_that_contradicts_the_body_is_refused() {
    let gw = spawn().await;
    let token = gw.token("write:up execute:mcp").await;
    let res = gw
        .client
        .post(format!("{}/mcp/up", gw.base))
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "echo")
        .json(&call("delete_task", json!({"id": "x"})))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32600);
}

#[tokio::test]
async fn a_session_id_the_token_did_not_open_is_404() {
    let gw = spawn().await;
    let token = gw.token("read:up").await;
    let res = gw
        .client
        .post(format!("{}/mcp/up", gw.base))
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", "someone-elses")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn each_server_has_its_own_protected_resource_metadata_and_unknown_ones_are_404() {
    let gw = spawn().await;
    let doc: Value = gw
        .client
        .get(format!("{}/.well-known/oauth-protected-resource/mcp/up", gw.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["resource"], format!("{}/mcp/up", gw.base));
    assert!(doc["scopes_supported"].as_array().unwrap().contains(&json!("read:up")));
    let token = gw.token("read:up").await;
    let res = gw.rpc("nope", &token, json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn usage_is_counted_per_tool_and_made_up_tools_are_counted_as_calls() {
    let gw = spawn().await;
    let (token, id) = gw.token_and_id("read:up execute:mcp").await;
    gw.tool_names(&token).await;
    gw.rpc("up", &token, call("echo", json!({"text": "hi"}))).await.text().await.unwrap();
    gw.rpc("up", &token, call("no-such-tool-4711", json!({}))).await.text().await.unwrap();
    gw.state.metering.usage.flush(&gw.store).await.unwrap();
    let now = chrono::Utc::now();
    let rows =
        gw.store.usage_rows(id, now - chrono::Duration::hours(2), now + chrono::Duration::hours(2)).await.unwrap();
    let mut labels: Vec<(String, String)> =
        rows.into_iter().map(|r| (r.method, r.outcome.as_str().to_owned())).collect();
    labels.sort();
    assert_eq!(
        labels,
        [("echo".into(), "ok".into()), ("tools/call".into(), "403".into()), ("tools/list".into(), "ok".into())]
    );
}

#[tokio::test]
async fn a_direct_server_is_not_served_by_the_gateway() {
    use tessera_core::catalog::ServerName;
    use tessera_core::upstream::UpstreamUrl;
    let gw = spawn().await;
    let input = tessera_tokens::ServerInput {
        name: ServerName::parse("down").unwrap(),
        url: UpstreamUrl::parse(&format!("{}/mcp", gw.base)).unwrap(),
        description: None,
        headers: Vec::new(),
        new_tools: Default::default(),
    };
    gw.state.servers.add_direct(&Actor::cli(), input, chrono::Utc::now()).await.unwrap();
    let token = gw.token("read:down").await;
    let res = gw.rpc("down", &token, json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let meta =
        gw.client.get(format!("{}/.well-known/oauth-protected-resource/mcp/down", gw.base)).send().await.unwrap();
    assert_eq!(meta.status(), StatusCode::NOT_FOUND);
}
