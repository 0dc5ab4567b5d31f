//! The life of one client connection, top to bottom:
//! handshake (under a deadline; SOCKS, HTTP CONNECT or an `http://` URL to forward), or the
//! original destination of a connection redirected to the transparent port → policy → open
//! the I2P stream (under a deadline) → success reply only once the router said OK (none
//! for a forwarded request: the server's response is the reply) → pipelined bytes both
//! ways → relay until both sides have closed.

use crate::i2p::{OpenError, Opened, Router};
use crate::naming::{self, Target};
use crate::proxy::client::{linger, send_reply, unless_hung_up};
use crate::proxy::context::ListenerContext;
use crate::proxy::filter::Filters;
use crate::proxy::ratelimit::client_log;
use crate::proxy::relay::Early;
use crate::proxy::udp;
use crate::socks::{
    Address, Command, Handshake, HandshakeError, Reply, Request, Step, Version, MAX_HANDSHAKE_BYTES,
};
use std::borrow::Cow;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{debug, info};

pub async fn socks_client<R: Router>(
    mut client: TcpStream,
    peer: SocketAddr,
    router: Arc<R>,
    ctx: Arc<ListenerContext>,
) {
    let stats = &ctx.stats;
    stats.connections.fetch_add(1, Ordering::Relaxed);
    // 1. Handshake, bounded in time so stalled clients cannot hold a slot.
    let hs = tokio::time::timeout(
        ctx.handshake_timeout,
        handshake(&mut client, Handshake::with_auth(ctx.login_check(peer))),
    )
    .await;
    let (request, pipelined) = match hs {
        Err(_) => {
            stats.handshake_failed();
            client_log!(info, client = %peer, "closed: no complete SOCKS request within {:?}", ctx.handshake_timeout);
            return;
        }
        Ok(Err(e)) => {
            stats.handshake_failed();
            log_handshake_error(peer, &e);
            return;
        }
        Ok(Ok(done)) => done,
    };
    // UDP ASSOCIATE names the client's own address, not a target: the association is
    // served here. Where it is off, the policy below refuses it as any other command.
    // (Only SOCKS5 parses to UdpAssociate.)
    if request.command == Command::UdpAssociate {
        if let Some(limits) = ctx.udp.clone() {
            udp::associate(client, peer, request, router, ctx.clone(), limits).await;
            return;
        }
    }
    attend(client, peer, &*router, &ctx, request, pipelined).await;
}

/// A connection the firewall redirected to the transparent port: its original destination
/// (a virtual address) is the request. Anything else is closed, and counted.
pub async fn transparent_client<R: Router>(
    client: TcpStream,
    peer: SocketAddr,
    router: Arc<R>,
    ctx: Arc<ListenerContext>,
) {
    let stats = &ctx.stats;
    stats.connections.fetch_add(1, Ordering::Relaxed);
    stats.transparent.fetch_add(1, Ordering::Relaxed);
    // The transparent port has no login: its connections are the listener's own identity's.
    // IPv4: a virtual address stands for its name. IPv6: a GarliCat address is passed on
    // as one, and `attend` finds its destination as for SOCKS5 ATYP 4 (or refuses it).
    let original = original_destination(&client);
    let target = match &original {
        Ok(SocketAddr::V4(d)) => ctx
            .stand_ins
            .unmap(b"", &Address::Ipv4(*d.ip()))
            .map(|n| (Address::Name(n), d.port())),
        Ok(SocketAddr::V6(d)) if naming::garlicat::is_garlicat(d.ip()) => {
            Some((Address::Ipv6(*d.ip()), d.port()))
        }
        Ok(SocketAddr::V6(_)) | Err(_) => None,
    };
    let Some((address, port)) = target else {
        stats.transparent_refused.fetch_add(1, Ordering::Relaxed);
        if let Some(t) = &ctx.exec {
            t.clearnet(original.ok());
        }
        client_log!(info, client = %peer, "transparent port: closed a connection not redirected to a virtual or GarliCat address");
        return;
    };
    let request = Request {
        version: Version::Transparent,
        command: Command::Connect,
        address,
        port,
        credentials: None,
    };
    attend(client, peer, &*router, &ctx, request, Vec::new()).await;
}

