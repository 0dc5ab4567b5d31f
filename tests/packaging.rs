//! Packaging: the committed man pages and completions (dist/) match the clap definitions,
//! the default config parses, and, with EEPSOCKS_INSTALLED=1 (CI, after `dpkg -i` of the
//! .deb), the package put everything where Debian expects it.

#[cfg(feature = "embedded")]
#[path = "../examples/gen-docs/generate.rs"]
mod generate;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn dist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dist")
}

/// Relative paths of the files in `dist/man` and `dist/completions`.
fn generated_files(dist: &Path) -> BTreeSet<PathBuf> {
    let mut files = BTreeSet::new();
    for dir in ["man", "completions"] {
        let Ok(entries) = std::fs::read_dir(dist.join(dir)) else {
            continue;
        };
        for e in entries {
            files.insert(Path::new(dir).join(e.unwrap().file_name()));
        }
    }
    files
}

/// The pages describe the default build (`demo` included), so only that build compares.
#[cfg(feature = "embedded")]
#[test]
fn committed_docs_match_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let written: BTreeSet<PathBuf> = generate::generate(tmp.path())
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(written, generated_files(tmp.path()));
    let committed = generated_files(&dist());
    let refresh = generate::REFRESH;
    if let Some(f) = written.difference(&committed).next() {
        panic!(
            "dist/{} is missing: run `{refresh}` to refresh",
            f.display()
        );
    }
    if let Some(f) = committed.difference(&written).next() {
        panic!(
            "dist/{} is no longer generated (a removed subcommand?): delete it and run `{refresh}`",
            f.display()
        );
    }
    for f in &written {
        let new = std::fs::read(tmp.path().join(f)).unwrap();
        let old = std::fs::read(dist().join(f)).unwrap();
        assert!(
            new == old,
            "dist/{} is stale (the clap definitions changed): run `{refresh}` to refresh",
            f.display()
        );
    }
}

