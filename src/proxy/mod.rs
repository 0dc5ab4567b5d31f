//! The SOCKS front end: `server` (the accept loop), `conn` (the life of one client, top
//! to bottom), `relay` (bytes both ways), `filter` (which leak filters a stream gets),
//! `status` (the status endpoint and counters), `udp` (UDP ASSOCIATE over I2P datagrams),
//! `ratelimit` (for log lines a client can cause), `budget` (descriptors), `finishing`
//! (streams finishing a reply for a client that sent its FIN, which give their slots up).

pub mod budget;
pub mod conn;
pub mod filter;
pub mod finishing;
pub mod logins;
pub mod ratelimit;
pub mod relay;
pub mod server;
pub mod status;
pub mod udp;
