//! IRC leak filter, one [`Filter`] per direction: [`Outbound`] (client to server) and
//! [`Inbound`] (server to client). The ideas follow Java I2P's `IRCFilter` (used by its IRC
//! and SOCKS-IRC tunnels); the code is written for eepsocks.
//!
//! # Lines
//! A line ends with `\n`; a `\r` just before it belongs to the line ending, which is kept as
//! the sender wrote it (a rewritten line gets the ending of the line it replaces). A line is
//! parsed as IRC: optional IRCv3 `@tags`, optional `:prefix`, the command (a letter token or
//! a 3-digit numeric, compared case-insensitively), up to 15 parameters, the last one
//! possibly a `:trailing` one. Empty lines pass untouched (servers and clients ignore them).
//! A line longer than [`MAX_LINE`] is dropped together with the rest of it up to its `\n`.
//! A line with a NUL or a `\r` that is not part of the line ending is dropped: servers and
//! clients that end lines at either byte would otherwise see a second line the filter never
//! judged.
//!
//! # The first client line, and failing closed
//! Nothing either direction carries is ever passed unread. The server → client direction
//! is IRC from its first byte: a line that is not IRC (binary, no command, too long) is
//! dropped like any bad line, so no server line can switch filtering off, and CTCP
//! requests and DCC offers are always dropped.
//!
//! The client → server direction decides on its first non-empty line whether the client
//! speaks IRC at all (eepsocks may guess IRC from the port). If it does not, the filter
//! refuses the stream: it sets [`Output::closed`] once, forwards nothing of that line or
//! anything after, and the caller closes the stream (a client speaking TLS on 6667 gets a
//! closed connection and a log line saying why, not a stream whose later lines nobody
//! reads). It does so when the first line:
//! - holds a byte no IRC line holds: a control byte other than tab and the formatting/CTCP
//!   bytes `\x01`-`\x04`, `\x0f`, `\x11`, `\x16`, `\x1d`-`\x1f` (a `\r` only as part of the
//!   line ending), or DEL;
//! - has no command, or a command that is neither letters only nor exactly three digits;
//! - is an HTTP request line (`... HTTP/1.1`: a letter-token command, so the shape alone
//!   would not tell it apart);
//! - reaches [`MAX_LINE`] bytes without a line end.
//!
//! The first two are checked as the bytes arrive, so a binary protocol is refused at its
//! first impossible byte rather than held until a line end that may never come. After a
//! good first line the filter never refuses: bad lines are dropped.
//!
//! # Outbound (client to server)
//! - Commands not in [`OUTBOUND_COMMANDS`] are dropped: a command the filter does not know
//!   is a command whose leaks it cannot judge (`WEBIRC`, for one, carries an IP address).
//! - A `:prefix` from the client is removed: servers ignore it, and a client may fill it
//!   with `nick!user@its-real-host`.
//! - A line holding `\x01` passes only as a `PRIVMSG`/`NOTICE`/`CPRIVMSG`/`CNOTICE` whose
//!   text is one CTCP `ACTION` (`\x01ACTION ...` with an optional closing `\x01`): CTCP
//!   replies carry the client's version, local time, user info; anything else with `\x01`
//!   is dropped, whatever its command. A `DCC`/`XDCC` CTCP is dropped and the client is told
//!   with a `NOTICE` in [`Output::back`] (a DCC offer holds the user's IP address, and the
//!   user should learn why the transfer never starts). A CTCP request (`PRIVMSG`) is told
//!   too, rate-limited (see [`Told`]); a CTCP reply (`NOTICE`) is the client's automatic
//!   answer and dropped silently.
//! - `USER u h s :realname` becomes `USER u hostname localhost :realname`: the host and
//!   server fields carry whatever the client put there (its host name, sometimes its IP).
//!   The user name stays (bouncers such as ZNC and soju log in with it) and so does the
//!   real name, unless either equals one of the account names the caller passed to
//!   [`Outbound::hiding`]: irssi and HexChat default them to the login name and passwd full
//!   name. Such a field becomes [`NEUTRAL_NAME`].
//! - `QUIT :reason` becomes `QUIT :leaving`, `PART #chan :reason` becomes
//!   `PART #chan :leaving`: clients put their name and version in default reasons.
//! - `PONG` keeps only its last parameter, the token the server sent in its `PING` (servers
//!   check it, so it is never replaced), dropping the daemon names some clients put first
//!   (their own host name among them).
//! - `PING` keeps its parameters only when they are all `.i2p` names (the server's address
//!   as the client knows it); anything else, a host name or a millisecond timestamp (a
//!   clock fingerprint), becomes `PING 127.0.0.1`. A client that matches `PONG` tokens
//!   for its lag meter then sees no lag figure; the connection itself is unaffected.
//! - `NICK`: the last nick the client asked for is remembered for the DCC notice.
//! - A `USER` short of its four parameters is dropped (a server could read its fields in
//!   another order), and so is a rewritten line that grew past [`MAX_LINE`].
//!
//! # Inbound (server to client)
//! - Numerics and the commands in [`INBOUND_COMMANDS`] pass; others are dropped: a client
//!   may act on a message it understands and the filter does not.
//! - `PRIVMSG`/`NOTICE` holding a CTCP other than one `ACTION` are dropped, so the client
//!   never answers `VERSION`, `TIME`, `PING`, `CLIENTINFO`... and never sees a DCC offer
//!   (accepting one connects to an IP address outside I2P). A dropped DCC offer is replaced
//!   by a `NOTICE` from `eepsocks` to the offer's target, rate-limited (see [`Told`]).
//! - `PING` passes as it is: the client's `PONG` must echo the server's token.
//! - Tags and prefixes pass: they are the server's and the client needs them.

use crate::{Filter, Output};

/// Longest line accepted, its line ending included: IRCv3 message tags may take up to 8,191
/// bytes (the `@` and the space after them included) on top of the 512 bytes RFC 1459
/// allows for the rest of a message, CR LF included.
pub const MAX_LINE: usize = 8191 + 512;

/// Most parameters a message has (RFC 1459: 14 middle ones and a trailing one); a 15th
/// parameter takes the rest of the line, spaces and all.
const MAX_PARAMS: usize = 15;

/// Why the client → server filter refused a stream: the client's first line is not IRC.
pub const CLOSE_NOT_IRC: &str = "the client's first line is not IRC (set filter = \"none\" on this listener for other protocols)";
/// Why the client → server filter refused a stream: no line end within [`MAX_LINE`] bytes.
pub const CLOSE_TOO_LONG: &str = "the client's first line is longer than an IRC line may be";

/// Client commands passed on (compared case-insensitively). RFC 1459/2812 client and
/// operator commands (the operator ones as Java I2P allows them), IRCv3 (`CAP`,
/// `AUTHENTICATE`, `SETNAME`, `MONITOR`, `TAGMSG`, `BATCH` for multiline, `CHATHISTORY`,
/// `MARKREAD`, `REDACT`), common extensions (`WATCH`, `ACCEPT`, `KNOCK`, `SILENCE`, `HELPOP`,
/// `SQUERY`, `USERIP`, `CPRIVMSG`/`CNOTICE`) and the services aliases. Left out on purpose:
/// `WEBIRC` (an IP address and host name) and anything else unknown.
pub const OUTBOUND_COMMANDS: &[&str] = &[
    "ACCEPT",
    "ADMIN",
    "AUTHENTICATE",
    "AWAY",
    "BATCH",
    "CAP",
    "CHATHISTORY",
    "CNOTICE",
    "CPRIVMSG",
    "DIE",
    "GLINE",
    "HELP",
    "HELPOP",
    "INFO",
    "INVITE",
    "ISON",
    "JOIN",
    "KICK",
    "KILL",
    "KLINE",
    "KNOCK",
    "LINKS",
    "LIST",
    "LUSERS",
    "MAP",
    "MARKREAD",
    "MODE",
    "MONITOR",
    "MOTD",
    "NAMES",
    "NICK",
    "NOTICE",
    "OPER",
    "PART",
    "PASS",
    "PING",
    "PONG",
    "PRIVMSG",
    "QUIT",
    "REDACT",
    "REHASH",
    "RULES",
    "SAJOIN",
    "SAMODE",
    "SANICK",
    "SAPART",
    "SETNAME",
    "SILENCE",
    "SQUERY",
    "SQUIT",
    "STATS",
    "TAGMSG",
    "TIME",
    "TOPIC",
    "TRACE",
    "UNKLINE",
    "USER",
    "USERHOST",
    "USERIP",
    "VERSION",
    "WALLOPS",
    "WATCH",
    "WHO",
    "WHOIS",
    "WHOWAS",
    // Services aliases.
    "BS",
    "BOTSERV",
    "CS",
    "CHANSERV",
    "HS",
    "HOSTSERV",
    "MS",
    "MEMOSERV",
    "NS",
    "NICKSERV",
    "OS",
    "OPERSERV",
];

