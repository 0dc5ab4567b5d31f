//! The descriptor budget. Every client connection costs two descriptors (the client, the
//! router's stream), so the number of connections the whole process may hold is derived
//! from its descriptor limit, rather than found out by EMFILE.

// rlim_t is u64 on Linux but not everywhere: the casts are not no-ops on every target.
#![allow(clippy::unnecessary_cast)]

/// Descriptors kept for everything but client connections: the log, the status endpoint
/// and its 16 connections, key and book files, the embedded router's own, slack.
const BASE_RESERVE: u64 = 128;

/// The soft RLIMIT_NOFILE, raised to the hard limit (the common soft limit, 1024, is far
/// below what a proxy needs). Returns (before, after).
pub fn raise_nofile() -> std::io::Result<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let before = r.rlim_cur as u64;
    // A hard limit of "unlimited" is not a number of descriptors to plan with.
    let want = (r.rlim_max as u64).min(1 << 20);
    if want > before {
        r.rlim_cur = want as libc::rlim_t;
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok((before, nofile()))
}

/// The soft descriptor limit now.
pub fn nofile() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
        return 1024;
    }
    (r.rlim_cur as u64).min(1 << 20)
}

/// Client connections the process may hold with `nofile` descriptors, `sessions` of them
/// held by SAM sessions (control connections, warm sockets, per-user identities).
pub fn connections(nofile: u64, sessions: u64) -> usize {
    let free = nofile.saturating_sub(BASE_RESERVE + sessions);
    (free / 2).max(8) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets() {
        assert_eq!(connections(1024, 0), 448);
        assert_eq!(connections(1024, 64 + 3), 414);
        // Never zero: a tiny limit still serves a few clients.
        assert_eq!(connections(64, 10), 8);
        assert!(nofile() >= 64);
    }
}
