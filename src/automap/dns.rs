//! The DNS wire codec of the automap server, sans IO: [`parse`] turns a received message
//! into a [`Parsed`], and [`Query::respond`] turns the caller's [`Answer`] into the bytes to
//! send back. The encoding and decoding are `hickory-proto`'s; this module holds the policy.
//!
//! What is answered: opcode QUERY with exactly one question of class IN. Everything else
//! is refused or rejected here, so the caller only ever decides A, AAAA, PTR and other
//! qtypes for one name:
//! - fewer than 12 bytes, or a response (QR=1): [`Parsed::Drop`] (never answer a response:
//!   two servers could bounce errors at each other forever);
//! - another opcode: NOTIMP; a QDCOUNT other than 1: FORMERR;
//! - a message hickory cannot decode, or with bytes after its last record: FORMERR
//!   (strict, as a truncated or padded query is a broken client, not one to guess at);
//! - an EDNS version other than 0: BADVERS (RFC 6891 requires it);
//! - a class other than IN (CH `version.bind` probes, ANY): REFUSED, like any name we
//!   do not map.
//!
//! FORMERR, NOTIMP and BADVERS replies echo the id, opcode and RD; FORMERR and NOTIMP
//! carry no question (it may be what could not be read). Every reply of [`Parsed::Reply`]
//! fits in 512 bytes.

use std::net::Ipv4Addr;

use hickory_proto::op::{
    Edns, Header, Message, MessageType, Metadata, OpCode, Query as Question, ResponseCode,
};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

/// The UDP payload size without EDNS (RFC 1035).
const MIN_UDP: usize = 512;
/// The largest UDP payload we send, whatever the client advertises: the DNS flag day 2020
/// size, which avoids IP fragmentation on any path (on loopback it only bounds the work).
const MAX_UDP: u16 = 1232;

/// What a query asks, when it is one we answer.
#[derive(Debug, Clone)]
pub struct Query {
    /// The request's header: id, opcode, RD and CD are echoed.
    header: Metadata,
    /// The question as received: echoed with its case (resolvers randomise it and check).
    question: Question,
    /// The question name, lower-cased, escaped, without the root dot.
    name: String,
    /// The client's OPT record, if it sent one.
    edns: Option<Edns>,
}

/// The qtype of the single question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    A,
    Aaaa,
    Ptr,
    Other,
}

/// What [`parse`] made of a message.
#[derive(Debug)]
pub enum Parsed {
    /// A question to answer: the caller decides the Answer.
    Query(Query),
    /// Answer at once with these bytes: FORMERR, NOTIMP or BADVERS (a malformed or
    /// unsupported message).
    Reply(Vec<u8>),
    /// Answer at once with these bytes: REFUSED, for a class other than IN (a well-formed
    /// question we do not serve, like any name outside I2P).
    Refused(Vec<u8>),
    /// Not worth an answer (not even a header, or it is a response (QR=1)): drop silently.
    Drop,
}

/// The caller's answer to a [`Query`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// An A record with this TTL (seconds).
    V4 {
        addr: Ipv4Addr,
        ttl: u32,
    },
    /// An AAAA record with this TTL (seconds): a GarliCat address.
    V6 {
        addr: std::net::Ipv6Addr,
        ttl: u32,
    },
    /// A PTR record: the name (without trailing dot; one is tolerated). A name that is not a
    /// valid domain name (an empty label, a label over 63 bytes, over 255 in all) is
    /// answered with SERVFAIL.
    Ptr {
        name: String,
        ttl: u32,
    },
    /// NOERROR with no answer (e.g. AAAA for a name that has only an A record).
    NoData,
    NxDomain,
    Refused,
    ServFail,
}

