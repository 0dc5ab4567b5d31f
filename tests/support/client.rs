//! Raw SOCKS client messages for tests: exact bytes, nothing hidden. Blocking versions for
//! threads, and tokio versions for tests on a runtime with paused time (the client must be
//! on the runtime then, see docs/testing.md); both send the same bytes.

use std::io::{Read, Write};
use std::net::TcpStream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The SOCKS5 greeting: no auth, or username/password.
fn greeting(userpass: Option<(&str, &str)>) -> [u8; 3] {
    match userpass {
        None => [5, 1, 0],
        Some(_) => [5, 1, 2],
    }
}

/// The RFC 1929 sub-negotiation.
fn login(u: &str, p: &str) -> Vec<u8> {
    let mut a = vec![1, u.len() as u8];
    a.extend_from_slice(u.as_bytes());
    a.push(p.len() as u8);
    a.extend_from_slice(p.as_bytes());
    a
}

/// Bytes after the 4-byte head of a SOCKS5 reply, for address type `atyp`, without the
/// length byte of a name (`name_len` is that byte when atyp is 3).
fn reply_rest(atyp: u8, name_len: u8) -> usize {
    2 + match atyp {
        1 => 4,
        4 => 16,
        3 => name_len as usize,
        other => panic!("reply with address type {other}"),
    }
}

/// SOCKS5 CONNECT to a host name. Returns the reply code (0 = success); on success the
/// 10-byte reply has been consumed and the socket carries the stream.
pub fn socks5_connect(
    s: &mut TcpStream,
    host: &str,
    port: u16,
    userpass: Option<(&str, &str)>,
) -> std::io::Result<u8> {
    s.write_all(&greeting(userpass))?;
    let mut m = [0u8; 2];
    s.read_exact(&mut m)?;
    if let Some((u, p)) = userpass {
        assert_eq!(m, [5, 2], "method selection");
        s.write_all(&login(u, p))?;
        let mut st = [0u8; 2];
        s.read_exact(&mut st)?;
        assert_eq!(st, [1, 0], "auth status");
    } else {
        assert_eq!(m, [5, 0], "method selection");
    }
    s.write_all(&socks5_request(1, host, port))?;
    read_socks5_reply(s)
}

/// `socks5_connect` on a tokio socket.
pub async fn socks5_connect_async(
    s: &mut tokio::net::TcpStream,
    host: &str,
    port: u16,
    userpass: Option<(&str, &str)>,
) -> std::io::Result<u8> {
    s.write_all(&greeting(userpass)).await?;
    let mut m = [0u8; 2];
    s.read_exact(&mut m).await?;
    if let Some((u, p)) = userpass {
        assert_eq!(m, [5, 2], "method selection");
        s.write_all(&login(u, p)).await?;
        let mut st = [0u8; 2];
        s.read_exact(&mut st).await?;
        assert_eq!(st, [1, 0], "auth status");
    } else {
        assert_eq!(m, [5, 0], "method selection");
    }
    s.write_all(&socks5_request(1, host, port)).await?;
    read_socks5_reply_async(s).await
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
    let mut l = [0u8; 1];
    if h[3] == 3 {
        s.read_exact(&mut l)?;
    }
    let mut rest = vec![0u8; reply_rest(h[3], l[0])];
    s.read_exact(&mut rest)?;
    Ok(h[1])
}

/// `read_socks5_reply` on a tokio socket.
pub async fn read_socks5_reply_async(s: &mut tokio::net::TcpStream) -> std::io::Result<u8> {
    let mut h = [0u8; 4];
    s.read_exact(&mut h).await?;
    assert_eq!(h[0], 5, "reply version");
    let mut l = [0u8; 1];
    if h[3] == 3 {
        s.read_exact(&mut l).await?;
    }
    let mut rest = vec![0u8; reply_rest(h[3], l[0])];
    s.read_exact(&mut rest).await?;
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

/// Tor's SOCKS5 RESOLVE (0xF0) of `name` at `proxy`, no auth: the IPv4 address handed out
/// (a stand-in, or automap's virtual address). Panics on any other reply.
pub fn socks5_resolve(proxy: std::net::SocketAddr, name: &str) -> std::net::Ipv4Addr {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(&[5, 1, 0]).unwrap();
    let mut m = [0u8; 2];
    s.read_exact(&mut m).unwrap();
    s.write_all(&socks5_request(0xF0, name, 0)).unwrap();
    let mut r = [0u8; 10];
    s.read_exact(&mut r).unwrap();
    assert_eq!((r[1], r[3]), (0, 1), "RESOLVE reply {r:?}");
    std::net::Ipv4Addr::new(r[4], r[5], r[6], r[7])
}
