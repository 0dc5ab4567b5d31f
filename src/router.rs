//! The I2P side behind a small trait: open a stream to a target. Streams, destinations and
//! keys belong to the router; this is the only place that knows how to ask it.

use crate::identity::{Lease, Pool};
use crate::naming::Target;
use crate::sam::SamError;
use crate::socks::{Credentials, Reply};
use crate::subscriptions::Books;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpStream;

/// An open stream and any bytes the peer already sent. Every backend hands over a TCP
/// socket (SAM streams are sockets), which lets the relay wait for readiness without
/// holding buffers while idle.
pub struct Opened {
    pub stream: TcpStream,
    pub early: Vec<u8>,
    /// Keeps the identity that opened the stream alive while the stream is.
    pub hold: Option<Lease>,
}

/// Why a stream could not be opened, in terms a SOCKS reply can express.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The name is not in any address book the router knows.
    #[error("name not found in the address book")]
    NameNotFound,
    /// The destination is known but cannot be reached (no LeaseSet, peer gone).
    #[error("destination unreachable: {0}")]
    Unreachable(String),
    /// The router or our own stream-open deadline gave up waiting.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The router is down, or the session is gone.
    #[error("router unavailable: {0}")]
    Router(String),
}

impl OpenError {
    /// The SOCKS5 reply code for this failure (documented in docs/protocol.md).
    pub fn reply(&self) -> Reply {
        match self {
            OpenError::NameNotFound | OpenError::Unreachable(_) => Reply::HostUnreachable,
            OpenError::Timeout(_) => Reply::TtlExpired,
            OpenError::Router(_) => Reply::GeneralFailure,
        }
    }
}

pub trait Router: Send + Sync + 'static {
    /// Resolve `target` as needed and open a stream to its `port`, as the identity that
    /// serves a client with these credentials.
    fn open(
        &self,
        who: Option<&Credentials>,
        target: &Target,
        port: u16,
    ) -> impl Future<Output = Result<Opened, OpenError>> + Send;

    /// Check that a target can be named (for Tor's RESOLVE); hashes always can.
    fn resolve(
        &self,
        who: Option<&Credentials>,
        target: &Target,
    ) -> impl Future<Output = Result<(), OpenError>> + Send;
}

/// Any router with a SAM v3 bridge (i2pd, Java I2P, emissary), with the listener's
/// identities and the user's address book.
pub struct SamRouter {
    pub pool: Arc<Pool>,
    pub book: Arc<Books>,
}

impl SamRouter {
    /// A name's destination: the user's book, then subscriptions, then the router's (through the
    /// identity that will use it, so lookups are isolated like streams).
    async fn lookup(&self, lease: &Lease, name: &str) -> Result<String, OpenError> {
        match self.book.get(name).map(|d| d.sam_dest()) {
            Some(d) => Ok(d),
            None => Ok(lease
                .session
                .lookup(name)
                .await
                .map_err(|e| map_sam(e, true))?
                .to_base64()),
        }
    }
}

impl Router for SamRouter {
    async fn resolve(&self, who: Option<&Credentials>, target: &Target) -> Result<(), OpenError> {
        if let Target::Name(name) = target {
            let lease = self.pool.lease(who).await.map_err(|e| map_sam(e, false))?;
            self.lookup(&lease, name).await?;
        }
        Ok(())
    }

    async fn open(
        &self,
        who: Option<&Credentials>,
        target: &Target,
        port: u16,
    ) -> Result<Opened, OpenError> {
        let lease = self.pool.lease(who).await.map_err(|e| map_sam(e, false))?;
        let dest = match target {
            // The router resolves hashes itself (a LeaseSet lookup): hand it the name.
            Target::B32(name) | Target::B33(name) => name.clone(),
            Target::Name(name) => self.lookup(&lease, name).await?,
        };
        let (stream, early) = lease
            .session
            .connect(&dest, port)
            .await
            .map_err(|e| map_sam(e, false))?;
        Ok(Opened {
            stream,
            early,
            hold: Some(lease),
        })
    }
}

/// SAM results to open errors. `lookup` marks NAMING LOOKUP replies.
fn map_sam(e: SamError, lookup: bool) -> OpenError {
    match e.result() {
        Some("KEY_NOT_FOUND") if lookup => OpenError::NameNotFound,
        Some("INVALID_KEY") if lookup => OpenError::NameNotFound,
        Some("CANT_REACH_PEER" | "PEER_NOT_FOUND" | "INVALID_KEY" | "KEY_NOT_FOUND") => {
            OpenError::Unreachable(e.to_string())
        }
        Some("TIMEOUT") => OpenError::Timeout(e.to_string()),
        _ => OpenError::Router(e.to_string()),
    }
}

/// Opens plain TCP to one fixed address whatever the target. For measuring and testing the
/// front end alone (benchmarks, relay tests); the command line never uses it.
pub struct DirectRouter {
    pub addr: std::net::SocketAddr,
}

impl Router for DirectRouter {
    async fn resolve(&self, _who: Option<&Credentials>, _target: &Target) -> Result<(), OpenError> {
        Ok(())
    }

    async fn open(
        &self,
        _who: Option<&Credentials>,
        _target: &Target,
        _port: u16,
    ) -> Result<Opened, OpenError> {
        let stream = TcpStream::connect(self.addr)
            .await
            .map_err(|e| OpenError::Router(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        Ok(Opened {
            stream,
            early: Vec::new(),
            hold: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(r: &str) -> SamError {
        SamError::Refused {
            result: r.into(),
            message: None,
        }
    }

    #[test]
    fn sam_results_map_to_replies() {
        let cases = [
            (refused("KEY_NOT_FOUND"), true, Reply::HostUnreachable),
            (refused("INVALID_KEY"), true, Reply::HostUnreachable),
            (refused("CANT_REACH_PEER"), false, Reply::HostUnreachable),
            (refused("PEER_NOT_FOUND"), false, Reply::HostUnreachable),
            (refused("INVALID_KEY"), false, Reply::HostUnreachable),
            (refused("TIMEOUT"), false, Reply::TtlExpired),
            (refused("INVALID_ID"), false, Reply::GeneralFailure),
            (refused("I2P_ERROR"), false, Reply::GeneralFailure),
            (SamError::NoSession, false, Reply::GeneralFailure),
            (
                SamError::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
                false,
                Reply::GeneralFailure,
            ),
        ];
        for (e, lookup, want) in cases {
            let d = format!("{e}");
            assert_eq!(map_sam(e, lookup).reply(), want, "{d}");
        }
    }
}