/// Reads one received DNS message (a UDP datagram, or a TCP message without its length
/// prefix). Never panics, whatever the bytes.
pub fn parse(packet: &[u8]) -> Parsed {
    let Ok(Header { metadata, counts }) = Header::read(&mut BinDecoder::new(packet)) else {
        return Parsed::Drop;
    };
    if metadata.message_type == MessageType::Response {
        return Parsed::Drop;
    }
    if metadata.op_code != OpCode::Query {
        return Parsed::Reply(bare_reply(&metadata, ResponseCode::NotImp));
    }
    if counts.queries != 1 {
        return Parsed::Reply(bare_reply(&metadata, ResponseCode::FormErr));
    }
    let mut decoder = BinDecoder::new(packet);
    let message = match Message::read(&mut decoder) {
        Ok(message) if decoder.is_empty() => message,
        _ => return Parsed::Reply(bare_reply(&metadata, ResponseCode::FormErr)),
    };
    let Some(question) = message.queries.into_iter().next() else {
        // Unreachable with QDCOUNT 1, but an answer costs nothing.
        return Parsed::Reply(bare_reply(&metadata, ResponseCode::FormErr));
    };
    let name = question.name().to_lowercase().to_ascii();
    let query = Query {
        header: metadata,
        name: name.strip_suffix('.').unwrap_or(&name).to_owned(),
        question,
        edns: message.edns,
    };
    if query.edns.as_ref().is_some_and(|edns| edns.version() != 0) {
        return Parsed::Reply(encode(query.reply(ResponseCode::BADVERS, false), MIN_UDP));
    }
    if query.question.query_class() != DNSClass::IN {
        return Parsed::Refused(query.respond(&Answer::Refused, MIN_UDP));
    }
    Parsed::Query(query)
}

impl Query {
    /// The qtype of the question.
    pub fn kind(&self) -> Kind {
        match self.question.query_type() {
            RecordType::A => Kind::A,
            RecordType::AAAA => Kind::Aaaa,
            RecordType::PTR => Kind::Ptr,
            _ => Kind::Other,
        }
    }

    /// The question name, lower-cased, without the trailing root dot (e.g. "forum.i2p",
    /// "5.0.192.127.in-addr.arpa"; "" for the root). Other bytes than letters, digits, '_'
    /// and a '-' not first in its label are escaped as hickory writes them: a backslash and
    /// the character if printable (`\.` for a dot inside a label), else a backslash and
    /// three octal digits. So a name never passes for another.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The response bytes. `max_len` is the transport's limit: for UDP pass
    /// [`Query::udp_limit`], for TCP 65535. An answer that does not fit is sent as the
    /// question alone with TC=1, so the client retries over TCP; an empty Vec means not
    /// even that fits (only when `max_len` is under the question's size, never from 512 on).
    pub fn respond(&self, answer: &Answer, max_len: usize) -> Vec<u8> {
        let (rcode, record) = match answer {
            Answer::V4 { addr, ttl } => (ResponseCode::NoError, Some((*ttl, RData::A(A(*addr))))),
            Answer::V6 { addr, ttl } => (
                ResponseCode::NoError,
                Some((*ttl, RData::AAAA(AAAA(*addr)))),
            ),
            Answer::Ptr { name, ttl } => match Name::from_ascii(name) {
                Ok(mut target) => {
                    target.set_fqdn(true);
                    (ResponseCode::NoError, Some((*ttl, RData::PTR(PTR(target)))))
                }
                Err(_) => (ResponseCode::ServFail, None),
            },
            Answer::NoData => (ResponseCode::NoError, None),
            Answer::NxDomain => (ResponseCode::NXDomain, None),
            Answer::Refused => (ResponseCode::Refused, None),
            Answer::ServFail => (ResponseCode::ServFail, None),
        };
        // Authoritative for what we map (answers, NODATA, NXDOMAIN), not for what we turn away.
        let authoritative = matches!(rcode, ResponseCode::NoError | ResponseCode::NXDomain);
        let mut message = self.reply(rcode, authoritative);
        if let Some((ttl, rdata)) = record {
            message.add_answer(Record::from_rdata(self.question.name().clone(), ttl, rdata));
        }
        encode(message, max_len)
    }

