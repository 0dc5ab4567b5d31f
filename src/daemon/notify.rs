//! The systemd notification protocol (`Type=notify`, sd_notify(3)), hand-written: one
//! datagram of `KEY=VALUE` lines to the socket in `NOTIFY_SOCKET`. The `sd-notify` crate
//! does the same, but its current release needs a newer Rust than ours, and the older one
//! ignores the watchdog when `WATCHDOG_PID` is unset (sd_watchdog_enabled(3) does not).
//!
//! Without `NOTIFY_SOCKET` every call does nothing, so the daemon calls it unconditionally.
//! The daemon drives it from its events: `event` for Ready/Reloaded, and `starting`,
//! `reloading`, `stopping`, `watchdog` at the moments that have no event.

use super::events::Event;
use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;
use tracing::{debug, warn};

pub struct Notifier {
    socket: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`. An unusable socket is
    /// logged and ignored: the service then fails its start timeout, which says more than
    /// refusing to run would.
    pub fn from_env() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET").and_then(|p| {
            let p = p.to_string_lossy().into_owned();
            match connect(&p) {
                Ok(s) => Some(s),
                Err(e) => {
                    warn!("NOTIFY_SOCKET {p:?} unusable, not notifying systemd: {e}");
                    None
                }
            }
        });
        let watchdog = watchdog_interval(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
        Notifier { socket, watchdog }
    }

    /// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC`, as systemd advises.
    pub fn watchdog_every(&self) -> Option<Duration> {
        self.watchdog.filter(|_| self.socket.is_some())
    }

    /// A `STATUS=` line during start-up.
    pub fn starting(&self, what: &str) {
        self.send(&[&format!("STATUS={what}")]);
    }

    pub fn reloading(&self) {
        self.send(&[
            "RELOADING=1",
            &format!("MONOTONIC_USEC={}", monotonic_usec()),
            "STATUS=reloading the configuration",
        ]);
    }

    pub fn stopping(&self) {
        self.send(&["STOPPING=1", "STATUS=stopping: draining open connections"]);
    }

    pub fn watchdog(&self) {
        self.send(&["WATCHDOG=1"]);
    }

    /// Run `f`, feeding the watchdog meanwhile: for start-up steps outside the daemon's
    /// loop (a first reseed of the embedded router can take minutes).
    pub async fn feeding<F: std::future::Future>(&self, f: F) -> F::Output {
        let Some(every) = self.watchdog_every() else {
            return f.await;
        };
        let mut f = std::pin::pin!(f);
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                r = &mut f => return r,
                _ = tick.tick() => self.watchdog(),
            }
        }
    }

    /// Ready at start, and ready again after a reload, applied or refused.
    pub fn event(&self, e: &Event) {
        let status = match e {
            Event::Ready(l) => format!("STATUS=ready: {} listener(s) serving", l.len()),
            Event::Reloaded { result: Ok(_), .. } => "STATUS=ready: reload applied".to_string(),
            Event::Reloaded { result: Err(e), .. } => {
                // STATUS is one line; the reason's first line is enough (the log has all).
                let first = e.lines().next().unwrap_or("");
                format!("STATUS=ready: reload refused, running config kept: {first}")
            }
        };
        self.send(&["READY=1", &status]);
    }

    fn send(&self, lines: &[&str]) {
        let Some((sock, addr)) = &self.socket else {
            return;
        };
        let msg = encode(lines);
        match sock.send_to_addr(msg.as_bytes(), addr) {
            Ok(_) => debug!("notified systemd: {}", msg.trim_end().replace('\n', ", ")),
            Err(e) => warn!("cannot notify systemd: {e}"),
        }
    }
}

/// One datagram: each line ends in a newline; newlines inside a value would start a new
/// (wrong) key, so they become spaces.
fn encode(lines: &[&str]) -> String {
    let mut msg = String::new();
    for l in lines {
        msg.push_str(&l.replace('\n', " "));
        msg.push('\n');
    }
    msg
}

