//! The gateway on two instances behind one balancer (issue #14 leftovers): a session opened
//! through one is served by the other to its token only, and revoking through one instance's
//! API cuts a stream open on the other.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};
use tessera_store::Actor;
use tessera_testkit::TokenSpec;

use crate::scale::{Pair, spawn_pair};

/// A small session-era MCP upstream on a loopback port: `initialize` opens a session, other
/// requests need it, and GET is an event stream that pings every 100 ms until dropped.
fn spawn_session_upstream() -> String {
    async fn post(req: HttpRequest, body: web::Json<Value>) -> HttpResponse {
        let id = body["id"].clone();
        match body["method"].as_str() {
            Some("initialize") => HttpResponse::Ok().insert_header(("mcp-session-id", uuid::Uuid::now_v7().to_string())).json(
                json!({"jsonrpc": "2.0", "id": id, "result": {"protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                    "serverInfo": {"name": "sessions", "version": "1"}}}),
            ),
            _ if !req.headers().contains_key("mcp-session-id") => HttpResponse::BadRequest().finish(),
            Some("tools/list") => HttpResponse::Ok().json(json!({"jsonrpc": "2.0", "id": id, "result": {"tools": [
                {"name": "echo", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": true}}]}})),
            _ => HttpResponse::Accepted().finish(),
        }
    }
    async fn get() -> HttpResponse {
        let pings = futures_util::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Some((Ok::<_, actix_web::Error>(web::Bytes::from_static(b": ping\n\n")), ()))
        });
        HttpResponse::Ok().content_type("text/event-stream").streaming(pings)
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/mcp", listener.local_addr().unwrap().port());
    let server = HttpServer::new(|| App::new().route("/mcp", web::post().to(post)).route("/mcp", web::get().to(get)))
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
    tokio::spawn(server);
    url
}

async fn with_upstream() -> Pair {
    let pair = spawn_pair().await;
    use tessera_core::catalog::ServerName;
    use tessera_core::upstream::UpstreamUrl;
    let input = tessera_tokens::ServerInput {
        name: ServerName::parse("up").unwrap(),
        url: UpstreamUrl::parse(&spawn_session_upstream()).unwrap(),
        description: None,
        headers: Vec::new(),
        new_tools: Default::default(),
    };
    pair.states[0].servers.add(&Actor::cli(), input, chrono::Utc::now()).await.unwrap();
    pair
}

/// A token for `/mcp/up` with `read:up` (plus `extra` scopes), and its id.
async fn token(pair: &Pair, extra: &str) -> (String, uuid::Uuid) {
    let email = format!("{}@example.com", uuid::Uuid::now_v7());
    let user = pair.store.create_user(&email, None, false, &Actor::cli()).await.unwrap();
    let spec = TokenSpec {
        audience: vec![format!("{}/mcp", pair.public), format!("{}/mcp/up", pair.public)],
        ..TokenSpec::new(user.id, &format!("read:up {extra}"), &pair.public, &format!("{}/mcp", pair.public))
    };
    let (secret, record) = spec.insert(&pair.store, &pair.states[0].validator.key_ring()).await;
    (secret, record.id)
}

async fn rpc(base: &str, token: &str, session: Option<&str>, method: &str) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/mcp/up"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25");
    if let Some(sid) = session {
        req = req.header("mcp-session-id", sid);
    }
    let params = if method == "initialize" {
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}})
    } else {
        json!({})
    };
    req.json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})).send().await.unwrap()
}

async fn open_session(pair: &Pair, token: &str) -> String {
    let res = rpc(&pair.bases[0], token, None, "initialize").await;
    assert_eq!(res.status(), 200);
    res.headers()["mcp-session-id"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_session_opened_through_one_instance_is_served_by_the_other_to_its_token_only() {
    let pair = with_upstream().await;
    let (owner, _) = token(&pair, "").await;
    let (other, _) = token(&pair, "").await;
    let session = open_session(&pair, &owner).await;

    let res = rpc(&pair.bases[1], &owner, Some(&session), "tools/list").await;
    assert_eq!(res.status(), 200, "the opener's token is served on the other instance");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["result"]["tools"][0]["name"], "echo");

    let res = rpc(&pair.bases[1], &other, Some(&session), "tools/list").await;
    assert_eq!(res.status(), 404, "another token presenting the session gets nothing");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "session_not_found");
}

