//! systemd `Type=notify` and the ports file, on the real binary against the fake SAM bridge
//! (no root, no systemd): the test plays the service manager with a datagram socket in
//! `NOTIFY_SOCKET`, and reads `<data_dir>/public/ports.json` as `eepsocks b32` and
//! `eepsocks status` do.

mod support;

use std::net::SocketAddr;
use std::time::Duration;
use support::launcher::{run_cli, Eepsocks};
use support::notify::Manager;
use support::rig::{free_addrs, Rig, READY};

/// How long the fake holds the first SESSION CREATE: READY=1 must wait for it.
const SLOW_SESSION: Duration = Duration::from_millis(1500);
const SETTLE: Duration = Duration::from_secs(10);

fn config(a: SocketAddr, b: SocketAddr, status: SocketAddr, stream_timeout: u64) -> String {
    format!(
        "stream_timeout = {stream_timeout}\nstatus_listen = \"{status}\"\ndrain_timeout = 1\n\
         [[proxy]]\nname = \"main\"\nlisten = \"{a}\"\n\
         [[proxy]]\nname = \"users\"\nlisten = \"{b}\"\nisolate = \"username\"\n\
         [proxy.auth]\nalice = \"swordfish\"\n"
    )
}

/// A one-shot subcommand on the rig's data directory: (success, stdout, stderr).
fn cli(r: &Rig, args: &[&str]) -> (bool, String, String) {
    let data = r.data().display().to_string();
    let mut all = vec!["--data-dir", &data];
    all.extend(args);
    let out = run_cli(all, None);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn lifecycle_notifications_and_ports_file() {
    let r = Rig::new();
    let [a, b, status] = free_addrs();
    r.write_config(&config(a, b, status, 60));
    let notify_path = r.dir.path().join("notify.sock");
    let m = Manager::listen(&notify_path);
    r.fake.delay_next("SESSION CREATE", SLOW_SESSION, Some(1));
    let mut cmd = r.command(&[]);
    cmd.env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", "400000")
        .env_remove("WATCHDOG_PID");
    let mut p = Eepsocks::spawn_command(cmd);

    // While the fake holds the session: status lines, no READY.
    assert!(
        r.fake.wait_for(|s| s.count("SESSION CREATE") >= 1, READY),
        "{}",
        p.log()
    );
    std::thread::sleep(SLOW_SESSION / 2);
    assert!(r.fake.sessions().is_empty(), "the session was not held");
    assert!(
        m.with_line("READY=1", 0).is_empty(),
        "READY before the session: {:?}",
        m.texts()
    );
    let statuses: Vec<String> = m
        .texts()
        .into_iter()
        .filter(|t| t.starts_with("STATUS="))
        .collect();
    assert!(
        statuses.iter().any(|s| s.contains("starting the router"))
            && statuses
                .iter()
                .any(|s| s.contains("waiting for the router's sessions")),
        "{statuses:?}"
    );

    // READY=1 once the session exists, not before; stdout says ready too.
    let (ready_i, ready_at, ready_msg) = m.wait("READY=1", 0, READY);
    let created = r.fake.created();
    assert_eq!(created.len(), 1, "{created:?}");
    assert!(created.iter().all(|s| s.created <= ready_at), "{created:?}");
    assert!(ready_msg.contains("STATUS=ready"), "{ready_msg}");
    let ready = p.wait_ready_within(READY);
    let b32 = ready.b32("main").to_string();

    // The ports file: world-readable, with the listeners, the status address, our pid.
    let ports_path = r.data().join("public/ports.json");
    let text = std::fs::read_to_string(&ports_path).unwrap();
    let ports: serde_json::Value = serde_json::from_str(&text).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&ports_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }
    assert_eq!(ports["pid"], p.pid());
    assert_eq!(ports["status"], status.to_string());
    let ls = ports["listeners"].as_array().unwrap();
    assert_eq!(ls.len(), 2, "{text}");
    assert_eq!(ls[0]["name"], "main");
    assert_eq!(ls[0]["listen"], a.to_string());
    assert_eq!(ls[0]["identity"], b32);
    assert_eq!(
        ls[0]["protocols"],
        serde_json::json!(["socks4a", "socks5", "http-connect"])
    );
    assert_eq!(ls[1]["identity"], "per-username");
    assert_eq!(
        ls[1]["protocols"],
        serde_json::json!(["socks5", "http-connect"])
    );

    // `eepsocks b32` and `eepsocks status` find it through the file.
    assert_eq!(
        cli(&r, &["b32", "main"]),
        (true, b32.clone(), String::new())
    );
    let (ok, _, err) = cli(&r, &["b32"]);
    assert!(!ok && err.contains("name one"), "{err}");
    let (ok, _, err) = cli(&r, &["b32", "users"]);
    assert!(!ok && err.contains("no single b32"), "{err}");
    let (ok, _, err) = cli(&r, &["b32", "nope"]);
    assert!(!ok && err.contains("no listener \"nope\""), "{err}");
    let (ok, out, err) = cli(&r, &["status"]);
    assert!(ok, "status on {status}: {err}");
    assert!(out.contains(&b32), "{out}");

    // The watchdog is fed every 200 ms.
    let before = m.with_line("WATCHDOG=1", 0).len();
    std::thread::sleep(Duration::from_millis(1000));
    let fed = m.with_line("WATCHDOG=1", 0).len() - before;
    // Five expected; margin for a loaded machine.
    assert!((2..=10).contains(&fed), "{fed} WATCHDOG=1 in 1 s");

    // SIGHUP: RELOADING=1 with a timestamp, then READY=1 saying it was applied.
    r.write_config(&config(a, b, status, 61));
    p.hup();
    let (i, _, reloading) = m.wait("RELOADING=1", ready_i + 1, SETTLE);
    assert!(
        reloading
            .lines()
            .any(|l| l.starts_with("MONOTONIC_USEC=") && l[15..].parse::<u64>().is_ok()),
        "{reloading}"
    );
    let (i, _, again) = m.wait("READY=1", i + 1, SETTLE);
    assert!(again.contains("reload applied"), "{again}");

    // A refused reload is READY=1 too, saying so; the running config stays.
    r.write_config("this is not toml [");
    p.hup();
    let (i, _, _) = m.wait("RELOADING=1", i + 1, SETTLE);
    let (_, _, refused) = m.wait("READY=1", i + 1, SETTLE);
    assert!(refused.contains("reload refused"), "{refused}");
    assert_eq!(cli(&r, &["b32", "main"]).1, b32);

    // SIGTERM: STOPPING=1, and the file is gone once it has exited.
    let st = p.term();
    assert!(st.success(), "{st:?}\n{}", p.log());
    m.wait("STOPPING=1", 0, SETTLE);
    assert!(!ports_path.exists(), "ports.json left behind");
    let (ok, _, err) = cli(&r, &["b32", "main"]);
    assert!(!ok && err.contains("not running"), "{err}");
}

/// Without NOTIFY_SOCKET nothing changes for scripts, and the ports file says when the
/// status endpoint is off.
#[test]
fn ports_file_without_systemd() {
    let r = Rig::new();
    let [a] = free_addrs();
    let body = format!("status_listen = \"off\"\n[[proxy]]\nname = \"only\"\nlisten = \"{a}\"\n");
    let mut p = r.run(&body, &[]);
    let b32 = p.wait_ready_within(READY).b32("only").to_string();
    let (ok, out, err) = cli(&r, &["b32"]);
    assert!(ok && out == b32, "{out:?} {err}");
    let text = std::fs::read_to_string(r.data().join("public/ports.json")).unwrap();
    let ports: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(ports["status"].is_null(), "{text}");
    let (ok, _, err) = cli(&r, &["status"]);
    assert!(!ok && err.contains("no status endpoint"), "{err}");
    // A second instance on the same data directory fails (the address is taken) and
    // leaves the running one's file alone.
    let mut second = r.start(&[]);
    let st = second.wait_exit(READY);
    assert!(!st.success(), "{}", second.log());
    assert!(
        r.data().join("public/ports.json").exists(),
        "{}",
        second.log()
    );
    assert!(p.term().success());
}
