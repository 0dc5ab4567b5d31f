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
    drive_with(None, input, chunk)
}

/// `drive` on a listener with an optional login check.
fn drive_with(auth: Option<&AuthCheck>, input: &[u8], chunk: usize) -> (Vec<Vec<u8>>, End) {
    let mut hs = Handshake::with_auth(auth.cloned());
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
    drive_all_with(None, input)
}

fn drive_all_with(auth: Option<&AuthCheck>, input: &[u8]) -> (Vec<Vec<u8>>, End) {
    let whole = drive_with(auth, input, input.len().max(1));
    for chunk in 1..input.len().max(1) {
        assert_eq!(
            drive_with(auth, input, chunk),
            whole,
            "chunk size {chunk} disagrees"
        );
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

// ---------------------------------------------------------------- HTTP CONNECT

/// What curl sends for `curl -p -x http://127.0.0.1:4447 http://abc.i2p/`.
const CURL_CONNECT: &[u8] = b"CONNECT abc.i2p:80 HTTP/1.1\r\nHost: abc.i2p:80\r\nUser-Agent: curl/8.5.0\r\nProxy-Connection: Keep-Alive\r\n\r\n";

fn alice_check() -> AuthCheck {
    std::sync::Arc::new(|c: &Credentials| c.username == b"alice" && c.password == b"swordfish")
}

/// The request a CONNECT head parses to, with its pipelined rest; every split must agree.
fn http_finished(input: &[u8]) -> (Request, Vec<u8>) {
    let (replies, end) = drive_all(input);
    assert!(replies.is_empty(), "{replies:?}");
    match end {
        End::Finished(r, rest) => (r, rest),
        other => panic!("{other:?}"),
    }
}

fn http_rejected(auth: Option<&AuthCheck>, input: &[u8]) -> (String, HandshakeError) {
    let (replies, end) = drive_all_with(auth, input);
    let End::Rejected(e) = end else {
        panic!("{:?}: {end:?}", String::from_utf8_lossy(input))
    };
    (String::from_utf8(replies.concat()).unwrap(), e)
}

#[test]
fn http_connect_curl() {
    let (r, rest) = http_finished(CURL_CONNECT);
    assert_eq!(
        r.version,
        Version::Http {
            minor: 1,
            html: false
        }
    );
    assert_eq!(r.command, Command::Connect);
    assert_eq!(r.address, name("abc.i2p"));
    assert_eq!(r.port, 80);
    assert_eq!(r.credentials, None);
    assert!(rest.is_empty());
    assert_eq!(
        r.reply(Reply::Succeeded),
        b"HTTP/1.1 200 Connection established\r\n\r\n"
    );
    assert_prefixes_need_more(&[], CURL_CONNECT);
}

#[test]
fn http_connect_git_and_http10_bare_lf() {
    // git (through libcurl, http.proxy = http://127.0.0.1:4447) on an https remote
    let git = format!(
        "CONNECT {B32}:443 HTTP/1.1\r\nHost: {B32}:443\r\nUser-Agent: git/2.43.0\r\nProxy-Connection: Keep-Alive\r\n\r\n"
    );
    let (r, _) = http_finished(git.as_bytes());
    assert_eq!((r.address, r.port), (name(B32), 443));

    let (r, rest) = http_finished(b"CONNECT abc.i2p:6667 HTTP/1.0\nHost: abc.i2p\n\nNICK x\r\n");
    assert_eq!((&r.address, r.port), (&name("abc.i2p"), 6667));
    assert_eq!(rest, b"NICK x\r\n");
    assert_eq!(
        r.version,
        Version::Http {
            minor: 0,
            html: false
        }
    );
    assert_eq!(
        r.reply(Reply::Succeeded),
        b"HTTP/1.0 200 Connection established\r\n\r\n"
    );
    assert!(r
        .reply(Reply::HostUnreachable)
        .starts_with(b"HTTP/1.0 404 Not Found\r\n"));
    // CRLF and LF mixed, and a blank line of a bare LF after CRLF lines
    let (r, _) = http_finished(b"CONNECT abc.i2p:80 HTTP/1.1\r\nHost: abc.i2p\n\r\n");
    assert_eq!(r.port, 80);
    let (r, _) = http_finished(b"CONNECT abc.i2p:80 HTTP/1.1\r\n\n");
    assert_eq!(r.port, 80);
}

#[test]
fn http_connect_pipelined_payload_is_kept() {
    // An early TLS ClientHello, and bytes that would look like the end of a head.
    let payload = [
        &hex!("16 03 01 00 f1 01 00 00 ed 03 03")[..],
        b"\r\n\r\nGET / HTTP/1.1\r\n\r\n",
    ]
    .concat();
    let all = [CURL_CONNECT, &payload[..]].concat();
    let (r, rest) = http_finished(&all);
    assert_eq!(r.address, name("abc.i2p"));
    assert_eq!(rest, payload);
}

#[test]
fn http_connect_addresses() {
    let (r, _) = http_finished(b"CONNECT 10.0.0.1:443 HTTP/1.1\r\n\r\n");
    assert_eq!(r.address, Address::Ipv4(Ipv4Addr::new(10, 0, 0, 1)));
    let (r, _) = http_finished(b"CONNECT [::1]:80 HTTP/1.1\r\n\r\n");
    assert_eq!(r.address, Address::Ipv6(Ipv6Addr::LOCALHOST));
    let (r, _) = http_finished(b"CONNECT [2001:db8::1]:65535 HTTP/1.1\r\n\r\n");
    assert_eq!(r.address, Address::Ipv6("2001:db8::1".parse().unwrap()));
    assert_eq!(r.port, 65535);
    // an IP-looking name stays a name: policy refuses it as such
    let (r, _) = http_finished(b"CONNECT 1.2.3:80 HTTP/1.1\r\n\r\n");
    assert_eq!(r.address, name("1.2.3"));
    let (r, _) = http_finished(b"CONNECT ABC.I2P:1 HTTP/1.1\r\n\r\n");
    assert_eq!((r.address, r.port), (name("ABC.I2P"), 1));
}

#[test]
fn http_connect_malformed_is_400() {
    for (head, why) in [
        (&b"CONNECT abc.i2p HTTP/1.1\r\n\r\n"[..], "missing port"),
        (
            b"CONNECT abc.i2p: HTTP/1.1\r\n\r\n",
            "missing or invalid port",
        ),
        (
            b"CONNECT abc.i2p:0 HTTP/1.1\r\n\r\n",
            "missing or invalid port",
        ),
        (
            b"CONNECT abc.i2p:65536 HTTP/1.1\r\n\r\n",
            "missing or invalid port",
        ),
        (
            b"CONNECT abc.i2p:+80 HTTP/1.1\r\n\r\n",
            "missing or invalid port",
        ),
        (
            b"CONNECT abc.i2p:000080 HTTP/1.1\r\n\r\n",
            "missing or invalid port",
        ),
        (b"CONNECT :80 HTTP/1.1\r\n\r\n", "empty host"),
        (
            b"CONNECT ::1:80 HTTP/1.1\r\n\r\n",
            "target is not host:port",
        ),
        (b"CONNECT [::1]80 HTTP/1.1\r\n\r\n", "missing port"),
        (b"CONNECT [::1 HTTP/1.1\r\n\r\n", "unclosed ["),
        (b"CONNECT [zz]:80 HTTP/1.1\r\n\r\n", "bad IPv6 address"),
        (b"CONNECT [1.2.3.4]:80 HTTP/1.1\r\n\r\n", "bad IPv6 address"),
        (
            b"CONNECT http://abc.i2p:80 HTTP/1.1\r\n\r\n",
            "target is not host:port",
        ),
        (
            b"CONNECT u@abc.i2p:80 HTTP/1.1\r\n\r\n",
            "target is not host:port",
        ),
        (b"CONNECT abc.i2p:80\r\n\r\n", "bad request line"),
        (b"CONNECT  abc.i2p:80 HTTP/1.1\r\n\r\n", "bad request line"),
        (b"CONNECT abc.i2p:80 HTTP/1.1 x\r\n\r\n", "bad request line"),
        (
            b"CONNECT abc.i2p:80 HTTP/2.0\r\n\r\n",
            "unsupported HTTP version",
        ),
        (
            b"CONNECT abc.i2p:80 http/1.1\r\n\r\n",
            "unsupported HTTP version",
        ),
        (
            b"CONNECT \xc3\xa4.i2p:80 HTTP/1.1\r\n\r\n",
            "bad request target",
        ),
        (
            b"CONNECT a:1 HTTP/1.1\r\nHost abc.i2p\r\n\r\n",
            "header line without a colon",
        ),
        (
            b"CONNECT a:1 HTTP/1.1\r\nHost: a\r\n  b\r\n\r\n",
            "obsolete line folding",
        ),
        (
            b"CONNECT a:1 HTTP/1.1\r\n\tb\r\n\r\n",
            "obsolete line folding",
        ),
        (
            b"CONNECT a:1 HTTP/1.1\r\nHost : a\r\n\r\n",
            "bad header name",
        ),
        (b"CONNECT a:1 HTTP/1.1\r\n: a\r\n\r\n", "bad header name"),
        (b"CONNECT a:1 HTTP/1.1\r\nX: a\rb\r\n\r\n", "CR without LF"),
        (
            b"CONNECT a:1 HTTP/1.1\r\nX: \x7f\r\n\r\n",
            "control byte in the request head",
        ),
    ] {
        let (reply, error) = http_rejected(None, head);
        let shown = String::from_utf8_lossy(head);
        assert_eq!(error, HandshakeError::HttpBadRequest(why), "{shown}");
        assert!(
            reply.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{shown}: {reply}"
        );
        assert!(reply.contains("\r\nConnection: close\r\n"), "{reply}");
        assert!(reply.ends_with(&format!("\r\n\r\n{why}\n")), "{reply}");
    }
    // HTTP/1.0 clients hear HTTP/1.0
    let (reply, _) = http_rejected(None, b"CONNECT abc.i2p HTTP/1.0\r\n\r\n");
    assert!(reply.starts_with("HTTP/1.0 400 Bad Request\r\n"), "{reply}");
}

#[test]
fn http_connect_control_bytes_refused_before_the_head_ends() {
    // No blank line needed: a NUL can never be part of a request head.
    for head in [
        &b"CONNECT abc.i2p:80 HTTP/1.1\r\nX: a\0b"[..],
        b"CONNECT abc\0",
        b"CONNECT abc.i2p:80 HTTP/1.1\r\x01",
    ] {
        let (reply, error) = http_rejected(None, head);
        assert!(
            matches!(error, HandshakeError::HttpBadRequest(_)),
            "{error:?}"
        );
        assert!(reply.starts_with("HTTP/1.1 400 "), "{reply}");
    }
    // not CONNECT, so not worth a word
    assert_eq!(
        http_rejected(None, b"CONNEC\0"),
        (String::new(), HandshakeError::HttpRequestNotLocal)
    );
}

#[test]
fn http_method_is_case_sensitive() {
    // A lowercase first byte is no HTTP at all, a capital one with the wrong case no CONNECT.
    let (_, end) = drive_all(b"connect abc.i2p:80 HTTP/1.1\r\n\r\n");
    assert_eq!(end, End::Rejected(HandshakeError::UnknownVersion(b'c')));
    assert_eq!(
        http_rejected(None, b"Connect abc.i2p:80 HTTP/1.1\r\n\r\n"),
        (String::new(), HandshakeError::HttpRequestNotLocal)
    );
}

const ALICE_BASIC: &str = "YWxpY2U6c3dvcmRmaXNo"; // alice:swordfish

#[test]
fn http_basic_credentials_kept_without_a_check() {
    let head =
        format!("CONNECT abc.i2p:80 HTTP/1.1\r\nProxy-Authorization: Basic {ALICE_BASIC}\r\n\r\n");
    let (r, _) = http_finished(head.as_bytes());
    assert_eq!(r.credentials, creds(b"alice", b"swordfish"));
    // scheme and header name in any case, extra whitespace, no padding, ':' in the password
    let head = b"CONNECT abc.i2p:80 HTTP/1.1\r\nproxy-AUTHORIZATION:  bASIC   dTphOmI  \r\n\r\n";
    let (r, _) = http_finished(head);
    assert_eq!(r.credentials, creds(b"u", b"a:b"));
    // empty user and password
    let (r, _) =
        http_finished(b"CONNECT abc.i2p:80 HTTP/1.1\r\nProxy-Authorization: Basic Og==\r\n\r\n");
    assert_eq!(r.credentials, creds(b"", b""));
    // another scheme is not ours: as if absent
    let (r, _) =
        http_finished(b"CONNECT abc.i2p:80 HTTP/1.1\r\nProxy-Authorization: Bearer abc\r\n\r\n");
    assert_eq!(r.credentials, None);
    // an Authorization header is for the origin, not for us
    let head = format!("CONNECT abc.i2p:80 HTTP/1.1\r\nAuthorization: Basic {ALICE_BASIC}\r\n\r\n");
    let (r, _) = http_finished(head.as_bytes());
    assert_eq!(r.credentials, None);
}

#[test]
fn http_basic_malformed_is_400() {
    for value in [
        "Basic !!!!",
        "Basic dXNlcg==",
        "Basic",
        "Basic YWxpY2U6c3dvcmRmaXNo YQ==",
    ] {
        let head = format!("CONNECT abc.i2p:80 HTTP/1.1\r\nProxy-Authorization: {value}\r\n\r\n");
        let (reply, error) = http_rejected(None, head.as_bytes());
        let why = "malformed Basic credentials";
        assert_eq!(error, HandshakeError::HttpBadRequest(why), "{value}");
        assert!(reply.starts_with("HTTP/1.1 400 "), "{reply}");
    }
    let head = format!("CONNECT a:1 HTTP/1.1\r\nProxy-Authorization: Basic {ALICE_BASIC}\r\nProxy-Authorization: Basic Og==\r\n\r\n");
    let (_, error) = http_rejected(None, head.as_bytes());
    assert_eq!(
        error,
        HandshakeError::HttpBadRequest("more than one Proxy-Authorization header")
    );
}

#[test]
fn http_required_login() {
    let check = alice_check();
    let good = format!("CONNECT abc.i2p:80 HTTP/1.1\r\nHost: abc.i2p:80\r\nProxy-Authorization: Basic {ALICE_BASIC}\r\n\r\nhello");
    let (replies, end) = drive_all_with(Some(&check), good.as_bytes());
    assert!(replies.is_empty());
    let End::Finished(r, rest) = end else {
        panic!("{end:?}")
    };
    assert_eq!(r.credentials, creds(b"alice", b"swordfish"));
    assert_eq!(rest, b"hello");

    let want_407 = "HTTP/1.1 407 Proxy Authentication Required\r\n";
    let challenge = "\r\nProxy-Authenticate: Basic realm=\"eepsocks\"\r\n";
    let bad = b"CONNECT abc.i2p:80 HTTP/1.1\r\nProxy-Authorization: Basic YWxpY2U6Z3Vlc3M=\r\n\r\n"; // alice:guess
    let (reply, error) = http_rejected(Some(&check), bad);
    assert_eq!(error, HandshakeError::AuthRejected);
    assert!(
        reply.starts_with(want_407) && reply.contains(challenge),
        "{reply}"
    );
    assert!(
        !reply.contains("alice") && !reply.contains("guess"),
        "{reply}"
    );
    for missing in [
        &b"CONNECT abc.i2p:80 HTTP/1.1\r\nHost: abc.i2p:80\r\n\r\n"[..],
        b"CONNECT abc.i2p:80 HTTP/1.1\r\nProxy-Authorization: Bearer x\r\n\r\n",
    ] {
        let (reply, error) = http_rejected(Some(&check), missing);
        assert_eq!(error, HandshakeError::AuthRequired);
        assert!(
            reply.starts_with(want_407) && reply.contains(challenge),
            "{reply}"
        );
    }
    let (reply, _) = http_rejected(Some(&check), b"CONNECT abc.i2p:80 HTTP/1.0\r\n\r\n");
    assert!(reply.starts_with("HTTP/1.0 407 "), "{reply}");
    // the check is only asked once the request itself is sound
    let (reply, error) = http_rejected(Some(&check), b"CONNECT abc.i2p HTTP/1.1\r\n\r\n");
    assert_eq!(error, HandshakeError::HttpBadRequest("missing port"));
    assert!(reply.starts_with("HTTP/1.1 400 "));
}

#[test]
fn http_request_debug_hides_credentials() {
    let head =
        format!("CONNECT abc.i2p:80 HTTP/1.1\r\nProxy-Authorization: Basic {ALICE_BASIC}\r\n\r\n");
    let (r, _) = http_finished(head.as_bytes());
    let s = format!("{r:?}");
    assert!(
        !s.contains("alice") && !s.contains("swordfish") && !s.contains(ALICE_BASIC),
        "{s}"
    );
}

#[test]
fn http_other_methods_page_only_for_loopback_hosts() {
    for head in [
        &b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: localhost:4447\r\nUser-Agent: Mozilla/5.0\r\n\r\n",
        b"GET /favicon.ico HTTP/1.1\r\nhost:LOCALHOST.\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: eepsocks.localhost:4447\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1:4447\r\n\r\n",
        b"POST /x HTTP/1.0\nHost: 127.5.6.7\n\n",
        b"GET / HTTP/1.1\r\nHost: [::1]:4447\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n",
        // absolute form: the authority, not Host, names the target
        b"GET http://127.0.0.1:4447/ HTTP/1.1\r\nHost: evil.example\r\n\r\n",
        b"GET http://127.0.0.1:4447/ HTTP/1.1\r\n\r\n",
        b"GET HTTP://user@localhost/x?y HTTP/1.1\r\n\r\n",
        // not CONNECT, whatever it looks like
        b"Connect localhost:4447 HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ] {
        let (replies, end) = drive_all(head);
        let shown = String::from_utf8_lossy(head);
        assert_eq!(replies, vec![HTTP_NOT_A_PROXY.to_vec()], "{shown}");
        assert_eq!(end, End::Rejected(HandshakeError::HttpRequest), "{shown}");
        assert_prefixes_need_more(&[], &head[..head.len() - 1]);
    }
    let page = String::from_utf8_lossy(HTTP_NOT_A_PROXY);
    assert!(
        page.contains("HTTP CONNECT") && page.contains("-x http://127.0.0.1:4447 http://name.i2p/"),
        "{page}"
    );
}

#[test]
fn http_other_methods_close_silently_for_other_hosts() {
    // A page served from evil.example and rebound to 127.0.0.1 sends its own name as Host.
    for head in [
        &b"GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: evil.example:4447\r\nOrigin: http://evil.example:4447\r\n\r\n",
        b"POST /x HTTP/1.1\r\nHost: 127.0.0.1.evil.example\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: localhost.evil.example\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: notlocalhost\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: 128.0.0.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: [::2]:4447\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: localhost:x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.0\n\n",
        b"GET /http://localhost/ HTTP/1.1\r\nHost: evil.example\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: local\xffhost\r\n\r\n",
        // the request's bytes are not checked, but a control byte ends it at once
        b"GET / HTTP/1.1\r\nHost: localhost\0",
        b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
    ] {
        let (replies, end) = drive_all(head);
        let shown = String::from_utf8_lossy(head);
        assert!(replies.is_empty(), "{shown}");
        assert_eq!(
            end,
            End::Rejected(HandshakeError::HttpRequestNotLocal),
            "{shown}"
        );
    }
}

// ---------------------------------------------------------------- HTTP forwarding

/// What curl sends for `curl -x http://127.0.0.1:4447 http://abc.i2p/` (no -p).
const CURL_GET: &[u8] = b"GET http://abc.i2p/ HTTP/1.1\r\nHost: abc.i2p\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nProxy-Connection: Keep-Alive\r\n\r\n";

#[test]
fn http_forward_curl_keeps_the_whole_request() {
    let (r, rest) = http_finished(CURL_GET);
    assert_eq!(
        r.version,
        Version::Http {
            minor: 1,
            html: false
        }
    );
    assert_eq!(r.command, Command::HttpForward);
    assert_eq!((r.address, r.port), (name("abc.i2p"), 80));
    assert_eq!(r.credentials, None);
    // nothing consumed: the request is the stream's first bytes
    assert_eq!(rest, CURL_GET);
    let hs = Handshake::new().step(CURL_GET);
    assert!(matches!(hs, Step::Finished { consumed: 0, .. }), "{hs:?}");
    // a body after the head stays too
    let post = b"POST http://abc.i2p/x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
    let (r, rest) = http_finished(post);
    assert_eq!(r.command, Command::HttpForward);
    assert_eq!(rest, post);
    // the Host header does not matter: the URL names the server (RFC 9112 §3.2.2)
    let (r, _) = http_finished(b"GET http://example.i2p/ HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(r.address, name("example.i2p"));
}

#[test]
fn http_forward_git_dumb_protocol() {
    let get = format!(
        "GET http://{B32}/repo.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: {B32}\r\n\
         User-Agent: git/2.43.0\r\nAccept: */*\r\nAccept-Encoding: deflate, gzip\r\n\
         Proxy-Connection: Keep-Alive\r\nPragma: no-cache\r\n\r\n"
    );
    let (r, rest) = http_finished(get.as_bytes());
    assert_eq!((r.address, r.port), (name(B32), 80));
    assert_eq!(rest, get.as_bytes());
}

#[test]
fn http_forward_targets() {
    for (head, address, port) in [
        (
            &b"GET HTTP://ABC.I2P:8080/x HTTP/1.1\r\n\r\n"[..],
            name("ABC.I2P"),
            8080,
        ),
        (b"GET Http://abc.i2p HTTP/1.1\r\n\r\n", name("abc.i2p"), 80),
        (b"GET http://abc.i2p?q=1 HTTP/1.0\n\n", name("abc.i2p"), 80),
        (
            b"HEAD http://abc.i2p:/ HTTP/1.1\r\n\r\n",
            name("abc.i2p"),
            80,
        ),
        (
            b"GET http://abc.i2p:1/ HTTP/1.1\r\n\r\n",
            name("abc.i2p"),
            1,
        ),
        (
            b"OPTIONS http://abc.i2p:65535/ HTTP/1.1\r\n\r\n",
            name("abc.i2p"),
            65535,
        ),
        // the policy (conn.rs) refuses these, as for CONNECT
        (
            b"GET http://example.com/ HTTP/1.1\r\n\r\n",
            name("example.com"),
            80,
        ),
        (
            b"GET http://10.0.0.1:81/ HTTP/1.1\r\n\r\n",
            Address::Ipv4(Ipv4Addr::new(10, 0, 0, 1)),
            81,
        ),
        (
            b"GET http://[2001:db8::1]/ HTTP/1.1\r\n\r\n",
            Address::Ipv6("2001:db8::1".parse().unwrap()),
            80,
        ),
        (
            b"GET http://[2001:db8::1]:8000/a HTTP/1.1\r\n\r\n",
            Address::Ipv6("2001:db8::1".parse().unwrap()),
            8000,
        ),
    ] {
        let (r, rest) = http_finished(head);
        let shown = String::from_utf8_lossy(head);
        assert_eq!(r.command, Command::HttpForward, "{shown}");
        assert_eq!((r.address, r.port), (address, port), "{shown}");
        assert_eq!(rest, head, "{shown}");
    }
    let (r, _) = http_finished(b"GET http://abc.i2p/ HTTP/1.0\r\n\r\n");
    assert_eq!(
        r.version,
        Version::Http {
            minor: 0,
            html: false
        }
    );
    // a loopback URL is the proxy itself: the page, as before
    let (replies, end) = drive_all(b"GET http://localhost:4447/x HTTP/1.1\r\n\r\n");
    assert_eq!(replies, vec![HTTP_NOT_A_PROXY.to_vec()]);
    assert_eq!(end, End::Rejected(HandshakeError::HttpRequest));
}

#[test]
fn http_forward_malformed_is_400() {
    for (head, why) in [
        (
            &b"GET https://abc.i2p/ HTTP/1.1\r\n\r\n"[..],
            "https:// URLs go through CONNECT (for curl: -p)",
        ),
        (
            b"GET ftp://abc.i2p/ HTTP/1.1\r\n\r\n",
            "only http:// URLs are forwarded",
        ),
        (b"GET http:///x HTTP/1.1\r\n\r\n", "empty host"),
        (
            b"GET http://abc.i2p:0/ HTTP/1.1\r\n\r\n",
            "missing or invalid port",
        ),
        (
            b"GET http://abc.i2p:65536/ HTTP/1.1\r\n\r\n",
            "missing or invalid port",
        ),
        (
            b"GET http://abc.i2p:x/ HTTP/1.1\r\n\r\n",
            "missing or invalid port",
        ),
        (
            b"GET http://u:p@abc.i2p/ HTTP/1.1\r\n\r\n",
            "user name in the URL",
        ),
        (
            b"GET http://localhost@evil.example/ HTTP/1.1\r\n\r\n",
            "user name in the URL",
        ),
        (
            b"GET http://abc.i2p/#top HTTP/1.1\r\n\r\n",
            "fragment in the request target",
        ),
        (b"GET http://[::1/ HTTP/1.1\r\n\r\n", "unclosed ["),
        (
            b"GET http://a:b:c/ HTTP/1.1\r\n\r\n",
            "target is not host:port",
        ),
        (
            b"GET http://abc.i2p/ HTTP/2.0\r\n\r\n",
            "unsupported HTTP version",
        ),
        (
            b"GET http://abc.i2p/ HTTP/1.1 x\r\n\r\n",
            "bad request line",
        ),
        (b"G(T http://abc.i2p/ HTTP/1.1\r\n\r\n", "bad request line"),
        (
            b"GET http://abc.i2p/\xc3\xa4 HTTP/1.1\r\n\r\n",
            "bad request target",
        ),
        (
            b"GET http://abc.i2p/ HTTP/1.1\r\nHost abc.i2p\r\n\r\n",
            "header line without a colon",
        ),
        (
            b"GET http://abc.i2p/ HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
            "obsolete line folding",
        ),
        (
            b"GET http://abc.i2p/ HTTP/1.1\r\nProxy-Authorization: Basic !!\r\n\r\n",
            "malformed Basic credentials",
        ),
        // a control byte after the request line: no need to wait for the blank line
        (
            b"GET http://abc.i2p/ HTTP/1.1\r\nX: a\0b",
            "control byte in the request head",
        ),
    ] {
        let (reply, error) = http_rejected(None, head);
        let shown = String::from_utf8_lossy(head);
        assert_eq!(error, HandshakeError::HttpBadRequest(why), "{shown}");
        assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply}");
        assert!(reply.ends_with(&format!("\r\n\r\n{why}\n")), "{reply}");
    }
    let (reply, _) = http_rejected(None, b"GET https://abc.i2p/ HTTP/1.0\r\n\r\n");
    assert!(reply.starts_with("HTTP/1.0 400 Bad Request\r\n"), "{reply}");
    // a control byte before the request line is complete: not known to be a proxy request
    assert_eq!(
        http_rejected(None, b"GET http://abc.i2p/\0"),
        (String::new(), HandshakeError::HttpRequestNotLocal)
    );
}

#[test]
fn http_forward_login() {
    let check = alice_check();
    let good =
        format!("GET http://abc.i2p/ HTTP/1.1\r\nProxy-Authorization: Basic {ALICE_BASIC}\r\n\r\n");
    let (replies, end) = drive_all_with(Some(&check), good.as_bytes());
    assert!(replies.is_empty());
    let End::Finished(r, rest) = end else {
        panic!("{end:?}")
    };
    assert_eq!(r.command, Command::HttpForward);
    assert_eq!(r.credentials, creds(b"alice", b"swordfish"));
    // the header is still in the request: the leak filter removes it (Proxy-*)
    assert_eq!(rest, good.as_bytes());
    let (r, _) = http_finished(good.as_bytes());
    assert_eq!(r.credentials, creds(b"alice", b"swordfish"));
    for (head, error) in [
        (
            &b"GET http://abc.i2p/ HTTP/1.1\r\n\r\n"[..],
            HandshakeError::AuthRequired,
        ),
        (
            b"GET http://abc.i2p/ HTTP/1.1\r\nProxy-Authorization: Basic YWxpY2U6Z3Vlc3M=\r\n\r\n",
            HandshakeError::AuthRejected,
        ),
    ] {
        let (reply, e) = http_rejected(Some(&check), head);
        assert_eq!(e, error);
        assert!(
            reply.starts_with("HTTP/1.1 407 Proxy Authentication Required\r\n"),
            "{reply}"
        );
        assert!(reply.contains("\r\nProxy-Authenticate: Basic realm=\"eepsocks\"\r\n"));
    }
}

#[test]
fn http_forward_head_length_limit() {
    let start = b"GET http://abc.i2p/ HTTP/1.1\r\nCookie: ";
    let pad = MAX_HANDSHAKE_BYTES - start.len() - 4;
    let head = [&start[..], &vec![b'c'; pad], b"\r\n\r\n"].concat();
    for chunk in [1000, 4096] {
        let (_, end) = drive(&[&head[..], b"body"].concat(), chunk);
        let End::Finished(r, rest) = end else {
            panic!("{end:?}")
        };
        assert_eq!(r.command, Command::HttpForward);
        assert_eq!(rest, [&head[..], b"body"].concat());
    }
    let head = [&start[..], &vec![b'c'; pad + 1], b"\r\n\r\n"].concat();
    for chunk in [1, 1000, 4096, 5000] {
        let (replies, end) = drive(&head, chunk);
        assert_eq!(
            end,
            End::Rejected(HandshakeError::HttpBadRequest("request head too long"))
        );
        assert!(replies[0].starts_with(b"HTTP/1.1 431 "));
    }
}

#[test]
fn http_head_length_limit() {
    // A head of exactly MAX_HANDSHAKE_BYTES fits.
    let start = b"CONNECT abc.i2p:80 HTTP/1.1\r\nX: ";
    let pad = MAX_HANDSHAKE_BYTES - start.len() - 4;
    let head = [&start[..], &vec![b'a'; pad], b"\r\n\r\n"].concat();
    assert_eq!(head.len(), MAX_HANDSHAKE_BYTES);
    for chunk in [1000, 4095, 4096] {
        let (_, end) = drive(&[&head[..], b"payload"].concat(), chunk);
        let End::Finished(r, rest) = end else {
            panic!("{end:?}")
        };
        assert_eq!(r.port, 80);
        assert_eq!(rest, b"payload");
    }
    // One more byte and it does not.
    let head = [&start[..], &vec![b'a'; pad + 1], b"\r\n\r\n"].concat();
    for chunk in [1, 1000, 4095, 4096, 5000] {
        let (replies, end) = drive(&head, chunk);
        assert_eq!(
            end,
            End::Rejected(HandshakeError::HttpBadRequest("request head too long"))
        );
        assert!(replies[0].starts_with(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    }
    // CR as the last byte that fits: its LF would be past the limit.
    let head = [&start[..], &vec![b'a'; pad + 1], b"\r\n\r\n"].concat();
    assert_eq!(head[MAX_HANDSHAKE_BYTES - 1], b'\r');
    let (_, end) = drive(&head, 4096);
    assert_eq!(
        end,
        End::Rejected(HandshakeError::HttpBadRequest("request head too long"))
    );
}

#[test]
fn endless_http_head_is_cut_at_the_limit() {
    let junk = vec![b'G'; MAX_HANDSHAKE_BYTES + 10];
    for chunk in [1000, 4096, 5000] {
        let (replies, end) = drive(&junk, chunk);
        assert!(replies.is_empty());
        assert_eq!(end, End::Rejected(HandshakeError::HttpRequestNotLocal));
    }
    // a local page request with a large cookie still gets its page
    let mut get = b"GET / HTTP/1.1\r\nHost: localhost:4447\r\nCookie: ".to_vec();
    get.extend(std::iter::repeat_n(b'c', MAX_HANDSHAKE_BYTES));
    get.extend_from_slice(b"\r\n\r\n");
    for chunk in [100, 4096, 10_000] {
        let (replies, end) = drive(&get, chunk);
        assert_eq!(replies, vec![HTTP_NOT_A_PROXY.to_vec()]);
        assert_eq!(end, End::Rejected(HandshakeError::HttpRequest));
    }
}

#[test]
fn http_reply_codes() {
    let (r, _) = http_finished(CURL_CONNECT);
    // every code, including eepsocks' own 0xF0.. ones (mapped by number, not variant)
    for code in 0..=255u8 {
        let want = match code {
            0x00 => 200,
            0x02 => 403,
            0x04 | 0xF0 | 0xF6 => 404,
            0x06 | 0xF7 => 504,
            0x07 | 0x08 => 501,
            _ => 502,
        };
        assert_eq!(super::http_answer::status(code).0, want, "code {code:#04x}");
    }
    for (reply, head) in [
        (Reply::GeneralFailure, "502 Bad Gateway"),
        (Reply::NotAllowed, "403 Forbidden"),
        (Reply::NetworkUnreachable, "502 Bad Gateway"),
        (Reply::HostUnreachable, "404 Not Found"),
        (Reply::ConnectionRefused, "502 Bad Gateway"),
        (Reply::TtlExpired, "504 Gateway Timeout"),
        (Reply::CommandNotSupported, "501 Not Implemented"),
        (Reply::AddressTypeNotSupported, "501 Not Implemented"),
        (Reply::LeaseSetNotFound, "404 Not Found"),
        (Reply::BadAddress, "404 Not Found"),
        (Reply::OpenTimedOut, "504 Gateway Timeout"),
    ] {
        assert_eq!(reply.http_status().to_string(), head[..3]);
        let want = format!(
            "HTTP/1.1 {head}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(String::from_utf8(r.reply(reply)).unwrap(), want);
        let want = format!(
            "HTTP/1.1 {head}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 18\r\nConnection: close\r\n\r\nname not found :(\n"
        );
        assert_eq!(
            String::from_utf8(r.reply_why(reply, "name not found :(")).unwrap(),
            want
        );
    }
    // success never carries a body: what follows is the tunnel
    assert_eq!(
        r.reply_why(Reply::Succeeded, "ignored"),
        b"HTTP/1.1 200 Connection established\r\n\r\n"
    );
    // HTTP has no RESOLVE
    assert_eq!(
        r.reply_resolved(Ipv4Addr::new(255, 1, 2, 3)),
        r.reply(Reply::Succeeded)
    );
}

#[test]
fn http_reply_why_is_one_short_printable_line() {
    let (r, _) = http_finished(CURL_CONNECT);
    let reply = r.reply_why(
        Reply::HostUnreachable,
        " bad\r\nX-Injected: 1\0\u{e4}\u{202e}x\t ",
    );
    let reply = String::from_utf8(reply).unwrap();
    let body = reply.split("\r\n\r\n").nth(1).unwrap();
    assert_eq!(body, "bad  X-Injected: 1???x\n");
    assert!(reply.contains("Content-Length: 23\r\n"), "{reply}");
    let long = "x".repeat(500);
    let reply = String::from_utf8(r.reply_why(Reply::GeneralFailure, &long)).unwrap();
    assert!(
        reply.ends_with(&format!("\r\n\r\n{}\n", "x".repeat(200))),
        "{reply}"
    );
    assert!(reply.contains("Content-Length: 201\r\n"));
}

#[test]
fn socks_reply_why_is_reply() {
    let (_, end) = drive_all(&[&GREETING_NOAUTH[..], &s5_name_request(1, "a.i2p", 1)].concat());
    let End::Finished(r, _) = end else { panic!() };
    assert_eq!(
        r.reply_why(Reply::HostUnreachable, "why"),
        r.reply(Reply::HostUnreachable)
    );
    let (_, end) = drive_all(&hex!("04 01 0050 00000001 00 612e69327000"));
    let End::Finished(r, _) = end else { panic!() };
    assert_eq!(
        r.reply_why(Reply::TtlExpired, "why"),
        r.reply(Reply::TtlExpired)
    );
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

    /// HTTP-shaped garbage: request lines, headers, line ends and control bytes.
    #[test]
    fn no_panic_on_http_shaped_input(
        parts in proptest::collection::vec(prop_oneof![
            Just(&b"CONNECT "[..]), Just(&b"GET "[..]), Just(&b" HTTP/1.1"[..]), Just(&b"\r\n"[..]),
            Just(&b"\n"[..]), Just(&b":"[..]), Just(&b"["[..]), Just(&b"]"[..]), Just(&b"abc.i2p"[..]),
            Just(&b"Host: localhost"[..]), Just(&b"Proxy-Authorization: Basic "[..]), Just(&b"Og=="[..]),
            Just(&b"\0"[..]), Just(&b"\r"[..]), Just(&b"80"[..]), Just(&b" "[..]),
        ], 0..40),
        login in any::<bool>(),
        chunk in 1usize..16,
    ) {
        let input = [&b"CONNECT "[..], &parts.concat()].concat();
        let check = alice_check();
        let auth = login.then_some(&check);
        let whole = drive_with(auth, &input, input.len());
        prop_assert_eq!(drive_with(auth, &input, chunk), whole);
    }

    /// A valid HTTP CONNECT parses identically however it is split.
    #[test]
    fn http_chunking_never_changes_the_result(
        host in "[a-z0-9]{1,60}\\.i2p",
        port in 1u16..,
        payload in proptest::collection::vec(any::<u8>(), 0..50),
        chunk in 1usize..40,
    ) {
        let mut all = format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n").into_bytes();
        all.extend_from_slice(&payload);
        let whole = drive(&all, all.len());
        prop_assert_eq!(drive(&all, chunk), whole);
        match drive(&all, chunk).1 {
            End::Finished(r, rest) => {
                prop_assert_eq!(r.address, name(&host));
                prop_assert_eq!(r.port, port);
                prop_assert_eq!(rest, payload);
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    /// A forwarding request parses identically however it is split, and is kept whole.
    #[test]
    fn http_forward_chunking_never_changes_the_result(
        host in "[a-z0-9]{1,60}\\.i2p",
        path in "(/[a-z0-9?=&%.]{0,20}){0,3}",
        payload in proptest::collection::vec(any::<u8>(), 0..50),
        chunk in 1usize..40,
    ) {
        let mut all = format!("POST http://{host}{path} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes();
        all.extend_from_slice(&payload);
        let whole = drive(&all, all.len());
        prop_assert_eq!(drive(&all, chunk), whole);
        match drive(&all, chunk).1 {
            End::Finished(r, rest) => {
                prop_assert_eq!(r.command, Command::HttpForward);
                prop_assert_eq!(r.address, name(&host));
                prop_assert_eq!(r.port, 80);
                prop_assert_eq!(rest, all);
            }
            other => prop_assert!(false, "{:?}", other),
        }
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

/// A browser's forwarded request (Accept names text/html) gets an HTML page naming the
/// host, the reason and the fix, everything escaped; curl (Accept: */*) the one text line.
#[test]
fn http_error_page_for_browsers_text_for_others() {
    let browser = b"GET http://nosuch.i2p/ HTTP/1.1\r\nHost: nosuch.i2p\r\nAccept: text/html,application/xhtml+xml,*/*;q=0.8\r\n\r\n";
    let (r, _) = http_finished(browser);
    assert_eq!(
        r.version,
        Version::Http {
            minor: 1,
            html: true
        }
    );
    let page = String::from_utf8(r.reply_why(Reply::HostUnreachable, "no <such> name")).unwrap();
    assert!(page.starts_with("HTTP/1.1 404 Not Found\r\n"), "{page}");
    assert!(
        page.contains("Content-Type: text/html; charset=utf-8\r\n"),
        "{page}"
    );
    assert!(
        page.contains("Content-Security-Policy: default-src 'none'"),
        "{page}"
    );
    let (head, body) = page.split_once("\r\n\r\n").unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(len, body.len());
    assert!(body.contains("<code>nosuch.i2p</code>"), "{body}");
    assert!(
        body.contains("eepsocks addressbook add NAME DEST"),
        "{body}"
    );
    assert!(body.contains("no &lt;such&gt; name"), "{body}");
    assert!(
        !body.contains("<script") && !body.contains("src="),
        "{body}"
    );
    // A hostile host name cannot open a tag or an attribute.
    let mut r2 = r.clone();
    r2.address = Address::Name("a<b>\"'&.i2p".into());
    let page = String::from_utf8(r2.reply(Reply::NotAllowed)).unwrap();
    assert!(page.contains("a&lt;b&gt;&quot;&#39;&amp;.i2p"), "{page}");
    assert!(!page.contains("a<b>"), "{page}");

    // curl: the same status with a one-line text body.
    let curl = b"GET http://nosuch.i2p/ HTTP/1.1\r\nHost: nosuch.i2p\r\nAccept: */*\r\n\r\n";
    let (r, _) = http_finished(curl);
    assert_eq!(
        r.version,
        Version::Http {
            minor: 1,
            html: false
        }
    );
    let text = String::from_utf8(r.reply_why(Reply::HostUnreachable, "no such name")).unwrap();
    assert!(text.contains("Content-Type: text/plain"), "{text}");
    assert!(text.ends_with("\r\n\r\nno such name\n"), "{text}");
}
