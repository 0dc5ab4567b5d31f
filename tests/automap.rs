//! Automap without root: the `eepsocks run` binary on the fake SAM bridge, its DNS port
//! asked over UDP and TCP with queries built by hickory-proto, the virtual addresses used
//! through SOCKS, the transparent port without a firewall redirect, reloads, and the
//! `[automap]` config checks. tests/e2e_i2pd.rs `automap` does the same through i2pd and
//! nftables, as root; this file is the layer that runs everywhere.

mod support;

use eepsocks::automap::dns;
use eepsocks::config::Config;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};
use support::launcher::Eepsocks;
use support::notify::Manager;
use support::rig::{free_addrs, listener_status as status, Rig, READY};

/// Loopback answers come in microseconds; this only bounds a lost one.
const ANSWER: Duration = Duration::from_secs(5);
/// How long a reload may take to be applied or refused.
const SETTLE: Duration = Duration::from_secs(10);
/// The TTL the tests configure, so the answers show it is the configured one (default 60).
const TTL: u32 = 45;
/// The name the fake bridge knows (it stands for the echo service).
const NAME: &str = "echo.i2p";

// ---- DNS client ----------------------------------------------------------------------

/// A query with RD=1 for `name`, as a stub resolver sends it.
fn query(id: u16, name: &str, rtype: RecordType) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    m.to_vec().unwrap()
}

/// A UDP socket connected to the DNS port: an ICMP port unreachable then surfaces as
/// ConnectionRefused instead of a silent timeout.
fn udp_to(dns: SocketAddr, timeout: Duration) -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.connect(dns).unwrap();
    s.set_read_timeout(Some(timeout)).unwrap();
    s
}

/// Decodes a response and checks it answers `id`.
fn decode(bytes: &[u8], id: u16) -> Message {
    let m = Message::from_vec(bytes).expect("a response that decodes");
    assert_eq!(m.metadata.message_type, MessageType::Response);
    assert_eq!(m.metadata.id, id);
    m
}

/// One question over UDP, its response; Err when none comes (timeout, refused port).
fn try_ask(dns: SocketAddr, name: &str, rtype: RecordType) -> std::io::Result<Message> {
    let s = udp_to(dns, ANSWER);
    let id = rand_id();
    s.send(&query(id, name, rtype))?;
    let mut buf = [0u8; 2048];
    let n = s.recv(&mut buf)?;
    Ok(decode(&buf[..n], id))
}

fn ask(dns: SocketAddr, name: &str, rtype: RecordType) -> Message {
    try_ask(dns, name, rtype).unwrap_or_else(|e| panic!("{rtype} {name}: no answer: {e}"))
}

/// One question on an open DNS-over-TCP connection (two-byte length prefix, RFC 7766).
fn tcp_ask(s: &mut TcpStream, id: u16, name: &str, rtype: RecordType) -> Message {
    let q = query(id, name, rtype);
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    s.write_all(&framed).unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).unwrap();
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut msg).unwrap();
    decode(&msg, id)
}

/// An id that differs from call to call (replies to an earlier query must not match).
fn rand_id() -> u16 {
    let mut b = [0u8; 2];
    getrandom::getrandom(&mut b).unwrap();
    u16::from_le_bytes(b)
}

/// The address and TTL of the only answer, which must be an A record.
fn a_record(m: &Message) -> (Ipv4Addr, u32) {
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
    assert_eq!(m.answers.len(), 1, "{m:?}");
    match &m.answers[0] {
        Record {
            data: RData::A(A(ip)),
            ttl,
            ..
        } => (*ip, *ttl),
        other => panic!("not an A record: {other:?}"),
    }
}

fn reverse(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
}

/// NOERROR without answers, or another rcode; panics on an answer.
fn rcode(m: &Message) -> ResponseCode {
    assert!(m.answers.is_empty(), "unexpected answers: {m:?}");
    m.metadata.response_code
}

/// The `i`th of a series of well-formed b32 names no one registered (the hash of `i`).
fn b32(i: u64) -> String {
    let hash = Sha256::digest(i.to_le_bytes());
    let text = data_encoding::BASE32_NOPAD
        .encode(&hash)
        .to_ascii_lowercase();
    format!("{text}.b32.i2p")
}

// ---- the binary ----------------------------------------------------------------------

/// The ports of one automap set-up: two SOCKS listeners (automap uses `main`), the DNS
/// port, the transparent port and the status endpoint.
#[derive(Clone, Copy)]
struct Ports {
    main: SocketAddr,
    other: SocketAddr,
    dns: SocketAddr,
    trans: SocketAddr,
    status: SocketAddr,
}

impl Ports {
    fn new() -> Ports {
        let [main, other, dns, trans, status] = free_addrs();
        Ports {
            main,
            other,
            dns,
            trans,
            status,
        }
    }

    /// The config: the listeners, and `[automap]` with `automap` appended to it when given.
    fn config(&self, automap: Option<&str>) -> String {
        let Ports {
            main,
            other,
            dns,
            trans,
            status,
        } = self;
        let mut c = format!(
            "status_listen = \"{status}\"\n\
             [[proxy]]\nname = \"main\"\nlisten = \"{main}\"\n\
             [[proxy]]\nname = \"other\"\nlisten = \"{other}\"\n"
        );
        if let Some(extra) = automap {
            c += &format!(
                "[automap]\ndns_listen = \"{dns}\"\ntrans_listen = \"{trans}\"\nttl = {TTL}\n{extra}\n"
            );
        }
        c
    }
}

/// A rig whose fake bridge knows `NAME` (the echo service).
fn rig() -> Rig {
    let r = Rig::new();
    r.fake.name(NAME, &r.service_dest);
    r
}

/// `eepsocks run` with `[automap]` (plus `extra`) on fresh ports, ready.
fn start(extra: &str) -> (Rig, Ports, Eepsocks) {
    let r = rig();
    let ports = Ports::new();
    let p = r.run(&ports.config(Some(extra)), &[]);
    (r, ports, p)
}

fn counter(at: SocketAddr, key: &str) -> u64 {
    status(at, "main")[key].as_u64().unwrap()
}

