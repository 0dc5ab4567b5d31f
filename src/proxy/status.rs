//! Counters per listener, and a loopback status endpoint: `/status` (JSON) and `/metrics`
//! (Prometheus text). Only b32 addresses appear, never keys, targets or usernames.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing::warn;

/// Reply codes counted: SOCKS5 0x00..=0x08 (SOCKS4 replies are counted by the SOCKS5 code
/// they stand for), and handshakes that failed (refused, malformed, timed out, cut).
pub const CODES: usize = 10;
const CLOSED: usize = 9;

#[derive(Default)]
pub struct Stats {
    pub connections: AtomicU64,
    pub streams_opened: AtomicU64,
    pub streams_active: AtomicU64,
    pub bytes_up: AtomicU64,
    pub bytes_down: AtomicU64,
    replies: [AtomicU64; CODES],
}

impl Stats {
    pub fn reply(&self, code: u8) {
        let i = (code as usize).min(CLOSED - 1);
        self.replies[i].fetch_add(1, Ordering::Relaxed);
    }
    pub fn handshake_failed(&self) {
        self.replies[CLOSED].fetch_add(1, Ordering::Relaxed);
    }
    fn get(a: &AtomicU64) -> u64 {
        a.load(Ordering::Relaxed)
    }
}

/// What the endpoint reports about one listener.
pub struct ListenerInfo {
    pub name: String,
    pub listen: String,
    /// b32, or "per-username"
    pub identity: String,
    pub stats: Arc<Stats>,
    pub session_up: Box<dyn Fn() -> bool + Send + Sync>,
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
        if k > 0 {
            o.push(',');
        }
        let _ = write!(
            o,
            "{{\"name\":{},\"listen\":{},\"identity\":{},\"session_up\":{},\"per_user_identities\":{},\
             \"connections\":{},\"streams_opened\":{},\"streams_active\":{},\"bytes_up\":{},\"bytes_down\":{},\"replies\":{{",
            json_str(&l.name),
            json_str(&l.listen),
            json_str(&l.identity),
            (l.session_up)(),
            (l.per_user_identities)(),
            Stats::get(&s.connections),
            Stats::get(&s.streams_opened),
            Stats::get(&s.streams_active),
            Stats::get(&s.bytes_up),
            Stats::get(&s.bytes_down),
        );
        for (i, n) in REPLY_NAMES.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            let _ = write!(o, "\"{n}\":{}", Stats::get(&s.replies[i]));
        }
        o.push_str("}}");
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
    let simple: [(&str, &str, &str, Getter); 7] = [
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
            "session_up",
            "1 when the router session of the listener exists",
            "gauge",
            |l| (l.session_up)() as u64,
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

/// Serve `/status` and `/metrics` on a loopback listener.
pub async fn serve(
    l: TcpListener,
    listeners: Arc<std::sync::RwLock<Vec<Arc<ListenerInfo>>>>,
    kind: &'static str,
    sam: String,
) {
    loop {
        let Ok((mut s, _)) = l.accept().await else {
            continue;
        };
        let listeners = listeners.clone();
        let sam = sam.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            let mut n = 0;
            // The request line is all we need.
            while n < buf.len() && !buf[..n].contains(&b'\n') {
                match tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf[n..]))
                    .await
                {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
                    Ok(Ok(k)) => n += k,
                }
            }
            let listeners = listeners.read().map(|l| l.clone()).unwrap_or_default();
            let line = String::from_utf8_lossy(&buf[..n]);
            let path = line.split_whitespace().nth(1).unwrap_or("");
            let (status, ctype, body) = match path {
                "/status" | "/" => ("200 OK", "application/json", json(&listeners, kind, &sam)),
                "/metrics" => (
                    "200 OK",
                    "text/plain; version=0.0.4",
                    prometheus(&listeners),
                ),
                _ => (
                    "404 Not Found",
                    "text/plain",
                    "try /status or /metrics\n".into(),
                ),
            };
            let resp = format!(
                "HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            if let Err(e) = s.write_all(resp.as_bytes()).await {
                warn!("status endpoint: {e}");
            }
        });
    }
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
            identity: "x.b32.i2p".into(),
            stats,
            session_up: Box::new(|| true),
            per_user_identities: Box::new(|| 0),
        })];
        let j = json(&l, "sam", "127.0.0.1:7656");
        assert!(j.starts_with("{\"router\":{\"kind\":\"sam\","), "{j}");
        assert!(
            j.contains("\"connections\":3") && j.contains("\"not_allowed\":1"),
            "{j}"
        );
        assert!(j.contains("\"handshake_failed\":1"));
        let p = prometheus(&l);
        assert!(
            p.contains("eepsocks_connections_total{listener=\"main\"} 3"),
            "{p}"
        );
        assert!(p.contains("eepsocks_replies_total{listener=\"main\",reply=\"succeeded\"} 1"));
        assert_eq!(json_str("a\"b\n"), "\"a\\\"b\\u000a\"");
    }
}
