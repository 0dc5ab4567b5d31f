//! `eepsocks doctor`: check a running setup the way a user would reach it, one line per
//! check, each failure with what to do about it. Exits non-zero when a check fails.

use super::resolve::router_lookup;
use crate::config::Config;
use crate::i2p::sam::SamSocket;
use crate::ports::Ports;
use anyhow::Result;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A router may take this long to find a LeaseSet on the network.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(30);
/// A stream through the proxy: the proxy's own stream timeout is 60 s by default.
const STREAM_TIMEOUT: Duration = Duration::from_secs(70);

#[derive(Default)]
struct Report {
    failed: usize,
    total: usize,
}

impl Report {
    fn ok(&mut self, what: &str) {
        self.total += 1;
        println!("ok    {what}");
    }

    fn fail(&mut self, what: &str, why: &str, hint: &str) {
        self.total += 1;
        self.failed += 1;
        println!("FAIL  {what}: {why}; hint: {hint}");
    }

    fn skip(&mut self, what: &str, why: &str) {
        println!("skip  {what}: {why}");
    }
}

pub async fn doctor(cfg: &Config, name: Option<&str>) -> Result<()> {
    let mut r = Report::default();
    let ports = check_running(&mut r, cfg);
    // The status endpoint says which router the daemon uses and whether its sessions are up.
    let mut router = Router {
        sam: cfg.sam.clone(),
        embedded: false,
    };
    if let Some(p) = &ports {
        check_sessions(&mut r, p, &mut router).await;
    }
    let bridge_up = check_bridge(&mut r, &router).await;
    check_lookup(&mut r, ports.as_ref(), name, &router, bridge_up).await;
    if let Some(n) = name {
        stream_check(&mut r, ports.as_ref(), n).await;
    }
    if r.failed > 0 {
        anyhow::bail!("{} of {} checks failed", r.failed, r.total);
    }
    Ok(())
}

/// The router the daemon uses, as its status endpoint tells (else the config's).
struct Router {
    sam: String,
    embedded: bool,
}

/// Whether eepsocks runs: its ports file.
fn check_running(r: &mut Report, cfg: &Config) -> Option<Ports> {
    let data = cfg.data_dir();
    match Ports::read(&data) {
        Ok(p) => {
            r.ok(&format!(
                "eepsocks runs (pid {}, data directory {})",
                p.pid,
                data.display()
            ));
            Some(p)
        }
        Err(e) => {
            r.fail(
                "eepsocks runs",
                &format!("{e:#}"),
                "start it (eepsocks run, systemctl start eepsocks, or eepsocks demo), or \
                 give doctor the same --data-dir / --config",
            );
            None
        }
    }
}

/// The status endpoint, and each listener's session.
async fn check_sessions(r: &mut Report, p: &Ports, router: &mut Router) {
    match p.status {
        None => r.skip(
            "status endpoint",
            "off (status_listen = \"off\"), so sessions are not checked",
        ),
        Some(a) => match status_json(a).await {
            Ok(v) => {
                r.ok(&format!("status endpoint answers on http://{a}/status"));
                if let Some(s) = v["router"]["sam"].as_str() {
                    router.sam = s.to_string();
                }
                router.embedded = v["router"]["kind"] == "embedded";
                for l in v["listeners"].as_array().into_iter().flatten() {
                    let what = format!(
                        "listener {} on {}: session",
                        l["name"].as_str().unwrap_or("?"),
                        l["listen"].as_str().unwrap_or("?")
                    );
                    if l["session_up"] == true {
                        r.ok(&format!("{what} up"));
                    } else {
                        r.fail(
                            &what,
                            "down",
                            &format!(
                                "the router (SAM bridge {}) has no session for it: is \
                                 the router running? see the checks below and eepsocks' log",
                                router.sam
                            ),
                        );
                    }
                }
            }
            Err(e) => r.fail(
                "status endpoint",
                &format!("{e:#}"),
                "is another program on that port? see eepsocks' log",
            ),
        },
    }
}

/// Whether the SAM bridge answers HELLO.
async fn check_bridge(r: &mut Report, router: &Router) -> bool {
    let (sam, embedded) = (&router.sam, router.embedded);
    let bridge = if embedded {
        format!("embedded router's SAM bridge {sam}")
    } else {
        format!("router's SAM bridge {sam}")
    };
    match tokio::time::timeout(Duration::from_secs(5), SamSocket::connect(sam)).await {
        Ok(Ok(_)) => {
            r.ok(&format!("{bridge} answers"));
            true
        }
        Ok(Err(e)) => {
            r.fail(&bridge, &e.to_string(), bridge_hint(embedded));
            false
        }
        Err(_) => {
            r.fail(&bridge, "no HELLO reply within 5 s", bridge_hint(embedded));
            false
        }
    }
}

