//! `<data_dir>/public/ports.json`: where the running daemon listens and which b32 each
//! listener has, for other programs (`eepsocks status`, `eepsocks b32`, P2Pool/Monero
//! set-up scripts) instead of scraping the log. Like arti's `port_info.json`. Written
//! whole (a reader sees the old file or the new one) once ready and after every applied
//! reload; removed at exit. It holds nothing secret, so it is world-readable, in a
//! directory of its own beside the private key files.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ports {
    pub listeners: Vec<PortListener>,
    /// The status endpoint, null when off.
    pub status: Option<SocketAddr>,
    /// Automap's ports, null when automap is off.
    #[serde(default)]
    pub automap: Option<PortAutomap>,
    pub pid: u32,
    /// The daemon's data directory (its address book and key files), so a command started
    /// without --data-dir can work with the instance it found through its announcement.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// The SAM bridge the daemon uses (the demo's is on a port of its own).
    #[serde(default)]
    pub sam: Option<String>,
    /// The exec control socket (`eepsocks exec`), null when none.
    #[serde(default)]
    pub control: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortAutomap {
    /// The listener whose identity and virtual addresses DNS and transparent traffic use.
    pub listener: String,
    /// The virtual network, e.g. "127.192.0.0/10".
    pub network: String,
    /// The DNS port (UDP and TCP), null when off.
    pub dns: Option<SocketAddr>,
    /// The transparent port, null when off.
    pub transparent: Option<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortListener {
    pub name: String,
    pub listen: SocketAddr,
    /// "socks4a" and "socks5", or only "socks5" when a login is required.
    pub protocols: Vec<String>,
    /// The b32 of the listener's identity, or "per-username".
    pub identity: String,
}

/// `public/`: traversable, not listable.
const PUBLIC_DIR_MODE: u32 = 0o711;

/// Whether this process announces its daemon where the CLI looks without flags: set by
/// `eepsocks run` and `eepsocks demo`, not by daemons tests start in their own process.
static ANNOUNCE: AtomicBool = AtomicBool::new(false);

pub fn announce_here() {
    ANNOUNCE.store(true, Ordering::Relaxed);
}

/// Whether this process announces itself (and so serves `eepsocks exec`).
pub fn announcing() -> bool {
    ANNOUNCE.load(Ordering::Relaxed)
}

/// Where running instances announce themselves, one `<pid>.json` (a copy of the ports
/// file) each: `$EEPSOCKS_RUNTIME_DIR`, else `$XDG_RUNTIME_DIR/eepsocks`, else `run/` in
/// the default data directory. A bare `eepsocks status` finds a daemon with any data
/// directory there (the demo's is temporary).
pub fn announce_dir() -> PathBuf {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = var("EEPSOCKS_RUNTIME_DIR") {
        return d;
    }
    if let Some(d) = var("XDG_RUNTIME_DIR") {
        return d.join("eepsocks");
    }
    crate::config::Config::default().data_dir().join("run")
}

fn announce_path() -> PathBuf {
    announce_dir().join(format!("{}.json", std::process::id()))
}

/// The running instances that announced themselves, oldest pid first. Files of exited
/// processes are skipped (and removed when we may).
pub fn announced() -> Vec<Ports> {
    let dir = announce_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        if p.extension() != Some(std::ffi::OsStr::new("json")) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        let Ok(ports) = serde_json::from_str::<Ports>(&text) else {
            continue;
        };
        if alive(ports.pid) {
            found.push(ports);
        } else {
            let _ = std::fs::remove_file(&p);
            // Its exec control socket too (a killed daemon leaves it).
            let _ = std::fs::remove_file(p.with_extension("sock"));
        }
    }
    found.sort_by_key(|p| p.pid);
    found
}

pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("public").join("ports.json")
}

impl Ports {
    pub fn write(&self, data_dir: &Path) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let p = path(data_dir);
        let dir = p.parent().expect("ports.json has a directory");
        // The data directory too, when nothing made it yet (`--transient`): 0700 like every
        // directory of ours.
        crate::fsutil::create_private_dir(dir)?;
        // The one exception, widened once private: others (`eepsocks b32`, `status`) may
        // open ports.json by name when the data directory lets them through (the unit's
        // StateDirectoryMode=0711), but not list anything.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(PUBLIC_DIR_MODE))
            .with_context(|| format!("cannot set the mode of {}", dir.display()))?;
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        // Cache: rewritten at every start, and stale after a crash anyway.
        crate::fsutil::write_replace_mode(&p, text.as_bytes(), crate::fsutil::Sync::Cache, 0o644)?;
        if ANNOUNCE.load(Ordering::Relaxed) {
            // Private: only this user's commands look here.
            let a = announce_path();
            crate::fsutil::create_private_dir(&announce_dir())?;
            crate::fsutil::write_replace_mode(
                &a,
                text.as_bytes(),
                crate::fsutil::Sync::Cache,
                0o600,
            )?;
        }
        Ok(())
    }

    /// The ports file of the daemon using `data_dir`; an error saying so when none runs.
    pub fn read(data_dir: &Path) -> Result<Ports> {
        let p = path(data_dir);
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
                "eepsocks is not running with the data directory {} (no {}); give its \
                 --data-dir (or --config), or start one: eepsocks run, or eepsocks demo",
                data_dir.display(),
                p.display()
            ),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", p.display())),
        };
        let ports: Ports =
            serde_json::from_str(&text).with_context(|| format!("invalid {}", p.display()))?;
        if !alive(ports.pid) {
            anyhow::bail!(
                "eepsocks is not running (pid {} in {} has exited without removing it)",
                ports.pid,
                p.display()
            );
        }
        Ok(ports)
    }
}

/// Remove the ports file (at exit); a missing one is fine.
pub fn remove(data_dir: &Path) {
    let p = path(data_dir);
    match std::fs::remove_file(&p) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("cannot remove {}: {e}", p.display()),
    }
    if ANNOUNCE.load(Ordering::Relaxed) {
        let _ = std::fs::remove_file(announce_path());
    }
}

/// Whether process `pid` exists. EPERM (another user's process, e.g. the service user's)
/// counts as alive: only ESRCH says it is gone.
pub(crate) fn alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks whether the process could be signalled.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn round_trip_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let ports = Ports {
            listeners: vec![PortListener {
                name: "main".into(),
                listen: "127.0.0.1:4447".parse().unwrap(),
                protocols: vec!["socks4a".into(), "socks5".into()],
                identity: "per-username".into(),
            }],
            status: None,
            automap: None,
            data_dir: None,
            sam: None,
            control: None,
            pid: std::process::id(),
        };
        // A data directory nothing made yet (`--transient`): created here, private.
        let data = dir.path().join("data");
        ports.write(&data).unwrap();
        assert_eq!(Ports::read(&data).unwrap(), ports);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&path(&data)), 0o644);
        assert_eq!(mode(&data.join("public")), 0o711);
        let text = std::fs::read_to_string(path(&data)).unwrap();
        assert!(text.contains("\"status\": null"), "{text}");
        remove(&data);
        let e = Ports::read(&data).unwrap_err().to_string();
        assert!(e.contains("not running"), "{e}");
    }

    #[test]
    fn stale_file_is_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let ports = Ports {
            listeners: vec![],
            status: None,
            automap: None,
            data_dir: None,
            sam: None,
            control: None,
            // Above the kernel's pid_max: no such process.
            pid: 0x7fff_fff0,
        };
        ports.write(dir.path()).unwrap();
        let e = Ports::read(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not running"), "{e}");
    }
}
