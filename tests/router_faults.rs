//! The `eepsocks run` binary against a router that misbehaves (the fake SAM bridge): one
//! that never answers HELLO or SESSION CREATE, and one that closes a stream it cannot open.
//! Whatever the router does, the SOCKS port opens at start, clients get a prompt answer that
//! says what is wrong, and the proxy recovers by itself once the router does.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use support::client::socks5_connect;
use support::rig::{free_addrs, listener_status, Rig, READY};

/// A SOCKS5 CONNECT to `host` through `proxy`: the reply code and how long it took.
fn connect(proxy: SocketAddr, host: &str) -> (u8, Duration) {
    let t0 = Instant::now();
    let mut s = TcpStream::connect(proxy).expect("the SOCKS port is open");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let code = socks5_connect(&mut s, host, 80, None).expect("a SOCKS reply");
    (code, t0.elapsed())
}

/// The SOCKS port accepts within `within` (polled).
fn wait_port(addr: SocketAddr, within: Duration) {
    let t0 = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(t0.elapsed() < within, "{addr} not open after {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A bridge that accepts connections but never answers HELLO: before, eepsocks never
/// opened its SOCKS port (it waited for the router to make its keys). Now the port opens
/// at once, clients get 0x01 at once, the log says what the router did, and once the
/// router answers, the session comes up and streams work.
#[test]
fn a_router_that_never_says_hello_cannot_keep_the_port_shut() {
    let rig = Rig::new();
    rig.fake.hang("HELLO");
    let [listen, status] = free_addrs::<2>();
    rig.write_config(&format!(
        "listen = \"{listen}\"\nstatus_listen = \"{status}\"\n"
    ));
    let p = rig.start(&[]);
    wait_port(listen, Duration::from_secs(10));
    let (code, took) = connect(listen, &rig.service);
    assert_eq!(code, 0x01, "general failure while the router is silent");
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    p.wait_log("router not ready", Duration::from_secs(5));
    // HELLO is bounded (10 s): the attempt fails with the reason, and is retried.
    p.wait_log("did not answer HELLO within 10 s", Duration::from_secs(20));
    let s = listener_status(status, "eepsocks");
    assert_eq!(s["session"], "down", "{s}");
    assert!(
        s["session_error"].as_str().unwrap().contains("HELLO"),
        "{s}"
    );
    let (code, took) = connect(listen, &rig.service);
    assert_eq!(code, 0x01);
    assert!(took < Duration::from_secs(3), "answered after {took:?}");

    // The router wakes up: the keys are made, the session comes up, streams work.
    rig.fake.clear_faults();
    p.wait_ready_within(READY + Duration::from_secs(30));
    assert!(rig.echo_soon(listen, None, Duration::from_secs(5)));
    assert!(
        rig.data().join("eepsocks.dat").exists(),
        "the new identity is saved once the router made it"
    );
}

/// SESSION CREATE that the router never answers (i2pd short of peers; a Java I2P that
/// builds tunnels for minutes): clients get "not ready" at once, status shows the session
/// being created and since when, progress is logged, and past `session_timeout` the
/// attempt is dropped (its connection closed) and retried.
#[test]
fn an_unanswered_session_create_is_bounded_shown_and_retried() {
    let rig = Rig::new();
    rig.fake.hang("SESSION CREATE");
    let [listen, status] = free_addrs::<2>();
    let p = {
        rig.write_config(&format!(
            "listen = \"{listen}\"\nstatus_listen = \"{status}\"\nsession_timeout = 4\n"
        ));
        rig.start(&[])
    };
    wait_port(listen, Duration::from_secs(10));
    let t0 = Instant::now();
    let (code, took) = connect(listen, &rig.service);
    assert_eq!(code, 0x01);
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    p.wait_log("router not ready", Duration::from_secs(5));
    let s = listener_status(status, "eepsocks");
    assert_eq!(s["session"], "creating", "{s}");
    assert_eq!(s["session_up"], false, "{s}");
    let since = s["session_since"].as_u64().expect("since when");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(since <= now && now - since < 30, "since {since}, now {now}");
    // Bounded: dropped after 4 s and tried again on a new connection.
    p.wait_log("unanswered for 4 s", Duration::from_secs(15));
    assert!(
        rig.fake.wait_for(
            |st| st.count("SESSION CREATE") >= 2,
            Duration::from_secs(15)
        ),
        "SESSION CREATE retried"
    );
    assert!(
        t0.elapsed() >= Duration::from_secs(3),
        "not before the deadline"
    );
    // The router works but is slow: still "creating" (not "down"), and clients still hear
    // "not ready" at once.
    let s = listener_status(status, "eepsocks");
    assert_eq!(s["session"], "creating", "{s}");
    let (code, took) = connect(listen, &rig.service);
    assert_eq!(code, 0x01);
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    // The reply goes out before its log line is written: wait for the line, bounded.
    let logged = Instant::now();
    while p.log().matches("router not ready").count() < 2 {
        assert!(
            logged.elapsed() < Duration::from_secs(5),
            "no second 'router not ready' line: {}",
            p.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    rig.fake.clear_faults();
    p.wait_ready_within(READY + Duration::from_secs(30));
    assert!(rig.echo_soon(listen, None, Duration::from_secs(5)));
}

/// A router that closes a STREAM CONNECT socket without a STREAM STATUS while it works
/// (emissary, when no LeaseSet is found): the site is unreachable (0x04; 0xF0 with
/// extended errors; HTTP 404), not "router unavailable". A b32 with padding bits set is
/// refused before the router is asked.
#[test]
fn a_missing_site_is_unreachable_not_a_broken_router() {
    let rig = Rig::new();
    let [plain, extended] = free_addrs::<2>();
    let p = rig.run(
        &format!(
            "status_listen = \"off\"\n\
             [[proxy]]\nname = \"plain\"\nlisten = \"{plain}\"\n\
             [[proxy]]\nname = \"ext\"\nlisten = \"{extended}\"\nkeys = \"ext.dat\"\n\
             extended_errors = true\n"
        ),
        &[],
    );
    // Both the warm-socket path (closed at once) and a router that looks first (later).
    for after in [Duration::ZERO, Duration::from_millis(400)] {
        rig.fake.close_on("STREAM CONNECT", after, None);
        let (code, _) = connect(plain, &rig.service);
        assert_eq!(code, 0x04, "host unreachable (closed after {after:?})");
        let (code, _) = connect(extended, &rig.service);
        assert_eq!(code, 0xF0, "LeaseSet not found (closed after {after:?})");
        let mut s = TcpStream::connect(plain).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let host = &rig.service;
        write!(s, "CONNECT {host}:80 HTTP/1.1\r\nHost: {host}:80\r\n\r\n").unwrap();
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        assert!(text.starts_with("HTTP/1.1 404"), "{text}");
        assert!(!text.contains("router unavailable"), "{text}");
        rig.fake.clear_faults();
    }
    let log = p.log();
    assert!(log.contains("destination unreachable"), "{log}");
    assert!(!log.contains("router unavailable"), "{log}");
    // Streams work again, and the same session carried them all.
    assert!(rig.echo_ok(plain, None));

    // A b32 whose last character sets padding bits is no address: refused at once.
    let before = rig.fake.count("STREAM CONNECT");
    let stem = &rig.service[..51];
    let last = rig.service.as_bytes()[51];
    let bad_last = if last == b'a' { 'b' } else { 'r' };
    let (code, _) = connect(plain, &format!("{stem}{bad_last}.b32.i2p"));
    assert_eq!(code, 0x04);
    let (code, _) = connect(extended, &format!("{stem}{bad_last}.b32.i2p"));
    assert_eq!(code, 0xF6, "bad address");
    assert_eq!(rig.fake.count("STREAM CONNECT"), before, "no router work");
}

/// Java I2P's bridge: a dead peer is answered CANT_REACH_PEER "Connection timed out" after
/// the streaming library's connect timeout (60 s unless STREAM CONNECT says otherwise).
/// Before, eepsocks gave up first, at its own stream_timeout, with 0x06 ("TTL expired") for
/// a site that is down. Now the router gets a timeout inside ours, and its verdict arrives.
#[test]
fn java_a_dead_peer_is_unreachable_in_the_routers_words() {
    let rig = Rig::new();
    rig.fake.java(support::fake_sam::Java {
        login: None,
        connect_timeout: Duration::from_secs(60),
    });
    let [listen] = free_addrs::<1>();
    let p = rig.run(
        &format!("listen = \"{listen}\"\nstatus_listen = \"off\"\nstream_timeout = 4\n"),
        &[],
    );
    let dead = support::fake_sam::test_keys(0xdead).destination().b32();
    let (code, took) = connect(listen, &dead);
    assert_eq!(code, 0x04, "host unreachable, not 0x06, after {took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    let line = p.wait_log("stream failed", Duration::from_secs(2));
    assert!(
        line.contains("destination unreachable") && line.contains("Connection timed out"),
        "{line}"
    );
    assert!(
        rig.fake
            .commands()
            .iter()
            .any(|c| c.starts_with("STREAM CONNECT")
                && c.contains("i2p.streaming.connectTimeout=3000")),
        "{:?}",
        rig.fake.commands()
    );
}

/// Java I2P with `sam.auth=true`: without a login eepsocks says the bridge wants one (and
/// its clients get 0x01 at once); with `sam_user` and a 0600 `sam_password_file` it works,
/// and the password appears in no log, status document or ports file. A password file
/// other users can read is refused.
#[test]
fn java_a_bridge_that_wants_a_login_gets_it_and_nobody_sees_it() {
    let rig = Rig::new();
    const PW: &str = "hunter2-is-not-a-password";
    rig.fake.java(support::fake_sam::Java {
        login: Some(("eepsocks".into(), PW.into())),
        connect_timeout: Duration::from_secs(60),
    });
    let [listen, status] = free_addrs::<2>();
    let base = format!("listen = \"{listen}\"\nstatus_listen = \"{status}\"\n");

    // No login configured: the log says what to do; clients are not held.
    rig.write_config(&base);
    let p = rig.start(&[]);
    p.wait_log("wants a login (sam.auth=true)", Duration::from_secs(10));
    wait_port(listen, Duration::from_secs(5));
    let (code, took) = connect(listen, &rig.service);
    assert_eq!(code, 0x01);
    assert!(took < Duration::from_secs(3), "{took:?}");
    drop(p);

    // A password file others can read: refused at start, with the fix.
    let pw_file = rig.dir.path().join("sam.pw");
    std::fs::write(&pw_file, format!("{PW}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pw_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let conf = format!(
        "{base}sam_user = \"eepsocks\"\nsam_password_file = \"{}\"\n",
        pw_file.display()
    );
    rig.write_config(&conf);
    let mut p = rig.start(&[]);
    let status_code = p.wait_exit(Duration::from_secs(10));
    assert!(!status_code.success());
    assert!(p.log().contains("chmod 600"), "{}", p.log());

    // 0600: it works.
    std::fs::set_permissions(&pw_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let p = rig.run(&conf, &[]);
    assert!(rig.echo_ok(listen, None));
    let hello = rig
        .fake
        .commands()
        .into_iter()
        .rfind(|c| c.starts_with("HELLO"))
        .unwrap();
    assert!(hello.contains("USER=eepsocks"), "{hello}");
    let s = listener_status(status, "eepsocks");
    let ports = std::fs::read_to_string(rig.data().join("public/ports.json")).unwrap_or_default();
    for (what, text) in [
        ("log", p.log()),
        ("status", s.to_string()),
        ("ports file", ports),
    ] {
        assert!(!text.contains(PW), "the password in the {what}: {text}");
    }
}

/// Java I2P closes the socket on a command line over 8 KiB: a SESSION CREATE that long is
/// refused before it is sent, with the reason, and signature types whose keys alone make
/// it that long are refused when the config is read.
#[test]
fn java_command_lines_stay_under_8_kib() {
    let rig = Rig::new();
    rig.fake.java(support::fake_sam::Java {
        login: None,
        connect_timeout: Duration::from_secs(60),
    });
    let [listen] = free_addrs::<1>();
    // ML-DSA-65 keys: refused at once.
    rig.write_config(&format!(
        "listen = \"{listen}\"\nstatus_listen = \"off\"\nsignature_type = 13\n"
    ));
    let mut p = rig.start(&[]);
    assert!(!p.wait_exit(Duration::from_secs(10)).success());
    assert!(p.log().contains("8 KiB"), "{}", p.log());

    // 300 options of 30 bytes: the line would be ~10 KB; said, never sent.
    let mut conf = format!("listen = \"{listen}\"\nstatus_listen = \"off\"\n[options]\n");
    for i in 0..300 {
        conf.push_str(&format!("\"x.option.number{i:03}\" = \"value{i:03}\"\n"));
    }
    rig.write_config(&conf);
    let p = rig.start(&[]);
    p.wait_log("command line SAM bridges accept", Duration::from_secs(10));
    let cmds = rig.fake.commands();
    assert!(
        !cmds.iter().any(|c| c.starts_with("(closed")),
        "an over-long line reached the bridge: {cmds:?}"
    );
}
