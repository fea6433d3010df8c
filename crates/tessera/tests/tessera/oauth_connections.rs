//! Connected accounts through OAuth (issue #25, `--user-auth oauth`): the upstream is a
//! second Tessera, a real OAuth 2.1 resource server (`/mcp`, whose `whoami` names the
//! subject) with its own authorization server, reached with RFC 9728 discovery and RFC 7591
//! registration. People sign in at the upstream (its consent page's API, as the browser
//! would) and reach it through the gateway each as themselves.

use std::net::TcpListener;

use clap::Parser;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tessera::cli::Cli;
use tessera::server::{AppState, Application};
use tessera_core::catalog::ServerName;
use tessera_core::upstream::UpstreamUrl;
use tessera_store::{Actor, Store};
use tessera_testkit::{TokenSpec, fresh_db};
use tessera_tokens::PersonalOAuth;
use uuid::Uuid;

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const PASSWORD: &str = "correct horse battery staple";

/// One Tessera process.
struct Node {
    base: String,
    state: AppState,
    store: Store,
}

/// A signed-in person at a node.
struct Person {
    id: Uuid,
    cookie: String,
}

async fn node(access_ttl: Option<u32>) -> Node {
    let db = fresh_db().await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let mut settings = Cli::parse_from(["tessera", "--jwt-secret", SECRET, "--public-url", &base, "serve"]).settings;
    if let Some(ttl) = access_ttl {
        // Below the variable's 60 s floor, to see refreshes within a test.
        settings.oauth_access_ttl = ttl;
    }
    let state = AppState::for_store(db.store.clone(), settings).await.unwrap();
    tokio::spawn(Application::build(state.clone(), listener).unwrap().run());
    Node { base, state, store: db.store }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

impl Node {
    async fn person(&self, email: &str) -> Person {
        let hash =
            tessera_core::password::hash_password(&tessera_core::password::Password::new(PASSWORD.into())).unwrap();
        let user = self.store.create_user(email, Some(&hash), false, &Actor::cli()).await.unwrap();
        let res = http()
            .post(format!("{}/api/v2/auth/login", self.base))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let cookie = res.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
        let csrf = res.json::<Value>().await.unwrap()["csrf_token"].as_str().unwrap().to_owned();
        Person { id: user.id, cookie: format!("{cookie}; csrf={csrf}") }
    }

    fn csrf(p: &Person) -> &str {
        p.cookie.split("; csrf=").nth(1).unwrap()
    }

    fn session(p: &Person) -> &str {
        p.cookie.split("; csrf=").next().unwrap()
    }

    async fn token(&self, user: Uuid, scopes: &str, audience: &str) -> String {
        let spec = TokenSpec::new(user, scopes, &self.base, audience);
        spec.insert(&self.store, &self.state.validator.key_ring()).await.0
    }

    async fn whoami(&self, token: &str) -> Value {
        let body =
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}});
        let res = crate::support::mcp_post(&http(), &format!("{}/mcp/up", self.base), token, &body).await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }

    async fn connections(&self, p: &Person) -> Value {
        let res = http()
            .get(format!("{}/api/v2/connections", self.base))
            .header("Cookie", Self::session(p))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }
}

/// The gateway (with server `up` = the upstream's `/mcp`, its users connecting through
/// OAuth, no client given: Tessera registers itself) and the upstream.
async fn pair(upstream_ttl: Option<u32>) -> (Node, Node) {
    let up = node(upstream_ttl).await;
    let gw = node(None).await;
    let input = tessera_tokens::ServerInput {
        name: ServerName::parse("up").unwrap(),
        url: UpstreamUrl::parse(&format!("{}/mcp", up.base)).unwrap(),
        description: None,
        headers: Vec::new(),
        new_tools: Default::default(),
    };
    gw.state.servers.add(&Actor::cli(), input, chrono::Utc::now()).await.unwrap();
    gw.state.servers.set_personal_oauth(&Actor::cli(), "up", &PersonalOAuth::default()).await.unwrap();
    (gw, up)
}

fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location: {}", res.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

