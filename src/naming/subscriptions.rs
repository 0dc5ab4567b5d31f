//! Address-book subscriptions: hosts.txt files at URLs inside I2P, fetched through
//! `Feeds` (the daemon hands in its router connection: a separate, transient identity each
//! round, so refreshing the book is not linked to any listener's traffic; naming itself
//! speaks no router protocol), with conditional GET (ETag / Last-Modified),
//! merged into `subscriptions.txt` (written atomically). A name, once learned, keeps its
//! destination; names in the user's own book always win at lookup.

use super::book::{AddressBook, Books};
use super::http::{parse_response, parse_url, Validators};
use super::policy::Target;
use crate::fsutil;
use anyhow::{anyhow, bail, Result};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::{info, warn};

/// Largest hosts.txt accepted (the main registries' are a few MB).
const MAX_BODY: usize = 32 << 20;

/// Conditional-GET state per URL, kept beside the merged book.
#[derive(Debug, Default, Clone, serde::Deserialize, serde::Serialize)]
struct State {
    #[serde(default)]
    urls: BTreeMap<String, Validators>,
}

/// Names the merged subscriptions hold at most (the main registries list ~10,000).
pub const MAX_NAMES: usize = 100_000;
/// New names one feed may add in one round, so one feed cannot fill the book alone.
pub const MAX_NEW_PER_FEED: usize = 50_000;

/// A name no feed has listed for this many days is removed from the merged book.
pub const MAX_AGE_DAYS: u64 = 30;

fn unix_day() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0)
}

fn load_seen(path: &std::path::Path) -> std::collections::HashMap<String, u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (n, d) = l.split_once(' ')?;
            Some((n.to_string(), d.parse().ok()?))
        })
        .collect()
}

/// Remove the names of `book` last seen more than `max_age` days before `today`; names
/// never seen (merged before this was kept) start their clock today. Returns how many went.
fn expire(
    book: &mut AddressBook,
    seen: &mut std::collections::HashMap<String, u64>,
    today: u64,
    max_age: u64,
) -> usize {
    let names: Vec<String> = book.iter().map(|(n, _)| n.clone()).collect();
    let mut gone = 0;
    for n in names {
        let day = *seen.entry(n.clone()).or_insert(today);
        if day + max_age < today {
            book.remove(&n);
            seen.remove(&n);
            gone += 1;
        }
    }
    // Forget what the book no longer holds.
    seen.retain(|n, _| book.get(n).is_some());
    gone
}

/// How the feeds are reached: one `FeedRound` per round of fetches.
pub trait Feeds: Send + Sync + 'static {
    type Round: FeedRound;
    /// Ready to fetch (a new transient identity, up): each round its own, so that rounds
    /// cannot be linked to each other.
    fn round(&self) -> impl Future<Output = Result<Self::Round>> + Send;
}

/// One round's way into I2P.
pub trait FeedRound: Send + Sync {
    /// The destination (base64) the router's naming service gives `name`.
    fn lookup(&self, name: &str) -> impl Future<Output = Result<String>> + Send;
    /// A stream to `dest` (a b32 name or a base64 destination) on `port`, and the bytes
    /// that came with the router's answer.
    fn connect(
        &self,
        dest: &str,
        port: u16,
    ) -> impl Future<Output = Result<(Box<dyn FeedStream>, Vec<u8>)>> + Send;
}

/// A byte stream to a feed's server.
pub trait FeedStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> FeedStream for T {}

pub struct Subscriptions<F: Feeds> {
    pub urls: Vec<String>,
    pub dir: PathBuf,
    pub feeds: F,
    pub books: Arc<Books>,
    pub delay: Duration,
    pub interval: Duration,
    pub timeout: Duration,
}

impl<F: Feeds> Subscriptions<F> {
    fn book_path(&self) -> PathBuf {
        super::book::subscribed_book_path(&self.dir)
    }
    fn state_path(&self) -> PathBuf {
        self.dir.join("subscriptions.state.toml")
    }

