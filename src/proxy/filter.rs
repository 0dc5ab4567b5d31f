//! Which leak filters a stream gets (docs/filters.md). The rules themselves are in the
//! `eepsocks-leakfilter` crate (sans-IO, fuzzed); `relay` runs them.

use crate::config::FilterMode;
use eepsocks_leakfilter::{http, irc, Filter};
use std::net::SocketAddr;

/// Ports where `auto` expects plaintext IRC. 6697 is IRC over TLS: opaque, left alone.
const IRC_PORTS: std::ops::RangeInclusive<u16> = 6667..=6669;
/// The port where `auto` looks for plain HTTP (only if the client's first bytes are a
/// request line; anything else on port 80 passes untouched).
const HTTP_PORT: u16 = 80;

/// The filters of one stream, one per direction; None passes that direction as it is.
#[derive(Default)]
pub struct Filters {
    /// Client → I2P.
    pub up: Option<Box<dyn Filter>>,
    /// I2P → client.
    pub down: Option<Box<dyn Filter>>,
    /// Which rules, for the debug log.
    pub kind: &'static str,
}

impl Filters {
    /// Whether a stream to `port` on a listener with `mode` gets the IRC rules.
    pub fn is_irc(mode: FilterMode, port: u16) -> bool {
        mode == FilterMode::Irc || (mode == FilterMode::Auto && IRC_PORTS.contains(&port))
    }

    /// The filters for a stream to `port` on a listener with `mode`. `account`: names the
    /// IRC filter replaces in `USER` (see [`account_names`]); empty, none.
    pub fn for_stream(
        mode: FilterMode,
        port: u16,
        user_agent: Option<&str>,
        account: &[String],
    ) -> Filters {
        let irc = || Filters {
            up: Some(Box::new(if account.is_empty() {
                irc::Outbound::new()
            } else {
                irc::Outbound::hiding(account)
            })),
            down: Some(Box::new(irc::Inbound::new())),
            kind: "irc",
        };
        let http = |sniff: bool| {
            let (up, down) = http::Requests::with_responses(http::Options {
                user_agent: user_agent.unwrap_or(http::DEFAULT_USER_AGENT).to_string(),
                sniff,
                forward: false,
            });
            Filters {
                up: Some(Box::new(up)),
                // Responses say nothing about the user; they pass as they are, the first
                // one's status read to know whether a protocol switch happened.
                down: Some(Box::new(down)),
                kind: "http",
            }
        };
        match mode {
            FilterMode::None => Filters::default(),
            FilterMode::Irc => irc(),
            FilterMode::Http => http(false),
            FilterMode::Auto if IRC_PORTS.contains(&port) => irc(),
            FilterMode::Auto if port == HTTP_PORT => http(true),
            FilterMode::Auto => Filters::default(),
        }
    }

    /// The filters of a request forwarded for an `http://` URL, whatever the listener's
    /// mode (`none` too): the request line must be rewritten for the server, and the
    /// connection must carry that one request and nothing after it. The HTTP rules apply
    /// with the listener's User-Agent.
    pub fn forward(user_agent: Option<&str>) -> Filters {
        Filters {
            up: Some(Box::new(http::Requests::new(http::Options {
                user_agent: user_agent.unwrap_or(http::DEFAULT_USER_AGENT).to_string(),
                sniff: false,
                forward: true,
            }))),
            down: None,
            kind: "http-forward",
        }
    }

    pub fn is_none(&self) -> bool {
        self.up.is_none() && self.down.is_none()
    }
}

/// Below this, system accounts (login.defs UID_MIN); from 65534 on, `nobody` and
/// user-namespace ranges. Login accounts are between.
const LOGIN_UIDS: std::ops::Range<u32> = 1000..65534;

/// The names an IRC client may copy into `USER` that identify an account of this machine
/// (`irc_hide_account`, docs/filters.md): the login name and passwd full name of the
/// account eepsocks runs as, and of the account that owns the client's socket when the
/// client is on this machine (its uid from /proc/net/tcp). Where that table cannot be
/// read (the systemd unit hides /proc/net) or holds no such socket (the client already
/// left), the names of every login account instead: the client is likely one of them. Accounts come from /etc/passwd only; NSS (LDAP, sssd) could
/// block on the network. Blocking file reads: call it off the async threads.
pub fn account_names(client: SocketAddr, local: Option<SocketAddr>) -> Vec<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let me = unsafe { libc::geteuid() };
    let mut uids = vec![me];
    let owner = local.and_then(|local| {
        if !client.ip().is_loopback() && client.ip() != local.ip() {
            // Another machine: no account of ours.
            return Some(None);
        }
        socket_owner(client, local).map(Some)
    });
    match owner {
        Some(Some(uid)) => uids.push(uid),
        Some(None) => {}
        None => uids.extend(
            passwd_entries(&passwd)
                .map(|(_, uid, _)| uid)
                .filter(|u| LOGIN_UIDS.contains(u)),
        ),
    }
    let mut names = Vec::new();
    for (login, uid, gecos) in passwd_entries(&passwd) {
        if uids.contains(&uid) {
            names.push(login.to_string());
            let full = full_name(login, gecos);
            if !full.is_empty() {
                names.push(full);
            }
        }
    }
    names
}

