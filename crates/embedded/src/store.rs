//! The embedded router's data directory: its keys, its own RouterInfo (so its hash stays
//! the same), its transport ports, the netDb and peer profiles. emissary-core keeps none of
//! this itself; the host has to.
//!
//! Layout: `router.keys` (176 bytes: static, signing, NTCP2 key + IV, SSU2 static + intro
//! key), `router.info`, `ports` (`ntcp2=N` lines), `netDb/routerInfo-<hash>.dat`,
//! `profiles.txt`.

use anyhow::{Context, Result};
use eepsocks_fsutil as fsutil;
use emissary_core::Profile;
use rand::RngExt;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Keys {
    pub static_key: [u8; 32],
    pub signing_key: [u8; 32],
    pub ntcp2_key: [u8; 32],
    pub ntcp2_iv: [u8; 16],
    pub ssu2_static: [u8; 32],
    pub ssu2_intro: [u8; 32],
}

const KEYS_LEN: usize = 32 * 5 + 16;

impl Keys {
    fn random() -> Keys {
        let mut b = [0u8; KEYS_LEN];
        rand::rng().fill(&mut b[..]);
        Keys::from_bytes(&b)
    }

    fn from_bytes(b: &[u8; KEYS_LEN]) -> Keys {
        let k32 = |at: usize| -> [u8; 32] { b[at..at + 32].try_into().unwrap_or([0; 32]) };
        Keys {
            static_key: k32(0),
            signing_key: k32(32),
            ntcp2_key: k32(64),
            ntcp2_iv: b[96..112].try_into().unwrap_or([0; 16]),
            ssu2_static: k32(112),
            ssu2_intro: k32(144),
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        [
            &self.static_key[..],
            &self.signing_key,
            &self.ntcp2_key,
            &self.ntcp2_iv,
            &self.ssu2_static,
            &self.ssu2_intro,
        ]
        .concat()
    }
}

/// Write `bytes` to `path` atomically, mode 0600, durably (keys, router info, profiles).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    fsutil::write_replace(path, bytes, fsutil::Sync::Durable)?;
    Ok(())
}

#[derive(Clone)]
pub struct Store {
    pub dir: PathBuf,
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store> {
        fsutil::create_private_dir(&dir.join("netDb"))?;
        Ok(Store { dir: dir.into() })
    }

    /// The router's keys, created on first use. A file of the wrong size is an error, not
    /// a reason to make a new identity behind the user's back.
    pub fn keys(&self) -> Result<Keys> {
        let p = self.dir.join("router.keys");
        match fs::read(&p) {
            Ok(b) => {
                let b: [u8; KEYS_LEN] = b.as_slice().try_into().map_err(|_| {
                    anyhow::anyhow!(
                        "{} is {} bytes, not {KEYS_LEN}: damaged? (move it away to make new router keys)",
                        p.display(),
                        b.len()
                    )
                })?;
                Ok(Keys::from_bytes(&b))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let k = Keys::random();
                // A RouterInfo left from other keys would be signed with the wrong key.
                let _ = fs::remove_file(self.dir.join("router.info"));
                write_atomic(&p, &k.to_bytes())?;
                Ok(k)
            }
            Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
        }
    }

    /// The saved RouterInfo, if it parses (emissary panics on a damaged one).
    pub fn router_info(&self) -> Option<Vec<u8>> {
        let b = fs::read(self.dir.join("router.info")).ok()?;
        if crate::router_name(&b).is_none() {
            tracing::warn!("embedded router: router.info is damaged; making a new one");
            return None;
        }
        Some(b)
    }

    pub fn save_router_info(&self, ri: &[u8]) -> Result<()> {
        write_atomic(&self.dir.join("router.info"), ri)
    }

    /// Saved transport port (`ntcp2` or `ssu2`), so peers find the router where it was.
    pub fn port(&self, transport: &str) -> Option<u16> {
        let text = fs::read_to_string(self.dir.join("ports")).ok()?;
        text.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == transport)
            .and_then(|(_, v)| v.trim().parse().ok())
    }

    pub fn save_ports(&self, ports: &[(&str, u16)]) -> Result<()> {
        let text: String = ports.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        write_atomic(&self.dir.join("ports"), text.as_bytes())
    }

    /// Every RouterInfo file in netDb/ (files over 64 KiB are not RouterInfos).
    pub fn routers(&self) -> Vec<Vec<u8>> {
        let Ok(rd) = fs::read_dir(self.dir.join("netDb")) else {
            return Vec::new();
        };
        rd.filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".dat"))
            .filter(|e| e.metadata().is_ok_and(|m| m.len() <= 64 << 10))
            .filter_map(|e| fs::read(e.path()).ok())
            .collect()
    }

    /// Store one RouterInfo under its hash. Names come from the router or from a reseed
    /// file, so anything but the I2P base64 alphabet is refused rather than used in a path.
    pub fn save_router(&self, name: &str, ri: &[u8]) -> Result<()> {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'~' || b == b'=')
        {
            anyhow::bail!("bad router name");
        }
        write_atomic(
            &self
                .dir
                .join("netDb")
                .join(format!("routerInfo-{name}.dat")),
            ri,
        )
    }

    pub fn profiles(&self) -> Vec<(String, Profile)> {
        let Ok(text) = fs::read_to_string(self.dir.join("profiles.txt")) else {
            return Vec::new();
        };
        text.lines().filter_map(parse_profile).collect()
    }

    pub fn save_profiles(&self, all: &[(String, Profile)]) -> Result<()> {
        let text: String = all.iter().map(|(n, p)| format_profile(n, p)).collect();
        write_atomic(&self.dir.join("profiles.txt"), text.as_bytes())
    }
}

