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
//! A filter never passes what it could not read. When it meets something it cannot parse
//! (or more than it may hold) it refuses the rest of the stream: it says why once in
//! [`Output::closed`], may put an error for the sender in [`Output::back`] (an HTTP 431 or
//! 400), drops every later byte, and the caller closes the stream. A direction that is
//! known to carry something else passes untouched without being a failure (HTTP sniffing
//! on port 80 finding no HTTP), and so does an HTTP connection after the server accepted a
//! protocol switch (101, or 2xx to `CONNECT`): [`Output::stopped`] says so once.

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
    /// Set on the call where the filter stopped filtering for a reason that is not a
    /// failure (the server switched protocols), with why (the caller logs it once). From
    /// then on the filter forwards its input untouched.
    pub stopped: Option<&'static str>,
    /// Set on the call where the filter refused the rest of the stream, with why: the
    /// caller sends `forward` and `back`, then closes the stream (both directions). From
    /// then on the filter drops its input.
    pub closed: Option<&'static str>,
}

impl Output {
    pub fn clear(&mut self) {
        self.forward.clear();
        self.back.clear();
        self.changed = 0;
        self.stopped = None;
        self.closed = None;
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
