//! Choosing the router (`--router auto|sam|embedded`), starting the embedded one, and the
//! offline demo network. Everything above this still speaks SAM: the embedded emissary
//! router serves SAM on a loopback port, so the proxy is the same code with either.

#[cfg(feature = "embedded")]
use crate::config::EmbeddedConfig;
use crate::config::{Config, RouterKind};
use crate::i2p::sam::SamSocket;
#[cfg(feature = "embedded")]
use anyhow::Context;
use anyhow::{bail, Result};
use std::time::Duration;
use tracing::{info, warn};

#[cfg(feature = "embedded")]
pub use eepsocks_embedded::{devnet, Embedded, Progress, Settings, Transport};

/// Whether a SAM bridge answers HELLO at `addr` within two seconds.
pub async fn sam_answers(addr: &str) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(2), SamSocket::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// The ports a router opens besides SAM, probed when SAM does not answer: Java I2P's
/// I2CP and console, i2pd's console. `EEPSOCKS_ROUTER_PROBES` replaces the list
/// (`label=addr,...`; empty: probe nothing), for tests and unusual set-ups.
const ROUTER_PROBES: &str =
    "java-i2cp=127.0.0.1:7654,java-console=127.0.0.1:7657,i2pd-console=127.0.0.1:7070";

/// When SAM at `sam` does not answer but a known router's other port does: what to tell
/// the user (how to turn that router's SAM bridge on).
async fn router_without_sam(sam: &str) -> Option<String> {
    let list = std::env::var("EEPSOCKS_ROUTER_PROBES").unwrap_or_else(|_| ROUTER_PROBES.into());
    for probe in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((label, addr)) = probe.split_once('=') else {
            continue;
        };
        let answers = matches!(
            tokio::time::timeout(
                Duration::from_millis(500),
                tokio::net::TcpStream::connect(addr)
            )
            .await,
            Ok(Ok(_))
        );
        if !answers {
            continue;
        }
        let (router, port, how) = if label.starts_with("i2pd") {
            (
                "i2pd",
                "web console",
                "set `enabled = true` in the [sam] section of i2pd.conf (address = 127.0.0.1, \
                 port = 7656) and restart i2pd",
            )
        } else {
            (
                "Java I2P",
                if label.contains("i2cp") {
                    "I2CP port"
                } else {
                    "console"
                },
                "open http://127.0.0.1:7657/configclients, start \"SAM application bridge\" \
                 and tick \"Run at Startup\"",
            )
        };
        return Some(format!(
            "router: {router} seems to run (its {port} answers at {addr}) but no SAM bridge \
             answers at {sam}: {how}, then start eepsocks again (or give its SAM address with \
             --sam). Not starting a second router beside it; --router embedded does so anyway"
        ));
    }
    None
}

/// What `run` ends up using; the embedded router runs as long as this is kept.
pub enum Backend {
    Sam,
    #[cfg(feature = "embedded")]
    Embedded(Embedded),
}

impl Backend {
    pub fn kind(&self) -> &'static str {
        match self {
            Backend::Sam => "sam",
            #[cfg(feature = "embedded")]
            Backend::Embedded(_) => "embedded",
        }
    }

    /// Log the embedded router's bootstrap every few seconds until the task is aborted
    /// (when the proxy is ready). Nothing for a SAM bridge.
    pub fn log_bootstrap(&self) -> Option<tokio::task::JoinHandle<()>> {
        match self {
            Backend::Sam => None,
            #[cfg(feature = "embedded")]
            Backend::Embedded(r) => Some(tokio::spawn(log_progress(r.progress()))),
        }
    }

    /// Resolves if the embedded router stops by itself; never for a SAM bridge.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        #[cfg(feature = "embedded")]
        let rx = match self {
            Backend::Embedded(r) => Some(r.progress()),
            Backend::Sam => None,
        };
        async move {
            #[cfg(feature = "embedded")]
            if let Some(mut rx) = rx {
                let _ = rx.wait_for(|p| p.stopped).await;
                return;
            }
            std::future::pending::<()>().await
        }
    }

    /// Stop the embedded router (it saves its state); nothing for a SAM bridge.
    pub async fn stop(self) {
        match self {
            Backend::Sam => {}
            #[cfg(feature = "embedded")]
            Backend::Embedded(r) => r.stop().await,
        }
    }
}

