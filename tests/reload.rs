//! Reload and signals, on the real binary against the fake SAM bridge (no root, no router):
//! every SIGHUP case that once lost listeners, identities or options, and SIGTERM/SIGHUP at
//! awkward moments. Each test runs the `eepsocks run` binary, so it can also be pointed at
//! an older build (`EEPSOCKS_TEST_BIN=/path/to/eepsocks cargo test --test reload`) to see
//! which of these cases that build gets wrong.

mod support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};
use support::launcher::Eepsocks;
use support::rig::{free_addrs, Rig, READY};

/// How long a reload may take to show its effect before the test calls it lost.
const SETTLE: Duration = Duration::from_secs(5);

/// Lines saying a reload was applied or refused. Older builds logged "SIGHUP:" where this
/// one logs "reload:"; both count so `EEPSOCKS_TEST_BIN` can point at them.
fn reload_lines(p: &Eepsocks) -> usize {
    p.log()
        .lines()
        .filter(|l| {
            (l.contains("reload:") || l.contains("SIGHUP:"))
                && (l.contains("destination") || l.contains("config"))
        })
        .count()
}

/// SIGHUP, then wait until this reload has been applied or refused (new lines saying
/// which), without failing: the assertions after it decide.
fn reload(p: &Eepsocks) {
    let before = reload_lines(p);
    p.hup();
    let end = Instant::now() + SETTLE;
    while reload_lines(p) == before && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn two_listeners(a: SocketAddr, b: SocketAddr, stream_timeout: u64) -> String {
    format!(
        "stream_timeout = {stream_timeout}\nstatus_listen = \"off\"\n\
         [[proxy]]\nname = \"main\"\nlisten = \"{a}\"\n\
         [[proxy]]\nname = \"second\"\nlisten = \"{b}\"\n"
    )
}

fn has_key_file(dir: &Path, name: &str) -> bool {
    dir.join(format!("{name}.dat")).exists()
}

/// Changing a global value restarts every listener on its own socket: none is lost. The
/// old code aborted the accept loops and re-bound at once; whether the aborted loop had
/// dropped its socket yet was a race (EADDRINUSE, nothing listening, in about one reload of
/// four), so this reloads eight times.
#[test]
fn changed_globals_keep_every_listener() {
    let r = Rig::new();
    let [a, b] = free_addrs();
    r.write_config(&two_listeners(a, b, 60));
    let p = r.start(&[]);
    p.wait_ready_within(READY);
    assert!(r.echo_soon(a, None, SETTLE) && r.echo_soon(b, None, SETTLE));
    for n in 1..=8 {
        r.write_config(&two_listeners(a, b, 60 + n));
        reload(&p);
        for (name, addr) in [("main", a), ("second", b)] {
            assert!(
                r.echo_soon(addr, None, SETTLE),
                "{name} lost by reload {n}:\n{}",
                p.log()
            );
        }
    }
}

/// A reload that cannot be applied whole changes nothing: here the new listener's address
/// is taken, and the other listeners keep running with their old settings.
#[test]
fn failed_reload_keeps_the_old_state_whole() {
    let r = Rig::new();
    let [a, b] = free_addrs();
    r.write_config(&two_listeners(a, b, 60));
    let p = r.start(&[]);
    p.wait_ready_within(READY);
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = taken.local_addr().unwrap();
    let body =
        two_listeners(a, b, 61) + &format!("[[proxy]]\nname = \"third\"\nlisten = \"{c}\"\n");
    r.write_config(&body);
    reload(&p);
    assert!(p.log().contains("config not applied"), "{}", p.log());
    assert!(
        r.echo_soon(a, None, SETTLE),
        "main lost by a failed reload:\n{}",
        p.log()
    );
    assert!(
        r.echo_soon(b, None, SETTLE),
        "second lost by a failed reload:\n{}",
        p.log()
    );
    // Nothing of the new config was started.
    assert!(!p.log().contains("listener main stopped"), "{}", p.log());
}

/// New tunnel options reach the router: the identity gets a new session with them (same
/// keys, so the old session is closed first; the old code kept the old session).
#[test]
fn new_options_reach_the_router() {
    let r = Rig::new();
    let [a] = free_addrs();
    let cfg = |len: u8| {
        format!(
            "status_listen = \"off\"\n[options]\n\"inbound.length\" = {len}\n\
             [[proxy]]\nname = \"main\"\nlisten = \"{a}\"\n"
        )
    };
    r.write_config(&cfg(1));
    let p = r.start(&[]);
    let b32 = p.wait_ready_within(READY).b32("main").to_string();
    assert!(r.echo_soon(a, None, SETTLE));
    r.write_config(&cfg(2));
    p.hup();
    assert!(
        r.fake.wait_for(
            |s| s.live().iter().any(|x| x.b32 == b32
                && x.options.get("inbound.length").map(String::as_str) == Some("2")),
            SETTLE
        ),
        "no session with inbound.length=2 for {b32}; sessions {:?}\n{}",
        r.fake.created(),
        p.log()
    );
    // One live session per identity: the old one was closed, not duplicated.
    assert_eq!(r.fake.sessions().iter().filter(|s| s.b32 == b32).count(), 1);
    assert!(r.echo_soon(a, None, SETTLE), "{}", p.log());
}

/// `--transient` and `--listen` hold for the whole run, reloads included (the old code
/// forgot them when the config had [[proxy]] tables: it wrote main.dat and moved).
#[test]
fn command_line_overrides_survive_reload() {
    let r = Rig::new();
    let [from_file, from_cli] = free_addrs();
    let cfg = |t: u64| {
        format!(
            "stream_timeout = {t}\nstatus_listen = \"off\"\n\
             [[proxy]]\nname = \"main\"\nlisten = \"{from_file}\"\n"
        )
    };
    r.write_config(&cfg(60));
    let cli_listen = from_cli.to_string();
    let p = r.start(&["--transient", "--listen", &cli_listen]);
    let ready = p.wait_ready_within(READY);
    assert_eq!(ready.listener("main").addr, cli_listen);
    r.write_config(&cfg(61));
    reload(&p);
    assert!(r.echo_soon(from_cli, None, SETTLE), "{}", p.log());
    assert!(
        TcpStream::connect(from_file).is_err(),
        "moved to the file's address"
    );
    assert!(
        !has_key_file(&r.data(), "main"),
        "a transient run wrote a key file"
    );
}

/// SIGTERM ends the process while a reload waits for a router that is down (the old code
/// ran the reload inside the signal loop, deaf to SIGTERM until the router came back).
#[test]
fn sigterm_during_a_reload_waiting_for_the_router() {
    let r = Rig::new();
    let [a, b] = free_addrs();
    r.write_config(&format!(
        "status_listen = \"off\"\ndrain_timeout = 1\n[[proxy]]\nname = \"main\"\nlisten = \"{a}\"\n"
    ));
    let mut p = r.start(&[]);
    p.wait_ready_within(READY);
    // The new listener needs new keys, which only the router can make.
    r.write_config(&two_listeners(a, b, 60));
    r.fake.down();
    p.hup();
    // The reload is now retrying DEST GENERATE against a closed port.
    std::thread::sleep(Duration::from_millis(500));
    let st = p.term();
    assert!(st.success(), "{st:?}\n{}", p.log());
}

/// SIGHUP before `ready` is queued, not fatal (the old code installed its handler only
/// once ready: the default action killed the process), and applied once ready.
#[test]
fn sighup_before_ready_is_not_fatal() {
    let r = Rig::new();
    let [a] = free_addrs();
    r.write_config(&format!(
        "status_listen = \"off\"\n[[proxy]]\nname = \"main\"\nlisten = \"{a}\"\n"
    ));
    r.fake.hang("SESSION CREATE");
    let mut p = r.start(&[]);
    assert!(
        r.fake.wait_for(|s| s.count("SESSION CREATE") > 0, READY),
        "{}",
        p.log()
    );
    p.hup();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        p.try_wait().is_none(),
        "SIGHUP before ready killed it:\n{}",
        p.log()
    );
    // The router answers again: the session retries, the proxy becomes ready and serves.
    r.fake.clear_faults();
    // Drops the hung SESSION CREATE too (it is no session yet).
    r.fake.down();
    r.fake.up();
    p.wait_ready_within(READY);
    assert!(r.echo_soon(a, None, SETTLE), "{}", p.log());
    p.wait_log("reload:", SETTLE);
}

