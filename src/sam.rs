//! SAM v3 client: line protocol, one control connection per session, one connection per stream.
//!
//! The session lives as long as its control connection. A task owns that connection: it
//! creates the session, answers the router's PINGs, runs NAMING LOOKUPs (emissary only
//! answers them inside a session), and recreates the session with the same keys, with
//! backoff, when the router goes away. Streams open their own connections.

use crate::i2p::{Destination, PrivateKeys};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

/// Longest reply line accepted. Private-key blobs with post-quantum signatures are ~13 KB.
const MAX_LINE: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SamError {
    #[error("cannot reach the SAM bridge: {0}")]
    Io(#[from] std::io::Error),
    #[error("SAM protocol error: {0}")]
    Protocol(String),
    /// The router answered with a RESULT other than OK.
    #[error("router said {result}{}", .message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Refused {
        result: String,
        message: Option<String>,
    },
    #[error("the SAM session is not available")]
    NoSession,
    /// The session is down (router unreachable or lost); being recreated.
    #[error("the router is unavailable: {0}")]
    Down(String),
}

impl SamError {
    pub fn result(&self) -> Option<&str> {
        match self {
            SamError::Refused { result, .. } => Some(result),
            _ => None,
        }
    }
}

/// One parsed reply line: `TOPIC KIND KEY=VALUE ...` (values may be "quoted").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub topic: String,
    pub kind: String,
    pub params: HashMap<String, String>,
}

impl Reply {
    pub fn parse(line: &str) -> Result<Reply, SamError> {
        let mut toks = tokenize(line.trim_end_matches(['\r', '\n']))?.into_iter();
        let topic = toks
            .next()
            .ok_or_else(|| SamError::Protocol("empty reply line".into()))?;
        let kind = toks.next().unwrap_or_default();
        let mut params = HashMap::new();
        for t in toks {
            match t.split_once('=') {
                Some((k, v)) => params.insert(k.to_string(), v.to_string()),
                None => params.insert(t, String::new()),
            };
        }
        Ok(Reply {
            topic,
            kind,
            params,
        })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }

    fn expect(&self, topic: &str, kind: &str) -> Result<(), SamError> {
        if self.topic == topic && self.kind == kind {
            Ok(())
        } else {
            Err(SamError::Protocol(format!(
                "expected {topic} {kind}, got {} {}",
                self.topic, self.kind
            )))
        }
    }

    /// Ok when RESULT=OK, else the router's result and message.
    fn ok(&self) -> Result<(), SamError> {
        match self.get("RESULT") {
            Some("OK") => Ok(()),
            Some(r) => Err(SamError::Refused {
                result: r.to_string(),
                message: self.get("MESSAGE").map(str::to_string),
            }),
            None => Err(SamError::Protocol(format!(
                "{} {} without RESULT",
                self.topic, self.kind
            ))),
        }
    }
}

/// Split on spaces, honouring "double quotes" with backslash escapes inside values.
fn tokenize(line: &str) -> Result<Vec<String>, SamError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut have = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                have = true;
            }
            '\\' if in_quotes => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ' ' | '\t' if !in_quotes => {
                if have {
                    out.push(std::mem::take(&mut cur));
                    have = false;
                }
            }
            c => {
                cur.push(c);
                have = true;
            }
        }
    }
    if in_quotes {
        return Err(SamError::Protocol("unterminated quote in reply".into()));
    }
    if have {
        out.push(cur);
    }
    Ok(out)
}

/// A SAM connection in command mode, with its own read buffer so that bytes the router
/// sends right after a reply line (stream data) are never lost.
pub struct Conn {
    tcp: TcpStream,
    buf: Vec<u8>,
    /// Negotiated minor version (3.x).
    pub minor: u8,
}

impl Conn {
    pub async fn connect(addr: &str) -> Result<Conn, SamError> {
        let tcp = TcpStream::connect(addr).await?;
        // Command lines are small; Nagle would add delayed-ACK stalls to every round trip.
        tcp.set_nodelay(true)?;
        let mut c = Conn {
            tcp,
            buf: Vec::with_capacity(256),
            minor: 0,
        };
        let r = c.command("HELLO VERSION MIN=3.1 MAX=3.3").await?;
        r.expect("HELLO", "REPLY")?;
        r.ok()?;
        c.minor = r
            .get("VERSION")
            .and_then(|v| v.strip_prefix("3."))
            .and_then(|m| m.parse().ok())
            .unwrap_or(1);
        Ok(c)
    }

