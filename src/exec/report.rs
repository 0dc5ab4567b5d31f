//! The exec's exit report: what it was refused (the daemon's `Tally`, the namespace's
//! firewall counters).

use super::ns;
use crate::proxy::tally::{Tally, REPORT_ITEMS};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;
use std::sync::Mutex;

impl Tally {
    pub fn report(&self, b32: &str, stats: &crate::proxy::stats::Stats) -> Report {
        let get = |m: &Mutex<Vec<String>>| m.lock().map(|v| v.clone()).unwrap_or_default();
        Report {
            b32: b32.to_string(),
            streams: stats.streams_opened.load(Ordering::Relaxed),
            clearnet: self.clearnet.load(Ordering::Relaxed),
            clearnet_first: get(&self.clearnet_first),
            names: self.names.load(Ordering::Relaxed),
            names_first: get(&self.names_first),
            counters: None,
        }
    }
}

/// The exit report.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Report {
    pub b32: String,
    pub streams: u64,
    pub clearnet: u64,
    pub clearnet_first: Vec<String>,
    /// DNS queries for names that are not I2P names, and the first distinct names.
    pub names: u64,
    pub names_first: Vec<String>,
    /// The namespace's firewall (None: could not be read).
    #[serde(default)]
    pub counters: Option<ns::Counters>,
}

impl Report {
    fn refused(&self) -> u64 {
        let c = self.counters.clone().unwrap_or_default();
        self.clearnet + self.names + c.udp + c.icmp + c.other + c.loopback
    }

    /// The report for stderr; `quiet`: one line, only when something was refused.
    pub fn text(&self, quiet: bool) -> Option<String> {
        let list = |v: &[String], n: u64| {
            if v.is_empty() {
                String::new()
            } else {
                // The list stops at REPORT_ITEMS distinct entries; the count goes on.
                let more = if v.len() >= REPORT_ITEMS && n > v.len() as u64 {
                    ", ..."
                } else {
                    ""
                };
                format!(" ({}{more})", v.join(", "))
            }
        };
        let c = self.counters.clone().unwrap_or_default();
        let other = c.udp + c.icmp + c.other;
        if quiet {
            if self.refused() == 0 {
                return None;
            }
            return Some(format!(
                "eepsocks exec: refused {} clearnet connections{}, {} non-I2P name queries{}, {} other packets, {} loopback connections (identity {})",
                self.clearnet,
                list(&self.clearnet_first, self.clearnet),
                self.names,
                list(&self.names_first, self.names),
                other,
                c.loopback,
                self.b32
            ));
        }
        let counters = match &self.counters {
            Some(_) => format!(
                "{other} (UDP {}, ICMP {}, other {}); loopback connections refused (nothing listening): {}",
                c.udp, c.icmp, c.other, c.loopback
            ),
            None => "unknown (the firewall's counters could not be read)".into(),
        };
        Some(format!(
            "eepsocks exec: report\n  identity: {}\n  I2P streams opened: {}\n  clearnet connections refused: {}{}\n  non-I2P name queries refused: {}{}\n  other packets refused: {}",
            self.b32,
            self.streams,
            self.clearnet,
            list(&self.clearnet_first, self.clearnet),
            self.names,
            list(&self.names_first, self.names),
            counters
        ))
    }
}
