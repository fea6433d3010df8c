//! The Validator against a real database: the one path the API and MCP faces share.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tessera_auth::{AuthError, Validator, ValidatorConfig};
use tessera_core::KeyRing;
use tessera_core::lifecycle::Requester;
use tessera_core::validate::{DenyReason, Rejection};
use tessera_store::{Actor, Store, TokenRecord};
use tessera_testkit::{TokenSpec, fresh_db, token_service};

const ISS: &str = "http://tessera.test";
const AUD: &str = "http://tessera.test/mcp";

fn config() -> ValidatorConfig {
    ValidatorConfig { issuer: ISS.into(), resource: AUD.into(), cache_ttl: Duration::from_secs(30), reload_keys: true }
}

async fn ring(store: &Store) -> KeyRing {
    let set = store.load_or_create_keys(Utc::now()).await.unwrap();
    KeyRing::ed25519(&set.keys, &set.signing_kid).unwrap()
}

/// A stored token and its secret.
struct Issued {
    secret: String,
    record: TokenRecord,
}

async fn issue(store: &Store, ring: &KeyRing, scopes: &str) -> Issued {
    let user =
        store.create_user(&format!("{}@example.com", uuid::Uuid::now_v7()), None, false, &Actor::cli()).await.unwrap();
    let (secret, record) = TokenSpec::new(user.id, scopes, ISS, AUD).insert(store, ring).await;
    Issued { secret, record }
}

/// Waits until the listener is up, so row caching is on.
async fn listening(validator: &Arc<Validator>, store: &Store, ring: &KeyRing) {
    validator.spawn_listener();
    let probe = issue(store, ring, "read:tasks").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        validator.validate(probe.secret.as_str(), Utc::now()).await.unwrap();
        if validator.cache_stats().0 > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "listener never came up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn issued_token_is_active_with_expanded_scopes() {
    let db = fresh_db().await;
    let ring = ring(&db.store).await;
    let t = issue(&db.store, &ring, "write:tasks").await;
    let v = Validator::new(db.store.clone(), ring, config());
    let p = v.validate(t.secret.as_str(), Utc::now()).await.unwrap();
    assert_eq!(p.token_id, t.record.id);
    assert!(p.effective.contains("read:tasks"));
}

