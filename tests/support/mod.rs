//! Test support: the offline i2pd network, services behind it, and raw SOCKS clients.
#![allow(dead_code)]

pub mod client;
pub mod frontend;
pub mod services;
pub mod testnet;
