//! No token, password or session id ever reaches a log line, at any level.

use std::io::Write;
use std::sync::{Arc, Mutex};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, spawn_app};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_never_appear_in_logs_during_a_full_flow() {
    let captured = Captured::default();
    let writer = captured.clone();
    // Everything the server side logs, down to TRACE. The test's own HTTP client is not the
    // product, so its internals are left out.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace,hyper=off,hyper_util=off,reqwest=off,h2=off"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let app = spawn_app().await;
    let user = app.create_user("ann@example.com", false).await;
    let wrong_password = "not-the-password-4711";
    assert_eq!(app.login_response("ann@example.com", wrong_password).await.status(), StatusCode::UNAUTHORIZED);
    let session = app.login("ann@example.com").await;
    let token = app.issue(&session, "laptop", &["read:tasks", "read:tokens"]).await;
    let secret = token["token"].as_str().unwrap().to_owned();
    let id = token["id"].as_str().unwrap().to_owned();
    assert_eq!(app.validate(&secret).await.0, StatusCode::OK);
    let listed = app.as_bearer(&secret, Method::GET, "/api/v2/tokens").send().await.unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    let rotated: Value = app
        .as_session(&session, Method::POST, &format!("/api/v2/tokens/{id}/rotate"))
        .json(&json!({"grace_seconds": 0}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_secret = rotated["token"].as_str().unwrap().to_owned();
    assert_eq!(app.validate(&secret).await.0, StatusCode::UNAUTHORIZED);
    let revoke = app
        .as_session(&session, Method::DELETE, &format!("/api/v2/tokens/{}", rotated["id"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::OK);
    assert_eq!(app.validate(&new_secret).await.0, StatusCode::UNAUTHORIZED);
    let credential = app.issue_direct(&user, "write:tokens").await;
    app.as_bearer(&credential, Method::POST, "/api/v2/tokens")
        .json(&json!({"name": "child", "scopes": ["write:tasks"]}))
        .send()
        .await
        .unwrap();
    app.as_session(&session, Method::POST, "/api/v2/auth/logout").send().await.unwrap();
    // Let the server's last spans close.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("/api/v2/tokens"), "the capture must see the server's request logs");
    let checks = [
        ("token", secret.as_str()),
        ("rotated token", new_secret.as_str()),
        ("credential", credential.as_str()),
        ("password", PASSWORD),
        ("wrong password", wrong_password),
        ("session id", session.session_id.as_str()),
    ];
    for (what, value) in checks {
        assert!(!logs.contains(value), "the {what} appears in the logs");
    }
    // A JWT's signature alone is secret enough to look for too.
    let signature = secret.rsplit('.').next().unwrap();
    assert!(!logs.contains(signature), "a token signature appears in the logs");
}
