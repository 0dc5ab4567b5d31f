//! eepsocks: a SOCKS 4a/5 proxy into I2P, and nothing else.
//!
//! Layout, one folder per concept, in layers: a file imports only from its own layer's
//! lower files or from layers below it (ground first):
//!
//! 1. `socks` (the sans-IO SOCKS 4a/5 and HTTP CONNECT codec) and `destination` (I2P
//!    destinations, keys, base64/b32): they import nothing of ours.
//! 2. `naming`: which targets are I2P targets (policy), address books and their lookup
//!    order, RESOLVE stand-ins, GarliCat, subscriptions (which fetch through a `Feeds` the
//!    daemon hands in: naming speaks no SAM).
//! 3. `config`: the TOML settings, command-line overrides, importing i2pd / Java I2P
//!    tunnel configs.
//! 4. `i2p`: the router behind the `Router` trait: key files, identities and per-user
//!    pools, the SAM v3 client, the subscriptions' feeds, the choice of backend. `ports`
//!    (the ports file and where running instances announce themselves) stands beside it.
//! 5. `proxy`: the SOCKS front end (counters, the listener's context, the client socket's
//!    helpers, relay, UDP ASSOCIATE, one client's life, the accept loops, an exec's
//!    tally). `demo` (an offline I2P network in this process, feature `embedded`) stands
//!    beside it.
//! 6. `automap`: virtual addresses for I2P names: the DNS port (codec and server); the
//!    transparent port runs on `proxy`.
//! 7. `exec`: `eepsocks exec` (a command in namespaces whose only way out is the daemon):
//!    the launcher, the namespace side, and the control socket the daemon serves.
//! 8. `daemon`: the running proxy: listeners built from the config, identities, reload and
//!    drain, the status endpoint, driven by a shutdown future and a stream of reloads.
//! 9. `cli`: the subcommands; `main.rs` only parses and dispatches.

pub mod automap;
pub mod cli;
pub mod config;
pub mod daemon;
#[cfg(feature = "embedded")]
pub mod demo;
pub mod destination;
pub mod exec;
pub mod i2p;
pub mod naming;
pub mod ports;
pub mod proxy;
pub mod socks;

pub use eepsocks_fsutil as fsutil;
