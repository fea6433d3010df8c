//! The authorization server's rules as pure functions; the clock is a parameter.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use tessera_core::catalog::{Catalog, ServerName, ServerScope, ToolName, default_server_scopes};
use tessera_core::codec::constant_time_eq;
use tessera_core::scope::{ADMIN_ONLY, CATALOG, DERIVED, ScopeSet};
use tessera_core::upstream::{ToolAccess, tool_permission};
use url::{Host, Url};

/// An authorization code lives this long (OAuth 2.1 recommends at most a minute).
pub const CODE_TTL_SECS: i64 = 60;
/// Most redirect URIs one client may register.
pub const MAX_REDIRECT_URIS: usize = 10;
/// Longest redirect URI accepted.
pub const MAX_REDIRECT_URI_CHARS: usize = 2000;
/// Longest client name kept (longer names are refused at registration).
pub const CLIENT_NAME_MAX_CHARS: usize = 100;
/// PKCE code verifier length bounds (RFC 7636 §4.1).
pub const VERIFIER_MIN_CHARS: usize = 43;
/// See [`VERIFIER_MIN_CHARS`].
pub const VERIFIER_MAX_CHARS: usize = 128;
/// Longest `state` echoed back to a client.
pub const MAX_STATE_CHARS: usize = 1000;
/// Scopes a client asking for none of the built-in server's (no `scope`, or only `mcp:access`,
/// which its 401 names) gets pre-ticked: read the MCP tools' data and call tools, so the
/// grant as offered works (`whoami`, listing) and can change nothing.
pub const DEFAULT_SCOPES: &[&str] = &["read:tasks", "read:context", "read:agents", tessera_core::scope::EXECUTE_MCP];
/// Scopes such a client is also offered, unticked: the person may let it write, it is never
/// the default. Token management (`read:tokens`, `write:tokens`) is not offered: a client that
/// needs it asks for it, and the person sees that it did.
pub const DEFAULT_UNTICKED_SCOPES: &[&str] = &["write:tasks", "write:context", "write:agents"];

/// Why an OAuth request failed. [`OAuthError::code`] is the one mapping to the RFC codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// A parameter is missing, repeated or malformed.
    #[error("{0}")]
    InvalidRequest(String),
    /// The client is unknown or its credentials are wrong.
    #[error("{0}")]
    InvalidClient(String),
    /// The code or refresh token is invalid, expired, used, or bound to something else.
    #[error("{0}")]
    InvalidGrant(String),
    /// A grant type other than `authorization_code` and `refresh_token`.
    #[error("only the authorization_code and refresh_token grants are supported")]
    UnsupportedGrantType,
    /// A response type other than `code`.
    #[error("only response_type=code is supported")]
    UnsupportedResponseType,
    /// Unknown or ungrantable scopes.
    #[error("{0}")]
    InvalidScope(String),
    /// The `resource` is not one this server protects (RFC 8707).
    #[error("the resource is not one this server issues tokens for")]
    InvalidTarget,
    /// The user said no.
    #[error("the user denied the request")]
    AccessDenied,
    /// A redirect URI in a registration is not acceptable (RFC 7591).
    #[error("{0}")]
    InvalidRedirectUri(String),
    /// Other client metadata is not acceptable (RFC 7591).
    #[error("{0}")]
    InvalidClientMetadata(String),
    /// Too many requests from this address.
    #[error("too many registrations from this address; retry in {0} s")]
    SlowDown(u64),
    /// Something failed on our side (never a detail in the message).
    #[error("the authorization server failed; retry later")]
    ServerError,
    /// The database is unreachable.
    #[error("the authorization server is temporarily unavailable")]
    TemporarilyUnavailable,
}

impl OAuthError {
    /// The RFC 6749 §4.1.2.1 / §5.2, RFC 7591 §3.2.2 or RFC 8707 error code, as the
    /// project's vocabulary names it (the same word on the wire).
    pub fn error_code(&self) -> tessera_core::ErrorCode {
        use tessera_core::ErrorCode as C;
        match self {
            Self::InvalidRequest(_) => C::InvalidRequest,
            Self::InvalidClient(_) => C::InvalidClient,
            Self::InvalidGrant(_) => C::InvalidGrant,
            Self::UnsupportedGrantType => C::UnsupportedGrantType,
            Self::UnsupportedResponseType => C::UnsupportedResponseType,
            Self::InvalidScope(_) => C::InvalidScope,
            Self::InvalidTarget => C::InvalidTarget,
            Self::AccessDenied => C::AccessDenied,
            Self::InvalidRedirectUri(_) => C::InvalidRedirectUri,
            Self::InvalidClientMetadata(_) => C::InvalidClientMetadata,
            Self::SlowDown(_) => C::SlowDown,
            Self::ServerError => C::ServerError,
            Self::TemporarilyUnavailable => C::TemporarilyUnavailable,
        }
    }

