//! Whom eepsocks hands its private keys to. SESSION CREATE carries them, so a SAM bridge
//! must be this user's or the system's: with `router = "auto"`, any local user who binds
//! 127.0.0.1:7656 first would otherwise receive them.

use std::net::SocketAddr;

/// Accounts below this are system accounts (root, and the `i2pd` or `i2p` user a
/// distribution package runs the router as); login users start here (login.defs UID_MIN).
const FIRST_LOGIN_UID: u32 = 1000;

/// Who owns the listening TCP socket on `addr` (Linux: /proc/net/tcp and tcp6). None when
/// it cannot be told (no such socket, not Linux).
pub fn listener_owner(addr: SocketAddr) -> Option<u32> {
    let (file, ip) = match addr {
        SocketAddr::V4(a) => ("/proc/net/tcp", hex_v4(*a.ip())),
        SocketAddr::V6(a) => ("/proc/net/tcp6", hex_v6(*a.ip())),
    };
    let text = std::fs::read_to_string(file).ok()?;
    owner_in(&text, &ip, addr.port())
}

/// The uid of the LISTEN socket on `ip:port` (or on the wildcard address) in a
/// /proc/net/tcp table.
fn owner_in(table: &str, ip: &str, port: u16) -> Option<u32> {
    let port = format!("{port:04X}");
    let any_v4 = "00000000";
    let any_v6 = "00000000000000000000000000000000";
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (local, state, uid) = (f.get(1)?, f.get(3)?, f.get(7)?);
        let (lip, lport) = local.split_once(':')?;
        let ours = lport == port && (lip == ip || lip == any_v4 || lip == any_v6);
        (ours && *state == "0A").then(|| uid.parse().ok()).flatten()
    })
}

fn hex_v4(ip: std::net::Ipv4Addr) -> String {
    // The kernel prints the address as a host-order (little-endian here) u32.
    format!("{:08X}", u32::from_le_bytes(ip.octets()))
}

fn hex_v6(ip: std::net::Ipv6Addr) -> String {
    ip.octets()
        .chunks(4)
        .map(|c| format!("{:08X}", u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        .collect()
}

/// Whether a bridge run by `owner` may have our keys: ourselves, root, a system account.
pub fn trusted(owner: u32, me: u32) -> bool {
    owner == me || owner < FIRST_LOGIN_UID
}

/// Why the SAM bridge at `addr` is not to be trusted, if it is not.
pub fn distrust(addr: &str) -> Option<String> {
    let a: SocketAddr = addr.parse().ok()?;
    let me = unsafe { libc::geteuid() };
    match listener_owner(a) {
        Some(owner) if !trusted(owner, me) => Some(format!(
            "is run by another user (uid {owner}), who would receive our private keys"
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1DE8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 640 1 0000000075ad9fb7 100 0 0 10 0
   1: 0100007F:ACB9 0100007F:1DE8 01 00000000:00000000 03:000008FC 00000000     0        0 0 3 000000009320f093
   2: 00000000:115C 00000000:0000 0A 00000000:00000000 00:00000000 00000000   115        0 641 1 0000000075ad9fb7 100 0 0 10 0
";

    #[test]
    fn owner_of_a_listening_socket() {
        let lo = hex_v4("127.0.0.1".parse().unwrap());
        assert_eq!(lo, "0100007F");
        // 7656 = 0x1DE8: listening, uid 1001 (the connected socket to it is skipped).
        assert_eq!(owner_in(TABLE, &lo, 7656), Some(1001));
        // 4444 = 0x115C on 0.0.0.0: reachable on 127.0.0.1 too.
        assert_eq!(owner_in(TABLE, &lo, 4444), Some(115));
        assert_eq!(owner_in(TABLE, &lo, 7657), None);
        assert_eq!(
            hex_v6("::1".parse().unwrap()),
            "00000000000000000000000001000000"
        );
    }

    #[test]
    fn whom_keys_go_to() {
        assert!(trusted(1000, 1000));
        assert!(trusted(0, 1000));
        assert!(trusted(115, 1000), "a system account (the packaged router)");
        assert!(!trusted(1001, 1000), "another login user");
    }

    /// A bridge this process runs itself is trusted.
    #[test]
    fn own_listener_is_trusted() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        assert_eq!(listener_owner(a), Some(unsafe { libc::geteuid() }));
        assert_eq!(distrust(&a.to_string()), None);
    }
}