/// Server commands passed on besides numerics (compared case-insensitively): RFC 1459/2812
/// messages a client gets, and IRCv3 ones (`CAP`, `AUTHENTICATE`, `ACCOUNT`, `CHGHOST`,
/// `SETNAME`, `BATCH`, `TAGMSG`, `ACK`, `FAIL`/`WARN`/`NOTE`, `MARKREAD`, `REDACT`, `RENAME`).
/// None of them makes a client reach outside the connection or reveal anything.
pub const INBOUND_COMMANDS: &[&str] = &[
    "ACCOUNT",
    "ACK",
    "AUTHENTICATE",
    "AWAY",
    "BATCH",
    "CAP",
    "CHGHOST",
    "ERROR",
    "FAIL",
    "INVITE",
    "JOIN",
    "KICK",
    "KILL",
    "MARKREAD",
    "MODE",
    "NICK",
    "NOTE",
    "NOTICE",
    "PART",
    "PING",
    "PONG",
    "PRIVMSG",
    "QUIT",
    "REDACT",
    "RENAME",
    "SETNAME",
    "SILENCE",
    "TAGMSG",
    "TOPIC",
    "WALLOPS",
    "WARN",
];

/// Messages whose text may hold a CTCP.
const MESSAGE_COMMANDS: &[&str] = &["PRIVMSG", "NOTICE", "CPRIVMSG", "CNOTICE"];

/// What the client is told when its DCC offer is dropped, after `:eepsocks NOTICE <nick> `.
const DCC_NOTICE_TEXT: &[u8] =
    b":eepsocks dropped a DCC offer: DCC would reveal your IP address\r\n";

/// What `USER` gets in place of a user name or real name that names the local account:
/// a word every eepsocks user sends alike, and a valid user name on every server (letters
/// only; servers that prefix `~` for want of ident still accept it).
pub const NEUTRAL_NAME: &[u8] = b"user";

/// Longest name accepted into [`Outbound::hiding`]'s list (a GECOS full name is short;
/// anything longer is not a name a client would copy into `USER`).
const MAX_ACCOUNT_NAME: usize = 256;

/// The client-to-server filter.
#[derive(Debug, Default)]
pub struct Outbound {
    lines: Lines,
    rules: OutRules,
}

/// The server-to-client filter.
#[derive(Debug)]
pub struct Inbound {
    lines: Lines,
    rules: InRules,
}

impl Default for Inbound {
    fn default() -> Self {
        Inbound {
            // IRC from the first byte: no server line can make the filter stand aside.
            lines: Lines {
                established: true,
                ..Lines::default()
            },
            rules: InRules::default(),
        }
    }
}

impl Outbound {
    pub fn new() -> Self {
        Self::default()
    }

    /// A filter that also replaces, in `USER`, a user name or real name equal to one of
    /// `names` (compared ignoring ASCII case and surrounding spaces; a user name also
    /// without a leading `~`) with [`NEUTRAL_NAME`]. The caller passes the login names and
    /// full names of the accounts involved (the client's, its own); the filter cannot see
    /// them. Empty names and names over 256 bytes are ignored.
    pub fn hiding<N: AsRef<[u8]>>(names: impl IntoIterator<Item = N>) -> Self {
        let mut f = Self::default();
        for n in names {
            let n = trim_spaces(n.as_ref());
            if !n.is_empty()
                && n.len() <= MAX_ACCOUNT_NAME
                && !f.rules.account.iter().any(|a| a.eq_ignore_ascii_case(n))
            {
                f.rules.account.push(n.to_vec());
            }
        }
        f
    }
}

impl Inbound {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Both directions are line framing plus their own rules: one `Filter` impl for both.
macro_rules! line_filter {
    ($($direction:ty),*) => {$(
        impl Filter for $direction {
            fn feed(&mut self, input: &[u8], out: &mut Output) {
                self.lines.feed(&mut self.rules, input, out);
            }
            fn finish(&mut self, out: &mut Output) {
                self.lines.finish(&mut self.rules, out);
            }
        }
    )*};
}
line_filter!(Outbound, Inbound);

/// The per-direction rules for one complete, non-empty line of an established direction.
trait Rules {
    /// `raw` is the whole line, `content` it without its `ending`.
    fn line(&mut self, raw: &[u8], content: &[u8], ending: &[u8], out: &mut Output);
}

/// Line framing, the first-line decision and the length limit, shared by both directions.
#[derive(Debug, Default)]
struct Lines {
    /// The incomplete line so far (always shorter than [`MAX_LINE`]).
    held: Vec<u8>,
    /// Skipping the rest of an over-long line, up to and including its `\n`.
    discarding: bool,
    /// A first non-empty line looked like IRC (or this is the server's direction): never
    /// refuse from now on.
    established: bool,
    /// Refused the stream: everything is dropped.
    closed: bool,
    /// The shape of the first line's bytes held so far (until the direction is established).
    shape: Shape,
}

impl Lines {
    fn feed<R: Rules>(&mut self, rules: &mut R, mut input: &[u8], out: &mut Output) {
        while !input.is_empty() {
            if self.closed {
                return;
            }
            if self.discarding {
                match input.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        input = &input[i + 1..];
                        self.discarding = false;
                    }
                    None => return,
                }
                continue;
            }
            // A line may take `room` more bytes, its `\n` included.
            let room = MAX_LINE - self.held.len();
            let window = &input[..input.len().min(room)];
            if let Some(i) = window.iter().position(|&b| b == b'\n') {
                self.held.extend_from_slice(&input[..=i]);
                input = &input[i + 1..];
                let line = std::mem::take(&mut self.held);
                self.shape = Shape::default();
                self.line(rules, &line, out);
                // Keep the allocation for the next line.
                self.held = line;
                self.held.clear();
            } else {
                self.held.extend_from_slice(window);
                input = &input[window.len()..];
                if !self.established {
                    window.iter().for_each(|&b| self.shape.push(b));
                    debug_assert_eq!(self.shape.plausible(), plausible_start(&self.held));
                }
                if !self.established && !self.shape.plausible() {
                    self.close(CLOSE_NOT_IRC, out);
                } else if self.held.len() >= MAX_LINE {
                    if self.established {
                        // Too long for any IRC peer to accept whole; one that cut it up
                        // would see lines the filter never judged.
                        self.held.clear();
                        self.discarding = true;
                        out.changed += 1;
                    } else {
                        self.close(CLOSE_TOO_LONG, out);
                    }
                }
            }
        }
    }

    fn finish<R: Rules>(&mut self, rules: &mut R, out: &mut Output) {
        self.discarding = false;
        if !self.held.is_empty() && !self.closed {
            let line = std::mem::take(&mut self.held);
            self.line(rules, &line, out);
        }
    }

    /// Refuses the stream: nothing held or later is forwarded.
    fn close(&mut self, reason: &'static str, out: &mut Output) {
        self.closed = true;
        self.held = Vec::new();
        out.closed = Some(reason);
    }

    /// One line: complete (ends with `\n`) or the last one at EOF.
    fn line<R: Rules>(&mut self, rules: &mut R, raw: &[u8], out: &mut Output) {
        let (content, ending) = split_ending(raw);
        if content.is_empty() {
            out.forward.extend_from_slice(raw);
            return;
        }
        if !self.established {
            if !looks_like_irc(content) {
                self.close(CLOSE_NOT_IRC, out);
                return;
            }
            self.established = true;
        }
        rules.line(raw, content, ending, out);
    }
}

/// A line without its ending (`\r\n`, `\n`, or at EOF a lone `\r`), and the ending.
fn split_ending(raw: &[u8]) -> (&[u8], &[u8]) {
    let cut = if raw.ends_with(b"\r\n") {
        2
    } else if raw.ends_with(b"\n") || raw.ends_with(b"\r") {
        1
    } else {
        0
    };
    raw.split_at(raw.len() - cut)
}

/// A byte no IRC line holds: control bytes other than tab and the CTCP/formatting ones
/// (`\x01` CTCP, `\x02` bold, `\x03` colour, `\x04` hex colour, `\x0f` reset, `\x11`
/// monospace, `\x16` reverse, `\x1d` italics, `\x1e` strikethrough, `\x1f` underline), and
/// DEL. `\r` counts: the caller strips the line ending first.
fn is_binary(b: u8) -> bool {
    match b {
        0x01..=0x04 | b'\t' | 0x0f | 0x11 | 0x16 | 0x1d..=0x1f => false,
        0x00..=0x1f | 0x7f => true,
        _ => false,
    }
}

fn skip_spaces(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && s[i] == b' ' {
        i += 1;
    }
    i
}

fn token_end(s: &[u8], i: usize) -> usize {
    s[i..]
        .iter()
        .position(|&b| b == b' ')
        .map_or(s.len(), |p| i + p)
}

fn is_command(cmd: &[u8]) -> bool {
    (!cmd.is_empty() && cmd.iter().all(u8::is_ascii_alphabetic))
        || (cmd.len() == 3 && cmd.iter().all(u8::is_ascii_digit))
}

