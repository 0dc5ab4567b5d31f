//! Automap: virtual addresses for I2P names (the table is `naming::StandIns`), served to
//! applications that resolve names themselves (a DNS port), speak only SOCKS4 or SOCKS5
//! with IP addresses, or cannot be configured with a proxy at all (a transparent port for
//! connections the firewall redirects). docs/automap.md has the recipes.
//!
//! - `dns`: the DNS message codec (on hickory-proto).
//! - `server`: the DNS port over UDP and TCP.

pub mod dns;
pub mod server;