    /// [`OAuthError::error_code`]'s word.
    pub fn code(&self) -> &'static str {
        self.error_code().as_str()
    }

    /// The HTTP status of a direct (non-redirect) answer carrying this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidClient(_) => 401,
            Self::SlowDown(_) => 429,
            Self::ServerError => 500,
            Self::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

fn bad(message: impl Into<String>) -> OAuthError {
    OAuthError::InvalidRequest(message.into())
}

/// base64url(SHA-256(`verifier`)), the S256 challenge of a verifier (RFC 7636 §4.2).
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The authorization request's PKCE part: S256 only (`plain` and absent are refused), and a
/// challenge that looks like a base64url SHA-256.
pub fn check_challenge(challenge: Option<&str>, method: Option<&str>) -> Result<String, OAuthError> {
    match method {
        Some("S256") => {}
        Some("plain") => return Err(bad("code_challenge_method=plain is not allowed; use S256")),
        Some(_) => return Err(bad("code_challenge_method must be S256")),
        None => return Err(bad("PKCE is required: send code_challenge with code_challenge_method=S256")),
    }
    let challenge = challenge.ok_or_else(|| bad("code_challenge is required"))?;
    let well_formed =
        challenge.len() == 43 && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(bad("code_challenge must be the base64url SHA-256 of the verifier (43 characters)"));
    }
    Ok(challenge.to_owned())
}

/// The token request's PKCE part: the verifier is well-formed and hashes to the challenge.
pub fn verify_pkce(verifier: Option<&str>, challenge: &str) -> Result<(), OAuthError> {
    let verifier = verifier.ok_or_else(|| bad("code_verifier is required"))?;
    let well_formed = (VERIFIER_MIN_CHARS..=VERIFIER_MAX_CHARS).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !well_formed {
        return Err(bad("code_verifier must be 43-128 unreserved characters"));
    }
    if !constant_time_eq(s256(verifier).as_bytes(), challenge.as_bytes()) {
        return Err(OAuthError::InvalidGrant("the code_verifier does not match the code_challenge".to_owned()));
    }
    Ok(())
}

/// Whether `uri` is a loopback `http` URI (RFC 8252 §7.3): 127.0.0.1, [::1] or localhost.
fn is_loopback_http(url: &Url) -> bool {
    url.scheme() == "http"
        && match url.host() {
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        }
}

/// A redirect URI a client may register: absolute `https`, or loopback `http`; no
/// fragment, no credentials.
pub fn check_redirect_uri(uri: &str) -> Result<Url, OAuthError> {
    let invalid = |m: &str| OAuthError::InvalidRedirectUri(format!("redirect URI {uri:?}: {m}"));
    if uri.len() > MAX_REDIRECT_URI_CHARS {
        return Err(invalid("too long"));
    }
    if uri.chars().any(char::is_control) {
        return Err(invalid("must not contain control characters"));
    }
    let url = Url::parse(uri).map_err(|_| invalid("not an absolute URL"))?;
    if url.fragment().is_some() {
        return Err(invalid("must not have a fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("must not carry credentials"));
    }
    if url.scheme() == "https" && url.host().is_some() || is_loopback_http(&url) {
        Ok(url)
    } else {
        Err(invalid("must be https, or http on a loopback address"))
    }
}

/// Whether `requested` matches one of `registered`: exactly, or for loopback `http` URIs
/// on any port (RFC 8252 §7.3: native apps listen on an ephemeral port).
pub fn redirect_uri_matches(registered: &[String], requested: &str) -> bool {
    if registered.iter().any(|r| r == requested) {
        return true;
    }
    let Ok(req) = Url::parse(requested) else { return false };
    if !is_loopback_http(&req) {
        return false;
    }
    registered.iter().filter_map(|r| Url::parse(r).ok()).any(|mut reg| {
        if !is_loopback_http(&reg) {
            return false;
        }
        let mut req = req.clone();
        // Ports are the only thing that may differ.
        let (Ok(()), Ok(())) = (reg.set_port(None), req.set_port(None)) else { return false };
        reg == req
    })
}

/// A registered server a grant may be for: a gateway server (resource `{public}/mcp/S`) or a
/// direct one (resource: its own URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTarget {
    /// Its name, the `S` of its scopes.
    pub name: ServerName,
    /// Its RFC 8707 resource: the access tokens' `aud`.
    pub resource: String,
    /// Checks tokens itself (introspection), so `execute:mcp` means nothing to it.
    pub direct: bool,
}

/// What a grant is for (RFC 8707): Tessera's own MCP server, or one registered server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The built-in `/mcp` (its resource URL).
    Builtin(String),
    /// A registered server, as the registry holds it at request time.
    Server(ServerTarget),
}

