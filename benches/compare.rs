//! Benchmarks against peers in the same run: `sudo cargo bench --bench compare`.
//!
//! - router: eepsocks over SAM vs i2pd's own SOCKS proxy, same i2pd router (r2 of the
//!   offline test network), same echo service on r1: time to first byte, bulk throughput,
//!   connection setup rate with 1/16/128 clients.
//! - frontend: eepsocks' front end with a plain-TCP backend vs direct TCP vs microsocks
//!   (Debian's bare SOCKS5 server): handshake latency, throughput, RSS per idle connection;
//!   haproxy (a plain TCP relay with splice) for throughput only.
//!
//! - embedded: the emissary router. Start to first stream: `eepsocks demo` (a new offline
//!   emissary network + eepsocks) vs a new i2pd network of 2 routers (first stream through
//!   i2pd's SOCKS). Throughput: eepsocks on an emissary network vs i2pd's SOCKS and eepsocks
//!   on an i2pd network (emissary: 4 routers, 1-hop tunnels; i2pd: 2 routers, 0 hops; 4-router
//!   i2pd networks sometimes built no stream in 180 s), echo service on another router.
//!
//! Rounds alternate between peers; tables report medians. `EEPSOCKS_BENCH=frontend|router`
//! runs one part; `EEPSOCKS_BENCH_QUICK=1` shrinks every size (a smoke run).
//! Router part, for before/after in one run: `EEPSOCKS_BENCH_BASELINE=<binary>:cfg=<toml>`
//! adds peers (another eepsocks build, or this one with another config);
//! `EEPSOCKS_BENCH_ROUNDS`, `EEPSOCKS_BENCH_RATE_SECS`, `EEPSOCKS_BENCH_CLIENTS=1,16`.
//! Front end: `EEPSOCKS_BENCH_THREADS` (eepsocks' `threads`, default 1).
//! Results are printed as markdown (docs/benchmarks.md holds a copy with the date).

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

static IDLE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(10_000);

const B32: &str = "ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p";

fn quick() -> bool {
    std::env::var_os("EEPSOCKS_BENCH_QUICK").is_some()
}

/// A numeric setting from the environment, or `default`.
fn env_num(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve-direct") {
        serve_direct(args[2].parse().unwrap(), args[3].parse().unwrap());
        return;
    }
    let nofile = raise_nofile();
    // A proxied connection costs the proxy 2 fds, and this process 2 (client + service).
    IDLE.store(
        (nofile.saturating_sub(200) / 2).min(10_000) as usize,
        std::sync::atomic::Ordering::Relaxed,
    );
    let part = std::env::var("EEPSOCKS_BENCH").unwrap_or_else(|_| "all".into());
    println!(
        "# eepsocks benchmarks ({} cores, {})\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        if quick() { "QUICK sizes" } else { "full sizes" }
    );
    if part == "all" || part == "frontend" {
        frontend();
    }
    if part == "all" || part == "router" {
        router();
    }
    #[cfg(feature = "embedded")]
    if part == "all" || part == "embedded" {
        embedded_part::embedded();
    }
}

/// Child process: eepsocks' server loop with a backend that opens plain TCP to `target`.
fn serve_direct(listen: SocketAddr, target: SocketAddr) {
    // The runtime `eepsocks run` builds, with the proxy's default `threads` unless set.
    let default = eepsocks::config::Config::default().threads as u64;
    let threads = env_num("EEPSOCKS_BENCH_THREADS", default) as usize;
    let rt = eepsocks::server::runtime(threads).unwrap();
    rt.block_on(async move {
        let l = tokio::net::TcpListener::bind(listen).await.unwrap();
        let limits = eepsocks::conn::Limits::new(Duration::from_secs(30), Duration::from_secs(30));
        let router = Arc::new(eepsocks::router::DirectRouter { addr: target });
        eepsocks::server::run(l, router, Arc::new(limits), 100_000).await;
    });
}

/// Raise the soft fd limit to the hard one (children inherit it). Returns the limit.
fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    lim.rlim_cur
}

// ---------------------------------------------------------------- clients

#[derive(Clone)]
enum Via {
    Direct(SocketAddr),
    /// A bare SAM client: new connection, HELLO, STREAM CONNECT (session id, destination).
    Sam(SocketAddr, String, String),
    /// SOCKS5 to `proxy`, CONNECT by name.
    Name(SocketAddr, String, u16),
    /// SOCKS5 to `proxy`, CONNECT by IPv4 (microsocks would resolve a name itself).
    Ip(SocketAddr, SocketAddr),
}

