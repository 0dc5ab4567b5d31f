//! `eepsocks demo`: an offline I2P network in this process, and the proxy into it.

use super::run::{serve, Signals};
use crate::config::ConfigSource;
use crate::i2p::backend::Backend;
use anyhow::Result;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub async fn demo(listen: SocketAddr, dir: Option<PathBuf>) -> Result<()> {
    // The same rule as `run`: no SOCKS port reachable from the network without a login
    // (and the demo has no login).
    if !listen.ip().is_loopback() {
        anyhow::bail!(
            "refusing to listen on {listen}: the demo listens on loopback only (127.0.0.1 or ::1)"
        );
    }
    let temp = dir.is_none();
    let dir = match dir {
        Some(d) => d,
        None => crate::demo::temp_dir()?,
    };
    let r = demo_in(&dir, listen).await;
    if temp {
        let _ = std::fs::remove_dir_all(&dir);
    }
    r
}

async fn demo_in(dir: &Path, listen: SocketAddr) -> Result<()> {
    let mut signals = Signals::install()?;
    super::run::raise_nofile();
    // Interrupted while starting: return, so the temporary directory is removed.
    let d = tokio::select! {
        d = crate::demo::start(dir, listen) => d?,
        _ = signals.shutdown() => return Ok(()),
    };
    let crate::demo::Demo {
        net,
        router,
        site_b32,
        config,
        site,
        forward,
    } = d;
    println!("demo.i2p {site_b32}");
    println!(
        "try: curl --socks5-hostname {listen} http://{}/  (or http://{site_b32}/)",
        crate::demo::SITE_NAME,
    );
    println!(
        "     eepsocks status --data-dir {}",
        config.data_dir().display()
    );
    // The demo's config is built in code: a reload re-reads the address book only.
    let source = ConfigSource::default();
    let r = serve(config, source, Backend::Embedded(router), signals).await;
    crate::demo::Demo::stop_site(site, forward).await;
    net.stop().await;
    r
}
