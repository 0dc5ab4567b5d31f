//! End to end through real i2pd routers on an offline network (see tests/support/testnet.rs):
//! eepsocks runs against r2's SAM bridge, services are published on r1, and real clients
//! (curl, raw SOCKS4a/5 bytes) go through eepsocks into I2P.
//!
//! Needs root and i2pd (`.ci/run` installs it; without them the test says `skipped`). One
//! test function of named steps, because the network takes ~40 s to start and every step
//! shares it; the steps run in order (later ones count on earlier ones' traffic).

mod support;

use eepsocks::i2p::PrivateKeys;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::capture::{Capture, PROBE_NAME};
use support::client::{read_socks5_reply, socks4a_monero, socks5_connect, socks5_request};
use support::consts::{IO_TIMEOUT, SETTLE_TIMEOUT, ZERO_HOP_OPTIONS};
use support::launcher::Eepsocks;
use support::leaks::*;
use support::services::{Files, Recorder, HTTP_BODY};
use support::step;
use support::testnet::{sam_addr, Kind, ServiceSpec, Testnet};

const SOCKS: &str = "127.0.0.1:4447";

/// What the steps share: the network, eepsocks' directory, the running eepsocks.
struct Run {
    net: Testnet,
    dir: tempfile::TempDir,
    /// b32 of the echo and HTTP services on r1.
    echo: String,
    web: String,
    proxy: Eepsocks,
    /// The destination eepsocks printed, and the key file behind it.
    b32: String,
    keys: PrivateKeys,
    /// An IRC server and a web server that keep what they receive (the leak filters).
    irc: (String, std::sync::Arc<Recorder>),
    site: (String, std::sync::Arc<Recorder>),
    /// A bare git repository served as static files (git.i2p), and its commit.
    git: (std::sync::Arc<Files>, String, tempfile::TempDir),
    /// Every packet in the namespace from before eepsocks starts to the end of the run.
    capture: Option<Capture>,
}

impl Run {
    fn key_file(&self) -> PathBuf {
        self.dir.path().join("data/eepsocks.dat")
    }

    fn url(&self) -> String {
        format!("http://{}/", self.web)
    }
}

/// eepsocks on r2's SAM bridge with a persistent identity in `dir/data`; waits for ready.
fn start_eepsocks(net: &Testnet, dir: &Path) -> (Eepsocks, String) {
    let cfg = dir.join("eepsocks.toml");
    fs::write(&cfg, config_text("")).unwrap();
    let data = dir.join("data");
    let proxy = net.eepsocks([
        "run",
        "--listen",
        SOCKS,
        "--sam",
        &sam_addr(2),
        "--data-dir",
        data.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
    ]);
    let ready = proxy.wait_ready();
    eprintln!("eepsocks ready after {:.1} s", ready.after.as_secs_f32());
    let b32 = ready.only().b32.clone();
    (proxy, b32)
}

