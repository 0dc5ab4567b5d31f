//! The life of one client connection, top to bottom:
//! handshake (under a deadline) → policy → open the I2P stream (under a deadline) →
//! success reply only once the router said OK → pipelined bytes both ways → relay until
//! both sides have closed.

use crate::config::FilterMode;
use crate::i2p::{OpenError, Router};
use crate::naming::{self, StandIns, Target};
use crate::proxy::filter::Filters;
use crate::proxy::ratelimit::client_log;
use crate::proxy::relay::Early;
use crate::proxy::status::Stats;
use crate::socks::{
    Address, AuthCheck, Command, Handshake, HandshakeError, Reply, Request, Step,
    MAX_HANDSHAKE_BYTES,
};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tracing::{debug, info};

/// Settings and state shared by the connections of a listener.
pub struct ListenerContext {
    pub handshake_timeout: Duration,
    pub stream_timeout: Duration,
    /// Stand-in addresses handed out by RESOLVE on this listener.
    pub stand_ins: Arc<StandIns>,
    /// One identity per SOCKS username: stand-ins are kept apart per username too.
    pub per_user: bool,
    /// RFC 1929 login required on this listener.
    pub auth: Option<AuthCheck>,
    /// Failed logins by source address (shared by the listeners of the process).
    pub logins: Arc<crate::proxy::logins::Logins>,
    /// This listener's counters.
    pub stats: Arc<Stats>,
    /// One permit per connected client: at most `max_clients` at a time.
    pub slots: Arc<Semaphore>,
    pub max_clients: usize,
    /// Connections of the whole process (all listeners), from its descriptor limit.
    pub budget: Arc<Semaphore>,
    /// Leak filters for this listener's streams, and the HTTP filter's User-Agent.
    pub filter: FilterMode,
    pub user_agent: Option<String>,
    /// UDP ASSOCIATE settings; None: refused with 0x07.
    pub udp: Option<crate::proxy::udp::UdpLimits>,
}

impl ListenerContext {
    pub fn new(
        handshake_timeout: Duration,
        stream_timeout: Duration,
        max_clients: usize,
    ) -> ListenerContext {
        ListenerContext {
            handshake_timeout,
            stream_timeout,
            stand_ins: Arc::default(),
            per_user: false,
            auth: None,
            logins: Arc::default(),
            stats: Arc::default(),
            slots: Arc::new(Semaphore::new(max_clients)),
            max_clients,
            budget: Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)),
            filter: FilterMode::Auto,
            user_agent: None,
            udp: None,
        }
    }

    /// The login check for a client at `peer`: the listener's, behind the lockouts of
    /// addresses that failed before (see `logins`).
    fn login_check(&self, peer: SocketAddr) -> Option<AuthCheck> {
        let check = self.auth.clone()?;
        let logins = self.logins.clone();
        Some(Arc::new(move |c: &crate::socks::Credentials| {
            logins.attempt(peer.ip(), || check(c))
        }))
    }

    /// Whose stand-ins a request sees: its username's on per-username listeners, else the
    /// listener's (one identity for every client).
    fn who<'a>(&self, request: &'a Request) -> &'a [u8] {
        match (&request.credentials, self.per_user) {
            (Some(c), true) => &c.username,
            _ => b"",
        }
    }

    /// Clients connected now (handshaking, or with a stream open).
    pub fn open(&self) -> usize {
        self.max_clients - self.slots.available_permits()
    }
}

