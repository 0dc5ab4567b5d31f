//! The RFC 1928 §7 UDP header parser on arbitrary datagrams: never panics, the header
//! length stays inside the datagram, and whatever parses writes back to the same header
//! (for the sources a reply can name).
#![no_main]
use eepsocks::socks::udp::{parse_udp_header, write_udp_header, ReplySource};
use eepsocks::socks::Address;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(h) = parse_udp_header(data) else {
        return;
    };
    assert!(h.header_len <= data.len());
    let _ = eepsocks::naming::classify(&h.address);
    let src = match &h.address {
        Address::Name(n) => ReplySource::Name(n),
        Address::Ipv4(a) => ReplySource::Ipv4(*a),
        Address::Ipv6(a) => ReplySource::Ipv6(*a),
    };
    let mut out = Vec::new();
    if write_udp_header(&mut out, &src, h.port).is_none() {
        // Only a name that grew past 255 bytes (invalid UTF-8 replaced) cannot be framed.
        assert!(matches!(&h.address, Address::Name(n) if n.len() > 255));
        return;
    }
    let back = parse_udp_header(&out).expect("a written header parses");
    assert_eq!((back.address, back.port, back.frag), (h.address, h.port, 0));
    assert_eq!(back.header_len, out.len());
});
