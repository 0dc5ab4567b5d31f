//! Raw-byte vectors for every message and reply, every prefix fed, and no-panic properties.

use super::*;
use hex_literal::hex;
use proptest::prelude::*;

/// What a driver saw: the replies sent, and how the handshake ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Finished(Request, Vec<u8>),
    Rejected(HandshakeError),
    /// Input ran out with the handshake still wanting more.
    Starved,
}

/// Drive a handshake the way the server does, delivering `input` in chunks of `chunk` bytes.
fn drive(input: &[u8], chunk: usize) -> (Vec<Vec<u8>>, End) {
    let mut hs = Handshake::new();
    let mut buf = Vec::new();
    let mut fed = 0;
    let mut replies = Vec::new();
    for _ in 0..10_000 {
        match hs.step(&buf) {
            Step::NeedMore => {
                if fed == input.len() {
                    return (replies, End::Starved);
                }
                let n = chunk.min(input.len() - fed);
                buf.extend_from_slice(&input[fed..fed + n]);
                fed += n;
            }
            Step::Reply { consumed, reply } => {
                assert!(
                    consumed > 0 && consumed <= buf.len(),
                    "bad drain {consumed}"
                );
                buf.drain(..consumed);
                replies.push(reply);
            }
            Step::Finished { consumed, request } => {
                buf.drain(..consumed);
                buf.extend_from_slice(&input[fed..]);
                return (replies, End::Finished(request, buf));
            }
            Step::Reject { reply, error } => {
                if !reply.is_empty() {
                    replies.push(reply);
                }
                return (replies, End::Rejected(error));
            }
        }
    }
    panic!("handshake did not terminate");
}

/// Drive with every chunk size from 1 to the whole input; all must agree.
fn drive_all(input: &[u8]) -> (Vec<Vec<u8>>, End) {
    let whole = drive(input, input.len().max(1));
    for chunk in 1..input.len().max(1) {
        assert_eq!(drive(input, chunk), whole, "chunk size {chunk} disagrees");
    }
    whole
}

/// A single message: every strict prefix must ask for more, in the given starting state.
fn assert_prefixes_need_more(prefix_state: &[u8], msg: &[u8]) {
    for cut in 0..msg.len() {
        let mut hs = Handshake::new();
        let mut buf = prefix_state.to_vec();
        // bring the handshake into the state where `msg` is expected
        loop {
            match hs.step(&buf) {
                Step::Reply { consumed, .. } => {
                    buf.drain(..consumed);
                }
                Step::NeedMore => break,
                other => panic!("setup bytes ended the handshake: {other:?}"),
            }
            if buf.is_empty() {
                break;
            }
        }
        assert!(buf.is_empty());
        assert_eq!(
            hs.step(&msg[..cut]),
            Step::NeedMore,
            "prefix of {} bytes of {:02x?}",
            cut,
            msg
        );
    }
}

fn name(s: &str) -> Address {
    Address::Name(s.to_string())
}

fn creds(u: &[u8], p: &[u8]) -> Option<Credentials> {
    Some(Credentials {
        username: u.to_vec(),
        password: p.to_vec(),
    })
}

const B32: &str = "ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p";

// ---------------------------------------------------------------- SOCKS5

const GREETING_NOAUTH: [u8; 3] = hex!("05 01 00");
const GREETING_BOTH: [u8; 4] = hex!("05 02 00 02");

fn s5_name_request(cmd: u8, host: &str, port: u16) -> Vec<u8> {
    let mut v = vec![5, cmd, 0, 3, host.len() as u8];
    v.extend_from_slice(host.as_bytes());
    v.extend_from_slice(&port.to_be_bytes());
    v
}

#[test]
fn socks5_noauth_connect_name() {
    let req = s5_name_request(1, "example.i2p", 80);
    let mut all = GREETING_NOAUTH.to_vec();
    all.extend_from_slice(&req);
    let (replies, end) = drive_all(&all);
    assert_eq!(replies, vec![hex!("05 00").to_vec()]);
    let End::Finished(r, rest) = end else {
        panic!("{end:?}")
    };
    assert_eq!(r.version, Version::V5);
    assert_eq!(r.command, Command::Connect);
    assert_eq!(r.address, name("example.i2p"));
    assert_eq!(r.port, 80);
    assert_eq!(r.credentials, None);
    assert!(rest.is_empty());
    assert_prefixes_need_more(&[], &GREETING_NOAUTH);
    assert_prefixes_need_more(&GREETING_NOAUTH, &req);
}

