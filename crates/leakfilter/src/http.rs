//! HTTP request-header leak filter: the client → server direction of a plain-HTTP
//! connection (TLS is opaque and never reaches it; responses are not filtered).
//!
//! Every request of a keep-alive connection is sanitized, pipelined ones included:
//!
//! - The request line and header block are held until the empty line that ends them
//!   (at most [`MAX_HEAD`] bytes), then forwarded with the leaking headers removed and
//!   `User-Agent` replaced. Everything else is kept byte for byte and in order (`Host`
//!   too, except that `name.i2p.alt` loses its `.alt`), with the client's own line endings
//!   (CRLF or bare LF). A folded header
//!   (obs-fold: continuation lines starting with SP or HTAB) is one header: removed or
//!   replaced whole.
//! - The body is then passed through by length, never looked at: `Content-Length`
//!   bytes, or the chunked transfer coding (chunk-size lines parsed, extensions allowed,
//!   chunk data passed, then trailer lines up to the empty line). Trailers are passed
//!   as-is: browsers never send request trailers, and filtering them would mean holding
//!   them like a header block for no use. A request with neither has no body
//!   (RFC 9112 §6.3: requests are never delimited by closing the connection).
//! - Then the next request's header block is filtered again. Empty lines before a later
//!   request line are passed (RFC 9112 §2.2: some clients send a CRLF after a body).
//!
//! The filter never passes what it could not read. It refuses the rest of the connection
//! (sends on nothing held or later, sets [`Output::closed`] once, and the caller closes the
//! stream) when it cannot be sure where headers start and end: a request line that is not
//! `METHOD SP target SP HTTP/1.x`, the HTTP/2 preface, a malformed header line (NUL, a
//! bare CR, whitespace before the colon…), a header block over [`MAX_HEAD`], both
//! `Content-Length` and `Transfer-Encoding`, conflicting or unparsable `Content-Length`s,
//! a `Transfer-Encoding` whose last coding is not `chunked` (or any in an HTTP/1.0
//! request), `Expect: 100-continue` with a body (whether the body or the next request
//! follows depends on an answer the filter does not see), a bad chunk-size line (held
//! until it parses), chunk data not followed by a line ending, a bare CR in the trailers.
//! If the refused request is the connection's first, nothing can be outstanding before
//! it, so the client gets an answer in [`Output::back`]: `431` for the size, `417` for
//! the expectation (curl then retries without it), `400` otherwise.
//!
//! A protocol switch (`CONNECT`, or `Upgrade` with `Connection: upgrade`) is sanitized
//! like any head; what the client sends after it is held until the server's first
//! response says (through the paired [`Responses`], see [`Requests::with_responses`]):
//! `101` (`2xx` for `CONNECT`) and the rest passes untouched, reported once in
//! [`Output::stopped`]; anything else and it is the next request head. Only the first
//! request's answer is known, so a switch asked later (or without the watcher) is never
//! taken: the bytes after it must be HTTP, or the connection is refused.
//!
//! With [`Options::sniff`] (port 80 with `filter = "auto"`) a connection whose first line
//! is not an HTTP/1.x request line is passed untouched without `stopped`: it just is not
//! HTTP. The decision comes as early as the bytes allow (see [`sniff`]); the HTTP/2
//! preface is still refused, since that is HTTP the filter cannot read.
//!
//! With [`Options::forward`] the connection carries one request that a client sent to
//! eepsocks as its HTTP proxy (`GET http://name.i2p/path HTTP/1.1`), and the filter makes
//! it a request to the server itself:
//!
//! - The request line becomes origin form (`GET /path HTTP/1.1`; `/` for a URL without a
//!   path), byte for byte otherwise.
//! - `Connection` says `close` (the first one is rewritten, the others removed; added when
//!   absent) and `Keep-Alive` is removed, besides the usual rules (`Proxy-Connection` is a
//!   `Proxy-*` header).
//! - Once that request (head and body) has gone through, every further byte is dropped,
//!   counted as one change. A client may reuse a proxy connection for a request to
//!   another site; that request (with that site's cookies) must never reach this server.
//!   The server closes after its response, and the client retries on a new connection.
//! - Nothing ever passes unfiltered: where the filter would give up, it drops the rest
//!   instead. If that happens before the request was sent on (not a request for an
//!   `http://` URL, ambiguous framing, a bad header line), the client gets a `400` saying
//!   why through [`Output::back`]. An incomplete request at [`Filter::finish`] is dropped.
//!   An `Upgrade` is not made: its `Connection: upgrade` became `close`.
//!
//! [`Filter::finish`] with a header block still held (the client ended its side
//! mid-headers): the request can never be answered, but its bytes still reach the
//! server, so they are sanitized like a complete block, the incomplete last line treated
//! as a line (a fragment without a colon yet is kept: it carries no value). An incomplete
//! request line is forwarded as it is (it holds no header).

use crate::{Filter, Output};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

/// The `User-Agent` sent instead of the client's: the value Java I2P's HTTP proxy uses,
/// so eepsocks users look like I2P proxy users rather than like a rarer crowd.
pub const DEFAULT_USER_AGENT: &str = "MYOB/6.66 (AN/ON)";

/// Largest request head (request line through the empty line, with any empty lines
/// before it) the filter holds. Browsers send a few KiB; servers commonly refuse more
/// than 8–64 KiB anyway.
pub const MAX_HEAD: usize = 64 * 1024;

/// Largest chunk-size line (with extensions and line ending) parsed: real ones are a few
/// bytes, so a longer one means the framing is not what we think it is.
const MAX_CHUNK_LINE: usize = 4096;

/// How much of an incomplete first line is sniffed again on each feed. Enough to see a
/// method, a target and the version start of any real request line; past it the line
/// is judged when it completes (or at [`MAX_HEAD`]), so a client trickling a long line
/// byte by byte does not cost quadratic time.
const EARLY_SNIFF: usize = 1024;

/// How an HTTP/2 connection with prior knowledge starts (RFC 9113 §3.4). Sniffing fails
/// at the `2`, so a first line that fails with this prefix is h2.
const H2_PREFACE_START: &[u8] = b"PRI * HTTP/2";

/// Filter settings for one connection.
#[derive(Clone, Debug)]
pub struct Options {
    /// Sent instead of the client's `User-Agent` (default [`DEFAULT_USER_AGENT`]).
    pub user_agent: String,
    /// Pass a connection that does not start like an HTTP/1.x request untouched, without
    /// reporting it as given up (for `filter = "auto"` on port 80). Ignored with `forward`.
    pub sniff: bool,
    /// The connection carries one request a client sent to its HTTP proxy (absolute form,
    /// `GET http://host/path HTTP/1.1`): see [`Requests`] for what changes.
    pub forward: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            sniff: false,
            forward: false,
        }
    }
}

/// Whether some first bytes start like an HTTP/1.x request line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniff {
    /// A complete `METHOD SP target SP HTTP/1.x` line (CRLF or LF) starts `prefix`.
    Yes,
    /// `prefix` cannot start such a line, whatever follows.
    No,
    /// `prefix` is the start of such a line; more bytes decide.
    NeedMore,
}

/// Whether `prefix` (the first bytes a client sent) starts like an HTTP/1.x request
/// line: `METHOD SP target SP HTTP/1.DIGIT` then CRLF or LF, the method a token, the
/// target visible bytes. Decides at the first byte that cannot fit, so non-HTTP
/// protocols are not held: the method must be upper case (every registered method is;
/// a client that writes `ping` and waits for an answer must not be held back) and at most
/// `MAX_METHOD` bytes. Monotone: once `Yes` or `No`, every longer prefix gives the same
/// answer.
pub fn sniff(prefix: &[u8]) -> Sniff {
    let mut i = 0;
    while i < prefix.len() && is_method_byte(prefix[i]) {
        i += 1;
        if i > MAX_METHOD {
            return Sniff::No;
        }
    }
    match prefix.get(i) {
        None => return Sniff::NeedMore,
        Some(b' ') if i > 0 => i += 1,
        Some(_) => return Sniff::No,
    }
    let target = i;
    while i < prefix.len() && is_target_byte(prefix[i]) {
        i += 1;
    }
    match prefix.get(i) {
        None => return Sniff::NeedMore,
        Some(b' ') if i > target => i += 1,
        Some(_) => return Sniff::No,
    }
    for &want in b"HTTP/1." {
        match prefix.get(i) {
            None => return Sniff::NeedMore,
            Some(&b) if b == want => i += 1,
            Some(_) => return Sniff::No,
        }
    }
    match prefix.get(i) {
        None => return Sniff::NeedMore,
        Some(b) if b.is_ascii_digit() => i += 1,
        Some(_) => return Sniff::No,
    }
    match (prefix.get(i), prefix.get(i + 1)) {
        (None, _) | (Some(b'\r'), None) => Sniff::NeedMore,
        (Some(b'\n'), _) | (Some(b'\r'), Some(b'\n')) => Sniff::Yes,
        _ => Sniff::No,
    }
}

/// Longer than any registered method (`BASELINE-CONTROL`, `VERSION-CONTROL`: 16).
const MAX_METHOD: usize = 24;

/// What methods are made of in practice: upper-case letters and `-`/`_`.
fn is_method_byte(b: u8) -> bool {
    b.is_ascii_uppercase() || b == b'-' || b == b'_'
}

