//! Unauthenticated documents.

use crate::helpers::*;

#[tokio::test]
async fn protected_resource_metadata_has_the_rfc_9728_fields() {
    let app = spawn_app().await;
    for path in ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"] {
        let res = reqwest::get(format!("{}{path}", app.base)).await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let doc: serde_json::Value = res.json().await.unwrap();
        assert_eq!(doc["resource"], AUD);
        assert_eq!(doc["authorization_servers"], serde_json::json!([PUBLIC]));
        assert_eq!(doc["bearer_methods_supported"], serde_json::json!(["header"]));
        assert!(doc["resource_name"].is_string());
        assert!(doc["resource_documentation"].is_string());
        let scopes = doc["scopes_supported"].as_array().unwrap();
        assert!(scopes.iter().any(|s| s == "read:tasks") && scopes.iter().any(|s| s == "execute:mcp"));
    }
}

#[tokio::test]
async fn without_the_authorization_server_the_metadata_names_none() {
    let db = tessera_testkit::fresh_db().await;
    let app = spawn_instance(db.store, |c| c.authorization_server = false).await;
    let res = reqwest::get(format!("{}/.well-known/oauth-protected-resource/mcp", app.base)).await.unwrap();
    let doc: serde_json::Value = res.json().await.unwrap();
    assert!(doc.get("authorization_servers").is_none(), "{doc}");
}

#[tokio::test]
async fn jwks_publishes_the_signing_key() {
    let app = spawn_app().await;
    let jwks: serde_json::Value =
        reqwest::get(format!("{}/.well-known/jwks.json", app.base)).await.unwrap().json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert!(keys.iter().any(|k| k["kid"] == app.ring.signing_kid() && k["alg"] == "EdDSA"), "{jwks}");
    assert!(keys.iter().all(|k| k.get("d").is_none()), "never a private key");
}

#[tokio::test]
async fn metrics_count_auth_outcomes_and_latency() {
    let app = spawn_app().await;
    let token = issue(&app, "read:tasks").await;
    assert_eq!(post_mcp(&app, Some(&token.secret), &initialize_body()).await.status(), 200);
    assert_eq!(post_mcp(&app, None, &initialize_body()).await.status(), 401);
    let text = reqwest::get(format!("{}/metrics", app.base)).await.unwrap().text().await.unwrap();
    assert!(text.contains(r#"tessera_mcp_auth_total{reason="ok"} 1"#), "{text}");
    assert!(text.contains(r#"tessera_mcp_auth_total{reason="missing_token"} 1"#), "{text}");
    assert!(text.contains("tessera_mcp_request_duration_seconds_count 2"), "{text}");
    assert!(text.contains("tessera_token_cache_misses_total"), "{text}");
    assert!(text.contains("tessera_usage_flush_lag_seconds"), "{text}");
}
