//! The OAuth 2.1 authorization server, driven like an MCP client and a person at the consent
//! page would: register, authorize, consent (the session JSON API), token, refresh, revoke.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::header::LOCATION;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{PUBLIC_URL, Session, TestApp, spawn_app, spawn_app_with};

const REDIRECT: &str = "http://127.0.0.1:4567/callback";
const VERIFIER: &str = "a-verifier-of-at-least-forty-three-characters-0123456789";

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn query_of(url: &str) -> Vec<(String, String)> {
    let url = reqwest::Url::parse(url).unwrap();
    url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fn param(url: &str, name: &str) -> Option<String> {
    query_of(url).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// An authorization request's query, with `extra` replacing or adding parameters.
fn authorize_query(client_id: &str, extra: &[(&str, &str)]) -> String {
    let challenge = challenge(VERIFIER);
    let mut pairs: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("state", "xyz"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("scope", "read:tasks write:tasks"),
    ];
    for (k, v) in extra {
        pairs.retain(|(name, _)| name != k);
        pairs.push((k, v));
    }
    let mut s = reqwest::Url::parse("http://x/").unwrap();
    s.query_pairs_mut().extend_pairs(pairs.iter().filter(|(_, v)| !v.is_empty()));
    s.query().unwrap().to_owned()
}

async fn register(app: &TestApp) -> String {
    let res = app
        .request(Method::POST, "/oauth/register")
        .json(&json!({"client_name": "Test Client", "redirect_uris": ["http://127.0.0.1/callback"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    body["client_id"].as_str().unwrap().to_owned()
}

/// What the consent page is shown for the authorization request `query`.
async fn consent_view(app: &TestApp, session: &Session, query: &str) -> Value {
    let path = format!("/api/v2/oauth/consent?request={}", urlencode(query));
    app.as_session(session, Method::GET, &path).send().await.unwrap().json().await.unwrap()
}

/// The person's decision on the consent page; returns where the browser is sent.
async fn consent(app: &TestApp, session: &Session, query: &str, decision: Value) -> (StatusCode, Value) {
    let mut body = decision;
    body["request"] = json!(query);
    let res = app.as_session(session, Method::POST, "/api/v2/oauth/consent").json(&body).send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

/// Approves `scopes`; returns the code.
async fn approve(app: &TestApp, session: &Session, query: &str, scopes: &[&str]) -> String {
    let (status, body) = consent(app, session, query, json!({"approve": true, "scopes": scopes})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    param(body["redirect_to"].as_str().unwrap(), "code").unwrap()
}

async fn token(app: &TestApp, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let res = app.request(Method::POST, "/oauth/token").form(form).send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap())
}

async fn exchange(app: &TestApp, client_id: &str, code: &str, verifier: &str) -> (StatusCode, Value) {
    token(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
            ("client_id", client_id),
        ],
    )
    .await
}

async fn refresh(app: &TestApp, client_id: &str, refresh_token: &str) -> (StatusCode, Value) {
    token(app, &[("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", client_id)]).await
}

/// A registered client, a signed-in person, and a grant's first token response.
async fn granted(app: &TestApp) -> (String, Session, Value) {
    let client = register(app).await;
    let (_, session) = app.signed_in("alice@example.com").await;
    let code = approve(app, &session, &authorize_query(&client, &[]), &["read:tasks", "write:tasks"]).await;
    let (status, body) = exchange(app, &client, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (client, session, body)
}

#[tokio::test]
async fn metadata_advertises_s256_pkce_iss_and_the_endpoints() {
    let app = spawn_app().await;
    let res = app.request(Method::GET, "/.well-known/oauth-authorization-server").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["issuer"], PUBLIC_URL);
    assert_eq!(doc["token_endpoint"], format!("{PUBLIC_URL}/oauth/token"));
    assert_eq!(doc["authorization_endpoint"], format!("{PUBLIC_URL}/oauth/authorize"));
    assert_eq!(doc["registration_endpoint"], format!("{PUBLIC_URL}/oauth/register"));
    assert_eq!(doc["revocation_endpoint"], format!("{PUBLIC_URL}/oauth/revoke"));
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(doc["grant_types_supported"], json!(["authorization_code", "refresh_token"]));
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(doc["token_endpoint_auth_methods_supported"], json!(["none"]));
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert!(!doc["scopes_supported"].as_array().unwrap().contains(&json!("mcp:admin")));
}

#[tokio::test]
async fn with_the_authorization_server_off_its_endpoints_are_gone() {
    let app = spawn_app_with(|c| c.oauth = None).await;
    for (method, path) in [
        (Method::GET, "/.well-known/oauth-authorization-server"),
        (Method::POST, "/oauth/register"),
        (Method::GET, "/api/v2/oauth/consent?request=x"),
    ] {
        let res = app.request(method, path).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn rotating_a_grant_is_refused_its_client_refreshes_it() {
    let app = spawn_app().await;
    let (_, session, tokens) = granted(&app).await;
    let (_, valid) = app.validate(tokens["access_token"].as_str().unwrap()).await;
    let id = valid["id"].as_str().unwrap();
    let res = app.as_session(&session, Method::POST, &format!("/api/v2/tokens/{id}/rotate")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "oauth_grant");
}

#[tokio::test]
async fn admins_see_the_registered_clients_and_others_do_not() {
    let app = spawn_app().await;
    let client = register(&app).await;
    app.create_user("root@example.com", true).await;
    let admin = app.login("root@example.com").await;
    let res = app.as_session(&admin, Method::GET, "/api/v2/oauth/clients").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let list: Value = res.json().await.unwrap();
    assert_eq!(list[0]["client_id"], client);
    assert_eq!(list[0]["kind"], "dynamic");
    let (_, person) = app.signed_in("alice@example.com").await;
    let res = app.as_session(&person, Method::GET, "/api/v2/oauth/clients").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_client_list_counts_each_clients_grants_in_force() {
    let app = spawn_app().await;
    let (client, session, tokens) = granted(&app).await;
    let idle = register(&app).await;
    app.create_user("root@example.com", true).await;
    let admin = app.login("root@example.com").await;
    let grants = |list: &Value, id: &str| {
        list.as_array().unwrap().iter().find(|c| c["client_id"] == id).map(|c| c["active_grants"].clone())
    };
    let list: Value =
        app.as_session(&admin, Method::GET, "/api/v2/oauth/clients").send().await.unwrap().json().await.unwrap();
    assert_eq!(grants(&list, &client), Some(json!(1)));
    assert_eq!(grants(&list, &idle), Some(json!(0)));
    let (_, valid) = app.validate(tokens["access_token"].as_str().unwrap()).await;
    let id = valid["id"].as_str().unwrap();
    let res = app.as_session(&session, Method::DELETE, &format!("/api/v2/tokens/{id}")).send().await.unwrap();
    assert!(res.status().is_success());
    let list: Value =
        app.as_session(&admin, Method::GET, "/api/v2/oauth/clients").send().await.unwrap().json().await.unwrap();
    assert_eq!(grants(&list, &client), Some(json!(0)), "a revoked grant is not in force");
}

#[tokio::test]
async fn a_client_registered_a_day_ago_that_never_got_a_grant_is_dropped() {
    let app = spawn_app().await;
    let stale = register(&app).await;
    let (used, _, _) = granted(&app).await;
    sqlx::query("UPDATE oauth_clients SET created_at = created_at - interval '2 days'")
        .execute(app.store.pool())
        .await
        .unwrap();
    register(&app).await;
    let left: Vec<String> =
        sqlx::query_scalar("SELECT id FROM oauth_clients").fetch_all(app.store.pool()).await.unwrap();
    assert!(!left.contains(&stale), "{left:?}");
    assert!(left.contains(&used), "{left:?}");
}

#[tokio::test]
async fn browser_clients_get_cors_preflights_on_the_token_endpoint() {
    let app = spawn_app().await;
    let res = app
        .request(Method::OPTIONS, "/oauth/token")
        .header("Origin", "https://claude.ai")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    assert!(res.headers()["access-control-allow-methods"].to_str().unwrap().contains("POST"));
}

#[tokio::test]
async fn authorize_hands_a_valid_request_to_the_consent_page() {
    let app = spawn_app().await;
    let client = register(&app).await;
    let query = authorize_query(&client, &[("redirect_uri", "http://127.0.0.1:49152/callback")]);
    let res = app.request(Method::GET, &format!("/oauth/authorize?{query}")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(res.headers()[LOCATION], format!("/#/oauth/consent?{query}").as_str());
}

#[tokio::test]
async fn an_unknown_client_gets_an_error_page_never_a_redirect() {
    let app = spawn_app().await;
    let res =
        app.request(Method::GET, &format!("/oauth/authorize?{}", authorize_query("nope", &[]))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers().get(LOCATION).is_none());
    assert!(res.text().await.unwrap().contains("invalid_client"));
}

#[tokio::test]
async fn a_wrong_redirect_uri_gets_an_error_page_never_a_redirect() {
    let app = spawn_app().await;
    let client = register(&app).await;
    let query = authorize_query(&client, &[("redirect_uri", "https://evil.example/callback")]);
    let res = app.request(Method::GET, &format!("/oauth/authorize?{query}")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get(LOCATION).is_none());
}

/// A client anyone could have registered, whose redirect URI is someone else's site.
async fn register_redirecting_to(app: &TestApp, redirect_uri: &str) -> String {
    let res = app
        .request(Method::POST, "/oauth/register")
        .json(&json!({"client_name": "Friendly Client", "redirect_uris": [redirect_uri]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json::<Value>().await.unwrap()["client_id"].as_str().unwrap().to_owned()
}

/// A refused authorization request: what is wrong, the parameters that make it so, and the
/// error code the answer names.
type Refusal<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

#[tokio::test]
async fn every_refused_authorization_request_of_a_registered_client_ends_on_tessera_s_error_page() {
    let app = spawn_app().await;
    let evil = "https://evil.example/landing";
    let client = register_redirecting_to(&app, evil).await;
    let long_state = "s".repeat(1001);
    let cases: [Refusal<'_>; 8] = [
        ("another response_type", &[("response_type", "token")], "unsupported_response_type"),
        ("no response_type", &[("response_type", "")], "unsupported_response_type"),
        ("no PKCE", &[("code_challenge", ""), ("code_challenge_method", "")], "invalid_request"),
        ("plain PKCE", &[("code_challenge_method", "plain"), ("code_challenge", VERIFIER)], "invalid_request"),
        ("a malformed challenge", &[("code_challenge", "short")], "invalid_request"),
        ("an unknown scope", &[("scope", "root")], "invalid_scope"),
        ("a resource Tessera does not protect", &[("resource", "https://other.example/mcp")], "invalid_target"),
        ("a state over 1000 characters", &[("state", &long_state)], "invalid_request"),
    ];
    for (case, extra, error) in cases {
        let mut extra = extra.to_vec();
        extra.push(("redirect_uri", evil));
        let query = authorize_query(&client, &extra);
        let res = app.request(Method::GET, &format!("/oauth/authorize?{query}")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{case}");
        assert!(res.headers().get(LOCATION).is_none(), "{case}: redirected to {:?}", res.headers().get(LOCATION));
        assert!(res.text().await.unwrap().contains(error), "{case}: not {error}");
    }
}

#[tokio::test]
async fn approval_redirects_with_code_state_and_iss_and_the_grant_is_a_listed_token() {
    let app = spawn_app().await;
    let client = register(&app).await;
    let (_, session) = app.signed_in("alice@example.com").await;
    let query = authorize_query(&client, &[]);
    let (status, body) = consent(&app, &session, &query, json!({"approve": true, "scopes": ["read:tasks"]})).await;
    assert_eq!(status, StatusCode::OK);
    let to = body["redirect_to"].as_str().unwrap();
    assert!(to.starts_with(REDIRECT));
    assert_eq!(param(to, "state").as_deref(), Some("xyz"));
    assert_eq!(param(to, "iss").as_deref(), Some(PUBLIC_URL));
    let code = param(to, "code").unwrap();
    let (status, tokens) = exchange(&app, &client, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "read:tasks");
    assert!(tokens["expires_in"].as_i64().unwrap() <= 3600);
    let (status, valid) = app.validate(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{valid}");
    let list: Value =
        app.as_session(&session, Method::GET, "/api/v2/tokens").send().await.unwrap().json().await.unwrap();
    let grant = &list["items"][0];
    assert_eq!(grant["id"], valid["id"]);
    assert_eq!(grant["oauth_client"]["id"], client);
    assert_eq!(grant["oauth_client"]["name"], "Test Client");
}

#[tokio::test]
async fn the_access_token_names_the_client_and_the_resource() {
    let app = spawn_app().await;
    let (client, _, tokens) = granted(&app).await;
    let jwt = tokens["access_token"].as_str().unwrap();
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jwt.split('.').next().unwrap()).unwrap()).unwrap();
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jwt.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["client_id"], client);
    assert_eq!(claims["aud"], format!("{PUBLIC_URL}/mcp"));
}

#[tokio::test]
async fn a_pkce_verifier_that_does_not_match_is_invalid_grant() {
    let app = spawn_app().await;
    let client = register(&app).await;
    let (_, session) = app.signed_in("alice@example.com").await;
    let code = approve(&app, &session, &authorize_query(&client, &[]), &["read:tasks"]).await;
    let (status, body) = exchange(&app, &client, &code, &"x".repeat(50)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn a_token_request_with_another_redirect_uri_is_invalid_grant() {
    let app = spawn_app().await;
    let client = register(&app).await;
    let (_, session) = app.signed_in("alice@example.com").await;
    let code = approve(&app, &session, &authorize_query(&client, &[]), &["read:tasks"]).await;
    let (status, body) = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9999/other"),
            ("code_verifier", VERIFIER),
            ("client_id", &client),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_what_it_produced() {
    let app = spawn_app().await;
    let client = register(&app).await;
    let (_, session) = app.signed_in("alice@example.com").await;
    let code = approve(&app, &session, &authorize_query(&client, &[]), &["read:tasks"]).await;
    let (_, first) = exchange(&app, &client, &code, VERIFIER).await;
    let (status, body) = exchange(&app, &client, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    let (status, _) = app.validate(first["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = refresh(&app, &client, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_expired_code_is_invalid_grant() {
    let app = spawn_app().await;
    let client = register(&app).await;
    let (_, session) = app.signed_in("alice@example.com").await;
    let code = approve(&app, &session, &authorize_query(&client, &[]), &["read:tasks"]).await;
    sqlx::query("UPDATE oauth_codes SET created_at = created_at - interval '2 minutes', expires_at = expires_at - interval '2 minutes'")
        .execute(app.store.pool())
        .await
        .unwrap();
    let (status, body) = exchange(&app, &client, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn refresh_rotates_the_refresh_token_and_the_previous_access_token_stops() {
    let app = spawn_app().await;
    let (client, _, first) = granted(&app).await;
    // Signing is deterministic: within the same second the new access token would be the
    // very same string as the old one.
    next_second().await;
    let (status, second) = refresh(&app, &client, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    let (status, _) = app.validate(second["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.validate(first["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = refresh(&app, &client, second["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_the_grant() {
    let app = spawn_app().await;
    let (client, _, first) = granted(&app).await;
    let (_, second) = refresh(&app, &client, first["refresh_token"].as_str().unwrap()).await;
    let (status, body) = refresh(&app, &client, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    let (status, _) = app.validate(second["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = refresh(&app, &client, second["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_events ORDER BY id").fetch_all(app.store.pool()).await.unwrap();
    assert!(actions.contains(&"oauth.reuse_detected".to_owned()), "{actions:?}");
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_the_tokens_the_grant_minted_with_audit_and_alert() {
    let app = spawn_app().await;
    let client = register(&app).await;
    let (_, session) = app.signed_in("alice@example.com").await;
    let scopes = ["read:tasks", "read:tokens", "write:tokens"];
    let query = authorize_query(&client, &[("scope", "read:tasks read:tokens write:tokens")]);
    let code = approve(&app, &session, &query, &scopes).await;
    let (_, first) = exchange(&app, &client, &code, VERIFIER).await;
    let access = first["access_token"].as_str().unwrap();
    let (_, valid) = app.validate(access).await;
    let grant = valid["id"].as_str().unwrap().to_owned();
    let res = app
        .as_bearer(access, Method::POST, "/api/v2/tokens")
        .json(&json!({"name": "minted by the grant", "scopes": ["read:tasks"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let child: Value = res.json().await.unwrap();
    let child_id = child["id"].as_str().unwrap().to_owned();
    refresh(&app, &client, first["refresh_token"].as_str().unwrap()).await;
    let (status, body) = refresh(&app, &client, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    let (status, _) = app.validate(child["token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the token the grant minted is revoked with it");
    let revoked: Vec<String> =
        sqlx::query_scalar("SELECT token_id::text FROM audit_events WHERE action = 'token.revoke' ORDER BY id")
            .fetch_all(app.store.pool())
            .await
            .unwrap();
    assert_eq!(revoked, [grant.clone(), child_id.clone()]);
    let mut alerted: Vec<String> =
        sqlx::query_scalar("SELECT token_id::text FROM alert_events WHERE kind = 'token.revoked'")
            .fetch_all(app.store.pool())
            .await
            .unwrap();
    alerted.sort();
    let mut expected = vec![grant, child_id];
    expected.sort();
    assert_eq!(alerted, expected);
}

#[tokio::test]
async fn a_refresh_token_of_another_client_is_invalid_grant() {
    let app = spawn_app().await;
    let (_, _, first) = granted(&app).await;
    let other = register(&app).await;
    let (status, body) = refresh(&app, &other, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn a_denied_consent_sends_access_denied_with_state_and_iss() {
    let app = spawn_app().await;
    let client = register(&app).await;
    let (_, session) = app.signed_in("alice@example.com").await;
    let (status, body) = consent(&app, &session, &authorize_query(&client, &[]), json!({"approve": false})).await;
    assert_eq!(status, StatusCode::OK);
    let to = body["redirect_to"].as_str().unwrap();
    assert_eq!(param(to, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(to, "state").as_deref(), Some("xyz"));
    assert_eq!(param(to, "iss").as_deref(), Some(PUBLIC_URL));
    assert!(param(to, "code").is_none());
}

#[tokio::test]
async fn a_scope_the_user_unticked_is_not_granted() {
    let app = spawn_app().await;
    let client = register(&app).await;
    let (_, session) = app.signed_in("alice@example.com").await;
    let code = approve(&app, &session, &authorize_query(&client, &[]), &["read:tasks"]).await;
    let (_, tokens) = exchange(&app, &client, &code, VERIFIER).await;
    let (_, valid) = app.validate(tokens["access_token"].as_str().unwrap()).await;
    let scopes = valid["scopes"].as_array().unwrap();
    assert!(scopes.contains(&json!("read:tasks")));
    assert!(!scopes.contains(&json!("write:tasks")));
}

#[tokio::test]
async fn a_scope_that_was_not_requested_cannot_be_approved() {
    let app = spawn_app().await;
    let client = register(&app).await;
    let (_, session) = app.signed_in("alice@example.com").await;
    let query = authorize_query(&client, &[]);
    let (status, _) = consent(&app, &session, &query, json!({"approve": true, "scopes": ["write:tokens"]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn mcp_admin_is_never_offered_nor_grantable_even_to_an_admin() {
    let app = spawn_app().await;
    let client = register(&app).await;
    app.create_user("root@example.com", true).await;
    let session = app.login("root@example.com").await;
    let query = authorize_query(&client, &[("scope", "mcp:admin read:tasks")]);
    let view: Value = consent_view(&app, &session, &query).await;
    assert_eq!(view["scopes"], json!(["read:tasks"]), "{view}");
    assert_eq!(view["client_name"], "Test Client");
    let (status, _) = consent(&app, &session, &query, json!({"approve": true, "scopes": ["mcp:admin"]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_client_asking_mcp_access_is_offered_reads_and_execute_ticked_and_writes_unticked() {
    let app = spawn_app().await;
    let client = register(&app).await;
    let (_, session) = app.signed_in("alice@example.com").await;
    for scope in ["mcp:access", ""] {
        let query = authorize_query(&client, &[("scope", scope)]);
        let view: Value = consent_view(&app, &session, &query).await;
        assert_eq!(view["scopes"], json!(["execute:mcp", "read:agents", "read:context", "read:tasks"]), "{scope:?}");
        assert_eq!(
            view["offered"],
            json!([
                "execute:mcp",
                "read:agents",
                "read:context",
                "read:tasks",
                "write:agents",
                "write:context",
                "write:tasks"
            ]),
            "{scope:?}"
        );
        let ticked: Vec<&str> = view["scopes"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
        let code = approve(&app, &session, &query, &ticked).await;
        let (_, tokens) = exchange(&app, &client, &code, VERIFIER).await;
        assert_eq!(tokens["scope"], "execute:mcp read:agents read:context read:tasks", "{scope:?}");
    }
}

#[tokio::test]
async fn consent_needs_the_csrf_token_of_the_session() {
    let app = spawn_app().await;
    let client = register(&app).await;
    let (_, session) = app.signed_in("alice@example.com").await;
    let res = app
        .request(Method::POST, "/api/v2/oauth/consent")
        .header("Cookie", &session.cookie)
        .json(&json!({"request": authorize_query(&client, &[]), "approve": true, "scopes": ["read:tasks"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn revoking_the_grant_in_the_api_cuts_its_access_and_refresh_tokens() {
    let app = spawn_app().await;
    let (client, session, tokens) = granted(&app).await;
    let (_, valid) = app.validate(tokens["access_token"].as_str().unwrap()).await;
    let id = valid["id"].as_str().unwrap();
    let res = app.as_session(&session, Method::DELETE, &format!("/api/v2/tokens/{id}")).send().await.unwrap();
    assert!(res.status().is_success());
    let (status, _) = app.validate(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = refresh(&app, &client, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn narrowing_the_grant_narrows_its_access_token_at_once() {
    let app = spawn_app().await;
    let (_, session, tokens) = granted(&app).await;
    let access = tokens["access_token"].as_str().unwrap();
    let (_, valid) = app.validate(access).await;
    let id = valid["id"].as_str().unwrap();
    let res = app
        .as_session(&session, Method::PATCH, &format!("/api/v2/tokens/{id}"))
        .json(&json!({"scopes": ["read:tasks"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (_, valid) = app.validate(access).await;
    assert!(!valid["scopes"].as_array().unwrap().contains(&json!("write:tasks")));
}

#[tokio::test]
async fn the_client_revokes_its_grant_with_the_refresh_token() {
    let app = spawn_app().await;
    let (client, _, tokens) = granted(&app).await;
    let res = app
        .request(Method::POST, "/oauth/revoke")
        .form(&[("token", tokens["refresh_token"].as_str().unwrap()), ("client_id", &client)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (status, _) = app.validate(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn registration_refuses_plain_http_redirects_and_client_secrets() {
    let app = spawn_app().await;
    let res = app
        .request(Method::POST, "/oauth/register")
        .json(&json!({"redirect_uris": ["http://app.example/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_redirect_uri");
    let res = app
        .request(Method::POST, "/oauth/register")
        .json(&json!({"redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "client_secret_post"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_client_metadata");
}

#[tokio::test]
async fn a_client_without_a_name_is_named_by_its_redirect_host_cut_to_100_characters() {
    let app = spawn_app().await;
    let host = format!("{}.example", "a".repeat(150));
    let res = app
        .request(Method::POST, "/oauth/register")
        .json(&json!({"redirect_uris": [format!("https://{host}/cb")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let name = res.json::<Value>().await.unwrap()["client_name"].as_str().unwrap().to_owned();
    assert_eq!(name.chars().count(), 100, "{name}");
    assert!(host.starts_with(name.trim_end_matches('…')), "{name}");
}

#[tokio::test]
async fn client_metadata_the_database_could_not_store_is_a_400_in_the_rfc_7591_shape() {
    let app = spawn_app().await;
    let cases = [
        (json!({"redirect_uris": ["https://app.example/c\u{0}b"]}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": ["https://app.example/cb"], "client_name": "nul\u{0}name"}),
            "invalid_client_metadata",
        ),
        (json!({"redirect_uris": "https://app.example/cb"}), "invalid_client_metadata"),
    ];
    for (metadata, error) in cases {
        let res = app.request(Method::POST, "/oauth/register").json(&metadata).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{metadata}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], error, "{metadata}");
        assert!(body["error_description"].is_string(), "{metadata}");
    }
}

#[tokio::test]
async fn an_unsupported_grant_type_has_the_rfc_6749_error_shape() {
    let app = spawn_app().await;
    let (status, body) = token(&app, &[("grant_type", "password")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unsupported_grant_type");
    assert!(body["error_description"].is_string());
}

fn urlencode(s: &str) -> String {
    let mut u = reqwest::Url::parse("http://x/").unwrap();
    u.query_pairs_mut().append_pair("v", s);
    u.query().unwrap().trim_start_matches("v=").to_owned()
}

/// Waits for the wall clock's next whole second.
async fn next_second() {
    let into = chrono::Utc::now().timestamp_subsec_millis();
    tokio::time::sleep(std::time::Duration::from_millis(u64::from(1000 - into.min(999)))).await;
}

#[tokio::test]
async fn a_refresh_may_repeat_the_grants_resource_but_not_name_another() {
    let app = spawn_app().await;
    let (client, _, first) = granted(&app).await;
    let refresh_token = first["refresh_token"].as_str().unwrap();
    let with_resource = |resource: &'static str, refresh_token: String| {
        let (app, client) = (&app, client.clone());
        async move {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.as_str()),
                ("client_id", client.as_str()),
                ("resource", resource),
            ];
            token(app, &form).await
        }
    };
    let (status, body) = with_resource("https://other.example/mcp", refresh_token.to_owned()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_target");
    // A resource this server does protect, but not the one the grant is bound to.
    tessera_testkit::insert_server(&app.store, "notes").await;
    let (status, body) = with_resource("http://tessera.test/mcp/notes", refresh_token.to_owned()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_target");
    // The refused requests did not use the refresh token up.
    let (status, second) = with_resource(tessera_testkit::app::MCP_RESOURCE, refresh_token.to_owned()).await;
    assert_eq!(status, StatusCode::OK, "{second}");
}

/// The person's grants in force (status `active`) to `client`, as the token list shows them.
async fn active_grants_of(app: &TestApp, session: &Session, client: &str) -> Vec<Value> {
    let list: Value = app
        .as_session(session, Method::GET, "/api/v2/tokens?status=active")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["items"].as_array().unwrap().iter().filter(|t| t["oauth_client"]["id"] == client).cloned().collect()
}

#[tokio::test]
async fn re_authorizing_the_same_client_replaces_the_grant_in_force() {
    let app = spawn_app().await;
    let (client, session, first) = granted(&app).await;
    // The client lost its tokens and asks again: the consent page names the grant it replaces.
    let query = authorize_query(&client, &[]);
    let view = consent_view(&app, &session, &query).await;
    assert_eq!(view["active_grants"].as_array().unwrap().len(), 1, "{view}");
    let code = approve(&app, &session, &query, &["read:tasks"]).await;
    let (status, second) = exchange(&app, &client, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{second}");

    let active = active_grants_of(&app, &session, &client).await;
    assert_eq!(active.len(), 1, "exactly one grant in force: {active:?}");
    assert_eq!(active[0]["scopes"], json!(["read:tasks"]));
    let (status, old) = app.validate(first["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{old}");
    let (status, _) = refresh(&app, &client, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the replaced grant's refresh token is dead too");
    assert_eq!(app.validate(second["access_token"].as_str().unwrap()).await.0, StatusCode::OK);
    let revoked: Value = app
        .as_session(&session, Method::GET, "/api/v2/tokens?status=revoked")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(revoked["items"][0]["revoke_reason"], "replaced by a new grant to the same client");
}

#[tokio::test]
async fn a_person_may_keep_the_earlier_grant_beside_the_new_one() {
    let app = spawn_app().await;
    let (client, session, first) = granted(&app).await;
    let query = authorize_query(&client, &[]);
    let decision = json!({"approve": true, "scopes": ["read:tasks"], "keep_previous": true});
    let (status, body) = consent(&app, &session, &query, decision).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let code = param(body["redirect_to"].as_str().unwrap(), "code").unwrap();
    assert_eq!(exchange(&app, &client, &code, VERIFIER).await.0, StatusCode::OK);
    assert_eq!(active_grants_of(&app, &session, &client).await.len(), 2);
    assert_eq!(app.validate(first["access_token"].as_str().unwrap()).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_new_grant_replaces_nothing_of_another_client_another_person_or_until_its_code_is_exchanged() {
    let app = spawn_app().await;
    let (client, session, first) = granted(&app).await;
    let other_client = register(&app).await;
    let code = approve(&app, &session, &authorize_query(&other_client, &[]), &["read:tasks"]).await;
    assert_eq!(exchange(&app, &other_client, &code, VERIFIER).await.0, StatusCode::OK);
    let (_, bob) = app.signed_in("bob@example.com").await;
    let code = approve(&app, &bob, &authorize_query(&client, &[]), &["read:tasks"]).await;
    assert_eq!(exchange(&app, &client, &code, VERIFIER).await.0, StatusCode::OK);
    // Approved again but never exchanged: the grant in force stays.
    approve(&app, &session, &authorize_query(&client, &[]), &["read:tasks"]).await;
    assert_eq!(app.validate(first["access_token"].as_str().unwrap()).await.0, StatusCode::OK);
    assert_eq!(active_grants_of(&app, &session, &client).await.len(), 1);
    assert_eq!(active_grants_of(&app, &session, &other_client).await.len(), 1);
}

#[tokio::test]
async fn a_step_up_consent_offers_and_ticks_what_the_replaced_grant_held() {
    let app = spawn_app().await;
    let (client, session, _) = granted(&app).await;
    // The challenge names only what the call lacked; the grant in force had the rest.
    let query = authorize_query(&client, &[("scope", "execute:mcp")]);
    let view = consent_view(&app, &session, &query).await;
    for scope in ["read:tasks", "write:tasks", "execute:mcp"] {
        assert!(view["scopes"].as_array().unwrap().contains(&json!(scope)), "{scope} ticked: {view}");
        assert!(view["offered"].as_array().unwrap().contains(&json!(scope)), "{scope} offered: {view}");
    }
    let code = approve(&app, &session, &query, &["read:tasks", "write:tasks", "execute:mcp"]).await;
    let (status, body) = exchange(&app, &client, &code, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let active = active_grants_of(&app, &session, &client).await;
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["scopes"], json!(["execute:mcp", "read:tasks", "write:tasks"]));
}

#[tokio::test]
async fn the_consent_page_offers_only_what_the_persons_teams_allow() {
    let app = spawn_app().await;
    let client = register(&app).await;
    let (user, session) = app.signed_in("alice@example.com").await;
    let actor = tessera_store::Actor::cli();
    let allowance = ["read:tasks".to_owned(), "execute:mcp".to_owned()];
    app.store.create_team(&actor, "readers", &allowance, &[], chrono::Utc::now()).await.unwrap();
    app.store.set_team_member(&actor, "readers", user.id, true).await.unwrap();
    let query = authorize_query(&client, &[]);
    let view = consent_view(&app, &session, &query).await;
    assert!(!view["offered"].as_array().unwrap().contains(&json!("write:tasks")), "{view}");
    assert!(view["offered"].as_array().unwrap().contains(&json!("read:tasks")), "{view}");
    let (status, body) =
        consent(&app, &session, &query, json!({"approve": true, "scopes": ["read:tasks", "write:tasks"]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}
