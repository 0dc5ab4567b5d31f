//! What the handshake yields and answers with: the request (version, command, address,
//! credentials), the reply codes and their encodings, and the codec's steps and errors.

use super::http_answer;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Upper bound on any single handshake message we accept (HTTP request heads included).
pub const MAX_HANDSHAKE_BYTES: usize = 4096;

/// The longest name SOCKS5 can carry; SOCKS4a names are held to the same bound.
pub(super) const MAX_NAME: usize = 255;
/// SOCKS4 user ids: same bound as RFC 1929 usernames.
pub(super) const MAX_USERID: usize = 255;

/// Shown to an HTTP request on the SOCKS port that is neither CONNECT nor for an `http://`
/// URL, if it names a loopback host: someone opened the proxy's address in a browser.
pub const HTTP_NOT_A_PROXY: &[u8] = b"HTTP/1.0 501 Not Implemented\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Connection: close\r\n\
\r\n\
This is eepsocks, a SOCKS 4a/5 and HTTP proxy into I2P. This address is the proxy,\n\
not a web site: set it as your proxy instead of opening it.\n\
As a SOCKS5 proxy, with remote DNS (for curl: --socks5-hostname, or\n\
-x socks5h://127.0.0.1:4447), or as an HTTP proxy for http:// URLs (for curl:\n\
-x http://127.0.0.1:4447 http://name.i2p/; add -p to tunnel through HTTP CONNECT).\n\
It reaches .i2p names only.\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// SOCKS4 with an IPv4 destination.
    V4,
    /// SOCKS4a: DSTIP 0.0.0.x (x != 0) and a hostname after the user id.
    V4a,
    V5,
    /// A connection redirected to the transparent port: no handshake and no replies (a
    /// failure closes the connection).
    Transparent,
    /// HTTP CONNECT or a request for an `http://` URL, HTTP/1.`minor` (0 or 1): replies are
    /// HTTP responses in that version.
    Http {
        minor: u8,
        /// The client accepts text/html (a browser): error replies are a page.
        html: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Connect,
    Bind,
    UdpAssociate,
    /// Tor extension 0xF0: resolve a name, reply with an address.
    Resolve,
    /// Tor extension 0xF1: reverse lookup.
    ResolvePtr,
    /// HTTP only: a request for an `http://` URL (absolute form, RFC 9112 §3.2.2) to be
    /// forwarded. The request itself is the start of the stream, and the server's response
    /// is the reply.
    HttpForward,
    Other(u8),
}

impl Command {
    pub(super) fn from_u8(b: u8) -> Command {
        match b {
            1 => Command::Connect,
            2 => Command::Bind,
            3 => Command::UdpAssociate,
            0xF0 => Command::Resolve,
            0xF1 => Command::ResolvePtr,
            other => Command::Other(other),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    /// A host name as sent by the client. Invalid UTF-8 is replaced (U+FFFD) so that
    /// name validation downstream refuses it; nothing here trusts the bytes.
    Name(String),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Ipv4(a) => write!(f, "{a}"),
            Address::Ipv6(a) => write!(f, "[{a}]"),
            Address::Name(n) => write!(f, "{}", n.escape_debug()),
        }
    }
}

/// Credentials the client sent: the RFC 1929 username/password, HTTP Basic's user-id and
/// password, or the SOCKS4 user id (as username, with an empty password). Kept for
/// identity isolation; never logged.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    pub username: Vec<u8>,
    pub password: Vec<u8>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print secrets, not even in debug output.
        write!(
            f,
            "Credentials {{ username: {} bytes, password: {} bytes }}",
            self.username.len(),
            self.password.len()
        )
    }
}

