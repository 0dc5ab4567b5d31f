//! A SAM STREAM session kept alive by a task that owns its control connection: it creates
//! the session, answers the router's PINGs, runs NAMING LOOKUPs (emissary only answers
//! them inside a session), and recreates the session with the same keys, with backoff,
//! when the router goes away. Streams open their own connections, from a small warm pool.

use super::caps::{self, ENC_CLASSIC, ENC_KEY, ENC_PQ};
use super::error::SamError;
use super::wire::{ReplyLine, SamSocket};
use crate::destination::{Destination, PrivateKeys};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// What a session needs to (re)create itself.
#[derive(Clone)]
pub struct SessionConfig {
    pub sam_addr: String,
    /// Nickname prefix for the session id; the pid and a process-wide counter are appended
    /// on each (re)creation, so no two sessions of this process ever share an id.
    pub name: String,
    pub keys: Keys,
    /// `key=value` options passed to SESSION CREATE (i2cp and tunnel options). Without
    /// `i2cp.leaseSetEncType` the session gets `6,4` (post-quantum) where the bridge is
    /// known to have ML-KEM, `4` elsewhere (see `caps`); a given one is sent unchanged.
    pub options: Vec<(String, String)>,
    /// Keep HELLO'd sockets ready for the next streams. Off for sessions that may sit idle
    /// in numbers (per-user identities), where descriptors matter more than a round trip.
    pub warm_sockets: bool,
    /// `Some(port)`: a repliable-datagram session (STYLE=DATAGRAM2 where the bridge has it,
    /// else DATAGRAM) whose datagrams the router forwards to 127.0.0.1:port. `None`: a
    /// STREAM session.
    pub datagram_port: Option<u16>,
    /// How long the router may take to answer SESSION CREATE (it builds tunnels first:
    /// Java I2P can take minutes). Past it the attempt is dropped and retried with backoff.
    pub create_timeout: Duration,
    /// Created for the client that asked for it (a per-user identity, a UDP association):
    /// that client waits while it is created, and its progress is logged at debug only.
    /// Otherwise (a listener's own identity) streams asked for while it is being created
    /// fail at once with "not ready", and progress is logged at info.
    pub on_demand: bool,
    /// A STREAM session whose identity also carries UDP associations: where the bridge has
    /// PRIMARY (`caps`), the session is created as one, with a STREAM subsession for the
    /// streams and a datagram subsession forwarded to this socket (see [`SharedDatagrams`]).
    pub shared_datagrams: Option<Arc<SharedDatagrams>>,
}

/// An identity's datagram subsession (SAM 3.3 PRIMARY), lent to one UDP association at a
/// time: the association's datagrams then come from the identity's own destination and
/// tunnels, with no second session. One at a time because a router cannot tell two
/// associations apart: emissary 0.4.0 sends every datagram with ports 0 and delivers by
/// destination port, so only one datagram subsession (listening on port 0) ever receives,
/// and it has no SESSION REMOVE. Further associations meanwhile get sessions of their own.
pub struct SharedDatagrams {
    /// Where the router forwards the subsession's datagrams, and its port: bound when the
    /// first PRIMARY session is made (no descriptor on bridges without PRIMARY), then kept
    /// across session re-creations (the new subsession forwards to the same port).
    inbound: std::sync::OnceLock<(Arc<tokio::net::UdpSocket>, u16)>,
    /// The live subsession's id and style ("DATAGRAM" or "DATAGRAM2"); None while there is
    /// none (session down, or the router refused the subsession).
    sub: Mutex<Option<(String, &'static str)>>,
    /// The one association that holds the subsession.
    pub(super) slot: Arc<tokio::sync::Semaphore>,
}

impl SharedDatagrams {
    pub fn new() -> Arc<SharedDatagrams> {
        Arc::new(SharedDatagrams {
            inbound: std::sync::OnceLock::new(),
            sub: Mutex::new(None),
            slot: Arc::new(tokio::sync::Semaphore::new(1)),
        })
    }

    /// The subsession's socket, bound on first use.
    async fn socket(&self) -> std::io::Result<u16> {
        if let Some((_, port)) = self.inbound.get() {
            return Ok(*port);
        }
        let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
        let port = s.local_addr()?.port();
        // Only the session's own task binds it, so there is no race to lose.
        Ok(self.inbound.get_or_init(|| (Arc::new(s), port)).1)
    }

    /// The socket datagrams arrive on, once bound.
    pub(super) fn inbound(&self) -> Option<Arc<tokio::net::UdpSocket>> {
        self.inbound.get().map(|(s, _)| s.clone())
    }