/// Can `body`, the start of a first line, still become an IRC line? Once false, false for
/// every longer start too, so the verdict does not depend on how the bytes were split
/// into reads. `complete`: `body` is the whole line without its ending.
fn shape_ok(body: &[u8], complete: bool) -> bool {
    if body.iter().any(|&b| is_binary(b)) {
        return false;
    }
    let n = body.len();
    let mut i = skip_spaces(body, 0);
    for mark in [b'@', b':'] {
        if i < n && body[i] == mark {
            let e = token_end(body, i);
            if e == n {
                // Still inside the tags or prefix: no command yet.
                return !complete;
            }
            i = skip_spaces(body, e);
        }
    }
    let e = token_end(body, i);
    let cmd = &body[i..e];
    if complete || e < n {
        is_command(cmd)
    } else {
        // The command may still grow.
        cmd.iter().all(u8::is_ascii_alphabetic)
            || (cmd.len() <= 3 && cmd.iter().all(u8::is_ascii_digit))
    }
}

/// [`plausible_start`] kept up to date byte by byte, so that a first line arriving in many
/// small reads is not rescanned on each (the same verdict: checked in debug builds).
#[derive(Debug, Default)]
struct Shape {
    at: ShapeAt,
    /// The last byte was `\r`: fine only if the line ends next.
    cr: bool,
    bad: bool,
}

#[derive(Debug, Default)]
enum ShapeAt {
    /// Before anything but spaces: tags, a prefix or the command may come.
    #[default]
    Start,
    Tags,
    /// After the tags: a prefix or the command may come.
    AfterTags,
    Prefix,
    /// After the prefix: the command comes.
    AfterPrefix,
    /// In the command: its length, letters only so far, digits only so far.
    Command(usize, bool, bool),
    Params,
}

impl Shape {
    fn push(&mut self, b: u8) {
        if self.bad {
            return;
        }
        if self.cr || (b != b'\r' && is_binary(b)) {
            self.bad = true;
            return;
        }
        if b == b'\r' {
            self.cr = true;
            return;
        }
        let space = b == b' ';
        self.at = match self.at {
            ShapeAt::Start if space => ShapeAt::Start,
            ShapeAt::Start if b == b'@' => ShapeAt::Tags,
            ShapeAt::Start | ShapeAt::AfterTags if b == b':' => ShapeAt::Prefix,
            ShapeAt::AfterTags if space => ShapeAt::AfterTags,
            ShapeAt::AfterPrefix if space => ShapeAt::AfterPrefix,
            ShapeAt::Start | ShapeAt::AfterTags | ShapeAt::AfterPrefix => {
                ShapeAt::Command(1, b.is_ascii_alphabetic(), b.is_ascii_digit())
            }
            ShapeAt::Tags if space => ShapeAt::AfterTags,
            ShapeAt::Prefix if space => ShapeAt::AfterPrefix,
            ShapeAt::Tags => ShapeAt::Tags,
            ShapeAt::Prefix => ShapeAt::Prefix,
            ShapeAt::Command(n, letters, digits) if space => {
                self.bad = !(letters || (digits && n == 3));
                ShapeAt::Params
            }
            ShapeAt::Command(n, letters, digits) => ShapeAt::Command(
                n + 1,
                letters && b.is_ascii_alphabetic(),
                digits && b.is_ascii_digit(),
            ),
            ShapeAt::Params => ShapeAt::Params,
        };
        if let ShapeAt::Command(n, letters, digits) = self.at {
            self.bad = !(letters || (digits && n <= 3));
        }
    }

    fn plausible(&self) -> bool {
        !self.bad
    }
}

/// The start of a first line that has no line end yet (a last `\r` may be the start of
/// one).
fn plausible_start(held: &[u8]) -> bool {
    shape_ok(held.strip_suffix(b"\r").unwrap_or(held), false)
}

/// A whole first line (without its ending) that looks like IRC.
fn looks_like_irc(content: &[u8]) -> bool {
    shape_ok(content, true) && !is_http_request(content)
}

/// `METHOD target HTTP/x.y`: a letter-token command like IRC's, but HTTP.
fn is_http_request(content: &[u8]) -> bool {
    let n = content.len();
    n >= 9
        && content[n - 9..n - 3].eq_ignore_ascii_case(b" HTTP/")
        && content[n - 3].is_ascii_digit()
        && content[n - 2] == b'.'
        && content[n - 1].is_ascii_digit()
}

/// A parsed line; positions index the line's content.
struct Parsed {
    /// `@tags`, the `@` included.
    tags: Option<(usize, usize)>,
    /// The command, and the rest of the line from it.
    cmd: (usize, usize),
    /// Parameters: start, end, written as `:trailing`.
    params: [(usize, usize, bool); MAX_PARAMS],
    count: usize,
}

impl Parsed {
    fn param<'a>(&self, c: &'a [u8], i: usize) -> &'a [u8] {
        let (s, e, _) = self.params[i];
        &c[s..e]
    }
}

/// Parses a line as IRC; `None` when it has no command or a command that is neither a
/// letter token nor a 3-digit numeric.
fn parse(c: &[u8]) -> Option<Parsed> {
    let n = c.len();
    let mut i = skip_spaces(c, 0);
    let mut tags = None;
    if i < n && c[i] == b'@' {
        let e = token_end(c, i);
        tags = Some((i, e));
        i = skip_spaces(c, e);
    }
    if i < n && c[i] == b':' {
        i = skip_spaces(c, token_end(c, i));
    }
    let e = token_end(c, i);
    if !is_command(&c[i..e]) {
        return None;
    }
    let mut p = Parsed {
        tags,
        cmd: (i, e),
        params: [(0, 0, false); MAX_PARAMS],
        count: 0,
    };
    i = e;
    loop {
        i = skip_spaces(c, i);
        if i >= n {
            break;
        }
        if c[i] == b':' {
            p.params[p.count] = (i + 1, n, true);
            p.count += 1;
            break;
        }
        if p.count == MAX_PARAMS - 1 {
            p.params[p.count] = (i, n, false);
            p.count += 1;
            break;
        }
        let e = token_end(c, i);
        p.params[p.count] = (i, e, false);
        p.count += 1;
        i = e;
    }
    Some(p)
}

fn is_one_of(cmd: &[u8], list: &[&str]) -> bool {
    list.iter().any(|a| cmd.eq_ignore_ascii_case(a.as_bytes()))
}

/// The only CTCP let through: the message's last parameter is one `\x01ACTION` CTCP, with
/// or without its closing `\x01`, and the line has no other `\x01`.
fn is_action_only(c: &[u8], p: &Parsed) -> bool {
    if p.count == 0 {
        return false;
    }
    let (s, e, _) = p.params[p.count - 1];
    let text = &c[s..e];
    if !text.starts_with(b"\x01ACTION") || !matches!(text.get(7), None | Some(b' ' | 0x01)) {
        return false;
    }
    let inner = if text.len() >= 2 && text.ends_with(b"\x01") {
        &text[1..text.len() - 1]
    } else {
        &text[1..]
    };
    !c[..s].contains(&0x01) && !inner.contains(&0x01) && !c[e..].contains(&0x01)
}

/// A `DCC` or `XDCC` CTCP anywhere in the line.
fn has_dcc(c: &[u8]) -> bool {
    c.iter().enumerate().any(|(i, &b)| {
        if b != 0x01 {
            return false;
        }
        let rest = &c[i + 1..];
        let end = rest
            .iter()
            .position(|&b| b == b' ' || b == 0x01)
            .unwrap_or(rest.len());
        let word = &rest[..end];
        word.eq_ignore_ascii_case(b"DCC") || word.eq_ignore_ascii_case(b"XDCC")
    })
}

/// A parameter written back: `:` first when it was a trailing one or needs to be one.
fn push_param(out: &mut Vec<u8>, param: &[u8], trailing: bool) {
    out.push(b' ');
    if trailing || param.is_empty() || param.contains(&b' ') || param[0] == b':' {
        out.push(b':');
    }
    out.extend_from_slice(param);
}

/// A name ending in `.i2p`: the server's own address as the client knows it.
fn is_i2p_name(p: &[u8]) -> bool {
    p.len() > 4
        && p[p.len() - 4..].eq_ignore_ascii_case(b".i2p")
        && p.iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

/// Something IRC peers cannot agree on the framing of: cut at NUL, split at a lone `\r`.
fn has_framing_hazard(c: &[u8]) -> bool {
    c.iter().any(|&b| b == 0 || b == b'\r')
}

/// `s` without the spaces around it.
fn trim_spaces(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| b != b' ').unwrap_or(s.len());
    let end = s.iter().rposition(|&b| b != b' ').map_or(start, |e| e + 1);
    &s[start..end]
}

/// Counts drops of one kind the user is told about, and says when to tell: the 1st, the
/// 10th, the 100th... A peer sending a thousand DCC offers makes four notices, not a
/// thousand (the filter has no clock; a count bounds the notices just as well).
#[derive(Debug, Default)]
struct Told {
    dropped: u64,
}

impl Told {
    /// One more drop; `Some(drops so far)` when the user is to hear of it.
    fn drop(&mut self) -> Option<u64> {
        self.dropped += 1;
        let mut n = self.dropped;
        while n % 10 == 0 {
            n /= 10;
        }
        (n == 1).then_some(self.dropped)
    }
}

