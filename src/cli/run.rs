//! `eepsocks run`: choose the router, then serve until SIGTERM or ctrl-c; SIGHUP reloads.

use crate::config::{Config, ConfigSource};
use crate::i2p::backend::{self, Backend};
use anyhow::Result;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio_stream::wrappers::SignalStream;
use tokio_stream::StreamExt;

pub async fn run(mut cfg: Config, source: ConfigSource) -> Result<()> {
    let mut signals = Signals::install()?;
    raise_nofile();
    // The only start-up step before the daemon, which reports the rest to systemd.
    let notify = crate::daemon::notify::Notifier::from_env();
    notify.starting("starting the router");
    let backend = tokio::select! {
        b = notify.feeding(backend::choose(&mut cfg)) => b?,
        _ = signals.shutdown() => return Ok(()),
    };
    run_with_signals(cfg, source, backend, signals).await
}

/// Serve with a backend already started (`run`, and `demo` with its embedded router).
pub async fn run_with_signals(
    cfg: Config,
    source: ConfigSource,
    backend: Backend,
    mut signals: Signals,
) -> Result<()> {
    let reloads = SignalStream::new(signals.hup.take().expect("SIGHUP handler")).map(|_| ());
    let shutdown = async move { signals.shutdown().await };
    crate::daemon::run(cfg, source, backend, shutdown, reloads, None).await
}

/// The signals the proxy answers, installed first thing: from then on SIGHUP never kills
/// the process (it waits until the daemon is ready) and SIGTERM is seen at any moment.
pub struct Signals {
    term: Signal,
    int: Signal,
    hup: Option<Signal>,
}

impl Signals {
    pub fn install() -> Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: Some(signal(SignalKind::hangup())?),
        })
    }

    /// SIGTERM or ctrl-c.
    pub async fn shutdown(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// Raise the descriptor limit to the hard limit, saying so.
pub fn raise_nofile() {
    match crate::proxy::budget::raise_nofile() {
        Ok((before, after)) if after > before => {
            tracing::info!("descriptor limit raised from {before} to {after}")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("descriptor limit not raised: {e}"),
    }
}
