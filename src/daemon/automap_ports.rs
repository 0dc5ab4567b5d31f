//! Automap's ports for the automap listener: the DNS port (UDP and TCP on one address)
//! and the transparent port, kept across reloads while their addresses stay.

use crate::automap::server::{Dns, DnsLimits};
use crate::config::{AutomapConfig, Config};
use crate::i2p::SamRouter;
use crate::ports::PortAutomap;
use crate::proxy::context::ListenerContext;
use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Automap's ports as running: the DNS port (UDP and TCP on one address) and the
/// transparent port, served for the automap listener.
pub(super) struct AutomapPorts {
    pub(super) config: AutomapConfig,
    dns: Option<(Arc<UdpSocket>, Arc<TcpListener>)>,
    trans: Option<Arc<TcpListener>>,
    /// The same port on `[::1]` when `trans` is on 127.0.0.1: nftables redirects IPv6
    /// (GarliCat addresses) to ::1, never to an IPv4 socket.
    trans6: Option<Arc<TcpListener>>,
    pub(super) stop: CancellationToken,
    /// The DNS port's slots, kept across reloads.
    limits: Arc<DnsLimits>,
}

impl AutomapPorts {
    /// Automap's sockets for `cfg`: those running when the address is the same (no moment
    /// without them), else bound now. The tasks are (re)started by `commit`.
    pub(super) async fn plan(
        cfg: &Config,
        old: Option<&AutomapPorts>,
    ) -> Result<Option<AutomapPorts>> {
        let Some(a) = &cfg.automap else {
            return Ok(None);
        };
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
        let trans6 = match (a.trans_listen, &trans) {
            (Some(std::net::SocketAddr::V4(v4)), Some(t)) if v4.ip().is_loopback() => {
                match old.filter(|o| o.config.trans_listen == a.trans_listen) {
                    Some(o) => o.trans6.clone(),
                    None => bind_trans6(t).await,
                }
            }
            _ => None,
        };
        Ok(Some(AutomapPorts {
            config: a.clone(),
            dns,
            trans,
            trans6,
            stop: CancellationToken::new(),
            limits: old.map(|o| o.limits.clone()).unwrap_or_default(),
        }))
    }

    /// Serve the ports for listener `name` (its router and context) until `stop`.
    pub(super) fn spawn_servers(
        &self,
        name: &str,
        router: &Arc<SamRouter>,
        ctx: &Arc<ListenerContext>,
    ) {
        let a = &self.config;
        ctx.stand_ins
            .set_quarantine(Duration::from_secs(a.quarantine));
        if let Some((udp, tcp)) = &self.dns {
            let dns = Dns::new(router.clone(), ctx.clone(), a.ttl, self.limits.clone());
            let stop = self.stop.clone();
            tokio::spawn(
                dns.clone()
                    .serve_udp(udp.clone(), stop.clone().cancelled_owned()),
            );
            tokio::spawn(dns.serve_tcp(tcp.clone(), stop.cancelled_owned()));
        }
        for t in self.trans.iter().chain(&self.trans6) {
            tokio::spawn(crate::proxy::server::serve_transparent(
                t.clone(),
                router.clone(),
                ctx.clone(),
                self.stop.clone().cancelled_owned(),
            ));
        }
        if !a.network.is_loopback() {
            warn!(
                "automap network {} is not loopback: an application whose connection is not \
                 redirected to the transparent port connects to that address on the network",
                a.network
            );
        }
        // As bound: a port 0 in the config is named by the port the kernel gave.
        let show = |x: Option<std::net::SocketAddr>| x.map_or("off".to_string(), |a| a.to_string());
        let dns_at = self.dns.as_ref().and_then(|(u, _)| u.local_addr().ok());
        let trans_at = self.trans.as_ref().and_then(|t| t.local_addr().ok());
        info!(
            "automap for listener {name}: virtual addresses in {}, DNS on {}, transparent port on {}",
            a.network,
            show(dns_at.or(a.dns_listen)),
            show(trans_at.or(a.trans_listen))
        );
    }

    /// The automap ports running now, as the ports file shows them.
    pub(super) fn ports_file(&self, cfg: &Config) -> Option<PortAutomap> {
        let a = self;
        Some(PortAutomap {
            listener: cfg.automap_listener()?,
            network: a.config.network.to_string(),
            dns: a.dns.as_ref().and_then(|(_, t)| t.local_addr().ok()),
            transparent: a.trans.as_ref().and_then(|t| t.local_addr().ok()),
        })
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

/// `[::1]` on the port `v4` has (the IPv6 half of the transparent port). Without it only
/// GarliCat over the transparent port is lost, so a failure is a warning, not a refusal.
async fn bind_trans6(v4: &TcpListener) -> Option<Arc<TcpListener>> {
    let port = v4.local_addr().ok()?.port();
    let addr = std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
    match TcpListener::bind(addr).await {
        Ok(l) => Some(Arc::new(l)),
        Err(e) => {
            warn!(
                "[automap] cannot listen on {addr} ({e}): connections to GarliCat addresses \
                 (IPv6) redirected to the transparent port will fail; IPv4 is unaffected"
            );
            None
        }
    }
}
