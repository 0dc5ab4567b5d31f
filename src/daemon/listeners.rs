//! The daemon's state: running listeners, the identities behind them, stopped listeners
//! still draining; and `apply`, which makes them match a config all or nothing: `prepare`
//! gets everything ready without touching what runs (keys, sockets, logins), then
//! `commit` swaps it in, synchronously.

use super::automap_ports::AutomapPorts;
use super::events::ListenerReady;
use super::identities::{
    commit_identity, plan_identity, Identity, IdentityKey, IdentityPlan, PENDING,
};
use super::listener::{
    listener_context, listener_info, listener_template, per_user_pool, Carried, IdentityChoice,
    Running, Shared, Spec,
};
use super::status::ListenerInfo;
use crate::config::{Config, ConfigSource, Isolate, Listener};
use crate::i2p::feeds::SamFeeds;
use crate::i2p::identity::{Mode, Pool, Template};
use crate::i2p::sam::Session;
use crate::i2p::SamRouter;
use crate::naming::subscriptions::Subscriptions;
use crate::naming::Books;
use crate::proxy::context::ListenerContext;
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// A listener as the new config wants it, ready to swap in.
struct Planned {
    spec: Spec,
    socket: Arc<TcpListener>,
    auth: Option<crate::socks::AuthCheck>,
    /// Unchanged: keep the running one as it is.
    keep: bool,
}

struct Plan {
    listeners: Vec<Planned>,
    identities: HashMap<IdentityKey, IdentityPlan>,
    automap: Option<AutomapPorts>,
}

/// Listeners started by an `apply`, and the sessions to wait for.
pub(super) struct Started {
    pub(super) listeners: Vec<ListenerReady>,
    pub(super) sessions: Vec<Session>,
    /// Listeners whose identity's keys the router has yet to make: `listeners[i]` gets
    /// its b32 from the session once it is up (`fill_identities`).
    pending: Vec<(usize, Session)>,
}

impl Started {
    /// The b32 of identities whose keys were made since the listener started.
    pub(super) fn fill_identities(&mut self) {
        for (i, s) in &self.pending {
            if let Some(k) = s.keys() {
                self.listeners[*i].identity = k.destination().b32();
            }
        }
    }
}

pub(super) struct Daemon {
    books: Arc<Books>,
    data_dir: PathBuf,
    identities: HashMap<IdentityKey, Identity>,
    running: Vec<Running>,
    /// Contexts of stopped listeners whose clients are still connected.
    pub(super) draining: Vec<Arc<ListenerContext>>,
    pub(super) infos: Arc<RwLock<Vec<Arc<ListenerInfo>>>>,
    pub(super) pools: Arc<RwLock<Vec<Arc<Pool>>>>,
    /// The descriptor budget and failed logins, for every listener.
    shared: Shared,
    automap: Option<AutomapPorts>,
}

impl Daemon {
    pub(super) fn new(cfg: &Config) -> Result<Daemon> {
        let books = Arc::new(Books::default());
        let d = Daemon {
            books,
            data_dir: cfg.data_dir(),
            identities: HashMap::new(),
            running: Vec::new(),
            draining: Vec::new(),
            infos: Arc::default(),
            pools: Arc::default(),
            shared: Shared {
                budget: Arc::new(tokio::sync::Semaphore::new(budget(cfg))),
                logins: Arc::default(),
            },
            automap: None,
        };
        d.books.load(&d.data_dir)?;
        Ok(d)
    }

    pub(super) fn subscriptions(
        &self,
        cfg: &Config,
        tasks: &mut Vec<JoinHandle<()>>,
    ) -> Result<()> {
        let subs = Subscriptions {
            urls: cfg.subscriptions.clone(),
            dir: cfg.data_dir(),
            feeds: SamFeeds {
                template: Template {
                    sam_addr: cfg.sam.clone(),
                    options: cfg.session_options()?,
                    sig_type: cfg.signature_type,
                    create_timeout: Duration::from_secs(cfg.session_timeout),
                    datagrams: false,
                },
                timeout: Duration::from_secs(300),
            },
            books: self.books.clone(),
            delay: Duration::from_secs(cfg.subscription_delay),
            interval: Duration::from_secs(cfg.subscription_interval),
            timeout: Duration::from_secs(300),
        };
        if !subs.urls.is_empty() {
            tasks.push(tokio::spawn(subs.run()));
        }
        Ok(())
    }