/// SOCKS5 reply codes (RFC 1928 §6). SOCKS4 maps success to 90 and everything else to 91.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Succeeded,
    GeneralFailure,
    NotAllowed,
    NetworkUnreachable,
    HostUnreachable,
    ConnectionRefused,
    TtlExpired,
    CommandNotSupported,
    AddressTypeNotSupported,
    /// Tor's extended codes (`extended_errors = true` only). 0xF0: the destination's
    /// LeaseSet was not found.
    LeaseSetNotFound,
    /// 0xF6: a malformed .b32.i2p (or b33) address.
    BadAddress,
    /// 0xF7: the router did not open the stream in time.
    OpenTimedOut,
}

impl Reply {
    pub fn code(self) -> u8 {
        match self {
            Reply::Succeeded => 0x00,
            Reply::GeneralFailure => 0x01,
            Reply::NotAllowed => 0x02,
            Reply::NetworkUnreachable => 0x03,
            Reply::HostUnreachable => 0x04,
            Reply::ConnectionRefused => 0x05,
            Reply::TtlExpired => 0x06,
            Reply::CommandNotSupported => 0x07,
            Reply::AddressTypeNotSupported => 0x08,
            Reply::LeaseSetNotFound => 0xF0,
            Reply::BadAddress => 0xF6,
            Reply::OpenTimedOut => 0xF7,
        }
    }

    /// The HTTP status an HTTP CONNECT client gets for this reply (by code, so eepsocks'
    /// own codes map too): 200, 403, 404, 501, 502 or 504.
    pub fn http_status(self) -> u16 {
        http_answer::status(self.code()).0
    }

    /// SOCKS4 CD field: 90 granted, 91 rejected or failed.
    pub fn socks4_code(self) -> u8 {
        if self == Reply::Succeeded {
            90
        } else {
            91
        }
    }
}

/// A complete, well-formed request. Whether it is allowed is the caller's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub version: Version,
    pub command: Command,
    pub address: Address,
    pub port: u16,
    /// None when the client used SOCKS5 "no authentication" or sent HTTP CONNECT without
    /// Basic credentials.
    pub credentials: Option<Credentials>,
}

impl Request {
    /// The reply to this request, in the request's own protocol version.
    /// BND.ADDR is 0.0.0.0:0 (SOCKS4: the same zeros): I2P has no address to give, and
    /// an IPv4 form is what netcat and friends parse.
    /// HTTP: `200 Connection established`, or an error status by [`Reply::code`] (see
    /// [`Request::reply_why`]) with an empty body.
    pub fn reply(&self, reply: Reply) -> Vec<u8> {
        self.reply_why(reply, "")
    }

    /// Like [`Request::reply`], and an HTTP error response also says `why` in its
    /// `text/plain` body (made one line of printable ASCII, at most 200 characters).
    /// SOCKS has no room for it; success never carries it (the tunnel starts there).
    pub fn reply_why(&self, reply: Reply, why: &str) -> Vec<u8> {
        match self.version {
            Version::V4 | Version::V4a => socks4_reply(reply.socks4_code(), Ipv4Addr::UNSPECIFIED),
            Version::V5 => socks5_reply(reply.code(), Ipv4Addr::UNSPECIFIED),
            Version::Transparent => Vec::new(),
            Version::Http { minor, html } => http_answer::reply(
                minor,
                reply.code(),
                why,
                html.then(|| page_host(&self.address)).as_deref(),
            ),
        }
    }

    /// The UDP ASSOCIATE success reply: BND is the relay socket the client must send to.
    /// SOCKS4 has no UDP, so this is SOCKS5 only.
    pub fn reply_bound(&self, bound: std::net::SocketAddr) -> Vec<u8> {
        let mut v = vec![5, 0, 0];
        // A dual-stack listener's IPv4 client sees its IPv4 address, not ::ffff:a.b.c.d.
        match bound.ip().to_canonical() {
            std::net::IpAddr::V4(a) => {
                v.push(1);
                v.extend_from_slice(&a.octets());
            }
            std::net::IpAddr::V6(a) => {
                v.push(4);
                v.extend_from_slice(&a.octets());
            }
        }
        v.extend_from_slice(&bound.port().to_be_bytes());
        v
    }

