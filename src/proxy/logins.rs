//! Failed SOCKS logins, per source address: after a failure that address gets no answer
//! but "refused" for a while, 1 s after the first failure, doubling up to a minute, without
//! its password being checked at all. One guess per window, however many connections it
//! opens in parallel, and no connection sits in a slot waiting out a delay.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// Addresses remembered; past it, the entries whose lockout ended go first, then the one
/// ending soonest.
const MAX_TRACKED: usize = 4096;
const FIRST: Duration = Duration::from_secs(1);
const LONGEST: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct Logins {
    by_ip: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Logins {
    /// Check a login from `ip` with `check`, unless `ip` is locked out (then: refused,
    /// unchecked). A failure locks `ip` out; a success forgets its failures.
    pub fn attempt(&self, ip: IpAddr, check: impl FnOnce() -> bool) -> bool {
        let now = Instant::now();
        // One lock over check and record: parallel attempts from one address see each
        // other's failures.
        let mut m = self.by_ip.lock().unwrap_or_else(|e| e.into_inner());
        if m.get(&ip).is_some_and(|(_, until)| *until > now) {
            return false;
        }
        if check() {
            m.remove(&ip);
            return true;
        }
        if m.len() >= MAX_TRACKED && !m.contains_key(&ip) {
            m.retain(|_, (_, until)| *until > now);
            if m.len() >= MAX_TRACKED {
                if let Some(k) = m.iter().min_by_key(|(_, (_, u))| *u).map(|(k, _)| *k) {
                    m.remove(&k);
                }
            }
        }
        let e = m.entry(ip).or_insert((0, now));
        e.0 = e.0.saturating_add(1);
        e.1 = now + FIRST.saturating_mul(1 << (e.0 - 1).min(6)).min(LONGEST);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn lockouts_grow_and_success_resets() {
        let l = Logins::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(!l.attempt(ip, || false));
        // Locked: even the right password is not checked.
        let mut checked = false;
        assert!(!l.attempt(ip, || {
            checked = true;
            true
        }));
        assert!(!checked);
        assert!(
            l.attempt(other, || true),
            "other addresses are not affected"
        );
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert!(!l.attempt(ip, || false));
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert!(!l.attempt(ip, || true), "second lockout is 2 s");
        tokio::time::advance(Duration::from_millis(600)).await;
        assert!(l.attempt(ip, || true));
        assert!(!l.attempt(ip, || false));
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert!(l.attempt(ip, || true), "success reset the count");
        // Long runs of failures cap at a minute.
        for _ in 0..20 {
            tokio::time::advance(LONGEST).await;
            assert!(!l.attempt(ip, || false));
        }
        tokio::time::advance(LONGEST).await;
        assert!(l.attempt(ip, || true));
    }

    #[tokio::test(start_paused = true)]
    async fn bounded_memory() {
        let l = Logins::default();
        for i in 0..(MAX_TRACKED as u32 + 100) {
            l.attempt(IpAddr::from(i.to_be_bytes()), || false);
        }
        assert!(l.by_ip.lock().unwrap().len() <= MAX_TRACKED);
    }
}
