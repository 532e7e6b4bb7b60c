//! `ip("…")` patterns of line and label filters: a single address, an
//! inclusive range `a-b`, or a CIDR prefix `a/n`; IPv4 or IPv6.

use std::net::IpAddr;

/// Error text of an invalid `ip("…")` argument (Loki's `ErrIPFilterInvalidPattern`).
pub(crate) const INVALID_IP_PATTERN: &str = "ip: invalid pattern";

/// A parsed `ip("…")` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpPattern {
    /// One address.
    Single(IpAddr),
    /// Inclusive range of one family.
    Range(IpAddr, IpAddr),
    /// CIDR prefix.
    Cidr(IpAddr, u8),
}

impl IpPattern {
    /// Parses a pattern, `None` when invalid.
    pub fn parse(pattern: &str) -> Option<IpPattern> {
        if let Some((start, end)) = pattern.split_once('-') {
            let start: IpAddr = start.trim().parse().ok()?;
            let end: IpAddr = end.trim().parse().ok()?;
            let ordered = match (start, end) {
                (IpAddr::V4(a), IpAddr::V4(b)) => a <= b,
                (IpAddr::V6(a), IpAddr::V6(b)) => a <= b,
                _ => false,
            };
            return ordered.then_some(IpPattern::Range(start, end));
        }
        if let Some((addr, bits)) = pattern.split_once('/') {
            let addr: IpAddr = addr.parse().ok()?;
            let bits: u8 = bits.parse().ok()?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            return (bits <= max).then_some(IpPattern::Cidr(addr, bits));
        }
        pattern.parse().ok().map(IpPattern::Single)
    }

    /// Tests one address.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match *self {
            IpPattern::Single(single) => single == addr,
            IpPattern::Range(start, end) => match (start, end, addr) {
                (IpAddr::V4(s), IpAddr::V4(e), IpAddr::V4(a)) => s <= a && a <= e,
                (IpAddr::V6(s), IpAddr::V6(e), IpAddr::V6(a)) => s <= a && a <= e,
                _ => false,
            },
            IpPattern::Cidr(network, bits) => match (network, addr) {
                (IpAddr::V4(n), IpAddr::V4(a)) => {
                    let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
                    u32::from(n) & mask == u32::from(a) & mask
                }
                (IpAddr::V6(n), IpAddr::V6(a)) => {
                    let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
                    u128::from(n) & mask == u128::from(a) & mask
                }
                _ => false,
            },
        }
    }

    /// Tests a string value (a label value): true if it is an address in the pattern.
    pub fn matches_str(&self, value: &str) -> bool {
        value
            .trim()
            .parse::<IpAddr>()
            .is_ok_and(|addr| self.contains(addr))
    }

    /// Returns true if any address-looking token of `line` is in the pattern.
    pub fn matches_line(&self, line: &[u8]) -> bool {
        line.split(|b| !(b.is_ascii_hexdigit() || *b == b'.' || *b == b':'))
            .filter(|token| token.len() >= 2)
            .filter_map(|token| std::str::from_utf8(token).ok())
            .filter_map(|token| token.parse::<IpAddr>().ok())
            .any(|addr| self.contains(addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let single = IpPattern::parse("192.168.0.1").expect("valid");
        assert!(single.matches_str("192.168.0.1"));
        assert!(!single.matches_str("192.168.0.2"));
        let range = IpPattern::parse("192.168.0.1-192.168.0.10").expect("valid");
        assert!(range.matches_str("192.168.0.5"));
        assert!(!range.matches_str("192.168.0.11"));
        let cidr = IpPattern::parse("10.0.0.0/8").expect("valid");
        assert!(cidr.matches_str("10.1.2.3"));
        assert!(!cidr.matches_str("11.1.2.3"));
        let zero = IpPattern::parse("0.0.0.0/0").expect("valid");
        assert!(zero.matches_str("1.2.3.4"));
        let v6 = IpPattern::parse("::1/128").expect("valid");
        assert!(v6.matches_str("::1"));
        assert!(IpPattern::parse("foo").is_none());
        assert!(IpPattern::parse("10.0.0.0/33").is_none());
        assert!(IpPattern::parse("10.0.0.9-10.0.0.1").is_none());
    }

    #[test]
    fn lines() {
        let cidr = IpPattern::parse("10.0.0.0/8").expect("valid");
        assert!(cidr.matches_line(b"client=10.2.3.4 status=200"));
        assert!(!cidr.matches_line(b"client=11.2.3.4 status=200"));
        assert!(!cidr.matches_line(b""));
    }
}
