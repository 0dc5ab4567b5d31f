//! Byte relay between the client and the I2P stream.
//!
//! Each direction waits for readiness with no buffer, takes one only while data is waiting,
//! and gives it back when the socket runs dry: an idle connection holds no relay buffer
//! (tokio's copy_bidirectional keeps 2 × 8 KiB per connection for its whole life).
//!
//! Half-closes: the server's EOF becomes a shutdown of writing towards the client, and the
//! client may still send. The client's EOF becomes one towards the stream only where the
//! stream can carry it (`Early::half_close`): a SAM stream socket cannot, as i2pd
//! (`SAMSocket::HandleReceived` terminates the socket and the stream at EOF) and emissary
//! (its SAM stream task closes both ways at a read of 0) end the whole stream there, losing
//! the reply a `printf … | nc -N` client waits for. There the client's FIN is kept, and
//! the reply is relayed until the server closes, or `HALF_CLOSED_IDLE` (30 s) passes with nothing
//! from it (a server waiting for an EOF that never comes does not hold the stream forever).
//!
//! A filtered stream (see `filter`) runs each direction's bytes through its leak filter
//! before they are written on. A filter may also answer the side that sent the bytes (an
//! IRC client told that its DCC offer was dropped), so there each writer sits behind a
//! lock the two directions share. A filter that refuses the stream (it met something it
//! could not read) has its answer delivered, then the stream is closed both ways.

use crate::proxy::filter::Filters;
use crate::proxy::ratelimit::client_log;
use crate::proxy::stats::Stats;
use eepsocks_leakfilter::{Filter, Output};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// A wake-up starts with a small buffer (most carry a few bytes or the EOF); reads that
/// fill it grow the next one up to `MAX_BUF`, so bulk transfers need few system calls.
/// Either is only held while data flows.
const MIN_BUF: usize = 16 * 1024;
const MAX_BUF: usize = 256 * 1024;

/// After the client's FIN was kept from a stream that cannot carry it: how long the server
/// may stay silent (since the FIN and since its last byte) before the stream is closed,
/// checked every `QUIET_CHECK`. The server never learns the client is done, so one that
/// waits for that (an echo, a keep-alive HTTP server) is closed after this. Long enough
/// for a reply's first byte over I2P's round trips; short enough that `nc -N` exits.
const HALF_CLOSED_IDLE: Duration = Duration::from_secs(30);
const QUIET_CHECK: Duration = Duration::from_secs(5);

/// What one stream starts with: bytes each side sent before the relay took over (the
/// client's pipelined payload, what the router passed on with its reply).
pub struct Early {
    pub up: Vec<u8>,
    pub down: Vec<u8>,
    /// The stream carries a half-close (see the module docs).
    pub half_close: bool,
    /// Called once when the client's FIN is kept from the stream: the stream now only
    /// finishes a reply (its identity need not count it as busy).
    pub on_kept_fin: Option<Box<dyn FnOnce() + Send + Sync>>,
}

/// How one direction ended.
enum End {
    /// EOF (passed on as a half-close where it can be), after this many bytes.
    Eof(u64),
    /// Its filter refused the stream, after this many bytes: close both ways.
    Refused(u64),
}

impl End {
    fn bytes(&self) -> u64 {
        match self {
            End::Eof(n) | End::Refused(n) => *n,
        }
    }
}

/// What the two directions share about the client's half-close.
struct HalfClose {
    /// The client's FIN may be passed on to the stream.
    pass_on: bool,
    /// When the client sent its FIN and it was kept: the server's silence is now bounded.
    kept: std::sync::Mutex<Option<Instant>>,
    /// Wakes the server's direction when the FIN is kept: only then is its wait timed.
    kept_now: tokio::sync::Notify,
    on_kept: std::sync::Mutex<Option<Box<dyn FnOnce() + Send + Sync>>>,
}

impl HalfClose {
    /// The client's FIN was kept from the stream: start bounding the server's silence.
    fn keep(&self) {
        *self.kept.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        self.kept_now.notify_one();
        let hook = self
            .on_kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(f) = hook {
            f();
        }
    }

