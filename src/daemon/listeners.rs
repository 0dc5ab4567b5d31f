//! The daemon's state: running listeners, the identities behind them, stopped listeners
//! still draining; and `apply`, which makes them match a config all or nothing: `prepare`
//! gets everything ready without touching what runs (keys, sockets, logins), then
//! `commit` swaps it in, synchronously.

use super::status::ListenerInfo;
use crate::automap::server::{Dns, DnsLimits};
use crate::config::{AutomapConfig, Config, ConfigSource, Isolate, Listener};
use crate::i2p::feeds::SamFeeds;
use crate::i2p::identity::{self, Mode, Pool, Template};
use crate::i2p::keyfile;
use crate::i2p::sam::{Keys, Session};
use crate::i2p::SamRouter;
use crate::naming::standins::{Network, StandIns};
use crate::naming::subscriptions::Subscriptions;
use crate::naming::Books;
use crate::proxy::context::ListenerContext;
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// What an identity is keyed by across reloads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum IdentityKey {
    /// A key file; listeners naming the same file share the identity.
    File(PathBuf),
    /// Transient keys of one listener, kept while the listener exists.
    Transient(String),
}

/// A listener's own identity: the session that carries it (and knows its keys, once the
/// router made them for a new identity).
#[derive(Clone)]
struct Identity {
    /// Where new keys are saved (None: transient).
    save: Option<PathBuf>,
    template: Template,
    session: Session,
}

/// One running listener.
struct Running {
    /// Its config and the global values its behaviour depends on; restarted when these change.
    spec: Spec,
    socket: Arc<TcpListener>,
    stop: CancellationToken,
    ctx: Arc<ListenerContext>,
    pool: Arc<Pool>,
    info: Arc<ListenerInfo>,
    router: Arc<SamRouter>,
}

#[derive(Debug, Clone, PartialEq)]
struct Spec {
    listener: Listener,
    template: Template,
    handshake_timeout: u64,
    stream_timeout: u64,
    max_clients: usize,
    per_user_dir: Option<PathBuf>,
    identity: Option<IdentityKey>,
    /// `[udp]` when this listener accepts UDP ASSOCIATE.
    udp: Option<crate::config::UdpConfig>,
    /// Where datagrams go; None when unknown (UDP ASSOCIATE then fails with 0x01).
    sam_udp: Option<crate::i2p::sam_router::UdpRouter>,
    /// The automap listener's virtual network; its table is kept while it stays the same
    /// (a new quarantine applies to the kept table: `start_automap`).
    automap: Option<Network>,
}

/// Automap's ports as running: the DNS port (UDP and TCP on one address) and the
/// transparent port, served for the automap listener.
struct AutomapPorts {
    config: AutomapConfig,
    dns: Option<(Arc<UdpSocket>, Arc<TcpListener>)>,
    trans: Option<Arc<TcpListener>>,
    stop: CancellationToken,
    /// The DNS port's slots, kept across reloads.
    limits: Arc<DnsLimits>,
}

/// A listener as the new config wants it, ready to swap in.
struct Planned {
    spec: Spec,
    socket: Arc<TcpListener>,
    auth: Option<crate::socks::AuthCheck>,
    /// Unchanged: keep the running one as it is.
    keep: bool,
}

/// Where a planned fixed identity comes from.
enum IdentityPlan {
    Keep(Identity),
    /// Same keys, new tunnel options: a new session once the old one is closed.
    Replace(Identity, Template),
    New(Keys, Template),
}

struct Plan {
    listeners: Vec<Planned>,
    identities: HashMap<IdentityKey, IdentityPlan>,
    automap: Option<AutomapPorts>,
}

/// Listeners started by an `apply`, and the sessions to wait for.
pub(super) struct Started {
    pub(super) listeners: Vec<super::ListenerReady>,
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
    /// Failed logins by source address, for every listener.
    logins: Arc<crate::proxy::logins::Logins>,
    /// Client connections of all listeners together, from the descriptor limit.
    budget: Arc<tokio::sync::Semaphore>,
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
            logins: Arc::default(),
            budget: Arc::new(tokio::sync::Semaphore::new(budget(cfg))),
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

