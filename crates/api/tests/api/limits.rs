//! Bearer calls spend the token's rate limit and are counted in its usage, like `/mcp` calls.

use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};

use crate::helpers::*;

/// Usage rows of `token` as (method, outcome, count), after writing what is pending.
async fn usage(app: &TestApp, token: uuid::Uuid) -> Vec<(String, String, i64)> {
    app.metering.usage.flush(&app.store).await.unwrap();
    let now = Utc::now();
    let rows = app.store.usage_rows(token, now - Duration::hours(2), now + Duration::hours(2)).await.unwrap();
    rows.into_iter().map(|r| (r.method, r.outcome.as_str().to_owned(), r.count)).collect()
}

#[tokio::test]
async fn bearer_call_past_the_rate_limit_is_429_with_retry_after_and_ratelimit_headers() {
    let app = spawn_app().await;
    let user = app.create_user("limited@example.com", false).await;
    // 60 per hour: a burst of one, then one per minute.
    let (token, _) = app.issue_limited(&user, "read:tokens", 60).await;
    let first = app.as_bearer(&token, Method::GET, "/api/v2/tokens").send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);

    let res = app.as_bearer(&token, Method::GET, "/api/v2/tokens").send().await.unwrap();
    let headers = res.headers().clone();
    let (code, body) = error_code(res, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(code, "rate_limited");
    assert!(body["message"].as_str().unwrap().contains("60 requests per hour"), "{body}");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(headers["ratelimit-limit"], "60");
    assert_eq!(headers["ratelimit-remaining"], "0");
}

#[tokio::test]
async fn unlimited_token_is_never_rate_limited() {
    let app = spawn_app().await;
    let user = app.create_user("free@example.com", false).await;
    let token = app.issue_direct(&user, "read:tokens").await;
    for _ in 0..20 {
        let res = app.as_bearer(&token, Method::GET, "/api/v2/tokens").send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn validate_spends_the_validated_tokens_rate_limit() {
    let app = spawn_app().await;
    let user = app.create_user("validated@example.com", false).await;
    let (token, _) = app.issue_limited(&user, "read:tasks", 60).await;
    assert_eq!(app.validate(&token).await.0, StatusCode::OK);
    let (status, body) = app.validate(&token).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "rate_limited");
}

#[tokio::test]
async fn bearer_calls_are_counted_in_the_tokens_usage_by_route() {
    let app = spawn_app().await;
    let user = app.create_user("counted@example.com", false).await;
    let (token, id) = app.issue_limited(&user, "read:tokens", 60).await;
    assert_eq!(app.as_bearer(&token, Method::GET, "/api/v2/tokens").send().await.unwrap().status(), 200);
    assert_eq!(app.as_bearer(&token, Method::GET, "/api/v2/tokens").send().await.unwrap().status(), 429);
    let mut rows = usage(&app, id).await;
    rows.sort();
    assert_eq!(
        rows,
        [
            ("api GET /api/v2/tokens".to_owned(), "429".to_owned(), 1),
            ("api GET /api/v2/tokens".to_owned(), "ok".to_owned(), 1),
        ]
    );
}

#[tokio::test]
async fn bearer_call_without_the_scope_is_counted_as_403() {
    let app = spawn_app().await;
    let user = app.create_user("scopeless@example.com", false).await;
    let (token, id) = app.issue_limited(&user, "read:tasks", 600).await;
    let res = app.as_bearer(&token, Method::GET, "/api/v2/tokens").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(usage(&app, id).await, [("api GET /api/v2/tokens".to_owned(), "403".to_owned(), 1)]);
}

#[tokio::test]
async fn bearer_call_answered_404_is_counted_as_an_error_not_ok() {
    let app = spawn_app().await;
    let user = app.create_user("lost@example.com", false).await;
    let (token, id) = app.issue_limited(&user, "read:tokens", 600).await;
    let missing = format!("/api/v2/tokens/{}", uuid::Uuid::now_v7());
    let res = app.as_bearer(&token, Method::GET, &missing).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(usage(&app, id).await, [("api GET /api/v2/tokens/{id}".to_owned(), "error".to_owned(), 1)]);
}

/// A POST to the built-in MCP server of the same application (both faces are served).
async fn post_mcp(app: &TestApp, token: &str, body: &serde_json::Value) -> reqwest::Response {
    app.client
        .post(app.app.url("/mcp"))
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2025-06-18")
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_used_up_rate_limit_has_the_same_code_on_the_api_and_on_mcp() {
    let app = spawn_app().await;
    let user = app.create_user("both-faces@example.com", false).await;
    // One token, one budget, spent on the API: the next call on either face is refused.
    let (token, _) = app.issue_limited(&user, "read:tokens mcp:access", 60).await;
    assert_eq!(app.as_bearer(&token, Method::GET, "/api/v2/tokens").send().await.unwrap().status(), StatusCode::OK);
    let api = app.as_bearer(&token, Method::GET, "/api/v2/tokens").send().await.unwrap();
    let (api_code, _) = error_code(api, StatusCode::TOO_MANY_REQUESTS).await;
    let ping = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let mcp = post_mcp(&app, &token, &ping).await;
    let (mcp_code, _) = error_code(mcp, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(api_code, "rate_limited");
    assert_eq!(mcp_code, api_code);
}

#[tokio::test]
async fn a_body_too_large_has_the_same_code_on_the_api_and_on_mcp() {
    let app = spawn_app().await;
    let (user, session) = app.signed_in("big-bodies@example.com").await;
    let token = app.issue_direct(&user, "write:tokens mcp:access").await;
    let huge = serde_json::json!({"name": "x".repeat(5 * 1024 * 1024)});
    let api = app.as_session(&session, Method::POST, "/api/v2/tokens").json(&huge).send().await.unwrap();
    let (api_code, _) = error_code(api, StatusCode::PAYLOAD_TOO_LARGE).await;
    let mcp = post_mcp(&app, &token, &huge).await;
    let (mcp_code, _) = error_code(mcp, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(api_code, "payload_too_large");
    assert_eq!(mcp_code, api_code);
}
