//! A small offline I2P network of emissary routers on loopback, for `eepsocks demo` and
//! the tests. Private net id, `local_network` on (loopback peers, all hops on one address),
//! every socket bound on loopback (`loopback_only`).
//!
//! Routers are "pre-seeded": each is started once to learn its RouterInfo and port, then
//! restarted knowing every other one. Bootstrapping one by one instead leaves the early
//! routers unaware of the late ones (netDb lookups fail with no floodfill known) and costs
//! seconds of timeouts.

use crate::{Embedded, Settings, Transport};
use anyhow::Result;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Spec {
    /// Routers 0..floodfills are floodfills.
    pub floodfills: usize,
    /// Routers after them, without SAM.
    pub relays: usize,
    /// Routers after those, each with a SAM bridge.
    pub sam_routers: usize,
    pub ssu2: bool,
    /// Each router's data directory is `dir/r<i>`.
    pub dir: PathBuf,
    pub net_id: u8,
}

pub struct Devnet {
    pub routers: Vec<Embedded>,
    pub spec: Spec,
}

impl Spec {
    pub fn settings(&self, i: usize) -> Settings {
        let t = Transport {
            host: Some(Ipv4Addr::LOCALHOST),
            publish: true,
            ..Transport::default()
        };
        Settings {
            data_dir: Some(self.dir.join(format!("r{i}"))),
            net_id: Some(self.net_id),
            ntcp2: (!self.ssu2).then(|| t.clone()),
            ssu2: self.ssu2.then_some(t),
            bandwidth: Some(1 << 30),
            floodfill: i < self.floodfills,
            transit_tunnels: Some(5000),
            local_network: true,
            exploratory_hops: Some(1),
            threads: 1,
            sam: i >= self.floodfills + self.relays,
            loopback_only: true,
            ..Settings::default()
        }
    }

    /// Settings for one more router joining this network (e.g. the proxy's own), with the
    /// network's reseed file.
    pub fn joiner(&self, data_dir: &Path) -> Settings {
        let mut s = self.settings(usize::MAX);
        s.data_dir = Some(data_dir.into());
        s.floodfill = false;
        s.sam = true;
        s.reseed_file = Some(self.reseed_file());
        s.reseed_threshold = usize::MAX;
        s
    }

    pub fn reseed_file(&self) -> PathBuf {
        self.dir.join("reseed.zip")
    }
}

impl Devnet {
    pub async fn start(spec: Spec) -> Result<Devnet> {
        let n = spec.floodfills + spec.relays + spec.sam_routers;
        // Pass 1: keys, ports and RouterInfos.
        let mut infos = Vec::with_capacity(n);
        for i in 0..n {
            let mut s = spec.settings(i);
            s.sam = false;
            let r = Embedded::start(s).await?;
            infos.push(r.router_info.clone());
            r.stop().await;
        }
        write_reseed_zip(&spec.reseed_file(), &infos)?;
        // Pass 2: the real routers, each knowing all the others.
        let mut routers = Vec::with_capacity(n);
        for i in 0..n {
            let mut s = spec.settings(i);
            s.routers = infos
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, ri)| ri.clone())
                .collect();
            routers.push(Embedded::start(s).await?);
        }
        Ok(Devnet { routers, spec })
    }

    /// SAM bridges, in router order.
    pub fn sam(&self) -> Vec<std::net::SocketAddr> {
        self.routers.iter().filter_map(|r| r.sam).collect()
    }

    pub async fn stop(self) {
        for r in self.routers {
            r.stop().await;
        }
    }
}

/// A reseed zip (`routerInfo-<n>.dat` entries), the format the reseed servers serve inside
/// their su3 files.
pub fn write_reseed_zip(path: &Path, infos: &[Vec<u8>]) -> Result<()> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (i, ri) in infos.iter().enumerate() {
        w.start_file(
            format!("routerInfo-{i}.dat"),
            zip::write::SimpleFileOptions::default(),
        )?;
        w.write_all(ri)?;
    }
    let bytes = w.finish()?.into_inner();
    crate::store::write_atomic(path, &bytes)
}
