//! `TESSERA_ROLES`: the binary mounts the MCP face, the API face, or both.

use std::net::TcpListener;

use clap::Parser;
use tessera::cli::Cli;
use tessera::server::{AppState, Application};
use tessera_testkit::fresh_db;

async fn spawn(roles: &str) -> String {
    let db = fresh_db().await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let args = ["tessera", "--jwt-secret", "0123456789abcdef0123456789abcdef", "--roles", roles, "serve"];
    let state = AppState::for_store(db.store, Cli::parse_from(args).settings).await.unwrap();
    let app = Application::build(state, listener).unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run());
    base
}

async fn mcp_status(base: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/mcp"))
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn default_roles_serve_mcp_with_its_401_challenge() {
    let base = spawn("api,mcp").await;
    assert_eq!(mcp_status(&base).await, 401);
    let prm = reqwest::get(format!("{base}/.well-known/oauth-protected-resource/mcp")).await.unwrap();
    assert_eq!(prm.status(), 200);
}

#[tokio::test]
async fn api_only_role_does_not_serve_mcp() {
    let base = spawn("api").await;
    assert_eq!(mcp_status(&base).await, 404);
    assert_eq!(reqwest::get(format!("{base}/health")).await.unwrap().status(), 200);
}

#[tokio::test]
async fn mcp_only_role_serves_mcp() {
    let base = spawn("mcp").await;
    assert_eq!(mcp_status(&base).await, 401);
    let api = reqwest::get(format!("{base}/api/v2/auth/me")).await.unwrap();
    assert_eq!(api.status(), 404, "the API is not mounted");
    assert_eq!(reqwest::get(format!("{base}/health")).await.unwrap().status(), 200);
}
