//! Usage counting: in memory on the request path, flushed in batches.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use crate::helpers::*;

async fn usage(app: &TestApp, token: uuid::Uuid) -> Vec<(String, String, i64)> {
    let from = Utc::now() - chrono::Duration::hours(2);
    let to = Utc::now() + chrono::Duration::hours(2);
    let mut rows: Vec<_> = app
        .store
        .usage_rows(token, from, to)
        .await
        .unwrap()
        .into_iter()
        .map(|u| (u.method, u.outcome.as_str().to_owned(), u.count))
        .collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn usage_rows_appear_after_the_periodic_flush() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks execute:mcp").await;
    assert_eq!(post_mcp(&app, Some(&token.secret), &initialize_body()).await.status(), 200);
    assert_eq!(call_raw(&app, &token.secret, "list_tasks", json!({})).await.status(), 200);
    assert_eq!(call_raw(&app, &token.secret, "list_tasks", json!({})).await.status(), 200);
    assert_eq!(call_raw(&app, &token.secret, "create_task", json!({"title": "x"})).await.status(), 403);
    let flushed = eventually(Duration::from_secs(3), || async { usage(&app, token.id).await.len() == 3 }).await;
    assert!(flushed.is_some(), "usage never flushed: {:?}", usage(&app, token.id).await);
    assert_eq!(
        usage(&app, token.id).await,
        [
            ("create_task".to_owned(), "403".to_owned(), 1),
            ("initialize".to_owned(), "ok".to_owned(), 1),
            ("list_tasks".to_owned(), "ok".to_owned(), 2),
        ]
    );
    let record = app.store.get_token(token.id).await.unwrap().unwrap();
    assert!(record.last_used_at.is_some());
}

#[tokio::test]
async fn a_clients_expected_get_and_delete_are_answered_405_but_not_counted_as_errors() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks").await;
    assert_eq!(post_mcp(&app, Some(&token.secret), &initialize_body()).await.status(), 200);
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let res = reqwest::Client::new()
            .request(method, app.mcp_url())
            .bearer_auth(&token.secret)
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405);
    }
    app.state.flush_usage().await.unwrap();
    assert_eq!(usage(&app, token.id).await, [("initialize".to_owned(), "ok".to_owned(), 1)]);
}

#[tokio::test]
async fn revoked_token_use_is_counted_as_401() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks").await;
    tokens(&app).revoke(&tessera_core::lifecycle::Requester::Cli, None, token.id, None, Utc::now()).await.unwrap();
    assert_eq!(post_mcp(&app, Some(&token.secret), &initialize_body()).await.status(), 401);
    app.state.flush_usage().await.unwrap();
    assert_eq!(usage(&app, token.id).await, [("rejected".to_owned(), "401".to_owned(), 1)]);
}

#[tokio::test]
async fn usage_survives_a_graceful_shutdown() {
    let db = tessera_testkit::fresh_db().await;
    // A flush interval far beyond the test: only the shutdown flush can write the rows.
    let app = spawn_instance(db.store.clone(), |c| c.usage_flush_interval = Duration::from_secs(3600)).await;
    let token = issue(&app, "read:tasks").await;
    for _ in 0..3 {
        assert_eq!(post_mcp(&app, Some(&token.secret), &initialize_body()).await.status(), 200);
    }
    // tokio's interval fires once at start; give that empty tick time to pass.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(usage(&app, token.id).await.is_empty(), "nothing is written before shutdown");
    app.handle.stop(true).await;
    app.state.shutdown().await;
    assert_eq!(usage(&app, token.id).await, [("initialize".to_owned(), "ok".to_owned(), 3)]);
}

#[tokio::test]
async fn tool_errors_are_counted_as_error() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks execute:mcp").await;
    let res = call_raw(&app, &token.secret, "get_task", json!({"id": "not-a-uuid"})).await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["result"]["isError"], true, "{body}");
    app.state.flush_usage().await.unwrap();
    assert_eq!(usage(&app, token.id).await, [("get_task".to_owned(), "error".to_owned(), 1)]);
}

/// `last_used_from` after one `initialize` sent with `X-Forwarded-For: <forwarded>`.
async fn last_used_from(trusted: &[&str], forwarded: &str) -> Option<String> {
    let db = tessera_testkit::fresh_db().await;
    let cidrs: Vec<tessera_auth::Cidr> = trusted.iter().map(|c| c.parse().unwrap()).collect();
    let app = spawn_instance(db.store, |c| c.trusted_proxies = tessera_auth::TrustedProxies::new(cidrs)).await;
    let token = issue(&app, "read:tasks").await;
    let res = reqwest::Client::new()
        .post(app.mcp_url())
        .bearer_auth(&token.secret)
        .header("Accept", "application/json, text/event-stream")
        .header("X-Forwarded-For", forwarded)
        .json(&initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.state.flush_usage().await.unwrap();
    app.store.get_token(token.id).await.unwrap().unwrap().last_used_from
}

#[tokio::test]
async fn last_used_from_believes_x_forwarded_for_only_from_a_trusted_proxy() {
    assert_eq!(last_used_from(&[], "198.51.100.7").await.as_deref(), Some("127.0.0.1"));
    assert_eq!(last_used_from(&["127.0.0.1/32"], "6.6.6.6, 198.51.100.7").await.as_deref(), Some("198.51.100.7"));
}
