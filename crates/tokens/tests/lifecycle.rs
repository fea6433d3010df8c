//! The lifecycle service against a real PostgreSQL: each test owns a fresh database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Duration, Utc};
use tessera_core::lifecycle::{Credential, Requester, TokenRuleViolation};
use tessera_core::scope::ScopeSet;
use tessera_core::values::{Grace, Lifetime, RateLimit, RevokeReason, TokenName};
use tessera_store::{Actor, Store, TokenStatus};
use tessera_testkit::{TestDb, fresh_db, key_ring, token_service};
use tessera_tokens::{IssueInput, Issued, PatchInput, TokenError, TokenService};
use uuid::Uuid;

#[path = "lifecycle/servers.rs"]
mod servers;

const ISS: &str = "http://tessera.test";
const AUD: &str = "http://tessera.test/mcp";

async fn setup() -> (TestDb, TokenService) {
    let db = fresh_db().await;
    let ring = key_ring(&db.store).await;
    let service = token_service(&db.store, ring, ISS, AUD);
    (db, service)
}

async fn user(store: &Store, email: &str) -> Uuid {
    store.create_user(email, None, false, &Actor::cli()).await.unwrap().id
}

fn input(owner: Uuid, scopes: &str) -> IssueInput {
    IssueInput {
        owner,
        name: TokenName::parse("t").unwrap(),
        description: None,
        scopes: ScopeSet::parse_grant(scopes).unwrap(),
        lifetime: Lifetime::from_days(30).unwrap(),
        rate_limit: None,
    }
}

async fn issue(service: &TokenService, owner: Uuid, scopes: &str) -> Issued {
    service.issue(&Requester::Cli, None, input(owner, scopes), Utc::now()).await.unwrap()
}

fn person(user_id: Uuid) -> Requester {
    Requester::Person { user_id, is_admin: false }
}

/// The requester a bearer token `t` becomes when it calls the API.
fn credential(t: &Issued) -> Requester {
    Requester::Token(Credential {
        token_id: t.record.id,
        user_id: t.record.user_id,
        effective: t.record.scope_set().expand(),
        expires_at: t.record.expires_at,
        rate_limit: t.record.rate_limit_per_hour.map(RateLimit::from_stored),
    })
}

fn rule(err: TokenError) -> TokenRuleViolation {
    match err {
        TokenError::Rule(v) => v,
        other => panic!("expected a rule violation, got {other:?}"),
    }
}

#[tokio::test]
async fn issued_token_stores_only_the_hash_of_the_secret() {
    let (db, service) = setup().await;
    let owner = user(&db.store, "a@example.com").await;
    let issued = issue(&service, owner, "read:tasks").await;
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
    let (db, service) = setup().await;
    let owner = user(&db.store, "a@example.com").await;
    let t = issue(&service, owner, "read:tasks").await.record;
    let now = Utc::now();
    let leaked = RevokeReason::parse("leaked").unwrap();
    let first = service.revoke(&Requester::Cli, None, t.id, leaked, now).await.unwrap().record;
    let later = now + Duration::seconds(5);
    let second = service.revoke(&Requester::Cli, None, t.id, None, later).await.unwrap().record;
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
    let (db, service) = setup().await;
    let owner = user(&db.store, "a@example.com").await;
    let old = issue(&service, owner, "write:tasks").await.record;
    let now = Utc::now();
    let new = service.rotate(&Requester::Cli, None, old.id, Grace::from_secs(60).unwrap(), now).await.unwrap().record;
    assert_eq!(new.rotated_from, Some(old.id));
    assert_eq!(new.scopes, old.scopes);
    let old = db.store.get_token(old.id).await.unwrap().unwrap();
    assert_eq!(old.replaced_by, Some(new.id));
    assert_eq!(old.status(now + Duration::seconds(59)), TokenStatus::Active);
    assert_eq!(old.status(now + Duration::seconds(60)), TokenStatus::Rotated);
}

#[tokio::test]
async fn patch_refuses_to_widen_scopes() {
    let (db, service) = setup().await;
    let owner = user(&db.store, "a@example.com").await;
    let t = issue(&service, owner, "read:tasks").await.record;
    let patch =
        PatchInput { scopes: Some(ScopeSet::parse_grant("read:tasks write:tasks").unwrap()), ..Default::default() };
    let err = service.patch(&Requester::Cli, None, t.id, patch, Utc::now()).await.unwrap_err();
    assert_eq!(rule(err), TokenRuleViolation::WidensScopes { missing: vec!["write:tasks".into()] });
}