/// The conffile the package installs as /etc/eepsocks/eepsocks.toml is one eepsocks accepts.
#[test]
fn default_config_is_valid() {
    let cfg = eepsocks::config::Config::load(Some(&dist().join("eepsocks.toml"))).unwrap();
    cfg.validate().unwrap();
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

/// The unit keeps to loopback addresses, as the shipped config does (router = "sam").
#[test]
fn unit_allows_loopback_only() {
    let unit = read("dist/eepsocks.service");
    let lines: Vec<&str> = unit.lines().map(str::trim).collect();
    assert!(lines.contains(&"IPAddressDeny=any"), "no IPAddressDeny=any");
    assert!(
        lines.contains(&"IPAddressAllow=localhost"),
        "no IPAddressAllow=localhost"
    );
    // Nothing else allowed, and the config it ships needs nothing else.
    let allows: Vec<_> = lines
        .iter()
        .filter(|l| l.starts_with("IPAddressAllow="))
        .collect();
    assert_eq!(allows.len(), 1, "{allows:?}");
    let cfg = eepsocks::config::Config::load(Some(&dist().join("eepsocks.toml"))).unwrap();
    assert!(cfg.sam.starts_with("127.0.0.1:"), "sam {}", cfg.sam);
}

/// One mode for /var/lib/eepsocks: the unit's StateDirectoryMode (which systemd applies at
/// every start), the mode postinst creates it with, and what both docs say.
#[test]
fn state_directory_mode_is_one_answer() {
    let unit = read("dist/eepsocks.service");
    let mode = unit
        .lines()
        .find_map(|l| l.strip_prefix("StateDirectoryMode="))
        .expect("StateDirectoryMode")
        .trim()
        .to_string();
    let postinst = read("dist/debian/postinst");
    assert!(
        postinst.contains(&format!(
            "install -d -m {mode} -o eepsocks -g eepsocks /var/lib/eepsocks"
        )),
        "postinst creates /var/lib/eepsocks with another mode than {mode}"
    );
    // Line breaks in the docs do not matter.
    let flat = |s: String| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let install = flat(read("docs/install.md"));
    let systemd = flat(read("docs/systemd.md"));
    assert!(
        install.contains(&format!("`/var/lib/eepsocks` (mode {mode}")),
        "docs/install.md gives another mode than {mode}"
    );
    assert!(
        systemd.contains(&format!("The state directory is mode {mode}")),
        "docs/systemd.md gives another mode than {mode}"
    );
    for (doc, text) in [("install", &install), ("systemd", &systemd)] {
        for other in ["0700", "0711", "0755"] {
            if other != mode {
                assert!(
                    !text.contains(&format!("`/var/lib/eepsocks` (mode {other}"))
                        && !text.contains(&format!("state directory is mode {other}")),
                    "docs/{doc}.md says {other}"
                );
            }
        }
    }
}

/// What `dpkg -i` of the .deb must have put in place. Runs only with EEPSOCKS_INSTALLED=1,
/// since it reads the system's /usr and /etc.
#[test]
fn installed_package() {
    if std::env::var_os("EEPSOCKS_INSTALLED").is_none() {
        eprintln!("skipped: set EEPSOCKS_INSTALLED=1 after installing the .deb");
        return;
    }
    let out = Command::new("/usr/bin/eepsocks")
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("eepsocks {}", env!("CARGO_PKG_VERSION"))
    );
    // The package's binary has the embedded router (the default features).
    let demo = Command::new("/usr/bin/eepsocks")
        .args(["demo", "--help"])
        .output()
        .unwrap();
    assert!(
        demo.status.success(),
        "no demo subcommand: built without the embedded router"
    );

    // Every committed page, gzipped and unchanged.
    for f in generated_files(&dist()) {
        if f.starts_with("man") {
            let gz = Path::new("/usr/share/man/man1")
                .join(format!("{}.gz", f.file_name().unwrap().to_string_lossy()));
            let page = Command::new("gzip").arg("-dc").arg(&gz).output().unwrap();
            assert!(page.status.success(), "{} missing", gz.display());
            assert_eq!(
                page.stdout,
                std::fs::read(dist().join(&f)).unwrap(),
                "{}",
                gz.display()
            );
        }
    }
    for (committed, installed) in [
        (
            "eepsocks.bash",
            "/usr/share/bash-completion/completions/eepsocks",
        ),
        ("_eepsocks", "/usr/share/zsh/vendor-completions/_eepsocks"),
        (
            "eepsocks.fish",
            "/usr/share/fish/vendor_completions.d/eepsocks.fish",
        ),
    ] {
        let want = std::fs::read(dist().join("completions").join(committed)).unwrap();
        assert_eq!(std::fs::read(installed).ok(), Some(want), "{installed}");
    }
    // /lib is /usr/lib on merged-/usr systems; cargo-deb installs units under /usr/lib.
    assert!(Path::new("/usr/lib/systemd/system/eepsocks.service").is_file());
    assert!(Path::new("/etc/eepsocks/eepsocks.toml").is_file());
    let conffiles = std::fs::read_to_string("/var/lib/dpkg/info/eepsocks.conffiles").unwrap();
    assert!(conffiles
        .lines()
        .any(|l| l == "/etc/eepsocks/eepsocks.toml"));

    // The service user and its state directory (dist/debian/postinst).
    let user = Command::new("getent")
        .args(["passwd", "eepsocks"])
        .output()
        .unwrap();
    let user = String::from_utf8_lossy(&user.stdout).to_string();
    let fields: Vec<&str> = user.trim().split(':').collect();
    assert_eq!(fields.len(), 7, "no user eepsocks: {user:?}");
    assert_eq!(fields[5], "/var/lib/eepsocks");
    assert_eq!(fields[6], "/usr/sbin/nologin");
    let uid: u32 = fields[2].parse().unwrap();
    assert!(uid < 1000, "not a system user: {uid}");
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata("/var/lib/eepsocks").unwrap();
    assert_eq!(m.uid(), uid);
    // 0711 from postinst and systemd's StateDirectoryMode (0700 where an older package
    // made it): either way nobody else may list the key files.
    assert_eq!(m.mode() & 0o066, 0, "/var/lib/eepsocks mode {:o}", m.mode());
    // The config, which may hold login hashes: the service's group reads it, others not.
    let c = std::fs::metadata("/etc/eepsocks/eepsocks.toml").unwrap();
    let gid: u32 = fields[3].parse().unwrap();
    assert_eq!(c.gid(), gid, "/etc/eepsocks/eepsocks.toml group");
    assert_eq!(
        c.mode() & 0o777,
        0o640,
        "/etc/eepsocks/eepsocks.toml mode {:o}",
        c.mode()
    );
}