impl Target {
    /// The resource URL: the access tokens' `aud`.
    pub fn resource(&self) -> &str {
        match self {
            Self::Builtin(resource) => resource,
            Self::Server(server) => &server.resource,
        }
    }

    /// The catalog the grant's scopes are checked against: the built-in scopes, or that one
    /// server's (nothing of another resource is ever grantable for this one).
    pub fn catalog(&self) -> Catalog {
        match self {
            Self::Builtin(_) => Catalog::builtin(),
            Self::Server(server) => Catalog::with_servers([server.name.clone()]),
        }
    }

    /// Whether a grant for this target may carry `word` (a known, non-derived, non-admin scope).
    fn carries(&self, word: &str) -> bool {
        match (self, ServerScope::parse(word)) {
            (Self::Builtin(_), None) => CATALOG.contains(&word),
            (Self::Server(s), None) => !s.direct && word == EXECUTE_MCP,
            (Self::Builtin(_), Some(_)) => false,
            (Self::Server(s), Some(scope)) => scope.server == s.name,
        }
    }
}

/// The scope every `tools/call` needs besides the tool's own (built-in and gateway alike).
use tessera_core::scope::EXECUTE_MCP;

fn same_resource(a: &str, b: &str) -> bool {
    a.strip_suffix('/').unwrap_or(a) == b.strip_suffix('/').unwrap_or(b)
}

/// The RFC 8707 resource of a request: the built-in MCP resource (the default when none is
/// named) or a registered server's, looked up in `servers` as registered now; anything else
/// (a removed server included) is `invalid_target`. A trailing slash is tolerated (clients
/// differ on it).
pub fn resolve_target(
    requested: Option<&str>,
    builtin: &[String],
    servers: &[ServerTarget],
) -> Result<Target, OAuthError> {
    let Some(requested) = requested else {
        return builtin.first().cloned().map(Target::Builtin).ok_or(OAuthError::InvalidTarget);
    };
    if let Some(own) = builtin.iter().find(|k| same_resource(k, requested)) {
        return Ok(Target::Builtin(own.clone()));
    }
    servers
        .iter()
        .find(|s| same_resource(&s.resource, requested))
        .cloned()
        .map(Target::Server)
        .ok_or(OAuthError::InvalidTarget)
}

/// What a client asked for, as the consent page starts from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    /// The scopes asked for (or the target's default), shown ticked.
    pub scopes: ScopeSet,
    /// Nothing usable was asked for, so [`Requested::scopes`] is the target's default.
    pub defaulted: bool,
}

/// The scopes a client asks for `target`. Derived scopes (`mcp:read`, ...) say nothing a grant
/// could carry and `mcp:admin` and `scim` are never grantable over OAuth; scopes of another resource (a
/// built-in scope for a server, another server's scope, `execute:mcp` for a direct server)
/// could do nothing with this grant's `aud`. All of these are dropped: RFC 6749 §3.3 lets the
/// server issue a narrower scope, and the token response's `scope` says what was granted.
/// Nothing left (or no `scope`) means the target's default: [`DEFAULT_SCOPES`] for the
/// built-in server, [`default_server_scopes`] for a registered one. Words that are no scope
/// at all are `invalid_scope`.
pub fn requested_scopes(scope: Option<&str>, target: &Target) -> Result<Requested, OAuthError> {
    let mut kept = Vec::new();
    let mut unknown = Vec::new();
    for word in scope.unwrap_or_default().split_whitespace() {
        let known = CATALOG.contains(&word) || DERIVED.contains(&word) || ADMIN_ONLY.contains(&word);
        if target.carries(word) {
            kept.push(word.to_owned());
        } else if !(known || ServerScope::parse(word).is_some()) {
            unknown.push(word);
        }
    }
    if !unknown.is_empty() {
        return Err(OAuthError::InvalidScope(format!("unknown scope(s): {}", unknown.join(" "))));
    }
    let defaulted = kept.is_empty();
    if defaulted {
        kept = match target {
            Target::Builtin(_) => DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            Target::Server(s) => default_server_scopes(&s.name, s.direct),
        };
    }
    let scopes = target.catalog().grant(kept).map_err(|e| OAuthError::InvalidScope(e.to_string()))?;
    Ok(Requested { scopes, defaulted })
}

