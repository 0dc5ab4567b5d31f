//! What a listener does to a client's socket outside its protocol: answer with a final
//! reply and close, watch for a hang-up while the router works, linger after an answer,
//! and accept the next one.

use crate::proxy::ratelimit::client_log;
use crate::proxy::stats::Stats;
use crate::socks::{Reply, Request, Version};
use std::future::Future;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::debug;

/// A failure reply, then the close. HTTP clients get `why` as the body, and the linger, as
/// they may have sent more than the head.
pub async fn send_reply(
    client: &mut TcpStream,
    request: &Request,
    reply: Reply,
    why: &str,
    stats: &Stats,
) {
    stats.reply(reply.code());
    let _ = client.write_all(&request.reply_why(reply, why)).await;
    if matches!(request.version, Version::Http { .. }) {
        linger(client).await;
    }
}

/// `work` (router work for this client), dropped if the client hangs up first: its slot is
/// freed at once and nothing is opened for nobody. None then.
pub async fn unless_hung_up<T>(client: &TcpStream, work: impl Future<Output = T>) -> Option<T> {
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

/// After a final reply, close our side and briefly drain the client so the kernel does not
/// answer its unread request bytes with a reset that would destroy the reply in flight.
pub async fn linger(client: &mut TcpStream) {
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
        debug!("client did not close within 2 s after our HTTP answer");
    }
}

/// The next connection on `l`. Errors (EMFILE and friends) are transient: logged within
/// the rate limit and retried after a pause, never a spin nor the end of the loop.
pub async fn accept(l: &TcpListener) -> (tokio::net::TcpStream, std::net::SocketAddr) {
    loop {
        match l.accept().await {
            Ok(x) => return x,
            Err(e) => {
                client_log!(error, "accept failed on {:?}: {e}", l.local_addr().ok());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
