//! Rate limit for log lines about bad clients: a flood of garbage connections must not
//! become a flood of log lines. At most BURST lines per second; the rest are counted and
//! reported once the next second opens.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::warn;

const BURST: u64 = 20;

static WINDOW: AtomicU64 = AtomicU64::new(0);
static USED: AtomicU64 = AtomicU64::new(0);
static SUPPRESSED: AtomicU64 = AtomicU64::new(0);

/// May a line about a bad client be logged now?
pub fn allow() -> bool {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if WINDOW.swap(now, Ordering::AcqRel) != now {
        USED.store(0, Ordering::Release);
        let n = SUPPRESSED.swap(0, Ordering::AcqRel);
        if n > 0 {
            warn!("{n} more lines about bad clients were suppressed in the last second(s)");
        }
    }
    if USED.fetch_add(1, Ordering::AcqRel) < BURST {
        true
    } else {
        SUPPRESSED.fetch_add(1, Ordering::AcqRel);
        false
    }
}

/// Log a line a client can cause (a refusal, a failed stream, a cap), within the budget of
/// `allow`: `client_log!(info, client = %peer, "refused: ...")`.
macro_rules! client_log {
    ($level:ident, $($arg:tt)+) => {
        if $crate::proxy::ratelimit::allow() {
            tracing::$level!($($arg)+);
        }
    };
}
pub(crate) use client_log;

#[cfg(test)]
mod tests {
    #[test]
    fn bursts_are_capped() {
        let allowed = (0..1000).filter(|_| super::allow()).count();
        // within one or two one-second windows
        assert!((20..=40).contains(&allowed), "{allowed}");
    }
}
