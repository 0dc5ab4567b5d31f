//! Stand-in addresses for Tor's RESOLVE.

use crate::socks::Address;
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

/// Tor's RESOLVE (0xF0) for applications that resolve before they connect (torsocks,
/// Monero's `v4a_tor`): a resolvable I2P name is answered with a stand-in IPv4 address
/// 255.x.y.z, as Java I2P does, and a later CONNECT to that address (as an IPv4 literal
/// or as the dotted-quad string) is mapped back to the name. Unlike Java I2P, the name is
/// checked first (unknown names get 0x04 at RESOLVE time).
///
/// One table per listener, and inside it one space per identity (`who`: the SOCKS username
/// on `isolate = "username"` listeners), so no client can see or steer another identity's
/// mappings:
/// - addresses are handed out in a random order (a random start and step through the 2^24
///   addresses of 255/8), never derived from the name, and none is handed out again before
///   all 16.7 million have been: a stand-in an application may still have cached never
///   comes to mean another name;
/// - at most `CAP` mappings are kept, the least recently used forgotten first, and one
///   identity holds at most `PER_WHO` of them, so a flood of RESOLVEs by one client only
///   evicts its own.
pub struct StandIns {
    inner: std::sync::Mutex<Table>,
}

/// Mappings kept per listener.
pub const CAP: usize = 4096;
/// Mappings kept per identity.
pub const PER_WHO: usize = 1024;

struct Entry {
    who: Vec<u8>,
    name: String,
    used: u64,
}

struct Table {
    by_ip: HashMap<u32, Entry>,
    by_name: HashMap<(Vec<u8>, String), u32>,
    /// Last use → address, oldest first.
    lru: BTreeMap<u64, u32>,
    per_who: HashMap<Vec<u8>, usize>,
    tick: u64,
    /// Next address: `start + n * step` (mod 2^24), n counting up.
    n: u32,
    start: u32,
    step: u32,
}

impl Default for StandIns {
    fn default() -> StandIns {
        let mut b = [0u8; 8];
        // Without OS randomness the walk still never reuses an address; it is only
        // predictable.
        let _ = getrandom::getrandom(&mut b);
        let r = u64::from_le_bytes(b);
        StandIns {
            inner: std::sync::Mutex::new(Table {
                by_ip: HashMap::new(),
                by_name: HashMap::new(),
                lru: BTreeMap::new(),
                per_who: HashMap::new(),
                tick: 0,
                n: 0,
                start: (r as u32) & 0x00ff_ffff,
                // Odd: a step coprime with 2^24 visits every address once per cycle.
                step: ((r >> 32) as u32 & 0x00ff_ffff) | 1,
            }),
        }
    }
}

impl Table {
    fn touch(&mut self, ip: u32) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(e) = self.by_ip.get_mut(&ip) {
            self.lru.remove(&e.used);
            e.used = tick;
            self.lru.insert(tick, ip);
        }
    }

    fn forget(&mut self, ip: u32) {
        if let Some(e) = self.by_ip.remove(&ip) {
            self.lru.remove(&e.used);
            self.by_name.remove(&(e.who.clone(), e.name));
            if let Some(n) = self.per_who.get_mut(&e.who) {
                *n -= 1;
                if *n == 0 {
                    self.per_who.remove(&e.who);
                }
            }
        }
    }

    /// The least recently used mapping of `who`, or of anyone when `who` is None.
    fn oldest(&self, who: Option<&[u8]>) -> Option<u32> {
        self.lru
            .values()
            .copied()
            .find(|ip| who.map_or(true, |w| self.by_ip[ip].who == w))
    }

    fn next_ip(&mut self) -> u32 {
        loop {
            let low = self.start.wrapping_add(self.n.wrapping_mul(self.step)) & 0x00ff_ffff;
            self.n = self.n.wrapping_add(1) & 0x00ff_ffff;
            // 255.255.255.255 is the broadcast address: never hand it out.
            if low != 0x00ff_ffff && !self.by_ip.contains_key(&(0xff00_0000 | low)) {
                return 0xff00_0000 | low;
            }
        }
    }
}

