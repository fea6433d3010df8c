//! Value types of a registered upstream server (its URL, its credential headers, its tools'
//! classes) and the rule that decides what a token may do with one of its tools.

use std::fmt;

use crate::catalog::ServerName;
use crate::scope::ScopeSet;

/// Longest upstream URL, in bytes.
pub const URL_MAX_LEN: usize = 2048;
/// Longest header name, in bytes.
pub const HEADER_NAME_MAX_LEN: usize = 100;
/// Longest header value, in bytes.
pub const HEADER_VALUE_MAX_LEN: usize = 4096;
/// Most headers one server may have.
pub const HEADERS_MAX: usize = 20;

/// Headers the gateway itself sets or passes from the client; configuring them would break
/// the protocol or smuggle a second body length.
pub const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-connection",
    "accept",
    "content-type",
    "last-event-id",
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
];

/// A refused registration value; the variant names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidUpstream {
    /// Not an absolute http(s) URL within bounds.
    #[error("url must be an absolute http:// or https:// URL of at most {URL_MAX_LEN} characters, without spaces")]
    Url,
    /// Not `Name: value`, or a name outside the token charset, or a value with control characters.
    #[error(
        "a header must be `Name: value` with a name of at most {HEADER_NAME_MAX_LEN} token characters and a value of at most {HEADER_VALUE_MAX_LEN} visible characters"
    )]
    Header,
    /// A header the gateway owns.
    #[error("the `{0}` header is set by the gateway and cannot be configured")]
    ReservedHeader(String),
    /// The same header twice.
    #[error("the `{0}` header is given twice")]
    DuplicateHeader(String),
    /// Too many headers.
    #[error("at most {HEADERS_MAX} headers")]
    TooManyHeaders,
    /// Not `read`, `write` or `hidden`.
    #[error("access must be read, write or hidden")]
    Access,
}

/// Why a registration or change of a direct server (one that checks tokens itself) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectServerViolation {
    /// Tessera never calls a direct server, so headers for it would be secrets kept for nothing.
    #[error("a direct server takes no upstream headers: Tessera never calls it")]
    Headers,
    /// A direct server's URL is the `aud` of its tokens: a new URL leaves them useless for it.
    #[error(
        "a direct server's URL is the audience (aud) of its tokens: changing it leaves {tokens} active token(s) useless for it (their holders need new ones); repeat with invalidate_tokens to change it anyway"
    )]
    UrlIsAudience {
        /// Active tokens with the server's scopes, which name the old URL.
        tokens: u64,
    },
}

/// What a change to a direct server may do: no headers; a new URL only when the caller said
/// it knows that tokens naming the old one stop working for it (`invalidate_tokens`).
/// `affected` counts the active tokens with the server's scopes.
pub fn check_direct_change(
    current_url: &str,
    new_url: Option<&UpstreamUrl>,
    new_headers: Option<&[UpstreamHeader]>,
    invalidate_tokens: bool,
    affected: u64,
) -> Result<(), DirectServerViolation> {
    if new_headers.is_some_and(|h| !h.is_empty()) {
        return Err(DirectServerViolation::Headers);
    }
    let moves = new_url.is_some_and(|u| u.as_str() != current_url);
    if moves && !invalidate_tokens {
        return Err(DirectServerViolation::UrlIsAudience { tokens: affected });
    }
    Ok(())
}

/// An upstream's Streamable HTTP endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamUrl(String);

impl UpstreamUrl {
    /// Parses an absolute http(s) URL with a host.
    pub fn parse(s: &str) -> Result<Self, InvalidUpstream> {
        let s = s.trim();
        let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")).ok_or(InvalidUpstream::Url)?;
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if s.len() > URL_MAX_LEN
            || host.is_empty()
            || host.contains('@')
            || s.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(InvalidUpstream::Url);
        }
        Ok(Self(s.to_owned()))
    }

    /// The URL's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A header sent to the upstream (a credential, usually). `Debug` hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamHeader {
    name: String,
    value: String,
}

impl fmt::Debug for UpstreamHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamHeader").field("name", &self.name).field("value", &"[redacted]").finish()
    }
}

