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

fn document() -> serde_json::Value {
    serde_json::from_str(&tessera_api::openapi_json()).unwrap()
}

#[test]
fn a_users_rate_limit_is_optional_in_its_patch() {
    let doc = document();
    let patch = &doc["components"]["schemas"]["PatchUserRequest"];
    assert!(patch["required"].as_array().is_none_or(|r| r.is_empty()), "{patch}");
}

#[test]
fn a_webhook_url_is_documented_as_a_non_empty_http_uri_within_the_core_bound() {
    let doc = document();
    for schema in ["CreateWebhookRequest", "PatchWebhookRequest"] {
        let url = &doc["components"]["schemas"][schema]["properties"]["url"];
        assert_eq!(url["minLength"], 1, "{schema}");
        assert_eq!(url["maxLength"], tessera_core::alerts::MAX_URL_LEN, "{schema}");
        assert_eq!(url["format"], "uri", "{schema}");
        assert_eq!(url["pattern"], "^https?://", "{schema}");
    }
}

#[test]
fn logout_documents_the_400_a_bearer_token_gets() {
    let doc = document();
    let answer = &doc["paths"]["/api/v2/auth/logout"]["post"]["responses"]["400"];
    assert!(answer["description"].as_str().unwrap().contains("not_a_session"), "{answer}");
}

#[test]
fn tool_overrides_are_documented_as_an_access_class_or_null() {
    let doc = document();
    let tools = &doc["components"]["schemas"]["PatchToolsRequest"]["properties"]["tools"];
    assert_eq!(
        tools["additionalProperties"],
        serde_json::json!({"oneOf": [{"$ref": "#/components/schemas/AccessClass"}, {"type": "null"}]})
    );
    let class = &doc["components"]["schemas"]["AccessClass"]["enum"];
    assert_eq!(class, &serde_json::json!(["read", "write", "hidden"]));
}
