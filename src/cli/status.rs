//! `eepsocks status`: the running proxy's status endpoint, printed. `eepsocks b32`: a
//! listener's b32. Both find the running daemon through its ports file.

use crate::config::Config;
use crate::daemon::ports::Ports;
use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub async fn status(cfg: &Config) -> Result<()> {
    let a = match Ports::read(&cfg.data_dir()) {
        Ok(p) => p
            .status
            .context("the running eepsocks has no status endpoint (status_listen = \"off\")")?,
        // A daemon older than the ports file: the configured address.
        Err(e) => match cfg.status_addr()? {
            Some(a) => {
                tracing::debug!("{e:#}; trying the configured status address {a}");
                a
            }
            None => return Err(e),
        },
    };
    print!("{}", fetch(a).await?);
    Ok(())
}

/// The JSON body of the status endpoint at `a`.
pub(super) async fn fetch(a: std::net::SocketAddr) -> Result<String> {
    let mut s = tokio::net::TcpStream::connect(a)
        .await
        .with_context(|| format!("no eepsocks status endpoint at {a}: is it running?"))?;
    s.write_all(format!("GET /status HTTP/1.0\r\nHost: {a}\r\n\r\n").as_bytes())
        .await?;
    let mut v = Vec::new();
    s.read_to_end(&mut v).await?;
    let text = String::from_utf8_lossy(&v);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or(("", &text));
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        anyhow::bail!(
            "the status endpoint at {a} answered {:?}",
            head.lines().next()
        );
    }
    Ok(body.to_string())
}

pub fn b32(cfg: &Config, listener: Option<&str>) -> Result<()> {
    let ports = Ports::read(&cfg.data_dir())?;
    println!("{}", pick(&ports, listener)?);
    Ok(())
}

/// The b32 of the named listener, or of the only one.
fn pick<'a>(ports: &'a Ports, name: Option<&str>) -> Result<&'a str> {
    let names = || {
        let n: Vec<&str> = ports.listeners.iter().map(|l| l.name.as_str()).collect();
        n.join(", ")
    };
    let l = match name {
        Some(n) => ports
            .listeners
            .iter()
            .find(|l| l.name == n)
            .with_context(|| format!("no listener {n:?} (running: {})", names()))?,
        None => match ports.listeners.as_slice() {
            [l] => l,
            [] => anyhow::bail!("the running eepsocks has no listeners"),
            _ => anyhow::bail!(
                "{} listeners run ({}): name one, e.g. eepsocks b32 {}",
                ports.listeners.len(),
                names(),
                ports.listeners[0].name
            ),
        },
    };
    if l.identity == "per-username" {
        anyhow::bail!(
            "listener {} has one identity per SOCKS username (isolate = \"username\"), \
             so no single b32",
            l.name
        );
    }
    Ok(&l.identity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::ports::PortListener;

    fn listener(name: &str, identity: &str) -> PortListener {
        PortListener {
            name: name.into(),
            listen: "127.0.0.1:4447".parse().unwrap(),
            protocols: vec!["socks5".into()],
            identity: identity.into(),
        }
    }

    #[test]
    fn picks_one_listener() {
        let mut p = Ports {
            listeners: vec![listener("main", "abc.b32.i2p")],
            status: None,
            automap: None,
            pid: 1,
        };
        assert_eq!(pick(&p, None).unwrap(), "abc.b32.i2p");
        assert_eq!(pick(&p, Some("main")).unwrap(), "abc.b32.i2p");
        let e = pick(&p, Some("other")).unwrap_err().to_string();
        assert!(e.contains("no listener \"other\""), "{e}");
        p.listeners.push(listener("users", "per-username"));
        let e = pick(&p, None).unwrap_err().to_string();
        assert!(e.contains("name one"), "{e}");
        let e = pick(&p, Some("users")).unwrap_err().to_string();
        assert!(e.contains("no single b32"), "{e}");
    }
}
