//! The store against a real PostgreSQL: each test owns a fresh database.

use chrono::{Duration, Utc};
use tessera_core::keys::KeyRing;
use tessera_store::{Actor, AuditAction, Store, StoreError, TokenRecord, TokenStatus};
use tessera_store::{TokenEvent, TokenFilter};
use tessera_testkit::{TokenSpec, fresh_db, key_ring};
use uuid::Uuid;

async fn user(store: &Store, email: &str) -> Uuid {
    store.create_user(email, None, false, &Actor::cli()).await.unwrap().id
}

async fn ring(store: &Store) -> KeyRing {
    key_ring(store).await
}

/// A stored token named `name` with `scopes` for `owner`, and its secret.
async fn token(store: &Store, ring: &KeyRing, owner: Uuid, name: &str, scopes: &str) -> (String, TokenRecord) {
    let spec = TokenSpec {
        name: name.to_owned(),
        ..TokenSpec::new(owner, scopes, "http://tessera.test", "http://tessera.test/mcp")
    };
    spec.insert(store, ring).await
}

/// Revokes `id` now, as the lifecycle service does it (row, NOTIFY, in one transaction).
async fn revoke(store: &Store, id: Uuid) {
    let mut tx = store.begin_token_change().await.unwrap();
    tx.revoke(id, None, Utc::now(), None).await.unwrap();
    tx.notify(id).await.unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn duplicate_email_in_any_case_is_a_conflict() {
    let db = fresh_db().await;
    user(&db.store, "Ann@Example.com").await;
    let again = db.store.create_user("ann@example.COM", None, false, &Actor::cli()).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
}

#[tokio::test]
async fn list_pages_through_every_token_once() {
    let db = fresh_db().await;
    let owner = user(&db.store, "a@example.com").await;
    let other = user(&db.store, "b@example.com").await;
    let ring = ring(&db.store).await;
    for i in 0..7 {
        token(&db.store, &ring, owner, &format!("t{i}"), "read:tasks").await;
    }
    token(&db.store, &ring, other, "not mine", "read:tasks").await;
    let now = Utc::now();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let filter = TokenFilter { user_id: Some(owner), status: None, q: None, limit: 3, after, now };
        let page = db.store.list_tokens(&filter).await.unwrap();
        seen.extend(page.items.iter().map(|t| t.name.clone()));
        match page.next_after {
            Some(id) => after = Some(id),
            None => break,
        }
    }
    assert_eq!(seen, vec!["t6", "t5", "t4", "t3", "t2", "t1", "t0"]);
}

#[tokio::test]
async fn list_filters_by_status_and_name() {
    let db = fresh_db().await;
    let owner = user(&db.store, "a@example.com").await;
    let ring = ring(&db.store).await;
    let (_, keep) = token(&db.store, &ring, owner, "deploy bot", "read:tasks").await;
    let (_, gone) = token(&db.store, &ring, owner, "old bot", "read:tasks").await;
    revoke(&db.store, gone.id).await;
    let now = Utc::now();
    let filter = |status, q: Option<&str>| TokenFilter {
        user_id: Some(owner),
        status,
        q: q.map(str::to_owned),
        limit: 10,
        after: None,
        now,
    };
    let active = db.store.list_tokens(&filter(Some(TokenStatus::Active), None)).await.unwrap();
    assert_eq!(active.items.iter().map(|t| t.id).collect::<Vec<_>>(), vec![keep.id]);
    let revoked = db.store.list_tokens(&filter(Some(TokenStatus::Revoked), None)).await.unwrap();
    assert_eq!(revoked.items.iter().map(|t| t.id).collect::<Vec<_>>(), vec![gone.id]);
    let named = db.store.list_tokens(&filter(None, Some("DEPLOY"))).await.unwrap();
    assert_eq!(named.items.len(), 1);
    let wildcard = db.store.list_tokens(&filter(None, Some("%"))).await.unwrap();
    assert!(wildcard.items.is_empty(), "LIKE wildcards in q are literal");
}

#[tokio::test]
async fn revoke_notifies_listeners() {
    let db = fresh_db().await;
    let owner = user(&db.store, "a@example.com").await;
    let ring = ring(&db.store).await;
    let mut events = db.store.token_events().await.unwrap();
    let (_, t) = token(&db.store, &ring, owner, "t", "read:tasks").await;
    revoke(&db.store, t.id).await;
    let event = tokio::time::timeout(std::time::Duration::from_secs(5), events.next()).await.unwrap();
    assert_eq!(event, TokenEvent::Changed(t.id));
}

