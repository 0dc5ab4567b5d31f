//! `eepsocks exec -- COMMAND` end to end (docs/exec.md): the demo runs inside a network
//! namespace of the test's whose only way out is a veth sink, and programs run under exec
//! there: a leak probe (every attempt fails at once, the report counts it, the capture on
//! the way out sees nothing, while the same probe without exec is captured), curl, git, a
//! Python script and a static Go binary with no proxy settings, identities (two execs, two
//! b32s; --identity twice, one b32), as root and as uid 65534; and the refusal path where
//! user namespaces are denied. Needs root (namespaces of the test's), nft, ip, tcpdump,
//! python3, curl, git and go; skips with the reason otherwise.

#![cfg(feature = "embedded")]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};
use support::capture::Capture;
use support::exec::{self as ex, Netns, User, SINK_V4, SINK_V6};

const BODY: &str = "Hello from demo.i2p";

fn skip(tools: &[&str], root: bool) -> bool {
    if root && unsafe { libc::geteuid() } != 0 {
        println!("skipped: needs root (network namespaces of the test's own)");
        return true;
    }
    let missing = ex::missing_tools(tools);
    if !missing.is_empty() {
        println!("skipped: missing {}", missing.join(", "));
        return true;
    }
    false
}

/// `exec` of `args`, retried while the young network settles (a first stream through
/// new tunnels can time out); returns the first run whose stdout contains `want`.
fn exec_until(user: &User, ns: &str, args: &[&str], want: &str) -> std::process::Output {
    let t0 = Instant::now();
    loop {
        let o = user.exec(ns, args);
        if o.status.success() && String::from_utf8_lossy(&o.stdout).contains(want) {
            return o;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(150),
            "exec {args:?} never printed {want:?}: {}",
            ex::show(&o)
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// The b32 exec announced on stderr.
fn announced_b32(o: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr);
    err.lines()
        .find_map(|l| {
            l.strip_prefix("eepsocks exec: ")?
                .split_whitespace()
                .next()
                .filter(|w| w.ends_with(".b32.i2p"))
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("no identity line: {err}"))
}

/// A number after `label` in the report.
fn count(report: &str, label: &str) -> u64 {
    let line = report
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} in the report: {report}"));
    line[line.find(':').unwrap() + 1..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{line}"))
}

/// The leak probe under exec: every attempt fails promptly and is counted; nothing reaches
/// the capture. Then the same probe without exec: the capture sees it.
fn leak_probe(user: &User, ns: &str, dir: &Path) {
    let probe = ex::probe_script();
    let probe = probe.to_str().unwrap();
    let mut cap = Capture::start(ns, dir);
    let o = user.exec(ns, &["python3", probe, SINK_V4, SINK_V6, "3"]);
    let found = cap.finish();
    assert!(o.status.success(), "{}", ex::show(&o));
    let results = ex::probe_results(&o.stdout);
    for (name, r) in &results {
        let result = r["result"].as_str().unwrap();
        assert_ne!(
            result,
            "ok",
            "{name} got through under exec: {}",
            ex::show(&o)
        );
        // Prompt: refused, never left to time out (the probe waits 3 s at most).
        assert!(r["secs"].as_f64().unwrap() < 1.0, "{name} was slow: {r}");
    }
    let report = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(
        count(&report, "clearnet connections refused"),
        3,
        "{report}"
    );
    for a in [
        format!("{SINK_V4}:80"),
        format!("[{SINK_V6}]:80"),
        "127.0.0.53:53".into(),
    ] {
        assert!(report.contains(&a), "{a} not in the report: {report}");
    }
    assert!(
        count(&report, "non-I2P name queries refused") >= 2,
        "{report}"
    );
    assert!(report.contains("(example.com"), "{report}");
    assert!(report.contains("UDP 1,"), "{report}");
    assert!(
        report.contains("loopback connections refused (nothing listening): 1"),
        "{report}"
    );
    assert!(
        found.leaks.is_empty(),
        "packets on the way out under exec: {:#?}",
        found.leaks
    );
    // Positive control: the same probe without exec is seen on the capture.
    // (finish() removed the namespace's resolv.conf: the control's names go to the sink.)
    let etc = Path::new("/etc/netns").join(ns);
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("resolv.conf"), format!("nameserver {SINK_V4}\n")).unwrap();
    let mut cap = Capture::start(ns, dir);
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "python3", probe, SINK_V4, SINK_V6, "1"])
        .output()
        .unwrap();
    let found = cap.finish();
    assert!(out.status.success(), "{}", ex::show(&out));
    for a in [SINK_V4, SINK_V6] {
        assert!(
            found.leaks.iter().any(|l| l.contains(&format!("> {a}"))),
            "the control's packets to {a} were not captured: {:#?}",
            found.leaks
        );
    }
}

