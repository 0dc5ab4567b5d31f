//! `eepsocks exec` end to end: a network namespace whose only way out is a veth "sink"
//! (v4 and v6) the test captures on, the demo running inside it (as root or as another
//! user), a site of the test's own on the demo network (who is calling, and static files
//! such as a git repository), the leak probe, and a static Go program.

use crate::support::launcher::{self, Eepsocks};
use crate::support::netns;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// The sink's addresses (the gateway of the namespace's only routes): probes aim here, so a
/// leak is a packet on the capture and never leaves the machine.
pub const SINK_V4: &str = "192.0.2.1";
pub const SINK_V6: &str = "fd99::1";

/// Tools the exec tests need, missing ones named: empty when all are here.
pub fn missing_tools(tools: &[&str]) -> Vec<String> {
    tools
        .iter()
        .filter(|t| {
            Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .stdout(Stdio::null())
                .status()
                .map_or(true, |s| !s.success())
        })
        .map(|t| t.to_string())
        .collect()
}

/// A network namespace of the test's: loopback up, and default routes (v4 and v6) through
/// a veth pair with nothing behind it (see capture::open_way_out). Deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!("eeps-{tag}-{}", std::process::id());
        let run = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().unwrap();
            assert!(out.status.success(), "ip {args:?}: {out:?}");
        };
        run(&["netns", "add", &name]);
        run(&["-n", &name, "link", "set", "lo", "up"]);
        crate::support::capture::open_way_out(&name);
        run(&[
            "-n",
            &name,
            "-6",
            "addr",
            "add",
            "fd99::100/64",
            "dev",
            "leak0",
            "nodad",
        ]);
        run(&[
            "-n",
            &name,
            "-6",
            "neigh",
            "add",
            SINK_V6,
            "lladdr",
            "02:00:00:00:00:01",
            "dev",
            "leak0",
            "nud",
            "permanent",
        ]);
        run(&[
            "-n", &name, "-6", "route", "add", "default", "via", SINK_V6, "dev", "leak0",
        ]);
        Netns { name }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        crate::support::capture::close_way_out(&self.name);
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Who runs eepsocks and exec: root, or uid/gid 65534 through setpriv.
#[derive(Clone)]
pub struct User {
    pub uid: Option<u32>,
    /// HOME and EEPSOCKS_RUNTIME_DIR, the user's own.
    pub home: PathBuf,
    pub runtime: PathBuf,
}

impl User {
    /// Root, with a home and runtime directory under `dir`: a daemon someone else runs
    /// with root's default data directory is not the test's.
    pub fn root(dir: &Path) -> User {
        let (home, runtime) = (dir.join("home"), dir.join("run"));
        for d in [&home, &runtime] {
            std::fs::create_dir_all(d).unwrap();
        }
        User {
            uid: None,
            home,
            runtime,
        }
    }

    /// Uid and gid 65534 ("nobody"), with a writable home and runtime directory under `dir`
    /// (made traversable for it).
    pub fn nobody(dir: &Path) -> User {
        use std::os::unix::fs::PermissionsExt;
        let home = dir.join("home");
        let runtime = dir.join("run");
        for d in [&home, &runtime] {
            std::fs::create_dir_all(d).unwrap();
            std::os::unix::fs::chown(d, Some(65534), Some(65534)).unwrap();
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        User {
            uid: Some(65534),
            home,
            runtime,
        }
    }

    /// `eepsocks ARGS` as this user inside `ns`.
    pub fn command<S: AsRef<std::ffi::OsStr>>(&self, ns: &str, args: &[S]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]);
        if let Some(uid) = self.uid {
            c.args([
                "setpriv",
                &format!("--reuid={uid}"),
                &format!("--regid={uid}"),
                "--clear-groups",
            ]);
        }
        c.arg(launcher::bin()).args(args);
        c.env("HOME", &self.home)
            .env("EEPSOCKS_RUNTIME_DIR", &self.runtime)
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("XDG_DATA_HOME")
            .env("EEPSOCKS_LOG", "info,emissary=warn")
            .current_dir("/");
        c
    }

    /// `eepsocks demo` as this user inside `ns`, ready; and its site router's SAM bridge.
    pub fn demo(&self, ns: &str) -> (Eepsocks, String) {
        let d = Eepsocks::spawn_command(self.command(ns, &["demo"]));
        d.wait_ready_within(Duration::from_secs(180));
        let line = d.wait_log("site router", Duration::from_secs(10));
        let sam = line
            .split("site router ")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .expect("the site router's SAM address")
            .trim()
            .to_string();
        (d, sam)
    }

    /// `eepsocks exec ARGS...` to completion.
    pub fn exec<S: AsRef<std::ffi::OsStr>>(&self, ns: &str, args: &[S]) -> Output {
        let mut all: Vec<std::ffi::OsString> = vec!["exec".into()];
        all.extend(args.iter().map(|a| a.as_ref().to_os_string()));
        self.command(ns, &all)
            .stdin(Stdio::null())
            .output()
            .expect("eepsocks exec")
    }
}

