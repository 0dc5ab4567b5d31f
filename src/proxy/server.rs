//! The accept loop: one task per client, at most `max_clients` at a time.

use crate::i2p::Router;
use crate::proxy::client::accept;
use crate::proxy::conn;
use crate::proxy::context::ListenerContext;
use crate::proxy::ratelimit::client_log;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The runtime the proxy runs on: `threads` workers (`Config::threads`; 0 = one per core).
pub fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if threads > 0 {
        b.worker_threads(threads);
    }
    b.enable_all().build()
}

/// Accept clients on `listener` until `stop` resolves, one task per client, at most
/// `ctx.max_clients` at a time. Clients already connected carry on after `stop`; they hold
/// their slot in `ctx.slots` until they end, so the caller can drain them.
pub async fn serve_listener<R: Router>(
    listener: Arc<TcpListener>,
    router: Arc<R>,
    ctx: Arc<ListenerContext>,
    stop: impl Future<Output = ()>,
) {
    accept_loop(listener, router, ctx, stop, Front::Socks).await
}

/// `serve_listener` for automap's transparent port: connections redirected by the firewall, which
/// share the listener's slots, budget and counters.
pub async fn serve_transparent<R: Router>(
    listener: Arc<TcpListener>,
    router: Arc<R>,
    ctx: Arc<ListenerContext>,
    stop: impl Future<Output = ()>,
) {
    accept_loop(listener, router, ctx, stop, Front::Transparent).await
}

#[derive(Clone, Copy)]
enum Front {
    /// SOCKS 4a/5 and HTTP CONNECT.
    Socks,
    /// Redirected connections, no handshake.
    Transparent,
}

async fn accept_loop<R: Router>(
    listener: Arc<TcpListener>,
    router: Arc<R>,
    ctx: Arc<ListenerContext>,
    stop: impl Future<Output = ()>,
    front: Front,
) {
    let mut stop = std::pin::pin!(stop);
    loop {
        let accepted = tokio::select! {
            // Stop first: a reload hands this socket to a new loop.
            biased;
            _ = &mut stop => return,
            a = accept(&listener) => a,
        };
        let (sock, peer) = accepted;
        // A free slot, or the one of the oldest stream that only finishes a reply for a
        // client that already sent its FIN (`proxy::finishing`): that slot is taken in the
        // client's task, so the loop goes on accepting meanwhile.
        let permit = match ctx.slots.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) if ctx.finishing.evict_oldest() => None,
            Err(_) => {
                client_log!(warn, client = %peer, "closed: {} clients already connected (max_clients)", ctx.max_clients);
                drop(sock);
                continue;
            }
        };
        // The process-wide budget: descriptors are shared by every listener.
        let Ok(budget) = ctx.budget.clone().try_acquire_owned() else {
            client_log!(warn, client = %peer, "closed: the connection budget of this process is used up (descriptor limit)");
            drop(sock);
            continue;
        };
        let _ = sock.set_nodelay(true);
        let router = router.clone();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let Some(permit) = evicted_slot(permit, &ctx, peer).await else {
                return;
            };
            match front {
                Front::Socks => conn::socks_client(sock, peer, router, ctx).await,
                Front::Transparent => conn::transparent_client(sock, peer, router, ctx).await,
            }
            drop((permit, budget));
        });
    }
}

/// The slot a client was given, or the one an evicted finishing stream frees as its task
/// ends: a moment, bounded (1 s; past it the client is closed, as at `max_clients`).
async fn evicted_slot(
    given: Option<tokio::sync::OwnedSemaphorePermit>,
    ctx: &ListenerContext,
    peer: std::net::SocketAddr,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    if given.is_some() {
        return given;
    }
    match tokio::time::timeout(Duration::from_secs(1), ctx.slots.clone().acquire_owned()).await {
        Ok(Ok(p)) => Some(p),
        _ => {
            client_log!(warn, client = %peer, "closed: {} clients already connected (max_clients), and the stream closed for this one did not free its slot within 1 s", ctx.max_clients);
            None
        }
    }
}
