//! Which SOCKS targets are I2P targets, and how each kind is resolved.
//!
//! Policy: only names ending in `.i2p` go anywhere. IP literals are refused (an IP can never
//! be an I2P destination, and an app that sends one has already resolved the name outside
//! the proxy: a DNS leak). Other names are refused: eepsocks has no clearnet and no outproxy.

use crate::socks::{Address, Reply};
use sha2::Digest;

/// A target that may be opened through the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `<52 base32 chars>.b32.i2p`, lowercased: a destination hash, resolved by the router.
    B32(String),
    /// An encrypted-LeaseSet address (56+ base32 chars before `.b32.i2p`): passed to the router.
    B33(String),
    /// Any other `.i2p` host name, lowercased: needs an address-book lookup.
    Name(String),
}

impl Target {
    pub fn as_str(&self) -> &str {
        match self {
            Target::B32(s) | Target::B33(s) | Target::Name(s) => s,
        }
    }
}

/// Why a target was refused before anything reached the router.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("IP address literal: an IP can never be an I2P destination; the application resolved the name itself (use remote DNS: socks5h:// or --socks5-hostname)")]
    IpLiteral,
    #[error("not an I2P name: eepsocks reaches only .i2p addresses (no clearnet, no outproxy, by design)")]
    NotI2p,
    #[error("malformed I2P name: {0}")]
    Malformed(&'static str),
}

impl Refusal {
    pub fn reply(&self) -> Reply {
        match self {
            Refusal::IpLiteral | Refusal::NotI2p => Reply::NotAllowed,
            // The name can never resolve: "host unreachable", as for unknown names.
            Refusal::Malformed(_) => Reply::HostUnreachable,
        }
    }
}

const MAX_NAME: usize = 255;
const MAX_LABEL: usize = 63;

pub fn classify(addr: &Address) -> Result<Target, Refusal> {
    let name = match addr {
        Address::Ipv4(_) | Address::Ipv6(_) => return Err(Refusal::IpLiteral),
        Address::Name(n) => n,
    };
    // One trailing dot is the DNS root; accept "x.i2p." like "x.i2p".
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if !name.ends_with(".i2p") {
        // Names that parse as IPs are literals in disguise (SOCKS4a/5 clients do this).
        if name.parse::<std::net::IpAddr>().is_ok()
            || name
                .strip_prefix('[')
                .and_then(|n| n.strip_suffix(']'))
                .is_some_and(|n| n.parse::<std::net::Ipv6Addr>().is_ok())
        {
            return Err(Refusal::IpLiteral);
        }
        return Err(Refusal::NotI2p);
    }
    if name.len() > MAX_NAME {
        return Err(Refusal::Malformed("longer than 255 characters"));
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 || labels[0].is_empty() {
        return Err(Refusal::Malformed("no name before .i2p"));
    }
    for l in &labels {
        if l.is_empty() {
            return Err(Refusal::Malformed("empty label"));
        }
        if l.len() > MAX_LABEL {
            return Err(Refusal::Malformed("label longer than 63 characters"));
        }
        if !l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(Refusal::Malformed(
                "only letters, digits, '-' and '.' are allowed",
            ));
        }
        if l.starts_with('-') || l.ends_with('-') {
            return Err(Refusal::Malformed("label starts or ends with '-'"));
        }
    }
    if let Some(hash) = name.strip_suffix(".b32.i2p") {
        let base32 = hash
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b));
        return match hash.len() {
            52 if base32 => Ok(Target::B32(name)),
            n if n >= 56 && base32 => Ok(Target::B33(name)),
            _ if hash.contains('.') => Ok(Target::Name(name)),
            _ => Err(Refusal::Malformed(
                "a .b32.i2p address has 52 base32 characters (56 or more for b33)",
            )),
        };
    }
    Ok(Target::Name(name))
}

/// Tor's RESOLVE (0xF0) for applications that resolve before they connect (torsocks,
/// Monero's `v4a_tor`): a resolvable I2P name is answered with a stand-in IPv4 address
/// 255.x.y.z, as Java I2P does, and a later CONNECT to that address (as an IPv4 literal
/// or as the dotted-quad string) is mapped back to the name. Unlike Java I2P, the name is
/// checked first (unknown names get 0x04 at RESOLVE time) and collisions are probed away.
#[derive(Default)]
pub struct FakeIps {
    inner: std::sync::Mutex<FakeIpTable>,
}

#[derive(Default)]
struct FakeIpTable {
    by_ip: std::collections::HashMap<u32, String>,
    by_name: std::collections::HashMap<String, u32>,
    order: std::collections::VecDeque<u32>,
}

