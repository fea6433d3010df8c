//! Every documented error has the one JSON shape, actix's own extractor errors included.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{error_code, spawn_app};

#[tokio::test]
async fn unknown_scope_is_400_naming_valid_scopes() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let res = app
        .as_session(&session, Method::POST, "/api/v2/tokens")
        .json(&json!({"name": "t", "scopes": ["read:tasks", "read:everything"]}))
        .send()
        .await
        .unwrap();
    let (code, body) = error_code(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(code, "unknown_scope");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("read:everything") && message.contains("write:context"), "{message}");
    assert_eq!(body["details"]["unknown"], json!(["read:everything"]));
    assert!(body["details"]["valid_scopes"].as_array().unwrap().contains(&json!("execute:mcp")));
}

#[tokio::test]
async fn empty_scopes_are_400() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let res = app
        .as_session(&session, Method::POST, "/api/v2/tokens")
        .json(&json!({"name": "t", "scopes": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, StatusCode::BAD_REQUEST).await.0, "invalid_scopes");
}

#[tokio::test]
async fn admin_scope_is_400_saying_cli_only() {
    let app = spawn_app().await;
    app.create_user("root@example.com", true).await;
    let session = app.login("root@example.com").await;
    let res = app
        .as_session(&session, Method::POST, "/api/v2/tokens")
        .json(&json!({"name": "t", "scopes": ["mcp:admin"]}))
        .send()
        .await
        .unwrap();
    let (code, body) = error_code(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(code, "admin_scope_forbidden");
    assert!(body["message"].as_str().unwrap().contains("CLI only"));
}

#[tokio::test]
async fn expiry_outside_1_to_365_days_is_400() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    for days in [0, 366] {
        let res = app
            .as_session(&session, Method::POST, "/api/v2/tokens")
            .json(&json!({"name": "t", "scopes": ["read:tasks"], "expires_in_days": days}))
            .send()
            .await
            .unwrap();
        assert_eq!(error_code(res, StatusCode::BAD_REQUEST).await.0, "invalid_expiry");
    }
}

#[tokio::test]
async fn rate_limit_outside_range_is_400() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let res = app
        .as_session(&session, Method::POST, "/api/v2/tokens")
        .json(&json!({"name": "t", "scopes": ["read:tasks"], "rate_limit_per_hour": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, StatusCode::BAD_REQUEST).await.0, "invalid_rate_limit");
}

#[tokio::test]
async fn empty_name_is_400() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let res = app
        .as_session(&session, Method::POST, "/api/v2/tokens")
        .json(&json!({"name": "  ", "scopes": ["read:tasks"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, StatusCode::BAD_REQUEST).await.0, "invalid_name");
}

#[tokio::test]
async fn malformed_json_is_a_json_400() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let res = app
        .as_session(&session, Method::POST, "/api/v2/tokens")
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, StatusCode::BAD_REQUEST).await.0, "malformed_json");
}

#[tokio::test]
async fn missing_field_is_a_json_400() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let res =
        app.as_session(&session, Method::POST, "/api/v2/tokens").json(&json!({"name": "t"})).send().await.unwrap();
    let (code, body) = error_code(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(code, "invalid_body");
    assert!(body["message"].as_str().unwrap().contains("scopes"));
}

#[tokio::test]
async fn wrong_content_type_is_a_json_415() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let res = app
        .as_session(&session, Method::POST, "/api/v2/tokens")
        .header("content-type", "text/plain")
        .body("name=t")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, StatusCode::UNSUPPORTED_MEDIA_TYPE).await.0, "unsupported_media_type");
}

#[tokio::test]
async fn oversized_body_is_a_json_413() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let res = app
        .as_session(&session, Method::POST, "/api/v2/tokens")
        .json(&json!({"name": "t", "scopes": ["read:tasks"], "description": "x".repeat(100_000)}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, StatusCode::PAYLOAD_TOO_LARGE).await.0, "payload_too_large");
}

#[tokio::test]
async fn bad_path_id_is_a_json_400() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let res = app.as_session(&session, Method::GET, "/api/v2/tokens/not-a-uuid").send().await.unwrap();
    assert_eq!(error_code(res, StatusCode::BAD_REQUEST).await.0, "invalid_path");
}