    /// The live datagram subsession's id and style, if any.
    pub fn sub(&self) -> Option<(String, &'static str)> {
        self.sub.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_sub(&self, sub: Option<(String, &'static str)>) {
        *self.sub.lock().unwrap_or_else(|e| e.into_inner()) = sub;
    }
}

/// The keys a session is created with.
#[derive(Clone)]
pub enum Keys {
    Ready(PrivateKeys),
    /// New keys from the router (`DEST GENERATE`), asked for by the session's task under
    /// its deadlines and backoff, so a router that does not answer never holds up the
    /// listener; written to `save` (a new 0600 file, never replaced) when given.
    New {
        sig_type: u16,
        save: Option<std::path::PathBuf>,
    },
}

impl From<PrivateKeys> for Keys {
    fn from(k: PrivateKeys) -> Keys {
        Keys::Ready(k)
    }
}

/// The default of `SessionConfig::create_timeout` (`session_timeout` in the config).
pub const CREATE_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionState {
    /// The first attempt is under way, since then (keys, SESSION CREATE).
    Starting { since: std::time::SystemTime },
    /// The session exists under this id.
    Up(String),
    /// The last attempt failed; retrying.
    Down(String),
    /// Closed for good (`close()`, or every handle dropped); the router has forgotten it.
    Closed,
}

enum Cmd {
    Lookup(String, oneshot::Sender<Result<ReplyLine, SamError>>),
}

/// Handle to a SAM STREAM session kept alive by a background task.
#[derive(Clone)]
pub struct Session {
    sam_addr: String,
    state: watch::Receiver<SessionState>,
    cmds: mpsc::Sender<Cmd>,
    warm: Arc<WarmPool>,
    stop: CancellationToken,
    /// The keys, once known (at once, or when the router generated them).
    keys: Arc<std::sync::OnceLock<PrivateKeys>>,
    on_demand: bool,
    /// How the live session was created (see [`Session::created_with`]).
    created: Arc<Mutex<Option<Created>>>,
    shared_datagrams: Option<Arc<SharedDatagrams>>,
}

/// What the router accepted for a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    /// The `i2cp.leaseSetEncType` sent.
    pub enc_types: String,
    /// It offers an ML-KEM hybrid (5, 6 or 7).
    pub post_quantum: bool,
    /// "STREAM", "DATAGRAM", "DATAGRAM2" or "PRIMARY" (then with a STREAM subsession, and
    /// a datagram one when `datagram_sub` says so).
    pub style: &'static str,
    /// The style of the identity's datagram subsession (PRIMARY only), if the router took it.
    pub datagram_sub: Option<&'static str>,
}

/// SAM connections that already said HELLO, so opening a stream costs one round trip
/// (STREAM CONNECT) instead of three (TCP connect, HELLO, STREAM CONNECT).
#[derive(Default)]
struct WarmPool {
    conns: Mutex<Vec<(SamSocket, Instant)>>,
    filling: AtomicUsize,
    /// `SessionConfig::warm_sockets`.
    on: bool,
}

/// Warm connections kept ready per session.
const WARM: usize = 2;
/// Older ones are dropped rather than trusted: the router may have timed them out.
const WARM_MAX_AGE: Duration = Duration::from_secs(30);
/// A warm connection that fails this soon after STREAM CONNECT was closed by the router
/// before it read the line (an idle timeout), not refused: the stream is tried again.
const WARM_RACE: Duration = Duration::from_millis(100);

impl Session {
    /// Start the task that creates and keeps the session. Returns at once; use
    /// [`Session::usable_id`] to wait for the router.
    pub fn spawn(cfg: SessionConfig) -> Session {
        Session::spawn_after(cfg, None)
    }