/// `login:x:uid:gid:gecos:home:shell` lines: login, uid, GECOS.
fn passwd_entries(passwd: &str) -> impl Iterator<Item = (&str, u32, &str)> {
    passwd.lines().filter_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        let uid = f.get(2)?.parse().ok()?;
        Some((*f.first()?, uid, *f.get(4)?)).filter(|(login, _, _)| !login.is_empty())
    })
}

/// The full name in a GECOS field, as glib's `g_get_real_name` (irssi, HexChat) makes it:
/// up to the first comma, `&` standing for the login name capitalised.
fn full_name(login: &str, gecos: &str) -> String {
    let name = gecos.split(',').next().unwrap_or_default().trim();
    let mut cap = login.to_string();
    if let Some(first) = cap.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    name.replace('&', &cap)
}

/// Who owns the TCP socket connected from `client` to `local` (Linux: /proc/net/tcp and
/// tcp6). None when the tables cannot be read or hold no such socket.
fn socket_owner(client: SocketAddr, local: SocketAddr) -> Option<u32> {
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().find_map(|file| {
        let table = std::fs::read_to_string(file).ok()?;
        owner_in(&table, client, local)
    })
}

/// The uid of the socket whose local end is `client` and remote end `local`, in a
/// /proc/net/tcp or tcp6 table (IPv4 addresses also in their IPv6-mapped form).
fn owner_in(table: &str, client: SocketAddr, local: SocketAddr) -> Option<u32> {
    let forms = |a: SocketAddr| -> Vec<String> {
        let port = a.port();
        let v6 = |ip: std::net::Ipv6Addr| -> String {
            ip.octets()
                .chunks(4)
                .map(|c| format!("{:08X}", u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect()
        };
        match a.ip() {
            std::net::IpAddr::V4(ip) => vec![
                format!("{:08X}:{port:04X}", u32::from_le_bytes(ip.octets())),
                format!("{}:{port:04X}", v6(ip.to_ipv6_mapped())),
            ],
            std::net::IpAddr::V6(ip) => vec![format!("{}:{port:04X}", v6(ip))],
        }
    };
    let (from, to) = (forms(client), forms(local));
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (l_addr, r_addr, state, uid) = (f.get(1)?, f.get(2)?, f.get(3)?, f.get(7)?);
        // A TIME_WAIT socket has lost its owner (the table says uid 0).
        let ours =
            from.iter().any(|a| a == l_addr) && to.iter().any(|a| a == r_addr) && *state != "06";
        ours.then(|| uid.parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_picks_by_port() {
        let f = |mode, port| Filters::for_stream(mode, port, None, &[]).kind;
        assert_eq!(f(FilterMode::Auto, 6667), "irc");
        assert_eq!(f(FilterMode::Auto, 6669), "irc");
        assert_eq!(f(FilterMode::Auto, 6697), "");
        assert_eq!(f(FilterMode::Auto, 80), "http");
        assert_eq!(f(FilterMode::Auto, 443), "");
        assert_eq!(f(FilterMode::Auto, 8080), "");
        assert_eq!(f(FilterMode::Irc, 443), "irc");
        assert_eq!(f(FilterMode::Http, 8080), "http");
        assert_eq!(f(FilterMode::None, 6667), "");
        assert!(Filters::for_stream(FilterMode::None, 80, None, &[]).is_none());
        assert!(Filters::for_stream(FilterMode::Auto, 80, None, &[])
            .down
            .is_some());
        for (mode, port) in [(FilterMode::Auto, 6667), (FilterMode::Irc, 443)] {
            assert!(Filters::is_irc(mode, port));
        }
        for (mode, port) in [(FilterMode::Auto, 6697), (FilterMode::Http, 6667)] {
            assert!(!Filters::is_irc(mode, port));
        }
    }

    #[test]
    fn irc_filter_gets_the_account_names() {
        let names = ["alice".to_string(), "Alice Smith".to_string()];
        let mut f = Filters::for_stream(FilterMode::Auto, 6667, None, &names);
        let mut out = eepsocks_leakfilter::Output::default();
        f.up.as_mut()
            .unwrap()
            .feed(b"USER alice alice srv :Alice Smith\r\n", &mut out);
        assert_eq!(out.forward, b"USER user hostname localhost :user\r\n");
        let mut f = Filters::for_stream(FilterMode::Auto, 6667, None, &[]);
        out.clear();
        f.up.as_mut()
            .unwrap()
            .feed(b"USER alice alice srv :Alice Smith\r\n", &mut out);
        assert_eq!(
            out.forward,
            b"USER alice hostname localhost :Alice Smith\r\n"
        );
    }

    #[test]
    fn full_names_as_glib_makes_them() {
        assert_eq!(full_name("alice", "Alice Smith,,,"), "Alice Smith");
        assert_eq!(full_name("bob", "& Jones,Room 1"), "Bob Jones");
        assert_eq!(full_name("carol", ""), "");
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      alice:x:1000:1000:Alice Smith,,,:/home/alice:/bin/bash\nbad line\n";
        let e: Vec<_> = passwd_entries(passwd).collect();
        assert_eq!(e, [("root", 0, "root"), ("alice", 1000, "Alice Smith,,,")]);
    }

    #[test]
    fn owner_of_a_client_socket() {
        // 127.0.0.1:51000 (C738) -> 127.0.0.1:4447 (115F), uid 1001; the accepted end
        // (4447 -> 51000) belongs to eepsocks, uid 115.
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:115F 00000000:0000 0A 00000000:00000000 00:00000000 00000000   115        0 1 1 0 100 0 0 10 0
   1: 0100007F:115F 0100007F:C738 01 00000000:00000000 00:00000000 00000000   115        0 2 1 0 100 0 0 10 0
   2: 0100007F:C738 0100007F:115F 01 00000000:00000000 00:00000000 00000000  1001        0 3 1 0 100 0 0 10 0
";
        let client: SocketAddr = "127.0.0.1:51000".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:4447".parse().unwrap();
        assert_eq!(owner_in(table, client, local), Some(1001));
        assert_eq!(owner_in(table, local, client), Some(115));
        assert_eq!(
            owner_in(table, "127.0.0.1:51001".parse().unwrap(), local),
            None
        );
        let gone = table.replace(
            " 01 00000000:00000000 00:00000000 00000000  1001",
            " 06 00000000:00000000 00:00000000 00000000     0",
        );
        assert_eq!(owner_in(&gone, client, local), None);
        // The same connection through an IPv6 listener, the client's address v4-mapped.
        let table6 = "  sl  local_address                         remote_address                        st
   0: 0000000000000000FFFF00000100007F:C738 0000000000000000FFFF00000100007F:115F 01 00000000:00000000 00:00000000 00000000  1002        0 3 1
";
        assert_eq!(owner_in(table6, client, local), Some(1002));
    }

    #[test]
    fn account_names_of_this_process_and_a_real_client() {
        // A real client on loopback: its socket's owner is this process's account.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let me = unsafe { libc::geteuid() };
        if std::path::Path::new("/proc/net/tcp").exists() {
            assert_eq!(
                socket_owner(c.local_addr().unwrap(), l.local_addr().unwrap()),
                Some(me)
            );
        }
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let login = passwd_entries(&passwd).find(|e| e.1 == me).map(|e| e.0);
        if let Some(login) = login {
            let names = account_names(c.local_addr().unwrap(), Some(l.local_addr().unwrap()));
            assert!(names.iter().any(|n| n == login), "{names:?}");
        }
    }

    #[test]
    fn forwarding_is_always_filtered() {
        let mut f = Filters::forward(Some("UA"));
        assert_eq!(f.kind, "http-forward");
        assert!(f.down.is_none());
        let mut out = eepsocks_leakfilter::Output::default();
        let up = f.up.as_mut().unwrap();
        up.feed(
            b"GET http://a.i2p/x HTTP/1.1\r\nUser-Agent: curl\r\n\r\nGET http://b.i2p/ HTTP/1.1\r\n",
            &mut out,
        );
        assert_eq!(
            out.forward,
            b"GET /x HTTP/1.1\r\nUser-Agent: UA\r\nConnection: close\r\n\r\n"
        );
    }
}
