//! The leak audit: a packet capture on every interface of a test namespace.
//!
//! A namespace with only loopback has no way out: a packet to anywhere else fails with
//! "network unreachable" before it exists, and a leak would leave no trace. So the audit
//! first gives the namespace a way out (an interface holding the default route, and a
//! resolv.conf naming a resolver on loopback): anything sent off the machine, and every DNS
//! query, then becomes a packet that `tcpdump -i any` sees.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A name a client resolves itself (curl `--socks5`): the DNS query a test makes on
/// purpose, to show the audit sees DNS. eepsocks never hears of it.
pub const PROBE_NAME: &str = "local-resolution-probe.i2p";

/// Where the audit sends its control packet, off the machine.
const CONTROL: &str = "192.0.2.1:9";

/// Addresses traffic may use: loopback, and the test routers' (tests/support/testnet.rs).
const ALLOWED: [&str; 2] = ["127.0.0.0/8", "198.18.0.0/24"];

pub struct Capture {
    ns: String,
    child: Child,
    file: PathBuf,
}

/// What the capture saw.
pub struct Findings {
    /// Packets in all.
    pub packets: usize,
    /// Packets to or from an address other than loopback and the routers', to or from
    /// port 53, or ARP (someone looking for an address off the machine), as tcpdump
    /// prints them. IPv6 multicast is left out: the kernel's own neighbour discovery on
    /// the new interface, never eepsocks'.
    pub leaks: Vec<String>,
}

fn tcpdump() -> Command {
    Command::new("tcpdump")
}

pub fn available() -> bool {
    tcpdump()
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Let `ns` reach "the internet" (an interface with nothing behind it) and send DNS to
/// 127.0.0.1, so leaks become visible packets.
pub fn open_way_out(ns: &str) {
    let ip = |args: &[&str]| {
        let out = Command::new("ip")
            .arg("-n")
            .arg(ns)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "ip {args:?}: {out:?}");
    };
    // A veth pair with both ends here (the dummy driver is missing on some kernels); a
    // gateway with a fixed MAC, so what is sent there leaves as IP packets, not ARP queries.
    ip(&[
        "link", "add", "leak0", "type", "veth", "peer", "name", "leak1",
    ]);
    ip(&["addr", "add", "192.0.2.100/24", "dev", "leak0"]);
    ip(&["link", "set", "leak0", "up"]);
    ip(&["link", "set", "leak1", "up"]);
    ip(&[
        "neigh",
        "add",
        "192.0.2.1",
        "lladdr",
        "02:00:00:00:00:01",
        "dev",
        "leak0",
        "nud",
        "permanent",
    ]);
    ip(&[
        "route",
        "add",
        "default",
        "via",
        "192.0.2.1",
        "dev",
        "leak0",
    ]);
    // `ip netns exec` bind-mounts this over /etc/resolv.conf for processes it starts.
    let dir = Path::new("/etc/netns").join(ns);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("resolv.conf"), "nameserver 127.0.0.1\n").unwrap();
}

/// Undo `open_way_out`'s file (the interfaces go with the namespace).
pub fn close_way_out(ns: &str) {
    let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(ns));
}

impl Capture {
    /// Capture every interface of `ns` into `dir/capture.pcap`; returns once tcpdump listens.
    pub fn start(ns: &str, dir: &Path) -> Capture {
        let file = dir.join("capture.pcap");
        // --immediate-mode: without it packets wait in a kernel block for up to a second,
        // and the last ones of a run were lost at SIGINT (seen in 3 runs of 4).
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                "tcpdump",
                "-i",
                "any",
                "-nn",
                "-U",
                "--immediate-mode",
                "-s",
                "256",
                "-w",
            ])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump");
        // tcpdump says "listening on any" once packets are being captured.
        let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
        let t0 = Instant::now();
        let mut line = String::new();
        loop {
            line.clear();
            let n = std::io::BufRead::read_line(&mut err, &mut line).unwrap();
            assert!(n > 0, "tcpdump exited: {:?}", child.try_wait());
            if line.contains("listening on") {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "tcpdump did not start"
            );
        }
        // Keep draining its stderr so it never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
        Capture {
            ns: ns.to_string(),
            child,
            file,
        }
    }

    /// Stop capturing and read what was seen.
    pub fn finish(&mut self) -> Findings {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
        let read = |filter: &str| -> Vec<String> {
            let mut c = tcpdump();
            c.args(["-nn", "-r"]).arg(&self.file);
            if !filter.is_empty() {
                c.arg(filter);
            }
            let out = c.output().expect("tcpdump -r");
            assert!(out.status.success(), "tcpdump -r {filter}: {out:?}");
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string)
                .collect()
        };
        let packets = read("").len();
        let side = |dir: &str| {
            let nets: Vec<String> = ALLOWED.iter().map(|n| format!("{dir} net {n}")).collect();
            format!("({})", nets.join(" or "))
        };
        let leaks = read(&format!(
            "port 53 or arp or (ip and not ({} and {})) or (ip6 and not dst net ff00::/8 and not (src host ::1 and dst host ::1))",
            side("src"),
            side("dst")
        ));
        close_way_out(&self.ns);
        Findings { packets, leaks }
    }
}

impl Capture {
    /// End the capture and check it: no packet for an address other than loopback and the
    /// routers', no DNS query but the probe's (which must be there), and the control packet
    /// sent now (which must be seen). Returns the number of packets captured.
    pub fn audit(&mut self) -> usize {
        crate::support::netns::run(&self.ns, || {
            let u = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
            u.send_to(b"control", CONTROL).unwrap();
        });
        std::thread::sleep(Duration::from_millis(500));
        let found = self.finish();
        let (probe, rest): (Vec<String>, Vec<String>) = found
            .leaks
            .into_iter()
            .partition(|l| l.contains(PROBE_NAME));
        let control_line = format!("> {}:", CONTROL.replace(':', "."));
        let (control, rest): (Vec<String>, Vec<String>) =
            rest.into_iter().partition(|l| l.contains(&control_line));
        eprintln!(
            "leak audit: {} packets captured; {} DNS packets of the client's own probe, {} \
             control, {} other off loopback/routers or on port 53",
            found.packets,
            probe.len(),
            control.len(),
            rest.len()
        );
        assert!(
            !probe.is_empty(),
            "the capture missed the client's own DNS query"
        );
        // Seen leaving on leak0 and arriving on its peer leak1.
        assert!(
            !control.is_empty(),
            "the capture missed the control packet; it saw:\n{}",
            rest.join("\n")
        );
        assert!(
            rest.is_empty(),
            "packets that should not exist:\n{}",
            rest.join("\n")
        );
        found.packets
    }
}

impl Drop for Capture {
    /// A test that failed half-way leaves no tcpdump and no resolv.conf behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        close_way_out(&self.ns);
    }
}
