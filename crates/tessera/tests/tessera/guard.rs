//! The one bearer guard, pinned by a table: every face (`/mcp`, a gateway server, the REST
//! API, token validation, RFC 7662 introspection) × every denial answers with the same
//! status, `error` code and RFC 6750 challenge (introspection in its own protocol's shape:
//! `{"active": false}`), and a refused but identified token is counted in its own usage on
//! every face.

use std::net::TcpListener;

use chrono::{Duration, Utc};
use clap::Parser;
use serde_json::{Value, json};
use tessera::cli::Cli;
use tessera::server::{AppState, Application};
use tessera_core::lifecycle::Requester;
use tessera_core::outcome::Outcome;
use tessera_store::{Actor, Store};
use tessera_testkit::{TokenSpec, fresh_db};

const DIRECT_URL: &str = "https://direct.example.com/mcp";

/// A bearer face: how to send one request to it, and which scopes allow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Face {
    Mcp,
    Gateway,
    Api,
    Validate,
    Introspect,
}

const FACES: [Face; 5] = [Face::Mcp, Face::Gateway, Face::Api, Face::Validate, Face::Introspect];

impl Face {
    /// Scopes that make the request allowed.
    fn allowed(self) -> &'static str {
        match self {
            Self::Mcp => "execute:mcp",
            Self::Gateway => "read:up",
            Self::Api => "read:tokens",
            Self::Validate => "read:tasks",
            Self::Introspect => "read:direct",
        }
    }

    /// Scopes that identify the token but do not allow the request (`None`: the face asks for
    /// no scope).
    fn lacking(self) -> Option<&'static str> {
        match self {
            Self::Validate => None,
            _ => Some("read:context"),
        }
    }
}

/// What a face answered, reduced to what must agree across faces.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    status: u16,
    code: String,
    /// The `error=` of `WWW-Authenticate`, or `-` for a bare challenge, or `none`.
    challenge: String,
}

struct Bench {
    base: String,
    store: Store,
    state: AppState,
    client: reqwest::Client,
    user: uuid::Uuid,
    introspection: (String, String),
}

async fn bench() -> Bench {
    use tessera_core::catalog::ServerName;
    use tessera_core::upstream::{UpstreamHeader, UpstreamUrl};
    let db = fresh_db().await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let settings = Cli::parse_from(["tessera", "--public-url", &base, "serve"]).settings;
    let state = AppState::for_store(db.store.clone(), settings).await.unwrap();
    tokio::spawn(Application::build(state.clone(), listener).unwrap().run());
    let store = db.store;
    let owner = store.create_user("upstream@example.com", None, false, &Actor::cli()).await.unwrap();
    let user = store.create_user("someone@example.com", None, false, &Actor::cli()).await.unwrap().id;
    // The gateway server `up` fronts this very process's `/mcp`, reached with its own token.
    let (upstream_token, _) = TokenSpec::new(owner.id, "read:tasks execute:mcp", &base, &format!("{base}/mcp"))
        .insert(&store, &state.validator.key_ring())
        .await;
    let input = |name: &str, url: &str, headers: Vec<UpstreamHeader>| tessera_tokens::ServerInput {
        name: ServerName::parse(name).unwrap(),
        url: UpstreamUrl::parse(url).unwrap(),
        description: None,
        headers,
        new_tools: Default::default(),
    };
    let header = UpstreamHeader::new("Authorization", &format!("Bearer {upstream_token}")).unwrap();
    let up = input("up", &format!("{base}/mcp"), vec![header]);
    state.servers.add(&Actor::cli(), up, Utc::now()).await.unwrap();
    let (_, credential) =
        state.servers.add_direct(&Actor::cli(), input("direct", DIRECT_URL, vec![]), Utc::now()).await.unwrap();
    let client = reqwest::Client::new();
    Bench { base, store, state, client, user, introspection: (credential.client_id, credential.secret) }
}

