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

mod http;
mod http_answer;
mod request;

pub(crate) use request::name_from_bytes;
use request::{socks4_reply, socks5_reply, MAX_NAME, MAX_USERID};
pub use request::{
    Address, AuthCheck, Command, Credentials, HandshakeError, Reply, Request, Step, Version,
    HTTP_NOT_A_PROXY, MAX_HANDSHAKE_BYTES,
};
use std::net::{Ipv4Addr, Ipv6Addr};

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
