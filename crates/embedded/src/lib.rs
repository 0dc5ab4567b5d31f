//! eepsocks' embedded I2P router: emissary-core on its own tokio runtime and thread.
//!
//! The proxy talks to it exactly as to i2pd or Java I2P, over SAM v3 on a loopback port,
//! so nothing above the router changes. This crate is separate because instantiating
//! emissary's router is slow to compile; the rest of eepsocks does not rebuild it.
//!
//! The router runs on a runtime of its own so that stopping it ends every task and socket
//! it spawned (emissary spawns its subsystems detached), which a restart needs.

pub mod devnet;
pub mod reseed;
pub mod runtime;
pub mod store;

use anyhow::{bail, Context, Result};
use emissary_core::events::Event;
use emissary_core::router::Router;
use emissary_core::{
    BandwidthConfig, Config, ExploratoryConfig, Ntcp2Config, SamConfig, Ssu2Config, TransitConfig,
};
use runtime::Tokio;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use store::Store;
use tokio::sync::{oneshot, watch};
use tracing::{info, warn};

/// One transport (NTCP2 or SSU2).
#[derive(Debug, Clone)]
pub struct Transport {
    /// 0: a random port, chosen once and then kept in the data directory.
    pub port: u16,
    pub ipv4: bool,
    pub ipv6: bool,
    /// The address published in the RouterInfo. emissary-core always listens on all
    /// interfaces (0.0.0.0 / ::) whatever this says, unless `Settings::loopback_only`.
    pub host: Option<Ipv4Addr>,
    /// Publish the address (reachable router) or not (firewalled).
    pub publish: bool,
}

impl Default for Transport {
    fn default() -> Self {
        Transport {
            port: 0,
            ipv4: true,
            ipv6: false,
            host: None,
            publish: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// Keys, RouterInfo, ports, netDb and profiles; `None` keeps nothing (a throw-away router).
    pub data_dir: Option<PathBuf>,
    /// 2 is the I2P network; others are private networks.
    pub net_id: Option<u8>,
    pub ntcp2: Option<Transport>,
    pub ssu2: Option<Transport>,
    /// Bytes per second the router may use, and the share of it for other people's tunnels.
    pub bandwidth: Option<usize>,
    pub share_ratio: Option<f64>,
    pub floodfill: bool,
    /// Tunnels built through this router for others; 0 turns transit off.
    pub transit_tunnels: Option<usize>,
    /// Reseed from this `.su3` / `.zip` file instead of the servers.
    pub reseed_file: Option<PathBuf>,
    /// Reseed servers (host names); empty means [`reseed::SERVERS`].
    pub reseed_servers: Vec<String>,
    /// Reseed when fewer routers than this are known.
    pub reseed_threshold: usize,
    /// RouterInfos to know from the start (besides netDb/ and the reseed).
    pub routers: Vec<Vec<u8>>,
    /// Offline test networks only: loopback/private peer addresses and all hops on one
    /// address. Never on the I2P network: it removes protections.
    pub local_network: bool,
    pub caps: Option<String>,
    /// Exploratory tunnel length (hops).
    pub exploratory_hops: Option<usize>,
    /// Worker threads for the router's runtime (1 = a single-threaded runtime).
    pub threads: usize,
    /// Serve SAM (on 127.0.0.1, a free port).
    pub sam: bool,
    /// Bind the transports to 127.0.0.1 / ::1, not to all interfaces: an offline network
    /// (the demo's) must not be reachable from the LAN. Never on the I2P network.
    pub loopback_only: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: None,
            net_id: None,
            ntcp2: Some(Transport::default()),
            ssu2: None,
            bandwidth: None,
            share_ratio: None,
            floodfill: false,
            transit_tunnels: None,
            reseed_file: None,
            reseed_servers: Vec::new(),
            reseed_threshold: 25,
            routers: Vec::new(),
            local_network: false,
            caps: None,
            exploratory_hops: None,
            threads: 2,
            sam: true,
            loopback_only: false,
        }
    }
}

/// What the router reports while it bootstraps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Routers known at start (netDb and reseed).
    pub known_routers: usize,
    /// The router stopped by itself (a transport failed): its SAM bridge is gone.
    pub stopped: bool,
    pub connected_routers: usize,
    pub tunnels_built: usize,
    pub tunnel_build_failures: usize,
}

