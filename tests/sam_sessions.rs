//! The stateful SAM client against the fake bridge (tests/support/fake_sam.rs): sessions
//! coming up, lost and recreated with backoff, closed and replaced; warm stream sockets;
//! lookups; per-user identity pools; the SAM router's naming order. No router, no root.
//!
//! Tests of the backoff pause the test's clock: the session's timers are tokio timers,
//! the fake runs on its own thread in real time, and `FakeSam::until` / `settle` wait on a
//! blocking thread, which keeps the paused clock from jumping ahead meanwhile.

mod support;

use eepsocks::i2p::identity::{self, LeaseError, Mode, Pool, Template};
use eepsocks::i2p::sam::{SamError, Session, SessionConfig, SessionState};
use eepsocks::i2p::{OpenError, Router, SamRouter};
use eepsocks::naming::{AddressBook, Books, Target};
use eepsocks::socks::Credentials;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;
use support::fake_sam::{test_keys, FakeSam};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const T: Duration = Duration::from_secs(2);

fn config(fake: &FakeSam, name: &str, seed: u64) -> SessionConfig {
    SessionConfig {
        sam_addr: fake.addr(),
        name: name.into(),
        keys: test_keys(seed).into(),
        options: vec![
            ("inbound.length".into(), "0".into()),
            ("i2cp.leaseSetEncType".into(), "4,0".into()),
        ],
        warm_sockets: true,
        datagram_port: None,
        create_timeout: eepsocks::i2p::sam::CREATE_TIMEOUT,
        on_demand: true,
        shared_datagrams: None,
    }
}

/// Per-user identities kept 10 minutes idle, at most `max` at once.
fn per_user(key_dir: Option<std::path::PathBuf>, max: usize) -> Mode {
    Mode::PerUser {
        key_dir,
        idle: Duration::from_secs(600),
        max,
    }
}

/// `pool`'s session for `user`, which must come.
async fn lease_for(pool: &Pool, user: &str) -> eepsocks::i2p::identity::Lease {
    timeout(T, pool.lease(Some(&creds(user))))
        .await
        .unwrap()
        .unwrap()
}

fn echo_service() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    support::services::spawn_echo(l);
    a
}

/// Send `msg` through a stream and read the echo back.
async fn echo_through(mut s: TcpStream, early: Vec<u8>, msg: &[u8]) {
    s.write_all(msg).await.unwrap();
    let mut got = early;
    while got.len() < msg.len() {
        let mut b = [0u8; 256];
        let n = timeout(T, s.read(&mut b)).await.unwrap().unwrap();
        assert!(n > 0, "stream closed early");
        got.extend_from_slice(&b[..n]);
    }
    assert_eq!(got, msg);
}

/// Let real time pass for the fake and the IO of the code under test, without moving a
/// paused clock.
async fn settle(ms: u64) {
    tokio::task::spawn_blocking(move || std::thread::sleep(Duration::from_millis(ms)))
        .await
        .unwrap();
}

/// `wait_until_up` on a paused clock. A blocking task runs meanwhile (`settle`), which
/// keeps tokio from jumping the clock to the next timer (HELLO's deadline) while the
/// bridge, on its own thread, answers.
async fn up_paused(s: &Session) -> String {
    loop {
        if let SessionState::Up(id) = s.state() {
            return id;
        }
        settle(5).await;
    }
}

#[tokio::test]
async fn session_comes_up_with_unique_ids_and_its_options() {
    let fake = FakeSam::start();
    let a = Session::spawn(config(&fake, "same", 1));
    let b = Session::spawn(config(&fake, "same", 2));
    let ida = timeout(T, a.usable_id()).await.unwrap().unwrap();
    let idb = timeout(T, b.usable_id()).await.unwrap().unwrap();
    assert_ne!(ida, idb, "two sessions of one name never share an id");
    let prefix = format!("same-{}-", std::process::id());
    assert!(
        ida.starts_with(&prefix) && idb.starts_with(&prefix),
        "{ida} {idb}"
    );
    assert_eq!(a.state(), SessionState::Up(ida.clone()));
    let live = fake.sessions();
    assert_eq!(live.len(), 2);
    let sa = live.iter().find(|s| s.id == ida).unwrap();
    assert_eq!(sa.b32, test_keys(1).destination().b32());
    assert_eq!(sa.options["inbound.length"], "0");
    assert_eq!(sa.options["i2cp.leaseSetEncType"], "4,0");
    // The router's keepalive PINGs are answered on each control connection.
    fake.ping("keepalive");
    assert!(fake.until(|st| st.count("PONG keepalive") == 2, T).await);
    assert_eq!(fake.sessions().len(), 2);
}

