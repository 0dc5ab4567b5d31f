//! SOCKS5 UDP ASSOCIATE (RFC 1928 §4, §7) over I2P repliable datagrams.
//!
//! One association: a UDP relay socket on the listener's address, and a datagram identity
//! of its own (a SAM DATAGRAM session), both alive exactly as long as the TCP control
//! connection. Its own identity means replies can never reach another association, even
//! one talking to the same destination: routers do not carry datagram ports reliably
//! (docs/protocol.md), so ports could not tell them apart.

use crate::i2p::sam::datagram::Datagram;
use crate::i2p::{DatagramSession, OpenError, Router};
use crate::naming::{self, Target};
use crate::proxy::client::{send_reply, unless_hung_up};
use crate::proxy::context::{ListenerContext, UdpLimits};
use crate::proxy::ratelimit::client_log;
use crate::proxy::stats::UdpStats;
use crate::socks::udp::{parse_udp_header, write_udp_header, ReplySource};
use crate::socks::{Address, Reply, Request};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::debug;

/// An association's place among its listener's `max_associations`; freed on drop.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(limits: &UdpLimits) -> Option<Slot> {
        limits
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limits.max_associations).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(limits.open.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn inc(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

/// Serve one UDP ASSOCIATE until its control connection closes (or it idles out).
pub async fn associate<R: Router>(
    mut client: TcpStream,
    peer: SocketAddr,
    request: Request,
    router: Arc<R>,
    ctx: Arc<ListenerContext>,
    limits: UdpLimits,
) {
    let st = &ctx.stats.udp;
    let Some(_slot) = Slot::take(&limits) else {
        client_log!(info, client = %peer, "UDP ASSOCIATE refused: {} associations open on this listener (reply 0x01)", limits.max_associations);
        fail(&mut client, &ctx, &request, Reply::GeneralFailure).await;
        return;
    };
    // RFC 1928 §7: datagrams only from the client; the port too when the request names it.
    let pinned_port = (request.port != 0).then_some(request.port);
    let Some((relay, bound, dg)) = set_up(&mut client, peer, &request, &*router, &ctx).await else {
        return;
    };
    if client.write_all(&request.reply_bound(bound)).await.is_err() {
        return;
    }
    ctx.stats.reply(Reply::Succeeded.code());
    inc(&st.associations_opened);
    st.associations_active.fetch_add(1, Ordering::Relaxed);
    // Debug: a client opening and closing associations in a loop must not flood the log.
    debug!(client = %peer, relay = %bound, identity = dg.b32(), "UDP association open");
    let who = ctx.who(&request).to_vec();
    let a = Association {
        peer: peer.ip(),
        pinned_port,
        relay,
        dg: Arc::new(dg),
        router,
        lookups: JoinSet::new(),
        waiting: HashMap::new(),
        n_waiting: 0,
        limits,
        ctx: ctx.clone(),
        client_addr: None,
        tokens: 0.0,
        last_refill: Instant::now(),
        peers: HashMap::new(),
        who,
    };
    let why = a.run(&mut client).await;
    st.associations_active.fetch_sub(1, Ordering::Relaxed);
    debug!(client = %peer, "UDP association closed: {why}");
}

/// A refused association: counted, and the reply.
async fn fail(client: &mut TcpStream, ctx: &ListenerContext, request: &Request, reply: Reply) {
    inc(&ctx.stats.udp.associations_failed);
    send_reply(client, request, reply, "", &ctx.stats).await;
}

/// The association's relay socket (on the address the client reached us at) and its
/// datagram session, under the stream deadline; None once the client was answered (or
/// left).
async fn set_up<R: Router>(
    client: &mut TcpStream,
    peer: SocketAddr,
    request: &Request,
    router: &R,
    ctx: &ListenerContext,
) -> Option<(UdpSocket, SocketAddr, DatagramSession)> {
    let relay = match client.local_addr() {
        Ok(local) => UdpSocket::bind(SocketAddr::new(local.ip(), 0)).await,
        Err(e) => Err(e),
    };
    let (relay, bound) = match relay.and_then(|r| r.local_addr().map(|a| (r, a))) {
        Ok(r) => r,
        Err(e) => {
            client_log!(info, client = %peer, "UDP ASSOCIATE failed: no relay socket: {e} (reply 0x01)");
            fail(client, ctx, request, Reply::GeneralFailure).await;
            return None;
        }
    };
    let open = tokio::time::timeout(
        ctx.stream_timeout,
        router.datagrams(request.credentials.as_ref()),
    );
    let Some(dg) = unless_hung_up(client, open).await else {
        debug!(client = %peer, "left before the datagram session was up");
        return None;
    };
    match dg.unwrap_or_else(|_| Err(OpenError::Timeout("no datagram session".into()))) {
        Ok(d) => Some((relay, bound, d)),
        Err(e) => {
            let reply = ctx.open_error_reply(request, &e);
            client_log!(info, client = %peer, "UDP ASSOCIATE failed: {e} (reply {:#04x})", reply.code());
            fail(client, ctx, request, reply).await;
            None
        }
    }
}

struct Association<R: Router> {
    peer: IpAddr,
    pinned_port: Option<u16>,
    relay: UdpSocket,
    /// Shared with the lookups in flight (dropped with them when the association ends).
    dg: Arc<DatagramSession>,
    router: Arc<R>,
    /// Names being looked up, off the relay loop: one silent name must not hold up the
    /// datagrams to names already known. Aborted when the association ends.
    lookups: JoinSet<(String, Option<Arc<str>>)>,
    /// Datagrams waiting for their name's lookup, by name, and how many in all.
    waiting: HashMap<String, Vec<Waiting>>,
    n_waiting: usize,
    limits: UdpLimits,
    ctx: Arc<ListenerContext>,
    /// Where replies go: the source of the client's first accepted datagram. From then on
    /// only that source is accepted: on loopback every local process shares the client's
    /// IP, so an unpinned association (DST.PORT 0) must not follow a second sender.
    client_addr: Option<SocketAddr>,
    tokens: f64,
    last_refill: Instant,
    /// What the association knows of each destination it sent to or heard from, by its
    /// full destination: one map, one lookup per datagram.
    peers: HashMap<Arc<str>, Peer>,
    /// Whose stand-ins (virtual addresses) the association sees: the control connection's
    /// username on per-username listeners, else the listener's.
    who: Vec<u8>,
}

/// One destination, as an association knows it.
#[derive(Default)]
struct Peer {
    /// The client sent to it. On the automap listener only such destinations get a new
    /// virtual address for their replies: any other sender is named by an address it
    /// already has, or its b32, so that remote peers cannot fill the identity's table.
    contacted: bool,
    /// The virtual address the client reached it through: its replies carry that address,
    /// which a client that checks the source of replies expects (its b32 may map to
    /// another one).
    via: Option<Ipv4Addr>,
}

/// What `peers` knows of `dest`, made if new (all forgotten at `REMEMBERED`, for memory's
/// sake).
fn peer<'a>(peers: &'a mut HashMap<Arc<str>, Peer>, dest: &Arc<str>) -> &'a mut Peer {
    if !peers.contains_key(dest) && peers.len() >= REMEMBERED {
        peers.clear();
    }
    peers.entry(dest.clone()).or_default()
}