    /// What `eepsocks exec` gets from this daemon (src/exec/control.rs).
    pub(super) fn exec_host(&self, cfg: &Config) -> Result<crate::exec::control::Host> {
        let automap = cfg.automap.as_ref();
        Ok(crate::exec::control::Host {
            books: self.books.clone(),
            template: Template {
                sam_addr: cfg.sam.clone(),
                options: cfg.session_options()?,
                sig_type: cfg.signature_type,
                create_timeout: Duration::from_secs(cfg.session_timeout),
                // exec carries TCP and DNS only: no datagram subsession.
                datagrams: false,
            },
            data_dir: self.data_dir.clone(),
            handshake_timeout: Duration::from_secs(cfg.handshake_timeout),
            stream_timeout: Duration::from_secs(cfg.stream_timeout),
            max_clients: cfg.max_clients,
            network: automap.map_or_else(crate::config::default_automap_network, |a| a.network),
            ttl: automap.map_or_else(crate::config::default_automap_ttl, |a| a.ttl),
            budget: self.shared.budget.clone(),
            infos: self.infos.clone(),
        })
    }

    /// Address books, then the config (`source` again, with the command line's overrides).
    pub(super) async fn reload(
        &mut self,
        current: &Config,
        source: &ConfigSource,
    ) -> Result<(Config, Vec<ListenerReady>)> {
        match self.books.load(&self.data_dir) {
            Ok(()) => info!("reload: address book reloaded"),
            Err(e) => warn!("reload: address book not reloaded: {e:#}"),
        }
        let mut new = source.read()?;
        // The router is chosen once, at start: a reload never switches it.
        new.sam = current.sam.clone();
        new.sam_udp = current.sam_udp.clone();
        new.sam_udp_max = current.sam_udp_max;
        new.router = current.router;
        new.embedded = current.embedded.clone();
        new.validate()?;
        if new.data_dir() != self.data_dir {
            anyhow::bail!("data_dir cannot change on reload (restart eepsocks)");
        }
        if new.subscriptions != current.subscriptions || new.status_listen != current.status_listen
        {
            warn!("reload: subscriptions and status_listen changes take effect at the next start");
        }
        let mut started = self.apply(&new).await?;
        // A new identity's keys come from the router within seconds (its session may take
        // longer): the reload's report names them when it can.
        let t0 = tokio::time::Instant::now();
        while started.pending.iter().any(|(_, s)| s.keys().is_none())
            && t0.elapsed() < Duration::from_secs(15)
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        started.fill_identities();
        Ok((new, started.listeners))
    }

    /// Make the running listeners match `cfg`, all or nothing.
    pub(super) async fn apply(&mut self, cfg: &Config) -> Result<Started> {
        let plan = self.prepare(cfg).await?;
        Ok(self.commit(cfg, plan))
    }

    /// Everything `cfg` needs, without changing anything that runs. Fails as a whole.
    async fn prepare(&self, cfg: &Config) -> Result<Plan> {
        let mut plan = Plan {
            listeners: Vec::new(),
            identities: HashMap::new(),
            automap: AutomapPorts::plan(cfg, self.automap.as_ref()).await?,
        };
        for l in cfg.listeners() {
            let id = self.plan_listener_identity(cfg, &l, &mut plan.identities)?;
            let spec = Spec::from_config(cfg, &l, id)?;
            let auth = l.auth_check()?;
            // The same address keeps its socket: never a moment without a listener, and
            // no EADDRINUSE from a socket that is still closing.
            let same_addr = self
                .running
                .iter()
                .find(|r| r.spec.listener.listen == l.listen);
            let socket = match same_addr {
                Some(r) => r.socket.clone(),
                None => Arc::new(
                    TcpListener::bind(l.listen)
                        .await
                        .with_context(|| format!("cannot listen on {}", l.listen))?,
                ),
            };
            let identity_same = match &spec.identity {
                Some(k) => matches!(plan.identities.get(k), Some(IdentityPlan::Keep(_))),
                None => true,
            };
            let keep = identity_same && same_addr.is_some_and(|r| r.spec == spec);
            plan.listeners.push(Planned {
                spec,
                socket,
                auth,
                keep,
            });
        }
        Ok(plan)
    }

