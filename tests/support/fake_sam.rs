//! A scripted SAM v3.1–3.3 bridge on 127.0.0.1, for testing the stateful SAM client
//! (sessions, reconnects, warm sockets, lookups, per-user pools) without a router or root.
//!
//! Minimal but real, like emissary's in-file `SamServer`: HELLO, DEST GENERATE, SESSION
//! CREATE STYLE=STREAM (a session lives exactly as long as its control connection, as in
//! i2pd and Java I2P), NAMING LOOKUP (in a session or not), PING/PONG, and STREAM CONNECT,
//! which splices to a local TCP service registered for a destination; and STYLE=DATAGRAM
//! sessions in forwarded mode, with a SAM UDP port that carries datagrams between the
//! fake's own datagram sessions (prefix `$dest FROM_PORT=n TO_PORT=n`). Faults on demand:
//! kill sessions, scripted refusals, hangs, slow answers, and the bridge going down and
//! coming back on the same port.
//!
//! It runs on its own thread with its own runtime, so it works from plain `#[test]`s and
//! keeps answering while a `#[tokio::test]` has paused its clock.

use eepsocks::i2p::{Destination, PrivateKeys};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

/// A session as the fake recorded it.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    pub id: String,
    pub b32: String,
    /// Its public destination, base64 (what `NAMING LOOKUP NAME=ME` answers).
    pub dest: String,
    /// Every `key=value` of SESSION CREATE except STYLE, ID and DESTINATION.
    pub options: HashMap<String, String>,
    pub created: Instant,
    /// When its control connection ended (None: live).
    pub closed: Option<Instant>,
}

/// One STREAM CONNECT as received (whatever the answer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectInfo {
    pub id: String,
    /// The b32 address of DESTINATION (given as b32 or base64), else its value shortened.
    pub dest: String,
    pub port: Option<u16>,
}

enum Action {
    Refuse {
        result: String,
        message: String,
    },
    Hang,
    /// Read the command, never answer it, and go on with the next ones.
    Ignore,
    /// Answer it as usual, but this much later.
    Delay(Duration),
    /// Close the connection without an answer, this much later (emissary closes a STREAM
    /// CONNECT socket when it finds no LeaseSet).
    Close(Duration),
}

struct Fault {
    prefix: String,
    action: Action,
    /// How many more matching commands it applies to (None: all).
    left: Option<usize>,
}

/// How Java I2P's SAM bridge differs from i2pd's, as read from its source
/// (apps/sam/java/src/net/i2p/sam: SAMv3Handler, SAMUtils, SAMHandlerFactory, and the
/// streaming library's connect path).
#[derive(Clone, Default)]
pub struct Java {
    /// `sam.auth=true`: HELLO must carry this USER and PASSWORD.
    pub login: Option<(String, String)>,
    /// The streaming library's connect timeout when STREAM CONNECT gives no
    /// `i2p.streaming.connectTimeout` (Java's default is 60 s).
    pub connect_timeout: Duration,
}

/// Java's SAM bridge reads command lines of at most 8 KiB; a longer one closes the socket.
const JAVA_MAX_LINE: usize = 8 * 1024;

/// Everything the fake knows; `wait_for` predicates read it.
#[derive(Default)]
pub struct State {
    /// Every line received, long keys shortened (see `shorten`).
    pub commands: Vec<String>,
    /// Every session ever created, in order; `closed` is set when it ends.
    pub history: Vec<SessionInfo>,
    pub connects: Vec<ConnectInfo>,
    /// Live sessions: id -> (b32, token cancelled when the session ends, ending its streams).
    live: HashMap<String, (String, CancellationToken)>,
    names: HashMap<String, String>,
    /// Live DATAGRAM sessions: id -> (public destination, forward port on 127.0.0.1).
    datagrams: HashMap<String, (String, u16)>,
    /// Datagrams the SAM UDP port received, and how many it delivered.
    pub datagrams_in: usize,
    pub datagrams_delivered: usize,
    services: HashMap<String, SocketAddr>,
    /// Java I2P's dialect (`FakeSam::java`), when set.
    java: Option<Java>,
    faults: Vec<Fault>,
    delay: Duration,
    max_minor: u8,
    /// Takes STYLE=DATAGRAM2 (i2pd 2.58+, Java 2.11, emissary 0.4.0); off: refuses it as
    /// an unknown style, like older routers.
    datagram2: bool,
    /// LeaseSet encryption types refused with SESSION STATUS I2P_ERROR (a router without
    /// ML-KEM that says so).
    refuse_enc: Vec<String>,
    /// Takes STYLE=PRIMARY/MASTER and SESSION ADD (SAM 3.3; `modern` turns it on).
    primary: bool,
    /// Live subsessions: id -> the id of the PRIMARY session they belong to, and for a
    /// datagram one the port it listens on.
    subs: HashMap<String, (String, Option<String>)>,
}

