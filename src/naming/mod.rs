//! Which SOCKS targets are I2P targets, and how each kind is resolved.
//!
//! Policy (`policy`): only names ending in `.i2p` go anywhere. IP literals are refused (an IP can never
//! be an I2P destination, and an app that sends one has already resolved the name outside
//! the proxy: a DNS leak). Other names are refused: eepsocks has no clearnet and no outproxy.
//!
//! Then, for names: `book` (the user's address book and the subscriptions, and their lookup
//! order before the router's), `standins` (addresses handed out by RESOLVE),
//! `subscriptions` (hosts.txt feeds, fetched through the `Feeds` the daemon hands in, so
//! that naming never speaks SAM) with its small `http` client, `garlicat` (IPv6 addresses
//! that stand for destinations an identity knows).

pub mod book;
pub mod garlicat;
pub mod http;
pub mod policy;
pub mod standins;
pub mod subscriptions;

pub use book::{AddressBook, Books, Entry};
pub use policy::{classify, Refusal, Target};
pub use standins::StandIns;
