//! The leak filters in the front end alone (no router): an IRC client and a browser talk
//! through eepsocks' accept loop to a service that keeps what it receives, with each
//! filter mode. The rules byte by byte are tested in crates/leakfilter; here, that the
//! proxy picks the right filter, runs both directions through it, sends the filter's word
//! back to the client, and leaves unfiltered streams byte-exact; and that a request for an
//! `http://` URL (eepsocks as an HTTP proxy) is always rewritten for the server. The same
//! checks run through real routers in tests/e2e_i2pd.rs.

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

/// The login name and GECOS full name of the account with `uid`, from /etc/passwd.
fn account(uid: u32) -> Option<(String, String)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.get(2)?.parse::<u32>().ok()? == uid).then(|| {
            let full = f.get(4).unwrap_or(&"").split(',').next().unwrap_or("");
            (f[0].to_string(), full.to_string())
        })
    })
}

/// irssi's defaults, `USER <login> <login> <server> :<full name>`, from a client of this
/// process's own account: the server sees neither name. Off, both pass as before. A
/// bouncer login passes either way.
#[test]
fn irc_user_naming_the_account_is_replaced() {
    let me = unsafe { libc::geteuid() };
    let Some((login, full)) = account(me) else {
        println!("skipped: uid {me} has no /etc/passwd entry");
        return;
    };
    let full = if full.is_empty() { login.clone() } else { full };
    let session = format!(
        "NICK nick\r\nUSER {login} {login} irc.postman.i2p :{full}\r\n\
         USER znc-admin/libera 0 * :Bouncer\r\nQUIT\r\n"
    );
    for (hide, want) in [
        (true, "USER user hostname localhost :user\r\n".to_string()),
        (
            false,
            format!("USER {login} hostname localhost :{full}\r\n"),
        ),
    ] {
        let (irc, addr) = irc_service();
        let proxy = Frontend::new(addr).irc_hide_account(hide).spawn_thread();
        exchange(proxy, 6667, session.as_bytes());
        let seen = String::from_utf8_lossy(&irc.last()).into_owned();
        assert_eq!(
            seen,
            format!(
                "NICK nick\r\n{want}USER znc-admin/libera hostname localhost :Bouncer\r\nQUIT\r\n"
            ),
            "irc_hide_account = {hide}"
        );
    }
}