/// Per-username identities live across reloads: same session, no second SESSION CREATE
/// with the same id (the old code rebuilt the pool and collided: DUPLICATED_ID, 0x01).
#[test]
fn per_user_identities_survive_reload() {
    let r = Rig::new();
    let [a] = free_addrs();
    let cfg = |t: u64| {
        format!(
            "stream_timeout = {t}\nstatus_listen = \"off\"\n\
             [[proxy]]\nname = \"users\"\nlisten = \"{a}\"\nisolate = \"username\"\n"
        )
    };
    r.write_config(&cfg(60));
    let p = r.start(&[]);
    p.wait_ready_within(READY);
    assert!(r.echo_soon(a, Some("alice"), SETTLE), "{}", p.log());
    assert!(r.echo_soon(a, Some("bob"), SETTLE), "{}", p.log());
    let before = r.fake.created().len();
    r.write_config(&cfg(61));
    reload(&p);
    assert!(
        r.echo_ok(a, Some("alice")),
        "alice after reload:\n{}",
        p.log()
    );
    assert!(r.echo_ok(a, Some("bob")), "bob after reload:\n{}", p.log());
    let created = r.fake.created();
    assert_eq!(created.len(), before, "sessions recreated: {created:?}");
    let mut ids: Vec<_> = created.iter().map(|s| s.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), created.len(), "a session id was used twice");
}

