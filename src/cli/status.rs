//! `eepsocks status`: the running proxy's status endpoint, printed. `eepsocks b32`: a
//! listener's b32. Both find the running daemon through its ports file.

use crate::config::Config;
use crate::ports::Ports;
use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub async fn status(cfg: &Config, json: bool) -> Result<()> {
    let ports = Ports::read(&cfg.data_dir());
    let a = match &ports {
        Ok(p) => p
            .status
            .context("the running eepsocks has no status endpoint (status_listen = \"off\")")?,
        // A daemon older than the ports file: the configured address.
        Err(e) => match cfg.status_addr()? {
            Some(a) => {
                tracing::debug!("{e:#}; trying the configured status address {a}");
                a
            }
            None => return Err(anyhow::anyhow!("{e:#}")),
        },
    };
    let body = fetch(a).await.map_err(|e| match &ports {
        // Nothing said an instance runs: say how to start one, not only what failed.
        Err(not_running) => {
            anyhow::anyhow!("{e:#}; {not_running:#}; start one with eepsocks run or eepsocks demo")
        }
        Ok(_) => e,
    })?;
    if json {
        print!("{body}");
        return Ok(());
    }
    let doc: serde_json::Value = serde_json::from_str(&body)
        .with_context(|| format!("the status endpoint at {a} sent no JSON document"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    print!("{}", table(&doc, ports.ok().map(|p| p.pid), a, now));
    Ok(())
}

/// The status document as a short table for a person: one block per listener.
fn table(doc: &serde_json::Value, pid: Option<u32>, at: std::net::SocketAddr, now: u64) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let str_of = |v: &serde_json::Value| v.as_str().unwrap_or("?").to_string();
    let _ = writeln!(
        o,
        "eepsocks{}: router {} (SAM {}), status http://{at}/status",
        pid.map(|p| format!(" pid {p}")).unwrap_or_default(),
        str_of(&doc["router"]["kind"]),
        str_of(&doc["router"]["sam"]),
    );
    for l in doc["listeners"].as_array().into_iter().flatten() {
        let n = |k: &str| l[k].as_u64().unwrap_or(0);
        let mut session = str_of(&l["session"]);
        if let Some(since) = l["session_since"].as_u64() {
            let _ = write!(session, " for {}", ago(now.saturating_sub(since)));
        }
        let _ = writeln!(
            o,
            "\nlistener {} on {}",
            str_of(&l["name"]),
            str_of(&l["listen"])
        );
        let _ = writeln!(o, "  identity  {}", str_of(&l["identity"]));
        let _ = writeln!(o, "  session   {session}");
        let _ = writeln!(
            o,
            "  streams   {} open, {} opened, {} connections",
            n("streams_active"),
            n("streams_opened"),
            n("connections")
        );
        let _ = writeln!(
            o,
            "  bytes     {} up, {} down",
            bytes(n("bytes_up")),
            bytes(n("bytes_down"))
        );
        let failed: Vec<String> = l["replies"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, v)| *k != "succeeded" && v.as_u64().unwrap_or(0) > 0)
            .map(|(k, v)| format!("{} {}", k.replace('_', " "), v))
            .collect();
        if !failed.is_empty() {
            let _ = writeln!(o, "  refused   {}", failed.join(", "));
        }
        // An `eepsocks exec` (docs/exec.md): what its program was refused so far.
        if l["listen"] == crate::exec::control::EXEC_LISTEN {
            let _ = writeln!(
                o,
                "  exec      {} clearnet connections refused, {} non-I2P name queries refused",
                n("transparent_refused"),
                n("dns_refused")
            );
        }
        if let Some(e) = l["session_error"].as_str() {
            let _ = writeln!(o, "  last error {e}");
        }
    }
    o
}

fn ago(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs} s"),
        120..=7199 => format!("{} min", secs / 60),
        _ => format!("{} h", secs / 3600),
    }
}

fn bytes(n: u64) -> String {
    match n {
        0..=9_999 => format!("{n} B"),
        10_000..=9_999_999 => format!("{} kB", n / 1000),
        _ => format!("{} MB", n / 1_000_000),
    }
}

/// The JSON body of the status endpoint at `a`.
pub(super) async fn fetch(a: std::net::SocketAddr) -> Result<String> {
    let mut s = tokio::net::TcpStream::connect(a)
        .await
        .with_context(|| format!("no eepsocks status endpoint answers at {a}"))?;
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
    use crate::ports::PortListener;

    fn listener(name: &str, identity: &str) -> PortListener {
        PortListener {
            name: name.into(),
            listen: "127.0.0.1:4447".parse().unwrap(),
            protocols: vec!["socks5".into()],
            identity: identity.into(),
        }
    }

    #[test]
    fn table_shows_session_streams_bytes_and_errors() {
        let doc: serde_json::Value = serde_json::from_str(
            r#"{"router":{"kind":"embedded","sam":"127.0.0.1:7000"},"listeners":[
            {"name":"main","listen":"127.0.0.1:4447","identity":"abc.b32.i2p","session_up":false,
             "session":"down","session_since":940,"session_error":"router said <x>",
             "connections":7,"streams_opened":5,"streams_active":2,"bytes_up":1234,
             "bytes_down":12345678,"replies":{"succeeded":5,"not_allowed":2}}]}"#,
        )
        .unwrap();
        let t = table(&doc, Some(42), "127.0.0.1:4446".parse().unwrap(), 1000);
        for want in [
            "pid 42: router embedded (SAM 127.0.0.1:7000)",
            "listener main on 127.0.0.1:4447",
            "identity  abc.b32.i2p",
            "session   down for 60 s",
            "2 open, 5 opened, 7 connections",
            "1234 B up, 12 MB down",
            "refused   not allowed 2",
            "last error router said <x>",
        ] {
            assert!(t.contains(want), "no {want:?} in\n{t}");
        }
    }

    /// An exec's row says what its program was refused.
    #[test]
    fn table_shows_an_execs_refusals() {
        let doc: serde_json::Value = serde_json::from_str(
            r#"{"router":{"kind":"sam","sam":"127.0.0.1:7656"},"listeners":[
            {"name":"exec-3","listen":"exec","identity":"x.b32.i2p","session":"up",
             "transparent_refused":4,"dns_refused":9,"replies":{}}]}"#,
        )
        .unwrap();
        let t = table(&doc, None, "127.0.0.1:4446".parse().unwrap(), 0);
        let want = "exec      4 clearnet connections refused, 9 non-I2P name queries refused";
        assert!(
            t.contains("listener exec-3 on exec") && t.contains(want),
            "{t}"
        );
    }

    #[test]
    fn picks_one_listener() {
        let mut p = Ports {
            listeners: vec![listener("main", "abc.b32.i2p")],
            status: None,
            automap: None,
            data_dir: None,
            sam: None,
            control: None,
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