#[tokio::test]
async fn revoking_through_one_instances_api_cuts_a_gateway_stream_on_the_other_within_a_second() {
    let pair = with_upstream().await;
    let (client_token, client_id) = token(&pair, "").await;
    // The owner's API token, which revokes the client's.
    let owner = pair.store.get_token(client_id).await.unwrap().unwrap().user_id;
    let spec = TokenSpec::new(owner, "read:tokens write:tokens", &pair.public, &format!("{}/mcp", pair.public));
    let (manager, _) = spec.insert(&pair.store, &pair.states[0].validator.key_ring()).await;
    let session = open_session(&pair, &client_token).await;

    let mut stream = reqwest::Client::new()
        .get(format!("{}/mcp/up", pair.bases[1]))
        .bearer_auth(&client_token)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(matches!(stream.chunk().await, Ok(Some(_))), "the stream delivers before revocation");

    let revoked = reqwest::Client::new()
        .delete(format!("{}/api/v2/tokens/{client_id}", pair.bases[0]))
        .bearer_auth(&manager)
        .json(&json!({"reason": "cut the stream"}))
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success(), "revoke: {}", revoked.status());
    let revoked_at = Instant::now();
    // The stream ends (or errors) once the other instance re-validates the token.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = stream.chunk().await {}
        revoked_at.elapsed()
    })
    .await
    .expect("the stream on the other instance was not cut");
    eprintln!("stream on the other instance cut {ended:?} after the revocation");
    // Re-validated at least once a second; the margin is for a loaded test machine.
    assert!(ended < Duration::from_secs(2), "cut after {ended:?}");
    assert_eq!(rpc(&pair.bases[1], &client_token, Some(&session), "tools/list").await.status(), 401);
}

/// The tool names a `tools/list` through `base` shows.
async fn listed(base: &str, token: &str, session: &str) -> Vec<String> {
    let res = rpc(base, token, Some(session), "tools/list").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
}

/// Polls `check` every 10 ms for up to 5 s; how long it took to hold.
async fn time_until<F: std::future::Future<Output = bool>>(mut check: impl FnMut() -> F) -> Duration {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < Duration::from_secs(5), "never held");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

#[tokio::test]
async fn hiding_a_tool_through_one_instance_holds_there_at_once_and_on_the_other_within_a_second() {
    let pair = with_upstream().await;
    let (client, _) = token(&pair, "").await;
    let session = open_session(&pair, &client).await;
    // Both instances have the server cached.
    assert_eq!(listed(&pair.bases[0], &client, &session).await, ["echo"]);
    assert_eq!(listed(&pair.bases[1], &client, &session).await, ["echo"]);

    let tool = tessera_core::catalog::ToolName::parse("echo").unwrap();
    let hidden = Some(tessera_core::upstream::ToolAccess::Hidden);
    pair.states[0].servers.set_tool_access(&Actor::cli(), "up", &tool, hidden).await.unwrap();

    assert!(listed(&pair.bases[0], &client, &session).await.is_empty(), "hidden on the changing instance at once");
    let took = time_until(|| async { listed(&pair.bases[1], &client, &session).await.is_empty() }).await;
    eprintln!("hidden on the other instance after {took:?}");
    assert!(took < Duration::from_secs(1), "hidden on the other instance only after {took:?}");
}

#[tokio::test]
async fn removing_a_server_makes_it_404_at_once_on_its_instance_and_within_a_second_on_the_other() {
    let pair = with_upstream().await;
    let (client, _) = token(&pair, "").await;
    let session = open_session(&pair, &client).await;
    assert_eq!(listed(&pair.bases[1], &client, &session).await, ["echo"]);

    pair.states[0].servers.remove(&Actor::cli(), "up").await.unwrap();

    assert_eq!(rpc(&pair.bases[0], &client, Some(&session), "tools/list").await.status(), 404);
    let took =
        time_until(|| async { rpc(&pair.bases[1], &client, Some(&session), "tools/list").await.status() == 404 }).await;
    eprintln!("404 on the other instance after {took:?}");
    assert!(took < Duration::from_secs(1), "404 on the other instance only after {took:?}");
}

#[tokio::test]
async fn a_steady_tools_list_records_nothing_after_the_first() {
    let pair = with_upstream().await;
    let (client, _) = token(&pair, "").await;
    let session = open_session(&pair, &client).await;
    let server = pair.states[0].servers.get("up").await.unwrap();
    let discovered_at = || async { pair.store.server_tools(server.id).await.unwrap()[0].discovered_at };

    assert_eq!(listed(&pair.bases[0], &client, &session).await, ["echo"]);
    let first = discovered_at().await;
    assert!(first.is_some(), "the first list is recorded");
    for base in [&pair.bases[0], &pair.bases[1], &pair.bases[0]] {
        assert_eq!(listed(base, &client, &session).await, ["echo"]);
    }
    assert_eq!(discovered_at().await, first, "an unchanged list is not written again");
}