#[tokio::test]
async fn patch_narrows_scopes_and_shortens_expiry() {
    let (db, service) = setup().await;
    let owner = user(&db.store, "a@example.com").await;
    let t = issue(&service, owner, "read:tasks write:context").await.record;
    let now = Utc::now();
    let soon = now + Duration::days(1);
    let patch = PatchInput {
        scopes: Some(ScopeSet::parse_grant("read:tasks").unwrap()),
        expires_at: Some(soon),
        ..Default::default()
    };
    let patched = service.patch(&Requester::Cli, None, t.id, patch, now).await.unwrap();
    assert_eq!(patched.scopes, vec!["read:tasks".to_owned()]);
    assert!((patched.expires_at - soon).num_milliseconds().abs() < 1);
}

#[tokio::test]
async fn patch_can_narrow_write_to_its_implied_read() {
    let (db, service) = setup().await;
    let owner = user(&db.store, "a@example.com").await;
    let t = issue(&service, owner, "write:tasks").await.record;
    let read = PatchInput { scopes: Some(ScopeSet::parse_grant("read:tasks").unwrap()), ..Default::default() };
    let patched = service.patch(&Requester::Cli, None, t.id, read, Utc::now()).await.unwrap();
    assert_eq!(patched.scopes, vec!["read:tasks".to_owned()]);
    let wider = PatchInput { scopes: Some(ScopeSet::parse_grant("write:tasks").unwrap()), ..Default::default() };
    assert!(service.patch(&Requester::Cli, None, t.id, wider, Utc::now()).await.is_err(), "no way back up");
}

#[tokio::test]
async fn management_actions_are_audited_without_secrets() {
    let (db, service) = setup().await;
    let owner = user(&db.store, "a@example.com").await;
    let issued = issue(&service, owner, "read:tasks").await;
    service.revoke(&Requester::Cli, None, issued.record.id, None, Utc::now()).await.unwrap();
    let rows = db.store.audit_for_token(issued.record.id, 10).await.unwrap();
    let actions: Vec<_> = rows.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, vec!["token.issue", "token.revoke"]);
    let all = serde_json::to_string(&rows).unwrap();
    assert!(!all.contains(issued.secret.expose()));
}

#[tokio::test]
async fn revoke_notifies_listeners() {
    let (db, service) = setup().await;
    let owner = user(&db.store, "a@example.com").await;
    let mut events = db.store.token_events().await.unwrap();
    let t = issue(&service, owner, "read:tasks").await.record;
    service.revoke(&Requester::Cli, None, t.id, None, Utc::now()).await.unwrap();
    let event = tokio::time::timeout(std::time::Duration::from_secs(5), events.next()).await.unwrap();
    assert_eq!(event, tessera_store::TokenEvent::Changed(t.id));
}

#[tokio::test]
async fn another_users_token_is_not_found_for_a_person_who_is_not_admin() {
    let (db, service) = setup().await;
    let ann = user(&db.store, "ann@example.com").await;
    let bob = user(&db.store, "bob@example.com").await;
    let t = issue(&service, ann, "read:tasks").await.record;
    assert!(matches!(service.get(&person(bob), t.id).await, Err(TokenError::NotFound)));
    let revoke = service.revoke(&person(bob), None, t.id, None, Utc::now()).await;
    assert!(matches!(revoke, Err(TokenError::NotFound)));
    assert_eq!(db.store.get_token(t.id).await.unwrap().unwrap().status(Utc::now()), TokenStatus::Active);
}

#[tokio::test]
async fn a_token_minted_by_a_token_expires_no_later_than_its_maker_and_is_limited_as_tightly() {
    let (db, service) = setup().await;
    let owner = user(&db.store, "a@example.com").await;
    let mut short = input(owner, "read:tasks write:tokens");
    short.lifetime = Lifetime::from_days(2).unwrap();
    short.rate_limit = Some(RateLimit::new(60).unwrap());
    let maker = service.issue(&Requester::Cli, None, short, Utc::now()).await.unwrap();
    let child = service.issue(&credential(&maker), None, input(owner, "read:tasks"), Utc::now()).await.unwrap();
    assert_eq!(child.record.expires_at, maker.record.expires_at);
    assert_eq!(child.record.rate_limit_per_hour, Some(60));
    assert_eq!(child.record.minted_by, Some(maker.record.id));
}

