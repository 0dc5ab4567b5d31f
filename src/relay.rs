//! Byte relay between the client and the I2P stream.
//!
//! Each direction waits for readiness with no buffer, takes one only while data is waiting,
//! and gives it back when the socket runs dry: an idle connection holds no relay buffer
//! (tokio's copy_bidirectional keeps 2 × 8 KiB per connection for its whole life). EOF on
//! one side becomes a half-close (shutdown of writing) on the other; the other direction
//! carries on until it ends too.
//!
//! Bulk traffic (a read that fills the whole buffer) goes on with splice(2) through a pipe:
//! the bytes move socket → pipe → socket inside the kernel instead of being copied into
//! this process and back. The pipe is kept while the traffic stays bulk and closed when a
//! wake-up brings less than a buffer, so small messages and idle connections hold none.

use crate::status::Stats;
use std::io::ErrorKind;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;

/// Large enough that bulk transfers need few system calls; only held while data flows.
const BUF: usize = 64 * 1024;

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
    // Kept while the traffic is bulk; dropped when a wake-up moves less than a buffer.
    #[cfg(target_os = "linux")]
    let mut pipe: Option<splice::Pipe> = None;
    loop {
        from.readable().await?;
        #[cfg(target_os = "linux")]
        if let Some(p) = &pipe {
            match p.burst(from.as_ref(), to.as_ref(), counter).await? {
                splice::End::Dry(n) => {
                    total += n;
                    if n < BUF as u64 {
                        pipe = None;
                    }
                    continue;
                }
                splice::End::Eof(n) => return finish(&mut to, total + n).await,
            }
        }
        let mut buf = vec![0u8; BUF];
        loop {
            match from.try_read(&mut buf) {
                Ok(0) => return finish(&mut to, total).await,
                Ok(n) => {
                    to.write_all(&buf[..n]).await?;
                    total += n as u64;
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                    // A full buffer: bulk data. The rest of it goes by splice.
                    #[cfg(target_os = "linux")]
                    if n == BUF {
                        let p = splice::Pipe::new()?;
                        match p.burst(from.as_ref(), to.as_ref(), counter).await? {
                            splice::End::Dry(n) => {
                                total += n;
                                pipe = Some(p);
                                break;
                            }
                            splice::End::Eof(n) => return finish(&mut to, total + n).await,
                        }
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
    }
}

/// The source finished sending: pass the half-close on. A peer that already went away
/// (NotConnected) is not an error for the other direction.
async fn finish(to: &mut WriteHalf<'_>, total: u64) -> std::io::Result<u64> {
    match to.shutdown().await {
        Err(e) if e.kind() != ErrorKind::NotConnected => Err(e),
        _ => Ok(total),
    }
}

#[cfg(target_os = "linux")]
mod splice {
    use std::io::{Error, ErrorKind, Result};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::io::Interest;
    use tokio::net::TcpStream;

    /// How a burst ended, with the bytes it moved.
    pub enum End {
        /// The source ran dry (would block).
        Dry(u64),
        /// The source finished sending.
        Eof(u64),
    }

    /// Bytes per splice; the pipe is grown to this when the kernel allows.
    const CHUNK: usize = 256 * 1024;

    /// A pipe for moving bytes between two sockets inside the kernel. It is empty
    /// between bursts: each burst drains what it filled.
    pub struct Pipe {
        r: OwnedFd,
        w: OwnedFd,
    }

    impl Pipe {
        pub fn new() -> Result<Pipe> {
            let mut fds = [0; 2];
            // SAFETY: pipe2 writes two descriptors into `fds`, which we then own.
            if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
                return Err(Error::last_os_error());
            }
            let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
            // Best effort: a bigger pipe means fewer system calls per MiB.
            unsafe { libc::fcntl(w.as_raw_fd(), libc::F_SETPIPE_SZ, CHUNK as libc::c_int) };
            Ok(Pipe { r, w })
        }

        /// Move bytes from `from` to `to` until `from` would block or ends.
        pub async fn burst(
            &self,
            from: &TcpStream,
            to: &TcpStream,
            counter: &AtomicU64,
        ) -> Result<End> {
            let mut total = 0u64;
            loop {
                let n = match from.try_io(Interest::READABLE, || {
                    splice(from.as_raw_fd(), self.w.as_raw_fd(), CHUNK)
                }) {
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(End::Dry(total)),
                    Err(e) => return Err(e),
                };
                if n == 0 {
                    return Ok(End::Eof(total));
                }
                let mut left = n;
                while left > 0 {
                    match to.try_io(Interest::WRITABLE, || {
                        splice(self.r.as_raw_fd(), to.as_raw_fd(), left)
                    }) {
                        Ok(k) => left -= k,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => to.writable().await?,
                        Err(e) => return Err(e),
                    }
                }
                total += n as u64;
                counter.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }

    fn splice(from: i32, to: i32, len: usize) -> Result<usize> {
        // SAFETY: plain descriptors, no user memory involved.
        let n = unsafe {
            libc::splice(
                from,
                std::ptr::null_mut(),
                to,
                std::ptr::null_mut(),
                len,
                libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
            )
        };
        if n < 0 {
            Err(Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}
