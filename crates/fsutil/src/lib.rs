//! The one way eepsocks writes files: a private (0600) temp file beside the target, written
//! and fsynced, then moved into place, then the directory fsynced. A crash leaves the old
//! file or the new one, never half of either, and a failure leaves no temp file behind.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Whether to fsync: keys and books must survive a crash; caches that can be fetched again
/// (netDb entries) need not pay for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    Durable,
    Cache,
}

/// Replace `path` atomically with `data` (mode 0600).
pub fn write_replace(path: &Path, data: &[u8], sync: Sync) -> io::Result<()> {
    write_replace_mode(path, data, sync, 0o600)
}

/// Replace `path` atomically with `data`, with file mode `mode` (e.g. 0644 for a file that
/// holds nothing secret and that other users read). The mode is set on the temp file, so
/// the file never appears with another one.
pub fn write_replace_mode(path: &Path, data: &[u8], sync: Sync, mode: u32) -> io::Result<()> {
    let (tmp, dir) = write_temp(path, data, sync, mode)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(with_path(e, "cannot replace", path));
    }
    if sync == Sync::Durable {
        sync_dir(dir);
    }
    Ok(())
}

/// Create `path` with `data` (mode 0600); fails with `AlreadyExists` if it exists, so
/// nothing is ever overwritten (key files).
pub fn write_new(path: &Path, data: &[u8]) -> io::Result<()> {
    let (tmp, dir) = write_temp(path, data, Sync::Durable, 0o600)?;
    // A hard link fails if the name exists, where a rename would replace it.
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    linked.map_err(|e| with_path(e, "cannot create", path))?;
    sync_dir(dir);
    Ok(())
}

/// Create `dir` and any missing parents, mode 0700: others must not even list key files
/// (per-user key files' names and times say who used the proxy when). Existing directories
/// are left as they are.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| with_path(e, "cannot create", dir))
}

fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

fn write_temp<'a>(
    path: &'a Path,
    data: &[u8],
    sync: Sync,
    mode: u32,
) -> io::Result<(PathBuf, &'a Path)> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    // A temp file of ours from a crashed run with the same pid.
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| with_path(e, "cannot create", &tmp))?;
    // Created private; widened only on purpose, and explicitly, since the umask would
    // narrow the mode given to open.
    let res = if mode == 0o600 {
        Ok(())
    } else {
        f.set_permissions(fs::Permissions::from_mode(mode))
    };
    let res = res
        .and_then(|_| f.write_all(data))
        .and_then(|_| match sync {
            Sync::Durable => f.sync_all(),
            Sync::Cache => Ok(()),
        });
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok((tmp, dir))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn public_mode_despite_umask() {
        // The systemd unit runs with UMask=0077; a public file must still be 0644.
        let old = unsafe { libc::umask(0o077) };
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ports.json");
        let r = write_replace_mode(&p, b"{}", Sync::Cache, 0o644);
        unsafe { libc::umask(old) };
        r.unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }

    #[test]
    fn private_dirs() {
        // Every level created is 0700 (not umask's 0755); an existing one is left alone.
        let d = tempfile::tempdir().unwrap();
        let deep = d.path().join("a/b/c");
        create_private_dir(&deep).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        for p in [d.path().join("a"), d.path().join("a/b"), deep.clone()] {
            assert_eq!(mode(&p), 0o700, "{}", p.display());
        }
        fs::set_permissions(&deep, fs::Permissions::from_mode(0o750)).unwrap();
        create_private_dir(&deep).unwrap();
        assert_eq!(mode(&deep), 0o750);
    }

    #[test]
    fn replace_and_new() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/f");
        write_replace(&p, b"one", Sync::Durable).unwrap();
        write_replace(&p, b"two", Sync::Cache).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let sub = fs::metadata(d.path().join("sub")).unwrap();
        assert_eq!(
            sub.permissions().mode() & 0o777,
            0o700,
            "new directories are private"
        );
        let e = write_new(&p, b"three").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let q = d.path().join("sub/g");
        write_new(&q, b"new").unwrap();
        assert_eq!(fs::read(&q).unwrap(), b"new");
        // No temp files left behind, failures included.
        assert_eq!(fs::read_dir(d.path().join("sub")).unwrap().count(), 2);
    }

    #[test]
    fn failed_rename_leaves_no_temp_file() {
        let d = tempfile::tempdir().unwrap();
        // A directory cannot be replaced by a file.
        let p = d.path().join("dir");
        fs::create_dir(&p).unwrap();
        fs::write(p.join("x"), b"").unwrap();
        assert!(write_replace(&p, b"data", Sync::Durable).is_err());
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("dir")]);
    }
}
