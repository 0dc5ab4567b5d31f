//! Address-book subscriptions: hosts.txt files at URLs inside I2P, fetched through
//! eepsocks' own router connection (a separate, transient identity, so refreshing the book
//! is not linked to any listener's traffic), with conditional GET (ETag / Last-Modified),
//! merged into `subscriptions.txt` (written atomically). A name, once learned, keeps its
//! destination; names in the user's own book always win at lookup.

use crate::identity::{self, Template};
use crate::keys::KeySource;
use crate::naming::{classify, AddressBook, Target};
use crate::sam::Session;
use crate::socks::Address;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{info, warn};

/// Largest hosts.txt accepted (the main registries' are a few MB).
const MAX_BODY: usize = 32 << 20;

/// The user's book and the merged subscriptions, looked up in that order.
#[derive(Default)]
pub struct Books {
    pub user: RwLock<AddressBook>,
    pub subscribed: RwLock<AddressBook>,
}

impl Books {
    pub fn get(&self, name: &str) -> Option<crate::naming::Entry> {
        if let Some(d) = self.user.read().ok().and_then(|b| b.get(name).cloned()) {
            return Some(d);
        }
        self.subscribed
            .read()
            .ok()
            .and_then(|b| b.get(name).cloned())
    }
}

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

/// Conditional-GET state per URL, kept beside the merged book.
#[derive(Debug, Default, Clone, serde::Deserialize, serde::Serialize)]
struct State {
    #[serde(default)]
    urls: BTreeMap<String, Validators>,
}

#[derive(Debug, Default, Clone, serde::Deserialize, serde::Serialize)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

pub struct Subscriptions {
    pub urls: Vec<String>,
    pub dir: PathBuf,
    pub template: Template,
    pub books: Arc<Books>,
    pub delay: Duration,
    pub interval: Duration,
    pub timeout: Duration,
}

impl Subscriptions {
    fn book_path(&self) -> PathBuf {
        self.dir.join("subscriptions.txt")
    }
    fn state_path(&self) -> PathBuf {
        self.dir.join("subscriptions.state.toml")
    }

    /// Load what earlier runs fetched.
    pub fn load(&self) -> Result<()> {
        let (book, warnings) = AddressBook::load(&self.book_path())?;
        for w in warnings {
            warn!("{}: {w} (skipped)", self.book_path().display());
        }
        if let Ok(mut b) = self.books.subscribed.write() {
            *b = book;
        }
        Ok(())
    }

    /// Fetch every subscription now and then every `interval`, forever.
    pub async fn run(self) {
        tokio::time::sleep(self.delay).await;
        loop {
            if let Err(e) = self.refresh().await {
                warn!("address-book subscriptions: {e:#}");
            }
            tokio::time::sleep(self.interval).await;
        }
    }

    /// One round: a transient session, a conditional GET per URL, merge, store.
    pub async fn refresh(&self) -> Result<usize> {
        let (session, _) = identity::fixed_session(
            "eepsocks-subscriptions",
            &KeySource::Transient,
            &self.template,
        )
        .await?;
        let mut state: State = std::fs::read_to_string(self.state_path())
            .ok()
            .and_then(|t| toml::from_str(&t).ok())
            .unwrap_or_default();
        let mut added = 0;
        for url in &self.urls {
            let v = state.urls.get(url).cloned().unwrap_or_default();
            match tokio::time::timeout(self.timeout, self.fetch(&session, url, &v)).await {
                Err(_) => warn!("subscription {url}: no answer within {:?}", self.timeout),
                Ok(Err(e)) => warn!("subscription {url}: {e:#}"),
                Ok(Ok(None)) => info!("subscription {url}: not modified"),
                Ok(Ok(Some((body, newv)))) => {
                    let n = self.merge(url, &body)?;
                    added += n;
                    info!("subscription {url}: {n} new names");
                    state.urls.insert(url.clone(), newv);
                }
            }
        }
        let text = toml::to_string(&state)?;
        crate::keys::write_replace(&self.state_path(), text.as_bytes())?;
        Ok(added)
    }

    /// Add names not known yet; returns how many.
    fn merge(&self, url: &str, body: &str) -> Result<usize> {
        let (new, warnings) = AddressBook::parse(body);
        if !warnings.is_empty() {
            warn!(
                "subscription {url}: {} bad lines skipped (first: {})",
                warnings.len(),
                warnings[0]
            );
        }
        let mut book = self
            .books
            .subscribed
            .write()
            .map_err(|_| anyhow!("address book lock poisoned"))?;
        let mut added = 0;
        for (name, entry) in new.iter() {
            added += book.add_new(name, entry) as usize;
        }
        if added > 0 {
            book.save(&self.book_path())?;
        }
        Ok(added)
    }

    /// GET with validators. `None` when not modified.
    async fn fetch(
        &self,
        session: &Session,
        url: &str,
        v: &Validators,
    ) -> Result<Option<(String, Validators)>> {
        let u = parse_url(url)?;
        let dest = match &u.host {
            Target::B32(n) | Target::B33(n) => n.clone(),
            Target::Name(n) => match self.books.get(n) {
                Some(d) => d.sam_dest(),
                None => session.lookup(n).await?.to_base64(),
            },
        };
        let (mut s, early) = session.connect(&dest, u.port).await?;
        let mut req = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: eepsocks\r\nAccept-Encoding: identity\r\nConnection: close\r\n",
            u.path,
            u.host.as_str()
        );
        if let Some(e) = &v.etag {
            req += &format!("If-None-Match: {e}\r\n");
        }
        if let Some(l) = &v.last_modified {
            req += &format!("If-Modified-Since: {l}\r\n");
        }
        req += "\r\n";
        s.write_all(req.as_bytes()).await?;
        let mut raw = early;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..n]);
            if raw.len() > MAX_BODY {
                bail!("response larger than {} MiB", MAX_BODY >> 20);
            }
        }
        parse_response(&raw)
    }
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
        if b.len() < size + 2 {
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
}
