//! Counters per listener, and a loopback status endpoint: `/status` (JSON) and `/metrics`
//! (Prometheus text). Only b32 addresses appear, never keys, targets or usernames.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Reply codes counted: SOCKS5 0x00..=0x08 (SOCKS4 and HTTP CONNECT replies are counted by
/// the SOCKS5 code they stand for), Tor's extended codes 0xF0..=0xF7 together, and
/// handshakes that failed (refused, malformed, timed out, cut).
pub const CODES: usize = 11;
const EXTENDED: usize = 9;
const CLOSED: usize = 10;

#[derive(Default)]
pub struct Stats {
    pub connections: AtomicU64,
    pub streams_opened: AtomicU64,
    pub streams_active: AtomicU64,
    pub bytes_up: AtomicU64,
    pub bytes_down: AtomicU64,
    /// Streams that ran through a leak filter.
    pub filtered_streams: AtomicU64,
    /// Lines or headers the leak filters dropped or rewrote.
    pub filter_changes: AtomicU64,
    /// Filtered streams whose filter stood aside (the server accepted a protocol switch).
    pub filter_stopped: AtomicU64,
    /// Filtered streams closed because their filter met something it could not parse.
    pub filter_closed: AtomicU64,
    /// UDP associations and their datagrams.
    pub udp: crate::proxy::udp::UdpStats,
    /// Automap (on the listener that serves it): DNS queries received, and of them those
    /// answered REFUSED (not an I2P name) and those dropped or answered FORMERR/NOTIMP.
    pub dns_queries: AtomicU64,
    pub dns_refused: AtomicU64,
    pub dns_malformed: AtomicU64,
    /// Automap DNS queries for new names answered REFUSED past their source's rate.
    pub dns_rate_limited: AtomicU64,
    /// Connections on the transparent port, and of them those closed because their
    /// original destination was no virtual address of this listener.
    pub transparent: AtomicU64,
    pub transparent_refused: AtomicU64,
    replies: [AtomicU64; CODES],
}

impl Stats {
    pub fn reply(&self, code: u8) {
        let i = match code {
            0..=8 => code as usize,
            0xF0..=0xF7 => EXTENDED,
            _ => 1,
        };
        self.replies[i].fetch_add(1, Ordering::Relaxed);
    }
    pub fn handshake_failed(&self) {
        self.replies[CLOSED].fetch_add(1, Ordering::Relaxed);
    }
    fn get(a: &AtomicU64) -> u64 {
        a.load(Ordering::Relaxed)
    }
}

pub use crate::i2p::identity::SessionView;

/// What the endpoint reports about one listener.
pub struct ListenerInfo {
    pub name: String,
    pub listen: String,
    /// b32, or "per-username" (a function: a new identity's keys come from the router)
    pub identity: Box<dyn Fn() -> String + Send + Sync>,
    pub stats: Arc<Stats>,
    /// The state of the listener's own session.
    pub session: Box<dyn Fn() -> SessionView + Send + Sync>,
    pub per_user_identities: Box<dyn Fn() -> usize + Send + Sync>,
}

const REPLY_NAMES: [&str; CODES] = [
    "succeeded",
    "general_failure",
    "not_allowed",
    "network_unreachable",
    "host_unreachable",
    "connection_refused",
    "ttl_expired",
    "command_not_supported",
    "address_type_not_supported",
    "extended_error",
    "handshake_failed",
];

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// `kind`: "sam" (an external router) or "embedded".
pub fn json(listeners: &[Arc<ListenerInfo>], kind: &str, sam: &str) -> String {
    let mut o = format!(
        "{{\"router\":{{\"kind\":{},\"sam\":{}}},\"listeners\":[",
        json_str(kind),
        json_str(sam)
    );
    for (k, l) in listeners.iter().enumerate() {
        let s = &l.stats;
        let session = (l.session)();
        if k > 0 {
            o.push(',');
        }
        let _ = write!(
            o,
            "{{\"name\":{},\"listen\":{},\"identity\":{},\"session_up\":{},\"session\":{},\"session_since\":{},\"session_error\":{},\"post_quantum\":{},\"session_style\":{},\"udp_subsession\":{},\"per_user_identities\":{},\
             \"connections\":{},\"streams_opened\":{},\"streams_active\":{},\"bytes_up\":{},\"bytes_down\":{},\"filtered_streams\":{},\"filter_changes\":{},\"filter_stopped\":{},\"filter_closed\":{},\
             \"dns_queries\":{},\"dns_refused\":{},\"dns_malformed\":{},\"dns_rate_limited\":{},\"transparent\":{},\"transparent_refused\":{},\"replies\":{{",
            json_str(&l.name),
            json_str(&l.listen),
            json_str(&(l.identity)()),
            session.is_up(),
            json_str(session.state),
            session.since.map_or("null".to_string(), |t| t.to_string()),
            session.error.as_deref().map_or("null".to_string(), json_str),
            session.post_quantum.map_or("null".to_string(), |b| b.to_string()),
            session.style.map_or("null".to_string(), json_str),
            session.udp_subsession.map_or("null".to_string(), json_str),
            (l.per_user_identities)(),
            Stats::get(&s.connections),
            Stats::get(&s.streams_opened),
            Stats::get(&s.streams_active),
            Stats::get(&s.bytes_up),
            Stats::get(&s.bytes_down),
            Stats::get(&s.filtered_streams),
            Stats::get(&s.filter_changes),
            Stats::get(&s.filter_stopped),
            Stats::get(&s.filter_closed),
            Stats::get(&s.dns_queries),
            Stats::get(&s.dns_refused),
            Stats::get(&s.dns_malformed),
            Stats::get(&s.dns_rate_limited),
            Stats::get(&s.transparent),
            Stats::get(&s.transparent_refused),
        );
        for (i, n) in REPLY_NAMES.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            let _ = write!(o, "\"{n}\":{}", Stats::get(&s.replies[i]));
        }
        o.push('}');
        for (n, v) in s.udp.fields() {
            let _ = write!(o, ",\"{n}\":{v}");
        }
        o.push('}');
    }
    o.push_str("]}\n");
    o
}