/// A b32 lookup asks the router to find a LeaseSet: its tunnels and netDb work.
async fn check_lookup(
    r: &mut Report,
    ports: Option<&Ports>,
    name: Option<&str>,
    router: &Router,
    bridge_up: bool,
) {
    let (sam, embedded) = (&router.sam, router.embedded);
    let own = ports.and_then(|p| {
        p.listeners
            .iter()
            .map(|l| l.identity.as_str())
            .find(|i| i.ends_with(".b32.i2p"))
    });
    let b32 = name.map(host).filter(|h| h.ends_with(".b32.i2p")).or(own);
    match (b32, bridge_up) {
        // emissary answers lookups only inside a session (the proxy's lookups work).
        (Some(_), true) if embedded => r.skip(
            "name lookup",
            "the embedded router answers lookups only inside a session (--name checks a stream)",
        ),
        (Some(b), true) => {
            let what = format!("the router finds {b} (NAMING LOOKUP)");
            match tokio::time::timeout(LOOKUP_TIMEOUT, router_lookup(sam, b)).await {
                Ok(Ok(Ok(_))) => r.ok(&what),
                // emissary answers every sessionless lookup so (it looks up only inside a
                // session); a b32 needs no name lookup to be reached, so the stream check
                // is what tells whether it works.
                Ok(Ok(Err(res))) if res == "KEY_NOT_FOUND" => r.skip(
                    &what,
                    "KEY_NOT_FOUND: this router does not look up a b32 without a session \
                     (emissary never does); streams do not need it, --name checks one",
                ),
                Ok(Ok(Err(res))) => r.fail(
                    &what,
                    &res,
                    "a new router needs minutes to join the network; some routers answer \
                     lookups only inside a session (the proxy's own lookups still work)",
                ),
                Ok(Err(e)) => r.fail(&what, &format!("{e:#}"), "see the router's log"),
                Err(_) => r.fail(
                    &what,
                    "no answer within 30 s",
                    "the router is still building tunnels, or the destination is offline",
                ),
            }
        }
        (None, _) => r.skip(
            "name lookup",
            "no b32 to look up (give --name NAME.b32.i2p)",
        ),
        (_, false) => r.skip("name lookup", "the SAM bridge does not answer"),
    }
}

fn bridge_hint(embedded: bool) -> &'static str {
    if embedded {
        "the embedded router stopped: see eepsocks' log, and restart it"
    } else {
        "start the I2P router with its SAM bridge on (i2pd: [sam] enabled = true; Java \
         I2P: the SAM application bridge), or point sam = / --sam at it"
    }
}

async fn status_json(a: std::net::SocketAddr) -> Result<serde_json::Value> {
    let body = tokio::time::timeout(Duration::from_secs(5), super::status::fetch(a))
        .await
        .map_err(|_| anyhow::anyhow!("no answer within 5 s"))??;
    Ok(serde_json::from_str(&body)?)
}

/// `host` of `host[:port]`.
fn host(name: &str) -> &str {
    name.rsplit_once(':').map(|x| x.0).unwrap_or(name)
}

/// A SOCKS5 CONNECT to `name` (port 80 unless `name:port`) through the first listener
/// that takes clients without a login, as an application would.
async fn stream_check(r: &mut Report, ports: Option<&Ports>, name: &str) {
    let (h, port) = match name.rsplit_once(':') {
        Some((h, p)) => match p.parse::<u16>() {
            Ok(p) => (h, p),
            Err(_) => (name, 80),
        },
        None => (name, 80),
    };
    let what = format!("a stream to {h}:{port} through SOCKS");
    let Some(l) = ports.and_then(|p| {
        p.listeners
            .iter()
            .find(|l| l.protocols.iter().any(|p| p == "socks4a"))
    }) else {
        r.skip(&what, "no running listener without a login");
        return;
    };
    let what = format!("{what} on {}", l.listen);
    match tokio::time::timeout(STREAM_TIMEOUT, socks5_connect(l.listen, h, port)).await {
        Ok(Ok(0)) => r.ok(&what),
        Ok(Ok(code)) => r.fail(&what, &format!("reply {code:#04x}"), reply_hint(code)),
        Ok(Err(e)) => r.fail(
            &what,
            &e.to_string(),
            "is the listener up? see eepsocks' log",
        ),
        Err(_) => r.fail(
            &what,
            "no reply within 70 s",
            "the router is still building tunnels; try again in a minute",
        ),
    }
}

fn reply_hint(code: u8) -> &'static str {
    match code {
        0x02 => "not an I2P name: eepsocks reaches .i2p names and b32 addresses only",
        0x04 => {
            "the name is in no address book (eepsocks addressbook add NAME DEST) or the \
             site is offline"
        }
        0x05 => "the site refused the stream (nothing listens on that port)",
        0x06 => "timed out: tunnels may still be building, or the site is offline",
        _ => "see eepsocks' log (EEPSOCKS_LOG=debug shows each stream)",
    }
}

async fn socks5_connect(proxy: std::net::SocketAddr, host: &str, port: u16) -> std::io::Result<u8> {
    let mut s = tokio::net::TcpStream::connect(proxy).await?;
    s.write_all(&[5, 1, 0]).await?;
    let mut m = [0u8; 2];
    s.read_exact(&mut m).await?;
    if m != [5, 0] {
        return Err(std::io::Error::other(format!(
            "the listener wants a login (method {:#04x})",
            m[1]
        )));
    }
    let len = u8::try_from(host.len()).map_err(|_| std::io::Error::other("name too long"))?;
    let mut req = vec![5, 1, 0, 3, len];
    req.extend_from_slice(host.as_bytes());
    req.extend_from_slice(&port.to_be_bytes());
    s.write_all(&req).await?;
    let mut rep = [0u8; 4];
    s.read_exact(&mut rep).await?;
    Ok(rep[1])
}