async fn open(via: &Via) -> std::io::Result<TcpStream> {
    let (proxy, req) = match via {
        Via::Sam(sam, id, dest) => return sam_open(*sam, id, dest).await,
        Via::Direct(a) => {
            let s = TcpStream::connect(a).await?;
            s.set_nodelay(true)?;
            return Ok(s);
        }
        Via::Name(p, host, port) => {
            let mut r = vec![5, 1, 0, 3, host.len() as u8];
            r.extend_from_slice(host.as_bytes());
            r.extend_from_slice(&port.to_be_bytes());
            (p, r)
        }
        Via::Ip(p, SocketAddr::V4(t)) => {
            let mut r = vec![5, 1, 0, 1];
            r.extend_from_slice(&t.ip().octets());
            r.extend_from_slice(&t.port().to_be_bytes());
            (p, r)
        }
        Via::Ip(..) => unreachable!("IPv4 targets only"),
    };
    let mut s = TcpStream::connect(proxy).await?;
    s.set_nodelay(true)?;
    s.write_all(&[5, 1, 0]).await?;
    let mut m = [0u8; 2];
    s.read_exact(&mut m).await?;
    if m != [5, 0] {
        return Err(std::io::Error::other("method refused"));
    }
    s.write_all(&req).await?;
    let mut rep = [0u8; 10];
    s.read_exact(&mut rep).await?;
    if rep[1] != 0 {
        return Err(std::io::Error::other(format!(
            "SOCKS reply {:#04x}",
            rep[1]
        )));
    }
    Ok(s)
}

/// What every SAM client does per stream (no warm connections): connect, HELLO, STREAM
/// CONNECT. The router sends one line per command and nothing more until we write, so
/// reading a buffer up to the newline takes no stream data.
async fn sam_open(sam: SocketAddr, id: &str, dest: &str) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(sam).await?;
    s.set_nodelay(true)?;
    async fn line(s: &mut TcpStream) -> std::io::Result<String> {
        let mut v = Vec::with_capacity(128);
        let mut b = [0u8; 256];
        while !v.ends_with(b"\n") {
            let n = s.read(&mut b).await?;
            if n == 0 {
                return Err(std::io::Error::other("SAM closed"));
            }
            v.extend_from_slice(&b[..n]);
        }
        Ok(String::from_utf8_lossy(&v).into_owned())
    }
    s.write_all(b"HELLO VERSION MIN=3.1 MAX=3.3\n").await?;
    let l = line(&mut s).await?;
    if !l.contains("RESULT=OK") {
        return Err(std::io::Error::other(l));
    }
    s.write_all(format!("STREAM CONNECT ID={id} DESTINATION={dest} SILENT=false\n").as_bytes())
        .await?;
    let l = line(&mut s).await?;
    if !l.contains("RESULT=OK") {
        return Err(std::io::Error::other(l));
    }
    Ok(s)
}

/// Connect + 16-byte echo round trip.
async fn ttfb(via: &Via) -> std::io::Result<Duration> {
    let t = Instant::now();
    let mut s = open(via).await?;
    s.write_all(b"0123456789abcdef").await?;
    let mut b = [0u8; 16];
    s.read_exact(&mut b).await?;
    Ok(t.elapsed())
}

/// `bytes` each way through an echo, concurrently; returns MiB/s (one direction).
async fn bulk(via: &Via, bytes: usize) -> std::io::Result<f64> {
    let s = open(via).await?;
    let (mut r, mut w) = s.into_split();
    let t = Instant::now();
    let writer = tokio::spawn(async move {
        let block = vec![0x5au8; 64 * 1024];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(block.len());
            w.write_all(&block[..n]).await?;
            left -= n;
        }
        Ok::<_, std::io::Error>(w)
    });
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0;
    while got < bytes {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::other(format!("EOF after {got} of {bytes}")));
        }
        got += n;
    }
    let _w = writer.await.unwrap()?;
    Ok(bytes as f64 / (1 << 20) as f64 / t.elapsed().as_secs_f64())
}