/// What the consent page offers: the requested scopes, the `read:X` each `write:X` implies,
/// for the built-in server's default also [`DEFAULT_UNTICKED_SCOPES`], and for a server,
/// `call:S/TOOL` for each visible tool the request already covers (`write:S`: every one;
/// `read:S`: the read-class ones), so the person can narrow a server-wide request down to
/// single tools. Hidden tools are never offered.
pub fn offered_scopes(request: &Requested, target: &Target, tools: &[(ToolName, ToolAccess)]) -> ScopeSet {
    let requested = &request.scopes;
    let mut words: Vec<String> = requested.to_vec();
    if request.defaulted && matches!(target, Target::Builtin(_)) {
        words.extend(DEFAULT_UNTICKED_SCOPES.iter().map(|s| (*s).to_owned()));
    }
    for scope in requested.iter() {
        if let Some(resource) = scope.as_str().strip_prefix("write:") {
            words.push(format!("read:{resource}"));
        }
    }
    if let Target::Server(server) = target {
        let effective = requested.expand();
        for (tool, access) in tools {
            if tool_permission(&effective, &server.name, tool.as_str(), *access).is_ok() {
                words.push(format!("call:{}/{tool}", server.name));
            }
        }
    }
    // Every word is of the target's catalog, so this only fails on an empty request, which
    // `requested_scopes` never returns.
    target.catalog().grant(&words).unwrap_or_else(|_| requested.clone())
}

/// What the person approved: a non-empty subset of what was offered (never `mcp:admin`).
pub fn approved_scopes(offered: &ScopeSet, approved: &[String], target: &Target) -> Result<ScopeSet, OAuthError> {
    let set = target.catalog().grant(approved).map_err(|e| bad(e.to_string()))?;
    if set.has_admin() || !set.is_subset(offered) {
        return Err(bad("approved scopes must be among the offered ones"));
    }
    Ok(set)
}

/// When a code issued at `now` expires.
pub fn code_expiry(now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    now.checked_add_signed(Duration::seconds(CODE_TTL_SECS))
}

/// The facts of a stored code that a token request must agree with.
#[derive(Debug, Clone)]
pub struct CodeFacts<'a> {
    /// The client it was issued to.
    pub client_id: &'a str,
    /// The redirect URI of the authorization request.
    pub redirect_uri: &'a str,
    /// The PKCE challenge.
    pub code_challenge: &'a str,
    /// The resource the grant is for.
    pub resource: &'a str,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// Whether it was exchanged already.
    pub used: bool,
}

/// What the token request says.
#[derive(Debug, Clone)]
pub struct Exchange<'a> {
    /// `client_id`.
    pub client_id: &'a str,
    /// `redirect_uri` (required when the authorization request had one, which is always).
    pub redirect_uri: Option<&'a str>,
    /// `code_verifier`.
    pub code_verifier: Option<&'a str>,
    /// `resource`, if repeated.
    pub resource: Option<&'a str>,
}

/// Checks an authorization-code exchange, except single use (the store decides that
/// atomically): client, redirect URI, expiry, resource, then PKCE.
pub fn check_exchange(code: &CodeFacts<'_>, ex: &Exchange<'_>, now: DateTime<Utc>) -> Result<(), OAuthError> {
    let invalid = |m: &str| OAuthError::InvalidGrant(m.to_owned());
    if code.used {
        return Err(invalid("the authorization code was already used"));
    }
    if code.client_id != ex.client_id {
        return Err(invalid("the authorization code was issued to another client"));
    }
    if ex.redirect_uri != Some(code.redirect_uri) {
        return Err(invalid("redirect_uri does not match the authorization request"));
    }
    if code.expires_at <= now {
        return Err(invalid("the authorization code has expired"));
    }
    if let Some(resource) = ex.resource
        && resource.strip_suffix('/').unwrap_or(resource) != code.resource.strip_suffix('/').unwrap_or(code.resource)
    {
        return Err(OAuthError::InvalidTarget);
    }
    verify_pkce(ex.code_verifier, code.code_challenge)
}

