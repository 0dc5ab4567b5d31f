//! GarliCat (OnionCat's I2P mode) addresses: `fd60:db4d:ddb5::/48` followed by the first
//! 80 bits (10 bytes) of a destination's hash, i.e. the first 16 base32 characters of its
//! b32 address. The GarliCat name is those 16 characters + `.oc.b32.i2p`.
//!
//! 80 bits do not name a destination: an address is taken back to a destination only among
//! those the identity already knows ([`Known`]), and refused when none or two of them
//! share the 80 bits (docs/automap.md, "GarliCat").

use std::collections::{HashMap, VecDeque};
use std::net::Ipv6Addr;
use std::sync::Mutex;

/// The /48 GarliCat addresses live in.
pub const PREFIX: [u8; 6] = [0xfd, 0x60, 0xdb, 0x4d, 0xdd, 0xb5];

/// The 80 bits of a destination hash an address carries.
pub type Bits = [u8; 10];

/// Whether `ip` is a GarliCat address.
pub fn is_garlicat(ip: &Ipv6Addr) -> bool {
    ip.octets()[..6] == PREFIX
}

/// The address of a destination hash (at least 10 bytes; only those are used).
pub fn address_of_hash(hash: &[u8]) -> Option<Ipv6Addr> {
    let bits: &Bits = hash.get(..10)?.try_into().ok()?;
    let mut o = [0u8; 16];
    o[..6].copy_from_slice(&PREFIX);
    o[6..].copy_from_slice(bits);
    Some(Ipv6Addr::from(o))
}

/// The hash bits of a `<52 chars>.b32.i2p` address (lowercase, as `classify` gives it).
pub fn bits_of_b32(b32: &str) -> Option<Bits> {
    let hash = b32.strip_suffix(".b32.i2p")?;
    if hash.len() != 52 {
        return None;
    }
    let head = hash.get(..16)?.to_ascii_uppercase();
    let v = data_encoding::BASE32_NOPAD.decode(head.as_bytes()).ok()?;
    v.try_into().ok()
}

/// The address of a `<52 chars>.b32.i2p` address.
pub fn address_of_b32(b32: &str) -> Option<Ipv6Addr> {
    address_of_hash(&bits_of_b32(b32)?)
}

/// The 80 bits of a GarliCat address (None: not one).
pub fn bits_of_address(ip: &Ipv6Addr) -> Option<Bits> {
    let o = ip.octets();
    if o[..6] != PREFIX {
        return None;
    }
    o[6..].try_into().ok()
}

/// The GarliCat name of an address: 16 base32 characters + `.oc.b32.i2p`.
pub fn name_of_bits(bits: &Bits) -> String {
    let mut s = data_encoding::BASE32_NOPAD.encode(bits);
    s.make_ascii_lowercase();
    s + ".oc.b32.i2p"
}

/// The 80 bits of a GarliCat name (`<16 chars>.oc.b32.i2p`, any case).
pub fn bits_of_name(name: &str) -> Option<Bits> {
    let lower = name.to_ascii_lowercase();
    let head = lower.strip_suffix(".oc.b32.i2p")?;
    if head.len() != 16 {
        return None;
    }
    let v = data_encoding::BASE32_NOPAD
        .decode(head.to_ascii_uppercase().as_bytes())
        .ok()?;
    v.try_into().ok()
}

/// What a GarliCat address was taken back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The one known destination with these 80 bits (its b32 address).
    One(String),
    /// No known destination has them.
    None,
    /// Two or more do (an 80-bit collision, or a forged near twin).
    Ambiguous,
}

/// Destinations an identity has met (names it resolved, b32 addresses it reached or was
/// given the GarliCat address of), per identity key (empty: the listener's own identity;
/// else a username), most recent kept. Bounded: the oldest are forgotten first.
#[derive(Default)]
pub struct Known {
    inner: Mutex<KnownInner>,
}

#[derive(Default)]
struct KnownInner {
    lists: HashMap<Vec<u8>, VecDeque<String>>,
    /// Entries over all lists: usernames are free to make, so the lists are bounded
    /// together, not only each.
    total: usize,
}

/// Destinations remembered per identity, identities (usernames) per listener, and
/// destinations over all of them (about 1 MB of b32 strings).
pub const KNOWN_PER_IDENTITY: usize = 4096;
pub const KNOWN_IDENTITIES: usize = 1024;
pub const KNOWN_TOTAL: usize = 16_384;

impl Known {
    /// Remember that identity `who` knows the destination `b32` (a `.b32.i2p` address).
    pub fn add(&self, who: &[u8], b32: &str) {
        if bits_of_b32(b32).is_none() {
            return;
        }
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let m = &mut *guard;
        if !m.lists.contains_key(who) && m.lists.len() >= KNOWN_IDENTITIES {
            // Forget some identity wholesale rather than grow: usernames are free to make.
            if let Some(k) = m.lists.keys().next().cloned() {
                m.total -= m.lists.remove(&k).map_or(0, |l| l.len());
            }
        }
        if let Some(i) = m
            .lists
            .get(who)
            .and_then(|l| l.iter().position(|b| b == b32))
        {
            m.lists.get_mut(who).map(|l| l.remove(i));
            m.total -= 1;
        }
        let own = m.lists.get(who).map_or(0, VecDeque::len);
        if own >= KNOWN_PER_IDENTITY || m.total >= KNOWN_TOTAL {
            // The oldest entry of the biggest list (this identity's when it is the biggest).
            let biggest = m
                .lists
                .iter()
                .max_by_key(|(_, l)| l.len())
                .map(|(k, _)| k.clone());
            let from = if own >= KNOWN_PER_IDENTITY {
                Some(who.to_vec())
            } else {
                biggest
            };
            if let Some(list) = from.and_then(|k| m.lists.get_mut(&k)) {
                if list.pop_front().is_some() {
                    m.total -= 1;
                }
            }
        }
        m.lists
            .entry(who.to_vec())
            .or_default()
            .push_back(b32.to_string());
        m.total += 1;
    }