/// A peer's token (a nick, a channel, a CTCP word) made safe to quote in a notice: up to
/// its first space, printable bytes only (no CTCP or formatting bytes), no leading `:`,
/// at most `max` bytes (not cutting a UTF-8 character).
fn quoted(token: &[u8], max: usize) -> Vec<u8> {
    let word = token.split(|&b| b == b' ').next().unwrap_or_default();
    let mut v: Vec<u8> = word
        .iter()
        .copied()
        .filter(|&b| b > b' ' && b != 0x7f)
        .skip_while(|&b| b == b':')
        .collect();
    if v.len() > max {
        let mut cut = max;
        while cut > 0 && (0x80..0xc0).contains(&v[cut]) {
            cut -= 1;
        }
        v.truncate(cut);
    }
    v
}

/// `:eepsocks NOTICE <to> :eepsocks <text>[ (<n> dropped so far)]\r\n` into `buf`.
fn notice(buf: &mut Vec<u8>, to: &[u8], text: &[&[u8]], told: u64) {
    buf.extend_from_slice(b":eepsocks NOTICE ");
    buf.extend_from_slice(if to.is_empty() { b"*" } else { to });
    buf.extend_from_slice(b" :eepsocks ");
    text.iter().for_each(|t| buf.extend_from_slice(t));
    if told > 1 {
        buf.extend_from_slice(format!(" ({told} dropped on this connection so far)").as_bytes());
    }
    buf.extend_from_slice(b"\r\n");
}

/// The word of the first CTCP in a line (`VERSION`, `PING`...): letters and digits only.
fn ctcp_word(c: &[u8]) -> Vec<u8> {
    let start = c.iter().position(|&b| b == 0x01).map_or(c.len(), |i| i + 1);
    c[start..]
        .iter()
        .copied()
        .take_while(u8::is_ascii_alphanumeric)
        .take(32)
        .collect()
}

#[derive(Debug, Default)]
struct OutRules {
    /// The last nick the client asked for (empty: none yet), for the notices.
    nick: Vec<u8>,
    /// Names of the local accounts involved (see [`Outbound::hiding`]).
    account: Vec<Vec<u8>>,
    /// CTCP requests of the user's dropped so far.
    ctcp: Told,
}

impl OutRules {
    fn dcc_notice(&self, out: &mut Output) {
        out.back.extend_from_slice(b":eepsocks NOTICE ");
        if self.nick.is_empty() {
            out.back.push(b'*');
        } else {
            out.back.extend_from_slice(&self.nick);
        }
        out.back.push(b' ');
        out.back.extend_from_slice(DCC_NOTICE_TEXT);
    }

    /// The user's CTCP request (`/ctcp bob VERSION`) was dropped: say so, now and then.
    fn ctcp_notice(&mut self, c: &[u8], p: &Parsed, out: &mut Output) {
        let Some(told) = self.ctcp.drop() else {
            return;
        };
        let word = ctcp_word(c);
        let to = if p.count > 1 {
            quoted(p.param(c, 0), 64)
        } else {
            Vec::new()
        };
        notice(
            &mut out.back,
            &self.nick,
            &[
                b"dropped your CTCP ",
                if word.is_empty() { b"request" } else { &word },
                if to.is_empty() { b"" } else { b" to " },
                &to,
                b": only ACTION (/me) passes, as CTCP replies tell your client, its version \
                  and your clock",
            ],
            told,
        );
    }

    /// A user name or real name that names a local account.
    fn names_account(&self, name: &[u8]) -> bool {
        let name = trim_spaces(name);
        !name.is_empty() && self.account.iter().any(|a| a.eq_ignore_ascii_case(name))
    }

    /// Rewrites or passes an allowed line into `fwd`.
    fn write(&mut self, c: &[u8], ending: &[u8], p: &Parsed, fwd: &mut Vec<u8>) {
        let cmd = &c[p.cmd.0..p.cmd.1];
        let is = |name: &str| cmd.eq_ignore_ascii_case(name.as_bytes());
        if is("USER") {
            // The host and server fields are whatever the client put there; the server
            // ignores them (it fills in the host itself).
            fwd.extend_from_slice(b"USER");
            let (_, _, t) = p.params[0];
            let user = p.param(c, 0);
            // irssi and HexChat default these to the login and passwd full name, which
            // every /whois then shows. A name that differs (a bouncer login) is kept.
            if self.names_account(user.strip_prefix(b"~").unwrap_or(user)) {
                push_param(fwd, NEUTRAL_NAME, false);
            } else {
                push_param(fwd, user, t);
            }
            fwd.extend_from_slice(b" hostname localhost");
            let real = p.param(c, 3);
            let real = if self.names_account(real) {
                NEUTRAL_NAME
            } else {
                real
            };
            push_param(fwd, real, true);
        } else if is("QUIT") && p.count > 0 {
            // Default quit reasons advertise the client and its version.
            fwd.extend_from_slice(b"QUIT :leaving");
        } else if is("PART") && p.count > 0 {
            // As QUIT.
            fwd.extend_from_slice(b"PART");
            let (_, _, t) = p.params[0];
            push_param(fwd, p.param(c, 0), t && p.count == 1);
            if p.count > 1 {
                fwd.extend_from_slice(b" :leaving");
            }
        } else if is("PONG") && p.count > 0 {
            // The token the server sent is what it checks; names before it may be the
            // client's own host.
            fwd.extend_from_slice(b"PONG");
            let (_, _, t) = p.params[p.count - 1];
            push_param(fwd, p.param(c, p.count - 1), t);
        } else if is("PING") && (0..p.count).any(|i| !is_i2p_name(p.param(c, i))) {
            // The client chose these: its host name, or a timestamp of its clock.
            fwd.extend_from_slice(b"PING 127.0.0.1");
        } else {
            if is("NICK") && p.count > 0 {
                let nick = p.param(c, 0);
                if nick.len() <= 64 && nick.iter().all(|&b| b > b' ' && b != 0x7f) {
                    self.nick.clear();
                    self.nick.extend_from_slice(nick);
                }
            }
            // Everything but a client prefix, which servers ignore and which may name the
            // client's real host.
            if let Some((s, e)) = p.tags {
                fwd.extend_from_slice(&c[s..e]);
                fwd.push(b' ');
            }
            fwd.extend_from_slice(&c[p.cmd.0..]);
        }
        fwd.extend_from_slice(ending);
    }
}

impl Rules for OutRules {
    fn line(&mut self, raw: &[u8], c: &[u8], ending: &[u8], out: &mut Output) {
        let Some(p) = parse(c).filter(|_| !has_framing_hazard(c)) else {
            out.changed += 1;
            return;
        };
        let cmd = &c[p.cmd.0..p.cmd.1];
        // `USER` short of its four parameters: a server may read the fields differently.
        if !is_one_of(cmd, OUTBOUND_COMMANDS) || (cmd.eq_ignore_ascii_case(b"USER") && p.count < 4)
        {
            out.changed += 1;
            return;
        }
        if c.contains(&0x01) {
            // CTCP: replies carry the client's version, clock and user info; DCC the IP.
            let message = is_one_of(cmd, MESSAGE_COMMANDS);
            if message && has_dcc(c) {
                self.dcc_notice(out);
                out.changed += 1;
                return;
            }
            if !(message && is_action_only(c, &p)) {
                // A request the user typed (a NOTICE holding CTCP is a client's automatic
                // reply: not worth a word).
                if is_one_of(cmd, &["PRIVMSG", "CPRIVMSG"]) {
                    self.ctcp_notice(c, &p, out);
                }
                out.changed += 1;
                return;
            }
        }
        let start = out.forward.len();
        self.write(c, ending, &p, &mut out.forward);
        if out.forward.len() - start > MAX_LINE {
            // A rewrite grew a line near the limit past it: no peer would take it whole.
            out.forward.truncate(start);
            out.changed += 1;
        } else if out.forward[start..] != *raw {
            out.changed += 1;
        }
    }
}

#[derive(Debug, Default)]
struct InRules {
    /// DCC offers from peers dropped so far.
    dcc: Told,
}

impl InRules {
    /// A peer's DCC offer was dropped: tell the user, in the place the offer was meant
    /// for (their nick, or the channel), now and then.
    fn dcc_notice(&mut self, c: &[u8], p: &Parsed, out: &mut Output) {
        let Some(told) = self.dcc.drop() else {
            return;
        };
        let to = if p.count > 1 {
            quoted(p.param(c, 0), 64)
        } else {
            Vec::new()
        };
        // The sender's nick: the prefix up to its `!` or `@`.
        let body = &c[p.tags.map_or(0, |(_, e)| e)..];
        let body = trim_spaces(body);
        let from = match body.strip_prefix(b":") {
            Some(prefix) => {
                let token = &prefix[..token_end(prefix, 0)];
                let nick = token.split(|&b| b == b'!' || b == b'@').next();
                quoted(nick.unwrap_or_default(), 64)
            }
            None => Vec::new(),
        };
        notice(
            &mut out.forward,
            &to,
            &[
                b"dropped a DCC offer",
                if from.is_empty() { b"" } else { b" from " },
                &from,
                b": accepting it would connect outside I2P and reveal your IP address",
            ],
            told,
        );
    }
}

