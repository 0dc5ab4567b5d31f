//! Automap's ports for the automap listener: the DNS port (UDP and TCP on one address)
//! and the transparent port, kept across reloads while their addresses stay.

use super::ports::PortAutomap;
use crate::automap::server::{Dns, DnsLimits};
use crate::config::{AutomapConfig, Config};
use crate::i2p::SamRouter;
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
        Ok(Some(AutomapPorts {
            config: a.clone(),
            dns,
            trans,
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
        if let Some(t) = &self.trans {
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
        let show = |x: Option<std::net::SocketAddr>| x.map_or("off".to_string(), |a| a.to_string());
        info!(
            "automap for listener {name}: virtual addresses in {}, DNS on {}, transparent port on {}",
            a.network,
            show(a.dns_listen),
            show(a.trans_listen)
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