#[tokio::test]
async fn bad_query_is_a_json_400() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let res = app.as_session(&session, Method::GET, "/api/v2/tokens?status=bogus").send().await.unwrap();
    assert_eq!(error_code(res, StatusCode::BAD_REQUEST).await.0, "invalid_query");
}

#[tokio::test]
async fn limit_outside_1_to_100_is_400() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    for limit in [0, 101] {
        let res = app.as_session(&session, Method::GET, &format!("/api/v2/tokens?limit={limit}")).send().await.unwrap();
        assert_eq!(error_code(res, StatusCode::BAD_REQUEST).await.0, "invalid_limit");
    }
}

#[tokio::test]
async fn forged_cursor_is_400() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let res = app.as_session(&session, Method::GET, "/api/v2/tokens?cursor=abc").send().await.unwrap();
    assert_eq!(error_code(res, StatusCode::BAD_REQUEST).await.0, "invalid_cursor");
}

#[tokio::test]
async fn unknown_route_is_a_json_404() {
    let app = spawn_app().await;
    let res = app.request(Method::GET, "/api/v2/nothing/here").send().await.unwrap();
    assert_eq!(error_code(res, StatusCode::NOT_FOUND).await.0, "not_found");
}

#[tokio::test]
async fn wrong_method_is_a_json_405() {
    let app = spawn_app().await;
    let res = app.request(Method::PUT, "/api/v2/tokens").send().await.unwrap();
    assert_eq!(error_code(res, StatusCode::METHOD_NOT_ALLOWED).await.0, "method_not_allowed");
}

#[tokio::test]
async fn no_credentials_is_401_with_www_authenticate() {
    let app = spawn_app().await;
    let res = app.request(Method::GET, "/api/v2/tokens").send().await.unwrap();
    assert_eq!(res.headers().get("www-authenticate").unwrap(), r#"Bearer realm="tessera""#);
    assert_eq!(error_code(res, StatusCode::UNAUTHORIZED).await.0, "unauthenticated");
}

#[tokio::test]
async fn basic_scheme_is_a_401_challenge_without_an_error_code() {
    let app = spawn_app().await;
    let res =
        app.request(Method::GET, "/api/v2/tokens").header("Authorization", "Basic dXNlcjpwYXNz").send().await.unwrap();
    // RFC 6750 §3.1: another scheme carries no bearer credentials, so no `error=`.
    assert_eq!(res.headers().get("www-authenticate").unwrap(), r#"Bearer realm="tessera""#);
    assert_eq!(error_code(res, StatusCode::UNAUTHORIZED).await.0, "wrong_scheme");
}

#[tokio::test]
async fn unknown_body_field_is_400() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let res = app
        .as_session(&session, Method::POST, "/api/v2/tokens")
        .json(&json!({"name": "t", "scopes": ["read:tasks"], "expires_in_dayz": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, StatusCode::BAD_REQUEST).await.0, "invalid_body");
}

#[tokio::test]
async fn description_over_1000_characters_is_400() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let res = app
        .as_session(&session, Method::POST, "/api/v2/tokens")
        .json(&json!({"name": "t", "scopes": ["read:tasks"], "description": "x".repeat(1001)}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, StatusCode::BAD_REQUEST).await.0, "invalid_description");
}

#[tokio::test]
async fn patch_expiry_in_the_past_is_400() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let token = app.issue(&session, "t", &["read:tasks"]).await;
    let res = app
        .as_session(&session, Method::PATCH, &format!("/api/v2/tokens/{}", token["id"].as_str().unwrap()))
        .json(&json!({"expires_at": chrono::Utc::now() - chrono::Duration::hours(1)}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, StatusCode::BAD_REQUEST).await.0, "expiry_in_past");
}

#[tokio::test]
async fn revoke_reason_over_500_characters_is_400() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let token = app.issue(&session, "t", &["read:tasks"]).await;
    let res = app
        .as_session(&session, Method::DELETE, &format!("/api/v2/tokens/{}", token["id"].as_str().unwrap()))
        .json(&json!({"reason": "x".repeat(501)}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res, StatusCode::BAD_REQUEST).await.0, "invalid_reason");
}

