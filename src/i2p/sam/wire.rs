//! The SAM v3 line protocol: reply lines and a command-mode socket.

use super::error::SamError;
use std::collections::HashMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a TCP connect plus HELLO may take: a bridge answers HELLO at once, so a socket
/// that accepts but stays silent is a wedged router, not a slow one.
pub const HELLO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Longest command line we send. Java I2P's SAM bridge closes the socket on a longer line,
/// and i2pd reads commands into a buffer of the same size.
pub const MAX_COMMAND: usize = 8 * 1024;

pub use crate::config::SamLogin;

/// Logins by bridge address, set once from the config: every SAM connection of the
/// process (sessions, streams, lookups, the CLI) says HELLO with the login of its bridge.
static LOGINS: std::sync::RwLock<Vec<(String, SamLogin)>> = std::sync::RwLock::new(Vec::new());

/// Use `login` (None: none) in HELLO to the bridge at `addr`.
pub fn set_login(addr: &str, login: Option<SamLogin>) {
    let mut l = LOGINS.write().unwrap_or_else(|e| e.into_inner());
    l.retain(|(a, _)| a != addr);
    if let Some(login) = login {
        l.push((addr.to_string(), login));
    }
}

fn login_for(addr: &str) -> Option<SamLogin> {
    let l = LOGINS.read().unwrap_or_else(|e| e.into_inner());
    l.iter().find(|(a, _)| a == addr).map(|(_, x)| x.clone())
}

/// `value` as a SAM 3 value: quoted, with `"` and `\` escaped, when it needs it.
pub fn quote(value: &str) -> String {
    if !value.is_empty() && !value.contains([' ', '\t', '"', '\\', '=']) {
        return value.to_string();
    }
    let mut q = String::with_capacity(value.len() + 2);
    q.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// What a bridge that wants a login, or refused ours, answers HELLO (Java I2P: "USER and
/// PASSWORD required", "Authorization failed").
fn wants_login(r: &ReplyLine) -> bool {
    r.get("MESSAGE").is_some_and(|m| {
        (m.contains("USER") && m.contains("PASSWORD")) || m.to_ascii_lowercase().contains("auth")
    })
}

/// Longest reply line accepted. Private-key blobs with post-quantum signatures are ~13 KB.
const MAX_LINE: usize = 64 * 1024;

/// One parsed reply line: `TOPIC KIND KEY=VALUE ...` (values may be "quoted").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyLine {
    pub topic: String,
    pub kind: String,
    pub params: HashMap<String, String>,
}

impl ReplyLine {
    pub fn parse(line: &str) -> Result<ReplyLine, SamError> {
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
        Ok(ReplyLine {
            topic,
            kind,
            params,
        })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }

    pub(crate) fn expect(&self, topic: &str, kind: &str) -> Result<(), SamError> {
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
    pub(crate) fn ok(&self) -> Result<(), SamError> {
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
pub struct SamSocket {
    tcp: TcpStream,
    buf: Vec<u8>,
    /// Negotiated minor version (3.x).
    pub minor: u8,
}

impl SamSocket {
    /// Connect and say HELLO, both within [`HELLO_TIMEOUT`].
    pub async fn connect(addr: &str) -> Result<SamSocket, SamError> {
        match tokio::time::timeout(HELLO_TIMEOUT, SamSocket::connect_unbounded(addr)).await {
            Ok(r) => r,
            Err(_) => Err(SamError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the SAM bridge at {addr} accepted the connection but did not answer HELLO \
                     within {} s",
                    HELLO_TIMEOUT.as_secs()
                ),
            ))),
        }
    }