/// A client id that names a Client ID Metadata Document: an `https` URL with a host and a
/// path, no fragment and no credentials.
pub fn check_cimd_url(client_id: &str) -> Result<Url, OAuthError> {
    let invalid = |m: &str| OAuthError::InvalidClient(format!("client_id metadata document URL: {m}"));
    if client_id.len() > MAX_REDIRECT_URI_CHARS {
        return Err(invalid("too long"));
    }
    let url = Url::parse(client_id).map_err(|_| invalid("not a URL"))?;
    if url.scheme() != "https" || url.host().is_none() {
        return Err(invalid("must be https"));
    }
    if url.path() == "/" || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("must have a path, and no fragment or credentials"));
    }
    Ok(url)
}

/// A fetched metadata document must name itself: its `client_id` is the URL it came from.
pub fn check_cimd_document(
    url: &str,
    doc_client_id: Option<&str>,
    meta: &ClientMetadata,
) -> Result<ValidClient, OAuthError> {
    if doc_client_id != Some(url) {
        return Err(OAuthError::InvalidClient(
            "the client metadata document's client_id differs from its URL".to_owned(),
        ));
    }
    check_registration(meta).map_err(|e| OAuthError::InvalidClient(format!("client metadata document: {e}")))
}

/// RFC 7591 registration metadata as sent.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ClientMetadata {
    /// Redirect URIs (required).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Display name.
    pub client_name: Option<String>,
    /// `none` (public client) is the only method offered.
    pub token_endpoint_auth_method: Option<String>,
    /// Subset of `authorization_code`, `refresh_token`.
    pub grant_types: Option<Vec<String>>,
    /// Subset of `code`.
    pub response_types: Option<Vec<String>>,
    /// Requested scopes (informational).
    pub scope: Option<String>,
    /// `native` or `web` (MCP 2026-07-28, SEP-837); informational.
    pub application_type: Option<String>,
}

/// Registration metadata that passed the rules.
#[derive(Debug, Clone)]
pub struct ValidClient {
    /// Display name (the first redirect host when none was given).
    pub name: String,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
}

/// Checks a registration (RFC 7591 §2): public clients only, at most
/// [`MAX_REDIRECT_URIS`] acceptable redirect URIs, supported grant and response types.
pub fn check_registration(meta: &ClientMetadata) -> Result<ValidClient, OAuthError> {
    let meta_err = |m: &str| OAuthError::InvalidClientMetadata(m.to_owned());
    if meta.redirect_uris.is_empty() {
        return Err(OAuthError::InvalidRedirectUri("redirect_uris is required".to_owned()));
    }
    if meta.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(OAuthError::InvalidRedirectUri(format!("at most {MAX_REDIRECT_URIS} redirect URIs")));
    }
    let mut first_host = None;
    for uri in &meta.redirect_uris {
        let url = check_redirect_uri(uri)?;
        first_host = first_host.or_else(|| url.host_str().map(str::to_owned));
    }
    match meta.token_endpoint_auth_method.as_deref() {
        None | Some("none") => {}
        Some(_) => return Err(meta_err("only public clients (token_endpoint_auth_method=none) can register")),
    }
    let grants_ok =
        meta.grant_types.as_ref().is_none_or(|g| g.iter().all(|t| t == "authorization_code" || t == "refresh_token"));
    if !grants_ok {
        return Err(meta_err("grant_types may only contain authorization_code and refresh_token"));
    }
    if !meta.response_types.as_ref().is_none_or(|r| r.iter().all(|t| t == "code")) {
        return Err(meta_err("response_types may only contain code"));
    }
    let name = match meta.client_name.as_deref().map(str::trim) {
        Some(n) if n.chars().count() > CLIENT_NAME_MAX_CHARS => {
            return Err(meta_err("client_name is longer than 100 characters"));
        }
        Some(n) if !n.is_empty() && !n.chars().any(char::is_control) => n.to_owned(),
        Some(n) if !n.is_empty() => return Err(meta_err("client_name must not contain control characters")),
        _ => first_host.map_or_else(|| "unnamed client".to_owned(), |host| name_from_host(&host)),
    };
    Ok(ValidClient { name, redirect_uris: meta.redirect_uris.clone() })
}