#[tokio::test]
async fn lost_session_is_recreated_with_the_same_keys() {
    let fake = FakeSam::start();
    let s = Session::spawn(config(&fake, "lost", 3));
    let id1 = timeout(T, s.usable_id()).await.unwrap().unwrap();
    // Slow answers keep the session Down long enough to look at.
    fake.delay(Duration::from_millis(300));
    fake.kill_sessions();
    let t = tokio::time::Instant::now();
    while !matches!(s.state(), SessionState::Down(_)) {
        assert!(t.elapsed() < T, "never Down: {:?}", s.state());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Down: usable_id fails at once (clients get a prompt failure reply)...
    let e = timeout(Duration::from_millis(50), s.usable_id())
        .await
        .expect("usable_id does not wait while Down")
        .unwrap_err();
    assert!(matches!(e, SamError::Down(_)), "{e}");
    let e = s.lookup("x.i2p").await.unwrap_err();
    assert!(matches!(e, SamError::Down(_)), "{e}");
    // ...while wait_until_up waits for the new session.
    let id2 = timeout(T, s.wait_until_up()).await.unwrap().unwrap();
    assert_ne!(id1, id2);
    let created = fake.created();
    assert_eq!(created.len(), 2);
    assert_eq!(created[0].b32, created[1].b32, "same keys");
    assert!(created[0].closed.is_some() && created[1].closed.is_none());
}

#[tokio::test(start_paused = true)]
async fn backoff_grows_while_refused_then_recovers() {
    let fake = FakeSam::start();
    fake.refuse("SESSION CREATE", "I2P_ERROR", "no tunnels", None);
    let s = Session::spawn(config(&fake, "backoff", 4));
    // Virtual time of each attempt, stepping the clock 250 ms at a time.
    let mut at = Vec::new();
    let mut now = 0u64;
    while at.len() < 4 {
        let seen = at.len();
        if fake
            .until(
                move |st| st.count("SESSION CREATE") > seen,
                Duration::from_millis(25),
            )
            .await
        {
            at.push(now);
            continue;
        }
        tokio::time::advance(Duration::from_millis(250)).await;
        now += 250;
        assert!(now < 60_000, "attempts at {at:?}");
    }
    // 500 ms << attempt. An attempt seen one step late (slow IO) shows as a longer gap
    // before it; the next gap is measured from when it really happened.
    let gaps: Vec<u64> = at.windows(2).map(|w| w[1] - w[0]).collect();
    for (g, want) in gaps.iter().zip([1000, 2000, 4000]) {
        assert!((want..=want + 500).contains(g), "attempts at {at:?} ms");
    }
    assert!(matches!(s.usable_id().await, Err(SamError::Down(_))));

    // The router recovers: the next attempt (8 s later) succeeds, and the count resets.
    fake.clear_faults();
    // Stepped as above: an idle runtime would jump the paused clock to the next timer,
    // HELLO's deadline, before the bridge (on its own thread) answers.
    let id = loop {
        if let SessionState::Up(id) = s.state() {
            break id;
        }
        fake.wait_for(|st| !st.live().is_empty(), Duration::from_millis(25));
        tokio::time::advance(Duration::from_millis(250)).await;
        now += 250;
        assert!(now < 60_000, "never up");
    };
    assert!(fake.sessions().iter().any(|x| x.id == id));
    // Lost after it stayed up a while: recreated at once.
    tokio::time::advance(Duration::from_secs(11)).await;
    // Real time from here: the wait below blocks a thread, and a paused clock would then
    // jump to the next timer, HELLO's deadline, before the bridge answers.
    tokio::time::resume();
    fake.kill_sessions();
    assert!(
        fake.until(|st| st.live().len() == 1 && st.history.len() == 2, T)
            .await,
        "{:?}",
        fake.commands()
    );
}

/// A router that accepts every session and drops it at once gets backoff, not a SESSION
/// CREATE per round trip: only a session that stayed up resets the backoff.
#[tokio::test]
async fn sessions_dropped_at_once_get_backoff() {
    let fake = FakeSam::start();
    let s = Session::spawn(config(&fake, "flap", 12));
    timeout(T, s.usable_id()).await.unwrap().unwrap();
    let killer = {
        let fake = fake.clone();
        std::thread::spawn(move || {
            let end = std::time::Instant::now() + Duration::from_millis(1500);
            while std::time::Instant::now() < end {
                fake.kill_sessions();
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    tokio::task::spawn_blocking(move || killer.join().unwrap())
        .await
        .unwrap();
    // Up at 0, dropped, retried after 1 s, dropped, next try 2 s later: 2 or 3 in 1.5 s.
    let creates = fake.count("SESSION CREATE");
    assert!(creates <= 3, "{creates} SESSION CREATEs in 1.5 s");
}

/// A lookup the router never answers times out (30 s, paused clock) and does not stall the
/// next one; its late answer would not be taken for another name.
#[tokio::test(start_paused = true)]
async fn unanswered_lookup_times_out_without_stalling_the_next() {
    let fake = FakeSam::start();
    let known = test_keys(13).destination().clone();
    fake.name("known.i2p", &known);
    let s = Session::spawn(config(&fake, "lost", 14));
    up_paused(&s).await;
    fake.ignore("NAMING LOOKUP NAME=lost.i2p", Some(1));
    let e = timeout(Duration::from_secs(60), s.lookup("lost.i2p"))
        .await
        .expect("an unanswered lookup must time out")
        .unwrap_err();
    assert_eq!(e.result(), Some("TIMEOUT"), "{e}");
    // Real time again: the fake answers from its own thread, which a paused clock would
    // race to the timeout.
    tokio::time::resume();
    assert_eq!(
        timeout(T, s.lookup("known.i2p")).await.unwrap().unwrap(),
        known
    );
    assert!(matches!(s.state(), SessionState::Up(_)));
}

#[tokio::test(start_paused = true)]
async fn bridge_down_then_up() {
    let fake = FakeSam::start();
    let s = Session::spawn(config(&fake, "down", 5));
    up_paused(&s).await;
    fake.down();
    while !matches!(s.state(), SessionState::Down(_)) {
        settle(2).await;
    }
    assert!(matches!(s.usable_id().await, Err(SamError::Down(_))));
    let waiter = tokio::spawn({
        let s = s.clone();
        async move { s.wait_until_up().await }
    });
    // Twenty seconds of refused connections (attempts after 1, 3, 7 and 15 s).
    for _ in 0..40 {
        tokio::time::advance(Duration::from_millis(500)).await;
        settle(3).await;
    }
    assert!(!waiter.is_finished());
    fake.up();
    // The backoff has grown: the next attempt comes at about 31 s, not at once.
    let mut waited = 0;
    while !waiter.is_finished() {
        tokio::time::advance(Duration::from_millis(500)).await;
        settle(5).await;
        waited += 500;
        assert!(waited <= 30_000, "not back 30 s after the bridge came back");
    }
    assert!(
        waited >= 5_000,
        "back after {waited} ms: the backoff did not grow"
    );
    waiter.await.unwrap().unwrap();
    assert_eq!(fake.sessions().len(), 1);
}

#[tokio::test]
async fn close_and_replace_without_duplicated_dest() {
    let fake = FakeSam::start();
    let old = Session::spawn(config(&fake, "old", 6));
    timeout(T, old.usable_id()).await.unwrap().unwrap();
    // Same keys, new options: the new session closes the old one first.
    let mut cfg = config(&fake, "new", 6);
    cfg.options.push(("inbound.quantity".into(), "3".into()));
    let new = Session::spawn_after(cfg, Some(old.clone()));
    let id = timeout(T, new.usable_id()).await.unwrap().unwrap();
    assert_eq!(old.state(), SessionState::Closed);
    assert_eq!(fake.count("SESSION CREATE"), 2, "{:?}", fake.commands());
    let created = fake.created();
    assert_eq!(created[1].id, id);
    assert_eq!(created[1].options["inbound.quantity"], "3");
    assert!(created[0].closed.unwrap() <= created[1].created);

    new.close();
    timeout(T, new.closed()).await.unwrap();
    assert!(fake.until(|st| st.live().is_empty(), T).await);
    assert!(matches!(new.usable_id().await, Err(SamError::NoSession)));
}

/// A router may still hold the old session a moment after its control connection closed
/// (DUPLICATED_DEST): the replacement retries soon and stays Starting, so clients wait for
/// it instead of being failed at once as they would while the session is Down.
#[tokio::test]
async fn replacement_waits_out_a_lingering_old_session() {
    let fake = FakeSam::start();
    let old = Session::spawn(config(&fake, "old", 9));
    timeout(T, old.usable_id()).await.unwrap().unwrap();
    fake.refuse(
        "SESSION CREATE",
        "DUPLICATED_DEST",
        "still closing",
        Some(2),
    );
    let new = Session::spawn_after(config(&fake, "new", 9), Some(old.clone()));
    // `usable_id` fails at once on Down: here it must wait, then succeed.
    let id = timeout(T, new.usable_id()).await.unwrap().unwrap();
    assert_eq!(fake.count("SESSION CREATE"), 4, "{:?}", fake.commands());
    assert_eq!(fake.sessions().len(), 1);
    assert_eq!(fake.sessions()[0].id, id);
}

#[tokio::test]
async fn warm_sockets_carry_the_next_streams() {
    let fake = FakeSam::start();
    let svc = test_keys(7).destination().b32();
    fake.service(&svc, echo_service());
    let s = Session::spawn(config(&fake, "warm", 8));
    timeout(T, s.usable_id()).await.unwrap().unwrap();
    let (tcp, early) = timeout(T, s.connect(&svc, 80, None))
        .await
        .unwrap()
        .unwrap();
    echo_through(tcp, early, b"first").await;
    // Control connection, the first stream, and two warm sockets.
    assert!(fake.until(|st| st.count("HELLO") == 4, T).await);
    // The fake counts a HELLO before it answers; give the pool time to take the answers.
    settle(50).await;
    // From now on no new connection gets through HELLO: only the warm ones work.
    fake.hang("HELLO");
    for msg in [&b"second"[..], b"third"] {
        let (tcp, early) = timeout(T, s.connect(&svc, 80, None))
            .await
            .unwrap()
            .unwrap();
        echo_through(tcp, early, msg).await;
    }
    assert!(
        timeout(Duration::from_millis(200), s.connect(&svc, 80, None))
            .await
            .is_err(),
        "a third stream needs a fresh socket"
    );
    let c = fake.connects();
    assert_eq!(c.len(), 3);
    assert!(c.iter().all(|c| c.dest == svc && c.port == Some(80)));

    // SAM 3.1 has no ports: TO_PORT is left out.
    fake.clear_faults();
    fake.set_max_version(1);
    let s = Session::spawn(config(&fake, "v31", 9));
    timeout(T, s.usable_id()).await.unwrap().unwrap();
    let (tcp, early) = timeout(T, s.connect(&svc, 80, None))
        .await
        .unwrap()
        .unwrap();
    echo_through(tcp, early, b"old").await;
    assert_eq!(fake.connects().last().unwrap().port, None);
}

#[tokio::test]
async fn lookups_in_the_session() {
    let fake = FakeSam::start();
    let known = test_keys(10).destination().clone();
    fake.name("known.i2p", &known);
    let s = Session::spawn(config(&fake, "look", 11));
    timeout(T, s.usable_id()).await.unwrap().unwrap();
    assert_eq!(
        timeout(T, s.lookup("known.i2p")).await.unwrap().unwrap(),
        known
    );
    let e = timeout(T, s.lookup("nope.i2p")).await.unwrap().unwrap_err();
    assert_eq!(e.result(), Some("KEY_NOT_FOUND"));
    // The session stays up after a refused lookup.
    assert!(matches!(s.state(), SessionState::Up(_)));
    assert_eq!(fake.count("NAMING LOOKUP"), 2);
    assert_eq!(
        fake.count("SESSION CREATE"),
        1,
        "lookups go over the control connection"
    );

    // Lookups in flight or queued when the router goes away fail instead of hanging.
    fake.hang("NAMING LOOKUP");
    let l1 = tokio::spawn({
        let s = s.clone();
        async move { s.lookup("a.i2p").await }
    });
    assert!(fake.until(|st| st.count("NAMING LOOKUP") == 3, T).await);
    let l2 = tokio::spawn({
        let s = s.clone();
        async move { s.lookup("b.i2p").await }
    });
    settle(20).await;
    fake.down();
    assert!(timeout(T, l1).await.unwrap().unwrap().is_err());
    assert!(timeout(T, l2).await.unwrap().unwrap().is_err());
}

fn creds(user: &str) -> Credentials {
    Credentials {
        username: user.as_bytes().to_vec(),
        password: b"pw".to_vec(),
    }
}

fn template(fake: &FakeSam, quantity: &str) -> Template {
    Template {
        sam_addr: fake.addr(),
        options: vec![("inbound.quantity".into(), quantity.into())],
        sig_type: 7,
        create_timeout: eepsocks::i2p::sam::CREATE_TIMEOUT,
        datagrams: false,
    }
}

/// Usernames cannot make identities without bound: past `max` the least recently used idle
/// one is closed; with every one busy, a new username is refused (a limit, reply 0x01).
/// Per-user sessions keep no warm sockets, so an idle identity holds one descriptor.
#[tokio::test]
async fn per_user_identities_are_capped() {
    let fake = FakeSam::start();
    let svc = test_keys(21).destination().b32();
    fake.service(&svc, echo_service());
    let mode = per_user(None, 2);
    let pool = Pool::new("cap", template(&fake, "2"), mode);
    let alice = lease_for(&pool, "alice").await;
    let bob = lease_for(&pool, "bob").await;
    let e = timeout(T, pool.lease(Some(&creds("carol"))))
        .await
        .unwrap()
        .err()
        .expect("a third identity while two are busy");
    assert!(matches!(e, LeaseError::Limit(_)), "{e}");
    // Bob's stream ends: his identity is the idle one to go.
    let (tcp, early) = timeout(T, bob.session.connect(&svc, 80, None))
        .await
        .unwrap()
        .unwrap();
    echo_through(tcp, early, b"bob").await;
    drop(bob);
    let _carol = lease_for(&pool, "carol").await;
    assert_eq!(pool.users(), 2);
    assert!(
        fake.until(|st| st.live().len() == 2, T).await,
        "bob's session closed"
    );
    drop(alice);
    // One connection per key generation, per session and per stream: nothing kept warm.
    settle(50).await;
    let used =
        fake.count("DEST GENERATE") + fake.count("SESSION CREATE") + fake.count("STREAM CONNECT");
    assert_eq!(fake.count("HELLO"), used, "{:?}", fake.commands());
}

#[tokio::test]
async fn per_user_pool_sessions_and_reaping() {
    let fake = FakeSam::start();
    let idle = Duration::from_millis(300);
    let pool = Pool::new(
        "l1",
        template(&fake, "2"),
        Mode::PerUser {
            key_dir: None,
            idle,
            max: 64,
        },
    );
    let alice = lease_for(&pool, "alice").await;
    let bob = lease_for(&pool, "bob").await;
    let ida = timeout(T, alice.session.usable_id())
        .await
        .unwrap()
        .unwrap();
    let idb = timeout(T, bob.session.usable_id()).await.unwrap().unwrap();
    assert_ne!(ida, idb);
    let live = fake.sessions();
    assert_eq!(live.len(), 2);
    assert_ne!(live[0].b32, live[1].b32, "one identity per user");
    assert_eq!(fake.count("DEST GENERATE"), 2);
    let again = pool.lease(Some(&creds("alice"))).await.unwrap();
    assert_eq!(
        again.session.usable_id().await.unwrap(),
        ida,
        "same user, same session"
    );
    assert_eq!(pool.users(), 2);
    drop(again);

    // Bob stops; alice keeps a stream open. Nothing is idle long enough yet.
    drop(bob);
    assert_eq!(pool.reap(), 0);
    tokio::time::sleep(idle + Duration::from_millis(50)).await;
    assert_eq!(
        pool.reap(),
        1,
        "bob's idle session goes, alice's leased one stays"
    );
    assert_eq!(pool.users(), 1);
    assert!(
        fake.until(move |st| st.live().len() == 1 && st.live()[0].id == ida, T)
            .await
    );
    drop(alice);
    tokio::time::sleep(idle + Duration::from_millis(50)).await;
    assert_eq!(pool.reap(), 1);
    assert!(fake.until(|st| st.live().is_empty(), T).await);
}

#[tokio::test]
async fn persistent_per_user_keys_and_replacing_pools() {
    use std::os::unix::fs::PermissionsExt;
    let fake = FakeSam::start();
    let dir = tempfile::tempdir().unwrap();
    let mode = || per_user(Some(dir.path().to_path_buf()), 64);
    let old = Arc::new(Pool::new("l1", template(&fake, "2"), mode()));
    let lease = lease_for(&old, "alice").await;
    timeout(T, lease.session.usable_id())
        .await
        .unwrap()
        .unwrap();

    // One key file, 0600, named by a hash: the username is nowhere on disk.
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
    assert_eq!(files.len(), 1);
    let name = files[0].file_name().into_string().unwrap();
    assert!(!name.contains("alice"));
    let stem = name.strip_suffix(".dat").unwrap();
    assert!(
        stem.len() == 64 && stem.chars().all(|c| c.is_ascii_hexdigit()),
        "{name}"
    );
    let meta = files[0].metadata().unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let b32 = fake.sessions()[0].b32.clone();

    // A pool with the same keys that does not take over is refused by the router...
    let rival = Pool::new("l1", template(&fake, "4"), mode());
    let r = lease_for(&rival, "alice").await;
    let e = timeout(T, r.session.usable_id())
        .await
        .unwrap()
        .unwrap_err();
    assert!(e.to_string().contains("DUPLICATED_DEST"), "{e}");
    r.session.close();
    drop((r, rival));

    // ...one that replaces it waits for the old session of each user to close.
    let creates = fake.count("SESSION CREATE");
    let new = Pool::new("l1", template(&fake, "3"), mode()).replacing(old.clone());
    let lease2 = lease_for(&new, "alice").await;
    let id = timeout(T, lease2.session.usable_id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        fake.count("SESSION CREATE"),
        creates + 1,
        "{:?}",
        fake.commands()
    );
    let live = fake.sessions();
    assert_eq!(live.len(), 1);
    assert_eq!(
        (live[0].id.as_str(), live[0].b32.as_str()),
        (id.as_str(), b32.as_str())
    );
    assert_eq!(live[0].options["inbound.quantity"], "3");
    assert_eq!(lease.session.state(), SessionState::Closed);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "keys reused"
    );
}

#[tokio::test]
async fn sam_router_names_and_streams() {
    let fake = FakeSam::start();
    let echo = echo_service();
    let [user, sub, router, hashed] = [20, 21, 22, 23].map(|n| test_keys(n).destination().clone());
    for d in [&user, &sub, &router, &hashed] {
        fake.service(&d.b32(), echo);
    }
    fake.name("site.i2p", &router);
    fake.name("sub.i2p", &router);
    fake.name("router.i2p", &router);
    let book = Books::default();
    let (u, _) = AddressBook::parse(&format!("site.i2p={}\n", user.to_base64()));
    let (s, _) = AddressBook::parse(&format!(
        "site.i2p={}\nsub.i2p={}\n",
        sub.to_base64(),
        sub.to_base64()
    ));
    *book.user.write().unwrap() = u;
    *book.subscribed.write().unwrap() = s;
    let tpl = template(&fake, "2");
    let session = identity::fixed_session("router", test_keys(24).into(), &tpl, None);
    timeout(T, session.usable_id()).await.unwrap().unwrap();
    let r = SamRouter {
        pool: Arc::new(Pool::new("l1", tpl, Mode::Fixed(session))),
        book: Arc::new(book),
        udp: None,
        router_timeout: None,
    };

    let name = |n: &str| Target::Name(n.into());
    fake.name("sub.i2p", &router);
    let (s, _) = AddressBook::parse(&format!(
        "site.i2p={}\nsub.i2p={}\nonly-sub.i2p={}\n",
        sub.to_base64(),
        sub.to_base64(),
        sub.to_base64()
    ));
    *r.book.subscribed.write().unwrap() = s;
    for (target, want) in [
        // The user's book first; then the router's, even over a subscription that has
        // the name (a feed cannot redirect a name the router knows); subscriptions last.
        ("site.i2p", &user),
        ("sub.i2p", &router),
        ("router.i2p", &router),
        ("only-sub.i2p", &sub),
    ] {
        let o = match timeout(T, r.open(None, &name(target), 80)).await.unwrap() {
            Ok(o) => o,
            Err(e) => panic!("{target}: {e}"),
        };
        assert_eq!(fake.connects().last().unwrap().dest, want.b32(), "{target}");
        echo_through(o.stream, o.early, target.as_bytes()).await;
    }
    // Every name not in the user's book went to the router first.
    assert_eq!(
        fake.count("NAMING LOOKUP NAME=site.i2p"),
        0,
        "{:?}",
        fake.commands()
    );
    assert_eq!(fake.count("NAMING LOOKUP"), 3, "{:?}", fake.commands());
    match timeout(T, r.open(None, &name("nowhere.i2p"), 80))
        .await
        .unwrap()
    {
        Err(OpenError::NameNotFound) => {}
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("opened a stream to an unknown name"),
    }
    assert!(matches!(
        r.resolve(None, &name("nowhere.i2p")).await,
        Err(OpenError::NameNotFound)
    ));
    r.resolve(None, &name("site.i2p")).await.unwrap();

    // A b32 goes to the router as is.
    let o = match timeout(T, r.open(None, &Target::B32(hashed.b32()), 443))
        .await
        .unwrap()
    {
        Ok(o) => o,
        Err(e) => panic!("{e}"),
    };
    echo_through(o.stream, o.early, b"by hash").await;
    let last = fake.connects().last().unwrap().clone();
    assert_eq!((last.dest, last.port), (hashed.b32(), Some(443)));
    // An unreachable b32 is Unreachable, not a router failure.
    let other = test_keys(25).destination().b32();
    assert!(matches!(
        timeout(T, r.open(None, &Target::B32(other), 80))
            .await
            .unwrap(),
        Err(OpenError::Unreachable(_))
    ));
}

/// Per-user key file names are salted per listener (`<dir>.salt`, 0600): a guessed
/// username cannot be checked against a directory listing. Files named before salts are
/// renamed, keeping the identity.
#[tokio::test]
async fn per_user_key_names_are_salted() {
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::PermissionsExt;
    let fake = FakeSam::start();
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("users").join("l1");
    let mode = || per_user(Some(dir.clone()), 64);
    // A key file named the old way (unsalted hash of listener and username).
    let mut h = Sha256::new();
    h.update(b"eepsocks-user-v1\0l1\0carol");
    let old_name = data_encoding::HEXLOWER.encode(&h.finalize());
    std::fs::create_dir_all(&dir).unwrap();
    let keys = test_keys(31);
    std::fs::write(dir.join(format!("{old_name}.dat")), keys.as_bytes()).unwrap();
    let pool = Pool::new("l1", template(&fake, "2"), mode());
    let salt = dir.with_extension("salt");
    let meta = std::fs::metadata(&salt).expect("salt file");
    assert_eq!((meta.len(), meta.permissions().mode() & 0o777), (32, 0o600));
    let lease = lease_for(&pool, "carol").await;
    timeout(T, lease.session.usable_id())
        .await
        .unwrap()
        .unwrap();
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert_ne!(
        names[0],
        format!("{old_name}.dat"),
        "renamed to the salted name"
    );
    assert_eq!(
        fake.sessions()[0].b32,
        keys.destination().b32(),
        "same identity"
    );
    // The salt is kept: a new pool (a restart) finds the same file.
    drop(lease);
    let again = Pool::new("l1", template(&fake, "2"), mode());
    assert_eq!(std::fs::read(&salt).unwrap().len(), 32);
    drop(again);
}

/// Each username that ever connected leaves a key file with `persistent_users`: past
/// 1,024 of them a new username is refused (a limit), known ones go on.
#[tokio::test]
async fn per_user_key_files_are_capped() {
    let fake = FakeSam::start();
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("l1");
    let mode = per_user(Some(dir.clone()), 64);
    let pool = Pool::new("l1", template(&fake, "2"), mode);
    let known = lease_for(&pool, "known").await;
    // Its key file is written once the router made the keys, before the session is up.
    timeout(T, known.session.usable_id())
        .await
        .unwrap()
        .unwrap();
    drop(known);
    for i in 0..identity::MAX_USER_KEY_FILES {
        std::fs::write(dir.join(format!("filler{i}.dat")), b"").unwrap();
    }
    let e = timeout(T, pool.lease(Some(&creds("newcomer"))))
        .await
        .unwrap()
        .err()
        .expect("a new key file past the cap");
    assert!(matches!(e, LeaseError::Limit(_)), "{e}");
    lease_for(&pool, "known").await;
}
