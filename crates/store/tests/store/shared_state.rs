//! State shared between replicas (rate-limit budgets, gateway sessions) is pruned once no
//! replica can need it.

use chrono::{Duration, Utc};
use tessera_store::{Actor, Store};
use tessera_testkit::{TokenSpec, fresh_db, insert_server, key_ring};
use uuid::Uuid;

async fn count(store: &Store, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}")).fetch_one(store.pool()).await.unwrap()
}

#[tokio::test]
async fn pruning_forgets_refilled_budgets_and_keeps_budgets_still_in_debt() {
    let db = fresh_db().await;
    let (spent, refilled) = (Uuid::now_v7(), Uuid::now_v7());
    // An hour-long interval: the budget stays in debt long after this test ends.
    let lease = db.store.lease_rate_limit("token", spent, 3_600_000_000, 10, 5).await.unwrap();
    assert_eq!(lease.granted, 5);
    // A microsecond interval: the budget has refilled by the time we prune.
    db.store.lease_rate_limit("token", refilled, 1, 10, 5).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;

    let now = Utc::now();
    assert_eq!(db.store.prune_shared_state(now - Duration::days(1), now).await.unwrap(), 1);
    let kept: Vec<Uuid> =
        sqlx::query_scalar("SELECT key FROM rate_limit_leases").fetch_all(db.store.pool()).await.unwrap();
    assert_eq!(kept, vec![spent]);
    // The kept budget still holds what was spent: the next lease gets the rest only.
    assert_eq!(db.store.lease_rate_limit("token", spent, 3_600_000_000, 10, 10).await.unwrap().granted, 5);
}

#[tokio::test]
async fn pruning_forgets_old_sessions_and_sessions_of_revoked_tokens() {
    let db = fresh_db().await;
    let ring = key_ring(&db.store).await;
    let owner = db.store.create_user("ann@example.com", None, false, &Actor::cli()).await.unwrap().id;
    let spec = |name: &str| TokenSpec {
        name: name.to_owned(),
        ..TokenSpec::new(owner, "read:up", "http://tessera.test", "http://tessera.test/mcp/up")
    };
    let (_, live) = spec("live").insert(&db.store, &ring).await;
    let (_, revoked) = spec("revoked").insert(&db.store, &ring).await;
    let server = insert_server(&db.store, "up").await;
    db.store.bind_gateway_session(server.id, &[1; 32], live.id).await.unwrap();
    db.store.bind_gateway_session(server.id, &[2; 32], live.id).await.unwrap();
    db.store.bind_gateway_session(server.id, &[3; 32], revoked.id).await.unwrap();
    sqlx::query("UPDATE gateway_sessions SET created_at = now() - interval '2 days' WHERE session_sha256 = $1")
        .bind([2u8; 32].as_slice())
        .execute(db.store.pool())
        .await
        .unwrap();
    let mut tx = db.store.begin_token_change().await.unwrap();
    tx.revoke(revoked.id, None, Utc::now(), None).await.unwrap();
    tx.commit().await.unwrap();

    let now = Utc::now();
    assert_eq!(db.store.prune_shared_state(now - Duration::days(1), now).await.unwrap(), 2);
    assert_eq!(count(&db.store, "gateway_sessions").await, 1);
    assert_eq!(db.store.gateway_session_owner(server.id, &[1; 32]).await.unwrap(), Some(live.id));
    assert_eq!(db.store.gateway_session_owner(server.id, &[2; 32]).await.unwrap(), None, "older than a day");
    assert_eq!(db.store.gateway_session_owner(server.id, &[3; 32]).await.unwrap(), None, "token revoked");
}
