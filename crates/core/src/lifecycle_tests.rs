use chrono::Duration;

use super::*;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn scopes(s: &str) -> ScopeSet {
    ScopeSet::parse_grant(s).unwrap()
}

fn limit(n: i64) -> Option<RateLimit> {
    Some(RateLimit::new(n).unwrap())
}

fn maker(scope: &str, days: i64, rate: Option<RateLimit>) -> Requester {
    Requester::Token(Credential {
        token_id: Uuid::now_v7(),
        user_id: Uuid::nil(),
        effective: scopes(scope).expand(),
        expires_at: now() + Duration::days(days),
        rate_limit: rate,
    })
}

fn facts(owner: Uuid, scope: &str) -> TokenFacts {
    TokenFacts {
        user_id: owner,
        scopes: scopes(scope),
        created_at: now() - Duration::days(1),
        expires_at: now() + Duration::days(29),
        rate_limit: limit(100),
        active: true,
        replaced: false,
        oauth_grant: false,
    }
}

fn grant(s: &ScopeSet, days: i64, rate: Option<RateLimit>) -> Grant<'_> {
    Grant { scopes: s, expires_at: now() + Duration::days(days), rate_limit: rate }
}

#[test]
fn admin_scope_is_granted_by_the_cli_only() {
    let admin = scopes("mcp:admin");
    assert!(check_issue(&Requester::Cli, &grant(&admin, 30, None)).is_ok());
    let person = Requester::Person { user_id: Uuid::nil(), is_admin: true };
    assert_eq!(check_issue(&person, &grant(&admin, 30, None)), Err(TokenRuleViolation::AdminScopeViaApi));
}

#[test]
fn a_token_cannot_grant_scopes_it_does_not_hold() {
    let asked = scopes("write:tasks");
    let err = check_issue(&maker("read:tasks write:tokens", 30, None), &grant(&asked, 1, None)).unwrap_err();
    assert_eq!(err, TokenRuleViolation::ExceedsCredential { missing: vec!["write:tasks".into()] });
}

#[test]
fn a_token_minted_by_a_token_expires_no_later_than_its_maker() {
    let asked = scopes("read:tasks");
    let who = maker("read:tasks write:tokens", 10, None);
    assert_eq!(check_issue(&who, &grant(&asked, 5, None)).unwrap().expires_at, now() + Duration::days(5));
    assert_eq!(check_issue(&who, &grant(&asked, 30, None)).unwrap().expires_at, now() + Duration::days(10));
}

#[test]
fn a_limited_token_mints_only_tokens_limited_as_tightly() {
    let asked = scopes("read:tasks");
    let who = maker("read:tasks write:tokens", 30, limit(100));
    assert_eq!(check_issue(&who, &grant(&asked, 1, limit(50))).unwrap().rate_limit, limit(50));
    assert_eq!(check_issue(&who, &grant(&asked, 1, limit(101))).unwrap().rate_limit, limit(100));
    assert_eq!(check_issue(&who, &grant(&asked, 1, None)).unwrap().rate_limit, limit(100));
    let unlimited = maker("read:tasks write:tokens", 30, None);
    assert_eq!(check_issue(&unlimited, &grant(&asked, 1, None)).unwrap().rate_limit, None);
}

#[test]
fn a_person_is_bounded_only_by_the_catalog() {
    let asked = scopes("write:tasks write:tokens");
    let person = Requester::Person { user_id: Uuid::nil(), is_admin: false };
    let bounds = check_issue(&person, &grant(&asked, 365, None)).unwrap();
    assert_eq!(bounds, Bounds { expires_at: now() + Duration::days(365), rate_limit: None });
}

