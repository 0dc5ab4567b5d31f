//! The relay alone, over loopback TCP: eepsocks' server loop with a backend that opens plain
//! TCP to a local service. Checks what the i2pd network cannot show (i2pd ends a stream on
//! the first FIN): a true half-close is relayed both ways, byte-exact.
//!
//! Blocking clients in real time against a front end on its own thread, except the login
//! tests, whose one-second failure delay runs on tokio's paused clock.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;
use support::client::socks5_connect;
use support::consts::{B32, LOCAL_IO_TIMEOUT};
use support::frontend::Frontend;
use support::services::local_echo;

/// eepsocks' server on a loopback port of its own thread, backed by plain TCP to `service`.
fn proxy_to(service: SocketAddr) -> SocketAddr {
    Frontend::new(service).spawn_thread()
}

fn connect(proxy: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    assert_eq!(socks5_connect(&mut s, B32, 80, None).unwrap(), 0);
    s
}

#[test]
fn client_fin_with_data_in_flight_loses_nothing() {
    let proxy = proxy_to(local_echo());
    let mut s = connect(proxy);
    let payload: Vec<u8> = (0..4 * 1024 * 1024u32)
        .map(|i| (i ^ (i >> 11)) as u8)
        .collect();
    let mut w = s.try_clone().unwrap();
    let p2 = payload.clone();
    let writer = std::thread::spawn(move || {
        w.write_all(&p2).unwrap();
        w.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    assert_eq!(back.len(), payload.len());
    assert!(back == payload);
}

#[test]
fn service_fin_first_leaves_client_direction_open() {
    // The service sends a greeting and half-closes, then still reads what the client sends.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let service = l.local_addr().unwrap();
    let got = std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        c.write_all(b"banner\n").unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut v = Vec::new();
        c.read_to_end(&mut v).unwrap();
        v
    });
    let proxy = proxy_to(service);
    let mut s = connect(proxy);
    let mut banner = Vec::new();
    s.read_to_end(&mut banner).unwrap();
    assert_eq!(banner, b"banner\n");
    s.write_all(b"still talking after your FIN").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(got.join().unwrap(), b"still talking after your FIN");
}

/// `printf 'GET …' | nc -N` through a SAM router: the client half-closes after its
/// request. i2pd and emissary end the whole stream at a FIN on the SAM socket, so it must
/// not be passed on; the client must still get the whole reply. The "router" here acts
/// like i2pd: a FIN from the proxy ends everything before the reply is written.
#[test]
fn half_closed_client_gets_the_whole_reply_through_a_sam_like_router() {
    let reply: Vec<u8> = (0..210u8).collect();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let service = l.local_addr().unwrap();
    let sent = reply.clone();
    std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.ends_with(b"\r\n\r\n") {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        // The server takes its time; a FIN meanwhile ends the stream (as i2pd does).
        c.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        if let Ok(0) = c.read(&mut buf) {
            return;
        }
        let _ = c.write_all(&sent);
    });
    let proxy = Frontend::new(service).half_close(false).spawn_thread();
    let mut s = connect(proxy);
    s.write_all(b"GET / HTTP/1.1\r\nHost: a.i2p\r\n\r\n")
        .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    assert_eq!(back, reply);
}

/// SOCKS5 request with an IPv4 literal target.
fn s5_ipv4(cmd: u8, ip: [u8; 4], port: u16) -> Vec<u8> {
    let mut r = vec![5, cmd, 0, 1];
    r.extend_from_slice(&ip);
    r.extend_from_slice(&port.to_be_bytes());
    r
}

fn s5_exchange(proxy: SocketAddr, req: &[u8]) -> (TcpStream, [u8; 10]) {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(LOCAL_IO_TIMEOUT)).unwrap();
    s.write_all(&[5, 1, 0]).unwrap();
    let mut m = [0u8; 2];
    s.read_exact(&mut m).unwrap();
    s.write_all(req).unwrap();
    let mut r = [0u8; 10];
    s.read_exact(&mut r).unwrap();
    (s, r)
}

