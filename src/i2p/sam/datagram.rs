//! A repliable-datagram session (SAM `STYLE=DATAGRAM`) in forwarded mode: the router sends
//! what arrives to a loopback UDP socket of ours, prefixed with the sender's destination;
//! we send through the router's SAM UDP port with a `3.0 $id $dest` line.
//!
//! What the routers accept (found by hand, written down in docs/protocol.md):
//! - the send line's destination must be the full base64 destination: a b32 name is
//!   dropped silently by i2pd 2.45.1 and emissary, so names are looked up (and cached);
//! - i2pd 2.45.1 (SAM 3.1) takes no `FROM_PORT`/`TO_PORT` on the send line (the datagram
//!   is dropped) and forwards `$dest\n`; emissary (3.2) takes them and forwards
//!   `$dest FROM_PORT=n TO_PORT=n\n`. Ports are sent only to 3.2+ bridges;
//! - emissary reads the SAM UDP port into an 8 KiB buffer and truncates past it, so the
//!   line plus payload is held to [`DatagramConfig::max_send`].

use super::commands::generate_keys_on;
use super::error::SamError;
use super::session::{Session, SessionConfig, SharedDatagrams};
use super::wire::SamSocket;
use crate::destination::Destination;
use std::collections::HashMap;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::net::UdpSocket;

/// What a datagram session is created with.
#[derive(Clone, Debug)]
pub struct DatagramConfig {
    pub sam_addr: String,
    /// The router's SAM UDP port (i2pd: always the SAM port − 1; Java I2P: 7655 by default;
    /// emissary: its own choice).
    pub sam_udp: SocketAddr,
    pub name: String,
    pub options: Vec<(String, String)>,
    pub sig_type: u16,
    /// Most bytes (send line plus payload) one UDP datagram to the router may carry.
    pub max_send: usize,
}

/// emissary reads its SAM UDP port into an 8 KiB buffer and truncates the rest: the most
/// one datagram to it (send line and payload) may hold.
pub const EMISSARY_UDP_MAX: usize = 8192;

/// Names (b32 or address-book names) already looked up by this session.
const CACHE_MAX: usize = 256;
/// Senders whose b32 this session remembers (for memory's sake; forgotten all at once).
const SENDERS_MAX: usize = 1024;

/// One datagram identity: its SAM session, the socket the router forwards to, and the
/// socket we send through.
pub struct DatagramSession {
    session: Session,
    inbound: Arc<UdpSocket>,
    /// Lent the identity's datagram subsession (PRIMARY): sends name the subsession, and
    /// the session (the identity's) is not this association's to close. The permit is the
    /// identity's one slot, given back on drop.
    shared: Option<(Arc<SharedDatagrams>, tokio::sync::OwnedSemaphorePermit)>,
    outbound: UdpSocket,
    /// Where the router's forwarded datagrams come from (see [`router_source`]): the only
    /// sender taken.
    router_src: SocketAddr,
    /// The bridge takes FROM_PORT/TO_PORT on the send line (SAM 3.2+).
    ports: bool,
    max_send: usize,
    own_b32: String,
    cache: Mutex<HashMap<String, Arc<str>>>,
    /// Senders' b32 by destination: a known sender costs no decoding or hashing.
    senders: Mutex<HashMap<Box<str>, Arc<str>>>,
}

/// One datagram the router forwarded, with its sender's b32 (`recv`).
#[derive(Debug, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// The sender's full destination, base64.
    pub dest: &'a str,
    pub b32: Arc<str>,
    pub from_port: u16,
    pub to_port: u16,
    pub payload: &'a [u8],
}

/// One datagram the router forwarded to us.
#[derive(Debug, PartialEq, Eq)]
pub struct Received<'a> {
    /// The sender's full destination, base64.
    pub dest: &'a str,
    pub from_port: u16,
    pub to_port: u16,
    pub payload: &'a [u8],
}