/// stdout and stderr of `o`, for messages.
pub fn show(o: &Output) -> String {
    format!(
        "{:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A site of the test's on the demo network (through the site router's SAM bridge `sam`),
/// over HTTP: `/whoami` answers the caller's b32, any other path a file under `root`.
/// Returns the site's b32.
pub fn spawn_site(ns: &str, sam: String, root: PathBuf) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    drop(netns::spawn_async(ns, move || site(sam, root, tx)));
    rx.recv_timeout(Duration::from_secs(180))
        .expect("the test site's session is up")
}

async fn site(sam: String, root: PathBuf, tx: std::sync::mpsc::Sender<String>) {
    use eepsocks::i2p::sam::{Keys, Session, SessionConfig};
    let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = http.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in http.incoming().flatten() {
            let root = root.clone();
            std::thread::spawn(move || serve_site(s, &root));
        }
    });
    let options = [
        ("inbound.length", "1"),
        ("outbound.length", "1"),
        ("inbound.quantity", "2"),
        ("outbound.quantity", "2"),
    ];
    let session = Session::spawn(SessionConfig {
        sam_addr: sam.clone(),
        name: "exec-test-site".into(),
        keys: Keys::New {
            sig_type: 7,
            save: None,
        },
        options: options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        warm_sockets: true,
        datagram_port: None,
        create_timeout: Duration::from_secs(300),
        on_demand: false,
        shared_datagrams: None,
    });
    let id = session.wait_until_up().await.expect("site session");
    let fwd = eepsocks::i2p::sam::forward(&sam, &id, port, false)
        .await
        .expect("STREAM FORWARD");
    let b32 = session.keys().expect("keys").destination().b32();
    tx.send(b32).unwrap();
    let _ = fwd.await;
}

fn serve_site(s: std::net::TcpStream, root: &Path) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
    let mut r = BufReader::new(s.try_clone().unwrap());
    // STREAM FORWARD (SILENT=false) puts the caller's destination on the first line.
    let mut first = String::new();
    if r.read_line(&mut first).is_err() {
        return;
    }
    let caller = first
        .split_whitespace()
        .next()
        .and_then(|d| eepsocks::i2p::Destination::from_base64(d).ok())
        .map(|d| d.b32())
        .unwrap_or_else(|| "unparsable".into());
    let mut request = String::new();
    let _ = r.read_line(&mut request);
    loop {
        let mut l = String::new();
        match r.read_line(&mut l) {
            Ok(0) | Err(_) => return,
            Ok(_) if l.trim().is_empty() => break,
            Ok(_) => {}
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
    let body = if path == "/whoami" {
        Some(format!("{caller}\n").into_bytes())
    } else {
        let rel = path.trim_start_matches('/').split('?').next().unwrap_or("");
        if rel.split('/').any(|c| c == "..") {
            None
        } else {
            std::fs::read(root.join(rel)).ok()
        }
    };
    let mut s = s;
    let _ = match body {
        Some(b) => s
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    b.len()
                )
                .as_bytes(),
            )
            .and_then(|_| s.write_all(&b)),
        None => {
            s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        }
    };
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 512];
    let _ = s.read(&mut sink);
}

/// A bare git repository at `dir/repo.git` with one commit holding `README` =
/// `content`, ready for git's "dumb" HTTP (update-server-info).
pub fn git_repo(dir: &Path, content: &str) {
    let git = |args: &[&str], cwd: &Path| {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(cwd)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", show(&out));
    };
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&["init", "-q"], &work);
    std::fs::write(work.join("README"), content).unwrap();
    git(&["add", "README"], &work);
    git(&["commit", "-qm", "one"], &work);
    git(&["clone", "-q", "--bare", "work", "repo.git"], dir);
    git(&["update-server-info"], &dir.join("repo.git"));
}

/// A statically linked Go program (`CGO_ENABLED=0`) that prints the body of the URL it is
/// given: Go's own resolver and sockets, no libc, nothing LD_PRELOAD could catch.
pub fn go_fetch(dir: &Path) -> PathBuf {
    let src = dir.join("fetch.go");
    std::fs::write(
        &src,
        "package main\n\nimport (\n\t\"fmt\"\n\t\"io\"\n\t\"net/http\"\n\t\"os\"\n)\n\n\
         func main() {\n\tr, err := http.Get(os.Args[1])\n\tif err != nil {\n\t\t\
         fmt.Fprintln(os.Stderr, err)\n\t\tos.Exit(1)\n\t}\n\tb, _ := io.ReadAll(r.Body)\n\t\
         os.Stdout.Write(b)\n}\n",
    )
    .unwrap();
    let bin = dir.join("fetch");
    let out = Command::new("go")
        .args(["build", "-o"])
        .arg(&bin)
        .arg(&src)
        .env("CGO_ENABLED", "0")
        .env("GO111MODULE", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOCACHE", dir.join("gocache"))
        .env("HOME", dir)
        .output()
        .expect("go build");
    assert!(out.status.success(), "go build: {}", show(&out));
    // Static: no interpreter, no libc to preload into.
    let ldd = Command::new("ldd").arg(&bin).output().unwrap();
    let text =
        String::from_utf8_lossy(&ldd.stdout).to_string() + &String::from_utf8_lossy(&ldd.stderr);
    assert!(
        text.contains("not a dynamic executable"),
        "not static: {text}"
    );
    bin
}

/// The leak probe script (tests/support/exec_probe.py).
pub fn probe_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/exec_probe.py")
}

/// The probe's findings: attempt → (result, seconds).
pub fn probe_results(stdout: &[u8]) -> serde_json::Map<String, serde_json::Value> {
    let text = String::from_utf8_lossy(stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no probe output: {text}"));
    serde_json::from_str::<serde_json::Value>(line)
        .unwrap()
        .as_object()
        .unwrap()
        .clone()
}
