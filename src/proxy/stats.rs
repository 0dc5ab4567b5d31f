//! Counters per listener, and the one table that names them: the status endpoint
//! (`daemon::status`) renders both its JSON and its Prometheus text from `COUNTERS`,
//! `UDP_COUNTERS` and `REPLY_NAMES`, so a counter is listed once.

use crate::i2p::identity::SessionView;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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
    pub udp: UdpStats,
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
    /// Replies sent with each code, in `REPLY_NAMES`' order.
    pub fn replies(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        REPLY_NAMES
            .iter()
            .zip(&self.replies)
            .map(|(n, a)| (*n, get(a)))
    }
}

/// What the status endpoint (`daemon::status`) reports about one listener.
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

/// UDP counters of a listener (status endpoint).
#[derive(Default)]
pub struct UdpStats {
    pub associations_opened: AtomicU64,
    pub associations_active: AtomicU64,
    /// Refused: the listener's association limit, or no datagram session.
    pub associations_failed: AtomicU64,
    pub datagrams_up: AtomicU64,
    pub datagrams_down: AtomicU64,
    pub bytes_up: AtomicU64,
    pub bytes_down: AtomicU64,
    pub dropped_oversize: AtomicU64,
    pub dropped_fragment: AtomicU64,
    /// IP literals and clearnet names: never sent.
    pub dropped_not_i2p: AtomicU64,
    /// From another address (or port) than the control connection's client.
    pub dropped_source: AtomicU64,
    pub dropped_malformed: AtomicU64,
    pub dropped_rate: AtomicU64,
    /// Names not found, lookups failed, or the router refused the datagram.
    pub dropped_unsent: AtomicU64,
    /// Names to look up: past the lookups or the datagrams an association may have waiting.
    pub dropped_queue: AtomicU64,
}

/// One counter as the status endpoint shows it: `name` in the JSON, `eepsocks_{name}` (with
/// `_total` unless a gauge) in Prometheus.
pub struct Counter {
    pub name: &'static str,
    pub help: &'static str,
    /// A value that goes down too (open now), not a running total.
    pub gauge: bool,
    pub value: fn(&Stats) -> u64,
}

impl Counter {
    pub fn get(&self, s: &Stats) -> u64 {
        (self.value)(s)
    }
}

fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

const fn counter(name: &'static str, help: &'static str, value: fn(&Stats) -> u64) -> Counter {
    Counter {
        name,
        help,
        gauge: false,
        value,
    }
}

/// The listener's counters, in the order the endpoint shows them.
pub const COUNTERS: [Counter; 15] = [
    counter("connections", "SOCKS connections accepted", |s| {
        get(&s.connections)
    }),
    counter("streams_opened", "I2P streams opened", |s| {
        get(&s.streams_opened)
    }),
    Counter {
        name: "streams_active",
        help: "I2P streams open now",
        gauge: true,
        value: |s| get(&s.streams_active),
    },
    counter("bytes_up", "bytes from clients into I2P", |s| {
        get(&s.bytes_up)
    }),
    counter("bytes_down", "bytes from I2P to clients", |s| {
        get(&s.bytes_down)
    }),
    counter(
        "filtered_streams",
        "streams run through a leak filter",
        |s| get(&s.filtered_streams),
    ),
    counter(
        "filter_changes",
        "lines or headers the leak filters dropped or rewrote",
        |s| get(&s.filter_changes),
    ),
    counter(
        "filter_stopped",
        "filtered streams whose filter stood aside after an accepted protocol switch",
        |s| get(&s.filter_stopped),
    ),
    counter(
        "filter_closed",
        "filtered streams closed because their filter met something it could not parse",
        |s| get(&s.filter_closed),
    ),
    counter("dns_queries", "automap DNS queries received", |s| {
        get(&s.dns_queries)
    }),
    counter(
        "dns_refused",
        "automap DNS queries answered REFUSED (not an I2P name)",
        |s| get(&s.dns_refused),
    ),
    counter(
        "dns_malformed",
        "automap DNS messages dropped or answered FORMERR/NOTIMP",
        |s| get(&s.dns_malformed),
    ),
    counter(
        "dns_rate_limited",
        "automap DNS queries for new names refused past their source's rate",
        |s| get(&s.dns_rate_limited),
    ),
    counter(
        "transparent",
        "connections on the automap transparent port",
        |s| get(&s.transparent),
    ),
    counter(
        "transparent_refused",
        "transparent connections closed: not to a virtual address of this listener",
        |s| get(&s.transparent_refused),
    ),
];