/// RFC 9110 §5.6.2 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Bytes a request target may hold: visible ASCII, and bytes ≥ 0x80 (some clients send
/// raw UTF-8 paths; servers cope, and they are no framing risk).
fn is_target_byte(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) || b >= 0x80
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_ws(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_ws(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// The end of a line's content and of the line itself, from `pos`: a line ends after LF
/// (its content before CRLF or LF) or, for the incomplete last line at [`Filter::finish`],
/// at the end of `buf` (a trailing CR then counts as its ending).
fn next_line(buf: &[u8], pos: usize) -> (usize, usize) {
    let end = match buf[pos..].iter().position(|&b| b == b'\n') {
        Some(off) => pos + off + 1,
        None => buf.len(),
    };
    let mut content_end = end;
    if content_end > pos && buf[content_end - 1] == b'\n' {
        content_end -= 1;
    }
    if content_end > pos && buf[content_end - 1] == b'\r' {
        content_end -= 1;
    }
    (content_end, end)
}

/// A line's content without its CRLF or LF.
fn strip_ending(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The field name of a header line (`name ":" value`, name a token), if it is one.
fn header_name(content: &[u8]) -> Option<&[u8]> {
    let colon = content.iter().position(|&b| b == b':')?;
    let name = &content[..colon];
    (!name.is_empty() && name.iter().all(|&b| is_tchar(b))).then_some(name)
}

/// Whether a complete line's content is a header line or, after a header, a fold.
/// Rejected: whitespace before the colon and a fold with nothing to continue (RFC 9112
/// §5.1, §2.2: servers must refuse them, and disagreeing with the server about where a
/// header starts is how a `Referer` would slip past), and NUL or a bare CR anywhere (some
/// servers end lines at a bare CR, which would hide a header from us).
fn header_line_ok(content: &[u8], first_header: bool) -> bool {
    if content.contains(&b'\r') || content.contains(&b'\0') {
        return false;
    }
    if is_ws(content[0]) {
        return !first_header;
    }
    header_name(content).is_some()
}

/// What happens to a header, by name.
#[derive(Clone, PartialEq, Eq)]
enum Action {
    Keep,
    Remove,
    ReplaceUserAgent,
    /// Forward mode: `Connection: close`.
    ReplaceConnection,
    /// `Host: name.i2p.alt[:port]` becomes `Host: name.i2p[:port]`: RFC 9476's `.alt` form
    /// is ours to accept, and the site knows itself only by its `.i2p` name (Java I2P's
    /// proxy strips it too).
    StripAlt(Vec<u8>),
}

/// The Host value without a trailing `.alt` after `.i2p` (the port kept), or None when
/// there is none to strip.
fn host_without_alt(value: &[u8]) -> Option<Vec<u8>> {
    let (host, port) = match value.iter().rposition(|&b| b == b':') {
        Some(colon) => value.split_at(colon),
        None => (value, &[][..]),
    };
    let host = host.strip_suffix(b".").unwrap_or(host);
    let cut = host.len().checked_sub(b".i2p.alt".len())?;
    // a bare `.i2p.alt` is no name; leave it for the proxy to refuse
    if cut == 0 || !host[cut..].eq_ignore_ascii_case(b".i2p.alt") {
        return None;
    }
    let mut out = host[..host.len() - b".alt".len()].to_vec();
    out.extend_from_slice(port);
    Some(out)
}

fn classify(name: &[u8]) -> Action {
    // Each removed header, and why:
    const REMOVED: &[&str] = &[
        // the page the user came from, often on another site: links browsing across sites
        "referer",
        // added by proxies on the way; can name the user's LAN or public address
        "via",
        "forwarded",
        "x-real-ip",
        "client-ip",
        // the user's e-mail address (crawlers, old browsers)
        "from",
        // DNT and GPC are rare settings: one more fingerprint bit, and no I2P site obeys them
        "dnt",
        "sec-gpc",
        // locale: hints the country, and a strong fingerprint
        "accept-language",
        "accept-charset",
        // Android WebViews put the app's package name here
        "x-requested-with",
    ];
    // X-Forwarded-For/-Host/-Proto…: proxy hops, the client's address; Proxy-*: meant for
    // a proxy, not the site (Proxy-Authorization is a password, Proxy-Connection says a
    // proxy is configured)
    const REMOVED_PREFIXES: &[&str] = &["x-forwarded-", "proxy-"];
    if REMOVED
        .iter()
        .any(|r| name.eq_ignore_ascii_case(r.as_bytes()))
        || REMOVED_PREFIXES
            .iter()
            .any(|p| name.len() >= p.len() && name[..p.len()].eq_ignore_ascii_case(p.as_bytes()))
    {
        Action::Remove
    } else if name.eq_ignore_ascii_case(b"user-agent") {
        // browser, version and OS: the largest single fingerprint. Replaced rather than
        // removed because some sites refuse requests without one; not added when absent,
        // since its absence is the client's own choice (curl -A '', scripts).
        Action::ReplaceUserAgent
    } else {
        Action::Keep
    }
}

/// One header: its first line and any fold lines after it.
struct Group<'a> {
    /// All its bytes, line endings included.
    bytes: &'a [u8],
    /// Its field name, or `None` for a line that is not a header line (only possible in a
    /// block sanitized at `finish`: complete blocks were checked line by line).
    name: Option<&'a [u8]>,
    /// The first line's value (after the colon).
    first_value: &'a [u8],
    /// The first line's ending.
    first_ending: &'a [u8],
    folded: bool,
}

impl Group<'_> {
    /// The value with each fold replaced by one SP (RFC 9112 §5.2), trimmed.
    fn value(&self) -> Vec<u8> {
        let mut value = self.first_value.to_vec();
        if self.folded {
            let mut pos = next_line(self.bytes, 0).1;
            while pos < self.bytes.len() {
                let (content_end, end) = next_line(self.bytes, pos);
                value.push(b' ');
                value.extend_from_slice(&self.bytes[pos..content_end]);
                pos = end;
            }
        }
        trim_ows(&value).to_vec()
    }
}

/// The headers of a block (after the request line), up to the empty line that ends it;
/// `pos` is then where that empty line (or whatever the block has left) starts.
struct Groups<'a> {
    block: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Groups<'a> {
    type Item = Group<'a>;

    fn next(&mut self) -> Option<Group<'a>> {
        let block = self.block;
        let start = self.pos;
        if start >= block.len() {
            return None;
        }
        let (content_end, line_end) = next_line(block, start);
        if content_end == start {
            return None;
        }
        let content = &block[start..content_end];
        let name = header_name(content);
        let mut end = line_end;
        if name.is_some() {
            while end < block.len() && is_ws(block[end]) {
                end = next_line(block, end).1;
            }
        }
        self.pos = end;
        Some(Group {
            bytes: &block[start..end],
            name,
            first_value: name.map_or(&[][..], |n| &content[n.len() + 1..]),
            first_ending: &block[content_end..line_end],
            folded: end != line_end,
        })
    }
}

/// Appends `headers` (a header section, complete or as held at `finish`) to `out`
/// sanitized; returns how many headers were removed or rewritten. `close`: forward mode,
/// with the line ending of the request line: the connection ends after this request
/// (`Connection: close`, `Keep-Alive` removed).
fn sanitize(headers: &[u8], user_agent: &[u8], close: Option<&[u8]>, out: &mut Vec<u8>) -> u64 {
    let mut changed = 0;
    let mut groups = Groups {
        block: headers,
        pos: 0,
    };
    let mut connection_seen = false;
    for group in groups.by_ref() {
        let mut action = group.name.map_or(Action::Keep, classify);
        if let Some(name) = group.name.filter(|n| n.eq_ignore_ascii_case(b"host")) {
            if let Some(host) = host_without_alt(&group.value()) {
                let mut line = name.to_vec();
                line.extend_from_slice(b": ");
                line.extend_from_slice(&host);
                action = Action::StripAlt(line);
            }
        }
        if let (Some(name), Some(_)) = (group.name, close) {
            if name.eq_ignore_ascii_case(b"keep-alive") {
                action = Action::Remove;
            } else if name.eq_ignore_ascii_case(b"connection") {
                // One `Connection: close` in place of the first; the others would only
                // contradict it.
                action = if connection_seen {
                    Action::Remove
                } else {
                    Action::ReplaceConnection
                };
                connection_seen = true;
            }
        }
        match action {
            Action::Keep => out.extend_from_slice(group.bytes),
            Action::Remove => changed += 1,
            Action::ReplaceConnection => {
                let start = out.len();
                out.extend_from_slice(group.name.unwrap_or_default());
                out.extend_from_slice(b": close");
                out.extend_from_slice(group.first_ending);
                if out[start..] != *group.bytes {
                    changed += 1;
                }
            }
            Action::StripAlt(line) => {
                out.extend_from_slice(&line);
                out.extend_from_slice(group.first_ending);
                changed += 1;
            }
            Action::ReplaceUserAgent => {
                let start = out.len();
                out.extend_from_slice(group.name.unwrap_or_default());
                out.extend_from_slice(b": ");
                out.extend_from_slice(user_agent);
                out.extend_from_slice(group.first_ending);
                if out[start..] != *group.bytes {
                    changed += 1;
                }
            }
        }
    }
    if let (Some(ending), false) = (close, connection_seen) {
        out.extend_from_slice(b"Connection: close");
        out.extend_from_slice(ending);
        changed += 1;
    }
    out.extend_from_slice(&headers[groups.pos..]);
    changed
}

/// A forwarded request's line in origin form: `METHOD SP http://host[:port]/path SP
/// HTTP/1.x` becomes `METHOD SP /path SP HTTP/1.x` (`/` when the URL has no path), the
/// rest byte for byte, appended to `out`. None (nothing appended) when the target is not
/// an `http://` URL.
fn origin_form(request_line: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let sp1 = request_line.iter().position(|&b| b == b' ')?;
    let after = &request_line[sp1 + 1..];
    let sp2 = sp1 + 1 + after.iter().position(|&b| b == b' ')?;
    let target = &request_line[sp1 + 1..sp2];
    let rest = target
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case(b"http://"))
        .map(|_| &target[7..])?;
    let path = &rest[rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len())..];
    out.extend_from_slice(&request_line[..=sp1]);
    if !path.starts_with(b"/") {
        out.push(b'/');
    }
    out.extend_from_slice(path);
    out.extend_from_slice(&request_line[sp2..]);
    Some(())
}

/// Why a head was refused for its size.
pub const CLOSE_TOO_LONG: &str = "request header block over 64 KiB";
/// Why a request announcing `Expect: 100-continue` and a body was refused.
pub const CLOSE_EXPECT: &str =
    "Expect: 100-continue (the filter cannot tell whether the body follows)";
/// Why a connection was refused while waiting for the server's answer to a switch.
const CLOSE_SWITCH_WAIT: &str = "over 64 KiB sent before the server answered a protocol switch";

/// What a client hears when its request cannot be passed on safely.
fn refusal(why: &str) -> Vec<u8> {
    let (code, phrase) = match why {
        CLOSE_TOO_LONG => (431, "Request Header Fields Too Large"),
        // Clients such as curl retry without the expectation (on a new connection).
        CLOSE_EXPECT => (417, "Expectation Failed"),
        _ => (400, "Bad Request"),
    };
    format!(
        "HTTP/1.1 {code} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{why}\n",
        why.len() + 1
    )
    .into_bytes()
}

/// What a header block says comes after it.
enum Next {
    /// No body: the next request's head.
    Head,
    Body(u64),
    Chunked,
    /// The connection leaves HTTP/1.x after this block if the server agrees.
    Switched {
        connect: bool,
    },
}

/// Reads the framing of a complete, line-checked request head. Errors are give-up reasons.
fn framing(request_line: &[u8], headers: &[u8]) -> Result<Next, &'static str> {
    let request_line = strip_ending(request_line);
    let method = &request_line[..request_line.iter().position(|&b| b == b' ').unwrap_or(0)];
    let http10 = request_line.ends_with(b"HTTP/1.0");
    let mut content_length: Option<u64> = None;
    let mut transfer_encoding = false;
    let mut chunked = false;
    let mut upgrade = false;
    let mut connection_upgrade = false;
    let mut expect_continue = false;
    let groups = Groups {
        block: headers,
        pos: 0,
    };
    for group in groups {
        let Some(name) = group.name else { continue };
        if name.eq_ignore_ascii_case(b"content-length") {
            // A list of equal values is one value (RFC 9112 §6.3); anything else means
            // the server may frame the body differently from us.
            for item in group.value().split(|&b| b == b',') {
                let item = trim_ows(item);
                let n = parse_decimal(item).ok_or("invalid Content-Length")?;
                if content_length.is_some_and(|old| old != n) {
                    return Err("conflicting Content-Lengths");
                }
                content_length = Some(n);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            transfer_encoding = true;
            for coding in group.value().split(|&b| b == b',') {
                let coding = trim_ows(coding);
                if coding.is_empty() {
                    continue;
                }
                // chunked must be the last coding and applied once (RFC 9112 §6.1):
                // otherwise the body's end is not ours to find
                if chunked {
                    return Err("Transfer-Encoding does not end in chunked");
                }
                chunked = coding.eq_ignore_ascii_case(b"chunked");
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            connection_upgrade |= group
                .value()
                .split(|&b| b == b',')
                .any(|t| trim_ows(t).eq_ignore_ascii_case(b"upgrade"));
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            upgrade = true;
        } else if name.eq_ignore_ascii_case(b"expect") {
            expect_continue |= group.value().eq_ignore_ascii_case(b"100-continue");
        }
    }
    if transfer_encoding {
        // the classic request-smuggling ambiguity: servers differ on which one wins
        if content_length.is_some() {
            return Err("both Content-Length and Transfer-Encoding");
        }
        if !chunked {
            return Err("Transfer-Encoding does not end in chunked");
        }
        // RFC 9112 §6.1: an HTTP/1.0 server must treat this framing as faulty
        if http10 {
            return Err("Transfer-Encoding in an HTTP/1.0 request");
        }
    }
    // After a tunnel or an upgrade the bytes may be another protocol (TLS, WebSocket,
    // h2c…): whether they are is the server's answer (see `State::AwaitSwitch`).
    if method == b"CONNECT" {
        return Ok(Next::Switched { connect: true });
    }
    if upgrade && connection_upgrade {
        return Ok(Next::Switched { connect: false });
    }
    // The client waits for `100 Continue` and may then send its body, or, told no, send
    // the next request instead: bytes counted off as body untouched could be a request
    // with every header this filter removes. Which it is, only the server's answer says.
    let has_body = chunked || content_length.is_some_and(|n| n > 0);
    if expect_continue && has_body {
        return Err(CLOSE_EXPECT);
    }
    Ok(if chunked {
        Next::Chunked
    } else {
        match content_length {
            Some(n) if n > 0 => Next::Body(n),
            _ => Next::Head,
        }
    })
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// Parses a chunk-size line: `1*HEXDIG [ BWS ";" chunk-ext ] (CRLF | LF)`. The extension
/// is not interpreted (nothing in it is a header), only checked for control bytes.
fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let content = strip_ending(line);
    let digits = content.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return None;
    }
    let size = content[..digits].iter().try_fold(0u64, |n, &b| {
        let d = (b as char).to_digit(16)? as u64;
        n.checked_mul(16)?.checked_add(d)
    })?;
    let mut rest = &content[digits..];
    while let [first, tail @ ..] = rest {
        if !is_ws(*first) {
            break;
        }
        rest = tail;
    }
    match rest {
        [] if digits == content.len() => Some(size),
        [b';', ext @ ..] if ext.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f)) => {
            Some(size)
        }
        _ => None,
    }
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// Holding a request head in `buf`.
    Head,
    /// Passing this many more `Content-Length` body bytes.
    Body(u64),
    /// Reading a chunk-size line (held in `buf`, forwarded once it parses).
    ChunkSize,
    /// Passing this many more bytes of chunk data.
    ChunkData(u64),
    /// Expecting the CRLF (`cr`: the CR came) or LF after chunk data.
    ChunkDataEnd { cr: bool },
    /// Passing trailer lines until the empty one. `line_empty`: nothing but a possible CR
    /// so far on this line; `cr`: the last byte was a CR.
    Trailers { line_empty: bool, cr: bool },
    /// After the first request asked to switch protocols (`Upgrade`, `CONNECT`): what the
    /// client sends is held (up to [`MAX_HEAD`]) until the server's first response says
    /// whether the connection switched (then it passes) or not (then it is a request head).
    AwaitSwitch { connect: bool },
    /// Untouched from here on: switched protocols, not HTTP (sniffing), or finished.
    Pass,
    /// Refused (or forward mode, after the request): every byte is dropped.
    Drop,
}

