//! eepsocks with its shipped tunnel defaults (3 hops, 3 tunnels each way: no `[options]` in
//! its config) through a network of 6 i2pd routers whose own tunnels (services, i2pd's
//! SOCKS, exploratory) are built the same way. Every other end-to-end test runs 0-hop
//! tunnels on 2 routers, which cannot build these: this is the one that checks what a user
//! gets by default. Few steps, to keep its CI time modest.
//!
//! Needs root and i2pd (without them the test says `skipped`).

mod support;

use std::time::{Duration, Instant};
use support::consts::SETTLE_TIMEOUT;
use support::services::HTTP_BODY;
use support::step;
use support::testnet::{sam_addr, Kind, ServiceSpec, Testnet};

const SOCKS: &str = "127.0.0.1:4447";
const ROUTERS: usize = 6;

#[test]
fn shipped_defaults_on_six_routers() {
    if support::skip_without_testnet() {
        return;
    }
    let net = step("6 routers, 3-hop tunnels", || {
        Testnet::start_tunnels(
            ROUTERS,
            &[
                ServiceSpec {
                    name: "echo",
                    port: 7001,
                    kind: Kind::Echo,
                },
                ServiceSpec {
                    name: "web",
                    port: 7002,
                    kind: Kind::Http,
                },
            ],
            3,
            3,
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("eepsocks.toml");
    // No [options]: the session gets config::DEFAULT_OPTIONS.
    std::fs::write(&cfg, "handshake_timeout = 5\nstream_timeout = 90\n").unwrap();
    let t0 = Instant::now();
    let proxy = step("eepsocks up with the defaults", || {
        let p = net.eepsocks([
            "run",
            "--transient",
            "--listen",
            SOCKS,
            "--sam",
            &sam_addr(ROUTERS),
            "--config",
            cfg.to_str().unwrap(),
        ]);
        p.wait_ready();
        p
    });
    let echo = net.service("echo").b32();
    step("first stream", || {
        net.wait_echo(SOCKS, &echo);
        eprintln!(
            "first stream with the defaults {:.1} s after eepsocks started",
            t0.elapsed().as_secs_f32()
        );
    });
    step("ten echoes in a row", || {
        for i in 0..10 {
            net.echo_once(SOCKS, &echo)
                .unwrap_or_else(|e| panic!("echo {i}: {e}"));
        }
    });
    step("curl through 3 hops each way", || {
        // Another destination: its first lookup may fail while its LeaseSet is being
        // published through 3-hop tunnels (reply 4), as the echo's did above.
        let url = format!("http://{}/", net.service("web").b32());
        let t = Instant::now();
        loop {
            let out = net.curl(&["--socks5-hostname", SOCKS, &url]);
            if out.status.success() {
                assert_eq!(String::from_utf8_lossy(&out.stdout), HTTP_BODY);
                break;
            }
            assert!(
                t.elapsed() < SETTLE_TIMEOUT,
                "curl: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    drop(proxy);
}