#[tokio::test]
async fn revoked_token_is_rejected_within_one_notify_despite_the_cache() {
    let db = fresh_db().await;
    let ring = ring(&db.store).await;
    let v = Validator::new(db.store.clone(), ring.clone(), config());
    listening(&v, &db.store, &ring).await;
    let t = issue(&db.store, &ring, "read:tasks").await;
    v.validate(t.secret.as_str(), Utc::now()).await.unwrap();
    v.validate(t.secret.as_str(), Utc::now()).await.unwrap(); // now served from cache
    let service = token_service(&db.store, ring.clone(), ISS, AUD);
    service.revoke(&Requester::Cli, None, t.record.id, None, Utc::now()).await.unwrap();
    let started = Instant::now();
    loop {
        match v.validate(t.secret.as_str(), Utc::now()).await {
            Err(AuthError::Rejected(Rejection::Denied(DenyReason::Revoked))) => break,
            other => assert!(started.elapsed() < Duration::from_secs(1), "still {other:?} after 1 s"),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!("revocation seen after {:?}", started.elapsed());
}

#[tokio::test]
async fn unreachable_database_fails_closed() {
    let db = fresh_db().await;
    let ring = ring(&db.store).await;
    let t = issue(&db.store, &ring, "read:tasks").await;
    let v = Validator::new(db.store.clone(), ring, config());
    db.store.close().await;
    let err = v.validate(t.secret.as_str(), Utc::now()).await.unwrap_err();
    assert!(matches!(err, AuthError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn token_signed_by_a_key_rotated_in_later_is_accepted() {
    let db = fresh_db().await;
    let old_ring = ring(&db.store).await;
    let v = Validator::new(db.store.clone(), old_ring, config());
    db.store.rotate_keys(Utc::now(), &Actor::cli()).await.unwrap();
    let new_ring = ring(&db.store).await;
    let t = issue(&db.store, &new_ring, "read:tasks").await;
    v.validate(t.secret.as_str(), Utc::now()).await.unwrap();
}

#[tokio::test]
async fn token_for_another_resource_is_wrong_audience() {
    let db = fresh_db().await;
    let ring = ring(&db.store).await;
    let t = issue(&db.store, &ring, "read:tasks").await;
    let other = ValidatorConfig { resource: "http://elsewhere.test/mcp".into(), ..config() };
    let v = Validator::new(db.store.clone(), ring, other);
    let err = v.validate(t.secret.as_str(), Utc::now()).await.unwrap_err();
    assert_eq!(err.code(), "wrong_audience");
}

#[tokio::test]
async fn a_gateway_resource_accepts_only_tokens_naming_it_even_after_the_signature_is_cached() {
    let db = fresh_db().await;
    let ring = ring(&db.store).await;
    let plain = issue(&db.store, &ring, "read:tasks").await;
    let user = db.store.create_user("gw@example.com", None, false, &Actor::cli()).await.unwrap();
    tessera_testkit::insert_server(&db.store, "notes").await;
    let spec = TokenSpec {
        audience: vec![AUD.into(), format!("{AUD}/notes")],
        ..TokenSpec::new(user.id, "read:notes", ISS, AUD)
    };
    let (for_notes, _) = spec.insert(&db.store, &ring).await;
    let v = Validator::new(db.store.clone(), ring, config());
    let notes = format!("{AUD}/notes");
    // Cached as verified for /mcp first: the cache must not carry that to /mcp/notes.
    v.validate(plain.secret.as_str(), Utc::now()).await.unwrap();
    let err = v.validate_for(plain.secret.as_str(), &notes, Utc::now()).await.unwrap_err();
    assert_eq!(err.code(), "wrong_audience");
    let p = v.validate_for(&for_notes, &notes, Utc::now()).await.unwrap();
    assert!(p.effective.contains("read:notes"));
    let err = v.validate_for(&for_notes, &format!("{AUD}/other"), Utc::now()).await.unwrap_err();
    assert_eq!(err.code(), "wrong_audience");
}

#[tokio::test]
async fn a_scope_of_a_server_that_is_not_registered_grants_nothing_and_the_rest_survives() {
    let db = fresh_db().await;
    let ring = ring(&db.store).await;
    let t = issue(&db.store, &ring, "read:tasks read:gone call:gone/tool").await;
    let v = Validator::new(db.store.clone(), ring, config());
    let p = v.validate(t.secret.as_str(), Utc::now()).await.unwrap();
    assert!(p.effective.contains("read:tasks"));
    assert!(!p.effective.contains("read:gone") && !p.effective.covers("call:gone/tool"));
}

/// A TCP proxy to the test database that can go silent: after `freeze`, it keeps every
/// connection open but forwards nothing, like a peer behind a dropped NAT entry.
struct FreezableProxy {
    port: u16,
    frozen: Arc<std::sync::atomic::AtomicBool>,
}

impl FreezableProxy {
    async fn start(upstream_url: &str) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

        async fn pump(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin, frozen: Arc<AtomicBool>) {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match from.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                while frozen.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }

        // `postgres://user@localhost:PORT/db?host=/socket/dir` (with-test-db) or a TCP URL.
        let rest = upstream_url.split_once("://").unwrap().1;
        let authority = rest.split('/').next().unwrap();
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let port = host_port.rsplit_once(':').map_or("5432", |(_, p)| p).to_owned();
        let socket_dir = upstream_url.split_once("host=").map(|(_, dir)| dir.split('&').next().unwrap().to_owned());
        let tcp_target = host_port.to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_port = listener.local_addr().unwrap().port();
        let frozen = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&frozen);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (client_read, client_write) = client.into_split();
                let (f1, f2) = (Arc::clone(&flag), Arc::clone(&flag));
                match &socket_dir {
                    Some(dir) => {
                        let path = format!("{dir}/.s.PGSQL.{port}");
                        let Ok(server) = tokio::net::UnixStream::connect(path).await else { continue };
                        let (server_read, server_write) = server.into_split();
                        tokio::spawn(pump(client_read, server_write, f1));
                        tokio::spawn(pump(server_read, client_write, f2));
                    }
                    None => {
                        let Ok(server) = tokio::net::TcpStream::connect(&tcp_target).await else { continue };
                        let (server_read, server_write) = server.into_split();
                        tokio::spawn(pump(client_read, server_write, f1));
                        tokio::spawn(pump(server_read, client_write, f2));
                    }
                }
            }
        });
        Self { port: proxy_port, frozen }
    }

    /// `db_url` rewritten to go through this proxy.
    fn url(&self, db_url: &str) -> String {
        let (scheme, rest) = db_url.split_once("://").unwrap();
        let (authority, path) = rest.split_once('/').unwrap();
        let user = authority.rsplit_once('@').map_or("", |(u, _)| u);
        let database = path.split('?').next().unwrap();
        let at = if user.is_empty() { String::new() } else { format!("{user}@") };
        format!("{scheme}://{at}127.0.0.1:{}/{database}", self.port)
    }

    fn freeze(&self) {
        self.frozen.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_silently_dead_change_feed_turns_row_caching_off_within_seconds() {
    let db = fresh_db().await;
    let ring = ring(&db.store).await;
    let proxy = FreezableProxy::start(&db.url).await;
    let pool =
        tessera_store::StoreConfig { max_connections: 4, acquire_timeout: Duration::from_secs(1), listen_url: None };
    let through_proxy = Store::connect(&proxy.url(&db.url), &pool).await.unwrap();
    let v = Validator::new(through_proxy.clone(), ring.clone(), config());
    listening(&v, &through_proxy, &ring).await;
    assert_eq!(v.feed_stats(), (true, 0));
    // Heartbeats keep a healthy but idle feed alive.
    tokio::time::sleep(tessera_auth::FEED_DEAD_AFTER + Duration::from_secs(1)).await;
    assert_eq!(v.feed_stats(), (true, 0), "an idle feed is not a dead one");

    proxy.freeze();
    let frozen_at = Instant::now();
    loop {
        let (connected, silences) = v.feed_stats();
        if !connected && silences >= 1 {
            break;
        }
        assert!(frozen_at.elapsed() < Duration::from_secs(10), "the dead feed was not noticed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(frozen_at.elapsed() < tessera_auth::FEED_DEAD_AFTER + Duration::from_secs(3));
}

#[tokio::test]
async fn a_row_read_that_overlaps_an_eviction_is_not_cached() {
    let db = fresh_db().await;
    let ring = ring(&db.store).await;
    let v = Validator::new(db.store.clone(), ring.clone(), config());
    listening(&v, &db.store, &ring).await;
    let t = issue(&db.store, &ring, "read:tasks").await;

    // Hold the validator's row read inside PostgreSQL: it waits on this lock.
    let mut lock = db.store.pool().begin().await.unwrap();
    sqlx::query("LOCK TABLE revocations IN ACCESS EXCLUSIVE MODE").execute(&mut *lock).await.unwrap();
    let read = tokio::spawn({
        let (v, secret) = (Arc::clone(&v), t.secret.clone());
        async move { v.validate(secret.as_str(), Utc::now()).await }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(db.store.pool())
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the validator's read never reached the database");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A change announced while the read is under way: what it returns may predate the change.
    v.evict(t.record.id);
    lock.rollback().await.unwrap();
    read.await.unwrap().unwrap();

    let (hits, misses) = v.cache_stats();
    v.validate(t.secret.as_str(), Utc::now()).await.unwrap();
    assert_eq!(v.cache_stats(), (hits, misses + 1), "the overlapping read was cached");
    v.validate(t.secret.as_str(), Utc::now()).await.unwrap();
    assert_eq!(v.cache_stats(), (hits + 1, misses + 1), "a read with no change during it is cached");
}