/// Progress through the held head, so each feed scans only the new bytes.
#[derive(Clone, Copy, Debug, Default)]
struct HeadScan {
    /// Bytes of `buf` already searched for line ends.
    scanned: usize,
    /// Where the line being received starts.
    line_start: usize,
    /// Where the request line starts (after empty lines before it), once complete.
    request_start: Option<usize>,
    /// Where the header lines start (after the request line).
    headers_start: usize,
    /// A header line was seen, so a fold line has something to continue.
    header_seen: bool,
}

enum HeadState {
    /// The head ends at this offset in `buf`.
    Complete(usize),
    Incomplete,
    /// The (first) line is not a request line.
    NotRequest,
    Bad(&'static str),
}

/// The client → server direction of one connection.
pub struct Requests {
    options: Options,
    /// `options.user_agent` without control bytes: a CR or LF in it would write headers.
    user_agent: Vec<u8>,
    state: State,
    /// The held head, or a copy of the chunk-size line being read.
    buf: Vec<u8>,
    scan: HeadScan,
    /// No request head has been completed yet (sniffing applies, no empty lines before).
    first: bool,
    /// Forward mode: the dropping has been counted (once per connection).
    drop_counted: bool,
    /// The first response's status, set by the paired [`Responses`] (0: not yet).
    first_status: Option<Arc<AtomicU16>>,
}

impl Requests {
    /// A filter for the requests of one new connection.
    pub fn new(options: Options) -> Self {
        let user_agent = options
            .user_agent
            .bytes()
            .filter(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
            .collect();
        Requests {
            options,
            user_agent,
            state: State::Head,
            buf: Vec::new(),
            scan: HeadScan::default(),
            first: true,
            drop_counted: false,
            first_status: None,
        }
    }

    /// A filter for the requests of one new connection, and the watcher of its responses
    /// that tells it whether the server accepted a protocol switch. Without the watcher
    /// ([`Requests::new`]) a switch is never taken as accepted: the client's next bytes
    /// must then be HTTP, or the stream is refused.
    pub fn with_responses(options: Options) -> (Requests, Responses) {
        let status = Arc::new(AtomicU16::new(0));
        let mut requests = Requests::new(options);
        requests.first_status = Some(status.clone());
        (requests, Responses::new(status))
    }

    /// Refuses the rest of the connection: nothing held or later is sent on, and the
    /// caller closes the stream. A first request that was not sent on at all is answered
    /// (431, 417 or 400 saying why): no response can be outstanding before it, so the
    /// answer cannot come out of order. Forward mode counts the drop as a change.
    fn give_up(&mut self, reason: &'static str, out: &mut Output) {
        if matches!(self.state, State::Head) {
            if self.first {
                out.back.extend_from_slice(&refusal(reason));
            }
            if self.options.forward {
                let held = self.buf.len();
                self.dropped(held, out);
            }
        }
        self.buf = Vec::new();
        self.state = State::Drop;
        out.closed = Some(reason);
    }

    /// A request (head and body) has gone through: on to the next one, or, in forward
    /// mode, to dropping everything else.
    fn request_done(&mut self) {
        if self.options.forward {
            self.buf.clear();
            self.state = State::Drop;
        } else {
            self.start_head();
        }
    }

    /// Forward mode: `n` bytes were dropped (one change per connection, however many).
    fn dropped(&mut self, n: usize, out: &mut Output) {
        if n > 0 && !self.drop_counted {
            self.drop_counted = true;
            out.changed += 1;
        }
    }

    /// Forwards what is held and passes everything after, without reporting.
    fn pass(&mut self, out: &mut Output) {
        if matches!(self.state, State::Head | State::AwaitSwitch { .. }) {
            out.forward.extend_from_slice(&self.buf);
        }
        self.buf = Vec::new();
        self.state = State::Pass;
    }

    /// In `AwaitSwitch`: whether the server switched (Some(true)), refused (Some(false)),
    /// or has not answered yet.
    fn switched(&self, connect: bool) -> Option<bool> {
        let status = self.first_status.as_ref()?.load(Ordering::Acquire);
        match status {
            0 => None,
            101 => Some(!connect),
            200..=299 => Some(connect),
            _ => Some(false),
        }
    }

    /// Leaves `AwaitSwitch` once the server answered: passes everything (switched) or
    /// filters what was held as the next request head (refused). False: no answer yet.
    fn resolve_switch(&mut self, connect: bool, out: &mut Output) -> bool {
        match self.switched(connect) {
            None => false,
            Some(true) => {
                self.pass(out);
                out.stopped = Some(if connect {
                    "the server accepted CONNECT; the tunnel passes unfiltered"
                } else {
                    "the server switched protocols (101); the rest passes unfiltered"
                });
                true
            }
            Some(false) => {
                let held = std::mem::take(&mut self.buf);
                self.start_head();
                self.feed(&held, out);
                true
            }
        }
    }

    fn start_head(&mut self) {
        self.state = State::Head;
        self.buf.clear();
        self.scan = HeadScan::default();
    }

    /// Scans the bytes added to the held head since the last call.
    fn scan_head(&mut self) -> HeadState {
        let buf = &self.buf;
        let scan = &mut self.scan;
        while let Some(off) = buf[scan.scanned..].iter().position(|&b| b == b'\n') {
            let nl = scan.scanned + off;
            scan.scanned = nl + 1;
            let line = &buf[scan.line_start..=nl];
            let content = strip_ending(line);
            if scan.request_start.is_none() {
                if content.is_empty() && !self.first {
                    // an empty line before a later request: passed along (RFC 9112 §2.2)
                } else if sniff(line) == Sniff::Yes {
                    scan.request_start = Some(scan.line_start);
                    scan.headers_start = nl + 1;
                } else {
                    return HeadState::NotRequest;
                }
            } else if content.is_empty() {
                return HeadState::Complete(nl + 1);
            } else if header_line_ok(content, !scan.header_seen) {
                scan.header_seen = true;
            } else {
                return HeadState::Bad("malformed header line");
            }
            scan.line_start = nl + 1;
        }
        scan.scanned = buf.len();
        if scan.request_start.is_none() {
            let partial = &buf[scan.line_start..];
            // the CR of an empty line before a later request
            let empty_line_cr = !self.first && partial == b"\r";
            let probe = if buf.len() >= MAX_HEAD {
                partial
            } else {
                &partial[..partial.len().min(EARLY_SNIFF)]
            };
            if !empty_line_cr && sniff(probe) == Sniff::No {
                return HeadState::NotRequest;
            }
        }
        HeadState::Incomplete
    }

    /// Sanitizes and forwards the complete head held in `buf`, and moves on to its body.
    fn emit_head(&mut self, out: &mut Output) {
        let was_first = self.first;
        let request_start = self.scan.request_start.unwrap_or(0);
        let headers_start = self.scan.headers_start;
        let next = framing(
            &self.buf[request_start..headers_start],
            &self.buf[headers_start..],
        );
        let next = match next {
            Ok(next) => next,
            Err(reason) => return self.give_up(reason, out),
        };
        let close = if self.options.forward {
            // The first head starts with its request line (no empty lines before it), so
            // nothing comes before the line.
            let request_line = &self.buf[request_start..headers_start];
            let (line, ending) = request_line.split_at(strip_ending(request_line).len());
            if origin_form(line, &mut out.forward).is_none() {
                return self.give_up("not a request for an http:// URL", out);
            }
            out.forward.extend_from_slice(ending);
            out.changed += 1;
            Some(ending)
        } else {
            out.forward.extend_from_slice(&self.buf[..headers_start]);
            None
        };
        out.changed += sanitize(
            &self.buf[headers_start..],
            &self.user_agent,
            close,
            &mut out.forward,
        );
        self.first = false;
        match next {
            Next::Head => self.request_done(),
            Next::Body(n) => {
                self.buf.clear();
                self.state = State::Body(n);
            }
            Next::Chunked => {
                self.buf.clear();
                self.state = State::ChunkSize;
            }
            // Forward mode removed the Connection: upgrade, so the server stays in HTTP/1.x.
            Next::Switched { .. } if self.options.forward => self.request_done(),
            // Only the first request's answer is known (the watcher reads the first
            // response); after any other, the next bytes must be HTTP or are refused.
            Next::Switched { connect } if was_first && self.first_status.is_some() => {
                self.buf.clear();
                self.state = State::AwaitSwitch { connect };
            }
            Next::Switched { .. } => self.request_done(),
        }
    }

    /// Takes head bytes from `input`; returns what is left of it.
    fn feed_head<'a>(&mut self, input: &'a [u8], out: &mut Output) -> &'a [u8] {
        let take = (MAX_HEAD - self.buf.len()).min(input.len());
        self.buf.extend_from_slice(&input[..take]);
        match self.scan_head() {
            HeadState::Complete(end) => {
                // the held head had no end before, so the bytes after it are all new
                let unused = self.buf.len() - end;
                self.buf.truncate(end);
                self.emit_head(out);
                return &input[take - unused..];
            }
            HeadState::Incomplete if self.buf.len() >= MAX_HEAD => {
                self.give_up(CLOSE_TOO_LONG, out);
            }
            HeadState::Incomplete => {}
            HeadState::NotRequest => {
                let line = &self.buf[self.scan.line_start..];
                if line.starts_with(H2_PREFACE_START) {
                    // h2 with prior knowledge: HTTP, but binary frames we cannot filter
                    self.give_up("HTTP/2 connection preface", out);
                } else if self.first && self.options.sniff && !self.options.forward {
                    // not HTTP at all: nothing of ours to filter, nothing to report
                    self.pass(out);
                } else {
                    self.give_up("not an HTTP/1.x request line", out);
                }
            }
            HeadState::Bad(reason) => self.give_up(reason, out),
        }
        &input[take..]
    }