#[tokio::test]
async fn audit_log_is_append_only() {
    let db = fresh_db().await;
    db.store.audit(&Actor::cli(), AuditAction::Login, None, serde_json::json!({})).await.unwrap();
    let deleted = sqlx::query("DELETE FROM audit_events").execute(db.store.pool()).await;
    assert!(deleted.is_err(), "deleting audit rows must fail");
}

#[tokio::test]
async fn signing_keys_are_created_once_and_rotation_keeps_old_ones() {
    let db = fresh_db().await;
    let now = Utc::now();
    let first = db.store.load_or_create_keys(now).await.unwrap();
    let again = db.store.load_or_create_keys(now).await.unwrap();
    assert_eq!(first.signing_kid, again.signing_kid);
    let new_kid = db.store.rotate_keys(now, &Actor::cli()).await.unwrap();
    let after = db.store.key_set(now).await.unwrap();
    assert_eq!(after.signing_kid, new_kid);
    assert!(after.keys.iter().any(|k| k.kid == first.signing_kid), "the old key still verifies");
}

#[tokio::test]
async fn usage_batches_accumulate_and_move_last_used() {
    let db = fresh_db().await;
    let owner = user(&db.store, "a@example.com").await;
    let ring = ring(&db.store).await;
    let now = Utc::now();
    let (_, t) = token(&db.store, &ring, owner, "t", "read:tasks").await;
    let hour = now - Duration::minutes(1);
    let inc = tessera_store::UsageIncrement {
        token_id: t.id,
        hour,
        method: "tools/list".to_owned(),
        outcome: tessera_core::outcome::Outcome::Ok,
        count: 2,
        last_at: now,
        last_from: Some("127.0.0.1".to_owned()),
    };
    db.store.record_usage(std::slice::from_ref(&inc)).await.unwrap();
    db.store.record_usage(&[inc]).await.unwrap();
    let rows = db.store.usage_rows(t.id, hour - Duration::hours(1), now + Duration::hours(1)).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].count, 4);
    let t = db.store.get_token(t.id).await.unwrap().unwrap();
    assert!(t.last_used_at.is_some());
    assert_eq!(t.last_used_from.as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn ready_reports_pending_migrations_on_an_empty_database() {
    let db = fresh_db().await;
    db.store.ready().await.unwrap();
    sqlx::query("DROP TABLE refinery_schema_history").execute(db.store.pool()).await.unwrap();
    assert!(matches!(db.store.ready().await, Err(StoreError::MigrationsPending)));
}

#[tokio::test]
async fn a_stored_scope_no_longer_in_the_catalog_grants_nothing_and_the_rest_survives() {
    let db = fresh_db().await;
    let owner = user(&db.store, "a@example.com").await;
    let ring = ring(&db.store).await;
    let (_, t) = token(&db.store, &ring, owner, "t", "read:tasks write:context").await;
    sqlx::query("UPDATE tokens SET scopes = array_append(scopes, 'read:retired-server') WHERE id = $1")
        .bind(t.id)
        .execute(db.store.pool())
        .await
        .unwrap();
    let state = db.store.token_state(t.id).await.unwrap().unwrap();
    assert_eq!(state.scopes.to_vec(), vec!["read:tasks".to_owned(), "write:context".to_owned()]);
}

#[tokio::test]
async fn audit_log_cannot_be_truncated() {
    let db = fresh_db().await;
    db.store.audit(&Actor::cli(), AuditAction::Login, None, serde_json::json!({})).await.unwrap();
    let truncated = sqlx::query("TRUNCATE audit_events").execute(db.store.pool()).await;
    let error = truncated.expect_err("truncating the audit log must fail").to_string();
    assert!(error.contains("append-only"), "{error}");
    let kept = db.store.recent_audit(10).await.unwrap();
    assert!(kept.iter().any(|e| e.action == "auth.login"), "the event survived");
}

#[tokio::test]
async fn a_server_setting_is_recorded_replaced_and_read_back() {
    let db = fresh_db().await;
    assert_eq!(db.store.server_setting(tessera_store::PUBLIC_URL_SETTING).await.unwrap(), None);
    let now = Utc::now();
    db.store.set_server_setting(tessera_store::PUBLIC_URL_SETTING, "http://a.example", now).await.unwrap();
    db.store.set_server_setting(tessera_store::PUBLIC_URL_SETTING, "https://b.example", now).await.unwrap();
    let value = db.store.server_setting(tessera_store::PUBLIC_URL_SETTING).await.unwrap();
    assert_eq!(value.as_deref(), Some("https://b.example"));
}
