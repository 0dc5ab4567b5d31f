//! The running proxy: listeners, the identities behind them, reload and drain.
//!
//! `run` serves until `shutdown` resolves, and applies the config again on each item of
//! `reloads` (the CLI feeds it SIGTERM/ctrl-c and SIGHUP; tests feed it directly). A
//! reload is all-or-nothing: everything the new config needs (keys, sockets, logins) is
//! prepared without touching what runs, and only then swapped in, in one synchronous step.
//! A listener keeps its socket when its address stays, so it never stops listening.

mod listeners;

use crate::config::{Config, ConfigSource};
use crate::i2p::backend::Backend;
use crate::i2p::identity;
use crate::proxy::status;
use anyhow::{Context, Result};
use listeners::Daemon;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc::UnboundedSender;
use tokio_stream::{Stream, StreamExt};
use tracing::{info, warn};

/// What the daemon reports to its caller (tests) besides stdout and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Every listener is up and its identity's session exists.
    Ready(Vec<ListenerReady>),
    /// A reload finished: the listeners it (re)started, or why nothing changed; and how
    /// many stopped listeners still have clients connected.
    Reloaded {
        result: Result<Vec<ListenerReady>, String>,
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
    // The config in force: the drain at the end takes its drain_timeout.
    let mut current = cfg;
    let result = match started {
        None => Ok(()),
        Some(Err(e)) => Err(e),
        Some(Ok(started)) => {
            announce(&current, started.listeners, &events)?;
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
                            Ok((new, listeners)) => {
                                for l in &listeners {
                                    info!("reload: {l}");
                                }
                                current = new;
                                Ok(listeners)
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
    d.drain(Duration::from_secs(current.drain_timeout)).await;
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
fn announce(
    cfg: &Config,
    listeners: Vec<ListenerReady>,
    events: &Option<UnboundedSender<Event>>,
) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for l in &listeners {
        writeln!(out, "{l}")?;
    }
    let addrs: Vec<String> = cfg
        .listeners()
        .iter()
        .map(|l| l.listen.to_string())
        .collect();
    writeln!(out, "ready {}", addrs.join(" "))?;
    out.flush()?;
    drop(out);
    send(events, Event::Ready(listeners));
    Ok(())
}

/// The line scripts read: `destination <b32 or per-username> (<name> on <addr>)`.
impl std::fmt::Display for ListenerReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "destination {} ({} on {})",
            self.identity, self.name, self.listen
        )
    }
}
