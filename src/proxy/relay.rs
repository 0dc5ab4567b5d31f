//! Byte relay between the client and the I2P stream.
//!
//! Each direction waits for readiness with no buffer, takes one only while data is waiting,
//! and gives it back when the socket runs dry: an idle connection holds no relay buffer
//! (tokio's copy_bidirectional keeps 2 × 8 KiB per connection for its whole life). EOF on
//! one side becomes a half-close (shutdown of writing) on the other; the other direction
//! carries on until it ends too.

use crate::proxy::status::Stats;
use std::io::ErrorKind;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;

/// A wake-up starts with a small buffer (most carry a few bytes or the EOF); reads that
/// fill it grow the next one up to `MAX_BUF`, so bulk transfers need few system calls.
/// Either is only held while data flows.
const MIN_BUF: usize = 16 * 1024;
const MAX_BUF: usize = 256 * 1024;

/// Relay until both directions have ended. Returns bytes (client→stream, stream→client).
pub async fn relay(
    client: &mut TcpStream,
    stream: &mut TcpStream,
    stats: &Stats,
) -> std::io::Result<(u64, u64)> {
    let (cr, cw) = client.split();
    let (sr, sw) = stream.split();
    tokio::try_join!(
        pump(cr, sw, &stats.bytes_up),
        pump(sr, cw, &stats.bytes_down)
    )
}

async fn pump(
    from: ReadHalf<'_>,
    mut to: WriteHalf<'_>,
    counter: &AtomicU64,
) -> std::io::Result<u64> {
    let mut total = 0u64;
    // Remembered across wake-ups: a stream that moved bulk data once likely will again.
    let mut size = MIN_BUF;
    loop {
        from.readable().await?;
        // Not zeroed: try_read_buf fills spare capacity, so a wake-up for a few bytes (or
        // the EOF) does not pay for clearing the buffer.
        let mut buf = Vec::with_capacity(size);
        loop {
            if buf.len() == size && size < MAX_BUF {
                size *= 4;
                buf = Vec::with_capacity(size);
            }
            buf.clear();
            match from.try_read_buf(&mut buf) {
                Ok(0) => {
                    // Peer finished sending: pass the half-close on. A peer that already
                    // went away (NotConnected) is not an error for the other direction.
                    match to.shutdown().await {
                        Err(e) if e.kind() != ErrorKind::NotConnected => return Err(e),
                        _ => return Ok(total),
                    }
                }
                Ok(n) => {
                    to.write_all(&buf[..n]).await?;
                    total += n as u64;
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
    }
}
