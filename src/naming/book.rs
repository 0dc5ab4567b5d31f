//! Address books: the user's (hosts.txt, or i2pd's addresses.csv on import) and the one
//! merged from subscriptions, and the order names are looked up in.

use super::policy::{classify, Target};
use crate::fsutil;
use crate::socks::Address;
use std::sync::RwLock;

/// The user's address book: hosts.txt format (`name=base64destination`, optionally followed
/// by `#!key=value#...` registration metadata, which is ignored; `#` and `;` start comments).
/// Looked up before the router's own naming.
#[derive(Debug, Default, Clone)]
pub struct AddressBook {
    entries: std::collections::BTreeMap<String, Entry>,
}

/// What a name stands for: a full destination (hosts.txt), or only its hash (i2pd's
/// `addresses.csv` keeps `name,b32`), which the router resolves with a LeaseSet lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dest(crate::destination::Destination),
    B32(String),
}

impl Entry {
    pub fn b32(&self) -> String {
        match self {
            Entry::Dest(d) => d.b32(),
            Entry::B32(b) => b.clone(),
        }
    }

    /// The form SAM's `STREAM CONNECT DESTINATION=` takes.
    pub fn sam_dest(&self) -> String {
        match self {
            Entry::Dest(d) => d.to_base64(),
            Entry::B32(b) => b.clone(),
        }
    }
}

impl AddressBook {
    /// Parse hosts.txt text. Bad lines are skipped; each gives a warning naming its line.
    pub fn parse(text: &str) -> (AddressBook, Vec<String>) {
        let mut book = AddressBook::default();
        let mut warnings = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() || line.starts_with(';') {
                continue;
            }
            let Some((name, dest)) = line.split_once('=') else {
                warnings.push(format!(
                    "line {}: no '=' between name and destination",
                    i + 1
                ));
                continue;
            };
            if let Err(e) = book.insert(name.trim(), dest.trim()) {
                warnings.push(format!("line {}: {e}", i + 1));
            }
        }
        (book, warnings)
    }

    /// Load a book file; a missing file is an empty book.
    /// `load`, with each skipped line logged as a warning.
    pub fn load_logged(path: &std::path::Path) -> anyhow::Result<AddressBook> {
        let (book, warnings) = AddressBook::load(path)?;
        for w in warnings {
            tracing::warn!("address book {}: {w} (skipped)", path.display());
        }
        Ok(book)
    }

    pub fn load(path: &std::path::Path) -> anyhow::Result<(AddressBook, Vec<String>)> {
        match std::fs::read_to_string(path) {
            Ok(t) => Ok(AddressBook::parse(&t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
            Err(e) => Err(anyhow::anyhow!(
                "cannot read address book {}: {e}",
                path.display()
            )),
        }
    }

    /// Parse i2pd's `addresses.csv` (`name,b32` per line).
    pub fn parse_csv(text: &str) -> (AddressBook, Vec<String>) {
        let mut book = AddressBook::default();
        let mut warnings = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, hash)) = line.split_once(',') else {
                warnings.push(format!("line {}: no ',' between name and address", i + 1));
                continue;
            };
            let hash = hash.trim();
            let b32 = if hash.ends_with(".b32.i2p") {
                hash.to_string()
            } else {
                format!("{hash}.b32.i2p")
            };
            if let Err(e) = book.insert(name.trim(), &b32) {
                warnings.push(format!("line {}: {e}", i + 1));
            }
        }
        (book, warnings)
    }

    /// Add or replace a name. The name must be a plain `.i2p` host name (not a b32); the
    /// value a base64 destination or a b32 address.
    pub fn insert(&mut self, name: &str, dest_b64: &str) -> Result<(), String> {
        let name = match classify(&Address::Name(name.to_string())) {
            Ok(Target::Name(n)) => n,
            Ok(_) => {
                return Err(format!(
                    "{name:?}: b32 addresses need no address-book entry"
                ))
            }
            Err(e) => return Err(format!("{name:?}: {e}")),
        };
        let entry = if dest_b64.to_ascii_lowercase().ends_with(".b32.i2p") {
            match classify(&Address::Name(dest_b64.to_string())) {
                Ok(Target::B32(b)) => Entry::B32(b),
                _ => return Err(format!("{name}: {dest_b64:?} is not a valid b32 address")),
            }
        } else {
            Entry::Dest(
                crate::destination::Destination::from_base64(dest_b64)
                    .map_err(|e| format!("{name}: destination is {e}"))?,
            )
        };
        self.entries.insert(name, entry);
        Ok(())
    }

    /// Add an entry taken from another book (already validated there) if the name is new.
    /// Returns whether it was added: names already present are never replaced.
    pub fn add_new(&mut self, name: &str, entry: &Entry) -> bool {
        if self.entries.contains_key(name) {
            return false;
        }
        self.entries.insert(name.to_string(), entry.clone());
        true
    }

    pub fn remove(&mut self, name: &str) -> bool {
        self.entries.remove(&name.to_ascii_lowercase()).is_some()
    }

    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.get(name)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.entries.iter()
    }

    pub fn to_hosts_txt(&self) -> String {
        let mut s = String::from("# eepsocks address book (hosts.txt format)\n");
        for (n, d) in &self.entries {
            // hash-only entries are written as a b32: eepsocks' own extension, read back above
            s += &format!("{n}={}\n", d.sam_dest());
        }
        s
    }

    /// Write the book atomically (temp file, fsync, rename), mode 0600.
    pub fn save(&self, path: &std::path::Path) -> anyhow::Result<()> {
        fsutil::write_replace(path, self.to_hosts_txt().as_bytes(), fsutil::Sync::Durable)
            .map_err(Into::into)
    }
}

