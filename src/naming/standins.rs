//! Stand-in (virtual) addresses: Tor's RESOLVE, and automap's DNS and transparent ports.

use crate::socks::Address;
use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hasher};
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
/// on `isolate = "username"` listeners; empty for the listener's own identity, which DNS,
/// the transparent port and clients without a username share), so no client can see or
/// steer another identity's mappings. Usernames cost nothing on a listener without a
/// login, so the table never trusts their number:
/// - addresses are drawn at random from the network (a keyed hash of a counter, the key a
///   secret of this process): no step or order to learn, never derived from the name;
/// - the own identity has `PER_WHO` mappings of its own that no username can take; the
///   usernames share the rest (`users_cap`), each at most `PER_WHO`. A username at its cap
///   forgets its own least recently used mapping. When the usernames' share is full, a
///   username takes the least recently used mapping of the username holding the most, if
///   that one holds at least two more than it, else forgets its own: a username that holds
///   no more than the others never loses a mapping to them, and no username is locked out
///   while another holds two or more;
/// - an address an identity forgot is not handed to *that identity* for another name within
///   the quarantine (10 minutes by default), so a stand-in its application or resolver may
///   still have cached does not come to mean another name. Another identity may be handed
///   it: to the one that forgot it the address then means nothing (its connections to it
///   are refused, as any IP literal), never another name. So a flood fills only the
///   flooder's quarantine. An identity whose own new names forgot `QUARANTINE_PER_WHO`
///   addresses gets no new names (`map` gives None) until some leave quarantine. The own
///   identity's records are its own (at most `QUARANTINE_PER_WHO`); the usernames' are one
///   pool of `USERS_QUARANTINE`, and past it the oldest leaves quarantine early (a memory
///   bound only many usernames flooding at once reach).
pub struct StandIns {
    inner: std::sync::Mutex<Table>,
    net: Network,
}

/// Mappings kept per listener.
pub const CAP: usize = 4096;
/// Mappings kept per identity; also the own identity's reserve.
pub const PER_WHO: usize = 1024;
/// Addresses held in quarantine at most (memory bound; see `StandIns`).
pub const QUARANTINE_CAP: usize = 65536;
/// Addresses one identity's own new names may put in quarantine (the own identity's
/// reserve too).
pub const QUARANTINE_PER_WHO: usize = QUARANTINE_CAP / 4;
/// Quarantine records of all usernames together; past it the oldest leaves early.
pub const USERS_QUARANTINE: usize = QUARANTINE_CAP - QUARANTINE_PER_WHO;
/// How long a forgotten address stays unused, unless configured otherwise.
pub const DEFAULT_QUARANTINE: Duration = Duration::from_secs(600);
/// Random draws before a scan of the network (only small or nearly full networks get
/// that far).
const DRAWS: usize = 64;
/// Addresses scanned at most after the draws: more than an identity can hold taken or in
/// quarantine (CAP + QUARANTINE_PER_WHO), so a larger network always has a free one in it.
const SCAN: u64 = 1 << 17;

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

/// An address in quarantine for one identity.
struct Record {
    at: Instant,
    ip: u32,
    who: Vec<u8>,
    /// `who`'s keyed hash, the key of `quarantined`.
    hash: u64,
}

