//! emissary-core's `Runtime` on tokio. emissary-util has one too, but it brings reqwest,
//! OpenSSL, UPnP and NAT-PMP along (333 crates against 170 for this crate); the router
//! needs only sockets, timers, tasks and gzip.

use emissary_core::runtime::{
    AsyncRead, AsyncWrite, Counter, Gauge, Histogram, Instant as InstantT, JoinSet, MetricType,
    MetricsHandle, Runtime, TcpListener, TcpStream, UdpSocket,
};
use futures::Stream;
use rand::{CryptoRng, RngExt};
use std::cell::Cell;
use std::future::Future;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncRead as _, AsyncWrite as _, ReadBuf};

#[derive(Clone, Default)]
pub struct Tokio;

const MAX_GUNZIP: usize = 1 << 20;

fn custom(e: std::io::Error) -> emissary_core::Error {
    emissary_core::Error::Custom(e.to_string())
}

pub struct Tcp(tokio::net::TcpStream);

impl AsyncRead for Tcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<emissary_core::Result<usize>> {
        let mut rb = ReadBuf::new(buf);
        match Pin::new(&mut self.0).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(custom(e))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for Tcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<emissary_core::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf).map_err(custom)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<emissary_core::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx).map_err(custom)
    }

    fn poll_close(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<emissary_core::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx).map_err(custom)
    }
}

/// Dial timeout: a peer that does not answer is not worth a stuck task.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

impl TcpStream for Tcp {
    async fn connect(address: SocketAddr) -> Option<Self> {
        let s = tokio::time::timeout(DIAL_TIMEOUT, tokio::net::TcpStream::connect(address))
            .await
            .ok()?
            .ok()?;
        s.set_nodelay(true).ok()?;
        Some(Tcp(s))
    }
}

