//! The relying party's rules, pure: what an ID token's claims must say once its signature,
//! `iss`, `aud` and `exp` have been checked, how groups are read from a claim, which issuer
//! URLs are acceptable, where a sign-in may return to. `now` is passed in.

use serde::Deserialize;
use serde_json::{Map, Value};

/// Clock skew tolerated on `iat` and `exp`, in seconds.
pub const SKEW_SECS: i64 = 60;
/// Oldest `iat` accepted: the token comes straight from the token endpoint.
pub const MAX_AGE_SECS: i64 = 10 * 60;
/// Longest group name taken from a claim (as `team_groups.idp_group` stores).
pub const MAX_GROUP_CHARS: usize = 256;
/// Most groups taken from one claim.
pub const MAX_GROUPS: usize = 1000;

/// Why a provider's answer gives no sign-in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// `aud` does not name this client.
    #[error("the ID token is meant for another client")]
    Audience,
    /// `azp` names another party, or is missing where several audiences need it.
    #[error("the ID token was issued to another party (azp)")]
    AuthorizedParty,
    /// `iat` lies in the future or too far back.
    #[error("the ID token's issue time is out of range")]
    IssuedAt,
    /// `exp` has passed.
    #[error("the ID token has expired")]
    Expired,
    /// `nonce` is missing or is not the one this sign-in sent.
    #[error("the ID token does not answer this sign-in (nonce)")]
    Nonce,
    /// No usable `sub`.
    #[error("the ID token names no subject")]
    Subject,
    /// No email, or not an email.
    #[error("the identity provider sent no email address for this account")]
    NoEmail,
    /// `email_verified` is false.
    #[error("the identity provider has not verified this account's email address")]
    EmailUnverified,
    /// The groups claim is neither a string nor a list of strings.
    #[error("the identity provider's `{0}` claim is not a list of group names")]
    Groups(String),
}

/// The standard claims Tessera reads; everything else stays in `extra` for the groups claim.
#[derive(Debug, Clone, Deserialize)]
pub struct IdClaims {
    /// Subject at the provider.
    #[serde(default)]
    pub sub: String,
    /// One audience or several.
    #[serde(default)]
    pub aud: Audience,
    /// Authorized party.
    #[serde(default)]
    pub azp: Option<String>,
    /// Issued at (seconds).
    #[serde(default)]
    pub iat: Option<i64>,
    /// Expires at (seconds).
    #[serde(default)]
    pub exp: Option<i64>,
    /// Echo of the sign-in's nonce.
    #[serde(default)]
    pub nonce: Option<String>,
    /// The account's email.
    #[serde(default)]
    pub email: Option<String>,
    /// Whether the provider verified it; absent means the provider does not say.
    #[serde(default)]
    pub email_verified: Option<Value>,
    /// Every other claim (groups, roles, organisation).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `aud`: a string or a list of strings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// Absent.
    #[default]
    None,
    /// One audience.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl Audience {
    fn list(&self) -> Vec<&str> {
        match self {
            Self::None => Vec::new(),
            Self::One(a) => vec![a.as_str()],
            Self::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// What the sign-in expects of the token.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// Tessera's client id at the provider.
    pub client_id: &'a str,
    /// The nonce this sign-in sent.
    pub nonce: &'a str,
}

/// A person as the provider vouches for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Subject at the provider (stable across email changes).
    pub subject: String,
    /// Verified (or not contradicted) email, trimmed.
    pub email: String,
    /// Group names from the configured claim.
    pub groups: Vec<String>,
}

/// Checks what signature validation leaves to the relying party (OpenID Connect Core
/// §3.1.3.7, items 3–5, 9–11) and reads the identity, groups from `groups_claim`.
pub fn check_id_claims(
    claims: &IdClaims,
    expected: Expected<'_>,
    groups_claim: &[String],
    now_secs: i64,
) -> Result<Identity, ClaimError> {
    let audiences = claims.aud.list();
    if !audiences.contains(&expected.client_id) {
        return Err(ClaimError::Audience);
    }
    match claims.azp.as_deref() {
        Some(azp) if azp != expected.client_id => return Err(ClaimError::AuthorizedParty),
        None if audiences.len() > 1 => return Err(ClaimError::AuthorizedParty),
        _ => {}
    }
    match claims.exp {
        Some(exp) if exp.saturating_add(SKEW_SECS) > now_secs => {}
        _ => return Err(ClaimError::Expired),
    }
    match claims.iat {
        Some(iat) if iat <= now_secs.saturating_add(SKEW_SECS) && iat >= now_secs.saturating_sub(MAX_AGE_SECS) => {}
        _ => return Err(ClaimError::IssuedAt),
    }
    if claims.nonce.as_deref() != Some(expected.nonce) {
        return Err(ClaimError::Nonce);
    }
    let subject = claims.sub.trim();
    if subject.is_empty() || subject.len() > 255 || subject.contains('\0') {
        return Err(ClaimError::Subject);
    }
    let email = claims.email.as_deref().map(str::trim).unwrap_or_default();
    if !looks_like_email(email) {
        return Err(ClaimError::NoEmail);
    }
    // Some providers send the boolean as a string ("true").
    match &claims.email_verified {
        Some(Value::Bool(false)) => return Err(ClaimError::EmailUnverified),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => return Err(ClaimError::EmailUnverified),
        _ => {}
    }
    Ok(Identity {
        subject: subject.to_owned(),
        email: email.to_owned(),
        groups: groups_at(&claims.extra, groups_claim)?,
    })
}

fn looks_like_email(email: &str) -> bool {
    let count = email.chars().count();
    (3..=320).contains(&count)
        && !email.contains(['\0', ' ', '\n', '\r'])
        && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
}

/// Reads group names at a dotted `path` (`groups`, `realm_access.roles`): a list of strings,
/// or one string (Clerk's `org_role`); absent means none. Anything else is refused, as are
/// names that are empty, too long or hold NUL.
pub fn groups_at(claims: &Map<String, Value>, path: &[String]) -> Result<Vec<String>, ClaimError> {
    let shown = path.join(".");
    let Some((first, rest)) = path.split_first() else { return Ok(Vec::new()) };
    let mut at = claims.get(first.as_str());
    for part in rest {
        at = at.and_then(|v| v.get(part.as_str()));
    }
    let names: Vec<&str> = match at {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().ok_or_else(|| ClaimError::Groups(shown.clone())))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ClaimError::Groups(shown)),
    };
    if names.len() > MAX_GROUPS
        || names.iter().any(|n| n.is_empty() || n.chars().count() > MAX_GROUP_CHARS || n.contains('\0'))
    {
        return Err(ClaimError::Groups(shown));
    }
    let mut groups: Vec<String> = names.into_iter().map(str::to_owned).collect();
    groups.sort();
    groups.dedup();
    Ok(groups)
}

