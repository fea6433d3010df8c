//! Accounts vouched for by an OpenID provider: made at first sign-in, found again by
//! subject, linked to an existing account by email, with group-derived teams and
//! administrator status refreshed at every sign-in.

use chrono::Utc;
use tessera_store::{Actor, IdpPerson, IdpSignIn, Store, User};
use tessera_testkit::fresh_db;

const ISSUER: &str = "https://id.example.com";

fn person<'a>(subject: &'a str, email: &'a str, groups: &'a [String], admin: Option<bool>) -> IdpPerson<'a> {
    IdpPerson { issuer: ISSUER, subject, email, groups, admin }
}

async fn sign_in(store: &Store, p: &IdpPerson<'_>) -> (User, bool, bool) {
    match store.sign_in_from_idp(p, &Actor::cli()).await.unwrap() {
        IdpSignIn::Account { user, created, narrower } => (user, created, narrower),
        other => panic!("expected a sign-in, got {other:?}"),
    }
}

async fn members(store: &Store, team: &str) -> Vec<String> {
    store.team(team).await.unwrap().unwrap().members
}

#[tokio::test]
async fn the_first_sign_in_makes_an_account_without_a_password_and_the_next_finds_it() {
    let db = fresh_db().await;
    let (first, created, _) = sign_in(&db.store, &person("sub-1", "ann@example.com", &[], None)).await;
    assert!(created);
    assert!(!first.is_admin);
    let (_, hash) = db.store.credentials("ann@example.com").await.unwrap().unwrap();
    assert!(hash.is_none(), "no password unless an admin sets one");
    let (again, created, _) = sign_in(&db.store, &person("sub-1", "ann@example.com", &[], None)).await;
    assert!(!created);
    assert_eq!(again.id, first.id);
}

#[tokio::test]
async fn the_subject_finds_the_account_when_its_email_changes_at_the_provider() {
    let db = fresh_db().await;
    let (first, ..) = sign_in(&db.store, &person("sub-1", "ann@example.com", &[], None)).await;
    let (renamed, created, _) = sign_in(&db.store, &person("sub-1", "ann.lee@example.com", &[], None)).await;
    assert!(!created);
    assert_eq!(renamed.id, first.id);
    assert_eq!(renamed.email, "ann.lee@example.com");
}

#[tokio::test]
async fn an_existing_password_account_is_linked_by_email_once() {
    let db = fresh_db().await;
    let made = db.store.create_user("Bo@Example.com", Some("$argon2id$x"), false, &Actor::cli()).await.unwrap();
    let (linked, created, _) = sign_in(&db.store, &person("sub-bo", "bo@example.com", &[], None)).await;
    assert!(!created);
    assert_eq!(linked.id, made.id);
    // Another identity at the provider claiming the same email is not let in.
    let other =
        db.store.sign_in_from_idp(&person("sub-eve", "bo@example.com", &[], None), &Actor::cli()).await.unwrap();
    assert!(matches!(other, IdpSignIn::Conflict));
}

#[tokio::test]
async fn a_deactivated_account_does_not_sign_in() {
    let db = fresh_db().await;
    let (user, ..) = sign_in(&db.store, &person("sub-1", "ann@example.com", &[], None)).await;
    db.store.set_user_active(user.id, false, Utc::now(), &Actor::cli()).await.unwrap();
    let again = db.store.sign_in_from_idp(&person("sub-1", "ann@example.com", &[], None), &Actor::cli()).await.unwrap();
    assert!(matches!(again, IdpSignIn::Disabled));
}

#[tokio::test]
async fn mapped_groups_join_teams_and_a_group_gone_at_the_next_sign_in_leaves_it() {
    let db = fresh_db().await;
    let now = Utc::now();
    db.store.create_team(&Actor::cli(), "eng", &["read:tasks".into()], &["engineers".into()], now).await.unwrap();
    let groups = vec!["engineers".to_owned(), "unmapped".to_owned()];
    let (_, _, narrower) = sign_in(&db.store, &person("sub-1", "ann@example.com", &groups, None)).await;
    assert!(narrower, "joining a first team leaves `everyone`");
    assert_eq!(members(&db.store, "eng").await, vec!["ann@example.com"]);

    let (_, _, narrower) = sign_in(&db.store, &person("sub-1", "ann@example.com", &groups, None)).await;
    assert!(!narrower, "nothing changed");

    let (_, _, narrower) = sign_in(&db.store, &person("sub-1", "ann@example.com", &[], None)).await;
    assert!(narrower);
    assert!(members(&db.store, "eng").await.is_empty());
}

#[tokio::test]
async fn a_member_added_directly_stays_when_the_group_goes() {
    let db = fresh_db().await;
    let now = Utc::now();
    db.store.create_team(&Actor::cli(), "eng", &[], &["engineers".into()], now).await.unwrap();
    let (user, ..) = sign_in(&db.store, &person("sub-1", "ann@example.com", &["engineers".into()], None)).await;
    assert!(db.store.set_team_member(&Actor::cli(), "eng", user.id, true).await.unwrap());
    sign_in(&db.store, &person("sub-1", "ann@example.com", &[], None)).await;
    assert_eq!(members(&db.store, "eng").await, vec!["ann@example.com"]);
}

#[tokio::test]
async fn admin_groups_grant_and_take_back_admin_but_not_a_lasting_one() {
    let db = fresh_db().await;
    let (user, ..) = sign_in(&db.store, &person("sub-1", "ann@example.com", &[], Some(true))).await;
    assert!(user.is_admin);
    let (user, _, narrower) = sign_in(&db.store, &person("sub-1", "ann@example.com", &[], Some(false))).await;
    assert!(!user.is_admin);
    assert!(narrower, "losing admin narrows");

    // `tessera user admin` makes an administrator the provider's groups do not undo.
    db.store.set_user_admin("ann@example.com", true, &Actor::cli()).await.unwrap();
    let (user, ..) = sign_in(&db.store, &person("sub-1", "ann@example.com", &[], Some(false))).await;
    assert!(user.is_admin);
    // Without administrator groups configured, sign-in leaves admin status alone.
    let (user, ..) = sign_in(&db.store, &person("sub-1", "ann@example.com", &[], None)).await;
    assert!(user.is_admin);
}
