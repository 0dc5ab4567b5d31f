//! Hostile and broken clients against the real server loop (plain-TCP backend on loopback):
//! a corpus of malformed handshakes, each answered with its documented reply or a clean
//! close, and stalled clients cut by the handshake timeout while real clients are served.
//!
//! Time is tokio's paused clock: the proxy, the echo service and the clients are all tasks
//! of the test's runtime, so the handshake timeouts pass as soon as nothing else can run,
//! instead of on the wall clock.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use support::client::socks5_connect_async;
use support::consts::{B32, LOCAL_IO_TIMEOUT};
use support::frontend::Frontend;
use support::services::local_echo_tokio;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout, Duration, Instant};

/// The front end on this runtime, streams going to an echo service on this runtime.
fn proxy(handshake: Duration, max_clients: usize) -> SocketAddr {
    Frontend::new(local_echo_tokio())
        .handshake_timeout(handshake)
        .max_clients(max_clients)
        .spawn()
}

/// A working client: connect, echo, done.
async fn works(proxy: SocketAddr) -> bool {
    let client = async {
        let mut s = TcpStream::connect(proxy).await?;
        if socks5_connect_async(&mut s, B32, 80, None).await? != 0 {
            return Ok(false);
        }
        s.write_all(b"ok").await?;
        let mut b = [0u8; 2];
        s.read_exact(&mut b).await?;
        Ok::<_, std::io::Error>(&b == b"ok")
    };
    matches!(timeout(LOCAL_IO_TIMEOUT, client).await, Ok(Ok(true)))
}

/// Everything the proxy sends until it closes (or `limit` passes, or the read fails).
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    let _ = timeout(limit, s.read_to_end(&mut got)).await;
    got
}

fn name_req(cmd: u8, atyp_len: Option<u8>, name: &[u8], port: &[u8]) -> Vec<u8> {
    let mut v = vec![5, cmd, 0, 3, atyp_len.unwrap_or(name.len() as u8)];
    v.extend_from_slice(name);
    v.extend_from_slice(port);
    v
}