impl Rules for InRules {
    fn line(&mut self, raw: &[u8], c: &[u8], _ending: &[u8], out: &mut Output) {
        let Some(p) = parse(c).filter(|_| !has_framing_hazard(c)) else {
            out.changed += 1;
            return;
        };
        let cmd = &c[p.cmd.0..p.cmd.1];
        let numeric = cmd[0].is_ascii_digit();
        let allowed = numeric || is_one_of(cmd, INBOUND_COMMANDS);
        // CTCP requests make clients answer with version, clock, user info; a DCC offer
        // makes them connect outside I2P.
        let bad_ctcp = !numeric
            && c.contains(&0x01)
            && is_one_of(cmd, MESSAGE_COMMANDS)
            && !is_action_only(c, &p);
        if !allowed || bad_ctcp {
            if allowed && has_dcc(c) {
                self.dcc_notice(c, &p, out);
            }
            out.changed += 1;
            return;
        }
        out.forward.extend_from_slice(raw);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything one filter produced over a run, the calls' outputs concatenated.
    #[derive(Debug, Default, PartialEq, Eq)]
    struct Run {
        forward: Vec<u8>,
        back: Vec<u8>,
        changed: u64,
        /// Every `stopped` reported, in order (never, for IRC).
        stops: Vec<&'static str>,
        /// Every `closed` reported, in order.
        closes: Vec<&'static str>,
    }

    fn collect(out: &mut Output, r: &mut Run) {
        r.forward.extend_from_slice(&out.forward);
        r.back.extend_from_slice(&out.back);
        r.changed += out.changed;
        r.stops.extend(out.stopped);
        r.closes.extend(out.closed);
        out.clear();
    }

    fn run<F: Filter + Default>(chunks: &[&[u8]]) -> Run {
        let mut f = F::default();
        let mut out = Output::default();
        let mut r = Run::default();
        for c in chunks {
            f.feed(c, &mut out);
            collect(&mut out, &mut r);
        }
        f.finish(&mut out);
        collect(&mut out, &mut r);
        assert!(r.stops.is_empty(), "the IRC filter never stands aside");
        assert!(r.closes.len() <= 1, "closed reported more than once");
        r
    }

    /// The one-shot result, after checking that feeding the input split at every point
    /// (every 37th and those near the ends for long inputs), in three pieces (short
    /// inputs) and byte by byte gives the same.
    fn check<F: Filter + Default>(input: &[u8]) -> Run {
        let whole = run::<F>(&[input]);
        let n = input.len();
        let points: Vec<usize> = if n <= 600 {
            (0..=n).collect()
        } else {
            (0..=n)
                .filter(|&i| i % 37 == 0 || i < 20 || n - i < 20 || i.abs_diff(MAX_LINE) < 4)
                .collect()
        };
        for &i in &points {
            let r = run::<F>(&[&input[..i], &input[i..]]);
            assert_eq!(r, whole, "split at {i}");
        }
        if n <= 120 {
            for i in 0..=n {
                for j in i..=n {
                    let r = run::<F>(&[&input[..i], &input[i..j], &input[j..]]);
                    assert_eq!(r, whole, "split at {i} and {j}");
                }
            }
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(run::<F>(&bytes), whole, "byte by byte");
        whole
    }

    fn show(b: &[u8]) -> String {
        b.escape_ascii().to_string()
    }

    fn expect<F: Filter + Default>(input: &[u8], forward: &[u8], back: &[u8], changed: u64) {
        let r = check::<F>(input);
        assert_eq!(show(&r.forward), show(forward), "forward");
        assert_eq!(show(&r.back), show(back), "back");
        assert_eq!(r.changed, changed, "changed");
        assert!(r.closes.is_empty(), "refused: {:?}", r.closes);
    }

    fn out(input: &[u8], forward: &[u8], back: &[u8], changed: u64) {
        expect::<Outbound>(input, forward, back, changed);
    }

    fn inb(input: &[u8], forward: &[u8], changed: u64) {
        expect::<Inbound>(input, forward, b"", changed);
    }

    /// Refuses the stream: only `before` (empty lines ahead of the first line) forwarded,
    /// `closed` once with `reason`, and nothing passes after, whatever comes.
    fn refuses(input: &[u8], before: &[u8], reason: &str) {
        let r = check::<Outbound>(input);
        assert_eq!(show(&r.forward), show(before));
        assert_eq!(r.closes, [reason]);
        assert_eq!((r.changed, r.back.len()), (0, 0));
        let more = [input, b"\r\nNICK a\r\nPRIVMSG b :\x01VERSION x\x01\r\n"].concat();
        let r = run::<Outbound>(&[&more]);
        assert_eq!(show(&r.forward), show(before));
        assert_eq!(r.closes.len(), 1);
    }

    /// A line of exactly `len` bytes, `\r\n` included, passed by both directions.
    fn long_privmsg(len: usize) -> Vec<u8> {
        let mut l = b"PRIVMSG #a :".to_vec();
        l.resize(len - 2, b'x');
        l.extend_from_slice(b"\r\n");
        l
    }

    // ---- Outbound ----

    #[test]
    fn registration_user_host_fields_replaced() {
        out(
            b"CAP LS 302\r\nNICK alice\r\nUSER alice 0 * :Alice A\r\nCAP END\r\n",
            b"CAP LS 302\r\nNICK alice\r\nUSER alice hostname localhost :Alice A\r\nCAP END\r\n",
            b"",
            1,
        );
        out(
            b"user bob bob.example.com irc.postman.i2p :Bob\n",
            b"USER bob hostname localhost :Bob\n",
            b"",
            1,
        );
        // A realname without the colon is the fourth parameter.
        out(
            b"USER a 192.168.1.5 c d\n",
            b"USER a hostname localhost :d\n",
            b"",
            1,
        );
        // Already clean: passes as it is.
        out(
            b"USER a hostname localhost :A\r\n",
            b"USER a hostname localhost :A\r\n",
            b"",
            0,
        );
    }

    /// The outbound filter hiding the names of an account `alice` / "Alice Smith".
    fn hiding(input: &[u8], forward: &[u8], changed: u64) {
        #[derive(Debug)]
        struct Alice(Outbound);
        impl Default for Alice {
            fn default() -> Self {
                Alice(Outbound::hiding([
                    "alice",
                    " Alice Smith ",
                    "",
                    "root",
                    "Root",
                ]))
            }
        }
        impl Filter for Alice {
            fn feed(&mut self, input: &[u8], out: &mut Output) {
                self.0.feed(input, out)
            }
            fn finish(&mut self, out: &mut Output) {
                self.0.finish(out)
            }
        }
        expect::<Alice>(input, forward, b"", changed);
    }

    #[test]
    fn user_naming_the_account_is_replaced() {
        // irssi's defaults: the login and the passwd full name.
        hiding(
            b"NICK alice\r\nUSER alice alice irc.postman.i2p :Alice Smith\r\n",
            b"NICK alice\r\nUSER user hostname localhost :user\r\n",
            1,
        );
        // Any case, a `~`, spaces around, the login as the real name, the other account.
        hiding(
            b"USER ~ALICE 0 * :  alice smith \nUSER root 0 * root\nUSER Alice 0 * :alice\n",
            b"USER user hostname localhost :user\nUSER user hostname localhost :user\n\
              USER user hostname localhost :user\n",
            3,
        );
        // Only the field that names the account changes.
        hiding(
            b"USER alice 0 * :Ally\r\nUSER znc-alice/libera 0 * :Alice Smith\r\n",
            b"USER user hostname localhost :Ally\r\n\
              USER znc-alice/libera hostname localhost :user\r\n",
            2,
        );
    }

    #[test]
    fn user_with_other_names_is_kept() {
        // Bouncer logins (ZNC, soju), names that merely contain the account's.
        hiding(
            b"USER bob/libera 0 * :Bob\r\nUSER alice2 0 * :Alice Smithson\r\n\
              USER soju 0 * :Ally\r\nUSER user hostname localhost :user\r\n",
            b"USER bob/libera hostname localhost :Bob\r\nUSER alice2 hostname localhost :Alice Smithson\r\n\
              USER soju hostname localhost :Ally\r\nUSER user hostname localhost :user\r\n",
            3,
        );
        // Without names (the setting off), the account's names pass as before.
        out(
            b"USER alice 0 * :Alice Smith\r\n",
            b"USER alice hostname localhost :Alice Smith\r\n",
            b"",
            1,
        );
    }

    #[test]
    fn hiding_ignores_empty_and_huge_names() {
        let f = Outbound::hiding([&b""[..], b"   ", &[b'x'; 257], b"a", b"A"]);
        assert_eq!(f.rules.account, [b"a".to_vec()]);
    }

    #[test]
    fn user_short_of_parameters_is_dropped() {
        out(b"NICK a\r\nUSER a laptop :A\r\n", b"NICK a\r\n", b"", 1);
    }

    #[test]
    fn quit_and_part_reasons_replaced() {
        out(
            b"QUIT :irssi 1.4.5 - https://irssi.org\r\n",
            b"QUIT :leaving\r\n",
            b"",
            1,
        );
        out(b"quit bye\n", b"QUIT :leaving\n", b"", 1);
        out(b"QUIT\r\n", b"QUIT\r\n", b"", 0);
        out(b"QUIT :leaving\r\n", b"QUIT :leaving\r\n", b"", 0);
        out(
            b"PART #i2p :HexChat 2.16.2\r\nPART #a,#b\r\nPART #c reason words\n",
            b"PART #i2p :leaving\r\nPART #a,#b\r\nPART #c :leaving\n",
            b"",
            2,
        );
    }

    #[test]
    fn pong_keeps_only_the_server_token() {
        out(
            b"PONG :abc123\r\nPONG tok\n",
            b"PONG :abc123\r\nPONG tok\n",
            b"",
            0,
        );
        out(
            b"PONG laptop.local :abc123\r\n",
            b"PONG :abc123\r\n",
            b"",
            1,
        );
    }

    #[test]
    fn ping_keeps_i2p_names_only() {
        out(
            b"PING :irc.postman.i2p\r\nPING irc.echelon.i2p\n",
            b"PING :irc.postman.i2p\r\nPING irc.echelon.i2p\n",
            b"",
            0,
        );
        out(
            b"PING LAG1712345678901\r\nPING irc.postman.i2p my-laptop\n",
            b"PING 127.0.0.1\r\nPING 127.0.0.1\n",
            b"",
            2,
        );
    }

    #[test]
    fn plain_messages_and_formatting_pass() {
        let lines = b"PRIVMSG #i2p :hello \x02bold\x02 \x0304red\x0f \x1ditalic\x1d\tx\r\n\
                      NOTICE bob :hi\r\nns identify hunter2\r\nJOIN #a,#b key\r\n";
        out(lines, lines, b"", 0);
    }

    #[test]
    fn client_prefix_removed_tags_kept() {
        out(
            b":alice!alice@laptop.local PRIVMSG #a :hi\r\n",
            b"PRIVMSG #a :hi\r\n",
            b"",
            1,
        );
        out(
            b"@+draft/reply=x;label=1 :alice PRIVMSG #a :hi\n@label=2 TAGMSG #a\n",
            b"@+draft/reply=x;label=1 PRIVMSG #a :hi\n@label=2 TAGMSG #a\n",
            b"",
            1,
        );
    }

    #[test]
    fn action_passes() {
        let lines = b"PRIVMSG #i2p :\x01ACTION waves\x01\r\nPRIVMSG #i2p :\x01ACTION waves\r\n\
                      PRIVMSG bob :\x01ACTION\x01\r\nNOTICE #i2p :\x01ACTION nods\x01\n";
        out(lines, lines, b"", 0);
    }

    #[test]
    fn other_ctcp_dropped() {
        for ctcp in [
            &b"PRIVMSG bob :\x01VERSION\x01"[..],
            b"NOTICE bob :\x01VERSION irssi v1.4.5\x01",
            b"NOTICE bob :\x01TIME Mon Jan 1 12:00:00 2024\x01",
            b"PRIVMSG bob :\x01PING 1712345678\x01",
            b"NOTICE bob :\x01PING 1712345678\x01",
            b"PRIVMSG bob :\x01CLIENTINFO\x01",
            b"NOTICE bob :\x01FINGER Alice Smith\x01",
            b"NOTICE bob :\x01USERINFO alice\x01",
            b"NOTICE bob :\x01SOURCE https://example\x01",
            // Lower case, glued letters, not at the start, two of them.
            b"PRIVMSG bob :\x01action waves\x01",
            b"PRIVMSG bob :\x01ACTIONS\x01",
            b"PRIVMSG bob :hi \x01ACTION waves\x01",
            b"PRIVMSG bob :\x01ACTION waves\x01 hi",
            b"PRIVMSG bob :\x01ACTION a\x01\x01ACTION b\x01",
            b"PRIVMSG bob :\x01ACTION a\x01\x01VERSION\x01",
            b"PRIVMSG bob :text \x01VERSION\x01",
            b"PRIVMSG bob \x01ACTION waves\x01",
            b"@+x=\x01 PRIVMSG bob :\x01ACTION a\x01",
            // Not a message at all.
            b"TOPIC #a :\x01VERSION\x01",
            b"AWAY :\x01ACTION away\x01",
        ] {
            let mut input = b"NICK a\r\n".to_vec();
            input.extend_from_slice(ctcp);
            input.extend_from_slice(b"\r\nPRIVMSG bob :after\r\n");
            let r = check::<Outbound>(&input);
            assert_eq!(show(&r.forward), show(b"NICK a\r\nPRIVMSG bob :after\r\n"));
            assert_eq!(r.changed, 1);
            // Only a request the user typed (a PRIVMSG) is worth a notice.
            let request = ctcp.starts_with(b"PRIVMSG") || ctcp.starts_with(b"@+x=\x01 PRIVMSG");
            assert_eq!(
                r.back
                    .starts_with(b":eepsocks NOTICE a :eepsocks dropped your CTCP "),
                request,
                "{}",
                show(ctcp)
            );
        }
    }

    const CTCP_BACK: &[u8] = b":eepsocks NOTICE alice :eepsocks dropped your CTCP VERSION to bob: \
        only ACTION (/me) passes, as CTCP replies tell your client, its version and your clock\r\n";

    #[test]
    fn ctcp_request_dropped_with_a_notice() {
        // irssi's /ctcp bob VERSION, WeeChat's /ctcp bob ping: the user hears why.
        out(
            b"NICK alice\r\nPRIVMSG bob :\x01VERSION\x01\r\nPRIVMSG bob :hi\r\n",
            b"NICK alice\r\nPRIVMSG bob :hi\r\n",
            CTCP_BACK,
            1,
        );
        out(
            b"NICK alice\r\nPRIVMSG #i2p :\x01PING 1712345678 123\x01\r\n",
            b"NICK alice\r\n",
            b":eepsocks NOTICE alice :eepsocks dropped your CTCP PING to #i2p: \
              only ACTION (/me) passes, as CTCP replies tell your client, its version and your clock\r\n",
            1,
        );
        // The client's automatic CTCP reply (a NOTICE) is dropped without a word.
        out(
            b"NICK alice\r\nNOTICE bob :\x01VERSION irssi v1.4.5\x01\r\n",
            b"NICK alice\r\n",
            b"",
            1,
        );
        // A target or word holding odd bytes is quoted without them.
        out(
            b"PRIVMSG b\x02o\x03b :\x01V\x02ERSION\x01\r\n",
            b"",
            b":eepsocks NOTICE * :eepsocks dropped your CTCP V to bob: \
              only ACTION (/me) passes, as CTCP replies tell your client, its version and your clock\r\n",
            1,
        );
    }

    #[test]
    fn ctcp_notices_are_rate_limited() {
        // A script sending a thousand requests: told at the 1st, 10th, 100th, 1000th.
        let mut input = b"NICK alice\r\n".to_vec();
        for _ in 0..1000 {
            input.extend_from_slice(b"PRIVMSG bob :\x01VERSION\x01\r\n");
        }
        let mut f = Outbound::new();
        let mut o = Output::default();
        f.feed(&input, &mut o);
        let notices: Vec<&[u8]> = o.back.split_inclusive(|&b| b == b'\n').collect();
        assert_eq!(notices.len(), 4);
        assert_eq!(show(notices[0]), show(CTCP_BACK));
        for (n, count) in notices[1..].iter().zip([10, 100, 1000]) {
            let end = format!(" ({count} dropped on this connection so far)\r\n");
            assert!(n.ends_with(end.as_bytes()), "{}", show(n));
        }
        assert_eq!(o.changed, 1000);
    }

    const DCC_BACK: &[u8] =
        b":eepsocks NOTICE alice :eepsocks dropped a DCC offer: DCC would reveal your IP address\r\n";

    #[test]
    fn dcc_dropped_with_a_notice_to_the_nick() {
        out(
            b"NICK alice\r\nPRIVMSG bob :\x01DCC SEND f.txt 3232235777 5000 100\x01\r\n",
            b"NICK alice\r\n",
            DCC_BACK,
            1,
        );
        out(
            b"NICK :old\r\nNICK alice\r\nNOTICE bob :\x01xdcc send #1\x01\n",
            b"NICK :old\r\nNICK alice\r\n",
            DCC_BACK,
            1,
        );
        // Behind an ACTION.
        out(
            b"NICK alice\r\nPRIVMSG bob :\x01ACTION x\x01\x01DCC CHAT chat 1 2\x01\r\n",
            b"NICK alice\r\n",
            DCC_BACK,
            1,
        );
    }

    #[test]
    fn dcc_notice_without_a_nick_uses_star() {
        out(
            b"CAP LS\r\nPRIVMSG bob :\x01DCC CHAT chat 3232235777 5000\x01\r\n",
            b"CAP LS\r\n",
            b":eepsocks NOTICE * :eepsocks dropped a DCC offer: DCC would reveal your IP address\r\n",
            1,
        );
    }

    #[test]
    fn unknown_commands_and_numerics_dropped() {
        out(
            b"NICK a\r\nWEBIRC pw gateway laptop.lan 192.168.1.5\r\nFOO bar\nIDENTD x\r\n001 x\r\nWHOIS b\r\n",
            b"NICK a\r\nWHOIS b\r\n",
            b"",
            4,
        );
    }

    #[test]
    fn empty_lines_pass() {
        let lines = b"\r\n\nNICK a\r\n\r\n\n\n";
        out(lines, lines, b"", 0);
        inb(lines, lines, 0);
    }

    #[test]
    fn line_endings_kept_per_line() {
        out(
            b"NICK a\nUSER a b c :d\r\nQUIT :x\n",
            b"NICK a\nUSER a hostname localhost :d\r\nQUIT :leaving\n",
            b"",
            2,
        );
    }

    #[test]
    fn framing_hazards_dropped() {
        // A server that ends lines at a lone CR would see a QUIT with the real reason.
        out(
            b"NICK a\r\nPRIVMSG #a :hi\rQUIT :irssi 1.4\r\nPRIVMSG #a :x\x00\r\nNICK b\r\r\n",
            b"NICK a\r\n",
            b"",
            3,
        );
    }

    #[test]
    fn garbage_after_a_good_first_line_is_dropped() {
        out(
            b"NICK a\r\n\x00\x01\x02\xff\xfe binary\r\nSSH-2.0-OpenSSH_9.6\r\n  \r\n:x\r\n@t\r\nGET / HTTP/1.1\r\nNICK b\r\n",
            b"NICK a\r\nNICK b\r\n",
            b"",
            6,
        );
        inb(
            b":srv 001 a :hi\r\n\x16\x03\x01\x00\r\nHTTP/1.1 200 OK\r\n:srv 002 a :x\r\n",
            b":srv 001 a :hi\r\n:srv 002 a :x\r\n",
            2,
        );
    }

    #[test]
    fn partial_line_is_held_until_complete() {
        let mut f = Outbound::new();
        let mut o = Output::default();
        f.feed(b"NICK a\r\nQUIT :by", &mut o);
        assert_eq!(show(&o.forward), show(b"NICK a\r\n"));
        o.clear();
        f.feed(b"e\r", &mut o);
        assert!(o.forward.is_empty());
        f.feed(b"\n", &mut o);
        assert_eq!(show(&o.forward), show(b"QUIT :leaving\r\n"));
        assert_eq!(o.changed, 1);
    }

    #[test]
    fn output_is_appended_to() {
        let mut f = Outbound::new();
        let mut o = Output {
            forward: b"old".to_vec(),
            back: b"b".to_vec(),
            changed: 5,
            stopped: None,
            closed: None,
        };
        f.feed(b"NICK a\r\nQUIT :x\r\n", &mut o);
        assert_eq!(show(&o.forward), show(b"oldNICK a\r\nQUIT :leaving\r\n"));
        assert_eq!((o.back.as_slice(), o.changed), (&b"b"[..], 6));
    }

    #[test]
    fn finish_decides_the_held_line() {
        out(b"NICK a\r\nQUIT :bye", b"NICK a\r\nQUIT :leaving", b"", 1);
        out(
            b"NICK a\r\nPRIVMSG #a :hi",
            b"NICK a\r\nPRIVMSG #a :hi",
            b"",
            0,
        );
        out(
            b"NICK a\r\nPRIVMSG #a :hi\r",
            b"NICK a\r\nPRIVMSG #a :hi\r",
            b"",
            0,
        );
        out(b"NICK a\r\nFOO", b"NICK a\r\n", b"", 1);
        inb(b":s PING :tok", b":s PING :tok", 0);
    }

    // ---- Lengths ----

    #[test]
    fn long_lines_around_the_limit() {
        for (len, passes) in [
            (MAX_LINE - 1, true),
            (MAX_LINE, true),
            (MAX_LINE + 1, false),
        ] {
            let line = long_privmsg(len);
            let mut input = b"NICK a\r\n".to_vec();
            input.extend_from_slice(&line);
            input.extend_from_slice(b"PRIVMSG #a :after\r\n");
            let expected = if passes {
                input.clone()
            } else {
                b"NICK a\r\nPRIVMSG #a :after\r\n".to_vec()
            };
            out(&input, &expected, b"", u64::from(!passes));
            let mut inbound = b":s 001 a :hi\r\n".to_vec();
            inbound.extend_from_slice(&line);
            let expected = if passes {
                inbound.clone()
            } else {
                b":s 001 a :hi\r\n".to_vec()
            };
            inb(&inbound, &expected, u64::from(!passes));
        }
    }

    #[test]
    fn rewrite_past_the_limit_is_dropped() {
        let mut user = b"NICK a\r\nUSER a b c :".to_vec();
        user.resize(8 + MAX_LINE - 2, b'r');
        user.extend_from_slice(b"\r\n");
        out(&user, b"NICK a\r\n", b"", 1);
        // Just room for the longer host fields: rewritten to exactly the limit.
        let grows = b"USER a hostname localhost :".len() - b"USER a b c :".len();
        let mut fits = b"NICK a\r\nUSER a b c :".to_vec();
        fits.resize(8 + MAX_LINE - 2 - grows, b'r');
        fits.extend_from_slice(b"\r\n");
        let mut expected = b"NICK a\r\nUSER a hostname localhost :".to_vec();
        expected.resize(8 + MAX_LINE - 2, b'r');
        expected.extend_from_slice(b"\r\n");
        out(&fits, &expected, b"", 1);
    }

    #[test]
    fn very_long_line_dropped_once() {
        let mut input = b"NICK a\r\nPRIVMSG #a :".to_vec();
        input.resize(input.len() + 3 * MAX_LINE, b'y');
        input.extend_from_slice(b"\r\nPRIVMSG #a :after\n");
        out(&input, b"NICK a\r\nPRIVMSG #a :after\n", b"", 1);
        // Cut off at EOF: dropped, nothing held.
        input.truncate(8 + 2 * MAX_LINE);
        out(&input, b"NICK a\r\n", b"", 1);
    }

    #[test]
    fn first_line_at_the_limit_passes_one_over_is_dropped_or_refused() {
        let mut line = b"@".to_vec();
        line.resize(MAX_LINE - 20, b't');
        line.extend_from_slice(b" PRIVMSG #a :");
        line.resize(MAX_LINE - 2, b'x');
        line.extend_from_slice(b"\r\n");
        assert_eq!(line.len(), MAX_LINE);
        inb(&line, &line, 0);
        // From the server: dropped, and the lines after it still filtered (this passed
        // everything after untouched before).
        let mut longer = line.clone();
        longer.insert(5, b't');
        longer.extend_from_slice(b":bob PRIVMSG alice :\x01DCC SEND f 3232235777 5000 9\x01\r\n");
        longer.extend_from_slice(b":bob PRIVMSG alice :hi\r\n");
        inb(
            &longer,
            &[DCC_OFFER_NOTICE, b":bob PRIVMSG alice :hi\r\n"].concat(),
            2,
        );
        // From the client: refused.
        refuses(&vec![b'A'; MAX_LINE + 100], b"", CLOSE_TOO_LONG);
    }

    // ---- The server's first line never turns filtering off ----

    #[test]
    fn server_notice_ending_in_http_version_keeps_filtering() {
        // A valid NOTICE that ends like an HTTP request line switched the server →
        // client direction off, after which CTCP requests and DCC offers passed.
        let input = b":srv NOTICE * :see GET / HTTP/1.1\r\n\
            :bob PRIVMSG alice :\x01VERSION\x01\r\n\
            :bob PRIVMSG alice :\x01DCC CHAT chat 3232235777 5000\x01\r\n";
        inb(
            input,
            &[
                &b":srv NOTICE * :see GET / HTTP/1.1\r\n"[..],
                DCC_OFFER_NOTICE,
            ]
            .concat(),
            2,
        );
    }

    #[test]
    fn server_first_line_with_a_bel_or_binary_is_dropped() {
        let input = b":srv NOTICE * :ding\x07\r\n:bob PRIVMSG alice :\x01TIME\x01\r\n\
            :srv 001 alice :Welcome\r\n";
        // a BEL is text to IRC: the line passes, and the CTCP after it is still dropped
        inb(
            input,
            b":srv NOTICE * :ding\x07\r\n:srv 001 alice :Welcome\r\n",
            1,
        );
        let mut hello = vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03];
        hello.extend_from_slice(b"\nNOTICE a :x\r\nPRIVMSG b :\x01VERSION\x01\r\n\x00\xff");
        inb(&hello, b"NOTICE a :x\r\n", 3);
        inb(b"HTTP/1.1 200 OK\r\n\r\n", b"\r\n", 1);
        inb(b"+OK POP3 ready\r\n", b"", 1);
    }

    // ---- The client's first line: IRC or a refused stream ----

    #[test]
    fn binary_first_client_line_refused() {
        // A TLS ClientHello: 0x16 0x03 are IRC formatting bytes, the structure is not IRC.
        let mut hello = vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03];
        hello.extend_from_slice(b"\nNICK a\r\nPRIVMSG b :\x01VERSION\x01\r\n\x00\xff");
        refuses(&hello, b"", CLOSE_NOT_IRC);
        refuses(b"NICK a\x00b\r\nQUIT :x\r\n", b"", CLOSE_NOT_IRC);
        refuses(b"\r\n\x7fELF\r\n", b"\r\n", CLOSE_NOT_IRC);
        // a BEL in the first line, then a CTCP reply that passed untouched before
        refuses(
            b"NICK a\x07\r\nNOTICE b :\x01VERSION irssi 1.4\x01\r\n",
            b"",
            CLOSE_NOT_IRC,
        );
    }