    /// The destination of `bits` among those `who` knows and `extra` (the address book's).
    pub fn find<'a>(
        &self,
        who: &[u8],
        bits: &Bits,
        extra: impl IntoIterator<Item = &'a str>,
    ) -> Found {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut hits: Vec<String> = Vec::new();
        let mut consider = |b32: &str| {
            if bits_of_b32(b32).as_ref() == Some(bits) && !hits.iter().any(|h| h == b32) {
                hits.push(b32.to_string());
            }
        };
        for b32 in m.lists.get(who).into_iter().flatten() {
            consider(b32);
        }
        for b32 in extra {
            consider(b32);
        }
        match hits.len() {
            0 => Found::None,
            1 => Found::One(hits.remove(0)),
            _ => Found::Ambiguous,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // SHA-256("eepsocks garlicat vector") in base32; its first 10 bytes are
    // df dd e8 56 0a ca cd e4 9e 9f (computed apart, with Python's hashlib and base64).
    const B32: &str = "37o6qvqkzlg6jhu7nzxbctecjywbwchloxr2gn5b4pay4gfoprqq.b32.i2p";

    /// Usernames cost nothing: the lists are bounded together too.
    #[test]
    fn known_destinations_are_bounded_over_all_identities() {
        let k = Known::default();
        let b32 = |i: usize| {
            use sha2::Digest;
            let h = sha2::Sha256::digest(i.to_le_bytes());
            data_encoding::BASE32_NOPAD.encode(&h).to_lowercase() + ".b32.i2p"
        };
        for u in 0..(KNOWN_IDENTITIES - 1) {
            for i in 0..40 {
                k.add(format!("u{u}").as_bytes(), &b32(u * 100 + i));
            }
        }
        let m = k.inner.lock().unwrap();
        let sum: usize = m.lists.values().map(VecDeque::len).sum();
        assert_eq!(sum, m.total);
        assert!(m.total <= KNOWN_TOTAL, "{}", m.total);
    }

    #[test]
    fn hash_to_address_raw() {
        let mut hash = [0u8; 32];
        hash[..10].copy_from_slice(&[0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x10, 0x32]);
        hash[10] = 0xff; // past the 80 bits: not in the address
        let ip = address_of_hash(&hash).unwrap();
        assert_eq!(
            ip.octets(),
            [
                0xfd, 0x60, 0xdb, 0x4d, 0xdd, 0xb5, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                0x10, 0x32
            ]
        );
        assert_eq!(ip.to_string(), "fd60:db4d:ddb5:123:4567:89ab:cdef:1032");
        assert!(is_garlicat(&ip));
        assert_eq!(bits_of_address(&ip).unwrap()[..], hash[..10]);
        assert!(address_of_hash(&hash[..9]).is_none());
    }

    #[test]
    fn b32_to_address_raw() {
        let bits = bits_of_b32(B32).unwrap();
        assert_eq!(
            bits,
            [0xdf, 0xdd, 0xe8, 0x56, 0x0a, 0xca, 0xcd, 0xe4, 0x9e, 0x9f]
        );
        assert_eq!(
            address_of_b32(B32).unwrap().to_string(),
            "fd60:db4d:ddb5:dfdd:e856:aca:cde4:9e9f"
        );
        assert_eq!(name_of_bits(&bits), "37o6qvqkzlg6jhu7.oc.b32.i2p");
        assert_eq!(bits_of_name("37O6QVQKZLG6JHU7.oc.b32.i2p"), Some(bits));
        assert_eq!(bits_of_name("37o6qvqkzlg6jhu.oc.b32.i2p"), None);
        assert_eq!(bits_of_b32("37o6qvqkzlg6jhu7.b32.i2p"), None);
        assert_eq!(bits_of_b32("demo.i2p"), None);
        let other: Ipv6Addr = "fd60:db4d:ddb6::1".parse().unwrap();
        assert!(!is_garlicat(&other));
        assert_eq!(bits_of_address(&other), None);
    }

    #[test]
    fn found_among_known_only() {
        let k = Known::default();
        let bits = bits_of_b32(B32).unwrap();
        assert_eq!(k.find(b"", &bits, []), Found::None);
        k.add(b"alice", B32);
        // Another identity does not see what alice met.
        assert_eq!(k.find(b"", &bits, []), Found::None);
        assert_eq!(k.find(b"alice", &bits, []), Found::One(B32.to_string()));
        // The same 80 bits, another destination: ambiguous.
        let twin = format!("{}aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.b32.i2p", &B32[..16]);
        assert_eq!(k.find(b"alice", &bits, [twin.as_str()]), Found::Ambiguous);
        // The same one twice is still one.
        assert_eq!(k.find(b"alice", &bits, [B32]), Found::One(B32.to_string()));
    }
}
