//! A hostile local client against the `eepsocks run` binary on the fake SAM bridge (no
//! root): what a flood of bad requests costs in log lines.

mod support;

use std::io::Read;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};
use support::fake_sam::FakeSam;
use support::launcher::Eepsocks;

fn start(fake: &FakeSam, dir: &tempfile::TempDir) -> (Eepsocks, SocketAddr) {
    let listen = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cfg = dir.path().join("eepsocks.toml");
    std::fs::write(&cfg, "status_listen = \"off\"\n").unwrap();
    let args = [
        "run".to_string(),
        "--router".into(),
        "sam".into(),
        "--sam".into(),
        fake.addr(),
        "--data-dir".into(),
        dir.path().join("data").display().to_string(),
        "--config".into(),
        cfg.display().to_string(),
        "--listen".into(),
        listen.to_string(),
    ];
    let p = Eepsocks::spawn(args, None);
    p.wait_ready_within(Duration::from_secs(20));
    (p, listen)
}

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

/// 3,000 refused requests as fast as one client can send them: the log gets at most 20
/// lines about them a second, and says how many it left out.
#[test]
fn refused_requests_do_not_flood_the_log() {
    let fake = FakeSam::start();
    let dir = tempfile::tempdir().unwrap();
    let (p, proxy) = start(&fake, &dir);
    let t = Instant::now();
    for _ in 0..3000 {
        refused_request(proxy);
    }
    let secs = t.elapsed().as_secs_f64();
    // The next second's first line reports what was left out.
    std::thread::sleep(Duration::from_millis(1100));
    refused_request(proxy);
    p.wait_log("suppressed", Duration::from_secs(5));
    let log = p.log();
    let refused = log.lines().filter(|l| l.contains("refused")).count();
    eprintln!("3,000 refused requests in {secs:.2} s: {refused} log lines about them");
    let windows = secs.ceil() as usize + 2;
    assert!(refused <= 20 * windows, "{refused} lines in {secs:.2} s");
}
