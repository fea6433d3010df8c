//! The pure rules of connecting to an upstream's authorization server: where its metadata
//! lives, which client identity Tessera uses there, which addresses may be fetched, when a
//! token is due for refresh, and who the upstream says the person is.

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use url::Url;

/// What a `WWW-Authenticate: Bearer ...` challenge says: RFC 9728's `resource_metadata` and
/// the `scope` the resource wants.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Where the protected resource's metadata is.
    pub resource_metadata: Option<String>,
    /// The scopes it asks for.
    pub scope: Option<String>,
}

/// Reads the `Bearer` challenge's parameters (quoted or token values; other schemes ignored).
pub fn challenge(header: &str) -> Challenge {
    let mut out = Challenge::default();
    let Some(start) = header.to_ascii_lowercase().find("bearer") else { return out };
    let mut rest = &header[start + "bearer".len()..];
    loop {
        rest = rest.trim_start_matches([' ', ',', '\t']);
        let Some((name, after)) = rest.split_once('=') else { break };
        let name = name.trim();
        if name.contains(' ') {
            // The next scheme begins ("Bearer a=b, Basic realm=..."): ours is over.
            break;
        }
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            (value, &quoted[end.min(quoted.len())..])
        } else {
            let end = after.find([',', ' ']).unwrap_or(after.len());
            (after[..end].to_owned(), &after[end..])
        };
        match name.to_ascii_lowercase().as_str() {
            "resource_metadata" => out.resource_metadata = Some(value),
            "scope" => out.scope = Some(value),
            _ => {}
        }
        rest = next;
    }
    out
}

/// RFC 9728 §3.1: the metadata URLs to try for resource `resource`, the path-inserted one
/// first, then the host's root document.
pub fn protected_resource_urls(resource: &Url) -> Vec<Url> {
    well_known(resource, &["oauth-protected-resource"])
}

/// RFC 8414 §3.1 and OpenID Discovery: the metadata URLs to try for issuer `issuer`
/// (path-inserted OAuth, path-inserted OpenID, then OpenID appended to the issuer).
pub fn authorization_server_urls(issuer: &Url) -> Vec<Url> {
    let mut urls = well_known(issuer, &["oauth-authorization-server", "openid-configuration"]);
    let path = issuer.path().trim_end_matches('/');
    if !path.is_empty() {
        let mut appended = issuer.clone();
        appended.set_path(&format!("{path}/.well-known/openid-configuration"));
        appended.set_query(None);
        urls.push(appended);
    }
    urls.dedup();
    urls
}

fn well_known(base: &Url, names: &[&str]) -> Vec<Url> {
    let path = base.path().trim_end_matches('/');
    let mut urls = Vec::new();
    for name in names {
        let mut url = base.clone();
        url.set_query(None);
        url.set_fragment(None);
        url.set_path(&format!("/.well-known/{name}{path}"));
        urls.push(url);
    }
    if names == ["oauth-protected-resource"] && !path.is_empty() {
        let mut root = base.clone();
        root.set_query(None);
        root.set_fragment(None);
        root.set_path("/.well-known/oauth-protected-resource");
        urls.push(root);
    }
    urls
}

/// How Tessera identifies itself to an upstream's authorization server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientChoice {
    /// The client the administrator registered there (`--client-id`).
    PreRegistered,
    /// Tessera's own Client ID Metadata Document (its public URL is `https`, and the server
    /// says it accepts them).
    MetadataDocument,
    /// RFC 7591 dynamic registration.
    Dynamic,
}

/// Why Tessera cannot identify itself to an authorization server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the upstream's authorization server offers no way for Tessera to identify itself: register a client there and give --client-id"
)]
pub struct NoClientIdentity;

/// The client identity to use, in the issue's order: pre-registered, else a metadata
/// document (only reachable when Tessera's public URL is `https`), else dynamic registration.
pub fn choose_client(
    pre_registered: bool,
    public_https: bool,
    metadata_documents: bool,
    registration: bool,
) -> Result<ClientChoice, NoClientIdentity> {
    if pre_registered {
        Ok(ClientChoice::PreRegistered)
    } else if public_https && metadata_documents {
        Ok(ClientChoice::MetadataDocument)
    } else if registration {
        Ok(ClientChoice::Dynamic)
    } else {
        Err(NoClientIdentity)
    }
}