#[test]
fn changes_narrow_scopes_and_shorten_expiry_only() {
    let f = facts(Uuid::nil(), "write:tasks");
    let person = Requester::Person { user_id: Uuid::nil(), is_admin: false };
    let read = scopes("read:tasks");
    assert_eq!(check_change(&person, &f, &Change { scopes: Some(&read), ..Change::default() }, now()), Ok(()));
    let wider = scopes("write:tasks write:context");
    assert_eq!(
        check_change(&person, &f, &Change { scopes: Some(&wider), ..Change::default() }, now()),
        Err(TokenRuleViolation::WidensScopes { missing: vec!["write:context".into()] })
    );
    let later = Change { expires_at: Some(f.expires_at + Duration::seconds(1)), ..Change::default() };
    assert_eq!(check_change(&person, &f, &later, now()), Err(TokenRuleViolation::ExtendsExpiry));
    let past = Change { expires_at: Some(now()), ..Change::default() };
    assert_eq!(check_change(&person, &f, &past, now()), Err(TokenRuleViolation::ExpiryInPast));
}

#[test]
fn an_inactive_token_cannot_change() {
    let f = TokenFacts { active: false, ..facts(Uuid::nil(), "read:tasks") };
    let person = Requester::Person { user_id: Uuid::nil(), is_admin: false };
    assert_eq!(check_change(&person, &f, &Change::default(), now()), Err(TokenRuleViolation::Inactive));
    assert_eq!(check_rotate(&person, &f, now()), Err(TokenRuleViolation::Inactive));
}

#[test]
fn a_token_cannot_loosen_a_limit_beyond_its_own() {
    let f = facts(Uuid::nil(), "read:tasks");
    let who = maker("read:tasks write:tokens", 30, limit(100));
    let lift = Change { rate_limit: Some(None), ..Change::default() };
    assert!(matches!(check_change(&who, &f, &lift, now()), Err(TokenRuleViolation::LooserThanCredential { .. })));
    let tighter = Change { rate_limit: Some(limit(50)), ..Change::default() };
    assert_eq!(check_change(&who, &f, &tighter, now()), Ok(()));
}

#[test]
fn rotation_keeps_the_lifetime_but_not_beyond_a_token_maker() {
    let owner = Uuid::nil();
    let f = facts(owner, "read:tasks");
    let person = Requester::Person { user_id: owner, is_admin: false };
    let kept = Bounds { expires_at: now() + Duration::days(30), rate_limit: limit(100) };
    assert_eq!(check_rotate(&person, &f, now()), Ok(kept));
    let who = maker("read:tasks write:tokens", 5, limit(10));
    let bounded = Bounds { expires_at: now() + Duration::days(5), rate_limit: limit(10) };
    assert_eq!(check_rotate(&who, &f, now()), Ok(bounded));
}

#[test]
fn nobody_rotates_another_users_token() {
    let f = facts(Uuid::now_v7(), "read:tasks");
    let admin = Requester::Person { user_id: Uuid::nil(), is_admin: true };
    assert_eq!(check_rotate(&admin, &f, now()), Err(TokenRuleViolation::RotateOthersToken));
    assert!(check_rotate(&Requester::Cli, &f, now()).is_ok());
}

#[test]
fn a_rotated_token_cannot_be_rotated_again() {
    let f = TokenFacts { replaced: true, ..facts(Uuid::nil(), "read:tasks") };
    assert_eq!(check_rotate(&Requester::Cli, &f, now()), Err(TokenRuleViolation::AlreadyRotated));
}

#[test]
fn an_admins_token_sees_everyone_only_with_mcp_admin_in_it() {
    let ordinary = maker("read:tokens", 30, None);
    assert!(!ordinary.can_see(Uuid::now_v7()));
    assert!(ordinary.can_see(Uuid::nil()));
    assert_eq!(ordinary.list_scope(), Some(Uuid::nil()));
    let admin = maker("mcp:admin", 30, None);
    assert!(admin.can_see(Uuid::now_v7()));
    assert_eq!(admin.list_scope(), None);
    assert!(Requester::Person { user_id: Uuid::nil(), is_admin: true }.can_see(Uuid::now_v7()));
}

#[test]
fn an_oauth_grant_cannot_be_rotated() {
    let f = TokenFacts { oauth_grant: true, ..facts(Uuid::nil(), "read:tasks") };
    let who = Requester::Person { user_id: Uuid::nil(), is_admin: false };
    assert_eq!(check_rotate(&who, &f, now()), Err(TokenRuleViolation::RotateOAuthGrant));
}