    /// Waits until `from` is readable; Ok(false) when the server stayed silent for
    /// `HALF_CLOSED_IDLE` after a kept client FIN (the stream is then closed).
    async fn readable(
        &self,
        from: &ReadHalf<'_>,
        quiet_since: &mut Instant,
    ) -> std::io::Result<bool> {
        if self.pass_on {
            from.readable().await?;
            return Ok(true);
        }
        // Until the client's FIN is kept, no timer: a plain wait (the common case, and an
        // idle stream's whole life).
        if self
            .kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
        {
            tokio::select! {
                r = from.readable() => {
                    r?;
                    *quiet_since = Instant::now();
                    return Ok(true);
                }
                _ = self.kept_now.notified() => {}
            }
        }
        loop {
            match tokio::time::timeout(QUIET_CHECK, from.readable()).await {
                Ok(r) => {
                    r?;
                    *quiet_since = Instant::now();
                    return Ok(true);
                }
                Err(_) => {
                    let kept = *self.kept.lock().unwrap_or_else(|e| e.into_inner());
                    if kept.is_some_and(|at| at.elapsed() >= HALF_CLOSED_IDLE)
                        && quiet_since.elapsed() >= HALF_CLOSED_IDLE
                    {
                        return Ok(false);
                    }
                }
            }
        }
    }
}

/// The reads of one direction: each wake-up reads until the socket runs dry into a
/// buffer taken for that wake-up only, which grows (×4 up to `MAX_BUF`) after a read that
/// filled it and stays grown for the next wake-ups: a stream that moved bulk data once
/// likely will again. Both pumps read through this.
struct Reads {
    size: usize,
}

impl Reads {
    fn new() -> Reads {
        Reads { size: MIN_BUF }
    }

    /// A buffer for one wake-up. Not zeroed: `try_read_buf` fills spare capacity, so a
    /// wake-up for a few bytes (or the EOF) does not pay for clearing it.
    fn buffer(&self) -> Vec<u8> {
        Vec::with_capacity(self.size)
    }