/// Mappings kept; the oldest is forgotten first.
const FAKE_IPS: usize = 4096;

impl FakeIps {
    /// The stand-in address for a name (the same one for as long as it is remembered).
    pub fn map(&self, name: &str) -> std::net::Ipv4Addr {
        let mut t = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&ip) = t.by_name.get(name) {
            return ip.into();
        }
        let h = sha2::Sha256::digest(name.as_bytes());
        let mut low = u32::from_be_bytes([0, h[0], h[1], h[2]]);
        // 255.255.255.255 is the broadcast address: never hand it out.
        while t.by_ip.contains_key(&(0xff00_0000 | low)) || low == 0x00ff_ffff {
            low = (low + 1) & 0x00ff_ffff;
        }
        let ip = 0xff00_0000 | low;
        if t.order.len() >= FAKE_IPS {
            if let Some(old) = t.order.pop_front() {
                if let Some(n) = t.by_ip.remove(&old) {
                    t.by_name.remove(&n);
                }
            }
        }
        t.by_ip.insert(ip, name.to_string());
        t.by_name.insert(name.to_string(), ip);
        t.order.push_back(ip);
        ip.into()
    }

    /// The name behind a stand-in address given as a literal or as its dotted-quad string.
    pub fn unmap(&self, addr: &Address) -> Option<String> {
        let ip: std::net::Ipv4Addr = match addr {
            Address::Ipv4(ip) => *ip,
            // Only dotted quads can be stand-ins; skip the parse for ordinary names.
            Address::Name(n) if n.starts_with("255.") => n.parse().ok()?,
            _ => return None,
        };
        // Stand-ins are all in 255/8: no lock for any other address.
        if ip.octets()[0] != 255 {
            return None;
        }
        let t = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        t.by_ip.get(&u32::from(ip)).cloned()
    }
}

/// The user's address book: hosts.txt format (`name=base64destination`, optionally followed
/// by `#!key=value#...` registration metadata, which is ignored; `#` and `;` start comments).
/// Looked up before the router's own naming.
#[derive(Debug, Default, Clone)]
pub struct AddressBook {
    entries: std::collections::BTreeMap<String, Entry>,
}

/// What a name stands for: a full destination (hosts.txt), or only its hash (i2pd's
/// `addresses.csv` keeps `name,b32`), which the router resolves with a LeaseSet lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dest(crate::i2p::Destination),
    B32(String),
}

impl Entry {
    pub fn b32(&self) -> String {
        match self {
            Entry::Dest(d) => d.b32(),
            Entry::B32(b) => b.clone(),
        }
    }

    /// The form SAM's `STREAM CONNECT DESTINATION=` takes.
    pub fn sam_dest(&self) -> String {
        match self {
            Entry::Dest(d) => d.to_base64(),
            Entry::B32(b) => b.clone(),
        }
    }
}

