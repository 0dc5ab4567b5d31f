//! `eepsocks doctor` on the fake SAM bridge: a healthy setup passes every check (exit 0);
//! with the bridge down, the session and bridge checks fail with a hint (exit non-zero).

mod support;

use std::time::{Duration, Instant};
use support::launcher::run_cli;
use support::rig::{free_addrs, Rig};

fn doctor(rig: &Rig, extra: &[&str]) -> (bool, String) {
    let data = rig.data().display().to_string();
    let mut args = vec![
        "--data-dir",
        data.as_str(),
        "--sam",
        "127.0.0.1:1",
        "doctor",
    ];
    args.extend_from_slice(extra);
    let out = run_cli(args, None);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    println!("{text}{}", String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn doctor_passes_a_healthy_setup_and_points_at_a_dead_bridge() {
    let rig = Rig::new();
    rig.fake.name(&rig.service, &rig.service_dest);
    let [listen, status] = free_addrs::<2>();
    let mut p = rig.run(
        &format!("listen = \"{listen}\"\nstatus_listen = \"{status}\"\n"),
        &[],
    );

    // Healthy: every check ok. The bridge comes from the status endpoint, not --sam.
    let (ok, text) = doctor(&rig, &["--name", &format!("{}:80", rig.service)]);
    assert!(ok, "{text}");
    assert!(!text.contains("FAIL"), "{text}");
    for what in [
        "eepsocks runs",
        "status endpoint answers",
        "session up",
        "SAM bridge",
        "(NAMING LOOKUP)",
        "through SOCKS",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("ok") && l.contains(what)),
            "no ok line for {what:?}:\n{text}"
        );
    }

    // An unknown name: the stream check fails with what to do.
    let (ok, text) = doctor(&rig, &["--name", "nosuch.i2p"]);
    assert!(!ok, "{text}");
    assert!(text.contains("FAIL  a stream to nosuch.i2p:80"), "{text}");
    assert!(text.contains("hint: "), "{text}");

    // The router goes away: the session is lost, the bridge does not answer.
    rig.fake.down();
    let t0 = Instant::now();
    let text = loop {
        let (ok, text) = doctor(&rig, &[]);
        if text.contains("session: down") {
            assert!(!ok, "{text}");
            break text;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "{text}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let fail = |what: &str| {
        text.lines()
            .find(|l| l.starts_with("FAIL") && l.contains(what))
            .unwrap_or_else(|| panic!("no FAIL line for {what:?}:\n{text}"))
            .to_string()
    };
    assert!(
        fail("session: down").contains("is the router running?"),
        "{text}"
    );
    assert!(
        fail("router's SAM bridge").contains("hint: start the I2P router"),
        "{text}"
    );
    assert!(p.term().success());

    // Stopped: the first check says so.
    let (ok, text) = doctor(&rig, &[]);
    assert!(!ok);
    assert!(text.starts_with("FAIL  eepsocks runs"), "{text}");
}

/// emissary answers every sessionless NAMING LOOKUP with KEY_NOT_FOUND: for a b32 that is
/// no failure (a stream needs no lookup), so doctor says so and passes on the stream check.
#[test]
fn doctor_skips_a_sessionless_b32_lookup_the_router_cannot_do() {
    let rig = Rig::new();
    rig.fake.name(&rig.service, &rig.service_dest);
    let [listen, status] = free_addrs::<2>();
    let mut p = rig.run(
        &format!("listen = \"{listen}\"\nstatus_listen = \"{status}\"\n"),
        &[],
    );
    // Only the b32 doctor looks up: the proxy's streams need no lookup of it.
    rig.fake.refuse(
        &format!("NAMING LOOKUP NAME={}", rig.service),
        "KEY_NOT_FOUND",
        "",
        None,
    );
    let (ok, text) = doctor(&rig, &["--name", &format!("{}:80", rig.service)]);
    assert!(ok, "{text}");
    assert!(!text.contains("FAIL"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("skip") && l.contains("(NAMING LOOKUP): KEY_NOT_FOUND")),
        "{text}"
    );
    assert!(p.term().success());
}
