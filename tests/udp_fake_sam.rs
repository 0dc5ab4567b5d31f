//! UDP ASSOCIATE in process, against the fake SAM bridge (tests/support/fake_sam.rs), whose
//! SAM UDP port carries datagrams between its own DATAGRAM sessions: a datagram echo is one
//! of them, each association another. No router, no root. RFC 1928 §7 framing by hand.

mod support;

use eepsocks::i2p::identity::{self, Mode, Pool, Template};
use eepsocks::i2p::sam::{datagram, DatagramConfig, DatagramSession};
use eepsocks::i2p::sam_router::UdpRouter;
use eepsocks::i2p::SamRouter;
use eepsocks::naming::standins::Network;
use eepsocks::naming::Books;
use eepsocks::naming::StandIns;
use eepsocks::proxy::context::ListenerContext;
use eepsocks::proxy::context::UdpLimits;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use support::fake_sam::{test_keys, FakeSam};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::time::timeout;

const T: Duration = Duration::from_secs(10);

struct Rig {
    fake: FakeSam,
    socks: SocketAddr,
    ctx: Arc<ListenerContext>,
    echo: String,
    /// The router's address books.
    book: Arc<Books>,
}

async fn rig(max_associations: usize, max_payload: usize) -> Rig {
    rig_with(max_associations, max_payload, |_| {}).await
}

/// A rig whose listener context `tweak` adjusts (stand-ins, automap) before it serves.
async fn rig_with(
    max_associations: usize,
    max_payload: usize,
    tweak: impl FnOnce(&mut ListenerContext),
) -> Rig {
    rig_full(max_associations, max_payload, tweak, |_| {}, false).await
}

/// `rig_with` on a bridge set up by `dialect` first; `datagrams`: the identity's session
/// offers its datagram subsession to associations where the bridge has PRIMARY.
async fn rig_full(
    max_associations: usize,
    max_payload: usize,
    tweak: impl FnOnce(&mut ListenerContext),
    dialect: impl FnOnce(&FakeSam),
    datagrams: bool,
) -> Rig {
    let fake = FakeSam::start();
    dialect(&fake);
    let tpl = Template {
        sam_addr: fake.addr(),
        options: vec![],
        sig_type: 7,
        create_timeout: eepsocks::i2p::sam::CREATE_TIMEOUT,
        datagrams,
    };
    let session = identity::fixed_session("l", test_keys(5).into(), &tpl, None);
    timeout(T, session.usable_id()).await.unwrap().unwrap();
    let book = Arc::new(Books::default());
    let router = Arc::new(SamRouter {
        pool: Arc::new(Pool::new("l", tpl, Mode::Fixed(session))),
        book: book.clone(),
        router_timeout: None,
        udp: Some(UdpRouter {
            sam_udp: fake.udp_addr(),
            max_send: 65_507,
        }),
    });
    let mut ctx = ListenerContext::new(T, T, 64);
    ctx.udp = Some(UdpLimits {
        max_payload,
        idle: Duration::from_secs(300),
        rate: 10_000,
        open: Default::default(),
        max_associations,
    });
    tweak(&mut ctx);
    let ctx = Arc::new(ctx);
    let l = Arc::new(TcpListener::bind("127.0.0.1:0").await.unwrap());
    let socks = l.local_addr().unwrap();
    tokio::spawn(eepsocks::proxy::server::serve_listener(
        l,
        router,
        ctx.clone(),
        std::future::pending::<()>(),
    ));
    let dg = datagram_session(&fake, "echo").await;
    let echo = dg.b32().to_string();
    // Its full destination under a name, for tests that reach it by name.
    let full = dg.lookup(&echo).await.unwrap();
    fake.name(
        "echo.i2p",
        &eepsocks::i2p::Destination::from_base64(&full).unwrap(),
    );
    tokio::spawn(datagram::echo(dg));
    Rig {
        fake,
        socks,
        ctx,
        echo,
        book,
    }
}

/// A datagram identity of the fake bridge's, as the tests' services and peers use.
async fn datagram_session(fake: &FakeSam, name: &str) -> DatagramSession {
    DatagramSession::create(&DatagramConfig {
        sam_addr: fake.addr(),
        sam_udp: fake.udp_addr(),
        name: name.into(),
        options: vec![],
        sig_type: 7,
        max_send: 65_507,
    })
    .await
    .unwrap()
}

