//! Which addresses Tessera may call on someone's say-so (SSRF): the one guard behind alert
//! webhooks and OAuth client metadata (CIMD) fetching.
//!
//! An address is public when it is globally reachable unicast. Anything that is not, or that
//! reaches an IPv4 address through an IPv6 translation prefix (IPv4-mapped, NAT64, 6to4),
//! is judged by the address it really reaches; prefixes whose embedded address can't be
//! recovered (Teredo, local-use NAT64) are refused outright.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` is a public unicast address a request may be sent to.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let not_public = a == 0 // "this network", 0.0.0.0/8
        || a == 10 // private
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT), 100.64.0.0/10
        || a == 127 // loopback
        || (a == 169 && b == 254) // link-local
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments, 192.0.0.0/24
        || (a == 192 && b == 0 && c == 2) // documentation (TEST-NET-1)
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast (deprecated)
        || (a == 192 && b == 168) // private
        || (a == 198 && (b == 18 || b == 19)) // benchmarking, 198.18.0.0/15
        || (a == 198 && b == 51 && c == 100) // documentation (TEST-NET-2)
        || (a == 203 && b == 0 && c == 113) // documentation (TEST-NET-3)
        || a >= 224; // multicast 224.0.0.0/4, reserved 240.0.0.0/4, broadcast
    !not_public
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    // IPv4-mapped ::ffff:0:0/96 reaches the IPv4 address itself.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    // Well-known NAT64 prefix 64:ff9b::/96 (RFC 6052): the last 32 bits.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(embedded(s[6], s[7]));
    }
    // 6to4 2002::/16 (RFC 3056): bits 16..48.
    if s[0] == 0x2002 {
        return is_public_v4(embedded(s[1], s[2]));
    }
    // Only global unicast 2000::/3 is left to be public. That excludes, among others,
    // ::/96 (unspecified, loopback, IPv4-compatible), 64:ff9b:1::/48 (local-use NAT64,
    // RFC 8215: its embedding depends on the local prefix length), 100::/64 (discard),
    // fc00::/7 (unique local), fe80::/10 (link-local), fec0::/10 and ff00::/8 (multicast).
    if s[0] & 0xe000 != 0x2000 {
        return false;
    }
    // IETF protocol assignments 2001::/23 (Teredo, benchmarking, ORCHID) and documentation
    // 2001:db8::/32; documentation 3fff::/20 (RFC 9637).
    let ietf_or_documentation = s[0] == 0x2001 && (s[1] < 0x0200 || s[1] == 0x0db8);
    let not_public = ietf_or_documentation || (s[0] & 0xfff0) == 0x3ff0;
    !not_public
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(s: &str) -> bool {
        is_public(s.parse().unwrap())
    }

    #[test]
    fn global_unicast_addresses_are_public() {
        for ip in ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700::1111", "2a00:1450:4001::1", "2001:4860::8888"] {
            assert!(public(ip), "{ip}");
        }
    }

    #[test]
    fn private_loopback_and_link_local_ipv4_are_not_public() {
        for ip in ["10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "127.0.0.1", "169.254.169.254"] {
            assert!(!public(ip), "{ip}");
        }
        assert!(public("172.32.0.1"));
    }

    #[test]
    fn special_purpose_ipv4_ranges_are_not_public() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.0.8",
            "198.18.0.1",
            "198.19.255.255",
            "192.0.2.1",
            "198.51.100.1",
            "203.0.113.1",
            "192.88.99.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!public(ip), "{ip}");
        }
        assert!(public("100.128.0.1") && public("198.20.0.1"));
    }

    #[test]
    fn special_purpose_ipv6_ranges_are_not_public() {
        for ip in [
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "100::1",
            "2001:db8::1",
            "3fff::1",
            "2001::1",
            "2001:2::1",
        ] {
            assert!(!public(ip), "{ip}");
        }
    }

    #[test]
    fn ipv4_compatible_addresses_are_not_public_whatever_they_embed() {
        assert!(!public("::8.8.8.8"));
        assert!(!public("::127.0.0.1"));
    }

    #[test]
    fn ipv4_mapped_addresses_are_judged_by_their_ipv4_address() {
        assert!(!public("::ffff:127.0.0.1"));
        assert!(!public("::ffff:10.0.0.1"));
        assert!(!public("::ffff:198.18.0.1"));
        assert!(public("::ffff:93.184.216.34"));
    }

    #[test]
    fn nat64_addresses_are_judged_by_their_ipv4_address() {
        assert!(!public("64:ff9b::127.0.0.1"));
        assert!(!public("64:ff9b::a9fe:a9fe"), "169.254.169.254");
        assert!(public("64:ff9b::93.184.216.34"));
    }

    #[test]
    fn local_use_nat64_addresses_are_not_public() {
        assert!(!public("64:ff9b:1::93.184.216.34"));
        assert!(!public("64:ff9b:1:ffff::1"));
    }

    #[test]
    fn six_to_four_addresses_are_judged_by_their_ipv4_address() {
        assert!(!public("2002:7f00:1::1"), "127.0.0.1");
        assert!(!public("2002:a00:1::"), "10.0.0.1");
        assert!(!public("2002:a9fe:a9fe::1"), "169.254.169.254");
        assert!(public("2002:5db8:d822::1"), "93.184.216.34");
    }
}