/// Where a redirected connection was going (Linux netfilter's SO_ORIGINAL_DST, set by
/// iptables/nftables REDIRECT or DNAT; the IPv6 option for a socket that accepted over IPv6).
fn original_destination(client: &TcpStream) -> std::io::Result<SocketAddr> {
    use std::os::fd::AsRawFd;
    // A v4-mapped peer on a dual-stack socket was redirected by the IPv4 table.
    let v6 = match client.local_addr()? {
        SocketAddr::V6(a) => a.ip().to_ipv4_mapped().is_none(),
        SocketAddr::V4(_) => false,
    };
    // SAFETY: a sockaddr_in6 is large enough for either family; its length is passed.
    let mut addr: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    // IP6T_SO_ORIGINAL_DST has SO_ORIGINAL_DST's number (80), at the IPv6 level.
    let (level, option) = (
        if v6 { libc::SOL_IPV6 } else { libc::SOL_IP },
        libc::SO_ORIGINAL_DST,
    );
    let rc = unsafe {
        libc::getsockopt(
            client.as_raw_fd(),
            level,
            option,
            &mut addr as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if v6 {
        Ok(SocketAddr::from((
            std::net::Ipv6Addr::from(addr.sin6_addr.s6_addr),
            u16::from_be(addr.sin6_port),
        )))
    } else {
        // SAFETY: the kernel wrote a sockaddr_in at the start of the buffer.
        let v4: libc::sockaddr_in = unsafe { std::ptr::read(&addr as *const _ as *const _) };
        Ok(SocketAddr::from((
            Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)),
            u16::from_be(v4.sin_port),
        )))
    }
}

/// Steps 2-5 for a parsed request: policy, the stream, the reply, the relay.
async fn attend<R: Router>(
    mut client: TcpStream,
    peer: SocketAddr,
    router: &R,
    ctx: &ListenerContext,
    request: Request,
    pipelined: Vec<u8>,
) {
    // 2. Policy: what is asked, and whether it is an I2P target.
    let target = match policy(peer, router, ctx, &request) {
        Ok(t) => t,
        Err(Refused { reply, why }) => {
            send_reply(&mut client, &request, reply, &why, &ctx.stats).await;
            return;
        }
    };
    if request.command == Command::Resolve {
        resolve(&mut client, peer, router, ctx, &request, &target).await;
        return;
    }
    debug!(client = %peer, target = target.as_str(), port = request.port, "connecting");
    let account = irc_account(&client, peer, ctx, &request).await;
    // 3. Open the stream.
    let Some(opened) = open(&client, peer, router, ctx, &request, &target).await else {
        return;
    };
    let opened = match opened {
        Ok(o) => o,
        Err(e) => {
            let reply = ctx.open_error_reply(&request, &e);
            client_log!(info, client = %peer, "stream failed: {e} (reply {})", code(&request, reply));
            debug!(client = %peer, target = target.as_str(), "failed target");
            send_reply(&mut client, &request, reply, &e.to_string(), &ctx.stats).await;
            return;
        }
    };
    // 4-5. Success, then the relay.
    let filters = filters_for(ctx, &request, &account);
    drop(account);
    let asked = Asked {
        request,
        target,
        pipelined,
    };
    connected(client, peer, ctx, asked, opened, filters).await;
}

/// What a client asked for, kept until its stream is open.
struct Asked {
    request: Request,
    target: Target,
    /// Bytes the client sent after its request.
    pipelined: Vec<u8>,
}

/// The leak filters of a stream: a forwarded request's, else by the port and the listener.
fn filters_for(ctx: &ListenerContext, request: &Request, account: &[String]) -> Filters {
    if request.command == Command::HttpForward {
        Filters::forward(ctx.user_agent.as_deref())
    } else {
        Filters::for_stream(ctx.filter, request.port, ctx.user_agent.as_deref(), account)
    }
}

/// A request refused by the policy: the reply, and why (an HTTP client's body).
struct Refused {
    reply: Reply,
    why: String,
}

