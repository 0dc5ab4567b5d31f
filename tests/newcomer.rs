//! What a new user meets around the proxy: CLI errors that say what was tried and what to
//! do, logs without colour codes in a file, refusals that say what kind of target it was.

mod support;

use std::net::TcpStream;
use std::time::Duration;
use support::client::socks5_connect;
use support::launcher::command;
use support::rig::{free_addrs, Rig};

/// A CLI error is one line: what failed, the address tried, the next step; never a
/// backtrace (RUST_BACKTRACE=1 as many Rust users have it) nor a repeated cause.
#[test]
fn cli_error_is_one_actionable_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = command(
        [
            "--data-dir",
            data.to_str().unwrap(),
            "--sam",
            "127.0.0.1:1",
            "resolve",
            "nosuch.i2p",
        ],
        None,
    )
    .env("RUST_BACKTRACE", "1")
    .env("RUST_LIB_BACKTRACE", "1")
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    for what in ["127.0.0.1:1", "--sam", "eepsocks demo", "refused"] {
        assert!(err.contains(what), "no {what:?} in {err}");
    }
    assert!(!err.contains("Caused by"), "{err}");
    assert!(!err.contains("backtrace"), "{err}");
    // The OS error once, not once per cause.
    assert_eq!(err.matches("os error").count(), 1, "{err}");
}

/// Logs to a pipe or file carry no ANSI colour codes; a refusal says what kind of target
/// it was and how to see it, without naming it at info.
#[test]
fn logs_are_plain_and_refusals_say_what_was_refused() {
    let rig = Rig::new();
    let [listen] = free_addrs::<1>();
    let mut p = rig.run(
        &format!("listen = \"{listen}\"\nstatus_listen = \"off\"\n"),
        &[],
    );
    for (host, kind) in [
        ("secret-clearnet.example.com", "clearnet name"),
        ("10.1.2.3", "IP literal"),
    ] {
        let mut s = TcpStream::connect(listen).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(socks5_connect(&mut s, host, 80, None).unwrap(), 0x02);
        let line = p.wait_log(kind, Duration::from_secs(5));
        assert!(line.contains("EEPSOCKS_LOG=debug"), "{line}");
        assert!(!line.contains(host), "{line}");
    }
    assert!(p.term().success());
    let log = p.log();
    assert!(!log.contains('\x1b'), "colour codes in a piped log:\n{log}");
    assert!(!log.contains("secret-clearnet"), "{log}");
}

/// The CLI run as a user with no instance at the default data directory: HOME is a fresh
/// directory, and announcements go to `runtime`.
fn bare_cli(args: &[&str], home: &std::path::Path, runtime: &std::path::Path) -> (bool, String) {
    let out = command(args, None)
        .env("HOME", home)
        .env_remove("XDG_DATA_HOME")
        .env("EEPSOCKS_RUNTIME_DIR", runtime)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A `run` with a data directory of its own announces itself: a bare `eepsocks status`,
/// `b32` and `doctor` find it; `status` prints a table, `--json` the document; at exit the
/// announcement goes, and a bare `b32` says how to start one.
#[test]
fn bare_commands_find_the_running_instance() {
    let rig = Rig::new();
    let home = rig.dir.path().join("home");
    let runtime = rig.dir.path().join("runtime");
    std::fs::create_dir_all(&home).unwrap();
    let [listen, status] = free_addrs::<2>();
    rig.write_config(&format!(
        "listen = \"{listen}\"\nstatus_listen = \"{status}\"\n"
    ));
    let mut cmd = rig.command(&[]);
    cmd.env("EEPSOCKS_RUNTIME_DIR", &runtime);
    let mut p = support::launcher::Eepsocks::spawn_command(cmd);
    let ready = p.wait_ready_within(support::rig::READY);
    let me = ready.only().b32.clone();

    let (ok, text) = bare_cli(&["status"], &home, &runtime);
    assert!(ok, "{text}");
    for want in [
        format!("listener eepsocks on {listen}"),
        format!("identity  {me}"),
        "session   up".to_string(),
        "0 open".to_string(),
        "bytes".to_string(),
    ] {
        assert!(text.contains(&want), "no {want:?} in:\n{text}");
    }
    let (ok, text) = bare_cli(&["status", "--json"], &home, &runtime);
    assert!(ok, "{text}");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("status --json is JSON");
    assert_eq!(doc["listeners"][0]["session"], "up", "{doc}");
    let (ok, text) = bare_cli(&["b32"], &home, &runtime);
    assert!(ok && text.trim() == me, "{text}");
    let (ok, text) = bare_cli(&["doctor"], &home, &runtime);
    assert!(ok, "{text}");

    assert!(p.term().success());
    let left: Vec<_> = std::fs::read_dir(&runtime).unwrap().collect();
    assert!(left.is_empty(), "announcement left after exit: {left:?}");
    // (`b32`: `status` would also try 127.0.0.1:4446, where another test may listen.)
    let (ok, text) = bare_cli(&["b32"], &home, &runtime);
    assert!(!ok);
    assert!(
        text.contains("not running") && text.contains("eepsocks demo"),
        "{text}"
    );
}

/// Options `demo` cannot apply are refused, each by name, never ignored.
#[test]
#[cfg(feature = "embedded")]
fn demo_refuses_what_it_cannot_apply() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "sam = \"127.0.0.1:7656\"\ndata_dir = \"/tmp/x\"\n").unwrap();
    let c = cfg.to_str().unwrap();
    for (args, want) in [
        (
            vec!["demo", "--sam", "127.0.0.1:7656"],
            "--sam cannot apply",
        ),
        (
            vec!["demo", "--data-dir", "/tmp/x"],
            "--data-dir cannot apply",
        ),
        (vec!["demo", "--config", c], "sam, data_dir in"),
    ] {
        let out = command(&args, None).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // Each default once in the help.
    let out = command(["demo", "--help"], None).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        help.matches("[default: 127.0.0.1:4447").count(),
        1,
        "{help}"
    );
}