/// A running embedded router.
pub struct Embedded {
    /// Its SAM v3 bridge (loopback), when `Settings::sam`.
    pub sam: Option<SocketAddr>,
    /// Its SAM UDP port (datagrams), when `Settings::sam`.
    pub sam_udp: Option<SocketAddr>,
    /// Its signed RouterInfo, as peers see it.
    pub router_info: Vec<u8>,
    pub ntcp2_port: Option<u16>,
    pub ssu2_port: Option<u16>,
    progress: watch::Receiver<Progress>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Embedded {
    /// Start a router: load or create its data, reseed if it knows too few routers, and
    /// run it on a thread of its own. Returns once its ports are bound.
    pub async fn start(s: Settings) -> Result<Embedded> {
        let store = s.data_dir.as_deref().map(Store::open).transpose()?;
        let mut routers = s.routers.clone();
        if let Some(st) = &store {
            routers.extend(st.routers());
        }
        // A private network never asks the public reseed servers; a file is fine.
        if routers.len() < s.reseed_threshold && (s.reseed_file.is_some() || !s.local_network) {
            let got = match reseed(&s).await {
                Ok(got) => got,
                // Some routers known already: start with them; the netDb grows from there.
                Err(e) if !routers.is_empty() => {
                    warn!("{e:#}; starting with the {} routers known", routers.len());
                    Vec::new()
                }
                Err(e) => return Err(e),
            };
            if let Some(st) = &store {
                for ri in &got {
                    if let Some(name) = router_name(ri) {
                        let _ = st.save_router(&name, ri);
                    }
                }
            }
            routers.extend(got);
        }
        let known = routers.len();
        let threads = s.threads.max(1);
        let config = build_config(&s, store.as_ref(), routers.clone(), true)?;
        let loopback = s.loopback_only;
        let launched = match launch(config, store.clone(), threads, known, loopback).await {
            Err(e)
                if store
                    .as_ref()
                    .is_some_and(|st| st.port("ntcp2").is_some() || st.port("ssu2").is_some()) =>
            {
                // Most likely another program took a saved port since the last run.
                warn!("{e:#}: retrying on new ports (the saved ones may be taken)");
                let config = build_config(&s, store.as_ref(), routers, false)?;
                launch(config, store.clone(), threads, known, loopback).await?
            }
            other => other?,
        };
        let Launched {
            started,
            progress,
            stop: stop_tx,
            thread,
        } = launched;
        if let Some(st) = &store {
            st.save_router_info(&started.router_info)?;
            let mut ports = Vec::new();
            if let Some(p) = started.ntcp2_port {
                ports.push(("ntcp2", p));
            }
            if let Some(p) = started.ssu2_port {
                ports.push(("ssu2", p));
            }
            st.save_ports(&ports)?;
        }
        Ok(Embedded {
            sam: started.sam,
            sam_udp: started.sam_udp,
            router_info: started.router_info,
            ntcp2_port: started.ntcp2_port,
            ssu2_port: started.ssu2_port,
            progress,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.clone()
    }

    /// Stop at once (no graceful draining of transit tunnels: this is a client router)
    /// and wait until its sockets are closed.
    pub async fn stop(mut self) {
        self.halt();
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }

    fn halt(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        self.halt();
    }
}

struct Launched {
    started: Started,
    progress: watch::Receiver<Progress>,
    stop: oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

/// Run the router on a thread and runtime of its own; returns once its ports are bound.
async fn launch(
    config: Config,
    store: Option<Store>,
    threads: usize,
    known: usize,
    loopback_only: bool,
) -> Result<Launched> {
    let (ready_tx, ready_rx) = oneshot::channel();
    let (stop_tx, stop_rx) = oneshot::channel();
    let (prog_tx, progress) = watch::channel(Progress {
        known_routers: known,
        ..Progress::default()
    });
    let thread = std::thread::Builder::new()
        .name("i2p-router".into())
        .spawn(move || {
            // This thread runs Router::new (the binds); workers run the router's tasks.
            runtime::set_loopback_only(loopback_only);
            let rt = if threads == 1 {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
            } else {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(threads)
                    .thread_name("i2p-router")
                    .on_thread_start(move || runtime::set_loopback_only(loopback_only))
                    .enable_all()
                    .build()
            };
            let rt = match rt {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(anyhow::anyhow!("router runtime: {e}")));
                    return;
                }
            };
            rt.block_on(drive(config, store, ready_tx, stop_rx, prog_tx));
            // Dropping the runtime ends every task the router spawned, sockets included.
            rt.shutdown_timeout(Duration::from_secs(1));
        })
        .context("cannot start the router thread")?;
    let started = match ready_rx.await {
        Ok(r) => r?,
        Err(_) => bail!("the embedded router stopped while starting"),
    };
    Ok(Launched {
        started,
        progress,
        stop: stop_tx,
        thread,
    })
}

struct Started {
    sam: Option<SocketAddr>,
    sam_udp: Option<SocketAddr>,
    router_info: Vec<u8>,
    ntcp2_port: Option<u16>,
    ssu2_port: Option<u16>,
}

async fn drive(
    config: Config,
    store: Option<Store>,
    ready: oneshot::Sender<Result<Started>>,
    mut stop: oneshot::Receiver<()>,
    progress: watch::Sender<Progress>,
) {
    let storage =
        store.map(|s| Arc::new(store::Saver(s)) as Arc<dyn emissary_core::runtime::Storage>);
    let (mut router, mut events, router_info) =
        match Router::<Tokio>::new(config, None, storage).await {
            Ok(r) => r,
            Err(e) => {
                let _ = ready.send(Err(anyhow::anyhow!(
                    "the embedded router did not start: {e:?}"
                )));
                return;
            }
        };
    let a = *router.protocol_address_info();
    let _ = ready.send(Ok(Started {
        sam: a.sam_tcp,
        sam_udp: a.sam_udp,
        router_info,
        ntcp2_port: a.ntcp2_port,
        ssu2_port: a.ssu2_port,
    }));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = &mut router => {
                tracing::error!("the embedded router stopped by itself");
                progress.send_modify(|p| p.stopped = true);
                break;
            }
            _ = &mut stop => {
                // Twice: the second call skips the graceful drain of transit tunnels.
                router.shutdown();
                router.shutdown();
                break;
            }
            _ = tick.tick() => {
                while let Some(ev) = events.router_status() {
                    if let Event::RouterStatus { transport, tunnel, .. } = ev {
                        progress.send_modify(|p| {
                            p.connected_routers = transport.num_connected_routers;
                            p.tunnels_built = tunnel.num_tunnels_built;
                            p.tunnel_build_failures = tunnel.num_tunnel_build_failures;
                        });
                    }
                }
            }
        }
    }
}