    /// Listener `l`'s identity: one per username, or its key's (planned into `identities`
    /// once for the listeners that share it).
    fn plan_listener_identity(
        &self,
        cfg: &Config,
        l: &Listener,
        identities: &mut HashMap<IdentityKey, IdentityPlan>,
    ) -> Result<IdentityChoice> {
        if l.isolate == Isolate::Username {
            let dir = l
                .persistent_users
                .then(|| cfg.data_dir().join("users").join(&l.name));
            return Ok(IdentityChoice {
                key: None,
                per_user_dir: dir,
            });
        }
        let key = match cfg.listener_key_path(l) {
            Some(p) => IdentityKey::File(p),
            None => IdentityKey::Transient(l.name.clone()),
        };
        if !identities.contains_key(&key) {
            let template = listener_template(cfg, l)?;
            let p = plan_identity(&key, &template, self.identities.get(&key))?;
            identities.insert(key.clone(), p);
        }
        Ok(IdentityChoice {
            key: Some(key),
            per_user_dir: None,
        })
    }

    /// Serve automap's ports for the automap listener as it runs now; the previous tasks
    /// stop (their sockets live on in the new ones when kept).
    fn start_automap(&mut self, cfg: &Config, ports: Option<AutomapPorts>) {
        if let Some(old) = self.automap.take() {
            old.stop.cancel();
        }
        let Some(ports) = ports else { return };
        let name = cfg.automap_listener().unwrap_or_default();
        let Some(r) = self.running.iter().find(|r| r.spec.listener.name == name) else {
            // validate() makes sure the listener exists.
            return;
        };
        ports.spawn_servers(&name, &r.router, &r.ctx);
        self.automap = Some(ports);
    }

    /// Swap the plan in. Synchronous: nothing can fail or be interrupted half-way.
    fn commit(&mut self, cfg: &Config, plan: Plan) -> Started {
        let mut started = Started {
            listeners: Vec::new(),
            sessions: Vec::new(),
            pending: Vec::new(),
        };
        // Identities first: listeners pick their sessions from here. Identities no listener
        // uses any more close once their last stream ends.
        self.identities = plan
            .identities
            .into_iter()
            .map(|(key, p)| {
                let id = commit_identity(&key, p);
                (key, id)
            })
            .collect();
        let mut old: Vec<Running> = std::mem::take(&mut self.running);
        for p in plan.listeners {
            if p.keep {
                let i = old.iter().position(|r| r.spec == p.spec);
                self.running
                    .push(old.swap_remove(i.expect("kept listener is running")));
                continue;
            }
            // The listener this one replaces (same name): its counters and per-user
            // identities carry over; it stops accepting before this one starts.
            let prev = old
                .iter()
                .position(|r| r.spec.listener.name == p.spec.listener.name);
            let prev = prev.map(|i| old.swap_remove(i));
            // Whoever had this address before (under another name) stops too.
            let same_addr = old
                .iter()
                .position(|r| r.spec.listener.listen == p.spec.listener.listen);
            if let Some(r) = same_addr.map(|i| old.swap_remove(i)) {
                self.stop(r);
            }
            let running = self.start(p, prev, &mut started);
            self.running.push(running);
        }
        for r in old {
            self.stop(r);
        }
        self.start_automap(cfg, plan.automap);
        self.draining.retain(|c| c.open() > 0);
        let order: Vec<String> = cfg.listeners().into_iter().map(|l| l.name).collect();
        self.running
            .sort_by_key(|r| order.iter().position(|n| *n == r.spec.listener.name));
        if let Ok(mut i) = self.infos.write() {
            // Running execs stay listed (they are no listener of the config).
            let execs = i
                .iter()
                .filter(|l| l.listen == crate::exec::control::EXEC_LISTEN)
                .cloned();
            *i = self
                .running
                .iter()
                .map(|r| r.info.clone())
                .chain(execs)
                .collect();
        }
        if let Ok(mut p) = self.pools.write() {
            *p = self
                .running
                .iter()
                .filter(|r| r.pool.is_per_user())
                .map(|r| r.pool.clone())
                .collect();
        }
        started
    }

