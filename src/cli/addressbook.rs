//! `eepsocks addressbook ...`: the user's address book (hosts.txt format).

use crate::config::Config;
use crate::naming::AddressBook;
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum BookCmd {
    /// List names and their b32 addresses.
    List,
    /// Add or replace a name: NAME BASE64-DESTINATION (or b32).
    Add {
        name: String,
        /// I2P base64 may begin with '-'; it is a value, not a flag.
        #[arg(allow_hyphen_values = true)]
        destination: String,
    },
    /// Remove a name.
    Remove { name: String },
    /// Merge a hosts.txt file, or i2pd's addresses.csv (names already in the book are kept).
    Import { file: PathBuf },
}

pub fn addressbook(cfg: &Config, c: BookCmd) -> Result<()> {
    let path = book_path(cfg);
    let mut book = load_book(cfg)?;
    match c {
        BookCmd::List => {
            for (n, d) in book.iter() {
                println!("{n} {}", d.b32());
            }
        }
        BookCmd::Add { name, destination } => {
            book.insert(&name, &destination)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            book.save(&path)?;
        }
        BookCmd::Remove { name } => {
            if !book.remove(&name) {
                bail!("{name} is not in the address book");
            }
            book.save(&path)?;
        }
        BookCmd::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            // i2pd's addresses.csv (name,b32) or hosts.txt (name=base64)
            let csv = file.extension().is_some_and(|e| e == "csv");
            let (new, warnings) = if csv {
                AddressBook::parse_csv(&text)
            } else {
                AddressBook::parse(&text)
            };
            for w in &warnings {
                eprintln!("{}: {w} (skipped)", file.display());
            }
            let mut added = 0;
            for (n, d) in new.iter() {
                // Names the user already has are theirs: never replaced by an import.
                added += book.add_new(n, d) as usize;
            }
            book.save(&path)?;
            println!(
                "{added} names added, {} already present, {} lines skipped",
                new.len() - added,
                warnings.len()
            );
        }
    }
    Ok(())
}

/// The user's address book file.
pub(super) fn book_path(cfg: &crate::config::Config) -> PathBuf {
    crate::naming::book::user_book_path(&cfg.data_dir())
}

pub(super) fn load_book(cfg: &crate::config::Config) -> Result<crate::naming::AddressBook> {
    crate::naming::AddressBook::load_logged(&book_path(cfg))
}
