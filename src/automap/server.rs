//! The DNS port, over UDP and TCP (the transparent port's accept loop is in
//! `proxy::server`). Answers come from the automap listener's router and its table of
//! virtual addresses; nothing is ever forwarded to another resolver.

use super::dns::{self, Answer, Kind, Parsed, Query};
use crate::i2p::{OpenError, Router};
use crate::naming::{self, Refusal, Target};
use crate::proxy::context::ListenerContext;
use crate::proxy::ratelimit::client_log;
use crate::socks::Address;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tracing::debug;

/// UDP queries waiting for a router lookup at once; past it, queries that need one are
/// answered SERVFAIL at once (the others never wait).
pub const MAX_DNS_INFLIGHT: usize = 64;
/// DNS-over-TCP connections at once; more are closed at accept.
pub const MAX_DNS_TCP: usize = 16;
/// A DNS-over-TCP connection idle this long is closed.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// New names (A or AAAA of an I2P name that has no virtual address yet: a lookup and a new
/// address) one source address may ask for, per second, over UDP and TCP together...
pub const NEW_NAMES_PER_SEC: f64 = 20.0;
/// ... and at once after a quiet spell. One source can so put at most 200 + 20 × 600 =
/// 12,200 addresses in quarantine in the default 600 s: less than the identity's share
/// (1,024 + 16,384), so no single source locks the DNS port out of new names.
pub const NEW_NAMES_BURST: f64 = 200.0;
/// Source addresses with a bucket; past it, new sources share one (the unspecified
/// address's) until some bucket is full again.
const MAX_SOURCES: usize = 1024;

/// How a query is answered.
enum Plan {
    Now(Answer),
    /// After the router looked the name up.
    Lookup(Target),
    /// A new name past its source's rate: REFUSED, counted apart.
    Limited,
}

/// Token buckets of new names, per source address (`NEW_NAMES_PER_SEC`).
#[derive(Default)]
struct Buckets(Mutex<HashMap<IpAddr, (f64, Instant)>>);

impl Buckets {
    /// Whether `src` may have one more new name now (and if so, it is counted).
    fn take(&self, src: IpAddr, now: Instant) -> bool {
        let refill = |(tokens, at): (f64, Instant)| {
            (tokens + now.duration_since(at).as_secs_f64() * NEW_NAMES_PER_SEC).min(NEW_NAMES_BURST)
        };
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= MAX_SOURCES && !m.contains_key(&src) {
            // A full bucket is the same as none.
            m.retain(|_, b| refill(*b) < NEW_NAMES_BURST);
        }
        let key = if m.len() < MAX_SOURCES || m.contains_key(&src) {
            src
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        let b = m.entry(key).or_insert((NEW_NAMES_BURST, now));
        let tokens = refill(*b);
        let ok = tokens >= 1.0;
        *b = (if ok { tokens - 1.0 } else { tokens }, now);
        ok
    }
}

/// The DNS port's slots: lookups in progress and TCP connections. Kept by the daemon
/// across reloads, so the lookups and connections of the tasks a reload replaced still
/// count.
pub struct DnsLimits {
    inflight: Arc<Semaphore>,
    tcp: Arc<Semaphore>,
    new_names: Buckets,
}

impl Default for DnsLimits {
    fn default() -> DnsLimits {
        DnsLimits {
            inflight: Arc::new(Semaphore::new(MAX_DNS_INFLIGHT)),
            tcp: Arc::new(Semaphore::new(MAX_DNS_TCP)),
            new_names: Buckets::default(),
        }
    }
}

/// What the DNS port needs: the automap listener's router and context, the TTL, its slots.
pub struct Dns<R> {
    router: Arc<R>,
    ctx: Arc<ListenerContext>,
    ttl: u32,
    limits: Arc<DnsLimits>,
}

impl<R: Router> Dns<R> {
    pub fn new(
        router: Arc<R>,
        ctx: Arc<ListenerContext>,
        ttl: u32,
        limits: Arc<DnsLimits>,
    ) -> Arc<Dns<R>> {
        Arc::new(Dns {
            router,
            ctx,
            ttl,
            limits,
        })
    }

