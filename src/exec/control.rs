//! The daemon's exec control socket: a pathname Unix socket (0600, in the announce
//! directory, named in the ports file) over which `eepsocks exec` hands the listening
//! sockets of its namespace and asks for an identity. The daemon serves them with the
//! automap DNS and transparent code on a context of their own, streams progress back and,
//! when the launcher says the command ended, the report.
//!
//! Protocol: JSON lines. The launcher's first line carries the six descriptors (see
//! `ns::FDS`): `{"identity": null | "NAME"}`. The daemon answers `{"event": "building",
//! "secs": N}` while the session's tunnels are built, then `{"event": "ready", "b32":
//! ...}` or `{"event": "error", "message": ...}`. The launcher's `{"op": "done"}` (or its
//! end of the socket closing) ends the exec: `{"event": "report", ...}` comes back.

use super::report::Report;
use crate::automap::server::{Dns, DnsLimits};
use crate::i2p::identity::{self, Mode, Pool, Template};
use crate::i2p::keyfile;
use crate::i2p::sam::{Keys, Session};
use crate::i2p::SamRouter;
use crate::naming::standins::{Network, StandIns, DEFAULT_QUARANTINE};
use crate::naming::Books;
use crate::proxy::context::ListenerContext;
use crate::proxy::stats::ListenerInfo;
use crate::proxy::tally::Tally;
use anyhow::{Context, Result};
use std::collections::HashSet;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines, Take};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, UdpSocket, UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Execs served at once; the next launcher hears so and exits.
pub const MAX_EXECS: usize = 32;
/// Launchers past their first line at once (the rest wait in the kernel's backlog).
const MAX_PENDING: usize = 8;
/// The first line must arrive within this, whole, in at most this many bytes.
const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
const MAX_LINE: usize = 4096;
/// What a launcher may send after its request ("done" is 14 bytes).
const LATER_LINES: usize = 4096;
/// How often "building" is repeated while the session's tunnels are built.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// The `listen` of the status entries of execs: kept across reloads.
pub const EXEC_LISTEN: &str = "exec";

/// What every exec gets from the daemon, fixed at start.
pub struct Host {
    pub books: Arc<Books>,
    pub template: Template,
    pub data_dir: PathBuf,
    pub handshake_timeout: Duration,
    pub stream_timeout: Duration,
    pub max_clients: usize,
    /// Where virtual addresses come from: the automap network, or its default.
    pub network: Network,
    pub ttl: u32,
    pub budget: Arc<Semaphore>,
    /// The status endpoint's list: an exec shows there while it runs.
    pub infos: Arc<RwLock<Vec<Arc<ListenerInfo>>>>,
}

struct State {
    host: Host,
    slots: Arc<Semaphore>,
    pending: Arc<Semaphore>,
    named_in_use: Mutex<HashSet<String>>,
    serial: AtomicU64,
    uid: u32,
}

/// Where the control socket of this process goes.
pub fn socket_path() -> PathBuf {
    crate::ports::announce_dir().join(format!("{}.sock", std::process::id()))
}

