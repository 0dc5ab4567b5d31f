//! eepsocks: a SOCKS 4a/5 proxy into I2P, and nothing else.

pub mod socks;