#[tokio::test]
async fn a_token_cannot_lift_its_own_rate_limit() {
    let (db, service) = setup().await;
    let owner = user(&db.store, "a@example.com").await;
    let mut limited = input(owner, "read:tasks write:tokens");
    limited.rate_limit = Some(RateLimit::new(60).unwrap());
    let t = service.issue(&Requester::Cli, None, limited, Utc::now()).await.unwrap();
    let lift = PatchInput { rate_limit: Some(None), ..Default::default() };
    let err = service.patch(&credential(&t), None, t.record.id, lift, Utc::now()).await.unwrap_err();
    assert!(matches!(rule(err), TokenRuleViolation::LooserThanCredential { .. }));
}

#[tokio::test]
async fn self_rotation_by_a_token_never_extends_its_life() {
    let (db, service) = setup().await;
    let owner = user(&db.store, "a@example.com").await;
    let t = issue(&service, owner, "read:tasks write:tokens").await;
    let later: DateTime<Utc> = Utc::now() + Duration::days(10);
    let new = service.rotate(&credential(&t), None, t.record.id, Grace::default(), later).await.unwrap().record;
    assert!(new.expires_at <= t.record.expires_at, "{} > {}", new.expires_at, t.record.expires_at);
}

#[tokio::test]
async fn a_token_rotated_by_itself_keeps_its_lineage_so_revoking_the_old_one_spares_the_new() {
    let (db, service) = setup().await;
    let owner = user(&db.store, "a@example.com").await;
    let t = issue(&service, owner, "read:tasks write:tokens").await;
    let new = service.rotate(&credential(&t), None, t.record.id, Grace::default(), Utc::now()).await.unwrap().record;
    assert_eq!(new.minted_by, None, "the CLI-issued original had no maker, nor has its replacement");
    let revoked = service.revoke(&person(owner), None, t.record.id, None, Utc::now()).await.unwrap();
    assert!(revoked.also_revoked.is_empty(), "{:?}", revoked.also_revoked);
    let later = Utc::now() + Duration::seconds(1);
    assert_eq!(db.store.get_token(new.id).await.unwrap().unwrap().status(later), TokenStatus::Active);
}

#[tokio::test]
async fn revoking_a_token_revokes_what_it_minted_and_the_audit_lists_them() {
    let (db, service) = setup().await;
    let owner = user(&db.store, "a@example.com").await;
    let maker = issue(&service, owner, "read:tasks write:tokens").await;
    let mut child_input = input(owner, "read:tasks write:tokens");
    child_input.lifetime = Lifetime::from_days(1).unwrap();
    let child = service.issue(&credential(&maker), None, child_input, Utc::now()).await.unwrap();
    let mut grandchild_input = input(owner, "read:tasks");
    grandchild_input.lifetime = Lifetime::from_days(1).unwrap();
    let grandchild = service.issue(&credential(&child), None, grandchild_input, Utc::now()).await.unwrap();
    let revoked = service.revoke(&person(owner), None, maker.record.id, None, Utc::now()).await.unwrap();
    let mut expected = vec![child.record.id, grandchild.record.id];
    expected.sort();
    assert_eq!(revoked.also_revoked, expected);
    let later = Utc::now() + Duration::seconds(1);
    for id in expected {
        assert_eq!(db.store.get_token(id).await.unwrap().unwrap().status(later), TokenStatus::Revoked);
    }
    let audit = db.store.audit_for_token(maker.record.id, 10).await.unwrap();
    let revoke = audit.iter().find(|r| r.action == "token.revoke").unwrap();
    assert_eq!(revoke.details["also_revoked"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn nobody_rotates_another_users_token_and_the_cli_may() {
    let (db, service) = setup().await;
    let ann = user(&db.store, "ann@example.com").await;
    let root = user(&db.store, "root@example.com").await;
    let t = issue(&service, ann, "read:tasks").await.record;
    let admin = Requester::Person { user_id: root, is_admin: true };
    let err = service.rotate(&admin, None, t.id, Grace::default(), Utc::now()).await.unwrap_err();
    assert_eq!(rule(err), TokenRuleViolation::RotateOthersToken);
    assert!(service.rotate(&Requester::Cli, None, t.id, Grace::default(), Utc::now()).await.is_ok());
}
