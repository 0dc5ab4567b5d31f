//! SAM v3 client: `wire` (the line protocol), `session` (a session kept alive by a task
//! that owns its control connection; one connection per stream), and the sessionless
//! commands below.

pub mod caps;
pub mod datagram;
mod session;
mod wire;

pub use datagram::{DatagramConfig, DatagramSession};
pub use session::{Created, Keys, Session, SessionConfig, SessionState, CREATE_TIMEOUT};
pub use wire::{quote, set_login, ReplyLine, SamLogin, SamSocket, MAX_COMMAND};

use crate::destination::PrivateKeys;

#[derive(Debug, thiserror::Error)]
pub enum SamError {
    #[error("cannot reach the SAM bridge: {0}")]
    Io(#[from] std::io::Error),
    #[error("SAM protocol error: {0}")]
    Protocol(String),
    /// The router answered with a RESULT other than OK.
    #[error("router said {result}{}", .message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Refused {
        result: String,
        message: Option<String>,
    },
    #[error("the SAM session is not available")]
    NoSession,
    /// The session is down (router unreachable or lost); being recreated.
    #[error("the router is unavailable: {0}")]
    Down(String),
    /// The router is still creating the session (building tunnels): it works, but cannot
    /// carry streams yet.
    #[error("the router is not ready: {0}")]
    NotReady(String),
    /// The router did not answer a command within our deadline for it.
    #[error("no answer from the router: {0}")]
    Deadline(String),
    /// The bridge wants a login we do not have, or refused ours.
    #[error("{0}")]
    Login(String),
    /// The router closed a stream it was asked to open while the session stayed up: the
    /// destination could not be reached (emissary does this when no LeaseSet is found).
    #[error("{0}")]
    Unreachable(String),
}

impl SamError {
    pub fn result(&self) -> Option<&str> {
        match self {
            SamError::Refused { result, .. } => Some(result),
            _ => None,
        }
    }
}

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
