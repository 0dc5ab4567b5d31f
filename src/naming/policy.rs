//! The policy: which SOCKS targets are I2P targets (`classify`), and why the others are
//! refused.

use super::garlicat;
use crate::socks::{Address, Reply};

/// A target that may be opened through the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `<52 base32 chars>.b32.i2p`, lowercased: a destination hash, resolved by the router.
    B32(String),
    /// An encrypted-LeaseSet address (56+ base32 chars before `.b32.i2p`): passed to the router.
    B33(String),
    /// Any other `.i2p` host name, lowercased: needs an address-book lookup.
    Name(String),
}

impl Target {
    pub fn as_str(&self) -> &str {
        match self {
            Target::B32(s) | Target::B33(s) | Target::Name(s) => s,
        }
    }
}

/// Why a target was refused before anything reached the router.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("IP address literal: an IP can never be an I2P destination; the application resolved the name itself (use remote DNS: socks5h:// or --socks5-hostname)")]
    IpLiteral,
    #[error("not an I2P name: eepsocks reaches only .i2p addresses (no clearnet, no outproxy, by design)")]
    NotI2p,
    #[error("malformed I2P name: {0}")]
    Malformed(&'static str),
    /// A name ending in .b32.i2p that is no b32 or b33 address.
    #[error("malformed I2P address: {0}")]
    BadHash(&'static str),
}

impl Refusal {
    /// What kind of target was asked for, in words: what the log says in place of the
    /// target itself, which shows at debug only.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::IpLiteral => "IP literal",
            Refusal::NotI2p => "clearnet name",
            Refusal::Malformed(_) => "malformed .i2p name",
            Refusal::BadHash(_) => "malformed .b32.i2p address",
        }
    }

    pub fn reply(&self) -> Reply {
        match self {
            Refusal::IpLiteral | Refusal::NotI2p => Reply::NotAllowed,
            // The name can never resolve: "host unreachable", as for unknown names.
            Refusal::Malformed(_) | Refusal::BadHash(_) => Reply::HostUnreachable,
        }
    }

    /// The reply on listeners with `extended_errors` (Tor's codes, docs/protocol.md).
    pub fn extended_reply(&self) -> Reply {
        match self {
            Refusal::BadHash(_) => Reply::BadAddress,
            other => other.reply(),
        }
    }
}

const MAX_NAME: usize = 255;
const MAX_LABEL: usize = 63;

