//! eepsocks as the service manager runs it (dist/eepsocks.service: `Type=notify`,
//! `ExecReload` = SIGHUP): `eepsocks run` under a `NOTIFY_SOCKET` this test listens on,
//! against the offline emissary network of `eepsocks demo` (loopback, no root, no
//! systemd). STATUS lines while it starts, READY=1 only once its session is up, a curl
//! through it, a reload, a stop. CI runs it a second time against the installed package
//! (`EEPSOCKS_TEST_BIN=/usr/bin/eepsocks`).
//!
//! Where strace and systemd-analyze are installed, the process runs under `strace -f` and
//! every system call it made must be one the unit's `SystemCallFilter` allows: the
//! sandbox is proven sufficient for this life cycle (the SAM router; the embedded router
//! is not covered).

#![cfg(feature = "embedded")]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};
use support::launcher::{self, Eepsocks};
use support::notify::Manager;

const BODY: &str = "Hello from demo.i2p";

/// curl through `proxy` to `url` until the demo site answers (a young network settles).
fn curl(proxy: &str, url: &str) {
    let t0 = Instant::now();
    loop {
        let out = Command::new("curl")
            .args(["-sS", "-m", "30", "--socks5-hostname", proxy, url])
            .output()
            .expect("curl");
        if String::from_utf8_lossy(&out.stdout).contains(BODY) {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "curl {url}: {out:?}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn run_under_a_service_manager_on_the_demo_network() {
    let tmp = tempfile::tempdir().unwrap();
    // Port 0 everywhere: a port picked beforehand could be taken by one of the demo's
    // routers before it is bound; the proxy's real one is read from its ports file.
    let any = "127.0.0.1:0";
    let demo = Eepsocks::spawn_logging(
        [
            "demo",
            "--listen",
            any,
            "--dir",
            tmp.path().join("demo").to_str().unwrap(),
        ],
        None,
        "info,emissary=warn",
    );
    let site = demo.wait_ready().field("demo.i2p");
    // "demo: SAM bridges: site router A, proxy router B"
    let line = demo.wait_log("demo: SAM bridges:", Duration::from_secs(5));
    let bridge = line.rsplit(' ').next().unwrap().to_string();

    let notify = tmp.path().join("notify.sock");
    let manager = Manager::listen(&notify);
    let cfg = tmp.path().join("eepsocks.toml");
    std::fs::write(
        &cfg,
        format!(
            "status_listen = \"{any}\"\n[options]\n\"inbound.length\" = 1\n\"outbound.length\" = 1\n"
        ),
    )
    .unwrap();
    let data = tmp.path().join("data");
    let mut cmd = launcher::command(
        [
            "--config",
            cfg.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
            "run",
            "--router",
            "sam",
            "--sam",
            &bridge,
            "--listen",
            any,
        ],
        None,
    );
    cmd.env("NOTIFY_SOCKET", &notify)
        .env("EEPSOCKS_LOG", "info");
    let trace = tmp.path().join("strace.txt");
    let traced = have("strace") && have("systemd-analyze");
    if traced {
        cmd = under_strace(cmd, &trace);
    } else {
        println!("(no strace or systemd-analyze: the system call filter is not checked)");
    }
    let mut p = Eepsocks::spawn_command(cmd);

    // Start: STATUS lines, then READY=1 once the session is up (and not before).
    let (ready_at, _, _) = manager.wait("READY=1", 0, Duration::from_secs(120));
    let before: Vec<String> = manager.texts()[..ready_at].to_vec();
    assert!(
        before.iter().any(|m| m.starts_with("STATUS=")),
        "no STATUS before READY: {before:?}"
    );
    let out = launcher::run_cli(
        ["--data-dir", data.to_str().unwrap(), "status", "--json"],
        None,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"session_up\":true"), "at READY=1: {text}");
    let proxy = eepsocks::daemon::ports::Ports::read(&data)
        .unwrap()
        .listeners[0]
        .listen
        .to_string();
    curl(&proxy, &format!("http://{site}/"));
    // Signals go to eepsocks itself (under strace the child is strace), found the way a
    // service manager's MAINPID would be: the pid in the ports file.
    let pid = eepsocks::daemon::ports::Ports::read(&data).unwrap().pid as i32;
    let signal = |sig| assert_eq!(unsafe { libc::kill(pid, sig) }, 0);

    // Reload (ExecReload): RELOADING=1, then READY=1 again, and it still serves.
    let from = manager.texts().len();
    signal(libc::SIGHUP);
    let (r, _, _) = manager.wait("RELOADING=1", from, Duration::from_secs(30));
    manager.wait("READY=1", r + 1, Duration::from_secs(60));
    curl(&proxy, &format!("http://{site}/"));

    // Stop: STOPPING=1 and a clean exit.
    let from = manager.texts().len();
    signal(libc::SIGTERM);
    assert!(
        p.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        p.log()
    );
    manager.wait("STOPPING=1", from, Duration::from_secs(5));
    eprintln!("notifications: {:?}", manager.texts());
    drop(demo);
    if traced {
        check_syscalls(&trace);
    }
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `cmd` run under `strace -f`, its system calls written to `out`.
fn under_strace(cmd: Command, out: &std::path::Path) -> Command {
    let mut c = Command::new("strace");
    c.args(["-f", "-qq", "-o"])
        .arg(out)
        .arg("--")
        .arg(cmd.get_program());
    c.args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c
}

/// Every system call in the strace output `trace` is allowed by the unit's filter:
/// `SystemCallFilter=@system-service` then `~@privileged` (dist/eepsocks.service).
fn check_syscalls(trace: &std::path::Path) {
    use std::collections::{BTreeMap, BTreeSet};
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/dist/eepsocks.service"
    ))
    .unwrap();
    assert!(
        unit.contains("SystemCallFilter=@system-service\n")
            && unit.contains("SystemCallFilter=~@privileged\n"),
        "the unit's filter changed: update this check"
    );
    // The groups as this machine's systemd defines them.
    let out = Command::new("systemd-analyze")
        .arg("syscall-filter")
        .output()
        .unwrap();
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = String::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if line.starts_with('@') {
            current = line.trim().to_string();
        } else if let Some(item) = line.strip_prefix("    ") {
            if !item.starts_with('#') && !current.is_empty() {
                groups
                    .entry(current.clone())
                    .or_default()
                    .push(item.trim().to_string());
            }
        } else if line.trim().is_empty() {
            current.clear();
        }
    }
    fn expand(g: &str, groups: &BTreeMap<String, Vec<String>>, into: &mut BTreeSet<String>) {
        for item in groups.get(g).map(Vec::as_slice).unwrap_or(&[]) {
            if item.starts_with('@') {
                expand(item, groups, into);
            } else {
                into.insert(item.clone());
            }
        }
    }
    let (mut allowed, mut denied) = (BTreeSet::new(), BTreeSet::new());
    expand("@system-service", &groups, &mut allowed);
    expand("@privileged", &groups, &mut denied);
    assert!(allowed.len() > 100, "could not read the groups: {groups:?}");
    // "1234 name(args..." lines; resumed calls, exits and signals carry no new name.
    let text = std::fs::read_to_string(trace).unwrap();
    let used: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(_, rest)| rest.trim_start()))
        .filter(|rest| {
            !rest.starts_with('<') && !rest.starts_with("+++") && !rest.starts_with("---")
        })
        .filter_map(|rest| rest.split_once('(').map(|(name, _)| name.to_string()))
        .filter(|name| name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    assert!(
        used.contains("epoll_wait") || used.contains("epoll_pwait"),
        "{used:?}"
    );
    let refused: Vec<&String> = used
        .iter()
        .filter(|s| !allowed.contains(*s) || denied.contains(*s))
        .collect();
    eprintln!(
        "system calls: {} used, all within SystemCallFilter ({} allowed)",
        used.len(),
        allowed.len() - denied.len()
    );
    assert!(
        refused.is_empty(),
        "system calls the unit would refuse: {refused:?}"
    );
}
