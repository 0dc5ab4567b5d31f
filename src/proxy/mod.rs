//! The SOCKS front end, each file one job, from the bottom up:
//! - `stats`: a listener's counters, and the one table that names them;
//! - `context`: what the connections of one listener share (`ListenerContext`);
//! - `client`: the client's socket outside its protocol (final reply, hang-up watch,
//!   linger, accept);
//! - `relay`: bytes both ways, through the leak filters `filter` picks;
//! - `udp`: UDP ASSOCIATE over I2P datagrams;
//! - `conn`: the life of one client, top to bottom (CONNECT, RESOLVE, ASSOCIATE);
//! - `server`: the accept loops;
//! - `tally`: what an `eepsocks exec` was refused, for its report;
//! - `finishing`: streams finishing a reply for a client that sent its FIN, which give
//!   their slots up;
//! - `ratelimit` (for log lines a client can cause), `budget` (descriptors), `logins`
//!   (failed logins by address).

pub mod budget;
pub mod client;
pub mod conn;
pub mod context;
pub mod filter;
pub mod finishing;
pub mod logins;
pub mod ratelimit;
pub mod relay;
pub mod server;
pub mod stats;
pub mod tally;
pub mod udp;
