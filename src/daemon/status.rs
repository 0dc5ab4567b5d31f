//! The status endpoint on loopback: `/status` (JSON) and `/metrics` (Prometheus text),
//! about the running listeners. Only b32 addresses appear, never keys, targets or
//! usernames. `json` and `prometheus` are pure: they render the counters of
//! `proxy::stats` from its one table.

use crate::proxy::stats::{COUNTERS, UDP_COUNTERS};
use std::fmt::Write as _;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub use crate::i2p::identity::SessionView;
pub use crate::proxy::stats::ListenerInfo;

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
        if k > 0 {
            o.push(',');
        }
        json_listener(&mut o, l);
    }
    o.push_str("]}\n");
    o
}

fn json_listener(o: &mut String, l: &ListenerInfo) {
    let s = &l.stats;
    let session = (l.session)();
    let null = || "null".to_string();
    let _ = write!(
        o,
        "{{\"name\":{},\"listen\":{},\"identity\":{},\"session_up\":{},\"session\":{},\"session_since\":{},\"session_error\":{},\"post_quantum\":{},\"session_style\":{},\"udp_subsession\":{},\"per_user_identities\":{}",
        json_str(&l.name),
        json_str(&l.listen),
        json_str(&(l.identity)()),
        session.is_up(),
        json_str(session.state),
        session.since.map_or_else(null, |t| t.to_string()),
        session.error.as_deref().map_or_else(null, json_str),
        session.post_quantum.map_or_else(null, |b| b.to_string()),
        session.style.map_or_else(null, json_str),
        session.udp_subsession.map_or_else(null, json_str),
        (l.per_user_identities)(),
    );
    for c in &COUNTERS {
        let _ = write!(o, ",\"{}\":{}", c.name, c.get(s));
    }
    o.push_str(",\"replies\":{");
    for (i, (n, v)) in s.replies().enumerate() {
        if i > 0 {
            o.push(',');
        }
        let _ = write!(o, "\"{n}\":{v}");
    }
    o.push('}');
    for c in &UDP_COUNTERS {
        let _ = write!(o, ",\"{}\":{}", c.name, c.get(s));
    }
    o.push('}');
}

pub fn prometheus(listeners: &[Arc<ListenerInfo>]) -> String {
    let mut o = String::new();
    let mut metric = |name: &str, help: &str, gauge: bool, value: &dyn Fn(&ListenerInfo) -> u64| {
        let (name, kind) = if gauge {
            (name.to_string(), "gauge")
        } else {
            (format!("{name}_total"), "counter")
        };
        let _ = writeln!(
            o,
            "# HELP eepsocks_{name} {help}\n# TYPE eepsocks_{name} {kind}"
        );
        for l in listeners {
            let _ = writeln!(o, "eepsocks_{name}{{listener=\"{}\"}} {}", l.name, value(l));
        }
    };
    for c in &COUNTERS {
        metric(c.name, c.help, c.gauge, &|l| c.get(&l.stats));
    }
    let up = |l: &ListenerInfo| (l.session)().is_up() as u64;
    metric(
        "session_up",
        "1 when the router session of the listener exists",
        true,
        &up,
    );
    let users = |l: &ListenerInfo| (l.per_user_identities)() as u64;
    metric(
        "per_user_identities",
        "per-username identities open",
        true,
        &users,
    );
    // Not per listener where none runs: the UDP rows stand only beside a listener.
    if !listeners.is_empty() {
        for c in &UDP_COUNTERS {
            metric(c.name, c.help, c.gauge, &|l| c.get(&l.stats));
        }
    }
    let _ = writeln!(
        o,
        "# HELP eepsocks_replies_total replies sent, by SOCKS5 reply code\n# TYPE eepsocks_replies_total counter"
    );
    for l in listeners {
        for (n, v) in l.stats.replies() {
            let _ = writeln!(
                o,
                "eepsocks_replies_total{{listener=\"{}\",reply=\"{n}\"}} {v}",
                l.name
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
pub async fn serve_endpoint(
    l: TcpListener,
    listeners: Arc<std::sync::RwLock<Vec<Arc<ListenerInfo>>>>,
    kind: &'static str,
    sam: String,
) {
    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_STATUS_CONNECTIONS));
    loop {
        let (mut s, _) = crate::proxy::client::accept(&l).await;
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
    use crate::proxy::stats::Stats;
    use std::sync::atomic::Ordering;

    /// Every counter a distinct value, so that a swapped row shows.
    fn sample() -> Vec<Arc<ListenerInfo>> {
        use std::sync::atomic::{AtomicU64, Ordering};
        let s = Stats::default();
        let all: [&AtomicU64; 30] = [
            &s.connections,
            &s.streams_opened,
            &s.streams_active,
            &s.bytes_up,
            &s.bytes_down,
            &s.filtered_streams,
            &s.filter_changes,
            &s.filter_stopped,
            &s.filter_closed,
            &s.dns_queries,
            &s.dns_refused,
            &s.dns_malformed,
            &s.dns_rate_limited,
            &s.transparent,
            &s.transparent_refused,
            &s.udp.associations_opened,
            &s.udp.associations_active,
            &s.udp.associations_failed,
            &s.udp.datagrams_up,
            &s.udp.datagrams_down,
            &s.udp.bytes_up,
            &s.udp.bytes_down,
            &s.udp.dropped_oversize,
            &s.udp.dropped_fragment,
            &s.udp.dropped_not_i2p,
            &s.udp.dropped_source,
            &s.udp.dropped_malformed,
            &s.udp.dropped_rate,
            &s.udp.dropped_unsent,
            &s.udp.dropped_queue,
        ];
        for (i, a) in all.iter().enumerate() {
            a.store(100 + i as u64, Ordering::Relaxed);
        }
        for code in 0..=8u8 {
            for _ in 0..200 + code {
                s.reply(code);
            }
        }
        for _ in 0..209 {
            s.reply(0xF1);
        }
        for _ in 0..210 {
            s.handshake_failed();
        }
        let s = Arc::new(s);
        let info = |name: &str, up: bool| {
            Arc::new(ListenerInfo {
                name: name.into(),
                listen: "127.0.0.1:4447".into(),
                identity: Box::new(|| "x.b32.i2p".into()),
                stats: s.clone(),
                session: Box::new(move || SessionView {
                    state: if up { "up" } else { "creating" },
                    since: up.then_some(1_700_000_000),
                    error: (!up).then(|| "no \"router\"".into()),
                    post_quantum: up.then_some(false),
                    style: up.then_some("PRIMARY"),
                    udp_subsession: up.then_some("DATAGRAM"),
                }),
                per_user_identities: Box::new(|| 7),
            })
        };
        vec![info("main", true), info("other", false)]
    }

    /// The output before the counters had one table, byte for byte (with `session_style`
    /// and `udp_subsession` since): scripts and dashboards read these names and this order.
    #[test]
    fn output_is_unchanged() {
        let l = sample();
        assert_eq!(
            json(&l, "sam", "127.0.0.1:7656"),
            include_str!("testdata/status.json")
        );
        assert_eq!(prometheus(&l), include_str!("testdata/status.prom"));
        assert_eq!(
            json(&[], "embedded", ""),
            "{\"router\":{\"kind\":\"embedded\",\"sam\":\"\"},\"listeners\":[]}\n"
        );
    }

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
