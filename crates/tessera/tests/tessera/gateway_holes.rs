//! What the gateway must never let through to an upstream, over real HTTP: messages an
//! upstream could read otherwise than the gateway judged them (look-alike and repeated keys,
//! ids written two ways, repeated MCP headers), methods outside its allow-list, tool lists
//! answered under another id, and a hidden tool told apart from a missing one.
//!
//! The upstream here (`rec`) is a small real MCP-over-HTTP server that records every request
//! it receives, so a test can tell "refused" from "forwarded and answered"; `up` is this same
//! process's built-in `/mcp` (rmcp), as in `gateway.rs`.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpResponse, HttpServer, web};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera_store::Actor;

use crate::gateway::{Gateway, call, spawn};

/// The bodies a recording upstream received, and the tasks it created.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<String>>>, Arc<Mutex<Vec<String>>>);

impl Received {
    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    fn last(&self) -> Option<String> {
        self.0.lock().unwrap().last().cloned()
    }
}

/// Answers as a plain MCP server with the tools `peek` (read-only), `delete` and `secret`
/// (read-only, hidden by the tests); a call of any other tool is JSON-RPC -32602 "Unknown
/// tool", as the TypeScript SDK answers it. It keeps ids as integers where it can, as some
/// SDKs do: a request with id `"7"` is answered with id `7`. A `tools/call` with `task`
/// creates a task (MCP 2025-11-25), and `tasks/list` lists every task it created.
async fn answer(body: web::Bytes, received: web::Data<Received>) -> HttpResponse {
    received.0.lock().unwrap().push(String::from_utf8_lossy(&body).into_owned());
    let Ok(message) = serde_json::from_slice::<Value>(&body) else { return HttpResponse::BadRequest().finish() };
    let Some(id) = message.get("id").cloned() else { return HttpResponse::Accepted().finish() };
    let id = match &id {
        Value::String(s) => s.parse::<i64>().map_or(id.clone(), Value::from),
        _ => id,
    };
    let result = match message.get("method").and_then(Value::as_str) {
        Some("tools/list") => json!({"tools": [
            {"name": "peek", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": true}},
            {"name": "delete", "inputSchema": {"type": "object"}},
            {"name": "secret", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": true}},
        ]}),
        Some("tools/call") if message["params"].get("task").is_some() => {
            let mut tasks = received.1.lock().unwrap();
            let task = format!("task-{}", tasks.len());
            tasks.push(task.clone());
            json!({"task": {"taskId": task, "status": "working", "ttl": 60000,
                "createdAt": "2026-12-07T00:00:00Z", "lastUpdatedAt": "2026-12-07T00:00:00Z"}})
        }
        Some("tasks/list") => {
            let tasks = received.1.lock().unwrap();
            json!({"tasks": tasks.iter().map(|t| json!({"taskId": t, "status": "working"})).collect::<Vec<_>>()})
        }
        Some("tasks/get" | "tasks/cancel") => json!({"taskId": message["params"]["taskId"], "status": "working"}),
        Some("tools/call") => match message["params"]["name"].as_str() {
            Some(tool @ ("peek" | "delete" | "secret")) => {
                json!({"content": [{"type": "text", "text": format!("called {tool}")}]})
            }
            tool => {
                return HttpResponse::Ok().json(json!({"jsonrpc": "2.0", "id": id, "error": {
                    "code": -32602, "message": format!("Unknown tool: {}", tool.unwrap_or_default()),
                }}));
            }
        },
        // A client's answer to a server's request.
        None => return HttpResponse::Accepted().finish(),
        Some(_) => json!({}),
    };
    HttpResponse::Ok().json(json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

/// Tessera with server `rec` registered in front of a recording upstream, its tool `secret`
/// hidden.
async fn spawn_rec() -> (Gateway, Received) {
    let gw = spawn().await;
    let received = Received::default();
    let data = web::Data::new(received.clone());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/mcp", listener.local_addr().unwrap().port());
    let server = HttpServer::new(move || App::new().app_data(data.clone()).route("/mcp", web::post().to(answer)))
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
    tokio::spawn(server);
    gw.register("rec", &url, &[]).await;
    let secret = tessera_core::catalog::ToolName::parse("secret").unwrap();
    gw.state
        .servers
        .set_tool_access(&Actor::cli(), "rec", &secret, Some(tessera_core::upstream::ToolAccess::Hidden))
        .await
        .unwrap();
    (gw, received)
}

/// POSTs `body` exactly as written (no JSON re-encoding) to `/mcp/{server}`.
async fn post_raw(gw: &Gateway, server: &str, token: &str, body: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = gw
        .client
        .post(format!("{}/mcp/{server}", gw.base))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.body(body.to_owned()).send().await.unwrap()
}

/// The tool names a `tools/list` with `id` shows through `rec`.
async fn listed(gw: &Gateway, token: &str, id: Value) -> Vec<String> {
    let res = gw.rpc("rec", token, json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": {}})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let tools = body["result"]["tools"].as_array().unwrap_or_else(|| panic!("{body}"));
    tools.iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
}

/// Asserts a 400 JSON-RPC Invalid Request echoing `id`.
async fn assert_invalid_request(res: reqwest::Response, id: Value, what: &str) {
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{what}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32600, "{what}: {body}");
    assert_eq!(body["id"], id, "{what}: {body}");
}

#[tokio::test]
async fn keys_differing_from_a_field_only_by_case_or_folding_are_refused_and_never_forwarded() {
    let (gw, rec) = spawn_rec().await;
    let token = gw.token("read:rec execute:mcp").await;
    // The gateway learns that `peek` is read-only, as from any client's listing.
    listed(&gw, &token, json!(1)).await;
    let before = rec.count();
    for (id, body) in [
        (1, r#"{"jsonrpc":"2.0","id":1,"Method":"tools/call","params":{"name":"delete","arguments":{}}}"#),
        (
            2,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"peek","Name":"delete","arguments":{}}}"#,
        ),
        (3, r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"peek"},"paramſ":{"name":"delete"}}"#),
        (
            4,
            r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"peek"},"param\u017f":{"name":"delete"}}"#,
        ),
        (5, r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"peek","\u212Aey":1,"NAME":"delete"}}"#),
    ] {
        let res = post_raw(&gw, "rec", &token, body, &[]).await;
        assert_invalid_request(res, json!(id), body).await;
    }
    assert_eq!(rec.count(), before, "forwarded: {:?}", rec.last());
}