/// UDP ASSOCIATE on `addr` from a blocking client: the reply code. The connection is
/// returned so the association lives as long as the caller keeps it.
fn udp_associate(addr: SocketAddr) -> (TcpStream, u8) {
    use std::io::{Read, Write};
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(SETTLE)).unwrap();
    c.write_all(&[5, 1, 0]).unwrap();
    let mut m = [0u8; 2];
    c.read_exact(&mut m).unwrap();
    c.write_all(&[5, 3, 0, 1, 127, 0, 0, 1, 0, 0]).unwrap();
    let mut r = [0u8; 10];
    c.read_exact(&mut r).unwrap();
    (c, r[1])
}

/// A reload that changes `[udp] max_associations` counts the associations already open
/// against the new limit: raising it allows only the difference, lowering it refuses new
/// ones until enough have closed.
#[test]
fn udp_association_limit_counts_open_ones_across_reloads() {
    let r = Rig::new();
    let [a] = free_addrs();
    let config = |max: usize| {
        format!(
            "status_listen = \"off\"\nsam_udp = \"{}\"\n[udp]\nmax_associations = {max}\n\
             [[proxy]]\nname = \"main\"\nlisten = \"{a}\"\n",
            r.fake.udp_addr()
        )
    };
    let p = r.run(&config(2), &[]);
    let mut open: Vec<TcpStream> = (0..2)
        .map(|_| {
            let (c, code) = udp_associate(a);
            assert_eq!(code, 0);
            c
        })
        .collect();
    assert_eq!(udp_associate(a).1, 1, "a third association past the limit");
    r.write_config(&config(3));
    reload(&p);
    let (c, code) = udp_associate(a);
    assert_eq!(code, 0, "the third, under the new limit:\n{}", p.log());
    open.push(c);
    assert_eq!(udp_associate(a).1, 1, "a fourth: 3 open, limit 3");
    r.write_config(&config(1));
    reload(&p);
    open.truncate(1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(udp_associate(a).1, 1, "1 open, limit 1");
    open.clear();
    // The slot comes free when the association has noticed its control connection closed.
    let end = Instant::now() + SETTLE;
    loop {
        let (c, code) = udp_associate(a);
        if code == 0 {
            drop(c);
            break;
        }
        assert!(Instant::now() < end, "no association after all closed");
        std::thread::sleep(Duration::from_millis(50));
    }
}
