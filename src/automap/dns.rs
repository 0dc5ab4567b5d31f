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
use hickory_proto::rr::rdata::{A, PTR};
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
    Other(u16),
}

/// What [`parse`] made of a message.
#[derive(Debug)]
pub enum Parsed {
    /// A question to answer: the caller decides the Answer.
    Query(Query),
    /// Answer at once with these bytes (FORMERR, NOTIMP, BADVERS, or REFUSED for a class
    /// other than IN).
    Reply(Vec<u8>),
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
        return Parsed::Reply(query.respond(&Answer::Refused, MIN_UDP));
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
            other => Kind::Other(other.into()),
        }
    }

    /// The question name, lower-cased, without the trailing root dot (e.g. "forum.i2p",
    /// "5.0.192.127.in-addr.arpa"; "" for the root). Bytes that are not letters, digits,
    /// '-' or '_' are escaped in master-file style (`\.` for a dot inside a label, `\DDD`
    /// otherwise), so a name never passes for another.
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
    let truncated = message.truncate();
    [message, truncated]
        .iter()
        .filter_map(|m| m.to_vec().ok())
        .find(|bytes| bytes.len() <= max_len)
        .unwrap_or_default()
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