pub fn prometheus(listeners: &[Arc<ListenerInfo>]) -> String {
    let mut o = String::new();
    let metric = |o: &mut String, name: &str, help: &str, kind: &str| {
        let _ = writeln!(
            o,
            "# HELP eepsocks_{name} {help}\n# TYPE eepsocks_{name} {kind}"
        );
    };
    type Getter = fn(&ListenerInfo) -> u64;
    let simple: [(&str, &str, &str, Getter); 17] = [
        (
            "connections_total",
            "SOCKS connections accepted",
            "counter",
            |l| Stats::get(&l.stats.connections),
        ),
        (
            "streams_opened_total",
            "I2P streams opened",
            "counter",
            |l| Stats::get(&l.stats.streams_opened),
        ),
        ("streams_active", "I2P streams open now", "gauge", |l| {
            Stats::get(&l.stats.streams_active)
        }),
        (
            "bytes_up_total",
            "bytes from clients into I2P",
            "counter",
            |l| Stats::get(&l.stats.bytes_up),
        ),
        (
            "bytes_down_total",
            "bytes from I2P to clients",
            "counter",
            |l| Stats::get(&l.stats.bytes_down),
        ),
        (
            "filtered_streams_total",
            "streams run through a leak filter",
            "counter",
            |l| Stats::get(&l.stats.filtered_streams),
        ),
        (
            "filter_changes_total",
            "lines or headers the leak filters dropped or rewrote",
            "counter",
            |l| Stats::get(&l.stats.filter_changes),
        ),
        (
            "filter_stopped_total",
            "filtered streams whose filter stood aside after an accepted protocol switch",
            "counter",
            |l| Stats::get(&l.stats.filter_stopped),
        ),
        (
            "filter_closed_total",
            "filtered streams closed because their filter met something it could not parse",
            "counter",
            |l| Stats::get(&l.stats.filter_closed),
        ),
        (
            "dns_queries_total",
            "automap DNS queries received",
            "counter",
            |l| Stats::get(&l.stats.dns_queries),
        ),
        (
            "dns_refused_total",
            "automap DNS queries answered REFUSED (not an I2P name)",
            "counter",
            |l| Stats::get(&l.stats.dns_refused),
        ),
        (
            "dns_malformed_total",
            "automap DNS messages dropped or answered FORMERR/NOTIMP",
            "counter",
            |l| Stats::get(&l.stats.dns_malformed),
        ),
        (
            "dns_rate_limited_total",
            "automap DNS queries for new names refused past their source's rate",
            "counter",
            |l| Stats::get(&l.stats.dns_rate_limited),
        ),
        (
            "transparent_total",
            "connections on the automap transparent port",
            "counter",
            |l| Stats::get(&l.stats.transparent),
        ),
        (
            "transparent_refused_total",
            "transparent connections closed: not to a virtual address of this listener",
            "counter",
            |l| Stats::get(&l.stats.transparent_refused),
        ),
        (
            "session_up",
            "1 when the router session of the listener exists",
            "gauge",
            |l| (l.session)().is_up() as u64,
        ),
        (
            "per_user_identities",
            "per-username identities open",
            "gauge",
            |l| (l.per_user_identities)() as u64,
        ),
    ];
    for (name, help, kind, get) in simple {
        metric(&mut o, name, help, kind);
        for l in listeners {
            let _ = writeln!(o, "eepsocks_{name}{{listener=\"{}\"}} {}", l.name, get(l));
        }
    }
    // UDP: one metric per counter, `_total` for counters; active associations are a gauge.
    let udp: Vec<_> = listeners.iter().map(|l| l.stats.udp.fields()).collect();
    if let Some(first) = udp.first() {
        for (i, (n, _)) in first.iter().enumerate() {
            let (name, kind) = if *n == "udp_associations_active" {
                (n.to_string(), "gauge")
            } else {
                (format!("{n}_total"), "counter")
            };
            metric(&mut o, &name, "UDP ASSOCIATE (docs/protocol.md)", kind);
            for (l, fields) in listeners.iter().zip(&udp) {
                let v = fields[i].1;
                let _ = writeln!(o, "eepsocks_{name}{{listener=\"{}\"}} {v}", l.name);
            }
        }
    }
    metric(
        &mut o,
        "replies_total",
        "replies sent, by SOCKS5 reply code",
        "counter",
    );
    for l in listeners {
        for (i, n) in REPLY_NAMES.iter().enumerate() {
            let _ = writeln!(
                o,
                "eepsocks_replies_total{{listener=\"{}\",reply=\"{n}\"}} {}",
                l.name,
                Stats::get(&l.stats.replies[i])
            );
        }
    }
    o
}