    /// Reads a chunk-size line from `input` (held until it parses: a line that does not
    /// is not passed); returns what is left.
    fn feed_chunk_size<'a>(&mut self, input: &'a [u8], out: &mut Output) -> &'a [u8] {
        let Some(nl) = input.iter().position(|&b| b == b'\n') else {
            if self.buf.len() + input.len() > MAX_CHUNK_LINE {
                self.give_up("chunk-size line too long", out);
                return input;
            }
            self.buf.extend_from_slice(input);
            return &[];
        };
        let (line, rest) = input.split_at(nl + 1);
        if self.buf.len() + line.len() > MAX_CHUNK_LINE {
            self.give_up("chunk-size line too long", out);
            return input;
        }
        self.buf.extend_from_slice(line);
        let size = parse_chunk_size(&self.buf);
        if size.is_some() {
            out.forward.extend_from_slice(&self.buf);
        }
        match size {
            Some(0) => {
                self.buf.clear();
                self.state = State::Trailers {
                    line_empty: true,
                    cr: false,
                };
            }
            Some(size) => {
                self.buf.clear();
                self.state = State::ChunkData(size);
            }
            // the body's end is unknown: so is where the next request's headers start
            None => self.give_up("bad chunk-size line", out),
        }
        rest
    }

    /// Passes trailer lines from `input` up to the empty line; returns what is left.
    /// Byte by byte, but trailers are a few lines at most (and never sent by browsers).
    fn feed_trailers<'a>(
        &mut self,
        input: &'a [u8],
        mut line_empty: bool,
        mut cr: bool,
        out: &mut Output,
    ) -> &'a [u8] {
        for (i, &b) in input.iter().enumerate() {
            if cr && b != b'\n' {
                // a bare CR: some servers end the line there, and then the trailers
                // (and the next request) may start elsewhere than we think
                out.forward.extend_from_slice(&input[..i]);
                self.give_up("bare CR in chunked trailers", out);
                return &input[i..];
            }
            match b {
                b'\r' => cr = true,
                b'\n' if line_empty => {
                    out.forward.extend_from_slice(&input[..=i]);
                    self.request_done();
                    return &input[i + 1..];
                }
                b'\n' => {
                    cr = false;
                    line_empty = true;
                }
                _ => line_empty = false,
            }
        }
        out.forward.extend_from_slice(input);
        self.state = State::Trailers { line_empty, cr };
        &[]
    }
}

/// Passes up to `remaining` bytes of `input` (one slice copy, no per-byte work); returns
/// how many were passed.
fn pass_counted(input: &[u8], remaining: u64, out: &mut Output) -> usize {
    let n = usize::try_from(remaining).map_or(input.len(), |r| r.min(input.len()));
    out.forward.extend_from_slice(&input[..n]);
    n
}

impl Filter for Requests {
    fn untouched_ahead(&self) -> usize {
        match self.state {
            State::Pass => usize::MAX,
            State::Body(n) | State::ChunkData(n) => usize::try_from(n).unwrap_or(usize::MAX),
            _ => 0,
        }
    }

    fn skip(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        let n = n as u64;
        match self.state {
            State::Pass => {}
            State::Body(remaining) if n >= remaining => self.request_done(),
            State::Body(remaining) => self.state = State::Body(remaining - n),
            State::ChunkData(remaining) if n >= remaining => {
                self.state = State::ChunkDataEnd { cr: false }
            }
            State::ChunkData(remaining) => self.state = State::ChunkData(remaining - n),
            _ => debug_assert!(false, "skip past untouched_ahead"),
        }
    }

    fn feed(&mut self, mut input: &[u8], out: &mut Output) {
        // No input: the caller saw the server answer; bytes held for a switch are decided.
        if let (true, State::AwaitSwitch { connect }) = (input.is_empty(), self.state) {
            self.resolve_switch(connect, out);
        }
        while !input.is_empty() {
            input = match self.state {
                State::Pass => {
                    out.forward.extend_from_slice(input);
                    &[]
                }
                State::Drop => {
                    if self.options.forward {
                        self.dropped(input.len(), out);
                    }
                    &[]
                }
                State::AwaitSwitch { connect } => {
                    if self.resolve_switch(connect, out) {
                        continue;
                    }
                    if self.buf.len() + input.len() > MAX_HEAD {
                        self.give_up(CLOSE_SWITCH_WAIT, out);
                        return;
                    }
                    self.buf.extend_from_slice(input);
                    &[]
                }
                State::Head => self.feed_head(input, out),
                State::Body(remaining) => {
                    let n = pass_counted(input, remaining, out);
                    if n as u64 == remaining {
                        self.request_done();
                    } else {
                        self.state = State::Body(remaining - n as u64);
                    }
                    &input[n..]
                }
                State::ChunkSize => self.feed_chunk_size(input, out),
                State::ChunkData(remaining) => {
                    let n = pass_counted(input, remaining, out);
                    self.state = if n as u64 == remaining {
                        State::ChunkDataEnd { cr: false }
                    } else {
                        State::ChunkData(remaining - n as u64)
                    };
                    &input[n..]
                }
                State::ChunkDataEnd { cr } => match input[0] {
                    b'\r' if !cr => {
                        out.forward.push(b'\r');
                        self.state = State::ChunkDataEnd { cr: true };
                        &input[1..]
                    }
                    b'\n' => {
                        out.forward.push(b'\n');
                        self.buf.clear();
                        self.state = State::ChunkSize;
                        &input[1..]
                    }
                    _ => {
                        // more data than the chunk size said: the framing is not ours
                        self.give_up("chunk data not followed by a line ending", out);
                        input
                    }
                },
                State::Trailers { line_empty, cr } => {
                    self.feed_trailers(input, line_empty, cr, out)
                }
            };
        }
    }

    fn finish(&mut self, out: &mut Output) {
        if let State::AwaitSwitch { connect } = self.state {
            if !self.resolve_switch(connect, out) {
                // No answer yet, and no more bytes from the client: what it held is
                // judged as the next request head (it cannot be a switched protocol's).
                let held = std::mem::take(&mut self.buf);
                self.start_head();
                self.feed(&held, out);
            }
        }
        if matches!(self.state, State::Drop) {
            return;
        }
        if self.options.forward {
            // An incomplete request is never sent on: the client has stopped sending, and
            // a server would only answer it with an error.
            if matches!(self.state, State::Head) {
                let held = self.buf.len();
                self.dropped(held, out);
            }
        } else if matches!(self.state, State::Head) {
            match self.scan.request_start {
                // Headers the server will see even though it can never answer them:
                // sanitized like a complete block (see the module docs).
                Some(_) => {
                    let headers_start = self.scan.headers_start;
                    out.forward.extend_from_slice(&self.buf[..headers_start]);
                    out.changed += sanitize(
                        &self.buf[headers_start..],
                        &self.user_agent,
                        None,
                        &mut out.forward,
                    );
                }
                // part of a request line (or not HTTP, when sniffing): no header in it
                None => out.forward.extend_from_slice(&self.buf),
            }
        }
        // An incomplete chunk-size line is dropped (unparsed); nothing else is held.
        self.buf.clear();
        self.state = if self.options.forward {
            State::Drop
        } else {
            State::Pass
        };
    }
}

/// The server → client direction of a filtered HTTP connection: passed as it is (responses
/// say nothing about the user), but its first response's status is read for the paired
/// [`Requests`], which needs it to know whether a protocol switch happened. Interim
/// responses (1xx other than 101) are skipped. Once the status is known (or the response
/// is unreadable, which counts as "no switch") everything is untouched ahead.
pub struct Responses {
    status: Arc<AtomicU16>,
    /// The line being read (bounded by [`MAX_HEAD`] over the whole interim run).
    line: Vec<u8>,
    /// Bytes looked at so far.
    seen: usize,
    /// In an interim response's header lines (not at a status line).
    interim: bool,
    done: bool,
}

/// What an unreadable first response records: a status that is no switch.
const STATUS_UNREADABLE: u16 = 1;

impl Responses {
    fn new(status: Arc<AtomicU16>) -> Self {
        Responses {
            status,
            line: Vec::new(),
            seen: 0,
            interim: false,
            done: false,
        }
    }

    fn decide(&mut self, status: u16) {
        self.status.store(status, Ordering::Release);
        self.done = true;
        self.line = Vec::new();
    }

    /// One complete line (its ending included).
    fn line(&mut self) {
        let content = strip_ending(&self.line);
        if self.interim {
            // an interim response ends at its empty line; the next line is a status line
            self.interim = !content.is_empty();
        } else {
            // `HTTP/1.x SP 3DIGIT` (then SP reason, or nothing)
            let status = content
                .strip_prefix(b"HTTP/1.")
                .filter(|r| r.len() >= 5 && r[0].is_ascii_digit() && r[1] == b' ')
                .map(|r| &r[2..])
                .filter(|r| {
                    r[..3].iter().all(u8::is_ascii_digit) && matches!(r.get(3), None | Some(b' '))
                })
                .map(|r| {
                    r[..3]
                        .iter()
                        .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'))
                });
            match status {
                Some(code) if (100..200).contains(&code) && code != 101 => self.interim = true,
                Some(code) => return self.decide(code),
                None => return self.decide(STATUS_UNREADABLE),
            }
        }
        self.line.clear();
    }
}

