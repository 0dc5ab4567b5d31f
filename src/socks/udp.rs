//! Sans-IO RFC 1928 §7 UDP request header: parse the header a client puts in front of every
//! datagram it sends to the relay, and write the one we put in front of every reply.
//!
//! ```text
//! +----+------+------+----------+----------+----------+
//! |RSV | FRAG | ATYP | DST.ADDR | DST.PORT |   DATA   |
//! +----+------+------+----------+----------+----------+
//! | 2  |  1   |  1   | Variable |    2     | Variable |
//! ```
//!
//! A datagram arrives whole, so there is no "need more": a short one is malformed. RSV is
//! ignored on input (RFC 1928 says "reserved", clients send zeros) and written as zeros.
//! FRAG is returned, not judged: dropping fragments is the relay's policy.

use super::request::{name_from_bytes, Address};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Why a datagram's header could not be parsed. The relay drops and counts these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UdpHeaderError {
    #[error("datagram shorter than its header")]
    Truncated,
    #[error("unknown address type {0:#04x}")]
    AddressType(u8),
    #[error("empty domain name")]
    EmptyName,
}

/// A parsed header; the payload is `&datagram[header_len..]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpHeader {
    pub frag: u8,
    pub address: Address,
    pub port: u16,
    /// Bytes the header took; the payload follows.
    pub header_len: usize,
}

/// Parse the header at the start of `datagram`.
pub fn parse_udp_header(datagram: &[u8]) -> Result<UdpHeader, UdpHeaderError> {
    use UdpHeaderError::Truncated;
    let fixed = datagram.get(..4).ok_or(Truncated)?;
    let (frag, atyp) = (fixed[2], fixed[3]);
    let rest = &datagram[4..];
    let (address, used) = match atyp {
        1 => {
            let b = rest.get(..4).ok_or(Truncated)?;
            (Address::Ipv4(Ipv4Addr::new(b[0], b[1], b[2], b[3])), 4)
        }
        4 => {
            let b: [u8; 16] = rest.get(..16).ok_or(Truncated)?.try_into().unwrap();
            (Address::Ipv6(Ipv6Addr::from(b)), 16)
        }
        3 => {
            let n = *rest.first().ok_or(Truncated)? as usize;
            if n == 0 {
                return Err(UdpHeaderError::EmptyName);
            }
            let name = rest.get(1..1 + n).ok_or(Truncated)?;
            (name_from_bytes(name), 1 + n)
        }
        other => return Err(UdpHeaderError::AddressType(other)),
    };
    let p = rest.get(used..used + 2).ok_or(Truncated)?;
    Ok(UdpHeader {
        frag,
        address,
        port: u16::from_be_bytes([p[0], p[1]]),
        header_len: 4 + used + 2,
    })
}

/// The source a reply's header names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplySource<'a> {
    /// A domain (ATYP 3): the sender's b32 name. At most 255 bytes.
    Name(&'a str),
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
}

