//! The SOCKS codec (HTTP CONNECT included) driven like the server drives it: the first
//! byte picks a chunk size, the rest arrives in chunks of that size (its high bit: a login
//! is required); replies are drained as the server does.
#![no_main]
use eepsocks::socks::{Handshake, Step, MAX_HANDSHAKE_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&c, input)) = data.split_first() else {
        return;
    };
    let chunk = (c as usize % 64) + 1;
    // The high bit: a listener that requires a login (the RFC 1929 path).
    let mut hs = if c & 0x80 != 0 {
        let check: eepsocks::socks::AuthCheck =
            std::sync::Arc::new(|c: &eepsocks::socks::Credentials| {
                c.username == b"alice" && c.password == b"swordfish"
            });
        Handshake::with_auth(Some(check))
    } else {
        Handshake::new()
    };
    let mut buf = Vec::new();
    let mut fed = 0;
    for _ in 0..10_000 {
        match hs.step(&buf) {
            Step::NeedMore => {
                assert!(
                    buf.len() < MAX_HANDSHAKE_BYTES,
                    "asked for more past the limit"
                );
                if fed == input.len() {
                    return;
                }
                let n = chunk.min(input.len() - fed);
                buf.extend_from_slice(&input[fed..fed + n]);
                fed += n;
            }
            Step::Reply { consumed, .. } => {
                assert!(consumed > 0 && consumed <= buf.len());
                buf.drain(..consumed);
            }
            Step::Finished { consumed, request } => {
                assert!(consumed <= buf.len());
                if let eepsocks::socks::Version::Http { .. } = request.version {
                    if request.command == eepsocks::socks::Command::HttpForward {
                        // A forwarded request stays whole in the buffer for the stream.
                        assert_eq!(consumed, 0);
                    } else {
                        // A CONNECT head ends with its blank line and fits the limit.
                        assert!(buf[..consumed].ends_with(b"\n"));
                        assert!(consumed <= MAX_HANDSHAKE_BYTES);
                    }
                }
                // The pipelined bytes as a refusal text: HTTP must sanitise whatever it gets.
                let why = String::from_utf8_lossy(&buf[consumed..]);
                let _ = request.reply_why(eepsocks::socks::Reply::HostUnreachable, &why);
                let _ = request.reply(eepsocks::socks::Reply::Succeeded);
                let _ = eepsocks::naming::classify(&request.address);
                return;
            }
            Step::Reject { .. } => return,
        }
    }
    panic!("handshake did not terminate");
});
