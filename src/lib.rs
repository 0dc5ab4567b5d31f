//! eepsocks: a SOCKS 4a/5 proxy into I2P, and nothing else.
//!
//! Layout: `socks` is the sans-IO handshake codec; `naming` decides which targets are I2P
//! targets; `router` hides the I2P router behind a trait (`sam` is the SAM v3 client);
//! `keys` and `i2p` hold the identity; `conn` is the life of one client; `server` the
//! accept loop; `config` the settings.

pub mod config;
pub mod conn;
#[cfg(feature = "embedded")]
pub mod demo;
pub mod embedded;
pub mod i2p;
pub mod identity;
pub mod import;
pub mod keys;
pub mod naming;
pub mod ratelimit;
pub mod relay;
pub mod router;
pub mod sam;
pub mod server;
pub mod socks;
pub mod status;
pub mod subscriptions;
