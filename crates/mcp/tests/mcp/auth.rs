//! Authentication: every request passes the Validator; each refusal is its own test.

use chrono::{Duration, Utc};
use serde_json::json;
use std::time::Duration as StdDuration;
use tessera_core::KeyRing;
use tessera_core::keys::generate_ed25519;
use tessera_core::lifecycle::Requester;
use tessera_core::mint::{MintRequest, mint};
use tessera_core::scope::ScopeSet;
use tessera_core::values::{Grace, RevokeReason};
use tessera_store::{Store, StoreConfig};
use tessera_tokens::PatchInput;

use crate::helpers::*;

async fn assert_refused(app: &TestApp, token: &str, reason: &str) {
    let res = post_mcp(app, Some(token), &initialize_body()).await;
    assert_eq!(res.status(), 401, "expected 401 for {reason}");
    let header = challenge(&res);
    assert!(header.contains(r#"error="invalid_token""#), "{header}");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], reason, "{body}");
    assert!(!body.to_string().contains(token), "the token must never be echoed");
}

#[tokio::test]
async fn valid_token_lists_tools_through_rmcp_client() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks execute:mcp").await;
    let client = client(&app, &token.secret).await;
    let info = client.peer_info().unwrap();
    assert_eq!(info.server_info.as_ref().unwrap().name, "tessera");
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
    assert!(names.contains(&"whoami".to_owned()), "{names:?}");
    assert!(names.contains(&"list_tasks".to_owned()), "{names:?}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn missing_token_is_401_with_resource_metadata_and_no_error_code() {
    let app = spawn_app().await;
    let res = post_mcp(&app, None, &initialize_body()).await;
    assert_eq!(res.status(), 401);
    assert_eq!(
        challenge(&res),
        r#"Bearer realm="tessera", resource_metadata="http://tessera.test/.well-known/oauth-protected-resource/mcp", scope="mcp:access""#
    );
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "missing_token");
}

#[tokio::test]
async fn bad_token_401_carries_invalid_token_and_a_description() {
    let app = spawn_app().await;
    let res = post_mcp(&app, Some("not.a.jwt"), &initialize_body()).await;
    assert_eq!(res.status(), 401);
    let header = challenge(&res);
    assert!(header.starts_with(r#"Bearer realm="tessera", resource_metadata="http://tessera.test/.well-known/oauth-protected-resource/mcp""#), "{header}");
    assert!(header.contains(r#"error="invalid_token""#), "{header}");
    assert!(header.contains(r#"error_description=""#), "{header}");
    assert!(!header.contains("not.a.jwt"));
}

#[tokio::test]
async fn expired_token_is_refused() {
    let app = spawn_app().await;
    let now = Utc::now();
    let spec = Issue {
        issued_at: now - Duration::days(2),
        expires_at: now - Duration::days(1),
        ..Issue::scopes("read:tasks")
    };
    let token = issue_with(&app, spec).await;
    assert_refused(&app, &token.secret, "expired").await;
}

#[tokio::test]
async fn revoked_token_is_refused() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks").await;
    let reason = RevokeReason::parse("test").unwrap();
    tokens(&app).revoke(&Requester::Cli, None, token.id, reason, Utc::now()).await.unwrap();
    assert_refused(&app, &token.secret, "revoked").await;
}

#[tokio::test]
async fn rotated_token_past_its_grace_is_refused() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks").await;
    let new = tokens(&app).rotate(&Requester::Cli, None, token.id, Grace::default(), Utc::now()).await.unwrap();
    assert_refused(&app, &token.secret, "rotated").await;
    let res = post_mcp(&app, Some(new.secret.expose()), &initialize_body()).await;
    assert_eq!(res.status(), 200, "the replacement works");
}

#[tokio::test]
async fn rotated_token_inside_its_grace_still_works() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks").await;
    let hour = Grace::from_secs(3600).unwrap();
    tokens(&app).rotate(&Requester::Cli, None, token.id, hour, Utc::now()).await.unwrap();
    let res = post_mcp(&app, Some(&token.secret), &initialize_body()).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn narrowed_token_loses_the_removed_scope() {
    let app = spawn_app().await;
    let token = issue(&app, "write:tasks execute:mcp").await;
    assert_eq!(call_raw(&app, &token.secret, "list_tasks", json!({})).await.status(), 200);
    let patch = PatchInput { scopes: Some(ScopeSet::parse_grant("execute:mcp").unwrap()), ..PatchInput::default() };
    // Changed behind the API's back, so only the change feed tells this instance's cache.
    tokens(&app).patch(&Requester::Cli, None, token.id, patch, Utc::now()).await.unwrap();
    let refused = eventually(StdDuration::from_secs(1), || async {
        call_raw(&app, &token.secret, "list_tasks", json!({})).await.status() == 403
    })
    .await;
    assert!(refused.is_some(), "the removed scope was still honoured 1 s after narrowing");
    let res = call_raw(&app, &token.secret, "list_tasks", json!({})).await;
    assert!(challenge(&res).contains(r#"scope="read:tasks""#), "{}", challenge(&res));
}

#[tokio::test]
async fn token_for_another_audience_is_refused() {
    let app = spawn_app().await;
    let user = new_user(&app.store).await;
    let now = Utc::now();
    let req = MintRequest {
        issuer: PUBLIC.into(),
        audience: vec!["http://elsewhere.test/mcp".into()],
        user_id: user,
        scopes: ScopeSet::parse_grant("read:tasks").unwrap(),
        now,
        expires_at: now + Duration::hours(1),
        jti: uuid::Uuid::now_v7(),
    };
    let minted = mint(&app.ring, &req).unwrap();
    assert_refused(&app, minted.token.expose(), "wrong_audience").await;
}

#[tokio::test]
async fn token_with_a_forged_signature_is_refused() {
    let app = spawn_app().await;
    let real = issue(&app, "read:tasks").await;
    // Same kid, different private key: the header looks right, the signature cannot verify.
    let kid = app.ring.signing_kid().to_owned();
    let forger = KeyRing::ed25519(&[generate_ed25519(kid.clone())], &kid).unwrap();
    let claims = claims_of(&real.secret);
    let req = MintRequest {
        issuer: PUBLIC.into(),
        audience: vec![AUD.into()],
        user_id: real.user_id,
        scopes: ScopeSet::parse_grant("read:tasks write:tasks").unwrap(),
        now: Utc::now(),
        expires_at: Utc::now() + Duration::hours(1),
        jti: claims["jti"].as_str().unwrap().parse().unwrap(),
    };
    let forged = mint(&forger, &req).unwrap();
    assert_refused(&app, forged.token.expose(), "invalid_signature").await;
}

#[tokio::test]
async fn unsigned_alg_none_token_is_refused() {
    let app = spawn_app().await;
    let real = issue(&app, "read:tasks").await;
    let header = json!({"alg": "none", "typ": "at+jwt", "kid": app.ring.signing_kid()});
    let token = unsigned_jwt(header, claims_of(&real.secret));
    assert_refused(&app, &token, "algorithm_not_allowed").await;
}

#[tokio::test]
async fn two_authorization_headers_are_refused() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks").await;
    let res = reqwest::Client::new()
        .post(app.mcp_url())
        .header("Accept", "application/json, text/event-stream")
        .header("Authorization", format!("Bearer {}", token.secret))
        .header("Authorization", format!("Bearer {}", token.secret))
        .json(&initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(challenge(&res).contains(r#"error="invalid_request""#), "{}", challenge(&res));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "multiple_authorization_headers");
}

#[tokio::test]
async fn token_over_4_kib_is_refused() {
    let app = spawn_app().await;
    let huge = "a".repeat(5000);
    let res = post_mcp(&app, Some(&huge), &initialize_body()).await;
    assert_eq!(res.status(), 401);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "too_large");
}

#[tokio::test]
async fn token_in_the_query_string_is_refused() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks").await;
    let res = reqwest::Client::new()
        .post(format!("{}?access_token={}", app.mcp_url(), token.secret))
        .header("Accept", "application/json, text/event-stream")
        .json(&initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "token_in_query");
}

#[tokio::test]
async fn basic_scheme_is_a_401_challenge_without_an_error_code() {
    let app = spawn_app().await;
    let res = reqwest::Client::new()
        .post(app.mcp_url())
        .header("Accept", "application/json, text/event-stream")
        .header("Authorization", "Basic dXNlcjpwYXNz")
        .json(&initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // RFC 6750 §3.1: another scheme carries no bearer credentials, so no `error=`.
    let challenge = res.headers().get("www-authenticate").unwrap().to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Bearer realm="), "{challenge}");
    assert!(challenge.contains("resource_metadata="), "{challenge}");
    assert!(!challenge.contains("error="), "{challenge}");
}

#[tokio::test]
async fn origin_not_allowed_is_403() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks").await;
    let res = reqwest::Client::new()
        .post(app.mcp_url())
        .header("Accept", "application/json, text/event-stream")
        .header("Origin", "http://evil.test")
        .bearer_auth(&token.secret)
        .json(&initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "origin_not_allowed");
}

#[tokio::test]
async fn configured_origin_is_allowed() {
    let db = tessera_testkit::fresh_db().await;
    let app = spawn_instance(db.store, |c| c.allowed_origins = vec!["https://app.example".into()]).await;
    let token = issue(&app, "read:tasks").await;
    let res = reqwest::Client::new()
        .post(app.mcp_url())
        .header("Accept", "application/json, text/event-stream")
        .header("Origin", "https://app.example")
        .bearer_auth(&token.secret)
        .json(&initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn endpoint_required_scopes_guard_every_request() {
    let db = tessera_testkit::fresh_db().await;
    let app = spawn_instance(db.store, |c| c.required_scopes = ScopeSet::parse_any("mcp:execute").unwrap()).await;
    let token = issue(&app, "read:tasks").await;
    let res = post_mcp(&app, Some(&token.secret), &initialize_body()).await;
    assert_eq!(res.status(), 403);
    let header = challenge(&res);
    assert!(header.contains(r#"error="insufficient_scope""#) && header.contains(r#"scope="mcp:execute""#), "{header}");
}

#[tokio::test]
async fn unreachable_database_is_503_with_retry_after_never_200() {
    let db = tessera_testkit::fresh_db().await;
    let app = spawn_instance(db.store.clone(), |_| {}).await;
    let token = issue(&app, "read:tasks").await;
    // A second instance whose pool is closed: nothing is cached, the row cannot be read.
    let dead = Store::connect(&db.url, &StoreConfig::default()).await.unwrap();
    let down = spawn_instance(dead.clone(), |_| {}).await;
    dead.close().await;
    let res = post_mcp(&down, Some(&token.secret), &initialize_body()).await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
}

#[tokio::test]
async fn malformed_json_is_a_json_rpc_parse_error() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks").await;
    let res = reqwest::Client::new()
        .post(app.mcp_url())
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/json")
        .bearer_auth(&token.secret)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700);
}

#[tokio::test]
async fn batch_is_a_json_rpc_invalid_request() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks").await;
    let res = post_mcp(&app, Some(&token.secret), &json!([initialize_body()])).await;
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32600);
}

#[tokio::test]
async fn wrong_accept_is_406_json() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks").await;
    let res = reqwest::Client::new()
        .post(app.mcp_url())
        .header("Accept", "text/html")
        .bearer_auth(&token.secret)
        .json(&initialize_body())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 406);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "not_acceptable");
}

#[tokio::test]
async fn each_supported_protocol_version_initializes() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks").await;
    for version in ["2025-03-26", "2025-06-18", "2025-11-25"] {
        let mut body = initialize_body();
        body["params"]["protocolVersion"] = json!(version);
        let res = reqwest::Client::new()
            .post(app.mcp_url())
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", version)
            .bearer_auth(&token.secret)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{version}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["result"]["protocolVersion"], version, "{body}");
        assert_eq!(body["result"]["serverInfo"]["name"], "tessera");
    }
}

#[tokio::test]
async fn trailing_slash_path_is_served_and_guarded() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks").await;
    let url = format!("{}/", app.mcp_url());
    let post = |auth: Option<String>| {
        let mut req = reqwest::Client::new()
            .post(&url)
            .header("Accept", "application/json, text/event-stream")
            .json(&initialize_body());
        if let Some(a) = auth {
            req = req.bearer_auth(a);
        }
        req.send()
    };
    assert_eq!(post(None).await.unwrap().status(), 401);
    assert_eq!(post(Some(token.secret.clone())).await.unwrap().status(), 200);
}

#[tokio::test]
async fn token_in_a_form_body_is_refused() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks").await;
    let res = reqwest::Client::new()
        .post(app.mcp_url())
        .header("Accept", "application/json, text/event-stream")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("access_token={}", token.secret))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "token_in_body");
    assert!(!body.to_string().contains(&token.secret));
}

#[tokio::test]
async fn a_refused_request_keeps_its_connection_alive() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = spawn_app().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let body = initialize_body().to_string();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    for attempt in 1..=2 {
        conn.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = conn.read(&mut byte).await.unwrap();
            assert_eq!(n, 1, "connection closed before response {attempt} was complete");
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 401"), "{head}");
        assert!(!head.contains("connection: close"), "response {attempt} closes the connection: {head}");
        let length: usize =
            head.lines().find_map(|l| l.strip_prefix("content-length:")).map(|v| v.trim().parse().unwrap()).unwrap();
        let mut rest = vec![0u8; length];
        conn.read_exact(&mut rest).await.unwrap();
    }
}