/// `@name` is a Linux abstract socket, anything else a path.
fn socket_addr(p: &str) -> io::Result<SocketAddr> {
    match p.strip_prefix('@') {
        Some(name) => abstract_addr(name.as_bytes()),
        None if p.starts_with('/') => SocketAddr::from_pathname(p),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "neither an absolute path nor @abstract",
        )),
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_addr(name: &[u8]) -> io::Result<SocketAddr> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_addr(_: &[u8]) -> io::Result<SocketAddr> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract sockets are Linux-only",
    ))
}

fn connect(p: &str) -> io::Result<(UnixDatagram, SocketAddr)> {
    Ok((UnixDatagram::unbound()?, socket_addr(p)?))
}

/// Half the watchdog timeout, when the watchdog is meant for this process: `WATCHDOG_PID`
/// unset or ours.
fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    if let Some(p) = pid {
        if p.trim().parse::<u32>().ok() != Some(me) {
            return None;
        }
    }
    Some(Duration::from_micros(usec / 2))
}

/// CLOCK_MONOTONIC in microseconds: systemd ≥ 253 matches RELOADING=1 to the reload it
/// asked for by this timestamp.
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the struct it is given; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_newline_terminated_lines() {
        assert_eq!(encode(&["READY=1", "STATUS=ok"]), "READY=1\nSTATUS=ok\n");
        assert_eq!(encode(&["STATUS=a\nb"]), "STATUS=a b\n");
    }

    #[test]
    fn reload_refusal_is_one_status_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        let n = Notifier {
            socket: Some(connect(path.to_str().unwrap()).unwrap()),
            watchdog: None,
        };
        n.event(&Event::Reloaded {
            result: Err("bad file\nline two".into()),
            draining: 0,
        });
        let mut buf = [0u8; 512];
        let len = rx.recv(&mut buf).unwrap();
        let got = std::str::from_utf8(&buf[..len]).unwrap();
        assert_eq!(
            got,
            "READY=1\nSTATUS=ready: reload refused, running config kept: bad file\n"
        );
        n.reloading();
        let len = rx.recv(&mut buf).unwrap();
        let got = std::str::from_utf8(&buf[..len]).unwrap();
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines[0], "RELOADING=1");
        let usec: u64 = lines[1]
            .strip_prefix("MONOTONIC_USEC=")
            .unwrap()
            .parse()
            .unwrap();
        assert!(usec > 0);
    }

    #[test]
    fn socket_addresses() {
        assert!(socket_addr("/run/systemd/notify")
            .unwrap()
            .as_pathname()
            .is_some());
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            let a = socket_addr("@eepsocks/notify").unwrap();
            assert_eq!(a.as_abstract_name(), Some(&b"eepsocks/notify"[..]));
        }
        assert!(socket_addr("relative").is_err());
    }

    #[test]
    fn abstract_socket_receives() {
        #[cfg(target_os = "linux")]
        {
            let name = format!("eepsocks-test-{}", std::process::id());
            let rx = UnixDatagram::bind_addr(&abstract_addr(name.as_bytes()).unwrap()).unwrap();
            let n = Notifier {
                socket: Some(connect(&format!("@{name}")).unwrap()),
                watchdog: None,
            };
            n.watchdog();
            let mut buf = [0u8; 64];
            let len = rx.recv(&mut buf).unwrap();
            assert_eq!(&buf[..len], b"WATCHDOG=1\n");
        }
    }

    #[test]
    fn watchdog_for_this_process_only() {
        let half = Some(Duration::from_millis(200));
        assert_eq!(watchdog_interval(Some("400000"), None, 7), half);
        assert_eq!(watchdog_interval(Some("400000"), Some("7"), 7), half);
        assert_eq!(watchdog_interval(Some("400000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("x"), None, 7), None);
        assert_eq!(watchdog_interval(None, Some("7"), 7), None);
    }
}