fn flow_cookie(res: &reqwest::Response) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("tessera_connect="))
        .expect("a flow cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// Starts `person`'s connect at the gateway: (where the browser goes, the flow cookie).
async fn start(gw: &Node, person: &Person) -> (String, String) {
    let res = http()
        .get(format!("{}/api/v2/connections/up/connect?for={}", gw.base, person.id))
        .header("Cookie", Node::session(person))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    (location(&res), flow_cookie(&res))
}

/// The upstream's person approves `authorize` (as its consent page does): the URL the
/// browser is sent back to.
async fn approve_upstream(up: &Node, upstream_person: &Person, authorize: &str) -> String {
    let query = reqwest::Url::parse(authorize).unwrap().query().unwrap().to_owned();
    let res = http()
        .post(format!("{}/api/v2/oauth/consent", up.base))
        .header("Cookie", Node::session(upstream_person))
        .header("X-CSRF-Token", Node::csrf(upstream_person))
        .json(&json!({"request": query, "approve": true, "scopes": ["execute:mcp"]}))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    body["redirect_to"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned()
}

/// The browser returns to the gateway's callback carrying `cookie`: where it is sent.
async fn finish(callback: &str, cookie: Option<&str>) -> String {
    let mut req = http().get(callback);
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    location(&res)
}

/// A whole connection: `person` at the gateway signs in at the upstream as `upstream_person`.
async fn connect(gw: &Node, up: &Node, person: &Person, upstream_person: &Person) {
    let (authorize, cookie) = start(gw, person).await;
    let callback = approve_upstream(up, upstream_person, &authorize).await;
    assert_eq!(finish(&callback, Some(&cookie)).await, "/#/connections/up?connected=1");
}

fn subject(answer: &Value) -> String {
    let text = answer["result"]["content"][0]["text"].as_str().unwrap_or_else(|| panic!("{answer}"));
    serde_json::from_str::<Value>(text).unwrap()["sub"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn connecting_sends_the_browser_to_the_upstreams_authorization_server_with_pkce_and_the_resource() {
    let (gw, up) = pair(None).await;
    let ann = gw.person("ann@example.com").await;
    let (authorize, _) = start(&gw, &ann).await;
    let url = reqwest::Url::parse(&authorize).unwrap();
    assert_eq!(format!("{}{}", url.origin().ascii_serialization(), url.path()), format!("{}/oauth/authorize", up.base));
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["resource"], format!("{}/mcp", up.base));
    assert_eq!(q["redirect_uri"], format!("{}/api/v2/connections/callback", gw.base));
    assert!(q["client_id"].len() > 8, "Tessera registered itself (RFC 7591)");
    assert!(q["state"].len() >= 32);
}

#[tokio::test]
async fn two_people_reach_an_oauth_upstream_each_as_their_own_identity() {
    let (gw, up) = pair(None).await;
    let (ann, bo) = (gw.person("ann@example.com").await, gw.person("bo@example.com").await);
    let (ann_up, bo_up) = (up.person("ann-up@example.com").await, up.person("bo-up@example.com").await);
    connect(&gw, &up, &ann, &ann_up).await;
    connect(&gw, &up, &bo, &bo_up).await;
    let audience = format!("{}/mcp/up", gw.base);
    let ann_token = gw.token(ann.id, "write:up execute:mcp", &audience).await;
    let bo_token = gw.token(bo.id, "write:up execute:mcp", &audience).await;

    assert_eq!(subject(&gw.whoami(&ann_token).await), ann_up.id.to_string());
    assert_eq!(subject(&gw.whoami(&bo_token).await), bo_up.id.to_string());
    let listed = gw.connections(&ann).await;
    assert_eq!(listed["connections"][0]["kind"], "oauth");
    assert!(listed["connections"][0]["connected_at"].is_string());
    assert!(listed["connections"][0]["expires_at"].is_string());
    assert!(!listed.to_string().contains("access_token"), "no token material: {listed}");
}

#[tokio::test]
async fn a_person_not_yet_connected_gets_a_connect_url_naming_them() {
    let (gw, _up) = pair(None).await;
    let ann = gw.person("ann@example.com").await;
    let token = gw.token(ann.id, "write:up execute:mcp", &format!("{}/mcp/up", gw.base)).await;
    let answer = gw.whoami(&token).await;
    assert_eq!(answer["error"]["code"], -32042, "{answer}");
    let url = answer["error"]["data"]["elicitations"][0]["url"].as_str().unwrap();
    assert_eq!(url, format!("{}/#/connections/up?for={}", gw.base, ann.id));
}

#[tokio::test]
async fn a_connect_link_made_for_another_person_is_refused() {
    let (gw, _up) = pair(None).await;
    let (ann, bo) = (gw.person("ann@example.com").await, gw.person("bo@example.com").await);
    let res = http()
        .get(format!("{}/api/v2/connections/up/connect?for={}", gw.base, ann.id))
        .header("Cookie", Node::session(&bo))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), "/#/connections/up?error=another_account");
    assert!(res.headers().get_all("set-cookie").iter().all(|c| !c.to_str().unwrap().starts_with("tessera_connect=x")));
}

#[tokio::test]
async fn a_callback_opened_without_the_flow_cookie_connects_no_one() {
    let (gw, up) = pair(None).await;
    let ann = gw.person("ann@example.com").await;
    let ann_up = up.person("ann-up@example.com").await;
    let (authorize, _) = start(&gw, &ann).await;
    let callback = approve_upstream(&up, &ann_up, &authorize).await;
    // Another person's browser (signed in at the gateway, without the flow) opens it.
    let bo = gw.person("bo@example.com").await;
    assert_eq!(finish(&callback, Some(Node::session(&bo))).await, "/#/connections?error=expired");
    assert!(gw.connections(&ann).await["connections"][0]["connected_at"].is_null());
    assert!(gw.connections(&bo).await["connections"][0]["connected_at"].is_null());
}

#[tokio::test]
async fn a_callback_finished_in_a_browser_where_another_person_signed_in_is_refused() {
    let (gw, up) = pair(None).await;
    let ann = gw.person("ann@example.com").await;
    let bo = gw.person("bo@example.com").await;
    let ann_up = up.person("ann-up@example.com").await;
    let (authorize, cookie) = start(&gw, &ann).await;
    let callback = approve_upstream(&up, &ann_up, &authorize).await;
    let both = format!("{cookie}; {}", Node::session(&bo));
    assert_eq!(finish(&callback, Some(&both)).await, "/#/connections/up?error=another_account");
    assert!(gw.connections(&bo).await["connections"][0]["connected_at"].is_null());
}

#[tokio::test]
async fn a_tampered_state_is_refused() {
    let (gw, up) = pair(None).await;
    let ann = gw.person("ann@example.com").await;
    let ann_up = up.person("ann-up@example.com").await;
    let (authorize, cookie) = start(&gw, &ann).await;
    let callback = approve_upstream(&up, &ann_up, &authorize).await;
    let mut url = reqwest::Url::parse(&callback).unwrap();
    let code = url.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    url.query_pairs_mut().clear().append_pair("code", &code).append_pair("state", "forged");
    assert_eq!(finish(url.as_str(), Some(&cookie)).await, "/#/connections/up?error=invalid_response");
}

#[tokio::test]
async fn a_refused_consent_at_the_upstream_connects_no_one() {
    let (gw, _up) = pair(None).await;
    let ann = gw.person("ann@example.com").await;
    let (authorize, cookie) = start(&gw, &ann).await;
    let state =
        reqwest::Url::parse(&authorize).unwrap().query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let callback = format!("{}/api/v2/connections/callback?error=access_denied&state={state}", gw.base);
    assert_eq!(finish(&callback, Some(&cookie)).await, "/#/connections/up?error=denied");
}

#[tokio::test]
async fn an_unreachable_upstream_gets_a_clear_error_and_no_connection() {
    let gw = node(None).await;
    let input = tessera_tokens::ServerInput {
        name: ServerName::parse("up").unwrap(),
        url: UpstreamUrl::parse("http://127.0.0.1:9/mcp").unwrap(),
        description: None,
        headers: Vec::new(),
        new_tools: Default::default(),
    };
    gw.state.servers.add(&Actor::cli(), input, chrono::Utc::now()).await.unwrap();
    gw.state.servers.set_personal_oauth(&Actor::cli(), "up", &PersonalOAuth::default()).await.unwrap();
    let ann = gw.person("ann@example.com").await;
    let res = http()
        .get(format!("{}/api/v2/connections/up/connect", gw.base))
        .header("Cookie", Node::session(&ann))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), "/#/connections/up?error=upstream_unreachable");
    assert!(gw.connections(&ann).await["connections"][0]["connected_at"].is_null());
}

