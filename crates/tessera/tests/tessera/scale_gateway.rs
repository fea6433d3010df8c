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
