//! Two instances on one database, as behind a load balancer (issue #16): what one instance
//! decides, the other honours.

use std::net::TcpListener;
use std::time::Instant;

use clap::Parser;
use serde_json::json;
use tessera::cli::Cli;
use tessera::server::{AppState, Application};
use tessera_store::{Actor, Store};
use tessera_testkit::{TokenSpec, fresh_db};

const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// Two running instances of one deployment (same public URL and key) on one database.
pub(crate) struct Pair {
    /// The instances' own addresses.
    pub bases: [String; 2],
    /// The public URL both mint and check for.
    pub public: String,
    pub store: Store,
    pub states: [AppState; 2],
}

pub(crate) async fn spawn_pair() -> Pair {
    let db = fresh_db().await;
    let listeners = [TcpListener::bind("127.0.0.1:0").unwrap(), TcpListener::bind("127.0.0.1:0").unwrap()];
    let bases = listeners.each_ref().map(|l| format!("http://127.0.0.1:{}", l.local_addr().unwrap().port()));
    let public = bases[0].clone();
    let mut states = Vec::new();
    for listener in listeners {
        let settings = Cli::parse_from(["tessera", "--jwt-secret", SECRET, "--public-url", &public, "serve"]).settings;
        let state = AppState::for_store(db.store.clone(), settings).await.unwrap();
        let app = Application::build(state.clone(), listener).unwrap();
        tokio::spawn(app.run());
        states.push(state);
    }
    let states: [AppState; 2] = states.try_into().unwrap();
    Pair { bases, public, store: db.store, states }
}

impl Pair {
    /// A token of a new user with `scopes` and `rate_limit_per_hour`.
    pub async fn token(&self, email: &str, scopes: &str, rate_limit_per_hour: Option<i32>) -> (String, uuid::Uuid) {
        let user = self.store.create_user(email, None, false, &Actor::cli()).await.unwrap();
        let spec = TokenSpec {
            rate_limit_per_hour,
            ..TokenSpec::new(user.id, scopes, &self.public, &format!("{}/mcp", self.public))
        };
        let (token, _) = spec.insert(&self.store, &self.states[0].validator.key_ring()).await;
        (token, user.id)
    }
}

async fn tools_list(client: &reqwest::Client, base: &str, token: &str) -> u16 {
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    crate::support::mcp_post(client, &format!("{base}/mcp"), token, &list).await.status().as_u16()
}

/// Requests alternating between two instances at `bases`; returns (accepted, the most one
/// GCRA limiter would have accepted in the time they took, plus 10 %).
pub(crate) async fn alternate(bases: &[String; 2], token: &str, requests: usize, per_hour: u32) -> (u32, f64) {
    let client = reqwest::Client::new();
    let (interval, burst) = tessera_auth::quota_for(per_hour);
    let started = Instant::now();
    let mut accepted = 0;
    for i in 0..requests {
        match tools_list(&client, &bases[i % 2], token).await {
            200 => accepted += 1,
            429 => {}
            other => panic!("request {i}: unexpected status {other}"),
        }
    }
    let earned = started.elapsed().as_secs_f64() / interval.as_secs_f64();
    (accepted, (f64::from(burst) + earned.ceil()) * 1.1)
}

#[tokio::test]
async fn a_tokens_rate_limit_holds_across_two_instances() {
    let pair = spawn_pair().await;
    // 6000/h: a burst of 100, then one every 0.6 s. Each instance on its own would accept
    // its own burst: 200 together.
    let (token, _) = pair.token("limited@example.com", "read:tasks", Some(6000)).await;
    let (accepted, bound) = alternate(&pair.bases, &token, 300, 6000).await;
    eprintln!("two instances accepted {accepted} of 300 (bound {bound:.0})");
    assert!(f64::from(accepted) <= bound, "accepted {accepted}, at most {bound} allowed");
    // Slices unspent on one instance are the only budget lost: one slice (10) each at most.
    assert!(accepted >= 80, "accepted only {accepted} of a burst of 100");
}

#[tokio::test]
async fn a_users_rate_limit_holds_across_two_instances_and_tokens() {
    let pair = spawn_pair().await;
    let (first, user) = pair.token("shared@example.com", "read:tasks", None).await;
    pair.store.set_user_rate_limit(user, Some(600), &Actor::cli()).await.unwrap();
    let spec = TokenSpec::new(user, "read:tasks", &pair.public, &format!("{}/mcp", pair.public));
    let (second, _) = spec.insert(&pair.store, &pair.states[0].validator.key_ring()).await;
    // 600/h: a burst of 10, then one every 6 s, shared by both tokens on both instances.
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut accepted = 0;
    for i in 0..40 {
        let token = if i % 4 < 2 { &first } else { &second };
        if tools_list(&client, &pair.bases[i % 2], token).await == 200 {
            accepted += 1;
        }
    }
    let earned = (started.elapsed().as_secs_f64() / 6.0).ceil() as u32;
    assert!(accepted <= 10 + earned, "accepted {accepted}");
    assert!(accepted >= 9, "accepted only {accepted} of a burst of 10");
}

#[tokio::test]
async fn one_instance_with_shared_budgets_limits_exactly_as_one_gcra() {
    let pair = spawn_pair().await;
    let (token, _) = pair.token("single@example.com", "read:tasks", Some(3600)).await;
    let (interval, burst) = tessera_auth::quota_for(3600);
    let client = reqwest::Client::new();
    for i in 0..burst {
        assert_eq!(tools_list(&client, &pair.bases[0], &token).await, 200, "request {i} of the burst");
    }
    let res = client
        .post(format!("{}/mcp", pair.bases[0]))
        .bearer_auth(&token)
        .header("Accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "retry-after {retry}");
    tokio::time::sleep(interval + std::time::Duration::from_millis(100)).await;
    assert_eq!(tools_list(&client, &pair.bases[0], &token).await, 200, "the next cell after the interval");
}