    /// The next read of this wake-up into `buf`: Some(bytes read, 0 at EOF), or None once
    /// the socket ran dry.
    fn next(&mut self, from: &ReadHalf<'_>, buf: &mut Vec<u8>) -> std::io::Result<Option<usize>> {
        if buf.len() == self.size && self.size < MAX_BUF {
            self.size *= 4;
            *buf = Vec::with_capacity(self.size);
        }
        buf.clear();
        match from.try_read_buf(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Relay until both directions have ended (or a filter refused the stream). Returns bytes
/// (client→stream, stream→client).
pub async fn relay(
    client: &mut TcpStream,
    stream: &mut TcpStream,
    mut early: Early,
    filters: Filters,
    stats: &Stats,
    peer: SocketAddr,
) -> std::io::Result<(u64, u64)> {
    let half = HalfClose {
        pass_on: early.half_close,
        kept: std::sync::Mutex::new(None),
        kept_now: tokio::sync::Notify::new(),
        on_kept: std::sync::Mutex::new(early.on_kept_fin.take()),
    };
    if filters.is_none() {
        return relay_plain(client, stream, early, &half, stats).await;
    }
    stats.filtered_streams.fetch_add(1, Ordering::Relaxed);
    let (refused, up, down) =
        relay_filtered(client, stream, early, filters, &half, stats, peer).await?;
    if refused {
        // The client has its answer (if any): end its side with a FIN, and read what it
        // still sends for a moment, so that closing with unread bytes does not reset the
        // connection and destroy the answer before the client reads it. The stream closes
        // when the caller drops it.
        crate::proxy::client::linger(client).await;
    }
    Ok((up, down))
}

/// A stream without filters: the early bytes, then both pumps.
async fn relay_plain(
    client: &mut TcpStream,
    stream: &mut TcpStream,
    early: Early,
    half: &HalfClose,
    stats: &Stats,
) -> std::io::Result<(u64, u64)> {
    if !early.down.is_empty() {
        client.write_all(&early.down).await?;
    }
    if !early.up.is_empty() {
        stream.write_all(&early.up).await?;
    }
    drop(early);
    let (cr, cw) = client.split();
    let (sr, sw) = stream.split();
    let up = pump(cr, sw, &stats.bytes_up, half, true);
    let down = pump(sr, cw, &stats.bytes_down, half, false);
    if half.pass_on {
        return tokio::try_join!(up, down);
    }
    // The server's EOF on a SAM stream means the router closed it both ways: nothing
    // the client still sends can arrive, so its side is not waited for (a client that
    // ignores our FIN would otherwise hold its slot for ever).
    tokio::pin!(up, down);
    let mut sent_up = None;
    loop {
        tokio::select! {
            r = &mut up, if sent_up.is_none() => sent_up = Some(r?),
            r = &mut down => return Ok((sent_up.unwrap_or(0), r?)),
        }
    }
}

/// A filtered stream: both directions through their filters, to their end unless one
/// refuses (then the other is dropped mid-wait). Whether one refused, and the bytes.
async fn relay_filtered(
    client: &mut TcpStream,
    stream: &mut TcpStream,
    early: Early,
    filters: Filters,
    half: &HalfClose,
    stats: &Stats,
    peer: SocketAddr,
) -> std::io::Result<(bool, u64, u64)> {
    let (cr, cw) = client.split();
    let (sr, sw) = stream.split();
    let (cw, sw) = (Mutex::new(cw), Mutex::new(sw));
    let answered = tokio::sync::Notify::new();
    let up = Direction {
        to: &sw,
        back: &cw,
        counter: &stats.bytes_up,
        stats,
        peer,
        half,
        upstream: true,
        answered: &answered,
    };
    let down = Direction {
        to: &cw,
        back: &sw,
        counter: &stats.bytes_down,
        stats,
        peer,
        half,
        upstream: false,
        answered: &answered,
    };
    let up_f = up.pump(cr, filters.up, early.up);
    let down_f = down.pump(sr, filters.down, early.down);
    tokio::pin!(up_f, down_f);
    let (mut up_end, mut down_end) = (None, None);
    loop {
        tokio::select! {
            r = &mut up_f, if up_end.is_none() => up_end = Some(r?),
            r = &mut down_f, if down_end.is_none() => down_end = Some(r?),
        }
        let refused =
            matches!(up_end, Some(End::Refused(_))) || matches!(down_end, Some(End::Refused(_)));
        // As in relay_plain: a SAM stream the server ended needs nothing more from the client.
        let server_done = !half.pass_on && matches!(down_end, Some(End::Eof(_)));
        if refused || server_done || (up_end.is_some() && down_end.is_some()) {
            return Ok((
                refused,
                up_end.as_ref().map_or(0, End::bytes),
                down_end.as_ref().map_or(0, End::bytes),
            ));
        }
    }
}

async fn pump(
    from: ReadHalf<'_>,
    mut to: WriteHalf<'_>,
    counter: &AtomicU64,
    half: &HalfClose,
    upstream: bool,
) -> std::io::Result<u64> {
    let mut total = 0u64;
    let mut reads = Reads::new();
    let mut quiet_since = Instant::now();
    loop {
        if upstream {
            from.readable().await?;
        } else if !half.readable(&from, &mut quiet_since).await? {
            return Ok(total);
        }
        let mut buf = reads.buffer();
        while let Some(n) = reads.next(&from, &mut buf)? {
            if n == 0 {
                if upstream && !half.pass_on {
                    // Kept from a stream that would end at it (module docs).
                    half.keep();
                    return Ok(total);
                }
                // Peer finished sending: pass the half-close on. A peer that already
                // went away (NotConnected) is not an error for the other direction.
                match to.shutdown().await {
                    Err(e) if e.kind() != ErrorKind::NotConnected => return Err(e),
                    _ => return Ok(total),
                }
            }
            to.write_all(&buf[..n]).await?;
            total += n as u64;
            counter.fetch_add(n as u64, Ordering::Relaxed);
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
    half: &'a HalfClose,
    /// Client → stream.
    upstream: bool,
    /// Signalled by the server's direction whenever it passed bytes on: the client's
    /// filter may be waiting for the server's answer (a protocol switch) to decide bytes
    /// it holds, which must not wait for the client's next bytes.
    answered: &'a tokio::sync::Notify,
}

impl Direction<'_, '_> {
    async fn pump(
        &self,
        from: ReadHalf<'_>,
        mut filter: Option<Box<dyn Filter>>,
        early: Vec<u8>,
    ) -> std::io::Result<End> {
        let mut total = 0u64;
        let mut out = Output::default();
        if !early.is_empty()
            && self
                .deliver(&mut filter, &early, &mut out, &mut total)
                .await?
        {
            return Ok(End::Refused(total));
        }
        if !self.upstream && !early.is_empty() {
            self.answered.notify_one();
        }
        drop(early);
        let mut reads = Reads::new();
        let mut quiet_since = Instant::now();
        loop {
            if self.upstream {
                tokio::select! {
                    r = from.readable() => r?,
                    _ = self.answered.notified() => {
                        // An empty feed lets the filter decide on the server's answer.
                        if let Some(f) = filter.as_mut() {
                            if self.feed(f.as_mut(), &[], &mut out, &mut total).await? {
                                return Ok(End::Refused(total));
                            }
                        }
                        continue;
                    }
                }
            } else if !self.half.readable(&from, &mut quiet_since).await? {
                return Ok(End::Eof(total));
            }
            let mut buf = reads.buffer();
            while let Some(n) = reads.next(&from, &mut buf)? {
                if n == 0 {
                    return self.eof(&mut filter, &mut out, total).await;
                }
                if self
                    .deliver(&mut filter, &buf, &mut out, &mut total)
                    .await?
                {
                    return Ok(End::Refused(total));
                }
                if !self.upstream {
                    self.answered.notify_one();
                }
            }
        }
    }

    /// The side this direction reads from finished sending: an incomplete last line is
    /// still decided by the filter, then the half-close is passed on (or kept).
    async fn eof(
        &self,
        filter: &mut Option<Box<dyn Filter>>,
        out: &mut Output,
        mut total: u64,
    ) -> std::io::Result<End> {
        if let Some(f) = filter.as_mut() {
            out.clear();
            f.finish(out);
            total += self.send(out).await?;
            if self.refused(out) {
                return Ok(End::Refused(total));
            }
        }
        if self.upstream && !self.half.pass_on {
            // Kept from a stream that would end at it (module docs).
            self.half.keep();
            return Ok(End::Eof(total));
        }
        match self.to.lock().await.shutdown().await {
            Err(e) if e.kind() != ErrorKind::NotConnected => Err(e),
            _ => Ok(End::Eof(total)),
        }
    }

    /// Pass `input` through the filter (if any) and write the result, adding the bytes sent
    /// on to `sent`. True when the filter refused the stream.
    async fn deliver(
        &self,
        filter: &mut Option<Box<dyn Filter>>,
        mut input: &[u8],
        out: &mut Output,
        sent: &mut u64,
    ) -> std::io::Result<bool> {
        while !input.is_empty() {
            let ahead = filter.as_ref().map_or(usize::MAX, |f| f.untouched_ahead());
            let now = &input[..ahead.min(input.len())];
            if !now.is_empty() {
                // Body bytes the filter only counts (or all of them, with no filter or one
                // that passes for good): straight from the read buffer, no copy.
                self.to.lock().await.write_all(now).await?;
                self.counter.fetch_add(now.len() as u64, Ordering::Relaxed);
                *sent += now.len() as u64;
                input = &input[now.len()..];
                match filter.as_mut() {
                    Some(f) if ahead != usize::MAX => f.skip(now.len()),
                    _ => *filter = None,
                }
                continue;
            }
            let Some(f) = filter.as_mut() else { break };
            return self.feed(f.as_mut(), input, out, sent).await;
        }
        Ok(false)
    }

    /// `input` through the filter, and what it gives on: true when it refused the stream.
    async fn feed(
        &self,
        f: &mut dyn Filter,
        input: &[u8],
        out: &mut Output,
        sent: &mut u64,
    ) -> std::io::Result<bool> {
        out.clear();
        f.feed(input, out);
        if let Some(why) = out.stopped {
            self.stats.filter_stopped.fetch_add(1, Ordering::Relaxed);
            client_log!(info, client = %self.peer, "leak filter stood aside: {why}");
        }
        *sent += self.send(out).await?;
        Ok(self.refused(out))
    }

    /// Whether the filter refused the stream on this call; counted and logged once.
    fn refused(&self, out: &Output) -> bool {
        let Some(why) = out.closed else { return false };
        self.stats.filter_closed.fetch_add(1, Ordering::Relaxed);
        let side = if self.upstream { "client" } else { "server" };
        client_log!(info, client = %self.peer, "leak filter closed the stream: the {side} sent what it cannot read: {why}");
        true
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
