//! The DNS port (UDP and TCP) and the transparent port's accept loop lives in
//! `proxy::server`. Answers come from the automap listener's router and its table of
//! virtual addresses; nothing is ever forwarded to another resolver.

use super::dns::{self, Answer, Kind, Parsed, Query};
use crate::i2p::{OpenError, Router};
use crate::naming::{self, Refusal};
use crate::proxy::conn::ListenerContext;
use crate::proxy::ratelimit::client_log;
use crate::socks::Address;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tracing::debug;

/// Queries answered at once (each may wait for a router lookup); more UDP queries are
/// answered SERVFAIL at once.
pub const MAX_DNS_INFLIGHT: usize = 64;
/// DNS-over-TCP connections at once; more are closed at accept.
pub const MAX_DNS_TCP: usize = 16;
/// A DNS-over-TCP connection idle this long is closed.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// What the DNS port needs: the automap listener's router and context, and the TTL.
pub struct Dns<R> {
    pub router: Arc<R>,
    pub ctx: Arc<ListenerContext>,
    pub ttl: u32,
    inflight: Arc<Semaphore>,
}

impl<R: Router> Dns<R> {
    pub fn new(router: Arc<R>, ctx: Arc<ListenerContext>, ttl: u32) -> Arc<Dns<R>> {
        Arc::new(Dns {
            router,
            ctx,
            ttl,
            inflight: Arc::new(Semaphore::new(MAX_DNS_INFLIGHT)),
        })
    }

    /// The answer to one question. DNS and the transparent port have no login: they use
    /// the listener's own identity (`who` = empty), so their virtual addresses are never
    /// those of a per-username identity.
    async fn answer(&self, q: &Query) -> Answer {
        let ttl = self.ttl;
        let table = &self.ctx.stand_ins;
        match q.kind() {
            Kind::Ptr => match dns::ptr_ipv4(q.name()) {
                Some(ip) if table.network().contains(ip) => {
                    match table.unmap(b"", &Address::Ipv4(ip)) {
                        Some(name) => Answer::Ptr { name, ttl },
                        None => Answer::NxDomain,
                    }
                }
                _ => Answer::Refused,
            },
            kind => {
                let target = match naming::classify(&Address::Name(q.name().to_string())) {
                    Ok(t) => t,
                    // Not ours to answer: no upstream resolver, no clearnet.
                    Err(Refusal::NotI2p | Refusal::IpLiteral) => return Answer::Refused,
                    Err(Refusal::Malformed(_) | Refusal::BadHash(_)) => return Answer::NxDomain,
                };
                if !matches!(kind, Kind::A | Kind::Aaaa) {
                    // An I2P name has no MX, TXT, ... records.
                    return Answer::NoData;
                }
                let lookup = tokio::time::timeout(
                    self.ctx.stream_timeout,
                    self.router.resolve(None, &target),
                );
                match lookup.await {
                    Ok(Ok(())) if matches!(kind, Kind::Aaaa) => Answer::NoData,
                    Ok(Ok(())) => match table.map(b"", target.as_str()) {
                        Some(addr) => Answer::V4 { addr, ttl },
                        None => {
                            client_log!(info, "DNS: no virtual address free (all in use or in quarantine): SERVFAIL");
                            Answer::ServFail
                        }
                    },
                    Ok(Err(OpenError::NameNotFound | OpenError::Unreachable(_))) => {
                        Answer::NxDomain
                    }
                    Ok(Err(e)) => {
                        client_log!(info, "DNS: lookup failed: {e}: SERVFAIL");
                        Answer::ServFail
                    }
                    Err(_) => Answer::ServFail,
                }
            }
        }
    }

    /// The response to one message: None to drop it. `max_len` None means the UDP limit
    /// the query advertises.
    async fn respond(&self, msg: &[u8], max_len: Option<usize>) -> Option<Vec<u8>> {
        let stats = &self.ctx.stats;
        stats.dns_queries.fetch_add(1, Ordering::Relaxed);
        match dns::parse(msg) {
            Parsed::Drop => {
                stats.dns_malformed.fetch_add(1, Ordering::Relaxed);
                None
            }
            Parsed::Reply(r) => {
                stats.dns_malformed.fetch_add(1, Ordering::Relaxed);
                Some(r)
            }
            Parsed::Query(q) => {
                let answer = self.answer(&q).await;
                if matches!(answer, Answer::Refused) {
                    stats.dns_refused.fetch_add(1, Ordering::Relaxed);
                    debug!(name = q.name(), "DNS: refused a name that is not I2P's");
                }
                Some(q.respond(&answer, max_len.unwrap_or_else(|| q.udp_limit())))
            }
        }
    }

    /// Serve DNS over UDP on `sock` until `stop`.
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
            let msg = buf[..n].to_vec();
            let Ok(permit) = self.inflight.clone().try_acquire_owned() else {
                // Too many lookups waiting: say so at once rather than queue without bound.
                if let Parsed::Query(q) = dns::parse(&msg) {
                    self.ctx.stats.dns_queries.fetch_add(1, Ordering::Relaxed);
                    let _ = sock
                        .send_to(&q.respond(&Answer::ServFail, q.udp_limit()), peer)
                        .await;
                }
                continue;
            };
            let (me, sock) = (self.clone(), sock.clone());
            tokio::spawn(async move {
                if let Some(r) = me.respond(&msg, None).await {
                    let _ = sock.send_to(&r, peer).await;
                }
                drop(permit);
            });
        }
    }

    /// Serve DNS over TCP (RFC 7766: two-byte length, then the message) until `stop`.
    pub async fn serve_tcp(self: Arc<Self>, l: Arc<TcpListener>, stop: impl Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        let conns = Arc::new(Semaphore::new(MAX_DNS_TCP));
        loop {
            let (sock, peer) = tokio::select! {
                biased;
                _ = &mut stop => return,
                a = crate::proxy::server::accept(&l) => a,
            };
            let Ok(permit) = conns.clone().try_acquire_owned() else {
                client_log!(warn, client = %peer, "DNS: closed: {MAX_DNS_TCP} TCP connections already open");
                continue;
            };
            let me = self.clone();
            tokio::spawn(async move {
                me.tcp_connection(sock, peer).await;
                drop(permit);
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
            let Some(r) = self.respond(&msg, Some(u16::MAX as usize)).await else {
                debug!(client = %peer, "DNS: dropped a TCP message; closing");
                return;
            };
            let mut out = Vec::with_capacity(2 + r.len());
            out.extend_from_slice(&(r.len() as u16).to_be_bytes());
            out.extend_from_slice(&r);
            if sock.write_all(&out).await.is_err() {
                return;
            }
        }
    }
}
