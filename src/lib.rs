//! eepsocks: a SOCKS 4a/5 proxy into I2P, and nothing else.
//!
//! Layout, one folder per concept:
//! - `automap`: virtual addresses for I2P names: the DNS port (its codec and server); the
//!   transparent port runs on `proxy`.
//! - `socks`: the sans-IO SOCKS 4a/5 handshake codec (bytes in, bytes to send out).
//! - `naming`: which targets are I2P targets (policy), address books and their lookup
//!   order, RESOLVE stand-ins, subscriptions and their small HTTP client.
//! - `i2p`: the router behind the `Router` trait: I2P formats, key files, identities and
//!   per-user pools, the SAM v3 client, and the choice of backend (SAM or embedded).
//! - `proxy`: the accept loop, the life of one connection (`proxy/conn.rs`), the relay,
//!   the status endpoint.
//! - `config`: the TOML settings, command-line overrides, and importing i2pd / Java I2P
//!   tunnel configs.
//! - `daemon`: the running proxy: listeners, identities, reload and drain, driven by a
//!   shutdown future and a stream of reloads.
//! - `cli`: the subcommands; `main.rs` only parses and dispatches.
//! - `demo`: an offline I2P network in this process (feature `embedded`).

pub mod automap;
pub mod cli;
pub mod config;
pub mod daemon;
#[cfg(feature = "embedded")]
pub mod demo;
pub mod destination;
pub mod i2p;
pub mod naming;
pub mod proxy;
pub mod socks;

pub use eepsocks_fsutil as fsutil;
