//! The token guide's MCP requests work as written (issue 17): `POST /mcp/initialize`, an
//! `initialize` without `clientInfo`/`capabilities`, and a clear answer at `GET /mcp/sse`.

use serde_json::{Value, json};

use crate::helpers::*;

/// The guide's "Testing Authentication" body, byte for byte.
const GUIDE_INITIALIZE: &str =
    r#"{"jsonrpc":"2.0","method":"initialize","params":{"protocolVersion":"2025-06-18"},"id":1}"#;

/// A POST of `body` to `path` with the guide's headers (no `MCP-Protocol-Version`, as in the guide).
async fn post(app: &TestApp, path: &str, token: Option<&str>, body: impl Into<reqwest::Body>) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", app.base))
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream")
        .body(body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.unwrap()
}

fn initialize_with(params: Value) -> String {
    json!({"jsonrpc": "2.0", "method": "initialize", "params": params, "id": 1}).to_string()
}

#[tokio::test]
async fn initialize_without_client_info_or_capabilities_succeeds_with_defaults() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks execute:mcp").await;
    let res = post(&app, "/mcp", Some(&token.secret), GUIDE_INITIALIZE).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["id"], 1, "{body}");
    assert_eq!(body["result"]["protocolVersion"], "2025-06-18", "{body}");
    assert!(body["result"]["capabilities"]["tools"].is_object(), "{body}");
    assert_eq!(body["result"]["serverInfo"]["name"], "tessera", "{body}");
}

#[tokio::test]
async fn initialize_with_only_client_info_missing_succeeds() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks").await;
    // The guide's Python and JavaScript examples send `capabilities` but no `clientInfo`.
    let body = initialize_with(json!({"protocolVersion": "2025-06-18", "capabilities": {}}));
    let res = post(&app, "/mcp", Some(&token.secret), body).await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["result"]["protocolVersion"], "2025-06-18", "{body}");
}

#[tokio::test]
async fn initialize_with_a_malformed_client_info_is_invalid_params_naming_the_field() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks").await;
    for client_info in [json!({"name": 5, "version": "1"}), json!({"name": "c"}), json!("curl"), json!(null)] {
        let body = initialize_with(json!({"protocolVersion": "2025-06-18", "clientInfo": client_info}));
        let res = post(&app, "/mcp", Some(&token.secret), body).await;
        assert_eq!(res.status(), 200, "an in-band JSON-RPC error for {client_info}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["id"], 1, "{body}");
        assert_eq!(body["error"]["code"], -32602, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("Invalid params"), "{message}");
        assert!(message.contains("`params.clientInfo`"), "{message}");
    }
}

#[tokio::test]
async fn initialize_without_a_protocol_version_is_invalid_params_not_method_not_found() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks").await;
    for (params, field) in [
        (json!({"capabilities": {}}), "`params.protocolVersion`"),
        (json!({"protocolVersion": 20250618}), "`params.protocolVersion`"),
        (json!({"protocolVersion": "2025-06-18", "capabilities": ["tools"]}), "`params.capabilities`"),
        (json!("2025-06-18"), "`params`"),
    ] {
        let res = post(&app, "/mcp", Some(&token.secret), initialize_with(params.clone())).await;
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], -32602, "{params}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(field), "{params}: {body}");
    }
}

#[tokio::test]
async fn a_malformed_initialize_is_refused_only_after_the_token_is_checked() {
    let app = spawn_app().await;
    let body = initialize_with(json!({"protocolVersion": "2025-06-18", "clientInfo": "curl"}));
    let res = post(&app, "/mcp", None, body).await;
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn post_mcp_initialize_is_the_mcp_endpoint() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks execute:mcp").await;
    let res = post(&app, "/mcp/initialize", Some(&token.secret), GUIDE_INITIALIZE).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["result"]["protocolVersion"], "2025-06-18", "{body}");
    assert!(body["result"]["capabilities"]["tools"].is_object(), "{body}");

    // An alias, not an initialize-only route: any MCP message is served there.
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}).to_string();
    let res = post(&app, "/mcp/initialize/", Some(&token.secret), list).await;
    let body: Value = res.json().await.unwrap();
    let tools: Vec<&str> =
        body["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(tools.contains(&"list_tasks"), "{body}");
}