    /// Start the accept loop of a planned listener (after stopping `prev`, if any).
    fn start(&mut self, p: Planned, prev: Option<Running>, started: &mut Started) -> Running {
        let (pool, identity_text) = self.listener_pool(&p.spec, prev.as_ref(), started);
        let carried = Carried::from_previous(prev.as_ref().map(|r| (&r.spec, &*r.ctx)), &p.spec);
        let ctx = Arc::new(listener_context(&p.spec, p.auth, carried, &self.shared));
        let session = (p.spec.identity.as_ref()).map(|k| self.identities[k].session.clone());
        // What clients must use: `listen = "127.0.0.1:0"` gets a port from the kernel, and
        // the status, the log and the ready lines name that one.
        let bound = p.socket.local_addr().unwrap_or(p.spec.listener.listen);
        let info = listener_info(&p.spec, bound, &ctx, &pool, session, identity_text.clone());
        log_start(&p.spec.listener, bound, &ctx);
        if let Some(r) = prev {
            self.stop(r);
        }
        let stop = CancellationToken::new();
        let router = Arc::new(SamRouter {
            pool: pool.clone(),
            book: self.books.clone(),
            udp: p.spec.sam_udp.clone(),
            router_timeout: Some(crate::config::router_connect_timeout(p.spec.stream_timeout)),
        });
        tokio::spawn(crate::proxy::server::serve_listener(
            p.socket.clone(),
            router.clone(),
            ctx.clone(),
            stop.clone().cancelled_owned(),
        ));
        let l = &p.spec.listener;
        started.listeners.push(ListenerReady {
            name: l.name.clone(),
            listen: bound,
            identity: identity_text,
        });
        Running {
            spec: p.spec,
            socket: p.socket,
            stop,
            ctx,
            pool,
            info: Arc::new(info),
            router,
        }
    }

    /// The pool of a listener about to start, and its identity as the `destination` line
    /// names it: its key's session (whose b32 `started` fills in once the keys are made),
    /// or per username.
    fn listener_pool(
        &self,
        spec: &Spec,
        prev: Option<&Running>,
        started: &mut Started,
    ) -> (Arc<Pool>, String) {
        let Some(key) = &spec.identity else {
            return (per_user_pool(spec, prev), "per-username".to_string());
        };
        let id = &self.identities[key];
        started.sessions.push(id.session.clone());
        let mode = Mode::Fixed(id.session.clone());
        let pool = Pool::new(&spec.listener.name, spec.template.clone(), mode);
        let b32 = match id.session.keys() {
            Some(k) => k.destination().b32(),
            None => {
                let i = started.listeners.len();
                started.pending.push((i, id.session.clone()));
                PENDING.to_string()
            }
        };
        (Arc::new(pool), b32)
    }

    /// The automap ports running now, as the ports file shows them.
    pub(super) fn automap_ports(&self, cfg: &Config) -> Option<crate::ports::PortAutomap> {
        self.automap.as_ref()?.ports_file(cfg)
    }

    /// Stop accepting on `r`; its connected clients carry on and are drained.
    fn stop(&mut self, r: Running) {
        info!(
            "listener {} stopped (removed or changed); its open streams continue",
            r.spec.listener.name
        );
        r.stop.cancel();
        if r.ctx.open() > 0 {
            self.draining.push(r.ctx);
        }
    }