impl AddressBook {
    /// Parse hosts.txt text. Bad lines are skipped; each gives a warning naming its line.
    pub fn parse(text: &str) -> (AddressBook, Vec<String>) {
        let mut book = AddressBook::default();
        let mut warnings = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() || line.starts_with(';') {
                continue;
            }
            let Some((name, dest)) = line.split_once('=') else {
                warnings.push(format!(
                    "line {}: no '=' between name and destination",
                    i + 1
                ));
                continue;
            };
            if let Err(e) = book.insert(name.trim(), dest.trim()) {
                warnings.push(format!("line {}: {e}", i + 1));
            }
        }
        (book, warnings)
    }

    /// Load a book file; a missing file is an empty book.
    pub fn load(path: &std::path::Path) -> anyhow::Result<(AddressBook, Vec<String>)> {
        match std::fs::read_to_string(path) {
            Ok(t) => Ok(AddressBook::parse(&t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
            Err(e) => Err(anyhow::anyhow!(
                "cannot read address book {}: {e}",
                path.display()
            )),
        }
    }

    /// Parse i2pd's `addresses.csv` (`name,b32` per line).
    pub fn parse_csv(text: &str) -> (AddressBook, Vec<String>) {
        let mut book = AddressBook::default();
        let mut warnings = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, hash)) = line.split_once(',') else {
                warnings.push(format!("line {}: no ',' between name and address", i + 1));
                continue;
            };
            let hash = hash.trim();
            let b32 = if hash.ends_with(".b32.i2p") {
                hash.to_string()
            } else {
                format!("{hash}.b32.i2p")
            };
            if let Err(e) = book.insert(name.trim(), &b32) {
                warnings.push(format!("line {}: {e}", i + 1));
            }
        }
        (book, warnings)
    }

    /// Add or replace a name. The name must be a plain `.i2p` host name (not a b32); the
    /// value a base64 destination or a b32 address.
    pub fn insert(&mut self, name: &str, dest_b64: &str) -> Result<(), String> {
        let name = match classify(&Address::Name(name.to_string())) {
            Ok(Target::Name(n)) => n,
            Ok(_) => {
                return Err(format!(
                    "{name:?}: b32 addresses need no address-book entry"
                ))
            }
            Err(e) => return Err(format!("{name:?}: {e}")),
        };
        let entry = if dest_b64.to_ascii_lowercase().ends_with(".b32.i2p") {
            match classify(&Address::Name(dest_b64.to_string())) {
                Ok(Target::B32(b)) => Entry::B32(b),
                _ => return Err(format!("{name}: {dest_b64:?} is not a valid b32 address")),
            }
        } else {
            Entry::Dest(
                crate::i2p::Destination::from_base64(dest_b64)
                    .map_err(|e| format!("{name}: destination is {e}"))?,
            )
        };
        self.entries.insert(name, entry);
        Ok(())
    }

    /// Add an entry taken from another book (already validated there) if the name is new.
    /// Returns whether it was added: names already present are never replaced.
    pub fn add_new(&mut self, name: &str, entry: &Entry) -> bool {
        if self.entries.contains_key(name) {
            return false;
        }
        self.entries.insert(name.to_string(), entry.clone());
        true
    }

    pub fn remove(&mut self, name: &str) -> bool {
        self.entries.remove(&name.to_ascii_lowercase()).is_some()
    }

    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.get(name)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.entries.iter()
    }

    pub fn to_hosts_txt(&self) -> String {
        let mut s = String::from("# eepsocks address book (hosts.txt format)\n");
        for (n, d) in &self.entries {
            // hash-only entries are written as a b32: eepsocks' own extension, read back above
            s += &format!("{n}={}\n", d.sam_dest());
        }
        s
    }

    /// Write the book atomically (temp file, fsync, rename), mode 0600.
    pub fn save(&self, path: &std::path::Path) -> anyhow::Result<()> {
        crate::keys::write_replace(path, self.to_hosts_txt().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn n(s: &str) -> Result<Target, Refusal> {
        classify(&Address::Name(s.to_string()))
    }

    const H: &str = "ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq";

    #[test]
    fn i2p_targets() {
        assert_eq!(
            n(&format!("{H}.b32.i2p")),
            Ok(Target::B32(format!("{H}.b32.i2p")))
        );
        assert_eq!(
            n(&format!("{}.B32.I2P", H.to_uppercase())),
            Ok(Target::B32(format!("{H}.b32.i2p")))
        );
        let b33 = "a".repeat(56) + ".b32.i2p";
        assert_eq!(n(&b33), Ok(Target::B33(b33.clone())));
        assert_eq!(n("Example.I2P"), Ok(Target::Name("example.i2p".into())));
        assert_eq!(
            n("forum.example.i2p."),
            Ok(Target::Name("forum.example.i2p".into()))
        );
        assert_eq!(n("x-y.i2p"), Ok(Target::Name("x-y.i2p".into())));
    }

    #[test]
    fn refusals() {
        assert_eq!(
            classify(&Address::Ipv4(Ipv4Addr::new(10, 0, 0, 1))),
            Err(Refusal::IpLiteral)
        );
        assert_eq!(
            classify(&Address::Ipv6(Ipv6Addr::LOCALHOST)),
            Err(Refusal::IpLiteral)
        );
        assert_eq!(n("127.0.0.1"), Err(Refusal::IpLiteral));
        assert_eq!(n("[::1]"), Err(Refusal::IpLiteral));
        assert_eq!(n("example.com"), Err(Refusal::NotI2p));
        assert_eq!(n("localhost"), Err(Refusal::NotI2p));
        assert_eq!(n(""), Err(Refusal::NotI2p));
        assert_eq!(n("i2p"), Err(Refusal::NotI2p));
        assert_eq!(n("x.i2p.alt"), Err(Refusal::NotI2p));
        assert!(matches!(n(".i2p"), Err(Refusal::Malformed(_))));
        assert!(matches!(n("a..i2p"), Err(Refusal::Malformed(_))));
        assert!(matches!(n("a b.i2p"), Err(Refusal::Malformed(_))));
        assert!(matches!(n("-a.i2p"), Err(Refusal::Malformed(_))));
        assert!(matches!(n("\u{fffd}.i2p"), Err(Refusal::Malformed(_))));
        assert!(matches!(
            n(&("a".repeat(64) + ".i2p")),
            Err(Refusal::Malformed(_))
        ));
        assert!(matches!(n("abc.b32.i2p"), Err(Refusal::Malformed(_))));
        assert!(matches!(
            n(&("1".repeat(52) + ".b32.i2p")),
            Err(Refusal::Malformed(_))
        ));
        let long = vec!["a".repeat(60); 5].join(".") + ".i2p";
        assert!(matches!(n(&long), Err(Refusal::Malformed(_))));
        assert_eq!(Refusal::IpLiteral.reply(), Reply::NotAllowed);
        assert_eq!(Refusal::NotI2p.reply(), Reply::NotAllowed);
        assert_eq!(Refusal::Malformed("x").reply(), Reply::HostUnreachable);
    }

    fn dest_b64(fill: u8) -> String {
        let mut v = vec![fill; 384];
        v.extend_from_slice(&[5, 0, 4, 0, 7, 0, 4]);
        crate::i2p::base64_encode(&v)
    }

    #[test]
    fn hosts_txt_parsing() {
        let d = dest_b64(1);
        let text = format!(
            "# comment\n\nforum.i2p={d}\nstats.i2p={d}#!sig=abc#date=1\n; old comment\n\
             broken line\nbad name.i2p={d}\nx.i2p=notbase64!!\n{}.b32.i2p={d}\nexample.com={d}\n\
             #!action=remove#name=old.i2p\nUPPER.I2P={d}\n",
            H
        );
        let (book, warnings) = AddressBook::parse(&text);
        assert_eq!(book.len(), 3, "{warnings:?}");
        assert!(book.get("forum.i2p").is_some());
        assert!(book.get("stats.i2p").is_some());
        assert!(book.get("upper.i2p").is_some());
        assert_eq!(warnings.len(), 5, "{warnings:?}");
        assert!(warnings[0].starts_with("line 6:"), "{warnings:?}");
        assert!(warnings[1].starts_with("line 7:") && warnings[1].contains("only letters"));
        assert!(warnings[2].starts_with("line 8:") && warnings[2].contains("base64"));
        assert!(warnings[3].contains("b32"));
        assert!(warnings[4].contains("not an I2P name"));
        let (again, w2) = AddressBook::parse(&book.to_hosts_txt());
        assert!(w2.is_empty());
        assert_eq!(again.len(), 3);
    }

    #[test]
    fn addresses_csv() {
        let (book, warnings) = AddressBook::parse_csv(&format!(
            "forum.i2p,{H}\nbad line\nx.i2p,notb32\nstats.i2p,{H}.b32.i2p\n"
        ));
        assert_eq!(book.len(), 2, "{warnings:?}");
        assert_eq!(
            book.get("forum.i2p"),
            Some(&Entry::B32(format!("{H}.b32.i2p")))
        );
        assert_eq!(warnings.len(), 2);
        // hash-only entries survive a save and load
        let (again, w) = AddressBook::parse(&book.to_hosts_txt());
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            again.get("stats.i2p").unwrap().b32(),
            format!("{H}.b32.i2p")
        );
    }

    #[test]
    fn book_save_is_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("addressbook.txt");
        let mut b = AddressBook::default();
        b.insert("a.i2p", &dest_b64(2)).unwrap();
        b.save(&p).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (l, _) = AddressBook::load(&p).unwrap();
        assert_eq!(l.len(), 1);
        // merging never replaces a name that is already there
        let (other, _) =
            AddressBook::parse(&format!("a.i2p={}\nb.i2p={}\n", dest_b64(3), dest_b64(3)));
        let before = b.get("a.i2p").cloned();
        let added: usize = other.iter().map(|(n, e)| b.add_new(n, e) as usize).sum();
        assert_eq!(added, 1);
        assert_eq!(b.get("a.i2p").cloned(), before);
        assert!(b.remove("A.I2P"));
    }

    #[test]
    fn fake_ips_round_trip() {
        let f = FakeIps::default();
        let a = f.map("forum.i2p");
        assert_eq!(a.octets()[0], 255);
        assert_eq!(f.map("forum.i2p"), a);
        assert_eq!(f.unmap(&Address::Ipv4(a)), Some("forum.i2p".into()));
        assert_eq!(
            f.unmap(&Address::Name(a.to_string())),
            Some("forum.i2p".into())
        );
        assert_eq!(
            f.unmap(&Address::Ipv4(std::net::Ipv4Addr::new(255, 0, 0, 1))),
            None
        );
        let mut seen = std::collections::HashSet::new();
        for i in 0..5000 {
            assert!(seen.insert(f.map(&format!("n{i}.i2p"))) || i >= FAKE_IPS);
        }
        // the oldest mapping was forgotten
        assert_eq!(f.unmap(&Address::Ipv4(a)), None);
    }
}
