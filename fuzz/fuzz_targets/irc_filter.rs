//! The IRC leak filter, either direction (the first byte's low bit): no panics; the same
//! output whether the input comes whole, in chunks whose sizes come from the data, or cut
//! once; it never stands aside (`stopped`), only the client direction may refuse
//! (`closed`, at most once, and nothing is forwarded after it); and whatever the input, no
//! forwarded line holds a CTCP other than one ACTION (inbound: no message does), a DCC
//! offer, a NUL or a lone CR, or more than `MAX_LINE` bytes, no client line keeps a
//! `:prefix`, and only eepsocks' notices go back. Bit
//! 0x40 of the first byte splices in a run of filler near the line limit, which
//! `-max_len=4096` alone would never reach.
#![no_main]
use eepsocks_leakfilter::irc::{Inbound, Outbound, MAX_LINE};
use eepsocks_leakfilter::{Filter, Output};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Default, PartialEq, Eq)]
struct Run {
    forward: Vec<u8>,
    back: Vec<u8>,
    changed: u64,
    stops: Vec<&'static str>,
    closes: Vec<&'static str>,
    /// Bytes forwarded after the refusal (must stay 0).
    after_close: usize,
}

fn run<'a, F: Filter>(mut f: F, chunks: impl IntoIterator<Item = &'a [u8]>) -> Run {
    let mut out = Output::default();
    let mut r = Run::default();
    let mut collect = |out: &mut Output| {
        r.forward.extend_from_slice(&out.forward);
        r.back.extend_from_slice(&out.back);
        r.changed += out.changed;
        if !r.closes.is_empty() {
            r.after_close += out.forward.len() + out.back.len();
        }
        r.stops.extend(out.stopped);
        r.closes.extend(out.closed);
        out.clear();
    };
    for c in chunks {
        f.feed(c, &mut out);
        collect(&mut out);
    }
    f.finish(&mut out);
    collect(&mut out);
    r
}

/// Chunks of 1 to 64 bytes, each size from the byte where the chunk starts.
fn data_chunks(input: &[u8], sel: u8) -> Vec<&[u8]> {
    let mut chunks = Vec::new();
    let mut rest = input;
    while let Some(&b) = rest.first() {
        let n = (((b ^ sel) as usize) % 64 + 1).min(rest.len());
        let (c, r) = rest.split_at(n);
        chunks.push(c);
        rest = r;
    }
    chunks
}

/// The command of a line, past its tags and prefix.
fn command(line: &[u8]) -> &[u8] {
    let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
    let mut w = words.next().unwrap_or_default();
    if w.starts_with(b"@") {
        w = words.next().unwrap_or_default();
    }
    if w.starts_with(b":") {
        w = words.next().unwrap_or_default();
    }
    w
}

/// A line's `\x01`s are at most one ACTION CTCP in a message's text. Inbound, only
/// messages are held to it: clients look for CTCP in nothing else (a `\x01` in a quit
/// reason passes).
fn ctcp_ok(line: &[u8], outbound: bool) -> bool {
    let Some(first) = line.iter().position(|&b| b == 0x01) else {
        return true;
    };
    let cmd = command(line);
    let message = ["PRIVMSG", "NOTICE", "CPRIVMSG", "CNOTICE"]
        .iter()
        .any(|m| cmd.eq_ignore_ascii_case(m.as_bytes()));
    if !message && !outbound {
        return true;
    }
    let ctcp = &line[first..];
    let ones = line.iter().filter(|&&b| b == 0x01).count();
    message
        && ctcp.starts_with(b"\x01ACTION")
        && matches!(ctcp.get(7), None | Some(b' ' | 0x01))
        && (ones == 1 || (ones == 2 && line.ends_with(b"\x01") && ctcp.len() > 1))
}

fn check<F: Filter>(new: fn() -> F, input: &[u8], sel: u8, outbound: bool) {
    let whole = run(new(), [input]);
    assert!(whole.stops.is_empty(), "stood aside");
    assert!(whole.closes.len() <= 1, "closed twice");
    assert!(outbound || whole.closes.is_empty(), "the server direction refused");
    assert_eq!(whole.after_close, 0, "forwarded after the refusal");
    assert_eq!(
        run(new(), data_chunks(input, sel)),
        whole,
        "data-sized chunks"
    );
    let cut = (sel as usize * 257 + input.len() / 3) % (input.len() + 1);
    assert_eq!(
        run(new(), [&input[..cut], &input[cut..]]),
        whole,
        "cut at {cut}"
    );
    for raw in whole.forward.split_inclusive(|&b| b == b'\n') {
        assert!(raw.len() <= MAX_LINE, "forwarded a line over the limit");
        let line = raw.strip_suffix(b"\n").unwrap_or(raw);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        assert!(
            !line.iter().any(|&b| b == 0 || b == b'\r'),
            "NUL or lone CR forwarded: {:?}",
            line.escape_ascii().to_string()
        );
        assert!(
            !(line.contains(&0x01) && line.windows(3).any(|w| w.eq_ignore_ascii_case(b"DCC"))),
            "DCC forwarded: {:?}",
            line.escape_ascii().to_string()
        );
        assert!(
            ctcp_ok(line, outbound),
            "CTCP forwarded: {:?}",
            line.escape_ascii().to_string()
        );
        if outbound && !line.is_empty() {
            let after_tags = if line.starts_with(b"@") {
                line.splitn(2, |&b| b == b' ').nth(1).unwrap_or_default()
            } else {
                line
            };
            assert!(!after_tags.starts_with(b":"), "client prefix forwarded");
        }
    }
    for notice in whole.back.split_inclusive(|&b| b == b'\n') {
        assert!(outbound && notice.starts_with(b":eepsocks NOTICE ") && notice.ends_with(b"\r\n"));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let spliced: Vec<u8>;
    let mut input = rest;
    if sel & 0x40 != 0 {
        let at = (sel as usize * 31) % (rest.len() + 1);
        let len = MAX_LINE - 24 + (sel as usize & 0x1f);
        spliced = [&rest[..at], &vec![b'x'; len][..], &rest[at..]].concat();
        input = &spliced;
    }
    if sel & 1 == 0 {
        check(Outbound::new, input, sel, true);
    } else {
        check(Inbound::new, input, sel, false);
    }
});