    pub async fn send_line(&mut self, line: &str) -> Result<(), SamError> {
        let mut l = String::with_capacity(line.len() + 1);
        l.push_str(line);
        l.push('\n');
        self.tcp.write_all(l.as_bytes()).await?;
        Ok(())
    }

    pub async fn read_line(&mut self) -> Result<String, SamError> {
        let mut scanned = 0;
        loop {
            if let Some(i) = self.buf[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + i;
                let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..=end);
                return Ok(line);
            }
            scanned = self.buf.len();
            if self.buf.len() > MAX_LINE {
                return Err(SamError::Protocol("reply line too long".into()));
            }
            let mut chunk = [0u8; 4096];
            let n = self.tcp.read(&mut chunk).await?;
            if n == 0 {
                return Err(SamError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "SAM bridge closed the connection",
                )));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub async fn command(&mut self, line: &str) -> Result<Reply, SamError> {
        self.send_line(line).await?;
        let line = self.read_line().await?;
        Reply::parse(&line)
    }

    /// Hand over the socket for stream data, with whatever was read past the last line.
    pub fn into_stream(self) -> (TcpStream, Vec<u8>) {
        (self.tcp, self.buf)
    }
}

/// Ask the router for a new destination (SAM `DEST GENERATE`).
pub async fn generate_keys(addr: &str, sig_type: u16) -> Result<PrivateKeys, SamError> {
    let mut c = Conn::connect(addr).await?;
    let r = c
        .command(&format!("DEST GENERATE SIGNATURE_TYPE={sig_type}"))
        .await?;
    r.expect("DEST", "REPLY")?;
    let priv_b64 = r
        .get("PRIV")
        .ok_or_else(|| SamError::Protocol("DEST REPLY without PRIV".into()))?;
    PrivateKeys::from_base64(priv_b64)
        .map_err(|e| SamError::Protocol(format!("router's new keys do not parse: {e}")))
}

/// What a session needs to (re)create itself.
#[derive(Clone)]
pub struct SessionConfig {
    pub sam_addr: String,
    /// Nickname prefix for the session id; a counter is appended on each (re)creation.
    pub name: String,
    pub keys: PrivateKeys,
    /// `key=value` options passed to SESSION CREATE (i2cp and tunnel options).
    pub options: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionState {
    Starting,
    /// The session exists under this id.
    Up(String),
    /// The last attempt failed; retrying.
    Down(String),
}

enum Cmd {
    Lookup(String, oneshot::Sender<Result<Reply, SamError>>),
}

/// Handle to a SAM STREAM session kept alive by a background task.
#[derive(Clone)]
pub struct Session {
    sam_addr: String,
    state: watch::Receiver<SessionState>,
    cmds: mpsc::Sender<Cmd>,
    warm: Arc<WarmPool>,
}

/// SAM connections that already said HELLO, so opening a stream costs one round trip
/// (STREAM CONNECT) instead of three (TCP connect, HELLO, STREAM CONNECT).
#[derive(Default)]
struct WarmPool {
    conns: Mutex<Vec<(Conn, Instant)>>,
    filling: AtomicUsize,
}

/// Warm connections kept ready per session.
const WARM: usize = 2;
/// Older ones are dropped rather than trusted: the router may have timed them out.
const WARM_MAX_AGE: Duration = Duration::from_secs(30);

impl Session {
    /// Start the task that creates and keeps the session. Returns at once; use
    /// [`Session::wait_up`] to wait for the router.
    pub fn spawn(cfg: SessionConfig) -> Session {
        let (state_tx, state) = watch::channel(SessionState::Starting);
        let (cmds_tx, cmds) = mpsc::channel(64);
        let sam_addr = cfg.sam_addr.clone();
        tokio::spawn(keep_session(cfg, state_tx, cmds));
        Session {
            sam_addr,
            state,
            cmds: cmds_tx,
            warm: Arc::default(),
        }
    }

