//! Which I2P identity serves a client: the listener's own (or one it shares by naming the
//! same key file), or, with `isolate = "username"`, one per SOCKS username, created on first
//! use, kept while streams use it, and closed when idle. Per-user keys, when persistent,
//! are stored under a hash of the listener and username, never the name in clear.

use crate::i2p::keyfile::{self, KeySource};
use crate::i2p::sam::{Keys, SamError, Session, SessionConfig, SessionState};
use crate::socks::Credentials;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;
use tracing::{debug, info, warn};

/// What every session of a pool is created with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pub sam_addr: String,
    pub options: Vec<(String, String)>,
    pub sig_type: u16,
    /// How long the router may take to create a session (`session_timeout`).
    pub create_timeout: Duration,
    /// The listener takes UDP ASSOCIATE: its identities' sessions carry a datagram
    /// subsession where the bridge has PRIMARY (`SessionConfig::shared_datagrams`).
    pub datagrams: bool,
}

pub enum Mode {
    /// Every client of the listener uses this session.
    Fixed(Session),
    /// One session per SOCKS username (clients without one share the empty username's).
    PerUser {
        /// Where per-user key files go; None = transient per-user keys.
        key_dir: Option<PathBuf>,
        /// Close a user's session after this long without streams.
        idle: Duration,
        /// Identities open at once; past it the least recently used idle one is closed,
        /// and with none idle a new username is refused.
        max: usize,
    },
}

struct UserSlot {
    tag: String,
    session: OnceCell<Session>,
    active: AtomicUsize,
    last_used: Mutex<Instant>,
}

/// Why a pool has no session for a client.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// A limit of ours, not the router's (max_identities, per-user key files): the router
    /// was not asked.
    #[error("limit reached: {0}")]
    Limit(String),
    /// The user's key file exists but cannot be read.
    #[error("per-user key file: {0:#}")]
    KeyFile(anyhow::Error),
    #[error(transparent)]
    Sam(#[from] SamError),
}

pub struct Pool {
    listener: String,
    template: Template,
    mode: Mode,
    /// Destinations each identity of the pool has met, for GarliCat addresses.
    pub garlicat: crate::naming::garlicat::Known,
    users: Mutex<HashMap<[u8; 32], Arc<UserSlot>>>,
    /// Salts the username hashes (see `user_hash`).
    salt: [u8; 32],
    /// The pool this one replaced (a reload with new tunnel options): a user's new session
    /// waits for the old session of the same keys to close.
    previous: Mutex<Option<Arc<Pool>>>,
}

/// A listener's session as the endpoint shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    /// "up", "creating" (the router is building its tunnels), "down" (retrying) or
    /// "per-user" (sessions made per username on first use).
    pub state: &'static str,
    /// "creating": since when (Unix seconds).
    pub since: Option<u64>,
    /// "down": why.
    pub error: Option<String>,
    /// Whether the session's LeaseSet offers ML-KEM (`i2cp.leaseSetEncType` with 5, 6 or 7,
    /// accepted by the router). None: not known yet (never created; per-user sessions on a
    /// bridge not asked yet).
    pub post_quantum: Option<bool>,
    /// How the router took the session: "STREAM", or "PRIMARY" (stream and datagram
    /// subsessions on one destination). None: not created yet, or per-user.
    pub style: Option<&'static str>,
    /// The style of the identity's datagram subsession that UDP associations borrow
    /// ("DATAGRAM" or "DATAGRAM2"); None: associations get sessions of their own.
    pub udp_subsession: Option<&'static str>,
}

impl SessionView {
    pub fn is_up(&self) -> bool {
        matches!(self.state, "up" | "per-user")
    }
}

/// A session in use by one stream; a per-user identity stays open while leases exist.
pub struct Lease {
    pub session: Session,
    active: std::sync::Mutex<Option<Active>>,
}

impl Lease {
    /// The stream only finishes a reply now (its client half-closed): it no longer keeps
    /// the identity busy, so a new username may evict it (which closes its session).
    pub fn linger(&self) {
        self.active.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// Counts a stream (or one being set up) against a per-user identity.
struct Active(Arc<UserSlot>);

impl Drop for Active {
    fn drop(&mut self) {
        *self.0.last_used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Per-user key files kept per listener (`persistent_users`): each username that ever
/// connected leaves one, so their number is bounded; past it new usernames are refused.
pub const MAX_USER_KEY_FILES: usize = 1024;

fn key_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "dat"))
                .count()
        })
        .unwrap_or(0)
}

