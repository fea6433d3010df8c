//! The store against a real PostgreSQL: each test owns a fresh database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{Duration, Utc};
use tessera_core::keys::KeyRing;
use tessera_core::scope::ScopeSet;
use tessera_store::{Actor, IssueRequest, Store, StoreError, TokenEvent, TokenFilter, TokenPatch, TokenStatus};
use tessera_testkit::fresh_db;
use uuid::Uuid;

async fn user(store: &Store, email: &str) -> Uuid {
    store.create_user(email, None, false, &Actor::cli()).await.unwrap().id
}

async fn ring(store: &Store) -> KeyRing {
    let set = store.load_or_create_keys(Utc::now()).await.unwrap();
    KeyRing::ed25519(&set.keys, &set.signing_kid).unwrap()
}

fn request(user_id: Uuid, name: &str, scopes: &str) -> IssueRequest {
    IssueRequest {
        user_id,
        name: name.to_owned(),
        description: None,
        scopes: ScopeSet::parse_grant(scopes).unwrap(),
        expires_at: Utc::now() + Duration::days(30),
        rate_limit_per_hour: None,
        issuer: "http://tessera.test".to_owned(),
        audience: vec!["http://tessera.test/mcp".to_owned()],
    }
}

#[tokio::test]
async fn duplicate_email_in_any_case_is_a_conflict() {
    let db = fresh_db().await;
    user(&db.store, "Ann@Example.com").await;
    let again = db.store.create_user("ann@example.COM", None, false, &Actor::cli()).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
}

#[tokio::test]
async fn issued_token_stores_only_the_hash_of_the_secret() {
    let db = fresh_db().await;
    let owner = user(&db.store, "a@example.com").await;
    let ring = ring(&db.store).await;
    let issued =
        db.store.issue_token(&ring, &request(owner, "ci", "read:tasks"), Utc::now(), &Actor::cli()).await.unwrap();
    let secret = issued.secret.expose().to_owned();
    let dump: String = sqlx::query_scalar("SELECT row_to_json(t)::text FROM tokens t WHERE id = $1")
        .bind(issued.record.id)
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert!(!dump.contains(&secret), "the secret must never be stored");
    let state = db.store.token_state(issued.record.id).await.unwrap().unwrap();
    assert_eq!(state.token_sha256, tessera_core::codec::token_sha256(&secret));
}

#[tokio::test]
async fn revocation_is_a_row_and_is_idempotent() {
    let db = fresh_db().await;
    let owner = user(&db.store, "a@example.com").await;
    let ring = ring(&db.store).await;
    let now = Utc::now();
    let t = db.store.issue_token(&ring, &request(owner, "t", "read:tasks"), now, &Actor::cli()).await.unwrap().record;
    let first = db.store.revoke_token(t.id, Some("leaked"), now, &Actor::cli()).await.unwrap();
    let second = db.store.revoke_token(t.id, None, now + Duration::seconds(5), &Actor::cli()).await.unwrap();
    assert_eq!(first.status(now), TokenStatus::Revoked);
    assert_eq!(second.revoked_at, first.revoked_at, "a second revoke changes nothing");
    assert_eq!(second.revoke_reason.as_deref(), Some("leaked"));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM tokens WHERE id = $1")
        .bind(t.id)
        .fetch_one(db.store.pool())
        .await
        .unwrap();
    assert_eq!(rows, 1, "revocation never deletes the token");
}

#[tokio::test]
async fn rotation_keeps_old_token_until_grace_ends() {
    let db = fresh_db().await;
    let owner = user(&db.store, "a@example.com").await;
    let ring = ring(&db.store).await;
    let now = Utc::now();
    let old =
        db.store.issue_token(&ring, &request(owner, "t", "write:tasks"), now, &Actor::cli()).await.unwrap().record;
    let new = db
        .store
        .rotate_token(&ring, "http://tessera.test", old.id, Duration::seconds(60), now, &Actor::cli())
        .await
        .unwrap()
        .record;
    assert_eq!(new.rotated_from, Some(old.id));
    assert_eq!(new.scopes, old.scopes);
    let old = db.store.get_token(old.id).await.unwrap().unwrap();
    assert_eq!(old.replaced_by, Some(new.id));
    assert_eq!(old.status(now + Duration::seconds(59)), TokenStatus::Active);
    assert_eq!(old.status(now + Duration::seconds(60)), TokenStatus::Rotated);
}

#[tokio::test]
async fn patch_refuses_to_widen_scopes() {
    let db = fresh_db().await;
    let owner = user(&db.store, "a@example.com").await;
    let ring = ring(&db.store).await;
    let now = Utc::now();
    let t = db.store.issue_token(&ring, &request(owner, "t", "read:tasks"), now, &Actor::cli()).await.unwrap().record;
    let patch =
        TokenPatch { scopes: Some(ScopeSet::parse_grant("read:tasks write:tasks").unwrap()), ..Default::default() };
    let err = db.store.patch_token(t.id, &patch, now, &Actor::cli()).await.unwrap_err();
    assert!(matches!(err, StoreError::Rejected { code: "scope_widening", .. }), "{err:?}");
}