/// `demo --config` applies the file: its listener, status port, automap DNS port and
/// extended errors; a bare `eepsocks status` and `resolve demo.i2p` find the demo.
#[test]
#[cfg(feature = "embedded")]
fn demo_applies_the_config_and_bare_commands_find_it() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let runtime = dir.path().join("runtime");
    std::fs::create_dir_all(&home).unwrap();
    // Port 0: the kernel picks when binding, and the demo names what it got (a port
    // picked beforehand could be taken by one of the demo's routers first).
    let cfg = dir.path().join("demo.toml");
    std::fs::write(
        &cfg,
        "listen = \"127.0.0.1:0\"\nstatus_listen = \"127.0.0.1:0\"\nextended_errors = true\n\
         [automap]\ndns_listen = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let mut cmd = command(
        [
            "demo",
            "--config",
            cfg.to_str().unwrap(),
            "--dir",
            dir.path().join("demo").to_str().unwrap(),
        ],
        None,
    );
    cmd.env("HOME", &home)
        .env_remove("XDG_DATA_HOME")
        .env("EEPSOCKS_RUNTIME_DIR", &runtime)
        .env("EEPSOCKS_LOG", "info,emissary=warn");
    let mut p = support::launcher::Eepsocks::spawn_command(cmd);
    let ready = p.wait_ready_within(Duration::from_secs(120));
    let listen: std::net::SocketAddr = ready.only().addr.parse().unwrap();
    assert_ne!(listen.port(), 0, "{:?}", ready.stdout);
    assert_eq!(ready.addrs, [listen.to_string()], "{:?}", ready.stdout);
    // "status on http://127.0.0.1:PORT/status and /metrics"
    let status_line = p.wait_log("status on http://", Duration::from_secs(5));
    assert!(!status_line.contains(":0/"), "{status_line}");
    // "automap for listener …: …, DNS on 127.0.0.1:PORT, transparent port on off"
    let automap = p.wait_log("automap for listener", Duration::from_secs(5));
    let dns: std::net::SocketAddr = automap
        .split("DNS on ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no DNS address in {automap:?}"));
    assert_ne!(dns.port(), 0, "{automap}");
    // The DNS port answers a query for demo.i2p (automap) with an A record.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["demo", "i2p"] {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    sock.send_to(&q, dns).unwrap();
    let mut buf = [0u8; 512];
    let n = sock
        .recv(&mut buf)
        .expect("an answer from the demo's DNS port");
    assert!(n > 12 && buf[..2] == [0x12, 0x34], "{:?}", &buf[..n]);
    assert_eq!(
        u16::from_be_bytes([buf[6], buf[7]]),
        1,
        "one answer: {:?}",
        &buf[..n]
    );
    // Extended errors: a malformed b32 is 0xF6 (Tor's "bad address"), not 0x04.
    let mut s = TcpStream::connect(listen).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(
        socks5_connect(&mut s, "zzzz.b32.i2p", 80, None).unwrap(),
        0xF6
    );

    let (ok, text) = bare_cli(&["status"], &home, &runtime);
    assert!(ok, "{text}");
    assert!(text.contains(&format!("on {listen}")), "{text}");
    let (ok, text) = bare_cli(&["resolve", "demo.i2p"], &home, &runtime);
    assert!(ok, "{text}");
    assert_eq!(
        text.lines().next(),
        Some(ready.field("demo.i2p").as_str()),
        "{text}"
    );
    assert!(p.term().success());
}