pub async fn serve<R: Router>(
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

    // 2. Policy: what is asked, and whether it is an I2P target. UDP ASSOCIATE names the
    //    client's own address, not a target.
    if request.command == Command::UdpAssociate && request.version == crate::socks::Version::V5 {
        if let Some(limits) = ctx.udp.clone() {
            crate::proxy::udp::associate(client, peer, request, router, ctx.clone(), limits).await;
            return;
        }
    }
    if !matches!(request.command, Command::Connect | Command::Resolve) {
        client_log!(info, client = %peer, "refused: {:?} is not supported here (reply 0x07)", request.command);
        send_reply(&mut client, &request, Reply::CommandNotSupported, stats).await;
        return;
    }
    // A stand-in address from an earlier RESOLVE stands for its name.
    let address = match ctx.stand_ins.unmap(ctx.who(&request), &request.address) {
        Some(name) => std::borrow::Cow::Owned(Address::Name(name)),
        None => std::borrow::Cow::Borrowed(&request.address),
    };
    let target = match naming::classify(&address) {
        Ok(t) => t,
        Err(refusal) => {
            let reply = refusal.reply();
            client_log!(info, client = %peer, version = ?request.version, "refused: {refusal} (reply {})", code(&request, reply));
            debug!(client = %peer, target = %request.address, "refused target");
            send_reply(&mut client, &request, reply, stats).await;
            return;
        }
    };
    if request.command == Command::Resolve {
        resolve(&mut client, peer, &*router, &ctx, &request, &target).await;
        return;
    }
    debug!(client = %peer, target = target.as_str(), port = request.port, "connecting");

    // 3. Open the stream. Success is only claimed after the router said OK. A client that
    //    hangs up meanwhile frees its slot at once, and no stream is opened for nobody.
    let open = tokio::time::timeout(
        ctx.stream_timeout,
        router.open(request.credentials.as_ref(), &target, request.port),
    );
    let Some(opened) = unless_hung_up(&client, open).await else {
        debug!(client = %peer, "left before the stream was open");
        return;
    };
    let opened = match opened {
        Ok(r) => r,
        Err(_) => Err(OpenError::Timeout(format!(
            "no stream within {:?}",
            ctx.stream_timeout
        ))),
    };
    let opened = match opened {
        Ok(o) => o,
        Err(e) => {
            let reply = e.reply();
            client_log!(info, client = %peer, "stream failed: {e} (reply {})", code(&request, reply));
            debug!(client = %peer, target = target.as_str(), "failed target");
            send_reply(&mut client, &request, reply, stats).await;
            return;
        }
    };
    let mut stream = opened.stream;

    // 4. Success. The bytes each side already sent go through the relay, and its filters.
    stats.reply(Reply::Succeeded.code());
    stats.streams_opened.fetch_add(1, Ordering::Relaxed);
    if client
        .write_all(&request.reply(Reply::Succeeded))
        .await
        .is_err()
    {
        debug!(client = %peer, "closed right after the stream opened");
        return;
    }
    log_open(peer, &target);
    let filters = Filters::for_stream(ctx.filter, request.port, ctx.user_agent.as_deref());
    if !filters.is_none() {
        debug!(client = %peer, filter = filters.kind, "leak filter on");
    }
    let early = Early {
        up: pipelined,
        down: opened.early,
    };
    // Nothing from the handshake is needed any more: free it before a possibly long idle life.
    drop((request, target));
    let _identity = opened.hold;

    // 5. Relay until both directions have ended (half-closes passed on).
    stats.streams_active.fetch_add(1, Ordering::Relaxed);
    match crate::proxy::relay::relay(&mut client, &mut stream, early, filters, stats, peer).await {
        Ok((up, down)) => debug!(client = %peer, up, down, "stream closed"),
        Err(e) => debug!(client = %peer, "stream ended with error: {e}"),
    }
    stats.streams_active.fetch_sub(1, Ordering::Relaxed);
}

async fn send_reply(client: &mut TcpStream, request: &Request, reply: Reply, stats: &Stats) {
    stats.reply(reply.code());
    let _ = client.write_all(&request.reply(reply)).await;
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
        Ok(()) => {
            ctx.stats.reply(Reply::Succeeded.code());
            let reply =
                request.reply_resolved(ctx.stand_ins.map(ctx.who(request), target.as_str()));
            let _ = client.write_all(&reply).await;
        }
        Err(e) => {
            client_log!(info, client = %peer, "resolve failed: {e} (reply {})", code(request, e.reply()));
            send_reply(client, request, e.reply(), &ctx.stats).await;
        }
    }
}

fn log_open(peer: SocketAddr, target: &Target) {
    debug!(client = %peer, target = target.as_str(), "stream open");
}

/// The reply code as the client sees it (SOCKS4 has only 90/91).
fn code(req: &Request, reply: Reply) -> String {
    match req.version {
        crate::socks::Version::V5 => format!("{:#04x}", reply.code()),
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
        HsFailure::Refused(HandshakeError::HttpRequest) => {
            info!(client = %peer, "refused: HTTP request on the SOCKS port (sent an explanation page)")
        }
        HsFailure::Refused(r) => info!(client = %peer, "refused: {r}"),
        HsFailure::Eof | HsFailure::Io(_) => debug!(client = %peer, "{e}"),
    }
}

/// `work` (router work for this client), dropped if the client hangs up first: its slot is
/// freed at once and nothing is opened for nobody. None then.
async fn unless_hung_up<T>(client: &TcpStream, work: impl Future<Output = T>) -> Option<T> {
    // Ready when the client closed its side or the socket failed; never while it is merely
    // quiet or has sent data ahead (pipelined payload stays unread for the relay).
    let hung_up = async {
        let mut b = [0u8; 1];
        match client.peek(&mut b).await {
            Ok(0) | Err(_) => {}
            Ok(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        r = work => Some(r),
        _ = hung_up => None,
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
                if error == HandshakeError::HttpRequest {
                    linger(client).await;
                }
                return Err(HsFailure::Refused(error));
            }
        }
    }
}

/// After a final reply, close our side and briefly drain the client so the kernel does not
/// answer its unread request bytes with a reset that would destroy the reply in flight.
async fn linger(client: &mut TcpStream) {
    let _ = client.shutdown().await;
    let mut sink = vec![0u8; 1024];
    let drain = async {
        while let Ok(n) = client.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    };
    let timed_out = tokio::time::timeout(Duration::from_secs(2), drain)
        .await
        .is_err();
    if timed_out {
        client_log!(warn, "client did not close after the HTTP explanation page");
    }
}
