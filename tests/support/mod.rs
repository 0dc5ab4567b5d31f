//! Test support: the offline i2pd network, a scripted fake SAM bridge, services behind
//! them, and raw SOCKS clients.
#![allow(dead_code)]

pub mod client;
pub mod fake_sam;
pub mod services;
pub mod testnet;