/// UDP ASSOCIATE naming `client` as the source; returns the control connection and the
/// reply code with BND.
async fn associate(socks: SocketAddr, client: SocketAddr) -> (TcpStream, u8, SocketAddr) {
    let mut c = TcpStream::connect(socks).await.unwrap();
    c.write_all(&[5, 1, 0]).await.unwrap();
    let mut m = [0u8; 2];
    c.read_exact(&mut m).await.unwrap();
    let SocketAddr::V4(a) = client else { panic!() };
    let mut req = vec![5, 3, 0, 1];
    req.extend_from_slice(&a.ip().octets());
    req.extend_from_slice(&a.port().to_be_bytes());
    c.write_all(&req).await.unwrap();
    let mut r = [0u8; 10];
    timeout(T, c.read_exact(&mut r)).await.unwrap().unwrap();
    let bnd = SocketAddr::from(([r[4], r[5], r[6], r[7]], u16::from_be_bytes([r[8], r[9]])));
    (c, r[1], bnd)
}

fn header_v4(ip: Ipv4Addr, port: u16) -> Vec<u8> {
    let mut h = vec![0, 0, 0, 1];
    h.extend_from_slice(&ip.octets());
    h.extend_from_slice(&port.to_be_bytes());
    h
}

fn header(name: &str, port: u16, frag: u8) -> Vec<u8> {
    let mut h = vec![0, 0, frag, 3, name.len() as u8];
    h.extend_from_slice(name.as_bytes());
    h.extend_from_slice(&port.to_be_bytes());
    h
}

/// One datagram from `u` to the relay: the §7 header `head`, then `payload`.
async fn send(u: &UdpSocket, relay: SocketAddr, head: Vec<u8>, payload: &[u8]) {
    u.send_to(&[head, payload.to_vec()].concat(), relay)
        .await
        .unwrap();
}

async fn recv(u: &UdpSocket, wait: Duration) -> Option<Vec<u8>> {
    let mut b = vec![0u8; 65_536];
    match timeout(wait, u.recv_from(&mut b)).await {
        Ok(Ok((n, _))) => Some(b[..n].to_vec()),
        _ => None,
    }
}

#[tokio::test]
async fn datagrams_echo_with_domain_source_and_ports() {
    let r = rig(4, 11 * 1024).await;
    let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (_c, rep, relay) = associate(r.socks, u.local_addr().unwrap()).await;
    assert_eq!(rep, 0);
    for size in [0usize, 1, 100, 11 * 1024] {
        let payload: Vec<u8> = (0..size).map(|i| (i * 7 + size) as u8).collect();
        let mut d = header(&r.echo, 9, 0);
        d.extend_from_slice(&payload);
        u.send_to(&d, relay).await.unwrap();
        let got = recv(&u, T).await.expect("echo");
        // The reply names the echo's b32 (ATYP 3) and its port: the one we sent to.
        let want = header(&r.echo, 9, 0);
        assert_eq!(&got[..want.len()], &want[..], "size {size}");
        assert_eq!(&got[want.len()..], &payload[..], "size {size}");
    }
    let st = &r.ctx.stats.udp;
    assert_eq!(st.datagrams_up.load(Ordering::Relaxed), 4);
    assert_eq!(st.datagrams_down.load(Ordering::Relaxed), 4);
}