/// Destinations remembered per association (`peers`), for memory's sake.
const REMEMBERED: usize = 1024;
/// Lookups in flight per association; a datagram to yet another unknown name is dropped.
const MAX_LOOKUPS: usize = 8;
/// Datagrams waiting for lookups per association (all names together); more are dropped.
const MAX_WAITING: usize = 64;
/// How long one lookup may take (a b32 may need a LeaseSet): its datagrams wait no longer.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// A datagram whose target name is being looked up.
struct Waiting {
    payload: Vec<u8>,
    port: u16,
    via: Option<Ipv4Addr>,
}

/// Room for any UDP datagram.
const BUF: usize = 65_536;

impl<R: Router> Association<R> {
    async fn run(mut self, client: &mut TcpStream) -> &'static str {
        let why = self.relay_loop(client).await;
        // At once, not when the last aborted lookup lets go of the session.
        self.dg.close();
        why
    }

    async fn relay_loop(&mut self, client: &mut TcpStream) -> &'static str {
        let mut up = vec![0u8; BUF];
        let mut down = vec![0u8; BUF];
        let mut ctl = [0u8; 64];
        self.tokens = self.limits.rate as f64;
        let idle = tokio::time::sleep(self.limits.idle);
        tokio::pin!(idle);
        loop {
            tokio::select! {
                // RFC 1928: the association ends with its TCP connection. Anything the
                // client writes there means nothing: read and dropped.
                r = client.read(&mut ctl) => match r {
                    Ok(0) | Err(_) => return "control connection closed",
                    Ok(_) => {}
                },
                r = self.relay.recv_from(&mut up) => {
                    let Ok((n, from)) = r else { return "relay socket failed" };
                    if self.client_datagram(&up[..n], from).await {
                        idle.as_mut().reset(Instant::now() + self.limits.idle);
                    }
                }
                r = self.dg.recv(&mut down) => {
                    let Ok(d) = r else { return "datagram session failed" };
                    if self.i2p_datagram(d).await {
                        idle.as_mut().reset(Instant::now() + self.limits.idle);
                    }
                }
                Some(done) = self.lookups.join_next(), if !self.lookups.is_empty() => {
                    // Lookups are aborted only with the association, and do not panic.
                    if let Ok((name, dest)) = done {
                        if self.looked_up(name, dest).await {
                            idle.as_mut().reset(Instant::now() + self.limits.idle);
                        }
                    }
                }
                _ = &mut idle => return "idle",
            }
        }
    }

    fn allow_rate(&mut self) -> bool {
        let now = Instant::now();
        let rate = self.limits.rate as f64;
        let dt = now.duration_since(self.last_refill).as_secs_f64();
        self.last_refill = now;
        self.tokens = (self.tokens + dt * rate).min(rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// One datagram from the client side of the relay. True when it was sent, or waits
    /// for its name's lookup.
    async fn client_datagram(&mut self, d: &[u8], from: SocketAddr) -> bool {
        let client = Client {
            ip: self.peer,
            port: self.client_addr.map(|a| a.port()).or(self.pinned_port),
        };
        let unmap = |a: &Address| self.ctx.stand_ins.unmap(&self.who, a);
        let (target, port, payload, via) =
            match upward(d, from, client, self.limits.max_payload, unmap) {
                Upward::Send {
                    target,
                    port,
                    payload,
                    via,
                } => (target, port, payload, via),
                Upward::Drop(why) => {
                    inc(why.counter(&self.ctx.stats.udp));
                    return false;
                }
            };
        if !self.allow_rate() {
            inc(&self.ctx.stats.udp.dropped_rate);
            return false;
        }
        self.client_addr = Some(from);
        // Behind datagrams still waiting for this name's lookup, to keep their order.
        if !self.waiting.contains_key(target.as_str()) {
            if let Some(dest) = self.dg.cached(target.as_str()) {
                return self.send(&dest, port, payload, via).await;
            }
        }
        self.wait_for_lookup(target, payload, port, via)
    }

    /// Queue a datagram to a name not known yet, starting its lookup unless one runs.
    fn wait_for_lookup(
        &mut self,
        target: Target,
        payload: &[u8],
        port: u16,
        via: Option<Ipv4Addr>,
    ) -> bool {
        let st = &self.ctx.stats.udp;
        let name = target.as_str().to_string();
        let queued = queue(
            self.n_waiting,
            self.waiting.contains_key(&name),
            self.lookups.len(),
        );
        let new_lookup = match queued {
            Queue::Drop => {
                inc(&st.dropped_queue);
                return false;
            }
            Queue::NewLookup => true,
            Queue::BehindLookup => false,
        };
        if new_lookup {
            let (router, dg) = (self.router.clone(), self.dg.clone());
            let name = name.clone();
            self.lookups.spawn(async move {
                let r = tokio::time::timeout(LOOKUP_TIMEOUT, router.datagram_dest(&dg, &target));
                let dest = match r.await {
                    Ok(Ok(d)) => Some(d),
                    Ok(Err(e)) => {
                        debug!(target = name.as_str(), "datagram target not resolved: {e}");
                        None
                    }
                    Err(_) => {
                        debug!(target = name.as_str(), "datagram target lookup timed out");
                        None
                    }
                };
                (name, dest)
            });
        }
        self.waiting.entry(name).or_default().push(Waiting {
            payload: payload.to_vec(),
            port,
            via,
        });
        self.n_waiting += 1;
        true
    }

    /// A lookup finished: send what waited for it, or count it unsent. True when any
    /// datagram was sent.
    async fn looked_up(&mut self, name: String, dest: Option<Arc<str>>) -> bool {
        let queued = self.waiting.remove(&name).unwrap_or_default();
        self.n_waiting -= queued.len();
        let Some(dest) = dest else {
            let st = &self.ctx.stats.udp;
            st.dropped_unsent
                .fetch_add(queued.len() as u64, Ordering::Relaxed);
            return false;
        };
        let mut sent = false;
        for w in queued {
            sent |= self.send(&dest, w.port, &w.payload, w.via).await;
        }
        sent
    }

    /// Send one datagram to a looked-up destination. True when the router took it.
    async fn send(
        &mut self,
        dest: &Arc<str>,
        port: u16,
        payload: &[u8],
        via: Option<Ipv4Addr>,
    ) -> bool {
        let peer = peer(&mut self.peers, dest);
        peer.contacted = true;
        if via.is_some() {
            peer.via = via;
        }
        let st = &self.ctx.stats.udp;
        if payload.len() > self.dg.max_payload(dest) {
            inc(&st.dropped_oversize);
            return false;
        }
        match self.dg.send(dest, 0, port, payload).await {
            Ok(()) => {
                inc(&st.datagrams_up);
                st.bytes_up
                    .fetch_add(payload.len() as u64, Ordering::Relaxed);
                true
            }
            Err(e) => {
                debug!("datagram not sent: {e}");
                inc(&st.dropped_unsent);
                false
            }
        }
    }

    /// One datagram the router forwarded (None: it did not parse). True when it reached
    /// the client.
    async fn i2p_datagram(&mut self, d: Option<Datagram<'_>>) -> bool {
        let st = &self.ctx.stats.udp;
        let Some(r) = d else {
            inc(&st.dropped_malformed);
            return false;
        };
        let Some(to) = self.client_addr else {
            // Nobody to give it to yet: the client has not sent anything.
            return false;
        };
        // A known sender costs no allocation; a new one its key.
        let peer = if self.peers.contains_key(r.dest) {
            self.peers.get_mut(r.dest).expect("just seen")
        } else {
            peer(&mut self.peers, &Arc::from(r.dest))
        };
        let Peer { contacted, via } = &*peer;
        let b32 = &*r.b32;
        // On the automap listener the sender is named by a virtual address (some clients
        // reject domain sources): the one the client sent to, else the b32's own (a new
        // one only for a destination the client sent to). When there is none, the b32 as
        // a domain after all.
        let table = &self.ctx.stand_ins;
        let virt = via.or_else(|| match (self.ctx.is_automap(), contacted) {
            (false, _) => None,
            (true, true) => table.map(&self.who, b32),
            (true, false) => table.mapped(&self.who, b32),
        });
        let source = match virt {
            Some(ip) => ReplySource::Ipv4(ip),
            None => ReplySource::Name(b32),
        };
        let mut out = Vec::with_capacity(8 + b32.len() + r.payload.len());
        if write_udp_header(&mut out, &source, r.from_port).is_none() {
            return false;
        }
        out.extend_from_slice(r.payload);
        if self.relay.send_to(&out, to).await.is_err() {
            return false;
        }
        inc(&st.datagrams_down);
        st.bytes_down
            .fetch_add(r.payload.len() as u64, Ordering::Relaxed);
        true
    }
}

/// The client of an association: its address, and its port once known (pinned by the
/// request, or by its first datagram).
#[derive(Clone, Copy)]
struct Client {
    ip: IpAddr,
    port: Option<u16>,
}

/// What becomes of one datagram from the client side, before rate and queue.
#[derive(Debug, PartialEq)]
enum Upward<'a> {
    /// To `target` on `port`; `via`: the virtual address the client sent it to.
    Send {
        target: Target,
        port: u16,
        payload: &'a [u8],
        via: Option<Ipv4Addr>,
    },
    Drop(Dropped),
}