    /// Like `spawn`, but first close `previous` and wait until the router has dropped it:
    /// routers refuse a second session with the same keys (i2pd: DUPLICATED_DEST), so a
    /// session replacing another of the same identity (new tunnel options) waits for it.
    pub fn spawn_after(cfg: SessionConfig, previous: Option<Session>) -> Session {
        let (state_tx, state) = watch::channel(SessionState::Starting {
            since: std::time::SystemTime::now(),
        });
        let (cmds_tx, cmds) = mpsc::channel(64);
        let sam_addr = cfg.sam_addr.clone();
        let shared_datagrams = cfg.shared_datagrams.clone();
        let warm_sockets = cfg.warm_sockets;
        let on_demand = cfg.on_demand;
        let stop = CancellationToken::new();
        let task_stop = stop.clone();
        let keys = Arc::new(std::sync::OnceLock::new());
        if let Keys::Ready(k) = &cfg.keys {
            let _ = keys.set(k.clone());
        }
        let task_keys = keys.clone();
        let created = Arc::new(Mutex::new(None));
        let task_created = created.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = task_stop.cancelled() => {}
                _ = async {
                    let replacing = previous.is_some();
                    if let Some(p) = previous {
                        p.close();
                        p.closed().await;
                    }
                    keep_session(cfg, &state_tx, cmds, replacing, &task_keys, &task_created).await
                } => {}
            }
            // Dropping the control connection (inside the future above) ends the session.
            let _ = state_tx.send(SessionState::Closed);
        });
        Session {
            sam_addr,
            state,
            cmds: cmds_tx,
            warm: Arc::new(WarmPool {
                on: warm_sockets,
                ..WarmPool::default()
            }),
            stop,
            keys,
            on_demand,
            created,
            shared_datagrams,
        }
    }

    /// The identity's datagram subsession, when this session has one up now.
    pub fn shared_datagrams(&self) -> Option<&Arc<SharedDatagrams>> {
        self.shared_datagrams
            .as_ref()
            .filter(|d| d.sub().is_some() && matches!(self.state(), SessionState::Up(_)))
    }

    /// What the router accepted the last time it created this session (None: never yet).
    pub fn created_with(&self) -> Option<Created> {
        self.created
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The session's keys, once known (generated keys: after the router made them).
    pub fn keys(&self) -> Option<&PrivateKeys> {
        self.keys.get()
    }

    /// End the session now, for every holder of this handle: streams it carries end with
    /// it on the router's side. For identities a reload replaces.
    pub fn close(&self) {
        self.stop.cancel();
    }

    /// Resolves once the session is closed and its control connection dropped.
    pub async fn closed(&self) {
        let mut rx = self.state.clone();
        let _ = rx.wait_for(|s| *s == SessionState::Closed).await;
    }

    pub fn state(&self) -> SessionState {
        self.state.borrow().clone()
    }

    /// Wait until the session is up; returns its id. While the first attempt is under way
    /// this waits; once an attempt has failed or the session was lost, it fails at once,
    /// so clients get a prompt failure reply instead of hanging while the router is away.
    pub async fn usable_id(&self) -> Result<String, SamError> {
        let mut rx = self.state.clone();
        loop {
            match &*rx.borrow_and_update() {
                SessionState::Up(id) => return Ok(id.clone()),
                SessionState::Down(why) => return Err(SamError::Down(why.clone())),
                SessionState::Closed => return Err(SamError::NoSession),
                SessionState::Starting { .. } => {}
            }
            if rx.changed().await.is_err() {
                return Err(SamError::NoSession);
            }
        }
    }

    /// Wait until the session is up, however many attempts it takes (start-up).
    pub async fn wait_until_up(&self) -> Result<String, SamError> {
        let mut rx = self.state.clone();
        loop {
            match &*rx.borrow_and_update() {
                SessionState::Up(id) => return Ok(id.clone()),
                SessionState::Closed => return Err(SamError::NoSession),
                _ => {}
            }
            if rx.changed().await.is_err() {
                return Err(SamError::NoSession);
            }
        }
    }

    /// The session id for a client's stream or lookup: `usable_id`, except that a session
    /// that is not `on_demand` fails at once while it is first created, so clients of a
    /// listener whose router is still building tunnels get a prompt "not ready" answer.
    pub async fn id_for_client(&self) -> Result<String, SamError> {
        if !self.on_demand {
            if let SessionState::Starting { since } = self.state() {
                let secs = since.elapsed().map(|d| d.as_secs()).unwrap_or(0);
                return Err(SamError::NotReady(format!(
                    "the router at {} is still creating this identity's session (building \
                     tunnels), {secs} s so far",
                    self.sam_addr
                )));
            }
        }
        self.usable_id().await
    }

    /// `NAMING LOOKUP` inside the session; returns the full destination.
    pub async fn lookup(&self, name: &str) -> Result<Destination, SamError> {
        self.id_for_client().await?;
        let (tx, rx) = oneshot::channel();
        self.cmds
            .send(Cmd::Lookup(name.to_string(), tx))
            .await
            .map_err(|_| SamError::NoSession)?;
        let r = rx.await.map_err(|_| SamError::NoSession)??;
        r.expect("NAMING", "REPLY")?;
        r.ok()?;
        let v = r
            .get("VALUE")
            .ok_or_else(|| SamError::Protocol("NAMING REPLY without VALUE".into()))?;
        Destination::from_base64(v)
            .map_err(|e| SamError::Protocol(format!("router returned a bad destination: {e}")))
    }

    /// Open a stream: a new SAM connection, `STREAM CONNECT`, and on `RESULT=OK` the socket
    /// (plus any bytes that arrived behind the status line). `router_timeout` is passed to
    /// the router (`i2p.streaming.connectTimeout`, which Java I2P honours; i2pd and emissary
    /// ignore it): set inside the client's own deadline, the router's verdict on a dead peer
    /// (CANT_REACH_PEER) reaches the client before that deadline turns it into "timed out".
    pub async fn connect(
        &self,
        dest: &str,
        port: u16,
        router_timeout: Option<Duration>,
    ) -> Result<(TcpStream, Vec<u8>), SamError> {
        let id = self.id_for_client().await?;
        let warm = self.take_warm();
        self.refill();
        if let Some(c) = warm {
            let t0 = Instant::now();
            match stream_connect(c, &id, dest, port, router_timeout).await {
                // A warm connection the router closed just as we used it: a fresh one.
                Err(SamError::Io(_)) if t0.elapsed() < WARM_RACE => {}
                Err(SamError::Io(e)) => return Err(self.closed_stream(e).await),
                other => return other,
            }
        }
        let c = SamSocket::connect(&self.sam_addr).await?;
        match stream_connect(c, &id, dest, port, router_timeout).await {
            Err(SamError::Io(e)) => Err(self.closed_stream(e).await),
            other => other,
        }
    }

    /// The router closed a STREAM CONNECT socket without a STREAM STATUS (emissary does
    /// when it finds no LeaseSet). If the bridge still answers and the session is up, the
    /// destination was unreachable; otherwise the router is.
    async fn closed_stream(&self, e: std::io::Error) -> SamError {
        // Bounded well inside the client's deadline: a wedged router must not turn
        // "router down" into "timed out".
        let probe = SamSocket::connect(&self.sam_addr);
        let bridge_up = matches!(
            tokio::time::timeout(Duration::from_secs(2), probe).await,
            Ok(Ok(_))
        );
        if bridge_up && matches!(self.state(), SessionState::Up(_)) {
            SamError::Unreachable(
                "the router closed the stream without an answer (no LeaseSet found for \
                 the destination: it is offline, or the address is wrong)"
                    .into(),
            )
        } else {
            SamError::Io(e)
        }
    }

    fn take_warm(&self) -> Option<SamSocket> {
        let mut conns = self.warm.conns.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((c, born)) = conns.pop() {
            if born.elapsed() < WARM_MAX_AGE && !c.is_closed() {
                return Some(c);
            }
        }
        None
    }

    /// Top the warm pool up in the background.
    fn refill(&self) {
        if !self.warm.on {
            return;
        }
        let have = self.warm.conns.lock().map(|c| c.len()).unwrap_or(WARM);
        let filling = self.warm.filling.load(Ordering::Relaxed);
        for _ in (have + filling)..WARM {
            self.warm.filling.fetch_add(1, Ordering::Relaxed);
            let pool = Arc::downgrade(&self.warm);
            let addr = self.sam_addr.clone();
            tokio::spawn(async move {
                let c = SamSocket::connect(&addr).await;
                if let Some(pool) = pool.upgrade() {
                    if let Ok(c) = c {
                        if let Ok(mut v) = pool.conns.lock() {
                            v.push((c, Instant::now()));
                        }
                    }
                    pool.filling.fetch_sub(1, Ordering::Relaxed);
                }
            });
        }
    }
}

