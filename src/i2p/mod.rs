//! The I2P side. The proxy sees only the `Router` trait below: open a stream to a target.
//! Streams, destinations and keys belong to the router; this folder is the only place that
//! knows how to ask it.
//!
//! - `router`: the `Router` trait the proxy sees, `Opened`, `OpenError`.
//! - `keyfile`: key files on disk (i2pd / Java I2P layout, 0600, never replaced).
//! - `sam`: the SAM v3 client (line protocol, sessions kept alive, warm stream sockets).
//! - `identity`: which session serves a client (per listener, or per SOCKS username).
//! - `sam_router`: the `Router` for any SAM bridge, with the address books.
//! - `backend`: choosing the router (a SAM bridge, or the embedded one) and starting it.
//! - `feeds`: the address-book subscriptions' way into I2P (a transient identity).
//! - `trust`: whether a SAM bridge may receive our keys (whose socket it is).

pub mod backend;
pub mod feeds;
pub mod identity;
pub mod keyfile;
pub mod router;
pub mod sam;
pub mod sam_router;
pub mod trust;

pub use crate::destination::{Destination, PrivateKeys};
pub use router::{OpenError, Opened, Router};
pub use sam::DatagramSession;
pub use sam_router::SamRouter;