    #[test]
    fn refusal_does_not_wait_for_a_line_end() {
        for start in [&b"\x16\x03\x01"[..], b"SSH-", b"1234", b"NICK\x00", b"12a"] {
            let mut f = Outbound::new();
            let mut o = Output::default();
            f.feed(start, &mut o);
            assert_eq!(show(&o.forward), "");
            assert_eq!(o.closed, Some(CLOSE_NOT_IRC));
            o.clear();
            f.feed(b"QUIT :x\r\n", &mut o);
            assert_eq!(show(&o.forward), "");
            assert_eq!(o.closed, None);
        }
    }

    #[test]
    fn non_irc_text_first_client_line_refused() {
        refuses(b"SSH-2.0-OpenSSH_9.6\r\nQUIT :x\r\n", b"", CLOSE_NOT_IRC);
        refuses(
            b"GET / HTTP/1.1\r\nHost: x.i2p\r\nUser-Agent: curl\r\n\r\n",
            b"",
            CLOSE_NOT_IRC,
        );
        refuses(b"12 x\r\nNICK a\r\n", b"", CLOSE_NOT_IRC);
        refuses(b"   \r\nNICK a\r\n", b"", CLOSE_NOT_IRC);
        refuses(b"@tags-only\r\nNICK a\r\n", b"", CLOSE_NOT_IRC);
        refuses(b"\r\n:prefix-only\nNICK a\r\n", b"\r\n", CLOSE_NOT_IRC);
    }

