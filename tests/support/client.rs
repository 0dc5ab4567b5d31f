//! Raw, blocking SOCKS client messages for tests: exact bytes, nothing hidden.

use std::io::{Read, Write};
use std::net::TcpStream;

/// SOCKS5 CONNECT to a host name. Returns the reply code (0 = success); on success the
/// 10-byte reply has been consumed and the socket carries the stream.
pub fn socks5_connect(
    s: &mut TcpStream,
    host: &str,
    port: u16,
    userpass: Option<(&str, &str)>,
) -> std::io::Result<u8> {
    match userpass {
        None => s.write_all(&[5, 1, 0])?,
        Some(_) => s.write_all(&[5, 1, 2])?,
    }
    let mut m = [0u8; 2];
    s.read_exact(&mut m)?;
    if let Some((u, p)) = userpass {
        assert_eq!(m, [5, 2], "method selection");
        let mut a = vec![1, u.len() as u8];
        a.extend_from_slice(u.as_bytes());
        a.push(p.len() as u8);
        a.extend_from_slice(p.as_bytes());
        s.write_all(&a)?;
        let mut st = [0u8; 2];
        s.read_exact(&mut st)?;
        assert_eq!(st, [1, 0], "auth status");
    } else {
        assert_eq!(m, [5, 0], "method selection");
    }
    s.write_all(&socks5_request(1, host, port))?;
    read_socks5_reply(s)
}

pub fn socks5_request(cmd: u8, host: &str, port: u16) -> Vec<u8> {
    let mut r = vec![5, cmd, 0, 3, host.len() as u8];
    r.extend_from_slice(host.as_bytes());
    r.extend_from_slice(&port.to_be_bytes());
    r
}

/// Read a SOCKS5 reply (any address type); returns REP.
pub fn read_socks5_reply(s: &mut TcpStream) -> std::io::Result<u8> {
    let mut h = [0u8; 4];
    s.read_exact(&mut h)?;
    assert_eq!(h[0], 5, "reply version");
    let n = match h[3] {
        1 => 4,
        4 => 16,
        3 => {
            let mut l = [0u8; 1];
            s.read_exact(&mut l)?;
            l[0] as usize
        }
        other => panic!("reply with address type {other}"),
    };
    let mut rest = vec![0u8; n + 2];
    s.read_exact(&mut rest)?;
    Ok(h[1])
}

/// SOCKS4a CONNECT the way monerod sends it: DSTIP 0.0.0.1, empty user id.
pub fn socks4a_monero(s: &mut TcpStream, host: &str, port: u16) -> std::io::Result<[u8; 8]> {
    let mut r = vec![4, 1];
    r.extend_from_slice(&port.to_be_bytes());
    r.extend_from_slice(&[0, 0, 0, 1, 0]);
    r.extend_from_slice(host.as_bytes());
    r.push(0);
    s.write_all(&r)?;
    let mut rep = [0u8; 8];
    s.read_exact(&mut rep)?;
    Ok(rep)
}