/// Whether any of `groups` is one of the configured administrator groups.
pub fn is_admin(groups: &[String], admin_groups: &[String]) -> bool {
    groups.iter().any(|g| admin_groups.contains(g))
}

/// Where the UI may be sent back to after signing in: one of its own hash routes, so a
/// crafted link cannot make the sign-in an open redirect.
pub fn return_to(requested: Option<&str>) -> String {
    match requested {
        Some(r) if r.starts_with("#/") && r.len() <= 2048 && !r.chars().any(char::is_control) => r.to_owned(),
        _ => "#/tokens".to_owned(),
    }
}

/// An issuer must be https, except on a loopback host (a provider on the same machine, or
/// in tests).
pub fn check_issuer(issuer: &url::Url) -> Result<(), String> {
    let loopback = match issuer.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match issuer.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!("TESSERA_OIDC_ISSUER must be an https URL (http only on a loopback host): {issuer}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn claims(v: Value) -> IdClaims {
        let mut base = json!({
            "sub": "u-1", "aud": "tessera", "iat": NOW, "exp": NOW + 300, "nonce": "n1",
            "email": "alice@example.com", "email_verified": true, "groups": ["eng"]
        });
        for (k, val) in v.as_object().unwrap() {
            if val.is_null() {
                base.as_object_mut().unwrap().remove(k);
            } else {
                base[k] = val.clone();
            }
        }
        serde_json::from_value(base).unwrap()
    }

    fn check(v: Value) -> Result<Identity, ClaimError> {
        check_id_claims(&claims(v), Expected { client_id: "tessera", nonce: "n1" }, &["groups".into()], NOW)
    }

    #[test]
    fn a_good_token_gives_the_identity_and_groups() {
        let id = check(json!({})).unwrap();
        assert_eq!(
            id,
            Identity { subject: "u-1".into(), email: "alice@example.com".into(), groups: vec!["eng".into()] }
        );
    }

    #[test]
    fn another_audience_is_refused() {
        assert_eq!(check(json!({"aud": "other"})), Err(ClaimError::Audience));
    }

    #[test]
    fn several_audiences_need_an_azp_naming_us() {
        assert_eq!(check(json!({"aud": ["tessera", "other"]})), Err(ClaimError::AuthorizedParty));
        assert!(check(json!({"aud": ["tessera", "other"], "azp": "tessera"})).is_ok());
    }

    #[test]
    fn an_azp_naming_another_client_is_refused() {
        assert_eq!(check(json!({"azp": "other"})), Err(ClaimError::AuthorizedParty));
    }

    #[test]
    fn an_expired_token_is_refused_beyond_the_skew() {
        assert!(check(json!({"exp": NOW - 30})).is_ok());
        assert_eq!(check(json!({"exp": NOW - 61})), Err(ClaimError::Expired));
        assert_eq!(check(json!({"exp": null})), Err(ClaimError::Expired));
    }

    #[test]
    fn iat_in_the_future_or_long_ago_is_refused() {
        assert_eq!(check(json!({"iat": NOW + 120})), Err(ClaimError::IssuedAt));
        assert_eq!(check(json!({"iat": NOW - MAX_AGE_SECS - 1})), Err(ClaimError::IssuedAt));
        assert_eq!(check(json!({"iat": null})), Err(ClaimError::IssuedAt));
    }

    #[test]
    fn a_missing_or_other_nonce_is_refused() {
        assert_eq!(check(json!({"nonce": "n2"})), Err(ClaimError::Nonce));
        assert_eq!(check(json!({"nonce": null})), Err(ClaimError::Nonce));
    }

    #[test]
    fn an_unverified_email_is_refused_and_an_unstated_one_accepted() {
        assert_eq!(check(json!({"email_verified": false})), Err(ClaimError::EmailUnverified));
        assert_eq!(check(json!({"email_verified": "false"})), Err(ClaimError::EmailUnverified));
        assert!(check(json!({"email_verified": null})).is_ok());
    }

    #[test]
    fn no_email_or_no_subject_is_refused() {
        assert_eq!(check(json!({"email": null})), Err(ClaimError::NoEmail));
        assert_eq!(check(json!({"email": "not-an-address"})), Err(ClaimError::NoEmail));
        assert_eq!(check(json!({"sub": ""})), Err(ClaimError::Subject));
    }

    #[test]
    fn groups_are_read_at_a_dotted_path() {
        let c = json!({"realm_access": {"roles": ["b", "a", "a"]}});
        let path = vec!["realm_access".to_owned(), "roles".to_owned()];
        assert_eq!(groups_at(c.as_object().unwrap(), &path).unwrap(), vec!["a", "b"]);
    }

    #[test]
    fn one_string_is_one_group_and_absence_is_none() {
        let c = json!({"org_role": "org:admin"});
        assert_eq!(groups_at(c.as_object().unwrap(), &["org_role".into()]).unwrap(), vec!["org:admin"]);
        assert!(groups_at(c.as_object().unwrap(), &["groups".into()]).unwrap().is_empty());
    }

    #[test]
    fn a_groups_claim_that_is_not_strings_is_refused_naming_it() {
        for bad in
            [json!({"groups": [1, 2]}), json!({"groups": {"a": 1}}), json!({"groups": 7}), json!({"groups": [""]})]
        {
            assert_eq!(
                groups_at(bad.as_object().unwrap(), &["groups".into()]),
                Err(ClaimError::Groups("groups".into()))
            );
        }
    }

    #[test]
    fn admin_groups_make_an_admin() {
        assert!(is_admin(&["eng".into(), "ops".into()], &["ops".into()]));
        assert!(!is_admin(&["eng".into()], &["ops".into()]));
        assert!(!is_admin(&[], &[]));
    }

    #[test]
    fn only_the_uis_own_routes_are_returned_to() {
        assert_eq!(return_to(Some("#/oauth/consent?client_id=x")), "#/oauth/consent?client_id=x");
        assert_eq!(return_to(Some("https://evil.example/")), "#/tokens");
        assert_eq!(return_to(Some("//evil.example")), "#/tokens");
        assert_eq!(return_to(None), "#/tokens");
    }

    #[test]
    fn http_issuers_are_accepted_on_loopback_only() {
        assert!(check_issuer(&"https://id.example.com/realms/a".parse().unwrap()).is_ok());
        assert!(check_issuer(&"http://127.0.0.1:9000".parse().unwrap()).is_ok());
        assert!(check_issuer(&"http://localhost:9000".parse().unwrap()).is_ok());
        assert!(check_issuer(&"http://id.example.com".parse().unwrap()).is_err());
    }
}