/// Split a forwarded datagram: `$dest[ FROM_PORT=n TO_PORT=n ...]\n$payload`. None when
/// there is no line or no destination on it.
pub fn parse_forwarded(buf: &[u8]) -> Option<Received<'_>> {
    let nl = buf.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&buf[..nl]).ok()?;
    let mut words = line.split(' ').filter(|w| !w.is_empty());
    let dest = words.next()?;
    let (mut from_port, mut to_port) = (0, 0);
    for w in words {
        if let Some(v) = w.strip_prefix("FROM_PORT=") {
            from_port = v.parse().unwrap_or(0);
        } else if let Some(v) = w.strip_prefix("TO_PORT=") {
            to_port = v.parse().unwrap_or(0);
        }
    }
    Some(Received {
        dest,
        from_port,
        to_port,
        payload: &buf[nl + 1..],
    })
}

impl DatagramSession {
    /// A new transient identity with a DATAGRAM session, up and ready to send.
    pub async fn create(cfg: &DatagramConfig) -> Result<DatagramSession, SamError> {
        // One connection tells the bridge's version and makes the keys.
        let mut c = SamSocket::connect(&cfg.sam_addr).await?;
        let ports = c.minor >= 2;
        let keys = generate_keys_on(&mut c, cfg.sig_type).await?;
        drop(c);
        let own_b32 = keys.destination().b32();
        let inbound = UdpSocket::bind("127.0.0.1:0").await?;
        let router_src = router_source(cfg.sam_udp);
        // Connected, the kernel drops datagrams from anyone else before we see them. When
        // it refuses (a router address loopback cannot reach), recv() still compares.
        if let Err(e) = inbound.connect(router_src).await {
            tracing::debug!("datagram socket not connected to {router_src}: {e}");
        }
        let outbound = UdpSocket::bind(match cfg.sam_udp {
            SocketAddr::V4(_) => "127.0.0.1:0",
            SocketAddr::V6(_) => "[::1]:0",
        })
        .await?;
        outbound.connect(cfg.sam_udp).await?;
        let session = Session::spawn(SessionConfig {
            sam_addr: cfg.sam_addr.clone(),
            name: cfg.name.clone(),
            keys: keys.into(),
            options: cfg.options.clone(),
            warm_sockets: false,
            datagram_port: Some(inbound.local_addr()?.port()),
            create_timeout: super::session::CREATE_TIMEOUT,
            on_demand: true,
            shared_datagrams: None,
        });
        // Built before the wait, so that dropping this future (the client left, or the
        // open timed out) drops it too, and its Drop closes the session: a SESSION CREATE
        // still under way must not live on without an association to bound it.
        let dg = DatagramSession {
            session,
            inbound: Arc::new(inbound),
            shared: None,
            outbound,
            router_src,
            ports,
            max_send: cfg.max_send,
            own_b32,
            cache: Mutex::default(),
            senders: Mutex::default(),
        };
        dg.session.usable_id().await?;
        Ok(dg)
    }

    /// The datagram subsession of the identity whose STREAM session is `identity`, if it
    /// has one up and no other association holds it (None: make a session of its own with
    /// [`Self::create`]). The association then sends and receives as that identity.
    pub async fn on_identity(
        identity: &Session,
        cfg: &DatagramConfig,
    ) -> Result<Option<DatagramSession>, SamError> {
        let Some(shared) = identity.shared_datagrams().cloned() else {
            return Ok(None);
        };
        let Some(inbound) = shared.inbound() else {
            return Ok(None);
        };
        let Ok(permit) = shared.slot.clone().try_acquire_owned() else {
            return Ok(None);
        };
        let Some(keys) = identity.keys() else {
            return Ok(None);
        };
        // Left over from the previous holder: its peers' late answers are not this
        // association's to see.
        let mut junk = [0u8; 1];
        while inbound.try_recv_from(&mut junk).is_ok() {}
        // A datagram subsession exists only on a bridge with PRIMARY, which is SAM ≥ 3.2
        // (sam::caps): its datagrams carry ports, and no HELLO is needed to know it.
        let ports = true;
        let router_src = router_source(cfg.sam_udp);
        let outbound = UdpSocket::bind(match cfg.sam_udp {
            SocketAddr::V4(_) => "127.0.0.1:0",
            SocketAddr::V6(_) => "[::1]:0",
        })
        .await?;
        outbound.connect(cfg.sam_udp).await?;
        Ok(Some(DatagramSession {
            session: identity.clone(),
            inbound,
            own_b32: keys.destination().b32(),
            shared: Some((shared, permit)),
            outbound,
            router_src,
            ports,
            max_send: cfg.max_send,
            cache: Mutex::default(),
            senders: Mutex::default(),
        }))
    }