/// Wait until counter `key` of `main` is `want`; its last value either way.
fn counter_reaches(at: SocketAddr, key: &str, want: u64) -> u64 {
    let end = Instant::now() + ANSWER;
    loop {
        let got = counter(at, key);
        if got == want || Instant::now() > end {
            return got;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---- SOCKS clients -------------------------------------------------------------------

/// "ping" goes out and comes back: the stream reaches the echo service.
fn echo(s: &mut TcpStream) {
    s.write_all(b"ping").unwrap();
    let mut back = [0u8; 4];
    s.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"ping");
}

fn socks(proxy: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(ANSWER)).unwrap();
    s
}

/// SOCKS5 CONNECT to an IPv4 address (ATYP 1): the reply code; on 0 the echo is checked.
fn socks5_ip(proxy: SocketAddr, ip: Ipv4Addr) -> u8 {
    let mut s = socks(proxy);
    s.write_all(&[5, 1, 0]).unwrap();
    let mut m = [0u8; 2];
    s.read_exact(&mut m).unwrap();
    assert_eq!(m, [5, 0]);
    let o = ip.octets();
    s.write_all(&[5, 1, 0, 1, o[0], o[1], o[2], o[3], 0, 80])
        .unwrap();
    let code = support::client::read_socks5_reply(&mut s).unwrap();
    if code == 0 {
        echo(&mut s);
    }
    code
}

/// Plain SOCKS4 CONNECT (`04 01 port ip 00`, no 4a name): the reply code; on 90 the echo
/// is checked.
fn socks4_ip(proxy: SocketAddr, ip: Ipv4Addr) -> u8 {
    let mut s = socks(proxy);
    let o = ip.octets();
    s.write_all(&[4, 1, 0, 80, o[0], o[1], o[2], o[3], 0])
        .unwrap();
    let mut rep = [0u8; 8];
    s.read_exact(&mut rep).unwrap();
    if rep[1] == 90 {
        echo(&mut s);
    }
    rep[1]
}

// ---- 1. answers ----------------------------------------------------------------------

/// The DNS port answers what it maps and refuses the rest: a b32 (resolved without a
/// router lookup) and a name the bridge knows get A records in the configured network with
/// the configured TTL, stable across queries and in any letter case; MX and TXT are
/// NOERROR without answers (AAAA: `garlicat_addresses`); an unknown .i2p name is NXDOMAIN; clearnet names, `localhost`
/// and IP literals are REFUSED (nothing is ever forwarded); PTR outside the network is
/// REFUSED and inside it NXDOMAIN, mapped or not (no name is given back). Over TCP too,
/// two queries on one connection.
#[test]
fn dns_answers_i2p_names_and_refuses_the_rest() {
    let net: eepsocks::naming::standins::Network = "10.99.0.0/16".parse().unwrap();
    let (r, ports, _p) = start(&format!("network = \"{net}\""));
    let dns = ports.dns;

    // A b32 nobody registered: well-formed is enough, the router is not asked.
    let lone = b32(1);
    let m = ask(dns, &lone, RecordType::A);
    assert!(m.metadata.authoritative && m.metadata.recursion_desired);
    let (b32_ip, ttl) = a_record(&m);
    assert!(net.contains(b32_ip), "{b32_ip} outside {net}");
    assert_eq!(ttl, TTL);
    let short = &lone[..20];
    assert!(
        !r.fake.commands().iter().any(|c| c.contains(short)),
        "a b32 was looked up: {:?}",
        r.fake.commands()
    );

    // A name: the bridge's NAMING LOOKUP decides.
    let (ip, ttl) = a_record(&ask(dns, NAME, RecordType::A));
    assert!(net.contains(ip), "{ip} outside {net}");
    assert_eq!(ttl, TTL);
    assert_ne!(ip, b32_ip, "two names, one address");
    assert!(
        r.fake.count("NAMING LOOKUP") >= 1,
        "{:?}",
        r.fake.commands()
    );
    assert_eq!(a_record(&ask(dns, NAME, RecordType::A)).0, ip, "not stable");
    assert_eq!(a_record(&ask(dns, "EcHo.I2P", RecordType::A)).0, ip, "case");
    assert_eq!(a_record(&ask(dns, &lone, RecordType::A)).0, b32_ip);

    // No way back from the address to the name: a mapped address is NXDOMAIN, as an
    // unused one is.
    for mapped in [ip, b32_ip] {
        let m = ask(dns, &reverse(mapped), RecordType::PTR);
        assert_eq!(rcode(&m), ResponseCode::NXDomain, "PTR {mapped}");
    }
    let unused = (1..255)
        .map(|i| Ipv4Addr::new(10, 99, 0, i))
        .find(|a| ![ip, b32_ip].contains(a))
        .unwrap();
    let nx = ask(dns, &reverse(unused), RecordType::PTR);
    assert_eq!(rcode(&nx), ResponseCode::NXDomain);
    let outside = ask(dns, &reverse(Ipv4Addr::new(1, 2, 3, 4)), RecordType::PTR);
    assert_eq!(rcode(&outside), ResponseCode::Refused);

    // Other types of an I2P name: it exists, but has no such record.
    for t in [RecordType::MX, RecordType::TXT] {
        let m = ask(dns, NAME, t);
        assert_eq!(rcode(&m), ResponseCode::NoError, "{t}");
        assert!(m.metadata.authoritative, "{t}");
    }
    assert_eq!(
        rcode(&ask(dns, "nosuch.i2p", RecordType::A)),
        ResponseCode::NXDomain
    );
    for refused in ["example.com", "localhost", "1.2.3.4", "i2p"] {
        let m = ask(dns, refused, RecordType::A);
        assert_eq!(rcode(&m), ResponseCode::Refused, "{refused}");
        assert!(!m.metadata.authoritative, "{refused}");
    }
    assert!(counter(ports.status, "dns_refused") >= 5);

    // TCP: two queries on one connection, the same table.
    let mut s = TcpStream::connect(dns).unwrap();
    s.set_read_timeout(Some(ANSWER)).unwrap();
    assert_eq!(a_record(&tcp_ask(&mut s, 7, NAME, RecordType::A)).0, ip);
    let m = tcp_ask(&mut s, 8, &reverse(ip), RecordType::PTR);
    assert_eq!(rcode(&m), ResponseCode::NXDomain);
}

// ---- 2. SOCKS ------------------------------------------------------------------------

/// A virtual address from the DNS port is a destination for SOCKS clients that only
/// speak IP: SOCKS5 with ATYP 1 and plain SOCKS4 (no 4a) to it reach the echo service on
/// the automap listener; another listener (another identity) refuses it (0x02). RESOLVE
/// on the automap listener shares the table (same address for the same name) and hands
/// out addresses of the automap network; on the other listener, RESOLVE's own 255/8.
#[test]
fn virtual_addresses_work_through_socks() {
    let (r, ports, _p) = start("");
    let net: eepsocks::naming::standins::Network = "127.192.0.0/10".parse().unwrap();
    let (ip, _) = a_record(&ask(ports.dns, NAME, RecordType::A));
    assert!(net.contains(ip), "{ip} not in the default network");
    assert_eq!(socks5_ip(ports.main, ip), 0x00, "SOCKS5 to {ip}");
    assert_eq!(socks4_ip(ports.main, ip), 90, "SOCKS4 to {ip}");
    assert_eq!(socks5_ip(ports.other, ip), 0x02, "another listener");
    assert_eq!(socks4_ip(ports.other, ip), 91, "another listener, SOCKS4");

    // A b32 mapped by DNS, too (the router opens it by hash).
    let (svc, _) = a_record(&ask(ports.dns, &r.service, RecordType::A));
    assert_eq!(socks5_ip(ports.main, svc), 0x00);

    // RESOLVE and DNS hand out from one table.
    assert_eq!(support::client::socks5_resolve(ports.main, NAME), ip);
    let fresh = support::client::socks5_resolve(ports.main, &b32(2));
    assert!(net.contains(fresh), "RESOLVE gave {fresh}");
    let theirs = support::client::socks5_resolve(ports.other, NAME);
    assert_eq!(
        theirs.octets()[0],
        255,
        "the other listener's RESOLVE: {theirs}"
    );
}

// ---- 3. malformed input --------------------------------------------------------------

/// A small deterministic PRNG (xorshift64*): the garbage is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Garbage of every kind: random bytes, and a valid header with random bits flipped or
/// random bytes after it (those get past the 12-byte check into hickory's decoder). The
/// flipped query is a PTR: no flip makes it an .i2p name, so no packet waits for a router
/// lookup (lookups run one at a time on the SAM control connection, ~1.5 ms each against
/// the fake; a flood of them fills the 64 queries in flight, which is
/// `slow_lookups_starve_queries_that_need_no_router`).
fn garbage(rng: &mut Rng) -> Vec<u8> {
    let len = (rng.next() % 600) as usize;
    match rng.next() % 3 {
        0 => rng.bytes(len),
        1 => {
            let mut q = query(
                rng.next() as u16,
                "5.0.192.127.in-addr.arpa",
                RecordType::PTR,
            );
            for _ in 0..1 + rng.next() % 4 {
                let i = (rng.next() as usize) % q.len();
                q[i] ^= 1 << (rng.next() % 8);
            }
            q
        }
        _ => {
            // Header of a one-question query, then noise.
            let mut q = vec![
                rng.next() as u8,
                rng.next() as u8,
                1,
                0,
                0,
                1,
                0,
                0,
                0,
                0,
                0,
                0,
            ];
            q.extend(rng.bytes(len));
            q
        }
    }
}

/// Send a probe (PTR of an unmapped address: NXDOMAIN, no router) and wait for its
/// answer, skipping replies to earlier garbage. Replies seen are added to `replies`.
fn probe(s: &UdpSocket, id: u16, replies: &mut u64) {
    let name = reverse(Ipv4Addr::new(127, 192, 0, 0));
    s.send(&query(id, &name, RecordType::PTR)).unwrap();
    let mut buf = [0u8; 2048];
    loop {
        let n = s.recv(&mut buf).expect("the probe is answered");
        *replies += 1;
        let Ok(m) = Message::from_vec(&buf[..n]) else {
            panic!("a reply that does not decode: {:?}", &buf[..n]);
        };
        if m.metadata.id == id
            && m.queries.first().map(|q| q.name().to_ascii()) == Some(format!("{name}."))
        {
            // The network address itself is never handed out: NXDOMAIN.
            assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
            return;
        }
    }
}

/// Malformed input never stops the DNS port: 10,000 random packets (seeded, 0 to ~600
/// bytes) and every prefix of a real query, then a valid query is still answered, and
/// the status counts every message (`dns_queries`) and the malformed ones
/// (`dns_malformed`). A response (QR=1) gets no answer, so two servers cannot bounce
/// messages at each other.
///
/// Sent in batches of 16 with an answered probe after each, so the counts are exact: under
/// a blast the kernel drops what overflows the socket buffer, and beyond 64 messages in
/// flight the server drops what is not a query without counting it
/// (`messages_dropped_while_busy_are_counted`). The probe's answer does not prove its batch
/// was handled (tokio runs the task spawned last first), so a batch is kept to a quarter of
/// the 64 in flight.
#[test]
fn malformed_packets_do_not_kill_the_dns_port() {
    let (_r, ports, p) = start("");
    let s = udp_to(ports.dns, ANSWER);
    let mut rng = Rng(0x5eed_a11c_e5ee_d123);
    let mut sent = 0u64;
    // What the server must count as malformed: exactly what its own parser rejects.
    let mut malformed_sent = 0u64;
    let mut count = |packet: &[u8]| {
        if matches!(
            dns::parse(packet),
            dns::Parsed::Reply(_) | dns::Parsed::Drop
        ) {
            malformed_sent += 1;
        }
    };
    let mut replies = 0u64;
    let mut probes = 0u16;
    let t = Instant::now();
    for i in 0..10_000 {
        let g = garbage(&mut rng);
        count(&g);
        s.send(&g).unwrap();
        sent += 1;
        if i % 16 == 15 {
            probes += 1;
            probe(&s, 0x8000 | probes, &mut replies);
            sent += 1;
        }
    }
    let garbage_secs = t.elapsed().as_secs_f64();
    // Every prefix of a real query: up to 11 bytes dropped, from 12 on FORMERR.
    let whole = query(0x4242, NAME, RecordType::A);
    for len in 0..whole.len() {
        count(&whole[..len]);
        s.send(&whole[..len]).unwrap();
        sent += 1;
    }
    probes += 1;
    probe(&s, 0x8000 | probes, &mut replies);
    sent += 1;
    let non_probe_replies = replies - u64::from(probes);

    // A response is never answered.
    let mut response = Message::new(0x5151, MessageType::Response, OpCode::Query);
    response.add_query(Query::query(Name::from_ascii(NAME).unwrap(), RecordType::A));
    s.send(&response.to_vec().unwrap()).unwrap();
    sent += 1;
    count(&response.to_vec().unwrap());
    let quiet = udp_to(ports.dns, Duration::from_millis(500));
    quiet.send(&response.to_vec().unwrap()).unwrap();
    sent += 1;
    count(&response.to_vec().unwrap());
    let mut buf = [0u8; 2048];
    let e = quiet.recv(&mut buf).expect_err("a response was answered");
    assert!(
        matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{e}"
    );

    // Still serving.
    let (ip, _) = a_record(&ask(ports.dns, NAME, RecordType::A));
    sent += 1;
    assert_eq!(socks5_ip(ports.main, ip), 0);
    let queries = counter_reaches(ports.status, "dns_queries", sent);
    let malformed = counter_reaches(ports.status, "dns_malformed", malformed_sent);
    eprintln!(
        "{sent} messages ({} garbage in {garbage_secs:.2} s, {} prefixes, {probes} probes): \
         dns_queries {queries}, dns_malformed {malformed} (expected {malformed_sent}), \
         {non_probe_replies} replies to garbage",
        10_000,
        whole.len()
    );
    assert_eq!(queries, sent, "every message is counted\n{}", p.log());
    assert_eq!(malformed, malformed_sent, "malformed messages counted");
    assert!(
        p.log().lines().all(|l| !l.contains("panicked")),
        "{}",
        p.log()
    );
}

// ---- a busy DNS port ------------------------------------------------------------------

/// How long the fake holds the first NAMING LOOKUP: the SAM client runs lookups one at a
/// time on the control connection, so every later lookup waits behind it.
const HELD: Duration = Duration::from_secs(3);

/// Fill the DNS port's 64 queries in flight (MAX_DNS_INFLIGHT) with lookups stuck behind
/// one the fake holds for HELD: 70 A queries for unknown names, the last 6 of which get
/// SERVFAIL at once. Returns the socket the replies to the 64 come back on.
fn fill_inflight(r: &Rig, dns: SocketAddr) -> UdpSocket {
    r.fake.delay_next("NAMING LOOKUP", HELD, Some(1));
    let s = udp_to(dns, Duration::from_secs(1));
    for i in 0..70u16 {
        s.send(&query(i, &format!("busy{i}.i2p"), RecordType::A))
            .unwrap();
        // The first must reach the fake first, so it is the one held.
        if i == 0 {
            assert!(r.fake.wait_for(|st| st.count("NAMING LOOKUP") >= 1, ANSWER));
        }
    }
    let mut buf = [0u8; 512];
    for _ in 0..6 {
        let n = s
            .recv(&mut buf)
            .expect("SERVFAIL at once beyond 64 in flight");
        let m = Message::from_vec(&buf[..n]).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    }
    s
}

/// Every message counts, also those that arrive while 64 lookups are waiting for the
/// router: 100 runts sent while the port is busy are counted as queries and as malformed.
#[test]
fn messages_dropped_while_busy_are_counted() {
    let (r, ports, _p) = start("");
    let _busy = fill_inflight(&r, ports.dns);
    let s = udp_to(ports.dns, ANSWER);
    for _ in 0..100 {
        s.send(&[0u8; 5]).unwrap();
    }
    std::thread::sleep(HELD + Duration::from_secs(1));
    let queries = counter_reaches(ports.status, "dns_queries", 170);
    let malformed = counter(ports.status, "dns_malformed");
    assert_eq!(
        (queries, malformed),
        (170, 100),
        "70 queries and 100 runts were received"
    );
}

/// Slow router lookups do not hold up queries that need none: with one lookup held for
/// 3 s and 64 more waiting behind it (every slot taken), a b32 A query, a PTR and a
/// clearnet name are still answered at once (NOERROR, NXDOMAIN, REFUSED), not SERVFAIL.
/// Only queries that wait for the router take a slot.
#[test]
fn slow_lookups_do_not_starve_queries_that_need_no_router() {
    let (r, ports, _p) = start("");
    let (ip, _) = a_record(&ask(ports.dns, &b32(3), RecordType::A));
    let _busy = fill_inflight(&r, ports.dns);
    let b32_answer = ask(ports.dns, &b32(4), RecordType::A);
    let ptr_answer = ask(ports.dns, &reverse(ip), RecordType::PTR);
    let refused = ask(ports.dns, "example.com", RecordType::A);
    assert_eq!(
        (
            b32_answer.metadata.response_code,
            ptr_answer.metadata.response_code,
            refused.metadata.response_code
        ),
        (
            ResponseCode::NoError,
            ResponseCode::NXDomain,
            ResponseCode::Refused
        ),
        "answers that need no router, while lookups wait"
    );
}

// ---- 4. exhaustion -------------------------------------------------------------------

/// A small network runs out instead of reusing: in 10.77.0.0/29 (6 usable addresses, at
/// most 3 mappings, the other 3 in quarantine for an hour) new names get addresses until
/// all 6 are in use or in quarantine, then SERVFAIL (by the 7th name at the latest). No
/// address ever stands for two names, the network and broadcast addresses are never
/// handed out, the names still mapped keep their address, and the forgotten ones get none
/// (all 6 addresses are in use or in quarantine).
#[test]
fn exhausted_network_servfails_and_never_reuses() {
    let net: eepsocks::naming::standins::Network = "10.77.0.0/29".parse().unwrap();
    let (_r, ports, _p) = start(&format!("network = \"{net}\"\nquarantine = 3600"));
    let dns = ports.dns;
    let mut handed: HashMap<Ipv4Addr, String> = HashMap::new();
    let mut order = Vec::new();
    let mut servfail_at = None;
    for i in 0..7 {
        let name = b32(100 + i);
        let m = ask(dns, &name, RecordType::A);
        if m.metadata.response_code == ResponseCode::ServFail {
            assert!(m.answers.is_empty());
            servfail_at = Some(i + 1);
            break;
        }
        let (ip, _) = a_record(&m);
        assert!(net.contains(ip), "{ip}");
        assert!(
            ![Ipv4Addr::new(10, 77, 0, 0), Ipv4Addr::new(10, 77, 0, 7)].contains(&ip),
            "{ip}: network or broadcast address"
        );
        if let Some(old) = handed.insert(ip, name.clone()) {
            panic!("{ip} handed to {old} and then to {name}");
        }
        order.push((ip, name));
    }
    eprintln!("SERVFAIL at new name {servfail_at:?}");
    assert_eq!(
        servfail_at,
        Some(7),
        "6 addresses: the 7th name cannot get one"
    );
    // The last three are mapped and keep their address; the first three were forgotten
    // (their addresses sit in quarantine) and get none now.
    for (k, (ip, name)) in order.iter().enumerate() {
        let m = ask(dns, name, RecordType::A);
        if k >= 3 {
            assert_eq!(a_record(&m).0, *ip, "{name}");
        } else {
            assert_eq!(m.metadata.response_code, ResponseCode::ServFail, "{name}");
        }
    }
    // Failing forgot nothing.
    let m = ask(dns, &b32(200), RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    for (ip, name) in &order[3..] {
        assert_eq!(a_record(&ask(dns, name, RecordType::A)).0, *ip);
    }
}

// ---- 5. flood ------------------------------------------------------------------------

/// 20,000 distinct b32 names by A over UDP from 100 source addresses (127.0.0.2 to
/// 127.0.0.101, 200 new names each: the burst one source may ask at once), each source as
/// fast as one client with a window of queries in flight gets answers (a lost datagram is
/// sent again after a second): every one is answered (A or SERVFAIL), and no address
/// stands for two names although most mappings are evicted on the way (1,024 for the
/// DNS port's identity). Prints queries per second.
#[test]
fn flood_of_names_is_answered_without_reuse() {
    const N: usize = 20_000;
    /// New names one source may ask at once (NEW_NAMES_BURST).
    const PER_SOURCE: usize = 200;
    let (_r, ports, _p) = start("");
    let names: Vec<String> = (0..N as u64).map(|i| b32(10_000 + i)).collect();
    let mut f = Flood {
        names: &names,
        owner: HashMap::new(),
        servfail: 0,
        resent: 0,
    };
    let t = Instant::now();
    for (k, chunk) in (0..N).collect::<Vec<_>>().chunks(PER_SOURCE).enumerate() {
        let s = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 2 + k as u8), 0)).unwrap();
        s.connect(ports.dns).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        f.run(&s, chunk, t);
    }
    let secs = t.elapsed().as_secs_f64();
    let (servfail, resent) = (f.servfail, f.resent);
    eprintln!(
        "flood: {N} names in {secs:.2} s = {:.0} queries/s over UDP (window {WINDOW}, {} \
         sources); {} A, {servfail} SERVFAIL, {resent} resent",
        N as f64 / secs,
        N / PER_SOURCE,
        N - servfail
    );
    assert_eq!(f.owner.len(), N - servfail);
    assert_eq!(counter(ports.status, "dns_rate_limited"), 0);
}

