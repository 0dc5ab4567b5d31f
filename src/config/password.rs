//! Stored logins (`[proxy.auth]`) and their check. A password is stored as itself, as
//! `sha256:<hex>` (unsalted: kept for old configs), or as `pbkdf2-sha256:<rounds>:<salt
//! hex>:<hash hex>` (what `eepsocks hash-password` prints): a slow, salted KDF, so a leaked
//! config file does not give the passwords away cheaply.

use pbkdf2::pbkdf2_hmac;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Rounds `hash-password` uses (OWASP's figure for PBKDF2-HMAC-SHA256).
pub const ROUNDS: u32 = 600_000;
/// Fewer is refused: the point of the KDF is its cost.
const MIN_ROUNDS: u32 = 10_000;

#[derive(Clone)]
pub enum Stored {
    /// SHA-256 of the password (given in clear, or as `sha256:`).
    Sha256([u8; 32]),
    Pbkdf2 {
        rounds: u32,
        salt: Vec<u8>,
        hash: [u8; 32],
    },
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    data_encoding::HEXLOWER_PERMISSIVE.decode(s.as_bytes()).ok()
}

fn hex(b: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(b)
}

impl Stored {
    pub fn parse(v: &str) -> Result<Stored, String> {
        if let Some(h) = v.strip_prefix("sha256:") {
            let d = unhex(h).filter(|d| d.len() == 32);
            return d
                .map(|d| Stored::Sha256(d.try_into().expect("32 bytes")))
                .ok_or_else(|| "sha256: needs 64 hex digits".to_string());
        }
        if let Some(rest) = v.strip_prefix("pbkdf2-sha256:") {
            let bad = || "pbkdf2-sha256:<rounds>:<salt hex>:<64 hex digits>".to_string();
            let mut it = rest.split(':');
            let rounds: u32 = it.next().and_then(|r| r.parse().ok()).ok_or_else(bad)?;
            let salt = it
                .next()
                .and_then(unhex)
                .filter(|s| s.len() >= 8)
                .ok_or_else(bad)?;
            let hash = it
                .next()
                .and_then(unhex)
                .filter(|h| h.len() == 32)
                .ok_or_else(bad)?;
            if it.next().is_some() {
                return Err(bad());
            }
            if rounds < MIN_ROUNDS {
                return Err(format!("pbkdf2-sha256: at least {MIN_ROUNDS} rounds"));
            }
            return Ok(Stored::Pbkdf2 {
                rounds,
                salt,
                hash: hash.try_into().expect("32 bytes"),
            });
        }
        Ok(Stored::Sha256(Sha256::digest(v.as_bytes()).into()))
    }

    /// The config value for `password` with a new random salt.
    pub fn hash_new(password: &[u8], rounds: u32) -> std::io::Result<String> {
        let mut salt = [0u8; 16];
        getrandom::getrandom(&mut salt).map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut out = [0u8; 32];
        pbkdf2_hmac::<Sha256>(password, &salt, rounds, &mut out);
        Ok(format!(
            "pbkdf2-sha256:{rounds}:{}:{}",
            hex(&salt),
            hex(&out)
        ))
    }
}

fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    // Constant time: the time taken says nothing about how much matched.
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Run the KDF where it does not stall other clients' relays: a multi-threaded runtime
/// hands this worker's tasks to another thread meanwhile.
fn slow<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// The check for a listener's logins. A KDF-stored password is verified once per distinct
/// password tried; a good one is remembered (as its SHA-256, in memory) so later logins
/// cost one hash. Unknown usernames cost as much as known ones.
pub fn check(table: BTreeMap<Vec<u8>, Stored>) -> crate::socks::AuthCheck {
    let verified: Mutex<HashMap<Vec<u8>, [u8; 32]>> = Mutex::default();
    let dummy = table.values().find_map(|s| match s {
        Stored::Pbkdf2 { rounds, salt, .. } => Some((*rounds, salt.clone())),
        _ => None,
    });
    Arc::new(move |c: &crate::socks::Credentials| {
        let quick: [u8; 32] = Sha256::digest(&c.password).into();
        match table.get(&c.username) {
            Some(Stored::Sha256(want)) => same(want, &quick),
            Some(Stored::Pbkdf2 { rounds, salt, hash }) => {
                let known = verified.lock().unwrap_or_else(|e| e.into_inner());
                if known.get(&c.username).is_some_and(|k| same(k, &quick)) {
                    return true;
                }
                drop(known);
                let mut out = [0u8; 32];
                slow(|| pbkdf2_hmac::<Sha256>(&c.password, salt, *rounds, &mut out));
                let ok = same(hash, &out);
                if ok {
                    let mut known = verified.lock().unwrap_or_else(|e| e.into_inner());
                    known.insert(c.username.clone(), quick);
                }
                ok
            }
            None => {
                if let Some((rounds, salt)) = &dummy {
                    let mut out = [0u8; 32];
                    slow(|| pbkdf2_hmac::<Sha256>(&c.password, salt, *rounds, &mut out));
                }
                false
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socks::Credentials;

    fn creds(u: &str, p: &str) -> Credentials {
        Credentials {
            username: u.as_bytes().to_vec(),
            password: p.as_bytes().to_vec(),
        }
    }

    #[test]
    fn stored_forms() {
        let v = Stored::hash_new(b"swordfish", MIN_ROUNDS).unwrap();
        assert!(v.starts_with("pbkdf2-sha256:10000:"), "{v}");
        let other = Stored::hash_new(b"swordfish", MIN_ROUNDS).unwrap();
        assert_ne!(v, other, "a new salt each time");
        let sha = format!("sha256:{}", hex(&Sha256::digest(b"hunter2")));
        let mut t = BTreeMap::new();
        t.insert(b"alice".to_vec(), Stored::parse(&v).unwrap());
        t.insert(b"bob".to_vec(), Stored::parse(&sha).unwrap());
        t.insert(b"carol".to_vec(), Stored::parse("plain").unwrap());
        let check = check(t);
        assert!(check(&creds("alice", "swordfish")));
        assert!(check(&creds("alice", "swordfish")), "remembered");
        assert!(!check(&creds("alice", "swordfisH")));
        assert!(check(&creds("bob", "hunter2")));
        assert!(!check(&creds("bob", "hunter3")));
        assert!(check(&creds("carol", "plain")));
        assert!(!check(&creds("mallory", "swordfish")));
    }

    #[test]
    fn malformed_values_are_refused() {
        for v in [
            "sha256:abc",
            "pbkdf2-sha256:600000:zz:00",
            "pbkdf2-sha256:100:0011223344556677:".to_string().as_str(),
            "pbkdf2-sha256:600000:0011223344556677",
            "pbkdf2-sha256:x:0011223344556677:00",
        ] {
            assert!(Stored::parse(v).is_err(), "{v}");
        }
        let h = "ab".repeat(32);
        assert!(Stored::parse(&format!("pbkdf2-sha256:100:0011223344556677:{h}")).is_err());
        assert!(Stored::parse(&format!("pbkdf2-sha256:10000:0011223344556677:{h}")).is_ok());
    }
}
