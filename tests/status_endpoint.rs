//! The status endpoint against a hostile local process and a hostile web page: a foreign
//! Host (DNS rebinding) or a page's request is refused without the b32s; a slow request is
//! cut by one deadline; connections are capped. On tokio's paused clock.

mod support;

use eepsocks::daemon::status::{self, ListenerInfo, MAX_STATUS_CONNECTIONS};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use support::consts::B32;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

async fn endpoint() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let info = Arc::new(ListenerInfo {
        name: "main".into(),
        listen: "127.0.0.1:4447".into(),
        identity: Box::new(|| B32.into()),
        stats: Arc::default(),
        session: Box::new(|| status::SessionView {
            state: "up",
            since: None,
            error: None,
            post_quantum: None,
            style: None,
            udp_subsession: None,
        }),
        per_user_identities: Box::new(|| 0),
    });
    let infos = Arc::new(RwLock::new(vec![info]));
    tokio::spawn(status::serve_endpoint(
        l,
        infos,
        "sam",
        "127.0.0.1:7656".into(),
    ));
    addr
}

async fn get(addr: SocketAddr, head: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(start_paused = true)]
async fn foreign_host_and_pages_get_no_b32() {
    let a = endpoint().await;
    let port = a.port();
    let ok = get(
        a,
        &format!("GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"),
    )
    .await;
    assert!(ok.starts_with("HTTP/1.0 200") && ok.contains(B32), "{ok}");
    for extra in [
        format!("Host: attacker.example:{port}\r\n"),
        String::new(),
        format!("Host: 127.0.0.1:{port}\r\nOrigin: http://attacker.example\r\n"),
        format!("Host: localhost:{port}\r\nSec-Fetch-Site: cross-site\r\n"),
    ] {
        for path in ["/status", "/metrics"] {
            let r = get(a, &format!("GET {path} HTTP/1.1\r\n{extra}\r\n")).await;
            assert!(r.starts_with("HTTP/1.0 403"), "{extra:?}: {r}");
            assert!(!r.contains(B32), "{extra:?}: {r}");
        }
    }
}

/// A byte every 4 s keeps no connection open past the one 5 s deadline of the request.
#[tokio::test(start_paused = true)]
async fn slow_request_is_cut_by_one_deadline() {
    let a = endpoint().await;
    let s = TcpStream::connect(a).await.unwrap();
    s.set_nodelay(true).unwrap();
    let (mut r, mut w) = s.into_split();
    let t0 = Instant::now();
    let eof = tokio::spawn(async move {
        let mut b = [0u8; 64];
        while matches!(r.read(&mut b).await, Ok(n) if n > 0) {}
        t0.elapsed()
    });
    for b in b"GET /status HTTP/1.1\r\n" {
        if w.write_all(&[*b]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
    let closed_after = eof.await.unwrap();
    assert!(
        closed_after <= Duration::from_secs(6),
        "closed after {closed_after:?}"
    );
}

/// Idle connections beyond the cap are closed at once; the endpoint serves again once they
/// are gone.
#[tokio::test(start_paused = true)]
async fn connections_are_capped() {
    let a = endpoint().await;
    let mut idle = Vec::new();
    for _ in 0..MAX_STATUS_CONNECTIONS {
        idle.push(TcpStream::connect(a).await.unwrap());
    }
    // Let the endpoint take them all.
    tokio::time::sleep(Duration::from_millis(10)).await;
    let mut extra = TcpStream::connect(a).await.unwrap();
    let mut b = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(1), extra.read(&mut b))
        .await
        .expect("over the cap: closed at once")
        .unwrap_or(0);
    assert_eq!(n, 0);
    drop(idle);
    tokio::time::sleep(Duration::from_millis(10)).await;
    let port = a.port();
    let ok = get(
        a,
        &format!("GET /status HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n"),
    )
    .await;
    assert!(ok.starts_with("HTTP/1.0 200"), "{ok}");
}
