//! The running proxy: listeners, the identities behind them, reload and drain.
//!
//! `run` serves until `shutdown` resolves, and applies the config again on each item of
//! `reloads` (the CLI feeds it SIGTERM/ctrl-c and SIGHUP; tests feed it directly). A
//! reload is all-or-nothing: everything the new config needs (keys, sockets, logins) is
//! prepared without touching what runs, and only then swapped in, in one synchronous step.
//! A listener keeps its socket when its address stays, so it never stops listening.

use crate::config::{Config, ConfigSource, Isolate, Listener};
use crate::i2p::backend::Backend;
use crate::i2p::identity::{self, Mode, Pool, Template};
use crate::i2p::keyfile::{self, KeySource};
use crate::i2p::sam::Session;
use crate::i2p::{PrivateKeys, SamRouter};
use crate::naming::subscriptions::Subscriptions;
use crate::naming::{AddressBook, Books, StandIns};
use crate::proxy::conn::ListenerContext;
use crate::proxy::status::{self, ListenerInfo};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// What the daemon reports to its caller (tests) besides stdout and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Every listener is up and its identity's session exists.
    Ready(Vec<ListenerReady>),
    /// A reload finished: the "destination" lines of the listeners it (re)started, or why
    /// nothing changed; and how many stopped listeners still have clients connected.
    Reloaded {
        result: Result<Vec<String>, String>,
        draining: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerReady {
    pub name: String,
    pub listen: SocketAddr,
    /// The b32 of the listener's identity, or "per-username".
    pub identity: String,
}

/// Serve `cfg` (validated; `cfg.sam` is the bridge of `backend`) until `shutdown`, then
/// drain open connections for up to `drain_timeout`. Each item of `reloads` re-reads the
/// address books and `source` (the router stays the one chosen at start). Prints
/// `destination ...` and `ready ...` lines on stdout once serving, as scripts expect.
pub async fn run(
    cfg: Config,
    source: ConfigSource,
    backend: Backend,
    shutdown: impl Future<Output = ()>,
    reloads: impl Stream<Item = ()>,
    events: Option<UnboundedSender<Event>>,
) -> Result<()> {
    let mut shutdown = std::pin::pin!(shutdown);
    let mut reloads = std::pin::pin!(reloads.fuse());
    let mut router_stopped = std::pin::pin!(backend.stopped());
    let bootstrap_log = backend.log_bootstrap();
    let mut d = Daemon::new(&cfg)?;
    let mut tasks = Vec::new();
    let served = async {
        d.subscriptions(&cfg, &mut tasks)?;
        let started = d.apply(&cfg).await?;
        tasks.push(tokio::spawn(identity::reaper(d.pools.clone())));
        if let Some(a) = cfg.status_addr()? {
            let l = TcpListener::bind(a)
                .await
                .with_context(|| format!("cannot listen on {a} (status_listen)"))?;
            info!("status on http://{a}/status and /metrics");
            let serve = status::serve(l, d.infos.clone(), backend.kind(), cfg.sam.clone());
            tasks.push(tokio::spawn(serve));
        }
        for s in &started.sessions {
            s.wait_until_up().await?;
        }
        Ok::<_, anyhow::Error>(started)
    };
    // Shutdown and a dead router are seen at any moment, start-up included.
    let started = tokio::select! {
        r = served => Some(r),
        _ = &mut shutdown => None,
        _ = &mut router_stopped => Some(Err(anyhow::anyhow!(
            "the embedded router stopped (see the log above); exiting"
        ))),
    };
    if let Some(t) = bootstrap_log {
        t.abort();
    }
    let result = match started {
        None => Ok(()),
        Some(Err(e)) => Err(e),
        Some(Ok(started)) => {
            announce(&cfg, &started.lines, &events)?;
            let mut current = cfg;
            loop {
                tokio::select! {
                    biased;
                    _ = &mut shutdown => break Ok(()),
                    _ = &mut router_stopped => break Err(anyhow::anyhow!(
                        "the embedded router stopped (see the log above); exiting"
                    )),
                    Some(()) = reloads.next() => {
                        // A reload waiting for a router that is down still yields to shutdown.
                        let outcome = tokio::select! {
                            biased;
                            _ = &mut shutdown => break Ok(()),
                            r = d.reload(&current, &source) => r,
                        };
                        let report = match outcome {
                            Ok((new, lines)) => {
                                for l in &lines {
                                    info!("reload: {l}");
                                }
                                current = new;
                                Ok(lines)
                            }
                            Err(e) => {
                                warn!("reload: config not applied, keeping the running one: {e:#}");
                                Err(format!("{e:#}"))
                            }
                        };
                        let draining = d.draining.len();
                        send(&events, Event::Reloaded { result: report, draining });
                    }
                }
            }
        }
    };
    d.drain(Duration::from_secs(d.drain_timeout)).await;
    for t in tasks {
        t.abort();
    }
    backend.stop().await;
    result
}

fn send(events: &Option<UnboundedSender<Event>>, e: Event) {
    if let Some(tx) = events {
        let _ = tx.send(e);
    }
}

/// The stdout lines scripts wait for, then the Ready event.
fn announce(cfg: &Config, lines: &[String], events: &Option<UnboundedSender<Event>>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for l in lines {
        writeln!(out, "{l}")?;
    }
    let listeners = cfg.listeners();
    let addrs: Vec<String> = listeners.iter().map(|l| l.listen.to_string()).collect();
    writeln!(out, "ready {}", addrs.join(" "))?;
    out.flush()?;
    drop(out);
    send(events, Event::Ready(lines_to_ready(lines)));
    Ok(())
}

fn lines_to_ready(lines: &[String]) -> Vec<ListenerReady> {
    // "destination <identity> (<name> on <addr>)", as `apply` writes them.
    lines
        .iter()
        .filter_map(|l| {
            let rest = l.strip_prefix("destination ")?;
            let (identity, rest) = rest.split_once(" (")?;
            let (name, addr) = rest.strip_suffix(')')?.split_once(" on ")?;
            Some(ListenerReady {
                name: name.to_string(),
                listen: addr.parse().ok()?,
                identity: identity.to_string(),
            })
        })
        .collect()
}

/// What an identity is keyed by across reloads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum IdentityKey {
    /// A key file; listeners naming the same file share the identity.
    File(PathBuf),
    /// Transient keys of one listener, kept while the listener exists.
    Transient(String),
}

