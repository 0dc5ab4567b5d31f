//! A hostile local client against the `eepsocks run` binary on the fake SAM bridge (no
//! root): what a flood of bad requests costs in log lines.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use support::launcher::Eepsocks;
use support::rig::{free_addrs, Rig, READY};

/// SOCKS5 CONNECT to an IPv4 literal: refused with 0x02 (and one log line, unless limited).
fn refused_request(proxy: SocketAddr) {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(&[5, 1, 0, 5, 1, 0, 1, 10, 0, 0, 1, 0, 80])
        .unwrap();
    let mut r = [0u8; 12];
    s.read_exact(&mut r).unwrap();
    assert_eq!(r[3], 0x02, "{r:?}");
}

/// 10,000 refused requests as fast as one client can send them: the log gets at most 20
/// lines about them a second, and says how many it left out.
#[test]
fn refused_requests_do_not_flood_the_log() {
    let r = Rig::new();
    let [proxy] = free_addrs();
    let p = r.run(
        "status_listen = \"off\"\n",
        &["--listen", &proxy.to_string()],
    );
    let t = Instant::now();
    for _ in 0..10_000 {
        refused_request(proxy);
    }
    let secs = t.elapsed().as_secs_f64();
    // The next second's first line reports what was left out.
    std::thread::sleep(Duration::from_millis(1100));
    refused_request(proxy);
    p.wait_log("suppressed", Duration::from_secs(5));
    let log = p.log();
    let refused = log.lines().filter(|l| l.contains("refused")).count();
    eprintln!("10,000 refused requests in {secs:.2} s: {refused} log lines about them");
    let windows = secs.ceil() as usize + 2;
    assert!(refused <= 20 * windows, "{refused} lines in {secs:.2} s");
}

/// SOCKS5 CONNECT to an IPv4 address; the reply code.
fn connect_ip(proxy: SocketAddr, ip: std::net::Ipv4Addr) -> u8 {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.write_all(&[5, 1, 0]).unwrap();
    let mut m = [0u8; 2];
    s.read_exact(&mut m).unwrap();
    let mut req = vec![5, 1, 0, 1];
    req.extend_from_slice(&ip.octets());
    req.extend_from_slice(&80u16.to_be_bytes());
    s.write_all(&req).unwrap();
    support::client::read_socks5_reply(&mut s).unwrap()
}

/// A stand-in handed out on one listener means nothing on another: a client of the other
/// listener (another identity) cannot learn that the name was resolved, nor use it.
#[test]
fn stand_ins_are_per_listener() {
    let r = Rig::new();
    r.fake.name("secret.i2p", &r.service_dest);
    let [a, b] = free_addrs();
    let cfg = format!(
        "status_listen = \"off\"\n[[proxy]]\nname = \"a\"\nlisten = \"{a}\"\n\
         [[proxy]]\nname = \"b\"\nlisten = \"{b}\"\n"
    );
    let _p = r.run(&cfg, &[]);
    let ip = support::client::socks5_resolve(a, "secret.i2p");
    assert_eq!(ip.octets()[0], 255);
    assert_eq!(
        connect_ip(b, ip),
        0x02,
        "listener b used listener a's stand-in"
    );
    assert_eq!(connect_ip(a, ip), 0x00);
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Usernames cannot make identities (sessions, descriptors) without bound: 300 usernames
/// leave at most `max_identities` (here 16) sessions and a bounded number of descriptors,
/// and another listener is served meanwhile.
#[test]
fn usernames_cannot_exhaust_identities() {
    let r = Rig::new();
    let [users, main] = free_addrs();
    let cfg = format!(
        "status_listen = \"off\"\n\
         [[proxy]]\nname = \"users\"\nlisten = \"{users}\"\nisolate = \"username\"\nmax_identities = 16\n\
         [[proxy]]\nname = \"main\"\nlisten = \"{main}\"\n"
    );
    let p = r.run(&cfg, &[]);
    let before = open_fds(p.pid());
    let t = Instant::now();
    let mut ok = 0;
    for i in 0..300 {
        ok += r.echo_ok(users, Some(&format!("u{i}"))) as usize;
    }
    let flood = t.elapsed();
    let t = Instant::now();
    assert!(r.echo_ok(main, None), "main listener not served");
    let normal = t.elapsed();
    let after = open_fds(p.pid());
    let live = r.fake.sessions().len();
    eprintln!(
        "300 usernames in {:.2} s ({ok} served): {live} sessions live, fds {before} -> {after}; \
         a stream on another listener then took {:.1} ms",
        flood.as_secs_f32(),
        normal.as_secs_f64() * 1000.0
    );
    assert_eq!(ok, 300, "each new username evicts an idle one");
    assert!(live <= 16 + 1, "{live} sessions");
    // A session per identity, and each live identity's last stream (2 descriptors): its
    // client closed, and a SAM stream cannot carry that FIN, so it may finish a reply for
    // up to 30 s (docs/reliability.md). Evicted identities' sessions and streams are gone.
    assert!(after <= before + 16 + 2 * 16 + 4, "fds {before} -> {after}");
}

/// Started with a soft descriptor limit of 64 (hard 320), eepsocks raises it, derives a
/// connection budget from it, and closes clients past the budget instead of running out
/// of descriptors: 400 idle clients cause no EMFILE, and once they leave a stream works.
#[test]
fn idle_clients_cannot_exhaust_descriptors() {
    use std::os::unix::process::CommandExt;
    let r = Rig::new();
    let [listen] = free_addrs();
    r.write_config("status_listen = \"off\"\nhandshake_timeout = 60\n");
    let mut cmd = r.command(&["--listen", &listen.to_string()]);
    unsafe {
        cmd.pre_exec(|| {
            let r = libc::rlimit {
                rlim_cur: 64,
                rlim_max: 320,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let p = Eepsocks::spawn_command(cmd);
    p.wait_ready_within(READY);
    let mut idle = Vec::new();
    for _ in 0..400 {
        idle.push(TcpStream::connect(listen).unwrap());
    }
    std::thread::sleep(Duration::from_millis(500));
    let fds = open_fds(p.pid());
    let log = p.log();
    assert!(!log.contains("Too many open files"), "{log}");
    assert!(
        log.contains("descriptor limit raised from 64 to 320"),
        "{log}"
    );
    assert!(fds < 320, "{fds} descriptors");
    drop(idle);
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    assert!(r.echo_ok(listen, None));
    eprintln!(
        "400 idle clients at a limit of 320: {fds} descriptors held, no EMFILE; then a \
         stream in {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
}

/// The demo has no login, so it listens on loopback only, like `run`.
#[test]
fn demo_listens_on_loopback_only() {
    let out = support::launcher::run_cli(["demo", "--listen", "0.0.0.0:4447"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("loopback only") || err.contains("unrecognized subcommand"),
        "{err}"
    );
}
