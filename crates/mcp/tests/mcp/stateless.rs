//! The stateless protocol era (MCP 2026-07-28): no `initialize`, every request names its
//! version in `MCP-Protocol-Version` and `_meta`, and `Mcp-Method`/`Mcp-Name` repeat the body.

use serde_json::{Value, json};

use crate::helpers::*;

const V2026: &str = "2026-07-28";

/// The per-request `_meta` a 2026-07-28 client sends (the Python SDK's shape).
fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": V2026,
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

/// A 2026-07-28 POST of `method` with `params` (plus `_meta`) and the given standard headers.
async fn post_2026(
    app: &TestApp,
    token: &str,
    method: &str,
    mut params: Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    params["_meta"] = meta();
    let mut req = reqwest::Client::new()
        .post(app.mcp_url())
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .header("MCP-Protocol-Version", V2026)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn server_discover_offers_2026_07_28_and_the_handshake_versions() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks execute:mcp").await;
    let res = post_2026(&app, &token.secret, "server/discover", json!({}), &[("Mcp-Method", "server/discover")]).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let versions = body["result"]["supportedVersions"].as_array().unwrap_or_else(|| panic!("{body}"));
    assert!(versions.contains(&json!(V2026)), "{body}");
    assert!(versions.contains(&json!("2025-11-25")), "{body}");
}

#[tokio::test]
async fn a_tool_call_without_initialize_succeeds_on_2026_07_28() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks execute:mcp").await;
    let headers = [("Mcp-Method", "tools/call"), ("Mcp-Name", "whoami")];
    let res = post_2026(&app, &token.secret, "tools/call", json!({"name": "whoami", "arguments": {}}), &headers).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["result"]["isError"], json!(false), "{body}");
    assert_eq!(body["result"]["structuredContent"]["token_id"], token.id.to_string(), "{body}");
}

#[tokio::test]
async fn tools_list_on_2026_07_28_is_filtered_by_scope_like_the_handshake_era() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks execute:mcp").await;
    let res = post_2026(&app, &token.secret, "tools/list", json!({}), &[("Mcp-Method", "tools/list")]).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let mut names: Vec<&str> =
        body["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, tool_names(&app, &token.secret).await, "{body}");
    assert!(!names.contains(&"create_task"), "{names:?}");
}

#[tokio::test]
async fn an_mcp_method_header_that_differs_from_the_body_is_refused() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks execute:mcp").await;
    let headers = [("Mcp-Method", "tools/list"), ("Mcp-Name", "whoami")];
    let res = post_2026(&app, &token.secret, "tools/call", json!({"name": "whoami", "arguments": {}}), &headers).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32020, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("Mcp-Method"), "{body}");
}

#[tokio::test]
async fn an_mcp_name_header_that_differs_from_the_body_is_refused() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks execute:mcp").await;
    let headers = [("Mcp-Method", "tools/call"), ("Mcp-Name", "echo")];
    let res = post_2026(&app, &token.secret, "tools/call", json!({"name": "whoami", "arguments": {}}), &headers).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32020, "{body}");
}

#[tokio::test]
async fn authorization_on_2026_07_28_follows_the_body_tool_name() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks execute:mcp").await;
    // The headers name a tool the token may call; the body asks for one it may not.
    let headers = [("Mcp-Method", "tools/call"), ("Mcp-Name", "list_tasks")];
    let res = post_2026(
        &app,
        &token.secret,
        "tools/call",
        json!({"name": "create_task", "arguments": {"title": "x"}}),
        &headers,
    )
    .await;
    assert_eq!(res.status(), 403);
    assert!(challenge(&res).contains(r#"scope="write:tasks""#), "{}", challenge(&res));
}