async fn stream_connect(
    mut c: SamSocket,
    id: &str,
    dest: &str,
    port: u16,
    connect_timeout: Option<Duration>,
) -> Result<(TcpStream, Vec<u8>), SamError> {
    let mut line = format!("STREAM CONNECT ID={id} DESTINATION={dest} SILENT=false");
    // Ports came with SAM 3.2; older bridges reject unknown keys.
    if port != 0 && c.minor >= 2 {
        let _ = write!(line, " TO_PORT={port}");
    }
    if let Some(t) = connect_timeout {
        let _ = write!(line, " i2p.streaming.connectTimeout={}", t.as_millis());
    }
    let r = c.command(&line).await?;
    r.expect("STREAM", "STATUS")?;
    r.ok()?;
    Ok(c.into_stream())
}

/// Session ids handed out by this process (see `SessionConfig::name`).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// How long a NAMING LOOKUP may take (a b32 needs a LeaseSet lookup on the network).
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A session up this long counts as working again: the next loss is retried at once.
const STABLE: Duration = Duration::from_secs(10);

/// 1, 2, 4 ... 30 s before attempt `n` (n >= 1).
fn backoff(n: u32) -> Duration {
    Duration::from_millis(500u64 << n.min(6)).min(Duration::from_secs(30))
}

