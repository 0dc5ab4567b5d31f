//! Stand-in (virtual) addresses: Tor's RESOLVE, and automap's DNS and transparent ports.

use crate::socks::Address;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Tor's RESOLVE (0xF0) for applications that resolve before they connect (torsocks,
/// Monero's `v4a_tor`), and automap (a DNS port and a transparent port): a resolvable I2P
/// name is answered with a stand-in IPv4 address from the table's network (255.0.0.0/8 by
/// default, as Java I2P does; automap's `network`, 127.192.0.0/10 by default), and a later
/// CONNECT to that address (as an IPv4 literal or as the dotted-quad string) is mapped back
/// to the name. Unlike Java I2P, the name is checked first (unknown names get 0x04).
///
/// One table per listener, and inside it one space per identity (`who`: the SOCKS username
/// on `isolate = "username"` listeners), so no client can see or steer another identity's
/// mappings:
/// - addresses are handed out in a random order (a random start and step through the
///   network), never derived from the name;
/// - an address that stood for a name is not handed out for another one within the
///   quarantine (10 minutes by default): a stand-in an application or a resolver may still
///   have cached does not come to mean another name. When every free address is in
///   quarantine, no new mapping is made (`map` gives None) until one leaves it. The
///   quarantine an identity's new names cause counts against that identity's share
///   (`QUARANTINE_PER_WHO`), so one client flooding new names blocks only its own;
/// - at most `CAP` mappings are kept (at most half the network, so the other half can sit
///   in quarantine), the least recently used forgotten first, and one identity holds at
///   most `PER_WHO` of them, so a flood by one client only evicts its own.
pub struct StandIns {
    inner: std::sync::Mutex<Table>,
    net: Network,
}

/// Mappings kept per listener.
pub const CAP: usize = 4096;
/// Mappings kept per identity.
pub const PER_WHO: usize = 1024;
/// Addresses held in quarantine at most (memory bound; see `StandIns`).
pub const QUARANTINE_CAP: usize = 65536;
/// Addresses in quarantine because of one identity's new names, at most.
pub const QUARANTINE_PER_WHO: usize = QUARANTINE_CAP / 4;
/// How long a forgotten address stays unused, unless configured otherwise.
pub const DEFAULT_QUARANTINE: Duration = Duration::from_secs(600);

/// An IPv4 network, `a.b.c.d/len`, with host bits zero. Read from config as that text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct Network {
    base: u32,
    len: u8,
}

impl Network {
    /// 255.0.0.0/8: RESOLVE's stand-ins when a listener has no automap network.
    pub const RESOLVE: Network = Network {
        base: 0xff00_0000,
        len: 8,
    };

    fn host_mask(self) -> u32 {
        u32::MAX >> self.len
    }

    pub fn contains(self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & !self.host_mask() == self.base
    }

    /// Whether the two networks share an address.
    pub fn overlaps(self, other: Network) -> bool {
        let shorter = if self.len <= other.len { self } else { other };
        let longer = if self.len <= other.len { other } else { self };
        shorter.contains(Ipv4Addr::from(longer.base))
    }

    /// Inside 127.0.0.0/8: its addresses never leave the machine.
    pub fn is_loopback(self) -> bool {
        self.len >= 8 && self.base >> 24 == 127
    }

    /// Addresses that can be handed out: all but the first and last of the network.
    pub fn usable(self) -> u64 {
        (1u64 << (32 - self.len)) - 2
    }
}

impl std::str::FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Network, String> {
        let err = || format!("{s:?}: an IPv4 network like 127.192.0.0/10 (prefix /1 to /30)");
        let (ip, len) = s.split_once('/').ok_or_else(err)?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| err())?;
        let len: u8 = len.parse().map_err(|_| err())?;
        if !(1..=30).contains(&len) {
            return Err(err());
        }
        let net = Network {
            base: u32::from(ip),
            len,
        };
        if net.base & net.host_mask() != 0 {
            return Err(format!(
                "{s:?}: host bits set (the network address is {}/{len})",
                Ipv4Addr::from(net.base & !net.host_mask())
            ));
        }
        Ok(net)
    }
}

