//! The `Router` trait, the one face of the I2P side the proxy sees: open a stream to a
//! target, resolve a name, open a datagram session; and its errors as SOCKS replies.

use super::identity::Lease;
use super::sam::DatagramSession;
use crate::naming::Target;
use crate::socks::{Credentials, Reply};
use std::future::Future;
use tokio::net::TcpStream;

/// An open stream and any bytes the peer already sent. Every backend hands over a TCP
/// socket (SAM streams are sockets), which lets the relay wait for readiness without
/// holding buffers while idle.
pub struct Opened {
    pub stream: TcpStream,
    pub early: Vec<u8>,
    /// Keeps the identity that opened the stream alive while the stream is.
    pub hold: Option<Lease>,
    /// Whether a half-close (shutdown of writing) may be passed on to `stream`. False for
    /// SAM stream sockets: i2pd and emissary end the whole stream at its FIN.
    pub half_close: bool,
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
    /// A limit of this proxy (documented in docs/reliability.md) was reached.
    #[error("limit reached: {0}")]
    Limit(String),
    /// The router is down, or the session is gone.
    #[error("router unavailable: {0}")]
    Router(String),
    /// The router works but has not finished creating the identity's session yet.
    #[error("router not ready: {0}")]
    NotReady(String),
}

impl OpenError {
    /// The SOCKS5 reply code for this failure (documented in docs/protocol.md).
    pub fn reply(&self) -> Reply {
        match self {
            OpenError::NameNotFound | OpenError::Unreachable(_) => Reply::HostUnreachable,
            OpenError::Timeout(_) => Reply::TtlExpired,
            OpenError::Router(_) | OpenError::Limit(_) | OpenError::NotReady(_) => {
                Reply::GeneralFailure
            }
        }
    }

    /// The reply on listeners with `extended_errors` (Tor's codes, docs/protocol.md).
    /// Routers do not say whether an encrypted LeaseSet needed client authorization, so
    /// Tor's 0xF4/0xF5 are never sent.
    pub fn extended_reply(&self) -> Reply {
        match self {
            OpenError::Unreachable(_) => Reply::LeaseSetNotFound,
            OpenError::Timeout(_) => Reply::OpenTimedOut,
            other => other.reply(),
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

    /// The GarliCat address of `target` (a name is looked up), which this identity then
    /// knows. None: the target has no destination hash to map (a b33 address).
    fn garlicat(
        &self,
        who: Option<&Credentials>,
        target: &Target,
    ) -> impl Future<Output = Result<Option<std::net::Ipv6Addr>, OpenError>> + Send {
        let _ = (who, target);
        async { Ok(None) }
    }

    /// The destination a GarliCat address stands for, among those this identity knows.
    fn garlicat_target(
        &self,
        who: Option<&Credentials>,
        bits: &crate::naming::garlicat::Bits,
    ) -> crate::naming::garlicat::Found {
        let _ = (who, bits);
        crate::naming::garlicat::Found::None
    }

    /// A new datagram identity for one UDP association (SOCKS UDP ASSOCIATE), serving a
    /// client with these credentials. Routers without datagrams refuse.
    fn datagrams(
        &self,
        who: Option<&Credentials>,
    ) -> impl Future<Output = Result<DatagramSession, OpenError>> + Send {
        let _ = who;
        async { Err(OpenError::Router("this router has no datagrams".into())) }
    }

    /// The full destination a datagram to `target` is sent to, looked up through `dg`
    /// (cached there) and the address books.
    fn datagram_dest(
        &self,
        dg: &DatagramSession,
        target: &Target,
    ) -> impl Future<Output = Result<std::sync::Arc<str>, OpenError>> + Send {
        let _ = (dg, target);
        async { Err(OpenError::Router("this router has no datagrams".into())) }
    }
}