/// Stable, non-reversible key for a username on a listener. The salt is the listener's
/// own (kept beside its key directory): without it, anyone who can list the directory
/// could test guessed usernames against the file names.
pub fn user_hash(listener: &str, salt: &[u8; 32], username: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"eepsocks-user-v2\0");
    h.update(salt);
    h.update(listener.as_bytes());
    h.update([0]);
    h.update(username);
    h.finalize().into()
}

/// The hash before salts (names of key files written by earlier versions).
fn unsalted_user_hash(listener: &str, username: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"eepsocks-user-v1\0");
    h.update(listener.as_bytes());
    h.update([0]);
    h.update(username);
    h.finalize().into()
}

/// 32 random bytes from the OS.
fn random32() -> std::io::Result<[u8; 32]> {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(b)
}

/// The salt of a per-user key directory: `<dir>.salt`, made once (0600, never replaced).
fn dir_salt(dir: &std::path::Path) -> std::io::Result<[u8; 32]> {
    let path = dir.with_extension("salt");
    match std::fs::read(&path) {
        Ok(b) if b.len() == 32 => return Ok(b.try_into().expect("32 bytes")),
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} is not a 32-byte salt", path.display()),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let salt = random32()?;
    match crate::fsutil::write_new(&path, &salt) {
        Ok(()) => Ok(salt),
        // Another process made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => dir_salt(dir),
        Err(e) => Err(e),
    }
}

fn hex(b: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(b)
}

impl Pool {
    pub fn new(listener: &str, template: Template, mode: Mode) -> Pool {
        let salt = match &mode {
            Mode::PerUser {
                key_dir: Some(d), ..
            } => dir_salt(d).unwrap_or_else(|e| {
                // Keys stay usable; they are then named by a salt of this run only.
                warn!("per-user key salt for {}: {e}", d.display());
                random32().unwrap_or_default()
            }),
            _ => random32().unwrap_or_default(),
        };
        Pool {
            listener: listener.to_string(),
            template,
            mode,
            garlicat: Default::default(),
            salt,
            users: Mutex::new(HashMap::new()),
            previous: Mutex::new(None),
        }
    }

    /// This pool takes over from `old` (same listener, new template): users' sessions
    /// move over one by one as they are next used, each after its old session closed.
    pub fn replacing(self, old: Arc<Pool>) -> Pool {
        *self.previous.lock().unwrap_or_else(|e| e.into_inner()) = Some(old);
        self
    }

    /// The per-user session of `hash`, if this pool has one.
    fn user_session(&self, hash: &[u8; 32]) -> Option<Session> {
        let users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        users.get(hash).and_then(|s| s.session.get().cloned())
    }

    /// Close every per-user session now (a reload replaced this pool's keys or options).
    pub fn close_all(&self) {
        let users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        for s in users.values() {
            if let Some(session) = s.session.get() {
                session.close();
            }
        }
    }

    /// What this pool's sessions are created with (datagram sessions copy its options).
    pub fn template(&self) -> &Template {
        &self.template
    }

    pub fn listener(&self) -> &str {
        &self.listener
    }