// Opened values are kept in memory (the gateway's registry cache): wiped when dropped.
impl Drop for UpstreamHeader {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.value);
    }
}

impl UpstreamHeader {
    /// Parses `Name: value`; the name is kept lower-case.
    pub fn parse(line: &str) -> Result<Self, InvalidUpstream> {
        let (name, value) = line.split_once(':').ok_or(InvalidUpstream::Header)?;
        Self::new(name, value)
    }

    /// A header from its name and value.
    pub fn new(name: &str, value: &str) -> Result<Self, InvalidUpstream> {
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        let name_ok = !name.is_empty()
            && name.len() <= HEADER_NAME_MAX_LEN
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+.^_`|~-".contains(&b));
        let value_ok = !value.is_empty()
            && value.len() <= HEADER_VALUE_MAX_LEN
            && value.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
        if !name_ok || !value_ok {
            return Err(InvalidUpstream::Header);
        }
        if RESERVED_HEADERS.contains(&name.as_str()) {
            return Err(InvalidUpstream::ReservedHeader(name));
        }
        Ok(Self { name, value: value.to_owned() })
    }

    /// The lower-case name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value: to be sealed or sent upstream, never logged or returned.
    pub fn expose_value(&self) -> &str {
        &self.value
    }
}

/// Checks a whole header list: bounded, no name twice.
pub fn check_headers(headers: &[UpstreamHeader]) -> Result<(), InvalidUpstream> {
    if headers.len() > HEADERS_MAX {
        return Err(InvalidUpstream::TooManyHeaders);
    }
    for (i, h) in headers.iter().enumerate() {
        if headers.iter().skip(i.saturating_add(1)).any(|o| o.name == h.name) {
            return Err(InvalidUpstream::DuplicateHeader(h.name.clone()));
        }
    }
    Ok(())
}

/// A tool's class: what `read:S` and `write:S` say about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolAccess {
    /// Listed and callable with `read:S`.
    Read,
    /// Needs `write:S` (or `call:S/TOOL`).
    Write,
    /// Never listed, never callable.
    Hidden,
}

impl ToolAccess {
    /// Parses `read`, `write` or `hidden`.
    pub fn parse(s: &str) -> Result<Self, InvalidUpstream> {
        match s {
            "read" => Ok(Self::Read),
            "write" => Ok(Self::Write),
            "hidden" => Ok(Self::Hidden),
            _ => Err(InvalidUpstream::Access),
        }
    }

    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Hidden => "hidden",
        }
    }

    /// The class in force: the admin's override, else read when the upstream says the tool
    /// is read-only (`readOnlyHint: true`), else write.
    pub fn effective(overridden: Option<Self>, read_only_hint: Option<bool>) -> Self {
        overridden.unwrap_or(if read_only_hint == Some(true) { Self::Read } else { Self::Write })
    }
}

/// Whether a token with `effective` scopes may list and call `tool` of `server`, whose class
/// is `access`; on refusal, the scope that would allow it (for `WWW-Authenticate`'s `scope=`).
/// Calling also needs `execute:mcp`; that check is the caller's, as on the built-in server.
pub fn tool_permission(
    effective: &ScopeSet,
    server: &ServerName,
    tool: &str,
    access: ToolAccess,
) -> Result<(), Option<String>> {
    if access == ToolAccess::Hidden {
        return Err(None);
    }
    let call = format!("call:{server}/{tool}");
    let read = format!("read:{server}");
    let write = format!("write:{server}");
    let allowed =
        effective.covers(&call) || effective.covers(&write) || (access == ToolAccess::Read && effective.covers(&read));
    if allowed {
        Ok(())
    } else if access == ToolAccess::Read {
        Err(Some(read))
    } else {
        Err(Some(write))
    }
}

/// The first MCP protocol version of the stateless era (no `initialize`, no session).
pub const STATELESS_ERA: &str = "2026-07-28";
/// The newest version of the handshake era, which a 2025-era upstream may speak.
pub const LAST_HANDSHAKE_ERA: &str = "2025-11-25";

/// A client's stateless-era request an upstream refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EraMismatch {
    /// The version the client asked for.
    pub requested: String,
}

impl EraMismatch {
    /// What the client is told: both versions, and how to get through.
    pub fn message(&self) -> String {
        format!(
            "Unsupported protocol version: the upstream server does not speak MCP {} (it refused the \
             request without an initialize); this gateway does not translate between protocol eras: \
             connect with {LAST_HANDSHAKE_ERA} and initialize first",
            self.requested
        )
    }
}

/// Whether an upstream's HTTP 400 to a request without a session means it is of the handshake
/// era (it wants an `initialize` first) while the client speaks the stateless era: the
/// gateway then answers a clear JSON-RPC error instead of the upstream's "not initialized".
pub fn era_mismatch(client_version: Option<&str>, has_session: bool, upstream_status: u16) -> Option<EraMismatch> {
    let version = client_version?.trim();
    let well_formed = version.len() == 10
        && version.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    (well_formed && version >= STATELESS_ERA && !has_session && upstream_status == 400)
        .then(|| EraMismatch { requested: version.to_owned() })
}

/// Where person `user` connects their own credential for server `name` (the UI's
/// Connections page), under the public URL `public` (no trailing slash). A link for one
/// person names them: anyone else signed in who opens it is refused.
pub fn connect_url(public: &str, name: &str, user: Option<uuid::Uuid>) -> String {
    match user {
        Some(user) => format!("{public}/#/connections/{name}?for={user}"),
        None => format!("{public}/#/connections/{name}"),
    }
}

#[cfg(test)]
mod direct_tests {
    use super::*;

    const URL: &str = "https://notes.example.com/mcp";

    #[test]
    fn a_direct_server_takes_no_headers_but_an_empty_set_is_fine() {
        let h = [UpstreamHeader::new("X-Key", "v").unwrap()];
        assert_eq!(check_direct_change(URL, None, Some(&h), true, 0), Err(DirectServerViolation::Headers));
        assert_eq!(check_direct_change(URL, None, Some(&[]), false, 0), Ok(()));
    }

    #[test]
    fn moving_a_direct_server_needs_the_caller_to_accept_invalidating_its_tokens() {
        let moved = UpstreamUrl::parse("https://notes2.example.com/mcp").unwrap();
        assert_eq!(
            check_direct_change(URL, Some(&moved), None, false, 3),
            Err(DirectServerViolation::UrlIsAudience { tokens: 3 })
        );
        assert_eq!(check_direct_change(URL, Some(&moved), None, true, 3), Ok(()));
        let same = UpstreamUrl::parse(URL).unwrap();
        assert_eq!(check_direct_change(URL, Some(&same), None, false, 3), Ok(()), "the same URL moves nothing");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn effective(s: &str) -> ScopeSet {
        ScopeSet::parse_lenient(s).expand()
    }

    fn gh() -> ServerName {
        ServerName::parse("gh").unwrap()
    }

    #[test]
    fn a_stateless_era_client_refused_without_a_session_is_an_era_mismatch() {
        let m = era_mismatch(Some("2026-07-28"), false, 400).unwrap();
        assert_eq!(m.requested, "2026-07-28");
        assert!(m.message().contains("2026-07-28") && m.message().contains(LAST_HANDSHAKE_ERA));
    }

    #[test]
    fn handshake_era_clients_sessions_and_other_answers_are_not_era_mismatches() {
        assert_eq!(era_mismatch(Some("2025-11-25"), false, 400), None);
        assert_eq!(era_mismatch(None, false, 400), None);
        assert_eq!(era_mismatch(Some("2026-07-28"), true, 400), None);
        assert_eq!(era_mismatch(Some("2026-07-28"), false, 200), None);
        assert_eq!(era_mismatch(Some("2026-07-28"), false, 404), None);
        assert_eq!(era_mismatch(Some("garbage-2027"), false, 400), None);
    }

    #[test]
    fn urls_must_be_absolute_http_with_a_host() {
        assert!(UpstreamUrl::parse("http://127.0.0.1:3001/mcp").is_ok());
        assert!(UpstreamUrl::parse("https://example.com/mcp?x=1").is_ok());
        for bad in ["ftp://x", "http://", "/mcp", "http://a b/", "http://user:pw@host/"] {
            assert_eq!(UpstreamUrl::parse(bad), Err(InvalidUpstream::Url), "{bad}");
        }
    }

    #[test]
    fn headers_parse_as_lowercase_name_and_trimmed_value() {
        let h = UpstreamHeader::parse("X-Api-Key:  abc def ").unwrap();
        assert_eq!((h.name(), h.expose_value()), ("x-api-key", "abc def"));
        assert!(UpstreamHeader::parse("Authorization: Bearer up").is_ok());
    }

    #[test]
    fn malformed_or_reserved_headers_are_refused() {
        assert_eq!(UpstreamHeader::parse("no colon"), Err(InvalidUpstream::Header));
        assert_eq!(UpstreamHeader::parse("X-A: line\nbreak"), Err(InvalidUpstream::Header));
        assert_eq!(UpstreamHeader::parse("Bad Name: v"), Err(InvalidUpstream::Header));
        assert!(matches!(UpstreamHeader::parse("Host: evil"), Err(InvalidUpstream::ReservedHeader(_))));
        assert!(matches!(UpstreamHeader::parse("Mcp-Session-Id: x"), Err(InvalidUpstream::ReservedHeader(_))));
    }

    #[test]
    fn a_header_list_names_each_header_once() {
        let a = UpstreamHeader::parse("X-A: 1").unwrap();
        let b = UpstreamHeader::parse("x-a: 2").unwrap();
        assert_eq!(check_headers(&[a, b]), Err(InvalidUpstream::DuplicateHeader("x-a".into())));
    }

    #[test]
    fn header_debug_hides_the_value() {
        let h = UpstreamHeader::parse("X-Api-Key: s3cr3t").unwrap();
        assert!(!format!("{h:?}").contains("s3cr3t"));
    }

    #[test]
    fn a_tools_class_is_the_override_else_its_read_only_hint() {
        assert_eq!(ToolAccess::effective(None, Some(true)), ToolAccess::Read);
        assert_eq!(ToolAccess::effective(None, Some(false)), ToolAccess::Write);
        assert_eq!(ToolAccess::effective(None, None), ToolAccess::Write);
        assert_eq!(ToolAccess::effective(Some(ToolAccess::Hidden), Some(true)), ToolAccess::Hidden);
    }

    #[test]
    fn read_scope_allows_read_tools_only() {
        let e = effective("read:gh");
        assert_eq!(tool_permission(&e, &gh(), "list", ToolAccess::Read), Ok(()));
        assert_eq!(tool_permission(&e, &gh(), "delete", ToolAccess::Write), Err(Some("write:gh".into())));
    }

    #[test]
    fn write_scope_allows_every_visible_tool() {
        let e = effective("write:gh");
        assert_eq!(tool_permission(&e, &gh(), "delete", ToolAccess::Write), Ok(()));
        assert_eq!(tool_permission(&e, &gh(), "list", ToolAccess::Read), Ok(()));
    }

    #[test]
    fn call_scope_allows_that_tool_only() {
        let e = effective("call:gh/delete");
        assert_eq!(tool_permission(&e, &gh(), "delete", ToolAccess::Write), Ok(()));
        assert_eq!(tool_permission(&e, &gh(), "list", ToolAccess::Read), Err(Some("read:gh".into())));
    }

    #[test]
    fn hidden_tools_are_refused_even_to_admin() {
        let e = effective("mcp:admin");
        assert_eq!(tool_permission(&e, &gh(), "secret", ToolAccess::Hidden), Err(None));
        assert_eq!(tool_permission(&e, &gh(), "any", ToolAccess::Write), Ok(()));
    }

    #[test]
    fn another_servers_scopes_allow_nothing_here() {
        let e = effective("write:other call:other/list");
        assert_eq!(tool_permission(&e, &gh(), "list", ToolAccess::Read), Err(Some("read:gh".into())));
    }
}