/// Append a reply header (FRAG 0) naming `source:port` to `out`, then the caller appends
/// the payload. Names longer than 255 bytes cannot be framed: None, nothing appended.
pub fn write_udp_header(out: &mut Vec<u8>, source: &ReplySource<'_>, port: u16) -> Option<()> {
    match source {
        ReplySource::Name(n) => {
            let len = u8::try_from(n.len()).ok().filter(|&l| l > 0)?;
            out.extend_from_slice(&[0, 0, 0, 3, len]);
            out.extend_from_slice(n.as_bytes());
        }
        ReplySource::Ipv4(a) => {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(&a.octets());
        }
        ReplySource::Ipv6(a) => {
            out.extend_from_slice(&[0, 0, 0, 4]);
            out.extend_from_slice(&a.octets());
        }
    }
    out.extend_from_slice(&port.to_be_bytes());
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_header() {
        let mut d = vec![0, 0, 0, 3, 8];
        d.extend_from_slice(b"echo.i2p");
        d.extend_from_slice(&[0x1f, 0x90]);
        d.extend_from_slice(b"hello");
        let h = parse_udp_header(&d).unwrap();
        assert_eq!(h.frag, 0);
        assert_eq!(h.address, Address::Name("echo.i2p".into()));
        assert_eq!(h.port, 8080);
        assert_eq!(&d[h.header_len..], b"hello");
    }

    #[test]
    fn ip_headers_and_frag_are_reported_not_judged() {
        let d = [0, 0, 1, 1, 127, 0, 0, 1, 0, 53];
        let h = parse_udp_header(&d).unwrap();
        assert_eq!(
            (h.frag, h.address, h.port, h.header_len),
            (1, Address::Ipv4(Ipv4Addr::LOCALHOST), 53, 10)
        );
        let mut d = vec![0xff, 0xff, 0, 4];
        d.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        d.extend_from_slice(&[0, 7]);
        let h = parse_udp_header(&d).unwrap();
        assert_eq!(h.address, Address::Ipv6(Ipv6Addr::LOCALHOST));
        assert_eq!((h.port, h.header_len), (7, 22));
    }

    #[test]
    fn every_strict_prefix_is_truncated() {
        let mut name = vec![0, 0, 0, 3, 8];
        name.extend_from_slice(b"echo.i2p");
        name.extend_from_slice(&[0, 1]);
        let v4 = vec![0, 0, 0, 1, 10, 0, 0, 1, 0, 1];
        let mut v6 = vec![0, 0, 0, 4];
        v6.extend_from_slice(&[0; 16]);
        v6.extend_from_slice(&[0, 1]);
        for full in [name, v4, v6] {
            assert!(parse_udp_header(&full).is_ok());
            for n in 0..full.len() {
                assert_eq!(
                    parse_udp_header(&full[..n]),
                    Err(UdpHeaderError::Truncated),
                    "{:?}",
                    &full[..n]
                );
            }
        }
    }

    #[test]
    fn bad_address_types_and_empty_names() {
        assert_eq!(
            parse_udp_header(&[0, 0, 0, 2, 1, 2, 3, 4, 0, 0]),
            Err(UdpHeaderError::AddressType(2))
        );
        assert_eq!(
            parse_udp_header(&[0, 0, 0, 0]),
            Err(UdpHeaderError::AddressType(0))
        );
        assert_eq!(
            parse_udp_header(&[0, 0, 0, 3, 0, 0, 80]),
            Err(UdpHeaderError::EmptyName)
        );
    }

    #[test]
    fn invalid_utf8_names_are_replaced() {
        let d = [0, 0, 0, 3, 2, 0xff, b'a', 0, 1];
        let h = parse_udp_header(&d).unwrap();
        assert_eq!(h.address, Address::Name("\u{fffd}a".into()));
    }

    #[test]
    fn written_headers_parse_back() {
        let b32 = "a".repeat(52) + ".b32.i2p";
        let cases = [
            ReplySource::Name(&b32),
            ReplySource::Ipv4(Ipv4Addr::new(10, 1, 2, 3)),
            ReplySource::Ipv6(Ipv6Addr::LOCALHOST),
        ];
        for src in cases {
            let mut out = Vec::new();
            write_udp_header(&mut out, &src, 4242).unwrap();
            out.extend_from_slice(b"payload");
            let h = parse_udp_header(&out).unwrap();
            assert_eq!(h.frag, 0);
            assert_eq!(h.port, 4242);
            assert_eq!(&out[..2], &[0, 0]);
            assert_eq!(&out[h.header_len..], b"payload");
            match (src, h.address) {
                (ReplySource::Name(n), Address::Name(m)) => assert_eq!(n, m),
                (ReplySource::Ipv4(a), Address::Ipv4(b)) => assert_eq!(a, b),
                (ReplySource::Ipv6(a), Address::Ipv6(b)) => assert_eq!(a, b),
                other => panic!("{other:?}"),
            }
        }
        let mut d = Vec::new();
        let b32_bytes = {
            let mut v = vec![0, 0, 0, 3, 60];
            v.extend_from_slice(b32.as_bytes());
            v.extend_from_slice(&[0x10, 0x92]);
            v
        };
        write_udp_header(&mut d, &ReplySource::Name(&b32), 4242).unwrap();
        assert_eq!(d, b32_bytes);
    }

    #[test]
    fn unframable_names_write_nothing() {
        let mut out = vec![9];
        let long = "x".repeat(256);
        assert!(write_udp_header(&mut out, &ReplySource::Name(&long), 1).is_none());
        assert!(write_udp_header(&mut out, &ReplySource::Name(""), 1).is_none());
        assert_eq!(out, [9]);
    }
}
