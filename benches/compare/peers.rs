//! The things compared, and the services behind them: eepsocks (its front end alone, or
//! `eepsocks run` over SAM in several variants, or `eepsocks demo`), microsocks, haproxy,
//! a bare SAM session, the emissary network; and the front end's target service.

use crate::clients::wait_port;
use crate::env_num;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A child process, killed and reaped when dropped.
pub struct Proc(pub Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ---------------------------------------------------------------- front end alone

/// Child process (`--serve-direct LISTEN TARGET`): eepsocks' server loop with a backend
/// that opens plain TCP to `target`.
pub fn serve_direct(listen: SocketAddr, target: SocketAddr) {
    // The runtime `eepsocks run` builds, with the proxy's default `threads` unless set.
    let default = eepsocks::config::Config::default().threads as u64;
    let threads = env_num("EEPSOCKS_BENCH_THREADS", default) as usize;
    let rt = eepsocks::proxy::server::runtime(threads).unwrap();
    rt.block_on(async move {
        let l = tokio::net::TcpListener::bind(listen).await.unwrap();
        let ctx = eepsocks::proxy::context::ListenerContext::new(
            Duration::from_secs(30),
            Duration::from_secs(30),
            100_000,
        );
        let router = Arc::new(crate::support::frontend::DirectRouter {
            addr: target,
            half_close: true,
        });
        eepsocks::proxy::server::serve_listener(
            Arc::new(l),
            router,
            Arc::new(ctx),
            std::future::pending(),
        )
        .await;
    });
}

/// Automap's DNS port on `listen` (UDP), answering every b32 with a virtual address: the
/// daemon's DNS server and table, with a router whose lookups always succeed (b32 names need
/// none), on the runtime `eepsocks run` builds.
pub fn serve_dns(listen: SocketAddr) {
    let default = eepsocks::config::Config::default().threads as u64;
    let threads = env_num("EEPSOCKS_BENCH_THREADS", default) as usize;
    let rt = eepsocks::proxy::server::runtime(threads).unwrap();
    rt.block_on(async move {
        let sock = tokio::net::UdpSocket::bind(listen).await.unwrap();
        let mut ctx = eepsocks::proxy::context::ListenerContext::new(
            Duration::from_secs(30),
            Duration::from_secs(30),
            100,
        );
        ctx.stand_ins = Arc::new(eepsocks::naming::StandIns::new(
            "127.192.0.0/10".parse().unwrap(),
            eepsocks::naming::standins::DEFAULT_QUARANTINE,
        ));
        let router = Arc::new(crate::support::frontend::DirectRouter {
            addr: listen,
            half_close: true,
        });
        let dns =
            eepsocks::automap::server::Dns::new(router, Arc::new(ctx), 60, Default::default());
        dns.serve_udp(Arc::new(sock), std::future::pending()).await;
    });
}

/// The floor for a DNS server: a UDP socket that sends every datagram straight back.
pub fn serve_udp_echo(listen: SocketAddr) {
    let s = std::net::UdpSocket::bind(listen).unwrap();
    let mut b = [0u8; 1500];
    loop {
        let (n, from) = s.recv_from(&mut b).unwrap();
        let _ = s.send_to(&b[..n], from);
    }
}

/// This bench binary again, with `args` (`--serve-dns ADDR`, `--serve-udp-echo ADDR`,
/// `--serve-direct ADDR TARGET`).
pub fn spawn_self(args: &[String]) -> Proc {
    Proc(
        Command::new(std::env::current_exe().unwrap())
            .args(args)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// This bench binary again, as `serve_direct` on `listen` relaying to `target`.
pub fn eepsocks_direct(listen: SocketAddr, target: SocketAddr) -> Proc {
    spawn_self(&[
        "--serve-direct".into(),
        listen.to_string(),
        target.to_string(),
    ])
}

/// microsocks on `listen`, or None when it is not installed.
pub fn microsocks(listen: SocketAddr) -> Option<Proc> {
    Command::new("microsocks")
        .args(["-i", "127.0.0.1", "-p", &listen.port().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
        .map(Proc)
}

/// haproxy in TCP mode relaying `listen` to `target`, splicing when it can (the relay
/// design that moves bytes with the least CPU), or None when it is not installed.
pub async fn haproxy(listen: SocketAddr, target: SocketAddr) -> Option<Proc> {
    let cfg =
        std::env::temp_dir().join(format!("eepsocks-bench-haproxy-{}.cfg", std::process::id()));
    std::fs::write(
        &cfg,
        format!(
            "global\n  maxconn 4000\ndefaults\n  mode tcp\n  option splice-auto\n  timeout connect 5s\n  timeout client 120s\n  timeout server 120s\nlisten relay\n  bind {listen}\n  server s {target}\n"
        ),
    )
    .unwrap();
    let p = Command::new("haproxy")
        .arg("-f")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
        .map(Proc);
    if p.is_some() {
        // Listening means it has read its configuration.
        wait_port(listen).await;
    }
    let _ = std::fs::remove_file(&cfg);
    p
}

/// The front-end service. First byte: `U` + u64 length: read that many bytes, answer `k`
/// (upload); `D` + u64 length: send that many bytes (download). Nothing: idle.
/// One direction at a time, because microsocks' copy loop blocks on writes and deadlocks
/// when both directions are full (seen with an echo).
pub async fn service(l: tokio::net::TcpListener) {
    loop {
        let Ok((mut s, _)) = l.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let _ = s.set_nodelay(true);
            let mut head = [0u8; 9];
            if s.read_exact(&mut head).await.is_err() {
                return;
            }
            let n = u64::from_be_bytes(head[1..].try_into().unwrap()) as usize;
            let mut buf = vec![0u8; 256 * 1024];
            let mut done = 0;
            match head[0] {
                b'U' => {
                    while done < n {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => done += k,
                        }
                    }
                    let _ = s.write_all(b"k").await;
                }
                b'D' => {
                    while done < n {
                        let k = (n - done).min(buf.len());
                        if s.write_all(&buf[..k]).await.is_err() {
                            return;
                        }
                        done += k;
                    }
                }
                _ => {}
            }
        });
    }
}

// ---------------------------------------------------------------- through a router

/// `eepsocks run --router sam --transient` from `cmd` (plain, or inside the test network's
/// namespace), returned once it printed "ready".
pub fn run_eepsocks(mut cmd: Command, listen: &str, sam: &str, cfg: &Path) -> Child {
    use std::io::BufRead;
    let mut child = cmd
        .args(["run", "--router", "sam", "--transient", "--listen", listen])
        .args(["--sam", sam])
        .arg("--config")
        .arg(cfg)
        // EEPSOCKS_BENCH_LOG=info shows why streams failed (its lines go to stderr).
        .env(
            "EEPSOCKS_LOG",
            std::env::var("EEPSOCKS_BENCH_LOG").unwrap_or_else(|_| "error".into()),
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    for line in std::io::BufReader::new(out).lines() {
        if line.unwrap().starts_with("ready") {
            return child;
        }
    }
    let _ = child.wait();
    panic!("eepsocks exited before ready");
}

/// The eepsocks processes of the router part: (peer name, binary, config file written into
/// `dir`). The first is the one measured; the others are variants, and the baselines of
/// `EEPSOCKS_BENCH_BASELINE`.
pub fn eepsocks_variants(dir: &Path, exe: &str) -> Vec<(String, String, PathBuf)> {
    // Same tunnel settings as the test network's i2pd [socksproxy]: 0 hops, 2 tunnels.
    let base = "status_listen = \"off\"\n[options]\n\"inbound.length\" = 0\n\"outbound.length\" = 0\n\"inbound.quantity\" = 2\n\"outbound.quantity\" = 2\n";
    let exe = exe.to_string();
    let cfg = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let mut variants = vec![(
        "eepsocks".to_string(),
        exe.clone(),
        cfg("eepsocks.toml", base.into()),
    )];
    // EEPSOCKS_BENCH_VARIANTS=0: the measured one and the baselines only (shorter runs).
    let more = vec![
        (
            // the default until 2026-11-27
            "eepsocks, threads = 0 (one per core)".into(),
            exe.clone(),
            cfg("threads0.toml", format!("threads = 0\n{base}")),
        ),
        (
            // not the default: see README
            "eepsocks, LeaseSet published".into(),
            exe.clone(),
            cfg(
                "published.toml",
                format!("{base}\"i2cp.dontPublishLeaseSet\" = \"false\"\n"),
            ),
        ),
    ];
    if crate::env_num("EEPSOCKS_BENCH_VARIANTS", 1) != 0 {
        variants.extend(more);
    }
    // Before/after in one run: other eepsocks binaries (e.g. a build of the previous
    // commit), or this one with another config file (`cfg=<path>`); colon-separated.
    for p in std::env::var("EEPSOCKS_BENCH_BASELINE")
        .unwrap_or_default()
        .split(':')
        .filter(|p| !p.is_empty())
    {
        let (bin, conf) = match p.strip_prefix("cfg=") {
            Some(c) => (exe.clone(), c.into()),
            None => (p.to_string(), variants[0].2.clone()),
        };
        variants.push((format!("baseline {p}"), bin, conf));
    }
    variants
}

/// Session options of the router part: the test network's i2pd [socksproxy] tunnels.
pub const ZERO_HOP: &[(&str, &str)] = &[
    ("inbound.length", "0"),
    ("outbound.length", "0"),
    ("inbound.quantity", "2"),
    ("outbound.quantity", "2"),
];

/// A session for the bare SAM client peer: its own keys, the given tunnel options, on the
/// router at `sam`. Returns the session (keep it), its id once up, and its b32.
pub async fn sam_session(
    sam: &str,
    name: &str,
    options: &[(&str, &str)],
) -> (eepsocks::i2p::sam::Session, String, String) {
    use eepsocks::i2p::sam;
    let keys = sam::generate_keys(sam, 7).await.unwrap();
    let b32 = keys.destination().b32();
    let session = sam::Session::spawn(sam::SessionConfig {
        sam_addr: sam.to_string(),
        name: name.into(),
        keys: keys.into(),
        options: options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        warm_sockets: true,
        datagram_port: None,
        create_timeout: sam::CREATE_TIMEOUT,
        on_demand: true,
        shared_datagrams: None,
    });
    let id = session.wait_until_up().await.unwrap();
    (session, id, b32)
}

// ---------------------------------------------------------------- embedded router

/// Seconds from spawning `eepsocks demo` in a new directory to "ready", and to the first
/// successful GET of demo.i2p through it.
#[cfg(feature = "embedded")]
pub fn demo_startup(rt: &tokio::runtime::Runtime) -> (f64, f64) {
    use std::io::BufRead;
    use std::time::Instant;
    let dir = tempfile::tempdir().unwrap();
    let listen: SocketAddr = "127.0.0.1:24480".parse().unwrap();
    let t0 = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_eepsocks"))
        .args(["demo", "--listen", &listen.to_string(), "--dir"])
        .arg(dir.path().join("d"))
        // EEPSOCKS_BENCH_LOG=info shows why streams failed (its lines go to stderr).
        .env(
            "EEPSOCKS_LOG",
            std::env::var("EEPSOCKS_BENCH_LOG").unwrap_or_else(|_| "error".into()),
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let _p = Proc(child);
    for line in std::io::BufReader::new(out).lines() {
        if line.unwrap().starts_with("ready") {
            break;
        }
    }
    let ready = t0.elapsed().as_secs_f64();
    rt.block_on(async {
        loop {
            if tokio::time::timeout(Duration::from_secs(60), crate::clients::demo_get(listen))
                .await
                .is_ok_and(|r| r.is_ok())
            {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(180), "demo: no stream");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    (ready, t0.elapsed().as_secs_f64())
}

/// eepsocks' config for the emissary network: 1-hop tunnels (emissary refuses 0).
#[cfg(feature = "embedded")]
const ONE_HOP: &str = "status_listen = \"off\"\n[options]\n\"inbound.length\" = 1\n\"outbound.length\" = 1\n\"inbound.quantity\" = 2\n\"outbound.quantity\" = 2\n";

/// eepsocks' configs for the emissary network (1 hop) and the i2pd network (0 hops),
/// written into `dir`.
#[cfg(feature = "embedded")]
pub fn hop_configs(dir: &Path) -> (PathBuf, PathBuf) {
    let cfg = dir.join("one-hop.toml");
    std::fs::write(&cfg, ONE_HOP).unwrap();
    let zero = dir.join("zero-hop.toml");
    std::fs::write(&zero, ONE_HOP.replace("length\" = 1", "length\" = 0")).unwrap();
    (cfg, zero)
}

#[cfg(feature = "embedded")]
const ONE_HOP_OPTS: &[(&str, &str)] = &[
    ("inbound.length", "1"),
    ("outbound.length", "1"),
    ("inbound.quantity", "2"),
    ("outbound.quantity", "2"),
];

/// An emissary network of 4 routers in this process (2 floodfills, 2 with SAM) under `dir`,
/// with an echo service published through the first SAM router. Returns the network, the
/// echo's b32 and its session (keep it).
#[cfg(feature = "embedded")]
pub async fn emissary_echo(
    dir: &Path,
) -> (
    eepsocks::i2p::backend::devnet::Devnet,
    String,
    eepsocks::i2p::sam::Session,
) {
    use eepsocks::i2p::backend::devnet;
    let net = devnet::Devnet::start(devnet::Spec {
        floodfills: 2,
        relays: 0,
        sam_routers: 2,
        ssu2: false,
        dir: dir.to_path_buf(),
        net_id: 78,
    })
    .await
    .unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let (mut r, mut w) = s.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    let sam = net.sam()[0].to_string();
    let (site, id, b32) = sam_session(&sam, "bench-echo", ONE_HOP_OPTS).await;
    eepsocks::i2p::sam::forward(&sam, &id, port, true)
        .await
        .unwrap();
    (net, b32, site)
}

/// An HTTP/1.1 server for the filter benchmark: keep-alive, reads each request head and
/// its Content-Length body (counted, not kept), answers an empty 200.
pub async fn http_sink(l: tokio::net::TcpListener) {
    loop {
        let Ok((mut s, _)) = l.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let _ = s.set_nodelay(true);
            let mut buf: Vec<u8> = Vec::with_capacity(256 * 1024);
            let mut chunk = vec![0u8; 256 * 1024];
            loop {
                // The head.
                let end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let mut body: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                buf.drain(..end);
                // The body, counted off as it comes.
                let take = body.min(buf.len());
                buf.drain(..take);
                body -= take;
                while body > 0 {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) if n <= body => body -= n,
                        Ok(n) => {
                            buf.extend_from_slice(&chunk[body..n]);
                            body = 0;
                        }
                    }
                }
                if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }
}
