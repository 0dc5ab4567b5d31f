//! `eepsocks import-config`: an i2pd or Java I2P tunnel config as an eepsocks config.

use anyhow::{bail, Context, Result};
use std::path::Path;

pub fn import_config(file: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let imported = crate::config::import::detect(&text);
    if imported.listeners.is_empty() {
        bail!("{}: no SOCKS proxy found", file.display());
    }
    for n in &imported.notes {
        eprintln!("note: {n}");
    }
    print!("{}", imported.to_toml());
    Ok(())
}
