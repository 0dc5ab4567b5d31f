//! `eepsocks hash-password`: the value to store for a login in `[proxy.auth]`.

use crate::config::password::{Stored, ROUNDS};
use anyhow::{bail, Result};

pub fn hash_password() -> Result<()> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let pw = line.strip_suffix('\n').unwrap_or(&line);
    let pw = pw.strip_suffix('\r').unwrap_or(pw);
    if pw.is_empty() || pw.len() > 255 {
        bail!("a password of 1 to 255 bytes on stdin (SOCKS5 logins are at most 255)");
    }
    println!("{}", Stored::hash_new(pw.as_bytes(), ROUNDS)?);
    Ok(())
}