/// Pick the router as configured and point `cfg.sam` at it. Logs the choice once.
pub async fn choose(cfg: &mut Config) -> Result<Backend> {
    let use_sam = match cfg.router {
        RouterKind::Sam => true,
        RouterKind::Embedded => false,
        RouterKind::Auto => {
            if !sam_answers(&cfg.sam).await {
                // A router that runs with its SAM bridge off: a second router beside it
                // would be the wrong fix (two identities, twice the traffic).
                if let Some(why) = router_without_sam(&cfg.sam).await {
                    bail!("{why}");
                }
                info!(
                    "router: no SAM bridge answers at {} (auto): using the embedded router",
                    cfg.sam
                );
                false
            } else if let Some(why) = super::trust::distrust(&cfg.sam) {
                warn!(
                    "router: the SAM bridge at {} {why}: not used (auto); using the embedded \
                     router. Give --router sam to use it anyway",
                    cfg.sam
                );
                false
            } else {
                true
            }
        }
    };
    if use_sam {
        info!(
            "router: SAM bridge at {}{}",
            cfg.sam,
            if cfg.router == RouterKind::Auto {
                " (auto: it answered)"
            } else {
                ""
            }
        );
        return Ok(Backend::Sam);
    }
    start_embedded(cfg).await
}

#[cfg(not(feature = "embedded"))]
async fn start_embedded(_: &mut Config) -> Result<Backend> {
    bail!("this eepsocks was built without the embedded router (feature \"embedded\"); give a SAM bridge with --sam")
}

#[cfg(feature = "embedded")]
async fn start_embedded(cfg: &mut Config) -> Result<Backend> {
    let dir = cfg.data_dir().join("router");
    let mut s = settings(&cfg.embedded, &dir)?;
    // --transient leaves no trace: the router's keys and netDb are thrown away too.
    let transient = cfg.all_transient();
    if transient {
        s.data_dir = None;
        info!("router: embedded emissary router, transient (nothing kept; reseeds each start)");
    } else {
        info!(
            "router: embedded emissary router, data in {} (it may take a few minutes to \
             bootstrap the first time)",
            dir.display()
        );
    }
    let r = Embedded::start(s).await?;
    let sam = r.sam.context("the embedded router has no SAM bridge")?;
    cfg.sam = sam.to_string();
    if let Some(udp) = r.sam_udp {
        cfg.sam_udp = Some(udp.to_string());
    }
    cfg.sam_udp_max = Some(crate::i2p::sam::datagram::EMISSARY_UDP_MAX);
    info!("embedded router SAM bridge on {sam}");
    Ok(Backend::Embedded(r))
}

/// The embedded router's settings from the config file.
#[cfg(feature = "embedded")]
pub fn settings(e: &EmbeddedConfig, dir: &std::path::Path) -> Result<Settings> {
    if !e.ntcp2 && !e.ssu2 {
        bail!("[embedded]: enable ntcp2 or ssu2 (or both)");
    }
    if !e.ipv4 && !e.ipv6 {
        bail!("[embedded]: enable ipv4 or ipv6 (or both)");
    }
    if e.publish && e.host.is_none() {
        bail!("[embedded] publish = true needs host (the public IPv4 address to publish)");
    }
    if let Some(r) = e.share_ratio {
        if !(0.0..=1.0).contains(&r) {
            bail!("[embedded] share_ratio {r}: a fraction from 0.0 to 1.0");
        }
    }
    let t = |port| Transport {
        port,
        ipv4: e.ipv4,
        ipv6: e.ipv6,
        host: e.host,
        publish: e.publish,
    };
    Ok(Settings {
        data_dir: Some(dir.into()),
        ntcp2: e.ntcp2.then(|| t(e.ntcp2_port)),
        ssu2: e.ssu2.then(|| t(e.ssu2_port)),
        bandwidth: e.bandwidth_kib.map(|k| k * 1024),
        share_ratio: e.share_ratio,
        transit_tunnels: e.transit_tunnels,
        reseed_file: e.reseed_file.clone(),
        reseed_servers: e.reseed_servers.clone(),
        reseed_threshold: e.reseed_threshold,
        threads: e.threads,
        ..Settings::default()
    })
}

#[cfg(feature = "embedded")]
async fn log_progress(rx: tokio::sync::watch::Receiver<Progress>) {
    let started = std::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let p = rx.borrow().clone();
        info!(
            "embedded router bootstrapping ({:.0} s): {} routers known at start, {} \
             connected, {} tunnels built, {} build failures",
            started.elapsed().as_secs_f32(),
            p.known_routers,
            p.connected_routers,
            p.tunnels_built,
            p.tunnel_build_failures
        );
    }
}
