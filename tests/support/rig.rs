//! The `eepsocks run` binary on the fake SAM bridge, with an echo service published in
//! it, a temporary data directory and a config file: the set-up of every no-root test of
//! the binary (reload, abuse).

use crate::support::client::socks5_connect;
use crate::support::fake_sam::{test_keys, FakeSam};
use crate::support::launcher::{self, Eepsocks};
use eepsocks::i2p::Destination;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The proxy is ready against the fake in well under a second; slow machines get margin.
pub const READY: Duration = Duration::from_secs(20);

pub struct Rig {
    pub fake: FakeSam,
    pub dir: tempfile::TempDir,
    /// The echo service's destination and its b32.
    pub service_dest: Destination,
    pub service: String,
    /// The network namespace eepsocks runs in (the fake bridge and the echo service must
    /// have been started there too: [`Rig::in_netns`]); None: the test's own.
    pub netns: Option<String>,
}

impl Rig {
    pub fn new() -> Rig {
        let fake = FakeSam::start();
        let service_dest = test_keys(0xec40).destination().clone();
        fake.service(&service_dest.b32(), crate::support::services::local_echo());
        Rig {
            fake,
            dir: tempfile::tempdir().unwrap(),
            service: service_dest.b32(),
            service_dest,
            netns: None,
        }
    }

    /// A rig whose fake bridge, echo service and eepsocks live in namespace `ns`; the test
    /// reaches them from a thread inside it (`netns::run`).
    pub fn in_netns(ns: &str) -> Rig {
        let mut r = crate::support::netns::run(ns, Rig::new);
        r.netns = Some(ns.to_string());
        r
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("eepsocks.toml")
    }

    /// Replace the config file whole: a reload never reads half of one.
    pub fn write_config(&self, body: &str) {
        let tmp = self.dir.path().join("eepsocks.toml.new");
        std::fs::write(&tmp, body).unwrap();
        std::fs::rename(&tmp, self.config_path()).unwrap();
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `eepsocks run` on the fake bridge with the config file and `extra` arguments.
    pub fn command(&self, extra: &[&str]) -> Command {
        let mut args = vec![
            "run".to_string(),
            "--router".into(),
            "sam".into(),
            "--sam".into(),
            self.fake.addr(),
            "--data-dir".into(),
            self.data().display().to_string(),
            "--config".into(),
            self.config_path().display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut c = launcher::command(args, self.netns.as_deref());
        c.env("EEPSOCKS_LOG", "info");
        c
    }

    /// Start it (not waiting for ready).
    pub fn start(&self, extra: &[&str]) -> Eepsocks {
        Eepsocks::spawn_command(self.command(extra))
    }

    /// Write `config`, start, wait for ready.
    pub fn run(&self, config: &str, extra: &[&str]) -> Eepsocks {
        self.write_config(config);
        let p = self.start(extra);
        p.wait_ready_within(READY);
        p
    }

    /// A SOCKS5 stream through `proxy` to the echo service, as `user`: the reply code,
    /// with the echo checked on success.
    pub fn echo(&self, proxy: SocketAddr, user: Option<&str>) -> std::io::Result<u8> {
        let mut s = TcpStream::connect(proxy)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        let code = socks5_connect(&mut s, &self.service, 80, user.map(|u| (u, "x")))?;
        if code == 0 {
            s.write_all(b"ping")?;
            let mut back = [0u8; 4];
            s.read_exact(&mut back)?;
            if &back != b"ping" {
                return Err(std::io::Error::other("echo mismatch"));
            }
        }
        Ok(code)
    }

    /// `echo` worked (any failure, refused connections included, is false).
    pub fn echo_ok(&self, proxy: SocketAddr, user: Option<&str>) -> bool {
        matches!(self.echo(proxy, user), Ok(0))
    }

    /// Retry `echo_ok` until it works or `within` passes.
    pub fn echo_soon(&self, proxy: SocketAddr, user: Option<&str>, within: Duration) -> bool {
        let end = Instant::now() + within;
        loop {
            if self.echo_ok(proxy, user) {
                return true;
            }
            if Instant::now() > end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Loopback addresses no one listens on (bound, then released).
pub fn free_addrs<const N: usize>() -> [SocketAddr; N] {
    let ls: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| ls[i].local_addr().unwrap())
}

/// GET /status on the endpoint at `at`: the JSON object of listener `name`.
pub fn listener_status(at: SocketAddr, name: &str) -> serde_json::Value {
    let mut s = TcpStream::connect(at).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = at.port();
    write!(
        s,
        "GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let body = text.split_once("\r\n\r\n").expect("an HTTP response").1;
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == name)
        .unwrap_or_else(|| panic!("no listener {name} in {v}"))
        .clone()
}
