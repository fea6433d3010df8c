//! The committed `openapi.json` is exactly what the code generates, and what is served.

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi.json");
const REGENERATE: &str = "cargo run -q -p tessera -- openapi > openapi.json";

fn generated() -> String {
    // `tessera openapi` prints the document followed by a newline.
    format!("{}\n", tessera_api::openapi_json())
}

#[test]
fn committed_openapi_json_is_up_to_date() {
    let committed = std::fs::read_to_string(COMMITTED)
        .unwrap_or_else(|e| panic!("cannot read {COMMITTED} ({e}); create it with `{REGENERATE}`"));
    assert!(
        committed == generated(),
        "openapi.json at the repository root is stale: regenerate it with `{REGENERATE}` and commit it"
    );
}

#[test]
fn openapi_documents_every_endpoint_and_both_security_schemes() {
    let doc: serde_json::Value = serde_json::from_str(&tessera_api::openapi_json()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v2/tokens", "post"),
        ("/api/v2/tokens", "get"),
        ("/api/v2/tokens/{id}", "get"),
        ("/api/v2/tokens/{id}", "patch"),
        ("/api/v2/tokens/{id}", "delete"),
        ("/api/v2/tokens/{id}/rotate", "post"),
        ("/api/v2/tokens/validate", "post"),
        ("/api/v2/tokens/{id}/usage", "get"),
        ("/api/v2/auth/login", "post"),
        ("/api/v2/auth/logout", "post"),
        ("/api/v2/auth/me", "get"),
        ("/openapi.json", "get"),
    ] {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} is undocumented");
    }
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["session"]["in"], "cookie");
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
}

#[tokio::test]
async fn served_openapi_json_is_the_generated_document() {
    let app = crate::helpers::spawn_app().await;
    let res = app.request(reqwest::Method::GET, "/openapi.json").send().await.unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    assert!(res.headers().get("content-type").unwrap().to_str().unwrap().starts_with("application/json"));
    assert_eq!(res.text().await.unwrap(), tessera_api::openapi_json());
}

#[test]
fn documented_bounds_mirror_the_core_constants() {
    use tessera_core::values::LIMITS;
    let doc: serde_json::Value = serde_json::from_str(&tessera_api::openapi_json()).unwrap();
    let schemas = &doc["components"]["schemas"];
    let create = &schemas["CreateTokenRequest"]["properties"];
    assert_eq!(create["expires_in_days"]["minimum"], LIMITS.lifetime_min_days);
    assert_eq!(create["expires_in_days"]["maximum"], LIMITS.lifetime_max_days);
    assert_eq!(create["expires_in_days"]["default"], LIMITS.lifetime_default_days);
    assert_eq!(create["rate_limit_per_hour"]["minimum"], LIMITS.rate_limit_min);
    assert_eq!(create["rate_limit_per_hour"]["maximum"], LIMITS.rate_limit_max);
    let patch = &schemas["PatchTokenRequest"]["properties"];
    assert_eq!(patch["rate_limit_per_hour"]["maximum"], LIMITS.rate_limit_max);
    let rotate = &schemas["RotateRequest"]["properties"];
    assert_eq!(rotate["grace_seconds"]["maximum"], LIMITS.grace_max_seconds);
    assert_eq!(create["name"]["maxLength"], LIMITS.name_max_chars);
    assert_eq!(patch["name"]["maxLength"], LIMITS.name_max_chars);
    assert_eq!(create["description"]["maxLength"], LIMITS.description_max_chars);
    assert_eq!(patch["description"]["maxLength"], LIMITS.description_max_chars);
    assert_eq!(schemas["RevokeRequest"]["properties"]["reason"]["maxLength"], LIMITS.reason_max_chars);
}

#[test]
fn documented_grantable_scopes_are_the_catalog_and_server_scopes() {
    let doc: serde_json::Value = serde_json::from_str(&tessera_api::openapi_json()).unwrap();
    let listed: Vec<&str> = doc["components"]["schemas"]["GrantableScope"]["anyOf"][0]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(listed, tessera_core::scope::CATALOG);
}

#[test]
fn the_documented_server_scope_pattern_is_what_the_catalog_parses() {
    use tessera_core::scope::Scope;
    let pattern = tessera_api::models::SERVER_SCOPE_PATTERN;
    assert!(pattern.starts_with('^') && pattern.ends_with('$'));
    for ok in ["read:notes", "write:my-server-1", "call:notes/delete_all", "call:a/Tool.v2-x"] {
        assert!(Scope::parse(ok).is_ok(), "{ok}");
    }
    for bad in ["read:Notes", "call:notes/", "call:notes/a b", "read:", "write:a/b"] {
        assert!(Scope::parse(bad).is_err(), "{bad}");
    }
}