/// Status connections served at once; more are closed at accept.
pub const MAX_STATUS_CONNECTIONS: usize = 16;
/// One deadline for the whole request (not per read: a byte every few seconds must not hold
/// a connection open).
const REQUEST_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);
/// Longest request head read.
const MAX_REQUEST: usize = 8 * 1024;

/// Why a request is not answered with the status.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not a complete, well-formed GET.
    BadRequest,
    /// A Host other than this endpoint's loopback address, or sent by a web page: DNS
    /// rebinding would otherwise let any site the user opens read the b32s.
    Forbidden,
    NotFound,
}

/// Check a request head (up to the blank line) sent to the endpoint on `port`; the path.
pub fn check_request(head: &str, port: u16) -> Result<&str, Refused> {
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let (Some("GET"), Some(path), Some(version)) = (first.next(), first.next(), first.next())
    else {
        return Err(Refused::BadRequest);
    };
    if !version.starts_with("HTTP/1.") {
        return Err(Refused::BadRequest);
    }
    let mut host = None;
    for l in lines.filter(|l| !l.is_empty()) {
        let (k, v) = l.split_once(':').ok_or(Refused::BadRequest)?;
        let v = v.trim();
        match k.trim().to_ascii_lowercase().as_str() {
            "host" if host.is_some() => return Err(Refused::BadRequest),
            "host" => host = Some(v.to_ascii_lowercase()),
            // Browsers mark requests a page makes; a person or a scraper sends neither.
            "origin" => return Err(Refused::Forbidden),
            "sec-fetch-site" if v != "none" => return Err(Refused::Forbidden),
            _ => {}
        }
    }
    let allowed = ["127.0.0.1", "localhost", "[::1]"].map(|h| format!("{h}:{port}"));
    match host {
        Some(h) if allowed.contains(&h) => {}
        _ => return Err(Refused::Forbidden),
    }
    match path {
        "/status" | "/" | "/metrics" => Ok(path),
        _ => Err(Refused::NotFound),
    }
}

/// Serve `/status` and `/metrics` on a loopback listener.
pub async fn serve(
    l: TcpListener,
    listeners: Arc<std::sync::RwLock<Vec<Arc<ListenerInfo>>>>,
    kind: &'static str,
    sam: String,
) {
    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_STATUS_CONNECTIONS));
    loop {
        let (mut s, _) = crate::proxy::server::accept(&l).await;
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let listeners = listeners.clone();
        let sam = sam.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let Ok(Some(head)) = tokio::time::timeout(REQUEST_DEADLINE, read_head(&mut s)).await
            else {
                return;
            };
            let (status, ctype, body) = match check_request(&head, port) {
                Ok("/metrics") => {
                    let l = listeners.read().map(|l| l.clone()).unwrap_or_default();
                    ("200 OK", "text/plain; version=0.0.4", prometheus(&l))
                }
                Ok(_) => {
                    let l = listeners.read().map(|l| l.clone()).unwrap_or_default();
                    ("200 OK", "application/json", json(&l, kind, &sam))
                }
                Err(Refused::BadRequest) => {
                    ("400 Bad Request", "text/plain", "bad request\n".into())
                }
                Err(Refused::Forbidden) => (
                    "403 Forbidden",
                    "text/plain",
                    format!("only for requests to 127.0.0.1:{port}, not from web pages\n"),
                ),
                Err(Refused::NotFound) => (
                    "404 Not Found",
                    "text/plain",
                    "try /status or /metrics\n".into(),
                ),
            };
            let resp = format!(
                "HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tokio::time::timeout(REQUEST_DEADLINE, s.write_all(resp.as_bytes())).await;
        });
    }
}