#[tokio::test]
async fn tokens_are_refreshed_before_they_end_and_calls_go_on() {
    // The upstream's access tokens live 4 s: refreshed off the request path (or, if a call
    // comes first, after the upstream's 401).
    let (gw, up) = pair(Some(4)).await;
    let ann = gw.person("ann@example.com").await;
    let ann_up = up.person("ann-up@example.com").await;
    connect(&gw, &up, &ann, &ann_up).await;
    let first = gw.connections(&ann).await["connections"][0]["expires_at"].as_str().unwrap().to_owned();
    let token = gw.token(ann.id, "write:up execute:mcp", &format!("{}/mcp/up", gw.base)).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let now = gw.connections(&ann).await["connections"][0]["expires_at"].as_str().unwrap().to_owned();
        if now != first {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not refreshed within 15 s");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    // Well past the first token's end: the call goes through as ann's upstream identity.
    assert_eq!(subject(&gw.whoami(&token).await), ann_up.id.to_string());
}

#[tokio::test]
async fn an_access_token_refused_upstream_is_refreshed_once_and_the_call_sent_again() {
    let (gw, up) = pair(None).await;
    let ann = gw.person("ann@example.com").await;
    let ann_up = up.person("ann-up@example.com").await;
    connect(&gw, &up, &ann, &ann_up).await;
    // The stored access token stops working upstream (its refresh token still does), and
    // Tessera believes it good for an hour: only the upstream's 401 can tell.
    let server = gw.state.servers.get("up").await.unwrap();
    let key = gw.state.servers.seal_key().unwrap();
    let context = format!("connection/{}/{}", server.id, ann.id).into_bytes();
    let now = chrono::Utc::now();
    let sealed = gw.store.claim_refresh(ann.id, server.id, now, now).await.unwrap().unwrap();
    let mut pair: Value = serde_json::from_slice(&key.open(&sealed, &context).unwrap()).unwrap();
    pair["a"] = json!("not-a-token-the-upstream-knows");
    let broken = tessera_store::SealedTokens {
        value: key.seal(pair.to_string().as_bytes(), &context),
        issued_at: now,
        expires_at: Some(now + chrono::Duration::hours(1)),
        identity: None,
    };
    gw.store.finish_refresh(ann.id, server.id, "up", &broken).await.unwrap();
    let token = gw.token(ann.id, "write:up execute:mcp", &format!("{}/mcp/up", gw.base)).await;

    assert_eq!(subject(&gw.whoami(&token).await), ann_up.id.to_string());
}

#[tokio::test]
async fn disconnecting_revokes_the_upstream_grant() {
    let (gw, up) = pair(None).await;
    let ann = gw.person("ann@example.com").await;
    let ann_up = up.person("ann-up@example.com").await;
    connect(&gw, &up, &ann, &ann_up).await;
    assert!(active_upstream_tokens(&up, ann_up.id).await > 0);
    let res = http()
        .delete(format!("{}/api/v2/connections/up", gw.base))
        .header("Cookie", Node::session(&ann))
        .header("X-CSRF-Token", Node::csrf(&ann))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(active_upstream_tokens(&up, ann_up.id).await, 0, "the upstream grant is revoked (RFC 7009)");
    let token = gw.token(ann.id, "write:up execute:mcp", &format!("{}/mcp/up", gw.base)).await;
    assert_eq!(gw.whoami(&token).await["error"]["code"], -32042);
}

#[tokio::test]
async fn an_oauth_server_takes_no_typed_value() {
    let (gw, _up) = pair(None).await;
    let ann = gw.person("ann@example.com").await;
    let res = http()
        .put(format!("{}/api/v2/connections/up", gw.base))
        .header("Cookie", Node::session(&ann))
        .header("X-CSRF-Token", Node::csrf(&ann))
        .json(&json!({"value": "a pasted token"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "not_connectable");
}

#[tokio::test]
async fn tessera_serves_its_client_metadata_document() {
    let gw = node(None).await;
    let res = http().get(format!("{}/api/v2/connections/client-metadata.json", gw.base)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["client_id"], format!("{}/api/v2/connections/client-metadata.json", gw.base));
    assert_eq!(doc["redirect_uris"], json!([format!("{}/api/v2/connections/callback", gw.base)]));
    assert_eq!(doc["token_endpoint_auth_method"], "none");
}

#[tokio::test]
async fn a_stateless_era_client_is_asked_for_the_connect_url_with_an_input_required_result() {
    let (gw, _up) = pair(None).await;
    let ann = gw.person("ann@example.com").await;
    let token = gw.token(ann.id, "write:up execute:mcp", &format!("{}/mcp/up", gw.base)).await;
    let send = |body: Value| {
        http()
            .post(format!("{}/mcp/up", gw.base))
            .bearer_auth(&token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .json(&body)
            .send()
    };
    let call =
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}});
    let res = send(call).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["result"]["resultType"], "input_required", "{answer}");
    let asked = &answer["result"]["inputRequests"]["connect-up"];
    assert_eq!(asked["method"], "elicitation/create");
    assert_eq!(asked["params"]["mode"], "url");
    assert_eq!(asked["params"]["url"], format!("{}/#/connections/up?for={}", gw.base, ann.id));
    // A method without round trips keeps the URL-elicitation error.
    let list = send(json!({"jsonrpc": "2.0", "id": 8, "method": "tools/list"})).await.unwrap();
    assert_eq!(list.json::<Value>().await.unwrap()["error"]["code"], -32042);
}