/// Why a datagram from the client was dropped: each its own counter.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Dropped {
    /// Not from the client (address, or port once known).
    Source,
    Malformed,
    /// Fragments (FRAG ≠ 0) are not reassembled.
    Fragment,
    Oversize,
    /// An IP literal that is no stand-in, or a name outside I2P.
    NotI2p,
}

impl Dropped {
    fn counter(self, st: &UdpStats) -> &AtomicU64 {
        match self {
            Dropped::Source => &st.dropped_source,
            Dropped::Malformed => &st.dropped_malformed,
            Dropped::Fragment => &st.dropped_fragment,
            Dropped::Oversize => &st.dropped_oversize,
            Dropped::NotI2p => &st.dropped_not_i2p,
        }
    }
}

/// The decision on datagram `d` from `from`: where it goes, or why it is dropped.
/// `unmap`: the name a virtual address (automap's DNS, or Tor RESOLVE) stands for.
fn upward(
    d: &[u8],
    from: SocketAddr,
    client: Client,
    max_payload: usize,
    unmap: impl Fn(&Address) -> Option<String>,
) -> Upward<'_> {
    if from.ip() != client.ip || client.port.is_some_and(|p| p != from.port()) {
        return Upward::Drop(Dropped::Source);
    }
    let Ok(h) = parse_udp_header(d) else {
        return Upward::Drop(Dropped::Malformed);
    };
    if h.frag != 0 {
        return Upward::Drop(Dropped::Fragment);
    }
    let payload = &d[h.header_len..];
    if payload.len() > max_payload {
        return Upward::Drop(Dropped::Oversize);
    }
    // A virtual address stands for its name; other IP literals are never sent.
    let (address, via) = match h.address {
        Address::Ipv4(ip) => match unmap(&h.address) {
            Some(name) => (Address::Name(name), Some(ip)),
            None => return Upward::Drop(Dropped::NotI2p),
        },
        Address::Ipv6(_) => return Upward::Drop(Dropped::NotI2p),
        a @ Address::Name(_) => (a, None),
    };
    match naming::classify(&address) {
        Ok(target) => Upward::Send {
            target,
            port: h.port,
            payload,
            via,
        },
        Err(_) => Upward::Drop(Dropped::NotI2p),
    }
}

