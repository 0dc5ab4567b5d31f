//! The small HTTP/1.x client subscriptions need: an `http://` URL inside I2P, and a whole
//! response read until close (conditional GET validators, chunked bodies).

use super::policy::{classify, Target};
use crate::socks::Address;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;

/// `http://host[:port]/path` with an I2P host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub host: Target,
    pub port: u16,
    pub path: String,
}

pub fn parse_url(s: &str) -> Result<Url> {
    let rest = s
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("{s}: only http:// URLs inside I2P"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().with_context(|| format!("{s}: bad port"))?),
        None => (hostport, 80),
    };
    let host = classify(&Address::Name(host.to_string())).map_err(|e| anyhow!("{s}: {e}"))?;
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("{s}: bad path");
    }
    Ok(Url {
        host,
        port,
        path: path.to_string(),
    })
}

#[derive(Debug, Default, Clone, serde::Deserialize, serde::Serialize)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// Parse a whole HTTP/1.x response read until close (public for the fuzz target).
pub fn parse_response(raw: &[u8]) -> Result<Option<(String, Validators)>> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("no complete HTTP header"))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("bad HTTP status line"))?;
    let mut headers = BTreeMap::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    if status == 304 {
        return Ok(None);
    }
    if status != 200 {
        bail!("HTTP status {status}");
    }
    let mut body = raw[end + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body)?;
    } else if let Some(n) = headers
        .get("content-length")
        .and_then(|n| n.parse::<usize>().ok())
    {
        if body.len() < n {
            bail!("body cut short: {} of {n} bytes", body.len());
        }
        body.truncate(n);
    }
    let v = Validators {
        etag: headers.get("etag").cloned(),
        last_modified: headers.get("last-modified").cloned(),
    };
    Ok(Some((String::from_utf8_lossy(&body).into_owned(), v)))
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let i = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| anyhow!("bad chunk"))?;
        let size_str = String::from_utf8_lossy(&b[..i]);
        let size = usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| anyhow!("bad chunk size"))?;
        b = &b[i + 2..];
        if size == 0 {
            return Ok(out);
        }
        // A hostile size (up to usize::MAX) must not overflow: compare without adding.
        if b.len() < 2 || b.len() - 2 < size {
            bail!("chunk cut short");
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("http://reg.i2p/hosts.txt").unwrap();
        assert_eq!(u.host, Target::Name("reg.i2p".into()));
        assert_eq!((u.port, u.path.as_str()), (80, "/hosts.txt"));
        let b = "ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p";
        let u = parse_url(&format!("http://{b}:8080")).unwrap();
        assert_eq!((u.port, u.path.as_str()), (8080, "/"));
        assert!(parse_url("https://reg.i2p/").is_err());
        assert!(parse_url("http://example.com/hosts.txt").is_err());
        assert!(parse_url("http://reg.i2p/a b").is_err());
    }

    #[test]
    fn responses() {
        let r =
            parse_response(b"HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nContent-Length: 5\r\n\r\nhelloXX")
                .unwrap()
                .unwrap();
        assert_eq!(r.0, "hello");
        assert_eq!(r.1.etag.as_deref(), Some("\"v1\""));
        assert!(parse_response(b"HTTP/1.1 304 Not Modified\r\n\r\n")
            .unwrap()
            .is_none());
        assert!(parse_response(b"HTTP/1.1 404 Not Found\r\n\r\n").is_err());
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.0, "abcde");
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort").is_err());
        assert!(parse_response(b"garbage").is_err());
    }

    /// A chunk size near usize::MAX from a hostile feed is an error, not an overflow panic
    /// that would kill the refresh task.
    #[test]
    fn hostile_chunk_sizes() {
        for size in [
            "ffffffffffffffff",
            "fffffffffffffffe",
            "10000000000000000",
            "7fffffffffffffff",
        ] {
            let raw = format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{size}\r\nabc\r\n0\r\n\r\n"
            );
            assert!(parse_response(raw.as_bytes()).is_err(), "{size}");
        }
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n";
        assert!(parse_response(raw).is_err());
    }
}