    /// Fetch every subscription now and then every `interval`, forever.
    pub async fn run(self) {
        let me = Arc::new(self);
        tokio::time::sleep(me.delay).await;
        loop {
            // Each round in its own task: whatever a feed does to it, the next round comes.
            let round = tokio::spawn({
                let me = me.clone();
                async move { me.refresh().await }
            });
            match round.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => warn!("address-book subscriptions: {e:#}"),
                Err(e) => warn!(
                    "address-book subscriptions: the refresh failed ({e}); next round as planned"
                ),
            }
            tokio::time::sleep(me.interval).await;
        }
    }

    /// One round: a transient identity, a conditional GET per URL, merge, store.
    pub async fn refresh(&self) -> Result<usize> {
        let session = self.feeds.round().await?;
        let mut state: State = std::fs::read_to_string(self.state_path())
            .ok()
            .and_then(|t| toml::from_str(&t).ok())
            .unwrap_or_default();
        let mut added = 0;
        let today = unix_day();
        let mut seen = load_seen(&self.seen_path());
        for url in &self.urls {
            let v = state.urls.get(url).cloned().unwrap_or_default();
            match tokio::time::timeout(self.timeout, self.fetch(&session, url, &v)).await {
                Err(_) => warn!("subscription {url}: no answer within {:?}", self.timeout),
                Ok(Err(e)) => warn!("subscription {url}: {e:#}"),
                Ok(Ok(None)) => {
                    info!("subscription {url}: not modified");
                    // Still listed: the names of its last full answer.
                    let names =
                        std::fs::read_to_string(self.feed_names_path(url)).unwrap_or_default();
                    for n in names.lines() {
                        seen.insert(n.to_string(), today);
                    }
                }
                Ok(Ok(Some((body, newv)))) => {
                    let (n, names) = self.merge(url, body).await?;
                    added += n;
                    info!("subscription {url}: {n} new names");
                    let list: String = names.iter().map(|n| format!("{n}\n")).collect();
                    fsutil::write_replace(
                        &self.feed_names_path(url),
                        list.as_bytes(),
                        fsutil::Sync::Cache,
                    )?;
                    for n in names {
                        seen.insert(n, today);
                    }
                    state.urls.insert(url.clone(), newv);
                }
            }
        }
        let snapshot = {
            let mut book = self
                .books
                .subscribed
                .write()
                .map_err(|_| anyhow!("address book lock poisoned"))?;
            let gone = expire(&mut book, &mut seen, today, MAX_AGE_DAYS);
            if gone > 0 {
                info!("subscriptions: {gone} names no feed has listed for {MAX_AGE_DAYS} days removed");
            }
            (gone > 0).then(|| book.clone())
        };
        if let Some(book) = snapshot {
            let path = self.book_path();
            tokio::task::spawn_blocking(move || book.save(&path)).await??;
        }
        let text: String = seen.iter().map(|(n, d)| format!("{n} {d}\n")).collect();
        fsutil::write_replace(&self.seen_path(), text.as_bytes(), fsutil::Sync::Cache)?;
        let text = toml::to_string(&state)?;
        fsutil::write_replace(&self.state_path(), text.as_bytes(), fsutil::Sync::Durable)?;
        Ok(added)
    }

    /// When each merged name was last listed by a feed.
    fn seen_path(&self) -> PathBuf {
        self.dir.join("subscriptions.seen")
    }

    /// The names of a feed's last full answer (to keep them alive through 304s).
    fn feed_names_path(&self, url: &str) -> PathBuf {
        use sha2::Digest;
        let h = sha2::Sha256::digest(url.as_bytes());
        let tag = data_encoding::HEXLOWER.encode(&h[..8]);
        self.dir
            .join("subscriptions.d")
            .join(format!("{tag}.names"))
    }

    /// Add names not known yet; returns how many, and every name the feed listed.
    async fn merge(&self, url: &str, body: String) -> Result<(usize, Vec<String>)> {
        // Megabytes of text: parsed off the async threads, which relay everyone's bytes.
        let (new, warnings) =
            tokio::task::spawn_blocking(move || AddressBook::parse(&body)).await?;
        if !warnings.is_empty() {
            warn!(
                "subscription {url}: {} bad lines skipped (first: {})",
                warnings.len(),
                warnings[0]
            );
        }
        let listed: Vec<String> = new.iter().map(|(n, _)| n.clone()).collect();
        let (added, snapshot) = {
            let mut book = self
                .books
                .subscribed
                .write()
                .map_err(|_| anyhow!("address book lock poisoned"))?;
            let mut added = 0;
            for (name, entry) in new.iter() {
                if book.len() >= MAX_NAMES {
                    warn!("subscriptions: {MAX_NAMES} names held; {url}'s other new names skipped");
                    break;
                }
                if added >= MAX_NEW_PER_FEED {
                    warn!("subscription {url}: {MAX_NEW_PER_FEED} new names this round; the rest skipped");
                    break;
                }
                added += book.add_new(name, entry) as usize;
            }
            (added, (added > 0).then(|| book.clone()))
        };
        // Written (and fsynced) off the async threads and outside the lock lookups take.
        if let Some(book) = snapshot {
            let path = self.book_path();
            tokio::task::spawn_blocking(move || book.save(&path)).await??;
        }
        Ok((added, listed))
    }

    /// GET with validators. `None` when not modified.
    async fn fetch(
        &self,
        session: &F::Round,
        url: &str,
        v: &Validators,
    ) -> Result<Option<(String, Validators)>> {
        let u = parse_url(url)?;
        let dest = match &u.host {
            Target::B32(n) | Target::B33(n) => n.clone(),
            // The feed's host: the user's book, else the router's; never another feed's
            // word, which could redirect this feed.
            Target::Name(n) => match self.books.user(n) {
                Some(d) => d.sam_dest(),
                None => session.lookup(n).await?,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A feed server in memory: answers each GET with `answer(request)`, and notes what
    /// was asked (destination and request head).
    #[derive(Clone, Default)]
    struct FakeFeeds {
        asked: Arc<std::sync::Mutex<Vec<(String, String)>>>,
        looked_up: Arc<std::sync::Mutex<Vec<String>>>,
        body: String,
    }

    impl Feeds for FakeFeeds {
        type Round = FakeFeeds;
        async fn round(&self) -> Result<FakeFeeds> {
            Ok(self.clone())
        }
    }

    impl FeedRound for FakeFeeds {
        async fn lookup(&self, name: &str) -> Result<String> {
            self.looked_up.lock().unwrap().push(name.to_string());
            Ok(dest(9))
        }
        async fn connect(&self, dest: &str, _port: u16) -> Result<(Box<dyn FeedStream>, Vec<u8>)> {
            let (ours, mut theirs) = tokio::io::duplex(1 << 20);
            let (asked, body, dest) = (self.asked.clone(), self.body.clone(), dest.to_string());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut b = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = theirs.read(&mut b).await.unwrap();
                    head.extend_from_slice(&b[..n]);
                }
                let head = String::from_utf8(head).unwrap();
                let answer = if head.contains("If-None-Match: \"v1\"") {
                    "HTTP/1.1 304 Not Modified\r\n\r\n".to_string()
                } else {
                    format!(
                        "HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                };
                asked.lock().unwrap().push((dest, head));
                theirs.write_all(answer.as_bytes()).await.unwrap();
            });
            Ok((Box::new(ours), Vec::new()))
        }
    }

    fn dest(fill: u8) -> String {
        let mut v = vec![fill; 384];
        v.extend_from_slice(&[5, 0, 4, 0, 7, 0, 4]);
        crate::destination::base64_encode(&v)
    }

    #[tokio::test]
    async fn a_round_merges_the_feed_then_asks_with_its_etag() {
        let dir = tempfile::tempdir().unwrap();
        let feeds = FakeFeeds {
            body: format!("a.i2p={}\nb.i2p={}\nbad line\n", dest(1), dest(2)),
            ..FakeFeeds::default()
        };
        let books = Arc::new(Books::default());
        // The user's book names the second feed's host: no router lookup for it.
        let mine = crate::destination::Destination::from_base64(&dest(3)).unwrap();
        books
            .user
            .write()
            .unwrap()
            .add_new("mine.i2p", &super::super::book::Entry::Dest(mine));
        let subs = Subscriptions {
            urls: vec![
                "http://reg.i2p/hosts.txt".into(),
                "http://mine.i2p/h.txt".into(),
            ],
            dir: dir.path().to_path_buf(),
            feeds: feeds.clone(),
            books: books.clone(),
            delay: Duration::ZERO,
            interval: Duration::from_secs(3600),
            timeout: Duration::from_secs(5),
        };
        assert_eq!(subs.refresh().await.unwrap(), 2, "a.i2p and b.i2p, once");
        assert!(books.subscribed("a.i2p").is_some() && books.subscribed("b.i2p").is_some());
        assert_eq!(
            *feeds.looked_up.lock().unwrap(),
            ["reg.i2p"],
            "mine.i2p from the user's book"
        );
        {
            let asked = feeds.asked.lock().unwrap();
            assert_eq!(asked.len(), 2);
            assert_eq!(asked[0].0, dest(9), "the router's answer for reg.i2p");
            assert_eq!(asked[1].0, dest(3), "the user's entry for mine.i2p");
            assert!(
                asked[0]
                    .1
                    .starts_with("GET /hosts.txt HTTP/1.1\r\nHost: reg.i2p\r\n"),
                "{}",
                asked[0].1
            );
            assert!(!asked[0].1.contains("If-None-Match"));
        }
        let saved = AddressBook::load(&super::super::book::subscribed_book_path(dir.path()))
            .unwrap()
            .0;
        assert!(saved.get("a.i2p").is_some(), "written to subscriptions.txt");
        // The next round sends the ETag it was given, hears 304, and keeps the names.
        assert_eq!(subs.refresh().await.unwrap(), 0);
        let asked = feeds.asked.lock().unwrap();
        assert!(
            asked[2].1.contains("If-None-Match: \"v1\"\r\n"),
            "{}",
            asked[2].1
        );
        assert!(books.subscribed("a.i2p").is_some());
    }

    #[test]
    fn names_no_feed_lists_expire() {
        let d = |fill: u8| {
            let mut v = vec![fill; 384];
            v.extend_from_slice(&[5, 0, 4, 0, 7, 0, 4]);
            crate::destination::base64_encode(&v)
        };
        let (mut book, _) = AddressBook::parse(&format!(
            "old.i2p={}\nfresh.i2p={}\nlegacy.i2p={}\n",
            d(1),
            d(2),
            d(3)
        ));
        let mut seen = std::collections::HashMap::new();
        seen.insert("old.i2p".to_string(), 100);
        seen.insert("fresh.i2p".to_string(), 125);
        seen.insert("gone-already.i2p".to_string(), 125);
        assert_eq!(expire(&mut book, &mut seen, 131, 30), 1);
        assert!(book.get("old.i2p").is_none());
        assert!(book.get("fresh.i2p").is_some());
        assert!(
            book.get("legacy.i2p").is_some(),
            "unknown age: kept, clock starts now"
        );
        assert_eq!(seen.get("legacy.i2p"), Some(&131));
        assert!(!seen.contains_key("gone-already.i2p"));
        assert_eq!(expire(&mut book, &mut seen, 155, 30), 0);
        assert_eq!(
            expire(&mut book, &mut seen, 156, 30),
            1,
            "fresh.i2p, 31 days on"
        );
        assert!(book.get("legacy.i2p").is_some());
        assert_eq!(expire(&mut book, &mut seen, 162, 30), 1);
        assert!(book.is_empty());
    }
}
