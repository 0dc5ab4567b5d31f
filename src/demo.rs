//! `eepsocks demo`: a small offline I2P network in this process (emissary routers on
//! loopback), an eepsite on it named demo.i2p, and the proxy's own embedded router joined
//! to it through a reseed file, the way a real first start reseeds. Nothing leaves the
//! machine; `local_network` (loopback peers, all hops on one address) exists only here.

use crate::config::{Config, RouterKind};
use crate::i2p::backend::{devnet, Embedded};
use crate::i2p::keyfile::{self, KeySource};
use crate::i2p::sam::datagram::EMISSARY_UDP_MAX;
use crate::i2p::sam::{Session, SessionConfig};
use crate::naming::AddressBook;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

/// 1-hop tunnels: emissary refuses 0 hops, and every hop here is the same machine anyway.
pub const OPTIONS: &[(&str, &str)] = &[
    ("inbound.length", "1"),
    ("outbound.length", "1"),
    ("inbound.quantity", "2"),
    ("outbound.quantity", "2"),
];

pub const SITE_NAME: &str = "demo.i2p";

pub struct Demo {
    pub net: devnet::Devnet,
    pub router: Embedded,
    pub site_b32: String,
    /// The proxy's config: its SAM bridge is `router`'s, its data in `<dir>/eepsocks`.
    pub config: Config,
    /// The site's session: the site is published while this is kept.
    pub site: Session,
    /// The site's STREAM FORWARD, ended by `stop_site`.
    pub forward: tokio::task::JoinHandle<()>,
}

impl Demo {
    /// Unpublish the site: its forward first, then its session, so neither sees its
    /// router go away when the network stops after this.
    pub async fn stop_site(site: Session, forward: tokio::task::JoinHandle<()>) {
        forward.abort();
        site.close();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), site.closed()).await;
    }
}

/// Start the network, the site and the proxy's router in `dir` (kept: a second start in
/// the same directory has the same routers, site address and proxy identity).
/// `config` is the user's (listeners, automap, filters...): its router, data directory
/// and tunnel options become the demo's.
pub async fn start(dir: &Path, mut config: Config) -> Result<Demo> {
    crate::fsutil::create_private_dir(dir)?;
    let spec = devnet::Spec {
        floodfills: 2,
        relays: 2,
        sam_routers: 1,
        ssu2: false,
        dir: dir.join("net"),
        net_id: 77,
    };
    let t0 = std::time::Instant::now();
    let net = devnet::Devnet::start(spec.clone()).await?;
    info!(
        "demo: offline I2P network of {} routers up in {:.2} s (net id {}, loopback only)",
        net.routers.len(),
        t0.elapsed().as_secs_f32(),
        spec.net_id
    );
    // The site lives on the first router with a SAM bridge.
    let site_router = net
        .routers
        .iter()
        .find(|r| r.sam.is_some())
        .context("the demo network has no SAM bridge")?;
    let site_sam = site_router.sam.map(|a| a.to_string()).unwrap_or_default();
    let site_udp = site_router.sam_udp;

    // The site: a tiny HTTP server, published through STREAM FORWARD on its router.
    let http = TcpListener::bind("127.0.0.1:0").await?;
    let port = http.local_addr()?.port();
    tokio::spawn(serve_site(http));
    let site_keys = keyfile::obtain(&KeySource::File(dir.join("site.dat")), &site_sam, 7).await?;
    let site_dest = site_keys.destination().clone();
    let site_b32 = site_dest.b32();
    let site = Session::spawn(SessionConfig {
        sam_addr: site_sam.clone(),
        name: "demo-site".into(),
        keys: site_keys.into(),
        options: opts(),
        warm_sockets: true,
        datagram_port: None,
        create_timeout: crate::i2p::sam::CREATE_TIMEOUT,
        on_demand: true,
        shared_datagrams: None,
    });
    // The proxy's own router joins through the network's reseed file.
    let router = Embedded::start(spec.joiner(&dir.join("router"))).await?;
    let sam = router.sam.context("embedded router without SAM")?;
    info!("demo: SAM bridges: site router {site_sam}, proxy router {sam}");
    // A datagram echo beside the site, for UDP ASSOCIATE (every datagram back to its
    // sender). It runs in the forward's task, so stopping the site stops it too.
    let echo = datagram_echo(site_udp.map(|sam_udp| (site_sam.clone(), sam_udp)));
    let id = site.wait_until_up().await?;
    let fwd = crate::i2p::sam::forward(&site_sam, &id, port, false)
        .await
        .context("demo site: STREAM FORWARD")?;
    // Aborted at exit before the network stops, so this warns only of a real loss.
    let forward = tokio::spawn(async move {
        let site = async {
            let _ = fwd.await;
            warn!("demo: the site's STREAM FORWARD ended; demo.i2p no longer answers");
        };
        tokio::join!(site, echo);
    });

    let data = dir.join("eepsocks");
    write_book(&data, &site_dest)?;
    proxy_config(&mut config, &router, sam, data);
    Ok(Demo {
        net,
        router,
        site_b32,
        config,
        site,
        forward,
    })
}