impl Bench {
    /// A token for the face's resource (and the built-in one) with `scopes`, adjusted.
    async fn token(&self, face: Face, scopes: &str, adjust: impl FnOnce(&mut TokenSpec)) -> (String, uuid::Uuid) {
        let resource = match face {
            Face::Gateway => format!("{}/mcp/up", self.base),
            Face::Introspect => DIRECT_URL.to_owned(),
            _ => format!("{}/mcp", self.base),
        };
        let mut spec = TokenSpec::new(self.user, scopes, &self.base, &resource);
        adjust(&mut spec);
        let (secret, record) = spec.insert(&self.store, &self.state.validator.key_ring()).await;
        (secret, record.id)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Revokes `id` as an administrator would, through the lifecycle service.
    async fn revoke(&self, id: uuid::Uuid) {
        let ring = tessera_testkit::key_ring(&self.store).await;
        let tokens = tessera_testkit::token_service(&self.store, ring, &self.base, &self.url("/mcp"));
        let admin = Requester::Person { user_id: self.user, is_admin: true };
        tokens.revoke(&admin, None, id, None, Utc::now()).await.unwrap();
    }

    /// One request to `face`, with `authorization` as the header value (none when `None`).
    async fn send(&self, face: Face, authorization: Option<&str>) -> Answer {
        let rpc = |method: &str, params: Value| json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let mut req = match face {
            Face::Mcp => self
                .client
                .post(self.url("/mcp"))
                .json(&rpc("tools/call", json!({"name": "echo", "arguments": {"text": "hi"}}))),
            Face::Gateway => self.client.post(self.url("/mcp/up")).json(&rpc("tools/list", json!({}))),
            Face::Api => self.client.get(self.url("/api/v2/tokens")),
            Face::Validate => self.client.post(self.url("/api/v2/tokens/validate")),
            Face::Introspect => {
                let token = authorization.and_then(|a| a.strip_prefix("Bearer ")).unwrap_or_default();
                let (id, secret) = &self.introspection;
                let res = self
                    .client
                    .post(self.url("/oauth/introspect"))
                    .basic_auth(id, Some(secret))
                    .form(&[("token", token)])
                    .send()
                    .await
                    .unwrap();
                let status = res.status().as_u16();
                let body: Value = res.json().await.unwrap();
                let code = if body["active"] == true { "active" } else { "inactive" };
                return Answer { status, code: code.to_owned(), challenge: "none".to_owned() };
            }
        };
        req = req.header("accept", "application/json, text/event-stream");
        if let Some(value) = authorization {
            req = req.header("authorization", value);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let challenge = match res.headers().get("www-authenticate") {
            None => "none".to_owned(),
            Some(v) => {
                let v = v.to_str().unwrap();
                v.split("error=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or("-").to_owned()
            }
        };
        let body: Value = res.json().await.unwrap_or(Value::Null);
        let code = body["error"].as_str().unwrap_or("-").to_owned();
        Answer { status, code, challenge }
    }

    /// Counts of `token_id`'s usage by outcome, after a flush.
    async fn outcomes(&self, token_id: uuid::Uuid) -> Vec<Outcome> {
        self.state.flush_usage().await;
        let now = Utc::now();
        let rows = self.store.usage_rows(token_id, now - Duration::hours(2), now + Duration::hours(2)).await.unwrap();
        rows.iter().map(|r| r.outcome).collect()
    }
}

fn answer(status: u16, code: &str, challenge: &str) -> Answer {
    Answer { status, code: code.to_owned(), challenge: challenge.to_owned() }
}

/// What every face but introspection answers (introspection: `inactive`, never why).
fn expect(face: Face, on_http_faces: Answer) -> Answer {
    if face == Face::Introspect { answer(200, "inactive", "none") } else { on_http_faces }
}

#[tokio::test]
async fn an_allowed_request_passes_on_every_face() {
    let b = bench().await;
    for face in FACES {
        let (token, _) = b.token(face, face.allowed(), |_| {}).await;
        let got = b.send(face, Some(&format!("Bearer {token}"))).await;
        let want = if face == Face::Introspect { answer(200, "active", "none") } else { answer(200, "-", "none") };
        assert_eq!(got, want, "{face:?}");
    }
}

#[tokio::test]
async fn no_token_a_malformed_one_and_another_scheme_are_the_same_401_on_every_face() {
    let b = bench().await;
    for face in FACES.into_iter().filter(|f| *f != Face::Introspect) {
        let none = b.send(face, None).await;
        assert_eq!((none.status, none.challenge.as_str()), (401, "-"), "{face:?}: a bare challenge");
        // The API also takes a session: its code says neither was sent.
        assert!(["missing_token", "unauthenticated"].contains(&none.code.as_str()), "{face:?}: {none:?}");
        assert_eq!(b.send(face, Some("Bearer not.a.jwt")).await, answer(401, "malformed", "invalid_token"), "{face:?}");
        assert_eq!(b.send(face, Some("Basic dXNlcjpwYXNz")).await, answer(401, "wrong_scheme", "-"), "{face:?}");
    }
    assert_eq!(b.send(Face::Introspect, Some("Bearer not.a.jwt")).await, answer(200, "inactive", "none"));
}

#[tokio::test]
async fn expired_revoked_and_wrong_audience_tokens_are_the_same_401_and_counted_on_every_face() {
    let b = bench().await;
    for face in FACES {
        // Refused by the codec before the row is read: not identified, so not counted.
        let (expired, _) = b
            .token(face, face.allowed(), |s| {
                s.issued_at = Utc::now() - Duration::days(2);
                s.expires_at = Utc::now() - Duration::days(1);
            })
            .await;
        let got = b.send(face, Some(&format!("Bearer {expired}"))).await;
        assert_eq!(got, expect(face, answer(401, "expired", "invalid_token")), "{face:?} expired");

        let (revoked, revoked_id) = b.token(face, face.allowed(), |_| {}).await;
        b.revoke(revoked_id).await;
        let got = b.send(face, Some(&format!("Bearer {revoked}"))).await;
        assert_eq!(got, expect(face, answer(401, "revoked", "invalid_token")), "{face:?} revoked");
        // A signature that verifies and a row that exists: the refusal is the token's own use.
        assert_eq!(b.outcomes(revoked_id).await, [Outcome::Unauthorized], "{face:?} revoked is counted");

        let (elsewhere, _) =
            b.token(face, face.allowed(), |s| s.audience = vec!["https://elsewhere.example/mcp".to_owned()]).await;
        let got = b.send(face, Some(&format!("Bearer {elsewhere}"))).await;
        assert_eq!(got, expect(face, answer(401, "wrong_audience", "invalid_token")), "{face:?} wrong audience");
    }
}

#[tokio::test]
async fn a_missing_scope_is_the_same_403_counted_and_spends_no_budget_on_every_face() {
    let b = bench().await;
    for face in FACES {
        let Some(lacking) = face.lacking() else { continue };
        let (token, id) = b.token(face, lacking, |s| s.rate_limit_per_hour = Some(60)).await;
        for _ in 0..3 {
            let got = b.send(face, Some(&format!("Bearer {token}"))).await;
            // Never 429: a request the token may not make spends none of its budget.
            assert_eq!(got, expect(face, answer(403, "insufficient_scope", "insufficient_scope")), "{face:?}");
        }
        assert_eq!(b.outcomes(id).await, [Outcome::Forbidden], "{face:?} counted as forbidden");
    }
}

#[tokio::test]
async fn over_the_rate_limit_is_the_same_429_and_counted_on_every_face() {
    let b = bench().await;
    for face in FACES {
        // 60 an hour: a burst of one.
        let (token, id) = b.token(face, face.allowed(), |s| s.rate_limit_per_hour = Some(60)).await;
        let bearer = format!("Bearer {token}");
        let first = b.send(face, Some(&bearer)).await;
        assert_eq!(first.status, 200, "{face:?}: {first:?}");
        let got = b.send(face, Some(&bearer)).await;
        assert_eq!(got, expect(face, answer(429, "rate_limited", "none")), "{face:?}");
        let outcomes = b.outcomes(id).await;
        assert!(outcomes.contains(&Outcome::RateLimited), "{face:?}: {outcomes:?}");
    }
}
