//! The running proxy: listeners, the identities behind them, reload and drain.
//!
//! `run` serves until `shutdown` resolves, and applies the config again on each item of
//! `reloads` (the CLI feeds it SIGTERM/ctrl-c and SIGHUP; tests feed it directly). A
//! reload is all-or-nothing: everything the new config needs (keys, sockets, logins) is
//! prepared without touching what runs, and only then swapped in, in one synchronous step.
//! A listener keeps its socket when its address stays, so it never stops listening.
//!
//! - `listeners`: the daemon's state and `apply` (prepare, then commit);
//! - `listener`: one listener: its `Spec`, what a restart keeps (`Carried`), and the one
//!   place its `ListenerContext` is built;
//! - `identities`: the listeners' own identities across reloads;
//! - `automap_ports`: automap's DNS and transparent ports;
//! - `status`: the status endpoint (`/status`, `/metrics`), its rendering pure;
//! - `notify`: systemd. (The ports file is `crate::ports`, re-exported here.)

mod automap_ports;
mod events;
mod identities;
mod listener;
mod listeners;
pub(crate) mod notify;
/// The ports file (moved below the daemon: `exec` and `cli` read it too).
pub use crate::ports;
pub mod status;

use crate::config::{Config, ConfigSource};
use crate::i2p::backend::Backend;
use crate::i2p::identity;
use anyhow::{Context, Result};
pub use events::{Event, ListenerReady};
use listeners::Daemon;
use notify::Notifier;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc::UnboundedSender;
use tokio_stream::{Stream, StreamExt};
use tracing::{info, warn};

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
    let notify = Notifier::from_env();
    // `eepsocks exec` finds announced daemons only: tests' in-process ones serve none.
    let control = ports::announcing().then(crate::exec::control::socket_path);
    let out = Outputs {
        events,
        notify: &notify,
        data_dir: cfg.data_dir(),
        wrote_ports: AtomicBool::new(false),
        control: control.clone(),
    };
    let mut guard = Guard {
        shutdown: std::pin::pin!(shutdown),
        router_stopped: std::pin::pin!(backend.stopped()),
        watchdog: notify.watchdog_every().map(|every| {
            let mut i = tokio::time::interval(every);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        }),
        notify: &notify,
    };
    let bootstrap_log = backend.log_bootstrap();
    let mut d = Daemon::new(&cfg)?;
    let mut tasks = Vec::new();
    let exec_stop = tokio_util::sync::CancellationToken::new();
    // Shutdown and a dead router are seen at any moment, start-up included; the watchdog
    // is fed meanwhile (a first bootstrap can take minutes).
    let started = guard
        .until_stopped(start(
            &mut d,
            &cfg,
            &backend,
            &notify,
            &mut tasks,
            (control.as_deref(), &exec_stop),
        ))
        .await;
    if let Some(t) = bootstrap_log {
        t.abort();
    }
    // The config in force: the drain at the end takes its drain_timeout.
    let mut current = cfg;
    let result = match started {
        Stopped::Shutdown => Ok(()),
        Stopped::RouterEnded => Err(router_stopped()),
        Stopped::Done(Err(e)) => Err(e),
        Stopped::Done(Ok((mut started, status_at))) => {
            started.fill_identities();
            // The file first: whoever sees `ready` or READY=1 can read it.
            out.ports(&current, &d, status_at);
            announce(&current, started.listeners, &out)?;
            let reloads = std::pin::pin!(reloads.fuse());
            let serving = Serving {
                d: &mut d,
                source: &source,
                out: &out,
                status_at,
            };
            serving
                .until_stopped(&mut guard, reloads, &mut current)
                .await
        }
    };
    let drain = Duration::from_secs(current.drain_timeout);
    shut_down(d, &out, (tasks, exec_stop), drain, backend).await;
    result
}

/// Stop accepting, drain for up to `drain`, then close the sessions and the router.
async fn shut_down(
    mut d: Daemon,
    out: &Outputs<'_>,
    (tasks, exec_stop): (
        Vec<tokio::task::JoinHandle<()>>,
        tokio_util::sync::CancellationToken,
    ),
    drain: Duration,
    backend: Backend,
) {
    out.notify.stopping();
    // Nothing accepts from here on: the file must not send anyone to these ports. Only our
    // own: a second instance that failed to start must not remove the running one's.
    if out.wrote_ports.load(Ordering::Relaxed) {
        ports::remove(&out.data_dir);
    }
    // Execs end (their launchers get their reports) before the sessions close.
    exec_stop.cancel();
    if let Some(p) = &out.control {
        let _ = std::fs::remove_file(p);
    }
    d.drain(drain).await;
    for t in tasks {
        t.abort();
    }
    // Sessions before the router: an embedded router stopping under a live session would
    // make it log a loss and retry, at exit.
    d.close_sessions().await;
    backend.stop().await;
}