/// As root: a client run as another account (`nobody`) is found by its socket's owner,
/// and its names are replaced too (eepsocks' own account is root's).
#[test]
fn irc_user_of_another_local_account_is_replaced() {
    use std::os::unix::process::CommandExt;
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: needs root to run a client as another account");
        return;
    }
    let Some((login, full)) = account(65534) else {
        println!("skipped: no account with uid 65534");
        return;
    };
    let full = if full.is_empty() { login.clone() } else { full };
    let (irc, addr) = irc_service();
    let proxy = Frontend::new(addr).spawn_thread();
    // A SOCKS5 client in a process of its own: bash's /dev/tcp, no login, CONNECT by name.
    // It reads what comes back until the server closes (the recorder does after 2 s of
    // quiet): closing with the greeting unread would reset the connection, and the relay
    // then ends before it has sent the USER line on.
    let name_len = B32.len();
    let script = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{port}; printf '\\x05\\x01\\x00' >&3; head -c 2 <&3 >/dev/null; \
         printf '\\x05\\x01\\x00\\x03\\x{name_len:02x}{B32}\\x1a\\x0b' >&3; head -c 10 <&3 >/dev/null; \
         printf 'NICK n\\r\\nUSER {login} 0 * :{full}\\r\\n' >&3; \
         timeout 10 cat <&3 >/dev/null; exec 3>&-",
        port = proxy.port()
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .uid(65534)
        .gid(65534)
        .output()
        .expect("bash");
    assert!(out.status.success(), "{out:?}");
    let t0 = std::time::Instant::now();
    while irc.last().is_empty() && t0.elapsed() < LOCAL_IO_TIMEOUT {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        String::from_utf8_lossy(&irc.last()),
        "NICK n\r\nUSER user hostname localhost :user\r\n"
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

/// A client using eepsocks as its HTTP proxy for an `http://` URL (no CONNECT).
fn forward(proxy: SocketAddr, data: &[&[u8]]) -> Vec<u8> {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(LOCAL_IO_TIMEOUT)).unwrap();
    for piece in data {
        s.write_all(piece).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    back
}

/// The request reaches the service in origin form, sanitized and with `Connection: close`
/// in every filter mode (`none` too); the client hears the service's response and nothing
/// of ours; a second request on the connection, for another site, never arrives.
#[test]
fn forwarded_url_is_rewritten_in_every_mode() {
    let request = b"GET http://web.i2p/page?q=1 HTTP/1.1\r\nHost: web.i2p\r\n\
User-Agent: curl/8.5.0\r\nReferer: http://other.i2p/\r\nProxy-Connection: Keep-Alive\r\n\r\n";
    let next = b"GET http://other.i2p/ HTTP/1.1\r\nHost: other.i2p\r\nCookie: secret=1\r\n\r\n";
    let want = b"GET /page?q=1 HTTP/1.1\r\nHost: web.i2p\r\nUser-Agent: Custom/1.0\r\n\
Connection: close\r\n\r\n";
    for mode in [FilterMode::None, FilterMode::Auto, FilterMode::Irc] {
        let web = Recorder::new(b"", OK);
        let proxy = Frontend::new(local_recorder(web.clone()))
            .filter(mode)
            .user_agent("Custom/1.0")
            .spawn_thread();
        // in one write with the head, and after it
        for data in [&[&[request, &next[..]].concat()[..]][..], &[request, next]] {
            assert_eq!(forward(proxy, data), OK, "{mode:?}");
            assert_eq!(
                String::from_utf8_lossy(&web.last()),
                String::from_utf8_lossy(want),
                "{mode:?}"
            );
        }
    }
}

/// The policy is CONNECT's: a clearnet URL gets 403 and opens nothing.
#[test]
fn forwarded_clearnet_url_is_refused() {
    let web = Recorder::new(b"", OK);
    let proxy = Frontend::new(local_recorder(web.clone())).spawn_thread();
    for url in [
        "http://example.com/",
        "http://10.0.0.1/",
        "http://[2001:db8::1]:80/",
    ] {
        let head = format!("GET {url} HTTP/1.1\r\nHost: x\r\n\r\n");
        let back = String::from_utf8(forward(proxy, &[head.as_bytes()])).unwrap();
        assert!(
            back.starts_with("HTTP/1.1 403 Forbidden\r\n"),
            "{url}: {back}"
        );
    }
    let back =
        String::from_utf8(forward(proxy, &[b"GET https://a.i2p/ HTTP/1.0\r\n\r\n"])).unwrap();
    assert!(back.starts_with("HTTP/1.0 400 Bad Request\r\n"), "{back}");
    assert!(web.got.lock().unwrap().is_empty());
}

/// curl with `-x http://…` and no `-p`, as users and git call it.
#[test]
fn curl_through_the_forwarding_proxy() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    support::services::spawn_http(l);
    let proxy = Frontend::new(addr).filter(FilterMode::None).spawn_thread();
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "-x"])
        .arg(format!("http://{proxy}"))
        .arg(format!("http://{B32}/index.html"))
        .output()
        .expect("curl");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        support::services::HTTP_BODY
    );
}

/// Connect through `proxy` to `port`, send `data` without half-closing, and return all that
/// came back until the proxy closed (or the read timed out).
fn until_closed(proxy: SocketAddr, port: u16, data: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(LOCAL_IO_TIMEOUT)).unwrap();
    assert_eq!(socks5_connect(&mut s, B32, port, None).unwrap(), 0);
    s.write_all(data).unwrap();
    let mut back = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return back,
            Ok(n) => back.extend_from_slice(&buf[..n]),
            Err(e) => panic!("not closed ({e}); got {:?}", String::from_utf8_lossy(&back)),
        }
    }
}