#[tokio::test]
async fn bad_datagrams_are_dropped_and_counted() {
    let r = rig(4, 1000).await;
    let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (_c, rep, relay) = associate(r.socks, u.local_addr().unwrap()).await;
    assert_eq!(rep, 0);
    let mut big = header(&r.echo, 9, 0);
    big.extend_from_slice(&[0u8; 1001]);
    u.send_to(&big, relay).await.unwrap();
    send(&u, relay, header(&r.echo, 9, 1), b"frag").await;
    u.send_to(&[0, 0, 0, 1, 10, 0, 0, 1, 0, 53, b'x'], relay)
        .await
        .unwrap();
    send(&u, relay, header("example.com", 53, 0), b"x").await;
    u.send_to(&[0, 0], relay).await.unwrap();
    let spoof = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    send(&spoof, relay, header(&r.echo, 9, 0), b"spoof").await;
    // A good one last: once it is back, every earlier one was handled.
    send(&u, relay, header(&r.echo, 9, 0), b"ok").await;
    let got = recv(&u, T).await.expect("the good datagram comes back");
    assert!(got.ends_with(b"ok"));
    assert!(recv(&u, Duration::from_millis(300)).await.is_none());
    assert!(recv(&spoof, Duration::from_millis(100)).await.is_none());
    let st = &r.ctx.stats.udp;
    let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    assert_eq!(g(&st.dropped_oversize), 1);
    assert_eq!(g(&st.dropped_fragment), 1);
    assert_eq!(g(&st.dropped_not_i2p), 2);
    assert_eq!(g(&st.dropped_malformed), 1);
    assert_eq!(g(&st.dropped_source), 1);
    assert_eq!(g(&st.datagrams_up), 1);
    // Nothing dropped reached the router.
    assert_eq!(r.fake.with_state(|s| s.datagrams_in), 2);
}

#[tokio::test]
async fn closing_the_control_connection_ends_the_association() {
    let r = rig(1, 11 * 1024).await;
    let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let live_before = r.fake.sessions().len();
    let (c, rep, relay) = associate(r.socks, u.local_addr().unwrap()).await;
    assert_eq!(rep, 0);
    assert_eq!(r.fake.sessions().len(), live_before + 1);
    // The listener allows one association: a second is refused while the first lives.
    let u2 = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (_c2, rep2, _) = associate(r.socks, u2.local_addr().unwrap()).await;
    assert_eq!(rep2, 1);
    drop(c);
    // Its I2P session and relay socket go at once.
    assert!(
        r.fake
            .until(
                move |s| s.live().len() == live_before,
                Duration::from_secs(5)
            )
            .await,
        "the association's session outlived its control connection"
    );
    send(&u, relay, header(&r.echo, 9, 0), b"late").await;
    assert!(recv(&u, Duration::from_millis(500)).await.is_none());
    assert_eq!(
        r.ctx.stats.udp.associations_active.load(Ordering::Relaxed),
        0
    );
    // And the slot is free again.
    let (_c3, rep3, _) = associate(r.socks, u2.local_addr().unwrap()).await;
    assert_eq!(rep3, 0);
}

#[tokio::test]
async fn two_associations_never_see_each_others_datagrams() {
    let r = rig(4, 11 * 1024).await;
    let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (_ca, _, ra) = associate(r.socks, a.local_addr().unwrap()).await;
    let (_cb, _, rb) = associate(r.socks, b.local_addr().unwrap()).await;
    for i in 0..50u8 {
        a.send_to(&[header(&r.echo, 1, 0), vec![b'a', i]].concat(), ra)
            .await
            .unwrap();
        b.send_to(&[header(&r.echo, 2, 0), vec![b'b', i]].concat(), rb)
            .await
            .unwrap();
    }
    for (u, tag) in [(&a, b'a'), (&b, b'b')] {
        let mut n = 0;
        while let Some(d) = recv(u, Duration::from_millis(500)).await {
            assert_eq!(d[d.len() - 2], tag, "a datagram of the other association");
            n += 1;
        }
        assert_eq!(n, 50);
    }
}

/// An automap listener: its table over `net`, replies named by virtual addresses.
fn automap(net: &str) -> impl FnOnce(&mut ListenerContext) {
    let net: Network = net.parse().unwrap();
    move |ctx| {
        ctx.stand_ins = Arc::new(StandIns::new(net, Duration::from_secs(600)));
    }
}