/// `--router auto` with no SAM bridge but a router's console answering (a plain TCP
/// listener stands in for it, on a free port): eepsocks says how to turn that router's SAM
/// bridge on and exits non-zero, instead of starting a second router beside it.
#[test]
fn auto_does_not_start_a_second_router_beside_a_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let console = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let at = console.local_addr().unwrap();
    let [dead] = free_addrs::<1>();
    for (label, want) in [
        ("i2pd-console", "[sam] section of i2pd.conf"),
        ("java-i2cp", "SAM application bridge"),
    ] {
        let data = dir.path().join(label);
        let t0 = std::time::Instant::now();
        let out = command(
            [
                "--data-dir",
                data.to_str().unwrap(),
                "--sam",
                &dead.to_string(),
                "run",
                "--router",
                "auto",
                "--listen",
                "127.0.0.1:0",
            ],
            None,
        )
        .env("EEPSOCKS_ROUTER_PROBES", format!("{label}={at}"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
        // Bounded: a build that starts the embedded router instead would serve forever.
        let mut child = out;
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break Some(st);
            }
            if t0.elapsed() > Duration::from_secs(15) {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert!(status.is_some(), "still running after 15 s:\n{err}");
        assert!(!status.unwrap().success(), "{err}");
        assert!(err.contains(want), "{err}");
        assert!(err.contains(&at.to_string()), "{err}");
        assert!(err.contains(&dead.to_string()), "{err}");
        assert!(!err.contains("using the embedded router"), "{err}");
        assert!(
            !data.join("router").exists(),
            "an embedded router was started"
        );
    }
}

/// Headless Chromium (Debian's `chromium`), pointed at the HTTP proxy, opens `url`: the
/// DOM it renders, or None with a `skipped:` line when chromium is not installed.
fn chromium_dom(proxy: std::net::SocketAddr, url: &str) -> Option<String> {
    let bin = ["chromium", "chromium-browser"].into_iter().find(|b| {
        std::process::Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(bin) = bin else {
        println!("skipped: chromium is not installed (apt-get install chromium)");
        return None;
    };
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("timeout")
        .arg("90")
        .arg(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--proxy-server=http://{proxy}"))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "chromium {url}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Some(dom)
}

/// Through the HTTP port, a browser sees an error page for each failure: the host, the
/// reason in words and what to do, rendered by Chromium as a user sees it.
#[test]
fn browser_gets_an_error_page_that_says_what_to_do() {
    let rig = Rig::new();
    let [listen] = free_addrs::<1>();
    let mut p = rig.run(
        &format!("listen = \"{listen}\"\nstatus_listen = \"off\"\n"),
        &[],
    );
    for (url, host, headline, fix) in [
        (
            "http://nosuch.i2p/",
            "nosuch.i2p",
            "I2P site not found",
            "eepsocks addressbook add NAME DEST",
        ),
        (
            "http://example.com/",
            "example.com",
            "Not an I2P site",
            "turn on remote DNS",
        ),
        (
            "http://abcd.b32.i2p/",
            "abcd.b32.i2p",
            "I2P site not found",
            "Check the b32",
        ),
    ] {
        let Some(dom) = chromium_dom(listen, url) else {
            break;
        };
        println!("{url}: {dom}");
        assert!(
            dom.contains(&format!("<h1>{headline}</h1>")),
            "{url}: {dom}"
        );
        assert!(
            dom.contains(&format!("<code>{host}</code>")),
            "{url}: {dom}"
        );
        assert!(dom.contains(fix), "{url}: {dom}");
        assert!(!dom.contains("<script"), "{url}: {dom}");
    }
    assert!(p.term().success());
}