/// Bind the control socket at `path` (a stale one of a dead process replaced), 0600.
pub fn bind(path: &Path) -> Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        crate::fsutil::create_private_dir(dir)?;
        sweep(dir);
    }
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path)
        .with_context(|| format!("cannot create the exec control socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// Remove the control sockets of daemons that died without removing theirs (killed).
fn sweep(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let pid = p
            .extension()
            .filter(|x| *x == "sock")
            .and_then(|_| p.file_stem()?.to_str()?.parse::<u32>().ok());
        if pid.is_some_and(|pid| !crate::ports::alive(pid)) {
            let _ = std::fs::remove_file(&p);
        }
    }
}

/// Serve launchers until `stop`.
pub async fn serve_execs(l: UnixListener, host: Host, stop: CancellationToken) {
    let st = Arc::new(State {
        host,
        slots: Arc::new(Semaphore::new(MAX_EXECS)),
        pending: Arc::new(Semaphore::new(MAX_PENDING)),
        named_in_use: Mutex::default(),
        serial: AtomicU64::new(0),
        // SAFETY: a getter.
        uid: unsafe { libc::geteuid() },
    });
    loop {
        // A pending slot before accepting: past MAX_PENDING, launchers wait in the kernel's
        // backlog instead of being accepted and dropped (which they would read as an error).
        let pending = tokio::select! {
            _ = stop.cancelled() => return,
            p = st.pending.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let s = tokio::select! {
            _ = stop.cancelled() => return,
            a = l.accept() => match a {
                Ok((s, _)) => s,
                Err(e) => {
                    debug!("exec control: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (st, stop) = (st.clone(), stop.clone());
        tokio::spawn(async move {
            if let Err(e) = one(s, &st, pending, stop).await {
                debug!("exec control: {e:#}");
            }
        });
    }
}

async fn send(s: &mut (impl AsyncWriteExt + Unpin), v: serde_json::Value) -> Result<()> {
    let mut line = v.to_string();
    line.push('\n');
    s.write_all(line.as_bytes()).await?;
    Ok(())
}

/// The first line and its descriptors.
async fn request(s: &UnixStream) -> Result<(serde_json::Value, Vec<OwnedFd>)> {
    let mut buf = Vec::new();
    let mut fds = Vec::new();
    while !buf.contains(&b'\n') {
        if buf.len() >= MAX_LINE {
            anyhow::bail!("request longer than {MAX_LINE} bytes");
        }
        s.readable().await?;
        let mut chunk = [0u8; 1024];
        let got = s.try_io(tokio::io::Interest::READABLE, || {
            super::sys::recv_fds(
                s.as_raw_fd(),
                &mut chunk,
                super::ns::FDS,
                libc::MSG_DONTWAIT,
            )
        });
        match got {
            Ok((0, _)) => anyhow::bail!("closed before its request"),
            Ok((n, f)) => {
                buf.extend_from_slice(&chunk[..n]);
                fds.extend(f);
                if fds.len() > super::ns::FDS {
                    anyhow::bail!("too many descriptors");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let line = buf.split(|b| *b == b'\n').next().unwrap_or_default();
    Ok((serde_json::from_slice(line)?, fds))
}

/// A name for `--identity`: a key file name, nothing that walks the file system.
pub fn valid_identity(n: &str) -> bool {
    (1..=64).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// One launcher's connection: admit it, bring its identity up, serve its namespace until
/// it says done, then send the report.
async fn one(
    mut s: UnixStream,
    st: &State,
    pending: tokio::sync::OwnedSemaphorePermit,
    stop: CancellationToken,
) -> Result<()> {
    if !peer_is_ours(&s, st.uid)? {
        return Ok(());
    }
    let (req, fds) = match tokio::time::timeout(REQUEST_DEADLINE, request(&s)).await {
        Ok(r) => r?,
        Err(_) => anyhow::bail!("no request within {REQUEST_DEADLINE:?}"),
    };
    drop(pending);
    let Admitted { held, label, keys } = match admit(st, &req, fds.len())? {
        Ok(a) => a,
        Err(message) => {
            info!("exec refused: {message}");
            return send_error(&mut s, message).await;
        }
    };
    let host = &st.host;
    let ex = Exec::new(host, &label, keys);
    let (rd, mut wr) = s.into_split();
    // After its request a launcher sends one short line ("done"): whatever it sends is
    // bounded, and past the bound it reads as the launcher gone.
    let mut lines = BufReader::new(rd.take(LATER_LINES as u64)).lines();
    let t0 = tokio::time::Instant::now();
    let Some(b32) = build_tunnels(&ex.session, host, &mut wr, &mut lines, &stop).await? else {
        return Ok(());
    };
    info!(
        "exec {label}: identity {b32} up in {:.1} s",
        t0.elapsed().as_secs_f32()
    );
    let sockets = match namespace_sockets(fds) {
        Ok(x) => x,
        Err(e) => {
            close_session(&ex.session).await;
            let message = format!("the namespace's sockets are unusable: {e}");
            return send_error(&mut wr, message).await;
        }
    };
    let serving = ex.serve(sockets, host.ttl);
    let info = ex.listed(&label, &b32);
    if let Ok(mut l) = host.infos.write() {
        l.push(info.clone());
    }
    // A launcher gone before it heard "ready" ends the exec here, with the same clean-up.
    if send(&mut wr, serde_json::json!({"event": "ready", "b32": b32}))
        .await
        .is_ok()
    {
        // Until the launcher says done or goes away, or the daemon stops.
        tokio::select! {
            _ = async { while let Ok(Some(l)) = lines.next_line().await { if l.contains("done") { break; } } } => {}
            _ = stop.cancelled() => {}
        }
    }
    serving.cancel();
    if let Ok(mut l) = host.infos.write() {
        l.retain(|i| !Arc::ptr_eq(i, &info));
    }
    ex.finish(&label, &b32, &mut wr).await;
    // The slot and the name are free again only once the session is closed.
    drop(held);
    Ok(())
}

/// Only our own user (or root) may hand us a namespace to serve with our identities.
fn peer_is_ours(s: &UnixStream, uid: u32) -> Result<bool> {
    let cred = s.peer_cred()?;
    if cred.uid() != uid && cred.uid() != 0 {
        warn!(
            "exec control: refused a connection from uid {} (not ours)",
            cred.uid()
        );
        return Ok(false);
    }
    Ok(true)
}

async fn send_error(s: &mut (impl AsyncWriteExt + Unpin), message: String) -> Result<()> {
    send(s, serde_json::json!({"event": "error", "message": message})).await
}

/// An exec the daemon took on: what it holds until it ends, its label and its keys.
struct Admitted<'a> {
    held: Held<'a>,
    label: String,
    keys: Keys,
}

/// Freed when the exec ends: its slot among MAX_EXECS and its identity's name.
struct Held<'a> {
    _slot: tokio::sync::OwnedSemaphorePermit,
    _name: Option<NameGuard<'a>>,
}

/// Whether the daemon takes this request on; `Ok(Err(message))` is a refusal for the
/// launcher to show.
fn admit<'a>(
    st: &'a State,
    req: &serde_json::Value,
    fds: usize,
) -> Result<std::result::Result<Admitted<'a>, String>> {
    if fds != super::ns::FDS {
        return Ok(Err(format!(
            "expected {} descriptors, got {}",
            super::ns::FDS,
            fds
        )));
    }
    let Ok(slot) = st.slots.clone().try_acquire_owned() else {
        return Ok(Err(format!(
            "{MAX_EXECS} execs already run (the daemon's limit); wait for one to end"
        )));
    };
    let named = match req.get("identity").and_then(|v| v.as_str()) {
        None => None,
        Some(n) if valid_identity(n) => Some(n.to_string()),
        Some(_) => return Ok(Err("--identity: 1 to 64 letters, digits, '-' or '_'".into())),
    };
    let n = st.serial.fetch_add(1, Ordering::Relaxed) + 1;
    let Some(name) = named else {
        return Ok(Ok(Admitted {
            held: Held {
                _slot: slot,
                _name: None,
            },
            label: format!("exec-{n}"),
            keys: Keys::New {
                sig_type: st.host.template.sig_type,
                save: None,
            },
        }));
    };
    // Guards the name until this exec ends: routers refuse two sessions with one key.
    let fresh = st
        .named_in_use
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(name.clone());
    if !fresh {
        return Ok(Err(format!("identity {name} is in use by another exec")));
    }
    let guard = NameGuard(&st.named_in_use, name.clone());
    let keys = match named_keys(&st.host, &name)? {
        Ok(k) => k,
        Err(message) => return Ok(Err(message)),
    };
    Ok(Ok(Admitted {
        held: Held {
            _slot: slot,
            _name: Some(guard),
        },
        label: format!("exec-{name}"),
        keys,
    }))
}

/// A persistent identity's keys: loaded from its file, or made and saved there once up.
fn named_keys(host: &Host, name: &str) -> Result<std::result::Result<Keys, String>> {
    let p = host.data_dir.join("exec").join(format!("{name}.dat"));
    match keyfile::load(&p) {
        Ok(Some(k)) => Ok(Ok(Keys::Ready(k))),
        Ok(None) => {
            if let Some(dir) = p.parent() {
                crate::fsutil::create_private_dir(dir)?;
            }
            Ok(Ok(Keys::New {
                sig_type: host.template.sig_type,
                save: Some(p),
            }))
        }
        Err(e) => Ok(Err(format!("identity {name}: {e:#}"))),
    }
}

/// Wait for the session's tunnels, telling the launcher every PROGRESS_EVERY: the command
/// starts once its identity can reach anything. `None`: the exec ends here (the launcher
/// went away, the daemon stops, or the session failed and the launcher was told).
async fn build_tunnels(
    session: &Session,
    host: &Host,
    wr: &mut OwnedWriteHalf,
    lines: &mut Lines<BufReader<Take<OwnedReadHalf>>>,
    stop: &CancellationToken,
) -> Result<Option<String>> {
    let t0 = tokio::time::Instant::now();
    let up = {
        let mut wait = std::pin::pin!(tokio::time::timeout(
            host.template.create_timeout,
            session.wait_until_up()
        ));
        let mut tick = tokio::time::interval_at(t0 + PROGRESS_EVERY, PROGRESS_EVERY);
        loop {
            tokio::select! {
                r = &mut wait => break r,
                _ = tick.tick() => {
                    let secs = t0.elapsed().as_secs();
                    if send(wr, serde_json::json!({"event": "building", "secs": secs})).await.is_err() {
                        // The launcher is gone: nobody to build the identity for.
                        close_session(session).await;
                        return Ok(None);
                    }
                }
                // The launcher gave up (^C, killed).
                l = lines.next_line() => if !matches!(l, Ok(Some(_))) {
                    close_session(session).await;
                    return Ok(None);
                },
                _ = stop.cancelled() => {
                    close_session(session).await;
                    return Ok(None);
                }
            }
        }
    };
    let message = match up {
        Ok(Ok(_)) => {
            let b32 = session.keys().map(|k| k.destination().b32());
            return Ok(Some(b32.unwrap_or_default()));
        }
        Ok(Err(e)) => format!("the identity's session failed: {e}"),
        Err(_) => format!(
            "the router did not build the identity's tunnels within {} s (session_timeout)",
            host.template.create_timeout.as_secs()
        ),
    };
    close_session(session).await;
    send_error(wr, message).await?;
    Ok(None)
}

/// Closes an exec's session and waits, bounded, until it is gone: its name is free again
/// only then, and a next exec with the same --identity must not meet it at the router
/// (which refuses two sessions of one destination).
async fn close_session(session: &Session) {
    session.close();
    let _ = tokio::time::timeout(Duration::from_secs(10), session.closed()).await;
}

/// The namespace's listeners, in `ns::FDS` order: transparent TCP v4 and v6, then DNS
/// over UDP and TCP for v4, then for v6.
type Sockets = (
    Arc<TcpListener>,
    Arc<TcpListener>,
    Arc<UdpSocket>,
    Arc<TcpListener>,
    Arc<UdpSocket>,
    Arc<TcpListener>,
);

fn namespace_sockets(fds: Vec<OwnedFd>) -> std::io::Result<Sockets> {
    let mut it = fds.into_iter();
    let mut next = || it.next().expect("six descriptors");
    let tcp = |fd: OwnedFd| -> std::io::Result<Arc<TcpListener>> {
        let l = std::net::TcpListener::from(fd);
        l.set_nonblocking(true)?;
        Ok(Arc::new(TcpListener::from_std(l)?))
    };
    let udp = |fd: OwnedFd| -> std::io::Result<Arc<UdpSocket>> {
        let u = std::net::UdpSocket::from(fd);
        u.set_nonblocking(true)?;
        Ok(Arc::new(UdpSocket::from_std(u)?))
    };
    Ok((
        tcp(next())?,
        tcp(next())?,
        udp(next())?,
        tcp(next())?,
        udp(next())?,
        tcp(next())?,
    ))
}

/// One exec's identity and the context its namespace is served on: its own stand-ins
/// and tally, the daemon's budget.
struct Exec {
    session: Session,
    pool: Arc<Pool>,
    router: Arc<SamRouter>,
    tally: Arc<Tally>,
    ctx: Arc<ListenerContext>,
}

impl Exec {
    fn new(host: &Host, label: &str, keys: Keys) -> Exec {
        let session = identity::fixed_session(label, keys, &host.template, None);
        let pool = Arc::new(Pool::new(
            label,
            host.template.clone(),
            Mode::Fixed(session.clone()),
        ));
        let router = Arc::new(SamRouter {
            pool: pool.clone(),
            book: host.books.clone(),
            udp: None,
            router_timeout: Some(crate::config::router_connect_timeout(
                host.stream_timeout.as_secs(),
            )),
        });
        let tally = Arc::new(Tally::default());
        let mut ctx = ListenerContext::new(
            host.handshake_timeout,
            host.stream_timeout,
            host.max_clients,
        );
        ctx.budget = host.budget.clone();
        ctx.stand_ins = Arc::new(StandIns::new(host.network, DEFAULT_QUARANTINE));
        ctx.exec = Some(tally.clone());
        Exec {
            session,
            pool,
            router,
            tally,
            ctx: Arc::new(ctx),
        }
    }

    /// Serve the namespace's transparent and DNS sockets until the returned token is
    /// cancelled.
    fn serve(&self, (t4, t6, u4, d4, u6, d6): Sockets, ttl: u32) -> CancellationToken {
        let serving = CancellationToken::new();
        for t in [t4, t6] {
            tokio::spawn(crate::proxy::server::serve_transparent(
                t,
                self.router.clone(),
                self.ctx.clone(),
                serving.clone().cancelled_owned(),
            ));
        }
        let dns = Dns::new(
            self.router.clone(),
            self.ctx.clone(),
            ttl,
            Arc::new(DnsLimits::default()),
        );
        for (u, t) in [(u4, d4), (u6, d6)] {
            tokio::spawn(dns.clone().serve_udp(u, serving.clone().cancelled_owned()));
            tokio::spawn(dns.clone().serve_tcp(t, serving.clone().cancelled_owned()));
        }
        serving
    }

    /// Its entry on the status endpoint while it runs.
    fn listed(&self, label: &str, b32: &str) -> Arc<ListenerInfo> {
        Arc::new(ListenerInfo {
            name: label.to_string(),
            listen: EXEC_LISTEN.to_string(),
            identity: {
                let b = b32.to_string();
                Box::new(move || b.clone())
            },
            stats: self.ctx.stats.clone(),
            session: {
                let p = self.pool.clone();
                Box::new(move || p.session_view())
            },
            per_user_identities: Box::new(|| 0),
        })
    }

    /// Close the session, then send the report.
    async fn finish(self, label: &str, b32: &str, wr: &mut OwnedWriteHalf) {
        let report = self.tally.report(b32, &self.ctx.stats);
        // The session is gone before the launcher hears the end.
        close_session(&self.session).await;
        info!(
            "exec {label} ended: {} I2P streams, {} clearnet connections and {} non-I2P names refused",
            report.streams, report.clearnet, report.names
        );
        let _ = send(wr, serde_json::json!({"event": "report", "report": report})).await;
    }
}

struct NameGuard<'a>(&'a Mutex<HashSet<String>>, String);

impl Drop for NameGuard<'_> {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.1);
    }
}

impl Report {
    pub fn empty(b32: &str) -> Report {
        Report {
            b32: b32.to_string(),
            ..Report::default()
        }
    }
}