/// Where a datagram to a name not known yet goes.
#[derive(Debug, PartialEq, Eq)]
enum Queue {
    /// Behind the lookup of its name, already running.
    BehindLookup,
    /// A lookup of its own starts.
    NewLookup,
    /// Past `MAX_WAITING` datagrams, or `MAX_LOOKUPS` lookups for a new name.
    Drop,
}

fn queue(waiting: usize, name_looked_up: bool, lookups: usize) -> Queue {
    if waiting >= MAX_WAITING {
        Queue::Drop
    } else if name_looked_up {
        Queue::BehindLookup
    } else if lookups >= MAX_LOOKUPS {
        Queue::Drop
    } else {
        Queue::NewLookup
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B32: &str = "ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p";

    fn client() -> Client {
        Client {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: Some(5000),
        }
    }

    fn from(port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
    }

    /// A SOCKS5 UDP header for a domain, then the payload.
    fn to_name(frag: u8, name: &str, port: u16, payload: &[u8]) -> Vec<u8> {
        let mut d = vec![0, 0, frag, 3, name.len() as u8];
        d.extend_from_slice(name.as_bytes());
        d.extend_from_slice(&port.to_be_bytes());
        d.extend_from_slice(payload);
        d
    }

    /// 10.0.0.7 stands for the b32; nothing else is a stand-in.
    fn unmap(a: &Address) -> Option<String> {
        (*a == Address::Ipv4(Ipv4Addr::new(10, 0, 0, 7))).then(|| B32.to_string())
    }

    fn decide(d: &[u8], port: u16) -> Upward<'_> {
        upward(d, from(port), client(), 100, unmap)
    }

    #[test]
    fn a_datagram_to_a_name_or_a_stand_in_is_sent() {
        let d = to_name(0, B32, 53, b"hi");
        let Upward::Send {
            target,
            port,
            payload,
            via,
        } = decide(&d, 5000)
        else {
            panic!("{:?}", decide(&d, 5000));
        };
        assert_eq!(
            (target.as_str(), port, payload, via),
            (B32, 53, &b"hi"[..], None)
        );
        // RSV RSV FRAG ATYP=1 10.0.0.7 port 9, payload "x".
        let d = [0, 0, 0, 1, 10, 0, 0, 7, 0, 9, b'x'];
        let Upward::Send { target, via, .. } = decide(&d, 5000) else {
            panic!("{:?}", decide(&d, 5000));
        };
        assert_eq!(target.as_str(), B32);
        assert_eq!(
            via,
            Some(Ipv4Addr::new(10, 0, 0, 7)),
            "replies come from it"
        );
    }

    #[test]
    fn each_drop_has_its_counter() {
        let ok = to_name(0, B32, 53, b"hi");
        let rows: [(&[u8], u16, Dropped); 8] = [
            // Another port than the client's.
            (&ok, 5001, Dropped::Source),
            (&[0, 0, 0], 5000, Dropped::Malformed),
            (&[0, 0, 0, 9, 1, 2, 3, 4, 0, 1], 5000, Dropped::Malformed),
            (&to_name(1, B32, 53, b"hi"), 5000, Dropped::Fragment),
            (&to_name(0, B32, 53, &[7; 101]), 5000, Dropped::Oversize),
            // An IP literal that stands for nothing, an IPv6 literal, a clearnet name.
            (&[0, 0, 0, 1, 8, 8, 8, 8, 0, 53, 1], 5000, Dropped::NotI2p),
            (
                &[&[0u8, 0, 0, 4][..], &[0; 16], &[0, 53]].concat(),
                5000,
                Dropped::NotI2p,
            ),
            (&to_name(0, "example.com", 53, b"hi"), 5000, Dropped::NotI2p),
        ];
        for (d, port, why) in rows {
            assert_eq!(decide(d, port), Upward::Drop(why), "{d:?}");
        }
        // From another address: dropped whatever it holds.
        let other = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 5000);
        assert_eq!(
            upward(&ok, other, client(), 100, unmap),
            Upward::Drop(Dropped::Source)
        );
        // Before the client's port is known (DST.PORT 0), any port of its address.
        let unpinned = Client {
            port: None,
            ..client()
        };
        assert!(matches!(
            upward(&ok, from(6000), unpinned, 100, unmap),
            Upward::Send { .. }
        ));
        // At the size limit exactly: sent.
        let d = to_name(0, B32, 53, &[7; 100]);
        assert!(matches!(decide(&d, 5000), Upward::Send { .. }));
    }

    #[test]
    fn lookups_and_waiting_datagrams_are_bounded() {
        assert_eq!(queue(0, false, 0), Queue::NewLookup);
        assert_eq!(queue(3, true, MAX_LOOKUPS), Queue::BehindLookup);
        assert_eq!(queue(3, false, MAX_LOOKUPS), Queue::Drop);
        assert_eq!(queue(MAX_WAITING, true, 0), Queue::Drop);
        assert_eq!(
            queue(MAX_WAITING - 1, false, MAX_LOOKUPS - 1),
            Queue::NewLookup
        );
    }
}