    /// Whether this association uses its identity's datagram subsession (PRIMARY).
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// The SAM session: lookups by the identity that sends.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// This identity's b32 address.
    pub fn b32(&self) -> &str {
        &self.own_b32
    }

    /// Close the session now (the association ended). A lent subsession stays with its
    /// identity (the slot is given back when this is dropped).
    pub fn close(&self) {
        if self.shared.is_none() {
            self.session.close();
        }
    }

    /// The most payload bytes a datagram to `dest` may carry on this router.
    pub fn max_payload(&self, dest: &str) -> usize {
        self.max_send.saturating_sub(self.line_len(dest))
    }

    fn line_len(&self, dest: &str) -> usize {
        // "3.0 $id $dest FROM_PORT=65535 TO_PORT=65535\n", ids are bounded by us.
        5 + 64 + dest.len() + if self.ports { 32 } else { 0 }
    }

    /// The full destination for a b32 or address-book name, from the cache or the router
    /// (NAMING LOOKUP on this session, so lookups stay with the identity that sends).
    pub async fn lookup(&self, name: &str) -> Result<Arc<str>, SamError> {
        if let Some(d) = self.cached(name) {
            return Ok(d);
        }
        let d: Arc<str> = self.session.lookup(name).await?.to_base64().into();
        self.remember(name, d.clone());
        Ok(d)
    }

    pub fn cached(&self, name: &str) -> Option<Arc<str>> {
        self.cache.lock().ok()?.get(name).cloned()
    }

    /// Keep a name's destination (from an address book) for the next datagrams.
    pub fn remember(&self, name: &str, dest: Arc<str>) {
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= CACHE_MAX {
                c.clear();
            }
            c.insert(name.to_string(), dest);
        }
    }

    /// Send one datagram to `dest` (full base64 destination). The caller checked the size
    /// against [`Self::max_payload`].
    pub async fn send(
        &self,
        dest: &str,
        from_port: u16,
        to_port: u16,
        payload: &[u8],
    ) -> Result<(), SamError> {
        let id = match &self.shared {
            // The subsession of the identity's live session (a new one after the router
            // came back).
            Some((shared, _)) => shared.sub().ok_or(SamError::NoSession)?.0,
            None => self.session.usable_id().await?,
        };
        let mut d = Vec::with_capacity(self.line_len(dest) + payload.len());
        d.extend_from_slice(b"3.0 ");
        d.extend_from_slice(id.as_bytes());
        d.push(b' ');
        d.extend_from_slice(dest.as_bytes());
        if self.ports {
            // Into the datagram's own buffer: no String per datagram.
            let _ = write!(d, " FROM_PORT={from_port} TO_PORT={to_port}");
        }
        d.push(b'\n');
        d.extend_from_slice(payload);
        self.outbound.send(&d).await?;
        Ok(())
    }

    /// Wait for the next datagram the router forwards; `buf` must hold a destination line
    /// plus the largest payload (64 KiB is always enough). None: one that does not parse
    /// (no line, or no destination on it). Datagrams
    /// from anyone but the router's SAM UDP socket (exact address and port) are skipped:
    /// any local process could send to this socket, and a forged `$dest` line would pass
    /// for that destination's datagram.
    pub async fn recv<'b>(&self, buf: &'b mut [u8]) -> Result<Option<Datagram<'b>>, SamError> {
        let n = loop {
            let (n, from) = self.inbound.recv_from(buf).await?;
            if from == self.router_src {
                break n;
            }
        };
        let Some(r) = parse_forwarded(&buf[..n]) else {
            return Ok(None);
        };
        let Some(b32) = self.sender_b32(r.dest) else {
            return Ok(None);
        };
        Ok(Some(Datagram {
            dest: r.dest,
            b32,
            from_port: r.from_port,
            to_port: r.to_port,
            payload: r.payload,
        }))
    }

    /// `dest`'s b32 (None when it does not parse), remembered for the next datagrams.
    fn sender_b32(&self, dest: &str) -> Option<Arc<str>> {
        let mut senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = senders.get(dest) {
            return Some(b.clone());
        }
        let b32: Arc<str> = sender_b32(dest)?.into();
        if senders.len() >= SENDERS_MAX {
            senders.clear();
        }
        senders.insert(dest.into(), b32.clone());
        Some(b32)
    }
}

