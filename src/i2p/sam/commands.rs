//! Sessionless SAM commands: `DEST GENERATE` and `STREAM FORWARD`.

use super::error::SamError;
use super::wire::SamSocket;
use crate::destination::PrivateKeys;

/// Ask the router for a new destination (SAM `DEST GENERATE`).
pub async fn generate_keys(addr: &str, sig_type: u16) -> Result<PrivateKeys, SamError> {
    generate_keys_on(&mut SamSocket::connect(addr).await?, sig_type).await
}

/// `DEST GENERATE` on a connection the caller has open (and asks other things on).
pub async fn generate_keys_on(c: &mut SamSocket, sig_type: u16) -> Result<PrivateKeys, SamError> {
    let r = c
        .command(&format!("DEST GENERATE SIGNATURE_TYPE={sig_type}"))
        .await?;
    r.expect("DEST", "REPLY")?;
    let priv_b64 = r
        .get("PRIV")
        .ok_or_else(|| SamError::Protocol("DEST REPLY without PRIV".into()))?;
    PrivateKeys::from_base64(priv_b64)
        .map_err(|e| SamError::Protocol(format!("router's new keys do not parse: {e}")))
}

/// `STREAM FORWARD`: the router connects to 127.0.0.1:`port` for every incoming stream of
/// the session (`silent`: without the caller's destination as a first line). Lasts while
/// the returned task runs; it ends when the router drops the forward.
pub async fn forward(
    sam_addr: &str,
    session_id: &str,
    port: u16,
    silent: bool,
) -> Result<tokio::task::JoinHandle<()>, SamError> {
    let mut c = SamSocket::connect(sam_addr).await?;
    let r = c
        .command(&format!(
            "STREAM FORWARD ID={session_id} PORT={port} HOST=127.0.0.1 SILENT={silent}"
        ))
        .await?;
    r.expect("STREAM", "STATUS")?;
    r.ok()?;
    Ok(tokio::spawn(async move {
        let _ = c.read_line().await;
    }))
}
