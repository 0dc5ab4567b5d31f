//! Self-tests of the fake SAM bridge (tests/support/fake_sam.rs), over raw TCP lines, so
//! that the session tests built on it test the client and not the fake.

mod support;

use eepsocks::i2p::{Destination, PrivateKeys};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;
use support::fake_sam::{test_keys, FakeSam};

const T: Duration = Duration::from_secs(2);

struct Line {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Line {
    fn connect(fake: &FakeSam) -> Line {
        let w = TcpStream::connect(fake.addr()).unwrap();
        w.set_read_timeout(Some(T)).unwrap();
        Line {
            r: BufReader::new(w.try_clone().unwrap()),
            w,
        }
    }

    fn hello(fake: &FakeSam) -> Line {
        let mut c = Line::connect(fake);
        assert_eq!(
            c.cmd("HELLO VERSION MIN=3.1 MAX=3.3"),
            "HELLO REPLY RESULT=OK VERSION=3.3"
        );
        c
    }

    fn send(&mut self, line: &str) {
        self.w.write_all(format!("{line}\n").as_bytes()).unwrap();
    }

    /// The next line; "" at EOF.
    fn read(&mut self) -> String {
        let mut s = String::new();
        self.r.read_line(&mut s).unwrap();
        s.trim_end().to_string()
    }

    fn cmd(&mut self, line: &str) -> String {
        self.send(line);
        self.read()
    }
}

fn value<'a>(reply: &'a str, key: &str) -> &'a str {
    reply
        .split_whitespace()
        .find_map(|t| t.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key} in {reply:?}"))
}

#[test]
fn hello_dest_generate_and_naming() {
    let fake = FakeSam::start();
    let mut c = Line::connect(&fake);
    // Commands before HELLO are refused and the connection closed, as on real bridges.
    assert!(c.cmd("DEST GENERATE").contains("I2P_ERROR"));
    assert_eq!(c.read(), "");

    let mut c = Line::hello(&fake);
    let r1 = c.cmd("DEST GENERATE SIGNATURE_TYPE=7");
    let r2 = c.cmd("DEST GENERATE SIGNATURE_TYPE=7");
    let k1 = PrivateKeys::from_base64(value(&r1, "PRIV")).unwrap();
    let k2 = PrivateKeys::from_base64(value(&r2, "PRIV")).unwrap();
    assert_ne!(k1, k2, "every DEST GENERATE is a new identity");
    assert_eq!(k1.destination().to_base64(), value(&r1, "PUB"));

    let d = test_keys(1).destination().clone();
    fake.name("known.i2p", &d);
    let r = c.cmd("NAMING LOOKUP NAME=known.i2p");
    assert!(
        r.starts_with("NAMING REPLY RESULT=OK NAME=known.i2p"),
        "{r}"
    );
    assert_eq!(Destination::from_base64(value(&r, "VALUE")).unwrap(), d);
    assert_eq!(
        c.cmd("NAMING LOOKUP NAME=nope.i2p"),
        "NAMING REPLY RESULT=KEY_NOT_FOUND NAME=nope.i2p"
    );
    assert_eq!(c.cmd("PING 42"), "PONG 42");

    fake.set_max_version(1);
    let mut old = Line::connect(&fake);
    assert_eq!(
        old.cmd("HELLO VERSION MIN=3.1 MAX=3.3"),
        "HELLO REPLY RESULT=OK VERSION=3.1"
    );
    assert_eq!(fake.count("HELLO"), 2);
    // Long values are shortened in the log.
    assert!(
        fake.commands().iter().all(|l| l.len() < 120),
        "{:?}",
        fake.commands()
    );
}