/// What the proxy must send before closing, for each malformed input. `None` means the
/// handshake is incomplete: the proxy waits (the handshake timeout cuts it; see below).
/// (what, bytes sent, bytes expected before the close).
type Case = (&'static str, Vec<u8>, Option<Vec<u8>>);

fn corpus() -> Vec<Case> {
    const F: [u8; 8] = [0, 1, 0, 0, 0, 0, 0, 0]; // tail of a 10-byte SOCKS5 failure reply
    let s5fail = |rep: u8| -> Vec<u8> {
        let mut v = vec![5, rep];
        v.extend_from_slice(&F);
        v
    };
    let with_greeting = |rest: Vec<u8>, reply: Vec<u8>| -> (Vec<u8>, Option<Vec<u8>>) {
        let mut i = vec![5, 1, 0];
        i.extend(rest);
        let mut r = vec![5, 0];
        r.extend(reply);
        (i, Some(r))
    };
    let s4 = vec![0, 91, 0, 0, 0, 0, 0, 0];
    let http = eepsocks::socks::HTTP_NOT_A_PROXY.to_vec();
    let mut c: Vec<Case> = vec![
        // first byte
        ("version 0", vec![0, 1, 0], Some(vec![])),
        ("version 1", vec![1], Some(vec![])),
        ("version 3", vec![3, 1, 0], Some(vec![])),
        ("version 6", vec![6, 1, 0], Some(vec![])),
        ("version 0xff", vec![0xff; 20], Some(vec![])),
        (
            "TLS ClientHello",
            vec![0x16, 3, 1, 0, 0xf1, 1, 0, 0, 0xed, 3, 3],
            Some(vec![]),
        ),
        // looks like HTTP (capital first byte) but never ends its head: timed out
        ("SSH banner", b"SSH-2.0-OpenSSH_9.2\r\n".to_vec(), None),
        ("lowercase junk", b"hello there\n".to_vec(), Some(vec![])),
        // HTTP other than CONNECT: the page only for a loopback Host (DNS rebinding)
        (
            "HTTP GET localhost",
            b"GET / HTTP/1.1\r\nHost: localhost:4447\r\n\r\n".to_vec(),
            Some(http.clone()),
        ),
        (
            "HTTP GET foreign Host",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            Some(vec![]),
        ),
        (
            "HTTP POST LF only",
            b"POST / HTTP/1.0\nHost: 127.0.0.1\n\n".to_vec(),
            Some(http.clone()),
        ),
        (
            "HTTP OPTIONS without Host",
            b"OPTIONS * HTTP/1.1\r\n\r\n".to_vec(),
            Some(vec![]),
        ),
        (
            "HTTP CONNECT without port",
            b"CONNECT a.i2p HTTP/1.1\r\n\r\n".to_vec(),
            Some(
                b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
                  Content-Length: 13\r\nConnection: close\r\n\r\nmissing port\n"
                    .to_vec(),
            ),
        ),
        (
            "HTTP CONNECT unfinished head",
            b"CONNECT a.i2p:80 HTTP/1.1\r\n".to_vec(),
            None,
        ),
        ("NUL bytes", vec![0; 64], Some(vec![])),
        // SOCKS5 greeting
        ("zero methods", vec![5, 0], Some(vec![5, 0xff])),
        ("only GSSAPI", vec![5, 1, 1], Some(vec![5, 0xff])),
        (
            "only 0x80..",
            vec![5, 3, 0x80, 0x81, 0xfe],
            Some(vec![5, 0xff]),
        ),
        (
            "255 unknown methods",
            [vec![5, 255], vec![9; 255]].concat(),
            Some(vec![5, 0xff]),
        ),
        ("truncated greeting", vec![5], None),
        ("greeting short of methods", vec![5, 3, 0], None),
        // RFC 1929
        (
            "auth version 0",
            vec![5, 1, 2, 0, 1, b'a', 1, b'b'],
            Some(vec![5, 2, 1, 1]),
        ),
        (
            "auth version 5",
            vec![5, 1, 2, 5, 1, 0, 0, 0],
            Some(vec![5, 2, 1, 1]),
        ),
        ("auth truncated user", vec![5, 1, 2, 1, 9, b'a'], None),
        (
            "auth truncated password",
            vec![5, 1, 2, 1, 1, b'a', 5, b'p'],
            None,
        ),
        // SOCKS4
        (
            "socks4 IP",
            vec![4, 1, 0, 80, 10, 0, 0, 1, 0],
            Some(s4.clone()),
        ),
        (
            "socks4 localhost",
            vec![4, 1, 0, 80, 127, 0, 0, 1, b'u', 0],
            Some(s4.clone()),
        ),
        (
            "socks4 bind",
            vec![4, 2, 0, 80, 10, 0, 0, 1, 0],
            Some(s4.clone()),
        ),
        (
            "socks4 unknown cmd",
            vec![4, 9, 0, 80, 0, 0, 0, 1, 0, b'a', b'.', b'i', b'2', b'p', 0],
            Some(s4.clone()),
        ),
        (
            "socks4 userid 256",
            [vec![4, 1, 0, 80, 10, 0, 0, 1], vec![b'u'; 256]].concat(),
            Some(s4.clone()),
        ),
        (
            "socks4a host 256",
            [vec![4, 1, 0, 80, 0, 0, 0, 1, 0], vec![b'a'; 256]].concat(),
            Some(s4.clone()),
        ),
        (
            "socks4a empty host",
            vec![4, 1, 0, 80, 0, 0, 0, 1, 0, 0],
            Some(s4.clone()),
        ),
        (
            "socks4a clearnet",
            [vec![4, 1, 0, 80, 0, 0, 0, 1, 0], b"example.com\0".to_vec()].concat(),
            Some(s4.clone()),
        ),
        (
            "socks4a ip string",
            [vec![4, 1, 0, 80, 0, 0, 0, 1, 0], b"10.0.0.1\0".to_vec()].concat(),
            Some(s4.clone()),
        ),
        (
            "socks4a bad name",
            [vec![4, 1, 0, 80, 0, 0, 0, 1, 0], b"a b.i2p\0".to_vec()].concat(),
            Some(s4.clone()),
        ),
        ("socks4 truncated", vec![4, 1, 0], None),
        (
            "socks4 no NUL",
            vec![4, 1, 0, 80, 10, 0, 0, 1, b'u', b's'],
            None,
        ),
        (
            "socks4a no host NUL",
            vec![4, 1, 0, 80, 0, 0, 0, 1, 0, b'a'],
            None,
        ),
    ];
    let five: Vec<(&'static str, Vec<u8>, Vec<u8>)> = vec![
        (
            "request version 4",
            vec![4, 1, 0, 3, 1, b'a', 0, 80],
            s5fail(1),
        ),
        (
            "request version 0",
            vec![0, 1, 0, 1, 0, 0, 0, 0, 0, 0],
            s5fail(1),
        ),
        ("atyp 0", vec![5, 1, 0, 0, 0, 0], s5fail(8)),
        ("atyp 2", vec![5, 1, 0, 2, 0, 0], s5fail(8)),
        ("atyp 0xff", vec![5, 1, 0, 0xff], s5fail(8)),
        (
            "IPv4 literal",
            vec![5, 1, 0, 1, 10, 0, 0, 1, 0, 80],
            s5fail(2),
        ),
        (
            "IPv4 loopback",
            vec![5, 1, 0, 1, 127, 0, 0, 1, 0, 80],
            s5fail(2),
        ),
        (
            "IPv6 literal",
            [vec![5, 1, 0, 4], vec![0; 15], vec![1, 0, 80]].concat(),
            s5fail(2),
        ),
        ("empty name", name_req(1, None, b"", &[0, 80]), s5fail(2)),
        (
            "clearnet name",
            name_req(1, None, b"example.com", &[0, 80]),
            s5fail(2),
        ),
        (
            "localhost",
            name_req(1, None, b"localhost", &[0, 80]),
            s5fail(2),
        ),
        (
            "ip as name",
            name_req(1, None, b"192.168.1.1", &[0, 80]),
            s5fail(2),
        ),
        (
            "ipv6 as name",
            name_req(1, None, b"[::1]", &[0, 80]),
            s5fail(2),
        ),
        // RFC 9476 .alt: "x.i2p.alt" is "x.i2p"; ".alt" after anything else is clearnet.
        (".alt", name_req(1, None, b"x.alt", &[0, 80]), s5fail(2)),
        (
            "i2p.alt",
            name_req(1, None, b"i2p.alt", &[0, 80]),
            s5fail(2),
        ),
        ("only .i2p", name_req(1, None, b".i2p", &[0, 80]), s5fail(4)),
        (
            "space in name",
            name_req(1, None, b"a b.i2p", &[0, 80]),
            s5fail(4),
        ),
        (
            "NUL in name",
            name_req(1, None, b"a\0b.i2p", &[0, 80]),
            s5fail(4),
        ),
        (
            "non-UTF-8 name",
            name_req(1, None, b"\xff\xfe.i2p", &[0, 80]),
            s5fail(4),
        ),
        (
            "label 64",
            name_req(
                1,
                None,
                &[vec![b'a'; 64], b".i2p".to_vec()].concat(),
                &[0, 80],
            ),
            s5fail(4),
        ),
        (
            "empty label",
            name_req(1, None, b"a..i2p", &[0, 80]),
            s5fail(4),
        ),
        (
            "hyphen label",
            name_req(1, None, b"-a.i2p", &[0, 80]),
            s5fail(4),
        ),
        (
            "short b32",
            name_req(1, None, b"abc.b32.i2p", &[0, 80]),
            s5fail(4),
        ),
        (
            "b32 bad chars",
            name_req(
                1,
                None,
                &[vec![b'1'; 52], b".b32.i2p".to_vec()].concat(),
                &[0, 80],
            ),
            s5fail(4),
        ),
        (
            "BIND",
            name_req(2, None, B32.as_bytes(), &[0, 80]),
            s5fail(7),
        ),
        (
            "UDP ASSOCIATE",
            name_req(3, None, B32.as_bytes(), &[0, 80]),
            s5fail(7),
        ),
        (
            "RESOLVE_PTR",
            vec![5, 0xf1, 0, 1, 1, 2, 3, 4, 0, 0],
            s5fail(7),
        ),
        (
            "command 0",
            name_req(0, None, B32.as_bytes(), &[0, 80]),
            s5fail(7),
        ),
        (
            "command 0x7f",
            name_req(0x7f, None, B32.as_bytes(), &[0, 80]),
            s5fail(7),
        ),
        (
            "RESOLVE clearnet",
            name_req(0xf0, None, b"example.com", &[0, 0]),
            s5fail(2),
        ),
    ];
    for (name, rest, reply) in five {
        let (i, r) = with_greeting(rest, reply);
        c.push((name, i, r));
    }
    let incomplete: Vec<(&'static str, Vec<u8>)> = vec![
        ("request truncated head", vec![5, 1]),
        ("request truncated name", name_req(1, Some(20), b"abc", &[])),
        ("request no port", name_req(1, None, b"abc.i2p", &[])),
        ("request half port", name_req(1, None, b"abc.i2p", &[0])),
        ("IPv6 truncated", vec![5, 1, 0, 4, 0, 0, 0]),
    ];
    for (name, rest) in incomplete {
        let mut i = vec![5, 1, 0];
        i.extend(rest);
        c.push((name, i, Some(vec![5, 0]).filter(|_| false)));
    }
    c
}

#[tokio::test(start_paused = true)]
async fn malformed_handshake_corpus() {
    let p = proxy(Duration::from_secs(1), 256);
    let cases = corpus();
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    let mut waited = 0;
    for (name, input, want) in &cases {
        for chunked in [false, true] {
            let mut s = TcpStream::connect(p).await.unwrap();
            // Each write its own segment: with Nagle the kernel would hold the bytes for a
            // delayed ACK, a wait on the wall clock that paused time does not see.
            s.set_nodelay(true).unwrap();
            if chunked {
                // one byte at a time; the pause lets the proxy read each byte on its own
                for b in input {
                    if s.write_all(&[*b]).await.is_err() {
                        break;
                    }
                    sleep(Duration::from_micros(200)).await;
                }
            } else {
                let _ = s.write_all(input).await;
            }
            let t = Instant::now();
            let got = read_until_closed(&mut s, LOCAL_IO_TIMEOUT).await;
            match want {
                Some(w) => assert_eq!(&got, w, "{name} (byte by byte: {chunked})"),
                None => {
                    // incomplete: whatever replies came, then the handshake timeout closed it
                    assert!(
                        t.elapsed() >= Duration::from_millis(800),
                        "{name}: closed early"
                    );
                    waited += 1;
                }
            }
        }
        assert!(works(p).await, "proxy stopped serving after {name}");
    }
    eprintln!(
        "{} malformed inputs (x2 deliveries), {waited} cut by the timeout",
        cases.len()
    );
}

#[tokio::test(start_paused = true)]
async fn stalled_clients_are_cut_while_real_clients_are_served() {
    let p = proxy(Duration::from_secs(3), 2000);
    // 1,000 clients that send half a greeting and stall.
    let mut stalled = Vec::new();
    for i in 0..1000 {
        let mut s = TcpStream::connect(p).await.unwrap();
        s.write_all(if i % 2 == 0 { &[5][..] } else { &[4, 1, 0][..] })
            .await
            .unwrap();
        stalled.push(s);
    }
    // Real clients are served meanwhile.
    let t = Instant::now();
    for _ in 0..20 {
        assert!(works(p).await, "real client not served while 1000 stalled");
    }
    eprintln!(
        "20 real clients served in {:?} beside 1000 stalled",
        t.elapsed()
    );
    // Every stalled client is closed by the handshake timeout, without a reply.
    for mut s in stalled {
        let mut v = Vec::new();
        timeout(Duration::from_secs(15), s.read_to_end(&mut v))
            .await
            .expect("closed, not hanging")
            .expect("closed, not hanging");
        assert!(v.is_empty());
    }
    assert!(t.elapsed() >= Duration::from_secs(2));
    assert!(works(p).await);
}

#[tokio::test(start_paused = true)]
async fn connection_cap_closes_the_excess() {
    let p = proxy(Duration::from_secs(30), 10);
    let mut held = Vec::new();
    for _ in 0..10 {
        let mut s = TcpStream::connect(p).await.unwrap();
        s.write_all(&[5]).await.unwrap();
        held.push(s);
    }
    // Let the proxy accept all ten (paused: returns once it is idle).
    sleep(Duration::from_millis(200)).await;
    // The 11th is closed at once, without a reply.
    let mut s = TcpStream::connect(p).await.unwrap();
    let v = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(v.is_empty());
    drop(held);
    sleep(Duration::from_millis(200)).await;
    assert!(works(p).await, "slots are given back");
}

/// A router that takes 10 s to fail, and says whether it ever finished.
struct SlowRouter {
    finished: Arc<std::sync::atomic::AtomicBool>,
}

impl SlowRouter {
    async fn work(&self) -> eepsocks::i2p::OpenError {
        tokio::time::sleep(Duration::from_secs(10)).await;
        self.finished
            .store(true, std::sync::atomic::Ordering::SeqCst);
        eepsocks::i2p::OpenError::Router("slow".into())
    }
}

impl eepsocks::i2p::Router for SlowRouter {
    async fn resolve(
        &self,
        _who: Option<&eepsocks::socks::Credentials>,
        _target: &eepsocks::naming::Target,
    ) -> Result<(), eepsocks::i2p::OpenError> {
        Err(self.work().await)
    }

    async fn open(
        &self,
        _who: Option<&eepsocks::socks::Credentials>,
        _target: &eepsocks::naming::Target,
        _port: u16,
    ) -> Result<eepsocks::i2p::Opened, eepsocks::i2p::OpenError> {
        Err(self.work().await)
    }
}

/// A client that hangs up while its stream (or RESOLVE) is being set up frees its slot at once, and the
/// stream is not opened for nobody (the router's work is dropped).
#[tokio::test(start_paused = true)]
async fn client_leaving_during_setup_frees_its_slot() {
    use eepsocks::proxy::context::ListenerContext;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let ctx = Arc::new(ListenerContext::new(
        Duration::from_secs(5),
        Duration::from_secs(30),
        1,
    ));
    let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let router = Arc::new(SlowRouter {
        finished: finished.clone(),
    });
    tokio::spawn(eepsocks::proxy::server::serve_listener(
        Arc::new(l),
        router,
        ctx.clone(),
        std::future::pending(),
    ));
    // CONNECT, and Tor's RESOLVE (a lookup can take as long).
    for cmd in [1u8, 0xF0] {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.set_nodelay(true).unwrap();
        c.write_all(&[5, 1, 0]).await.unwrap();
        let mut m = [0u8; 2];
        c.read_exact(&mut m).await.unwrap();
        c.write_all(&support::client::socks5_request(cmd, B32, 80))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(ctx.open(), 1, "the request is being set up");
        drop(c);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(ctx.open(), 0, "slot still held after the client left");
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert!(
            !finished.load(std::sync::atomic::Ordering::SeqCst),
            "command {cmd}"
        );
    }
}
