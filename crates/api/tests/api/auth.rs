//! Sign-in sessions, CSRF, the login throttle, and the audit trail.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, error_code, spawn_app, spawn_app_with};

#[tokio::test]
async fn login_sets_a_strict_http_only_cookie_and_returns_a_csrf_token() {
    let app = spawn_app().await;
    let user = app.create_user("Ann@Example.com", false).await;
    let res = app.login_response("ann@example.COM", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = res.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    assert!(cookie.starts_with("tessera_session="));
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http public URL");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["id"], json!(user.id));
    assert!(body["csrf_token"].as_str().unwrap().len() >= 32);
    assert!(body.get("password").is_none());
}

#[tokio::test]
async fn cookie_is_secure_when_the_public_url_is_https() {
    let app = spawn_app_with(|c| c.secure_cookies = true).await;
    app.create_user("ann@example.com", false).await;
    let res = app.login_response("ann@example.com", PASSWORD).await;
    assert!(res.headers().get("set-cookie").unwrap().to_str().unwrap().contains("; Secure"));
}

#[tokio::test]
async fn wrong_password_is_401_invalid_credentials() {
    let app = spawn_app().await;
    app.create_user("ann@example.com", false).await;
    let res = app.login_response("ann@example.com", "nope").await;
    assert!(res.headers().get("www-authenticate").is_some());
    assert_eq!(error_code(res, StatusCode::UNAUTHORIZED).await.0, "invalid_credentials");
}

#[tokio::test]
async fn unknown_account_is_the_same_401() {
    let app = spawn_app().await;
    let res = app.login_response("nobody@example.com", "whatever").await;
    assert_eq!(error_code(res, StatusCode::UNAUTHORIZED).await.0, "invalid_credentials");
}

#[tokio::test]
async fn failed_logins_are_throttled_per_account_with_retry_after() {
    let app = spawn_app().await;
    app.create_user("ann@example.com", false).await;
    for _ in 0..5 {
        let res = app.login_response("ann@example.com", "wrong").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // Even the right password is refused while throttled.
    let res = app.login_response("ann@example.com", PASSWORD).await;
    let retry_after: u64 = res.headers().get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    assert_eq!(error_code(res, StatusCode::TOO_MANY_REQUESTS).await.0, "too_many_requests");
}

#[tokio::test]
async fn failed_logins_are_throttled_per_address_across_accounts() {
    let app = spawn_app_with(|c| c.throttle.per_ip = 3).await;
    for i in 0..3 {
        app.login_response(&format!("user{i}@example.com"), "wrong").await;
    }
    let res = app.login_response("fresh@example.com", "wrong").await;
    assert!(res.headers().get("retry-after").is_some());
    assert_eq!(error_code(res, StatusCode::TOO_MANY_REQUESTS).await.0, "too_many_requests");
}

#[tokio::test]
async fn throttle_lifts_after_the_window() {
    let app = spawn_app_with(|c| {
        c.throttle.per_account = 1;
        c.throttle.window = Duration::from_secs(1);
    })
    .await;
    app.create_user("ann@example.com", false).await;
    app.login_response("ann@example.com", "wrong").await;
    assert_eq!(app.login_response("ann@example.com", PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.login_response("ann@example.com", PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn unsafe_method_without_csrf_token_is_403_csrf_failed() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let res = app
        .request(Method::POST, "/api/v2/tokens")
        .header("cookie", &session.cookie)
        .json(&json!({"name": "t", "scopes": ["read:tasks"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, StatusCode::FORBIDDEN).await.0, "csrf_failed");
}

#[tokio::test]
async fn unsafe_method_with_a_wrong_csrf_token_is_403_csrf_failed() {
    let app = spawn_app().await;
    let (_, ann) = app.signed_in("ann@example.com").await;
    let (_, bob) = app.signed_in("bob@example.com").await;
    let res = app
        .request(Method::POST, "/api/v2/tokens")
        .header("cookie", &ann.cookie)
        .header("x-csrf-token", &bob.csrf)
        .json(&json!({"name": "t", "scopes": ["read:tasks"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, StatusCode::FORBIDDEN).await.0, "csrf_failed");
}

#[tokio::test]
async fn safe_methods_need_no_csrf_token() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let res = app.request(Method::GET, "/api/v2/tokens").header("cookie", &session.cookie).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn me_shows_the_session_user_and_csrf_token() {
    let app = spawn_app().await;
    let (user, session) = app.signed_in("ann@example.com").await;
    let me: Value =
        app.as_session(&session, Method::GET, "/api/v2/auth/me").send().await.unwrap().json().await.unwrap();
    assert_eq!(me["user"]["id"], json!(user.id));
    assert_eq!(me["user"]["email"], "ann@example.com");
    assert_eq!(me["auth"], "session");
    assert_eq!(me["csrf_token"], session.csrf);
}

#[tokio::test]
async fn me_with_a_bearer_token_shows_its_scopes() {
    let app = spawn_app().await;
    let user = app.create_user("bot@example.com", false).await;
    let credential = app.issue_direct(&user, "read:tokens").await;
    let me: Value =
        app.as_bearer(&credential, Method::GET, "/api/v2/auth/me").send().await.unwrap().json().await.unwrap();
    assert_eq!(me["auth"], "token");
    assert_eq!(me["user"]["id"], json!(user.id));
    assert!(me["scopes"].as_array().unwrap().contains(&json!("read:tokens")));
}

#[tokio::test]
async fn logout_ends_the_session_and_clears_the_cookie() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let res = app.as_session(&session, Method::POST, "/api/v2/auth/logout").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert!(res.headers().get("set-cookie").unwrap().to_str().unwrap().contains("Max-Age=0"));
    let res = app.as_session(&session, Method::GET, "/api/v2/auth/me").send().await.unwrap();
    assert_eq!(error_code(res, StatusCode::UNAUTHORIZED).await.0, "session_expired");
}

#[tokio::test]
async fn expired_session_is_401() {
    let app = spawn_app_with(|c| c.session_ttl = chrono::Duration::seconds(1)).await;
    let (_, session) = app.signed_in("ann@example.com").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let res = app.as_session(&session, Method::GET, "/api/v2/tokens").send().await.unwrap();
    assert_eq!(error_code(res, StatusCode::UNAUTHORIZED).await.0, "session_expired");
}

#[tokio::test]
async fn every_management_action_is_audited_without_secrets() {
    let app = spawn_app().await;
    let (user, session) = app.signed_in("ann@example.com").await;
    app.login_response("ann@example.com", "wrong password").await;
    let token = app.issue(&session, "t", &["read:tasks"]).await;
    let path = format!("/api/v2/tokens/{}", token["id"].as_str().unwrap());
    app.as_session(&session, Method::PATCH, &path).json(&json!({"name": "u"})).send().await.unwrap();
    let rotated: Value =
        app.as_session(&session, Method::POST, &format!("{path}/rotate")).send().await.unwrap().json().await.unwrap();
    app.as_session(&session, Method::DELETE, &format!("/api/v2/tokens/{}", rotated["id"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    app.as_session(&session, Method::POST, "/api/v2/auth/logout").send().await.unwrap();

    let rows = app.store.recent_audit(100).await.unwrap();
    let actions: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
    for action in
        ["auth.login", "auth.login_failed", "token.issue", "token.patch", "token.rotate", "token.revoke", "auth.logout"]
    {
        assert!(actions.contains(&action), "{action} missing from {actions:?}");
    }
    let issue = rows.iter().find(|r| r.action == "token.issue").unwrap();
    assert_eq!(issue.actor_user_id, Some(user.id));
    assert_eq!(issue.ip.as_deref(), Some("127.0.0.1"));
    let failed = rows.iter().find(|r| r.action == "auth.login_failed").unwrap();
    assert_eq!(failed.actor_user_id, Some(user.id));
    let everything = serde_json::to_string(&rows).unwrap();
    for secret in [token["token"].as_str().unwrap(), rotated["token"].as_str().unwrap(), PASSWORD, "wrong password"] {
        assert!(!everything.contains(secret));
    }
    assert!(!everything.contains(&session.session_id));
}