const UDP_HELP: &str = "UDP ASSOCIATE (docs/protocol.md)";

const fn udp(name: &'static str, value: fn(&Stats) -> u64) -> Counter {
    counter(name, UDP_HELP, value)
}

/// UDP ASSOCIATE's counters (after the replies in the JSON, after the listener's state in
/// Prometheus).
pub const UDP_COUNTERS: [Counter; 15] = [
    udp("udp_associations_opened", |s| {
        get(&s.udp.associations_opened)
    }),
    Counter {
        name: "udp_associations_active",
        help: UDP_HELP,
        gauge: true,
        value: |s| get(&s.udp.associations_active),
    },
    udp("udp_associations_failed", |s| {
        get(&s.udp.associations_failed)
    }),
    udp("udp_datagrams_up", |s| get(&s.udp.datagrams_up)),
    udp("udp_datagrams_down", |s| get(&s.udp.datagrams_down)),
    udp("udp_bytes_up", |s| get(&s.udp.bytes_up)),
    udp("udp_bytes_down", |s| get(&s.udp.bytes_down)),
    udp("udp_dropped_oversize", |s| get(&s.udp.dropped_oversize)),
    udp("udp_dropped_fragment", |s| get(&s.udp.dropped_fragment)),
    udp("udp_dropped_not_i2p", |s| get(&s.udp.dropped_not_i2p)),
    udp("udp_dropped_source", |s| get(&s.udp.dropped_source)),
    udp("udp_dropped_malformed", |s| get(&s.udp.dropped_malformed)),
    udp("udp_dropped_rate", |s| get(&s.udp.dropped_rate)),
    udp("udp_dropped_unsent", |s| get(&s.udp.dropped_unsent)),
    udp("udp_dropped_queue", |s| get(&s.udp.dropped_queue)),
];

/// The replies' names, by index (see `CODES`).
pub const REPLY_NAMES: [&str; CODES] = [
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_counted_by_code() {
        let s = Stats::default();
        s.reply(0);
        s.reply(2);
        s.reply(0xF3);
        s.reply(91); // not a SOCKS5 code: counted as a general failure, never a panic
        s.handshake_failed();
        let got: Vec<_> = s.replies().filter(|(_, n)| *n > 0).collect();
        assert_eq!(
            got,
            [
                ("succeeded", 1),
                ("general_failure", 1),
                ("not_allowed", 1),
                ("extended_error", 1),
                ("handshake_failed", 1)
            ]
        );
    }

    #[test]
    fn every_counter_reads_its_own_field() {
        // Distinct values in each field: a row reading another row's field shows.
        let s = Stats::default();
        let tables = COUNTERS.iter().chain(&UDP_COUNTERS);
        let mut names = std::collections::HashSet::new();
        for c in tables.clone() {
            assert!(names.insert(c.name), "{} twice", c.name);
            assert_eq!(c.get(&s), 0, "{}", c.name);
        }
        s.connections.store(1, Ordering::Relaxed);
        s.udp.dropped_queue.store(2, Ordering::Relaxed);
        s.transparent_refused.store(3, Ordering::Relaxed);
        let set: Vec<_> = tables.filter(|c| c.get(&s) > 0).map(|c| c.name).collect();
        assert_eq!(
            set,
            ["connections", "transparent_refused", "udp_dropped_queue"]
        );
    }
}