impl TryFrom<String> for Network {
    type Error = String;

    fn try_from(s: String) -> Result<Network, String> {
        s.parse()
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.len)
    }
}

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
    /// Forgotten addresses, oldest first, with the identity whose new name forgot them;
    /// the same as a set; and how many each identity caused.
    released: VecDeque<(Instant, u32, Vec<u8>)>,
    quarantined: HashSet<u32>,
    quarantined_by: HashMap<Vec<u8>, usize>,
    quarantine: Duration,
    tick: u64,
    /// Next host part: `start + n * step` (mod the network's size), n counting up.
    n: u32,
    start: u32,
    step: u32,
    /// Mappings kept at most: CAP, or half the network if that is less.
    cap: usize,
}

impl Default for StandIns {
    fn default() -> StandIns {
        StandIns::new(Network::RESOLVE, DEFAULT_QUARANTINE)
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

    /// Forget the mapping of `ip` to make room for a new name of `cause`.
    fn forget(&mut self, ip: u32, now: Instant, cause: &[u8]) {
        if let Some(e) = self.by_ip.remove(&ip) {
            self.lru.remove(&e.used);
            self.by_name.remove(&(e.who.clone(), e.name));
            if let Some(n) = self.per_who.get_mut(&e.who) {
                *n -= 1;
                if *n == 0 {
                    self.per_who.remove(&e.who);
                }
            }
            self.released.push_back((now, ip, cause.to_vec()));
            self.quarantined.insert(ip);
            *self.quarantined_by.entry(cause.to_vec()).or_default() += 1;
        }
    }

    /// Let addresses whose quarantine is over be handed out again.
    fn release_expired(&mut self, now: Instant) {
        while let Some((at, _, _)) = self.released.front() {
            if now.duration_since(*at) < self.quarantine {
                break;
            }
            let (_, ip, cause) = self.released.pop_front().expect("front exists");
            self.quarantined.remove(&ip);
            if let Some(n) = self.quarantined_by.get_mut(&cause) {
                *n -= 1;
                if *n == 0 {
                    self.quarantined_by.remove(&cause);
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

    /// The next free address of the walk; None when every address is taken or in
    /// quarantine (one full turn of the walk without a free one).
    fn next_ip(&mut self, net: Network) -> Option<u32> {
        let mask = net.host_mask();
        for _ in 0..=mask {
            let host = self.start.wrapping_add(self.n.wrapping_mul(self.step)) & mask;
            self.n = self.n.wrapping_add(1) & mask;
            let ip = net.base | host;
            // Not the network's first or last address (255.255.255.255 is broadcast).
            if host != 0
                && host != mask
                && !self.by_ip.contains_key(&ip)
                && !self.quarantined.contains(&ip)
            {
                return Some(ip);
            }
        }
        None
    }
}

impl StandIns {
    /// A table handing out addresses of `net`, each kept from other names for `quarantine`
    /// after it was forgotten.
    pub fn new(net: Network, quarantine: Duration) -> StandIns {
        let mut b = [0u8; 8];
        // Without OS randomness the walk still never reuses an address early; it is only
        // predictable.
        let _ = getrandom::getrandom(&mut b);
        let r = u64::from_le_bytes(b);
        let mask = net.host_mask();
        StandIns {
            inner: std::sync::Mutex::new(Table {
                by_ip: HashMap::new(),
                by_name: HashMap::new(),
                lru: BTreeMap::new(),
                per_who: HashMap::new(),
                released: VecDeque::new(),
                quarantined: HashSet::new(),
                quarantined_by: HashMap::new(),
                quarantine,
                tick: 0,
                n: 0,
                start: (r as u32) & mask,
                // Odd: a step coprime with the (power of two) size visits every address
                // once per turn.
                step: ((r >> 32) as u32 & mask) | 1,
                cap: CAP.min((net.usable() / 2) as usize).max(1),
            }),
            net,
        }
    }

    /// A new quarantine for addresses forgotten from now on and those in quarantine now
    /// (a reload: the table and its mappings stay).
    pub fn set_quarantine(&self, quarantine: Duration) {
        let mut t = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        t.quarantine = quarantine;
    }

    pub fn network(&self) -> Network {
        self.net
    }

    /// The stand-in address for `name` as identity `who` resolved it (the same one for as
    /// long as it is remembered). None when no address is free (all taken or in quarantine).
    pub fn map(&self, who: &[u8], name: &str) -> Option<Ipv4Addr> {
        let mut t = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let key = (who.to_vec(), name.to_string());
        if let Some(&ip) = t.by_name.get(&key) {
            t.touch(ip);
            return Some(ip.into());
        }
        let now = Instant::now();
        t.release_expired(now);
        // Whose oldest mapping makes room: the client's own when it holds its share, else
        // anyone's when the table is full.
        let evict: Option<Option<&[u8]>> =
            if t.per_who.get(who).copied().unwrap_or(0) >= PER_WHO.min(t.cap) {
                Some(Some(who))
            } else if t.by_ip.len() >= t.cap {
                Some(None)
            } else {
                None
            };
        // A forgotten address goes into quarantine: forget only when there is room there
        // (and in this identity's share of it), and only once a free address is found
        // (nothing is lost for nothing).
        let caused = t.quarantined_by.get(who).copied().unwrap_or(0);
        if evict.is_some()
            && (t.quarantined.len() >= QUARANTINE_CAP || caused >= QUARANTINE_PER_WHO)
        {
            return None;
        }
        // No address free: say so without walking the whole network under the lock.
        if (t.by_ip.len() + t.quarantined.len()) as u64 >= self.net.usable() {
            return None;
        }
        let ip = t.next_ip(self.net)?;
        if let Some(w) = evict {
            if let Some(old) = t.oldest(w) {
                t.forget(old, now, who);
            }
        }
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
        Some(ip.into())
    }

    /// The address `name` already has for `who`, if any (marking it used).
    pub fn mapped(&self, who: &[u8], name: &str) -> Option<Ipv4Addr> {
        let mut t = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let ip = *t.by_name.get(&(who.to_vec(), name.to_string()))?;
        t.touch(ip);
        Some(ip.into())
    }

    /// The name behind a stand-in address given as a literal or as its dotted-quad string,
    /// if identity `who` was handed it.
    pub fn unmap(&self, who: &[u8], addr: &Address) -> Option<String> {
        let ip: Ipv4Addr = match addr {
            Address::Ipv4(ip) => *ip,
            // Only dotted quads can be stand-ins; skip the parse for ordinary names.
            Address::Name(n) if n.starts_with(|c: char| c.is_ascii_digit()) => n.parse().ok()?,
            _ => return None,
        };
        // No lock for addresses outside the network.
        if !self.net.contains(ip) {
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
    fn overlapping_networks() {
        let n = |s: &str| s.parse::<Network>().unwrap();
        for (a, b, want) in [
            ("127.192.0.0/10", "255.0.0.0/8", false),
            ("255.128.0.0/9", "255.0.0.0/8", true),
            ("254.0.0.0/7", "255.0.0.0/8", true),
            ("254.0.0.0/8", "255.0.0.0/8", false),
            ("10.0.0.0/30", "10.0.0.4/30", false),
            ("10.0.0.0/29", "10.0.0.4/30", true),
        ] {
            assert_eq!(n(a).overlaps(n(b)), want, "{a} {b}");
            assert_eq!(n(b).overlaps(n(a)), want, "{b} {a}");
        }
    }

    #[test]
    fn round_trip() {
        let f = StandIns::default();
        let a = f.map(b"", "forum.i2p").unwrap();
        assert_eq!(a.octets()[0], 255);
        assert_eq!(f.map(b"", "forum.i2p"), Some(a));
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
        let a = f.map(b"alice", "secret.i2p").unwrap();
        assert_eq!(f.unmap(b"bob", &v4(a)), None);
        let b = f.map(b"bob", "secret.i2p").unwrap();
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
        let victim = f.map(b"victim", "bank.i2p").unwrap();
        let mut seen = std::collections::HashSet::new();
        seen.insert(victim);
        // Until its share of the quarantine is full, then refused.
        for i in 0..PER_WHO + QUARANTINE_PER_WHO {
            let ip = f.map(b"attacker", &format!("n{i}.b32.i2p")).unwrap();
            assert!(seen.insert(ip), "address {ip} handed out twice");
        }
        assert_eq!(f.map(b"attacker", "one-more.b32.i2p"), None);
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
        let keep = f.map(b"", "keep.i2p").unwrap();
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
            let ip = f.map(b"", &format!("n{i}.i2p")).unwrap();
            assert_eq!(ip.octets()[0], 255);
            assert_ne!(ip, Ipv4Addr::BROADCAST);
        }
    }

    #[test]
    fn networks_parse_and_bound() {
        let n: Network = "127.192.0.0/10".parse().unwrap();
        assert_eq!(n.to_string(), "127.192.0.0/10");
        assert!(n.contains(Ipv4Addr::new(127, 255, 1, 2)));
        assert!(!n.contains(Ipv4Addr::new(127, 0, 0, 1)));
        for bad in [
            "127.192.0.1/10",
            "127.192.0.0",
            "127.192.0.0/31",
            "127.192.0.0/0",
            "x/8",
        ] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
        let f = StandIns::new(n, DEFAULT_QUARANTINE);
        for i in 0..1000 {
            let ip = f.map(b"", &format!("n{i}.i2p")).unwrap();
            assert!(n.contains(ip), "{ip}");
        }
        // An address of the network that was never handed out, and one outside it.
        assert_eq!(f.unmap(b"", &v4(Ipv4Addr::new(127, 192, 0, 0))), None);
        assert_eq!(f.unmap(b"", &v4(Ipv4Addr::new(255, 1, 2, 3))), None);
    }

    /// One identity flooding new names fills only its share of the quarantine: another
    /// identity still gets new mappings.
    #[test]
    fn a_flood_fills_only_its_own_quarantine_share() {
        let f = StandIns::default();
        let mut refused = 0;
        for i in 0..(PER_WHO + QUARANTINE_PER_WHO + 100) {
            if f.map(b"flooder", &format!("n{i}.b32.i2p")).is_none() {
                refused += 1;
            }
        }
        assert_eq!(refused, 100, "the flooder is stopped at its share");
        for i in 0..(PER_WHO + 10) {
            assert!(
                f.map(b"other", &format!("o{i}.i2p")).is_some(),
                "other identity, name {i}"
            );
        }
        f.set_quarantine(Duration::ZERO);
        assert!(
            f.map(b"flooder", "again.i2p").is_some(),
            "a shorter quarantine applies now"
        );
    }

    /// A forgotten address is not handed to another name within the quarantine, even when
    /// that leaves no address free; after it, it is.
    #[test]
    fn quarantine_holds_forgotten_addresses() {
        // /29: 6 usable addresses, at most 3 mappings.
        let net: Network = "10.9.8.0/29".parse().unwrap();
        let f = StandIns::new(net, Duration::from_secs(3600));
        let first: Vec<Ipv4Addr> = (0..3)
            .map(|i| f.map(b"", &format!("a{i}.i2p")).unwrap())
            .collect();
        // Each new name evicts the oldest; its address goes into quarantine.
        let more: Vec<Ipv4Addr> = (0..3)
            .map(|i| f.map(b"", &format!("b{i}.i2p")).unwrap())
            .collect();
        for ip in &more {
            assert!(!first.contains(ip), "{ip} reused within the quarantine");
        }
        // All 6 addresses are now in use or in quarantine: no mapping, nothing reused, and
        // nothing forgotten for it.
        assert_eq!(f.map(b"", "c.i2p"), None);
        for (i, ip) in more.iter().enumerate() {
            assert_eq!(f.unmap(b"", &v4(*ip)), Some(format!("b{i}.i2p")));
        }

        let f = StandIns::new(net, Duration::ZERO);
        let a = f.map(b"", "a.i2p").unwrap();
        let mut seen = std::collections::HashSet::new();
        for i in 0..12 {
            seen.insert(f.map(b"", &format!("n{i}.i2p")).unwrap());
        }
        assert!(
            seen.contains(&a),
            "without quarantine the address comes back"
        );
    }
}
