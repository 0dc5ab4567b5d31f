//! The in-process front end: eepsocks' own accept loop (`proxy::server::serve_listener`) and
//! connection handling, with a router that opens plain TCP instead of I2P streams. For
//! what the i2pd network cannot show or would make slow: exact relay behaviour, malformed
//! clients, timeouts under tokio's paused clock.

use eepsocks::config::FilterMode;
use eepsocks::i2p::{OpenError, Opened, Router};
use eepsocks::naming::Target;
use eepsocks::proxy::context::ListenerContext;
use eepsocks::socks::{AuthCheck, Credentials};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};

/// Opens plain TCP to one fixed address whatever the target: the front end alone, without
/// I2P.
pub struct DirectRouter {
    pub addr: SocketAddr,
    /// Passed on as `Opened::half_close` (plain TCP carries a half-close; SAM does not).
    pub half_close: bool,
}

impl Router for DirectRouter {
    async fn resolve(&self, _who: Option<&Credentials>, _target: &Target) -> Result<(), OpenError> {
        Ok(())
    }

    async fn open(
        &self,
        _who: Option<&Credentials>,
        _target: &Target,
        _port: u16,
    ) -> Result<Opened, OpenError> {
        let stream = TcpStream::connect(self.addr)
            .await
            .map_err(|e| OpenError::Router(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        Ok(Opened {
            stream,
            early: Vec::new(),
            hold: None,
            half_close: self.half_close,
        })
    }
}

/// A front end on a loopback port whose every stream goes to `target`.
pub struct Frontend {
    target: SocketAddr,
    handshake: Duration,
    stream: Duration,
    max_clients: usize,
    auth: Option<AuthCheck>,
    filter: FilterMode,
    user_agent: Option<String>,
    irc_hide_account: bool,
    half_close: bool,
}

impl Frontend {
    /// Defaults: 5 s handshake and stream timeouts, 64 clients, no login.
    pub fn new(target: SocketAddr) -> Frontend {
        Frontend {
            target,
            handshake: Duration::from_secs(5),
            stream: Duration::from_secs(5),
            max_clients: 64,
            auth: None,
            filter: FilterMode::Auto,
            user_agent: None,
            irc_hide_account: true,
            half_close: true,
        }
    }

    pub fn handshake_timeout(mut self, d: Duration) -> Frontend {
        self.handshake = d;
        self
    }

    pub fn stream_timeout(mut self, d: Duration) -> Frontend {
        self.stream = d;
        self
    }

    pub fn max_clients(mut self, n: usize) -> Frontend {
        self.max_clients = n;
        self
    }

    /// Require an RFC 1929 login that `check` accepts.
    pub fn auth(mut self, check: AuthCheck) -> Frontend {
        self.auth = Some(check);
        self
    }

    /// The listener's leak filter (default "auto", as in the config).
    pub fn filter(mut self, mode: FilterMode) -> Frontend {
        self.filter = mode;
        self
    }

    /// The HTTP filter's User-Agent.
    pub fn user_agent(mut self, ua: &str) -> Frontend {
        self.user_agent = Some(ua.to_string());
        self
    }

    /// The IRC filter's `irc_hide_account` (default on, as in the config).
    pub fn irc_hide_account(mut self, on: bool) -> Frontend {
        self.irc_hide_account = on;
        self
    }

    /// Whether the router's streams carry a half-close (default true, plain TCP); false
    /// acts like a SAM router, whose stream ends at the first FIN.
    pub fn half_close(mut self, on: bool) -> Frontend {
        self.half_close = on;
        self
    }

    /// Bind now, so the address is known when `spawn` returns; listen later, on the runtime.
    fn bind(&self) -> (TcpSocket, SocketAddr) {
        let s = TcpSocket::new_v4().unwrap();
        s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = s.local_addr().unwrap();
        (s, addr)
    }

    fn serve(self, s: TcpSocket) -> impl std::future::Future<Output = ()> {
        let mut ctx = ListenerContext::new(self.handshake, self.stream, self.max_clients);
        ctx.auth = self.auth;
        ctx.filter = self.filter;
        ctx.user_agent = self.user_agent;
        ctx.irc_hide_account = self.irc_hide_account;
        // A backlog for a thousand clients connecting at once (std's default is 128).
        let l = Arc::new(s.listen(1024).unwrap());
        let router = Arc::new(DirectRouter {
            addr: self.target,
            half_close: self.half_close,
        });
        // Serves until the runtime goes away.
        eepsocks::proxy::server::serve_listener(l, router, Arc::new(ctx), std::future::pending())
    }

    /// Serve as a task on the current tokio runtime (call from inside one). With paused
    /// time, the proxy's timeouts then run on the test's clock.
    pub fn spawn(self) -> SocketAddr {
        let (l, addr) = self.bind();
        tokio::spawn(self.serve(l));
        addr
    }

    /// Serve on a thread of its own with its own runtime, for blocking clients in real time.
    pub fn spawn_thread(self) -> SocketAddr {
        let (s, addr) = self.bind();
        let (listening, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            // listen() needs the runtime's reactor: make the future inside block_on.
            rt.block_on(async move {
                let serving = self.serve(s);
                listening.send(()).unwrap();
                serving.await
            });
        });
        wait.recv().expect("front end listening");
        addr
    }
}
