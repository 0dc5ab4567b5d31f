//! `eepsocks exec -- COMMAND`: COMMAND in its own user, network, mount and PID namespaces,
//! whose only way out is the running eepsocks daemon (docs/exec.md).
//!
//! - `ns`: the namespace side (firewall, DNS files, sockets, PID 1, COMMAND).
//! - `control`: the daemon's control socket, serving an exec's sockets and identity.
//! - `sys`: descriptor passing and capabilities.
//! - `report`: what the exec was refused, as it is told at exit.
//! - here: the launcher (between the two).

pub mod control;
pub mod ns;
mod report;
pub mod sys;

use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

pub use crate::proxy::tally::{Tally, REPORT_ITEMS};
pub use report::Report;

pub struct Options {
    pub identity: Option<String>,
    pub quiet: bool,
    pub isolate_ipc: bool,
    pub command: Vec<OsString>,
}

/// The control socket of the daemon the CLI would talk to (`cfg` as `find_running` set it).
fn control_socket(cfg: &crate::config::Config) -> Result<PathBuf> {
    let ports = crate::ports::Ports::read(&cfg.data_dir()).map_err(|_| {
        anyhow::anyhow!(
            "no eepsocks daemon is running for this user: start one (eepsocks run, or the \
             offline eepsocks demo), then run eepsocks exec again"
        )
    })?;
    if let Some(p) = ports.control {
        return Ok(p);
    }
    // An older daemon with the default data directory: the one announced instance that
    // serves exec, if there is exactly one (a demo beside it).
    let serving: Vec<_> = crate::ports::announced()
        .into_iter()
        .filter_map(|p| p.control)
        .collect();
    match serving.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!(
            "the running eepsocks (pid {}) has no exec control socket: restart it with \
             eepsocks run (or eepsocks demo)",
            ports.pid
        ),
    }
}

/// A new empty private directory for the files the namespace mounts.
fn scratch_dir() -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let mut r = [0u8; 8];
    getrandom::getrandom(&mut r).map_err(|e| anyhow::anyhow!("random: {e}"))?;
    let p = std::env::temp_dir().join(format!(
        "eepsocks-exec-{}-{:016x}",
        std::process::id(),
        u64::from_le_bytes(r)
    ));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&p)
        .with_context(|| format!("cannot create {}", p.display()))?;
    Ok(p)
}

fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "eepsocks exec: {line}");
}

/// Run the launcher; returns COMMAND's exit code. Call before any thread exists: it forks.
pub fn run(cfg: &crate::config::Config, opts: Options) -> Result<i32> {
    if opts.command.is_empty() {
        bail!("exec: no command given (eepsocks exec -- COMMAND [ARGS...])");
    }
    if let Some(n) = &opts.identity {
        if !control::valid_identity(n) {
            bail!("--identity {n:?}: 1 to 64 letters, digits, '-' or '_'");
        }
    }
    let scratch = scratch_dir()?;
    let r = launch(cfg, opts, &scratch);
    let _ = std::fs::remove_dir(&scratch);
    r
}

fn launch(cfg: &crate::config::Config, opts: Options, scratch: &std::path::Path) -> Result<i32> {
    let mut hide = vec![
        // The daemon's control socket: only the launcher talks to it.
        crate::ports::announce_dir(),
        PathBuf::from("/run/nscd"),
        PathBuf::from("/var/run/nscd"),
        PathBuf::from("/run/systemd/resolve"),
    ];
    if opts.isolate_ipc {
        hide.push(PathBuf::from("/tmp/.X11-unix"));
        hide.push(PathBuf::from("/run/dbus"));
        if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").filter(|x| !x.is_empty()) {
            hide.push(PathBuf::from(x));
        }
    }
    let plan = ns::Plan {
        command: opts.command.clone(),
        scratch: scratch.to_path_buf(),
        hide,
    };
    let mut pair = [0; 2];
    // SAFETY: pair is a valid out-array.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            pair.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).context("socketpair");
    }
    // SAFETY: fresh descriptors we own.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) };
    // ^C goes to COMMAND (same process group); the launcher stays for the report.
    // SAFETY: setting dispositions.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGQUIT, libc::SIG_IGN);
    }
    // SAFETY: no thread exists yet (see `run`), so the child may allocate.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error()).context("fork");
    }
    if pid == 0 {
        drop(ours);
        ns::child(theirs, plan);
    }
    drop(theirs);
    let fd = ours.as_raw_fd();
    let mut buf = vec![0u8; 16 * 1024];
    let (n, fds) = sys::recv_fds(fd, &mut buf, ns::FDS, 0).context("the namespace's setup")?;
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    if let Some(why) = msg.strip_prefix("ERR ") {
        ns::wait_code(pid);
        bail!("{why}");
    }
    if msg != "OK" || fds.len() != ns::FDS {
        ns::wait_code(pid);
        bail!("the namespace's setup ended without its sockets");
    }
    let code = match hand_over_to_daemon(cfg, &opts, fd, pid, fds) {
        Ok(code) => code,
        Err(e) => {
            drop(ours);
            ns::wait_code(pid);
            return Err(e);
        }
    };
    Ok(code)
}

