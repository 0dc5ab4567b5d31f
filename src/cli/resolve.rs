//! `eepsocks resolve NAME`: the user's address book, then the router's (sessionless).

use super::addressbook::{book_path, load_book};
use crate::config::Config;
use crate::i2p::sam::SamSocket;
use crate::naming::{self, Target};
use anyhow::{bail, Result};

pub async fn resolve(cfg: &Config, name: &str) -> Result<()> {
    // A full base64 destination stands for itself.
    if name.len() >= 516 && !name.contains('.') {
        let d = crate::i2p::Destination::from_base64(name)?;
        println!("{}\n{}", d.b32(), d.to_base64());
        return Ok(());
    }
    let target = naming::classify(&naming_address(name)).map_err(|e| anyhow::anyhow!("{e}"))?;
    match target {
        Target::B32(b) | Target::B33(b) => {
            println!("{b}");
            Ok(())
        }
        Target::Name(n) => {
            match load_book(cfg)?.get(&n) {
                Some(naming::Entry::Dest(d)) => {
                    println!("{}\n{}", d.b32(), d.to_base64());
                    return Ok(());
                }
                Some(naming::Entry::B32(b)) => {
                    println!("{b}");
                    return Ok(());
                }
                None => {}
            }
            // Not ours: ask the router's address book (sessionless lookup).
            match router_lookup(&cfg.sam, &n).await? {
                Ok(d) => {
                    println!("{}\n{}", d.b32(), d.to_base64());
                    Ok(())
                }
                Err(res) => bail!(
                    "{n}: not in the address book ({}) nor the router's ({res})",
                    book_path(cfg).display(),
                ),
            }
        }
    }
}

/// A sessionless NAMING LOOKUP of `name` (a name or a b32) on the SAM bridge at `sam`:
/// the destination, or the router's RESULT when it has none.
pub(super) async fn router_lookup(
    sam: &str,
    name: &str,
) -> Result<std::result::Result<crate::i2p::Destination, String>> {
    let mut c = SamSocket::connect(sam)
        .await
        .map_err(|e| super::errors::sam_error(sam, e))?;
    // A b32 needs a LeaseSet lookup on the network: seconds, rarely a minute.
    let limit = std::time::Duration::from_secs(60);
    let r = tokio::time::timeout(limit, c.command(&format!("NAMING LOOKUP NAME={name}")))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "the router at {sam} did not answer NAMING LOOKUP within {} s",
                limit.as_secs()
            )
        })??;
    Ok(match (r.get("RESULT"), r.get("VALUE")) {
        (Some("OK"), Some(v)) => Ok(crate::i2p::Destination::from_base64(v)?),
        (res, _) => Err(res.unwrap_or("no result").to_string()),
    })
}

fn naming_address(name: &str) -> crate::socks::Address {
    crate::socks::Address::Name(name.to_string())
}
