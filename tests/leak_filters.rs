//! The leak filters in the front end alone (no router): an IRC client and a browser talk
//! through eepsocks' accept loop to a service that keeps what it receives, with each
//! filter mode. The rules byte by byte are tested in crates/leakfilter; here, that the
//! proxy picks the right filter, runs both directions through it, sends the filter's word
//! back to the client, and leaves unfiltered streams byte-exact. The same checks run
//! through real routers in tests/e2e_i2pd.rs.

mod support;

use eepsocks::config::FilterMode;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use support::client::socks5_connect;
use support::consts::{B32, LOCAL_IO_TIMEOUT};
use support::frontend::Frontend;
use support::leaks::*;
use support::services::{local_recorder, Recorder};

/// Connect through `proxy` to `port`, send `data`, half-close, and return all that came
/// back. The recorder answers after our half-close, so everything sent was seen first.
fn exchange(proxy: SocketAddr, port: u16, data: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(LOCAL_IO_TIMEOUT)).unwrap();
    assert_eq!(socks5_connect(&mut s, B32, port, None).unwrap(), 0);
    // Split across writes, as a real client's lines may be.
    let (a, b) = data.split_at(data.len() / 3);
    s.write_all(a).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    s.write_all(b).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    back
}

fn irc_service() -> (std::sync::Arc<Recorder>, SocketAddr) {
    let r = Recorder::new(IRC_SERVER_GREETING, b"ERROR :Closing link\r\n");
    let a = local_recorder(r.clone());
    (r, a)
}

#[test]
fn auto_filters_irc_on_6667_both_ways() {
    let (irc, addr) = irc_service();
    let proxy = Frontend::new(addr).spawn_thread();
    let back = exchange(proxy, 6667, IRC_CLIENT_SESSION);
    assert_irc_filtered(&irc.last());
    assert_irc_greeting_filtered(&back);
}

#[test]
fn irc_mode_filters_any_port() {
    let (irc, addr) = irc_service();
    let proxy = Frontend::new(addr).filter(FilterMode::Irc).spawn_thread();
    let back = exchange(proxy, 7000, IRC_CLIENT_SESSION);
    assert_irc_filtered(&irc.last());
    assert_irc_greeting_filtered(&back);
}

#[test]
fn auto_leaves_tls_irc_and_other_ports_alone() {
    let (irc, addr) = irc_service();
    let proxy = Frontend::new(addr).spawn_thread();
    for port in [6697, 7000] {
        let back = exchange(proxy, port, IRC_CLIENT_SESSION);
        assert_eq!(irc.last(), IRC_CLIENT_SESSION, "port {port}");
        assert_eq!(
            back,
            [IRC_SERVER_GREETING, b"ERROR :Closing link\r\n"].concat()
        );
    }
}

#[test]
fn none_passes_irc_untouched() {
    let (irc, addr) = irc_service();
    let proxy = Frontend::new(addr).filter(FilterMode::None).spawn_thread();
    let back = exchange(proxy, 6667, IRC_CLIENT_SESSION);
    assert_eq!(irc.last(), IRC_CLIENT_SESSION);
    assert_eq!(
        back,
        [IRC_SERVER_GREETING, b"ERROR :Closing link\r\n"].concat()
    );
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

#[test]
fn auto_sanitizes_every_request_of_a_keep_alive_connection_on_80() {
    let web = Recorder::new(b"", OK);
    let proxy = Frontend::new(local_recorder(web.clone())).spawn_thread();
    let post = b"POST /form HTTP/1.1\r\nHost: web.i2p\r\nReferer: http://web.i2p/page\r\n\
Content-Length: 20\r\n\r\nReferer: stays here\n";
    let back = exchange(
        proxy,
        80,
        &[FIREFOX_REQUEST, post, FIREFOX_REQUEST].concat(),
    );
    assert_eq!(back, OK);
    let post_clean =
        b"POST /form HTTP/1.1\r\nHost: web.i2p\r\nContent-Length: 20\r\n\r\nReferer: stays here\n";
    assert_eq!(
        String::from_utf8_lossy(&web.last()),
        String::from_utf8_lossy(&[FIREFOX_SANITIZED, post_clean, FIREFOX_SANITIZED].concat())
    );
}

#[test]
fn http_mode_uses_the_configured_user_agent_on_any_port() {
    let web = Recorder::new(b"", OK);
    let proxy = Frontend::new(local_recorder(web.clone()))
        .filter(FilterMode::Http)
        .user_agent("Custom/1.0")
        .spawn_thread();
    exchange(proxy, 8080, FIREFOX_REQUEST);
    let want =
        String::from_utf8_lossy(FIREFOX_SANITIZED).replace("MYOB/6.66 (AN/ON)", "Custom/1.0");
    assert_eq!(String::from_utf8_lossy(&web.last()), want);
}

#[test]
fn none_and_other_ports_pass_http_untouched() {
    let web = Recorder::new(b"", OK);
    let addr = local_recorder(web.clone());
    let none = Frontend::new(addr).filter(FilterMode::None).spawn_thread();
    exchange(none, 80, FIREFOX_REQUEST);
    assert_eq!(web.last(), FIREFOX_REQUEST);
    let auto = Frontend::new(addr).spawn_thread();
    exchange(auto, 8080, FIREFOX_REQUEST);
    assert_eq!(web.last(), FIREFOX_REQUEST);
}

/// Not HTTP on port 80 (an SSH banner, binary): auto passes it untouched and at once.
#[test]
fn auto_passes_other_protocols_on_80_untouched() {
    let echo = support::services::local_echo();
    let proxy = Frontend::new(echo).spawn_thread();
    for first in [
        &b"SSH-2.0-OpenSSH_9.2\r\n"[..],
        b"ping",
        b"\x16\x03\x01\x02\x00",
    ] {
        let mut s = TcpStream::connect(proxy).unwrap();
        s.set_read_timeout(Some(LOCAL_IO_TIMEOUT)).unwrap();
        assert_eq!(socks5_connect(&mut s, B32, 80, None).unwrap(), 0);
        s.write_all(first).unwrap();
        let mut back = vec![0u8; first.len()];
        s.read_exact(&mut back)
            .unwrap_or_else(|e| panic!("{first:?} held back: {e}"));
        assert_eq!(back, first);
    }
}