    /// Address books, then the config (`source` again, with the command line's overrides).
    pub(super) async fn reload(
        &mut self,
        current: &Config,
        source: &ConfigSource,
    ) -> Result<(Config, Vec<super::ListenerReady>)> {
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
            automap: self.plan_automap(cfg).await?,
        };
        let automap_listener = cfg.automap_listener();
        for l in cfg.listeners() {
            let template = Template {
                sam_addr: cfg.sam.clone(),
                options: cfg.listener_options(&l.options)?,
                sig_type: cfg.signature_type,
                create_timeout: Duration::from_secs(cfg.session_timeout),
            };
            let (identity, per_user_dir) = if l.isolate == Isolate::Username {
                let dir = l
                    .persistent_users
                    .then(|| cfg.data_dir().join("users").join(&l.name));
                (None, dir)
            } else {
                let key = match cfg.listener_key_path(&l) {
                    Some(p) => IdentityKey::File(p),
                    None => IdentityKey::Transient(l.name.clone()),
                };
                if !plan.identities.contains_key(&key) {
                    let p = self.plan_identity(&key, &template).await?;
                    plan.identities.insert(key.clone(), p);
                }
                (Some(key), None)
            };
            let spec = Spec {
                listener: l.clone(),
                template,
                handshake_timeout: cfg.handshake_timeout,
                stream_timeout: cfg.stream_timeout,
                max_clients: cfg.max_clients,
                per_user_dir,
                identity,
                udp: cfg.udp_on(&l).then(|| cfg.udp.clone()),
                sam_udp: cfg
                    .sam_udp_addr()
                    .map(|sam_udp| crate::i2p::sam_router::UdpRouter {
                        sam_udp,
                        max_send: cfg.sam_udp_max.unwrap_or(65_507),
                    }),
                automap: match &cfg.automap {
                    Some(a) if automap_listener.as_deref() == Some(l.name.as_str()) => {
                        Some(a.network)
                    }
                    _ => None,
                },
            };
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

    /// Automap's sockets for `cfg`: those running when the address is the same (no moment
    /// without them), else bound now. The tasks are (re)started by `commit`.
    async fn plan_automap(&self, cfg: &Config) -> Result<Option<AutomapPorts>> {
        let Some(a) = &cfg.automap else {
            return Ok(None);
        };
        let old = self.automap.as_ref();
        let dns = match a.dns_listen {
            None => None,
            Some(addr) => match old.filter(|o| o.config.dns_listen == Some(addr)) {
                Some(o) => o.dns.clone(),
                None => Some(bind_dns(addr).await?),
            },
        };
        let trans = match a.trans_listen {
            None => None,
            Some(addr) => match old.filter(|o| o.config.trans_listen == Some(addr)) {
                Some(o) => o.trans.clone(),
                None => Some(Arc::new(TcpListener::bind(addr).await.with_context(
                    || format!("[automap] cannot listen on {addr} (trans_listen)"),
                )?)),
            },
        };
        Ok(Some(AutomapPorts {
            config: a.clone(),
            dns,
            trans,
            stop: CancellationToken::new(),
            limits: old.map(|o| o.limits.clone()).unwrap_or_default(),
        }))
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
        let a = &ports.config;
        r.ctx
            .stand_ins
            .set_quarantine(Duration::from_secs(a.quarantine));
        if let Some((udp, tcp)) = &ports.dns {
            let dns = Dns::new(r.router.clone(), r.ctx.clone(), a.ttl, ports.limits.clone());
            let stop = ports.stop.clone();
            tokio::spawn(
                dns.clone()
                    .serve_udp(udp.clone(), stop.clone().cancelled_owned()),
            );
            tokio::spawn(dns.serve_tcp(tcp.clone(), stop.cancelled_owned()));
        }
        if let Some(t) = &ports.trans {
            tokio::spawn(crate::proxy::server::serve_transparent(
                t.clone(),
                r.router.clone(),
                r.ctx.clone(),
                ports.stop.clone().cancelled_owned(),
            ));
        }
        if !a.network.is_loopback() {
            warn!(
                "automap network {} is not loopback: an application whose connection is not \
                 redirected to the transparent port connects to that address on the network",
                a.network
            );
        }
        let show = |x: Option<std::net::SocketAddr>| x.map_or("off".to_string(), |a| a.to_string());
        info!(
            "automap for listener {name}: virtual addresses in {}, DNS on {}, transparent port on {}",
            a.network,
            show(a.dns_listen),
            show(a.trans_listen)
        );
        self.automap = Some(ports);
    }

    /// The automap ports running now, as the ports file shows them.
    pub(super) fn automap_ports(&self, cfg: &Config) -> Option<super::ports::PortAutomap> {
        let a = self.automap.as_ref()?;
        Some(super::ports::PortAutomap {
            listener: cfg.automap_listener()?,
            network: a.config.network.to_string(),
            dns: a.dns.as_ref().and_then(|(_, t)| t.local_addr().ok()),
            transparent: a.trans.as_ref().and_then(|t| t.local_addr().ok()),
        })
    }

    async fn plan_identity(&self, key: &IdentityKey, template: &Template) -> Result<IdentityPlan> {
        if let Some(id) = self.identities.get(key) {
            return Ok(if id.template == *template {
                IdentityPlan::Keep(id.clone())
            } else {
                IdentityPlan::Replace(id.clone(), template.clone())
            });
        }
        // New keys are the session's to ask the router for, under its deadlines: a router
        // that does not answer must not keep the listener from opening.
        let fresh = |save: Option<PathBuf>| Keys::New {
            sig_type: template.sig_type,
            save,
        };
        let keys = match key {
            IdentityKey::File(p) => match keyfile::load(p)? {
                Some(k) => {
                    info!("identity loaded from {}", p.display());
                    Keys::Ready(k)
                }
                None => fresh(Some(p.clone())),
            },
            IdentityKey::Transient(_) => fresh(None),
        };
        Ok(IdentityPlan::New(keys, template.clone()))
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
            *i = self.running.iter().map(|r| r.info.clone()).collect();
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
        let l = &p.spec.listener;
        let (pool, identity_text) = match &p.spec.identity {
            Some(key) => {
                let id = &self.identities[key];
                started.sessions.push(id.session.clone());
                let mode = Mode::Fixed(id.session.clone());
                let pool = Pool::new(&l.name, p.spec.template.clone(), mode);
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
            None => (
                per_user_pool(&p.spec, prev.as_ref()),
                "per-username".to_string(),
            ),
        };
        let mut ctx = ListenerContext::new(
            Duration::from_secs(p.spec.handshake_timeout),
            Duration::from_secs(p.spec.stream_timeout),
            p.spec.max_clients,
        );
        // Stand-ins are the listener's own; a restarted listener keeps the ones it handed out
        // while its network stays the same.
        ctx.budget = self.budget.clone();
        ctx.logins = self.logins.clone();
        ctx.stand_ins = match (&prev, p.spec.automap) {
            (Some(r), a) if r.spec.automap == a => r.ctx.stand_ins.clone(),
            // The quarantine is set by `start_automap`, right after, in the same commit.
            (_, Some(net)) => Arc::new(StandIns::new(
                net,
                crate::naming::standins::DEFAULT_QUARANTINE,
            )),
            (_, None) => Arc::default(),
        };
        ctx.extended_errors = l.extended_errors;
        ctx.per_user = p.spec.identity.is_none();
        ctx.filter = l.filter;
        if let Some(u) = &p.spec.udp {
            // A restarted listener keeps counting its open associations against the
            // limit, the new one if it changed.
            let open = prev
                .as_ref()
                .and_then(|r| r.ctx.udp.as_ref())
                .map(|old| old.open.clone())
                .unwrap_or_default();
            ctx.udp = Some(crate::proxy::context::UdpLimits {
                max_payload: u.max_payload,
                idle: Duration::from_secs(u.idle_timeout),
                rate: u.rate,
                open,
                max_associations: u.max_associations,
            });
        }
        ctx.user_agent = l.user_agent.clone();
        ctx.irc_hide_account = l.irc_hide_account;
        ctx.auth = p.auth;
        if let Some(r) = &prev {
            ctx.stats = r.ctx.stats.clone();
        }
        let ctx = Arc::new(ctx);
        let (p1, p2) = (pool.clone(), pool.clone());
        let info = Arc::new(ListenerInfo {
            name: l.name.clone(),
            listen: l.listen.to_string(),
            identity: match &p.spec.identity {
                Some(key) => {
                    let s = self.identities[key].session.clone();
                    let text = identity_text.clone();
                    Box::new(move || {
                        s.keys()
                            .map(|k| k.destination().b32())
                            .unwrap_or(text.clone())
                    })
                }
                None => Box::new(|| "per-username".to_string()),
            },
            stats: ctx.stats.clone(),
            session: Box::new(move || p1.session_view()),
            per_user_identities: Box::new(move || p2.users()),
        });
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
        info!("listener {} on {}{login}", l.name, l.listen);
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
        started.listeners.push(super::ListenerReady {
            name: l.name.clone(),
            listen: l.listen,
            identity: identity_text,
        });
        Running {
            spec: p.spec,
            socket: p.socket,
            stop,
            ctx,
            pool,
            info,
            router,
        }
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

/// The DNS port: TCP first, then UDP on the same port (which may have been 0).
async fn bind_dns(addr: std::net::SocketAddr) -> Result<(Arc<UdpSocket>, Arc<TcpListener>)> {
    let tcp = TcpListener::bind(addr)
        .await
        .with_context(|| format!("[automap] cannot listen on {addr} (dns_listen, TCP)"))?;
    let addr = tcp.local_addr()?;
    let udp = UdpSocket::bind(addr)
        .await
        .with_context(|| format!("[automap] cannot listen on {addr} (dns_listen, UDP)"))?;
    Ok((Arc::new(udp), Arc::new(tcp)))
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
            let udp = if cfg.udp_on(l) {
                cfg.udp.max_associations as u64 * 4
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

/// The identity `p` plans, its session started if it needs a new one.
fn commit_identity(key: &IdentityKey, p: IdentityPlan) -> Identity {
    let save = match key {
        IdentityKey::File(p) => Some(p.clone()),
        IdentityKey::Transient(_) => None,
    };
    match p {
        IdentityPlan::Keep(id) => id,
        IdentityPlan::Replace(old, template) => {
            // Keys the old session never got from the router are asked for again.
            let keys = match old.session.keys() {
                Some(k) => Keys::Ready(k.clone()),
                None => Keys::New {
                    sig_type: template.sig_type,
                    save: old.save.clone(),
                },
            };
            info!(
                "identity {}: new tunnel options; its session is recreated (streams on the old \
                 one end: routers refuse two sessions with the same keys)",
                old.session
                    .keys()
                    .map(|k| k.destination().b32())
                    .unwrap_or_else(|| PENDING.into())
            );
            let session = identity::fixed_session(
                &session_name(key),
                keys,
                &template,
                Some(old.session.clone()),
            );
            Identity {
                save,
                template,
                session,
            }
        }
        IdentityPlan::New(keys, template) => {
            let session = identity::fixed_session(&session_name(key), keys, &template, None);
            Identity {
                save,
                template,
                session,
            }
        }
    }
}

/// What a listener's identity is called before the router has made its keys.
const PENDING: &str = "(new identity: keys not made yet)";

/// The per-user pool of a listener: the one it had, when keys and options are unchanged
/// (users keep their sessions across the reload); else a new one, which for persistent
/// keys takes over from the old one (whose sessions must close first).
fn per_user_pool(spec: &Spec, prev: Option<&Running>) -> Arc<Pool> {
    let prev = prev.filter(|r| r.pool.is_per_user());
    let unchanged = prev.filter(|r| {
        r.spec.per_user_dir == spec.per_user_dir
            && r.spec.template == spec.template
            && r.spec.listener.idle_timeout == spec.listener.idle_timeout
            && r.spec.listener.max_identities == spec.listener.max_identities
    });
    if let Some(r) = unchanged {
        return r.pool.clone();
    }
    let mode = Mode::PerUser {
        key_dir: spec.per_user_dir.clone(),
        idle: Duration::from_secs(spec.listener.idle_timeout),
        max: spec.listener.max_identities,
    };
    let pool = Pool::new(&spec.listener.name, spec.template.clone(), mode);
    match prev {
        Some(r) if r.spec.per_user_dir.is_some() => {
            r.pool.close_all();
            Arc::new(pool.replacing(r.pool.clone()))
        }
        _ => Arc::new(pool),
    }
}

fn session_name(key: &IdentityKey) -> String {
    match key {
        IdentityKey::File(p) => p
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("eepsocks")
            .to_string(),
        IdentityKey::Transient(l) => l.clone(),
    }
}