/// The source address of the datagrams a router forwards to our 127.0.0.1 socket, given
/// its SAM UDP address. i2pd (`SAMBridge::SendTo`), Java I2P and emissary send them from
/// the socket they read sends on, so the source is that socket's address, except:
/// - bound to 0.0.0.0 (or `::`), the kernel picks the source for a loopback destination:
///   127.0.0.1, whatever the SAM TCP address is;
/// - an IPv6 socket reaches our IPv4 one only dual-stack, again from 127.0.0.1 (or the
///   mapped IPv4 address it is bound to).
pub fn router_source(sam_udp: SocketAddr) -> SocketAddr {
    let ip = match sam_udp.ip() {
        IpAddr::V4(v4) if !v4.is_unspecified() => v4,
        IpAddr::V4(_) => Ipv4Addr::LOCALHOST,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) if !v4.is_unspecified() => v4,
            _ => Ipv4Addr::LOCALHOST,
        },
    };
    SocketAddr::new(IpAddr::V4(ip), sam_udp.port())
}

/// A datagram echo service (the demo network's, and the tests'): every datagram goes back
/// to its sender, ports swapped. Runs until the session fails.
pub async fn echo(dg: DatagramSession) {
    let mut buf = vec![0u8; 65_536];
    while let Ok(d) = dg.recv(&mut buf).await {
        if let Some(r) = d {
            let _ = dg.send(r.dest, r.to_port, r.from_port, r.payload).await;
        }
    }
}

impl Drop for DatagramSession {
    fn drop(&mut self) {
        self.close();
    }
}

/// The b32 of a forwarded datagram's sender, None when the destination does not parse.
fn sender_b32(dest: &str) -> Option<String> {
    Destination::from_base64(dest).ok().map(|d| d.b32())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_lines_of_both_routers() {
        // i2pd 2.45.1: the destination alone.
        let r = parse_forwarded(b"AAAA~-\nhello").unwrap();
        assert_eq!(
            r,
            Received {
                dest: "AAAA~-",
                from_port: 0,
                to_port: 0,
                payload: b"hello"
            }
        );
        // emissary: ports follow.
        let r = parse_forwarded(b"AAAA FROM_PORT=7 TO_PORT=9\n\n\x00bin").unwrap();
        assert_eq!((r.dest, r.from_port, r.to_port), ("AAAA", 7, 9));
        assert_eq!(r.payload, b"\n\x00bin");
        assert_eq!(parse_forwarded(b"AAAA\n").unwrap().payload, b"");
    }

    #[test]
    fn router_source_addresses() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(router_source(a("127.0.0.1:7655")), a("127.0.0.1:7655"));
        assert_eq!(router_source(a("127.0.0.5:9")), a("127.0.0.5:9"));
        assert_eq!(router_source(a("0.0.0.0:7655")), a("127.0.0.1:7655"));
        assert_eq!(router_source(a("192.168.1.5:7655")), a("192.168.1.5:7655"));
        assert_eq!(router_source(a("[::1]:7655")), a("127.0.0.1:7655"));
        assert_eq!(router_source(a("[::]:7655")), a("127.0.0.1:7655"));
        assert_eq!(router_source(a("[::ffff:127.0.0.3]:1")), a("127.0.0.3:1"));
    }

    #[test]
    fn forwarded_garbage_is_refused() {
        assert!(parse_forwarded(b"no newline").is_none());
        assert!(parse_forwarded(b"\npayload").is_none());
        assert!(parse_forwarded(b"  \npayload").is_none());
        assert!(parse_forwarded(b"\xff\xfe\npayload").is_none());
        let r = parse_forwarded(b"D FROM_PORT=x TO_PORT=99999\np").unwrap();
        assert_eq!((r.from_port, r.to_port), (0, 0));
    }
}
