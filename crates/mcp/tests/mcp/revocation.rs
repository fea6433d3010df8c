//! Two server instances on one database: a change made through one is enforced by the
//! other within a second (LISTEN/NOTIFY eviction, not the cache TTL).

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use tessera_core::lifecycle::Requester;
use tessera_core::scope::ScopeSet;
use tessera_testkit::fresh_db;
use tessera_tokens::PatchInput;

use crate::helpers::*;

#[tokio::test]
async fn revocation_on_one_instance_is_enforced_by_the_other_within_a_second() {
    let db = fresh_db().await;
    let a = spawn_instance(db.store.clone(), |_| {}).await;
    let b = spawn_instance(db.store.clone(), |_| {}).await;
    let token = issue(&a, "read:tasks execute:mcp").await;
    wait_for_listener(&a, &token.secret).await;
    wait_for_listener(&b, &token.secret).await;
    let hits_before = b.validator.cache_stats().0;
    assert_eq!(post_mcp(&b, Some(&token.secret), &initialize_body()).await.status(), 200);
    assert!(b.validator.cache_stats().0 > hits_before, "B serves the row from its cache");

    tokens(&a).revoke(&Requester::Cli, None, token.id, None, Utc::now()).await.unwrap();
    let delay = eventually(Duration::from_secs(1), || async {
        post_mcp(&b, Some(&token.secret), &initialize_body()).await.status() == 401
    })
    .await;
    println!("instance B refused the revoked token after {delay:?}");
    assert!(delay.is_some(), "instance B still accepted the token 1 s after revocation");
}

#[tokio::test]
async fn narrowing_on_one_instance_is_enforced_by_the_other_within_a_second() {
    let db = fresh_db().await;
    let a = spawn_instance(db.store.clone(), |_| {}).await;
    let b = spawn_instance(db.store.clone(), |_| {}).await;
    let token = issue(&a, "read:tasks execute:mcp").await;
    wait_for_listener(&b, &token.secret).await;
    assert_eq!(call_raw(&b, &token.secret, "list_tasks", json!({})).await.status(), 200);

    let patch = PatchInput { scopes: Some(ScopeSet::parse_grant("execute:mcp").unwrap()), ..PatchInput::default() };
    tokens(&a).patch(&Requester::Cli, None, token.id, patch, Utc::now()).await.unwrap();
    let delay = eventually(Duration::from_secs(1), || async {
        call_raw(&b, &token.secret, "list_tasks", json!({})).await.status() == 403
    })
    .await;
    println!("instance B enforced the narrowed scopes after {delay:?}");
    assert!(delay.is_some(), "instance B still honoured the removed scope 1 s after narrowing");
}
