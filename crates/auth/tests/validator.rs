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
