//! `eepsocks keys ...`: key files in the i2pd / Java I2P layout (private keys never shown).

use crate::config::Config;
use crate::i2p::keyfile;
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum KeysCmd {
    /// Show a key file's b32 address and key types (never the private keys).
    Show { file: PathBuf },
    /// Create a new key file through the router (never overwrites).
    Generate { file: PathBuf },
    /// Copy a listener's key file (NAME.dat in the data directory) out to FILE, for i2pd
    /// or Java I2P (same binary layout). Never overwrites.
    Export {
        file: PathBuf,
        #[arg(long, default_value = "eepsocks")]
        name: String,
    },
    /// Copy an i2pd / Java I2P key file into the data directory as NAME.dat (the identity
    /// of the listener NAME), keeping its b32.
    Import {
        file: PathBuf,
        #[arg(long, default_value = "eepsocks")]
        name: String,
    },
}

pub async fn keys(cfg: &Config, c: KeysCmd) -> Result<()> {
    match c {
        KeysCmd::Show { file } => {
            let k =
                keyfile::load(&file)?.with_context(|| format!("{} not found", file.display()))?;
            show(&k);
        }
        KeysCmd::Generate { file } => {
            if file.exists() {
                bail!("{} exists; not overwriting it", file.display());
            }
            let k = crate::i2p::sam::generate_keys(&cfg.sam, cfg.signature_type)
                .await
                .map_err(|e| super::errors::sam_error(&cfg.sam, e))?;
            keyfile::store_new(&file, &k)?;
            show(&k);
        }
        KeysCmd::Export { file, name } => {
            let src = cfg.data_dir().join(format!("{name}.dat"));
            let k = keyfile::load(&src)?.with_context(|| format!("{} not found", src.display()))?;
            keyfile::store_new(&file, &k)?;
            println!("exported to {}", file.display());
            show(&k);
        }
        KeysCmd::Import { file, name } => {
            let k =
                keyfile::load(&file)?.with_context(|| format!("{} not found", file.display()))?;
            let dest = cfg.data_dir().join(format!("{name}.dat"));
            keyfile::store_new(&dest, &k)?;
            println!("imported as {}", dest.display());
            show(&k);
        }
    }
    Ok(())
}

fn show(k: &crate::i2p::PrivateKeys) {
    let d = k.destination();
    println!("{}", d.b32());
    println!(
        "signature type {}, encryption type {}",
        d.sig_type, d.crypto_type
    );
}
