//! Address-book subscriptions: hosts.txt files at URLs inside I2P, fetched through
//! eepsocks' own router connection (a separate, transient identity, so refreshing the book
//! is not linked to any listener's traffic), with conditional GET (ETag / Last-Modified),
//! merged into `subscriptions.txt` (written atomically). A name, once learned, keeps its
//! destination; names in the user's own book always win at lookup.

use super::http::{parse_response, parse_url, Validators};
use super::{AddressBook, Books, Target};
use crate::fsutil;
use crate::i2p::identity::{self, Template};
use crate::i2p::keyfile::{self, KeySource};
use crate::i2p::sam::Session;
use anyhow::{anyhow, bail, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

    /// One round: a transient session, a conditional GET per URL, merge, store.
    pub async fn refresh(&self) -> Result<usize> {
        let keys = keyfile::obtain(
            &KeySource::Transient,
            &self.template.sam_addr,
            self.template.sig_type,
        )
        .await?;
        let session =
            identity::fixed_session("eepsocks-subscriptions", keys.into(), &self.template, None);
        // A listener-style session fails streams at once while it is created: wait for it.
        match tokio::time::timeout(self.timeout, session.wait_until_up()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => bail!("no session for the subscriptions: {e}"),
            Err(_) => bail!("no session for the subscriptions within {:?}", self.timeout),
        }
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
        session: &Session,
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
                None => session.lookup(n).await?.to_base64(),
            },
        };
        let (mut s, early) = session.connect(&dest, u.port, None).await?;
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

    #[test]
    fn names_no_feed_lists_expire() {
        let d = |fill: u8| {
            let mut v = vec![fill; 384];
            v.extend_from_slice(&[5, 0, 4, 0, 7, 0, 4]);
            crate::i2p::format::base64_encode(&v)
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
