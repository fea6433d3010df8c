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
async fn nul_byte_in_the_login_email_is_400_naming_the_field() {
    let app = spawn_app().await;
    app.create_user("ann@example.com", false).await;
    let res = app.login_response("ann\u{0}@example.com", PASSWORD).await;
    let (code, body) = error_code(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(code, "invalid_email");
    assert_eq!(body["details"]["field"], "email");
    // Refused at the edge: nothing reached the audit log either.
    let events = app.store.recent_audit(10).await.unwrap();
    assert!(events.iter().all(|e| !e.action.starts_with("auth.")), "{events:?}");
}

#[tokio::test]
async fn login_email_longer_than_320_characters_is_400_before_any_lookup() {
    let app = spawn_app().await;
    let long = format!("{}@example.com", "a".repeat(320));
    let res = app.login_response(&long, "whatever").await;
    let (code, body) = error_code(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(code, "invalid_email");
    assert!(body["message"].as_str().unwrap().contains("320"));
    let exactly = format!("{}@example.com", "a".repeat(320 - "@example.com".len()));
    let res = app.login_response(&exactly, "whatever").await;
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
    assert_eq!(error_code(res, StatusCode::TOO_MANY_REQUESTS).await.0, "rate_limited");
}

/// Peak resident memory of this process so far (nextest runs each test in its own process).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_flood_of_concurrent_wrong_logins_checks_at_most_five_passwords_and_stays_small() {
    let app = spawn_app().await;
    app.create_user("ann@example.com", false).await;
    let before = peak_rss_kib();
    let attempts = (0..200).map(|i| {
        let app = &app;
        async move { app.login_response("ann@example.com", &format!("wrong-{i}")).await.status() }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    let grown_mib = peak_rss_kib().saturating_sub(before) / 1024;
    let checks = app.throttle.password_checks();
    assert!(checks <= 5, "{checks} password checks ran");
    let unauthorized = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let throttled = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(unauthorized as u64, checks, "{statuses:?}");
    assert_eq!(unauthorized + throttled, 200, "{statuses:?}");
    assert!(grown_mib < 200, "peak RSS grew by {grown_mib} MiB");
    // Refusals are not audited one by one.
    let failed = app.store.recent_audit(500).await.unwrap();
    let throttled_rows = failed.iter().filter(|e| e.action == "auth.login_failed").count();
    assert!(throttled_rows <= 5 + 1, "{throttled_rows} audit rows for one flood");
}

#[tokio::test]
async fn password_checks_beyond_the_concurrency_bound_wait_then_get_503_with_retry_after() {
    let app = spawn_app_with(|c| {
        c.throttle.concurrent_checks = 1;
        c.throttle.check_wait = Duration::from_millis(1);
        c.throttle.per_ip = 1000;
        c.throttle.per_account = 1000;
    })
    .await;
    let attempts = (0..20).map(|i| {
        let app = &app;
        async move { app.login_response(&format!("user{i}@example.com"), "wrong").await }
    });
    let responses = futures_util::future::join_all(attempts).await;
    let busy: Vec<&reqwest::Response> =
        responses.iter().filter(|r| r.status() == StatusCode::SERVICE_UNAVAILABLE).collect();
    assert!(!busy.is_empty(), "one slot, twenty concurrent checks: some must be turned away");
    assert!(busy.iter().all(|r| r.headers().get("retry-after").is_some()));
    assert!(app.throttle.password_checks() < 20);
}

#[tokio::test]
async fn failed_logins_are_throttled_per_address_across_accounts() {
    let app = spawn_app_with(|c| c.throttle.per_ip = 3).await;
    for i in 0..3 {
        app.login_response(&format!("user{i}@example.com"), "wrong").await;
    }
    let res = app.login_response("fresh@example.com", "wrong").await;
    assert!(res.headers().get("retry-after").is_some());
    assert_eq!(error_code(res, StatusCode::TOO_MANY_REQUESTS).await.0, "rate_limited");
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

#[tokio::test]
async fn forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() {
    let app = spawn_app_with(|c| c.throttle.per_ip = 2).await;
    let spoofed = |i: usize| {
        app.request(Method::POST, "/api/v2/auth/login")
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .json(&json!({"email": format!("user{i}@example.com"), "password": "wrong"}))
            .send()
    };
    // Rotating the header does not buy a fresh per-address budget.
    assert_eq!(spoofed(1).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(spoofed(2).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(spoofed(3).await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    let events = app.store.recent_audit(10).await.unwrap();
    assert!(events.iter().all(|e| e.ip.as_deref() == Some("127.0.0.1")), "{events:?}");
}

#[tokio::test]
async fn a_trusted_proxy_names_the_client_for_the_throttle_and_the_audit_log() {
    let app = spawn_app_with(|c| {
        c.throttle.per_ip = 2;
        c.trusted_proxies = tessera_auth::TrustedProxies::new(vec!["127.0.0.0/8".parse().unwrap()]);
    })
    .await;
    let via_proxy = |client: &str, i: usize| {
        app.request(Method::POST, "/api/v2/auth/login")
            .header("x-forwarded-for", format!("6.6.6.6, {client}"))
            .json(&json!({"email": format!("user{i}@example.com"), "password": "wrong"}))
            .send()
    };
    for i in 0..2 {
        assert_eq!(via_proxy("198.51.100.7", i).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(via_proxy("198.51.100.7", 9).await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    // Another client behind the same proxy has its own budget.
    assert_eq!(via_proxy("198.51.100.8", 10).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let events = app.store.recent_audit(10).await.unwrap();
    assert!(events.iter().any(|e| e.ip.as_deref() == Some("198.51.100.7")), "{events:?}");
    assert!(events.iter().all(|e| e.ip.as_deref() != Some("6.6.6.6")), "{events:?}");
}
