//! Post-quantum LeaseSet encryption and DATAGRAM2 chosen by what the bridge has, against
//! the fake bridge (tests/support/fake_sam.rs): `6,4` where the bridge has ML-KEM, `4`
//! where it does not (a SAM 3.1 bridge is never asked: i2pd 2.45 crashes on type 6), an
//! immediate retry without ML-KEM when the router refuses it, and a user's setting sent
//! unchanged.

mod support;

use eepsocks::i2p::sam::{Session, SessionConfig, SessionState};
use std::time::{Duration, Instant};
use support::fake_sam::{test_keys, FakeSam};
use tokio::time::timeout;

const T: Duration = Duration::from_secs(5);

fn config(fake: &FakeSam, seed: u64, options: &[(&str, &str)]) -> SessionConfig {
    SessionConfig {
        sam_addr: fake.addr(),
        name: format!("pq{seed}"),
        keys: test_keys(seed).into(),
        options: options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        warm_sockets: false,
        datagram_port: None,
        create_timeout: eepsocks::i2p::sam::CREATE_TIMEOUT,
        on_demand: true,
        shared_datagrams: None,
    }
}

/// The SESSION CREATE lines of real sessions (not the one-time DATAGRAM2 probe).
fn creates(fake: &FakeSam) -> Vec<String> {
    fake.commands()
        .into_iter()
        .filter(|c| c.starts_with("SESSION CREATE") && c.contains("DESTINATION="))
        .collect()
}

fn probes(fake: &FakeSam) -> usize {
    fake.commands()
        .iter()
        .filter(|c| c.starts_with("SESSION CREATE") && !c.contains("DESTINATION="))
        .count()
}

async fn up(s: &Session) {
    timeout(T, s.wait_until_up()).await.unwrap().unwrap();
}

#[tokio::test]
async fn modern_bridge_gets_ml_kem() {
    let fake = FakeSam::start();
    fake.modern(&[]);
    let s = Session::spawn(config(&fake, 1, &[]));
    up(&s).await;
    let c = creates(&fake);
    assert_eq!(c.len(), 1, "{c:?}");
    assert!(c[0].ends_with(" i2cp.leaseSetEncType=6,4"), "{c:?}");
    let how = s.created_with().unwrap();
    assert!(how.post_quantum);
    assert_eq!(how.enc_types, "6,4");
    // A second session of the same bridge is not probed again.
    let s2 = Session::spawn(config(&fake, 2, &[]));
    up(&s2).await;
    assert_eq!(probes(&fake), 1, "{:?}", fake.commands());
    assert!(creates(&fake)[1].ends_with("i2cp.leaseSetEncType=6,4"));
}

/// i2pd 2.45.1 answers `HELLO VERSION MAX=3.3` with 3.1 and segfaults on a session with
/// type 6: such a bridge gets `4` without being asked anything.
#[tokio::test]
async fn sam_31_bridge_never_gets_type_6() {
    let fake = FakeSam::start();
    fake.modern(&[]);
    fake.set_max_version(1);
    let s = Session::spawn(config(&fake, 3, &[]));
    up(&s).await;
    let c = creates(&fake);
    assert_eq!(c.len(), 1, "{c:?}");
    assert!(c[0].ends_with(" i2cp.leaseSetEncType=4"), "{c:?}");
    assert!(!fake.commands().iter().any(|c| c.contains("DATAGRAM2")));
    assert!(!s.created_with().unwrap().post_quantum);
}

/// A 3.3 bridge that does not know STYLE=DATAGRAM2 (i2pd before 2.58, Java before 2.11).
#[tokio::test]
async fn bridge_without_datagram2_gets_x25519_only() {
    let fake = FakeSam::start();
    let s = Session::spawn(config(&fake, 4, &[]));
    up(&s).await;
    assert_eq!(probes(&fake), 1, "{:?}", fake.commands());
    let c = creates(&fake);
    assert!(c[0].ends_with(" i2cp.leaseSetEncType=4"), "{c:?}");
    assert!(!s.created_with().unwrap().post_quantum);
}