    pub fn state(&self) -> SessionState {
        self.state.borrow().clone()
    }

    /// Wait until the session is up; returns its id. While the first attempt is under way
    /// this waits; once an attempt has failed or the session was lost, it fails at once,
    /// so clients get a prompt failure reply instead of hanging while the router is away.
    pub async fn wait_up(&self) -> Result<String, SamError> {
        let mut rx = self.state.clone();
        loop {
            match &*rx.borrow_and_update() {
                SessionState::Up(id) => return Ok(id.clone()),
                SessionState::Down(why) => return Err(SamError::Down(why.clone())),
                SessionState::Starting => {}
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
            if let SessionState::Up(id) = &*rx.borrow_and_update() {
                return Ok(id.clone());
            }
            if rx.changed().await.is_err() {
                return Err(SamError::NoSession);
            }
        }
    }

    /// `NAMING LOOKUP` inside the session; returns the full destination.
    pub async fn lookup(&self, name: &str) -> Result<Destination, SamError> {
        self.wait_up().await?;
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
    /// (plus any bytes that arrived behind the status line).
    pub async fn connect(&self, dest: &str, port: u16) -> Result<(TcpStream, Vec<u8>), SamError> {
        let id = self.wait_up().await?;
        let warm = self.take_warm();
        self.refill();
        if let Some(c) = warm {
            match stream_connect(c, &id, dest, port).await {
                // A warm connection the router closed meanwhile: use a fresh one.
                Err(SamError::Io(_)) => {}
                other => return other,
            }
        }
        let c = Conn::connect(&self.sam_addr).await?;
        stream_connect(c, &id, dest, port).await
    }

    fn take_warm(&self) -> Option<Conn> {
        let mut conns = self.warm.conns.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((c, born)) = conns.pop() {
            if born.elapsed() < WARM_MAX_AGE {
                return Some(c);
            }
        }
        None
    }

    /// Top the warm pool up in the background.
    fn refill(&self) {
        let have = self.warm.conns.lock().map(|c| c.len()).unwrap_or(WARM);
        let filling = self.warm.filling.load(Ordering::Relaxed);
        for _ in (have + filling)..WARM {
            self.warm.filling.fetch_add(1, Ordering::Relaxed);
            let pool = Arc::downgrade(&self.warm);
            let addr = self.sam_addr.clone();
            tokio::spawn(async move {
                let c = Conn::connect(&addr).await;
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

/// `STREAM FORWARD`: the router connects to 127.0.0.1:`port` for every incoming stream of
/// the session (`silent`: without the caller's destination as a first line). Lasts while
/// the returned task runs; it ends when the router drops the forward.
pub async fn forward(
    sam_addr: &str,
    session_id: &str,
    port: u16,
    silent: bool,
) -> Result<tokio::task::JoinHandle<()>, SamError> {
    let mut c = Conn::connect(sam_addr).await?;
    let r = c
        .command(&format!(
            "STREAM FORWARD ID={session_id} PORT={port} HOST=127.0.0.1 SILENT={silent}"
        ))
        .await?;
    r.expect("STREAM", "STATUS")?;
    r.ok()?;
    Ok(tokio::spawn(async move {
        let _ = c.read_line().await;
    }))
}

async fn stream_connect(
    mut c: Conn,
    id: &str,
    dest: &str,
    port: u16,
) -> Result<(TcpStream, Vec<u8>), SamError> {
    let mut line = format!("STREAM CONNECT ID={id} DESTINATION={dest} SILENT=false");
    // Ports came with SAM 3.2; older bridges reject unknown keys.
    if port != 0 && c.minor >= 2 {
        let _ = write!(line, " TO_PORT={port}");
    }
    let r = c.command(&line).await?;
    r.expect("STREAM", "STATUS")?;
    r.ok()?;
    Ok(c.into_stream())
}

async fn keep_session(
    cfg: SessionConfig,
    state: watch::Sender<SessionState>,
    mut cmds: mpsc::Receiver<Cmd>,
) {
    let mut attempt: u32 = 0;
    let mut generation: u32 = 0;
    loop {
        generation += 1;
        let id = format!("{}-{}-{}", cfg.name, std::process::id(), generation);
        match create(&cfg, &id).await {
            Ok(conn) => {
                attempt = 0;
                let _ = state.send(SessionState::Up(id.clone()));
                info!(session = %id, "SAM session up at {}", cfg.sam_addr);
                let err = serve(conn, &mut cmds).await;
                if state.is_closed() && cmds.is_closed() {
                    return;
                }
                warn!(session = %id, "SAM session lost: {err}; recreating");
                let _ = state.send(SessionState::Down(err.to_string()));
            }
            Err(e) => {
                attempt += 1;
                let wait =
                    Duration::from_millis(500u64 << attempt.min(6)).min(Duration::from_secs(30));
                warn!(
                    "SAM session at {} not created: {e}; retrying in {:.1} s",
                    cfg.sam_addr,
                    wait.as_secs_f32()
                );
                let _ = state.send(SessionState::Down(e.to_string()));
                // Fail lookups that queued while the router was away instead of leaving them hanging.
                while let Ok(Cmd::Lookup(_, tx)) = cmds.try_recv() {
                    let _ = tx.send(Err(SamError::NoSession));
                }
                tokio::time::sleep(wait).await;
            }
        }
        if state.is_closed() && cmds.is_closed() {
            return;
        }
    }
}

async fn create(cfg: &SessionConfig, id: &str) -> Result<Conn, SamError> {
    let mut c = Conn::connect(&cfg.sam_addr).await?;
    let mut line = format!(
        "SESSION CREATE STYLE=STREAM ID={id} DESTINATION={}",
        cfg.keys.to_base64()
    );
    for (k, v) in &cfg.options {
        let _ = write!(line, " {k}={v}");
    }
    debug!(session = id, "creating SAM session");
    let r = c.command(&line).await?;
    r.expect("SESSION", "STATUS")?;
    r.ok()?;
    Ok(c)
}

/// Serve lookups and PINGs on the control connection until it fails.
async fn serve(mut c: Conn, cmds: &mut mpsc::Receiver<Cmd>) -> SamError {
    loop {
        tokio::select! {
            cmd = cmds.recv() => {
                let Some(Cmd::Lookup(name, tx)) = cmd else {
                    return SamError::NoSession;
                };
                let res = lookup_on(&mut c, &name).await;
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
async fn answer_unsolicited(c: &mut Conn, line: &str) -> Result<bool, SamError> {
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

async fn lookup_on(c: &mut Conn, name: &str) -> Result<Reply, SamError> {
    c.send_line(&format!("NAMING LOOKUP NAME={name}")).await?;
    loop {
        let line = c.read_line().await?;
        if answer_unsolicited(c, &line).await? {
            continue;
        }
        let r = Reply::parse(&line)?;
        if r.topic == "NAMING" {
            return Ok(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_replies() {
        let r = Reply::parse("HELLO REPLY RESULT=OK VERSION=3.1\n").unwrap();
        assert_eq!((r.topic.as_str(), r.kind.as_str()), ("HELLO", "REPLY"));
        assert_eq!(r.get("VERSION"), Some("3.1"));
        let r = Reply::parse(
            r#"STREAM STATUS RESULT=CANT_REACH_PEER MESSAGE="Can't find \"peer\" leaseset""#,
        )
        .unwrap();
        assert_eq!(r.get("RESULT"), Some("CANT_REACH_PEER"));
        assert_eq!(r.get("MESSAGE"), Some(r#"Can't find "peer" leaseset"#));
        let e = r.ok().unwrap_err();
        assert_eq!(e.result(), Some("CANT_REACH_PEER"));
        let r = Reply::parse("NAMING REPLY RESULT=KEY_NOT_FOUND NAME=x.i2p").unwrap();
        assert_eq!(r.get("NAME"), Some("x.i2p"));
        let r = Reply::parse("SESSION STATUS RESULT=OK DESTINATION=abc==~-").unwrap();
        assert_eq!(r.get("DESTINATION"), Some("abc==~-"));
        assert!(Reply::parse("").is_err());
        assert!(Reply::parse("A B MESSAGE=\"open").is_err());
        let r = Reply::parse("PING").unwrap();
        assert_eq!(r.kind, "");
    }
}