/// Why an address may not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchRefused {
    /// Not `https` (plain HTTP only on the registered upstream's own host).
    #[error("{0} is not https")]
    NotHttps(String),
    /// The host is private, loopback or link-local, and not the upstream's own.
    #[error("{0} is a private, loopback or link-local address")]
    Private(String),
}

/// Whether `url`, resolving to `addresses`, may be fetched for the server whose registered
/// URL is on `upstream_host`: anything on that host (an administrator chose it, so a
/// loopback upstream may have a loopback authorization server); elsewhere `https` to public
/// addresses only.
pub fn check_fetch(url: &Url, upstream_host: &str, addresses: &[IpAddr]) -> Result<(), FetchRefused> {
    let host = url.host_str().unwrap_or_default();
    if !upstream_host.is_empty() && host.eq_ignore_ascii_case(upstream_host) {
        return Ok(());
    }
    if url.scheme() != "https" {
        return Err(FetchRefused::NotHttps(host.to_owned()));
    }
    if addresses.is_empty() || addresses.iter().any(|a| !tessera_core::net::is_public(*a)) {
        return Err(FetchRefused::Private(host.to_owned()));
    }
    Ok(())
}

/// When a token answered at `now` with `expires_in` seconds ends (`None`: the server did not
/// say; a nonsensical value is treated as not said).
pub fn expires_at(now: DateTime<Utc>, expires_in: Option<i64>) -> Option<DateTime<Utc>> {
    let secs = expires_in.filter(|s| *s > 0)?;
    now.checked_add_signed(Duration::try_seconds(secs)?)
}

/// Whether a connection's access token, issued at `issued_at` and ending at `expires_at`,
/// should be refreshed now: in the last half of its life, and at the latest five minutes
/// before it ends, so a call never waits for a refresh that could have come earlier.
pub fn refresh_due(now: DateTime<Utc>, issued_at: DateTime<Utc>, expires_at: DateTime<Utc>) -> bool {
    let life = expires_at.signed_duration_since(issued_at);
    let margin = (life / 2).min(Duration::minutes(5)).max(Duration::zero());
    now >= expires_at - margin
}

/// Longest identity shown for a connection.
const MAX_IDENTITY_CHARS: usize = 200;

