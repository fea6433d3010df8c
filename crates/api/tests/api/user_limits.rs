//! A per-user rate limit (issue #17): all of a user's tokens share one budget, on top of
//! each token's own; set by administrators.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn two_tokens_of_one_user_exhaust_the_shared_user_budget() {
    let app = spawn_app().await;
    let (admin, admin_session) = {
        let user = app.create_user("root@example.com", true).await;
        let session = app.login("root@example.com").await;
        (user, session)
    };
    let user = app.create_user("shared@example.com", false).await;
    // 60 per hour for the user: a burst of one, shared by every token.
    let res = app
        .as_session(&admin_session, Method::PATCH, &format!("/api/v2/users/{}", user.id))
        .json(&json!({"rate_limit_per_hour": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["rate_limit_per_hour"], 60);
    let first = app.issue_direct(&user, "read:tokens").await;
    let second = app.issue_direct(&user, "read:tokens").await;

    assert_eq!(app.as_bearer(&first, Method::GET, "/api/v2/tokens").send().await.unwrap().status(), 200);
    let res = app.as_bearer(&second, Method::GET, "/api/v2/tokens").send().await.unwrap();
    let headers = res.headers().clone();
    let (code, body) = error_code(res, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(code, "rate_limited");
    assert_eq!(body["details"]["limit_scope"], "user", "{body}");
    assert_eq!(body["details"]["limit_per_hour"], 60);
    assert_eq!(headers["ratelimit-policy"], "\"user\";q=60;w=3600");
    assert!(headers.contains_key("retry-after"));
    // Another user's tokens have their own budget.
    let other = app.issue_direct(&admin, "read:tokens").await;
    assert_eq!(app.as_bearer(&other, Method::GET, "/api/v2/tokens").send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_token_limit_refusal_names_the_token_budget() {
    let app = spawn_app().await;
    let user = app.create_user("own@example.com", false).await;
    let (token, _) = app.issue_limited(&user, "read:tokens", 60).await;
    assert_eq!(app.as_bearer(&token, Method::GET, "/api/v2/tokens").send().await.unwrap().status(), 200);
    let res = app.as_bearer(&token, Method::GET, "/api/v2/tokens").send().await.unwrap();
    assert_eq!(res.headers()["ratelimit-policy"], "\"token\";q=60;w=3600");
    let (_, body) = error_code(res, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(body["details"]["limit_scope"], "token");
}

#[tokio::test]
async fn clearing_a_users_limit_with_null_lifts_it() {
    let app = spawn_app().await;
    app.create_user("boss@example.com", true).await;
    let session = app.login("boss@example.com").await;
    let user = app.create_user("lifted@example.com", false).await;
    let path = format!("/api/v2/users/{}", user.id);
    let set = |body| app.as_session(&session, Method::PATCH, &path).json(&body).send();
    assert_eq!(set(json!({"rate_limit_per_hour": 60})).await.unwrap().status(), 200);
    let res = set(json!({"rate_limit_per_hour": null})).await.unwrap();
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["rate_limit_per_hour"], serde_json::Value::Null);
    let token = app.issue_direct(&user, "read:tokens").await;
    for _ in 0..3 {
        assert_eq!(app.as_bearer(&token, Method::GET, "/api/v2/tokens").send().await.unwrap().status(), 200);
    }
}

#[tokio::test]
async fn only_administrators_set_user_limits() {
    let app = spawn_app().await;
    let (user, session) = app.signed_in("plain@example.com").await;
    let res = app
        .as_session(&session, Method::PATCH, &format!("/api/v2/users/{}", user.id))
        .json(&json!({"rate_limit_per_hour": 1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, StatusCode::FORBIDDEN).await.0, "admin_required");
    let res = app.as_session(&session, Method::GET, "/api/v2/users").send().await.unwrap();
    assert_eq!(error_code(res, StatusCode::FORBIDDEN).await.0, "admin_required");
}

#[tokio::test]
async fn a_user_limit_out_of_range_is_400() {
    let app = spawn_app().await;
    app.create_user("admin2@example.com", true).await;
    let session = app.login("admin2@example.com").await;
    let user = app.create_user("range@example.com", false).await;
    let res = app
        .as_session(&session, Method::PATCH, &format!("/api/v2/users/{}", user.id))
        .json(&json!({"rate_limit_per_hour": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, StatusCode::BAD_REQUEST).await.0, "invalid_rate_limit");
}
