//! The HTTP request-header filter. The first byte picks the options (User-Agent, sniffing,
//! forward mode) and how the rest is split; the rest is what a client sends. Checked: no
//! panics; feeding in pieces (sizes drawn from the data) and byte by byte gives exactly what
//! feeding whole gives; only User-Agent rewrites (and forward mode's one `Connection: close`)
//! make the output longer, each by at most the new value's length + 1; with nothing
//! changed or refused the output is the input; nothing from the deny list leaves the filter: what it
//! sends on, refused or not, goes through a second filter with nothing left to remove
//! (forward mode's output through the normal filter); it never stands aside without a
//! server's answer (`stopped` never set here), refuses at most once and sends nothing on
//! after refusing; and a header whose value is the marker `LEAK` (in a head the filter did
//! not call "not HTTP") is never forwarded with it.
#![no_main]
use eepsocks_leakfilter::http::{Options, Requests, DEFAULT_USER_AGENT};
use eepsocks_leakfilter::{Filter, Output};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq, Eq)]
struct Run {
    forward: Vec<u8>,
    changed: u64,
    stopped: Vec<&'static str>,
    back: Vec<u8>,
    closed: Vec<&'static str>,
    after_close: usize,
}

fn run<'a>(options: &Options, pieces: impl IntoIterator<Item = &'a [u8]>) -> Run {
    let mut filter = Requests::new(options.clone());
    let mut out = Output::default();
    let mut run = Run {
        forward: Vec::new(),
        changed: 0,
        stopped: Vec::new(),
        back: Vec::new(),
        closed: Vec::new(),
        after_close: 0,
    };
    let mut collect = |out: &mut Output| {
        if !run.closed.is_empty() {
            run.after_close += out.forward.len() + out.back.len();
        }
        run.closed.extend(out.closed);
        run.back.extend_from_slice(&out.back);
        run.forward.extend_from_slice(&out.forward);
        run.changed += out.changed;
        run.stopped.extend(out.stopped);
        out.clear();
    };
    for piece in pieces {
        filter.feed(piece, &mut out);
        collect(&mut out);
    }
    filter.finish(&mut out);
    collect(&mut out);
    assert!(run.stopped.is_empty(), "stood aside: {:?}", run.stopped);
    assert!(run.closed.len() <= 1, "closed twice: {:?}", run.closed);
    assert_eq!(run.after_close, 0, "sent on after refusing");
    assert!(run.back.is_empty() || !run.closed.is_empty(), "answered without refusing");
    run
}

/// Splits `input` into pieces whose sizes come from the input's own bytes, between 1 and
/// `max` (so both byte-sized pieces and pieces spanning whole requests occur).
fn pieces(input: &[u8], control: u8, max: usize) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    let mut rest = input;
    let mut k = 0usize;
    while !rest.is_empty() {
        let b = input[k % input.len()] ^ control;
        k = k.wrapping_mul(31).wrapping_add(b as usize + 1);
        let size = (1 + (b as usize * 7919) % max).min(rest.len());
        let (piece, tail) = rest.split_at(size);
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else {
        return;
    };
    let user_agent = match control & 3 {
        0 => DEFAULT_USER_AGENT,
        1 => "",
        2 => "x",
        _ => "Mozilla/5.0 (Windows NT 10.0; rv:128.0) Gecko/20100101 Firefox/128.0",
    };
    let options = Options {
        user_agent: user_agent.to_owned(),
        sniff: control & 4 != 0,
        forward: control & 0x40 != 0,
    };
    let whole = run(&options, [input]);

    let max = [1, 3, 17, 64, 300, 1500, 4096, 65536][(control >> 3) as usize & 7];
    assert_eq!(run(&options, pieces(input, control, max)), whole);
    if input.len() <= 1024 {
        assert_eq!(run(&options, input.chunks(1)), whole);
    }

    let mut growth = whole.changed as usize * (user_agent.len() + 1);
    if options.forward {
        growth += b"Connection: close\r\n".len();
    }
    assert!(whole.forward.len() <= input.len() + growth);
    if whole.changed == 0 && whole.closed.is_empty() {
        assert_eq!(whole.forward, input);
    }
    // Not HTTP at all (sniffing): passed whole, nothing of ours in it.
    let not_http = options.sniff && !options.forward && whole.forward == input && whole.changed == 0;
    if options.forward {
        let plain = Options {
            forward: false,
            sniff: false,
            ..options.clone()
        };
        assert_eq!(run(&plain, [&whole.forward[..]]).changed, 0);
    } else if !not_http {
        // What was sent on, filtered again, has nothing left to remove (a refusal may end
        // it anywhere, so the second pass may refuse too; it must not change anything).
        let again = run(&options, [&whole.forward[..]]);
        assert_eq!(again.changed, 0);
        // Denied headers given the value `LEAK` never keep it: `Referer: LEAK` etc. do
        // not appear as a line of what was sent on.
        for line in whole.forward.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            for denied in ["referer", "dnt", "accept-language", "user-agent", "via", "from"] {
                let header = format!("{denied}: leak");
                assert!(
                    !line.eq_ignore_ascii_case(header.as_bytes()) || body_may_hold(input, line),
                    "forwarded {header}"
                );
            }
        }
    }
});

/// A line may legitimately pass when the input also has it where the filter never reads:
/// in a body (after a `Content-Length`/chunked head) or a folded value. Approximated: the
/// input has a head that frames a body or has a fold.
fn body_may_hold(input: &[u8], _line: &[u8]) -> bool {
    let lower = input.to_ascii_lowercase();
    let has = |s: &[u8]| lower.windows(s.len()).any(|w| w == s);
    has(b"content-length") || has(b"chunked") || has(b"\n ") || has(b"\n\t")
}
