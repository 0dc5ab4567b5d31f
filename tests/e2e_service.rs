//! eepsocks as the service manager runs it (dist/eepsocks.service: `Type=notify`,
//! `ExecReload` = SIGHUP): `eepsocks run` under a `NOTIFY_SOCKET` this test listens on,
//! against the offline emissary network of `eepsocks demo` (loopback, no root, no
//! systemd). STATUS lines while it starts, READY=1 only once its session is up, a curl
//! through it, a reload, a stop. CI runs it a second time against the installed package
//! (`EEPSOCKS_TEST_BIN=/usr/bin/eepsocks`).

#![cfg(feature = "embedded")]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};
use support::launcher::{self, Eepsocks};
use support::notify::Manager;
use support::rig::free_addrs;

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
    let [demo_addr, listen, status] = free_addrs::<3>();
    let demo = Eepsocks::spawn_logging(
        [
            "demo",
            "--listen",
            &demo_addr.to_string(),
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
            "status_listen = \"{status}\"\n[options]\n\"inbound.length\" = 1\n\"outbound.length\" = 1\n"
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
            &listen.to_string(),
        ],
        None,
    );
    cmd.env("NOTIFY_SOCKET", &notify)
        .env("EEPSOCKS_LOG", "info");
    let mut p = Eepsocks::spawn_command(cmd);

    // Start: STATUS lines, then READY=1 once the session is up (and not before).
    let (ready_at, _, _) = manager.wait("READY=1", 0, Duration::from_secs(120));
    let before: Vec<String> = manager.texts()[..ready_at].to_vec();
    assert!(
        before.iter().any(|m| m.starts_with("STATUS=")),
        "no STATUS before READY: {before:?}"
    );
    let out = launcher::run_cli(["--data-dir", data.to_str().unwrap(), "status"], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"session_up\":true"), "at READY=1: {text}");
    let proxy = listen.to_string();
    curl(&proxy, &format!("http://{site}/"));

    // Reload (ExecReload): RELOADING=1, then READY=1 again, and it still serves.
    let from = manager.texts().len();
    p.hup();
    let (r, _, _) = manager.wait("RELOADING=1", from, Duration::from_secs(30));
    manager.wait("READY=1", r + 1, Duration::from_secs(60));
    curl(&proxy, &format!("http://{site}/"));

    // Stop: STOPPING=1 and a clean exit.
    let from = manager.texts().len();
    assert!(p.term().success(), "{}", p.log());
    manager.wait("STOPPING=1", from, Duration::from_secs(5));
    eprintln!("notifications: {:?}", manager.texts());
    drop(demo);
}
