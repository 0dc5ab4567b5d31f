//! Leak filters: what an application's own bytes say about its user, removed before they
//! enter I2P. Sans-IO like the SOCKS codec: a filter is fed the bytes read from one
//! direction of a connection and says what to send on (and, rarely, what to say back to
//! the side that sent them). No sockets, no clocks, no allocation beyond one held line or
//! header block, so every rule is tested with byte vectors and fuzzed.
//!
//! - [`irc`]: IRC, both directions (command allow-lists, CTCP except ACTION dropped, `USER`
//!   host fields and `QUIT`/`PART` reasons replaced, DCC dropped with a notice).
//! - [`http`]: plain-HTTP request headers, every request of a keep-alive connection; in
//!   forward mode one request for an `http://` URL, rewritten for the server.
//!
//! A filter that meets something it cannot parse gives up: it passes that and everything
//! after it untouched (corrupting an application's stream would be worse than not
//! filtering it) and says so once in [`Output::stopped`], for the caller to log. The HTTP
//! filter's forward mode drops the rest instead: there the proxy is the HTTP client's
//! chosen peer, and passing bytes it cannot read would let them reach another server.

pub mod http;
pub mod irc;

/// What one direction's filter produced from one chunk of input. Reused between calls:
/// the caller drains `forward` and `back` after each call (the filter only appends).
#[derive(Debug, Default)]
pub struct Output {
    /// Bytes to send on, in the direction they were read.
    pub forward: Vec<u8>,
    /// Bytes to send back to the side they came from (a notice to an IRC client that its
    /// DCC offer was dropped).
    pub back: Vec<u8>,
    /// Lines or headers dropped or rewritten so far by this call (for the status counters).
    pub changed: u64,
    /// Set on the call where the filter gave up, with why (the caller logs it once).
    /// From then on the filter forwards its input untouched.
    pub stopped: Option<&'static str>,
}

impl Output {
    pub fn clear(&mut self) {
        self.forward.clear();
        self.back.clear();
        self.changed = 0;
        self.stopped = None;
    }
}

/// One direction of a filtered connection.
pub trait Filter: Send {
    /// Feed the next bytes read from this direction. Complete lines (or header blocks) are
    /// decided at once; at most one incomplete line/header block is held for the next call.
    fn feed(&mut self, input: &[u8], out: &mut Output);
    /// This direction ended (EOF): decide what is held (an incomplete last line is treated
    /// as a line).
    fn finish(&mut self, out: &mut Output);
    /// How many of the next input bytes go on untouched whatever they are: the rest of a
    /// body being counted off, or `usize::MAX` once the filter passes everything for good
    /// (the caller may then drop it). The caller may send up to that many straight from
    /// its read buffer and report them with `skip`, so bulk data costs no copy.
    fn untouched_ahead(&self) -> usize {
        0
    }
    /// The caller sent the next `n` input bytes on itself (`n <= untouched_ahead()`).
    fn skip(&mut self, n: usize) {
        debug_assert_eq!(n, 0, "skip past untouched_ahead");
    }
}
