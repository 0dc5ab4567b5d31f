//! UDP ASSOCIATE end to end through real i2pd 2.45.1 routers on the offline network (see
//! tests/support/testnet.rs): a datagram echo on r1, eepsocks on r2, and inside the
//! namespace a standard RFC 1928 client (tests/support/udp_client.py) and an existing one,
//! PySocks (tests/support/udp_pysocks.py, Debian's python3-socks). Loss is allowed and
//! reported; corruption, misdirection and cross-association delivery are not.
//!
//! Needs root, i2pd, python3 and python3-socks (without root or i2pd the test says
//! `skipped`; scripts/test installs them).

mod support;

use std::fs;
use support::consts::ZERO_HOP_OPTIONS;
use support::services::{assert_udp_burst, run_udp_client, spawn_datagram_echo, udp_client_script};
use support::step;
use support::testnet::{port, sam_addr, Kind, ServiceSpec, Testnet};

const SOCKS: &str = "127.0.0.1:4447";
const STATUS: &str = "127.0.0.1:4446";

/// udp_client.py through eepsocks: its JSON line, whether it exited 0, its stdout.
fn client(net: &Testnet, echo: &str, n: usize, drops: bool) -> (serde_json::Value, bool, String) {
    let mut c = net.command("python3");
    c.arg(udp_client_script())
        .args([SOCKS, echo, "9", &n.to_string()]);
    if drops {
        c.args(["--drops", STATUS]);
    }
    run_udp_client(c)
}

#[test]
fn udp_associate_through_i2pd_testnet() {
    if support::skip_without_testnet() {
        return;
    }
    let (net, echo) = step("network and datagram echo up", || {
        let net = Testnet::start(
            2,
            &[ServiceSpec {
                name: "echo",
                port: 7001,
                kind: Kind::Echo,
            }],
        );
        // i2pd's SAM UDP port is its SAM port − 1 (not configurable in 2.45.1).
        let udp = format!("127.0.0.1:{}", port(1, 3) - 1).parse().unwrap();
        let echo = spawn_datagram_echo(
            Some(&net.ns),
            sam_addr(1),
            udp,
            &[("inbound.length", "0"), ("outbound.length", "0")],
        );
        (net, echo)
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("eepsocks.toml");
    fs::write(
        &cfg,
        format!("stream_timeout = 90\n{ZERO_HOP_OPTIONS}\n[udp]\nrate = 5000\n"),
    )
    .unwrap();
    let proxy = step("eepsocks up", || {
        let p = net.eepsocks([
            "run",
            "--listen",
            SOCKS,
            "--sam",
            &sam_addr(2),
            "--transient",
            "--config",
            cfg.to_str().unwrap(),
        ]);
        p.wait_ready();
        p
    });
    step("1000 datagrams, drops counted, close ends it", || {
        let run = client(&net, &echo, 1000, true);
        assert_udp_burst(&run, &proxy.log());
        let j = run.0;
        eprintln!(
            "i2pd: loss {} of 1000, rtt p50 {} ms p90 {} ms",
            j["loss"], j["rtt_ms_p50"], j["rtt_ms_p90"]
        );
    });
    step("PySocks (an existing client): 100 datagrams", || {
        let mut c = net.command("/usr/bin/python3");
        c.arg(format!(
            "{}/tests/support/udp_pysocks.py",
            env!("CARGO_MANIFEST_DIR")
        ))
        .args([SOCKS, &echo, "9", "100"]);
        let (j, ok, stdout) = run_udp_client(c);
        assert!(ok, "{stdout}\n{}", proxy.log());
        assert_eq!(j["bad"], 0, "{stdout}");
        eprintln!("i2pd, PySocks: loss {} of 100", j["loss"]);
    });
    step("two associations at once: no cross delivery", || {
        let (net2, e2) = (&net, echo.clone());
        std::thread::scope(|s| {
            let a = s.spawn(|| client(net2, &e2, 300, false));
            let b = s.spawn(|| client(net2, &e2, 300, false));
            for (j, ok, out) in [a.join().unwrap(), b.join().unwrap()] {
                assert!(ok, "{out}");
                assert_eq!(j["bad"], 0, "{out}");
            }
        });
    });
}
