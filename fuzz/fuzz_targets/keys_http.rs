//! Key files and subscription HTTP responses: both come from outside.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(k) = eepsocks::i2p::PrivateKeys::from_bytes(data.to_vec()) {
        assert_eq!(k.as_bytes(), data);
        let _ = k.destination().b32();
    }
    let _ = eepsocks::naming::http::parse_response(data);
});