    /// A successful reply carrying an IPv4 address (Tor RESOLVE answers). HTTP has no
    /// RESOLVE: its plain success.
    pub fn reply_resolved(&self, addr: Ipv4Addr) -> Vec<u8> {
        match self.version {
            Version::V4 | Version::V4a => socks4_reply(90, addr),
            Version::V5 => socks5_reply(0, addr),
            Version::Transparent => Vec::new(),
            Version::Http { .. } => self.reply(Reply::Succeeded),
        }
    }
}

pub(super) fn socks4_reply(cd: u8, addr: Ipv4Addr) -> Vec<u8> {
    let mut v = vec![0, cd, 0, 0];
    v.extend_from_slice(&addr.octets());
    v
}

pub(super) fn socks5_reply(rep: u8, addr: Ipv4Addr) -> Vec<u8> {
    let mut v = vec![5, rep, 0, 1];
    v.extend_from_slice(&addr.octets());
    v.extend_from_slice(&[0, 0]);
    v
}

/// Why a handshake was refused at the protocol level. Each carries the reply already sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("unknown SOCKS version byte {0:#04x}")]
    UnknownVersion(u8),
    /// Not CONNECT, addressed to a loopback name: the explanation page was sent.
    #[error("HTTP request sent to the SOCKS port")]
    HttpRequest,
    /// Not CONNECT, and not addressed to a loopback name: closed without a word, since
    /// a web page may be probing us through DNS rebinding.
    #[error("HTTP request for a non-loopback host on the SOCKS port (closed without a reply)")]
    HttpRequestNotLocal,
    /// A malformed HTTP CONNECT or forwarding request (400, or 431 when its head is too
    /// long).
    #[error("malformed HTTP proxy request: {0}")]
    HttpBadRequest(&'static str),
    #[error("client offered no acceptable authentication method")]
    NoAcceptableMethod,
    #[error("username/password sub-negotiation version {0:#04x} (expected 0x01)")]
    BadAuthVersion(u8),
    #[error("SOCKS5 request version {0:#04x} (expected 0x05)")]
    BadRequestVersion(u8),
    #[error("unknown SOCKS5 address type {0:#04x}")]
    BadAddressType(u8),
    #[error("SOCKS4 user id longer than {MAX_USERID} bytes")]
    UserIdTooLong,
    #[error("SOCKS4a host name longer than {MAX_NAME} bytes")]
    NameTooLong,
    #[error("handshake message longer than {MAX_HANDSHAKE_BYTES} bytes")]
    TooLong,
    #[error("handshake already finished")]
    AlreadyFinished,
    #[error("wrong username or password")]
    AuthRejected,
    #[error("this listener requires a username and password (SOCKS5 or HTTP Basic)")]
    AuthRequired,
}

/// Checks RFC 1929 or HTTP Basic credentials; None means the listener takes anyone.
pub type AuthCheck = std::sync::Arc<dyn Fn(&Credentials) -> bool + Send + Sync>;

#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// The buffer holds no complete message: read more, then call again with all of it.
    NeedMore,
    /// Send `reply`, drain `consumed` bytes from the buffer, then call again.
    Reply { consumed: usize, reply: Vec<u8> },
    /// The handshake is complete. `consumed` bytes were handshake; any after that are
    /// pipelined payload for the stream (for [`Command::HttpForward`] `consumed` is 0: the
    /// whole request goes to the server).
    Finished { consumed: usize, request: Request },
    /// Send `reply` (possibly empty), then close the connection.
    Reject {
        reply: Vec<u8>,
        error: HandshakeError,
    },
}

/// The requested host as an error page names it (Display quotes odd characters; the page
/// escapes them).
fn page_host(address: &Address) -> String {
    match address {
        Address::Name(n) => n.clone(),
        other => other.to_string(),
    }
}

pub(crate) fn name_from_bytes(b: &[u8]) -> Address {
    Address::Name(String::from_utf8_lossy(b).into_owned())
}