/// Start everything `cfg` asks for (subscriptions, listeners, the exec control socket at
/// `exec.0` until `exec.1`, the status endpoint) and wait for the listeners' sessions. The
/// status endpoint's address, when it runs.
async fn start(
    d: &mut Daemon,
    cfg: &Config,
    backend: &Backend,
    notify: &Notifier,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
    exec: (
        Option<&std::path::Path>,
        &tokio_util::sync::CancellationToken,
    ),
) -> Result<(listeners::Started, Option<SocketAddr>)> {
    d.subscriptions(cfg, tasks)?;
    notify.starting("starting listeners and identities");
    let started = d.apply(cfg).await?;
    tasks.push(tokio::spawn(identity::reaper(d.pools.clone())));
    if let (Some(path), stop) = exec {
        let l = crate::exec::control::bind(path)?;
        let serve = crate::exec::control::serve_execs(l, d.exec_host(cfg)?, stop.clone());
        tasks.push(tokio::spawn(serve));
    }
    let mut status_at = None;
    if let Some(a) = cfg.status_addr()? {
        let l = TcpListener::bind(a)
            .await
            .with_context(|| format!("cannot listen on {a} (status_listen)"))?;
        // The bound address: the ports file and the log must name the real port (the
        // demo asks for port 0).
        let at = l.local_addr()?;
        info!("status on http://{at}/status and /metrics");
        status_at = Some(at);
        let serve = status::serve_endpoint(l, d.infos.clone(), backend.kind(), cfg.sam.clone());
        tasks.push(tokio::spawn(serve));
    }
    let n = started.sessions.len();
    for (i, s) in started.sessions.iter().enumerate() {
        notify.starting(&format!(
            "waiting for the router's sessions ({i} of {n} up)"
        ));
        s.wait_until_up().await?;
    }
    Ok((started, status_at))
}

fn router_stopped() -> anyhow::Error {
    anyhow::anyhow!("the embedded router stopped (see the log above); exiting")
}

/// How a wait under `Guard::until_stopped` ended.
enum Stopped<T> {
    Done(T),
    Shutdown,
    RouterEnded,
}

/// What every wait of the daemon yields to: shutdown, then the embedded router's end; and
/// the watchdog, fed meanwhile.
struct Guard<'a, S: Future<Output = ()>, R: Future<Output = ()>> {
    shutdown: std::pin::Pin<&'a mut S>,
    router_stopped: std::pin::Pin<&'a mut R>,
    watchdog: Option<tokio::time::Interval>,
    notify: &'a Notifier,
}

impl<S: Future<Output = ()>, R: Future<Output = ()>> Guard<'_, S, R> {
    /// `work` to its end, unless shutdown or the router's end comes first. The watchdog is
    /// fed from here, not from a task of its own: a wedged loop stops feeding it.
    async fn until_stopped<T>(&mut self, work: impl Future<Output = T>) -> Stopped<T> {
        let mut work = std::pin::pin!(work);
        loop {
            tokio::select! {
                biased;
                _ = &mut self.shutdown => return Stopped::Shutdown,
                _ = &mut self.router_stopped => return Stopped::RouterEnded,
                r = &mut work => return Stopped::Done(r),
                _ = tick(&mut self.watchdog) => self.notify.watchdog(),
            }
        }
    }
}

/// The daemon once it serves: reloads, one at a time, until stopped.
struct Serving<'a> {
    d: &'a mut Daemon,
    source: &'a ConfigSource,
    out: &'a Outputs<'a>,
    status_at: Option<SocketAddr>,
}