/// A listener's own identity: its keys and the session that carries them.
#[derive(Clone)]
struct Identity {
    keys: PrivateKeys,
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
    New(PrivateKeys, Template),
}

struct Plan {
    listeners: Vec<Planned>,
    identities: HashMap<IdentityKey, IdentityPlan>,
}

/// Listeners started by an `apply`: their stdout lines and the sessions to wait for.
struct Started {
    lines: Vec<String>,
    sessions: Vec<Session>,
}

struct Daemon {
    books: Arc<Books>,
    stand_ins: Arc<StandIns>,
    data_dir: PathBuf,
    identities: HashMap<IdentityKey, Identity>,
    running: Vec<Running>,
    /// Contexts of stopped listeners whose clients are still connected.
    draining: Vec<Arc<ListenerContext>>,
    infos: Arc<RwLock<Vec<Arc<ListenerInfo>>>>,
    pools: Arc<RwLock<Vec<Arc<Pool>>>>,
    /// Seconds connections get to finish at shutdown (of the config last applied).
    drain_timeout: u64,
}

impl Daemon {
    fn new(cfg: &Config) -> Result<Daemon> {
        let books = Arc::new(Books::default());
        let d = Daemon {
            books,
            stand_ins: Arc::default(),
            data_dir: cfg.data_dir(),
            identities: HashMap::new(),
            running: Vec::new(),
            draining: Vec::new(),
            infos: Arc::default(),
            pools: Arc::default(),
            drain_timeout: cfg.drain_timeout,
        };
        d.load_user_book()?;
        Ok(d)
    }

    fn book_path(&self) -> PathBuf {
        self.data_dir.join("addressbook.txt")
    }

    fn load_user_book(&self) -> Result<usize> {
        let path = self.book_path();
        let (book, warnings) = AddressBook::load(&path)?;
        for w in warnings {
            warn!("address book {}: {w} (skipped)", path.display());
        }
        let n = book.len();
        *self
            .books
            .user
            .write()
            .map_err(|_| anyhow::anyhow!("lock"))? = book;
        Ok(n)
    }

    fn subscriptions(&self, cfg: &Config, tasks: &mut Vec<JoinHandle<()>>) -> Result<()> {
        let subs = Subscriptions {
            urls: cfg.subscriptions.clone(),
            dir: cfg.data_dir(),
            template: Template {
                sam_addr: cfg.sam.clone(),
                options: cfg.session_options()?,
                sig_type: cfg.signature_type,
            },
            books: self.books.clone(),
            delay: Duration::from_secs(cfg.subscription_delay),
            interval: Duration::from_secs(cfg.subscription_interval),
            timeout: Duration::from_secs(300),
        };
        subs.load()?;
        if !subs.urls.is_empty() {
            tasks.push(tokio::spawn(subs.run()));
        }
        Ok(())
    }