    /// Whose destinations `who` sees in `garlicat`: its username on a per-user pool (each
    /// identity knows only what it met itself), else the listener's one identity.
    pub fn garlicat_key<'a>(&self, who: Option<&'a crate::socks::Credentials>) -> &'a [u8] {
        match (who, self.is_per_user()) {
            (Some(c), true) => &c.username,
            _ => b"",
        }
    }

    pub fn is_per_user(&self) -> bool {
        matches!(self.mode, Mode::PerUser { .. })
    }

    /// The session for a client with these credentials.
    pub async fn lease(&self, creds: Option<&Credentials>) -> Result<Lease, LeaseError> {
        let (key_dir, max) = match &self.mode {
            Mode::Fixed(s) => {
                return Ok(Lease {
                    session: s.clone(),
                    active: std::sync::Mutex::new(None),
                })
            }
            Mode::PerUser { key_dir, max, .. } => (key_dir, *max),
        };
        let username = creds.map(|c| c.username.as_slice()).unwrap_or(b"");
        let hash = user_hash(&self.listener, &self.salt, username);
        let slot = self.user_slot(hash, max)?;
        let active = Active(slot.clone());
        let session = slot
            .session
            .get_or_try_init(|| self.new_user_session(&slot, hash, key_dir.as_deref(), username))
            .await?
            .clone();
        Ok(Lease {
            session,
            active: std::sync::Mutex::new(Some(active)),
        })
    }

    /// The slot of the user with `hash`, made if new (room made by closing the least
    /// recently used identity with no stream open, up to `max`), counted active.
    fn user_slot(&self, hash: [u8; 32], max: usize) -> Result<Arc<UserSlot>, LeaseError> {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        if !users.contains_key(&hash) && users.len() >= max {
            let idle = users
                .iter()
                .filter(|(_, s)| s.active.load(Ordering::Acquire) == 0)
                .min_by_key(|(_, s)| *s.last_used.lock().unwrap_or_else(|e| e.into_inner()))
                .map(|(k, _)| *k);
            let Some(k) = idle else {
                return Err(LeaseError::Limit(format!(
                    "{max} per-user identities in use on listener {} (max_identities)",
                    self.listener
                )));
            };
            // Closed, not only forgotten: a stream still finishing a reply for a
            // half-closed client would otherwise keep it alive past `max`.
            if let Some(s) = users.remove(&k).and_then(|s| s.session.get().cloned()) {
                s.close();
            }
        }
        let slot = users.entry(hash).or_insert_with(|| {
            Arc::new(UserSlot {
                tag: hex(&hash[..4]),
                session: OnceCell::new(),
                active: AtomicUsize::new(0),
                last_used: Mutex::new(Instant::now()),
            })
        });
        // Counted before the first await so the reaper never closes a session in setup.
        slot.active.fetch_add(1, Ordering::AcqRel);
        Ok(slot.clone())
    }

    /// Where a user's keys are: a key file under `key_dir` (persistent), else transient.
    fn user_key_source(
        &self,
        hash: [u8; 32],
        key_dir: Option<&std::path::Path>,
        username: &[u8],
    ) -> Result<KeySource, LeaseError> {
        let Some(d) = key_dir else {
            return Ok(KeySource::Transient);
        };
        let path = d.join(format!("{}.dat", hex(&hash)));
        // A key file from before salts: renamed once, same identity.
        let old = d.join(format!(
            "{}.dat",
            hex(&unsalted_user_hash(&self.listener, username))
        ));
        if !path.exists() && old.exists() {
            if let Err(e) = std::fs::rename(&old, &path) {
                warn!("renaming {}: {e}", old.display());
            }
        }
        if !path.exists() && key_files(d) >= MAX_USER_KEY_FILES {
            return Err(LeaseError::Limit(format!(
                "{MAX_USER_KEY_FILES} per-user key files in {} (remove old ones \
                 to let new usernames in)",
                d.display()
            )));
        }
        Ok(KeySource::File(path))
    }

    /// A new session for the user of `slot` (the first client with that username).
    async fn new_user_session(
        &self,
        slot: &UserSlot,
        hash: [u8; 32],
        key_dir: Option<&std::path::Path>,
        username: &[u8],
    ) -> Result<Session, LeaseError> {
        // New keys are made by the session's task under its deadlines: a silent router
        // then fails this client at once instead of holding it.
        let fresh = |save| Keys::New {
            sig_type: self.template.sig_type,
            save,
        };
        let keys = match self.user_key_source(hash, key_dir, username)? {
            KeySource::File(path) => match keyfile::load(&path).map_err(LeaseError::KeyFile)? {
                Some(k) => Keys::Ready(k),
                None => fresh(Some(path)),
            },
            KeySource::Transient => fresh(None),
        };
        // Which username is which identity stays out of the info log.
        info!(listener = %self.listener, "new per-user identity");
        if let Keys::Ready(k) = &keys {
            debug!(
                listener = %self.listener,
                user = %slot.tag,
                "per-user identity {}",
                k.destination().b32()
            );
        }
        // Same keys as the replaced pool's session for this user (persistent keys): the
        // router needs that one gone first.
        let previous = key_dir.and_then(|_| {
            let prev = self.previous.lock().unwrap_or_else(|e| e.into_inner());
            prev.as_ref().and_then(|p| p.user_session(&hash))
        });
        let config = SessionConfig {
            sam_addr: self.template.sam_addr.clone(),
            name: format!("eepsocks-{}-{}", self.listener, slot.tag),
            keys,
            options: self.template.options.clone(),
            // Idle per-user identities may be many: no warm sockets.
            warm_sockets: false,
            datagram_port: None,
            create_timeout: self.template.create_timeout,
            // Made for the client asking: it waits for it.
            on_demand: true,
            shared_datagrams: self
                .template
                .datagrams
                .then(crate::i2p::sam::SharedDatagrams::new),
        };
        Ok(Session::spawn_after(config, previous))
    }

    /// Close per-user sessions that have had no stream for the idle time. Returns how many.
    pub fn reap(&self) -> usize {
        let Mode::PerUser { idle, .. } = &self.mode else {
            return 0;
        };
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        let before = users.len();
        users.retain(|_, s| {
            s.active.load(Ordering::Acquire) > 0
                || s.last_used
                    .lock()
                    .map(|t| t.elapsed() < *idle)
                    .unwrap_or(true)
        });
        let n = before - users.len();
        if n > 0 {
            info!(listener = %self.listener, "closed {n} idle per-user identities");
        }
        n
    }

    /// The listener's own session, for the status endpoint.
    pub fn session_view(&self) -> SessionView {
        let pq = match &self.mode {
            Mode::Fixed(s) => s.created_with().map(|c| c.post_quantum),
            // What a new per-user session gets: the configured types, or the bridge's.
            Mode::PerUser { .. } => match self
                .template
                .options
                .iter()
                .find(|(k, _)| k == crate::i2p::sam::caps::ENC_KEY)
            {
                Some((_, v)) => Some(crate::i2p::sam::caps::has_ml_kem(v)),
                None => crate::i2p::sam::caps::known(&self.template.sam_addr).map(|c| c.ml_kem),
            },
        };
        let created = match &self.mode {
            Mode::Fixed(s) => s.created_with(),
            Mode::PerUser { .. } => None,
        };
        let view = |state, since, error| SessionView {
            state,
            since,
            error,
            post_quantum: pq,
            style: created.as_ref().map(|c| c.style),
            udp_subsession: created.as_ref().and_then(|c| c.datagram_sub),
        };
        match &self.mode {
            Mode::PerUser { .. } => view("per-user", None, None),
            Mode::Fixed(s) => match s.state() {
                SessionState::Up(_) => view("up", None, None),
                SessionState::Starting { since } => {
                    let unix = since
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .ok();
                    view("creating", unix, None)
                }
                SessionState::Down(why) => view("down", None, Some(why)),
                SessionState::Closed => view("down", None, Some("closed".into())),
            },
        }
    }

    /// Number of per-user identities currently open.
    pub fn users(&self) -> usize {
        self.users.lock().map(|u| u.len()).unwrap_or(0)
    }
}

/// Keep reaping idle per-user identities of these pools (the list changes on reload).
pub async fn reaper(pools: Arc<std::sync::RwLock<Vec<Arc<Pool>>>>) {
    let mut tick = tokio::time::interval(Duration::from_secs(15));
    loop {
        tick.tick().await;
        let list = pools.read().map(|p| p.clone()).unwrap_or_default();
        for p in &list {
            p.reap();
        }
    }
}

/// The session of a listener's own identity (or of subscriptions), from its keys.
/// `previous`: the session of the same keys this one replaces (see `Session::spawn_after`).
pub fn fixed_session(
    name: &str,
    keys: Keys,
    template: &Template,
    previous: Option<Session>,
) -> Session {
    Session::spawn_after(
        SessionConfig {
            sam_addr: template.sam_addr.clone(),
            name: name.to_string(),
            keys,
            options: template.options.clone(),
            warm_sockets: true,
            datagram_port: None,
            create_timeout: template.create_timeout,
            on_demand: false,
            shared_datagrams: template
                .datagrams
                .then(crate::i2p::sam::SharedDatagrams::new),
        },
        previous,
    )
}