#[tokio::test]
async fn automap_virtual_addresses_both_ways() {
    let r = rig_with(4, 11 * 1024, automap("127.192.0.0/10")).await;
    // As automap's DNS port would answer the client.
    let vip = r.ctx.stand_ins.map(b"", "echo.i2p").unwrap();
    let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (_c, rep, relay) = associate(r.socks, u.local_addr().unwrap()).await;
    assert_eq!(rep, 0);
    // To the b32 by name (ATYP 3): answered from the b32's own virtual address, the one
    // the DNS port would give for it.
    send(&u, relay, header(&r.echo, 8, 0), b"n").await;
    let got = recv(&u, T).await.expect("echo by name");
    let b32_vip = r.ctx.stand_ins.mapped(b"", &r.echo).expect("mapped");
    assert!(r.ctx.stand_ins.network().contains(b32_vip));
    assert_eq!(got, [header_v4(b32_vip, 8), b"n".to_vec()].concat());
    // To the virtual address (ATYP 1): sent to the name, answered from the address the
    // client sent to (from now on, also for datagrams sent to the b32).
    send(&u, relay, header_v4(vip, 7), b"v").await;
    let got = recv(&u, T).await.expect("echo through the virtual address");
    assert_eq!(got, [header_v4(vip, 7), b"v".to_vec()].concat());
    // An address of the network that stands for nothing, and one mapped for another
    // identity, are IP literals like any other: dropped, never sent.
    let other = r.ctx.stand_ins.map(b"alice", "echo.i2p").unwrap();
    let unused = (0..)
        .map(|i| Ipv4Addr::new(127, 200, 0, i))
        .find(|ip| {
            r.ctx
                .stand_ins
                .unmap(b"", &eepsocks::socks::Address::Ipv4(*ip))
                .is_none()
        })
        .unwrap();
    for ip in [other, unused] {
        send(&u, relay, header_v4(ip, 7), b"x").await;
    }
    send(&u, relay, header_v4(vip, 7), b"last").await;
    let got = recv(&u, T).await.expect("the last one");
    assert!(got.ends_with(b"last"));
    let st = &r.ctx.stats.udp;
    assert_eq!(st.dropped_not_i2p.load(Ordering::Relaxed), 2);
    assert_eq!(st.datagrams_up.load(Ordering::Relaxed), 3);
    // Three out and their three echoes: nothing dropped reached the router.
    assert_eq!(r.fake.with_state(|s| s.datagrams_in), 6);
}

#[tokio::test]
async fn automap_table_exhausted_replies_fall_back_to_the_domain() {
    // Two usable addresses, one mapping kept: after two names, one address is taken and
    // the other in quarantine, so the echo's b32 gets none.
    let r = rig_with(4, 11 * 1024, automap("127.200.0.0/30")).await;
    r.ctx.stand_ins.map(b"", "a.i2p").unwrap();
    r.ctx.stand_ins.map(b"", "b.i2p").unwrap();
    assert!(r.ctx.stand_ins.map(b"", "c.i2p").is_none());
    let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (_c, rep, relay) = associate(r.socks, u.local_addr().unwrap()).await;
    assert_eq!(rep, 0);
    send(&u, relay, header(&r.echo, 9, 0), b"d").await;
    let got = recv(&u, T).await.expect("echo");
    assert_eq!(got, [header(&r.echo, 9, 0), b"d".to_vec()].concat());
}

#[tokio::test]
async fn resolve_stand_ins_without_automap() {
    // A listener without automap: a Tor RESOLVE stand-in is a target too, and its replies
    // come from it; datagrams sent by name keep the domain source.
    let r = rig(4, 11 * 1024).await;
    let sid = r.ctx.stand_ins.map(b"", &r.echo).unwrap();
    let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (_c, rep, relay) = associate(r.socks, u.local_addr().unwrap()).await;
    assert_eq!(rep, 0);
    send(&u, relay, header(&r.echo, 9, 0), b"n").await;
    let got = recv(&u, T).await.expect("echo by name");
    assert_eq!(got, [header(&r.echo, 9, 0), b"n".to_vec()].concat());
    send(&u, relay, header_v4(sid, 9), b"s").await;
    let got = recv(&u, T).await.expect("echo through the stand-in");
    assert_eq!(got, [header_v4(sid, 9), b"s".to_vec()].concat());
}

