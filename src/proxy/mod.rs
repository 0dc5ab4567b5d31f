//! The SOCKS front end: `server` (the accept loop), `conn` (the life of one client, top
//! to bottom), `relay` (bytes both ways), `filter` (which leak filters a stream gets),
//! `status` (the status endpoint and counters), `udp` (UDP ASSOCIATE over I2P datagrams),
//! `ratelimit` (for log lines a client can cause), `budget` (descriptors).

pub mod budget;
pub mod conn;
pub mod filter;
pub mod logins;
pub mod ratelimit;
pub mod relay;
pub mod server;
pub mod status;
pub mod udp;
