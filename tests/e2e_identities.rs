//! Identities and naming end to end, on the offline i2pd network: a service on r1 answers
//! every caller with the caller's own b32, so the test sees which identity eepsocks used.
//! Separate listeners have separate identities; `isolate = "username"` gives each SOCKS
//! username its own (the same one again for the same name, and after a restart when
//! persistent); names in eepsocks' own address book resolve without the router's.

mod support;

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::client::socks5_connect;
use support::services::{spawn_whoami, HostsFile, HTTP_BODY};
use support::testnet::{sam_addr, Kind, ServiceSpec, Testnet};

const CONFIG: &str = r#"
subscription_delay = 1
subscription_interval = 10
handshake_timeout = 5
stream_timeout = 50
[options]
"inbound.length" = 0
"outbound.length" = 0
"inbound.quantity" = 2
"outbound.quantity" = 2

[[proxy]]
name = "main"
listen = "127.0.0.1:4447"

[[proxy]]
name = "second"
listen = "127.0.0.1:4448"

[[proxy]]
name = "apps"
listen = "127.0.0.1:4449"
isolate = "username"
persistent_users = true
"#;

/// Kills eepsocks when dropped, also when an assertion fails.
struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start eepsocks; returns it and the destinations it printed, by listener name.
fn start(net: &Testnet, dir: &Path) -> (Proxy, HashMap<String, String>) {
    let mut child = Proxy(
        net.command(env!("CARGO_BIN_EXE_eepsocks"))
            .arg("--config")
            .arg(dir.join("eepsocks.toml"))
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(["--sam", &sam_addr(2), "run"])
            .env("EEPSOCKS_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(dir.join("eepsocks.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let out = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let mut dests = HashMap::new();
    loop {
        let l = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| {
                panic!(
                    "eepsocks not ready; log:\n{}",
                    fs::read_to_string(dir.join("eepsocks.log")).unwrap_or_default()
                )
            });
        if l.starts_with("ready") {
            return (child, dests);
        }
        // "destination <b32|per-username> (<name> on <addr>)"
        let w: Vec<&str> = l.split_whitespace().collect();
        if w.first() == Some(&"destination") {
            dests.insert(w[2].trim_start_matches('(').to_string(), w[1].to_string());
        }
    }
}

/// Ask the whoami service, through `proxy`, who we are. Retries while the network settles.
fn whoami(net: &Testnet, proxy: &str, user: Option<(&str, &str)>, service: &str) -> String {
    let t0 = Instant::now();
    loop {
        let r = (|| -> std::io::Result<String> {
            let mut s = net.connect(proxy)?;
            s.set_read_timeout(Some(Duration::from_secs(90)))?;
            let rep = socks5_connect(&mut s, service, 80, user)?;
            if rep != 0 {
                return Err(std::io::Error::other(format!("reply {rep:#04x}")));
            }
            let mut v = String::new();
            s.read_to_string(&mut v)?;
            Ok(v.trim().to_string())
        })();
        match r {
            Ok(v) if !v.is_empty() => return v,
            other if t0.elapsed() > Duration::from_secs(180) => {
                panic!("whoami via {proxy} {user:?}: {other:?}")
            }
            _ => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

fn curl(net: &Testnet, url: &str) -> std::process::Output {
    net.command("curl")
        .args([
            "-sS",
            "--max-time",
            "60",
            "--socks5-hostname",
            "127.0.0.1:4447",
            url,
        ])
        .output()
        .unwrap()
}

fn eepsocks_cli(net: &Testnet, dir: &Path, args: &[&str]) -> std::process::Output {
    net.command(env!("CARGO_BIN_EXE_eepsocks"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--sam", &sam_addr(2)])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn identities_and_address_book() {
    let hosts_file = Arc::new(HostsFile::default());
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
                name: "subs",
                port: 7003,
                kind: Kind::Hosts(hosts_file.clone()),
            },
        ],
    );
    // The subscription: a name only it knows, one that conflicts with the user's book (the
    // user's must win), and a bad line.
    *hosts_file.body.lock().unwrap() = format!(
        "subname.i2p={}\nmysite.i2p={}\nthis is not a hosts line\n",
        net.service("web").keys.destination().to_base64(),
        net.service("echo").keys.destination().to_base64(),
    );
    let who = spawn_whoami(&net, sam_addr(1));
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("eepsocks.toml"),
        format!(
            "subscriptions = [\"http://{}/hosts.txt\"]\n{CONFIG}",
            net.service("subs").b32()
        ),
    )
    .unwrap();
    let (child, dests) = start(&net, dir.path());
    let main_b32 = dests["main"].clone();
    let second_b32 = dests["second"].clone();
    assert_eq!(dests["apps"], "per-username");
    assert_ne!(
        main_b32, second_b32,
        "listeners must not share an identity by default"
    );

    // Each listener is seen as the identity it printed.
    assert_eq!(whoami(&net, "127.0.0.1:4447", None, &who), main_b32);
    assert_eq!(whoami(&net, "127.0.0.1:4448", None, &who), second_b32);

    // Per-username isolation: alice and bob (asked at the same time) differ from each other
    // and from the listeners; alice again is alice.
    let (alice, bob) = std::thread::scope(|s| {
        let bob = s.spawn(|| whoami(&net, "127.0.0.1:4449", Some(("bob", "x")), &who));
        let alice = whoami(&net, "127.0.0.1:4449", Some(("alice", "swordfish")), &who);
        (alice, bob.join().unwrap())
    });
    eprintln!("alice = {alice}\nbob   = {bob}");
    assert_ne!(alice, bob);
    assert!(alice != main_b32 && alice != second_b32 && bob != main_b32);
    assert_eq!(
        whoami(&net, "127.0.0.1:4449", Some(("alice", "other")), &who),
        alice
    );
    // Per-user key files are named by a hash, never the username.
    let users: Vec<String> = fs::read_dir(dir.path().join("data/users/apps"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(users.len(), 2, "{users:?}");
    assert!(users
        .iter()
        .all(|u| u.len() == 64 + 4 && !u.contains("alice") && !u.contains("bob")));

    // The subscription is fetched through eepsocks' own router connection; a name from it
    // works in curl; the next refresh is a conditional GET answered 304.
    let t0 = Instant::now();
    loop {
        let out = curl(&net, "http://subname.i2p/");
        if String::from_utf8_lossy(&out.stdout) == HTTP_BODY {
            eprintln!(
                "subscription name works after {:.1} s",
                t0.elapsed().as_secs_f32()
            );
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "subscription never fetched: {out:?}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let saved = fs::read_to_string(dir.path().join("data/subscriptions.txt")).unwrap();
    assert!(saved.contains("subname.i2p=") && !saved.contains("not a hosts line"));
    while hosts_file.not_modified.load(Ordering::SeqCst) == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(240),
            "no conditional refresh"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    assert_eq!(
        hosts_file.full.load(Ordering::SeqCst),
        1,
        "refresh refetched the whole file"
    );

    // The address book: a name only eepsocks knows, added with the CLI.
    let web = net.service("web");
    let out = eepsocks_cli(
        &net,
        dir.path(),
        &[
            "addressbook",
            "add",
            "mysite.i2p",
            &web.keys.destination().to_base64(),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let out = eepsocks_cli(&net, dir.path(), &["resolve", "MySite.i2p"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().next(),
        Some(web.b32().as_str())
    );
    // Bad lines in an imported hosts.txt are reported by line, good ones imported.
    let hosts = dir.path().join("hosts.txt");
    fs::write(
        &hosts,
        format!(
            "other.i2p={}\nnot a line\nbad_name.i2p={}\nmysite.i2p={}\n",
            web.keys.destination().to_base64(),
            web.keys.destination().to_base64(),
            net.service("echo").keys.destination().to_base64()
        ),
    )
    .unwrap();
    let out = eepsocks_cli(
        &net,
        dir.path(),
        &["addressbook", "import", hosts.to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2") && err.contains("line 3"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 names added, 1 already present"));
    // i2pd's addresses.csv (name,b32 only): the router finds the destination by its hash.
    let csv = dir.path().join("addresses.csv");
    let web_hash = web.b32().trim_end_matches(".b32.i2p").to_string();
    fs::write(&csv, format!("csvname.i2p,{web_hash}\n")).unwrap();
    let out = eepsocks_cli(
        &net,
        dir.path(),
        &["addressbook", "import", csv.to_str().unwrap()],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 names added"),
        "{out:?}"
    );
    // Key files move in and out in the i2pd / Java layout, b32 unchanged.
    let exported = dir.path().join("main-export.dat");
    let out = eepsocks_cli(
        &net,
        dir.path(),
        &[
            "keys",
            "export",
            exported.to_str().unwrap(),
            "--name",
            "main",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let out = eepsocks_cli(
        &net,
        dir.path(),
        &["keys", "show", exported.to_str().unwrap()],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with(&main_b32),
        "{out:?}"
    );
    let out = eepsocks_cli(
        &net,
        dir.path(),
        &[
            "keys",
            "import",
            exported.to_str().unwrap(),
            "--name",
            "main",
        ],
    );
    assert!(
        !out.status.success(),
        "import must never overwrite a key file"
    );
    let out = eepsocks_cli(&net, dir.path(), &["resolve", "nosuch.i2p"]);
    assert!(!out.status.success());
    let out = eepsocks_cli(&net, dir.path(), &["resolve", &("a".repeat(64) + ".i2p")]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("longer than 63"),
        "{out:?}"
    );

    // Restart: the book is read at start, listener and per-user identities come back.
    drop(child);
    let (child, dests2) = start(&net, dir.path());
    assert_eq!(dests2["main"], main_b32);
    assert_eq!(dests2["second"], second_b32);
    assert_eq!(
        whoami(&net, "127.0.0.1:4449", Some(("alice", "")), &who),
        alice
    );
    let out = net
        .command("curl")
        .args([
            "-sS",
            "--max-time",
            "60",
            "--socks5-hostname",
            "127.0.0.1:4447",
        ])
        .arg("http://mysite.i2p/")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), HTTP_BODY, "{out:?}");
    // Tor's RESOLVE: a stand-in address for a known name, 0x04 for an unknown one, and a
    // CONNECT to the stand-in reaches the name.
    let resolve = |name: &str| -> [u8; 10] {
        let mut s = net.connect("127.0.0.1:4447").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s.write_all(&[5, 1, 0]).unwrap();
        let mut m = [0u8; 2];
        s.read_exact(&mut m).unwrap();
        s.write_all(&support::client::socks5_request(0xF0, name, 0))
            .unwrap();
        let mut r = [0u8; 10];
        s.read_exact(&mut r).unwrap();
        r
    };
    let r = resolve("mysite.i2p");
    assert_eq!((r[1], r[4]), (0, 255), "{r:?}");
    assert_eq!(resolve("web.i2p")[1], 0, "a name only the router knows");
    assert_eq!(resolve("nosuch.i2p")[1], 0x04);
    let quad = format!("{}.{}.{}.{}", r[4], r[5], r[6], r[7]);
    let out = net
        .command("curl")
        .args(["-sS", "--max-time", "60", "--socks5", "127.0.0.1:4447"])
        .arg(format!("http://{quad}/"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), HTTP_BODY, "{out:?}");

    // SIGHUP reloads the address book; an open stream is not disturbed.
    let echo_b32 = net.service("echo").b32();
    let mut open = net.connect("127.0.0.1:4447").unwrap();
    open.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    assert_eq!(socks5_connect(&mut open, &echo_b32, 7, None).unwrap(), 0);
    let log_path = dir.path().join("eepsocks.log");
    let ping = |s: &mut std::net::TcpStream, b: &[u8]| {
        let mut got = vec![0u8; b.len()];
        let r = s.write_all(b).and_then(|_| s.read_exact(&mut got));
        assert!(
            r.is_ok() && got == b,
            "open stream broken at {:?}: {r:?}\n{}",
            String::from_utf8_lossy(b),
            fs::read_to_string(&log_path).unwrap_or_default()
        );
    };
    ping(&mut open, b"before");
    let out = eepsocks_cli(
        &net,
        dir.path(),
        &[
            "addressbook",
            "add",
            "hupname.i2p",
            &web.keys.destination().to_base64(),
        ],
    );
    assert!(out.status.success());
    let pid = child.0.id() as i32;
    unsafe { libc::kill(pid, libc::SIGHUP) };
    std::thread::sleep(Duration::from_millis(500));
    let out = curl(&net, "http://hupname.i2p/");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        HTTP_BODY,
        "after SIGHUP: {out:?}"
    );
    ping(&mut open, b"after HUP");
    // SIGHUP also re-reads the config: "second" moves to another port (same key file, so the
    // same identity, no new session); the open stream on "main" is untouched. (Adding a
    // listener works too, but i2pd 2.45.1 sometimes ends open streams while it creates the
    // new session, so that is not asserted here; see the closing note of this change.)
    let config = fs::read_to_string(dir.path().join("eepsocks.toml")).unwrap();
    let config = config.replace("listen = \"127.0.0.1:4448\"", "listen = \"127.0.0.1:4450\"");
    fs::write(dir.path().join("eepsocks.toml"), config).unwrap();
    unsafe { libc::kill(pid, libc::SIGHUP) };
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        net.connect("127.0.0.1:4448").is_err(),
        "old port still open after reload"
    );
    let t = Instant::now();
    assert_eq!(whoami(&net, "127.0.0.1:4450", None, &who), second_b32);
    eprintln!(
        "moved listener served {:.2} s after SIGHUP",
        t.elapsed().as_secs_f32()
    );
    ping(&mut open, b"after config reload");
    // SIGTERM: no new clients, the open stream goes on, exit once it closes.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        net.connect("127.0.0.1:4447").is_err(),
        "still accepting after SIGTERM"
    );
    ping(&mut open, b"draining");
    for l in fs::read_to_string(dir.path().join("eepsocks.log"))
        .unwrap()
        .lines()
    {
        if l.contains("SIGHUP") || l.contains("stopped") {
            eprintln!("{l}");
        }
    }
    drop(open);
    let t = Instant::now();
    let mut child = child;
    let status = loop {
        if let Some(st) = child.0.try_wait().unwrap() {
            break st;
        }
        assert!(
            t.elapsed() < Duration::from_secs(8),
            "did not exit after the last stream"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    eprintln!(
        "exited {:.2} s after the last stream closed",
        t.elapsed().as_secs_f32()
    );

    let log = fs::read_to_string(dir.path().join("eepsocks.log")).unwrap();
    assert!(
        log.contains("address book reloaded") && log.contains("all connections closed"),
        "{log}"
    );
    assert!(
        !log.contains("alice") && !log.contains("swordfish"),
        "username in the log"
    );
    drop(child);
}