/// Below MAX_DNS_INFLIGHT (64), over which the server answers SERVFAIL at once.
const WINDOW: usize = 48;

/// The flood's state: which name each address was handed to.
struct Flood<'a> {
    names: &'a [String],
    owner: HashMap<Ipv4Addr, usize>,
    servfail: usize,
    resent: usize,
}

impl Flood<'_> {
    /// Ask for names `ids` on `s`, WINDOW at a time, until each is answered.
    fn run(&mut self, s: &UdpSocket, ids: &[usize], t: Instant) {
        let names = self.names;
        let ask = |i: usize| s.send(&query(i as u16, &names[i], RecordType::A)).unwrap();
        let mut outstanding: HashMap<u16, Instant> = HashMap::new();
        let mut answered = std::collections::HashSet::new();
        let mut next = 0;
        let mut buf = [0u8; 2048];
        while answered.len() < ids.len() {
            while outstanding.len() < WINDOW && next < ids.len() {
                ask(ids[next]);
                outstanding.insert(ids[next] as u16, Instant::now());
                next += 1;
            }
            let n = match s.recv(&mut buf) {
                Ok(n) => n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    for (&id, at) in outstanding.iter_mut() {
                        if at.elapsed() > Duration::from_secs(1) {
                            ask(id as usize);
                            *at = Instant::now();
                            self.resent += 1;
                        }
                    }
                    assert!(
                        t.elapsed() < Duration::from_secs(120),
                        "flood stalled at {}",
                        self.owner.len()
                    );
                    continue;
                }
                Err(e) => panic!("{e}"),
            };
            let m = Message::from_vec(&buf[..n]).unwrap();
            let i = m.metadata.id as usize;
            if outstanding.remove(&m.metadata.id).is_none() || answered.contains(&i) {
                // The answer to a resent query that was answered meanwhile.
                continue;
            }
            assert_eq!(m.queries[0].name().to_ascii(), format!("{}.", names[i]));
            answered.insert(i);
            if m.metadata.response_code == ResponseCode::ServFail {
                self.servfail += 1;
                continue;
            }
            let (ip, _) = a_record(&m);
            if let Some(j) = self.owner.insert(ip, i) {
                assert_eq!(j, i, "{ip} handed to {} and {}", names[j], names[i]);
            }
        }
    }
}