pub struct Listener {
    l: tokio::net::TcpListener,
    /// After a failed accept (e.g. out of file descriptors): wait before trying again.
    /// emissary takes `None` for "listener closed" and stops the transport, so errors
    /// must not reach it.
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

thread_local! {
    /// Set on every thread of an offline network's router runtime (`Settings::
    /// loopback_only`): emissary-core binds its transports to 0.0.0.0 / `::` whatever
    /// address it publishes, and `Runtime::bind` is a plain function with no router to ask.
    static LOOPBACK_ONLY: Cell<bool> = const { Cell::new(false) };
}

/// Bind on loopback from now on, on this thread (call it on each of a runtime's threads).
pub fn set_loopback_only(on: bool) {
    LOOPBACK_ONLY.with(|c| c.set(on));
}

/// The address to bind: an unspecified one becomes loopback on a loopback-only thread, so
/// an offline network (the demo) cannot be reached from the LAN.
fn bind_address(address: SocketAddr) -> SocketAddr {
    if !LOOPBACK_ONLY.with(Cell::get) || !address.ip().is_unspecified() {
        return address;
    }
    let ip = match address.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    SocketAddr::new(ip, address.port())
}

fn socket(address: SocketAddr, ty: socket2::Type) -> Option<socket2::Socket> {
    let domain = socket2::Domain::for_address(address);
    let s = socket2::Socket::new(domain, ty, None).ok()?;
    // IPv6 sockets take IPv6 only, so the IPv4 listener can share the port.
    if address.is_ipv6() {
        s.set_only_v6(true).ok()?;
    }
    s.set_nonblocking(true).ok()?;
    Some(s)
}

impl TcpListener<Tcp> for Listener {
    async fn bind(address: SocketAddr) -> Option<Self> {
        let address = bind_address(address);
        let s = socket(address, socket2::Type::STREAM)?;
        s.set_reuse_address(true).ok()?;
        s.bind(&address.into()).ok()?;
        s.listen(128).ok()?;
        let l = tokio::net::TcpListener::from_std(s.into()).ok()?;
        Some(Listener { l, pause: None })
    }

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<Option<(Tcp, SocketAddr)>> {
        loop {
            if let Some(p) = &mut self.pause {
                if p.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.pause = None;
            }
            match self.l.poll_accept(cx) {
                Poll::Ready(Ok((s, a))) => {
                    let _ = s.set_nodelay(true);
                    return Poll::Ready(Some((Tcp(s), a)));
                }
                Poll::Ready(Err(e)) => {
                    tracing::warn!("embedded router: accept failed: {e}; retrying in 1 s");
                    self.pause = Some(Box::pin(tokio::time::sleep(Duration::from_secs(1))));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn local_address(&self) -> Option<SocketAddr> {
        self.l.local_addr().ok()
    }
}

#[derive(Clone)]
pub struct Udp {
    socket: Arc<tokio::net::UdpSocket>,
    mtu: usize,
}

/// Ethernet's MTU; the router asks for another through `bind_with_mtu` when configured.
const DEFAULT_MTU: usize = 1500;

impl UdpSocket for Udp {
    fn bind(address: SocketAddr) -> impl Future<Output = Option<Self>> {
        Self::bind_with_mtu(address, DEFAULT_MTU)
    }

    async fn bind_with_mtu(address: SocketAddr, mtu: usize) -> Option<Self> {
        let address = bind_address(address);
        let s = socket(address, socket2::Type::DGRAM)?;
        s.bind(&address.into()).ok()?;
        let socket = Arc::new(tokio::net::UdpSocket::from_std(s.into()).ok()?);
        Some(Udp { socket, mtu })
    }

    // A failed send (unreachable network, EPERM, too big) loses that datagram only, as on
    // the wire; `None` would make emissary take the socket for closed and stop SSU2.
    async fn send_to(&mut self, buf: &[u8], target: SocketAddr) -> Option<usize> {
        Some(self.socket.send_to(buf, target).await.unwrap_or(buf.len()))
    }

    async fn recv_from(&mut self, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
        loop {
            match self.socket.recv_from(buf).await {
                Ok(r) => return Some(r),
                // e.g. an ICMP error queued on the socket: skip it.
                Err(_) => tokio::task::yield_now().await,
            }
        }
    }

    fn poll_send_to(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<Option<usize>> {
        self.socket
            .poll_send_to(cx, buf, target)
            .map(|r| Some(r.unwrap_or(buf.len())))
    }

    fn poll_recv_from(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<Option<(usize, SocketAddr)>> {
        let mut rb = ReadBuf::new(buf);
        match self.socket.poll_recv_from(cx, &mut rb) {
            Poll::Ready(Ok(from)) => Poll::Ready(Some((rb.filled().len(), from))),
            // Skip the error, try again on the next poll (not `None`: see send_to).
            Poll::Ready(Err(_)) => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn local_address(&self) -> Option<SocketAddr> {
        self.socket.local_addr().ok()
    }

    fn mtu(&self) -> usize {
        self.mtu
    }
}

/// A tokio `JoinSet` as a stream that stays pending while empty (the router polls it in
/// its event loops and pushes work later), waking when work is pushed.
pub struct Tasks<T> {
    set: tokio::task::JoinSet<T>,
    waker: Option<Waker>,
}

impl<T: Send + 'static> JoinSet<T> for Tasks<T> {
    fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    fn len(&self) -> usize {
        self.set.len()
    }

    fn push<F>(&mut self, future: F)
    where
        F: Future<Output = T> + Send + 'static,
        F::Output: Send,
    {
        self.set.spawn(future);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

impl<T: Send + 'static> Stream for Tasks<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        loop {
            match self.set.poll_join_next(cx) {
                Poll::Ready(Some(Ok(v))) => return Poll::Ready(Some(v)),
                // A task that panicked or was cancelled has no value; look at the next.
                Poll::Ready(Some(Err(_))) => continue,
                Poll::Ready(None) | Poll::Pending => {
                    self.waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Instant(tokio::time::Instant);

impl InstantT for Instant {
    fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

/// The router's own metrics are not exported: eepsocks has its own /metrics, and
/// emissary's exporter would listen on 0.0.0.0.
#[derive(Clone)]
pub struct NoMetrics;

impl Counter for NoMetrics {
    fn increment(&mut self, _: usize) {}
    fn increment_with_label(&mut self, _: usize, _: &'static str, _: &'static str) {}
}

impl Gauge for NoMetrics {
    fn increment(&mut self, _: usize) {}
    fn decrement(&mut self, _: usize) {}
}

impl Histogram for NoMetrics {
    fn record(&mut self, _: f64) {}
}

impl MetricsHandle for NoMetrics {
    fn counter(&self, _: &'static str) -> impl Counter {
        NoMetrics
    }
    fn gauge(&self, _: &'static str) -> impl Gauge {
        NoMetrics
    }
    fn histogram(&self, _: &'static str) -> impl Histogram {
        NoMetrics
    }
}

impl Runtime for Tokio {
    type TcpStream = Tcp;
    type UdpSocket = Udp;
    type TcpListener = Listener;
    type JoinSet<T: Send + 'static> = Tasks<T>;
    type MetricsHandle = NoMetrics;
    type Instant = Instant;
    type Timer = Pin<Box<tokio::time::Sleep>>;

    fn spawn<F>(future: F)
    where
        F: Future + Send + 'static,
        F::Output: Send,
    {
        tokio::spawn(future);
    }

    fn time_since_epoch() -> Duration {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
    }

    fn now() -> Instant {
        Instant(tokio::time::Instant::now())
    }

    fn rng() -> impl CryptoRng + RngExt {
        rand::rng()
    }

    fn join_set<T: Send + 'static>() -> Tasks<T> {
        Tasks {
            set: tokio::task::JoinSet::new(),
            waker: None,
        }
    }

    fn register_metrics(_: Vec<MetricType>, _: Option<u16>) -> NoMetrics {
        NoMetrics
    }

    fn timer(duration: Duration) -> Self::Timer {
        Box::pin(tokio::time::sleep(duration))
    }

    fn delay(duration: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(duration)
    }

    fn gzip_compress(bytes: impl AsRef<[u8]>) -> Option<Vec<u8>> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes.as_ref()).ok()?;
        e.finish().ok()
    }

    fn gzip_decompress(bytes: impl AsRef<[u8]>) -> Option<Vec<u8>> {
        use std::io::Read;
        // Input comes from peers; gzip expands ~1000:1, so cap the output. I2NP messages
        // and LeaseSets are far below this.
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_ref())
            .take(MAX_GUNZIP as u64 + 1)
            .read_to_end(&mut out)
            .ok()?;
        (out.len() <= MAX_GUNZIP).then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only_rewrites_unspecified_binds() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let l = Listener::bind(a("0.0.0.0:0")).await.unwrap();
            assert!(l.local_address().unwrap().ip().is_unspecified());
            set_loopback_only(true);
            let l = Listener::bind(a("0.0.0.0:0")).await.unwrap();
            assert_eq!(l.local_address().unwrap().ip(), a("127.0.0.1:0").ip());
            let u = Udp::bind(a("0.0.0.0:0")).await.unwrap();
            assert_eq!(u.local_address().unwrap().ip(), a("127.0.0.1:0").ip());
            // A given address is kept.
            let u = Udp::bind(a("127.0.0.2:0")).await.unwrap();
            assert_eq!(u.local_address().unwrap().ip(), a("127.0.0.2:0").ip());
            set_loopback_only(false);
        });
        assert_eq!(bind_address(a("[::]:5")), a("[::]:5"));
        set_loopback_only(true);
        assert_eq!(bind_address(a("[::]:5")), a("[::1]:5"));
        set_loopback_only(false);
    }

    #[test]
    fn gunzip_round_trip_and_bomb_refused() {
        let v = b"hello".repeat(100);
        let z = Tokio::gzip_compress(&v).unwrap();
        assert_eq!(Tokio::gzip_decompress(&z).unwrap(), v);
        let bomb = Tokio::gzip_compress(vec![0u8; MAX_GUNZIP + 1]).unwrap();
        assert!(bomb.len() < 10_000);
        assert_eq!(Tokio::gzip_decompress(&bomb), None);
        assert_eq!(Tokio::gzip_decompress(b"not gzip"), None);
    }
}