/// The router hash of a RouterInfo, as emissary names it (base64), or `None` when the
/// bytes are not a RouterInfo.
pub fn router_name(ri: &[u8]) -> Option<String> {
    // Not `RouterId`'s Display: that is cut to 8 characters.
    emissary_core::primitives::RouterInfo::parse::<Tokio>(ri)
        .ok()
        .map(|r| emissary_core::crypto::base64_encode(r.identity.id().to_vec()))
}

/// `saved_ports`: use the ports kept in the data directory for transports configured with 0.
fn build_config(
    s: &Settings,
    store: Option<&Store>,
    routers: Vec<Vec<u8>>,
    saved_ports: bool,
) -> Result<Config> {
    if s.ntcp2.is_none() && s.ssu2.is_none() {
        bail!("the embedded router needs a transport: enable ntcp2 or ssu2");
    }
    let keys = match store {
        Some(st) => Some(st.keys()?),
        None => None,
    };
    let saved_port = |t: &str, p: u16| match (p, store) {
        (0, Some(st)) if saved_ports => st.port(t).unwrap_or(0),
        _ => p,
    };
    let ntcp2 = s.ntcp2.as_ref().map(|t| Ntcp2Config {
        ipv4: t.ipv4,
        ipv4_host: t.host,
        ipv6: t.ipv6,
        ipv6_host: None,
        iv: keys.as_ref().map_or_else(random, |k| k.ntcp2_iv),
        key: keys.as_ref().map_or_else(random, |k| k.ntcp2_key),
        port: saved_port("ntcp2", t.port),
        publish: t.publish,
        ml_kem: None,
        disable_pq: false,
    });
    let ssu2 = s.ssu2.as_ref().map(|t| Ssu2Config {
        disable_pq: false,
        intro_key: keys.as_ref().map_or_else(random, |k| k.ssu2_intro),
        ipv4: t.ipv4,
        ipv4_host: t.host,
        ipv4_mtu: None,
        ipv6: t.ipv6,
        ipv6_host: None,
        ipv6_mtu: None,
        port: saved_port("ssu2", t.port),
        publish: t.publish,
        static_key: keys.as_ref().map_or_else(random, |k| k.ssu2_static),
        ml_kem: None,
    });
    Ok(Config {
        allow_local: s.local_network,
        insecure_tunnels: s.local_network,
        caps: s.caps.clone(),
        exploratory: s.exploratory_hops.map(|h| ExploratoryConfig {
            inbound_len: Some(h),
            inbound_count: None,
            outbound_len: Some(h),
            outbound_count: None,
        }),
        floodfill: s.floodfill,
        bandwidth: s.bandwidth.map(|b| BandwidthConfig {
            bandwidth: b,
            share_ratio: s.share_ratio.unwrap_or(0.9),
        }),
        net_id: s.net_id,
        ntcp2,
        ssu2,
        profiles: store.map(|st| st.profiles()).unwrap_or_default(),
        router_info: store.and_then(|st| st.router_info()),
        routers,
        samv3_config: s.sam.then(|| SamConfig {
            tcp_port: 0,
            udp_port: 0,
            host: "127.0.0.1".into(),
        }),
        signing_key: keys.as_ref().map(|k| k.signing_key),
        static_key: keys.as_ref().map(|k| k.static_key),
        transit: match s.transit_tunnels {
            Some(0) => None,
            n => Some(TransitConfig { max_tunnels: n }),
        },
        ..Config::default()
    })
}

