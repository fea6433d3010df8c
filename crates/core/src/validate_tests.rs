//! One test per reason of the validator's decision.

use chrono::{Duration, TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::claims::Audience;
use crate::codec::TokenHash;

fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000, 0).unwrap()
}

fn setup(scope: &str) -> (Claims, TokenState) {
    let id = Uuid::now_v7();
    let user = Uuid::now_v7();
    let claims = Claims {
        iss: "i".into(),
        sub: user.to_string(),
        aud: Audience::One("a".into()),
        exp: (now() + Duration::days(1)).timestamp(),
        iat: now().timestamp(),
        nbf: now().timestamp(),
        jti: id,
        scope: scope.into(),
        client_id: "tessera".into(),
    };
    let state = TokenState {
        id,
        user_id: user,
        name: "t".into(),
        token_sha256: TokenHash::from_slice(&[7; 32]).unwrap(),
        scopes: ScopeSet::parse_grant(scope).unwrap(),
        expires_at: now() + Duration::days(1),
        rate_limit_per_hour: Some(100),
        user_rate_limit_per_hour: None,
        revocation: None,
        user_disabled: false,
    };
    (claims, state)
}

#[test]
fn active_token_yields_expanded_scopes() {
    let (c, s) = setup("write:tasks");
    let p = decide(&c, &TokenHash::from_slice(&[7; 32]).unwrap(), Some(&s), now()).unwrap();
    assert!(p.effective.contains("read:tasks"));
    assert!(p.effective.contains("mcp:access"));
    assert_eq!(p.rate_limit_per_hour, Some(100));
}

#[test]
fn missing_row_is_not_found() {
    let (c, _) = setup("read:tasks");
    assert_eq!(decide(&c, &TokenHash::from_slice(&[7; 32]).unwrap(), None, now()).unwrap_err(), DenyReason::NotFound);
}

#[test]
fn different_secret_is_hash_mismatch() {
    let (c, s) = setup("read:tasks");
    assert_eq!(
        decide(&c, &TokenHash::from_slice(&[8; 32]).unwrap(), Some(&s), now()).unwrap_err(),
        DenyReason::HashMismatch
    );
}

#[test]
fn other_subject_is_refused() {
    let (mut c, s) = setup("read:tasks");
    c.sub = Uuid::now_v7().to_string();
    assert_eq!(
        decide(&c, &TokenHash::from_slice(&[7; 32]).unwrap(), Some(&s), now()).unwrap_err(),
        DenyReason::SubjectMismatch
    );
}

#[test]
fn row_expiry_wins_over_the_jwt() {
    let (c, mut s) = setup("read:tasks");
    s.expires_at = now() - Duration::seconds(1);
    assert_eq!(
        decide(&c, &TokenHash::from_slice(&[7; 32]).unwrap(), Some(&s), now()).unwrap_err(),
        DenyReason::Expired
    );
}

#[test]
fn revoked_token_is_refused() {
    let (c, mut s) = setup("read:tasks");
    s.revocation = Some(Revocation { kind: RevocationKind::Revoked, effective_at: now() });
    assert_eq!(
        decide(&c, &TokenHash::from_slice(&[7; 32]).unwrap(), Some(&s), now()).unwrap_err(),
        DenyReason::Revoked
    );
}

#[test]
fn rotated_token_works_inside_grace() {
    let (c, mut s) = setup("read:tasks");
    s.revocation = Some(Revocation { kind: RevocationKind::Rotated, effective_at: now() + Duration::seconds(30) });
    assert!(decide(&c, &TokenHash::from_slice(&[7; 32]).unwrap(), Some(&s), now()).is_ok());
}

#[test]
fn rotated_token_fails_after_grace_with_rotated() {
    let (c, mut s) = setup("read:tasks");
    s.revocation = Some(Revocation { kind: RevocationKind::Rotated, effective_at: now() - Duration::seconds(1) });
    assert_eq!(
        decide(&c, &TokenHash::from_slice(&[7; 32]).unwrap(), Some(&s), now()).unwrap_err(),
        DenyReason::Rotated
    );
}

#[test]
fn disabled_owner_is_refused() {
    let (c, mut s) = setup("read:tasks");
    s.user_disabled = true;
    assert_eq!(
        decide(&c, &TokenHash::from_slice(&[7; 32]).unwrap(), Some(&s), now()).unwrap_err(),
        DenyReason::UserDisabled
    );
}

#[test]
fn narrowed_row_scopes_take_effect_immediately() {
    let (c, mut s) = setup("read:tasks write:context");
    s.scopes = ScopeSet::parse_grant("read:tasks").unwrap();
    let p = decide(&c, &TokenHash::from_slice(&[7; 32]).unwrap(), Some(&s), now()).unwrap();
    assert!(!p.effective.contains("write:context"));
    assert!(!p.effective.contains("read:context"));
    assert!(p.effective.contains("read:tasks"));
}

#[test]
fn row_cannot_widen_the_jwt() {
    let (c, mut s) = setup("read:tasks");
    s.scopes = ScopeSet::parse_grant("read:tasks mcp:admin").unwrap();
    let p = decide(&c, &TokenHash::from_slice(&[7; 32]).unwrap(), Some(&s), now()).unwrap();
    assert!(!p.effective.contains("mcp:admin"));
}

#[test]
fn rejection_codes_are_stable() {
    assert_eq!(Rejection::Denied(DenyReason::Revoked).code(), "revoked");
    assert_eq!(Rejection::Codec(CodecError::InvalidSignature).code(), "invalid_signature");
}

#[test]
fn write_narrowed_to_its_implied_read_keeps_read() {
    let (c, mut s) = setup("write:tasks");
    s.scopes = ScopeSet::parse_grant("read:tasks").unwrap();
    let p = decide(&c, &TokenHash::from_slice(&[7; 32]).unwrap(), Some(&s), now()).unwrap();
    assert!(p.effective.contains("read:tasks"));
    assert!(!p.effective.contains("write:tasks"));
}
