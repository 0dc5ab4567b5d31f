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
    let mut p = rig.run(&format!("listen = \"{listen}\"\n"), &[]);
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
