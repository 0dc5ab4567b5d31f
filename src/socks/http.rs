//! HTTP CONNECT on the SOCKS port (as arti serves it): the first byte of an HTTP request is
//! an ASCII capital, which no SOCKS version byte is, so both fit on one listener. Requests
//! for `http://` URLs (absolute form) are forwarded too, one per connection.
//!
//! Only the first [`MAX_HANDSHAKE_BYTES`] of the input are ever looked at, and the verdict
//! is taken at the first byte that settles it, so every split of the same bytes agrees.

use std::net::{Ipv4Addr, Ipv6Addr};

use base64::Engine as _;

use super::http_answer::error_response;
use super::request::{
    Address, AuthCheck, Command, Credentials, HandshakeError, Request, Step, Version,
    HTTP_NOT_A_PROXY, MAX_HANDSHAKE_BYTES,
};

/// Where the request head ends, or the first byte no head may hold.
enum Scan {
    /// The head, blank line included, is `..end`.
    Complete(usize),
    /// A forbidden byte at `pos`, before the head ended.
    Bad {
        pos: usize,
        why: &'static str,
    },
    Incomplete,
}

fn scan(buf: &[u8]) -> Scan {
    let mut line_start = 0;
    for (i, &b) in buf.iter().enumerate() {
        match b {
            b'\n' => {
                let line = &buf[line_start..i];
                if line.is_empty() || line == b"\r" {
                    return Scan::Complete(i + 1);
                }
                line_start = i + 1;
            }
            // A CR as the last byte so far may still be followed by its LF.
            b'\r' if matches!(buf.get(i + 1), None | Some(b'\n')) => {}
            b'\r' => {
                return Scan::Bad {
                    pos: i,
                    why: "CR without LF",
                }
            }
            b'\t' => {}
            0..=0x1f | 0x7f => {
                return Scan::Bad {
                    pos: i,
                    why: "control byte in the request head",
                }
            }
            _ => {}
        }
    }
    Scan::Incomplete
}

/// The head's lines without their line ends; the blank line that ends it is not included.
fn lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    head.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .take_while(|l| !l.is_empty())
}

/// HTTP minor version named at the end of a (partial) request line: 0 for HTTP/1.0, else 1.
fn minor_of(buf: &[u8]) -> u8 {
    let first = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    if first.ends_with(b" HTTP/1.0") {
        0
    } else {
        1
    }
}

/// An HTTP request on the SOCKS port. `auth` is the listener's login check, if any.
pub(super) fn step(input: &[u8], auth: Option<&AuthCheck>) -> Step {
    let buf = &input[..input.len().min(MAX_HANDSHAKE_BYTES)];
    // Undecided while `buf` is a strict prefix of "CONNECT ": the scan cannot finish there.
    let connect = buf.starts_with(b"CONNECT ");
    match scan(buf) {
        Scan::Incomplete if input.len() < MAX_HANDSHAKE_BYTES => Step::NeedMore,
        Scan::Incomplete if connect => too_long(minor_of(buf)),
        // Judge the page on the complete lines that fit: a browser's localhost cookies can
        // make a head longer than our limit.
        Scan::Incomplete => {
            let complete = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            match forwarding(&buf[..complete]) {
                Some(minor) => too_long(minor),
                None => not_connect(&buf[..complete]),
            }
        }
        Scan::Bad { pos, why } if connect => bad_request(minor_of(&buf[..pos]), why),
        Scan::Bad { pos, why } => match forwarding(&buf[..pos]) {
            Some(minor) => bad_request(minor, why),
            None => silent(),
        },
        Scan::Complete(end) if connect => finish(&buf[..end], auth, Command::Connect),
        Scan::Complete(end) => match forwarding(&buf[..end]) {
            Some(_) => finish(&buf[..end], auth, Command::HttpForward),
            None => not_connect(&buf[..end]),
        },
    }
}

fn too_long(minor: u8) -> Step {
    Step::Reject {
        reply: error_response(
            minor,
            431,
            "Request Header Fields Too Large",
            "",
            "request head longer than 4096 bytes",
        ),
        error: HandshakeError::HttpBadRequest("request head too long"),
    }
}

/// Whether `head` starts with a complete request line whose target is absolute-form with a
/// non-loopback authority: a client using us as its HTTP proxy. Its HTTP version then, for
/// the replies. A loopback authority is someone looking at the proxy itself (the page).
fn forwarding(head: &[u8]) -> Option<u8> {
    let nl = head.iter().position(|&b| b == b'\n')?;
    let line = &head[..nl];
    let target = line.split(|&b| b == b' ').nth(1)?;
    let authority = absolute_authority(target)?;
    (!is_loopback(authority)).then(|| minor_of(line))
}

fn bad_request(minor: u8, why: &'static str) -> Step {
    Step::Reject {
        reply: error_response(minor, 400, "Bad Request", "", why),
        error: HandshakeError::HttpBadRequest(why),
    }
}

fn silent() -> Step {
    Step::Reject {
        reply: Vec::new(),
        error: HandshakeError::HttpRequestNotLocal,
    }
}