    /// Address books, then the config (`source` again, with the command line's overrides).
    async fn reload(
        &mut self,
        current: &Config,
        source: &ConfigSource,
    ) -> Result<(Config, Vec<String>)> {
        match self.load_user_book() {
            Ok(n) => info!("reload: address book reloaded ({n} names)"),
            Err(e) => warn!("reload: address book not reloaded: {e:#}"),
        }
        let subscribed = self.data_dir.join("subscriptions.txt");
        if let Ok((b, _)) = AddressBook::load(&subscribed) {
            if let Ok(mut s) = self.books.subscribed.write() {
                *s = b;
            }
        }
        let mut new = source.read()?;
        // The router is chosen once, at start: a reload never switches it.
        new.sam = current.sam.clone();
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
        let started = self.apply(&new).await?;
        Ok((new, started.lines))
    }

    /// Make the running listeners match `cfg`, all or nothing.
    async fn apply(&mut self, cfg: &Config) -> Result<Started> {
        let plan = self.prepare(cfg).await?;
        Ok(self.commit(cfg, plan))
    }

    /// Everything `cfg` needs, without changing anything that runs. Fails as a whole.
    async fn prepare(&self, cfg: &Config) -> Result<Plan> {
        let mut plan = Plan {
            listeners: Vec::new(),
            identities: HashMap::new(),
        };
        for l in cfg.listeners() {
            let template = Template {
                sam_addr: cfg.sam.clone(),
                options: cfg.listener_options(&l.options)?,
                sig_type: cfg.signature_type,
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

    async fn plan_identity(&self, key: &IdentityKey, template: &Template) -> Result<IdentityPlan> {
        if let Some(id) = self.identities.get(key) {
            return Ok(if id.template == *template {
                IdentityPlan::Keep(id.clone())
            } else {
                IdentityPlan::Replace(id.clone(), template.clone())
            });
        }
        let source = match key {
            IdentityKey::File(p) => KeySource::File(p.clone()),
            IdentityKey::Transient(_) => KeySource::Transient,
        };
        let keys = keyfile::obtain(&source, &template.sam_addr, template.sig_type).await?;
        Ok(IdentityPlan::New(keys, template.clone()))
    }

    /// Swap the plan in. Synchronous: nothing can fail or be interrupted half-way.
    fn commit(&mut self, cfg: &Config, plan: Plan) -> Started {
        let mut started = Started {
            lines: Vec::new(),
            sessions: Vec::new(),
        };
        // Identities first: listeners below pick their sessions from here.
        let mut identities = HashMap::new();
        for (key, p) in plan.identities {
            let id = match p {
                IdentityPlan::Keep(id) => id,
                IdentityPlan::Replace(old, template) => {
                    info!(
                        "identity {}: new tunnel options; its session is recreated (streams on \
                         the old one end: routers refuse two sessions with the same keys)",
                        old.keys.destination().b32()
                    );
                    let session = identity::fixed_session(
                        &session_name(&key),
                        old.keys.clone(),
                        &template,
                        Some(old.session.clone()),
                    );
                    Identity {
                        keys: old.keys,
                        template,
                        session,
                    }
                }
                IdentityPlan::New(keys, template) => {
                    let name = session_name(&key);
                    let session = identity::fixed_session(&name, keys.clone(), &template, None);
                    Identity {
                        keys,
                        template,
                        session,
                    }
                }
            };
            identities.insert(key, id);
        }
        // Identities no listener uses any more close once their last stream ends.
        self.identities = identities;

        let mut old: Vec<Running> = std::mem::take(&mut self.running);
        for p in plan.listeners {
            let l = &p.spec.listener;
            if p.keep {
                let i = old
                    .iter()
                    .position(|r| r.spec == p.spec)
                    .expect("kept listener is running");
                self.running.push(old.swap_remove(i));
                continue;
            }
            // The listener this one replaces (same name), for its counters and its
            // per-user identities.
            let prev = old.iter().position(|r| r.spec.listener.name == l.name);
            let prev = prev.map(|i| old.swap_remove(i));
            let (mode, identity_text, pool) = match &p.spec.identity {
                Some(key) => {
                    let id = &self.identities[key];
                    started.sessions.push(id.session.clone());
                    let b32 = id.keys.destination().b32();
                    (Some(Mode::Fixed(id.session.clone())), b32, None)
                }
                None => {
                    let same_users = prev.as_ref().filter(|r| {
                        r.pool.is_per_user()
                            && r.spec.per_user_dir == p.spec.per_user_dir
                            && r.spec.template == p.spec.template
                            && r.spec.listener.idle_timeout == l.idle_timeout
                    });
                    // Same keys and options: the users keep their sessions across the reload.
                    let pool = same_users.map(|r| r.pool.clone());
                    (None, "per-username".to_string(), pool)
                }
            };
            let pool = match (pool, mode) {
                (Some(pool), _) => pool,
                (None, Some(mode)) => Arc::new(Pool::new(&l.name, p.spec.template.clone(), mode)),
                (None, None) => {
                    let mode = Mode::PerUser {
                        key_dir: p.spec.per_user_dir.clone(),
                        idle: Duration::from_secs(l.idle_timeout),
                    };
                    let mut pool = Pool::new(&l.name, p.spec.template.clone(), mode);
                    if let Some(r) = prev.as_ref().filter(|r| r.pool.is_per_user()) {
                        if r.spec.per_user_dir.is_some() {
                            // Persistent keys: the old sessions must go before new ones
                            // with the same keys can be created.
                            r.pool.close_all();
                            pool = pool.replacing(r.pool.clone());
                        }
                    }
                    Arc::new(pool)
                }
            };
            let mut ctx = ListenerContext::new(
                Duration::from_secs(p.spec.handshake_timeout),
                Duration::from_secs(p.spec.stream_timeout),
                p.spec.max_clients,
            );
            ctx.stand_ins = self.stand_ins.clone();
            ctx.auth = p.auth;
            if let Some(r) = &prev {
                ctx.stats = r.ctx.stats.clone();
            }
            let ctx = Arc::new(ctx);
            let (p1, p2) = (pool.clone(), pool.clone());
            let info = Arc::new(ListenerInfo {
                name: l.name.clone(),
                listen: l.listen.to_string(),
                identity: identity_text.clone(),
                stats: ctx.stats.clone(),
                session_up: Box::new(move || p1.is_up()),
                per_user_identities: Box::new(move || p2.users()),
            });
            if !l.listen.ip().is_loopback() {
                warn!(
                    "LISTENER {} IS REACHABLE FROM THE NETWORK ({}): anyone with the login can \
                     use this I2P identity, and the network can see that you use I2P",
                    l.name, l.listen
                );
            }
            info!(
                "listener {} on {}{}",
                l.name,
                l.listen,
                if ctx.auth.is_some() {
                    " (login required)"
                } else {
                    ""
                }
            );
            if let Some(r) = prev {
                self.stop(r);
            }
            // Whoever had this address before (another name) stops before this one accepts.
            if let Some(i) = old.iter().position(|r| r.spec.listener.listen == l.listen) {
                let r = old.swap_remove(i);
                self.stop(r);
            }
            let stop = CancellationToken::new();
            let router = Arc::new(SamRouter {
                pool: pool.clone(),
                book: self.books.clone(),
            });
            tokio::spawn(crate::proxy::server::serve(
                p.socket.clone(),
                router,
                ctx.clone(),
                stop.clone().cancelled_owned(),
            ));
            started.lines.push(format!(
                "destination {identity_text} ({} on {})",
                l.name, l.listen
            ));
            self.running.push(Running {
                spec: p.spec,
                socket: p.socket,
                stop,
                ctx,
                pool,
                info,
            });
        }
        for r in old {
            self.stop(r);
        }
        self.draining.retain(|c| c.open() > 0);
        self.drain_timeout = cfg.drain_timeout;
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

    /// Stop accepting everywhere, then give open connections up to `limit` to finish.
    async fn drain(&mut self, limit: Duration) {
        for r in std::mem::take(&mut self.running) {
            r.stop.cancel();
            self.draining.push(r.ctx);
        }
        let deadline = tokio::time::Instant::now() + limit;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_lines_parse() {
        let lines = vec![
            "destination abc.b32.i2p (main on 127.0.0.1:4447)".to_string(),
            "destination per-username (users on [::1]:4448)".to_string(),
        ];
        let r = lines_to_ready(&lines);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].name, "main");
        assert_eq!(r[1].listen, "[::1]:4448".parse().unwrap());
        assert_eq!(r[1].identity, "per-username");
    }
}