impl State {
    /// How many received lines start with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.commands
            .iter()
            .filter(|c| c.starts_with(prefix))
            .count()
    }

    /// Live DATAGRAM sessions: (public destination, the port datagrams are forwarded to).
    pub fn datagram_sessions(&self) -> Vec<(String, u16)> {
        self.datagrams.values().cloned().collect()
    }

    pub fn live(&self) -> Vec<SessionInfo> {
        self.history
            .iter()
            .filter(|s| s.closed.is_none())
            .cloned()
            .collect()
    }
}

struct Shared {
    state: Mutex<State>,
    /// Bumped to drop every session's control connection.
    kill_sessions: watch::Sender<u64>,
    /// Bumped to drop every connection (the router went away).
    kill_all: watch::Sender<u64>,
    /// "PING <text>" to every control connection.
    ping: broadcast::Sender<String>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

enum Ctl {
    Down,
    Up,
}

/// Handle to the fake bridge; it stops when the last clone is dropped.
#[derive(Clone)]
pub struct FakeSam {
    addr: SocketAddr,
    udp: SocketAddr,
    shared: Arc<Shared>,
    ctl: mpsc::UnboundedSender<(Ctl, std::sync::mpsc::Sender<()>)>,
}

/// Distinct keys for every DEST GENERATE / TRANSIENT in the process.
static KEY_SEQ: AtomicU64 = AtomicU64::new(1);

/// Valid Ed25519/ElGamal private keys (the key-file layout), different for every `seed`.
pub fn test_keys(seed: u64) -> PrivateKeys {
    let mix =
        |i: usize| (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> ((i % 8) * 8)) as u8 ^ i as u8;
    let mut v: Vec<u8> = (0..384).map(mix).collect();
    v.extend_from_slice(&[5, 0, 4, 0, 7, 0, 0]); // key certificate: EdDSA, ElGamal
    v.extend((0..256 + 32).map(|i| mix(i) | 1)); // never all zero (that means offline keys)
    PrivateKeys::from_bytes(v).expect("test keys parse")
}

fn fresh_keys() -> PrivateKeys {
    // High bits keep these apart from the small seeds tests pass to `test_keys`.
    test_keys((1 << 40) + KEY_SEQ.fetch_add(1, Ordering::Relaxed))
}

impl FakeSam {
    /// Start a bridge speaking up to SAM 3.3 on a free loopback port.
    pub fn start() -> FakeSam {
        let (kill_sessions, _) = watch::channel(0);
        let (kill_all, _) = watch::channel(0);
        let (ping, _) = broadcast::channel(16);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                max_minor: 3,
                ..State::default()
            }),
            kill_sessions,
            kill_all,
            ping,
        });
        let (ctl, mut ctl_rx) = mpsc::unbounded_channel::<(Ctl, std::sync::mpsc::Sender<()>)>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let sh = shared.clone();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("fake SAM UDP bind");
        let udp_addr = udp.local_addr().unwrap();
        udp.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("fake SAM runtime");
            rt.block_on(async move {
                let l = bind("127.0.0.1:0".parse().unwrap()).expect("fake SAM bind");
                let addr = l.local_addr().unwrap();
                addr_tx.send(addr).unwrap();
                let mut accept = Some(tokio::spawn(accept_loop(l, sh.clone())));
                let udp = tokio::net::UdpSocket::from_std(udp).expect("fake SAM UDP");
                tokio::spawn(datagram_loop(udp, sh.clone()));
                // Runs until every handle is gone; dropping the runtime then closes everything.
                while let Some((cmd, done)) = ctl_rx.recv().await {
                    match cmd {
                        Ctl::Down => {
                            if let Some(a) = accept.take() {
                                a.abort();
                                let _ = a.await; // the listener is closed once this returns
                            }
                            sh.kill_all.send_modify(|n| *n += 1);
                        }
                        Ctl::Up if accept.is_none() => {
                            let l = bind(addr).expect("fake SAM rebind on the same port");
                            accept = Some(tokio::spawn(accept_loop(l, sh.clone())));
                        }
                        Ctl::Up => {}
                    }
                    let _ = done.send(());
                }
            });
        });
        let addr = addr_rx.recv().expect("fake SAM started");
        FakeSam {
            addr,
            udp: udp_addr,
            shared,
            ctl,
        }
    }

    /// The SAM UDP port (where datagrams are sent).
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp
    }

    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Highest SAM minor version offered (3.1 has no ports: TO_PORT must not be sent).
    /// Speak the 2026 dialect: take STYLE=DATAGRAM2 (as a DATAGRAM session) and, unless
    /// `refuse` lists them, any LeaseSet encryption type.
    pub fn modern(&self, refuse: &[&str]) {
        let mut st = self.shared.lock();
        st.datagram2 = true;
        st.primary = true;
        st.refuse_enc = refuse.iter().map(|s| s.to_string()).collect();
    }

    /// Take (or, off, refuse as an unknown style) STYLE=PRIMARY and SESSION ADD.
    pub fn set_primary(&self, on: bool) {
        self.shared.lock().primary = on;
    }

    pub fn set_max_version(&self, minor: u8) {
        self.shared.lock().max_minor = minor;
    }

    /// `NAMING LOOKUP NAME=name` answers this destination.
    pub fn name(&self, name: &str, dest: &Destination) {
        self.shared
            .lock()
            .names
            .insert(name.into(), dest.to_base64());
    }

    /// STREAM CONNECT to this destination (b32 or base64) splices to `to`.
    pub fn service(&self, dest: &str, to: SocketAddr) {
        let b32 = to_b32(dest).expect("service destination is a b32 or a base64 destination");
        self.shared.lock().services.insert(b32, to);
    }

    /// Answer the next `times` commands starting with `prefix` (None: all) with
    /// `RESULT=result MESSAGE="message"` instead of doing them.
    pub fn refuse(&self, prefix: &str, result: &str, message: &str, times: Option<usize>) {
        self.fault(
            prefix,
            Action::Refuse {
                result: result.into(),
                message: message.into(),
            },
            times,
        );
    }

    /// Never answer commands starting with `prefix` (the connection stays open).
    pub fn hang(&self, prefix: &str) {
        self.fault(prefix, Action::Hang, None);
    }

    /// Never answer the next `times` commands starting with `prefix` (all: None), but keep
    /// answering later ones on the same connection (a lost NAMING LOOKUP).
    pub fn ignore(&self, prefix: &str, times: Option<usize>) {
        self.fault(prefix, Action::Ignore, times);
    }

    /// Answer the next `times` commands starting with `prefix` (None: all) as usual, but
    /// `by` later (one session slower than the others).
    pub fn delay_next(&self, prefix: &str, by: Duration, times: Option<usize>) {
        self.fault(prefix, Action::Delay(by), times);
    }

    /// Close the connection, unanswered, `after` the next `times` commands starting with
    /// `prefix` (None: all).
    pub fn close_on(&self, prefix: &str, after: Duration, times: Option<usize>) {
        self.fault(prefix, Action::Close(after), times);
    }

    /// Answer as Java I2P's SAM bridge does (see `Java`): logins, the 8 KiB line limit, and
    /// STREAM CONNECT to a destination nobody serves answered CANT_REACH_PEER "Connection
    /// timed out" after the connect timeout (the command's `i2p.streaming.connectTimeout`
    /// in ms, else `java.connect_timeout`).
    pub fn java(&self, java: Java) {
        self.shared.lock().java = Some(java);
    }

    /// Forget every refusal and hang.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    fn fault(&self, prefix: &str, action: Action, left: Option<usize>) {
        self.shared.lock().faults.push(Fault {
            prefix: prefix.into(),
            action,
            left,
        });
    }

    /// Wait this long before every answer.
    pub fn delay(&self, d: Duration) {
        self.shared.lock().delay = d;
    }

    /// Drop every session's control connection (the router lost them).
    pub fn kill_sessions(&self) {
        self.shared.kill_sessions.send_modify(|n| *n += 1);
    }

    /// Send `PING text` on every session's control connection; PONGs land in `commands()`.
    pub fn ping(&self, text: &str) {
        let _ = self.shared.ping.send(text.into());
    }

    /// The router goes away: stop listening (connections are refused) and drop every
    /// connection. Returns once the port is closed.
    pub fn down(&self) {
        self.control(Ctl::Down);
    }

    /// Listen again on the same port.
    pub fn up(&self) {
        self.control(Ctl::Up);
    }

    fn control(&self, c: Ctl) {
        let (tx, rx) = std::sync::mpsc::channel();
        self.ctl.send((c, tx)).expect("fake SAM thread alive");
        rx.recv().expect("fake SAM control done");
    }

    pub fn commands(&self) -> Vec<String> {
        self.shared.lock().commands.clone()
    }

    pub fn count(&self, prefix: &str) -> usize {
        self.shared.lock().count(prefix)
    }

    /// Live sessions.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        self.shared.lock().live()
    }

    /// Every session ever created, in order.
    pub fn created(&self) -> Vec<SessionInfo> {
        self.shared.lock().history.clone()
    }

    pub fn connects(&self) -> Vec<ConnectInfo> {
        self.shared.lock().connects.clone()
    }

    /// Poll (blocking, real time) until `pred` holds; false on timeout. From async tests
    /// use `until`, which does not block the test's runtime.
    pub fn wait_for(&self, pred: impl Fn(&State) -> bool, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if pred(&self.shared.lock()) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// `wait_for` on a blocking thread: the test's runtime keeps running the code under
    /// test meanwhile, and a paused clock does not jump ahead while this waits.
    /// Read the fake's state.
    pub fn with_state<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.shared.lock())
    }

    pub async fn until(
        &self,
        pred: impl Fn(&State) -> bool + Send + 'static,
        timeout: Duration,
    ) -> bool {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.wait_for(pred, timeout))
            .await
            .unwrap()
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let s = TcpSocket::new_v4()?;
    // Rebinding the same port after `down()` while old connections sit in TIME_WAIT.
    s.set_reuseaddr(true)?;
    s.bind(addr)?;
    s.listen(128)
}