/// Neither CONNECT nor for an `http://` URL elsewhere: nothing to serve. The explanation
/// goes only to a request addressed to a loopback name. A web page can point its own name at 127.0.0.1 (DNS
/// rebinding) and read our answer as same-origin; its requests then carry its name in
/// `Host`, so they get a silent close and learn nothing, not even that eepsocks runs.
fn not_connect(head: &[u8]) -> Step {
    let mut lines = lines(head);
    let target = lines
        .next()
        .and_then(|l| l.split(|&b| b == b' ').nth(1))
        .unwrap_or_default();
    // An absolute-form target overrides Host (RFC 9112 §3.2.2).
    let authority = match absolute_authority(target) {
        Some(a) => Some(a),
        None => {
            let mut hosts = lines.filter_map(|l| header(l, b"host"));
            // Two Host headers: a request no browser sends; not worth an answer.
            match (hosts.next(), hosts.next()) {
                (Some(h), None) => Some(h),
                _ => None,
            }
        }
    };
    if authority.is_some_and(is_loopback) {
        Step::Reject {
            reply: HTTP_NOT_A_PROXY.to_vec(),
            error: HandshakeError::HttpRequest,
        }
    } else {
        silent()
    }
}

/// `name: value` → the value without surrounding whitespace, when the name matches.
fn header<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let colon = line.iter().position(|&b| b == b':')?;
    line[..colon]
        .eq_ignore_ascii_case(name)
        .then(|| trim_ows(&line[colon + 1..]))
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// The authority of `scheme://authority/...`, without any userinfo.
fn absolute_authority(target: &[u8]) -> Option<&[u8]> {
    let sep = target.windows(3).position(|w| w == b"://")?;
    let scheme = &target[..sep];
    let is_scheme = scheme.first().is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !is_scheme {
        return None;
    }
    let rest = &target[sep + 3..];
    let end = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let authority = &rest[..end];
    Some(match authority.iter().rposition(|&b| b == b'@') {
        Some(at) => &authority[at + 1..],
        None => authority,
    })
}

/// `localhost`, `*.localhost`, 127.0.0.0/8 or `[::1]`, with or without a port.
fn is_loopback(authority: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(authority) else {
        return false;
    };
    let port_ok = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = s.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else {
            return false;
        };
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(port_ok);
        return port_ok && ip.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
    }
    let host = match s.rsplit_once(':') {
        Some((h, p)) if port_ok(p) => h,
        Some(_) => return false,
        None => s,
    };
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// A complete CONNECT or forwarding head: its target (read from the request line), then
/// the login. CONNECT consumes the head; a forwarded request (`GET
/// http://name.i2p/path HTTP/1.1`) consumes nothing: the whole request (and any body after
/// it) is the start of the stream, and the leak filter rewrites it for the server.
fn finish(head: &[u8], auth: Option<&AuthCheck>, command: Command) -> Step {
    let minor = minor_of(head);
    let mut lines = lines(head);
    let request_line = lines.next().unwrap_or_default();
    let target = match command {
        Command::HttpForward => parse_forward_line(request_line),
        _ => parse_request_line(request_line),
    };
    let (address, port) = match target {
        Ok(t) => t,
        Err(why) => return bad_request(minor, why),
    };
    let credentials = match login(lines, minor, auth) {
        Ok(c) => c,
        Err(reject) => return reject,
    };
    let consumed = match command {
        Command::HttpForward => 0,
        _ => head.len(),
    };
    Step::Finished {
        consumed,
        request: Request {
            version: Version::Http {
                minor,
                html: accepts_html(head),
            },
            command,
            address,
            port,
            credentials,
        },
    }
}

/// Checks the header lines and the login: the client's Basic credentials (None without
/// any), or the reply that ends the handshake (400, 407).
fn login<'a>(
    lines: impl Iterator<Item = &'a [u8]>,
    minor: u8,
    auth: Option<&AuthCheck>,
) -> Result<Option<Credentials>, Step> {
    let mut authorization = None;
    for line in lines {
        if matches!(line.first(), Some(b' ' | b'\t')) {
            return Err(bad_request(minor, "obsolete line folding"));
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(bad_request(minor, "header line without a colon"));
        };
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(bad_request(minor, "bad header name"));
        }
        if name.eq_ignore_ascii_case(b"proxy-authorization") {
            if authorization.is_some() {
                return Err(bad_request(
                    minor,
                    "more than one Proxy-Authorization header",
                ));
            }
            authorization = Some(trim_ows(&line[colon + 1..]));
        }
    }
    let credentials = match authorization.map(basic) {
        None | Some(Basic::OtherScheme) => None,
        Some(Basic::Malformed) => return Err(bad_request(minor, "malformed Basic credentials")),
        Some(Basic::Credentials(c)) => Some(c),
    };
    if let Some(check) = auth {
        let error = match &credentials {
            None => Some(HandshakeError::AuthRequired),
            Some(c) if !check(c) => Some(HandshakeError::AuthRejected),
            Some(_) => None,
        };
        if let Some(error) = error {
            return Err(Step::Reject {
                reply: error_response(
                    minor,
                    407,
                    "Proxy Authentication Required",
                    "Proxy-Authenticate: Basic realm=\"eepsocks\"\r\n",
                    "this proxy requires a username and password",
                ),
                error,
            });
        }
    }
    Ok(credentials)
}

