//! Stand-in addresses for Tor's RESOLVE.

use crate::socks::Address;
use sha2::Digest;

/// Tor's RESOLVE (0xF0) for applications that resolve before they connect (torsocks,
/// Monero's `v4a_tor`): a resolvable I2P name is answered with a stand-in IPv4 address
/// 255.x.y.z, as Java I2P does, and a later CONNECT to that address (as an IPv4 literal
/// or as the dotted-quad string) is mapped back to the name. Unlike Java I2P, the name is
/// checked first (unknown names get 0x04 at RESOLVE time) and collisions are probed away.
#[derive(Default)]
pub struct StandIns {
    inner: std::sync::Mutex<Table>,
}

#[derive(Default)]
struct Table {
    by_ip: std::collections::HashMap<u32, String>,
    by_name: std::collections::HashMap<String, u32>,
    order: std::collections::VecDeque<u32>,
}

/// Mappings kept; the oldest is forgotten first.
const STAND_INS: usize = 4096;

impl StandIns {
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
        if t.order.len() >= STAND_INS {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_ips_round_trip() {
        let f = StandIns::default();
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
            assert!(seen.insert(f.map(&format!("n{i}.i2p"))) || i >= STAND_INS);
        }
        // the oldest mapping was forgotten
        assert_eq!(f.unmap(&Address::Ipv4(a)), None);
    }
}