/// Active tokens (grants included) of `user` at node `up`.
async fn active_upstream_tokens(up: &Node, user: Uuid) -> i64 {
    sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM tokens t WHERE t.user_id = $1
           AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.token_id = t.id)",
    )
    .bind(user)
    .fetch_one(up.store.pool())
    .await
    .unwrap()
}

/// Waits (up to 5 s) for `user`'s upstream grants to be revoked in the background.
async fn until_revoked_upstream(up: &Node, user: Uuid) {
    for _ in 0..50 {
        if active_upstream_tokens(up, user).await == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the upstream grant was not revoked");
}

#[tokio::test]
async fn deactivating_a_person_revokes_their_upstream_grants() {
    let (gw, up) = pair(None).await;
    let ann = gw.person("ann@example.com").await;
    let ann_up = up.person("ann-up@example.com").await;
    connect(&gw, &up, &ann, &ann_up).await;
    assert!(active_upstream_tokens(&up, ann_up.id).await > 0);
    let admin = gw.person("admin@example.com").await;
    gw.store.set_user_admin("admin@example.com", true, &Actor::cli()).await.unwrap();
    let res = http()
        .patch(format!("{}/api/v2/users/{}", gw.base, ann.id))
        .header("Cookie", Node::session(&admin))
        .header("X-CSRF-Token", Node::csrf(&admin))
        .json(&json!({"active": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{}", res.text().await.unwrap());
    until_revoked_upstream(&up, ann_up.id).await;
}

#[tokio::test]
async fn removing_a_server_revokes_everyones_upstream_grants() {
    let (gw, up) = pair(None).await;
    let ann = gw.person("ann@example.com").await;
    let ann_up = up.person("ann-up@example.com").await;
    connect(&gw, &up, &ann, &ann_up).await;
    gw.state.servers.remove(&Actor::cli(), "up").await.unwrap();
    until_revoked_upstream(&up, ann_up.id).await;
}

#[tokio::test]
async fn one_connection_is_refreshed_by_one_caller_at_a_time() {
    let (gw, up) = pair(None).await;
    let ann = gw.person("ann@example.com").await;
    let ann_up = up.person("ann-up@example.com").await;
    connect(&gw, &up, &ann, &ann_up).await;
    // Two callers at once (two instances would be the same: the claim is in the row).
    let other = gw.state.servers.clone();
    let now = chrono::Utc::now();
    let (a, b) = tokio::join!(
        gw.state.servers.refresh_connection(ann.id, "up", now),
        other.refresh_connection(ann.id, "up", now)
    );
    let mut outcomes = [a.unwrap(), b.unwrap()];
    outcomes.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(outcomes, [tessera_tokens::Refreshed::Busy, tessera_tokens::Refreshed::Done]);
    // The rotated refresh token was stored: the next refresh works.
    let later = chrono::Utc::now();
    assert_eq!(
        gw.state.servers.refresh_connection(ann.id, "up", later).await.unwrap(),
        tessera_tokens::Refreshed::Done
    );
    let token = gw.token(ann.id, "write:up execute:mcp", &format!("{}/mcp/up", gw.base)).await;
    assert_eq!(subject(&gw.whoami(&token).await), ann_up.id.to_string());
}