/// What the recorder got from its last caller, once that caller's stream ended.
fn recorded(r: &Recorder) -> Vec<u8> {
    for _ in 0..250 {
        if let Some(got) = r.got.lock().unwrap().last() {
            return got.clone();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("the service's stream never ended");
}

/// A page that makes its request head longer than the filter holds (a 70 KB URL): the
/// client gets 431 and a closed stream, and the server none of the head (it got the
/// whole request untouched, real User-Agent and all, before).
#[test]
fn over_long_http_head_is_refused_with_431_and_closed() {
    let web = Recorder::new(b"", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let proxy = Frontend::new(local_recorder(web.clone())).spawn_thread();
    let mut head = b"GET /?q=".to_vec();
    head.extend(std::iter::repeat(b'a').take(70_000));
    head.extend_from_slice(
        b" HTTP/1.1\r\nUser-Agent: Firefox/128\r\nAccept-Language: de\r\nReferer: http://b.i2p/\r\n\r\n",
    );
    let back = until_closed(proxy, 80, &head);
    let back = String::from_utf8_lossy(&back);
    assert!(
        back.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{back}"
    );
    assert_eq!(recorded(&web), b"");
}

/// A server line that ends like an HTTP request line no longer turns the server → client
/// filter off: the CTCP request and the DCC offer after it never reach the client (who
/// hears of the offer from eepsocks).
#[test]
fn irc_server_lines_cannot_switch_the_filter_off() {
    let irc = Recorder::new(
        b":srv NOTICE * :try GET / HTTP/1.1\r\n:bob PRIVMSG alice :\x01VERSION\x01\r\n\
          :bob PRIVMSG alice :\x01DCC SEND f 3232235777 5000 9\x01\r\n:srv 001 alice :Welcome\r\n",
        b"",
    );
    let proxy = Frontend::new(local_recorder(irc)).spawn_thread();
    let back = exchange(proxy, 6667, b"NICK alice\r\nUSER a 0 * :A\r\n");
    assert_eq!(
        String::from_utf8_lossy(&back),
        ":srv NOTICE * :try GET / HTTP/1.1\r\n:eepsocks NOTICE alice :eepsocks dropped a DCC \
         offer from bob: accepting it would connect outside I2P and reveal your IP address\r\n\
         :srv 001 alice :Welcome\r\n"
    );
}

/// The user's own CTCP request is dropped with a word back, once; the server never sees it.
#[test]
fn irc_ctcp_request_is_told_to_the_user() {
    let (irc, addr) = irc_service();
    let proxy = Frontend::new(addr).spawn_thread();
    let back = exchange(
        proxy,
        6667,
        b"NICK alice\r\nPRIVMSG bob :\x01VERSION\x01\r\nPRIVMSG bob :\x01PING 1\x01\r\n\
          PRIVMSG bob :hi\r\n",
    );
    assert_eq!(irc.last(), b"NICK alice\r\nPRIVMSG bob :hi\r\n");
    let back = String::from_utf8_lossy(&back);
    assert_eq!(
        back.matches(":eepsocks NOTICE alice :eepsocks dropped your CTCP VERSION to bob:")
            .count(),
        1,
        "{back}"
    );
    assert!(!back.contains("CTCP PING"), "{back}");
}

/// A client that does not speak IRC on an IRC port: the stream is closed, and none of what
/// it sent (a CTCP reply among it) reaches the server (all of it passed untouched before).
#[test]
fn irc_client_speaking_something_else_is_closed() {
    let irc = Recorder::new(b":srv 001 alice :Welcome\r\n", b"");
    let proxy = Frontend::new(local_recorder(irc.clone())).spawn_thread();
    let back = until_closed(
        proxy,
        6667,
        b"\x16\x03\x01\x02\x00\nNOTICE bob :\x01VERSION irssi 1.4 - Linux\x01\r\n",
    );
    assert!(!back.contains(&1), "{back:?}");
    assert_eq!(recorded(&irc), b"");
}

/// A client that sends its first WebSocket frame right behind the Upgrade request (before
/// the server answered): the HTTP filter holds the frame until the server's answer. Once
/// the 101 has passed, the frame goes on without waiting for more bytes from the client
/// (before, it sat held until the client sent again: a client waiting for the server's
/// reply to that frame hung).
#[test]
fn bytes_held_for_a_protocol_switch_go_on_when_the_server_accepts() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(LOCAL_IO_TIMEOUT)).unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut b).unwrap();
            head.push(b[0]);
        }
        s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
            .unwrap();
        // The frame sent behind the request: echoed once it arrives.
        let mut frame = [0u8; 7];
        s.read_exact(&mut frame).unwrap();
        s.write_all(&frame).unwrap();
    });
    let proxy = Frontend::new(addr).spawn_thread();
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(LOCAL_IO_TIMEOUT)).unwrap();
    assert_eq!(socks5_connect(&mut s, B32, 80, None).unwrap(), 0);
    s.write_all(
        b"GET /chat HTTP/1.1\r\nHost: x.i2p\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello",
    )
    .unwrap();
    let mut back = Vec::new();
    let mut buf = [0u8; 256];
    while !back.ends_with(b"\x81\x05hello") {
        let n = s.read(&mut buf).expect("the frame comes back, no hang");
        assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&back));
        back.extend_from_slice(&buf[..n]);
    }
    assert!(back.starts_with(b"HTTP/1.1 101"), "{back:?}");
}
