//! Test support: the offline i2pd network, a scripted fake SAM bridge, services behind
//! them, raw SOCKS clients, the eepsocks launcher and the in-process front end. docs/testing.md shows how to use them.
#![allow(dead_code)]

pub mod capture;
pub mod client;
pub mod consts;
pub mod exec;
pub mod fake_sam;
pub mod frontend;
pub mod launcher;
pub mod leaks;
pub mod netns;
pub mod notify;
pub mod rig;
pub mod services;
pub mod testnet;

use std::time::Instant;

/// True (after printing one `skipped: <reason>` line) when the i2pd test network cannot be
/// built here: it needs root (network namespaces) and i2pd. Call it first in such a test
/// and return when it says so.
pub fn skip_without_testnet() -> bool {
    let reason = if unsafe { libc::geteuid() } != 0 {
        Some("needs root for the network namespace of the i2pd test network")
    } else if testnet::i2pd_path().is_none() {
        Some("i2pd is not installed (apt-get install -y i2pd)")
    } else if !capture::available() {
        Some("tcpdump is not installed (apt-get install -y tcpdump; the leak audit)")
    } else {
        None
    };
    match reason {
        Some(r) => {
            println!("skipped: {r}");
            true
        }
        None => false,
    }
}

/// Run one named step of a long test, printing its name and how long it took, so a
/// failure or a slow run points at the step.
pub fn step<T>(name: &str, f: impl FnOnce() -> T) -> T {
    eprintln!("step: {name}");
    let t = Instant::now();
    let r = f();
    eprintln!("step: {name}: done in {:.1} s", t.elapsed().as_secs_f32());
    r
}