// ---- 6. transparent port -------------------------------------------------------------

/// A connection that reaches the transparent port without a firewall redirect has no
/// virtual address as its original destination: it is closed at once (EOF or reset, never
/// a stream) and counted in `transparent` and `transparent_refused`.
#[test]
fn transparent_port_closes_direct_connections() {
    let (_r, ports, _p) = start("");
    for n in 1..=2u64 {
        let mut s = TcpStream::connect(ports.trans).unwrap();
        s.set_read_timeout(Some(ANSWER)).unwrap();
        let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            other => panic!("not closed at once: {other:?}"),
        }
        assert_eq!(counter_reaches(ports.status, "transparent", n), n);
        assert_eq!(counter_reaches(ports.status, "transparent_refused", n), n);
    }
    assert_eq!(counter(ports.status, "streams_opened"), 0);
}

// ---- 7. reload -----------------------------------------------------------------------

/// The daemon with NOTIFY_SOCKET, so each reload's outcome can be waited for exactly.
fn start_notified(r: &Rig, config: &str) -> (Eepsocks, Manager) {
    r.write_config(config);
    let m = Manager::listen(&r.dir.path().join("notify.sock"));
    let mut cmd = r.command(&[]);
    cmd.env("NOTIFY_SOCKET", r.dir.path().join("notify.sock"));
    let p = Eepsocks::spawn_command(cmd);
    p.wait_ready_within(READY);
    (p, m)
}

