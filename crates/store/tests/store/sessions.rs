//! Browser sessions: stored by hash, expiring, ended on delete, refused for disabled users.

use chrono::{Duration, Utc};
use tessera_store::Actor;
use tessera_testkit::fresh_db;

#[tokio::test]
async fn session_finds_its_user_until_it_expires_or_is_deleted() {
    let db = fresh_db().await;
    let user = db.store.create_user("ann@example.com", None, false, &Actor::cli()).await.unwrap();
    let now = Utc::now();
    let hash = [7u8; 32];
    db.store.create_session(&hash, user.id, now, now + Duration::hours(1), Some("127.0.0.1")).await.unwrap();
    assert_eq!(db.store.session_user(&hash, now).await.unwrap().unwrap().id, user.id);
    assert!(db.store.session_user(&[8u8; 32], now).await.unwrap().is_none());
    assert!(db.store.session_user(&hash, now + Duration::hours(2)).await.unwrap().is_none(), "expired");
    assert!(db.store.delete_session(&hash).await.unwrap());
    assert!(db.store.session_user(&hash, now).await.unwrap().is_none());
    assert!(!db.store.delete_session(&hash).await.unwrap());
}

#[tokio::test]
async fn disabled_users_sessions_do_not_authenticate() {
    let db = fresh_db().await;
    let user = db.store.create_user("ann@example.com", None, false, &Actor::cli()).await.unwrap();
    let now = Utc::now();
    db.store.create_session(&[1u8; 32], user.id, now, now + Duration::hours(1), None).await.unwrap();
    sqlx::query("UPDATE users SET disabled_at = now() WHERE id = $1")
        .bind(user.id)
        .execute(db.store.pool())
        .await
        .unwrap();
    assert!(db.store.session_user(&[1u8; 32], now).await.unwrap().is_none());
}