#[tokio::test]
async fn refused_ml_kem_falls_back_at_once_and_once() {
    let fake = FakeSam::start();
    fake.modern(&["6"]);
    let t0 = Instant::now();
    let s = Session::spawn(config(&fake, 5, &[]));
    up(&s).await;
    // The retry is immediate: the first backoff step alone is a second.
    assert!(
        t0.elapsed() < Duration::from_millis(900),
        "{:?}",
        t0.elapsed()
    );
    let c = creates(&fake);
    assert_eq!(c.len(), 2, "{c:?}");
    assert!(c[0].ends_with("i2cp.leaseSetEncType=6,4"), "{c:?}");
    assert!(c[1].ends_with("i2cp.leaseSetEncType=4"), "{c:?}");
    let how = s.created_with().unwrap();
    assert!(!how.post_quantum);
    assert_eq!(how.enc_types, "4");
    // The bridge is remembered: the next session asks for 4 straight away.
    let s2 = Session::spawn(config(&fake, 6, &[]));
    up(&s2).await;
    let c = creates(&fake);
    assert_eq!(c.len(), 3, "{c:?}");
    assert!(c[2].ends_with("i2cp.leaseSetEncType=4"), "{c:?}");
}

/// A configured `i2cp.leaseSetEncType` goes to the router as written, refused or not.
#[tokio::test]
async fn user_setting_is_sent_unchanged() {
    let fake = FakeSam::start();
    fake.modern(&["6"]);
    let s = Session::spawn(config(&fake, 7, &[("i2cp.leaseSetEncType", "6,4")]));
    let st = timeout(T, async {
        loop {
            if let SessionState::Down(why) = s.state() {
                return why;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    assert!(st.contains("leaseSetEncType 6"), "{st}");
    let c = creates(&fake);
    assert_eq!(c.len(), 1, "no fallback for a user's setting: {c:?}");
    assert!(c[0].ends_with("i2cp.leaseSetEncType=6,4"), "{c:?}");
    s.close();

    let s = Session::spawn(config(&fake, 8, &[("i2cp.leaseSetEncType", "4,0")]));
    up(&s).await;
    assert!(creates(&fake)
        .last()
        .unwrap()
        .ends_with("i2cp.leaseSetEncType=4,0"));
    assert!(!s.created_with().unwrap().post_quantum);
}

#[tokio::test]
async fn datagram_style_follows_the_bridge() {
    let modern = FakeSam::start();
    modern.modern(&[]);
    let mut cfg = config(&modern, 9, &[]);
    cfg.datagram_port = Some(9);
    let s = Session::spawn(cfg);
    up(&s).await;
    assert!(creates(&modern)[0].starts_with("SESSION CREATE STYLE=DATAGRAM2 PORT=9 "));
    assert_eq!(s.created_with().unwrap().style, "DATAGRAM2");

    let old = FakeSam::start();
    let mut cfg = config(&old, 10, &[("i2cp.leaseSetEncType", "4")]);
    cfg.datagram_port = Some(9);
    let s = Session::spawn(cfg);
    up(&s).await;
    assert!(creates(&old)[0].starts_with("SESSION CREATE STYLE=DATAGRAM PORT=9 "));
    assert_eq!(s.created_with().unwrap().style, "DATAGRAM");
}

/// A probe that gets no answer (the connection closed) decides nothing for good: that
/// session goes without ML-KEM, and the next one asks again.
#[tokio::test]
async fn failed_probe_is_asked_again() {
    let fake = FakeSam::start();
    fake.modern(&[]);
    fake.close_on("SESSION CREATE STYLE=DATAGRAM2", Duration::ZERO, Some(1));
    let s = Session::spawn(config(&fake, 11, &[]));
    up(&s).await;
    assert!(creates(&fake)[0].ends_with(" i2cp.leaseSetEncType=4"));
    let s2 = Session::spawn(config(&fake, 12, &[]));
    up(&s2).await;
    assert_eq!(probes(&fake), 2, "{:?}", fake.commands());
    assert!(creates(&fake)[1].ends_with(" i2cp.leaseSetEncType=6,4"));
    assert!(s2.created_with().unwrap().post_quantum);
}