/// The user's own book in the data directory.
pub fn user_book_path(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("addressbook.txt")
}

/// The book merged from subscriptions, in the data directory.
pub fn subscribed_book_path(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("subscriptions.txt")
}

impl Books {
    /// Read both books again from the data directory (start, reload).
    pub fn load(&self, data_dir: &std::path::Path) -> anyhow::Result<()> {
        let user = AddressBook::load_logged(&user_book_path(data_dir))?;
        let subscribed = AddressBook::load_logged(&subscribed_book_path(data_dir))?;
        *self
            .user
            .write()
            .map_err(|_| anyhow::anyhow!("address book lock poisoned"))? = user;
        *self
            .subscribed
            .write()
            .map_err(|_| anyhow::anyhow!("address book lock poisoned"))? = subscribed;
        Ok(())
    }
}

/// The user's book and the merged subscriptions (looked up before and after the router's,
/// see `i2p::sam_router`).
#[derive(Default)]
pub struct Books {
    pub user: RwLock<AddressBook>,
    pub subscribed: RwLock<AddressBook>,
}

impl Books {
    /// The user's own entry for `name`.
    pub fn user(&self, name: &str) -> Option<Entry> {
        self.user.read().ok().and_then(|b| b.get(name).cloned())
    }

    /// What the subscriptions say, for names neither the user's book nor the router's
    /// knows: a feed must not redirect a name the router already has.
    pub fn subscribed(&self, name: &str) -> Option<Entry> {
        self.subscribed
            .read()
            .ok()
            .and_then(|b| b.get(name).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const H: &str = "ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq";

    fn dest_b64(fill: u8) -> String {
        let mut v = vec![fill; 384];
        v.extend_from_slice(&[5, 0, 4, 0, 7, 0, 4]);
        crate::destination::base64_encode(&v)
    }

    #[test]
    fn hosts_txt_parsing() {
        let d = dest_b64(1);
        let text = format!(
            "# comment\n\nforum.i2p={d}\nstats.i2p={d}#!sig=abc#date=1\n; old comment\n\
             broken line\nbad name.i2p={d}\nx.i2p=notbase64!!\n{}.b32.i2p={d}\nexample.com={d}\n\
             #!action=remove#name=old.i2p\nUPPER.I2P={d}\n",
            H
        );
        let (book, warnings) = AddressBook::parse(&text);
        assert_eq!(book.len(), 3, "{warnings:?}");
        assert!(book.get("forum.i2p").is_some());
        assert!(book.get("stats.i2p").is_some());
        assert!(book.get("upper.i2p").is_some());
        assert_eq!(warnings.len(), 5, "{warnings:?}");
        assert!(warnings[0].starts_with("line 6:"), "{warnings:?}");
        assert!(warnings[1].starts_with("line 7:") && warnings[1].contains("only letters"));
        assert!(warnings[2].starts_with("line 8:") && warnings[2].contains("base64"));
        assert!(warnings[3].contains("b32"));
        assert!(warnings[4].contains("not an I2P name"));
        let (again, w2) = AddressBook::parse(&book.to_hosts_txt());
        assert!(w2.is_empty());
        assert_eq!(again.len(), 3);
    }

    #[test]
    fn addresses_csv() {
        let (book, warnings) = AddressBook::parse_csv(&format!(
            "forum.i2p,{H}\nbad line\nx.i2p,notb32\nstats.i2p,{H}.b32.i2p\n"
        ));
        assert_eq!(book.len(), 2, "{warnings:?}");
        assert_eq!(
            book.get("forum.i2p"),
            Some(&Entry::B32(format!("{H}.b32.i2p")))
        );
        assert_eq!(warnings.len(), 2);
        // hash-only entries survive a save and load
        let (again, w) = AddressBook::parse(&book.to_hosts_txt());
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            again.get("stats.i2p").unwrap().b32(),
            format!("{H}.b32.i2p")
        );
    }

    #[test]
    fn book_save_is_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("addressbook.txt");
        let mut b = AddressBook::default();
        b.insert("a.i2p", &dest_b64(2)).unwrap();
        b.save(&p).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (l, _) = AddressBook::load(&p).unwrap();
        assert_eq!(l.len(), 1);
        // merging never replaces a name that is already there
        let (other, _) =
            AddressBook::parse(&format!("a.i2p={}\nb.i2p={}\n", dest_b64(3), dest_b64(3)));
        let before = b.get("a.i2p").cloned();
        let added: usize = other.iter().map(|(n, e)| b.add_new(n, e) as usize).sum();
        assert_eq!(added, 1);
        assert_eq!(b.get("a.i2p").cloned(), before);
        assert!(b.remove("A.I2P"));
    }
}
