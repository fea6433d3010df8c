//! `POST /oauth/introspect` (RFC 7662) for direct servers: only the server a token is for
//! learns anything about it, and an inactive answer never says why.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

const NOTES_URL: &str = "https://notes.example.com/mcp";

struct Direct {
    app: TestApp,
    session: Session,
    client_id: String,
    secret: String,
}

async fn direct_server() -> Direct {
    direct_server_with(|_| {}).await
}

async fn direct_server_with(adjust: impl FnOnce(&mut tessera_api::ApiConfig) + Send + 'static) -> Direct {
    let app = spawn_app_with(adjust).await;
    app.create_user("admin@example.com", true).await;
    let session = app.login("admin@example.com").await;
    let res = app
        .as_session(&session, Method::POST, "/api/v2/servers")
        .json(&json!({"name": "notes", "url": NOTES_URL, "direct": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["resource"], NOTES_URL);
    let client_id = body["credentials"]["client_id"].as_str().unwrap().to_owned();
    let secret = body["credentials"]["client_secret"].as_str().unwrap().to_owned();
    Direct { app, session, client_id, secret }
}

impl Direct {
    async fn introspect_as(&self, client_id: &str, secret: &str, token: &str) -> reqwest::Response {
        self.app
            .request(Method::POST, "/oauth/introspect")
            .basic_auth(client_id, Some(secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
    }

    async fn introspect(&self, token: &str) -> Value {
        let res = self.introspect_as(&self.client_id, &self.secret, token).await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }

    async fn issue(&self, scopes: &[&str]) -> (String, String) {
        let t = self.app.issue(&self.session, "for-notes", scopes).await;
        (t["token"].as_str().unwrap().to_owned(), t["id"].as_str().unwrap().to_owned())
    }
}

#[tokio::test]
async fn a_token_for_the_server_is_active_with_its_scopes_for_that_server_and_its_claims() {
    let d = direct_server().await;
    let (token, id) = d.issue(&["write:notes"]).await;
    let answer = d.introspect(&token).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["scope"], "read:notes write:notes mcp:access");
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["jti"], id);
    assert_eq!(answer["iss"], PUBLIC_URL);
    assert!(answer["aud"].to_string().contains(NOTES_URL), "{answer}");
    for claim in ["sub", "exp", "iat", "nbf", "client_id"] {
        assert!(!answer[claim].is_null(), "{claim} missing in {answer}");
    }
}

/// The claims of a JWT, unverified.
fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn a_token_mixing_a_direct_servers_scopes_with_a_builtin_scope_is_refused_at_mint() {
    let d = direct_server().await;
    let res = d
        .app
        .as_session(&d.session, Method::POST, "/api/v2/tokens")
        .json(&json!({"name": "mixed", "scopes": ["read:notes", "read:tokens"]}))
        .send()
        .await
        .unwrap();
    let (code, body) = error_code(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(code, "direct_server_scopes_mixed");
    assert_eq!(body["details"], json!({"direct_servers": ["notes"], "other_scopes": ["read:tokens"]}));
}

#[tokio::test]
async fn a_token_mixing_a_direct_servers_scopes_with_a_gateway_servers_is_refused_at_mint() {
    let d = direct_server().await;
    let res = d
        .app
        .as_session(&d.session, Method::POST, "/api/v2/servers")
        .json(&json!({"name": "github", "url": "https://github.example.com/mcp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = d
        .app
        .as_session(&d.session, Method::POST, "/api/v2/tokens")
        .json(&json!({"name": "mixed", "scopes": ["read:notes", "read:github"]}))
        .send()
        .await
        .unwrap();
    let (code, _) = error_code(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(code, "direct_server_scopes_mixed");
}

#[tokio::test]
async fn a_token_for_a_direct_server_names_only_its_url_in_aud() {
    let d = direct_server().await;
    let (token, _) = d.issue(&["write:notes"]).await;
    assert_eq!(claims(&token)["aud"], NOTES_URL, "a one-element audience is a string (RFC 7519)");
}

#[tokio::test]
async fn introspection_echoes_only_the_calling_servers_url_as_aud() {
    let d = direct_server().await;
    let res = d
        .app
        .as_session(&d.session, Method::POST, "/api/v2/servers")
        .json(&json!({"name": "wiki", "url": "https://wiki.example.com/mcp", "direct": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let (token, _) = d.issue(&["read:notes", "read:wiki"]).await;
    let answer = d.introspect(&token).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["aud"], NOTES_URL);
}

#[tokio::test]
async fn a_token_for_a_direct_server_is_refused_at_the_api_and_at_mcp() {
    let d = direct_server().await;
    let (token, _) = d.issue(&["read:notes"]).await;
    let api = d.app.as_bearer(&token, Method::GET, "/api/v2/tokens").send().await.unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED, "a wrong audience, not a missing scope");
    let mcp = d
        .app
        .client
        .post(d.app.app.url("/mcp"))
        .bearer_auth(&token)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2025-06-18")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(mcp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn client_secret_post_authenticates_too() {
    let d = direct_server().await;
    let (token, _) = d.issue(&["read:notes"]).await;
    let res = d
        .app
        .request(Method::POST, "/oauth/introspect")
        .form(&[("token", token.as_str()), ("client_id", &d.client_id), ("client_secret", &d.secret)])
        .send()
        .await
        .unwrap();
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["active"], true);
}

#[tokio::test]
async fn a_wrong_or_missing_client_secret_is_401_with_a_basic_challenge() {
    let d = direct_server().await;
    let (token, _) = d.issue(&["read:notes"]).await;
    let wrong = d.introspect_as(&d.client_id, "tss_wrong", &token).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    assert_eq!(wrong.json::<Value>().await.unwrap()["error"], "invalid_client");
    let none =
        d.app.request(Method::POST, "/oauth/introspect").form(&[("token", token.as_str())]).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_for_another_audience_is_inactive_without_a_reason() {
    let d = direct_server().await;
    let (token, _) = d.issue(&["read:tokens"]).await;
    assert_eq!(d.introspect(&token).await, json!({"active": false}));
    assert_eq!(d.introspect("not-a-token").await, json!({"active": false}));
}

#[tokio::test]
async fn a_revoked_token_is_inactive() {
    let d = direct_server().await;
    let (token, id) = d.issue(&["read:notes"]).await;
    assert_eq!(d.introspect(&token).await["active"], true);
    let res = d.app.as_session(&d.session, Method::DELETE, &format!("/api/v2/tokens/{id}")).send().await.unwrap();
    assert!(res.status().is_success());
    assert_eq!(d.introspect(&token).await, json!({"active": false}));
}

#[tokio::test]
async fn an_expired_token_is_inactive() {
    let d = direct_server().await;
    let user = d.app.create_user("old@example.com", false).await;
    let minted = |issued_at, expires_at| tessera_testkit::TokenSpec {
        issued_at,
        expires_at,
        ..tessera_testkit::TokenSpec::new(user.id, "read:notes", PUBLIC_URL, NOTES_URL)
    };
    let now = chrono::Utc::now();
    let (live, _) =
        minted(now, now + chrono::Duration::hours(1)).insert(&d.app.store, &d.app.validator.key_ring()).await;
    assert_eq!(d.introspect(&live).await["active"], true);
    let past = now - chrono::Duration::days(2);
    let (expired, _) =
        minted(past, past + chrono::Duration::hours(1)).insert(&d.app.store, &d.app.validator.key_ring()).await;
    assert_eq!(d.introspect(&expired).await, json!({"active": false}));
}

#[tokio::test]
async fn a_narrowed_token_answers_with_the_narrowed_scope() {
    let d = direct_server().await;
    let (token, id) = d.issue(&["write:notes"]).await;
    let res = d
        .app
        .as_session(&d.session, Method::PATCH, &format!("/api/v2/tokens/{id}"))
        .json(&json!({"scopes": ["read:notes"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    assert_eq!(d.introspect(&token).await["scope"], "read:notes mcp:access");
}

#[tokio::test]
async fn rotated_credentials_keep_the_old_pair_working_for_the_grace() {
    let d = direct_server().await;
    let (token, _) = d.issue(&["read:notes"]).await;
    let rotate = |grace: u32| {
        d.app
            .as_session(&d.session, Method::POST, "/api/v2/servers/notes/credentials")
            .json(&json!({"grace_seconds": grace}))
            .send()
    };
    let res = rotate(3600).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let new: Value = res.json().await.unwrap();
    let (new_id, new_secret) = (new["client_id"].as_str().unwrap(), new["client_secret"].as_str().unwrap());
    assert_eq!(d.introspect_as(new_id, new_secret, &token).await.status(), StatusCode::OK);
    assert_eq!(d.introspect(&token).await["active"], true);
    // A rotation without grace ends every earlier pair at once.
    rotate(0).await.unwrap();
    assert_eq!(d.introspect_as(&d.client_id, &d.secret, &token).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(d.introspect_as(new_id, new_secret, &token).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_introspection_counts_as_a_use_of_the_token() {
    let d = direct_server().await;
    let (token, _) = d.issue(&["read:notes"]).await;
    let before = d.app.metering.usage.pending_len();
    d.introspect(&token).await;
    assert_eq!(d.app.metering.usage.pending_len(), before + 1);
}

#[tokio::test]
async fn the_authorization_server_metadata_names_the_introspection_endpoint() {
    let d = direct_server().await;
    let meta: Value = d
        .app
        .request(Method::GET, "/.well-known/oauth-authorization-server")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["introspection_endpoint"], format!("{PUBLIC_URL}/oauth/introspect"));
    assert_eq!(
        meta["introspection_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post"])
    );
}

#[tokio::test]
async fn repeated_wrong_secrets_are_429_slow_down_with_retry_after_and_right_ones_are_not_counted() {
    let d = direct_server_with(|c| c.throttle.client_auth_per_ip = 3).await;
    let (token, _) = d.issue(&["read:notes"]).await;
    // Successes before, between and after never count against the address.
    for _ in 0..5 {
        assert_eq!(d.introspect(&token).await["active"], true);
    }
    for _ in 0..3 {
        let wrong = d.introspect_as(&d.client_id, "tss_wrong", &token).await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    let throttled = d.introspect_as(&d.client_id, "tss_wrong", &token).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = throttled.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    assert_eq!(throttled.headers()["cache-control"], "no-store");
    let body: Value = throttled.json().await.unwrap();
    assert_eq!(body["error"], "slow_down");
    assert!(body["error_description"].is_string());
}

#[tokio::test]
async fn upstream_headers_on_a_direct_server_are_400_naming_the_field() {
    let d = direct_server().await;
    let patched = d
        .app
        .as_session(&d.session, Method::PATCH, "/api/v2/servers/notes")
        .json(&json!({"headers": {"X-Key": "secret"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::BAD_REQUEST);
    let body: Value = patched.json().await.unwrap();
    assert_eq!(body["error"], "direct_server_headers");
    assert_eq!(body["details"]["field"], "headers");
    let created = d
        .app
        .as_session(&d.session, Method::POST, "/api/v2/servers")
        .json(&json!({"name": "other", "url": "https://other.example.com/mcp", "direct": true, "headers": {"X-Key": "v"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::BAD_REQUEST);
    assert_eq!(created.json::<Value>().await.unwrap()["details"]["field"], "headers");
}

#[tokio::test]
async fn moving_a_direct_server_is_409_until_the_caller_accepts_that_its_tokens_stop_working_for_it() {
    let d = direct_server().await;
    let (old, _) = d.issue(&["read:notes"]).await;
    let (_other, _) = d.issue(&["read:tokens"]).await;
    let moved = "https://notes2.example.com/mcp";
    let refused = d
        .app
        .as_session(&d.session, Method::PATCH, "/api/v2/servers/notes")
        .json(&json!({"url": moved}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "direct_server_url_is_audience");
    assert!(body["message"].as_str().unwrap().contains("1 active token"), "{body}");
    assert_eq!(d.introspect(&old).await["active"], true, "nothing changed");

    let accepted = d
        .app
        .as_session(&d.session, Method::PATCH, "/api/v2/servers/notes")
        .json(&json!({"url": moved, "invalidate_tokens": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), StatusCode::OK);
    let body: Value = accepted.json().await.unwrap();
    assert_eq!(body["tokens_invalidated"], 1);
    assert_eq!(body["resource"], moved);
    assert_eq!(d.introspect(&old).await, json!({"active": false}));
    let (new, _) = d.issue(&["read:notes"]).await;
    assert_eq!(d.introspect(&new).await["active"], true);
}