#[test]
fn socks5_pipelined_payload_is_kept() {
    let mut all = GREETING_NOAUTH.to_vec();
    all.extend_from_slice(&s5_name_request(1, B32, 8080));
    all.extend_from_slice(b"GET / HTTP/1.0\r\n\r\n");
    let (_, end) = drive(&all, all.len());
    let End::Finished(r, rest) = end else {
        panic!("{end:?}")
    };
    assert_eq!(r.address, name(B32));
    assert_eq!(r.port, 8080);
    assert_eq!(rest, b"GET / HTTP/1.0\r\n\r\n");
    // also when the payload trickles in with the request
    for chunk in 1..8 {
        let (_, end2) = drive(&all, chunk);
        let End::Finished(_, rest2) = end2 else {
            panic!()
        };
        assert_eq!(rest2, b"GET / HTTP/1.0\r\n\r\n", "chunk {chunk}");
    }
}

#[test]
fn socks5_userpass_preferred_and_kept() {
    let auth = hex!("01 05 616c696365 09 73776f726466697368"); // alice / swordfish
    let req = s5_name_request(1, "irc.postman.i2p", 6667);
    let mut all = GREETING_BOTH.to_vec();
    all.extend_from_slice(&auth);
    all.extend_from_slice(&req);
    let (replies, end) = drive_all(&all);
    assert_eq!(
        replies,
        vec![hex!("05 02").to_vec(), hex!("01 00").to_vec()]
    );
    let End::Finished(r, _) = end else {
        panic!("{end:?}")
    };
    assert_eq!(r.credentials, creds(b"alice", b"swordfish"));
    assert_eq!(r.port, 6667);
    assert_prefixes_need_more(&GREETING_BOTH, &auth);
}

#[test]
fn socks5_userpass_empty_fields_accepted() {
    let mut all = hex!("05 01 02").to_vec();
    all.extend_from_slice(&hex!("01 00 00"));
    all.extend_from_slice(&s5_name_request(1, "a.i2p", 1));
    let (replies, end) = drive_all(&all);
    assert_eq!(
        replies,
        vec![hex!("05 02").to_vec(), hex!("01 00").to_vec()]
    );
    let End::Finished(r, _) = end else {
        panic!("{end:?}")
    };
    assert_eq!(r.credentials, creds(b"", b""));
}

#[test]
fn socks5_bad_auth_version() {
    let all = hex!("05 01 02  02 01 61 01 62");
    let (replies, end) = drive_all(&all);
    assert_eq!(
        replies,
        vec![hex!("05 02").to_vec(), hex!("01 01").to_vec()]
    );
    assert_eq!(end, End::Rejected(HandshakeError::BadAuthVersion(2)));
}

#[test]
fn socks5_no_acceptable_method() {
    for greeting in [
        &hex!("05 01 01")[..],
        &hex!("05 00")[..],
        &hex!("05 02 01 80")[..],
    ] {
        let (replies, end) = drive_all(greeting);
        assert_eq!(replies, vec![hex!("05 ff").to_vec()], "{greeting:02x?}");
        assert_eq!(end, End::Rejected(HandshakeError::NoAcceptableMethod));
    }
}

