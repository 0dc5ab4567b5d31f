//! Sans-IO SOCKS 4, 4a and 5 server handshake (RFC 1928, RFC 1929, SOCKS4/4a), and HTTP
//! CONNECT (RFC 9110 §9.3.6, Basic login per RFC 7617) on the same port.
//!
//! [`Handshake::step`] is fed everything received so far that has not been drained and
//! answers with one [`Step`]: read more, send a reply and drain, finish with a parsed
//! [`Request`], or reject (send a last reply, then close). It never does I/O and never
//! keeps a partial parse, so calling it again with a longer buffer is always correct.
//! Bytes after the request are the client's pipelined payload; the caller must forward them.
//!
//! Policy (which targets are allowed) is not decided here: the codec only parses.
//! Every message it accepts is bounded, so a buffer of [`MAX_HANDSHAKE_BYTES`] always suffices.

pub mod udp;

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Upper bound on any single handshake message we accept (HTTP request heads included).
pub const MAX_HANDSHAKE_BYTES: usize = 4096;

/// The longest name SOCKS5 can carry; SOCKS4a names are held to the same bound.
const MAX_NAME: usize = 255;
/// SOCKS4 user ids: same bound as RFC 1929 usernames.
const MAX_USERID: usize = 255;

mod http;

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
    fn from_u8(b: u8) -> Command {
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
        http::status(self.code()).0
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
            Version::Http { minor, html } => {
                http::reply(minor, reply, why, html.then_some(&self.address))
            }
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

fn socks4_reply(cd: u8, addr: Ipv4Addr) -> Vec<u8> {
    let mut v = vec![0, cd, 0, 0];
    v.extend_from_slice(&addr.octets());
    v
}

fn socks5_reply(rep: u8, addr: Ipv4Addr) -> Vec<u8> {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing read yet: the first byte picks SOCKS4, SOCKS5 or HTTP.
    Initial,
    /// SOCKS5 method chosen = username/password; waiting for the RFC 1929 message.
    Socks5Auth,
    /// SOCKS5 method negotiated; waiting for the request.
    Socks5Request,
    Done,
}

/// Server side of one SOCKS handshake.
pub struct Handshake {
    state: State,
    credentials: Option<Credentials>,
    auth: Option<AuthCheck>,
}

impl Default for Handshake {
    fn default() -> Self {
        Self::new()
    }
}

/// Result of parsing one message from a prefix: `None` means "incomplete".
type Parse<T> = Option<T>;

impl Handshake {
    pub fn new() -> Handshake {
        Handshake {
            state: State::Initial,
            credentials: None,
            auth: None,
        }
    }

    /// A handshake that demands credentials accepted by `check`: RFC 1929, or HTTP Basic
    /// for CONNECT. SOCKS4 and clients that do not offer username/password are refused.
    pub fn with_auth(check: Option<AuthCheck>) -> Handshake {
        Handshake {
            auth: check,
            ..Handshake::new()
        }
    }

    /// Advance the handshake with everything received and not yet drained.
    pub fn step(&mut self, input: &[u8]) -> Step {
        let step = match self.state {
            State::Done => Step::Reject {
                reply: Vec::new(),
                error: HandshakeError::AlreadyFinished,
            },
            State::Initial => match input.first() {
                None => Step::NeedMore,
                Some(4) => self.socks4(input),
                Some(5) => self.socks5_greeting(input),
                Some(b) if b.is_ascii_uppercase() => http::step(input, self.auth.as_ref()),
                Some(&b) => Step::Reject {
                    reply: Vec::new(),
                    error: HandshakeError::UnknownVersion(b),
                },
            },
            State::Socks5Auth => self.socks5_auth(input),
            State::Socks5Request => self.socks5_request(input),
        };
        match &step {
            Step::NeedMore if input.len() >= MAX_HANDSHAKE_BYTES => {
                // Unreachable (SOCKS messages are shorter, HTTP answers at the limit); kept
                // as a guard so a caller can never be asked to grow its buffer without bound.
                self.state = State::Done;
                return Step::Reject {
                    reply: Vec::new(),
                    error: HandshakeError::TooLong,
                };
            }
            Step::Finished { .. } | Step::Reject { .. } => self.state = State::Done,
            _ => {}
        }
        step
    }

    fn socks4(&mut self, input: &[u8]) -> Step {
        if self.auth.is_some() {
            // SOCKS4 has no password: never let it around a required login.
            return Step::Reject {
                reply: socks4_reply(91, Ipv4Addr::UNSPECIFIED),
                error: HandshakeError::AuthRequired,
            };
        }
        match parse_socks4(input) {
            None => Step::NeedMore,
            Some(Err(error)) => Step::Reject {
                reply: socks4_reply(91, Ipv4Addr::UNSPECIFIED),
                error,
            },
            Some(Ok((consumed, request))) => Step::Finished { consumed, request },
        }
    }

    fn socks5_greeting(&mut self, input: &[u8]) -> Step {
        let Some(&n) = input.get(1) else {
            return Step::NeedMore;
        };
        let n = n as usize;
        let Some(methods) = input.get(2..2 + n) else {
            return Step::NeedMore;
        };
        // Prefer username/password when offered, as Tor does: the username is what
        // identity isolation keys on, and a client only offers it when it has one.
        let method = if methods.contains(&0x02) {
            self.state = State::Socks5Auth;
            0x02
        } else if methods.contains(&0x00) && self.auth.is_none() {
            self.state = State::Socks5Request;
            0x00
        } else {
            return Step::Reject {
                reply: vec![5, 0xFF],
                error: HandshakeError::NoAcceptableMethod,
            };
        };
        Step::Reply {
            consumed: 2 + n,
            reply: vec![5, method],
        }
    }

    fn socks5_auth(&mut self, input: &[u8]) -> Step {
        let Some(&ver) = input.first() else {
            return Step::NeedMore;
        };
        if ver != 1 {
            return Step::Reject {
                reply: vec![1, 1],
                error: HandshakeError::BadAuthVersion(ver),
            };
        }
        let mut r = Reader::new(&input[1..]);
        let parsed = (|| {
            let ulen = r.u8()? as usize;
            let user = r.take(ulen)?.to_vec();
            let plen = r.u8()? as usize;
            let pass = r.take(plen)?.to_vec();
            Some((user, pass))
        })();
        let Some((username, password)) = parsed else {
            return Step::NeedMore;
        };
        let creds = Credentials { username, password };
        if let Some(check) = &self.auth {
            if !check(&creds) {
                return Step::Reject {
                    reply: vec![1, 1],
                    error: HandshakeError::AuthRejected,
                };
            }
        }
        // Kept for identity isolation.
        self.credentials = Some(creds);
        self.state = State::Socks5Request;
        Step::Reply {
            consumed: 1 + r.pos,
            reply: vec![1, 0],
        }
    }

    fn socks5_request(&mut self, input: &[u8]) -> Step {
        let Some(&ver) = input.first() else {
            return Step::NeedMore;
        };
        if ver != 5 {
            return Step::Reject {
                reply: socks5_reply(Reply::GeneralFailure.code(), Ipv4Addr::UNSPECIFIED),
                error: HandshakeError::BadRequestVersion(ver),
            };
        }
        let mut r = Reader::new(input);
        let head = (|| Some((r.u8()?, r.u8()?, r.u8()?, r.u8()?)))();
        let Some((_ver, cmd, _rsv, atyp)) = head else {
            return Step::NeedMore;
        };
        // RSV is ignored, as arti and Tor do: some clients send garbage there.
        let address = match atyp {
            1 => r.ipv4().map(Address::Ipv4),
            3 => r.u8().and_then(|n| r.take(n as usize)).map(name_from_bytes),
            4 => r.take(16).map(|b| {
                let mut o = [0u8; 16];
                o.copy_from_slice(b);
                Address::Ipv6(Ipv6Addr::from(o))
            }),
            other => {
                return Step::Reject {
                    reply: socks5_reply(
                        Reply::AddressTypeNotSupported.code(),
                        Ipv4Addr::UNSPECIFIED,
                    ),
                    error: HandshakeError::BadAddressType(other),
                }
            }
        };
        let Some(address) = address else {
            return Step::NeedMore;
        };
        let Some(port) = r.u16() else {
            return Step::NeedMore;
        };
        Step::Finished {
            consumed: r.pos,
            request: Request {
                version: Version::V5,
                command: Command::from_u8(cmd),
                address,
                port,
                credentials: self.credentials.take(),
            },
        }
    }
}

pub(crate) fn name_from_bytes(b: &[u8]) -> Address {
    Address::Name(String::from_utf8_lossy(b).into_owned())
}

/// SOCKS4/4a: VN CD DSTPORT(2) DSTIP(4) USERID NUL [HOSTNAME NUL]
fn parse_socks4(input: &[u8]) -> Parse<Result<(usize, Request), HandshakeError>> {
    let mut r = Reader::new(input);
    let _vn = r.u8()?;
    let cd = r.u8()?;
    let port = r.u16()?;
    let ip = r.ipv4()?;
    let userid = match r.until_nul(MAX_USERID) {
        Field::Incomplete => return None,
        Field::TooLong => return Some(Err(HandshakeError::UserIdTooLong)),
        Field::Ok(u) => u.to_vec(),
    };
    let o = ip.octets();
    let (version, address) = if o[0] == 0 && o[1] == 0 && o[2] == 0 && o[3] != 0 {
        match r.until_nul(MAX_NAME) {
            Field::Incomplete => return None,
            Field::TooLong => return Some(Err(HandshakeError::NameTooLong)),
            Field::Ok(name) => (Version::V4a, name_from_bytes(name)),
        }
    } else {
        (Version::V4, Address::Ipv4(ip))
    };
    let command = match cd {
        1 => Command::Connect,
        2 => Command::Bind,
        // SOCKS4 has no UDP; Tor's RESOLVE extension uses the same code in SOCKS4a.
        0xF0 => Command::Resolve,
        other => Command::Other(other),
    };
    Some(Ok((
        r.pos,
        Request {
            version,
            command,
            address,
            port,
            credentials: Some(Credentials {
                username: userid,
                password: Vec::new(),
            }),
        },
    )))
}

enum Field<'a> {
    Incomplete,
    TooLong,
    Ok(&'a [u8]),
}

/// A cursor over a byte prefix; every getter returns None when the bytes run out.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn ipv4(&mut self) -> Option<Ipv4Addr> {
        self.take(4).map(|b| Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    }
    /// Bytes up to a NUL (consumed, not returned), at most `max` before it.
    fn until_nul(&mut self, max: usize) -> Field<'a> {
        let rest = &self.buf[self.pos..];
        match rest.iter().take(max + 1).position(|&b| b == 0) {
            Some(i) => {
                self.pos += i + 1;
                Field::Ok(&rest[..i])
            }
            None if rest.len() > max => Field::TooLong,
            None => Field::Incomplete,
        }
    }
}

#[cfg(test)]
mod tests;