impl StandIns {
    /// The stand-in address for `name` as identity `who` resolved it (the same one for as
    /// long as it is remembered).
    pub fn map(&self, who: &[u8], name: &str) -> Ipv4Addr {
        let mut t = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let key = (who.to_vec(), name.to_string());
        if let Some(&ip) = t.by_name.get(&key) {
            t.touch(ip);
            return ip.into();
        }
        if t.per_who.get(who).copied().unwrap_or(0) >= PER_WHO {
            if let Some(ip) = t.oldest(Some(who)) {
                t.forget(ip);
            }
        } else if t.by_ip.len() >= CAP {
            if let Some(ip) = t.oldest(None) {
                t.forget(ip);
            }
        }
        let ip = t.next_ip();
        t.tick += 1;
        let used = t.tick;
        t.by_ip.insert(
            ip,
            Entry {
                who: who.to_vec(),
                name: name.to_string(),
                used,
            },
        );
        t.lru.insert(used, ip);
        t.by_name.insert(key, ip);
        *t.per_who.entry(who.to_vec()).or_default() += 1;
        ip.into()
    }

    /// The name behind a stand-in address given as a literal or as its dotted-quad string,
    /// if identity `who` was handed it.
    pub fn unmap(&self, who: &[u8], addr: &Address) -> Option<String> {
        let ip: Ipv4Addr = match addr {
            Address::Ipv4(ip) => *ip,
            // Only dotted quads can be stand-ins; skip the parse for ordinary names.
            Address::Name(n) if n.starts_with("255.") => n.parse().ok()?,
            _ => return None,
        };
        // Stand-ins are all in 255/8: no lock for any other address.
        if ip.octets()[0] != 255 {
            return None;
        }
        let mut t = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let ip = u32::from(ip);
        let name = t.by_ip.get(&ip).filter(|e| e.who == who)?.name.clone();
        t.touch(ip);
        Some(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(ip: Ipv4Addr) -> Address {
        Address::Ipv4(ip)
    }

    #[test]
    fn round_trip() {
        let f = StandIns::default();
        let a = f.map(b"", "forum.i2p");
        assert_eq!(a.octets()[0], 255);
        assert_eq!(f.map(b"", "forum.i2p"), a);
        assert_eq!(f.unmap(b"", &v4(a)), Some("forum.i2p".into()));
        assert_eq!(
            f.unmap(b"", &Address::Name(a.to_string())),
            Some("forum.i2p".into())
        );
        assert_eq!(f.unmap(b"", &v4(Ipv4Addr::new(10, 0, 0, 1))), None);
    }

    /// Another identity can neither use nor probe a stand-in it was not handed.
    #[test]
    fn identities_do_not_see_each_other() {
        let f = StandIns::default();
        let a = f.map(b"alice", "secret.i2p");
        assert_eq!(f.unmap(b"bob", &v4(a)), None);
        let b = f.map(b"bob", "secret.i2p");
        assert_ne!(
            a, b,
            "the same name gets another address for another identity"
        );
        assert_eq!(f.unmap(b"alice", &v4(a)), Some("secret.i2p".into()));
    }

    /// A flood of RESOLVEs by one identity evicts only its own mappings, and an address
    /// once handed out never comes back for another name (no chosen collisions).
    #[test]
    fn floods_evict_only_the_flooder_and_addresses_are_not_reused() {
        let f = StandIns::default();
        let victim = f.map(b"victim", "bank.i2p");
        let mut seen = std::collections::HashSet::new();
        seen.insert(victim);
        for i in 0..20_000 {
            let ip = f.map(b"attacker", &format!("n{i}.b32.i2p"));
            assert!(seen.insert(ip), "address {ip} handed out twice");
        }
        assert_eq!(f.unmap(b"victim", &v4(victim)), Some("bank.i2p".into()));
        assert!(f.inner.lock().unwrap().by_ip.len() <= CAP);
        assert_eq!(
            f.inner.lock().unwrap().per_who[&b"attacker".to_vec()],
            PER_WHO
        );
    }

    /// Least recently used, not first in first out: a mapping in use survives.
    #[test]
    fn recently_used_mappings_stay() {
        let f = StandIns::default();
        let keep = f.map(b"", "keep.i2p");
        for i in 0..3 * PER_WHO {
            f.map(b"", &format!("n{i}.i2p"));
            // The application keeps connecting to `keep`.
            assert_eq!(f.unmap(b"", &v4(keep)).as_deref(), Some("keep.i2p"));
        }
    }

    #[test]
    fn never_broadcast_and_all_in_255() {
        let f = StandIns::default();
        for i in 0..10_000 {
            let ip = f.map(b"", &format!("n{i}.i2p"));
            assert_eq!(ip.octets()[0], 255);
            assert_ne!(ip, Ipv4Addr::BROADCAST);
        }
    }
}