    /// What answers `q` from `src`: known at once, or only after the router looked the
    /// name up. DNS and the transparent port have no login: they use the listener's own
    /// identity (`who` = empty), so their virtual addresses are never a per-username
    /// identity's.
    fn plan(&self, q: &Query, src: IpAddr) -> Plan {
        let ttl = self.ttl;
        let table = &self.ctx.stand_ins;
        let kind = q.kind();
        if let Kind::Ptr = kind {
            // No name for any virtual address, mapped or not: any local process may ask,
            // and the answers would list the names this identity resolved
            // (docs/automap.md, "PTR").
            return Plan::Now(match dns::ptr_ipv4(q.name()) {
                Some(ip) if table.network().contains(ip) => Answer::NxDomain,
                _ => Answer::Refused,
            });
        }
        let target = match naming::classify(&Address::Name(q.name().to_string())) {
            Ok(t) => t,
            // Not ours to answer: no upstream resolver, no clearnet.
            Err(Refusal::NotI2p | Refusal::IpLiteral) => {
                if let Some(t) = &self.ctx.exec {
                    t.name(q.name());
                }
                return Plan::Now(Answer::Refused);
            }
            Err(Refusal::Malformed(_) | Refusal::BadHash(_)) => return Plan::Now(Answer::NxDomain),
        };
        match kind {
            Kind::A => {}
            // The GarliCat address (docs/automap.md): a b33 has none; a name needs its
            // destination, so a lookup, counted like a new name.
            Kind::Aaaa if matches!(target, Target::B33(_)) => return Plan::Now(Answer::NoData),
            Kind::Aaaa => {
                if !self.limits.new_names.take(src, Instant::now()) {
                    return Plan::Limited;
                }
                return Plan::Lookup(target);
            }
            // An I2P name has no MX, TXT, ... records.
            _ => return Plan::Now(Answer::NoData),
        }
        // A name mapped already was looked up when it was.
        if let Some(addr) = table.mapped(b"", target.as_str()) {
            return Plan::Now(Answer::V4 { addr, ttl });
        }
        // A new name: a new address (and for a name, a lookup), within the source's rate.
        if !self.limits.new_names.take(src, Instant::now()) {
            return Plan::Limited;
        }
        // Hashes need no lookup: `map` gives them a new address.
        if !matches!(target, Target::Name(_)) {
            return Plan::Now(self.mapped_answer(&target));
        }
        Plan::Lookup(target)
    }

    /// The REFUSED reply to a new name past its source's rate, counted.
    fn limited(&self, q: &Query, peer: SocketAddr, max_len: usize) -> Vec<u8> {
        self.ctx
            .stats
            .dns_rate_limited
            .fetch_add(1, Ordering::Relaxed);
        client_log!(info, client = %peer, "DNS: new names past {NEW_NAMES_PER_SEC}/s from this source: REFUSED");
        q.respond(&Answer::Refused, max_len)
    }

    /// The A answer for a target known to resolve: its virtual address.
    fn mapped_answer(&self, target: &Target) -> Answer {
        match self.ctx.stand_ins.map(b"", target.as_str()) {
            Some(addr) => Answer::V4 {
                addr,
                ttl: self.ttl,
            },
            None => {
                client_log!(
                    info,
                    "DNS: no virtual address free (all in use or in quarantine): SERVFAIL"
                );
                Answer::ServFail
            }
        }
    }