#[test]
fn sessions_live_with_their_control_connection_and_refuse_duplicates() {
    let fake = FakeSam::start();
    let keys = test_keys(2);
    let mut a = Line::hello(&fake);
    let r = a.cmd(&format!(
        "SESSION CREATE STYLE=STREAM ID=a DESTINATION={} inbound.length=0 i2cp.leaseSetEncType=4,0",
        keys.to_base64()
    ));
    assert!(
        r.starts_with("SESSION STATUS RESULT=OK DESTINATION="),
        "{r}"
    );
    let live = fake.sessions();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].id, "a");
    assert_eq!(live[0].b32, keys.destination().b32());
    assert_eq!(live[0].options["inbound.length"], "0");
    assert_eq!(live[0].options["i2cp.leaseSetEncType"], "4,0");
    assert_eq!(
        value(&a.cmd("NAMING LOOKUP NAME=ME"), "VALUE"),
        keys.destination().to_base64()
    );

    let mut b = Line::hello(&fake);
    let r = b.cmd("SESSION CREATE STYLE=STREAM ID=a DESTINATION=TRANSIENT");
    assert_eq!(r, "SESSION STATUS RESULT=DUPLICATED_ID");
    let r = b.cmd(&format!(
        "SESSION CREATE STYLE=STREAM ID=b DESTINATION={}",
        keys.to_base64()
    ));
    assert_eq!(r, "SESSION STATUS RESULT=DUPLICATED_DEST");
    let r = b.cmd("SESSION CREATE STYLE=STREAM ID=b DESTINATION=TRANSIENT");
    assert!(
        PrivateKeys::from_base64(value(&r, "DESTINATION")).is_ok(),
        "{r}"
    );
    assert_eq!(fake.sessions().len(), 2);

    // The router PINGs every session; the client's PONG is logged.
    fake.ping("hi");
    assert_eq!(a.read(), "PING hi");
    assert_eq!(b.read(), "PING hi");
    a.send("PONG hi");
    assert!(fake.wait_for(|s| s.count("PONG hi") == 1, T));

    // Closing the control connection ends the session, so the keys are free again.
    drop(a);
    assert!(fake.wait_for(|s| s.live().len() == 1, T));
    let r = b.cmd("NAMING LOOKUP NAME=ME");
    assert!(r.contains("RESULT=OK"), "{r}");
    let mut c = Line::hello(&fake);
    let r = c.cmd(&format!(
        "SESSION CREATE STYLE=STREAM ID=a DESTINATION={}",
        keys.to_base64()
    ));
    assert!(r.contains("RESULT=OK"), "{r}");
    assert_eq!(fake.created().len(), 3);
    assert!(fake.created()[0].closed.is_some());

    fake.kill_sessions();
    assert_eq!(b.read(), "");
    assert_eq!(c.read(), "");
    assert!(fake.wait_for(|s| s.live().is_empty(), T));
}

#[test]
fn stream_connect_splices_to_services() {
    let fake = FakeSam::start();
    let echo = TcpListener::bind("127.0.0.1:0").unwrap();
    let echo_addr = echo.local_addr().unwrap();
    support::services::spawn_echo(echo);
    let svc = test_keys(3);
    fake.service(&svc.destination().b32(), echo_addr);

    let mut ctl = Line::hello(&fake);
    assert!(ctl
        .cmd("SESSION CREATE STYLE=STREAM ID=s DESTINATION=TRANSIENT")
        .contains("OK"));

    let mut c = Line::hello(&fake);
    assert_eq!(
        c.cmd("STREAM CONNECT ID=nope DESTINATION=x.b32.i2p SILENT=false"),
        "STREAM STATUS RESULT=INVALID_ID"
    );
    let mut c = Line::hello(&fake);
    let unknown = test_keys(4).destination().b32();
    assert_eq!(
        c.cmd(&format!(
            "STREAM CONNECT ID=s DESTINATION={unknown} SILENT=false"
        )),
        "STREAM STATUS RESULT=CANT_REACH_PEER"
    );
    // By full destination too, with a port; bytes sent right behind the command arrive.
    let mut c = Line::hello(&fake);
    let line = format!(
        "STREAM CONNECT ID=s DESTINATION={} SILENT=false TO_PORT=80\nearly ",
        svc.destination().to_base64()
    );
    c.w.write_all(line.as_bytes()).unwrap();
    assert_eq!(c.read(), "STREAM STATUS RESULT=OK");
    c.w.write_all(b"late").unwrap();
    c.w.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = String::new();
    c.r.read_to_string(&mut got).unwrap();
    assert_eq!(got, "early late");
    let connects = fake.connects();
    assert_eq!(connects.len(), 3);
    assert_eq!(connects[2].id, "s");
    assert_eq!(connects[2].port, Some(80));
    assert_eq!(connects[1].dest, unknown);
}

#[test]
fn scripted_faults() {
    let fake = FakeSam::start();
    fake.refuse("SESSION CREATE", "I2P_ERROR", "tunnels not ready", Some(2));
    let mut c = Line::hello(&fake);
    let create = "SESSION CREATE STYLE=STREAM ID=f DESTINATION=TRANSIENT";
    assert_eq!(
        c.cmd(create),
        "SESSION STATUS RESULT=I2P_ERROR MESSAGE=\"tunnels not ready\""
    );
    assert!(c.cmd(create).contains("I2P_ERROR"));
    assert!(
        c.cmd(create).contains("RESULT=OK"),
        "only the next two are refused"
    );

    fake.hang("NAMING LOOKUP");
    let mut h = Line::hello(&fake);
    h.w.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    h.send("NAMING LOOKUP NAME=x.i2p");
    let mut s = String::new();
    assert!(
        h.r.read_line(&mut s).is_err(),
        "a hung command is never answered"
    );
    fake.clear_faults();

    fake.delay(Duration::from_millis(150));
    let t = std::time::Instant::now();
    let _ = Line::hello(&fake);
    assert!(t.elapsed() >= Duration::from_millis(150));
    fake.delay(Duration::ZERO);

    // Down: refused on the same port and every connection dropped; up: served again.
    fake.down();
    assert_eq!(c.read(), "");
    assert!(fake.sessions().is_empty());
    let e = TcpStream::connect(fake.addr()).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    fake.up();
    let _ = Line::hello(&fake);
}