/// Everything as root on one demo: the leak probe and its capture, the real programs, the
/// identities, and the exec in `status`.
#[test]
fn exec_end_to_end_as_root() {
    if skip(
        &[
            "ip", "nft", "tcpdump", "python3", "curl", "git", "go", "ldd",
        ],
        true,
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let ns = Netns::new("exec");
    let user = User::root(tmp.path());
    let (demo, site_sam) = support::step("demo", || user.demo(&ns.name));
    let files = tmp.path().join("site");
    std::fs::create_dir_all(&files).unwrap();
    ex::git_repo(&files, "cloned over I2P through exec\n");
    let site = support::step("site", || ex::spawn_site(&ns.name, site_sam, files.clone()));

    // The done-when line: curl with no proxy setting.
    let o = support::step("curl", || {
        exec_until(
            &user,
            &ns.name,
            &["curl", "-sS", "-m", "60", "http://demo.i2p/"],
            BODY,
        )
    });
    let report = String::from_utf8_lossy(&o.stderr).to_string();
    eprintln!("exec -- curl http://demo.i2p/ printed:\n{report}");
    assert!(count(&report, "I2P streams opened") >= 1, "{report}");
    assert_eq!(
        count(&report, "clearnet connections refused"),
        0,
        "{report}"
    );

    support::step("leak probe", || leak_probe(&user, &ns.name, tmp.path()));

    support::step("GarliCat over IPv6", || {
        // AAAA: the GarliCat address; a connect to it is this exec's stream to the site.
        let o = exec_until(
            &user,
            &ns.name,
            &["curl", "-6", "-sS", "-m", "60", "http://demo.i2p/"],
            BODY,
        );
        let report = String::from_utf8_lossy(&o.stderr).to_string();
        assert_eq!(
            count(&report, "clearnet connections refused"),
            0,
            "{report}"
        );
    });

    support::step("control socket", || {
        // Hidden inside: the program cannot hand the daemon namespaces of its own.
        let run = user.runtime.to_str().unwrap().to_string();
        let o = user.exec(&ns.name, &["sh", "-c", &format!("ls -A {run} | wc -l")]);
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            "0",
            "{}",
            ex::show(&o)
        );
        // A request without its six descriptors: refused, with the reason.
        let sock = std::fs::read_dir(&user.runtime)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "sock"))
            .expect("the control socket");
        let mut c = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        std::io::Write::write_all(&mut c, b"{\"identity\":null}\n").unwrap();
        let mut answer = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(c), &mut answer).unwrap();
        assert!(
            answer.contains("\"error\"") && answer.contains("expected 6 descriptors"),
            "{answer}"
        );
    });

    support::step("python", || {
        let script = "import socket\n\
                      s = socket.create_connection(('demo.i2p', 80), timeout=60)\n\
                      s.sendall(b'GET / HTTP/1.0\\r\\nHost: demo.i2p\\r\\n\\r\\n')\n\
                      print(s.makefile('rb').read().decode())\n";
        exec_until(&user, &ns.name, &["python3", "-c", script], BODY)
    });
    let go = support::step("go build", || ex::go_fetch(tmp.path()));
    support::step("go", || {
        exec_until(
            &user,
            &ns.name,
            &[go.to_str().unwrap(), "http://demo.i2p/"],
            BODY,
        )
    });
    support::step("git clone", || {
        let dest = tmp.path().join("clone");
        let url = format!("http://{site}/repo.git");
        exec_until(
            &user,
            &ns.name,
            &["git", "clone", "-q", &url, dest.to_str().unwrap()],
            "",
        );
        let got = std::fs::read_to_string(dest.join("README")).unwrap();
        assert_eq!(got, "cloned over I2P through exec\n");
    });

    support::step("identities", || {
        let whoami = format!("http://{site}/whoami");
        // Two at once (each holds its exec open until both have asked).
        let script = format!("curl -sS -m 90 --retry 5 --retry-all-errors {whoami}; sleep 3");
        let (u1, u2, n) = (user.clone(), user.clone(), ns.name.clone());
        let (s1, n1) = (script.clone(), n.clone());
        let a = std::thread::spawn(move || u1.exec(&n1, &["sh", "-c", &s1]));
        let b = std::thread::spawn(move || u2.exec(&n, &["sh", "-c", &script]));
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        let seen = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).trim().to_string();
        assert!(seen(&a).ends_with(".b32.i2p"), "{}", ex::show(&a));
        assert_eq!(
            seen(&a),
            announced_b32(&a),
            "the site saw the b32 exec announced"
        );
        assert_eq!(seen(&b), announced_b32(&b));
        assert_ne!(seen(&a), seen(&b), "two execs, one identity");
        // --identity: the site sees the b32 exec announced; the next run has the same one.
        // (The second run opens no stream to the same site: emissary, the demo's router,
        // keeps the old instance's streaming and ratchet state for minutes and drops
        // streams from a destination that comes back that soon; docs/exec.md.)
        let curl = [
            "--identity",
            "tester",
            "curl",
            "-sS",
            "-m",
            "90",
            "--retry",
            "5",
            "--retry-all-errors",
            &whoami,
        ];
        let one = exec_until(&user, &ns.name, &curl, ".b32.i2p");
        assert_eq!(seen(&one), announced_b32(&one));
        let two = user.exec(&ns.name, &["--identity", "tester", "true"]);
        assert!(two.status.success(), "{}", ex::show(&two));
        assert_eq!(announced_b32(&two), seen(&one));
        assert_ne!(seen(&one), seen(&a));
    });

    support::step("status", || {
        let (u, n) = (user.clone(), ns.name.clone());
        let running = std::thread::spawn(move || {
            u.exec(
                &n,
                &["sh", "-c", "curl -s -m 5 http://example.com/; sleep 4"],
            )
        });
        let t0 = Instant::now();
        let entry = loop {
            let o = user
                .command(&ns.name, &["status", "--json"])
                .output()
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
            let exec = v["listeners"].as_array().and_then(|l| {
                l.iter()
                    .find(|l| l["listen"] == "exec" && l["dns_refused"].as_u64() > Some(0))
                    .cloned()
            });
            if let Some(e) = exec {
                break e;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "no exec in status: {}",
                ex::show(&o)
            );
            std::thread::sleep(Duration::from_millis(300));
        };
        assert!(
            entry["identity"].as_str().unwrap().ends_with(".b32.i2p"),
            "{entry}"
        );
        let o = running.join().unwrap();
        assert!(
            o.status.success() || o.status.code() == Some(0),
            "{}",
            ex::show(&o)
        );
    });

    support::step("root without capabilities", || {
        // Root stays root inside, but with no capability: the firewall cannot be undone.
        let o = user.exec(
            &ns.name,
            &[
                "sh",
                "-c",
                "id -u; grep CapEff /proc/self/status; nft flush ruleset && echo FLUSHED",
            ],
        );
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.starts_with("0\n") && out.contains("0000000000000000"),
            "{}",
            ex::show(&o)
        );
        assert!(!out.contains("FLUSHED"), "{}", ex::show(&o));
    });

    support::step("isolate ipc", || {
        // A desktop's sockets (here a file standing for one) are hidden with --isolate-ipc.
        let xdg = tmp.path().join("xdg");
        std::fs::create_dir_all(&xdg).unwrap();
        std::fs::write(xdg.join("bus"), "").unwrap();
        let ls = |flag: Option<&str>| {
            let mut args = vec!["exec"];
            args.extend(flag);
            args.extend(["--", "sh", "-c", "ls -A \"$XDG_RUNTIME_DIR\""]);
            let o = user
                .command(&ns.name, &args)
                .env("XDG_RUNTIME_DIR", &xdg)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", ex::show(&o));
            String::from_utf8_lossy(&o.stdout).trim().to_string()
        };
        assert_eq!(ls(None), "bus");
        assert_eq!(ls(Some("--isolate-ipc")), "");
    });

    support::step("exit code", || {
        let o = user.exec(&ns.name, &["--quiet", "sh", "-c", "exit 7"]);
        assert_eq!(o.status.code(), Some(7), "{}", ex::show(&o));
        // Quiet, and nothing refused: nothing said at exit.
        assert!(
            !String::from_utf8_lossy(&o.stderr).contains("refused"),
            "{}",
            ex::show(&o)
        );
    });
    drop(demo);
}