/// Whether `request` may go on, and to which I2P target (logged when not).
fn policy<R: Router>(
    peer: SocketAddr,
    router: &R,
    ctx: &ListenerContext,
    request: &Request,
) -> Result<Target, Refused> {
    if !matches!(
        request.command,
        Command::Connect | Command::Resolve | Command::HttpForward
    ) {
        client_log!(info, client = %peer, "refused: {:?} is not supported here (reply 0x07)", request.command);
        let why = "only CONNECT, SOCKS RESOLVE and (where on) SOCKS5 UDP ASSOCIATE are supported";
        return Err(Refused {
            reply: Reply::CommandNotSupported,
            why: why.into(),
        });
    }
    // A stand-in address from an earlier RESOLVE or DNS answer stands for its name.
    let address = match ctx.stand_ins.unmap(ctx.who(request), &request.address) {
        Some(name) => Cow::Owned(Address::Name(name)),
        None => Cow::Borrowed(&request.address),
    };
    let address = match &*address {
        Address::Ipv6(ip) => match naming::garlicat::bits_of_address(ip) {
            Some(bits) => garlicat(peer, router, ctx, request, &bits)?,
            None => address,
        },
        _ => address,
    };
    naming::classify(&address).map_err(|refusal| {
        let reply = ctx.pick(request, refusal.reply(), refusal.extended_reply());
        client_log!(info, client = %peer, version = ?request.version, "refused {:?} of a {} (EEPSOCKS_LOG=debug shows the target): {refusal} (reply {})", request.command, refusal.kind(), code(request, reply));
        debug!(client = %peer, target = %request.address, "refused target");
        Refused {
            reply,
            why: refusal.to_string(),
        }
    })
}

/// A GarliCat address (fd60:db4d:ddb5::/48) stands for a destination this identity knows;
/// 80 bits alone name none (docs/automap.md, "GarliCat").
fn garlicat<R: Router>(
    peer: SocketAddr,
    router: &R,
    ctx: &ListenerContext,
    request: &Request,
    bits: &naming::garlicat::Bits,
) -> Result<Cow<'static, Address>, Refused> {
    use naming::garlicat::Found;
    let found = router.garlicat_target(request.credentials.as_ref(), bits);
    if let Found::One(b32) = found {
        return Ok(Cow::Owned(Address::Name(b32)));
    }
    let name = naming::garlicat::name_of_bits(bits);
    let (kind, why) = if found == Found::Ambiguous {
        let why = format!(
            "GarliCat address of {name}: ambiguous, two destinations this identity \
             knows share its 80 bits (use the name or the b32 address)"
        );
        ("ambiguous", why)
    } else {
        let why = format!(
            "GarliCat address of {name}: no destination this identity knows has \
             these 80 bits (resolve its name first, or map {name} to it in the address book)"
        );
        ("unknown", why)
    };
    let reply = ctx.pick(request, Reply::HostUnreachable, Reply::HostUnreachable);
    // The target stays out of the info log.
    client_log!(info, client = %peer, "refused: an {kind} GarliCat address (EEPSOCKS_LOG=debug shows it; reply {})", code(request, reply));
    debug!(client = %peer, "refused: {why}");
    Err(Refused { reply, why })
}

/// Whose names the IRC filter hides: looked up while the client waits for its reply, so
/// its socket (and the uid on it) is surely still there.
async fn irc_account(
    client: &TcpStream,
    peer: SocketAddr,
    ctx: &ListenerContext,
    request: &Request,
) -> Vec<String> {
    if request.command == Command::HttpForward
        || !ctx.irc_hide_account
        || !Filters::is_irc(ctx.filter, request.port)
    {
        return Vec::new();
    }
    // File reads (/proc/net/tcp, /etc/passwd): off the async threads.
    let local = client.local_addr().ok();
    tokio::task::spawn_blocking(move || crate::proxy::filter::account_names(peer, local))
        .await
        .unwrap_or_default()
}

/// Open the stream, under the stream deadline. Success is only claimed after the router
/// said OK. A client that hangs up meanwhile frees its slot at once, and no stream is
/// opened for nobody: None then.
async fn open<R: Router>(
    client: &TcpStream,
    peer: SocketAddr,
    router: &R,
    ctx: &ListenerContext,
    request: &Request,
    target: &Target,
) -> Option<Result<Opened, OpenError>> {
    let open = tokio::time::timeout(
        ctx.stream_timeout,
        // Boxed, like the relay: a connection's task is copied whole when spawned and
        // when it ends, and these two futures were most of its size (12 KiB).
        Box::pin(router.open(request.credentials.as_ref(), target, request.port)),
    );
    let Some(opened) = unless_hung_up(client, open).await else {
        debug!(client = %peer, "left before the stream was open");
        return None;
    };
    Some(opened.unwrap_or_else(|_| {
        Err(OpenError::Timeout(format!(
            "no stream within {:?}",
            ctx.stream_timeout
        )))
    }))
}