/// The namespace's sockets to the daemon's control socket, then wait for COMMAND and the
/// report.
fn hand_over_to_daemon(
    cfg: &crate::config::Config,
    opts: &Options,
    fd: std::os::fd::RawFd,
    pid: libc::pid_t,
    fds: Vec<OwnedFd>,
) -> Result<i32> {
    let path = control_socket(cfg)?;
    let mut ctl = UnixStream::connect(&path).with_context(|| {
        format!(
            "cannot reach the daemon's exec control socket {}",
            path.display()
        )
    })?;
    let req = serde_json::json!({ "identity": opts.identity });
    let raw: Vec<_> = fds.iter().map(|f| f.as_raw_fd()).collect();
    sys::send_fds(ctl.as_raw_fd(), format!("{req}\n").as_bytes(), &raw)
        .context("handing the namespace to the daemon")?;
    drop(fds);
    // The daemon says "building" every 5 s until the identity is up: a silence of 30 s is a
    // daemon that stopped answering, not a slow router.
    ctl.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let mut lines = BufReader::new(ctl.try_clone()?).lines();
    let b32 = await_ready(&mut lines)?;
    if !opts.quiet {
        let kind = match &opts.identity {
            Some(n) => format!("persistent identity {n}"),
            None => "new transient identity".into(),
        };
        say(&format!("{b32} ({kind}); only I2P is reachable"));
    }
    sys::send_fds(fd, b"G", &[]).context("starting the command")?;
    let (code, counters) = await_command(fd, pid);
    let _ = ctl.write_all(b"{\"op\":\"done\"}\n");
    let mut report = read_report(&mut lines, &b32);
    report.counters = counters;
    if let Some(text) = report.text(opts.quiet) {
        let _ = writeln!(std::io::stderr(), "{text}");
    }
    Ok(code)
}

/// The daemon's answers until the identity is up: its b32, or why not. Progress is shown
/// because a first session's tunnels can take a minute.
fn await_ready(lines: &mut std::io::Lines<BufReader<UnixStream>>) -> Result<String> {
    loop {
        let line = match lines.next() {
            Some(Ok(line)) => line,
            Some(Err(e)) => {
                bail!("the daemon stopped answering on the exec control connection: {e}")
            }
            None => bail!("the daemon closed the exec control connection"),
        };
        let v: serde_json::Value = serde_json::from_str(&line).context("the daemon's answer")?;
        match v.get("event").and_then(|e| e.as_str()) {
            Some("building") => {
                let secs = v.get("secs").and_then(|s| s.as_u64()).unwrap_or(0);
                say(&format!(
                    "building tunnels for this identity ({secs} s so far)..."
                ));
            }
            Some("ready") => {
                return Ok(v
                    .get("b32")
                    .and_then(|b| b.as_str())
                    .unwrap_or("")
                    .to_string())
            }
            Some("error") => bail!(
                "the daemon refused: {}",
                v.get("message").and_then(|m| m.as_str()).unwrap_or("?")
            ),
            _ => {}
        }
    }
}

/// COMMAND runs; the namespace's PID 1 says when it ended: its exit code and the
/// namespace's counters, or (if it could not say) the code of the namespace itself.
fn await_command(fd: std::os::fd::RawFd, pid: libc::pid_t) -> (i32, Option<ns::Counters>) {
    let mut buf = vec![0u8; 16 * 1024];
    let ended = match sys::recv_fds(fd, &mut buf, 0, 0) {
        Ok((n, _)) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        Err(_) => String::new(),
    };
    let status = ns::wait_code(pid);
    if let Some(j) = ended.strip_prefix("END ") {
        match serde_json::from_str::<ns::Ended>(j) {
            Ok(e) => (e.code, e.counters),
            Err(_) => (status, None),
        }
    } else {
        if let Some(why) = ended.strip_prefix("ERR ") {
            say(why);
        }
        (status, None)
    }
}

