//! HTTP CONNECT through the `eepsocks run` binary on the fake SAM bridge (no root): a
//! `Proxy-Authorization: Basic` login is the SOCKS5 login by another name, for the auth
//! check and for `isolate = "username"`.

mod support;

use base64::Engine;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
use support::rig::{free_addrs, Rig};

/// CONNECT to the echo service as `user` (password "x"); the status code, with the echo
/// checked on 200.
fn connect(r: &Rig, proxy: SocketAddr, user: Option<&str>) -> u16 {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "CONNECT {}:80 HTTP/1.1\r\nHost: {}:80\r\n",
        r.service, r.service
    );
    if let Some(u) = user {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{u}:x"));
        req.push_str(&format!("Proxy-Authorization: Basic {b}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).unwrap() == 0 {
            break;
        }
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let code: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head:?}"));
    if code == 200 {
        s.write_all(b"ping").unwrap();
        let mut back = [0u8; 4];
        s.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"ping");
    }
    code
}

/// On an `isolate = "username"` listener, the HTTP Basic user picks the same identity as
/// the same SOCKS5 username, and another user gets another one.
#[test]
fn basic_login_picks_the_per_username_identity() {
    let r = Rig::new();
    let [a] = free_addrs();
    let _p = r.run(
        &format!(
            "status_listen = \"off\"\n[[proxy]]\nname = \"users\"\nlisten = \"{a}\"\n\
             isolate = \"username\"\n"
        ),
        &[],
    );
    assert_eq!(connect(&r, a, Some("alice")), 200);
    assert!(r.echo_ok(a, Some("alice")));
    assert_eq!(connect(&r, a, Some("bob")), 200);
    let ids: Vec<String> = r.fake.connects().into_iter().map(|c| c.id).collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert_eq!(
        ids[0], ids[1],
        "alice over HTTP and over SOCKS5: one identity"
    );
    assert_ne!(ids[0], ids[2], "bob has his own");
}

/// A listener with `[proxy.auth]`: no login or a wrong one gets 407, the right one 200.
#[test]
fn basic_login_is_checked() {
    let r = Rig::new();
    let [a] = free_addrs();
    let _p = r.run(
        &format!(
            "status_listen = \"off\"\n[[proxy]]\nname = \"locked\"\nlisten = \"{a}\"\n\
             [proxy.auth]\nalice = \"x\"\n"
        ),
        &[],
    );
    assert_eq!(connect(&r, a, None), 407);
    assert_eq!(connect(&r, a, Some("mallory")), 407);
    // A failure locks the address out for a second: the right login waits for it.
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(connect(&r, a, Some("alice")), 200);
}