/// PySocks (Debian's python3-socks), an existing SOCKS5 UDP client, against the fake
/// bridge: its own association request (DST a domain "0"), domain targets, domain sources.
#[tokio::test]
async fn pysocks_client() {
    let py = "/usr/bin/python3";
    let has = std::process::Command::new(py)
        .args(["-c", "import socks"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has {
        eprintln!("skipped: no python3-socks (PySocks) for {py}");
        return;
    }
    async fn run(py: &str, socks: SocketAddr, target: String) {
        let script = format!(
            "{}/tests/support/udp_pysocks.py",
            env!("CARGO_MANIFEST_DIR")
        );
        let out = tokio::process::Command::new(py)
            .args([&script, &socks.to_string(), &target, "9", "200"])
            .output();
        let out = timeout(Duration::from_secs(60), out)
            .await
            .unwrap()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stdout}{stderr}");
        let j: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
        // Nothing is lost between the fake's sessions; the port sent to comes back.
        assert_eq!(j["received"], 200, "{stdout}");
        assert_eq!(j["bad"], 0, "{stdout}");
        assert_eq!(j["reply_port"], 9, "{stdout}");
    }
    // By name: ATYP 3 both ways.
    let r = rig(4, 11 * 1024).await;
    run(py, r.socks, r.echo.clone()).await;
    // On an automap listener, to a virtual address with the socket connected to it: PySocks
    // drops any reply whose source is not that address, so every one must carry it.
    let r = rig_with(4, 11 * 1024, automap("127.192.0.0/10")).await;
    let vip = r.ctx.stand_ins.map(b"", "echo.i2p").unwrap();
    run(py, r.socks, vip.to_string()).await;
}

/// Send `payload` to the echo's b32 until it comes back (the first datagram looks the b32
/// up; later ones to it are sent at once).
async fn warm(r: &Rig, u: &UdpSocket, relay: SocketAddr) {
    send(u, relay, header(&r.echo, 9, 0), b"warm").await;
    assert!(recv(u, T).await.unwrap().ends_with(b"warm"));
}

#[tokio::test]
async fn a_slow_lookup_does_not_hold_up_known_names() {
    let r = rig(4, 11 * 1024).await;
    let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (_c, rep, relay) = associate(r.socks, u.local_addr().unwrap()).await;
    assert_eq!(rep, 0);
    warm(&r, &u, relay).await;
    r.fake.delay_next(
        "NAMING LOOKUP NAME=echo.i2p",
        Duration::from_secs(3),
        Some(1),
    );
    let t = tokio::time::Instant::now();
    send(&u, relay, header("echo.i2p", 9, 0), b"slow").await;
    send(&u, relay, header(&r.echo, 9, 0), b"fast").await;
    let first = recv(&u, T).await.unwrap();
    assert!(first.ends_with(b"fast"), "the known name waited");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // The slow one is sent once its lookup answers.
    let second = recv(&u, T).await.unwrap();
    assert!(second.ends_with(b"slow"));
    assert!(t.elapsed() >= Duration::from_secs(3));
    assert_eq!(r.ctx.stats.udp.datagrams_up.load(Ordering::Relaxed), 3);
}

#[tokio::test]
async fn lookups_and_waiting_datagrams_are_bounded() {
    let r = rig(4, 11 * 1024).await;
    let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (_c, rep, relay) = associate(r.socks, u.local_addr().unwrap()).await;
    assert_eq!(rep, 0);
    warm(&r, &u, relay).await;
    r.fake.hang("NAMING LOOKUP NAME=n");
    let to_name = |name: String| {
        let u = &u;
        async move {
            send(u, relay, header(&name, 9, 0), b"x").await;
        }
    };
    // Eight lookups in flight at most: a ninth name is dropped.
    for i in 0..9 {
        to_name(format!("n{i}.i2p")).await;
    }
    // 64 datagrams waiting at most (all names together): 8 wait, 56 more fit.
    for _ in 0..57 {
        to_name("n0.i2p".into()).await;
    }
    send(&u, relay, header(&r.echo, 9, 0), b"fast").await;
    assert!(recv(&u, T).await.unwrap().ends_with(b"fast"));
    let st = &r.ctx.stats.udp;
    assert_eq!(st.dropped_queue.load(Ordering::Relaxed), 2);
    assert_eq!(st.datagrams_up.load(Ordering::Relaxed), 2);
}

/// The DATAGRAM sessions' destinations and forward ports, but for the ones in `known`.
fn new_datagram_sessions(r: &Rig, known: &[(String, u16)]) -> Vec<(String, u16)> {
    r.fake
        .with_state(|s| s.datagram_sessions())
        .into_iter()
        .filter(|d| !known.contains(d))
        .collect()
}

/// Our TCP connections to `port` on loopback that are still established (/proc/net/tcp).
fn established_to(port: u16) -> usize {
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
    tcp.lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let rem_port = f[2].rsplit(':').next().unwrap();
            u16::from_str_radix(rem_port, 16).ok() == Some(port) && f[3] == "01"
        })
        .count()
}

