//! OAuth for registered servers (RFC 8707 `resource=`): a grant for a gateway server's
//! `/mcp/S` or a direct server's own URL is bound to that resource alone and carries only that
//! server's scopes. Driven over real HTTP like an MCP client and a person at the consent page.

use std::net::TcpListener;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Parser;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera::cli::Cli;
use tessera::server::{AppState, Application};
use tessera_core::catalog::{ServerName, ToolName};
use tessera_core::upstream::{ToolAccess, UpstreamHeader, UpstreamUrl};
use tessera_store::Actor;
use tessera_testkit::{TokenSpec, fresh_db};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const PASSWORD: &str = "correct horse battery staple";
const REDIRECT: &str = "http://127.0.0.1:4567/callback";
const VERIFIER: &str = "a-verifier-of-at-least-forty-three-characters-0123456789";
const NOTES_URL: &str = "https://notes.example.com/mcp";

struct Tessera {
    base: String,
    state: AppState,
    http: reqwest::Client,
    client_id: String,
    cookie: String,
    csrf: String,
}

/// Tessera with gateway servers `alpha` (its upstream: this process's own `/mcp`, reached
/// with another user's token) and `beta` (unreachable), a direct server `notes`, a registered
/// OAuth client and a signed-in person.
async fn spawn(extra: &[&str]) -> Tessera {
    let db = fresh_db().await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let mut args = vec!["tessera", "--jwt-secret", SECRET, "--public-url", &base];
    args.extend_from_slice(extra);
    args.push("serve");
    let settings = Cli::parse_from(args).settings;
    let state = AppState::for_store(db.store.clone(), settings).await.unwrap();
    tokio::spawn(Application::build(state.clone(), listener).unwrap().run());
    let owner = db.store.create_user("upstream@example.com", None, false, &Actor::cli()).await.unwrap();
    let (upstream_token, _) =
        TokenSpec::new(owner.id, "read:tasks write:tasks execute:mcp", &base, &format!("{base}/mcp"))
            .insert(&db.store, &state.validator.key_ring())
            .await;
    let upstream_auth = format!("Bearer {upstream_token}");
    let add = |name: &str, url: String, headers: Vec<UpstreamHeader>| tessera_tokens::ServerInput {
        name: ServerName::parse(name).unwrap(),
        url: UpstreamUrl::parse(&url).unwrap(),
        description: Some(tessera_core::values::Description::parse(&format!("the {name} server")).unwrap()),
        headers,
        new_tools: Default::default(),
    };
    let now = chrono::Utc::now();
    let auth = vec![UpstreamHeader::new("Authorization", &upstream_auth).unwrap()];
    state.servers.add(&Actor::cli(), add("alpha", format!("{base}/mcp"), auth), now).await.unwrap();
    state.servers.add(&Actor::cli(), add("beta", "http://127.0.0.1:9/mcp".into(), Vec::new()), now).await.unwrap();
    state.servers.add_direct(&Actor::cli(), add("notes", NOTES_URL.into(), Vec::new()), now).await.unwrap();
    let hash = tessera_core::password::hash_password(&tessera_core::password::Password::new(PASSWORD.into())).unwrap();
    db.store.create_user("alice@example.com", Some(&hash), false, &Actor::cli()).await.unwrap();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let res = http
        .post(format!("{base}/api/v2/auth/login"))
        .json(&json!({"email": "alice@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let csrf = res.json::<Value>().await.unwrap()["csrf_token"].as_str().unwrap().to_owned();
    let res = http
        .post(format!("{base}/oauth/register"))
        .json(&json!({"client_name": "Server Client", "redirect_uris": ["http://127.0.0.1/callback"]}))
        .send()
        .await
        .unwrap();
    // With the authorization server off there is nothing to register with.
    let client_id = match res.status() {
        StatusCode::CREATED => res.json::<Value>().await.unwrap()["client_id"].as_str().unwrap().to_owned(),
        _ => String::new(),
    };
    Tessera { base, state, http, client_id, cookie, csrf }
}

impl Tessera {
    /// An authorization request's query for `resource` (none when empty) and `scope`.
    fn query(&self, resource: &str, scope: &str) -> String {
        let challenge = tessera_oauth::rules::s256(VERIFIER);
        let mut url = reqwest::Url::parse("http://x/").unwrap();
        url.query_pairs_mut().extend_pairs([
            ("response_type", "code"),
            ("client_id", &self.client_id),
            ("redirect_uri", REDIRECT),
            ("state", "s1"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ]);
        for (k, v) in [("resource", resource), ("scope", scope)] {
            if !v.is_empty() {
                url.query_pairs_mut().append_pair(k, v);
            }
        }
        url.query().unwrap().to_owned()
    }

    /// What the consent page shows for `query`.
    async fn consent_view(&self, query: &str) -> Value {
        let mut url = reqwest::Url::parse(&format!("{}/api/v2/oauth/consent", self.base)).unwrap();
        url.query_pairs_mut().append_pair("request", query);
        let res = self.http.get(url).header("Cookie", &self.cookie).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }

    /// Approves `scopes` for `query`; returns the code.
    async fn approve(&self, query: &str, scopes: &[&str]) -> String {
        let res = self
            .http
            .post(format!("{}/api/v2/oauth/consent", self.base))
            .header("Cookie", &self.cookie)
            .header("X-CSRF-Token", &self.csrf)
            .json(&json!({"request": query, "approve": true, "scopes": scopes}))
            .send()
            .await
            .unwrap();
        let body: Value = res.json().await.unwrap();
        let to = reqwest::Url::parse(body["redirect_to"].as_str().unwrap_or_else(|| panic!("{body}"))).unwrap();
        to.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned()
    }

    async fn exchange(&self, code: &str) -> (StatusCode, Value) {
        let res = self
            .http
            .post(format!("{}/oauth/token", self.base))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
                ("client_id", &self.client_id),
            ])
            .send()
            .await
            .unwrap();
        (res.status(), res.json().await.unwrap())
    }

    /// A full grant for `resource` with `scopes` approved; returns the token response.
    async fn grant(&self, resource: &str, scope: &str, scopes: &[&str]) -> Value {
        let code = self.approve(&self.query(resource, scope), scopes).await;
        let (status, body) = self.exchange(&code).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn refresh(&self, refresh_token: &str) -> (StatusCode, Value) {
        let res = self
            .http
            .post(format!("{}/oauth/token", self.base))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", &self.client_id)])
            .send()
            .await
            .unwrap();
        (res.status(), res.json().await.unwrap())
    }

    fn resource(&self, server: &str) -> String {
        format!("{}/mcp/{server}", self.base)
    }

    async fn rpc(&self, path: &str, token: &str, body: Value) -> reqwest::Response {
        crate::support::mcp_post(&self.http, &format!("{}{path}", self.base), token, &body).await
    }

    async fn tool_names(&self, token: &str) -> Vec<String> {
        let res = self.rpc("/mcp/alpha", token, json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        body["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
    }
}

fn claims(jwt: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jwt.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

fn access(tokens: &Value) -> &str {
    tokens["access_token"].as_str().unwrap()
}

#[tokio::test]
async fn a_gateway_servers_resource_gets_a_grant_bound_to_it_that_works_there() {
    let t = spawn(&[]).await;
    let tokens = t.grant(&t.resource("alpha"), "", &["read:alpha", "execute:mcp"]).await;
    assert_eq!(tokens["scope"], "execute:mcp read:alpha");
    assert_eq!(claims(access(&tokens))["aud"], t.resource("alpha"));
    let mut names = t.tool_names(access(&tokens)).await;
    names.sort();
    assert_eq!(names, ["echo", "get_task", "list_tasks", "whoami"]);
}

#[tokio::test]
async fn a_grant_for_one_server_is_refused_at_another_and_at_the_built_in_mcp() {
    let t = spawn(&[]).await;
    let tokens = t.grant(&t.resource("alpha"), "write:alpha execute:mcp", &["write:alpha", "execute:mcp"]).await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    for path in ["/mcp/beta", "/mcp"] {
        let res = t.rpc(path, access(&tokens), ping.clone()).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[tokio::test]
async fn an_unknown_server_is_invalid_target_on_tessera_s_error_page() {
    let t = spawn(&[]).await;
    let query = t.query(&t.resource("ghost"), "read:ghost");
    let res = t.http.get(format!("{}/oauth/authorize?{query}", t.base)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get("location").is_none());
    assert!(res.text().await.unwrap().contains("invalid_target"));
}

#[tokio::test]
async fn a_server_removed_between_consent_and_token_request_is_invalid_target() {
    let t = spawn(&[]).await;
    let code = t.approve(&t.query(&t.resource("beta"), ""), &["read:beta"]).await;
    t.state.servers.remove(&Actor::cli(), "beta").await.unwrap();
    let (status, body) = t.exchange(&code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_target");
}

#[tokio::test]
async fn scopes_of_another_resource_are_dropped_and_no_scope_means_the_servers_default() {
    let t = spawn(&[]).await;
    let view = t.consent_view(&t.query(&t.resource("alpha"), "read:tasks write:alpha read:beta mcp:admin")).await;
    assert_eq!(view["scopes"], json!(["write:alpha"]));
    assert_eq!(view["resource"], t.resource("alpha"));
    assert_eq!(view["server"]["name"], "alpha");
    assert_eq!(view["server"]["description"], "the alpha server");
    let view = t.consent_view(&t.query(&t.resource("alpha"), "")).await;
    assert_eq!(view["scopes"], json!(["execute:mcp", "read:alpha"]));
    let view = t.consent_view(&t.query("", "read:alpha read:tasks")).await;
    assert_eq!(view["scopes"], json!(["read:tasks"]));
    assert!(view["server"].is_null());
}

#[tokio::test]
async fn the_person_narrows_a_server_grant_to_one_tool() {
    let t = spawn(&[]).await;
    let whoami = ToolName::parse("whoami").unwrap();
    t.state.servers.set_tool_access(&Actor::cli(), "alpha", &whoami, Some(ToolAccess::Read)).await.unwrap();
    let query = t.query(&t.resource("alpha"), "");
    let view = t.consent_view(&query).await;
    assert_eq!(view["offered"], json!(["call:alpha/whoami", "execute:mcp", "read:alpha"]));
    assert_eq!(view["server"]["tools"], json!([{"name": "whoami", "description": null, "access": "read"}]));
    let code = t.approve(&query, &["call:alpha/whoami", "execute:mcp"]).await;
    let (_, tokens) = t.exchange(&code).await;
    assert_eq!(t.tool_names(access(&tokens)).await, ["whoami"]);
}

#[tokio::test]
async fn a_scope_of_another_server_cannot_be_approved() {
    let t = spawn(&[]).await;
    let res = t
        .http
        .post(format!("{}/api/v2/oauth/consent", t.base))
        .header("Cookie", &t.cookie)
        .header("X-CSRF-Token", &t.csrf)
        .json(&json!({"request": t.query(&t.resource("alpha"), ""), "approve": true, "scopes": ["read:beta"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_direct_server_introspects_an_oauth_token_issued_for_it_as_active_with_its_scope() {
    let t = spawn(&[]).await;
    let (cli, now) = (Actor::cli(), chrono::Utc::now());
    let credential = t.state.servers.rotate_credentials(&cli, "notes", chrono::Duration::zero(), now).await.unwrap();
    let view = t.consent_view(&t.query(NOTES_URL, "")).await;
    assert_eq!(view["scopes"], json!(["read:notes"]));
    assert_eq!(view["server"]["direct"], true);
    let tokens = t.grant(NOTES_URL, "write:notes execute:mcp", &["write:notes"]).await;
    assert_eq!(claims(access(&tokens))["aud"], NOTES_URL);
    let res = t
        .http
        .post(format!("{}/oauth/introspect", t.base))
        .basic_auth(&credential.client_id, Some(&credential.secret))
        .form(&[("token", access(&tokens))])
        .send()
        .await
        .unwrap();
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["scope"], "read:notes write:notes mcp:access");
    assert_eq!(answer["client_id"], t.client_id);
    let res = t.rpc("/mcp", access(&tokens), json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_gateway_servers_metadata_names_tessera_and_its_scopes_and_its_401_asks_for_the_default() {
    let t = spawn(&[]).await;
    let whoami = ToolName::parse("whoami").unwrap();
    t.state.servers.set_tool_access(&Actor::cli(), "alpha", &whoami, Some(ToolAccess::Read)).await.unwrap();
    let url = format!("{}/.well-known/oauth-protected-resource/mcp/alpha", t.base);
    let doc: Value = t.http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["authorization_servers"], json!([t.base]));
    assert_eq!(doc["scopes_supported"], json!(["read:alpha", "write:alpha", "execute:mcp", "call:alpha/whoami"]));
    let res = t.http.post(format!("{}/mcp/alpha", t.base)).json(&json!({})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let challenge = res.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.contains(&format!(r#"resource_metadata="{url}""#)), "{challenge}");
    assert!(challenge.contains(r#"scope="read:alpha execute:mcp""#), "{challenge}");
}

#[tokio::test]
async fn with_oauth_off_a_gateway_servers_metadata_names_no_authorization_server() {
    let t = spawn(&["--oauth", "off"]).await;
    let url = format!("{}/.well-known/oauth-protected-resource/mcp/alpha", t.base);
    let doc: Value = t.http.get(&url).send().await.unwrap().json().await.unwrap();
    assert!(doc.get("authorization_servers").is_none(), "{doc}");
}

#[tokio::test]
async fn the_client_revoking_the_access_token_of_a_gateway_grant_ends_the_grant() {
    let t = spawn(&[]).await;
    let tokens = t.grant(&t.resource("alpha"), "", &["read:alpha", "execute:mcp"]).await;
    assert!(!t.tool_names(access(&tokens)).await.is_empty());
    let res = t
        .http
        .post(format!("{}/oauth/revoke", t.base))
        .form(&[("token", access(&tokens)), ("client_id", &t.client_id)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = t.rpc("/mcp/alpha", access(&tokens), json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = t.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
}

#[tokio::test]
async fn a_built_in_grant_approved_as_offered_to_a_client_asking_mcp_access_holds_no_write_and_calls_whoami() {
    let t = spawn(&[]).await;
    let query = t.query("", "mcp:access");
    let view = t.consent_view(&query).await;
    let ticked: Vec<&str> = view["scopes"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    let code = t.approve(&query, &ticked).await;
    let (status, tokens) = t.exchange(&code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let scope = tokens["scope"].as_str().unwrap();
    assert!(!scope.split(' ').any(|s| s.starts_with("write:")), "{scope}");
    let call =
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}});
    let res = t.rpc("/mcp", access(&tokens), call).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert!(body["result"]["isError"] != json!(true), "{body}");
    assert!(body["result"]["content"][0]["text"].is_string(), "{body}");
}
