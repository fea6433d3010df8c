//! Alert rules (issue #17): event kinds, the webhook signature, retry backoff, which
//! webhook targets are allowed (SSRF), and the network a client address belongs to.

use std::net::IpAddr;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::net::is_public;

/// An event a webhook can receive; its wire name is [`AlertKind::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// `token.expiring`: 7 days and 1 day before expiry.
    Expiring,
    /// `token.revoked`.
    Revoked,
    /// `token.rotated`.
    Rotated,
    /// `token.grace_ending`: a rotation's grace ends within an hour.
    GraceEnding,
    /// `token.rate_limited`: the first 429 of an hour.
    RateLimited,
    /// `token.auth_failures`: a burst of 401s for one token id.
    AuthFailures,
    /// `token.new_network`: first use from a /24 or /48 not seen lately.
    NewNetwork,
    /// `token.narrowed`: the owner's allowance shrank and took scopes out of the token.
    Narrowed,
    /// `server.tool_changed`: a gateway server serves a changed definition of a pinned tool
    /// (or a new tool its policy holds); no token, the server and the tool.
    ServerToolChanged,
}

impl AlertKind {
    /// Every kind, in the published order.
    pub const ALL: [Self; 9] = [
        Self::Expiring,
        Self::Revoked,
        Self::Rotated,
        Self::GraceEnding,
        Self::RateLimited,
        Self::AuthFailures,
        Self::NewNetwork,
        Self::Narrowed,
        Self::ServerToolChanged,
    ];

    /// The kind as stored and sent (`Tessera-Event`, the body's `type`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Expiring => "token.expiring",
            Self::Revoked => "token.revoked",
            Self::Rotated => "token.rotated",
            Self::GraceEnding => "token.grace_ending",
            Self::RateLimited => "token.rate_limited",
            Self::AuthFailures => "token.auth_failures",
            Self::NewNetwork => "token.new_network",
            Self::Narrowed => "token.narrowed",
            Self::ServerToolChanged => "server.tool_changed",
        }
    }

    /// The kind of a wire name, `None` for an unknown one.
    pub fn parse(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

/// Every event kind a webhook can receive, by wire name.
pub const EVENT_KINDS: [&str; 9] = {
    let mut names = [""; 9];
    let mut i = 0;
    while i < AlertKind::ALL.len() {
        names[i] = AlertKind::ALL[i].as_str();
        i += 1;
    }
    names
};
/// Webhooks one user may have.
pub const MAX_WEBHOOKS_PER_USER: i64 = 10;
/// Longest webhook URL.
pub const MAX_URL_LEN: usize = 2000;
/// Attempts per delivery before it is marked failed.
pub const MAX_ATTEMPTS: i32 = 8;
/// Days before expiry a `token.expiring` alert is sent (once each).
pub const EXPIRING_NOTICES_DAYS: [i64; 2] = [7, 1];
/// Days a network stays "seen" for `token.new_network`.
pub const NETWORK_MEMORY_DAYS: i64 = 30;
/// Header carrying the Unix time of the delivery (signed with the body).
pub const TIMESTAMP_HEADER: &str = "Tessera-Timestamp";
/// Header carrying `v1=<hex HMAC-SHA256>`.
pub const SIGNATURE_HEADER: &str = "Tessera-Signature";
/// Header carrying the delivery's event kind.
pub const EVENT_HEADER: &str = "Tessera-Event";

/// Why a webhook definition is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookRuleViolation {
    /// Not an http(s) URL with a host, or too long.
    #[error("the webhook URL must be an http:// or https:// URL with a host, at most 2000 characters")]
    BadUrl,
    /// Points at a loopback, private or link-local address.
    #[error("the webhook URL points at a private, loopback or link-local address")]
    PrivateTarget,
    /// An unknown event kind.
    #[error("unknown event kind {0:?}")]
    UnknownEvent(String),
    /// No events.
    #[error("a webhook needs at least one event kind")]
    NoEvents,
}

/// The signature of a delivery: HMAC-SHA256 with the webhook's secret over
/// `"{timestamp}.{body}"`, hex, prefixed `v1=`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        // HMAC takes keys of any length; this branch cannot be reached.
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// How long to wait after the `attempts`-th failed attempt: `base`·4^(attempts−1), capped at
/// six hours (with the default base of 30 s: 30 s, 2 min, 8 min, 32 min, ~2 h, 6 h, 6 h).
pub fn backoff(base: Duration, attempts: i32) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 10)).unwrap_or(0);
    base.saturating_mul(4u32.saturating_pow(exp)).min(Duration::from_secs(6 * 3600))
}

/// The event kinds of a webhook, checked, sorted and without repeats.
pub fn event_set(events: Vec<String>) -> Result<Vec<String>, WebhookRuleViolation> {
    check_events(&events)?;
    let mut events = events;
    events.sort();
    events.dedup();
    Ok(events)
}

/// Checks the event kinds of a webhook.
pub fn check_events(events: &[String]) -> Result<(), WebhookRuleViolation> {
    if events.is_empty() {
        return Err(WebhookRuleViolation::NoEvents);
    }
    match events.iter().find(|e| AlertKind::parse(e).is_none()) {
        Some(unknown) => Err(WebhookRuleViolation::UnknownEvent(unknown.clone())),
        None => Ok(()),
    }
}