pub fn classify(addr: &Address) -> Result<Target, Refusal> {
    let name = match addr {
        Address::Ipv4(_) | Address::Ipv6(_) => return Err(Refusal::IpLiteral),
        Address::Name(n) => n,
    };
    // One trailing dot is the DNS root; accept "x.i2p." like "x.i2p".
    let mut name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    // RFC 9476 reserves .alt for names outside the DNS; "x.i2p.alt" is "x.i2p" (as Java
    // I2P 2.8.1 takes it). Only after ".i2p": "x.alt" stays a clearnet-looking name.
    if name.ends_with(".i2p.alt") {
        name.truncate(name.len() - ".alt".len());
    }
    if !name.ends_with(".i2p") {
        // Names that parse as IPs are literals in disguise (SOCKS4a/5 clients do this).
        if name.parse::<std::net::IpAddr>().is_ok()
            || name
                .strip_prefix('[')
                .and_then(|n| n.strip_suffix(']'))
                .is_some_and(|n| n.parse::<std::net::Ipv6Addr>().is_ok())
        {
            return Err(Refusal::IpLiteral);
        }
        return Err(Refusal::NotI2p);
    }
    if name.len() > MAX_NAME {
        return Err(Refusal::Malformed("longer than 255 characters"));
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 || labels[0].is_empty() {
        return Err(Refusal::Malformed("no name before .i2p"));
    }
    for l in &labels {
        if l.is_empty() {
            return Err(Refusal::Malformed("empty label"));
        }
        if l.len() > MAX_LABEL {
            return Err(Refusal::Malformed("label longer than 63 characters"));
        }
        if !l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(Refusal::Malformed(
                "only letters, digits, '-' and '.' are allowed",
            ));
        }
        if l.starts_with('-') || l.ends_with('-') {
            return Err(Refusal::Malformed("label starts or ends with '-'"));
        }
    }
    // A GarliCat name (`<16 base32 chars>.oc.b32.i2p`): 80 bits name no destination, so it
    // is a name for the address book to map, not a hash for the router.
    if garlicat::bits_of_name(&name).is_some() {
        return Ok(Target::Name(name));
    }
    if let Some(hash) = name.strip_suffix(".b32.i2p") {
        let base32 = hash
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b));
        return match hash.len() {
            // 52 characters carry 260 bits for a 256-bit hash: the last one's low 4 bits are
            // padding and must be 0 (only 'a' and 'q' end a b32). Any other is a typo that
            // would otherwise cost a network lookup before failing.
            52 if base32 && !matches!(hash.as_bytes()[51], b'a' | b'q') => Err(Refusal::BadHash(
                "not a b32 address: its last character sets padding bits (a typo?)",
            )),
            52 if base32 => Ok(Target::B32(name)),
            n if n >= 56 && base32 => Ok(Target::B33(name)),
            // No such thing: as a plain name an address book could map it anywhere, and
            // an application would take it for the b32 it ends with.
            _ if hash.contains('.') => {
                Err(Refusal::BadHash("a .b32.i2p address has no subdomains"))
            }
            _ => Err(Refusal::BadHash(
                "a .b32.i2p address has 52 base32 characters (56 or more for b33)",
            )),
        };
    }
    Ok(Target::Name(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn n(s: &str) -> Result<Target, Refusal> {
        classify(&Address::Name(s.to_string()))
    }

    const H: &str = "ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq";

    #[test]
    fn i2p_targets() {
        assert_eq!(
            n(&format!("{H}.b32.i2p")),
            Ok(Target::B32(format!("{H}.b32.i2p")))
        );
        assert_eq!(
            n(&format!("{}.B32.I2P", H.to_uppercase())),
            Ok(Target::B32(format!("{H}.b32.i2p")))
        );
        let b33 = "a".repeat(56) + ".b32.i2p";
        assert_eq!(n(&b33), Ok(Target::B33(b33.clone())));
        assert_eq!(n("Example.I2P"), Ok(Target::Name("example.i2p".into())));
        assert_eq!(
            n("forum.example.i2p."),
            Ok(Target::Name("forum.example.i2p".into()))
        );
        assert_eq!(n("x-y.i2p"), Ok(Target::Name("x-y.i2p".into())));
    }

    /// RFC 9476 `.alt`: the same targets as without it.
    #[test]
    fn alt_suffix_is_stripped() {
        assert_eq!(n("demo.i2p.alt"), Ok(Target::Name("demo.i2p".into())));
        assert_eq!(n("Demo.I2P.ALT."), Ok(Target::Name("demo.i2p".into())));
        assert_eq!(
            n("forum.example.i2p.alt"),
            Ok(Target::Name("forum.example.i2p".into()))
        );
        assert_eq!(
            n(&format!("{H}.b32.i2p.alt")),
            Ok(Target::B32(format!("{H}.b32.i2p")))
        );
        let b33 = "a".repeat(56) + ".b32.i2p";
        assert_eq!(n(&(b33.clone() + ".alt")), Ok(Target::B33(b33)));
    }

    /// `<16 chars>.oc.b32.i2p` is a GarliCat name for the address book, not a hash.
    #[test]
    fn garlicat_names() {
        assert_eq!(
            n("37O6QVQKZLG6JHU7.oc.b32.i2p"),
            Ok(Target::Name("37o6qvqkzlg6jhu7.oc.b32.i2p".into()))
        );
        assert!(matches!(
            n("37o6qvqkzlg6jhu.oc.b32.i2p"),
            Err(Refusal::BadHash(_))
        ));
        assert!(matches!(
            n("37o6qvqkzlg6jhu1.oc.b32.i2p"),
            Err(Refusal::BadHash(_))
        ));
    }

    #[test]
    fn refusals() {
        // Subdomains of a b32 do not exist; as names they could be mapped anywhere.
        for sub in [format!("www.{H}.b32.i2p"), "a.b.b32.i2p".to_string()] {
            assert!(matches!(n(&sub), Err(Refusal::BadHash(_))), "{sub}");
        }
        assert_eq!(
            classify(&Address::Ipv4(Ipv4Addr::new(10, 0, 0, 1))),
            Err(Refusal::IpLiteral)
        );
        assert_eq!(
            classify(&Address::Ipv6(Ipv6Addr::LOCALHOST)),
            Err(Refusal::IpLiteral)
        );
        assert_eq!(n("127.0.0.1"), Err(Refusal::IpLiteral));
        assert_eq!(n("[::1]"), Err(Refusal::IpLiteral));
        assert_eq!(n("example.com"), Err(Refusal::NotI2p));
        assert_eq!(n("localhost"), Err(Refusal::NotI2p));
        assert_eq!(n(""), Err(Refusal::NotI2p));
        assert_eq!(n("i2p"), Err(Refusal::NotI2p));
        assert_eq!(n("x.alt"), Err(Refusal::NotI2p));
        assert_eq!(n("i2p.alt"), Err(Refusal::NotI2p));
        assert_eq!(n("x.i2p.alt.alt"), Err(Refusal::NotI2p));
        assert!(matches!(n(".i2p.alt"), Err(Refusal::Malformed(_))));
        assert!(matches!(
            n(&format!("www.{H}.b32.i2p.alt")),
            Err(Refusal::BadHash(_))
        ));
        assert!(matches!(n(".i2p"), Err(Refusal::Malformed(_))));
        assert!(matches!(n("a..i2p"), Err(Refusal::Malformed(_))));
        assert!(matches!(n("a b.i2p"), Err(Refusal::Malformed(_))));
        assert!(matches!(n("-a.i2p"), Err(Refusal::Malformed(_))));
        assert!(matches!(n("\u{fffd}.i2p"), Err(Refusal::Malformed(_))));
        assert!(matches!(
            n(&("a".repeat(64) + ".i2p")),
            Err(Refusal::Malformed(_))
        ));
        assert!(matches!(n("abc.b32.i2p"), Err(Refusal::BadHash(_))));
        assert!(matches!(
            n(&("1".repeat(52) + ".b32.i2p")),
            Err(Refusal::BadHash(_))
        ));
        // The padding bits of the 52nd character: only 'a' and 'q' leave them clear.
        let stem = &H[..51];
        for last in ['b', 'p', 'r', 'z', '2', '7'] {
            let bad = format!("{stem}{last}.b32.i2p");
            assert!(matches!(n(&bad), Err(Refusal::BadHash(_))), "{bad}");
        }
        for last in ['a', 'q'] {
            let good = format!("{stem}{last}.b32.i2p");
            assert_eq!(n(&good), Ok(Target::B32(good.clone())));
        }
        let long = vec!["a".repeat(60); 5].join(".") + ".i2p";
        assert!(matches!(n(&long), Err(Refusal::Malformed(_))));
        assert_eq!(Refusal::IpLiteral.reply(), Reply::NotAllowed);
        assert_eq!(Refusal::NotI2p.reply(), Reply::NotAllowed);
        assert_eq!(Refusal::Malformed("x").reply(), Reply::HostUnreachable);
        assert_eq!(Refusal::BadHash("x").reply(), Reply::HostUnreachable);
        assert_eq!(Refusal::BadHash("x").extended_reply(), Reply::BadAddress);
        assert_eq!(Refusal::NotI2p.extended_reply(), Reply::NotAllowed);
    }
}