impl Filter for Responses {
    fn feed(&mut self, input: &[u8], out: &mut Output) {
        out.forward.extend_from_slice(input);
        let mut rest = input;
        while !self.done && !rest.is_empty() {
            let take = rest
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |i| i + 1);
            self.line.extend_from_slice(&rest[..take]);
            self.seen += take;
            rest = &rest[take..];
            if self.line.ends_with(b"\n") {
                self.line();
            }
            if !self.done && self.seen >= MAX_HEAD {
                self.decide(STATUS_UNREADABLE);
            }
        }
    }

    fn finish(&mut self, _out: &mut Output) {
        if !self.done {
            self.decide(STATUS_UNREADABLE);
        }
    }

    fn untouched_ahead(&self) -> usize {
        if self.done {
            usize::MAX
        } else {
            0
        }
    }

    fn skip(&mut self, _n: usize) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything one run produced: forwarded bytes, headers changed, give-up reasons.
    #[derive(Debug, PartialEq, Eq)]
    struct Run {
        forward: Vec<u8>,
        changed: u64,
        stopped: Vec<&'static str>,
        /// What went back to the client (an error answer to a refused first request).
        back: Vec<u8>,
        /// Refusal reasons.
        closed: Vec<&'static str>,
    }

    fn collect(run: &mut Run, out: &mut Output) {
        run.forward.extend_from_slice(&out.forward);
        run.changed += out.changed;
        run.stopped.extend(out.stopped);
        run.back.extend_from_slice(&out.back);
        run.closed.extend(out.closed);
        out.clear();
    }

    /// Feeds `pieces` in turn, then finishes.
    fn run_pieces(options: &Options, pieces: &[&[u8]]) -> Run {
        run_fed(options, pieces, false)
    }

    /// `run_pieces` the way the relay does it: bytes the filter calls untouched are sent
    /// straight from the piece and reported with `skip`, only the rest is fed.
    fn run_pieces_direct(options: &Options, pieces: &[&[u8]]) -> Run {
        run_fed(options, pieces, true)
    }

    fn run_fed(options: &Options, pieces: &[&[u8]], direct: bool) -> Run {
        let mut filter = Requests::new(options.clone());
        let mut out = Output::default();
        let mut run = Run {
            forward: Vec::new(),
            changed: 0,
            stopped: Vec::new(),
            back: Vec::new(),
            closed: Vec::new(),
        };
        for piece in pieces {
            let mut piece = *piece;
            while direct && !piece.is_empty() && filter.untouched_ahead() > 0 {
                let k = filter.untouched_ahead().min(piece.len());
                run.forward.extend_from_slice(&piece[..k]);
                filter.skip(k);
                piece = &piece[k..];
            }
            filter.feed(piece, &mut out);
            collect(&mut run, &mut out);
        }
        filter.finish(&mut out);
        collect(&mut run, &mut out);
        assert!(run.stopped.len() <= 1, "stopped more than once: {run:?}");
        assert!(run.closed.len() <= 1, "closed more than once: {run:?}");
        assert!(
            run.back.is_empty() || run.closed.len() == 1,
            "answered: {run:?}"
        );
        run
    }

    /// One-shot run of `input`, after asserting that feeding it split at every point
    /// (at every 509th for long inputs), in three pieces, and byte by byte gives the
    /// same result.
    fn filter_with(options: &Options, input: &[u8]) -> Run {
        let whole = run_pieces(options, &[input]);
        let step = if input.len() > 4096 { 509 } else { 1 };
        for i in (0..=input.len()).step_by(step) {
            let (a, b) = input.split_at(i);
            assert_eq!(run_pieces(options, &[a, b]), whole, "split at {i}");
            assert_eq!(
                run_pieces_direct(options, &[a, b]),
                whole,
                "split at {i}, untouched bytes sent directly"
            );
            let j = i + (input.len() - i) / 2;
            let (b, c) = b.split_at(j - i);
            assert_eq!(run_pieces(options, &[a, b, c]), whole, "split at {i}, {j}");
            assert_eq!(
                run_pieces_direct(options, &[a, b, c]),
                whole,
                "split at {i}, {j}, untouched bytes sent directly"
            );
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(run_pieces(options, &bytes), whole, "byte by byte");
        assert_eq!(
            run_pieces_direct(options, &bytes),
            whole,
            "byte by byte, untouched bytes sent directly"
        );
        whole
    }

    fn filter(input: &[u8]) -> Run {
        filter_with(&Options::default(), input)
    }

    /// Asserts the run sanitized everything without giving up.
    fn clean(input: &[u8], forward: &[u8], changed: u64) {
        let run = filter(input);
        assert_eq!(
            String::from_utf8_lossy(&run.forward),
            String::from_utf8_lossy(forward)
        );
        assert_eq!(run.changed, changed);
        assert_eq!(run.stopped, Vec::<&str>::new());
        assert_eq!(run.closed, Vec::<&str>::new());
    }

    /// Asserts the run sent on `sanitized`, then refused the stream with `reason`: nothing
    /// after it passes, and a first request not sent on at all is answered (4xx).
    fn refused(input: &[u8], sanitized: &[u8], reason: &str) -> Run {
        let run = filter(input);
        assert_eq!(
            String::from_utf8_lossy(&run.forward),
            String::from_utf8_lossy(sanitized)
        );
        assert_eq!(run.closed, vec![reason]);
        assert_eq!(run.stopped, Vec::<&str>::new());
        let back = String::from_utf8_lossy(&run.back);
        if sanitized.is_empty() {
            assert!(back.starts_with("HTTP/1.1 4"), "{back}");
            assert!(back.ends_with(&format!("\r\n\r\n{reason}\n")), "{back}");
        } else {
            assert_eq!(back, "");
        }
        run
    }

    const UA: &str = "User-Agent: MYOB/6.66 (AN/ON)";

    #[test]
    fn firefox_request() {
        let input = b"GET /index.html HTTP/1.1\r\n\
            Host: example.i2p\r\n\
            User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
            Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
            Accept-Language: en-US,en;q=0.5\r\n\
            Accept-Encoding: gzip, deflate\r\n\
            Referer: http://other.i2p/page?id=7\r\n\
            DNT: 1\r\n\
            Sec-GPC: 1\r\n\
            Connection: keep-alive\r\n\
            Upgrade-Insecure-Requests: 1\r\n\
            Sec-Fetch-Dest: document\r\n\
            Sec-Fetch-Mode: navigate\r\n\
            Sec-Fetch-Site: same-origin\r\n\
            Sec-Fetch-User: ?1\r\n\
            Priority: u=0, i\r\n\
            Cookie: session=abc123\r\n\
            \r\n";
        let expected = b"GET /index.html HTTP/1.1\r\n\
            Host: example.i2p\r\n\
            User-Agent: MYOB/6.66 (AN/ON)\r\n\
            Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
            Accept-Encoding: gzip, deflate\r\n\
            Connection: keep-alive\r\n\
            Upgrade-Insecure-Requests: 1\r\n\
            Sec-Fetch-Dest: document\r\n\
            Sec-Fetch-Mode: navigate\r\n\
            Sec-Fetch-Site: same-origin\r\n\
            Sec-Fetch-User: ?1\r\n\
            Priority: u=0, i\r\n\
            Cookie: session=abc123\r\n\
            \r\n";
        // UA replaced; Accept-Language, Referer, DNT, Sec-GPC removed
        clean(input, expected, 5);
    }

    #[test]
    fn every_listed_header_removed_case_insensitively() {
        let input = b"GET / HTTP/1.1\r\nHost: a.i2p\r\n\
            referer: r\r\nVIA: 1.1 squid\r\nFrom: me@example.org\r\nForwarded: for=10.0.0.1\r\n\
            X-Forwarded-For: 10.0.0.1\r\nx-forwarded-proto: http\r\nX-Real-IP: 10.0.0.1\r\n\
            Client-IP: 10.0.0.1\r\nProxy-Authorization: Basic dTpw\r\nProxy-Connection: keep-alive\r\n\
            DNT: 1\r\nSec-GPC: 1\r\nAccept-Language: de\r\nAccept-Charset: utf-8\r\n\
            X-Requested-With: com.example.app\r\n\
            Fromage: brie\r\nX-Forwarded: kept\r\nReferrer-Policy: kept\r\nProxy: kept\r\n\r\n";
        let expected = b"GET / HTTP/1.1\r\nHost: a.i2p\r\n\
            Fromage: brie\r\nX-Forwarded: kept\r\nReferrer-Policy: kept\r\nProxy: kept\r\n\r\n";
        clean(input, expected, 15);
    }

    #[test]
    fn user_agent_not_added_when_absent_and_not_counted_when_equal() {
        clean(b"GET / HTTP/1.0\r\n\r\n", b"GET / HTTP/1.0\r\n\r\n", 0);
        let same = format!("GET / HTTP/1.1\r\n{UA}\r\nuser-agent: curl/8\r\n\r\n");
        let expected = format!("GET / HTTP/1.1\r\n{UA}\r\nuser-agent: MYOB/6.66 (AN/ON)\r\n\r\n");
        clean(same.as_bytes(), expected.as_bytes(), 1);
    }

    #[test]
    fn custom_user_agent_control_bytes_dropped() {
        let options = Options {
            user_agent: "Evil\r\nX-Injected: 1".into(),
            sniff: false,
            forward: false,
        };
        let run = filter_with(&options, b"GET / HTTP/1.1\r\nUser-Agent: x\r\n\r\n");
        assert_eq!(
            run.forward,
            b"GET / HTTP/1.1\r\nUser-Agent: EvilX-Injected: 1\r\n\r\n"
        );
    }

    #[test]
    fn keep_alive_two_requests() {
        let input = b"GET /a HTTP/1.1\r\nHost: a.i2p\r\nReferer: http://x.i2p/\r\n\r\n\
            GET /b HTTP/1.1\r\nHost: a.i2p\r\nUser-Agent: wget\r\nReferer: http://a.i2p/a\r\n\r\n";
        let expected = format!(
            "GET /a HTTP/1.1\r\nHost: a.i2p\r\n\r\nGET /b HTTP/1.1\r\nHost: a.i2p\r\n{UA}\r\n\r\n"
        );
        clean(input, expected.as_bytes(), 3);
    }

    #[test]
    fn content_length_body_untouched_then_next_request_filtered() {
        let input =
            b"POST /form HTTP/1.1\r\nHost: a.i2p\r\nReferer: r\r\nContent-Length: 45\r\n\r\n\
            Referer: body\r\nUser-Agent: body\r\n\r\nGET / HTTP\
            GET /next HTTP/1.1\r\nReferer: r\r\n\r\n";
        let expected = b"POST /form HTTP/1.1\r\nHost: a.i2p\r\nContent-Length: 45\r\n\r\n\
            Referer: body\r\nUser-Agent: body\r\n\r\nGET / HTTP\
            GET /next HTTP/1.1\r\n\r\n";
        clean(input, expected, 2);
    }

    #[test]
    fn equal_content_lengths_are_one() {
        let input = b"POST / HTTP/1.1\r\nContent-Length: 3, 3\r\ncontent-length: 3\r\n\r\nabcGET / HTTP/1.1\r\nDNT: 1\r\n\r\n";
        let expected = b"POST / HTTP/1.1\r\nContent-Length: 3, 3\r\ncontent-length: 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n";
        clean(input, expected, 1);
    }

    #[test]
    fn chunked_body_untouched_then_next_request_filtered() {
        let input = b"POST /up HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\nVia: x\r\n\r\n\
            13;name=\"v\"\r\nReferer: in-chunk\r\n\r\n\
            5\r\n\r\nDNT\r\n\
            0\r\nX-Trailer: t\r\nReferer: trailer\r\n\r\n\
            GET /next HTTP/1.1\r\nDNT: 1\r\n\r\n";
        // the trailers are passed as they are (documented)
        let expected = b"POST /up HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n\
            13;name=\"v\"\r\nReferer: in-chunk\r\n\r\n\
            5\r\n\r\nDNT\r\n\
            0\r\nX-Trailer: t\r\nReferer: trailer\r\n\r\n\
            GET /next HTTP/1.1\r\n\r\n";
        clean(input, expected, 2);
    }

    #[test]
    fn chunked_lf_only_and_big_chunk() {
        let mut input = b"POST / HTTP/1.1\nTransfer-Encoding: chunked\n\n".to_vec();
        input.extend_from_slice(b"2000 ; a=b\n");
        input.extend(std::iter::repeat(b'R').take(0x2000));
        input.extend_from_slice(b"\n0\n\nGET / HTTP/1.1\nReferer: r\n\n");
        let mut expected = input[..input.len() - "Referer: r\n\n".len()].to_vec();
        expected.extend_from_slice(b"\n");
        clean(&input, &expected, 1);
    }

    #[test]
    fn pipelined_requests() {
        let input = b"GET /1 HTTP/1.1\r\nHost: a.i2p\r\nAccept-Language: fr\r\n\r\n\
            POST /2 HTTP/1.1\r\nContent-Length: 2\r\nX-Forwarded-For: 1.2.3.4\r\n\r\nhi\
            GET /3 HTTP/1.1\r\nFrom: a@b\r\nAccept: */*\r\n\r\n";
        let expected = b"GET /1 HTTP/1.1\r\nHost: a.i2p\r\n\r\n\
            POST /2 HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi\
            GET /3 HTTP/1.1\r\nAccept: */*\r\n\r\n";
        clean(input, expected, 3);
    }

    #[test]
    fn empty_lines_before_a_later_request_passed() {
        let input =
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\nx\r\n\nGET / HTTP/1.1\r\nDNT: 1\r\n\r\n";
        let expected = b"POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\nx\r\n\nGET / HTTP/1.1\r\n\r\n";
        clean(input, expected, 1);
    }

    #[test]
    fn obs_fold_belongs_to_its_header() {
        let input = b"GET / HTTP/1.1\r\nReferer: http://a.i2p/\r\n  continued\r\n\tand more\r\n\
            X-Kept: one\r\n two\r\nUser-Agent: Mozilla/5.0\r\n (folded)\r\nHost: a.i2p\r\n\r\n";
        let expected =
            format!("GET / HTTP/1.1\r\nX-Kept: one\r\n two\r\n{UA}\r\nHost: a.i2p\r\n\r\n");
        clean(input, expected.as_bytes(), 2);
    }

    #[test]
    fn folded_framing_headers_are_read_whole() {
        // Connection: keep-alive, upgrade spread over a fold is still an upgrade
        let head = b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: keep-alive,\r\n upgrade\r\n\r\n";
        let input = [&head[..], b"DNT: 1\r\n\r\n"].concat();
        // (no server answer known here: the next bytes must be HTTP, and are not)
        refused(&input, head, "not an HTTP/1.x request line");
    }

    #[test]
    fn lf_only_and_mixed_endings_kept() {
        let input = b"GET / HTTP/1.1\nHost: a.i2p\nUser-Agent: x\nReferer: r\r\nAccept: */*\r\n\n";
        let expected = format!("GET / HTTP/1.1\nHost: a.i2p\n{UA}\nAccept: */*\r\n\n");
        clean(input, expected.as_bytes(), 2);
    }

    #[test]
    fn header_values_kept_byte_for_byte() {
        let input =
            b"GET /p?q=%20 HTTP/1.1\r\nHOST:a.i2p  \r\nX-Empty:\r\nX-Tab:\tv\xc3\xa9\r\n\r\n";
        clean(input, input, 0);
    }

    #[test]
    fn bad_request_lines_give_up() {
        for line in [
            &b"GET /\r\n\r\n"[..],
            b"GET / HTTP/2.0\r\nReferer: r\r\n\r\n",
            b"GET  / HTTP/1.1\r\nReferer: r\r\n\r\n",
            b"GET / http/1.1\r\nReferer: r\r\n\r\n",
            b"GET / HTTP/1.1 \r\nReferer: r\r\n\r\n",
            b"G(T / HTTP/1.1\r\nReferer: r\r\n\r\n",
            b"\r\nGET / HTTP/1.1\r\nReferer: r\r\n\r\n",
            b"GET / HTTP/1.1\rReferer: r\r\n\r\n",
        ] {
            refused(line, b"", "not an HTTP/1.x request line");
        }
    }

    #[test]
    fn http2_preface_refused() {
        let input = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04";
        refused(input, b"", "HTTP/2 connection preface");
        // also when sniffing: it is HTTP, just not one this filter reads
        let options = Options {
            sniff: true,
            ..Options::default()
        };
        let run = filter_with(&options, input);
        assert_eq!((run.forward.len(), run.closed.len()), (0, 1));
    }

    #[test]
    fn malformed_header_lines_give_up() {
        for bad in [
            &b"Referer : r\r\n"[..],
            b"no colon\r\n",
            b" fold before any header\r\n",
            b": empty name\r\n",
            b"X-Bare: a\rReferer: r\r\n",
            b"X-Nul: a\x00b\r\n",
        ] {
            let mut input = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
            if bad.starts_with(b" ") {
                input.truncate(16);
            }
            input.extend_from_slice(bad);
            input.extend_from_slice(b"DNT: 1\r\n\r\n");
            refused(&input, b"", "malformed header line");
        }
    }

    #[test]
    fn second_request_give_up_keeps_first_sanitized() {
        let input =
            b"GET /1 HTTP/1.1\r\nDNT: 1\r\n\r\nGET /2 HTTP/1.1\r\nBad Header\r\nDNT: 1\r\n\r\n";
        refused(input, b"GET /1 HTTP/1.1\r\n\r\n", "malformed header line");
        let input = b"GET /1 HTTP/1.1\r\nDNT: 1\r\n\r\n\x16\x03\x01 not http";
        refused(
            input,
            b"GET /1 HTTP/1.1\r\n\r\n",
            "not an HTTP/1.x request line",
        );
    }

    #[test]
    fn framing_conflicts_give_up() {
        for (head, reason) in [
            (
                &b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"[..],
                "both Content-Length and Transfer-Encoding",
            ),
            (
                b"Content-Length: 5\r\nContent-Length: 6\r\n",
                "conflicting Content-Lengths",
            ),
            (b"Content-Length: 5, 6\r\n", "conflicting Content-Lengths"),
            (b"Content-Length: +5\r\n", "invalid Content-Length"),
            (b"Content-Length: \r\n", "invalid Content-Length"),
            (
                b"Content-Length: 99999999999999999999\r\n",
                "invalid Content-Length",
            ),
            (
                b"Transfer-Encoding: chunked, gzip\r\n",
                "Transfer-Encoding does not end in chunked",
            ),
            (
                b"Transfer-Encoding: gzip\r\n",
                "Transfer-Encoding does not end in chunked",
            ),
            (
                b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                "Transfer-Encoding does not end in chunked",
            ),
        ] {
            let mut input = b"POST / HTTP/1.1\r\nReferer: r\r\n".to_vec();
            input.extend_from_slice(head);
            input.extend_from_slice(b"\r\n5\r\nhello\r\n0\r\n\r\n");
            refused(&input, b"", reason);
        }
        let input = b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nDNT: 1\r\n\r\n0\r\n\r\n";
        refused(input, b"", "Transfer-Encoding in an HTTP/1.0 request");
    }

    #[test]
    fn bad_chunks_give_up() {
        let head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nDNT: 1\r\n\r\n";
        let sanitized = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        for (body, reason) in [
            (&b"x\r\n"[..], "bad chunk-size line"),
            (b"0x5\r\nhello\r\n", "bad chunk-size line"),
            (b"5 \r\nhello\r\n", "bad chunk-size line"),
            (b"-5\r\nhello\r\n", "bad chunk-size line"),
            (b"5;a\x01\r\nhello\r\n", "bad chunk-size line"),
            (b"10000000000000000\r\n", "bad chunk-size line"),
        ] {
            let mut input = head.to_vec();
            input.extend_from_slice(body);
            input.extend_from_slice(b"GET / HTTP/1.1\r\nDNT: 1\r\n\r\n");
            refused(&input, sanitized, reason);
        }
        // chunk data is passed by its length as it comes; what breaks the framing after
        // it is not
        for (body, passed, reason) in [
            (
                &b"3\r\nhello\r\n"[..],
                &b"3\r\nhel"[..],
                "chunk data not followed by a line ending",
            ),
            (
                b"3\r\nhel\rX",
                b"3\r\nhel\r",
                "chunk data not followed by a line ending",
            ),
            (
                b"0\r\nX: a\rb\r\n\r\n",
                b"0\r\nX: a\r",
                "bare CR in chunked trailers",
            ),
        ] {
            let mut input = head.to_vec();
            input.extend_from_slice(body);
            input.extend_from_slice(b"GET / HTTP/1.1\r\nDNT: 1\r\n\r\n");
            refused(&input, &[&sanitized[..], passed].concat(), reason);
        }
        let mut input = head.to_vec();
        input.extend_from_slice(b"5;");
        input.extend(std::iter::repeat(b'e').take(MAX_CHUNK_LINE));
        input.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
        refused(&input, sanitized, "chunk-size line too long");
    }

    /// Runs `input` through a request filter paired with a response watcher that first
    /// reads `response` (fed after the request bytes up to `at`), at every `at`.
    fn with_response(input: &[u8], response: &[u8]) -> Vec<Run> {
        (0..=input.len())
            .map(|at| {
                let (mut requests, mut responses) = Requests::with_responses(Options::default());
                let mut out = Output::default();
                let mut run = Run {
                    forward: Vec::new(),
                    changed: 0,
                    stopped: Vec::new(),
                    back: Vec::new(),
                    closed: Vec::new(),
                };
                requests.feed(&input[..at], &mut out);
                collect(&mut run, &mut out);
                responses.feed(response, &mut out);
                assert_eq!(out.forward, response, "responses pass as they are");
                out.clear();
                requests.feed(&input[at..], &mut out);
                requests.finish(&mut out);
                collect(&mut run, &mut out);
                run
            })
            .collect()
    }

    #[test]
    fn switch_passes_only_once_the_server_accepted() {
        let head =
            b"GET /chat HTTP/1.1\r\nHost: a.i2p\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
            User-Agent: x\r\n\r\n";
        let sanitized = format!(
            "GET /chat HTTP/1.1\r\nHost: a.i2p\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{UA}\r\n\r\n"
        );
        let frames = b"\x81\x85DNT: 1\r\n\r\n";
        let input = [&head[..], frames].concat();
        // accepted (after a 100 Continue): the frames pass, said once
        for run in with_response(
            &input,
            b"HTTP/1.1 100 Continue\r\nX: y\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n",
        ) {
            assert_eq!(run.forward, [sanitized.as_bytes(), frames].concat());
            assert_eq!(run.stopped.len(), 1);
            assert!(run.closed.is_empty());
        }
        // refused: what follows must be a request, and these frames are not
        for run in with_response(&input, b"HTTP/1.1 426 Upgrade Required\r\n") {
            assert_eq!(run.forward, sanitized.as_bytes());
            assert_eq!(run.closed, vec!["not an HTTP/1.x request line"]);
        }
        // refused, and the client carries on in HTTP: filtered
        let input = [&head[..], b"GET / HTTP/1.1\r\nDNT: 1\r\n\r\n"].concat();
        for run in with_response(&input, b"HTTP/1.1 400 Bad Request\r\n\r\n") {
            assert_eq!(
                run.forward,
                [sanitized.as_bytes(), b"GET / HTTP/1.1\r\n\r\n"].concat()
            );
            assert!(run.closed.is_empty() && run.stopped.is_empty());
        }
        // CONNECT: a 2xx opens the tunnel, a 101 does not
        let head = b"CONNECT a.i2p:443 HTTP/1.1\r\nHost: a.i2p:443\r\nProxy-Authorization: Basic eDp5\r\n\r\n";
        let sanitized = b"CONNECT a.i2p:443 HTTP/1.1\r\nHost: a.i2p:443\r\n\r\n";
        let input = [&head[..], b"\x16\x03\x01GET / HTTP/1.1\r\nDNT: 1\r\n\r\n"].concat();
        for run in with_response(&input, b"HTTP/1.0 200 Connection established\r\n\r\n") {
            assert_eq!(run.forward, [&sanitized[..], &input[head.len()..]].concat());
            assert_eq!(run.stopped.len(), 1);
        }
        for run in with_response(&input, b"HTTP/1.1 101 Switching Protocols\r\n") {
            assert_eq!(run.forward, sanitized);
            assert_eq!(run.closed.len(), 1);
        }
        // an unreadable answer is no switch
        for run in with_response(&input, b"SSH-2.0-x\r\n") {
            assert_eq!(run.forward, sanitized);
            assert_eq!(run.closed.len(), 1);
        }
    }

    #[test]
    fn connect_and_upgrade_without_a_known_answer_stay_filtered() {
        // (these passed everything after the head untouched before)
        let head = b"CONNECT a.i2p:443 HTTP/1.1\r\nHost: a.i2p:443\r\nProxy-Authorization: Basic eDp5\r\n\r\n";
        let input = [&head[..], b"\x16\x03\x01GET / HTTP/1.1\r\nDNT: 1\r\n\r\n"].concat();
        refused(
            &input,
            b"CONNECT a.i2p:443 HTTP/1.1\r\nHost: a.i2p:443\r\n\r\n",
            "not an HTTP/1.x request line",
        );
        // an Upgrade on a later request: its answer is not the first response
        let input = b"GET / HTTP/1.1\r\n\r\nGET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n\
            GET / HTTP/1.1\r\nReferer: r\r\nAccept-Language: de\r\n\r\n";
        for run in with_response(input, b"HTTP/1.1 200 OK\r\n") {
            assert_eq!(
                run.forward,
                &b"GET / HTTP/1.1\r\n\r\nGET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n\
                GET / HTTP/1.1\r\n\r\n"[..]
            );
            assert!(run.closed.is_empty() && run.stopped.is_empty());
        }
        // the server said nothing by the client's EOF: held bytes judged as a request
        let head = b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n";
        let (mut requests, _responses) = Requests::with_responses(Options::default());
        let mut out = Output::default();
        requests.feed(&[&head[..], b"GET / HTTP/1.1\r\nDNT: 1"].concat(), &mut out);
        assert_eq!(out.forward, head);
        requests.finish(&mut out);
        assert_eq!(out.forward, [&head[..], b"GET / HTTP/1.1\r\n"].concat());
        // Upgrade without Connection: upgrade is just a header
        let input = b"GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\nGET / HTTP/1.1\r\nDNT: 1\r\n\r\n";
        clean(
            input,
            b"GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\nGET / HTTP/1.1\r\n\r\n",
            1,
        );
    }

    #[test]
    fn waiting_for_a_switch_holds_at_most_64_kib() {
        let head = b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n";
        let (mut requests, _responses) = Requests::with_responses(Options::default());
        let mut out = Output::default();
        requests.feed(head, &mut out);
        out.clear();
        requests.feed(&vec![b'x'; MAX_HEAD], &mut out);
        assert!(out.forward.is_empty() && out.closed.is_none());
        requests.feed(b"x", &mut out);
        assert_eq!(
            (out.forward.len(), out.closed),
            (0, Some(CLOSE_SWITCH_WAIT))
        );
    }

    #[test]
    fn sniff_decisions() {
        assert_eq!(sniff(b""), Sniff::NeedMore);
        assert_eq!(sniff(b"\x16\x03\x01"), Sniff::No);
        assert_eq!(sniff(b"G"), Sniff::NeedMore);
        assert_eq!(sniff(b"GET /x HTTP/1."), Sniff::NeedMore);
        assert_eq!(sniff(b"GET /x HTTP/1.1\r"), Sniff::NeedMore);
        assert_eq!(sniff(b"GET /x HTTP/1.1\r\n"), Sniff::Yes);
        assert_eq!(sniff(b"GET /x HTTP/1.0\nHost"), Sniff::Yes);
        assert_eq!(sniff(b"GET /x HTTP/1.1\r\r"), Sniff::No);
        assert_eq!(sniff(b"SSH-2.0-OpenSSH_9.6\r\n"), Sniff::No);
        assert_eq!(sniff(b"NICK alice\r\n"), Sniff::No);
        assert_eq!(sniff(b"PRI * HTTP/2"), Sniff::No);
        assert_eq!(sniff(b" GET"), Sniff::No);
        // Lower case or overlong methods are not HTTP: not held waiting for a line end.
        assert_eq!(sniff(b"ping"), Sniff::No);
        assert_eq!(sniff(b"get / HTTP/1.1\r\n"), Sniff::No);
        assert_eq!(sniff(b"ABCDEFGHIJKLMNOPQRSTUVWXY"), Sniff::No);
        assert_eq!(sniff(b"ABCDEFGHIJKLMNOPQRSTUVWX"), Sniff::NeedMore);
        assert_eq!(sniff(b"ABCDEFGHIJKLMNOPQRSTUVWX / HTTP/1.1\n"), Sniff::Yes);
        // Monotone: no longer prefix changes a decided answer.
        let line = b"ABCDEFGHIJKLMNOPQRSTUVWXY / HTTP/1.1\n";
        for n in 25..=line.len() {
            assert_eq!(sniff(&line[..n]), Sniff::No, "{n}");
        }
        assert_eq!(sniff(b"VERSION-CONTROL / HTTP/1.1\n"), Sniff::Yes);
        assert_eq!(sniff(b"GET  "), Sniff::No);
    }

    #[test]
    fn sniffing_passes_non_http_untouched_without_stopping() {
        let options = Options {
            sniff: true,
            ..Options::default()
        };
        for input in [
            &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfcReferer: x\r\n\r\n"[..],
            b"SSH-2.0-OpenSSH_9.6\r\nReferer: x\r\n\r\n",
            b"NICK alice\r\nUSER a 0 * :A\r\n",
            b"GET / HTTP/1.1",
            b"",
        ] {
            let run = filter_with(&options, input);
            assert_eq!(run.forward, input);
            assert_eq!((run.changed, run.stopped.len()), (0, 0));
        }
        // not HTTP is decided at the first byte that says so, holding nothing more
        let mut filter = Requests::new(options.clone());
        let mut out = Output::default();
        filter.feed(b"NICK", &mut out);
        assert!(out.forward.is_empty());
        filter.feed(b" alice\r\n", &mut out);
        assert_eq!(out.forward, b"NICK alice\r\n");
        filter.feed(b"\x16", &mut out);
        assert_eq!(out.forward, b"NICK alice\r\n\x16");
        // and HTTP is still filtered when sniffing
        // (and something else after HTTP is refused)
        let run = filter_with(&options, b"GET / HTTP/1.1\r\nDNT: 1\r\n\r\n\x16");
        assert_eq!(run.forward, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(run.closed, vec!["not an HTTP/1.x request line"]);
        assert_eq!(run.stopped.len(), 0);
        // without sniffing, not-HTTP is a give-up
        refused(b"NICK alice\r\n", b"", "not an HTTP/1.x request line");
    }

    /// A request whose head is exactly `len` bytes long.
    fn head_of_len(len: usize) -> Vec<u8> {
        let fixed = b"GET / HTTP/1.1\r\nReferer: r\r\nX-Pad: \r\n\r\n".len();
        let mut head = b"GET / HTTP/1.1\r\nReferer: r\r\nX-Pad: ".to_vec();
        head.extend(std::iter::repeat(b'p').take(len - fixed));
        head.extend_from_slice(b"\r\n\r\n");
        assert_eq!(head.len(), len);
        head
    }

    #[test]
    fn head_at_64_kib_is_filtered() {
        let mut input = head_of_len(MAX_HEAD);
        input.extend_from_slice(b"GET / HTTP/1.1\r\nDNT: 1\r\n\r\n");
        let mut expected = input.clone();
        expected.drain(16..28);
        expected.truncate(expected.len() - 10);
        expected.extend_from_slice(b"\r\n");
        clean(&input, &expected, 2);
    }

    #[test]
    fn head_over_64_kib_refused() {
        let mut input = head_of_len(MAX_HEAD + 1);
        input.extend_from_slice(b"GET / HTTP/1.1\r\nDNT: 1\r\n\r\n");
        let run = refused(&input, b"", CLOSE_TOO_LONG);
        assert!(run
            .back
            .starts_with(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        // a request line alone over the bound
        let mut input = b"GET /".to_vec();
        input.extend(std::iter::repeat(b'a').take(MAX_HEAD));
        input.extend_from_slice(b" HTTP/1.1\r\n\r\n");
        refused(&input, b"", "request header block over 64 KiB");
        // a first line that fails only after what is sniffed early is still judged whole
        // at the bound: not HTTP, so passed silently when sniffing
        let mut input = b"GET /".to_vec();
        input.extend(std::iter::repeat(b'a').take(2 * EARLY_SNIFF));
        input.push(0x01);
        input.extend(std::iter::repeat(b'a').take(MAX_HEAD));
        refused(&input, b"", "not an HTTP/1.x request line");
        let options = Options {
            sniff: true,
            ..Options::default()
        };
        let run = filter_with(&options, &input);
        assert_eq!(run.forward, input);
        assert_eq!(run.stopped.len(), 0);
    }

    #[test]
    fn page_made_long_heads_never_pass_the_real_headers() {
        // (b): a 70 KB URL, or more than 64 KiB of cookies, on a reused connection: the
        // real User-Agent, Accept-Language, Referer and DNT of that request and of every
        // later one passed untouched before.
        let first = b"GET / HTTP/1.1\r\nHost: a.i2p\r\nUser-Agent: Firefox/128\r\n\r\n";
        let leaky = b"User-Agent: Firefox/128\r\nAccept-Language: de\r\nReferer: http://b.i2p/\r\nDNT: 1\r\n\r\n";
        let mut url = b"GET /?q=".to_vec();
        url.extend(std::iter::repeat(b'a').take(70_000));
        url.extend_from_slice(b" HTTP/1.1\r\n");
        let mut cookies = b"GET / HTTP/1.1\r\nCookie: c=".to_vec();
        cookies.extend(std::iter::repeat(b'c').take(66_000));
        cookies.extend_from_slice(b"\r\n");
        let sent = format!("GET / HTTP/1.1\r\nHost: a.i2p\r\n{UA}\r\n\r\n");
        for long in [&url, &cookies] {
            let input = [&first[..], long, leaky, first, leaky].concat();
            // a later request: no answer (responses may be outstanding), just closed
            let run = refused(&input, sent.as_bytes(), CLOSE_TOO_LONG);
            assert!(run.back.is_empty());
            // the first one: 431 to the client
            let input = [&long[..], leaky, first].concat();
            let run = refused(&input, b"", CLOSE_TOO_LONG);
            assert!(run.back.starts_with(b"HTTP/1.1 431 "));
        }
    }

    #[test]
    fn unreadable_heads_close_instead_of_passing() {
        // (c): each of these passed the rest of the connection untouched before
        let tail = b"GET / HTTP/1.1\r\nUser-Agent: Firefox/128\r\nReferer: r\r\n\r\n";
        for (head, reason) in [
            (
                &b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\nDNT: 1\r\n\r\n"[..],
                "both Content-Length and Transfer-Encoding",
            ),
            (b"GET / HTTP/1.1\r\nX-A: a\x00b\r\nDNT: 1\r\n\r\n", "malformed header line"),
            (b"GET / HTTP/1.1\r\nX-A: a\rReferer: r\r\n\r\n", "malformed header line"),
            (b"GET / HTTP/1.1\r\nReferer : r\r\n\r\n", "malformed header line"),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 56\r\nExpect: 100-continue\r\n\r\n",
                CLOSE_EXPECT,
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nexpect: 100-Continue\r\n\r\n",
                CLOSE_EXPECT,
            ),
        ] {
            let input = [head, tail].concat();
            let run = refused(&input, b"", reason);
            let status = if reason == CLOSE_EXPECT { "417" } else { "400" };
            assert!(run.back.starts_with(format!("HTTP/1.1 {status} ").as_bytes()));
        }
        // an Upgrade the server never accepted (no watcher): the next bytes must be HTTP
        let head = b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n";
        let run = filter(&[&head[..], tail].concat());
        assert_eq!(
            run.forward,
            [&head[..], b"GET / HTTP/1.1\r\n", UA.as_bytes(), b"\r\n\r\n"].concat()
        );
        assert_eq!((run.closed.len(), run.stopped.len()), (0, 0));
        // an expectation without a body frames nothing: kept
        let input = b"GET / HTTP/1.1\r\nExpect: 100-continue\r\nDNT: 1\r\n\r\n";
        clean(input, b"GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n", 1);
    }

    /// A small xorshift generator: reproducible adversarial inputs without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// A random keep-alive stream: requests whose headers include every leaking one (with
    /// values that name them), bodies of a harmless byte, and random corruptions.
    fn adversarial(rng: &mut Rng) -> Vec<u8> {
        let mut input = Vec::new();
        for _ in 0..1 + rng.below(4) {
            let eol: &[u8] = if rng.below(4) == 0 { b"\n" } else { b"\r\n" };
            let mut head = b"GET /p HTTP/1.1".to_vec();
            let headers: &[&[u8]] = &[
                b"Host: a.i2p",
                b"Referer: LEAK",
                b"DNT: LEAK",
                b"User-Agent: LEAK",
                b"Accept-Language: LEAK",
                b"X-Forwarded-For: LEAK",
                b"Via: LEAK",
                b"Content-Length: 4",
                b"Transfer-Encoding: chunked",
                b"Expect: 100-continue",
                b"Upgrade: websocket",
                b"Connection: upgrade",
                b" folded",
                b"Accept: */*",
            ];
            let mut body: &[u8] = b"";
            for _ in 0..rng.below(8) {
                let h = headers[rng.below(headers.len())];
                head.extend_from_slice(eol);
                head.extend_from_slice(h);
                if h.starts_with(b"Content-Length") {
                    body = b"bbbb";
                } else if h.starts_with(b"Transfer") {
                    body = b"4\r\nbbbb\r\n0\r\n\r\n";
                }
            }
            head.extend_from_slice(eol);
            head.extend_from_slice(eol);
            head.extend_from_slice(body);
            for _ in 0..rng.below(3) {
                let at = rng.below(head.len() + 1);
                // (not a space or a colon: a fold or a new name is a real reading of
                // the line, not a leak, and would make `LEAK` legitimately pass)
                let junk: &[u8] = &[0, b'\r', b'\n', 0x16, 0x7f];
                head.insert(at, junk[rng.below(junk.len())]);
            }
            if rng.below(8) == 0 {
                head.truncate(rng.below(head.len() + 1));
            }
            input.extend_from_slice(&head);
        }
        input
    }

    #[test]
    fn adversarial_streams_never_leak() {
        // Nothing the deny list covers leaves the filter, whatever the stream and however
        // it is split: every value that names a leak is `LEAK`, bodies are `b`s, so any
        // `LEAK` forwarded is one that should have been removed; and what is forwarded,
        // filtered again, has nothing left to change.
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..1500 {
            let input = adversarial(&mut rng);
            let run = if input.len() < 200 {
                filter(&input)
            } else {
                run_pieces(&Options::default(), &[&input])
            };
            let shown = String::from_utf8_lossy(&input).into_owned();
            assert!(
                !run.forward.windows(4).any(|w| w == b"LEAK"),
                "leaked from {shown:?}: {:?}",
                String::from_utf8_lossy(&run.forward)
            );
            assert!(run.stopped.is_empty(), "stood aside on {shown:?}");
            let again = run_pieces(&Options::default(), &[&run.forward]);
            assert_eq!(again.changed, 0, "{shown:?}");
        }
    }

    #[test]
    fn finish_sanitizes_a_held_partial_head() {
        // complete lines filtered, the last incomplete line judged by its name
        let input = b"GET / HTTP/1.1\r\nHost: a.i2p\r\nReferer: r\r\nX-A: 1\r\nReferer: http://sec";
        clean(input, b"GET / HTTP/1.1\r\nHost: a.i2p\r\nX-A: 1\r\n", 2);
        let input = b"GET / HTTP/1.1\r\nUser-Agent: x\r\n fold\r";
        clean(input, format!("GET / HTTP/1.1\r\n{UA}\r\n").as_bytes(), 1);
        let input = b"GET / HTTP/1.1\r\nUser-Agent: Moz\r";
        clean(input, format!("GET / HTTP/1.1\r\n{UA}\r").as_bytes(), 1);
        // a name fragment has no value to leak; the end of the block is kept
        let input = b"GET / HTTP/1.1\r\nDNT: 1\r\nRefe";
        clean(input, b"GET / HTTP/1.1\r\nRefe", 1);
        let input = b"GET / HTTP/1.1\r\nDNT: 1\r\n\r";
        clean(input, b"GET / HTTP/1.1\r\n\r", 1);
        // an incomplete request line holds no header
        clean(b"GET /some/pa", b"GET /some/pa", 0);
        // a finished body holds nothing
        let input = b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc";
        clean(input, input, 0);
        // (an incomplete chunk-size line is not passed: it was never parsed)
        let input = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y";
        clean(input, &input[..input.len() - 5], 0);
    }

    fn forward_options() -> Options {
        Options {
            forward: true,
            ..Options::default()
        }
    }

    /// Forward mode, every split: `input` becomes `forward` with `changed` changes, nothing
    /// goes back to the client, and the filter never stops.
    fn forwarded(input: &[u8], forward: &[u8], changed: u64) {
        let run = filter_with(&forward_options(), input);
        assert_eq!(
            String::from_utf8_lossy(&run.forward),
            String::from_utf8_lossy(forward)
        );
        assert_eq!(run.changed, changed);
        assert_eq!(run.stopped, Vec::<&str>::new());
        assert_eq!(String::from_utf8_lossy(&run.back), "");
    }

    /// Forward mode, every split: nothing reaches the server, the client hears 400 `why`.
    fn forward_refused(input: &[u8], why: &str) {
        let run = filter_with(&forward_options(), input);
        assert_eq!(String::from_utf8_lossy(&run.forward), "");
        assert_eq!(run.changed, 1);
        assert_eq!(run.stopped, Vec::<&str>::new());
        let back = String::from_utf8(run.back).unwrap();
        assert!(back.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{back}");
        assert!(back.contains("\r\nConnection: close\r\n"), "{back}");
        assert!(back.ends_with(&format!("\r\n\r\n{why}\n")), "{back}");
        let length = format!("Content-Length: {}\r\n", why.len() + 1);
        assert!(back.contains(&length), "{back}");
    }

    #[test]
    fn forward_curl_request() {
        let input = b"GET http://abc.i2p/ HTTP/1.1\r\nHost: abc.i2p\r\nUser-Agent: curl/8.5.0\r\n\
            Accept: */*\r\nProxy-Connection: Keep-Alive\r\n\r\n";
        // request line, User-Agent, Proxy-Connection, Connection added
        let expected = format!(
            "GET / HTTP/1.1\r\nHost: abc.i2p\r\n{UA}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        forwarded(input, expected.as_bytes(), 4);
    }

    #[test]
    fn forward_host_loses_alt() {
        // curl http://demo.i2p.alt/ through the HTTP proxy: the site sees its .i2p name
        let input = b"GET http://demo.i2p.alt/ HTTP/1.1\r\nHost: demo.i2p.alt\r\n\
            Accept: */*\r\n\r\n";
        let expected =
            b"GET / HTTP/1.1\r\nHost: demo.i2p\r\nAccept: */*\r\nConnection: close\r\n\r\n";
        forwarded(input, expected, 3);
    }

    #[test]
    fn host_loses_alt_on_filtered_streams() {
        // SOCKS to port 80 with the HTTP filter: the same rewrite, port and case kept
        clean(
            b"GET / HTTP/1.1\nhost:  Forum.Example.I2P.ALT:8080 \n\n",
            b"GET / HTTP/1.1\nhost: Forum.Example.I2P:8080\n\n",
            1,
        );
        clean(
            b"GET / HTTP/1.1\r\nHost: abcd.b32.i2p.alt.\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: abcd.b32.i2p\r\n\r\n",
            1,
        );
        // nothing to strip: byte for byte
        for host in [
            &b"demo.i2p"[..],
            b"x.alt",
            b".i2p.alt",
            b"i2p.alt",
            b"demo.i2p.alt.example",
        ] {
            let mut input = b"GET / HTTP/1.1\r\nHost: ".to_vec();
            input.extend_from_slice(host);
            input.extend_from_slice(b"\r\n\r\n");
            clean(&input, &input, 0);
        }
    }

    #[test]
    fn forward_git_request() {
        let input = b"GET http://git.i2p/repo.git/info/refs?service=git-upload-pack HTTP/1.1\r\n\
            Host: git.i2p\r\nUser-Agent: git/2.43.0\r\nAccept: */*\r\n\
            Accept-Encoding: deflate, gzip\r\nProxy-Connection: Keep-Alive\r\nPragma: no-cache\r\n\r\n";
        let expected = format!(
            "GET /repo.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: git.i2p\r\n{UA}\r\n\
            Accept: */*\r\nAccept-Encoding: deflate, gzip\r\nPragma: no-cache\r\nConnection: close\r\n\r\n"
        );
        forwarded(input, expected.as_bytes(), 4);
    }

    #[test]
    fn forward_request_line_to_origin_form() {
        for (line, origin) in [
            (&b"GET http://abc.i2p HTTP/1.1"[..], &b"GET / HTTP/1.1"[..]),
            (
                b"GET HTTP://ABC.I2P:8080?q=1 HTTP/1.1",
                b"GET /?q=1 HTTP/1.1",
            ),
            (
                b"HEAD Http://abc.i2p:80/a/b?c=d&e HTTP/1.1",
                b"HEAD /a/b?c=d&e HTTP/1.1",
            ),
            (
                b"OPTIONS http://[2001:db8::1]:81/x HTTP/1.1",
                b"OPTIONS /x HTTP/1.1",
            ),
            (
                b"GET http://abc.i2p/%20a//b/ HTTP/1.1",
                b"GET /%20a//b/ HTTP/1.1",
            ),
        ] {
            let input = [line, b"\r\nConnection: close\r\n\r\n"].concat();
            let expected = [origin, b"\r\nConnection: close\r\n\r\n"].concat();
            forwarded(&input, &expected, 1);
        }
        // bare LF endings, HTTP/1.0: the added header ends like the request line
        forwarded(
            b"GET http://abc.i2p/x HTTP/1.0\nHost: abc.i2p\n\n",
            b"GET /x HTTP/1.0\nHost: abc.i2p\nConnection: close\n\n",
            2,
        );
    }

    #[test]
    fn forward_connection_is_close() {
        forwarded(
            b"GET http://a.i2p/ HTTP/1.1\r\nConnection: keep-alive\r\nHost: a.i2p\r\n\r\n",
            b"GET / HTTP/1.1\r\nConnection: close\r\nHost: a.i2p\r\n\r\n",
            2,
        );
        // the first keeps its place and name; further ones, Keep-Alive and a fold go
        forwarded(
            b"GET http://a.i2p/ HTTP/1.1\r\nconnection: Keep-Alive,\r\n TE\r\nKeep-Alive: timeout=5\r\n\
            TE: trailers\r\nConnection: x-foo\r\nX-Foo: 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nconnection: close\r\nTE: trailers\r\nX-Foo: 1\r\n\r\n",
            4,
        );
        // already close: only the request line changes
        forwarded(
            b"GET http://a.i2p/ HTTP/1.1\r\nConnection: close\r\n\r\n",
            b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
            1,
        );
    }

    #[test]
    fn forward_drops_everything_after_the_first_request() {
        // a client reusing the connection for another site: that site's request, cookies
        // and all, must never reach this server
        let first = b"GET http://a.i2p/1 HTTP/1.1\r\nHost: a.i2p\r\n\r\n";
        let second = b"GET http://b.i2p/2 HTTP/1.1\r\nHost: b.i2p\r\nCookie: secret=1\r\n\r\n";
        let sent = b"GET /1 HTTP/1.1\r\nHost: a.i2p\r\nConnection: close\r\n\r\n";
        // request line, Connection added, the rest dropped
        forwarded(&[&first[..], second].concat(), sent, 3);
        // the same host again, empty lines, garbage: dropped alike
        forwarded(&[&first[..], first].concat(), sent, 3);
        forwarded(&[&first[..], b"\r\n\r\n"].concat(), sent, 3);
        forwarded(&[&first[..], b"\x16\x03\x01\x00"].concat(), sent, 3);
        forwarded(first, sent, 2);
        // a body is the request's own: passed, then the next request dropped
        let post = b"POST http://a.i2p/p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
        let sent = b"POST /p HTTP/1.1\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
        forwarded(&[&post[..], second].concat(), sent, 3);
        forwarded(&[&post[..], b"!"].concat(), sent, 3);
        let chunked = b"POST http://a.i2p/p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
            5;x=y\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n";
        let sent = b"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
            5;x=y\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n";
        forwarded(&[&chunked[..], second].concat(), sent, 3);
        // a body cut short by the client's EOF: what came is passed
        forwarded(
            b"POST http://a.i2p/ HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc",
            b"POST / HTTP/1.1\r\nContent-Length: 10\r\nConnection: close\r\n\r\nabc",
            2,
        );
        forwarded(b"", b"", 0);
    }

    #[test]
    fn forward_never_passes_unfiltered() {
        // an upgrade is not made (Connection: close), and the bytes after are dropped
        let input =
            b"GET http://a.i2p/ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\
            \x81\x85GET / HTTP/1.1\r\nReferer: r\r\n\r\n";
        forwarded(
            input,
            b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: close\r\n\r\n",
            3,
        );
        // a bad chunk after the head was sent: the rest is dropped, not passed
        let head = b"POST http://a.i2p/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let sent = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
        for (body, passed) in [
            (&b"x\r\nReferer: r\r\n"[..], &b""[..]),
            (b"3\r\nhello\r\nReferer: r\r\n", b"3\r\nhel"),
            (b"0\r\nX: a\rReferer: r\r\n\r\n", b"0\r\nX: a\r"),
        ] {
            let expected = [&sent[..], passed].concat();
            forwarded(&[&head[..], body].concat(), &expected, 3);
        }
        // an incomplete head at EOF is not sent at all
        let run = filter_with(
            &forward_options(),
            b"GET http://a.i2p/ HTTP/1.1\r\nReferer: r",
        );
        assert_eq!((run.forward.len(), run.changed, run.back.len()), (0, 1, 0));
    }

    #[test]
    fn forward_unusable_first_request_is_refused() {
        forward_refused(
            b"POST http://a.i2p/ HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n\
            5\r\nhello\r\n0\r\n\r\n",
            "both Content-Length and Transfer-Encoding",
        );
        forward_refused(
            b"POST http://a.i2p/ HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            "conflicting Content-Lengths",
        );
        forward_refused(
            b"GET / HTTP/1.1\r\nHost: a.i2p\r\n\r\n",
            "not a request for an http:// URL",
        );
        forward_refused(
            b"GET https://a.i2p/ HTTP/1.1\r\nHost: a.i2p\r\n\r\n",
            "not a request for an http:// URL",
        );
        forward_refused(
            b"GET http://a.i2p/ HTTP/1.1\r\nBad Header\r\n\r\n",
            "malformed header line",
        );
        forward_refused(b"\x16\x03\x01\x02\x00", "not an HTTP/1.x request line");
        forward_refused(
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04",
            "HTTP/2 connection preface",
        );
        // sniffing does not turn forward mode into passing
        let options = Options {
            sniff: true,
            ..forward_options()
        };
        let run = filter_with(&options, b"SSH-2.0-OpenSSH_9.6\r\n");
        assert_eq!((run.forward.len(), run.changed), (0, 1));
        assert!(run.back.starts_with(b"HTTP/1.1 400 "));
    }

    #[test]
    fn body_passed_in_large_slices() {
        let mut filter = Requests::new(Options::default());
        let mut out = Output::default();
        filter.feed(
            b"PUT /f HTTP/1.1\r\nContent-Length: 1000000\r\nDNT: 1\r\n\r\nstart",
            &mut out,
        );
        assert_eq!(
            out.forward,
            b"PUT /f HTTP/1.1\r\nContent-Length: 1000000\r\n\r\nstart"
        );
        out.clear();
        let block = vec![b'\n'; 999_990];
        filter.feed(&block, &mut out);
        assert_eq!(out.forward.len(), block.len());
        out.clear();
        filter.feed(b"0123GET / HTTP/1.1\r\nDNT: 1\r\n\r\n", &mut out);
        assert_eq!(out.forward, b"0123GET / HTTP/1.1\r\n\r\n");
        assert_eq!((out.changed, out.stopped), (1, None));
    }
}
