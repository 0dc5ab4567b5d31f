//! What an `eepsocks exec` was refused, as the daemon saw it: counted where it happens
//! (the transparent port, the DNS port) for the exec's report (`exec::Report`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Entries each list of the report keeps (the counts go on).
pub const REPORT_ITEMS: usize = 8;
/// Longest name kept in the report (DNS names are at most 253 characters).
pub(crate) const NAME_MAX: usize = 253;

/// What an exec was refused, as the daemon saw it (the firewall's counters are the
/// namespace's).
#[derive(Default)]
pub struct Tally {
    pub(crate) clearnet: AtomicU64,
    pub(crate) clearnet_first: Mutex<Vec<String>>,
    pub(crate) names: AtomicU64,
    pub(crate) names_first: Mutex<Vec<String>>,
}

impl Tally {
    /// A TCP connection to an address that is no virtual address of this exec.
    pub fn clearnet(&self, dst: Option<SocketAddr>) {
        self.clearnet.fetch_add(1, Ordering::Relaxed);
        let text = dst.map_or("(unknown)".to_string(), |d| d.to_string());
        keep(&self.clearnet_first, text);
    }

    /// A DNS query for a name that is not an I2P name.
    pub fn name(&self, name: &str) {
        self.names.fetch_add(1, Ordering::Relaxed);
        let name: String = name.trim_end_matches('.').chars().take(NAME_MAX).collect();
        keep(&self.names_first, name);
    }
}

/// The first `REPORT_ITEMS` distinct entries.
fn keep(list: &Mutex<Vec<String>>, item: String) {
    let mut l = list.lock().unwrap_or_else(|e| e.into_inner());
    if l.len() < REPORT_ITEMS && !l.contains(&item) {
        l.push(item);
    }
}