#[test]
fn socks5_ipv4_and_ipv6_parsed() {
    let mut all = GREETING_NOAUTH.to_vec();
    let v4 = hex!("05 01 00 01 0a000001 0050");
    all.extend_from_slice(&v4);
    let (_, end) = drive_all(&all);
    let End::Finished(r, _) = end else { panic!() };
    assert_eq!(r.address, Address::Ipv4(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(r.port, 80);
    assert_prefixes_need_more(&GREETING_NOAUTH, &v4);

    let mut all = GREETING_NOAUTH.to_vec();
    let v6 = hex!("05 01 00 04 20010db8000000000000000000000001 01bb");
    all.extend_from_slice(&v6);
    let (_, end) = drive_all(&all);
    let End::Finished(r, _) = end else { panic!() };
    assert_eq!(r.address, Address::Ipv6("2001:db8::1".parse().unwrap()));
    assert_eq!(r.port, 443);
    assert_prefixes_need_more(&GREETING_NOAUTH, &v6);
}

#[test]
fn socks5_commands_parsed() {
    for (cmd, want) in [
        (1, Command::Connect),
        (2, Command::Bind),
        (3, Command::UdpAssociate),
        (0xF0, Command::Resolve),
        (0xF1, Command::ResolvePtr),
        (9, Command::Other(9)),
    ] {
        let mut all = GREETING_NOAUTH.to_vec();
        all.extend_from_slice(&s5_name_request(cmd, "x.i2p", 80));
        let (_, end) = drive(&all, 3);
        let End::Finished(r, _) = end else { panic!() };
        assert_eq!(r.command, want);
    }
}

#[test]
fn socks5_bad_request_version() {
    let all = hex!("05 01 00  04 01 00 03 05 612e693270 0050");
    let (replies, end) = drive_all(&all);
    assert_eq!(
        replies,
        vec![
            hex!("05 00").to_vec(),
            hex!("05 01 00 01 00000000 0000").to_vec()
        ]
    );
    assert_eq!(end, End::Rejected(HandshakeError::BadRequestVersion(4)));
}

#[test]
fn socks5_unknown_address_type() {
    let all = hex!("05 01 00  05 01 00 07 0000");
    let (replies, end) = drive_all(&all);
    assert_eq!(replies[1], hex!("05 08 00 01 00000000 0000"));
    assert_eq!(end, End::Rejected(HandshakeError::BadAddressType(7)));
}

#[test]
fn socks5_empty_and_binary_names() {
    let all = hex!("05 01 00  05 01 00 03 00 0050");
    let (_, end) = drive_all(&all);
    let End::Finished(r, _) = end else { panic!() };
    assert_eq!(r.address, name(""));

    let all = hex!("05 01 00  05 01 00 03 03 ff00fe 0050");
    let (_, end) = drive_all(&all);
    let End::Finished(r, _) = end else { panic!() };
    assert_eq!(r.address, name("\u{fffd}\u{0}\u{fffd}"));
}

#[test]
fn socks5_max_length_name() {
    let host = "a".repeat(251) + ".i2p";
    let mut all = GREETING_NOAUTH.to_vec();
    all.extend_from_slice(&s5_name_request(1, &host, 80));
    let (_, end) = drive(&all, 7);
    let End::Finished(r, _) = end else { panic!() };
    assert_eq!(r.address, name(&host));
}

// ---------------------------------------------------------------- SOCKS4 / 4a

#[test]
fn socks4_plain_ip_parsed_as_v4() {
    let msg = hex!("04 01 0050 7f000001 626f6200"); // user "bob"
    let (replies, end) = drive_all(&msg);
    assert!(replies.is_empty());
    let End::Finished(r, rest) = end else {
        panic!()
    };
    assert_eq!(r.version, Version::V4);
    assert_eq!(r.address, Address::Ipv4(Ipv4Addr::LOCALHOST));
    assert_eq!(r.credentials, creds(b"bob", b""));
    assert!(rest.is_empty());
    assert_prefixes_need_more(&[], &msg);
}

#[test]
fn socks4a_monero_form() {
    // monerod --tx-proxy: DSTIP 0.0.0.1, empty user id, then the host name.
    let mut msg = hex!("04 01 4850 00000001 00").to_vec();
    msg.extend_from_slice(B32.as_bytes());
    msg.push(0);
    let (_, end) = drive_all(&msg);
    let End::Finished(r, _) = end else { panic!() };
    assert_eq!(r.version, Version::V4a);
    assert_eq!(r.command, Command::Connect);
    assert_eq!(r.address, name(B32));
    assert_eq!(r.port, 18512);
    assert_eq!(r.credentials, creds(b"", b""));
    assert_eq!(r.reply(Reply::Succeeded), hex!("00 5a 0000 00000000"));
    assert_eq!(r.reply(Reply::HostUnreachable), hex!("00 5b 0000 00000000"));
    assert_prefixes_need_more(&[], &msg);
}

#[test]
fn socks4a_with_pipelined_payload() {
    let mut msg = hex!("04 01 0050 000000ff 7500").to_vec();
    msg.extend_from_slice(b"x.i2p\0hello");
    let (_, end) = drive_all(&msg);
    let End::Finished(r, rest) = end else {
        panic!()
    };
    assert_eq!(r.address, name("x.i2p"));
    assert_eq!(r.credentials, creds(b"u", b""));
    assert_eq!(rest, b"hello");
}

#[test]
fn socks4_zero_ip_is_plain_socks4() {
    let msg = hex!("04 01 0050 00000000 00");
    let (_, end) = drive_all(&msg);
    let End::Finished(r, _) = end else { panic!() };
    assert_eq!(r.version, Version::V4);
    assert_eq!(r.address, Address::Ipv4(Ipv4Addr::UNSPECIFIED));
}

#[test]
fn socks4_bind_and_resolve_commands() {
    let (_, end) = drive_all(&hex!("04 02 0050 01020304 00"));
    let End::Finished(r, _) = end else { panic!() };
    assert_eq!(r.command, Command::Bind);
    assert_eq!(
        r.reply(Reply::CommandNotSupported),
        hex!("00 5b 0000 00000000")
    );
    let mut msg = hex!("04 f0 0000 00000001 00").to_vec();
    msg.extend_from_slice(b"a.i2p\0");
    let (_, end) = drive_all(&msg);
    let End::Finished(r, _) = end else { panic!() };
    assert_eq!(r.command, Command::Resolve);
}

#[test]
fn socks4_overlong_fields_rejected() {
    let mut msg = hex!("04 01 0050 7f000001").to_vec();
    msg.extend(std::iter::repeat_n(b'u', 256));
    let (replies, end) = drive(&msg, msg.len());
    assert_eq!(replies, vec![hex!("00 5b 0000 00000000").to_vec()]);
    assert_eq!(end, End::Rejected(HandshakeError::UserIdTooLong));

    let mut msg = hex!("04 01 0050 00000001 00").to_vec();
    msg.extend(std::iter::repeat_n(b'a', 256));
    let (replies, end) = drive(&msg, 13);
    assert_eq!(replies, vec![hex!("00 5b 0000 00000000").to_vec()]);
    assert_eq!(end, End::Rejected(HandshakeError::NameTooLong));

    // exactly 255 is fine
    let mut msg = hex!("04 01 0050 00000001 00").to_vec();
    msg.extend(std::iter::repeat_n(b'a', 255));
    msg.push(0);
    let (_, end) = drive(&msg, msg.len());
    assert!(matches!(end, End::Finished(..)));
}

// ---------------------------------------------------------------- other first bytes

#[test]
fn unknown_version_closes_without_reply() {
    for first in [0u8, 1, 3, 6, 0x16, 0xff] {
        let (replies, end) = drive_all(&[first, 1, 0]);
        assert!(replies.is_empty());
        assert_eq!(end, End::Rejected(HandshakeError::UnknownVersion(first)));
    }
}

#[test]
fn tls_client_hello_closes_without_reply() {
    let (replies, end) = drive_all(&hex!("16 03 01 00 f1 01 00 00 ed 03 03"));
    assert!(replies.is_empty());
    assert_eq!(end, End::Rejected(HandshakeError::UnknownVersion(0x16)));
}

#[test]
fn http_request_gets_explanation() {
    let req = b"GET http://example.i2p/ HTTP/1.1\r\nHost: example.i2p\r\n\r\n";
    let (replies, end) = drive_all(req);
    assert_eq!(replies, vec![HTTP_NOT_A_PROXY.to_vec()]);
    assert_eq!(end, End::Rejected(HandshakeError::HttpRequest));
    assert_prefixes_need_more(&[], &req[..req.len()]);
    let connect = b"CONNECT example.i2p:443 HTTP/1.1\n\n";
    let (replies, _) = drive_all(connect);
    assert_eq!(replies, vec![HTTP_NOT_A_PROXY.to_vec()]);
}

#[test]
fn endless_http_head_is_cut_at_the_limit() {
    let junk = vec![b'G'; MAX_HANDSHAKE_BYTES + 10];
    let (replies, end) = drive(&junk, 1000);
    assert_eq!(replies, vec![HTTP_NOT_A_PROXY.to_vec()]);
    assert_eq!(end, End::Rejected(HandshakeError::HttpRequest));
}

#[test]
fn fused_after_finish() {
    let mut hs = Handshake::new();
    let msg = hex!("04 01 0050 7f000001 00");
    assert!(matches!(hs.step(&msg), Step::Finished { .. }));
    assert_eq!(
        hs.step(&msg),
        Step::Reject {
            reply: vec![],
            error: HandshakeError::AlreadyFinished
        }
    );
}

// ---------------------------------------------------------------- replies

#[test]
fn every_socks5_reply_code() {
    let (_, end) = drive_all(&[&GREETING_NOAUTH[..], &s5_name_request(1, "a.i2p", 1)].concat());
    let End::Finished(r, _) = end else { panic!() };
    for (reply, code) in [
        (Reply::Succeeded, 0u8),
        (Reply::GeneralFailure, 1),
        (Reply::NotAllowed, 2),
        (Reply::NetworkUnreachable, 3),
        (Reply::HostUnreachable, 4),
        (Reply::ConnectionRefused, 5),
        (Reply::TtlExpired, 6),
        (Reply::CommandNotSupported, 7),
        (Reply::AddressTypeNotSupported, 8),
    ] {
        assert_eq!(r.reply(reply), [5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
    }
    assert_eq!(
        r.reply_resolved(Ipv4Addr::new(255, 1, 2, 3)),
        hex!("05 00 00 01 ff010203 0000")
    );
}

#[test]
fn credentials_debug_hides_secrets() {
    let c = Credentials {
        username: b"alice".to_vec(),
        password: b"swordfish".to_vec(),
    };
    let s = format!("{c:?}");
    assert!(!s.contains("alice") && !s.contains("swordfish"), "{s}");
}

// ---------------------------------------------------------------- required login

fn drive_auth(input: &[u8]) -> (Vec<Vec<u8>>, End) {
    let check: AuthCheck =
        std::sync::Arc::new(|c: &Credentials| c.username == b"alice" && c.password == b"swordfish");
    let mut hs = Handshake::with_auth(Some(check));
    let mut replies = Vec::new();
    let mut buf = input.to_vec();
    loop {
        match hs.step(&buf) {
            Step::NeedMore => return (replies, End::Starved),
            Step::Reply { consumed, reply } => {
                buf.drain(..consumed);
                replies.push(reply);
            }
            Step::Finished { request, consumed } => {
                buf.drain(..consumed);
                return (replies, End::Finished(request, buf));
            }
            Step::Reject { reply, error } => {
                replies.push(reply);
                return (replies, End::Rejected(error));
            }
        }
    }
}

#[test]
fn required_login() {
    let good = [
        &GREETING_BOTH[..],
        &hex!("01 05 616c696365 09 73776f726466697368"),
        &s5_name_request(1, "a.i2p", 80),
    ]
    .concat();
    let (replies, end) = drive_auth(&good);
    assert_eq!(
        replies,
        vec![hex!("05 02").to_vec(), hex!("01 00").to_vec()]
    );
    assert!(matches!(end, End::Finished(..)));
    let bad = [&GREETING_BOTH[..], &hex!("01 05 616c696365 05 6775657373")].concat();
    let (replies, end) = drive_auth(&bad);
    assert_eq!(replies[1], hex!("01 01"));
    assert_eq!(end, End::Rejected(HandshakeError::AuthRejected));
    // no-auth only: refused
    let (replies, end) = drive_auth(&GREETING_NOAUTH);
    assert_eq!(replies, vec![hex!("05 ff").to_vec()]);
    assert_eq!(end, End::Rejected(HandshakeError::NoAcceptableMethod));
    // SOCKS4 cannot log in
    let (replies, end) = drive_auth(&hex!("04 01 0050 00000001 616c69636500 612e69327000"));
    assert_eq!(replies, vec![hex!("00 5b 0000 00000000").to_vec()]);
    assert_eq!(end, End::Rejected(HandshakeError::AuthRequired));
}

// ---------------------------------------------------------------- properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    /// Arbitrary bytes in arbitrary chunks: no panic, always terminates, and drains are sane.
    #[test]
    fn no_input_panics(input in proptest::collection::vec(any::<u8>(), 0..600), chunk in 1usize..64) {
        let _ = drive(&input, chunk);
    }

    /// Structured-looking garbage reaches deeper states than pure noise.
    #[test]
    fn no_panic_on_socks_shaped_input(
        first in prop_oneof![Just(4u8), Just(5u8)],
        rest in proptest::collection::vec(prop_oneof![Just(0u8), Just(1), Just(2), Just(3), Just(4), Just(5), any::<u8>()], 0..400),
        chunk in 1usize..16,
    ) {
        let mut input = vec![first];
        input.extend(rest);
        let _ = drive(&input, chunk);
    }

    /// A valid SOCKS5 exchange parses identically however it is split.
    #[test]
    fn chunking_never_changes_the_result(
        host in "[a-z0-9]{1,60}\\.i2p",
        port in any::<u16>(),
        payload in proptest::collection::vec(any::<u8>(), 0..50),
        chunk in 1usize..40,
    ) {
        let mut all = GREETING_BOTH.to_vec();
        all.extend_from_slice(&hex!("01 01 75 01 70"));
        all.extend_from_slice(&s5_name_request(1, &host, port));
        all.extend_from_slice(&payload);
        let whole = drive(&all, all.len());
        prop_assert_eq!(drive(&all, chunk), whole);
        let (_, end) = drive(&all, chunk);
        match end {
            End::Finished(r, rest) => {
                prop_assert_eq!(r.address, name(&host));
                prop_assert_eq!(r.port, port);
                prop_assert_eq!(rest, payload);
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }
}