/// The request head, up to the blank line; None if the client closes first or sends more
/// than `MAX_REQUEST` bytes.
async fn read_head(s: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() + n > MAX_REQUEST {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders() {
        let stats = Arc::new(Stats::default());
        stats.connections.fetch_add(3, Ordering::Relaxed);
        stats.reply(0);
        stats.reply(2);
        stats.reply(91); // clamps, never panics
        stats.handshake_failed();
        let l = vec![Arc::new(ListenerInfo {
            name: "main".into(),
            listen: "127.0.0.1:4447".into(),
            identity: Box::new(|| "x.b32.i2p".into()),
            stats,
            session: Box::new(|| SessionView {
                state: "creating",
                since: Some(1_700_000_000),
                error: None,
                post_quantum: Some(true),
                style: Some("PRIMARY"),
                udp_subsession: Some("DATAGRAM"),
            }),
            per_user_identities: Box::new(|| 0),
        })];
        let j = json(&l, "sam", "127.0.0.1:7656");
        assert!(j.starts_with("{\"router\":{\"kind\":\"sam\","), "{j}");
        assert!(
            j.contains("\"connections\":3") && j.contains("\"not_allowed\":1"),
            "{j}"
        );
        assert!(j.contains("\"handshake_failed\":1"));
        assert!(j.contains("\"post_quantum\":true"), "{j}");
        assert!(
            j.contains("\"session_style\":\"PRIMARY\",\"udp_subsession\":\"DATAGRAM\""),
            "{j}"
        );
        let p = prometheus(&l);
        assert!(
            p.contains("eepsocks_connections_total{listener=\"main\"} 3"),
            "{p}"
        );
        assert!(p.contains("eepsocks_replies_total{listener=\"main\",reply=\"succeeded\"} 1"));
        assert_eq!(json_str("a\"b\n"), "\"a\\\"b\\u000a\"");
    }

    #[test]
    fn only_local_requests_not_from_pages() {
        let ok = "GET /status HTTP/1.1\r\nHost: 127.0.0.1:4446\r\nUser-Agent: curl";
        assert_eq!(check_request(ok, 4446), Ok("/status"));
        for h in ["localhost:4446", "[::1]:4446", "LOCALHOST:4446"] {
            let r = format!("GET /metrics HTTP/1.0\r\nHost: {h}");
            assert_eq!(check_request(&r, 4446), Ok("/metrics"), "{h}");
        }
        let forbidden = [
            // DNS rebinding: the page's own name in Host.
            "GET /status HTTP/1.1\r\nHost: attacker.example:4446",
            "GET /status HTTP/1.1\r\nHost: 127.0.0.1:4447",
            "GET /status HTTP/1.1\r\nHost: 127.0.0.1",
            "GET /status HTTP/1.0",
            "GET /status HTTP/1.1\r\nHost: 127.0.0.1:4446\r\nOrigin: http://attacker.example",
            "GET /status HTTP/1.1\r\nHost: 127.0.0.1:4446\r\nSec-Fetch-Site: cross-site",
            "GET /status HTTP/1.1\r\nHost: 127.0.0.1:4446\r\nSec-Fetch-Site: same-origin",
        ];
        for r in forbidden {
            assert_eq!(check_request(r, 4446), Err(Refused::Forbidden), "{r}");
        }
        let bad = [
            "POST /status HTTP/1.1\r\nHost: 127.0.0.1:4446",
            "GET /status\r\nHost: 127.0.0.1:4446",
            "GET /status HTTP/1.1\r\nHost: 127.0.0.1:4446\r\nHost: 127.0.0.1:4446",
            "GET /status HTTP/1.1\r\nno colon",
            "",
        ];
        for r in bad {
            assert_eq!(check_request(r, 4446), Err(Refused::BadRequest), "{r:?}");
        }
        let r = "GET /keys HTTP/1.1\r\nHost: 127.0.0.1:4446";
        assert_eq!(check_request(r, 4446), Err(Refused::NotFound));
    }
}