#[test]
fn tor_resolve_then_connect_to_the_stand_in_address() {
    let proxy = proxy_to(local_echo());
    // RESOLVE (0xF0) of an I2P name: a 255.x.y.z stand-in.
    let (_, r) = s5_exchange(
        proxy,
        &support::client::socks5_request(0xF0, "forum.i2p", 0),
    );
    assert_eq!(&r[..4], &[5, 0, 0, 1], "{r:?}");
    assert_eq!(r[4], 255);
    let ip = [r[4], r[5], r[6], r[7]];
    // The same name gives the same address.
    let (_, r2) = s5_exchange(
        proxy,
        &support::client::socks5_request(0xF0, "FORUM.i2p", 0),
    );
    assert_eq!(r2[4..8], ip);
    // RESOLVE of a clearnet name: not allowed.
    let (_, r) = s5_exchange(
        proxy,
        &support::client::socks5_request(0xF0, "example.com", 0),
    );
    assert_eq!(r[1], 0x02);
    // CONNECT to the stand-in (as a literal, as torsocks does) reaches the name's stream.
    let (mut s, r) = s5_exchange(proxy, &s5_ipv4(1, ip, 80));
    assert_eq!(r[1], 0, "connect to the stand-in address");
    s.write_all(b"hi").unwrap();
    let mut b = [0u8; 2];
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"hi");
    // ... and as the dotted-quad string.
    let quad = format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]);
    let (_, r) = s5_exchange(proxy, &support::client::socks5_request(1, &quad, 80));
    assert_eq!(r[1], 0);
    // Any other IP is still refused.
    let (_, r) = s5_exchange(proxy, &s5_ipv4(1, [255, ip[1], ip[2], ip[3] ^ 1], 80));
    assert_eq!(r[1], 0x02);
    // SOCKS4a RESOLVE (Tor's extension, CD 0xF0): VN 0, CD 90 and the address.
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(LOCAL_IO_TIMEOUT)).unwrap();
    s.write_all(b"\x04\xf0\x00\x00\x00\x00\x00\x01\x00forum.i2p\x00")
        .unwrap();
    let mut r = [0u8; 8];
    s.read_exact(&mut r).unwrap();
    assert_eq!(&r[..2], &[0, 90]);
    assert_eq!(r[4..8], ip);
}

/// A failed login locks its source address out (1 s, doubling): during the lockout even the
/// right password is refused unchecked, so parallel connections get one guess per window.
/// Paused time: the lockout passes without waiting.
#[tokio::test(start_paused = true)]
async fn required_login_is_checked_and_guessing_is_locked_out() {
    use support::client::socks5_connect_async;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::time::timeout;
    let check: eepsocks::socks::AuthCheck = Arc::new(|c: &eepsocks::socks::Credentials| {
        c.username == b"alice" && c.password == b"swordfish"
    });
    let proxy = Frontend::new(support::services::local_echo_tokio())
        .auth(check)
        .spawn();
    let login = |user: &'static str, pw: &'static str| async move {
        let mut s = TcpStream::connect(proxy).await.unwrap();
        let mut m = vec![5, 1, 2, 1, user.len() as u8];
        m.extend_from_slice(user.as_bytes());
        m.push(pw.len() as u8);
        m.extend_from_slice(pw.as_bytes());
        s.write_all(&m).await.unwrap();
        let mut v = [0u8; 4];
        timeout(LOCAL_IO_TIMEOUT, s.read_exact(&mut v))
            .await
            .unwrap()
            .unwrap();
        v[3]
    };
    let mut s = TcpStream::connect(proxy).await.unwrap();
    assert_eq!(
        timeout(
            LOCAL_IO_TIMEOUT,
            socks5_connect_async(&mut s, B32, 80, Some(("alice", "swordfish")))
        )
        .await
        .unwrap()
        .unwrap(),
        0
    );
    assert_eq!(login("alice", "x").await, 1, "wrong password");
    // A burst of guesses, the right one among them: all refused, none checked.
    for pw in ["a", "b", "swordfish", "c"] {
        assert_eq!(login("alice", pw).await, 1, "{pw} during the lockout");
    }
    tokio::time::sleep(Duration::from_millis(1001)).await;
    assert_eq!(login("alice", "swordfish").await, 0, "after the lockout");
    // no-auth offers are refused outright
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(&[5, 1, 0]).await.unwrap();
    let mut v = Vec::new();
    timeout(LOCAL_IO_TIMEOUT, s.read_to_end(&mut v))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v, [5, 0xff]);
}