#[tokio::test]
async fn post_mcp_initialize_passes_the_same_guard_as_mcp() {
    let app = spawn_app().await;
    let res = post(&app, "/mcp/initialize", None, GUIDE_INITIALIZE).await;
    assert_eq!(res.status(), 401);
    assert!(challenge(&res).contains("resource_metadata="), "{}", challenge(&res));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "missing_token");

    let res = post(&app, "/mcp/initialize", Some("not.a.jwt"), GUIDE_INITIALIZE).await;
    assert_eq!(res.status(), 401);
    assert!(challenge(&res).contains(r#"error="invalid_token""#));

    // Counted like `/mcp`: under its method, against the token.
    let token = issue(&app, "read:tasks").await;
    let res = post(&app, "/mcp/initialize", Some(&token.secret), GUIDE_INITIALIZE).await;
    assert_eq!(res.status(), 200);
    app.state.flush_usage().await.unwrap();
    let now = chrono::Utc::now();
    let rows = app
        .store
        .usage_rows(token.id, now - chrono::Duration::hours(2), now + chrono::Duration::hours(2))
        .await
        .unwrap();
    let rows: Vec<_> = rows.into_iter().map(|u| (u.method, u.outcome.as_str().to_owned(), u.count)).collect();
    assert_eq!(rows, [("initialize".to_owned(), "ok".to_owned(), 1)]);
}

#[tokio::test]
async fn get_mcp_sse_is_405_naming_the_streamable_http_endpoint() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks").await;
    let res = reqwest::Client::new()
        .get(format!("{}/mcp/sse", app.base))
        .header("Accept", "text/event-stream")
        .bearer_auth(&token.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "");
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "sse_transport_not_supported", "{body}");
    assert_eq!(body["details"]["endpoint"], AUD, "{body}");
    assert!(body["message"].as_str().unwrap().contains(AUD), "{body}");
}

#[tokio::test]
async fn get_mcp_sse_without_a_token_is_401_like_every_mcp_path() {
    let app = spawn_app().await;
    let res = reqwest::get(format!("{}/mcp/sse", app.base)).await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(challenge(&res).starts_with("Bearer "));
}

/// A request for a method Tessera serves, with the given `params`.
async fn request_with(app: &TestApp, token: &str, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 3, "method": method, "params": params});
    let res = post_mcp(app, Some(token), &body).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

#[tokio::test]
async fn a_tools_call_without_a_name_is_invalid_params_naming_the_field_not_method_not_found() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks execute:mcp").await;
    let body = request_with(&app, &token.secret, "tools/call", json!({"arguments": {}})).await;
    assert_eq!(body["error"]["code"], -32602, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("params.name"), "{body}");
}

#[tokio::test]
async fn a_tools_call_whose_name_is_not_a_string_is_invalid_params() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks execute:mcp").await;
    let body = request_with(&app, &token.secret, "tools/call", json!({"name": 5})).await;
    assert_eq!(body["error"]["code"], -32602, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("params.name"), "{body}");
}

#[tokio::test]
async fn params_that_are_not_an_object_are_invalid_params_for_any_served_method() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks execute:mcp").await;
    for method in ["tools/list", "tools/call", "ping"] {
        let body = request_with(&app, &token.secret, method, json!("x")).await;
        assert_eq!(body["error"]["code"], -32602, "{method}: {body}");
        assert_eq!(body["id"], 3, "{method}: {body}");
    }
}

#[tokio::test]
async fn tool_arguments_that_are_not_an_object_are_invalid_params() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks execute:mcp").await;
    let body = request_with(&app, &token.secret, "tools/call", json!({"name": "whoami", "arguments": [1]})).await;
    assert_eq!(body["error"]["code"], -32602, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("params.arguments"), "{body}");
}
