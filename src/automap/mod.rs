//! Automap: a DNS server on loopback that answers A queries for `.i2p` names with virtual
//! IPv4 addresses, and PTR queries for those addresses with the name, so that
//! applications without SOCKS name resolution can still reach I2P.
//!
//! - `dns`: the sans-IO DNS message codec (query bytes in, response bytes out).

pub mod dns;
