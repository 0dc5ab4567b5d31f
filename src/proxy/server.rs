//! The accept loop: one task per client, at most `max_clients` at a time.

use crate::proxy::conn::{self, ListenerContext};
use crate::i2p::Router;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{error, warn};

/// The runtime the proxy runs on: `threads` workers (`Config::threads`; 0 = one per core).
pub fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if threads > 0 {
        b.worker_threads(threads);
    }
    b.enable_all().build()
}

pub async fn run<R: Router>(
    listener: TcpListener,
    router: Arc<R>,
    ctx: Arc<ListenerContext>,
    max_clients: usize,
) {
    serve_with(
        listener,
        router,
        ctx,
        Arc::new(Semaphore::new(max_clients)),
        max_clients,
    )
    .await
}

/// The accept loop with the caller's slot semaphore, so the caller can see how many
/// clients are connected (to drain them at shutdown).
pub async fn serve_with<R: Router>(
    listener: TcpListener,
    router: Arc<R>,
    ctx: Arc<ListenerContext>,
    slots: Arc<Semaphore>,
    max_clients: usize,
) {
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends are transient: back off instead of spinning or dying.
                error!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            if crate::proxy::ratelimit::allow() {
                warn!(client = %peer, "closed: {max_clients} clients already connected (max_clients)");
            }
            drop(sock);
            continue;
        };
        let _ = sock.set_nodelay(true);
        let router = router.clone();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            conn::serve(sock, peer, router, ctx).await;
            drop(permit);
        });
    }
}