#[tokio::test]
async fn a_repeated_key_is_refused_and_never_forwarded() {
    let (gw, rec) = spawn_rec().await;
    let token = gw.token("read:rec execute:mcp").await;
    listed(&gw, &token, json!(1)).await;
    let before = rec.count();
    for (id, body) in [
        // An upstream that keeps the first of two keys reads `delete` where serde reads `peek`.
        (1, r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete","name":"peek"}}"#),
        (2, r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete"},"method":"tools/list"}"#),
        (3, r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"delete"},"params":{"name":"peek"}}"#),
    ] {
        let res = post_raw(&gw, "rec", &token, body, &[]).await;
        assert_invalid_request(res, json!(id), body).await;
    }
    assert_eq!(rec.count(), before, "forwarded: {:?}", rec.last());
}

#[tokio::test]
async fn a_message_that_is_neither_request_nor_response_is_refused_and_never_forwarded() {
    let (gw, rec) = spawn_rec().await;
    let token = gw.token("read:rec execute:mcp").await;
    for (id, body) in [
        (json!(5), r#"{"jsonrpc":"2.0","id":5,"params":{"name":"delete"}}"#),
        (json!(6), r#"{"jsonrpc":"2.0","id":6,"method":["tools/call"],"params":{"name":"delete"}}"#),
    ] {
        let res = post_raw(&gw, "rec", &token, body, &[]).await;
        assert_invalid_request(res, id, body).await;
    }
    assert_eq!(rec.count(), 0, "forwarded: {:?}", rec.last());
}

#[tokio::test]
async fn an_id_with_a_fraction_or_exponent_is_refused_and_never_forwarded() {
    let (gw, rec) = spawn_rec().await;
    let token = gw.token("read:rec").await;
    for id in ["1.0", "1e0", "2E1"] {
        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list","params":{{}}}}"#);
        let res = post_raw(&gw, "rec", &token, &body, &[]).await;
        assert_invalid_request(res, Value::Null, &body).await;
    }
    assert_eq!(rec.count(), 0, "forwarded: {:?}", rec.last());
}

#[tokio::test]
async fn a_tool_list_is_filtered_whatever_id_the_upstream_answers_it_with() {
    let (gw, _rec) = spawn_rec().await;
    let token = gw.token("read:rec").await;
    // Asked as "7", answered as 7: still the listing this token may see, and only that.
    assert_eq!(listed(&gw, &token, json!("7")).await, ["peek"]);
    assert_eq!(listed(&gw, &token, json!(8)).await, ["peek"]);
}

#[tokio::test]
async fn a_method_outside_the_allow_list_is_method_not_found_and_never_forwarded() {
    let (gw, rec) = spawn_rec().await;
    let token = gw.token("mcp:admin").await;
    for method in ["Tools/Call", "tools/call ", "TOOLS/LIST", "tasks/delete", "x/y"] {
        let body = json!({"jsonrpc": "2.0", "id": 9, "method": method, "params": {"name": "delete"}});
        let res = gw.rpc("rec", &token, body).await;
        assert_eq!(res.status(), StatusCode::OK, "{method}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], -32601, "{method}: {body}");
        assert_eq!(body["id"], 9, "{method}: {body}");
    }
    // A notification has no id to answer: refused with an HTTP error status.
    let res = gw.rpc("rec", &token, json!({"jsonrpc": "2.0", "method": "notifications/whatever"})).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32601, "{body}");
    assert_eq!(rec.count(), 0, "forwarded: {:?}", rec.last());
}

#[tokio::test]
async fn tasks_logging_resources_and_prompts_need_the_read_scope() {
    let (gw, rec) = spawn_rec().await;
    let call_only = gw.token("call:rec/peek execute:mcp").await;
    for method in ["tasks/list", "tasks/get", "resources/list", "prompts/list", "completion/complete"] {
        let res = gw.rpc("rec", &call_only, json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": {}})).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{method}");
        let challenge = res.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.contains(r#"scope="read:rec""#), "{method}: {challenge}");
    }
    assert_eq!(rec.count(), 0, "forwarded: {:?}", rec.last());
    let reader = gw.token("read:rec").await;
    let res = gw.rpc("rec", &reader, json!({"jsonrpc": "2.0", "id": 1, "method": "tasks/list", "params": {}})).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(rec.count(), 1);
}

#[tokio::test]
async fn logging_set_level_without_the_read_scope_is_answered_by_the_gateway_and_never_forwarded() {
    let (gw, rec) = spawn_rec().await;
    let call_only = gw.token("call:rec/peek execute:mcp").await;
    let set_level = json!({"jsonrpc": "2.0", "id": 9, "method": "logging/setLevel", "params": {"level": "debug"}});
    let res = gw.rpc("rec", &call_only, set_level.clone()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, json!({"jsonrpc": "2.0", "id": 9, "result": {}}));
    assert_eq!(rec.count(), 0, "forwarded: {:?}", rec.last());
    let res = gw.rpc("rec", &gw.token("read:rec").await, set_level).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(rec.count(), 1, "read:rec reaches the upstream");
}

#[tokio::test]
async fn a_call_only_token_may_handshake_ping_notify_list_call_its_tool_and_answer_the_server() {
    let (gw, rec) = spawn_rec().await;
    let token = gw.token("call:rec/peek execute:mcp").await;
    let messages = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}),
        call("peek", json!({})),
        // The client's answer to a request of the server's.
        json!({"jsonrpc": "2.0", "id": "s1", "result": {}}),
    ];
    for message in &messages {
        let res = gw.rpc("rec", &token, message.clone()).await;
        assert!(res.status().is_success(), "{message}: {}", res.status());
    }
    assert_eq!(rec.count(), messages.len());
}

/// Status, the error's code (JSON-RPC's or Tessera's) and `WWW-Authenticate` of an answer.
async fn outcome(res: reqwest::Response) -> (StatusCode, Value, Option<String>) {
    let status = res.status();
    let challenge = res.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    let body: Value = res.json().await.unwrap();
    let code = match &body["error"] {
        Value::Object(e) => e.get("code").cloned().unwrap_or(Value::Null),
        other => other.clone(),
    };
    (status, code, challenge)
}

/// What a token with `scopes` is answered for the hidden tool `secret` and for a tool the
/// upstream does not have.
async fn hidden_and_missing(scopes: &str) -> [(StatusCode, Value, Option<String>); 2] {
    let (gw, _rec) = spawn_rec().await;
    let token = gw.token(scopes).await;
    // Listed first, as clients do: the gateway has seen `secret`'s read-only hint.
    listed(&gw, &token, json!(1)).await;
    let hidden = outcome(gw.rpc("rec", &token, call("secret", json!({}))).await).await;
    let missing = outcome(gw.rpc("rec", &token, call("no_such_tool", json!({}))).await).await;
    [hidden, missing]
}

#[tokio::test]
async fn without_write_scope_a_hidden_tool_is_refused_exactly_like_a_missing_one() {
    let [hidden, missing] = hidden_and_missing("read:rec execute:mcp").await;
    assert_eq!(hidden, missing);
    assert_eq!(hidden.0, StatusCode::FORBIDDEN);
    assert_eq!(hidden.1, "insufficient_scope");
    assert!(hidden.2.as_deref().is_some_and(|c| c.contains(r#"scope="write:rec""#)), "{hidden:?}");
}

#[tokio::test]
async fn with_write_scope_a_hidden_tool_is_answered_like_a_missing_one() {
    let [hidden, missing] = hidden_and_missing("write:rec execute:mcp").await;
    assert_eq!(hidden, missing);
    assert_eq!((hidden.0, hidden.1), (StatusCode::OK, json!(-32602)));
}

#[tokio::test]
async fn a_repeated_mcp_header_is_400_at_the_gateway_and_never_forwarded() {
    let (gw, rec) = spawn_rec().await;
    let token = gw.token("call:rec/peek execute:mcp").await;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"peek","arguments":{}}}"#;
    for version in ["2025-06-18", "2025-11-25", "2026-07-28"] {
        for (name, second) in [("mcp-method", "tools/list"), ("mcp-name", "delete"), ("mcp-session-id", "b")] {
            let mut headers =
                vec![("mcp-protocol-version", version), ("mcp-method", "tools/call"), ("mcp-name", "peek")];
            headers.push((name, second));
            if name == "mcp-session-id" {
                headers.push(("mcp-session-id", "a"));
            }
            let res = post_raw(&gw, "rec", &token, body, &headers).await;
            assert_invalid_request(res, json!(1), &format!("{version} {name}")).await;
        }
    }
    assert_eq!(rec.count(), 0, "forwarded: {:?}", rec.last());
}

#[tokio::test]
async fn a_repeated_mcp_header_is_400_at_the_built_in_server() {
    let gw = spawn().await;
    let token = gw.token("read:tasks").await;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#;
    for version in ["2025-06-18", "2025-11-25", "2026-07-28"] {
        for (name, first, second) in
            [("mcp-method", "tools/list", "tools/call"), ("mcp-name", "a", "b"), ("mcp-session-id", "a", "b")]
        {
            let res = gw
                .client
                .post(format!("{}/mcp", gw.base))
                .bearer_auth(&token)
                .header("accept", "application/json, text/event-stream")
                .header("content-type", "application/json")
                .header("mcp-protocol-version", version)
                .header(name, first)
                .header(name, second)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{version} {name}");
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"]["code"], -32600, "{version} {name}: {body}");
        }
    }
}

#[tokio::test]
async fn a_task_is_listed_and_readable_only_by_the_token_that_created_it() {
    let (gw, rec) = spawn_rec().await;
    let alice = gw.token("read:rec execute:mcp").await;
    let bob = gw.token("read:rec execute:mcp").await;
    listed(&gw, &alice, json!(1)).await;
    let created = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "peek", "arguments": {}, "task": {"ttl": 60000}}});
    let body: Value = gw.rpc("rec", &alice, created).await.json().await.unwrap();
    let task = body["result"]["task"]["taskId"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned();
    let on_task = |method: &str| json!({"jsonrpc": "2.0", "id": 3, "method": method, "params": {"taskId": task}});
    let tasks_of = |body: Value| body["result"]["tasks"].as_array().cloned().unwrap_or_else(|| panic!("{body}"));

    let mine: Value = gw.rpc("rec", &alice, on_task("tasks/get")).await.json().await.unwrap();
    assert_eq!(mine["result"]["taskId"], task.as_str(), "{mine}");
    let list = json!({"jsonrpc": "2.0", "id": 4, "method": "tasks/list", "params": {}});
    assert_eq!(tasks_of(gw.rpc("rec", &alice, list.clone()).await.json().await.unwrap()).len(), 1);

    let before = rec.count();
    for method in ["tasks/get", "tasks/result", "tasks/cancel"] {
        let res = gw.rpc("rec", &bob, on_task(method)).await;
        assert_eq!(res.status(), StatusCode::OK, "{method}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], -32602, "{method}: {body}");
    }
    assert_eq!(rec.count(), before, "forwarded: {:?}", rec.last());
    assert_eq!(tasks_of(gw.rpc("rec", &bob, list).await.json().await.unwrap()), Vec::<Value>::new());
}