    #[test]
    fn refusal_at_finish() {
        for partial in [&b"12"[..], b"@tags", b"GET / HTTP/1.0"] {
            let mut f = Outbound::new();
            let mut o = Output::default();
            f.feed(partial, &mut o);
            assert!(o.forward.is_empty() && o.closed.is_none());
            f.finish(&mut o);
            assert_eq!(show(&o.forward), "");
            assert_eq!(o.closed, Some(CLOSE_NOT_IRC));
            refuses(partial, b"", CLOSE_NOT_IRC);
        }
    }

    #[test]
    fn first_line_shapes_that_pass() {
        let lines = b"@time=x :srv 001 alice :Welcome\r\n  :srv NOTICE * :*** Looking up\r\n";
        inb(lines, lines, 0);
        let lines = b":srv NOTICE AUTH :hi\n";
        inb(lines, lines, 0);
    }

    // ---- Inbound ----

    #[test]
    fn inbound_allowed_lines_pass_untouched() {
        let lines = b":srv 001 alice :Welcome\r\nPING :tok123\r\n:srv PONG srv :LAG1\r\n\
            @time=2024-01-01T00:00:00Z;msgid=x :bob!b@host PRIVMSG #a :hi \x02there\x02\r\n\
            :bob!b@h NOTICE alice :psst\r\n:bob!b@h JOIN #a\n:bob!b@h PART #a :bye\n\
            :bob!b@h QUIT :\x01weird\x01\r\n:srv CAP * ACK :sasl\r\nAUTHENTICATE +\r\n\
            :bob!b@h PRIVMSG #a :\x01ACTION waves\x01\r\n:bob!b@h KICK #a alice :out\r\n\
            :srv FAIL CHATHISTORY x :no\r\nERROR :Closing link\r\n";
        inb(lines, lines, 0);
    }