impl Serving<'_> {
    /// Apply each item of `reloads` until shutdown (Ok) or the router's end (Err).
    /// `current`: the config in force, updated by each reload that applies.
    async fn until_stopped<S: Future<Output = ()>, R: Future<Output = ()>>(
        mut self,
        guard: &mut Guard<'_, S, R>,
        mut reloads: std::pin::Pin<&mut impl Stream<Item = ()>>,
        current: &mut Config,
    ) -> Result<()> {
        loop {
            // A stream of reloads that ended leaves shutdown and the router to wait for.
            let next = async {
                match reloads.next().await {
                    Some(()) => (),
                    None => std::future::pending().await,
                }
            };
            match guard.until_stopped(next).await {
                Stopped::Shutdown => return Ok(()),
                Stopped::RouterEnded => return Err(router_stopped()),
                Stopped::Done(()) => {}
            }
            self.out.notify.reloading();
            // A reload waiting for a router that is down still yields to shutdown, and
            // still feeds the watchdog.
            let outcome = match guard
                .until_stopped(self.d.reload(current, self.source))
                .await
            {
                Stopped::Shutdown => return Ok(()),
                Stopped::RouterEnded => return Err(router_stopped()),
                Stopped::Done(o) => o,
            };
            self.report(outcome, current);
        }
    }

    /// Log a reload's outcome, rewrite the ports file, and tell the caller.
    fn report(&mut self, outcome: Result<(Config, Vec<ListenerReady>)>, current: &mut Config) {
        let result = match outcome {
            Ok((new, listeners)) => {
                for l in &listeners {
                    info!("reload: {l}");
                }
                *current = new;
                self.out.ports(current, self.d, self.status_at);
                Ok(listeners)
            }
            Err(e) => {
                warn!("reload: config not applied, keeping the running one: {e:#}");
                Err(format!("{e:#}"))
            }
        };
        let draining = self.d.draining.len();
        self.out.event(Event::Reloaded { result, draining });
    }
}

/// The next watchdog tick; never, without a watchdog.
async fn tick(w: &mut Option<tokio::time::Interval>) {
    match w {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Where the daemon reports, besides stdout and the log: the caller's event channel
/// (tests), systemd, and the ports file.
struct Outputs<'a> {
    events: Option<UnboundedSender<Event>>,
    notify: &'a Notifier,
    data_dir: std::path::PathBuf,
    /// Atomic only to be shared across the serving loop's awaits (the future is Send).
    wrote_ports: AtomicBool,
    /// The exec control socket (bound at start, or the daemon does not start).
    control: Option<std::path::PathBuf>,
}

impl Outputs<'_> {
    fn event(&self, e: Event) {
        self.notify.event(&e);
        if let Some(tx) = &self.events {
            let _ = tx.send(e);
        }
    }

    /// Rewrite the ports file for the listeners running now. Failing to is logged, not
    /// fatal: the proxy itself works without it.
    fn ports(&self, cfg: &Config, d: &Daemon, status: Option<SocketAddr>) {
        let infos = d.infos.read().map(|i| i.clone()).unwrap_or_default();
        let listeners = cfg
            .listeners()
            .into_iter()
            .filter_map(|l| {
                let info = infos.iter().find(|i| i.name == l.name)?;
                // SOCKS4 has no password: a listener that requires a login refuses it.
                let protocols: &[&str] = if l.auth.is_empty() {
                    &["socks4a", "socks5", "http-connect"]
                } else {
                    &["socks5", "http-connect"]
                };
                Some(ports::PortListener {
                    name: l.name.clone(),
                    // as bound (a port 0 in the config is the kernel's choice)
                    listen: info.listen.parse().unwrap_or(l.listen),
                    protocols: protocols.iter().map(|p| p.to_string()).collect(),
                    identity: (info.identity)(),
                })
            })
            .collect();
        let p = ports::Ports {
            listeners,
            status,
            automap: d.automap_ports(cfg),
            pid: std::process::id(),
            data_dir: Some(self.data_dir.clone()),
            sam: Some(cfg.sam.clone()),
            control: self.control.clone(),
        };
        match p.write(&self.data_dir) {
            Ok(()) => self.wrote_ports.store(true, Ordering::Relaxed),
            Err(e) => warn!("ports file not written: {e:#}"),
        }
    }
}

/// The stdout lines scripts wait for, then the Ready event.
fn announce(cfg: &Config, listeners: Vec<ListenerReady>, outputs: &Outputs) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for l in &listeners {
        writeln!(out, "{l}")?;
    }
    // As bound (port 0 in the config becomes the port the kernel gave), in config order.
    let addrs: Vec<String> = cfg
        .listeners()
        .iter()
        .map(|l| {
            listeners
                .iter()
                .find(|r| r.name == l.name)
                .map_or(l.listen, |r| r.listen)
                .to_string()
        })
        .collect();
    writeln!(out, "ready {}", addrs.join(" "))?;
    out.flush()?;
    drop(out);
    outputs.event(Event::Ready(listeners));
    Ok(())
}