/// Fail lookups that queued while the router was away instead of leaving them hanging.
fn fail_queued(cmds: &mut mpsc::Receiver<Cmd>) {
    while let Ok(Cmd::Lookup(_, tx)) = cmds.try_recv() {
        let _ = tx.send(Err(SamError::NoSession));
    }
}

async fn keep_session(
    cfg: SessionConfig,
    state: &watch::Sender<SessionState>,
    mut cmds: mpsc::Receiver<Cmd>,
    replacing: bool,
    keys: &std::sync::OnceLock<PrivateKeys>,
    created_with: &Mutex<Option<Created>>,
) {
    let mut attempt: u32 = 0;
    loop {
        let seq = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{}-{seq}", cfg.name, std::process::id());
        let created = match obtain_keys(&cfg, keys).await {
            Ok(k) => create(&cfg, &id, k).await,
            Err(e) => Err(e),
        };
        match created {
            Ok((conn, how)) => {
                // Streams go through the STREAM subsession of a PRIMARY session.
                let stream_id = if how.style == "PRIMARY" {
                    format!("{id}-s")
                } else {
                    id.clone()
                };
                *created_with.lock().unwrap_or_else(|e| e.into_inner()) = Some(how);
                let up_since = tokio::time::Instant::now();
                let _ = state.send(SessionState::Up(stream_id));
                // A datagram session per UDP association: one line each would let a
                // client that opens them in a loop write the log.
                if cfg.datagram_port.is_some() {
                    debug!(session = %id, "SAM datagram session up at {}", cfg.sam_addr);
                } else {
                    info!(session = %id, "SAM session up at {}", cfg.sam_addr);
                }
                let err = serve_commands(conn, &mut cmds).await;
                if let Some(d) = &cfg.shared_datagrams {
                    d.set_sub(None);
                }
                if state.is_closed() && cmds.is_closed() {
                    return;
                }
                let _ = state.send(SessionState::Down(err.to_string()));
                attempt = after_loss(&id, &err, up_since, attempt, &mut cmds).await;
            }
            // The session this one replaces (same keys) may linger on the router for a
            // moment after its control connection closed: retry soon, still Starting, so
            // clients wait instead of failing.
            Err(e) if e.result() == Some("DUPLICATED_DEST") && attempt < 10 && replacing => {
                attempt += 1;
                debug!(
                    "SAM session at {}: {e}; the old one is still closing",
                    cfg.sam_addr
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => {
                attempt += 1;
                not_created(&cfg, &e, attempt, state, &mut cmds).await;
            }
        }
        if state.is_closed() && cmds.is_closed() {
            return;
        }
    }
}

/// A session that was up is lost with `err`. Only one that stayed up resets the backoff:
/// a router that accepts every session and drops it at once must not get one SESSION
/// CREATE per round trip. The attempt count from here.
async fn after_loss(
    id: &str,
    err: &SamError,
    up_since: tokio::time::Instant,
    attempt: u32,
    cmds: &mut mpsc::Receiver<Cmd>,
) -> u32 {
    if up_since.elapsed() >= STABLE {
        warn!(session = %id, "SAM session lost: {err}; recreating");
        return 0;
    }
    let attempt = attempt + 1;
    let wait = backoff(attempt);
    warn!(
        session = %id,
        "SAM session lost {:.1} s after it came up: {err}; retrying in {:.1} s",
        up_since.elapsed().as_secs_f32(),
        wait.as_secs_f32()
    );
    fail_queued(cmds);
    tokio::time::sleep(wait).await;
    attempt
}

/// SESSION CREATE failed with `e` (try `attempt`): the state clients see, then the backoff.
async fn not_created(
    cfg: &SessionConfig,
    e: &SamError,
    attempt: u32,
    state: &watch::Sender<SessionState>,
    cmds: &mut mpsc::Receiver<Cmd>,
) {
    let wait = backoff(attempt);
    warn!(
        "SAM session at {} not created: {e}; retrying in {:.1} s",
        cfg.sam_addr,
        wait.as_secs_f32()
    );
    // A router that answered nothing to SESSION CREATE works but is slow to build
    // tunnels: its clients hear "not ready", not "unavailable", while it is tried again.
    let next = match (e, state.borrow().clone()) {
        (SamError::Deadline(_), SessionState::Starting { since }) => {
            SessionState::Starting { since }
        }
        _ => SessionState::Down(e.to_string()),
    };
    let _ = state.send(next);
    fail_queued(cmds);
    tokio::time::sleep(wait).await;
}

/// The session's keys: known already, or new ones from the router, saved if asked.
async fn obtain_keys<'k>(
    cfg: &SessionConfig,
    keys: &'k std::sync::OnceLock<PrivateKeys>,
) -> Result<&'k PrivateKeys, SamError> {
    if let Some(k) = keys.get() {
        return Ok(k);
    }
    let Keys::New { sig_type, save } = &cfg.keys else {
        unreachable!("ready keys are set at spawn");
    };
    // Written meanwhile (by the session this one replaces, or another process): use it,
    // rather than make keys that cannot be saved on every retry.
    if let Some(path) = save {
        if let Ok(raw) = std::fs::read(path) {
            let k = PrivateKeys::from_bytes(raw)
                .map_err(|e| SamError::Protocol(format!("key file {}: {e}", path.display())))?;
            return Ok(keys.get_or_init(|| k));
        }
    }
    let mut c = SamSocket::connect(&cfg.sam_addr).await?;
    let new = match tokio::time::timeout(
        KEYGEN_TIMEOUT,
        super::commands::generate_keys_on(&mut c, *sig_type),
    )
    .await
    {
        Ok(r) => r?,
        Err(_) => {
            return Err(SamError::Deadline(format!(
                "DEST GENERATE at {} unanswered for {} s",
                cfg.sam_addr,
                KEYGEN_TIMEOUT.as_secs()
            )))
        }
    };
    if let Some(path) = save {
        crate::fsutil::write_new(path, new.as_bytes()).map_err(|e| {
            SamError::Protocol(format!(
                "cannot create key file {}: {e} (does it exist already?)",
                path.display()
            ))
        })?;
        info!("new identity saved to {}", path.display());
    }
    Ok(keys.get_or_init(|| new))
}