/// eepsocks' config file: `top` (top-level keys), then what every run has.
fn config_text(top: &str) -> String {
    format!("{top}handshake_timeout = 5\nstream_timeout = 40\n{ZERO_HOP_OPTIONS}")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn socks_into_i2p_through_i2pd_testnet() {
    if support::skip_without_testnet() {
        return;
    }
    let mut r = step("network and eepsocks up", setup);
    step("persistent identity", || persistent_identity(&r));
    step("first stream", || wait_stream(&r.net, &r.echo));
    step("curl in every remote-DNS form", || curl_forms(&r));
    step("curl refusals", || curl_refusals(&r));
    step("HTTP client on the SOCKS port", || http_on_socks_port(&r));
    step("git clone through the HTTP proxy", || git_clone(&r));
    step("Monero's SOCKS4a", || monero(&r));
    step("pipelined handshake and data", || pipelined(&r));
    step("half-close", || half_close(&r));
    step("refusals", || refusals(&r));
    step("leak filters", || leak_filters(&r));
    step("automap: DNS, virtual addresses, transparent port", || {
        automap(&r)
    });
    step("status endpoint", || status(&r));
    step("log", || log(&r));
    step("router fails and comes back", || router_failure(&mut r));
    step("restart keeps the identity", || restart(&mut r));
    step("corrupted key file", || corrupted_key_file(&r));
    step("leak audit", || leak_audit(&mut r));
}

fn setup() -> Run {
    let irc = Recorder::new(IRC_SERVER_GREETING, b"");
    let site = Recorder::new(b"", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let repos = tempfile::tempdir().unwrap();
    let commit = bare_repo(repos.path());
    let git = Files::new(repos.path().join("www"));
    let net = Testnet::start(
        2,
        &[
            ServiceSpec {
                name: "echo",
                port: 7001,
                kind: Kind::Echo,
            },
            ServiceSpec {
                name: "web",
                port: 7002,
                kind: Kind::Http,
            },
            ServiceSpec {
                name: "irc",
                port: 7003,
                kind: Kind::Recorder(irc.clone()),
            },
            ServiceSpec {
                name: "site",
                port: 7004,
                kind: Kind::Recorder(site.clone()),
            },
            ServiceSpec {
                name: "git",
                port: 7005,
                kind: Kind::Files(git.clone()),
            },
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let echo = net.service("echo").b32();
    let web = net.service("web").b32();
    support::capture::open_way_out(&net.ns);
    let capture = Capture::start(&net.ns, dir.path());
    let (proxy, b32) = start_eepsocks(&net, dir.path());
    let keys =
        PrivateKeys::from_bytes(fs::read(dir.path().join("data/eepsocks.dat")).unwrap()).unwrap();
    Run {
        dir,
        echo,
        web,
        proxy,
        b32,
        keys,
        irc: (net.service("irc").b32(), irc),
        site: (net.service("site").b32(), site),
        git: (git, commit, repos),
        capture: Some(capture),
        net,
    }
}

/// Persistent identity: key file, mode 0600, i2pd/Java layout, matching the printed b32.
fn persistent_identity(r: &Run) {
    let meta = fs::metadata(r.key_file()).expect("key file written");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(r.keys.destination().b32(), r.b32);
    assert_eq!(r.keys.destination().sig_type, 7);
}

/// Real clients: curl in every remote-DNS form.
fn curl_forms(r: &Run) {
    let net = &r.net;
    let url = r.url();
    let out = net.curl(&["-v", "--socks5-hostname", SOCKS, "http://web.i2p/"]);
    eprintln!("transcript:\n{}{}", text(&out.stderr), text(&out.stdout));
    for args in [
        vec!["--socks5-hostname", SOCKS, url.as_str()],
        vec!["--socks4a", SOCKS, url.as_str()],
        vec!["-x", "socks5h://127.0.0.1:4447", url.as_str()],
        vec![
            "-x",
            "socks5h://alice:swordfish@127.0.0.1:4447",
            url.as_str(),
        ],
        vec!["--socks5-hostname", SOCKS, "http://web.i2p/"],
        vec!["-x", "socks4a://127.0.0.1:4447", "http://WEB.I2P/"],
        // HTTP CONNECT on the same port, with and without a Basic login
        vec!["-p", "-x", "http://127.0.0.1:4447", url.as_str()],
        vec![
            "-p",
            "-x",
            "http://alice:swordfish@127.0.0.1:4447",
            "http://web.i2p/",
        ],
    ] {
        let out = net.curl(&args);
        assert!(
            out.status.success() && text(&out.stdout) == HTTP_BODY,
            "curl {args:?}: status {:?}, stdout {:?}, stderr {:?}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}

fn curl_refusals(r: &Run) {
    let net = &r.net;
    // --socks5 resolves locally: the name never reaches the proxy and curl fails.
    let probe = format!("http://{PROBE_NAME}/");
    let out = net.curl(&["--socks5", SOCKS, &probe]);
    assert!(!out.status.success(), "curl --socks5 must fail: {out:?}");
    assert!(out.stdout.is_empty());
    // An IP (what local resolution produces) is refused by the proxy: 0x02, curl error 97.
    let out = net.curl(&["--socks5", SOCKS, "http://10.1.2.3/"]);
    assert_eq!(
        out.status.code(),
        Some(97),
        "curl --socks5 to an IP: {out:?}"
    );
    let out = net.curl(&["--socks4", SOCKS, "http://10.1.2.3/"]);
    assert_eq!(
        out.status.code(),
        Some(97),
        "curl --socks4 to an IP: {out:?}"
    );
    // Clearnet names are refused: no outproxy.
    let out = net.curl(&["--socks5-hostname", SOCKS, "http://example.com/"]);
    assert_eq!(out.status.code(), Some(97), "clearnet via socks5h: {out:?}");
}

/// HTTP other than CONNECT on the SOCKS port: an explanation when addressed to the proxy's
/// loopback name, else a silent close (what a DNS-rebinding page would get).
fn http_on_socks_port(r: &Run) {
    // A forwarding proxy's client: curl sends `GET http://web.i2p/` and gets the answer.
    let out = r
        .net
        .curl(&["-x", "http://127.0.0.1:4447", "http://web.i2p/"]);
    assert!(
        out.status.success() && text(&out.stdout) == HTTP_BODY,
        "curl -x http:// without -p: {out:?}"
    );
    // The policy is CONNECT's: no clearnet, and https only through CONNECT.
    let out = r
        .net
        .curl(&["-i", "-x", "http://127.0.0.1:4447", "http://example.com/"]);
    assert!(text(&out.stdout).starts_with("HTTP/1.1 403"), "{out:?}");
    let out = r.net.curl(&["-i", "http://127.0.0.1:4447/"]);
    assert!(text(&out.stdout).starts_with("HTTP/1.0 501"), "{out:?}");
    assert!(
        text(&out.stdout).contains("This address is the proxy"),
        "{out:?}"
    );
}

/// A bare repository with one commit in `root/www/repo.git`, ready for git's dumb HTTP
/// protocol (`update-server-info`). Returns the commit id.
fn bare_repo(root: &Path) -> String {
    let git = |dir: &Path, args: &[&str]| {
        let out = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=eepsocks test",
                "-c",
                "user.email=test@eepsocks.i2p",
            ])
            .args(["-c", "init.defaultBranch=main"])
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .expect("git (apt-get install git)");
        assert!(out.status.success(), "git {args:?}: {out:?}");
        text(&out.stdout).trim().to_string()
    };
    let bare = root.join("www/repo.git");
    let work = root.join("work");
    fs::create_dir_all(&bare).unwrap();
    fs::create_dir_all(&work).unwrap();
    git(&bare, &["init", "--bare", "-q"]);
    git(&work, &["init", "-q"]);
    fs::write(
        work.join("README"),
        "served over I2P by a forwarding HTTP proxy\n",
    )
    .unwrap();
    git(&work, &["add", "README"]);
    git(&work, &["commit", "-q", "-m", "first"]);
    git(
        &work,
        &["push", "-q", bare.to_str().unwrap(), "HEAD:refs/heads/main"],
    );
    git(&bare, &["update-server-info"]);
    git(&work, &["rev-parse", "HEAD"])
}

/// git with `http.proxy` on eepsocks clones an http:// repository (git's dumb protocol,
/// one request per connection): every request reached the server in origin form, with
/// `Connection: close` and no Proxy-* header.
fn git_clone(r: &Run) {
    let (files, commit, _) = &r.git;
    let dest = tempfile::tempdir().unwrap();
    let clone = dest.path().join("repo");
    let t = Instant::now();
    let out = r
        .net
        .command("timeout")
        .args(["300", "git", "-c", "http.proxy=http://127.0.0.1:4447"])
        .args(["clone", "-q", "http://git.i2p/repo.git"])
        .arg(&clone)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .unwrap();
    assert!(out.status.success(), "git clone: {out:?}");
    let heads = files.heads.lock().unwrap().clone();
    eprintln!(
        "git clone took {:.1} s, {} requests",
        t.elapsed().as_secs_f32(),
        heads.len()
    );
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(&clone)
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout).trim(), commit);
    assert_eq!(
        fs::read_to_string(clone.join("README")).unwrap(),
        "served over I2P by a forwarding HTTP proxy\n"
    );
    assert!(!heads.is_empty());
    for head in heads {
        let head = text(&head);
        eprintln!("  {}", head.lines().next().unwrap_or_default());
        assert!(head.starts_with("GET /repo.git/"), "{head}");
        assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
        assert!(!head.to_ascii_lowercase().contains("proxy-"), "{head}");
        assert!(!head.contains("User-Agent: git/"), "{head}");
    }
}

/// Monero's form: SOCKS4a, DSTIP 0.0.0.1, empty user id; VN=0 CD=90, then data.
fn monero(r: &Run) {
    let mut s = socks(&r.net);
    let rep = socks4a_monero(&mut s, &r.echo, 18089).unwrap();
    assert_eq!(rep[..2], [0, 90], "monero-style SOCKS4a reply {rep:?}");
    s.write_all(b"monero\n").unwrap();
    let mut b = [0u8; 7];
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"monero\n");
}

/// Greeting, request and payload in one write; nothing may be lost.
fn pipelined(r: &Run) {
    let mut s = socks(&r.net);
    let mut all = vec![5, 1, 0];
    all.extend(socks5_request(1, &r.echo, 7));
    all.extend_from_slice(b"early bytes\n");
    s.write_all(&all).unwrap();
    let mut m = [0u8; 2];
    s.read_exact(&mut m).unwrap();
    assert_eq!(m, [5, 0]);
    assert_eq!(read_socks5_reply(&mut s).unwrap(), 0);
    let mut b = [0u8; 12];
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"early bytes\n");
}

/// Request/response style: everything echoed back, then our FIN reaches the service, its
/// FIN comes back as EOF. Nothing lost, nothing hangs.
fn half_close(r: &Run) {
    let net = &r.net;
    let mut s = socks(net);
    assert_eq!(socks5_connect(&mut s, &r.echo, 7, None).unwrap(), 0);
    let payload: Vec<u8> = (0..256 * 1024u32)
        .map(|i| (i * 7 + i / 251) as u8)
        .collect();
    let mut w = s.try_clone().unwrap();
    let p2 = payload.clone();
    let writer = std::thread::spawn(move || w.write_all(&p2).unwrap());
    let mut back = vec![0u8; payload.len()];
    s.read_exact(&mut back).unwrap();
    writer.join().unwrap();
    assert!(back == payload, "relay corrupted bytes");
    s.shutdown(std::net::Shutdown::Write).unwrap();
    // The FIN is kept from the SAM socket (i2pd would end the stream at it), so the echo
    // never closes: eepsocks closes after 30 s of its silence.
    let t = std::time::Instant::now();
    assert!(read_all(&mut s).is_empty(), "EOF after our half-close");
    eprintln!("EOF {:?} after our half-close", t.elapsed());
    // FIN while data is still in flight: i2pd's SAM bridge (like its own SOCKS proxy) ends the
    // whole I2P stream on the first FIN, so the tail is lost through i2pd's SOCKS. eepsocks
    // keeps the FIN from the SAM socket: the whole reply comes back, then EOF.
    for (name, via) in [
        ("i2pd socks", support::testnet::socks_addr(2)),
        ("eepsocks", SOCKS.to_string()),
    ] {
        let back = half_close_echo(net, &via, &r.echo, 256 * 1024);
        eprintln!(
            "FIN with data in flight via {name}: {back} of {} bytes back",
            256 * 1024
        );
        if name == "eepsocks" {
            assert_eq!(
                back,
                256 * 1024,
                "a half-closed client gets the whole reply"
            );
        }
    }
}

/// Refusals, each with its exact reply.
fn refusals(r: &Run) {
    let (net, echo) = (&r.net, &r.echo);
    assert_eq!(
        s5_reply_for(net, &[5, 1, 0, 1, 10, 0, 0, 1, 0, 80]),
        0x02,
        "IPv4 literal"
    );
    let mut v6 = vec![5, 1, 0, 4];
    v6.extend_from_slice(&[0x20, 1, 0xd, 0xb8]);
    v6.extend_from_slice(&[0; 12]);
    v6.extend_from_slice(&[1, 187]);
    assert_eq!(s5_reply_for(net, &v6), 0x02, "IPv6 literal");
    assert_eq!(
        s5_reply_for(net, &socks5_request(1, "example.com", 80)),
        0x02,
        "clearnet"
    );
    assert_eq!(
        s5_reply_for(net, &socks5_request(2, echo, 80)),
        0x07,
        "BIND"
    );
    // UDP ASSOCIATE is served (tests/e2e_udp.rs); with udp = false it is 0x07, as the
    // in-process front end shows (tests/hostile_clients.rs).
    assert_eq!(
        s5_reply_for(net, &socks5_request(1, "no-such-site.i2p", 80)),
        0x04,
        "unknown name"
    );
    assert_eq!(
        s5_reply_for(net, &socks5_request(1, "bad_name.i2p", 80)),
        0x04,
        "malformed"
    );
    let t = Instant::now();
    let unknown_b32 = format!("{}.b32.i2p", "a".repeat(52));
    let code = s5_reply_for(net, &socks5_request(1, &unknown_b32, 80));
    assert_eq!(code, 0x04, "unreachable b32 gave {code:#04x}");
    eprintln!(
        "unknown b32: reply {code:#04x} after {:.1} s",
        t.elapsed().as_secs_f32()
    );

    // plain SOCKS4 with an IP: 91
    let mut s = socks(net);
    s.write_all(&[4, 1, 0, 80, 10, 0, 0, 1, 0]).unwrap();
    assert_eq!(read_all(&mut s), vec![0, 91, 0, 0, 0, 0, 0, 0]);
    // unknown version: closed without a reply
    let mut s = socks(net);
    s.write_all(&[6, 1, 0]).unwrap();
    assert!(read_all(&mut s).is_empty());
    // no acceptable method: 0xFF
    let mut s = socks(net);
    s.write_all(&[5, 1, 0x80]).unwrap();
    assert_eq!(read_all(&mut s), vec![5, 0xff]);
    // bad username/password sub-negotiation version
    let mut s = socks(net);
    s.write_all(&[5, 1, 2, 9, 1, b'a', 1, b'b']).unwrap();
    assert_eq!(read_all(&mut s), vec![5, 2, 1, 1]);
    // stalled handshake is cut by the handshake timeout (5 s in this config; a separate
    // process, so real time)
    let mut s = socks(net);
    s.write_all(&[5, 1]).unwrap();
    let t = Instant::now();
    assert!(read_all(&mut s).is_empty());
    assert!(t.elapsed() >= Duration::from_secs(4), "closed too early");
}

/// The status endpoint: identity (b32 only), session, counters by reply code.
fn status(r: &Run) {
    let out = r.net.cli(["status", "--json"]);
    let status = text(&out.stdout);
    assert!(
        status.contains(&r.b32) && status.contains("\"session_up\":true"),
        "{status}{}",
        text(&out.stderr)
    );
    assert!(
        !status.contains("\"streams_opened\":0,") && !status.contains("\"not_allowed\":0"),
        "{status}"
    );
    assert!(
        !status.contains(&r.echo) && !status.contains(&r.web),
        "a target in the status: {status}"
    );
    let out = r.net.curl(&["http://127.0.0.1:4446/metrics"]);
    let metrics = text(&out.stdout);
    assert!(
        metrics.contains(
            // BIND (UDP ASSOCIATE is served now)
            "eepsocks_replies_total{listener=\"eepsocks\",reply=\"command_not_supported\"} 1"
        ),
        "{metrics}"
    );
    eprintln!("status: {status}");
}

/// One line per refusal, and no target at info level.
fn log(r: &Run) {
    let log = r.proxy.log();
    assert!(log.contains("IP address literal"), "{log}");
    assert!(log.contains("not an I2P name"), "{log}");
    assert!(log.contains("HTTP request on the SOCKS port"), "{log}");
    assert!(
        !log.contains(&r.echo) && !log.contains("example.com"),
        "a target leaked into the info log:\n{log}"
    );
    assert!(
        !log.contains(&r.keys.to_base64()[..40]),
        "private key in the log"
    );
    // Nor any other target, username or what the filters removed.
    for secret in [
        r.irc.0.as_str(),
        r.site.0.as_str(),
        &r.web,
        "web.i2p",
        "git.i2p",
        "alice",
        "swordfish",
        "laptop.home.lan",
        "HexChat",
        PROBE_NAME,
    ] {
        assert!(!log.contains(secret), "{secret:?} in the log:\n{log}");
    }
}

/// The router fails under us: open streams end, new requests get 0x01 at once instead of
/// hanging; once the router is back, eepsocks recreates its session with the same keys by
/// itself.
fn router_failure(r: &mut Run) {
    let mut open_stream = socks(&r.net);
    assert_eq!(
        socks5_connect(&mut open_stream, &r.echo, 7, None).unwrap(),
        0
    );
    r.net.kill_router(2);
    let t = Instant::now();
    let mut rest = Vec::new();
    let _ = open_stream.read_to_end(&mut rest);
    eprintln!(
        "open stream ended {:.2} s after the router died",
        t.elapsed().as_secs_f32()
    );
    assert!(t.elapsed() < Duration::from_secs(10), "open stream hung");
    // Give eepsocks a moment to see the SAM control connection close.
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    assert_eq!(
        s5_reply_for(&r.net, &socks5_request(1, &r.echo, 7)),
        0x01,
        "request while the router is down"
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "failure reply took {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    r.net.restart_router(2);
    wait_stream(&r.net, &r.echo);
    eprintln!(
        "streams work again {:.1} s after the router restarted",
        t.elapsed().as_secs_f32()
    );
    assert!(r.proxy.log().contains("SAM session lost"));
}

/// Leak filters through real routers: an IRC client's CTCP VERSION reply, DCC offer, host
/// name and QUIT message never reach the IRC server, whose CTCP request never reaches the
/// client; a browser's request arrives sanitized. With `filter = "none"` both pass untouched.
fn leak_filters(r: &Run) {
    let (got, back) = irc_session(r);
    assert_irc_filtered(&got);
    assert_irc_greeting_filtered(&back);
    assert_eq!(text(&http_request(r)), text(FIREFOX_SANITIZED));
    let status = text(&r.net.cli(["status", "--json"]).stdout);
    assert!(
        !status.contains("\"filtered_streams\":0,") && !status.contains("\"filter_changes\":0,"),
        "{status}"
    );

    reload_with(r, "filter = \"none\"\n");
    let (got, back) = irc_session(r);
    assert_eq!(text(&got), text(IRC_CLIENT_SESSION));
    assert_eq!(text(&back), text(IRC_SERVER_GREETING));
    assert_eq!(text(&http_request(r)), text(FIREFOX_REQUEST));
    reload_with(r, "");
}

/// Rewrite the config with `top` and reload; returns once the listener restarted with it.
fn reload_with(r: &Run, top: &str) {
    let reloads = |r: &Run| r.proxy.log().matches("reload: destination").count();
    let before = reloads(r);
    let cfg = r.dir.path().join("eepsocks.toml");
    fs::write(cfg.with_extension("new"), config_text(top)).unwrap();
    fs::rename(cfg.with_extension("new"), &cfg).unwrap();
    r.proxy.hup();
    r.net
        .wait_for("reload", Duration::from_secs(30), || reloads(r) > before);
}

/// A SOCKS5 stream to `host:port`, retried while the service's LeaseSet is new to the router.
fn stream_to(r: &Run, host: &str, port: u16) -> TcpStream {
    let t0 = Instant::now();
    loop {
        let mut s = socks(&r.net);
        match socks5_connect(&mut s, host, port, None) {
            Ok(0) => return s,
            other if t0.elapsed() > SETTLE_TIMEOUT => panic!("stream to {host}:{port}: {other:?}"),
            _ => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// What `recorder` keeps from the next caller, once it has it.
fn next_recorded(r: &Run, recorder: &Recorder, before: usize) -> Vec<u8> {
    r.net.wait_for("the service to record", IO_TIMEOUT, || {
        recorder.got.lock().unwrap().len() > before
    });
    recorder.last()
}

/// IRC_CLIENT_SESSION to the IRC service on port 6667: what the server got, and what the
/// client got (the greeting, and any word from the filter).
fn irc_session(r: &Run) -> (Vec<u8>, Vec<u8>) {
    let (host, rec) = &r.irc;
    let before = rec.got.lock().unwrap().len();
    let mut s = stream_to(r, host, 6667);
    // The greeting ends with a plain message, which passes every filter mode.
    let last = b":bob!b@b32 PRIVMSG me :hello\r\n";
    let mut back = Vec::new();
    let mut buf = [0u8; 4096];
    while !back.ends_with(last) {
        let n = s.read(&mut buf).expect("greeting");
        assert!(n > 0, "closed during the greeting: {:?}", text(&back));
        back.extend_from_slice(&buf[..n]);
    }
    s.write_all(IRC_CLIENT_SESSION).unwrap();
    // A word from the filter comes from eepsocks itself, at once; give it a moment.
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    while let Ok(n @ 1..) = s.read(&mut buf) {
        back.extend_from_slice(&buf[..n]);
    }
    s.shutdown(std::net::Shutdown::Write).unwrap();
    (next_recorded(r, rec, before), back)
}

/// FIREFOX_REQUEST to the web service on port 80: what the server got.
fn http_request(r: &Run) -> Vec<u8> {
    let (host, rec) = &r.site;
    let before = rec.got.lock().unwrap().len();
    let mut s = stream_to(r, host, 80);
    s.write_all(FIREFOX_REQUEST).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    next_recorded(r, rec, before)
}

/// The leak audit: over the whole run (eepsocks' start, every request, the router failing,
/// a restart), no packet left for any address but loopback and the routers', and no DNS
/// query was made but curl's own on purpose. A packet sent off the machine at the end
/// shows the capture would have seen one.
fn leak_audit(r: &mut Run) {
    r.capture.as_mut().expect("capture").audit();
}

/// Restart: same identity.
fn restart(r: &mut Run) {
    r.proxy.kill();
    let (proxy, b32) = start_eepsocks(&r.net, r.dir.path());
    r.proxy = proxy;
    assert_eq!(b32, r.b32, "identity changed across a restart");
    wait_stream(&r.net, &r.echo);
    let out = r.net.curl(&["--socks5-hostname", SOCKS, &r.url()]);
    assert_eq!(text(&out.stdout), HTTP_BODY, "{out:?}");
    r.proxy.kill();
}

/// A corrupted key file is a clear error, and is left as it was.
fn corrupted_key_file(r: &Run) {
    fs::write(r.key_file(), b"garbage").unwrap();
    let data = r.dir.path().join("data");
    let out = r.net.cli([
        "run",
        "--listen",
        SOCKS,
        "--sam",
        &sam_addr(2),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("refusing to replace"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(fs::read(r.key_file()).unwrap(), b"garbage");
}

// --- helpers

/// Connect through eepsocks with SOCKS5, retrying while the network is still settling.
fn wait_stream(net: &Testnet, host: &str) {
    let took = net.wait_echo(SOCKS, host);
    eprintln!(
        "first stream via eepsocks after {:.1} s",
        took.as_secs_f32()
    );
}

fn socks(net: &Testnet) -> TcpStream {
    let s = net.connect(SOCKS).expect("connect to eepsocks");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// A SOCKS5 request (no auth) and its reply code.
fn s5_reply_for(net: &Testnet, req: &[u8]) -> u8 {
    s5_reply_at(net, SOCKS, req)
}

/// `s5_reply_for` on the listener at `addr`.
fn s5_reply_at(net: &Testnet, addr: &str, req: &[u8]) -> u8 {
    let mut s = net.connect(addr).expect("connect to eepsocks");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(&[5, 1, 0]).unwrap();
    let mut m = [0u8; 2];
    s.read_exact(&mut m).unwrap();
    assert_eq!(m, [5, 0]);
    s.write_all(req).unwrap();
    let mut r = [0u8; 10];
    s.read_exact(&mut r).unwrap();
    assert_eq!(
        &r[2..],
        &[0, 1, 0, 0, 0, 0, 0, 0],
        "failure replies carry 0.0.0.0:0"
    );
    // and then the proxy closes
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    r[1]
}

/// Send `n` bytes, half-close, and count the bytes echoed back before EOF.
fn half_close_echo(net: &Testnet, via: &str, host: &str, n: u32) -> usize {
    let mut s = net.connect(via).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    assert_eq!(socks5_connect(&mut s, host, 7, None).unwrap(), 0);
    let payload: Vec<u8> = (0..n).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut w = s.try_clone().unwrap();
    let p2 = payload.clone();
    let writer = std::thread::spawn(move || {
        w.write_all(&p2).unwrap();
        w.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let back = read_all(&mut s);
    writer.join().unwrap();
    assert!(
        back[..] == payload[..back.len()],
        "half-close corrupted bytes"
    );
    back.len()
}

fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut v = Vec::new();
    s.read_to_end(&mut v).unwrap();
    v
}

/// Automap on a second eepsocks (same router): `dig` gets a virtual address for an I2P
/// name; SOCKS5 with that IPv4 address and plain SOCKS4 reach the echo service through
/// it; the other listener refuses it; clearnet names are REFUSED (the leak audit at the
/// end shows no DNS left the namespace); a connection redirected by nftables reaches the
/// echo service through the transparent port; extended errors give 0xF0 and 0xF6.
fn automap(r: &Run) {
    const MAIN: &str = "127.0.0.1:4457";
    const OTHER: &str = "127.0.0.1:4458";
    const DNS_PORT: &str = "5353";
    const TRANS: &str = "127.0.0.1:4449";
    let net = &r.net;
    let dir = r.dir.path().join("automap");
    fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("eepsocks.toml");
    fs::write(
        &cfg,
        format!(
            "{}
[[proxy]]
name = \"main\"
listen = \"{MAIN}\"
keys = \"transient\"
extended_errors = true

[[proxy]]
name = \"other\"
listen = \"{OTHER}\"
keys = \"transient\"

[automap]
dns_listen = \"127.0.0.1:{DNS_PORT}\"
trans_listen = \"{TRANS}\"
",
            config_text("status_listen = \"off\"\n")
        ),
    )
    .unwrap();
    let mut proxy = net.eepsocks([
        "run",
        "--sam",
        &sam_addr(2),
        "--data-dir",
        dir.join("data").to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
    ]);
    proxy.wait_ready();
    let dig = |args: &[&str]| {
        let out = net
            .command("dig")
            .args(["@127.0.0.1", "-p", DNS_PORT, "+tries=1", "+time=60"])
            .args(args)
            .output()
            .expect("run dig (apt-get install -y bind9-dnsutils)");
        text(&out.stdout)
    };

    // A name through the router's address book, and a b32.
    let answer = dig(&["+short", "echo.i2p"]);
    let ip: std::net::Ipv4Addr = answer
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("dig echo.i2p: {answer:?}\n{}", dig(&["echo.i2p"])));
    let virtual_net: eepsocks::naming::standins::Network = "127.192.0.0/10".parse().unwrap();
    assert!(virtual_net.contains(ip), "{ip} not in 127.192.0.0/10");
    assert_eq!(
        dig(&["+short", "echo.i2p"]).trim(),
        ip.to_string(),
        "stable"
    );
    let b32_ip = dig(&["+short", &r.echo]);
    assert!(
        b32_ip.trim().parse::<std::net::Ipv4Addr>().is_ok(),
        "{b32_ip:?}"
    );
    // PTR names no virtual address (docs/automap.md, "PTR").
    let full = dig(&["-x", &ip.to_string()]);
    assert!(full.contains("status: NXDOMAIN"), "{full}");
    // AAAA: the GarliCat address (fd60:db4d:ddb5:: + the first 80 bits of the hash).
    let garlicat = dig(&["+short", "AAAA", "echo.i2p"]);
    assert_eq!(
        garlicat.trim(),
        eepsocks::naming::garlicat::address_of_b32(&r.echo)
            .unwrap()
            .to_string(),
        "AAAA echo.i2p"
    );
    let full = dig(&["example.com"]);
    assert!(full.contains("status: REFUSED"), "{full}");
    let full = dig(&["no-such-site.i2p"]);
    assert!(full.contains("status: NXDOMAIN"), "{full}");
    let full = dig(&["+tcp", "echo.i2p"]);
    assert!(full.contains(&ip.to_string()), "over TCP: {full}");

    // The virtual address through SOCKS5 (ATYP 1) and plain SOCKS4, on the automap listener.
    let o = ip.octets();
    let mut s = net.connect(MAIN).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(&[5, 1, 0]).unwrap();
    let mut m = [0u8; 2];
    s.read_exact(&mut m).unwrap();
    s.write_all(&[5, 1, 0, 1, o[0], o[1], o[2], o[3], 0, 7])
        .unwrap();
    assert_eq!(read_socks5_reply(&mut s).unwrap(), 0, "SOCKS5 to {ip}");
    echo_line(&mut s, b"via socks5 atyp 1\n");
    let mut s = net.connect(MAIN).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(&[4, 1, 0, 7, o[0], o[1], o[2], o[3], 0])
        .unwrap();
    let mut rep = [0u8; 8];
    s.read_exact(&mut rep).unwrap();
    assert_eq!(rep[1], 90, "SOCKS4 to {ip}");
    echo_line(&mut s, b"via socks4\n");
    // Another listener (another identity) never learns or uses the mapping.
    assert_eq!(
        s5_reply_at(net, OTHER, &[5, 1, 0, 1, o[0], o[1], o[2], o[3], 0, 7]),
        0x02,
        "the virtual address on another listener"
    );

    // The transparent port: a plain TCP connection to the virtual address, redirected by
    // one nftables rule inside the namespace.
    let nft = |rule: &str| {
        let out = net
            .command("nft")
            .arg(rule)
            .output()
            .expect("run nft (apt-get install -y nftables)");
        assert!(out.status.success(), "nft {rule}: {}", text(&out.stderr));
    };
    nft("add table ip automap");
    nft("add chain ip automap out { type nat hook output priority -100 ; }");
    nft("add rule ip automap out ip daddr 127.192.0.0/10 tcp dport 1-65535 redirect to :4449");
    let mut s = net.connect(&format!("{ip}:7")).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    echo_line(&mut s, b"via the transparent port\n");
    // Not redirected (straight to the port): closed at once.
    let mut s = net.connect(TRANS).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    assert!(read_all(&mut s).is_empty());
    nft("delete table ip automap");

    // Tor's extended codes on the listener that asks for them.
    let unknown = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.b32.i2p";
    assert_eq!(
        s5_reply_at(net, MAIN, &socks5_request(1, unknown, 80)),
        0xF0,
        "LeaseSet not found"
    );
    assert_eq!(
        s5_reply_at(net, MAIN, &socks5_request(1, "abc.b32.i2p", 80)),
        0xF6,
        "malformed b32"
    );
    assert_eq!(
        s5_reply_at(net, OTHER, &socks5_request(1, "abc.b32.i2p", 80)),
        0x04,
        "RFC 1928 codes elsewhere"
    );

    let ports = eepsocks::daemon::ports::Ports::read(&dir.join("data")).unwrap();
    let a = ports.automap.expect("automap in the ports file");
    assert_eq!(a.listener, "main");
    assert_eq!(a.dns.unwrap().port(), 5353);
    proxy.term();
}

/// One line through an echo stream.
fn echo_line(s: &mut TcpStream, line: &[u8]) {
    s.write_all(line).unwrap();
    let mut back = vec![0u8; line.len()];
    s.read_exact(&mut back).unwrap();
    assert_eq!(back, line);
}