    /// 512 without EDNS, else the client's advertised UDP payload size clamped to
    /// [512, 1232].
    pub fn udp_limit(&self) -> usize {
        self.edns.as_ref().map_or(MIN_UDP, |edns| {
            usize::from(edns.max_payload().min(MAX_UDP)).max(MIN_UDP)
        })
    }

    /// A response with the request's header fields, its question, and an OPT record when
    /// the request had one.
    fn reply(&self, rcode: ResponseCode, authoritative: bool) -> Message {
        let mut message = Message::response(self.header.id, self.header.op_code);
        message.metadata = Metadata::response_from_request(&self.header);
        message.metadata.authoritative = authoritative;
        message.metadata.response_code = rcode;
        message.add_query(self.question.clone());
        if let Some(theirs) = &self.edns {
            let mut ours = Edns::new();
            ours.set_max_payload(MAX_UDP);
            // RFC 3225: the DO bit is copied into the response.
            ours.set_dnssec_ok(theirs.flags().dnssec_ok);
            message.set_edns(ours);
        }
        message
    }
}

/// The message's bytes if they fit in `max_len`, else the header and question with TC=1.
fn encode(message: Message, max_len: usize) -> Vec<u8> {
    match message.to_vec() {
        Ok(bytes) if bytes.len() <= max_len => bytes,
        // Rare (long names, small limits): only then the truncated copy.
        _ => message
            .truncate()
            .to_vec()
            .ok()
            .filter(|bytes| bytes.len() <= max_len)
            .unwrap_or_default(),
    }
}

/// A header-only error reply: id, opcode and RD echoed, no question.
fn bare_reply(request: &Metadata, rcode: ResponseCode) -> Vec<u8> {
    let mut message = Message::error_msg(request.id, request.op_code, rcode);
    message.metadata.recursion_desired = request.recursion_desired;
    // A bare header always encodes; the empty fallback only avoids an unwrap.
    message.to_vec().unwrap_or_default()
}