#[tokio::test]
async fn a_client_leaving_during_setup_takes_its_session_with_it() {
    // The router takes 2 s to create an association's session; its clients leave after
    // 0.3 s. Their SESSION CREATEs must end with them, not run on to the router's answer:
    // a client opening and closing associations in a loop would pile them up.
    let r = rig(4, 11 * 1024).await;
    let sam_port: u16 = r.fake.addr().rsplit(':').next().unwrap().parse().unwrap();
    let before = established_to(sam_port);
    r.fake.delay_next(
        "SESSION CREATE STYLE=DATAGRAM",
        Duration::from_secs(2),
        None,
    );
    for _ in 0..3 {
        let mut c = TcpStream::connect(r.socks).await.unwrap();
        c.write_all(&[5, 1, 0, 5, 3, 0, 1, 127, 0, 0, 1, 0, 0])
            .await
            .unwrap();
        let mut m = [0u8; 2];
        c.read_exact(&mut m).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(c);
    }
    // Well before the first answer is due.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        established_to(sam_port),
        before,
        "SAM connections of abandoned associations still open"
    );
    assert_eq!(r.ctx.udp.as_ref().unwrap().open.load(Ordering::Relaxed), 0);
    // And none of them comes up later.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(r.fake.with_state(|s| s.datagram_sessions()).len() <= 1);
}

#[tokio::test]
async fn forged_datagrams_on_the_forward_port_are_not_delivered() {
    let r = rig(4, 11 * 1024).await;
    let known = r.fake.with_state(|s| s.datagram_sessions());
    let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (_c, rep, relay) = associate(r.socks, u.local_addr().unwrap()).await;
    assert_eq!(rep, 0);
    let mine = new_datagram_sessions(&r, &known);
    let [(_, port)] = mine.as_slice() else {
        panic!("one new DATAGRAM session: {mine:?}")
    };
    // Another local process, posing as the router: "from the echo service".
    let echo_dest = known[0].0.clone();
    // The client has sent (replies have somewhere to go).
    send(&u, relay, header(&r.echo, 9, 0), b"first").await;
    assert!(recv(&u, T).await.expect("echo").ends_with(b"first"));
    // From another port, and from the router's own port on another loopback address
    // (127.0.0.2 is local: any process may bind it).
    let router = r.fake.udp_addr();
    let forged = format!("{echo_dest}\nforged");
    for from in [
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SocketAddr::from(([127, 0, 0, 2], router.port())),
        SocketAddr::from(([127, 0, 0, 2], 0)),
    ] {
        let forger = UdpSocket::bind(from).await.unwrap();
        forger
            .send_to(forged.as_bytes(), ("127.0.0.1", *port))
            .await
            .unwrap();
    }
    send(&u, relay, header(&r.echo, 9, 0), b"real").await;
    let got = recv(&u, T).await.expect("the real echo");
    assert!(got.ends_with(b"real"), "{got:?}");
    assert!(recv(&u, Duration::from_millis(300)).await.is_none());
}