#[tokio::test]
async fn rotating_a_token_twice_is_409_already_rotated() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    let token = app.issue(&session, "t", &["read:tasks"]).await;
    let path = format!("/api/v2/tokens/{}/rotate", token["id"].as_str().unwrap());
    let first = app.as_session(&session, Method::POST, &path).json(&json!({"grace_seconds": 60})).send().await;
    assert_eq!(first.unwrap().status(), StatusCode::CREATED);
    let res = app.as_session(&session, Method::POST, &path).json(&json!({"grace_seconds": 60})).send().await.unwrap();
    assert_eq!(error_code(res, StatusCode::CONFLICT).await.0, "already_rotated");
}

#[tokio::test]
async fn logout_with_a_bearer_token_is_400_not_a_session() {
    let app = spawn_app().await;
    let user = app.create_user("bot@example.com", false).await;
    let credential = app.issue_direct(&user, "write:tokens").await;
    let res = app.as_bearer(&credential, Method::POST, "/api/v2/auth/logout").send().await.unwrap();
    assert_eq!(error_code(res, StatusCode::BAD_REQUEST).await.0, "not_a_session");
}

#[tokio::test]
async fn validate_an_expired_token_is_401_expired() {
    let app = spawn_app().await;
    let user = app.create_user("ann@example.com", false).await;
    let then = chrono::Utc::now() - chrono::Duration::days(3);
    let secret = app.issue_direct_at(&user, "read:tasks", then, then + chrono::Duration::days(1)).await;
    let (status, v) = app.validate(&secret).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"], "expired");
    assert_eq!(v["active"], false);
}

#[tokio::test]
async fn validate_a_token_without_a_row_is_401_not_found() {
    let app = spawn_app().await;
    let user = app.create_user("ann@example.com", false).await;
    let secret = app.mint_without_row(&app.validator.key_ring(), &user).await;
    let (status, v) = app.validate(&secret).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"], "not_found");
}

#[tokio::test]
async fn validate_a_token_with_a_forged_signature_is_401_invalid_signature() {
    let app = spawn_app().await;
    let user = app.create_user("ann@example.com", false).await;
    let real = app.issue_direct(&user, "read:tasks").await;
    let other = app.issue_direct(&user, "write:tasks").await;
    // The first token's header and claims with the second token's signature.
    let (signed, _) = real.rsplit_once('.').unwrap();
    let (_, signature) = other.rsplit_once('.').unwrap();
    let (status, v) = app.validate(&format!("{signed}.{signature}")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"], "invalid_signature");
}

#[tokio::test]
async fn validate_a_token_signed_by_an_unknown_key_is_401_unknown_key() {
    let app = spawn_app().await;
    let user = app.create_user("ann@example.com", false).await;
    let other = tessera_core::KeyRing::hs256(b"another secret of at least thirty-two bytes").unwrap();
    let secret = app.mint_without_row(&other, &user).await;
    let (status, v) = app.validate(&secret).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"], "unknown_key");
}

#[tokio::test]
async fn unreachable_database_is_503_with_retry_after() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("ann@example.com").await;
    app.store.close().await;
    let res = app.as_session(&session, Method::GET, "/api/v2/tokens").send().await.unwrap();
    assert!(res.headers().get("retry-after").is_some());
    assert_eq!(error_code(res, StatusCode::SERVICE_UNAVAILABLE).await.0, "temporarily_unavailable");
}

#[tokio::test]
async fn nul_characters_in_token_fields_and_the_name_filter_are_400_naming_the_field() {
    let app = spawn_app().await;
    let (_, session) = app.signed_in("nul@example.com").await;
    let res = app
        .as_session(&session, Method::POST, "/api/v2/tokens")
        .json(&json!({"name": "a\u{0}b", "scopes": ["read:tasks"]}))
        .send()
        .await
        .unwrap();
    let (code, body) = error_code(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(code, "invalid_characters");
    assert!(body["message"].as_str().unwrap().contains("name"), "{body}");
    let token = app.issue(&session, "t", &["read:tasks"]).await;
    let res = app
        .as_session(&session, Method::DELETE, &format!("/api/v2/tokens/{}", token["id"].as_str().unwrap()))
        .json(&json!({"reason": "\u{0}"}))
        .send()
        .await
        .unwrap();
    let (_, body) = error_code(res, StatusCode::BAD_REQUEST).await;
    assert!(body["message"].as_str().unwrap().contains("reason"), "{body}");
    let res = app.as_session(&session, Method::GET, "/api/v2/tokens?q=a%00b").send().await.unwrap();
    assert_eq!(error_code(res, StatusCode::BAD_REQUEST).await.0, "invalid_query");
}