    /// Clients connected now, on running and stopped listeners.
    fn open(&self) -> usize {
        let running = self.running.iter().map(|r| r.ctx.open());
        let draining = self.draining.iter().map(|c| c.open());
        running.chain(draining).sum()
    }

    /// Close every session (listeners' identities and per-user ones) and wait, briefly,
    /// until their control connections are gone. At exit only.
    pub(super) async fn close_sessions(&mut self) {
        let pools = self.pools.read().map(|p| p.clone()).unwrap_or_default();
        for p in &pools {
            p.close_all();
        }
        let sessions: Vec<Session> = self.identities.drain().map(|(_, i)| i.session).collect();
        for s in &sessions {
            s.close();
        }
        let all_closed = async {
            for s in &sessions {
                s.closed().await;
            }
        };
        // A wedged task must not hold up the exit.
        let _ = tokio::time::timeout(Duration::from_secs(2), all_closed).await;
    }

    /// Stop accepting everywhere, then give open connections up to `limit` to finish.
    pub(super) async fn drain(&mut self, limit: Duration) {
        if let Some(a) = self.automap.take() {
            a.stop.cancel();
        }
        for r in std::mem::take(&mut self.running) {
            r.stop.cancel();
            self.draining.push(r.ctx);
        }
        let now = tokio::time::Instant::now();
        let deadline = now
            .checked_add(limit)
            .unwrap_or(now + Duration::from_secs(86400));
        info!(
            "stopping: no new clients; waiting up to {} s for {} open connections",
            limit.as_secs(),
            self.open()
        );
        while self.open() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let left = self.open();
        if left > 0 {
            warn!("exiting with {left} connections still open (drain_timeout)");
        } else {
            info!("all connections closed; exiting");
        }
    }
}

/// The connection budget for `cfg` under the current descriptor limit (logged).
fn budget(cfg: &Config) -> usize {
    let nofile = crate::proxy::budget::nofile();
    // Per listener: its control connection and two warm sockets, or one per identity.
    let sessions: u64 = cfg
        .listeners()
        .iter()
        .map(|l| {
            let streams = match l.isolate {
                Isolate::Username => l.max_identities as u64,
                Isolate::None => 3,
            };
            // An association holds its control connection (a client permit's two) plus
            // the relay socket, the router-facing sockets in and out and its SAM session's
            // control connection; while it is set up, one short SAM connection more.
            // Each identity of a UDP listener on a PRIMARY bridge also keeps the socket
            // its datagram subsession forwards to.
            let udp = if cfg.udp_on(l) {
                let identities = match l.isolate {
                    Isolate::Username => l.max_identities as u64,
                    Isolate::None => 1,
                };
                cfg.udp.max_associations as u64 * 4 + identities
            } else {
                0
            };
            streams + udp
        })
        .sum();
    let n = crate::proxy::budget::connections(nofile, sessions);
    let asked: usize = cfg.listeners().len() * cfg.max_clients;
    // Worth a line only when the limit, not max_clients, is what caps clients.
    if asked > n {
        info!(
            "descriptors: limit {nofile}; up to {n} client connections at once over all \
             listeners (fewer than {asked}, max_clients × listeners)"
        );
    } else {
        debug!("descriptors: limit {nofile}; up to {n} client connections at once");
    }
    n
}

/// The listener's start in the log, with a warning where the network can reach it.
fn log_start(l: &Listener, bound: std::net::SocketAddr, ctx: &ListenerContext) {
    if !l.listen.ip().is_loopback() {
        warn!(
            "LISTENER {} IS REACHABLE FROM THE NETWORK ({}): anyone with the login can \
             use this I2P identity, and the network can see that you use I2P",
            l.name, l.listen
        );
    }
    let login = if ctx.auth.is_some() {
        " (login required)"
    } else {
        ""
    };
    info!("listener {} on {bound}{login}", l.name);
}