    async fn connect_unbounded(addr: &str) -> Result<SamSocket, SamError> {
        let tcp = TcpStream::connect(addr).await?;
        // Command lines are small; Nagle would add delayed-ACK stalls to every round trip.
        tcp.set_nodelay(true)?;
        let mut c = SamSocket {
            tcp,
            buf: Vec::with_capacity(256),
            minor: 0,
        };
        let mut hello = String::from("HELLO VERSION MIN=3.1 MAX=3.3");
        let login = login_for(addr);
        if let Some(l) = &login {
            hello.push_str(&format!(
                " USER={} PASSWORD={}",
                quote(&l.user),
                quote(&l.password)
            ));
        }
        let r = c.command(&hello).await?;
        r.expect("HELLO", "REPLY")?;
        let refused = r.get("RESULT").is_some_and(|x| x != "OK");
        // Only an answer about the login is taken for one (not NOVERSION and the like).
        if refused && wants_login(&r) {
            return Err(SamError::Login(match login {
                None => format!(
                    "the SAM bridge at {addr} wants a login (sam.auth=true): set sam_user and \
                     sam_password_file in the config"
                ),
                Some(l) => format!(
                    "the SAM bridge at {addr} refused the login of user {:?}: check sam_user \
                     and the password",
                    l.user
                ),
            }));
        }
        r.ok()?;
        c.minor = r
            .get("VERSION")
            .and_then(|v| v.strip_prefix("3."))
            .and_then(|m| m.parse().ok())
            .unwrap_or(1);
        Ok(c)
    }

    pub async fn send_line(&mut self, line: &str) -> Result<(), SamError> {
        if line.len() >= MAX_COMMAND {
            // Sent, the bridge would close the connection without a word.
            let head: String = line.split(' ').take(2).collect::<Vec<_>>().join(" ");
            return Err(SamError::Protocol(format!(
                "{head} would be {} bytes, over the {MAX_COMMAND}-byte command line SAM bridges \
                 accept (a smaller signature_type, or fewer options)",
                line.len() + 1
            )));
        }
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
            // Straight into the buffer's spare room: a 4 KiB array here would be zeroed on
            // every read and live in every future that awaits a SAM reply (spawned tasks
            // are copied whole, several times, when spawned and when done).
            self.buf.reserve(4096);
            let n = self.tcp.read_buf(&mut self.buf).await?;
            if n == 0 {
                return Err(SamError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "SAM bridge closed the connection",
                )));
            }
        }
    }

    pub async fn command(&mut self, line: &str) -> Result<ReplyLine, SamError> {
        self.send_line(line).await?;
        let line = self.read_line().await?;
        ReplyLine::parse(&line)
    }

    /// Whether the bridge closed (or reset) this idle socket: a warm connection the router
    /// timed out must not be taken for a stream it then refuses.
    pub fn is_closed(&self) -> bool {
        let mut b = [0u8; 1];
        match self.tcp.try_read(&mut b) {
            // Unsolicited bytes on an idle command socket: not usable either.
            Ok(_) => true,
            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
        }
    }

    /// Hand over the socket for stream data, with whatever was read past the last line.
    pub fn into_stream(self) -> (TcpStream, Vec<u8>) {
        (self.tcp, self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A warm-pool refill is a task of its own per stream: its future is copied whole when
    /// spawned and when it ends, so it must stay small (it held a 4 KiB read array).
    #[test]
    fn connect_future_is_small() {
        let f = SamSocket::connect("127.0.0.1:1");
        assert!(
            std::mem::size_of_val(&f) < 1024,
            "{} bytes",
            std::mem::size_of_val(&f)
        );
    }

    #[test]
    fn parse_replies() {
        let r = ReplyLine::parse("HELLO REPLY RESULT=OK VERSION=3.1\n").unwrap();
        assert_eq!((r.topic.as_str(), r.kind.as_str()), ("HELLO", "REPLY"));
        assert_eq!(r.get("VERSION"), Some("3.1"));
        let r = ReplyLine::parse(
            r#"STREAM STATUS RESULT=CANT_REACH_PEER MESSAGE="Can't find \"peer\" leaseset""#,
        )
        .unwrap();
        assert_eq!(r.get("RESULT"), Some("CANT_REACH_PEER"));
        assert_eq!(r.get("MESSAGE"), Some(r#"Can't find "peer" leaseset"#));
        let e = r.ok().unwrap_err();
        assert_eq!(e.result(), Some("CANT_REACH_PEER"));
        let r = ReplyLine::parse("NAMING REPLY RESULT=KEY_NOT_FOUND NAME=x.i2p").unwrap();
        assert_eq!(r.get("NAME"), Some("x.i2p"));
        let r = ReplyLine::parse("SESSION STATUS RESULT=OK DESTINATION=abc==~-").unwrap();
        assert_eq!(r.get("DESTINATION"), Some("abc==~-"));
        assert!(ReplyLine::parse("").is_err());
        assert!(ReplyLine::parse("A B MESSAGE=\"open").is_err());
        let r = ReplyLine::parse("PING").unwrap();
        assert_eq!(r.kind, "");
    }
}