/// Steps 4 and 5 for an open stream: the success reply (none for a forwarded request: the
/// server's response is the reply), then the relay until both directions have ended. The
/// bytes each side already sent go through the relay, and its filters.
async fn connected(
    mut client: TcpStream,
    peer: SocketAddr,
    ctx: &ListenerContext,
    asked: Asked,
    opened: Opened,
    filters: Filters,
) {
    let Asked {
        request,
        target,
        pipelined,
    } = asked;
    let stats = &ctx.stats;
    let mut stream = opened.stream;
    stats.reply(Reply::Succeeded.code());
    stats.streams_opened.fetch_add(1, Ordering::Relaxed);
    let forward = request.command == Command::HttpForward;
    if !forward
        && client
            .write_all(&request.reply(Reply::Succeeded))
            .await
            .is_err()
    {
        debug!(client = %peer, "closed right after the stream opened");
        return;
    }
    log_open(peer, &target);
    if !filters.is_none() {
        debug!(client = %peer, filter = filters.kind, "leak filter on");
    }
    // Kept for the stream's life: a per-user identity stays open while it is used.
    let identity = opened.hold.map(Arc::new);
    // Once the client's FIN is kept from the stream, it only finishes a reply: it no longer
    // keeps its identity busy or a drain waiting.
    // Signalled when a new client needs this stream's slot (only once it is finishing).
    let evicted = Arc::new(tokio::sync::Notify::new());
    let finishing_key = Arc::new(std::sync::Mutex::new(None::<u64>));
    let on_kept_fin = kept_fin_hook(
        identity.clone(),
        finishing_key.clone(),
        ctx.finishing.clone(),
        evicted.clone(),
    );
    let early = Early {
        up: pipelined,
        down: opened.early,
        half_close: opened.half_close,
        on_kept_fin: Some(on_kept_fin),
    };
    // Nothing from the handshake is needed any more: free it before a possibly long idle life.
    drop((request, target));

    // Undone however the relay ends (a panic or an abort included).
    let _finishing = FinishingGuard {
        key: finishing_key,
        registry: ctx.finishing.clone(),
    };
    stats.streams_active.fetch_add(1, Ordering::Relaxed);
    let relay = crate::proxy::relay::relay(&mut client, &mut stream, early, filters, stats, peer);
    tokio::select! {
        r = Box::pin(relay) => match r {
            Ok((up, down)) => debug!(client = %peer, up, down, "stream closed"),
            Err(e) => debug!(client = %peer, "stream ended with error: {e}"),
        },
        // Only a finishing stream is ever signalled: its client already sent its FIN.
        _ = evicted.notified() => {
            debug!(client = %peer, "stream closed: its client had sent its FIN, and a new client needed the slot");
        }
    }
    stats.streams_active.fetch_sub(1, Ordering::Relaxed);
    drop(identity);
}

/// What runs once the client's FIN is kept from the stream: the identity may close when
/// idle, and the stream joins the finishing ones (`key`: its place there), whose slots a new
/// client may take (`evicted` ends it).
fn kept_fin_hook(
    identity: Option<Arc<crate::i2p::identity::Lease>>,
    key: Arc<std::sync::Mutex<Option<u64>>>,
    registry: Arc<crate::proxy::finishing::Finishing>,
    evicted: Arc<tokio::sync::Notify>,
) -> Box<dyn FnOnce() + Send + Sync> {
    Box::new(move || {
        if let Some(l) = identity {
            l.linger();
        }
        *key.lock().unwrap_or_else(|e| e.into_inner()) = Some(registry.add(evicted));
    })
}

/// Takes a stream back out of `ListenerContext::finishing` when it ends, if it was in.
struct FinishingGuard {
    key: Arc<std::sync::Mutex<Option<u64>>>,
    registry: Arc<crate::proxy::finishing::Finishing>,
}

impl Drop for FinishingGuard {
    fn drop(&mut self) {
        if let Some(k) = *self.key.lock().unwrap_or_else(|e| e.into_inner()) {
            self.registry.remove(k);
        }
    }
}