#[tokio::test]
async fn an_unpinned_association_keeps_its_first_source() {
    // DST.PORT 0: the client did not say its port. Its first datagram's source is its
    // address from then on; another local process on the same IP is dropped.
    let r = rig(4, 11 * 1024).await;
    let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (_c, rep, relay) = associate(r.socks, "0.0.0.0:0".parse().unwrap()).await;
    assert_eq!(rep, 0);
    send(&u, relay, header(&r.echo, 9, 0), b"first").await;
    assert!(recv(&u, T).await.expect("echo").ends_with(b"first"));
    let other = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    send(&other, relay, header(&r.echo, 9, 0), b"theirs").await;
    send(&u, relay, header(&r.echo, 9, 0), b"second").await;
    assert!(recv(&u, T).await.expect("echo").ends_with(b"second"));
    assert!(recv(&u, Duration::from_millis(300)).await.is_none());
    assert!(recv(&other, Duration::from_millis(100)).await.is_none());
    let st = &r.ctx.stats.udp;
    assert_eq!(st.dropped_source.load(Ordering::Relaxed), 1);
    assert_eq!(st.datagrams_up.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn automap_maps_no_sender_the_client_never_sent_to() {
    // A remote peer writing to the association gets no virtual address of the identity's
    // table: with cheap destinations it could otherwise fill it.
    let r = rig_with(4, 11 * 1024, automap("127.192.0.0/10")).await;
    let known = r.fake.with_state(|s| s.datagram_sessions());
    let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (_c, rep, relay) = associate(r.socks, u.local_addr().unwrap()).await;
    assert_eq!(rep, 0);
    send(&u, relay, header(&r.echo, 9, 0), b"hi").await;
    recv(&u, T).await.expect("echo");
    let [(assoc_dest, _)] = new_datagram_sessions(&r, &known).try_into().unwrap();
    let stranger = datagram_session(&r.fake, "stranger").await;
    stranger.send(&assoc_dest, 0, 5, b"unasked").await.unwrap();
    let got = recv(&u, T).await.expect("the stranger's datagram");
    assert_eq!(
        got,
        [header(stranger.b32(), 0, 0), b"unasked".to_vec()].concat()
    );
    assert_eq!(r.ctx.stand_ins.mapped(b"", stranger.b32()), None);
    // The echo, which the client sent to, is named by its virtual address as before.
    assert!(r.ctx.stand_ins.mapped(b"", &r.echo).is_some());
}

#[tokio::test]
async fn a_book_name_for_a_b32_is_looked_up_for_the_send_line() {
    // The user's book says `alias.i2p` is the echo's b32. A send line takes only a full
    // destination (routers drop a b32 there silently), so the b32 is looked up in turn.
    let r = rig(4, 11 * 1024).await;
    let (book, warnings) =
        eepsocks::naming::book::AddressBook::parse(&format!("alias.i2p={}\n", r.echo));
    assert!(warnings.is_empty(), "{warnings:?}");
    *r.book.user.write().unwrap() = book;
    let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (_c, rep, relay) = associate(r.socks, u.local_addr().unwrap()).await;
    assert_eq!(rep, 0);
    for i in 0..2u8 {
        u.send_to(&[header("alias.i2p", 9, 0), vec![i]].concat(), relay)
            .await
            .unwrap();
        let got = recv(&u, T).await.expect("echo through the book's b32");
        assert_eq!(got.last(), Some(&i));
    }
    assert_eq!(r.ctx.stats.udp.dropped_unsent.load(Ordering::Relaxed), 0);
}

/// Echo `n` tagged datagrams through the association at `relay`; each must come back,
/// and none of another association's.
async fn echo_tagged(r: &Rig, u: &UdpSocket, relay: SocketAddr, tag: u8, n: u8) {
    for i in 0..n {
        u.send_to(&[header(&r.echo, 9, 0), vec![tag, i]].concat(), relay)
            .await
            .unwrap();
    }
    let mut got = 0;
    while let Some(d) = recv(u, Duration::from_millis(500)).await {
        assert_eq!(d[d.len() - 2], tag, "a datagram of another association");
        got += 1;
    }
    assert_eq!(got, n, "association {}", tag as char);
}

/// Where the bridge has PRIMARY (a 3.3 bridge with DATAGRAM2; emissary's 3.2), the
/// listener's identity is one PRIMARY session with a STREAM and a datagram subsession, and
/// a UDP association uses that subsession: no DEST GENERATE, no session of its own, its
/// datagrams sent as the identity. A second association meanwhile gets a session of its
/// own (a router cannot tell two apart on one destination: emissary sends ports 0); once
/// the first ends, the next one takes the subsession again, and each sees only its own.
#[tokio::test]
async fn an_association_uses_its_identitys_datagram_subsession() {
    for (minor, style) in [(3u8, "DATAGRAM2"), (2, "DATAGRAM")] {
        let r = rig_full(
            4,
            11 * 1024,
            |_| {},
            |f| {
                f.modern(&[]);
                f.set_max_version(minor);
            },
            true,
        )
        .await;
        let identity = test_keys(5).destination().b32();
        let cmds = r.fake.commands();
        let has = |p: &str| cmds.iter().any(|c| c.starts_with(p));
        assert!(has("SESSION CREATE STYLE=PRIMARY"), "3.{minor}: {cmds:?}");
        assert!(has("SESSION ADD STYLE=STREAM"), "3.{minor}: {cmds:?}");
        assert!(
            has(&format!("SESSION ADD STYLE={style} ")),
            "3.{minor}: {cmds:?}"
        );
        let generated = r.fake.count("DEST GENERATE");
        let sessions = r.fake.count("SESSION CREATE");

        // The first association: the identity's subsession, nothing created for it.
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (ca, rep, ra) = associate(r.socks, a.local_addr().unwrap()).await;
        assert_eq!(rep, 0);
        echo_tagged(&r, &a, ra, b'a', 20).await;
        assert_eq!(r.fake.count("DEST GENERATE"), generated, "3.{minor}");
        assert_eq!(r.fake.count("SESSION CREATE"), sessions, "3.{minor}");
        // The echo answered the identity's own destination.
        let senders: Vec<String> = r
            .fake
            .commands()
            .iter()
            .filter(|c| c.starts_with("SESSION ADD STYLE=DATAGRAM"))
            .cloned()
            .collect();
        assert_eq!(senders.len(), 1, "{senders:?}");
        assert!(
            r.fake
                .with_state(|s| s.datagram_sessions())
                .iter()
                .any(
                    |(d, _)| eepsocks::i2p::Destination::from_base64(d).unwrap().b32() == identity
                ),
            "no datagram subsession as the identity"
        );

        // A second one meanwhile: a session of its own.
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (_cb, rep, rb) = associate(r.socks, b.local_addr().unwrap()).await;
        assert_eq!(rep, 0);
        assert_eq!(r.fake.count("DEST GENERATE"), generated + 1, "3.{minor}");
        echo_tagged(&r, &a, ra, b'a', 10).await;
        echo_tagged(&r, &b, rb, b'b', 10).await;

        // The first ends: the identity's session stays, the next takes the subsession.
        drop(ca);
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let t0 = std::time::Instant::now();
        let rc = loop {
            let (cc, rep, rc) = associate(r.socks, c.local_addr().unwrap()).await;
            assert_eq!(rep, 0);
            if r.fake.count("DEST GENERATE") == generated + 1 {
                break (cc, rc);
            }
            // The first association's end was not seen yet: that one got its own.
            assert!(t0.elapsed() < T, "the subsession was never free again");
            drop(cc);
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        echo_tagged(&r, &c, rc.1, b'c', 10).await;
        echo_tagged(&r, &b, rb, b'b', 5).await;
        assert!(
            r.fake.sessions().iter().any(|s| s.b32 == identity),
            "the identity's session ended with an association"
        );
    }
}

/// A bridge without PRIMARY (a 3.3 bridge without DATAGRAM2: an i2pd older than 2.58)
/// keeps today's layout: a STREAM session, and a session per association.
#[tokio::test]
async fn without_primary_each_association_has_its_own_session() {
    let r = rig_full(4, 11 * 1024, |_| {}, |_| {}, true).await;
    let cmds = r.fake.commands();
    assert!(
        cmds.iter()
            .any(|c| c.starts_with("SESSION CREATE STYLE=STREAM")),
        "{cmds:?}"
    );
    assert_eq!(r.fake.count("SESSION ADD"), 0);
    let generated = r.fake.count("DEST GENERATE");
    let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (_ca, rep, ra) = associate(r.socks, a.local_addr().unwrap()).await;
    assert_eq!(rep, 0);
    assert_eq!(r.fake.count("DEST GENERATE"), generated + 1);
    echo_tagged(&r, &a, ra, b'a', 10).await;
}