/// The demo's datagram echo on the site's router (`bridges`: its SAM TCP and UDP
/// addresses), every datagram back to its sender; nothing without a SAM UDP port.
async fn datagram_echo(bridges: Option<(String, std::net::SocketAddr)>) {
    let Some((sam_addr, sam_udp)) = bridges else {
        return;
    };
    let cfg = crate::i2p::sam::DatagramConfig {
        sam_addr,
        sam_udp,
        name: "demo-echo".into(),
        options: opts(),
        sig_type: 7,
        max_send: EMISSARY_UDP_MAX,
    };
    match crate::i2p::sam::DatagramSession::create(&cfg).await {
        Ok(dg) => {
            debug!("demo: datagram echo {}", dg.b32());
            crate::i2p::sam::datagram::echo(dg).await;
        }
        Err(e) => warn!("demo: datagram echo not started: {e}"),
    }
}

/// The proxy's data directory, with an address book that names the site.
fn write_book(data: &Path, site: &crate::destination::Destination) -> Result<()> {
    crate::fsutil::create_private_dir(data)?;
    let mut book = AddressBook::default();
    book.insert(SITE_NAME, &site.to_base64())
        .map_err(anyhow::Error::msg)?;
    book.save(&data.join("addressbook.txt"))
}

/// The user's config on the demo's router: its SAM bridge, `data`, the demo's tunnel options.
fn proxy_config(
    config: &mut Config,
    router: &Embedded,
    sam: std::net::SocketAddr,
    data: std::path::PathBuf,
) {
    config.sam = sam.to_string();
    config.sam_udp = router.sam_udp.map(|a| a.to_string());
    config.sam_udp_max = Some(EMISSARY_UDP_MAX);
    config.data_dir = Some(data);
    config.router = RouterKind::Sam;
    for (k, v) in OPTIONS {
        config
            .options
            .insert(k.to_string(), toml::Value::String(v.to_string()));
    }
}

fn opts() -> Vec<(String, String)> {
    OPTIONS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A new private directory for `eepsocks demo` when none is given. `create_dir` fails
/// on anything already there, so another user cannot plant the directory or a link.
pub fn temp_dir() -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    for i in 0..100u32 {
        let p = std::env::temp_dir().join(format!(
            "eepsocks-demo-{}-{:x}",
            std::process::id(),
            nanos.wrapping_mul(2654435761).wrapping_add(i)
        ));
        match std::fs::DirBuilder::new().mode(0o700).create(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", p.display())),
        }
    }
    anyhow::bail!("cannot create a temporary directory for the demo")
}

async fn serve_site(l: TcpListener) {
    loop {
        let Ok((s, _)) = l.accept().await else {
            // e.g. out of file descriptors: do not spin.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        };
        tokio::spawn(async move {
            // Requests are small; a client sending more is cut off, not buffered.
            let mut r = BufReader::new(s.take(32 * 1024));
            // STREAM FORWARD puts the caller's destination on the first line.
            let mut line = String::new();
            if r.read_line(&mut line).await.is_err() {
                return;
            }
            if !line.starts_with("GET ") && !line.starts_with("HEAD ") {
                line.clear();
                if r.read_line(&mut line).await.is_err() {
                    return;
                }
            }
            let head = line.starts_with("HEAD ");
            // Read the rest of the request head (bounded).
            let mut rest = String::new();
            while rest.len() < 16384 {
                let mut l = String::new();
                match r.read_line(&mut l).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) if l == "\r\n" || l == "\n" => break,
                    Ok(_) => rest.push_str(&l),
                }
            }
            let body = "Hello from demo.i2p, an eepsite on eepsocks' offline demo network.\n\
                        You reached it over I2P tunnels, through the SOCKS proxy.\n";
            let mut s = r.into_inner().into_inner();
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{}",
                body.len(),
                if head { "" } else { body }
            );
            let _ = s.write_all(resp.as_bytes()).await;
            let _ = s.shutdown().await;
            let mut sink = [0u8; 512];
            let _ = s.read(&mut sink).await;
        });
    }
}