/// Checks a webhook URL at registration: http(s), a host, no user-info, and not a
/// loopback/private literal address or `localhost` unless local targets are allowed. (Names
/// are checked again, resolved, at every delivery.)
pub fn check_url(url: &str, allow_local: bool) -> Result<(), WebhookRuleViolation> {
    if url.len() > MAX_URL_LEN || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(WebhookRuleViolation::BadUrl);
    }
    let rest =
        url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")).ok_or(WebhookRuleViolation::BadUrl)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return Err(WebhookRuleViolation::BadUrl);
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    if host.is_empty() {
        return Err(WebhookRuleViolation::BadUrl);
    }
    if allow_local {
        return Ok(());
    }
    let host = host.to_ascii_lowercase();
    let local_name = host == "localhost" || host.ends_with(".localhost");
    let private_ip = host.parse::<IpAddr>().is_ok_and(|ip| !is_public(ip));
    if local_name || private_ip { Err(WebhookRuleViolation::PrivateTarget) } else { Ok(()) }
}

/// Whether a webhook may be delivered to `ip`: public addresses only ([`crate::net::is_public`],
/// the same guard as CIMD fetching), unless local targets are allowed
/// (`TESSERA_WEBHOOKS_ALLOW_LOCAL`).
pub fn target_allowed(ip: IpAddr, allow_local: bool) -> bool {
    allow_local || is_public(ip)
}

/// The network a client address counts as for `token.new_network`: its /24 (IPv4) or /48
/// (IPv6), e.g. `203.0.113.0/24`.
pub fn network_of(ip: &str) -> Option<String> {
    match ip.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            Some(format!("{a}.{b}.{c}.0/24"))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => network_of(&v4.to_string()),
            None => {
                let s = v6.segments();
                Some(format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2]))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_covers_timestamp_and_body() {
        let a = signature("s", 1, b"{}");
        assert!(a.starts_with("v1=") && a.len() == 67);
        assert_ne!(a, signature("s", 2, b"{}"));
        assert_ne!(a, signature("t", 1, b"{}"));
        assert_eq!(a, signature("s", 1, b"{}"));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_secs(30);
        assert_eq!(backoff(base, 1), Duration::from_secs(30));
        assert_eq!(backoff(base, 2), Duration::from_secs(120));
        assert_eq!(backoff(base, 30), Duration::from_secs(6 * 3600));
    }

    #[test]
    fn private_targets_are_refused_unless_allowed() {
        for ip in ["127.0.0.1", "10.1.2.3", "192.168.0.1", "169.254.169.254", "::1", "fd00::1", "::ffff:127.0.0.1"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!target_allowed(ip, false), "{ip}");
            assert!(target_allowed(ip, true));
        }
        assert!(target_allowed("93.184.216.34".parse().unwrap(), false));
    }

    #[test]
    fn webhook_urls_are_checked() {
        assert_eq!(check_url("https://hooks.example.com/x", false), Ok(()));
        assert_eq!(check_url("ftp://example.com", false), Err(WebhookRuleViolation::BadUrl));
        assert_eq!(check_url("https://user:pw@example.com", false), Err(WebhookRuleViolation::BadUrl));
        assert_eq!(check_url("http://127.0.0.1:9/x", false), Err(WebhookRuleViolation::PrivateTarget));
        assert_eq!(check_url("http://[::1]:9/x", false), Err(WebhookRuleViolation::PrivateTarget));
        assert_eq!(check_url("http://localhost/x", false), Err(WebhookRuleViolation::PrivateTarget));
        assert_eq!(check_url("http://127.0.0.1:9/x", true), Ok(()));
    }

    #[test]
    fn networks_are_slash_24_and_slash_48() {
        assert_eq!(network_of("203.0.113.7").as_deref(), Some("203.0.113.0/24"));
        assert_eq!(network_of("2001:db8:1:2::5").as_deref(), Some("2001:db8:1::/48"));
        assert_eq!(network_of("nonsense"), None);
    }

    #[test]
    fn every_kind_has_one_wire_name_that_parses_back() {
        for kind in AlertKind::ALL {
            assert_eq!(AlertKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EVENT_KINDS, AlertKind::ALL.map(AlertKind::as_str));
        assert_eq!(AlertKind::parse("token.nope"), None);
    }

    #[test]
    fn unknown_events_are_named() {
        assert_eq!(check_events(&["token.nope".into()]), Err(WebhookRuleViolation::UnknownEvent("token.nope".into())));
        assert_eq!(check_events(&[]), Err(WebhookRuleViolation::NoEvents));
        assert_eq!(check_events(&["token.revoked".into()]), Ok(()));
        let twice = vec!["token.revoked".to_owned(), "token.expiring".to_owned(), "token.revoked".to_owned()];
        assert_eq!(event_set(twice), Ok(vec!["token.expiring".to_owned(), "token.revoked".to_owned()]));
    }
}