#[tokio::test]
async fn patch_narrows_scopes_and_shortens_expiry() {
    let db = fresh_db().await;
    let owner = user(&db.store, "a@example.com").await;
    let ring = ring(&db.store).await;
    let now = Utc::now();
    let t = db
        .store
        .issue_token(&ring, &request(owner, "t", "read:tasks write:context"), now, &Actor::cli())
        .await
        .unwrap()
        .record;
    let soon = now + Duration::days(1);
    let patch = TokenPatch {
        scopes: Some(ScopeSet::parse_grant("read:tasks").unwrap()),
        expires_at: Some(soon),
        ..Default::default()
    };
    let patched = db.store.patch_token(t.id, &patch, now, &Actor::cli()).await.unwrap();
    assert_eq!(patched.scopes, vec!["read:tasks".to_owned()]);
    assert!((patched.expires_at - soon).num_milliseconds().abs() < 1);
}

#[tokio::test]
async fn list_pages_through_every_token_once() {
    let db = fresh_db().await;
    let owner = user(&db.store, "a@example.com").await;
    let other = user(&db.store, "b@example.com").await;
    let ring = ring(&db.store).await;
    let now = Utc::now();
    for i in 0..7 {
        db.store.issue_token(&ring, &request(owner, &format!("t{i}"), "read:tasks"), now, &Actor::cli()).await.unwrap();
    }
    db.store.issue_token(&ring, &request(other, "not mine", "read:tasks"), now, &Actor::cli()).await.unwrap();
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
    let now = Utc::now();
    let keep =
        db.store.issue_token(&ring, &request(owner, "deploy bot", "read:tasks"), now, &Actor::cli()).await.unwrap();
    let gone = db.store.issue_token(&ring, &request(owner, "old bot", "read:tasks"), now, &Actor::cli()).await.unwrap();
    db.store.revoke_token(gone.record.id, None, now, &Actor::cli()).await.unwrap();
    let filter = |status, q: Option<&str>| TokenFilter {
        user_id: Some(owner),
        status,
        q: q.map(str::to_owned),
        limit: 10,
        after: None,
        now,
    };
    let active = db.store.list_tokens(&filter(Some(TokenStatus::Active), None)).await.unwrap();
    assert_eq!(active.items.iter().map(|t| t.id).collect::<Vec<_>>(), vec![keep.record.id]);
    let revoked = db.store.list_tokens(&filter(Some(TokenStatus::Revoked), None)).await.unwrap();
    assert_eq!(revoked.items.iter().map(|t| t.id).collect::<Vec<_>>(), vec![gone.record.id]);
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
    let t = db.store.issue_token(&ring, &request(owner, "t", "read:tasks"), Utc::now(), &Actor::cli()).await.unwrap();
    db.store.revoke_token(t.record.id, None, Utc::now(), &Actor::cli()).await.unwrap();
    let event = tokio::time::timeout(std::time::Duration::from_secs(5), events.next()).await.unwrap();
    assert_eq!(event, TokenEvent::Changed(t.record.id));
}

#[tokio::test]
async fn management_actions_are_audited_without_secrets() {
    let db = fresh_db().await;
    let owner = user(&db.store, "a@example.com").await;
    let ring = ring(&db.store).await;
    let now = Utc::now();
    let issued = db.store.issue_token(&ring, &request(owner, "t", "read:tasks"), now, &Actor::cli()).await.unwrap();
    db.store.revoke_token(issued.record.id, None, now, &Actor::cli()).await.unwrap();
    let rows = db.store.audit_for_token(issued.record.id, 10).await.unwrap();
    let actions: Vec<_> = rows.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, vec!["token.issue", "token.revoke"]);
    let all = serde_json::to_string(&rows).unwrap();
    assert!(!all.contains(issued.secret.expose()));
}

#[tokio::test]
async fn audit_log_is_append_only() {
    let db = fresh_db().await;
    db.store.audit(&Actor::cli(), "test.event", None, serde_json::json!({})).await.unwrap();
    let deleted = sqlx::query("DELETE FROM audit_events").execute(db.store.pool()).await;
    assert!(deleted.is_err(), "deleting audit rows must fail");
}

#[tokio::test]
async fn audit_log_cannot_be_truncated() {
    let db = fresh_db().await;
    db.store.audit(&Actor::cli(), "test.event", None, serde_json::json!({})).await.unwrap();
    let truncated = sqlx::query("TRUNCATE audit_events").execute(db.store.pool()).await;
    let error = truncated.expect_err("truncating the audit log must fail").to_string();
    assert!(error.contains("append-only"), "{error}");
    let kept = db.store.recent_audit(10).await.unwrap();
    assert!(kept.iter().any(|e| e.action == "test.event"), "the event survived");
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
    let t = db.store.issue_token(&ring, &request(owner, "t", "read:tasks"), now, &Actor::cli()).await.unwrap().record;
    let hour = now - Duration::minutes(1);
    let inc = tessera_store::UsageIncrement {
        token_id: t.id,
        hour,
        method: "tools/list".to_owned(),
        outcome: "ok".to_owned(),
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
async fn patch_can_narrow_write_to_its_implied_read() {
    let db = fresh_db().await;
    let owner = user(&db.store, "a@example.com").await;
    let ring = ring(&db.store).await;
    let now = Utc::now();
    let t = db.store.issue_token(&ring, &request(owner, "t", "write:tasks"), now, &Actor::cli()).await.unwrap().record;
    let patch = TokenPatch { scopes: Some(ScopeSet::parse_grant("read:tasks").unwrap()), ..Default::default() };
    let patched = db.store.patch_token(t.id, &patch, now, &Actor::cli()).await.unwrap();
    assert_eq!(patched.scopes, vec!["read:tasks".to_owned()]);
    let wider = TokenPatch { scopes: Some(ScopeSet::parse_grant("write:tasks").unwrap()), ..Default::default() };
    assert!(db.store.patch_token(t.id, &wider, now, &Actor::cli()).await.is_err(), "no way back up");
}
