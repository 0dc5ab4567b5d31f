//! The automap DNS codec on arbitrary messages: whatever `parse` accepts is answered with
//! every kind of answer, under the UDP and the TCP limit, and every byte it produces must
//! read back as a response to the same id that fits its limit.
#![no_main]
use eepsocks::automap::dns::{parse, Answer, Parsed};
use hickory_proto::op::{Message, MessageType};
use libfuzzer_sys::fuzz_target;

/// Decodes a response and checks what every response must hold.
fn check(bytes: &[u8], id: u16, max_len: usize) -> Message {
    assert!(
        bytes.len() <= max_len,
        "{} bytes over {max_len}",
        bytes.len()
    );
    let message = Message::from_vec(bytes).expect("our response decodes");
    assert_eq!(message.metadata.message_type, MessageType::Response);
    assert_eq!(message.metadata.id, id);
    assert!(!message.metadata.recursion_available);
    message
}

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Parsed::Drop => {}
        Parsed::Reply(bytes) | Parsed::Refused(bytes) => {
            // A reply needs a readable header, so the id is there.
            let id = u16::from_be_bytes([data[0], data[1]]);
            check(&bytes, id, 512);
        }
        Parsed::Query(query) => {
            let id = u16::from_be_bytes([data[0], data[1]]);
            let name = query.name();
            // Names derived from the query, up to past the 255-byte limit of a name.
            let pad = "a".repeat(63);
            let names = [
                name.to_owned(),
                format!("{name}.i2p"),
                [name; 4].join("."),
                format!("{pad}.{pad}.{pad}.{name}"),
            ];
            let mut answers = vec![
                Answer::V4 {
                    addr: [127, 192, data.len() as u8, 1].into(),
                    ttl: 60,
                },
                Answer::NoData,
                Answer::NxDomain,
                Answer::Refused,
                Answer::ServFail,
            ];
            answers.extend(names.into_iter().map(|name| Answer::Ptr { name, ttl: 0 }));
            assert!((512..=1232).contains(&query.udp_limit()));
            for answer in &answers {
                for max_len in [query.udp_limit(), 65535] {
                    let message = check(&query.respond(answer, max_len), id, max_len);
                    assert_eq!(message.queries.len(), 1);
                    let echoed = message.queries[0].name().to_lowercase().to_ascii();
                    assert_eq!(echoed.strip_suffix('.').unwrap_or(&echoed), name);
                    if message.metadata.truncation {
                        assert!(message.answers.is_empty());
                    }
                }
            }
        }
    }
});
