//! `eepsocks demo`: an offline I2P network in this process, and the proxy into it.
//!
//! `--config FILE` applies to the demo as to `run` (listeners, automap, status endpoint,
//! filters, extended errors, logins), so every recipe can be tried on it. What names
//! another router, or another data directory, cannot apply: the demo refuses it, saying
//! so, instead of ignoring it.

use super::run::{run_with_signals, Signals};
use crate::config::{ConfigSource, Overrides};
use crate::i2p::backend::Backend;
use anyhow::{bail, Context, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Config keys about the router or the data directory: the demo has its own of both.
const NOT_IN_DEMO: &[&str] = &[
    "sam",
    "sam_udp",
    "remote_sam",
    "router",
    "embedded",
    "sam_user",
    "sam_password",
    "sam_password_file",
    "data_dir",
];

/// Where the demo's settings come from, checked for what it cannot apply.
pub fn source(
    file: Option<PathBuf>,
    listen: Option<SocketAddr>,
    sam_flag: bool,
    data_dir_flag: bool,
) -> Result<ConfigSource> {
    if sam_flag {
        bail!(
            "demo: --sam cannot apply: the demo runs its own routers and uses their SAM \
             bridges; for a router of yours, eepsocks run --sam ADDR"
        );
    }
    if data_dir_flag {
        bail!(
            "demo: --data-dir cannot apply: the demo keeps its data in --dir DIR (DIR/eepsocks); \
             for your own data directory, eepsocks run --data-dir DIR"
        );
    }
    let mut status_set = false;
    if let Some(f) = &file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("cannot read config file {}", f.display()))?;
        let table: toml::Table = toml::from_str(&text)
            .with_context(|| format!("invalid config file {}", f.display()))?;
        let refused: Vec<&str> = NOT_IN_DEMO
            .iter()
            .copied()
            .filter(|k| table.contains_key(*k))
            .collect();
        if !refused.is_empty() {
            bail!(
                "demo: {} in {} cannot apply: the demo runs its own routers and keeps its data \
                 in --dir; remove {}, or use the file with eepsocks run --config",
                refused.join(", "),
                f.display(),
                if refused.len() == 1 { "it" } else { "them" }
            );
        }
        if let Some(opts) = table.get("options").and_then(|o| o.as_table()) {
            for (k, _) in crate::demo::OPTIONS {
                if opts.contains_key(*k) {
                    tracing::warn!(
                        "demo: options.{k} not applied: the demo's network is one machine, \
                         its tunnels have the demo's lengths and quantities"
                    );
                }
            }
        }
        status_set = table.contains_key("status_listen");
    } else if let Some(l) = listen.filter(|l| !l.ip().is_loopback()) {
        // The same rule as `run`: no SOCKS port reachable from the network without a login
        // (and without a config the demo has no login).
        bail!("refusing to listen on {l}: the demo listens on loopback only (127.0.0.1 or ::1)");
    }
    Ok(ConfigSource {
        file,
        overrides: Overrides {
            listen,
            options: crate::demo::OPTIONS
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            // Any free port unless the file names one: a `run` may hold 4446.
            status_listen: (!status_set).then(|| "127.0.0.1:0".to_string()),
            ..Overrides::default()
        },
    })
}

pub async fn demo(source: ConfigSource, dir: Option<PathBuf>) -> Result<()> {
    let temp = dir.is_none();
    let dir = match dir {
        Some(d) => d,
        None => crate::demo::temp_dir()?,
    };
    let r = demo_in(&dir, source).await;
    if temp {
        let _ = std::fs::remove_dir_all(&dir);
    }
    r
}

async fn demo_in(dir: &Path, mut source: ConfigSource) -> Result<()> {
    source.overrides.data_dir = Some(dir.join("eepsocks"));
    // Checked before the network starts: a config error costs no waiting.
    let cfg = source.read()?;
    cfg.validate()?;
    let mut signals = Signals::install()?;
    super::run::raise_nofile();
    // Interrupted while starting: return, so the temporary directory is removed.
    let d = tokio::select! {
        d = crate::demo::start(dir, cfg) => d?,
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
    let first = config.listeners().first().map(|l| l.listen);
    println!("demo.i2p {site_b32}");
    if let Some(listen) = first {
        println!(
            "try: curl --socks5-hostname {listen} http://{}/  (or http://{site_b32}/)",
            crate::demo::SITE_NAME,
        );
    }
    println!("     eepsocks status");
    // A reload re-reads the file with the demo's router, data directory and options.
    source.overrides.sam = Some(config.sam.clone());
    source.overrides.router = Some(crate::config::RouterKind::Sam);
    let r = run_with_signals(config, source, Backend::Embedded(router), signals).await;
    crate::demo::Demo::stop_site(site, forward).await;
    net.stop().await;
    r
}