/// HTTP CONNECT on the SOCKS port, through the real server loop: the tunnel opens with
/// `200`, pipelined bytes go through, and a required login is asked with `407`.
#[tokio::test(start_paused = true)]
async fn http_connect_tunnels_and_asks_for_a_login() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::time::timeout;
    const OK: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";
    // Writes a CONNECT head and `early` at once, then reads `want` bytes back.
    let exchange = |proxy, auth: &'static str, early: &'static [u8], want: usize| async move {
        let mut s = TcpStream::connect(proxy).await.unwrap();
        let head = format!("CONNECT {B32}:80 HTTP/1.1\r\nHost: {B32}:80\r\n{auth}\r\n");
        s.write_all(&[head.as_bytes(), early].concat())
            .await
            .unwrap();
        let mut got = vec![0u8; want];
        timeout(LOCAL_IO_TIMEOUT, s.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        got
    };
    let open = Frontend::new(support::services::local_echo_tokio()).spawn();
    let got = exchange(open, "", b"early", OK.len() + 5).await;
    assert_eq!(got, [OK, b"early"].concat());

    let check: eepsocks::socks::AuthCheck = Arc::new(|c: &eepsocks::socks::Credentials| {
        c.username == b"alice" && c.password == b"swordfish"
    });
    let locked = Frontend::new(support::services::local_echo_tokio())
        .auth(check)
        .spawn();
    // alice:swordfish
    let good = "Proxy-Authorization: Basic YWxpY2U6c3dvcmRmaXNo\r\n";
    let got = exchange(locked, good, b"hi", OK.len() + 2).await;
    assert_eq!(got, [OK, b"hi"].concat());
    let status = b"HTTP/1.1 407 ";
    let got = exchange(locked, "", b"", status.len()).await;
    assert_eq!(got, status);
    let got = exchange(
        locked,
        "Proxy-Authorization: Basic YWxpY2U6eA==\r\n",
        b"",
        status.len(),
    )
    .await;
    assert_eq!(got, status);
}

/// A client that closes (its FIN kept from a SAM stream) while the server never closes (an
/// echo, a keep-alive HTTP server): its stream only finishes a reply, and gives its slot up
/// to a new client when every slot is taken. Before, it held the slot for the 30 s idle
/// spell, so a listener took at most max_clients / 30 such streams a second.
#[test]
fn finishing_streams_give_their_slots_to_new_clients() {
    let proxy = Frontend::new(local_echo())
        .half_close(false)
        .max_clients(2)
        .spawn_thread();
    for round in 0..6 {
        let mut s = connect(proxy);
        s.write_all(b"ping").unwrap();
        let mut back = [0u8; 4];
        s.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"ping", "round {round}");
        // Closed for good: the echo server never closes its side.
        drop(s);
    }
    // A client still sending is never evicted: with both slots held by live clients, a
    // third is closed without a reply.
    let mut a = connect(proxy);
    let mut b = connect(proxy);
    let mut c = TcpStream::connect(proxy).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = c.write_all(&[5, 1, 0]);
    let mut buf = [0u8; 2];
    assert!(
        matches!(c.read(&mut buf), Ok(0) | Err(_)),
        "a third live client was served"
    );
    for s in [&mut a, &mut b] {
        s.write_all(b"live").unwrap();
        let mut back = [0u8; 4];
        s.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"live");
    }
}
