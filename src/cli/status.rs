//! `eepsocks status`: the running proxy's status endpoint, printed.

use crate::config::Config;
use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub async fn status(cfg: &Config) -> Result<()> {
    let a = cfg.status_addr()?.context("status_listen is off")?;
    let mut s = tokio::net::TcpStream::connect(a)
        .await
        .with_context(|| format!("no eepsocks status endpoint at {a}: is it running?"))?;
    s.write_all(format!("GET /status HTTP/1.0\r\nHost: {a}\r\n\r\n").as_bytes())
        .await?;
    let mut v = Vec::new();
    s.read_to_end(&mut v).await?;
    let text = String::from_utf8_lossy(&v);
    print!(
        "{}",
        text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or(&text)
    );
    Ok(())
}
