//! Byte relay between the client and the I2P stream.
//!
//! Each direction waits for readiness with no buffer, takes one only while data is waiting,
//! and gives it back when the socket runs dry: an idle connection holds no relay buffer
//! (tokio's copy_bidirectional keeps 2 × 8 KiB per connection for its whole life). EOF on
//! one side becomes a half-close (shutdown of writing) on the other; the other direction
//! carries on until it ends too.
//!
//! A filtered stream (see `filter`) runs each direction's bytes through its leak filter
//! before they are written on. A filter may also answer the side that sent the bytes (an
//! IRC client told that its DCC offer was dropped), so there each writer sits behind a
//! lock the two directions share.

use crate::proxy::filter::Filters;
use crate::proxy::ratelimit::client_log;
use crate::proxy::status::Stats;
use eepsocks_leakfilter::{Filter, Output};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// A wake-up starts with a small buffer (most carry a few bytes or the EOF); reads that
/// fill it grow the next one up to `MAX_BUF`, so bulk transfers need few system calls.
/// Either is only held while data flows.
const MIN_BUF: usize = 16 * 1024;
const MAX_BUF: usize = 256 * 1024;

/// What one stream starts with: bytes each side sent before the relay took over (the
/// client's pipelined payload, what the router passed on with its reply).
pub struct Early {
    pub up: Vec<u8>,
    pub down: Vec<u8>,
}

/// Relay until both directions have ended. Returns bytes (client→stream, stream→client).
pub async fn relay(
    client: &mut TcpStream,
    stream: &mut TcpStream,
    early: Early,
    filters: Filters,
    stats: &Stats,
    peer: SocketAddr,
) -> std::io::Result<(u64, u64)> {
    if filters.is_none() {
        if !early.down.is_empty() {
            client.write_all(&early.down).await?;
        }
        if !early.up.is_empty() {
            stream.write_all(&early.up).await?;
        }
        drop(early);
        let (cr, cw) = client.split();
        let (sr, sw) = stream.split();
        return tokio::try_join!(
            pump(cr, sw, &stats.bytes_up),
            pump(sr, cw, &stats.bytes_down)
        );
    }
    stats.filtered_streams.fetch_add(1, Ordering::Relaxed);
    let (cr, cw) = client.split();
    let (sr, sw) = stream.split();
    let (cw, sw) = (Mutex::new(cw), Mutex::new(sw));
    let up = Direction {
        to: &sw,
        back: &cw,
        counter: &stats.bytes_up,
        stats,
        peer,
    };
    let down = Direction {
        to: &cw,
        back: &sw,
        counter: &stats.bytes_down,
        stats,
        peer,
    };
    tokio::try_join!(
        up.pump(cr, filters.up, early.up),
        down.pump(sr, filters.down, early.down)
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

/// One direction of a filtered stream.
struct Direction<'a, 'b> {
    to: &'a Mutex<WriteHalf<'b>>,
    /// The writer towards the side this direction reads from.
    back: &'a Mutex<WriteHalf<'b>>,
    counter: &'a AtomicU64,
    stats: &'a Stats,
    peer: SocketAddr,
}

impl Direction<'_, '_> {
    async fn pump(
        &self,
        from: ReadHalf<'_>,
        mut filter: Option<Box<dyn Filter>>,
        early: Vec<u8>,
    ) -> std::io::Result<u64> {
        let mut total = 0u64;
        let mut out = Output::default();
        if !early.is_empty() {
            total += self.deliver(&mut filter, &early, &mut out).await?;
        }
        drop(early);
        let mut size = MIN_BUF;
        loop {
            from.readable().await?;
            let mut buf = Vec::with_capacity(size);
            loop {
                if buf.len() == size && size < MAX_BUF {
                    size *= 4;
                    buf = Vec::with_capacity(size);
                }
                buf.clear();
                match from.try_read_buf(&mut buf) {
                    Ok(0) => {
                        // An incomplete last line is still decided by the filter.
                        if let Some(f) = filter.as_mut() {
                            out.clear();
                            f.finish(&mut out);
                            total += self.send(&mut out).await?;
                        }
                        match self.to.lock().await.shutdown().await {
                            Err(e) if e.kind() != ErrorKind::NotConnected => return Err(e),
                            _ => return Ok(total),
                        }
                    }
                    Ok(_) => total += self.deliver(&mut filter, &buf, &mut out).await?,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
    }

    /// Pass `input` through the filter (if any) and write the result. Returns bytes sent on.
    async fn deliver(
        &self,
        filter: &mut Option<Box<dyn Filter>>,
        mut input: &[u8],
        out: &mut Output,
    ) -> std::io::Result<u64> {
        let mut sent = 0u64;
        while !input.is_empty() {
            let ahead = filter.as_ref().map_or(usize::MAX, |f| f.untouched_ahead());
            let now = &input[..ahead.min(input.len())];
            if !now.is_empty() {
                // Body bytes the filter only counts (or all of them, with no filter or one
                // that passes for good): straight from the read buffer, no copy.
                self.to.lock().await.write_all(now).await?;
                self.counter.fetch_add(now.len() as u64, Ordering::Relaxed);
                sent += now.len() as u64;
                input = &input[now.len()..];
                match filter.as_mut() {
                    Some(f) if ahead != usize::MAX => f.skip(now.len()),
                    _ => *filter = None,
                }
                continue;
            }
            let Some(f) = filter.as_mut() else { break };
            out.clear();
            f.feed(input, out);
            if let Some(why) = out.stopped {
                self.stats.filter_stopped.fetch_add(1, Ordering::Relaxed);
                client_log!(info, client = %self.peer, "leak filter stopped: {why}; the rest of this stream passes unfiltered");
            }
            sent += self.send(out).await?;
            break;
        }
        Ok(sent)
    }

    async fn send(&self, out: &mut Output) -> std::io::Result<u64> {
        self.stats
            .filter_changes
            .fetch_add(out.changed, Ordering::Relaxed);
        if !out.back.is_empty() {
            // The sending side may have closed its reading half already: nothing to tell.
            let _ = self.back.lock().await.write_all(&out.back).await;
        }
        let n = out.forward.len() as u64;
        if n > 0 {
            self.to.lock().await.write_all(&out.forward).await?;
            self.counter.fetch_add(n, Ordering::Relaxed);
        }
        // Keep the buffers' capacity bounded between calls: one big read must not pin it.
        if out.forward.capacity() > MAX_BUF {
            out.forward = Vec::new();
        }
        Ok(n)
    }
}