/// Who the upstream says the person is, for display only (never for a decision): from the
/// token response's ID token, else from a JWT access token: `preferred_username`, `email`,
/// `name` or `sub`, in that order. Nothing here is verified, and it is never trusted.
pub fn identity(id_token: Option<&str>, access_token: &str) -> Option<String> {
    let claims = |jwt: &str| -> Option<Value> {
        let payload = jwt.split('.').nth(1)?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?).ok()
    };
    let from = |c: Value| -> Option<String> {
        ["preferred_username", "email", "name", "sub"]
            .iter()
            .find_map(|k| c.get(*k).and_then(Value::as_str).filter(|s| !s.trim().is_empty()).map(str::to_owned))
    };
    let found = id_token.and_then(claims).and_then(from).or_else(|| claims(access_token).and_then(from))?;
    let clean: String = found.chars().filter(|c| !c.is_control()).take(MAX_IDENTITY_CHARS).collect();
    (!clean.is_empty()).then_some(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn a_bearer_challenge_gives_its_metadata_url_and_scope() {
        let c = challenge(
            r#"Bearer error="invalid_token", resource_metadata="https://a.example/.well-known/oauth-protected-resource/mcp", scope="read write""#,
        );
        assert_eq!(c.resource_metadata.as_deref(), Some("https://a.example/.well-known/oauth-protected-resource/mcp"));
        assert_eq!(c.scope.as_deref(), Some("read write"));
        assert_eq!(challenge(r#"Basic realm="x""#), Challenge::default());
        assert_eq!(challenge("Bearer scope=files, Basic realm=x").scope.as_deref(), Some("files"));
        assert_eq!(challenge(r#"Bearer scope="a\"b""#).scope.as_deref(), Some("a\"b"));
    }

    #[test]
    fn resource_metadata_is_tried_path_inserted_then_at_the_root() {
        let urls = protected_resource_urls(&url("https://a.example/v1/mcp?x=1"));
        assert_eq!(
            urls.iter().map(Url::as_str).collect::<Vec<_>>(),
            [
                "https://a.example/.well-known/oauth-protected-resource/v1/mcp",
                "https://a.example/.well-known/oauth-protected-resource"
            ]
        );
        assert_eq!(protected_resource_urls(&url("https://a.example/")).len(), 1);
    }

    #[test]
    fn authorization_server_metadata_is_tried_the_rfc_8414_way_then_the_openid_ways() {
        let urls = authorization_server_urls(&url("https://id.example/tenant1"));
        assert_eq!(
            urls.iter().map(Url::as_str).collect::<Vec<_>>(),
            [
                "https://id.example/.well-known/oauth-authorization-server/tenant1",
                "https://id.example/.well-known/openid-configuration/tenant1",
                "https://id.example/tenant1/.well-known/openid-configuration",
            ]
        );
        assert_eq!(authorization_server_urls(&url("https://id.example")).len(), 2);
    }

    #[test]
    fn the_client_identity_is_pre_registered_then_a_metadata_document_then_registration() {
        assert_eq!(choose_client(true, false, false, false), Ok(ClientChoice::PreRegistered));
        assert_eq!(choose_client(false, true, true, true), Ok(ClientChoice::MetadataDocument));
        // A metadata document at an http URL could never be fetched by the server.
        assert_eq!(choose_client(false, false, true, true), Ok(ClientChoice::Dynamic));
        assert_eq!(choose_client(false, true, false, true), Ok(ClientChoice::Dynamic));
        assert_eq!(choose_client(false, false, true, false), Err(NoClientIdentity));
    }

    #[test]
    fn only_the_upstreams_own_host_may_be_private_or_plain_http() {
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let public: IpAddr = "93.184.216.34".parse().unwrap();
        assert_eq!(check_fetch(&url("http://127.0.0.1:9/token"), "127.0.0.1", &[loopback]), Ok(()));
        assert!(matches!(
            check_fetch(&url("https://127.0.0.1/t"), "up.example", &[loopback]),
            Err(FetchRefused::Private(_))
        ));
        assert!(matches!(
            check_fetch(&url("http://id.example/t"), "up.example", &[public]),
            Err(FetchRefused::NotHttps(_))
        ));
        assert_eq!(check_fetch(&url("https://id.example/t"), "up.example", &[public]), Ok(()));
        assert!(check_fetch(&url("https://id.example/t"), "up.example", &[public, loopback]).is_err());
        assert!(check_fetch(&url("https://id.example/t"), "up.example", &[]).is_err());
    }

    #[test]
    fn expiry_is_computed_with_checked_arithmetic() {
        let now = Utc::now();
        assert_eq!(expires_at(now, Some(60)), Some(now + Duration::seconds(60)));
        assert_eq!(expires_at(now, Some(0)), None);
        assert_eq!(expires_at(now, Some(-5)), None);
        assert_eq!(expires_at(now, Some(i64::MAX)), None);
        assert_eq!(expires_at(now, None), None);
    }

    #[test]
    fn a_token_is_refreshed_in_the_last_half_of_its_life_and_five_minutes_before_it_ends() {
        let t0 = Utc::now();
        let short = t0 + Duration::seconds(10);
        assert!(!refresh_due(t0 + Duration::seconds(4), t0, short));
        assert!(refresh_due(t0 + Duration::seconds(5), t0, short));
        let hour = t0 + Duration::hours(1);
        assert!(!refresh_due(t0 + Duration::minutes(54), t0, hour));
        assert!(refresh_due(t0 + Duration::minutes(55), t0, hour));
        assert!(refresh_due(t0 + Duration::hours(2), t0, hour));
    }

    #[test]
    fn the_identity_comes_from_the_id_token_then_the_access_token_and_is_cleaned() {
        let jwt = |claims: Value| format!("h.{}.s", URL_SAFE_NO_PAD.encode(claims.to_string()));
        let id = jwt(serde_json::json!({"sub": "42", "preferred_username": "alice"}));
        let access = jwt(serde_json::json!({"sub": "user-7", "email": "a@x.example"}));
        assert_eq!(identity(Some(&id), &access).as_deref(), Some("alice"));
        assert_eq!(identity(None, &access).as_deref(), Some("a@x.example"));
        assert_eq!(identity(None, "opaque-token"), None);
        assert_eq!(identity(None, &jwt(serde_json::json!({"sub": "a\u{7}b"}))).as_deref(), Some("ab"));
        assert_eq!(identity(None, &jwt(serde_json::json!({"sub": "x".repeat(500)}))).map(|s| s.len()), Some(200));
    }
}