/// The display name of a client that gave none: its first redirect host, cut to
/// [`CLIENT_NAME_MAX_CHARS`] (a DNS name may be 253 characters; the name is for people).
fn name_from_host(host: &str) -> String {
    if host.chars().count() <= CLIENT_NAME_MAX_CHARS {
        return host.to_owned();
    }
    let mut name: String = host.chars().take(CLIENT_NAME_MAX_CHARS - 1).collect();
    name.push('…');
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    #[test]
    fn s256_matches_rfc_7636_appendix_b() {
        assert_eq!(s256(VERIFIER), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn plain_and_missing_methods_are_refused() {
        let c = s256(VERIFIER);
        assert!(check_challenge(Some(&c), Some("plain")).is_err());
        assert!(check_challenge(Some(&c), None).is_err());
        assert!(check_challenge(Some("short"), Some("S256")).is_err());
        assert_eq!(check_challenge(Some(&c), Some("S256")).unwrap(), c);
    }

    #[test]
    fn a_wrong_verifier_is_invalid_grant() {
        let c = s256(VERIFIER);
        assert!(verify_pkce(Some(VERIFIER), &c).is_ok());
        let other = "x".repeat(43);
        assert_eq!(verify_pkce(Some(&other), &c).unwrap_err().code(), "invalid_grant");
        assert_eq!(verify_pkce(Some("short"), &c).unwrap_err().code(), "invalid_request");
    }

    #[test]
    fn loopback_redirects_match_on_any_port_and_others_exactly() {
        let reg = vec!["http://127.0.0.1/callback".to_owned(), "https://app.example/cb".to_owned()];
        assert!(redirect_uri_matches(&reg, "http://127.0.0.1:49152/callback"));
        assert!(!redirect_uri_matches(&reg, "http://127.0.0.1:49152/other"));
        assert!(redirect_uri_matches(&reg, "https://app.example/cb"));
        assert!(!redirect_uri_matches(&reg, "https://app.example:8443/cb"));
        assert!(!redirect_uri_matches(&reg, "https://app.example/cb?x=1"));
    }

    #[test]
    fn registrable_redirects_are_https_or_loopback_http() {
        assert!(check_redirect_uri("https://app.example/cb").is_ok());
        assert!(check_redirect_uri("http://localhost:3000/cb").is_ok());
        assert!(check_redirect_uri("http://[::1]/cb").is_ok());
        assert!(check_redirect_uri("http://app.example/cb").is_err());
        assert!(check_redirect_uri("https://app.example/cb#frag").is_err());
        assert!(check_redirect_uri("javascript:alert(1)").is_err());
    }

    fn builtin() -> Target {
        Target::Builtin("http://t.test/mcp".to_owned())
    }

    fn server(name: &str, direct: bool) -> ServerTarget {
        let resource = if direct { format!("https://{name}.example/mcp") } else { format!("http://t.test/mcp/{name}") };
        ServerTarget { name: ServerName::parse(name).unwrap(), resource, direct }
    }

    fn tool(name: &str, access: ToolAccess) -> (ToolName, ToolAccess) {
        (ToolName::parse(name).unwrap(), access)
    }

    #[test]
    fn resource_defaults_and_unknown_is_invalid_target() {
        let known = vec!["http://t.test/mcp".to_owned()];
        assert_eq!(resolve_target(None, &known, &[]).unwrap(), builtin());
        assert_eq!(resolve_target(Some("http://t.test/mcp/"), &known, &[]).unwrap(), builtin());
        assert_eq!(resolve_target(Some("http://evil.test/mcp"), &known, &[]), Err(OAuthError::InvalidTarget));
    }

    #[test]
    fn a_registered_gateway_or_direct_servers_resource_is_a_target() {
        let known = vec!["http://t.test/mcp".to_owned()];
        let servers = [server("gh", false), server("notes", true)];
        assert_eq!(
            resolve_target(Some("http://t.test/mcp/gh"), &known, &servers).unwrap(),
            Target::Server(servers[0].clone())
        );
        assert_eq!(
            resolve_target(Some("https://notes.example/mcp/"), &known, &servers).unwrap(),
            Target::Server(servers[1].clone())
        );
        assert_eq!(resolve_target(Some("http://t.test/mcp/gone"), &known, &servers), Err(OAuthError::InvalidTarget));
    }

    #[test]
    fn admin_and_derived_scopes_are_dropped_unknown_refused() {
        let s = requested_scopes(Some("read:tasks mcp:admin scim mcp:read"), &builtin()).unwrap().scopes;
        assert_eq!(s.to_vec(), vec!["read:tasks"]);
        assert_eq!(requested_scopes(None, &builtin()).unwrap().scopes.len(), DEFAULT_SCOPES.len());
        assert_eq!(requested_scopes(Some("mcp:admin"), &builtin()).unwrap().scopes.len(), DEFAULT_SCOPES.len());
        assert_eq!(requested_scopes(Some("root"), &builtin()).unwrap_err().code(), "invalid_scope");
    }

    #[test]
    fn a_client_asking_for_nothing_of_mcp_gets_the_reads_and_execute_ticked_and_writes_unticked() {
        for scope in [None, Some("mcp:access"), Some("mcp:access read:gh")] {
            let request = requested_scopes(scope, &builtin()).unwrap();
            assert!(request.defaulted, "{scope:?}");
            assert_eq!(
                request.scopes.to_vec(),
                ["execute:mcp", "read:agents", "read:context", "read:tasks"],
                "{scope:?}"
            );
            assert!(request.scopes.iter().all(|s| !s.as_str().starts_with("write:")), "{scope:?}");
            let offer = offered_scopes(&request, &builtin(), &[]).to_vec();
            let unticked: Vec<&String> = offer.iter().filter(|s| !request.scopes.contains(s.as_str())).collect();
            assert_eq!(unticked, ["write:agents", "write:context", "write:tasks"], "{scope:?}");
        }
    }

    #[test]
    fn a_client_that_asks_for_scopes_is_offered_no_default_writes() {
        let request = requested_scopes(Some("read:tasks execute:mcp"), &builtin()).unwrap();
        assert!(!request.defaulted);
        assert_eq!(offered_scopes(&request, &builtin(), &[]).to_vec(), ["execute:mcp", "read:tasks"]);
    }

    #[test]
    fn scopes_of_another_resource_are_dropped() {
        let gh = Target::Server(server("gh", false));
        let s = requested_scopes(Some("read:tasks write:gh read:other call:gh/x execute:mcp"), &gh).unwrap().scopes;
        assert_eq!(s.to_vec(), ["call:gh/x", "execute:mcp", "write:gh"]);
        let s = requested_scopes(Some("read:tasks read:gh"), &builtin()).unwrap().scopes;
        assert_eq!(s.to_vec(), ["read:tasks"]);
        let notes = Target::Server(server("notes", true));
        assert_eq!(requested_scopes(Some("write:notes execute:mcp"), &notes).unwrap().scopes.to_vec(), ["write:notes"]);
    }

    #[test]
    fn a_server_without_a_requested_scope_gets_its_default() {
        let gh = Target::Server(server("gh", false));
        assert_eq!(requested_scopes(None, &gh).unwrap().scopes.to_vec(), ["execute:mcp", "read:gh"]);
        assert_eq!(
            requested_scopes(Some("read:tasks mcp:access"), &gh).unwrap().scopes.to_vec(),
            ["execute:mcp", "read:gh"]
        );
        let notes = Target::Server(server("notes", true));
        assert_eq!(requested_scopes(None, &notes).unwrap().scopes.to_vec(), ["read:notes"]);
    }

    #[test]
    fn the_offer_adds_implied_reads_and_the_tools_the_request_covers() {
        let gh = Target::Server(server("gh", false));
        let tools =
            [tool("list", ToolAccess::Read), tool("delete", ToolAccess::Write), tool("secret", ToolAccess::Hidden)];
        let read = requested_scopes(Some("read:gh execute:mcp"), &gh).unwrap();
        assert_eq!(offered_scopes(&read, &gh, &tools).to_vec(), ["call:gh/list", "execute:mcp", "read:gh"]);
        let write = requested_scopes(Some("write:gh"), &gh).unwrap();
        assert_eq!(
            offered_scopes(&write, &gh, &tools).to_vec(),
            ["call:gh/delete", "call:gh/list", "read:gh", "write:gh"]
        );
        let tasks = requested_scopes(Some("write:tasks"), &builtin()).unwrap();
        assert_eq!(offered_scopes(&tasks, &builtin(), &[]).to_vec(), ["read:tasks", "write:tasks"]);
    }

    #[test]
    fn approval_is_a_subset_of_the_offer_without_admin() {
        let req = requested_scopes(Some("read:tasks write:tasks"), &builtin()).unwrap();
        let offer = offered_scopes(&req, &builtin(), &[]);
        assert!(approved_scopes(&offer, &["read:tasks".to_owned()], &builtin()).is_ok());
        assert!(approved_scopes(&offer, &["read:agents".to_owned()], &builtin()).is_err());
        assert!(approved_scopes(&offer, &["mcp:admin".to_owned()], &builtin()).is_err());
        assert!(approved_scopes(&offer, &[], &builtin()).is_err());
        let gh = Target::Server(server("gh", false));
        let req = requested_scopes(Some("write:gh execute:mcp"), &gh).unwrap();
        let offer = offered_scopes(&req, &gh, &[tool("delete", ToolAccess::Write)]);
        let narrowed = approved_scopes(&offer, &["call:gh/delete".to_owned(), "execute:mcp".to_owned()], &gh);
        assert_eq!(narrowed.unwrap().to_vec(), ["call:gh/delete", "execute:mcp"]);
        assert!(approved_scopes(&offer, &["call:gh/other".to_owned()], &gh).is_err());
        assert!(approved_scopes(&offer, &["read:tasks".to_owned()], &gh).is_err());
    }

    #[test]
    fn an_expired_code_is_invalid_grant() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let challenge = s256(VERIFIER);
        let code = CodeFacts {
            client_id: "c",
            redirect_uri: "https://a/cb",
            code_challenge: &challenge,
            resource: "r",
            expires_at: code_expiry(now).unwrap(),
            used: false,
        };
        let ex = Exchange {
            client_id: "c",
            redirect_uri: Some("https://a/cb"),
            code_verifier: Some(VERIFIER),
            resource: None,
        };
        assert!(check_exchange(&code, &ex, now).is_ok());
        let later = now + Duration::seconds(CODE_TTL_SECS);
        assert_eq!(check_exchange(&code, &ex, later).unwrap_err().code(), "invalid_grant");
    }

    #[test]
    fn a_metadata_document_must_name_its_own_url() {
        let meta = ClientMetadata { redirect_uris: vec!["http://127.0.0.1/cb".into()], ..Default::default() };
        let url = "https://app.example/client.json";
        assert!(check_cimd_document(url, Some(url), &meta).is_ok());
        assert_eq!(
            check_cimd_document(url, Some("https://evil.example/c.json"), &meta).unwrap_err().code(),
            "invalid_client"
        );
        assert!(check_cimd_url("http://app.example/c.json").is_err());
        assert!(check_cimd_url("https://app.example/").is_err());
        assert!(check_cimd_url(url).is_ok());
    }

    #[test]
    fn registration_accepts_public_clients_only() {
        let ok = ClientMetadata { redirect_uris: vec!["http://127.0.0.1/cb".into()], ..Default::default() };
        assert_eq!(check_registration(&ok).unwrap().name, "127.0.0.1");
        let secret = ClientMetadata { token_endpoint_auth_method: Some("client_secret_basic".into()), ..ok.clone() };
        assert_eq!(check_registration(&secret).unwrap_err().code(), "invalid_client_metadata");
        let none = ClientMetadata::default();
        assert_eq!(check_registration(&none).unwrap_err().code(), "invalid_redirect_uri");
    }

    #[test]
    fn a_client_without_a_name_is_named_by_its_redirect_host_cut_to_the_name_bound() {
        let host = format!("{}.example", "a".repeat(150));
        let meta = ClientMetadata { redirect_uris: vec![format!("https://{host}/cb")], ..Default::default() };
        let name = check_registration(&meta).unwrap().name;
        assert_eq!(name.chars().count(), CLIENT_NAME_MAX_CHARS);
        assert!(host.starts_with(name.trim_end_matches('…')), "{name}");
    }

    #[test]
    fn a_redirect_uri_with_a_control_character_is_refused() {
        for uri in ["https://app.example/cb\u{0}", "https://app.example/c\u{7}b"] {
            assert_eq!(check_redirect_uri(uri).unwrap_err().code(), "invalid_redirect_uri", "{uri:?}");
        }
    }
}