/// The IPv4 address a reverse name stands for: "d.c.b.a.in-addr.arpa" → a.b.c.d
/// (the suffix in any case, no trailing dot). None for anything else: not four octets,
/// an octet over 255, or with a leading zero ("01"), which no resolver writes and which
/// would give one address several names.
pub fn ptr_ipv4(name: &str) -> Option<Ipv4Addr> {
    const SUFFIX: &str = ".in-addr.arpa";
    let split = name.len().checked_sub(SUFFIX.len())?;
    let (octets, suffix) = (name.get(..split)?, name.get(split..)?);
    if !suffix.eq_ignore_ascii_case(SUFFIX) {
        return None;
    }
    let mut parsed = [0u8; 4];
    let mut labels = octets.split('.');
    // Reversed: the last octet of the address comes first.
    for slot in parsed.iter_mut().rev() {
        let label = labels.next()?;
        let canonical = label == "0" || (!label.starts_with('0') && !label.is_empty());
        if !canonical || !label.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *slot = label.parse().ok()?;
    }
    if labels.next().is_some() {
        return None;
    }
    Some(Ipv4Addr::from(parsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real A query for `forum.i2p`, as `dig` sends it without EDNS.
    const A_FORUM_I2P: [u8; 27] = [
        0xbe, 0xef, // id
        0x01, 0x00, // QR=0 (query), opcode 0 (QUERY), AA=0, TC=0, RD=1; RA=0, Z=0, RCODE=0
        0x00, 0x01, // QDCOUNT: one question
        0x00, 0x00, // ANCOUNT
        0x00, 0x00, // NSCOUNT
        0x00, 0x00, // ARCOUNT
        5, b'f', b'o', b'r', b'u', b'm', // label "forum"
        3, b'i', b'2', b'p', // label "i2p"
        0,    // the root label ends the name
        0x00, 0x01, // QTYPE A
        0x00, 0x01, // QCLASS IN
    ];

    /// An OPT record (RFC 6891) advertising `payload`, with this EDNS version and DO bit.
    fn opt(payload: u16, version: u8, dnssec_ok: bool) -> Vec<u8> {
        let mut opt = vec![0]; // owner: the root
        opt.extend_from_slice(&41u16.to_be_bytes()); // TYPE OPT
        opt.extend_from_slice(&payload.to_be_bytes()); // CLASS: the UDP payload size
                                                       // TTL: extended RCODE, version, then the DO bit and zeros.
        opt.extend_from_slice(&[0, version, if dnssec_ok { 0x80 } else { 0 }, 0]);
        opt.extend_from_slice(&[0, 0]); // RDLENGTH: no options
        opt
    }

    /// A query with RD=1 for `name` (dotted, no root dot), built byte by byte like
    /// [`A_FORUM_I2P`], with an OPT record appended when `edns` is given.
    fn query(id: u16, name: &str, qtype: u16, edns: Option<Vec<u8>>) -> Vec<u8> {
        let mut bytes = id.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(edns.is_some())]);
        for label in name.split('.') {
            bytes.push(label.len() as u8);
            bytes.extend_from_slice(label.as_bytes());
        }
        bytes.push(0);
        bytes.extend_from_slice(&qtype.to_be_bytes());
        bytes.extend_from_slice(&1u16.to_be_bytes()); // IN
        bytes.extend(edns.unwrap_or_default());
        bytes
    }

    fn parsed_query(packet: &[u8]) -> Query {
        match parse(packet) {
            Parsed::Query(query) => query,
            other => panic!("not a query: {other:?}"),
        }
    }

    fn reply(packet: &[u8]) -> Message {
        match parse(packet) {
            Parsed::Reply(bytes) | Parsed::Refused(bytes) => decode(&bytes),
            other => panic!("not a reply: {other:?}"),
        }
    }

    /// Decodes a response and checks what every response holds: QR=1, RA=0.
    fn decode(bytes: &[u8]) -> Message {
        let message = Message::from_vec(bytes).expect("our response decodes");
        assert_eq!(message.metadata.message_type, MessageType::Response);
        assert!(!message.metadata.recursion_available);
        message
    }

    #[test]
    fn a_query_is_answered_with_the_address() {
        let query = parsed_query(&A_FORUM_I2P);
        assert_eq!(query.kind(), Kind::A);
        assert_eq!(query.name(), "forum.i2p");
        assert_eq!(query.udp_limit(), 512);
        let addr = Ipv4Addr::new(127, 192, 0, 5);
        let bytes = query.respond(&Answer::V4 { addr, ttl: 60 }, query.udp_limit());
        // QR=1, opcode QUERY, AA=1, TC=0, RD=1 (echoed); RA=0, RCODE NOERROR.
        assert_eq!(bytes[..4], [0xbe, 0xef, 0x85, 0x00]);
        // The question is echoed byte for byte after the header.
        assert_eq!(bytes[12..27], A_FORUM_I2P[12..]);
        let response = decode(&bytes);
        assert_eq!(response.metadata.id, 0xbeef);
        assert_eq!(response.metadata.op_code, OpCode::Query);
        assert!(response.metadata.authoritative && response.metadata.recursion_desired);
        assert_eq!(response.metadata.response_code, ResponseCode::NoError);
        assert_eq!(response.queries.len(), 1);
        assert_eq!(response.answers.len(), 1);
        let record = &response.answers[0];
        assert_eq!(record.name.to_ascii(), "forum.i2p.");
        assert_eq!(record.ttl, 60);
        assert_eq!(record.data, RData::A(A(addr)));
        assert!(
            response.edns.is_none(),
            "no OPT in reply to a query without one"
        );
    }

    #[test]
    fn name_is_lower_cased_and_the_question_echoed_as_asked() {
        let packet = query(1, "FoRuM.I2p", 1, None);
        let query = parsed_query(&packet);
        assert_eq!(query.name(), "forum.i2p");
        let bytes = query.respond(&Answer::NxDomain, 512);
        // Resolvers that randomise the case check it comes back unchanged.
        assert_eq!(bytes[12..packet.len()], packet[12..]);
    }

    #[test]
    fn odd_bytes_in_names_are_escaped() {
        assert_eq!(
            parsed_query(&query(1, "a b.i2p", 1, None)).name(),
            "a\\040b.i2p"
        );
        // A dot inside a label is not a label separator.
        let mut dotted = query(1, "axb.i2p", 1, None);
        dotted[14] = b'.';
        assert_eq!(parsed_query(&dotted).name(), "a\\.b.i2p");
        // The root: no name at all.
        let mut root = query(1, "", 1, None);
        root.remove(12); // the empty label `query` wrote before the root
        assert_eq!(parsed_query(&root).name(), "");
    }

    #[test]
    fn aaaa_gets_nodata() {
        let query = parsed_query(&query(0x1234, "forum.i2p", 28, None));
        assert_eq!(query.kind(), Kind::Aaaa);
        let response = decode(&query.respond(&Answer::NoData, 512));
        assert_eq!(response.metadata.id, 0x1234);
        assert_eq!(response.metadata.response_code, ResponseCode::NoError);
        assert!(response.metadata.authoritative);
        assert!(response.answers.is_empty());
        assert_eq!(response.queries[0].query_type(), RecordType::AAAA);
    }

    #[test]
    fn ptr_query_is_answered_with_the_name() {
        let query = parsed_query(&query(7, "5.0.192.127.in-addr.arpa", 12, None));
        assert_eq!(query.kind(), Kind::Ptr);
        assert_eq!(query.name(), "5.0.192.127.in-addr.arpa");
        assert_eq!(ptr_ipv4(query.name()), Some(Ipv4Addr::new(127, 192, 0, 5)));
        let answer = Answer::Ptr {
            name: "forum.i2p".into(),
            ttl: 30,
        };
        let response = decode(&query.respond(&answer, 512));
        assert_eq!(response.metadata.response_code, ResponseCode::NoError);
        assert_eq!(response.answers.len(), 1);
        let record = &response.answers[0];
        assert_eq!(record.name.to_ascii(), "5.0.192.127.in-addr.arpa.");
        assert_eq!(record.ttl, 30);
        let RData::PTR(PTR(target)) = &record.data else {
            panic!("not a PTR: {record:?}");
        };
        assert_eq!(target.to_ascii(), "forum.i2p.");
    }

    #[test]
    fn an_invalid_ptr_name_is_a_servfail() {
        let query = parsed_query(&query(7, "5.0.192.127.in-addr.arpa", 12, None));
        for name in [
            "a".repeat(64),
            "a..i2p".into(),
            vec!["a".repeat(60); 5].join("."),
        ] {
            let response = decode(&query.respond(&Answer::Ptr { name, ttl: 1 }, 512));
            assert_eq!(response.metadata.response_code, ResponseCode::ServFail);
            assert!(response.answers.is_empty());
        }
    }

    #[test]
    fn refusals_and_failures_are_not_authoritative() {
        let query = parsed_query(&query(9, "example.com", 1, None));
        for (answer, rcode, authoritative) in [
            (Answer::Refused, ResponseCode::Refused, false),
            (Answer::ServFail, ResponseCode::ServFail, false),
            (Answer::NxDomain, ResponseCode::NXDomain, true),
        ] {
            let response = decode(&query.respond(&answer, 512));
            assert_eq!(response.metadata.id, 9);
            assert_eq!(response.metadata.response_code, rcode);
            assert_eq!(response.metadata.authoritative, authoritative);
            assert!(response.metadata.recursion_desired);
            assert_eq!(response.queries[0].name().to_ascii(), "example.com.");
            assert!(response.answers.is_empty());
        }
    }

    #[test]
    fn other_opcodes_get_notimp() {
        let mut packet = A_FORUM_I2P;
        packet[2] |= 2 << 3; // opcode 2: STATUS
        let response = reply(&packet);
        assert_eq!(response.metadata.id, 0xbeef);
        assert_eq!(response.metadata.op_code, OpCode::Status);
        assert_eq!(response.metadata.response_code, ResponseCode::NotImp);
        assert!(response.metadata.recursion_desired);
        assert!(response.queries.is_empty());
    }

    #[test]
    fn two_questions_get_formerr() {
        let mut packet = A_FORUM_I2P.to_vec();
        packet[5] = 2; // QDCOUNT 2
        packet.extend_from_slice(&A_FORUM_I2P[12..]);
        let response = reply(&packet);
        assert_eq!(response.metadata.id, 0xbeef);
        assert_eq!(response.metadata.response_code, ResponseCode::FormErr);
        packet[5] = 0; // and none
        assert_eq!(reply(&packet).metadata.response_code, ResponseCode::FormErr);
    }

    #[test]
    fn trailing_bytes_get_formerr() {
        let mut packet = A_FORUM_I2P.to_vec();
        packet.push(0);
        assert_eq!(reply(&packet).metadata.response_code, ResponseCode::FormErr);
    }

    #[test]
    fn responses_and_runts_are_dropped() {
        let mut packet = A_FORUM_I2P;
        packet[2] |= 0x80; // QR=1
        assert!(matches!(parse(&packet), Parsed::Drop));
        for len in 0..12 {
            assert!(matches!(parse(&A_FORUM_I2P[..len]), Parsed::Drop), "{len}");
        }
    }

    #[test]
    fn other_classes_are_refused() {
        let mut packet = query(3, "version.bind", 16, None);
        let class = packet.len() - 2;
        packet[class..].copy_from_slice(&3u16.to_be_bytes()); // CH
                                                              // A refusal (counted as one), not a malformed message.
        assert!(matches!(parse(&packet), Parsed::Refused(_)));
        let response = reply(&packet);
        assert_eq!(response.metadata.id, 3);
        assert_eq!(response.metadata.response_code, ResponseCode::Refused);
        assert_eq!(response.queries[0].query_class(), DNSClass::CH);
    }

    #[test]
    fn a_long_answer_is_truncated() {
        let query = parsed_query(&query(5, "5.0.192.127.in-addr.arpa", 12, None));
        // 250 characters: four labels of 61 and one of 2.
        let name = format!("{}.i2", vec!["b".repeat(61); 4].join("."));
        assert_eq!(name.len(), 250);
        let answer = Answer::Ptr { name, ttl: 60 };
        let bytes = query.respond(&answer, 100);
        assert!(bytes.len() <= 100, "{}", bytes.len());
        let response = decode(&bytes);
        assert_eq!(response.metadata.id, 5);
        assert!(response.metadata.truncation);
        assert_eq!(response.metadata.response_code, ResponseCode::NoError);
        assert_eq!(response.queries.len(), 1);
        assert!(response.answers.is_empty());
        // Over TCP it fits.
        let response = decode(&query.respond(&answer, 65535));
        assert!(!response.metadata.truncation);
        assert_eq!(response.answers.len(), 1);
        // Nothing fits below the question itself.
        assert!(query.respond(&answer, 20).is_empty());
    }

    #[test]
    fn the_longest_names_are_answered() {
        // 253 characters, the longest a name can be: the question and a PTR target.
        let longest = vec!["c".repeat(63); 4].join(".")[..253].to_owned();
        let query = parsed_query(&query(6, &longest, 12, None));
        assert_eq!(query.name(), longest);
        let answer = Answer::Ptr {
            name: longest.clone(),
            ttl: 60,
        };
        let response = decode(&query.respond(&answer, 512));
        assert_eq!(response.answers.len(), 1);
        assert!(!response.metadata.truncation);
    }

    #[test]
    fn edns_payload_is_clamped_and_opt_returned() {
        for (advertised, limit) in [(4096, 1232), (1232, 1232), (600, 600), (100, 512)] {
            let packet = query(8, "forum.i2p", 1, Some(opt(advertised, 0, false)));
            assert_eq!(parsed_query(&packet).udp_limit(), limit, "{advertised}");
        }
        let packet = query(8, "forum.i2p", 1, Some(opt(4096, 0, true)));
        let query = parsed_query(&packet);
        let addr = Ipv4Addr::new(127, 192, 0, 6);
        let response = decode(&query.respond(&Answer::V4 { addr, ttl: 5 }, query.udp_limit()));
        let edns = response.edns.expect("an OPT in reply to one");
        assert_eq!(edns.max_payload(), 1232);
        assert_eq!(edns.version(), 0);
        assert!(edns.flags().dnssec_ok, "DO is copied");
        assert_eq!(response.answers.len(), 1);
    }

    #[test]
    fn unknown_edns_version_gets_badvers() {
        let response = reply(&query(4, "forum.i2p", 1, Some(opt(1232, 1, false))));
        assert_eq!(response.metadata.id, 4);
        // hickory reads RCODE 16 as BADSIG, its TSIG meaning; BADVERS is the same number.
        assert_eq!(u16::from(response.metadata.response_code), 16);
        assert_eq!(response.edns.expect("BADVERS needs an OPT").version(), 0);
    }

    #[test]
    fn two_opt_records_get_formerr() {
        let mut packet = query(4, "forum.i2p", 1, Some(opt(1232, 0, false)));
        packet[11] = 2;
        packet.extend(opt(1232, 0, false));
        assert_eq!(reply(&packet).metadata.response_code, ResponseCode::FormErr);
    }

    #[test]
    fn every_prefix_of_a_query_is_dropped_or_rejected() {
        let queries = [
            A_FORUM_I2P.to_vec(),
            query(2, "5.0.192.127.in-addr.arpa", 12, None),
            query(3, "forum.i2p", 28, Some(opt(1232, 0, true))),
        ];
        for packet in &queries {
            assert!(matches!(parse(packet), Parsed::Query(_)));
            for len in 0..packet.len() {
                match parse(&packet[..len]) {
                    Parsed::Drop => assert!(len < 12, "{len}"),
                    Parsed::Reply(bytes) => {
                        assert_eq!(decode(&bytes).metadata.response_code, ResponseCode::FormErr)
                    }
                    Parsed::Query(_) | Parsed::Refused(_) => {
                        panic!("a {len}-byte prefix parsed as a question")
                    }
                }
            }
        }
    }

    #[test]
    fn ptr_ipv4_reads_canonical_reverse_names() {
        let ok =
            |name: &str, addr: [u8; 4]| assert_eq!(ptr_ipv4(name), Some(addr.into()), "{name}");
        ok("5.0.192.127.in-addr.arpa", [127, 192, 0, 5]);
        ok("255.255.255.255.in-addr.arpa", [255; 4]);
        ok("0.0.0.0.in-addr.arpa", [0; 4]);
        ok("4.3.2.1.IN-ADDR.ARPA", [1, 2, 3, 4]);
        for bad in [
            "",
            "in-addr.arpa",
            ".in-addr.arpa",
            "1.2.3.in-addr.arpa",
            "1.2.3.4.5.in-addr.arpa",
            "1.2.3.256.in-addr.arpa",
            "1.2.3.04.in-addr.arpa",
            "1.2.3.00.in-addr.arpa",
            "1.2.3.+4.in-addr.arpa",
            "1.2..4.in-addr.arpa",
            "1.2.3.4.in-addr.arpa.",
            "1.2.3.4.ip6.arpa",
            "1.2.3.4xin-addr.arpa",
            "1.2.3.é.in-addr.arpa",
            "forum.i2p",
        ] {
            assert_eq!(ptr_ipv4(bad), None, "{bad}");
        }
    }
}