/// One line: name, then the profile's numbers in a fixed order (seconds for times, `-` for
/// none).
fn format_profile(name: &str, p: &Profile) -> String {
    let opt = |d: Option<Duration>| d.map_or("-".to_string(), |d| d.as_secs().to_string());
    format!(
        "{name} {} {} {} {} {} {} {} {} {} {} {} {} {} {}\n",
        p.last_activity.as_secs(),
        opt(p.last_declined),
        opt(p.last_dial_failure),
        p.num_accepted,
        p.num_connection,
        p.num_dial_failures,
        p.num_lookup_failures,
        p.num_lookup_no_responses,
        p.num_lookup_successes,
        p.num_rejected,
        p.num_selected,
        p.num_test_failures,
        p.num_test_successes,
        p.num_unaswered,
    )
}

fn parse_profile(line: &str) -> Option<(String, Profile)> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() != 15 {
        return None;
    }
    let n = |i: usize| f[i].parse::<usize>().ok();
    let secs = |i: usize| -> Option<Option<Duration>> {
        match f[i] {
            "-" => Some(None),
            s => s.parse().ok().map(|s| Some(Duration::from_secs(s))),
        }
    };
    Some((
        f[0].to_string(),
        Profile {
            last_activity: Duration::from_secs(f[1].parse().ok()?),
            last_declined: secs(2)?,
            last_dial_failure: secs(3)?,
            num_accepted: n(4)?,
            num_connection: n(5)?,
            num_dial_failures: n(6)?,
            num_lookup_failures: n(7)?,
            num_lookup_no_responses: n(8)?,
            num_lookup_successes: n(9)?,
            num_rejected: n(10)?,
            num_selected: n(11)?,
            num_test_failures: n(12)?,
            num_test_successes: n(13)?,
            num_unaswered: n(14)?,
        },
    ))
}

/// emissary-core hands its netDb and profiles over every 15 minutes.
pub struct Saver(pub Store);

impl emissary_core::runtime::Storage for Saver {
    fn save_to_disk(&self, routers: Vec<(String, Option<Vec<u8>>, Profile)>) {
        // Called inside a router task: do the file work on a blocking thread.
        let store = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let mut profiles = Vec::with_capacity(routers.len());
            for (name, ri, profile) in routers {
                if let Some(ri) = ri {
                    let _ = store.save_router(&name, &ri);
                }
                profiles.push((name, profile));
            }
            if let Err(e) = store.save_profiles(&profiles) {
                tracing::warn!("embedded router: profiles not saved: {e:#}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_line_round_trip() {
        let p = Profile {
            last_activity: Duration::from_secs(1_700_000_000),
            last_declined: None,
            last_dial_failure: Some(Duration::from_secs(5)),
            num_accepted: 1,
            num_connection: 2,
            num_dial_failures: 3,
            num_lookup_failures: 4,
            num_lookup_no_responses: 5,
            num_lookup_successes: 6,
            num_rejected: 7,
            num_selected: 8,
            num_test_failures: 9,
            num_test_successes: 10,
            num_unaswered: 11,
        };
        let line = format_profile("abc~-", &p);
        assert_eq!(parse_profile(line.trim_end()), Some(("abc~-".into(), p)));
        assert_eq!(parse_profile("abc 1 2"), None);
    }

    #[test]
    fn keys_persist_and_bad_names_refused() {
        let d = std::env::temp_dir().join(format!("eepsocks-store-{}", std::process::id()));
        let s = Store::open(&d).unwrap();
        let a = s.keys().unwrap().to_bytes();
        assert_eq!(a, s.keys().unwrap().to_bytes());
        assert!(s.save_router("../x", b"ri").is_err());
        s.save_router("AbC-~", b"ri").unwrap();
        assert_eq!(s.routers(), vec![b"ri".to_vec()]);
        // Not a RouterInfo: ignored rather than handed to emissary (which would panic).
        fs::write(d.join("router.info"), b"junk").unwrap();
        assert_eq!(s.router_info(), None);
        fs::write(d.join("router.keys"), b"short").unwrap();
        let Err(e) = s.keys() else {
            panic!("short key file accepted")
        };
        assert!(e.to_string().contains("damaged"));
        fs::remove_dir_all(d).unwrap();
    }
}