async fn accept_loop(l: TcpListener, sh: Arc<Shared>) {
    while let Ok((tcp, _)) = l.accept().await {
        let _ = tcp.set_nodelay(true);
        tokio::spawn(connection(tcp, sh.clone()));
    }
}

/// One client connection, ended early by `down()`, or by `kill_sessions()` once it
/// carries a session.
async fn connection(tcp: TcpStream, sh: Arc<Shared>) {
    let mut all = sh.kill_all.subscribe();
    let mut sessions = sh.kill_sessions.subscribe();
    let has_session = Arc::new(AtomicBool::new(false));
    let work = serve(tcp, sh.clone(), has_session.clone());
    tokio::pin!(work);
    loop {
        tokio::select! {
            _ = &mut work => return,
            _ = all.changed() => return,
            _ = sessions.changed() => {
                if has_session.load(Ordering::Relaxed) {
                    return;
                }
            }
        }
    }
}

/// Removes the session when its control connection ends, however it ends.
struct LiveSession {
    sh: Arc<Shared>,
    id: String,
}

impl Drop for LiveSession {
    fn drop(&mut self) {
        let mut st = self.sh.lock();
        st.datagrams.remove(&self.id);
        // Its subsessions end with it.
        let subs: Vec<String> = st
            .subs
            .iter()
            .filter(|(_, (primary, _))| *primary == self.id)
            .map(|(sub, _)| sub.clone())
            .collect();
        for sub in subs {
            st.subs.remove(&sub);
            st.datagrams.remove(&sub);
        }
        if let Some((_, token)) = st.live.remove(&self.id) {
            token.cancel();
        }
        if let Some(s) = st.history.iter_mut().rev().find(|s| s.id == self.id) {
            s.closed = Some(Instant::now());
        }
    }
}