/// The same path as uid 65534 (daemon and exec), on a machine where /dev/net/tun is
/// root-only: exec needs no TUN.
#[test]
fn exec_as_an_unprivileged_user() {
    if skip(&["ip", "nft", "python3", "curl", "setpriv"], true) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let ns = Netns::new("exun");
    let user = User::nobody(tmp.path());
    let (_demo, _) = support::step("demo as nobody", || user.demo(&ns.name));
    let o = support::step("curl as nobody", || {
        exec_until(
            &user,
            &ns.name,
            &["curl", "-sS", "-m", "60", "http://demo.i2p/"],
            BODY,
        )
    });
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("I2P streams opened: 1"),
        "{}",
        ex::show(&o)
    );
    // Whoever the program runs as inside: the same user, with no capability.
    let o = user.exec(
        &ns.name,
        &["sh", "-c", "id -u; grep CapEff /proc/self/status"],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("65534") && out.contains("0000000000000000"),
        "{}",
        ex::show(&o)
    );
    let probe = ex::probe_script();
    let o = user.exec(
        &ns.name,
        &["python3", probe.to_str().unwrap(), SINK_V4, SINK_V6, "3"],
    );
    for (name, r) in ex::probe_results(&o.stdout) {
        assert_ne!(r["result"], "ok", "{name} got through: {}", ex::show(&o));
    }
    let report = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(
        count(&report, "clearnet connections refused"),
        3,
        "{report}"
    );
}