fn direct(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[test]
fn a_direct_servers_scopes_alone_are_allowed() {
    let only = ScopeSet::parse_lenient("read:notes call:notes/add write:wiki");
    assert_eq!(check_direct_scopes(&only, &direct(&["notes", "wiki"])), Ok(()));
}

#[test]
fn a_direct_servers_scopes_with_a_builtin_scope_are_refused_naming_both() {
    let mixed = ScopeSet::parse_lenient("read:notes read:tokens");
    assert_eq!(
        check_direct_scopes(&mixed, &direct(&["notes"])),
        Err(TokenRuleViolation::DirectServerScopesMixed {
            direct: vec!["notes".into()],
            others: vec!["read:tokens".into()]
        })
    );
}

#[test]
fn a_direct_servers_scopes_with_a_gateway_servers_scopes_are_refused() {
    let mixed = ScopeSet::parse_lenient("read:notes read:github");
    assert!(matches!(
        check_direct_scopes(&mixed, &direct(&["notes"])),
        Err(TokenRuleViolation::DirectServerScopesMixed { others, .. }) if others == ["read:github"]
    ));
}

#[test]
fn scopes_without_a_direct_server_are_not_this_rules_business() {
    let plain = ScopeSet::parse_lenient("read:tasks read:github execute:mcp");
    assert_eq!(check_direct_scopes(&plain, &direct(&["notes"])), Ok(()));
}

#[test]
fn automatic_revocations_keep_the_reasons_audits_and_webhooks_already_carry() {
    assert_eq!(AutomaticRevocation::MakerRevoked.reason(), "its maker was revoked");
    assert_eq!(AutomaticRevocation::RefreshReused.reason(), "a used refresh token was presented again");
}

#[test]
fn an_allowance_bounds_scopes_with_the_usual_inheritance() {
    let team = Allowance::Scopes(ScopeSet::parse_lenient("write:notes read:tasks execute:mcp"));
    let asked = ScopeSet::parse_lenient("read:notes call:notes/delete read:tasks execute:mcp");
    assert_eq!(check_allowance(&team, &asked), Ok(()), "write:S brings read:S and covers call:S/TOOL");
    let beyond = ScopeSet::parse_lenient("read:tasks write:tasks read:github");
    assert_eq!(
        check_allowance(&team, &beyond),
        Err(TokenRuleViolation::NotAllowed { missing: vec!["read:github".into(), "write:tasks".into()] })
    );
    assert_eq!(check_allowance(&Allowance::Unbounded, &beyond), Ok(()));
}

#[test]
fn narrowing_to_an_allowance_keeps_only_what_it_covers() {
    let team = Allowance::Scopes(ScopeSet::parse_lenient("read:tasks"));
    let token = ScopeSet::parse_lenient("read:tasks write:tasks read:github");
    let removed = vec!["read:github".to_owned(), "write:tasks".to_owned()];
    assert_eq!(team.narrow(&token), (ScopeSet::parse_lenient("read:tasks"), removed));
    assert_eq!(Allowance::Unbounded.narrow(&token), (token, Vec::new()));
}

#[test]
fn only_administrators_may_hold_mcp_admin_and_scim() {
    let asked = ScopeSet::parse_lenient("read:tasks scim mcp:admin");
    let refused = Err(TokenRuleViolation::NotAllowed { missing: vec!["mcp:admin".into(), "scim".into()] });
    assert_eq!(check_allowance(&Allowance::Everything, &asked), refused);
    let team = Allowance::Scopes(ScopeSet::parse_lenient("read:tasks scim"));
    assert_eq!(check_allowance(&team, &asked), refused, "not even from a hand-written allowance");
    assert_eq!(check_allowance(&Allowance::Unbounded, &asked), Ok(()));
    let (kept, removed) = Allowance::Everything.narrow(&asked);
    assert_eq!((kept.to_claim().as_str(), removed.len()), ("read:tasks", 2));
}