/// `key=value` tokens after the two command words (values here are never quoted).
fn params(line: &str) -> HashMap<String, String> {
    line.split_whitespace()
        .skip(2)
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Long values (destinations, keys) cut down so that logs and assertion output stay small.
fn shorten(line: &str) -> String {
    line.split(' ')
        .map(|t| match t.split_once('=') {
            Some((k, v)) if v.len() > 24 => format!("{k}={}…({})", &v[..12], v.len()),
            _ => t.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A b32 address or a base64 destination, as a lowercase b32 address.
fn to_b32(dest: &str) -> Option<String> {
    if dest.to_ascii_lowercase().ends_with(".b32.i2p") {
        return Some(dest.to_ascii_lowercase());
    }
    Destination::from_base64(dest).ok().map(|d| d.b32())
}

/// The reply line's first two words for a command.
fn reply_head(line: &str) -> &'static str {
    let mut w = line.split_whitespace();
    match (w.next(), w.next()) {
        (Some("HELLO"), _) => "HELLO REPLY",
        (Some("SESSION"), _) => "SESSION STATUS",
        (Some("STREAM"), _) => "STREAM STATUS",
        (Some("NAMING"), _) => "NAMING REPLY",
        (Some("DEST"), _) => "DEST REPLY",
        _ => "ERROR",
    }
}

async fn serve(tcp: TcpStream, sh: Arc<Shared>, has_session: Arc<AtomicBool>) {
    let (r, mut w) = tcp.into_split();
    let mut r = BufReader::new(r);
    let mut ping = sh.ping.subscribe();
    let mut session: Option<LiveSession> = None;
    let mut minor: Option<u8> = None;
    // Kept across select! rounds: read_until appends what it read before being cancelled.
    let mut buf = Vec::new();
    loop {
        tokio::select! {
            n = r.read_until(b'\n', &mut buf) => match n {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            p = ping.recv(), if session.is_some() => {
                if let Ok(text) = p {
                    if w.write_all(format!("PING {text}\n").as_bytes()).await.is_err() {
                        return;
                    }
                }
                continue;
            }
        }
        let java = sh.lock().java.clone();
        if java.is_some() && buf.len() > JAVA_MAX_LINE {
            sh.lock()
                .commands
                .push(format!("(closed: a line of {} bytes)", buf.len()));
            return;
        }
        let line = String::from_utf8_lossy(&buf).trim_end().to_string();
        buf.clear();
        let (fault, delay) = {
            let mut st = sh.lock();
            st.commands.push(shorten(&line));
            let mut fault = None;
            let mut delay = st.delay;
            if let Some(i) = st.faults.iter().position(|f| line.starts_with(&f.prefix)) {
                let f = &mut st.faults[i];
                fault = match &f.action {
                    Action::Hang => Some(None),
                    Action::Ignore => Some(Some(None)),
                    Action::Refuse { result, message } => {
                        Some(Some(Some((result.clone(), message.clone()))))
                    }
                    Action::Delay(by) => {
                        delay += *by;
                        None
                    }
                    Action::Close(after) => {
                        delay = *after;
                        Some(Some(Some((String::new(), String::new()))))
                    }
                };
                if let Some(n) = &mut f.left {
                    *n -= 1;
                    if *n == 0 {
                        st.faults.remove(i);
                    }
                }
            }
            (fault, delay)
        };
        if line.starts_with("PONG") || line.is_empty() {
            continue;
        }
        match fault {
            None => {}
            Some(None) => std::future::pending::<()>().await,
            Some(Some(None)) => continue,
            Some(Some(Some((result, _)))) if result.is_empty() => {
                tokio::time::sleep(delay).await;
                return;
            }
            Some(Some(Some((result, message)))) => {
                let reply = format!(
                    "{} RESULT={result} MESSAGE=\"{message}\"\n",
                    reply_head(&line)
                );
                tokio::time::sleep(delay).await;
                if w.write_all(reply.as_bytes()).await.is_err() || line.starts_with("STREAM") {
                    return;
                }
                continue;
            }
        }
        tokio::time::sleep(delay).await;
        let p = params(&line);
        let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
        let words: Vec<&str> = line.split_whitespace().take(2).collect();
        let reply = match (words.first().copied(), words.get(1).copied()) {
            (Some("HELLO"), Some("VERSION")) => {
                let max_minor = sh.lock().max_minor;
                let minor_of = |k: &str, d: u8| {
                    p.get(k)
                        .and_then(|v| v.strip_prefix("3."))
                        .and_then(|m| m.parse().ok())
                        .unwrap_or(d)
                };
                let m = minor_of("MAX", 3).min(max_minor);
                let login_ok = match java.as_ref().and_then(|j| j.login.as_ref()) {
                    None => true,
                    Some((u, pw)) => get("USER") == u && get("PASSWORD") == pw,
                };
                if !login_ok {
                    let msg = if p.contains_key("USER") {
                        "Authorization failed"
                    } else {
                        "USER and PASSWORD required"
                    };
                    let _ = w
                        .write_all(
                            format!("HELLO REPLY RESULT=I2P_ERROR MESSAGE=\"{msg}\"\n").as_bytes(),
                        )
                        .await;
                    return;
                }
                if m < minor_of("MIN", 0) {
                    "HELLO REPLY RESULT=NOVERSION\n".to_string()
                } else {
                    minor = Some(m);
                    format!("HELLO REPLY RESULT=OK VERSION=3.{m}\n")
                }
            }
            // Real bridges insist on HELLO first.
            _ if minor.is_none() => {
                let _ = w
                    .write_all(b"ERROR RESULT=I2P_ERROR MESSAGE=\"no HELLO\"\n")
                    .await;
                return;
            }
            (Some("PING"), _) => format!("PONG{}\n", &line[4..]),
            (Some("DEST"), Some("GENERATE")) => {
                let k = fresh_keys();
                format!(
                    "DEST REPLY PUB={} PRIV={}\n",
                    k.destination().to_base64(),
                    k.to_base64()
                )
            }
            (Some("SESSION"), Some("CREATE")) => {
                let (reply, live) = create_session(&sh, &p, session.is_some());
                if live.is_some() {
                    session = live;
                    has_session.store(true, Ordering::Relaxed);
                }
                reply
            }
            (Some("SESSION"), Some("ADD")) => match &session {
                Some(live) => add_subsession(&sh, &live.id, &p),
                None => "SESSION STATUS RESULT=I2P_ERROR MESSAGE=\"no session\"\n".to_string(),
            },
            (Some("NAMING"), Some("LOOKUP")) => {
                let name = get("NAME");
                let st = sh.lock();
                let value = match (name, &session) {
                    ("ME", Some(s)) => st
                        .history
                        .iter()
                        .rev()
                        .find(|h| h.id == s.id)
                        .map(|h| h.dest.clone()),
                    _ => st.names.get(name).cloned().or_else(|| {
                        // A b32 of one of the fake's own live sessions.
                        st.live
                            .values()
                            .any(|(b, _)| b == name)
                            .then(|| st.history.iter().rev().find(|h| h.b32 == name))
                            .flatten()
                            .map(|h| h.dest.clone())
                    }),
                };
                match value {
                    Some(v) => format!("NAMING REPLY RESULT=OK NAME={name} VALUE={v}\n"),
                    None => format!("NAMING REPLY RESULT=KEY_NOT_FOUND NAME={name}\n"),
                }
            }
            (Some("STREAM"), Some("CONNECT")) if session.is_none() => {
                let id = get("ID").to_string();
                let port = p.get("TO_PORT").and_then(|v| v.parse().ok());
                let dest = get("DESTINATION").to_string();
                let (token, target) = {
                    let mut st = sh.lock();
                    st.connects.push(ConnectInfo {
                        id: id.clone(),
                        dest: to_b32(&dest).unwrap_or_else(|| shorten(&dest)),
                        port,
                    });
                    // A subsession's streams are its PRIMARY session's.
                    let owner = st.subs.get(&id).map_or(id.clone(), |(p, _)| p.clone());
                    let token = st.live.get(&owner).map(|(_, t)| t.clone());
                    let target = to_b32(&dest).and_then(|b| st.services.get(&b).copied());
                    (token, target)
                };
                let Some(token) = token else {
                    let _ = w.write_all(b"STREAM STATUS RESULT=INVALID_ID\n").await;
                    return;
                };
                let Some(Ok(mut svc)) = (match target {
                    Some(a) => Some(TcpStream::connect(a).await),
                    None => None,
                }) else {
                    if let Some(j) = &java {
                        // The streaming library waits for the peer's SYN ACK, then gives up.
                        let wait = p
                            .get("i2p.streaming.connectTimeout")
                            .and_then(|ms| ms.parse().ok())
                            .map(Duration::from_millis)
                            .unwrap_or(j.connect_timeout);
                        tokio::time::sleep(wait).await;
                        let _ = w
                            .write_all(
                                b"STREAM STATUS RESULT=CANT_REACH_PEER MESSAGE=\"Connection timed out\"\n",
                            )
                            .await;
                        return;
                    }
                    let _ = w.write_all(b"STREAM STATUS RESULT=CANT_REACH_PEER\n").await;
                    return;
                };
                if w.write_all(b"STREAM STATUS RESULT=OK\n").await.is_err() {
                    return;
                }
                // Bytes the client sent behind its command belong to the stream.
                let early = r.buffer().to_vec();
                let mut client = r.into_inner().reunite(w).expect("halves of one socket");
                if svc.write_all(&early).await.is_err() {
                    return;
                }
                // The stream ends with its session, as on a real router.
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut svc) => {}
                    _ = token.cancelled() => {}
                }
                return;
            }
            (Some(t), Some(_)) => format!(
                "{} RESULT=I2P_ERROR MESSAGE=\"unsupported by the fake: {t}\"\n",
                reply_head(&line)
            ),
            _ => "ERROR RESULT=I2P_ERROR\n".to_string(),
        };
        if w.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// SESSION CREATE: refuse a live id (DUPLICATED_ID) or live keys (DUPLICATED_DEST, as
/// i2pd does), else record the session.
fn create_session(
    sh: &Arc<Shared>,
    p: &HashMap<String, String>,
    already: bool,
) -> (String, Option<LiveSession>) {
    let refuse = |r: &str| (format!("SESSION STATUS RESULT={r}\n"), None);
    if already {
        return refuse("I2P_ERROR MESSAGE=\"session already created\"");
    }
    let forward = match p.get("STYLE").map(String::as_str) {
        Some("STREAM") => None,
        Some("PRIMARY" | "MASTER") if sh.lock().primary => None,
        Some("DATAGRAM") => match p.get("PORT").and_then(|v| v.parse::<u16>().ok()) {
            Some(port) => Some(port),
            None => return refuse("I2P_ERROR MESSAGE=\"DATAGRAM needs PORT\""),
        },
        Some("DATAGRAM2") if sh.lock().datagram2 => {
            match p.get("PORT").and_then(|v| v.parse::<u16>().ok()) {
                Some(port) => Some(port),
                None => return refuse("I2P_ERROR MESSAGE=\"DATAGRAM2 needs PORT\""),
            }
        }
        _ => return refuse("I2P_ERROR MESSAGE=\"Unknown STYLE\""),
    };
    if let Some(list) = p.get("i2cp.leaseSetEncType") {
        let st = sh.lock();
        if let Some(t) = list
            .split(',')
            .find(|t| st.refuse_enc.iter().any(|r| r == t))
        {
            return refuse(&format!(
                "I2P_ERROR MESSAGE=\"unsupported i2cp.leaseSetEncType {t}\""
            ));
        }
    }
    let Some(id) = p.get("ID").filter(|i| !i.is_empty()) else {
        return refuse("I2P_ERROR MESSAGE=\"no ID\"");
    };
    let keys = match p.get("DESTINATION").map(String::as_str) {
        Some("TRANSIENT") => fresh_keys(),
        Some(b64) => match PrivateKeys::from_base64(b64) {
            Ok(k) => k,
            Err(_) => return refuse("INVALID_KEY"),
        },
        None => return refuse("I2P_ERROR MESSAGE=\"no DESTINATION\""),
    };
    let b32 = keys.destination().b32();
    let mut st = sh.lock();
    if st.live.contains_key(id) {
        return refuse("DUPLICATED_ID");
    }
    if st.live.values().any(|(b, _)| *b == b32) {
        return refuse("DUPLICATED_DEST");
    }
    let options = p
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "STYLE" | "ID" | "DESTINATION"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    st.live
        .insert(id.clone(), (b32.clone(), CancellationToken::new()));
    if let Some(port) = forward {
        st.datagrams
            .insert(id.clone(), (keys.destination().to_base64(), port));
    }
    st.history.push(SessionInfo {
        id: id.clone(),
        b32,
        dest: keys.destination().to_base64(),
        options,
        created: Instant::now(),
        closed: None,
    });
    let reply = format!(
        "SESSION STATUS RESULT=OK DESTINATION={}\n",
        keys.to_base64()
    );
    (
        reply,
        Some(LiveSession {
            sh: sh.clone(),
            id: id.clone(),
        }),
    )
}

/// SESSION ADD on the control connection of PRIMARY session `primary`: a STREAM
/// subsession, or a DATAGRAM/DATAGRAM2 one forwarded to PORT on 127.0.0.1. Like emissary
/// 0.4.0, a datagram subsession listens on one port (LISTEN_PORT, else FROM_PORT, else 0)
/// and a second one on the same port is refused.
fn add_subsession(sh: &Arc<Shared>, primary: &str, p: &HashMap<String, String>) -> String {
    let refuse = |m: &str| format!("SESSION STATUS RESULT=I2P_ERROR MESSAGE=\"{m}\"\n");
    let mut st = sh.lock();
    if !st.primary || !st.history.iter().any(|h| h.id == primary) {
        return refuse("not a primary session");
    }
    let Some(id) = p.get("ID").filter(|i| !i.is_empty()).cloned() else {
        return refuse("no ID");
    };
    if st.live.contains_key(&id) || st.subs.contains_key(&id) {
        return "SESSION STATUS RESULT=DUPLICATED_ID\n".to_string();
    }
    let dest = st
        .history
        .iter()
        .rev()
        .find(|h| h.id == primary)
        .map(|h| h.dest.clone())
        .unwrap_or_default();
    match p.get("STYLE").map(String::as_str) {
        Some("STREAM") => {}
        Some(style @ ("DATAGRAM" | "DATAGRAM2")) => {
            if style == "DATAGRAM2" && !st.datagram2 {
                return refuse("Unknown STYLE");
            }
            let Some(port) = p.get("PORT").and_then(|v| v.parse::<u16>().ok()) else {
                return refuse("only forwarded datagrams are supported");
            };
            let listen = p
                .get("LISTEN_PORT")
                .or(p.get("FROM_PORT"))
                .cloned()
                .unwrap_or_else(|| "0".into());
            let taken = st
                .subs
                .values()
                .any(|(owner, l)| owner == primary && l.as_ref() == Some(&listen));
            if taken {
                return refuse("invalid datagram configuration");
            }
            st.datagrams.insert(id.clone(), (dest, port));
            st.subs
                .insert(id.clone(), (primary.to_string(), Some(listen)));
            return format!("SESSION STATUS RESULT=OK ID=\"{id}\" MESSAGE=\"ADD {id}\"\n");
        }
        _ => return refuse("Unknown STYLE"),
    }
    st.subs.insert(id.clone(), (primary.to_string(), None));
    format!("SESSION STATUS RESULT=OK ID=\"{id}\" MESSAGE=\"ADD {id}\"\n")
}

/// The SAM UDP port: `3.x $id $dest[ FROM_PORT=n TO_PORT=n]\n$payload` from a live DATAGRAM
/// session to another one of the fake's, forwarded with the sender's destination.
async fn datagram_loop(udp: tokio::net::UdpSocket, sh: Arc<Shared>) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, _)) = udp.recv_from(&mut buf).await else {
            return;
        };
        let d = &buf[..n];
        let Some(nl) = d.iter().position(|&b| b == b'\n') else {
            continue;
        };
        let line = String::from_utf8_lossy(&d[..nl]).to_string();
        let words: Vec<&str> = line.split(' ').collect();
        let (Some(id), Some(dest)) = (words.get(1), words.get(2)) else {
            continue;
        };
        let port_of = |k: &str| {
            words
                .iter()
                .find_map(|w| w.strip_prefix(k))
                .and_then(|v| v.parse::<u16>().ok())
                .unwrap_or(0)
        };
        let (from, to) = (port_of("FROM_PORT="), port_of("TO_PORT="));
        let target = {
            let mut st = sh.lock();
            st.datagrams_in += 1;
            let sender = st.datagrams.get(*id).map(|(d, _)| d.clone());
            let to_port = st
                .datagrams
                .values()
                .find(|(d, _)| d == dest)
                .map(|(_, p)| *p);
            sender.zip(to_port)
        };
        let Some((sender, port)) = target else {
            continue;
        };
        let mut out = format!("{sender} FROM_PORT={from} TO_PORT={to}\n").into_bytes();
        out.extend_from_slice(&d[nl + 1..]);
        if udp.send_to(&out, ("127.0.0.1", port)).await.is_ok() {
            sh.lock().datagrams_delivered += 1;
        }
    }
}