/// With no daemon running, one line says how to start one.
#[test]
fn exec_without_a_daemon_says_how_to_start_one() {
    if skip(&["ip", "nft"], true) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let ns = Netns::new("exnod");
    let user = User::root(tmp.path());
    let o = user.exec(&ns.name, &["true"]);
    assert_eq!(o.status.code(), Some(1), "{}", ex::show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no eepsocks daemon is running") && err.contains("eepsocks run"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

/// Where user namespaces are denied (here: user.max_user_namespaces = 0 in a user namespace
/// of the test's own), exec says why and the fix, in one line, and runs nothing.
#[test]
fn exec_refusal_without_user_namespaces() {
    if skip(&["unshare"], false) {
        return;
    }
    let marker = tempfile::tempdir().unwrap();
    let ran = marker.path().join("ran");
    let script = format!(
        "echo 0 > /proc/sys/user/max_user_namespaces || exit 99; exec {} exec -- touch {}",
        support::launcher::bin(),
        ran.display()
    );
    let o = std::process::Command::new("unshare")
        .args(["-U", "-r", "--fork", "sh", "-c", &script])
        .output()
        .unwrap();
    if o.status.code() == Some(99) {
        println!("skipped: cannot set user.max_user_namespaces in a child user namespace here");
        return;
    }
    assert_eq!(o.status.code(), Some(1), "{}", ex::show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("cannot create a user namespace"), "{err}");
    assert!(
        err.contains("user.max_user_namespaces") && err.contains("sysctl -w"),
        "{err}"
    );
    assert!(!ran.exists(), "the command ran");
}

/// The same exec against i2pd (another SAM bridge): `eepsocks run` on the offline i2pd
/// network, curl to an HTTP eepsite, and two execs at once seen as two b32s (neither the
/// listener's) by a service that answers its caller's address.
#[test]
#[ignore = "not yet seen passing: on the shared build machine the i2pd test network itself \
            never carried a first stream (Testnet::start, twice); run with --ignored"]
fn exec_on_the_i2pd_testnet() {
    use support::testnet::{sam_addr, Kind, ServiceSpec, Testnet};
    if support::skip_without_testnet() || skip(&["nft", "python3", "curl"], true) {
        return;
    }
    let net = support::step("i2pd network", || {
        Testnet::start(
            2,
            &[ServiceSpec {
                name: "web",
                port: 7002,
                kind: Kind::Http,
            }],
        )
    });
    let who = support::services::spawn_whoami(&net, sam_addr(1));
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("eepsocks.toml");
    std::fs::write(
        &conf,
        format!(
            "handshake_timeout = 5\nstream_timeout = 50\n{}",
            support::consts::ZERO_HOP_OPTIONS
        ),
    )
    .unwrap();
    let data = tmp.path().join("data");
    let (conf, data) = (conf.to_str().unwrap(), data.to_str().unwrap());
    let user = User::root(tmp.path());
    let proxy = support::launcher::Eepsocks::spawn_command(user.command(
        &net.ns,
        &[
            "--config",
            conf,
            "--data-dir",
            data,
            "--sam",
            &sam_addr(2),
            "run",
        ],
    ));
    let listener_b32 = proxy.wait_ready().only().b32.clone();
    let web = format!("http://{}/", net.service("web").b32());
    let body = support::services::HTTP_BODY.trim();
    support::step("curl", || {
        exec_until(
            &user,
            &net.ns,
            &["--data-dir", data, "curl", "-sS", "-m", "60", &web],
            body,
        )
    });
    support::step("two execs, two b32s", || {
        let script = format!(
            "import socket, time\n\
             for i in range(20):\n\
             \x20   try:\n\
             \x20       print(socket.create_connection(('{who}', 80), timeout=60).makefile().readline().strip()); break\n\
             \x20   except OSError: time.sleep(1)\n\
             time.sleep(3)\n"
        );
        let run = |s: String| {
            let (u, n, d) = (user.clone(), net.ns.clone(), data.to_string());
            std::thread::spawn(move || u.exec(&n, &["--data-dir", &d, "python3", "-c", &s]))
        };
        let (a, b) = (run(script.clone()), run(script));
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        let seen = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).trim().to_string();
        assert!(seen(&a).ends_with(".b32.i2p"), "{}", ex::show(&a));
        assert_eq!(seen(&a), announced_b32(&a));
        assert_eq!(seen(&b), announced_b32(&b));
        assert_ne!(seen(&a), seen(&b));
        assert_ne!(seen(&a), listener_b32);
    });
}