/// The daemon's report after "done"; an empty one if it never comes (the daemon stopped),
/// so the user still hears the identity.
fn read_report(lines: &mut std::io::Lines<BufReader<UnixStream>>, b32: &str) -> Report {
    while let Some(Ok(line)) = lines.next() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if v.get("event").and_then(|e| e.as_str()) == Some("report") {
            return v
                .get("report")
                .and_then(|r| serde_json::from_value(r.clone()).ok())
                .unwrap_or_else(|| Report::empty(b32));
        }
    }
    Report::empty(b32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::tally::NAME_MAX;
    use std::net::SocketAddr;

    /// The lists keep the first REPORT_ITEMS distinct entries; the counts go on; names are
    /// cut to NAME_MAX without their trailing dot.
    #[test]
    fn tally_lists_are_bounded_and_counts_are_not() {
        let t = Tally::default();
        for i in 0..100u16 {
            t.clearnet(Some(SocketAddr::from(([10, 0, 0, 1], 1000 + i))));
            t.name("example.com.");
        }
        t.name(&"a".repeat(1000));
        let r = t.report("x.b32.i2p", &crate::proxy::stats::Stats::default());
        assert_eq!(r.clearnet, 100);
        assert_eq!(r.clearnet_first.len(), REPORT_ITEMS);
        assert_eq!(r.clearnet_first[0], "10.0.0.1:1000");
        assert_eq!(r.names, 101);
        assert_eq!(r.names_first[0], "example.com");
        assert_eq!(r.names_first[1].len(), NAME_MAX);
        assert_eq!(r.names_first.len(), 2);
    }

    #[test]
    fn quiet_report_only_when_something_was_refused() {
        let mut r = Report::empty("x.b32.i2p");
        r.streams = 3;
        r.counters = Some(ns::Counters::default());
        assert_eq!(r.text(true), None);
        let full = r.text(false).unwrap();
        assert!(full.contains("I2P streams opened: 3"), "{full}");
        r.counters = Some(ns::Counters {
            udp: 2,
            ..ns::Counters::default()
        });
        let line = r.text(true).unwrap();
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(line.contains("2 other packets"), "{line}");
        r.clearnet = 1;
        r.clearnet_first = vec!["[fd99::1]:80".into()];
        let full = r.text(false).unwrap();
        assert!(
            full.contains("clearnet connections refused: 1 ([fd99::1]:80)"),
            "{full}"
        );
        assert!(full.contains("(UDP 2, ICMP 0, other 0)"), "{full}");
    }

    #[test]
    fn identity_names_cannot_walk_the_file_system() {
        for ok in ["wallet", "a-b_C9", &"x".repeat(64)] {
            assert!(control::valid_identity(ok), "{ok}");
        }
        for bad in ["", "../x", "a/b", ".", "a b", "é", &"x".repeat(65)] {
            assert!(!control::valid_identity(bad), "{bad}");
        }
    }

    /// Descriptors and bytes cross a SEQPACKET pair as one message; more descriptors than
    /// the receiver takes is an error, not a leak of the extra ones.
    #[test]
    fn descriptors_pass_and_excess_is_refused() {
        use std::os::fd::AsRawFd;
        let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        sys::send_fds(a.as_raw_fd(), b"OK", &[l.as_raw_fd()]).unwrap();
        let mut buf = [0u8; 16];
        let (n, fds) = sys::recv_fds(b.as_raw_fd(), &mut buf, 1, 0).unwrap();
        assert_eq!(&buf[..n], b"OK");
        let got = std::net::TcpListener::from(fds.into_iter().next().unwrap());
        assert_eq!(got.local_addr().unwrap().port(), port);
        let raw = [l.as_raw_fd(), l.as_raw_fd()];
        sys::send_fds(a.as_raw_fd(), b"2", &raw).unwrap();
        assert!(sys::recv_fds(b.as_raw_fd(), &mut buf, 1, 0).is_err());
    }
}
