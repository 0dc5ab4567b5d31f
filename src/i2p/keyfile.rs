//! Persistent identity: the destination's private keys in a key file (i2pd / Java I2P
//! binary layout), mode 0600, written atomically and never replaced.

use crate::destination::PrivateKeys;
use crate::i2p::sam;
use anyhow::{bail, Context, Result};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;
use tracing::{info, warn};

/// Read a key file. `Ok(None)` when it does not exist; an error for anything unreadable or
/// malformed, so a damaged identity is never silently swapped for a new one.
pub fn load(path: &Path) -> Result<Option<PrivateKeys>> {
    let raw = match fs::read(path) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read key file {}", path.display()))
        }
    };
    let keys = PrivateKeys::from_bytes(raw).with_context(|| {
        format!(
            "key file {} is not a valid I2P private-key file; refusing to replace it \
             (move it away to get a new identity)",
            path.display()
        )
    })?;
    if let Ok(meta) = fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            warn!(
                "key file {} is readable by other users (mode {:o}); chmod 600 it",
                path.display(),
                meta.permissions().mode() & 0o777
            );
        }
    }
    Ok(Some(keys))
}

/// Write a new key file (0600, atomically); fails if the file exists: an identity is
/// never overwritten.
pub fn store_new(path: &Path, keys: &PrivateKeys) -> Result<()> {
    crate::fsutil::write_new(path, keys.as_bytes()).with_context(|| {
        format!(
            "cannot create key file {} (does it exist already?)",
            path.display()
        )
    })
}

/// Where keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// New keys every start, never written anywhere.
    Transient,
    /// The key file at this path; created through the router on first start.
    File(std::path::PathBuf),
}

/// Load or create the identity. Creation asks the router (SAM `DEST GENERATE`) and waits,
/// with backoff, while the router is not up yet.
pub async fn obtain(source: &KeySource, sam_addr: &str, sig_type: u16) -> Result<PrivateKeys> {
    if let KeySource::File(path) = source {
        if let Some(k) = load(path)? {
            info!("identity loaded from {}", path.display());
            return Ok(k);
        }
    }
    let mut wait = Duration::from_millis(500);
    let keys = loop {
        match sam::generate_keys(sam_addr, sig_type).await {
            Ok(k) => break k,
            Err(e @ sam::SamError::Io(_)) => {
                warn!(
                    "{e} (at {sam_addr}); retrying in {:.1} s",
                    wait.as_secs_f32()
                );
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(15));
            }
            Err(e) => bail!("the router could not generate keys: {e}"),
        }
    };
    if let KeySource::File(path) = source {
        store_new(path, &keys)?;
        info!("new identity saved to {}", path.display());
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PrivateKeys {
        let mut v = vec![7u8; 384];
        v.extend_from_slice(&[5, 0, 4, 0, 7, 0, 0]);
        v.extend(std::iter::repeat_n(1, 256 + 32));
        PrivateKeys::from_bytes(v).unwrap()
    }

    #[test]
    fn store_load_round_trip_0600_and_no_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/id.dat");
        assert!(load(&p).unwrap().is_none());
        let k = sample();
        store_new(&p, &k).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(load(&p).unwrap().unwrap(), k);
        let err = store_new(&p, &k).unwrap_err();
        assert!(format!("{err:#}").contains("exist"), "{err:#}");
        // no temp files left behind
        assert_eq!(fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn corrupt_key_file_is_an_error_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("id.dat");
        fs::write(&p, b"not a key file").unwrap();
        let err = load(&p).unwrap_err();
        assert!(
            format!("{err:#}").contains("refusing to replace"),
            "{err:#}"
        );
        assert_eq!(fs::read(&p).unwrap(), b"not a key file");
    }
}
