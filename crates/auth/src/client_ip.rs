//! Which address a request comes from, believing `X-Forwarded-For` only from trusted proxies
//! (`TESSERA_TRUSTED_PROXIES`).
//!
//! The address feeds the login throttle, a token's `last_used_from` and the audit log, so a
//! client that could name its own address could dodge the throttle or forge the audit trail.
//! Pure: the socket peer and the header values go in, the decision comes out.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IP network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`; a bare address is a /32
/// or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a CIDR string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an IP network in CIDR notation (e.g. 10.0.0.0/8 or 2001:db8::/32)")]
pub struct CidrError(String);

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let bad = || CidrError(s.chars().take(64).collect());
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let network: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Self { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl Cidr {
    /// Whether `ip` lies in this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The proxies whose `X-Forwarded-For` is believed; empty (the default) believes none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Trusts these networks.
    pub fn new(networks: Vec<Cidr>) -> Self {
        Self(networks)
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }

    /// The client's address: the socket peer, unless the peer is a trusted proxy; then the
    /// `X-Forwarded-For` chain (all `forwarded_for` header values, in order) is walked from
    /// the right, skipping trusted proxies, and the first other address is the client. An
    /// unparsable entry stops the walk at the last address known good, since anything left
    /// of it may be whatever the client wrote.
    pub fn client_ip<'a>(&self, peer: Option<IpAddr>, forwarded_for: impl Iterator<Item = &'a str>) -> Option<IpAddr> {
        let peer = canonical(peer?);
        if !self.trusts(peer) {
            return Some(peer);
        }
        let hops: Vec<&str> = forwarded_for.flat_map(|value| value.split(',')).collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        Some(client)
    }
}

impl TrustedProxies {
    /// The one client-address rule of every face, from the request's raw parts: the socket
    /// `peer` and the values of every `X-Forwarded-For` header (non-ASCII values ignored),
    /// as text for `last_used_from`, the audit log and the login throttle.
    pub fn client_address<'a>(
        &self,
        peer: Option<IpAddr>,
        forwarded_for: impl Iterator<Item = &'a [u8]>,
    ) -> Option<String> {
        let forwarded = forwarded_for.filter_map(|v| std::str::from_utf8(v).ok());
        self.client_ip(peer, forwarded).map(|ip| ip.to_string())
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok().map(canonical);
    }
    let (addr, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    addr.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// IPv4-mapped IPv6 (`::ffff:1.2.3.4`, what a dual-stack socket reports) as plain IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|s| s.parse().unwrap()).collect())
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let none = TrustedProxies::default();
        assert_eq!(none.client_ip(ip("203.0.113.9"), ["1.2.3.4"].into_iter()), ip("203.0.113.9"));
    }

    #[test]
    fn an_untrusted_peer_cannot_name_its_own_address() {
        let trusted = proxies(&["10.0.0.0/8"]);
        assert_eq!(trusted.client_ip(ip("203.0.113.9"), ["10.1.1.1"].into_iter()), ip("203.0.113.9"));
    }

    #[test]
    fn a_trusted_proxy_is_believed_and_the_rightmost_untrusted_hop_wins() {
        let trusted = proxies(&["10.0.0.0/8", "192.168.1.1"]);
        // The client wrote "6.6.6.6" itself; the proxies appended the real hops.
        let chain = ["6.6.6.6, 198.51.100.7", "192.168.1.1"];
        assert_eq!(trusted.client_ip(ip("10.0.0.2"), chain.into_iter()), ip("198.51.100.7"));
    }

    #[test]
    fn a_trusted_proxy_without_the_header_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8"]);
        assert_eq!(trusted.client_ip(ip("10.0.0.2"), std::iter::empty()), ip("10.0.0.2"));
    }

    #[test]
    fn garbage_in_the_chain_stops_at_the_last_good_hop() {
        let trusted = proxies(&["10.0.0.0/8"]);
        assert_eq!(trusted.client_ip(ip("10.0.0.2"), ["1.1.1.1, nonsense, 10.0.0.3"].into_iter()), ip("10.0.0.3"));
    }

    #[test]
    fn hops_with_ports_and_ipv6_are_understood() {
        let trusted = proxies(&["2001:db8::/32", "127.0.0.1"]);
        assert_eq!(trusted.client_ip(ip("::ffff:127.0.0.1"), ["198.51.100.7:4711"].into_iter()), ip("198.51.100.7"));
        assert_eq!(
            trusted.client_ip(ip("2001:db8::1"), ["[2001:db9::5]:443, 2001:db8::7"].into_iter()),
            ip("2001:db9::5")
        );
    }

    #[test]
    fn cidrs_parse_and_match() {
        let net: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.255.0.1".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0.0/", "::/129", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }
}