    #[test]
    fn inbound_ctcp_and_dcc_dropped() {
        for line in [
            &b":bob!b@h PRIVMSG alice :\x01VERSION\x01"[..],
            b":bob!b@h PRIVMSG alice :\x01TIME\x01",
            b":bob!b@h PRIVMSG alice :\x01PING 123\x01",
            b":bob!b@h PRIVMSG alice :\x01CLIENTINFO\x01",
            b":bob!b@h PRIVMSG alice :\x01DCC SEND x 3232235777 5000 10\x01",
            b":bob!b@h PRIVMSG alice :\x01XDCC LIST\x01",
            b":bob!b@h NOTICE alice :\x01VERSION mIRC\x01",
            b":bob!b@h PRIVMSG alice :hi \x01VERSION\x01",
            b":bob!b@h PRIVMSG alice :\x01ACTION x\x01\x01VERSION\x01",
        ] {
            let mut input = b":srv 001 alice :hi\r\n".to_vec();
            input.extend_from_slice(line);
            input.extend_from_slice(b"\r\n:srv 002 alice :x\r\n");
            let notice: &[u8] = if has_dcc(line) { DCC_OFFER_NOTICE } else { b"" };
            let expected = [b":srv 001 alice :hi\r\n", notice, b":srv 002 alice :x\r\n"].concat();
            inb(&input, &expected, 1);
        }
    }

    const DCC_OFFER_NOTICE: &[u8] =
        b":eepsocks NOTICE alice :eepsocks dropped a DCC offer from bob: \
        accepting it would connect outside I2P and reveal your IP address\r\n";

    #[test]
    fn inbound_dcc_offer_told_to_the_user() {
        // The offer never reaches the client; a notice in its place says it was made.
        inb(
            b":srv 001 alice :hi\r\n\
              @time=x :bob!b@h PRIVMSG alice :\x01DCC SEND f.txt 3232235777 5000 10\x01\r\n\
              :bob!b@h PRIVMSG alice :hi\r\n",
            &[
                &b":srv 001 alice :hi\r\n"[..],
                DCC_OFFER_NOTICE,
                b":bob!b@h PRIVMSG alice :hi\r\n",
            ]
            .concat(),
            1,
        );
        // In a channel: told there. No prefix: from nobody named. Hostile bytes in the
        // nick and target are left out of the notice.
        inb(
            b":carol PRIVMSG #i2p :\x01DCC CHAT chat 1 2\x01\r\n",
            b":eepsocks NOTICE #i2p :eepsocks dropped a DCC offer from carol: \
              accepting it would connect outside I2P and reveal your IP address\r\n",
            1,
        );
        inb(
            b"PRIVMSG :\x01DCC SEND x 1 2 3\x01\r\n",
            b":eepsocks NOTICE * :eepsocks dropped a DCC offer: \
              accepting it would connect outside I2P and reveal your IP address\r\n",
            1,
        );
        inb(
            b"::e\x01v\x03il!x@y NOTICE a\x02b :\x01DCC SEND x 1 2 3\x01\r\n",
            b":eepsocks NOTICE ab :eepsocks dropped a DCC offer from evil: \
              accepting it would connect outside I2P and reveal your IP address\r\n",
            1,
        );
        // Other CTCP requests from peers stay silent (the client never hears of them).
        inb(b":bob PRIVMSG alice :\x01VERSION\x01\r\n", b"", 1);
    }

    #[test]
    fn dcc_offer_flood_makes_few_notices() {
        let mut input = b":srv 001 alice :hi\r\n".to_vec();
        for i in 0..10_000 {
            input.extend_from_slice(
                format!(":bot{i}!b@h PRIVMSG alice :\x01DCC SEND f 3232235777 5000 1\x01\r\n")
                    .as_bytes(),
            );
        }
        let mut f = Inbound::new();
        let mut o = Output::default();
        f.feed(&input, &mut o);
        let lines: Vec<&[u8]> = o.forward.split_inclusive(|&b| b == b'\n').collect();
        // 001, then notices at the 1st, 10th, 100th, 1,000th and 10,000th offer.
        assert_eq!(lines.len(), 6, "{}", show(&o.forward));
        assert!(lines[1]
            .starts_with(b":eepsocks NOTICE alice :eepsocks dropped a DCC offer from bot0:"));
        assert!(lines[5]
            .starts_with(b":eepsocks NOTICE alice :eepsocks dropped a DCC offer from bot9999:"));
        assert!(lines[5].ends_with(b" (10000 dropped on this connection so far)\r\n"));
        assert_eq!(o.changed, 10_000);
    }

    #[test]
    fn inbound_unknown_commands_dropped() {
        inb(
            b":srv 001 a :hi\r\n:srv FOO bar\r\n:srv H x\r\n:srv 1234 x\r\n:srv 002 a :x\r\n",
            b":srv 001 a :hi\r\n:srv 002 a :x\r\n",
            3,
        );
    }
}