/// `METHOD http://host[:port][/path][?query] HTTP/1.x`, single spaces; the scheme in any
/// case, port 80 by default (RFC 9110 §4.2.1).
fn parse_forward_line(line: &[u8]) -> Result<(Address, u16), &'static str> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("bad request line");
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err("bad request line");
    }
    if version != b"HTTP/1.1" && version != b"HTTP/1.0" {
        return Err("unsupported HTTP version");
    }
    if !target.iter().all(u8::is_ascii_graphic) {
        return Err("bad request target");
    }
    let target = std::str::from_utf8(target).map_err(|_| "bad request target")?;
    let (scheme, rest) = target.split_once("://").ok_or("bad request target")?;
    if scheme.eq_ignore_ascii_case("https") {
        return Err("https:// URLs go through CONNECT (for curl: -p)");
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return Err("only http:// URLs are forwarded");
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if path.contains('#') {
        return Err("fragment in the request target");
    }
    // Clients put URL logins in Authorization; one in the URL is not ours to pass on.
    if authority.contains('@') {
        return Err("user name in the URL");
    }
    // `host:` means the default port too (RFC 3986 §3.2.3).
    let authority = authority.strip_suffix(':').unwrap_or(authority);
    parse_authority(authority, Some(80))
}

/// `CONNECT host:port HTTP/1.x`, single spaces (RFC 9112 §3).
fn parse_request_line(line: &[u8]) -> Result<(Address, u16), &'static str> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(b"CONNECT"), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("bad request line");
    };
    if version != b"HTTP/1.1" && version != b"HTTP/1.0" {
        return Err("unsupported HTTP version");
    }
    if target.is_empty() || !target.iter().all(u8::is_ascii_graphic) {
        return Err("bad request target");
    }
    // Only visible ASCII is left, so this cannot fail.
    let target = std::str::from_utf8(target).map_err(|_| "bad request target")?;
    parse_authority(target, None)
}

/// Authority form `host:port`, `[v6]:port` (RFC 9110 §9.3.6); without any `:port`,
/// `default_port` where there is one (a URL's authority), else an error.
fn parse_authority(
    target: &str,
    default_port: Option<u16>,
) -> Result<(Address, u16), &'static str> {
    let (address, port) = if let Some(rest) = target.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or("unclosed [")?;
        let ip = inside.parse::<Ipv6Addr>().map_err(|_| "bad IPv6 address")?;
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return Err("missing port"),
        };
        (Address::Ipv6(ip), port)
    } else {
        let (host, port) = match target.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (target, None),
        };
        if port.is_none() && default_port.is_none() {
            return Err("missing port");
        }
        if host.is_empty() {
            return Err("empty host");
        }
        // Not an authority: a URL, userinfo, or an IPv6 address without brackets.
        if host.contains(['/', '?', '#', '@', '[', ']', ':']) {
            return Err("target is not host:port");
        }
        let address = match host.parse::<Ipv4Addr>() {
            Ok(ip) => Address::Ipv4(ip),
            Err(_) => Address::Name(host.to_string()),
        };
        (address, port)
    };
    let Some(port) = port else {
        return default_port.map(|p| (address, p)).ok_or("missing port");
    };
    // Port 0 names no service; RFC 9110 asks to refuse an invalid port with 400.
    let valid = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    match port.parse::<u16>() {
        Ok(p) if valid && p != 0 => Ok((address, p)),
        _ => Err("missing or invalid port"),
    }
}

/// RFC 9110 §5.6.2 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// What a Proxy-Authorization value holds. Deliberately not Debug: it holds a password.
enum Basic {
    Credentials(Credentials),
    /// Another scheme (Digest, Bearer, ...): we only speak Basic, so it is as if absent.
    OtherScheme,
    Malformed,
}

/// `Basic base64(user:pass)` (RFC 7617), the scheme in any case, split at the first ':'.
fn basic(value: &[u8]) -> Basic {
    let (scheme, token) = match value.iter().position(|&b| b == b' ') {
        Some(sp) => (&value[..sp], trim_ows(&value[sp + 1..])),
        None => (value, &b""[..]),
    };
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return Basic::OtherScheme;
    }
    // Some clients leave out the padding; the bytes are the same either way.
    const B64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let Ok(mut decoded) = B64.decode(token) else {
        return Basic::Malformed;
    };
    let Some(colon) = decoded.iter().position(|&b| b == b':') else {
        return Basic::Malformed;
    };
    let password = decoded.split_off(colon + 1);
    decoded.truncate(colon);
    Basic::Credentials(Credentials {
        username: decoded,
        password,
    })
}

/// Whether an `Accept` header of the request names text/html: a browser, which gets an
/// error page it can show instead of a line of text.
fn accepts_html(head: &[u8]) -> bool {
    lines(head).skip(1).any(|l| {
        header(l, b"accept")
            .is_some_and(|v| v.windows(9).any(|w| w.eq_ignore_ascii_case(b"text/html")))
    })
}