/// `clients` workers, each opening streams (connect + echo + close) for `dur`.
async fn setup_rate(via: &Via, clients: usize, dur: Duration) -> (f64, usize) {
    let t = Instant::now();
    let mut hs = Vec::new();
    for _ in 0..clients {
        let via = via.clone();
        hs.push(tokio::spawn(async move {
            let (mut ok, mut fail) = (0usize, 0usize);
            while t.elapsed() < dur {
                match tokio::time::timeout(Duration::from_secs(30), ttfb(&via)).await {
                    Ok(Ok(_)) => ok += 1,
                    _ => fail += 1,
                }
            }
            (ok, fail)
        }));
    }
    let (mut ok, mut fail) = (0, 0);
    for h in hs {
        let (o, f) = h.await.unwrap();
        ok += o;
        fail += f;
    }
    (ok as f64 / t.elapsed().as_secs_f64(), fail)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

/// The front-end service. First byte: `U` + u64 length: read that many bytes, answer `k`
/// (upload); `D` + u64 length: send that many bytes (download). Nothing: idle.
/// One direction at a time, because microsocks' copy loop blocks on writes and deadlocks
/// when both directions are full (seen with an echo).
async fn service(l: tokio::net::TcpListener) {
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

/// One-direction transfer of `bytes` through the front-end service; returns MiB/s.
async fn transfer(via: &Via, up: bool, bytes: usize) -> std::io::Result<f64> {
    let mut s = open(via).await?;
    let t = Instant::now();
    let mut head = vec![if up { b'U' } else { b'D' }];
    head.extend_from_slice(&(bytes as u64).to_be_bytes());
    s.write_all(&head).await?;
    let mut buf = vec![0x5au8; 256 * 1024];
    if up {
        let mut left = bytes;
        while left > 0 {
            let n = left.min(64 * 1024);
            s.write_all(&buf[..n]).await?;
            left -= n;
        }
        let mut k = [0u8; 1];
        s.read_exact(&mut k).await?;
    } else {
        let mut got = 0;
        while got < bytes {
            match s.read(&mut buf).await? {
                0 => return Err(std::io::Error::other("early EOF")),
                n => got += n,
            }
        }
    }
    Ok(bytes as f64 / (1 << 20) as f64 / t.elapsed().as_secs_f64())
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// `eepsocks run --router sam --transient` from `cmd` (plain, or inside the test network's
/// namespace), returned once it printed "ready".
fn run_eepsocks(mut cmd: Command, listen: &str, sam: &str, cfg: &std::path::Path) -> Child {
    use std::io::BufRead;
    let mut child = cmd
        .args(["run", "--router", "sam", "--transient", "--listen", listen])
        .args(["--sam", sam])
        .arg("--config")
        .arg(cfg)
        .env("EEPSOCKS_LOG", "error")
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

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_port(a: SocketAddr) {
    for _ in 0..200 {
        if TcpStream::connect(a).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{a} never opened");
}

// ---------------------------------------------------------------- front end alone

/// haproxy in TCP mode relaying `listen` to `target`, splicing when it can (the relay
/// design that moves bytes with the least CPU), or None when it is not installed.
async fn haproxy(listen: SocketAddr, target: SocketAddr) -> Option<Proc> {
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

fn frontend() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo = l.local_addr().unwrap();
        tokio::spawn(service(l));
        let eep_addr: SocketAddr = "127.0.0.1:24471".parse().unwrap();
        let ms_addr: SocketAddr = "127.0.0.1:24472".parse().unwrap();
        let eep = Proc(
            Command::new(std::env::current_exe().unwrap())
                .args(["--serve-direct", &eep_addr.to_string(), &echo.to_string()])
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let ms = Command::new("microsocks")
            .args(["-i", "127.0.0.1", "-p", &ms_addr.port().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()
            .map(Proc);
        wait_port(eep_addr).await;
        let mut peers: Vec<(&str, Via, Option<u32>)> = vec![
            ("direct TCP", Via::Direct(echo), None),
            ("eepsocks", Via::Name(eep_addr, B32.into(), 80), Some(eep.0.id())),
        ];
        match &ms {
            Some(p) => {
                wait_port(ms_addr).await;
                peers.push(("microsocks", Via::Ip(ms_addr, echo), Some(p.0.id())));
            }
            None => println!("(microsocks not installed: apt-get install microsocks)\n"),
        }
        // Not a SOCKS server: a plain TCP relay, measured for throughput only, to show what
        // the fastest established relay gets through two loopback connections here.
        let n_socks = peers.len();
        let hap_addr: SocketAddr = "127.0.0.1:24473".parse().unwrap();
        let hap = haproxy(hap_addr, echo).await;
        match &hap {
            Some(_) => peers.push(("haproxy (TCP relay, splice)", Via::Direct(hap_addr), None)),
            None => println!("(haproxy not installed: apt-get install haproxy)\n"),
        }
        let q = quick();
        let rounds = if q { 2 } else { 5 };
        let n_hs = if q { 100 } else { 1000 };
        let bulk_bytes = if q { 16 << 20 } else { 256 << 20 };
        let idle = if q { 1000 } else { IDLE.load(std::sync::atomic::Ordering::Relaxed) };

        // idle connections first, before TIME_WAIT sockets pile up
        let mut rss = Vec::new();
        for (name, via, pid) in &peers {
            let Some(pid) = pid else { continue };
            tokio::time::sleep(Duration::from_millis(300)).await;
            let before = rss_kib(*pid);
            let mut conns = Vec::with_capacity(idle);
            for _ in 0..idle {
                conns.push(open(via).await.expect("idle connection"));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            let after = rss_kib(*pid);
            drop(conns);
            rss.push((name.to_string(), before, after));
            tokio::time::sleep(Duration::from_millis(500)).await;
        }

        // Handshakes interleaved one by one across peers, so drift hits all alike.
        let mut hs: Vec<Vec<f64>> = vec![Vec::new(); peers.len()];
        for _ in 0..rounds * n_hs {
            for (i, (_, via, _)) in peers.iter().enumerate().take(n_socks) {
                let t = Instant::now();
                let s = open(via).await.expect("handshake");
                hs[i].push(t.elapsed().as_secs_f64() * 1e6);
                drop(s);
            }
        }
        let mut tp: Vec<Vec<f64>> = vec![Vec::new(); peers.len()];
        let mut tdown: Vec<Vec<f64>> = vec![Vec::new(); peers.len()];
        for round in 0..5 {
            for k in 0..peers.len() {
                // alternate the order every round
                let i = if round % 2 == 0 { k } else { peers.len() - 1 - k };
                let via = &peers[i].1;
                tp[i].push(transfer(via, true, bulk_bytes).await.expect("upload"));
                tdown[i].push(transfer(via, false, bulk_bytes).await.expect("download"));
            }
        }
        println!("## Front end alone (loopback; eepsocks with a plain-TCP backend)\n");
        println!(
            "handshake = TCP connect + SOCKS5 greeting + CONNECT until the success reply: {} sequential per peer, interleaved across peers one by one, median; throughput = {} MiB up, then down (one direction at a time), 5 rounds alternating, median.\n",
            rounds * n_hs,
            bulk_bytes >> 20
        );
        println!("| peer | handshake µs | eepsocks ÷ peer | upload MiB/s | eepsocks ÷ peer | download MiB/s | eepsocks ÷ peer |");
        println!("|---|---|---|---|---|---|---|");
        let e_hs = median(&mut hs[1].clone());
        let e_up = median(&mut tp[1].clone());
        let e_down = median(&mut tdown[1].clone());
        for (i, (name, _, _)) in peers.iter().enumerate() {
            if i >= n_socks {
                let u = median(&mut tp[i]);
                let d = median(&mut tdown[i]);
                println!(
                    "| {name} | — | — | {u:.0} | {:.2} | {d:.0} | {:.2} |",
                    e_up / u,
                    e_down / d
                );
                continue;
            }
            let h = median(&mut hs[i]);
            let u = median(&mut tp[i]);
            let d = median(&mut tdown[i]);
            println!(
                "| {name} | {h:.1} | {:.2} | {u:.0} | {:.2} | {d:.0} | {:.2} |",
                e_hs / h,
                e_up / u,
                e_down / d
            );
        }
        println!("\n| proxy | idle connections | RSS before KiB | RSS after KiB | KiB per connection |");
        println!("|---|---|---|---|---|");
        for (name, before, after) in rss {
            println!(
                "| {name} | {idle} | {before} | {after} | {:.2} |",
                (after.saturating_sub(before)) as f64 / idle as f64
            );
        }
        println!();
    });
}

// ---------------------------------------------------------------- through a real router

fn router() {
    use support::testnet::{sam_addr, socks_addr, Kind, ServiceSpec, Testnet};
    let net = Testnet::start(
        2,
        &[ServiceSpec {
            name: "echo",
            port: 7001,
            kind: Kind::Echo,
        }],
    );
    let echo_b32 = net.service("echo").b32();
    let dir = tempfile::tempdir().unwrap();
    // Same tunnel settings as the test network's i2pd [socksproxy]: 0 hops, 2 tunnels.
    let base = "status_listen = \"off\"\n[options]\n\"inbound.length\" = 0\n\"outbound.length\" = 0\n\"inbound.quantity\" = 2\n\"outbound.quantity\" = 2\n";
    let exe = env!("CARGO_BIN_EXE_eepsocks").to_string();
    let cfg = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    // eepsocks processes: (peer name, binary, config). The first is the one measured.
    let mut variants = vec![
        (
            "eepsocks".to_string(),
            exe.clone(),
            cfg("eepsocks.toml", base.into()),
        ),
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
    let mut procs = Vec::new();
    let mut eeps: Vec<(String, Via, Option<u32>)> = Vec::new();
    for (k, (name, bin, conf)) in variants.into_iter().enumerate() {
        let listen = format!("127.0.0.1:{}", 4447 + k);
        let child = run_eepsocks(net.command(bin), &listen, &sam_addr(2), &conf);
        let via = Via::Name(listen.parse().unwrap(), echo_b32.clone(), 80);
        eeps.push((name, via, Some(child.id())));
        procs.push(Proc(child));
    }
    let router_pid = net.router_pid(2);
    let mut eeps = eeps.into_iter();
    let peers = vec![
        (
            "i2pd SOCKS".to_string(),
            Via::Name(socks_addr(2).parse().unwrap(), echo_b32.clone(), 80),
            None,
        ),
        eeps.next().unwrap(),
    ];
    let q = quick();
    let ns = net.ns.clone();
    let echo_b32 = echo_b32.clone();
    // Run the clients on threads inside the namespace: a runtime built on a thread that
    // entered it spawns its workers there too.
    let report = std::thread::spawn(move || {
        let f = std::fs::File::open(format!("/var/run/netns/{ns}")).unwrap();
        use std::os::fd::AsRawFd;
        assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            // The third peer: a bare SAM client on the same router and session settings.
            let sam = sam_addr(2);
            let keys = eepsocks::sam::generate_keys(&sam, 7).await.unwrap();
            let session = eepsocks::sam::Session::spawn(eepsocks::sam::SessionConfig {
                sam_addr: sam.clone(),
                name: "bench-raw".into(),
                keys,
                options: [
                    ("inbound.length", "0"),
                    ("outbound.length", "0"),
                    ("inbound.quantity", "2"),
                    ("outbound.quantity", "2"),
                ]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            });
            let id = session.wait_until_up().await.unwrap();
            let mut peers = peers;
            peers.push((
                "bare SAM client".into(),
                Via::Sam(sam.parse().unwrap(), id, echo_b32),
                None,
            ));
            peers.extend(eeps);
            router_rounds(peers, q, router_pid).await
        })
    })
    .join()
    .unwrap();
    println!("{report}");
    drop(procs);
    drop(net);
}

/// The whole machine's CPU seconds so far: (busy, total), from the first line of /proc/stat
/// (busy = everything but idle and iowait).
fn machine_cpu() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = f.iter().take(8).sum();
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ((total - idle) as f64 / hz, total as f64 / hz)
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the ")" that ends the command name: utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    f.iter().sum::<u64>() as f64 / hz
}

/// `peers`: name, how to reach it, and its eepsocks process (if any). The first three are
/// i2pd's SOCKS, eepsocks and the bare SAM client. The CPU per stream of each eepsocks and
/// of the i2pd router (`router_pid`) is reported.
async fn router_rounds(peers: Vec<(String, Via, Option<u32>)>, q: bool, router_pid: u32) -> String {
    // warm up: both must reach the echo before anything is timed
    for (name, via, _) in &peers {
        let t0 = Instant::now();
        loop {
            if ttfb(via).await.is_ok() {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(120), "{name}: no stream");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let rounds = env_num("EEPSOCKS_BENCH_ROUNDS", if q { 2 } else { 6 }) as usize;
    let n_ttfb = if q { 10 } else { 300 };
    let bulk_bytes = if q { 2 << 20 } else { 32 << 20 };
    let rate_dur = Duration::from_secs(env_num("EEPSOCKS_BENCH_RATE_SECS", if q { 2 } else { 3 }));
    // TTFB interleaved one by one across peers, so drift in the router hits both alike.
    let mut tt: Vec<Vec<f64>> = vec![Vec::new(); peers.len()];
    for k in 0..n_ttfb {
        for j in 0..peers.len() {
            let i = if k % 2 == 0 { j } else { peers.len() - 1 - j };
            tt[i].push(ttfb(&peers[i].1).await.expect("ttfb").as_secs_f64() * 1e3);
        }
    }
    let mut tp: Vec<Vec<f64>> = vec![Vec::new(); peers.len()];
    // EEPSOCKS_BENCH_CLIENTS=1,16 picks client counts (for quicker A/B runs).
    let concurrency: Vec<usize> = std::env::var("EEPSOCKS_BENCH_CLIENTS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 16, 128]);
    let mut rate: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); concurrency.len()]; peers.len()];
    let mut fails: Vec<Vec<usize>> = vec![vec![0; concurrency.len()]; peers.len()];
    // Per peer: CPU seconds of eepsocks, of i2pd, and streams, over the setup-rate runs.
    let mut cpu: Vec<(f64, f64, f64)> = vec![(0.0, 0.0, 0.0); peers.len()];
    // Per peer and client count: the whole machine's busy and total CPU seconds, streams.
    let mut machine: Vec<Vec<(f64, f64, f64)>> =
        vec![vec![(0.0, 0.0, 0.0); concurrency.len()]; peers.len()];
    for round in 0..rounds {
        for k in 0..peers.len() {
            let i = if round % 2 == 0 {
                k
            } else {
                peers.len() - 1 - k
            };
            let via = &peers[i].1;
            if round < 3 {
                tp[i].push(bulk(via, bulk_bytes).await.expect("bulk"));
            }
            for (c, &n) in concurrency.iter().enumerate() {
                let eep = || peers[i].2.map_or(0.0, cpu_secs);
                let (e0, r0) = (eep(), cpu_secs(router_pid));
                let m0 = machine_cpu();
                let t0 = Instant::now();
                let (r, f) = setup_rate(via, n, rate_dur).await;
                let m1 = machine_cpu();
                let streams = r * t0.elapsed().as_secs_f64();
                machine[i][c].0 += m1.0 - m0.0;
                machine[i][c].1 += m1.1 - m0.1;
                machine[i][c].2 += streams;
                cpu[i].0 += eep() - e0;
                cpu[i].1 += cpu_secs(router_pid) - r0;
                cpu[i].2 += streams;
                rate[i][c].push(r);
                fails[i][c] += f;
            }
        }
    }
    let mut o = String::new();
    use std::fmt::Write;
    let _ = writeln!(
        o,
        "## Through a real router (i2pd 2.45.1, offline test network, 0-hop tunnels)\n"
    );
    let _ = writeln!(
        o,
        "Same router (r2) and echo service (r1) for both. TTFB = connect + 16-byte echo, {n_ttfb} per peer interleaved one by one, median; bulk = {} MiB each way, 3 alternating rounds, median; setup rate = streams (connect + echo + close) per second with N clients for {} s, {rounds} alternating rounds, median; its ratios are medians of per-round ratios (each round against the peer's run next to it), in brackets the ratio of the medians.\n",
        bulk_bytes >> 20,
        rate_dur.as_secs()
    );
    let _ = writeln!(
        o,
        "| metric | i2pd SOCKS | eepsocks | ratio (eepsocks ÷ i2pd) | target | bare SAM client | eepsocks ÷ bare SAM |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|");
    let (a, b, c) = (median(&mut tt[0]), median(&mut tt[1]), median(&mut tt[2]));
    let _ = writeln!(
        o,
        "| TTFB ms | {a:.2} | {b:.2} | {:.2} | ≤ 1.10 | {c:.2} | {:.2} |",
        b / a,
        b / c
    );
    let (a, b, c) = (median(&mut tp[0]), median(&mut tp[1]), median(&mut tp[2]));
    let _ = writeln!(
        o,
        "| bulk MiB/s | {a:.2} | {b:.2} | {:.2} | ≥ 0.95 | {c:.2} | {:.2} |",
        b / a,
        b / c
    );
    // Setup-rate ratios pair each round with the peer's run next to it in time (the
    // median of per-round ratios), which cancels most of the machine's drift.
    let paired = |rate: &[Vec<Vec<f64>>], i: usize, j: usize, k: usize| {
        let mut r: Vec<f64> = rate[i][k]
            .iter()
            .zip(&rate[j][k])
            .map(|(x, y)| x / y)
            .collect();
        median(&mut r)
    };
    for (k, n) in concurrency.iter().enumerate() {
        let (eb, ec) = (paired(&rate, 1, 0, k), paired(&rate, 1, 2, k));
        // On copies: `paired` needs the rounds in their order.
        let (a, b, c) = (
            median(&mut rate[0][k].clone()),
            median(&mut rate[1][k].clone()),
            median(&mut rate[2][k].clone()),
        );
        let _ = writeln!(
            o,
            "| setup/s, {n} clients (failures {}/{}/{}) | {a:.1} | {b:.1} | {eb:.2} ({:.2}) | ≥ 1.0 | {c:.1} | {ec:.2} ({:.2}) |",
            fails[0][k],
            fails[1][k],
            fails[2][k],
            b / a,
            b / c,
        );
    }
    for i in 3..peers.len() {
        let rates: Vec<String> = (0..concurrency.len())
            .map(|k| {
                let (r, e) = (paired(&rate, i, 0, k), paired(&rate, i, 1, k));
                format!("{:.1} ({r:.2}; {e:.2})", median(&mut rate[i][k].clone()))
            })
            .collect();
        let _ = writeln!(
            o,
            "\n{}: TTFB {:.2} ms ({:.2} of i2pd), bulk {:.2} MiB/s, setup/s {} clients (÷ i2pd; ÷ eepsocks): {}",
            peers[i].0,
            median(&mut tt[i]),
            median(&mut tt[i]) / median(&mut tt[0]),
            median(&mut tp[i]),
            concurrency.iter().map(|n| n.to_string()).collect::<Vec<_>>().join("/"),
            rates.join(", ")
        );
    }
    let _ = writeln!(
        o,
        "\nWhole machine during the setup-rate runs (/proc/stat; every process, the bench client too): busy share of all cores, and busy CPU µs per stream:\n\n| path | {} |\n|---|{}",
        concurrency
            .iter()
            .map(|n| format!("{n} clients: busy %, µs/stream"))
            .collect::<Vec<_>>()
            .join(" | "),
        "---|".repeat(concurrency.len())
    );
    for (i, (name, _, _)) in peers.iter().enumerate() {
        let cells: Vec<String> = (0..concurrency.len())
            .map(|k| {
                let (busy, total, streams) = machine[i][k];
                format!("{:.0} %, {:.0}", busy / total * 100.0, busy / streams * 1e6)
            })
            .collect();
        let _ = writeln!(o, "| {name} | {} |", cells.join(" | "));
    }
    let _ = writeln!(
        o,
        "\nProcess CPU per stream (/proc/<pid>/stat; the bench client not counted):\n\n| path | streams | eepsocks µs/stream | i2pd µs/stream | total µs/stream |\n|---|---|---|---|---|"
    );
    for (i, (name, _, _)) in peers.iter().enumerate() {
        let (e, r, n) = cpu[i];
        let _ = writeln!(
            o,
            "| {name} | {n:.0} | {:.0} | {:.0} | {:.0} |",
            e / n * 1e6,
            r / n * 1e6,
            (e + r) / n * 1e6
        );
    }
    o
}

// ---------------------------------------------------------------- embedded router
#[cfg(feature = "embedded")]
mod embedded_part {
    use super::*;

    /// One stream that reaches the demo site: SOCKS5 by name, GET /, a 200.
    async fn demo_get(proxy: SocketAddr) -> std::io::Result<()> {
        let mut s = open(&Via::Name(proxy, "demo.i2p".into(), 80)).await?;
        s.write_all(b"GET / HTTP/1.0\r\nHost: demo.i2p\r\n\r\n")
            .await?;
        let mut v = Vec::new();
        s.read_to_end(&mut v).await?;
        if v.starts_with(b"HTTP/1.1 200") {
            Ok(())
        } else {
            Err(std::io::Error::other("not a 200"))
        }
    }

    /// Seconds from spawning `eepsocks demo` in a new directory to "ready", and to the first
    /// successful GET of demo.i2p through it.
    fn demo_startup(rt: &tokio::runtime::Runtime) -> (f64, f64) {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let listen: SocketAddr = "127.0.0.1:24480".parse().unwrap();
        let t0 = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_eepsocks"))
            .args(["demo", "--listen", &listen.to_string(), "--dir"])
            .arg(dir.path().join("d"))
            .env("EEPSOCKS_LOG", "error")
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
                if tokio::time::timeout(Duration::from_secs(60), demo_get(listen))
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

    /// Run `f` on a runtime whose threads are in the test network's namespace.
    fn in_netns<T: Send + 'static>(
        ns: &str,
        f: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>
            + Send
            + 'static,
    ) -> T {
        let ns = ns.to_string();
        std::thread::spawn(move || {
            let file = std::fs::File::open(format!("/var/run/netns/{ns}")).unwrap();
            use std::os::fd::AsRawFd;
            assert_eq!(
                unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) },
                0
            );
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(f())
        })
        .join()
        .unwrap()
    }

    const ONE_HOP: &str = "status_listen = \"off\"\n[options]\n\"inbound.length\" = 1\n\"outbound.length\" = 1\n\"inbound.quantity\" = 2\n\"outbound.quantity\" = 2\n";

    pub fn embedded() {
        use eepsocks::embedded::devnet;
        use support::testnet::{sam_addr, socks_addr, Kind, ServiceSpec, Testnet};
        let q = quick();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let echo_spec = [ServiceSpec {
            name: "echo",
            port: 7001,
            kind: Kind::Echo,
        }];

        // 1. From nothing to the first stream.
        let rounds = if q { 1 } else { 3 };
        let (mut ready, mut first, mut i2pd_first) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let (r, f) = demo_startup(&rt);
            ready.push(r);
            first.push(f);
            let net = Testnet::start(2, &echo_spec);
            i2pd_first.push(net.first_stream.as_secs_f64());
        }
        let mut out = String::new();
        out.push_str(&format!(
            "## Embedded router: start to first stream ({rounds} rounds, seconds, median [all])\n\n\
             | | eepsocks demo (6 emissary routers) | new i2pd network (2 routers), its SOCKS | ratio |\n|---|---|---|---|\n\
             | ready | {:.2} {:.2?} | | |\n| first stream | {:.2} {:.2?} | {:.2} {:.2?} | {:.2} |\n\n",
            median(&mut ready.clone()),
            ready,
            median(&mut first.clone()),
            first,
            median(&mut i2pd_first.clone()),
            i2pd_first,
            median(&mut first.clone()) / median(&mut i2pd_first.clone()),
        ));
        println!("{out}");

        // 2. Throughput: 4 routers each, echo on another router than the client's.
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("one-hop.toml");
        std::fs::write(&cfg, ONE_HOP).unwrap();
        let zero = dir.path().join("zero-hop.toml");
        std::fs::write(&zero, ONE_HOP.replace("length\" = 1", "length\" = 0")).unwrap();
        let (net, echo_b32, site) = rt.block_on(async {
            let net = devnet::Devnet::start(devnet::Spec {
                floodfills: 2,
                relays: 0,
                sam_routers: 2,
                ssu2: false,
                dir: dir.path().join("net"),
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
            let keys = eepsocks::sam::generate_keys(&sam, 7).await.unwrap();
            let b32 = keys.destination().b32();
            let site = eepsocks::sam::Session::spawn(eepsocks::sam::SessionConfig {
                sam_addr: sam.clone(),
                name: "bench-echo".into(),
                keys,
                options: ONE_HOP_OPTS
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            });
            let id = site.wait_until_up().await.unwrap();
            eepsocks::sam::forward(&sam, &id, port, true).await.unwrap();
            (net, b32, site)
        });
        let eep_em: SocketAddr = "127.0.0.1:24481".parse().unwrap();
        let _eep_em = Proc(run_eepsocks(
            Command::new(env!("CARGO_BIN_EXE_eepsocks")),
            &eep_em.to_string(),
            &net.sam()[1].to_string(),
            &cfg,
        ));

        // i2pd gets 0-hop tunnels and 2 routers: with 1 hop no tunnel was built in 180 s,
        // and a 4-router i2pd network once built no first stream in 180 s; emissary refuses
        // 0 hops. So i2pd has the easier path.
        let inet = Testnet::start(2, &echo_spec);
        let i2pd_echo = inet.service("echo").b32();
        let _eep_i2pd = Proc(run_eepsocks(
            inet.command(env!("CARGO_BIN_EXE_eepsocks")),
            "127.0.0.1:4447",
            &sam_addr(2),
            &zero,
        ));

        let bytes = if q { 1 << 20 } else { 8 << 20 };
        let n_ttfb = if q { 5 } else { 30 };
        let rounds = if q { 1 } else { 3 };
        let em_via = Via::Name(eep_em, echo_b32.clone(), 80);
        let i2pd_vias = [
            Via::Name(socks_addr(2).parse().unwrap(), i2pd_echo.clone(), 80),
            Via::Name("127.0.0.1:4447".parse().unwrap(), i2pd_echo.clone(), 80),
        ];
        // warm up every path
        rt.block_on(warm(&em_via));
        for v in &i2pd_vias {
            let v = v.clone();
            in_netns(&inet.ns, move || Box::pin(async move { warm(&v).await }));
        }
        let mut tt: Vec<Vec<f64>> = vec![Vec::new(); 3];
        let mut bw: Vec<Vec<f64>> = vec![Vec::new(); 3];
        for _ in 0..rounds {
            let v = em_via.clone();
            let (t, b) = rt.block_on(measure(v, n_ttfb, bytes));
            tt[2].extend(t);
            bw[2].push(b);
            for (i, v) in i2pd_vias.iter().enumerate() {
                let v = v.clone();
                let (t, b) = in_netns(&inet.ns, move || {
                    Box::pin(async move { measure(v, n_ttfb, bytes).await })
                });
                tt[i].extend(t);
                bw[i].push(b);
            }
        }
        let names = [
            "i2pd SOCKS (i2pd net)",
            "eepsocks (i2pd net)",
            "eepsocks (emissary net)",
        ];
        let mut o = format!(
            "## Embedded router: throughput (emissary: 4 routers, 1 hop; i2pd: 2 routers, 0 hops; {} MiB each \
             way, {rounds} rounds; TTFB {n_ttfb} per round)\n\n| path | TTFB ms | bulk MiB/s [all] | \
             bulk ÷ i2pd SOCKS |\n|---|---|---|---|\n",
            bytes >> 20
        );
        let base = median(&mut bw[0].clone());
        for i in 0..3 {
            o.push_str(&format!(
                "| {} | {:.2} | {:.2} {:.2?} | {:.2} |\n",
                names[i],
                median(&mut tt[i]),
                median(&mut bw[i].clone()),
                bw[i],
                median(&mut bw[i].clone()) / base
            ));
        }
        println!("{o}");
        drop(site);
        rt.block_on(net.stop());
    }

    const ONE_HOP_OPTS: &[(&str, &str)] = &[
        ("inbound.length", "1"),
        ("outbound.length", "1"),
        ("inbound.quantity", "2"),
        ("outbound.quantity", "2"),
    ];

    async fn warm(via: &Via) {
        let t0 = Instant::now();
        while tokio::time::timeout(Duration::from_secs(30), ttfb(via))
            .await
            .map_or(true, |r| r.is_err())
        {
            assert!(t0.elapsed() < Duration::from_secs(180), "no stream");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// `n` TTFB samples (ms) and one bulk transfer (MiB/s; 0 when it failed).
    async fn measure(via: Via, n: usize, bytes: usize) -> (Vec<f64>, f64) {
        let mut t = Vec::new();
        for _ in 0..n {
            if let Ok(Ok(d)) = tokio::time::timeout(Duration::from_secs(30), ttfb(&via)).await {
                t.push(d.as_secs_f64() * 1000.0);
            }
        }
        let b = match tokio::time::timeout(Duration::from_secs(300), bulk(&via, bytes)).await {
            Ok(Ok(b)) => b,
            _ => 0.0,
        };
        (t, b)
    }
}