/// Tor's RESOLVE: check the name, answer with its stand-in address (see naming::StandIns).
async fn resolve<R: Router>(
    client: &mut TcpStream,
    peer: SocketAddr,
    router: &R,
    ctx: &ListenerContext,
    request: &Request,
    target: &Target,
) {
    let lookup = tokio::time::timeout(
        ctx.stream_timeout,
        router.resolve(request.credentials.as_ref(), target),
    );
    let Some(checked) = unless_hung_up(client, lookup).await else {
        debug!(client = %peer, "left before the name was resolved");
        return;
    };
    let checked =
        checked.unwrap_or_else(|_| Err(OpenError::Timeout("no answer to the lookup".into())));
    match checked {
        Ok(()) => match ctx.stand_ins.map(ctx.who(request), target.as_str()) {
            Some(addr) => {
                ctx.stats.reply(Reply::Succeeded.code());
                let _ = client.write_all(&request.reply_resolved(addr)).await;
            }
            None => {
                client_log!(info, client = %peer, "resolve failed: no stand-in address free (all in use or in quarantine; reply 0x01)");
                let why = "no stand-in address free";
                send_reply(client, request, Reply::GeneralFailure, why, &ctx.stats).await;
            }
        },
        Err(e) => {
            let reply = ctx.open_error_reply(request, &e);
            client_log!(info, client = %peer, "resolve failed: {e} (reply {})", code(request, reply));
            send_reply(client, request, reply, &e.to_string(), &ctx.stats).await;
        }
    }
}

fn log_open(peer: SocketAddr, target: &Target) {
    debug!(client = %peer, target = target.as_str(), "stream open");
}

/// The reply code as the client sees it (SOCKS4 has only 90/91).
fn code(req: &Request, reply: Reply) -> String {
    match req.version {
        Version::V5 => format!("{:#04x}", reply.code()),
        Version::Transparent => "none: closed".into(),
        Version::Http { .. } => format!("HTTP {}", reply.http_status()),
        _ => format!("{}", reply.socks4_code()),
    }
}

#[derive(Debug, thiserror::Error)]
enum HsFailure {
    #[error("{0}")]
    Refused(HandshakeError),
    #[error("client closed during the handshake")]
    Eof,
    #[error("i/o error during the handshake: {0}")]
    Io(#[from] std::io::Error),
}

fn log_handshake_error(peer: SocketAddr, e: &HsFailure) {
    if matches!(e, HsFailure::Refused(_)) && !crate::proxy::ratelimit::allow() {
        return;
    }
    match e {
        HsFailure::Refused(HandshakeError::HttpRequestNotLocal) => {
            info!(client = %peer, "closed: HTTP request neither CONNECT nor for an http:// URL, and for another host than this proxy")
        }
        HsFailure::Refused(HandshakeError::HttpRequest) => {
            info!(client = %peer, "refused: HTTP request on the SOCKS port (sent an explanation page)")
        }
        HsFailure::Refused(r) => info!(client = %peer, "refused: {r}"),
        HsFailure::Eof | HsFailure::Io(_) => debug!(client = %peer, "{e}"),
    }
}

/// Run the codec against the socket. Returns the request and any pipelined payload.
async fn handshake(
    client: &mut TcpStream,
    mut hs: Handshake,
) -> Result<(Request, Vec<u8>), HsFailure> {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        match hs.step(&buf) {
            Step::NeedMore => {
                // The codec rejects at its buffer limit, so there is always room to read.
                let room = MAX_HANDSHAKE_BYTES + 1 - buf.len();
                buf.reserve(room.min(1024));
                let n = (&mut *client).take(room as u64).read_buf(&mut buf).await?;
                if n == 0 {
                    return Err(HsFailure::Eof);
                }
            }
            Step::Reply { consumed, reply } => {
                client.write_all(&reply).await?;
                buf.drain(..consumed);
            }
            Step::Finished { consumed, request } => {
                buf.drain(..consumed);
                return Ok((request, buf));
            }
            Step::Reject { reply, error } => {
                if !reply.is_empty() {
                    let _ = client.write_all(&reply).await;
                }
                // An HTTP client may have sent more than what was read: let the answer
                // arrive before the close.
                if reply.starts_with(b"HTTP/") {
                    linger(client).await;
                }
                return Err(HsFailure::Refused(error));
            }
        }
    }
}