    /// The answer once the router has looked `target` up.
    async fn look_up(&self, kind: Kind, target: &Target) -> Answer {
        if let Kind::Aaaa = kind {
            let lookup =
                tokio::time::timeout(self.ctx.stream_timeout, self.router.garlicat(None, target));
            return match lookup.await {
                Ok(Ok(Some(addr))) => Answer::V6 {
                    addr,
                    ttl: self.ttl,
                },
                Ok(Ok(None)) => Answer::NoData,
                Ok(Err(OpenError::NameNotFound | OpenError::Unreachable(_))) => Answer::NxDomain,
                Ok(Err(e)) => {
                    client_log!(info, "DNS: lookup failed: {e}: SERVFAIL");
                    Answer::ServFail
                }
                Err(_) => Answer::ServFail,
            };
        }
        let lookup =
            tokio::time::timeout(self.ctx.stream_timeout, self.router.resolve(None, target));
        match lookup.await {
            Ok(Ok(())) => self.mapped_answer(target),
            Ok(Err(OpenError::NameNotFound | OpenError::Unreachable(_))) => Answer::NxDomain,
            Ok(Err(e)) => {
                client_log!(info, "DNS: lookup failed: {e}: SERVFAIL");
                Answer::ServFail
            }
            Err(_) => Answer::ServFail,
        }
    }

    /// Parse a message and count it: every message is a query received; those dropped or
    /// answered FORMERR/NOTIMP/BADVERS are malformed too, those of another class refused.
    fn parse(&self, msg: &[u8]) -> Parsed {
        let stats = &self.ctx.stats;
        stats.dns_queries.fetch_add(1, Ordering::Relaxed);
        let parsed = dns::parse(msg);
        match parsed {
            Parsed::Query(_) => {}
            Parsed::Refused(_) => {
                stats.dns_refused.fetch_add(1, Ordering::Relaxed);
            }
            Parsed::Reply(_) | Parsed::Drop => {
                stats.dns_malformed.fetch_add(1, Ordering::Relaxed);
            }
        }
        parsed
    }

    /// The response bytes for `answer` to `q`, counted.
    fn encode(&self, q: &Query, answer: &Answer, max_len: usize) -> Vec<u8> {
        if matches!(answer, Answer::Refused) {
            self.ctx.stats.dns_refused.fetch_add(1, Ordering::Relaxed);
            debug!(name = q.name(), "DNS: refused a name that is not I2P's");
        }
        q.respond(answer, max_len)
    }