fn random<const N: usize>() -> [u8; N] {
    use rand::RngExt;
    let mut b = [0u8; N];
    rand::rng().fill(&mut b[..]);
    b
}

/// Fetch RouterInfos from the file, or from servers until enough are known.
async fn reseed(s: &Settings) -> Result<Vec<Vec<u8>>> {
    if let Some(f) = &s.reseed_file {
        let got = reseed::from_file(f)?;
        info!("reseeded from {}: {} routers", f.display(), got.len());
        return Ok(got);
    }
    let mut servers: Vec<String> = if s.reseed_servers.is_empty() {
        reseed::SERVERS.iter().map(|s| s.to_string()).collect()
    } else {
        s.reseed_servers.clone()
    };
    // A different order each time, so no single server sees every new router.
    {
        use rand::seq::SliceRandom;
        servers.shuffle(&mut rand::rng());
    }
    let net_id = s.net_id.unwrap_or(2);
    let mut got = Vec::new();
    let mut used = 0;
    for server in servers {
        info!("reseeding from {server}");
        let r = tokio::task::spawn_blocking({
            let server = server.clone();
            move || reseed::from_server(&server, net_id)
        })
        .await?;
        match r {
            Ok(v) => {
                info!("reseeded from {server}: {} routers", v.len());
                got.extend(v);
                used += 1;
                // Two servers, so no one server chooses all of our first peers.
                if used >= 2 {
                    break;
                }
            }
            Err(e) => warn!("{e:#}"),
        }
    }
    if got.is_empty() {
        bail!(
            "reseed failed: no reseed server answered (offline?). Give a reseed file \
             (embedded.reseed_file = \"i2pseeds.su3\"), or run `eepsocks demo` for an offline network"
        );
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The data directory keeps the router's identity and port across a restart.
    #[tokio::test]
    async fn restart_keeps_router_hash_and_port() {
        let dir = std::env::temp_dir().join(format!("eepsocks-embedded-{}", std::process::id()));
        let s = Settings {
            data_dir: Some(dir.clone()),
            net_id: Some(99),
            local_network: true,
            threads: 1,
            ..Settings::default()
        };
        let s2 = s.clone();
        let a = Embedded::start(s.clone()).await.unwrap();
        let (ri_a, port_a) = (a.router_info.clone(), a.ntcp2_port);
        assert!(a.sam.unwrap().ip().is_loopback());
        a.stop().await;
        let b = Embedded::start(s).await.unwrap();
        assert_eq!(router_name(&ri_a), router_name(&b.router_info));
        // The whole 32-byte hash in base64, not emissary's 8-character display form.
        assert_eq!(router_name(&ri_a).unwrap().len(), 44);
        assert_eq!(port_a, b.ntcp2_port);
        b.stop().await;
        // New keys (the old file moved away): a new identity, not the old RouterInfo
        // signed with the wrong key.
        std::fs::rename(dir.join("router.keys"), dir.join("old.keys")).unwrap();
        let c = Embedded::start(s2).await.unwrap();
        assert_ne!(router_name(&ri_a), router_name(&c.router_info));
        c.stop().await;
        std::fs::rename(dir.join("old.keys"), dir.join("router.keys")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("router.keys"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn offline_reseed_failure_is_explained() {
        let dir = std::env::temp_dir().join(format!("eepsocks-reseed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let s = Settings {
            data_dir: Some(dir.clone()),
            reseed_file: Some(dir.join("missing.su3")),
            ..Settings::default()
        };
        let Err(e) = Embedded::start(s).await else {
            panic!("started without routers")
        };
        assert!(format!("{e:#}").contains("missing.su3"), "{e:#}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
