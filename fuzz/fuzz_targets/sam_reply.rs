#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    if let Ok(r) = eepsocks::i2p::sam::ReplyLine::parse(&line) {
        let _ = r.get("RESULT");
        let _ = r.get("VALUE").map(eepsocks::i2p::Destination::from_base64);
    }
});