    /// Serve DNS over UDP on `sock` until `stop`. Only queries that wait for the router take
    /// one of the `MAX_DNS_INFLIGHT` slots; everything else is answered at once, so slow
    /// lookups never hold up names that need none.
    pub async fn serve_udp(self: Arc<Self>, sock: Arc<UdpSocket>, stop: impl Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        // Larger messages are no query anyone sends; recv truncates them, parse refuses.
        let mut buf = vec![0u8; 4096];
        loop {
            let (n, peer) = tokio::select! {
                biased;
                _ = &mut stop => return,
                r = sock.recv_from(&mut buf) => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // ICMP errors of earlier sends surface here; never the end of the loop.
                        debug!("DNS: receive failed: {e}");
                        continue;
                    }
                },
            };
            let q = match self.parse(&buf[..n]) {
                Parsed::Drop => continue,
                Parsed::Reply(r) | Parsed::Refused(r) => {
                    let _ = sock.send_to(&r, peer).await;
                    continue;
                }
                Parsed::Query(q) => q,
            };
            let target = match self.plan(&q, peer.ip()) {
                Plan::Now(a) => {
                    let _ = sock
                        .send_to(&self.encode(&q, &a, q.udp_limit()), peer)
                        .await;
                    continue;
                }
                Plan::Limited => {
                    let _ = sock
                        .send_to(&self.limited(&q, peer, q.udp_limit()), peer)
                        .await;
                    continue;
                }
                Plan::Lookup(t) => t,
            };
            let Ok(permit) = self.limits.inflight.clone().try_acquire_owned() else {
                // Too many lookups waiting: say so at once rather than queue without bound.
                let r = self.encode(&q, &Answer::ServFail, q.udp_limit());
                let _ = sock.send_to(&r, peer).await;
                continue;
            };
            let (me, sock) = (self.clone(), sock.clone());
            tokio::spawn(async move {
                let a = me.look_up(q.kind(), &target).await;
                let _ = sock.send_to(&me.encode(&q, &a, q.udp_limit()), peer).await;
                drop(permit);
            });
        }
    }

    /// Serve DNS over TCP (RFC 7766: two-byte length, then the message) until `stop`.
    pub async fn serve_tcp(self: Arc<Self>, l: Arc<TcpListener>, stop: impl Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        loop {
            let (sock, peer) = tokio::select! {
                biased;
                _ = &mut stop => return,
                a = crate::proxy::client::accept(&l) => a,
            };
            let Ok(permit) = self.limits.tcp.clone().try_acquire_owned() else {
                client_log!(warn, client = %peer, "DNS: closed: {MAX_DNS_TCP} TCP connections already open");
                continue;
            };
            // Descriptors are the whole process's: the listeners' budget counts these too.
            let Ok(budget) = self.ctx.budget.clone().try_acquire_owned() else {
                client_log!(warn, client = %peer, "DNS: closed: the connection budget of this process is used up (descriptor limit)");
                continue;
            };
            let me = self.clone();
            tokio::spawn(async move {
                me.tcp_connection(sock, peer).await;
                drop((permit, budget));
            });
        }
    }

    async fn tcp_connection(&self, mut sock: TcpStream, peer: SocketAddr) {
        loop {
            let mut len = [0u8; 2];
            match tokio::time::timeout(TCP_IDLE, sock.read_exact(&mut len)).await {
                Ok(Ok(_)) => {}
                _ => return,
            }
            let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
            match tokio::time::timeout(TCP_IDLE, sock.read_exact(&mut msg)).await {
                Ok(Ok(_)) => {}
                _ => return,
            }
            let r = match self.parse(&msg) {
                Parsed::Drop => {
                    debug!(client = %peer, "DNS: dropped a TCP message; closing");
                    return;
                }
                Parsed::Reply(r) | Parsed::Refused(r) => r,
                // One connection waits for its own lookups only: no slot needed.
                Parsed::Query(q) => {
                    let a = match self.plan(&q, peer.ip()) {
                        Plan::Now(a) => a,
                        Plan::Limited => {
                            let r = self.limited(&q, peer, u16::MAX as usize);
                            if !self.send_tcp(&mut sock, &r).await {
                                return;
                            }
                            continue;
                        }
                        Plan::Lookup(t) => self.look_up(q.kind(), &t).await,
                    };
                    self.encode(&q, &a, u16::MAX as usize)
                }
            };
            if !self.send_tcp(&mut sock, &r).await {
                return;
            }
        }
    }

    /// Send one message with its length; false when the connection is done.
    async fn send_tcp(&self, sock: &mut TcpStream, r: &[u8]) -> bool {
        let mut out = Vec::with_capacity(2 + r.len());
        out.extend_from_slice(&(r.len() as u16).to_be_bytes());
        out.extend_from_slice(r);
        // A client that never reads must not hold its slot.
        matches!(
            tokio::time::timeout(TCP_IDLE, sock.write_all(&out)).await,
            Ok(Ok(()))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The burst at once, then the rate; each source has its own bucket.
    #[test]
    fn buckets_give_the_burst_then_the_rate() {
        let b = Buckets::default();
        let t0 = Instant::now();
        let a = ip("127.0.0.1");
        assert_eq!((0..300).filter(|_| b.take(a, t0)).count(), 200);
        assert!(b.take(ip("127.0.0.2"), t0), "another source");
        let later = t0 + Duration::from_millis(500);
        assert_eq!((0..100).filter(|_| b.take(a, later)).count(), 10);
    }

    /// Past MAX_SOURCES busy sources, new ones share one bucket; once the busy ones are
    /// full again, a new source gets its own.
    #[test]
    fn sources_past_the_table_share_one_bucket() {
        let b = Buckets::default();
        let t0 = Instant::now();
        for i in 0..MAX_SOURCES as u32 {
            assert!(b.take(IpAddr::V4(Ipv4Addr::from(0x7f01_0000 + i)), t0));
        }
        let (x, y) = (ip("127.2.0.1"), ip("127.2.0.2"));
        assert_eq!((0..300).filter(|_| b.take(x, t0)).count(), 200);
        assert!(!b.take(y, t0), "the newcomers share one bucket");
        let later = t0 + Duration::from_secs(1);
        assert_eq!((0..300).filter(|_| b.take(y, later)).count(), 200);
    }
}