struct Table {
    by_ip: HashMap<u32, Entry>,
    by_name: HashMap<(Vec<u8>, String), u32>,
    /// Each identity's mappings, last use → address, oldest first (none empty).
    held: HashMap<Vec<u8>, BTreeMap<u64, u32>>,
    /// Mappings of usernames (every identity but the own, empty one).
    users_held: usize,
    /// (address, keyed hash of the identity it is kept from).
    quarantined: HashSet<(u32, u64)>,
    /// Records per identity (none zero).
    quarantined_of: HashMap<Vec<u8>, usize>,
    /// Records oldest first: the own identity's, and the usernames' pool.
    released_own: VecDeque<Record>,
    released_users: VecDeque<Record>,
    quarantine: Duration,
    tick: u64,
    /// The process's secret (SipHash keys from the OS, plus bytes from getrandom) and the
    /// count of draws made with it.
    keys: RandomState,
    secret: u64,
    draws: u64,
    /// The own identity's mappings at most, the usernames' together, one username's.
    own_cap: usize,
    users_cap: usize,
    user_cap: usize,
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
            if let Some(lru) = self.held.get_mut(&e.who) {
                lru.remove(&e.used);
                lru.insert(tick, ip);
            }
            e.used = tick;
        }
    }

    /// 32 random bits: a keyed hash of a counter, so no answer tells anything of the next.
    fn random(&mut self) -> u32 {
        let mut h = self.keys.build_hasher();
        h.write_u64(self.secret);
        h.write_u64(self.draws);
        self.draws += 1;
        h.finish() as u32
    }

    fn who_hash(&self, who: &[u8]) -> u64 {
        let mut h = self.keys.build_hasher();
        h.write_u64(!self.secret);
        h.write(who);
        h.finish()
    }

    fn held_by(&self, who: &[u8]) -> usize {
        self.held.get(who).map_or(0, BTreeMap::len)
    }

    /// Forget the mapping of `ip`; its address goes into quarantine for its identity.
    fn forget(&mut self, ip: u32, now: Instant) {
        let Some(e) = self.by_ip.remove(&ip) else {
            return;
        };
        if let Some(lru) = self.held.get_mut(&e.who) {
            lru.remove(&e.used);
            if lru.is_empty() {
                self.held.remove(&e.who);
            }
        }
        if !e.who.is_empty() {
            self.users_held -= 1;
        }
        let hash = self.who_hash(&e.who);
        self.quarantined.insert((ip, hash));
        *self.quarantined_of.entry(e.who.clone()).or_default() += 1;
        let record = Record {
            at: now,
            ip,
            hash,
            who: e.who.clone(),
        };
        self.by_name.remove(&(e.who, e.name));
        if record.who.is_empty() {
            self.released_own.push_back(record);
        } else {
            // The usernames' pool is bounded as a whole: its oldest record leaves early.
            if self.released_users.len() >= USERS_QUARANTINE {
                if let Some(old) = self.released_users.pop_front() {
                    self.unquarantine(old);
                }
            }
            self.released_users.push_back(record);
        }
    }

    fn unquarantine(&mut self, r: Record) {
        self.quarantined.remove(&(r.ip, r.hash));
        if let Some(n) = self.quarantined_of.get_mut(&r.who) {
            *n -= 1;
            if *n == 0 {
                self.quarantined_of.remove(&r.who);
            }
        }
    }

    /// Let addresses whose quarantine is over be handed out again.
    fn release_expired(&mut self, now: Instant) {
        for own in [true, false] {
            loop {
                let q = if own {
                    &mut self.released_own
                } else {
                    &mut self.released_users
                };
                match q.front() {
                    Some(r) if now.duration_since(r.at) >= self.quarantine => {}
                    _ => break,
                }
                let r = q.pop_front().expect("front exists");
                self.unquarantine(r);
            }
        }
    }

    /// Whose least recently used mapping makes room for a new name of `who`: Ok(None) when
    /// none needs to, Err(()) when `who` gets no new name (see `StandIns`).
    fn victim(&self, who: &[u8]) -> Result<Option<Vec<u8>>, ()> {
        let held = self.held_by(who);
        let own = who.is_empty();
        let mine = if held >= if own { self.own_cap } else { self.user_cap } {
            true
        } else if own || self.users_held < self.users_cap {
            return Ok(None);
        } else {
            // The usernames' share is full: the largest holder gives, if it holds more.
            let largest = self
                .held
                .iter()
                .filter(|(w, _)| !w.is_empty() && w.as_slice() != who)
                .max_by_key(|(_, lru)| lru.len());
            match largest {
                Some((w, lru)) if lru.len() > held + 1 => return Ok(Some(w.clone())),
                _ if held > 0 => true,
                _ => return Err(()),
            }
        };
        // Forgetting its own: only within its share of the quarantine.
        let caused = self.quarantined_of.get(who).copied().unwrap_or(0);
        if mine && caused >= QUARANTINE_PER_WHO {
            return Err(());
        }
        Ok(Some(who.to_vec()))
    }

    /// A random free address for `who`: not mapped, not in its quarantine, not the
    /// network's first or last. None when there is none.
    fn draw(&mut self, net: Network, who: &[u8]) -> Option<u32> {
        let mask = net.host_mask();
        let hash = self.who_hash(who);
        let free = |t: &Table, host: u32| {
            let ip = net.base | host;
            host != 0
                && host != mask
                && !t.by_ip.contains_key(&ip)
                && !t.quarantined.contains(&(ip, hash))
        };
        for _ in 0..DRAWS {
            let host = self.random() & mask;
            if free(self, host) {
                return Some(net.base | host);
            }
        }
        let start = u64::from(self.random() & mask);
        let size = u64::from(mask) + 1;
        (0..size.min(SCAN))
            .map(|i| ((start + i) % size) as u32)
            .find(|&host| free(self, host))
            .map(|host| net.base | host)
    }
}