/// Write `config`, SIGHUP, and wait for the outcome: true if applied, false if refused.
fn reload(r: &Rig, p: &Eepsocks, m: &Manager, config: &str) -> bool {
    let from = m.messages().len();
    r.write_config(config);
    p.hup();
    let end = Instant::now() + SETTLE;
    loop {
        for (_, text) in m.messages().iter().skip(from) {
            if text.contains("reload applied") {
                return true;
            }
            if text.contains("reload refused") {
                return false;
            }
        }
        assert!(
            Instant::now() < end,
            "no reload outcome: {:?}\n{}",
            m.texts(),
            p.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reloads: with `[automap]` unchanged a mapping survives (same address, SOCKS5);
/// a new `network` hands out addresses in it (and the old ones mean nothing); a
/// `dns_listen` off loopback is refused as a whole and the running DNS port keeps
/// answering; without `[automap]` the DNS port closes.
#[test]
fn reload_keeps_changes_and_closes_automap() {
    let r = rig();
    let ports = Ports::new();
    let (p, m) = start_notified(&r, &ports.config(Some("")));
    let (ip, _) = a_record(&ask(ports.dns, NAME, RecordType::A));
    assert_eq!(socks5_ip(ports.main, ip), 0);

    assert!(reload(&r, &p, &m, &ports.config(Some(""))), "{}", p.log());
    assert_eq!(
        a_record(&ask(ports.dns, NAME, RecordType::A)).0,
        ip,
        "remapped"
    );
    assert_eq!(socks5_ip(ports.main, ip), 0, "{}", p.log());

    let net: eepsocks::naming::standins::Network = "10.66.0.0/16".parse().unwrap();
    let moved = ports.config(Some(&format!("network = \"{net}\"")));
    assert!(reload(&r, &p, &m, &moved), "{}", p.log());
    let (ip2, _) = a_record(&ask(ports.dns, NAME, RecordType::A));
    assert!(net.contains(ip2), "{ip2} after the reload");
    assert_eq!(socks5_ip(ports.main, ip2), 0);
    assert_eq!(socks5_ip(ports.main, ip), 0x02, "the old network's address");
    assert_eq!(
        rcode(&ask(ports.dns, &reverse(ip), RecordType::PTR)),
        ResponseCode::Refused
    );

    // Off loopback: refused whole, the running port unchanged.
    let open = moved.replace(
        &format!("dns_listen = \"{}\"", ports.dns),
        &format!("dns_listen = \"0.0.0.0:{}\"", ports.dns.port()),
    );
    assert_ne!(open, moved);
    assert!(!reload(&r, &p, &m, &open), "0.0.0.0 accepted");
    assert!(p.log().contains("loopback only"), "{}", p.log());
    assert_eq!(a_record(&ask(ports.dns, NAME, RecordType::A)).0, ip2);

    // Without [automap]: nothing answers on the DNS port any more, UDP or TCP.
    assert!(reload(&r, &p, &m, &ports.config(None)), "{}", p.log());
    let end = Instant::now() + SETTLE;
    loop {
        let udp = try_ask(ports.dns, NAME, RecordType::A);
        let tcp = TcpStream::connect(ports.dns);
        if udp.is_err() && tcp.is_err() {
            eprintln!("after the reload: UDP {:?}, TCP {:?}", udp.err(), tcp.err());
            break;
        }
        assert!(
            Instant::now() < end,
            "DNS still open: UDP {udp:?}, TCP {tcp:?}\n{}",
            p.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        TcpStream::connect(ports.trans).is_err(),
        "trans_listen still open"
    );
    // The listener itself carries on.
    assert!(r.echo_ok(ports.main, None));
}

// ---- 8. config checks ----------------------------------------------------------------

/// What `validate()` says about a config with `[automap]` body `automap`.
fn automap_error(automap: &str) -> String {
    let body =
        format!("[[proxy]]\nname = \"main\"\nlisten = \"127.0.0.1:4447\"\n[automap]\n{automap}\n");
    // Values of the wrong form are refused as the file is read, the rest by validate().
    let c: Config = match toml::from_str(&body) {
        Ok(c) => c,
        Err(e) => return e.to_string(),
    };
    match c.validate() {
        Ok(()) => panic!("accepted:\n{body}"),
        Err(e) => format!("{e:#}"),
    }
}

/// Bad `[automap]` values are refused with a message that names the key and the fix; and
/// `eepsocks run` exits non-zero with that message before serving anything.
#[test]
fn bad_automap_config_is_refused_clearly() {
    for (automap, says) in [
        (
            "network = \"127.192.0.1/10\"",
            "network = \"127.192.0.1/10\"\n  |           ^^^^^^^^^^^^^^^^\n\"127.192.0.1/10\": host bits set (the network address is 127.192.0.0/10)",
        ),
        ("network = \"127.192.0.0/31\"", "prefix /1 to /30"),
        ("network = \"nope\"", "an IPv4 network like"),
        ("listener = \"nope\"", "[automap] listener \"nope\": no such listener"),
        ("ttl = 0", "[automap] ttl = 0: 1 to 3600 seconds"),
        ("ttl = 3601", "[automap] ttl = 3601: 1 to 3600 seconds"),
        (
            "ttl = 120\nquarantine = 60",
            "[automap] quarantine = 60: at least ttl (120) and at most a week",
        ),
        (
            "dns_listen = \"0.0.0.0:5353\"",
            "[automap] dns_listen 0.0.0.0:5353: loopback only",
        ),
        (
            "trans_listen = \"127.0.0.1:4447\"",
            "[automap] trans_listen 127.0.0.1:4447: a SOCKS listener has that address",
        ),
        (
            "dns_listen = \"127.0.0.1:5353\"\ntrans_listen = \"127.0.0.1:5353\"",
            "dns_listen and trans_listen must differ",
        ),
        // Virtual addresses that something answers at: this machine, the resolver stub.
        (
            "network = \"127.0.0.0/8\"",
            "[automap] network 127.0.0.0/8 contains 127.0.0.1, an address in use",
        ),
        (
            "network = \"127.0.0.0/24\"",
            "contains 127.0.0.1, an address in use",
        ),
        (
            "network = \"255.0.0.0/8\"",
            "[automap] network 255.0.0.0/8 overlaps 255.0.0.0/8, which RESOLVE's stand-ins use",
        ),
        (
            "network = \"254.0.0.0/7\"",
            "overlaps 255.0.0.0/8",
        ),
        (
            "trans_listen = \"[::1]:4449\"",
            "[automap] trans_listen: an IPv4 loopback address",
        ),
    ] {
        let got = automap_error(automap);
        assert!(got.contains(says), "{automap:?}: {got:?}");
    }
    // DNS and redirected connections carry no login: never the identity of one that needs it.
    let locked = "[[proxy]]\nname = \"main\"\nlisten = \"127.0.0.1:4447\"\n\
                  [proxy.auth]\nalice = \"x\"\n[automap]\n";
    let c: Config = toml::from_str(locked).unwrap();
    let got = format!("{:#}", c.validate().unwrap_err());
    assert!(got.contains("requires a login"), "{got}");
    // Unknown keys are typos, not silently ignored.
    let typo = "[automap]\nnetwrok = \"10.0.0.0/8\"\n";
    assert!(toml::from_str::<Config>(typo).is_err());

    // The binary: refused at start, with the message.
    let r = Rig::new();
    let [main] = free_addrs();
    r.write_config(&format!(
        "status_listen = \"off\"\n[[proxy]]\nname = \"main\"\nlisten = \"{main}\"\n\
         [automap]\nnetwork = \"127.192.0.1/10\"\n"
    ));
    let out = r.command(&[]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started:\n{err}");
    assert!(err.contains("host bits set"), "{err}");
    assert!(
        TcpStream::connect(main).is_err(),
        "listening despite the error"
    );
}

// ---- UDP ASSOCIATE -------------------------------------------------------------------

/// UDP ASSOCIATE through `proxy` for datagrams from `u`: the control connection (the
/// association lives as long as it does) and the relay to send to.
fn udp_associate(proxy: SocketAddr, u: &UdpSocket) -> (TcpStream, SocketAddr) {
    let mut c = socks(proxy);
    c.write_all(&[5, 1, 0]).unwrap();
    let mut m = [0u8; 2];
    c.read_exact(&mut m).unwrap();
    let mut req = vec![5, 3, 0, 1, 127, 0, 0, 1];
    req.extend_from_slice(&u.local_addr().unwrap().port().to_be_bytes());
    c.write_all(&req).unwrap();
    let mut r = [0u8; 10];
    c.read_exact(&mut r).unwrap();
    assert_eq!(r[1], 0, "UDP ASSOCIATE refused: {r:?}");
    let relay = SocketAddr::from(([r[4], r[5], r[6], r[7]], u16::from_be_bytes([r[8], r[9]])));
    (c, relay)
}

fn udp_header_v4(ip: Ipv4Addr, port: u16) -> Vec<u8> {
    [&[0, 0, 0, 1][..], &ip.octets(), &port.to_be_bytes()].concat()
}

fn udp_header_name(name: &str, port: u16) -> Vec<u8> {
    [
        &[0, 0, 0, 3, name.len() as u8][..],
        name.as_bytes(),
        &port.to_be_bytes(),
    ]
    .concat()
}

/// The automap listener's associations reach the virtual address DNS handed out, and their
/// replies name the sender by it (ATYP 1), also to datagrams sent by name; on the other
/// listener that address is an IP
/// literal (dropped, counted) and replies name the sender's b32 (ATYP 3).
#[test]
fn udp_associate_speaks_virtual_addresses_on_the_automap_listener() {
    let r = rig();
    let ports = Ports::new();
    let echo = support::services::spawn_datagram_echo(None, r.fake.addr(), r.fake.udp_addr(), &[]);
    let config = format!(
        "sam_udp = \"{}\"\n{}",
        r.fake.udp_addr(),
        ports.config(Some(""))
    );
    let _p = r.run(&config, &[]);
    let (vip, _) = a_record(&ask(ports.dns, &echo, RecordType::A));
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(ANSWER)).unwrap();
    let mut buf = [0u8; 2048];

    let (_main, relay) = udp_associate(ports.main, &u);
    // By name first: the reply names the sender by the address DNS gave for its b32.
    u.send_to(&[udp_header_name(&echo, 9), b"n".to_vec()].concat(), relay)
        .unwrap();
    let n = u.recv(&mut buf).expect("the echo by name");
    assert_eq!(
        &buf[..n],
        &[udp_header_v4(vip, 9), b"n".to_vec()].concat()[..]
    );
    u.send_to(&[udp_header_v4(vip, 9), b"v".to_vec()].concat(), relay)
        .unwrap();
    let n = u
        .recv(&mut buf)
        .expect("the echo through the virtual address");
    assert_eq!(
        &buf[..n],
        &[udp_header_v4(vip, 9), b"v".to_vec()].concat()[..]
    );

    let o = UdpSocket::bind("127.0.0.1:0").unwrap();
    o.set_read_timeout(Some(ANSWER)).unwrap();
    let (_other, relay) = udp_associate(ports.other, &o);
    o.send_to(&[udp_header_v4(vip, 9), b"x".to_vec()].concat(), relay)
        .unwrap();
    o.send_to(&[udp_header_name(&echo, 9), b"n".to_vec()].concat(), relay)
        .unwrap();
    let n = o.recv(&mut buf).expect("the echo by name");
    assert_eq!(
        &buf[..n],
        &[udp_header_name(&echo, 9), b"n".to_vec()].concat()[..]
    );
    let other = status(ports.status, "other");
    assert_eq!(other["udp_dropped_not_i2p"], 1, "{other}");
}

// ---- 9. abuse of the tables ------------------------------------------------------------

/// The automap config with `main` isolating by SOCKS username (no login).
fn start_per_user(extra: &str) -> (Rig, Ports, Eepsocks) {
    let r = rig();
    let ports = Ports::new();
    let cfg = ports.config(Some(extra)).replacen(
        "name = \"main\"\n",
        "name = \"main\"\nisolate = \"username\"\n",
        1,
    );
    let p = r.run(&cfg, &[]);
    (r, ports, p)
}

/// A SOCKS5 connection past method selection: no auth, or `user` with any password.
fn socks5_as(proxy: SocketAddr, user: Option<&str>) -> TcpStream {
    let mut s = socks(proxy);
    let mut m = [0u8; 2];
    match user {
        None => {
            s.write_all(&[5, 1, 0]).unwrap();
            s.read_exact(&mut m).unwrap();
            assert_eq!(m, [5, 0]);
        }
        Some(u) => {
            s.write_all(&[5, 1, 2]).unwrap();
            s.read_exact(&mut m).unwrap();
            assert_eq!(m, [5, 2]);
            let mut login = vec![1, u.len() as u8];
            login.extend_from_slice(u.as_bytes());
            login.extend_from_slice(&[1, b'x']);
            s.write_all(&login).unwrap();
            s.read_exact(&mut m).unwrap();
            assert_eq!(m, [1, 0]);
        }
    }
    s
}

/// Tor's RESOLVE as `user`: the address, or the reply code.
fn resolve_as(proxy: SocketAddr, user: Option<&str>, name: &str) -> Result<Ipv4Addr, u8> {
    let mut s = socks5_as(proxy, user);
    s.write_all(&support::client::socks5_request(0xF0, name, 0))
        .unwrap();
    let mut r = [0u8; 4];
    s.read_exact(&mut r).unwrap();
    if r[1] != 0 {
        return Err(r[1]);
    }
    assert_eq!(r[3], 1, "RESOLVE reply {r:?}");
    let mut a = [0u8; 6];
    s.read_exact(&mut a).unwrap();
    Ok(Ipv4Addr::new(a[0], a[1], a[2], a[3]))
}

/// SOCKS5 CONNECT to `ip` as `user`: the reply code; on 0 the echo is checked.
fn connect_as(proxy: SocketAddr, user: Option<&str>, ip: Ipv4Addr) -> u8 {
    let mut s = socks5_as(proxy, user);
    let o = ip.octets();
    s.write_all(&[5, 1, 0, 1, o[0], o[1], o[2], o[3], 0, 80])
        .unwrap();
    let code = support::client::read_socks5_reply(&mut s).unwrap();
    if code == 0 {
        echo(&mut s);
    }
    code
}

/// On an `isolate = "username"` listener without login, usernames are free: 5 usernames
/// × 1,030 RESOLVEs (more mappings than the whole table holds) leave the DNS port's
/// mapping and another username's mapping in place, both still reach the service, and
/// the DNS port still maps new names.
#[test]
fn usernames_cannot_evict_the_dns_port_or_each_other() {
    let (r, ports, _p) = start_per_user("");
    let (dns_ip, _) = a_record(&ask(ports.dns, NAME, RecordType::A));
    let victim = resolve_as(ports.main, Some("victim"), &r.service).unwrap();
    let t = Instant::now();
    let mut refused = 0;
    for u in 0..5 {
        let user = format!("flood{u}");
        for i in 0..1030 {
            refused += resolve_as(ports.main, Some(&user), &b32(50_000 + i)).is_err() as usize;
        }
    }
    eprintln!(
        "5 × 1030 RESOLVEs in {:.2} s, {refused} refused",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(
        refused, 0,
        "the flooders evict their own (or each other's) mappings"
    );
    assert_eq!(
        connect_as(ports.main, None, dns_ip),
        0,
        "the DNS port's mapping"
    );
    assert_eq!(
        connect_as(ports.main, Some("victim"), victim),
        0,
        "another username's mapping"
    );
    assert_eq!(a_record(&ask(ports.dns, NAME, RecordType::A)).0, dns_ip);
    a_record(&ask(ports.dns, &b32(1), RecordType::A));
}

/// One username filling its quarantine locks no one else out: in a /24 (254 addresses)
/// with an hour's quarantine, a username RESOLVEs new names until refused (0x01); the DNS
/// port and another username still get new addresses, and the flooder's mappings never
/// reuse an address within its quarantine.
#[test]
fn a_quarantine_flood_locks_no_one_else_out() {
    let (_r, ports, _p) = start_per_user("network = \"10.66.0.0/24\"\nquarantine = 3600");
    let mut seen = std::collections::HashSet::new();
    let mut refused_at = None;
    for i in 0..400 {
        match resolve_as(ports.main, Some("flood"), &b32(70_000 + i)) {
            Ok(ip) => assert!(seen.insert(ip), "{ip} came back within the quarantine"),
            Err(code) => {
                assert_eq!(code, 1);
                refused_at = Some(i);
                break;
            }
        }
    }
    eprintln!("flooder refused at new name {refused_at:?}");
    assert!(
        refused_at.is_some(),
        "a /24 cannot hold 400 names in quarantine"
    );
    let m = ask(ports.dns, &b32(2), RecordType::A);
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NoError,
        "DNS locked out"
    );
    assert!(
        resolve_as(ports.main, Some("other"), &b32(3)).is_ok(),
        "another username locked out"
    );
    assert!(
        resolve_as(ports.main, None, &b32(4)).is_ok(),
        "the listener's own identity locked out"
    );
}

/// Addresses cannot be predicted: of 40 fresh names in a row, no three consecutive
/// addresses share a step (the old walk, start + n·step, gave the step away in two
/// answers and every later address with it).
#[test]
fn dns_addresses_show_no_step() {
    let (_r, ports, _p) = start("");
    let ips: Vec<u32> = (0..40)
        .map(|i| u32::from(a_record(&ask(ports.dns, &b32(80_000 + i), RecordType::A)).0))
        .collect();
    let steps = ips
        .windows(3)
        .filter(|w| w[2].wrapping_sub(w[1]) == w[1].wrapping_sub(w[0]))
        .count();
    assert!(
        steps <= 1,
        "{steps} of 38 triples share their step: {ips:?}"
    );
}

/// PTR walks reveal nothing: the user resolves a name through the DNS port; another
/// local process asks two fresh names, and walks PTR back and forth from them (and on
/// every address of the /24 around the user's): every answer is NXDOMAIN, also for the
/// user's address.
#[test]
fn ptr_walks_reveal_no_names() {
    let (_r, ports, _p) = start("");
    let (mine, _) = a_record(&ask(ports.dns, NAME, RecordType::A));
    let a1 = u32::from(a_record(&ask(ports.dns, &b32(90_001), RecordType::A)).0);
    let a2 = u32::from(a_record(&ask(ports.dns, &b32(90_002), RecordType::A)).0);
    let step = a2.wrapping_sub(a1);
    let net: eepsocks::naming::standins::Network = "127.192.0.0/10".parse().unwrap();
    let mut probes: Vec<Ipv4Addr> = (1..=8u32)
        .flat_map(|k| {
            [
                a1.wrapping_sub(k.wrapping_mul(step)),
                a2.wrapping_add(k.wrapping_mul(step)),
            ]
        })
        .map(Ipv4Addr::from)
        .filter(|ip| net.contains(*ip))
        .collect();
    let base = u32::from(mine) & !0xff;
    probes.extend((0..256).map(|h| Ipv4Addr::from(base | h)));
    probes.extend([mine, Ipv4Addr::from(a1), Ipv4Addr::from(a2)]);
    for ip in probes {
        let m = ask(ports.dns, &reverse(ip), RecordType::PTR);
        assert_eq!(rcode(&m), ResponseCode::NXDomain, "PTR {ip}: {m:?}");
    }
}

/// New names are rate-limited per source address: 400 fresh names as fast as one UDP
/// client asks get at most the burst (200) plus 20 a second answered, the rest REFUSED and
/// counted in `dns_rate_limited`; names it already has, PTR and refusals are still
/// answered; TCP from the same address shares its bucket; another source address is not
/// held up; a second later the source gets new names again.
#[test]
fn new_names_are_rate_limited_per_source() {
    let (_r, ports, _p) = start("");
    let s = udp_to(ports.dns, ANSWER);
    let mut buf = [0u8; 2048];
    let (mut answered, mut limited) = (0u64, 0u64);
    let mut first = None;
    let t = Instant::now();
    for i in 0..400u64 {
        let id = i as u16;
        s.send(&query(id, &b32(100_000 + i), RecordType::A))
            .unwrap();
        let n = s.recv(&mut buf).unwrap();
        let m = decode(&buf[..n], id);
        match m.metadata.response_code {
            ResponseCode::NoError => {
                answered += 1;
                first.get_or_insert(a_record(&m).0);
            }
            ResponseCode::Refused => limited += 1,
            other => panic!("{other:?}"),
        }
    }
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "400 new names in {secs:.2} s from one source: {answered} answered, {limited} REFUSED"
    );
    assert!(answered >= 200, "{answered}");
    assert!(
        answered as f64 <= 200.0 + 20.0 * secs + 1.0,
        "{answered} in {secs:.2} s"
    );
    assert_eq!(
        counter_reaches(ports.status, "dns_rate_limited", limited),
        limited
    );
    // A name this source has, a PTR and a clearnet name: answered as before.
    let first = first.unwrap();
    assert_eq!(
        a_record(&ask(ports.dns, &b32(100_000), RecordType::A)).0,
        first
    );
    let ptr = ask(ports.dns, &reverse(first), RecordType::PTR);
    assert_eq!(rcode(&ptr), ResponseCode::NXDomain);
    assert_eq!(
        rcode(&ask(ports.dns, "example.com", RecordType::A)),
        ResponseCode::Refused
    );
    // TCP from 127.0.0.1 too.
    let mut tcp = TcpStream::connect(ports.dns).unwrap();
    tcp.set_read_timeout(Some(ANSWER)).unwrap();
    let m = tcp_ask(&mut tcp, 9, &b32(100_500), RecordType::A);
    assert_eq!(rcode(&m), ResponseCode::Refused, "TCP shares the bucket");
    // Another source address.
    let other = UdpSocket::bind("127.0.0.2:0").unwrap();
    other.connect(ports.dns).unwrap();
    other.set_read_timeout(Some(ANSWER)).unwrap();
    other
        .send(&query(77, &b32(100_501), RecordType::A))
        .unwrap();
    let n = other.recv(&mut buf).unwrap();
    a_record(&decode(&buf[..n], 77));
    // The bucket refills.
    std::thread::sleep(Duration::from_millis(1100));
    a_record(&ask(ports.dns, &b32(100_502), RecordType::A));
}

// ---- GarliCat ------------------------------------------------------------------------

/// The only answer, which must be an AAAA record.
fn aaaa_record(m: &Message) -> std::net::Ipv6Addr {
    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{m:?}");
    assert_eq!(m.answers.len(), 1, "{m:?}");
    match &m.answers[0] {
        Record {
            data: RData::AAAA(hickory_proto::rr::rdata::AAAA(ip)),
            ..
        } => *ip,
        other => panic!("not an AAAA record: {other:?}"),
    }
}

/// SOCKS5 CONNECT to an IPv6 address (ATYP 4): the reply code; on 0 the echo is checked.
fn socks5_ip6(proxy: SocketAddr, ip: std::net::Ipv6Addr) -> u8 {
    let mut s = socks(proxy);
    s.write_all(&[5, 1, 0]).unwrap();
    let mut m = [0u8; 2];
    s.read_exact(&mut m).unwrap();
    assert_eq!(m, [5, 0]);
    let mut req = vec![5, 1, 0, 4];
    req.extend_from_slice(&ip.octets());
    req.extend_from_slice(&[0, 80]);
    s.write_all(&req).unwrap();
    let code = support::client::read_socks5_reply(&mut s).unwrap();
    if code == 0 {
        echo(&mut s);
    }
    code
}

/// AAAA of an I2P name is its GarliCat address (fd60:db4d:ddb5::/48 + the first 80 bits
/// of the destination hash), also for `.i2p.alt` and b32 names; a SOCKS5 CONNECT to it
/// reaches the destination once this identity knows it; an address no known destination
/// has is refused (0x04) and the router is not asked; other IPv6 literals stay refused
/// (0x02).
#[test]
fn garlicat_addresses() {
    let (r, ports, _p) = start("");
    let dns = ports.dns;
    let echo_b32 = r.service_dest.b32();
    // Written out from the hash, not through the code under test.
    let hash = Sha256::digest(r.service_dest.bytes());
    let mut want = [0u8; 16];
    want[..6].copy_from_slice(&[0xfd, 0x60, 0xdb, 0x4d, 0xdd, 0xb5]);
    want[6..].copy_from_slice(&hash[..10]);
    let want = std::net::Ipv6Addr::from(want);

    // Before anything resolved it, the address names nothing this identity knows.
    assert_eq!(socks5_ip6(ports.main, want), 4);

    let ip = aaaa_record(&ask(dns, NAME, RecordType::AAAA));
    assert_eq!(ip, want);
    assert_eq!(
        aaaa_record(&ask(dns, "echo.i2p.alt", RecordType::AAAA)),
        want
    );
    assert_eq!(aaaa_record(&ask(dns, &echo_b32, RecordType::AAAA)), want);
    assert_eq!(
        rcode(&ask(dns, "nosuch.i2p", RecordType::AAAA)),
        ResponseCode::NXDomain
    );

    // The DNS port serves the listener's own identity: its CONNECT now finds the site.
    assert_eq!(socks5_ip6(ports.main, want), 0);
    // Another listener is another identity: it never met it.
    assert_eq!(socks5_ip6(ports.other, want), 4);

    // A neighbour in the /48 that no known destination has: refused, nothing looked up.
    let mut near = want.octets();
    near[15] ^= 1;
    let before = r.fake.count("STREAM CONNECT");
    assert_eq!(socks5_ip6(ports.main, std::net::Ipv6Addr::from(near)), 4);
    assert_eq!(r.fake.count("STREAM CONNECT"), before);
    // Any other IPv6 literal: refused as before.
    assert_eq!(socks5_ip6(ports.main, "2001:db8::1".parse().unwrap()), 2);
    assert_eq!(
        socks5_ip6(ports.main, "fd60:db4d:ddb6::1".parse().unwrap()),
        2
    );
}

/// A plain TCP connection to a GarliCat address, redirected by nftables (IPv6, inside a
/// namespace of the test's own) to the transparent port, reaches the destination with
/// those 80 bits once this identity knows it (the same rule as SOCKS5 ATYP 4); before
/// that, and for any other IPv6 address, it is closed without a stream. Needs root.
#[test]
fn garlicat_through_the_transparent_port() {
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: needs root (a network namespace for the nftables redirect)");
        return;
    }
    let ns = support::netns::Own::new("gc");
    let r = Rig::in_netns(&ns.name);
    r.fake.name(NAME, &r.service_dest);
    let ports = support::netns::run(&ns.name, Ports::new);
    let mut p = r.run(&ports.config(Some("")), &[]);
    let trans_port = ports.trans.port();
    // The whole GarliCat /48 and one other IPv6 network are local routes (so a connection
    // to them leaves connect() for the output hook) and redirected to the transparent port.
    for net in ["fd60:db4d:ddb5::/48", "fd00:1::/64"] {
        ns.exec(&["ip", "-6", "route", "add", "local", net, "dev", "lo"]);
    }
    ns.exec(&["nft", "add table ip6 gc"]);
    ns.exec(&[
        "nft",
        "add chain ip6 gc out { type nat hook output priority -100 ; }",
    ]);
    ns.exec(&[
        "nft",
        &format!(
            "add rule ip6 gc out ip6 daddr {{ fd60:db4d:ddb5::/48, fd00:1::/64 }} tcp dport \
             1-65535 redirect to :{trans_port}"
        ),
    ]);
    let hash = Sha256::digest(r.service_dest.bytes());
    let mut want = [0u8; 16];
    want[..6].copy_from_slice(&[0xfd, 0x60, 0xdb, 0x4d, 0xdd, 0xb5]);
    want[6..].copy_from_slice(&hash[..10]);
    let want = std::net::Ipv6Addr::from(want);

    // Reply bytes of a connection to `ip`:80 that sends "ping" (empty: closed by us).
    let talk = |ip: std::net::Ipv6Addr| -> Vec<u8> {
        support::netns::run(&ns.name, move || {
            let mut s = TcpStream::connect((ip, 80)).expect("redirected connect");
            s.set_read_timeout(Some(ANSWER)).unwrap();
            s.write_all(b"ping").unwrap();
            let mut back = Vec::new();
            let _ = s.take(4).read_to_end(&mut back);
            back
        })
    };
    let count = |key: &'static str| {
        let at = ports.status;
        support::netns::run(&ns.name, move || counter(at, key))
    };

    // Unknown to this identity: closed, no stream asked of the router.
    let connects = r.fake.count("STREAM CONNECT");
    assert_eq!(talk(want), b"", "before the name was resolved");
    assert_eq!(r.fake.count("STREAM CONNECT"), connects);
    p.wait_log("refused: an unknown GarliCat address", ANSWER);

    // The DNS port's AAAA makes it known to the listener's identity (as the transparent
    // port's): the connection now reaches the echo service.
    let dns = ports.dns;
    let got = support::netns::run(&ns.name, move || {
        aaaa_record(&ask(dns, NAME, RecordType::AAAA))
    });
    assert_eq!(got, want);
    assert_eq!(talk(want), b"ping", "after AAAA {NAME}");
    assert_eq!(count("transparent_refused"), 0);

    // Another IPv6 address on the same redirect: closed and counted, as a direct one is.
    assert_eq!(talk("fd00:1::7".parse().unwrap()), b"");
    assert_eq!(count("transparent_refused"), 1);
    assert_eq!(count("transparent"), 3);
    p.term();
}