/// How long `DEST GENERATE` may take (Java I2P makes ElGamal keys: a second or so).
const KEYGEN_TIMEOUT: Duration = Duration::from_secs(30);
/// The first progress line while the router builds a session's tunnels, then one per
/// `CREATE_NOTE_EVERY`.
const CREATE_FIRST_NOTE: Duration = Duration::from_secs(15);
const CREATE_NOTE_EVERY: Duration = Duration::from_secs(30);

/// SESSION CREATE, choosing what the config leaves open (the encryption types, the datagram
/// style) by what the bridge has (`caps`). A router that refuses ML-KEM or DATAGRAM2 for
/// all that is asked again at once without it, and the bridge is marked so.
async fn create(
    cfg: &SessionConfig,
    id: &str,
    keys: &PrivateKeys,
) -> Result<(SamSocket, Created), SamError> {
    let user_enc = cfg
        .options
        .iter()
        .find(|(k, _)| k == ENC_KEY)
        .map(|(_, v)| v.clone());
    let mut tries = 0;
    loop {
        tries += 1;
        let c = SamSocket::connect(&cfg.sam_addr).await?;
        // A bridge asked for the first time is probed on a connection of its own while
        // this one waits (at most 10 s; bridges keep an idle command connection far longer).
        let caps = if user_enc.is_none()
            || cfg.datagram_port.is_some()
            || cfg.shared_datagrams.is_some()
        {
            Some(caps::for_bridge(&cfg.sam_addr, c.minor).await)
        } else {
            None
        };
        let enc = match (&user_enc, caps) {
            (Some(v), _) => v.clone(),
            (None, Some(c)) if c.ml_kem => ENC_PQ.to_string(),
            (None, _) => ENC_CLASSIC.to_string(),
        };
        let dgram = |c: Option<caps::Caps>| {
            if c.is_some_and(|c| c.datagram2) {
                "DATAGRAM2"
            } else {
                "DATAGRAM"
            }
        };
        let style = match (cfg.datagram_port, caps) {
            (None, Some(c)) if c.primary && cfg.shared_datagrams.is_some() => "PRIMARY",
            (None, _) => "STREAM",
            (Some(_), c) => dgram(c),
        };
        let mut how = Created {
            post_quantum: caps::has_ml_kem(&enc),
            enc_types: enc,
            style,
            datagram_sub: None,
        };
        let made = match create_once(c, cfg, id, keys, &how).await {
            // SESSION ADD is bounded as SESSION CREATE is: a router that never answers
            // must not leave the identity "creating" for good.
            Ok(c) if style == "PRIMARY" => {
                let add = add_subsessions(c, cfg, id, dgram(caps));
                match tokio::time::timeout(cfg.create_timeout, add).await {
                    Ok(r) => r,
                    Err(_) => Err(SamError::Deadline(format!(
                        "SESSION ADD at {} unanswered for {} s (session_timeout)",
                        cfg.sam_addr,
                        cfg.create_timeout.as_secs()
                    ))),
                }
            }
            other => other.map(|c| (c, None)),
        };
        match made {
            Ok((c, sub)) => {
                how.datagram_sub = sub;
                return Ok((c, how));
            }
            Err(SamError::Refused { result, message }) if result == "I2P_ERROR" && tries < 3 => {
                let msg = message.clone().unwrap_or_default();
                // Only our own choices are taken back; a user's setting stays as given.
                if user_enc.is_none() && how.post_quantum && caps::about_encryption(&msg) {
                    caps::refused_ml_kem(&cfg.sam_addr, &msg);
                } else if how.style == "PRIMARY" {
                    caps::refused_primary(&cfg.sam_addr, &msg);
                } else if how.style == "DATAGRAM2" && caps::about_style(&msg) {
                    caps::refused_datagram2(&cfg.sam_addr, &msg);
                } else {
                    return Err(SamError::Refused { result, message });
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// On a PRIMARY session's control connection: the STREAM subsession (`<id>-s`, which
/// every stream names), then the datagram one (`<id>-d`, forwarded to the identity's
/// shared socket). A refused STREAM subsession fails the session (it is then made without
/// PRIMARY); a refused datagram one only leaves associations to sessions of their own.
async fn add_subsessions(
    mut c: SamSocket,
    cfg: &SessionConfig,
    id: &str,
    style: &'static str,
) -> Result<(SamSocket, Option<&'static str>), SamError> {
    let r = c
        .command(&format!("SESSION ADD STYLE=STREAM ID={id}-s"))
        .await?;
    r.expect("SESSION", "STATUS")?;
    r.ok()?;
    let Some(shared) = &cfg.shared_datagrams else {
        return Ok((c, None));
    };
    let sub = format!("{id}-d");
    let port = match shared.socket().await {
        Ok(p) => p,
        Err(e) => {
            warn!("no socket for the datagram subsession ({e}): UDP associations get sessions of their own");
            return Ok((c, None));
        }
    };
    // HOST as for a datagram session (i2pd forwards nothing without it).
    let r = c
        .command(&format!(
            "SESSION ADD STYLE={style} ID={sub} PORT={port} HOST=127.0.0.1"
        ))
        .await?;
    r.expect("SESSION", "STATUS")?;
    match r.ok() {
        Ok(()) => {
            shared.set_sub(Some((sub, style)));
            Ok((c, Some(style)))
        }
        Err(e) => {
            info!(
                session = id,
                "the router at {} refused a {style} subsession ({e}): this identity's UDP \
                 associations get sessions of their own",
                cfg.sam_addr
            );
            shared.set_sub(None);
            Ok((c, None))
        }
    }
}

async fn create_once(
    mut c: SamSocket,
    cfg: &SessionConfig,
    id: &str,
    keys: &PrivateKeys,
    how: &Created,
) -> Result<SamSocket, SamError> {
    // HOST is given although it is the default: i2pd forwards nothing without it (#1375).
    let style = match cfg.datagram_port {
        None => how.style.to_string(),
        Some(port) => format!("{} PORT={port} HOST=127.0.0.1", how.style),
    };
    let mut line = format!(
        "SESSION CREATE STYLE={style} ID={id} DESTINATION={}",
        keys.to_base64()
    );
    for (k, v) in &cfg.options {
        if k != ENC_KEY {
            let _ = write!(line, " {k}={v}");
        }
    }
    let _ = write!(line, " {ENC_KEY}={}", how.enc_types);
    debug!(session = id, "creating SAM session");
    c.send_line(&line).await?;
    // The router answers once it has built tunnels: seconds on i2pd, minutes on a Java
    // I2P that has just started. Bounded, and said while waiting.
    let started = tokio::time::Instant::now();
    let deadline = started + cfg.create_timeout;
    let mut note = started + CREATE_FIRST_NOTE;
    loop {
        match tokio::time::timeout_at(note.min(deadline), c.read_line()).await {
            Ok(line) => {
                let line = line?;
                if answer_unsolicited(&mut c, &line).await? {
                    continue;
                }
                let r = ReplyLine::parse(&line)?;
                r.expect("SESSION", "STATUS")?;
                r.ok()?;
                return Ok(c);
            }
            Err(_) if tokio::time::Instant::now() >= deadline => {
                return Err(SamError::Deadline(format!(
                    "SESSION CREATE at {} unanswered for {} s (session_timeout); the \
                     router may be short of peers to build tunnels with",
                    cfg.sam_addr,
                    cfg.create_timeout.as_secs()
                )));
            }
            Err(_) => {
                let secs = started.elapsed().as_secs();
                let limit = cfg.create_timeout.as_secs();
                if cfg.on_demand {
                    debug!(session = id, "waiting for the router to create the session ({secs} s so far, at most {limit} s)");
                } else {
                    info!(
                        session = id,
                        "waiting for the router at {} to build tunnels for the session, {secs} \
                         s so far (gives up at {limit} s, session_timeout)",
                        cfg.sam_addr
                    );
                }
                note += CREATE_NOTE_EVERY;
            }
        }
    }
}

/// Serve lookups and PINGs on the control connection until it fails.
async fn serve_commands(mut c: SamSocket, cmds: &mut mpsc::Receiver<Cmd>) -> SamError {
    loop {
        tokio::select! {
            cmd = cmds.recv() => {
                let Some(Cmd::Lookup(name, tx)) = cmd else {
                    return SamError::NoSession;
                };
                // Its asker gave up (timed out, or left): no router work for nobody, and
                // no wait for the lookups queued behind it.
                if tx.is_closed() {
                    continue;
                }
                // Bounded: lookups run one at a time on the control connection, so one the
                // router never answers would stall every later one.
                let res = match tokio::time::timeout(LOOKUP_TIMEOUT, lookup_on(&mut c, &name)).await {
                    Ok(r) => r,
                    Err(_) => Err(SamError::Refused {
                        result: "TIMEOUT".into(),
                        message: Some(format!("no NAMING REPLY within {} s", LOOKUP_TIMEOUT.as_secs())),
                    }),
                };
                let fatal = matches!(res, Err(SamError::Io(_)) | Err(SamError::Protocol(_)));
                match res {
                    Ok(r) => { let _ = tx.send(Ok(r)); }
                    Err(e) if fatal => {
                        let _ = tx.send(Err(SamError::NoSession));
                        return e;
                    }
                    Err(e) => { let _ = tx.send(Err(e)); }
                }
            }
            line = c.read_line() => {
                match line {
                    Ok(l) => {
                        if let Err(e) = answer_unsolicited(&mut c, &l).await {
                            return e;
                        }
                    }
                    Err(e) => return e,
                }
            }
        }
    }
}

/// Lines the router sends on its own: PING (answered), anything else logged and skipped.
async fn answer_unsolicited(c: &mut SamSocket, line: &str) -> Result<bool, SamError> {
    if let Some(rest) = line.strip_prefix("PING") {
        c.send_line(&format!("PONG{rest}")).await?;
        return Ok(true);
    }
    if line.starts_with("PONG") {
        return Ok(true);
    }
    debug!(
        "ignoring unsolicited SAM line: {}",
        line.chars().take(80).collect::<String>()
    );
    Ok(false)
}

async fn lookup_on(c: &mut SamSocket, name: &str) -> Result<ReplyLine, SamError> {
    c.send_line(&format!("NAMING LOOKUP NAME={name}")).await?;
    loop {
        let line = c.read_line().await?;
        if answer_unsolicited(c, &line).await? {
            continue;
        }
        let r = ReplyLine::parse(&line)?;
        // A late answer to an earlier lookup that timed out is skipped, not taken for this one.
        // i2pd 2.45.1 answers a b32 lookup with the name minus ".b32.i2p".
        let same = |n: &str| {
            n.eq_ignore_ascii_case(name)
                || name
                    .get(..name.len().saturating_sub(8))
                    .is_some_and(|bare| name.ends_with(".b32.i2p") && n.eq_ignore_ascii_case(bare))
        };
        if r.topic == "NAMING" && r.get("NAME").map_or(true, same) {
            return Ok(r);
        }
    }
}