impl StandIns {
    /// A table handing out addresses of `net`, each kept from other names of the identity
    /// that forgot it for `quarantine`.
    pub fn new(net: Network, quarantine: Duration) -> StandIns {
        let mut b = [0u8; 8];
        // RandomState's keys are from the OS already; this only adds to them.
        let _ = getrandom::getrandom(&mut b);
        let cap = CAP.min((net.usable() / 2) as usize).max(1);
        let own_cap = PER_WHO.min(cap);
        // Small networks: the usernames still get half of what the table holds.
        let users_cap = (cap - own_cap).max(cap / 2).max(1);
        StandIns {
            inner: std::sync::Mutex::new(Table {
                by_ip: HashMap::new(),
                by_name: HashMap::new(),
                held: HashMap::new(),
                users_held: 0,
                quarantined: HashSet::new(),
                quarantined_of: HashMap::new(),
                released_own: VecDeque::new(),
                released_users: VecDeque::new(),
                quarantine,
                tick: 0,
                keys: RandomState::new(),
                secret: u64::from_le_bytes(b),
                draws: 0,
                own_cap,
                users_cap,
                user_cap: PER_WHO.min(users_cap),
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
    /// long as it is remembered). None when `who` gets no new address (no address free for
    /// it, or its quarantine share is full; see `StandIns`).
    pub fn map(&self, who: &[u8], name: &str) -> Option<Ipv4Addr> {
        let mut t = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let key = (who.to_vec(), name.to_string());
        if let Some(&ip) = t.by_name.get(&key) {
            t.touch(ip);
            return Some(ip.into());
        }
        let now = Instant::now();
        t.release_expired(now);
        let victim = t.victim(who).ok()?;
        // The address first: nothing is forgotten for nothing.
        let ip = t.draw(self.net, who)?;
        if let Some(v) = victim {
            let oldest = t.held.get(&v).and_then(|lru| lru.values().next().copied());
            if let Some(old) = oldest {
                t.forget(old, now);
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
        t.held.entry(who.to_vec()).or_default().insert(used, ip);
        if !who.is_empty() {
            t.users_held += 1;
        }
        t.by_name.insert(key, ip);
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
            f.inner.lock().unwrap().held[&b"attacker".to_vec()].len(),
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
        // Draws are random: enough of them that missing `a` every time (a few free
        // addresses, ~3/4 a draw) is out of the question (< 1e-25).
        for i in 0..200 {
            seen.insert(f.map(b"", &format!("n{i}.i2p")).unwrap());
        }
        assert!(
            seen.contains(&a),
            "without quarantine the address comes back"
        );
    }

    /// Usernames cannot take the own identity's mappings (DNS, the transparent port): 5
    /// usernames × 1,030 new names (more than the whole table) leave its 10 names mapped,
    /// and it still maps up to its reserve without forgetting any of them.
    #[test]
    fn usernames_cannot_take_the_own_identitys_mappings() {
        let f = StandIns::default();
        let own: Vec<Ipv4Addr> = (0..10)
            .map(|i| f.map(b"", &format!("own{i}.i2p")).unwrap())
            .collect();
        for u in 0..5 {
            for i in 0..1030 {
                let who = format!("user{u}");
                assert!(f.map(who.as_bytes(), &format!("n{i}.i2p")).is_some());
            }
        }
        for (i, ip) in own.iter().enumerate() {
            assert_eq!(f.unmap(b"", &v4(*ip)), Some(format!("own{i}.i2p")));
        }
        for i in 10..PER_WHO {
            assert!(f.map(b"", &format!("own{i}.i2p")).is_some(), "own name {i}");
        }
        assert_eq!(f.unmap(b"", &v4(own[0])), Some("own0.i2p".into()));
    }

    /// A username holding a few mappings keeps them while other usernames flood: they
    /// take from each other (the largest holder), never from one that holds less.
    #[test]
    fn a_username_keeps_its_mappings_while_others_flood() {
        let f = StandIns::default();
        let mine: Vec<Ipv4Addr> = (0..5)
            .map(|i| f.map(b"victim", &format!("bank{i}.i2p")).unwrap())
            .collect();
        for u in 0..5 {
            for i in 0..1030 {
                let who = format!("attacker{u}");
                assert!(f.map(who.as_bytes(), &format!("n{i}.i2p")).is_some());
            }
        }
        for (i, ip) in mine.iter().enumerate() {
            assert_eq!(f.unmap(b"victim", &v4(*ip)), Some(format!("bank{i}.i2p")));
        }
        let t = f.inner.lock().unwrap();
        assert!(t.users_held <= t.users_cap, "{} mappings", t.users_held);
        assert!(t.by_ip.len() <= CAP);
    }

    /// Many usernames flooding new names (5 × 17,500, past every quarantine share and the
    /// usernames' pool) lock nobody else out: the own identity, a new username and one
    /// that mapped before all get new names, and no identity is handed an address it
    /// forgot within the quarantine.
    #[test]
    fn a_flood_of_usernames_locks_no_one_out() {
        let f = StandIns::default();
        let before = f.map(b"victim", "before.i2p").unwrap();
        for u in 0..5 {
            let who = format!("flood{u}");
            let mut seen = HashSet::new();
            for i in 0..17_500 {
                if let Some(ip) = f.map(who.as_bytes(), &format!("n{i}.i2p")) {
                    assert!(
                        seen.insert(ip),
                        "{ip} came back to {who} within the quarantine"
                    );
                }
            }
        }
        {
            let t = f.inner.lock().unwrap();
            assert!(t.quarantined.len() <= QUARANTINE_CAP);
            assert!(t.released_users.len() <= USERS_QUARANTINE);
        }
        assert!(f.map(b"", "dns.i2p").is_some(), "own identity locked out");
        assert!(
            f.map(b"newcomer", "a.i2p").is_some(),
            "new username locked out"
        );
        assert!(f.map(b"victim", "after.i2p").is_some(), "victim locked out");
        assert_eq!(f.unmap(b"victim", &v4(before)), Some("before.i2p".into()));
    }

    /// Addresses are drawn at random: consecutive fresh addresses show no common step
    /// (the old walk, start + n·step, gave every one away from two answers).
    #[test]
    fn addresses_show_no_step() {
        let f = StandIns::new("127.192.0.0/10".parse().unwrap(), DEFAULT_QUARANTINE);
        let ips: Vec<u32> = (0..200)
            .map(|i| u32::from(f.map(b"", &format!("n{i}.i2p")).unwrap()))
            .collect();
        let steps = ips
            .windows(3)
            .filter(|w| w[2].wrapping_sub(w[1]) == w[1].wrapping_sub(w[0]))
            .count();
        assert!(steps <= 1, "{steps} of 198 triples share their step");
        // Not sorted either (a counter with a random start would be).
        let rising = ips.windows(2).filter(|w| w[1] > w[0]).count();
        assert!((40..160).contains(&rising), "{rising} of 199 rising");
    }

    /// An address one identity forgot may go to another (it then means nothing to the
    /// first: refused, never the other's name), but never back to the first within the
    /// quarantine.
    #[test]
    fn a_forgotten_address_never_names_another_name_for_its_identity() {
        // /29: 6 usable addresses, 3 mappings for the own identity, at least 1 for users.
        let net: Network = "10.9.8.0/29".parse().unwrap();
        let f = StandIns::new(net, Duration::from_secs(3600));
        let first: Vec<Ipv4Addr> = (0..6)
            .filter_map(|i| f.map(b"", &format!("a{i}.i2p")))
            .collect();
        assert_eq!(first.len(), 6, "3 mapped, 3 forgotten");
        assert_eq!(
            f.map(b"", "more.i2p"),
            None,
            "own identity: none free for it"
        );
        // Another identity is not locked out by the own identity's quarantine.
        let theirs = f.map(b"user", "x.i2p").expect("a username still maps");
        assert!(
            first[..3].contains(&theirs),
            "{theirs}: only the forgotten ones are free"
        );
        assert_eq!(
            f.unmap(b"", &v4(theirs)),
            None,
            "not the user's name for the own identity"
        );
    }
}
