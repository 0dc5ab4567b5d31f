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
//! - filter: the HTTP leak filter in the same front end vs no filter: a 32 MiB POST body,
//!   and request-to-response time of browser requests on a keep-alive connection.
//!
//! - udp: datagrams through eepsocks' UDP ASSOCIATE (tests/support/udp_client.py) vs a bare
//!   SAM datagram client (benches/raw_sam_datagrams.py), same i2pd router and datagram echo:
//!   loss and round trips of a burst, round trip one at a time.
//!
//! - automap: HTTP CONNECT vs SOCKS5 handshakes on the same front end (direct TCP connect
//!   as the floor); answers per second of the DNS port vs a UDP echo (the floor).
//!
//! - exec: `eepsocks exec` (plain sockets) vs SOCKS5 on the same demo, daemon and site:
//!   TTFB, bulk, setup/s; and launch to first byte with a warm daemon.
//!
//! Rounds alternate between peers; tables report medians. `EEPSOCKS_BENCH=frontend|router|embedded|pq|filter|automap|udp|exec`
//! runs one part (`defaults`: the shipped tunnel defaults on 6 routers; `callgrind`: instructions per stream, alone); `EEPSOCKS_BENCH_QUICK=1` shrinks every size (a smoke run).
//! Router part, for before/after in one run: `EEPSOCKS_BENCH_BASELINE=<binary>:cfg=<toml>`
//! adds peers (another eepsocks build, or this one with another config);
//! `EEPSOCKS_BENCH_ROUNDS`, `EEPSOCKS_BENCH_RATE_SECS`, `EEPSOCKS_BENCH_CLIENTS=1,16`.
//! Front end: `EEPSOCKS_BENCH_THREADS` (eepsocks' `threads`, default 1).
//! Results are printed as markdown (docs/benchmarks.md holds a copy with the date).
//!
//! This file is the flow (what runs, in which order); `peers` starts the things compared,
//! `clients` generates the load and times it, `procfs` reads CPU and memory, `report`
//! prints the tables.

#[path = "../../tests/support/mod.rs"]
mod support;

mod clients;
#[cfg(feature = "embedded")]
mod exec;
mod peers;
mod procfs;
mod report;

use clients::{wait_port, Via};
use peers::Proc;
use std::net::SocketAddr;

/// A peer: its name, how to reach it, and the pid of its process when it is one we measure.
pub type Peer = (String, Via, Option<u32>);

static IDLE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(10_000);

const B32: &str = "ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p";

/// A local TCP service, and this bench's eepsocks front end on `front` relaying to it,
/// accepting. Returns the front end's process and the service's address.
async fn front_end<F>(
    front: SocketAddr,
    service: impl FnOnce(tokio::net::TcpListener) -> F,
) -> (Proc, SocketAddr)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = l.local_addr().unwrap();
    tokio::spawn(service(l));
    let p = peers::eepsocks_direct(front, target);
    wait_port(front).await;
    (p, target)
}

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
        peers::serve_direct(args[2].parse().unwrap(), args[3].parse().unwrap());
        return;
    }
    match args.get(1).map(String::as_str) {
        Some("--serve-dns") => return peers::serve_dns(args[2].parse().unwrap()),
        Some("--serve-udp-echo") => return peers::serve_udp_echo(args[2].parse().unwrap()),
        _ => {}
    }
    let nofile = procfs::raise_nofile();
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
    if part == "all" || part == "filter" {
        filter();
    }
    if part == "all" || part == "automap" {
        automap();
    }
    if part == "all" || part == "udp" {
        udp();
    }
    if part == "all" || part == "frontend" {
        frontend();
    }
    if part == "all" || part == "router" {
        router();
    }
    if part == "all" || part == "defaults" {
        defaults();
    }
    // Not in "all": it needs valgrind, and takes minutes of its own.
    if part == "callgrind" {
        callgrind();
    }
    #[cfg(feature = "embedded")]
    if part == "all" || part == "embedded" {
        embedded();
    }
    #[cfg(feature = "embedded")]
    if part == "all" || part == "pq" {
        post_quantum();
    }
    #[cfg(feature = "embedded")]
    if part == "all" || part == "exec" {
        exec::exec_vs_socks(quick());
    }
}

/// What ML-KEM costs on the embedded router: eepsocks with the default LeaseSet encryption
/// (`6,4` on emissary: ML-KEM-768 + X25519) against `4` (X25519 only), same emissary
/// network and echo (whose session has `6,4`), alternating. Each round starts a new
/// eepsocks process per setting (a new transient identity): the first stream carries the
/// new session's handshake; the TTFB samples after it ride the established ratchet.
#[cfg(feature = "embedded")]
fn post_quantum() {
    let q = quick();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (net, echo_b32, site) = rt.block_on(peers::emissary_echo(&dir.path().join("net")));
    let (pq_cfg, _) = peers::hop_configs(dir.path());
    let classic_cfg = dir.path().join("classic.toml");
    std::fs::write(
        &classic_cfg,
        std::fs::read_to_string(&pq_cfg).unwrap() + "\"i2cp.leaseSetEncType\" = \"4\"\n",
    )
    .unwrap();
    let rounds = if q { 1 } else { 5 };
    let n_ttfb = if q { 5 } else { 30 };
    let bytes = if q { 1 << 20 } else { 4 << 20 };
    let sam = net.sam()[1].to_string();
    // (setting, start to first stream ms, TTFB ms, bulk MiB/s)
    type Row = (&'static str, Vec<f64>, Vec<f64>, Vec<f64>);
    let mut rows: Vec<Row> = vec![
        ("6,4 (default)", vec![], vec![], vec![]),
        ("4", vec![], vec![], vec![]),
    ];
    for round in 0..rounds {
        for (i, cfg) in [&pq_cfg, &classic_cfg].into_iter().enumerate() {
            let listen: SocketAddr = format!("127.0.0.1:{}", 24490 + i).parse().unwrap();
            let cmd = std::process::Command::new(env!("CARGO_BIN_EXE_eepsocks"));
            let t0 = std::time::Instant::now();
            let eep = Proc(peers::run_eepsocks(cmd, &listen.to_string(), &sam, cfg));
            let ready = t0.elapsed().as_secs_f64() * 1000.0;
            let via = Via::Name(listen, echo_b32.clone(), 80);
            let (first, t, b) = clients::first_then_measure(&rt, &via, n_ttfb, bytes);
            println!(
                "round {round} {}: ready {ready:.0} ms, first stream {first:.0} ms, ttfb median {:.2} ms, {b:.2} MiB/s",
                rows[i].0,
                report::median(&mut t.clone())
            );
            rows[i].1.push(ready + first);
            rows[i].2.extend(t);
            rows[i].3.push(b);
            drop(eep);
        }
    }
    println!("\n| LeaseSet encryption | start to first stream, ms (median) | TTFB ms (median of {}) | bulk MiB/s (median) |", rounds * n_ttfb);
    println!("|---|---|---|---|");
    for (name, first, t, b) in &mut rows {
        println!(
            "| {name} | {:.0} | {:.2} | {:.2} |",
            report::median(first),
            report::median(t),
            report::median(b)
        );
    }
    drop(site);
    rt.block_on(net.stop());
}

/// Front end alone: eepsocks with a plain-TCP backend vs direct TCP, microsocks, haproxy.
fn frontend() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let eep_addr: SocketAddr = "127.0.0.1:24471".parse().unwrap();
        let ms_addr: SocketAddr = "127.0.0.1:24472".parse().unwrap();
        let (eep, echo) = front_end(eep_addr, peers::service).await;
        let ms = peers::microsocks(ms_addr);
        let mut list: Vec<Peer> = vec![
            ("direct TCP".into(), Via::Direct(echo), None),
            (
                "eepsocks".into(),
                Via::Name(eep_addr, B32.into(), 80),
                Some(eep.0.id()),
            ),
        ];
        match &ms {
            Some(p) => {
                wait_port(ms_addr).await;
                list.push(("microsocks".into(), Via::Ip(ms_addr, echo), Some(p.0.id())));
            }
            None => println!("(microsocks not installed: apt-get install microsocks)\n"),
        }
        // Not a SOCKS server: a plain TCP relay, measured for throughput only, to show what
        // the fastest established relay gets through two loopback connections here.
        let n_socks = list.len();
        let hap_addr: SocketAddr = "127.0.0.1:24473".parse().unwrap();
        let hap = peers::haproxy(hap_addr, echo).await;
        match &hap {
            Some(_) => list.push((
                "haproxy (TCP relay, splice)".into(),
                Via::Direct(hap_addr),
                None,
            )),
            None => println!("(haproxy not installed: apt-get install haproxy)\n"),
        }
        let q = quick();
        let rounds = if q { 2 } else { 5 };
        let n_hs = if q { 100 } else { 1000 };
        let bulk_bytes = if q { 16 << 20 } else { 256 << 20 };
        let idle = if q {
            1000
        } else {
            IDLE.load(std::sync::atomic::Ordering::Relaxed)
        };
        let runs = clients::frontend_rounds(&list, n_socks, rounds * n_hs, bulk_bytes, idle).await;
        report::frontend(runs);
    });
}

/// The HTTP leak filter's cost: one front-end process, the same HTTP client and server,
/// streams to port 80 (`filter = "auto"`: HTTP rules) vs port 8080 (nothing filtered).
fn filter() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let addr: SocketAddr = "127.0.0.1:24474".parse().unwrap();
        let (_front, _) = front_end(addr, peers::http_sink).await;
        let vias = [
            Via::Name(addr, B32.into(), 8080),
            Via::Name(addr, B32.into(), 80),
        ];
        let q = quick();
        let bytes = if q { 4 << 20 } else { 32 << 20 };
        let rounds = if q { 3 } else { 9 };
        let n_gets = if q { 200 } else { 2000 };
        let mut post: [Vec<f64>; 2] = Default::default();
        let mut gets: [Vec<f64>; 2] = Default::default();
        for round in 0..rounds {
            for k in 0..2 {
                let i = if round % 2 == 0 { k } else { 1 - k };
                post[i].push(clients::http_post(&vias[i], bytes).await.expect("POST"));
                let mut g = clients::http_gets(&vias[i], n_gets / rounds)
                    .await
                    .expect("GETs");
                gets[i].append(&mut g);
            }
        }
        report::filter(bytes, rounds, n_gets, post, gets);
    });
}

/// HTTP CONNECT vs SOCKS5 handshakes on one front end, and the DNS port's answers per second.
fn automap() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let addr: SocketAddr = "127.0.0.1:24475".parse().unwrap();
        let (_front, echo) = front_end(addr, peers::service).await;
        let list: Vec<Peer> = vec![
            ("direct TCP connect".into(), Via::Direct(echo), None),
            ("SOCKS5".into(), Via::Name(addr, B32.into(), 80), None),
            (
                "HTTP CONNECT".into(),
                Via::HttpConnect(addr, B32.into(), 80),
                None,
            ),
        ];
        let q = quick();
        let n = if q { 300 } else { 3000 };
        let hs = clients::handshakes(&list, list.len(), n).await;

        let dns_addr: SocketAddr = "127.0.0.1:24476".parse().unwrap();
        let floor_addr: SocketAddr = "127.0.0.1:24477".parse().unwrap();
        let _dns = peers::spawn_self(&["--serve-dns".into(), dns_addr.to_string()]);
        let _floor = peers::spawn_self(&["--serve-udp-echo".into(), floor_addr.to_string()]);
        // A name per query until the table holds them all, then names it already maps
        // (1,000: within the 1,024 mappings of one identity, so none is ever forgotten).
        let names: Vec<String> = (0..if q { 500 } else { 1000 })
            .map(|i| {
                let mut h = [0u8; 32];
                h[..8].copy_from_slice(&(i as u64).to_le_bytes());
                format!(
                    "{}.b32.i2p",
                    data_encoding::BASE32_NOPAD.encode(&h).to_lowercase()
                )
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let secs = std::time::Duration::from_secs(if q { 1 } else { 3 });
        let rounds = if q { 2 } else { 5 };
        let clients = 16;
        let (mut dns, mut floor) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            for k in 0..2 {
                let which = if round % 2 == 0 { k } else { 1 - k };
                if which == 0 {
                    dns.push(clients::dns_rate(dns_addr, &names, clients, secs, true).await);
                } else {
                    floor.push(clients::dns_rate(floor_addr, &names, clients, secs, false).await);
                }
            }
        }
        report::automap(&list, hs, n, dns, floor, clients, secs, names.len());
    });
}

/// UDP ASSOCIATE vs a bare SAM datagram client on r2 of the offline i2pd network, to a
/// datagram echo on r1; rounds alternate.
fn udp() {
    use support::testnet::{port, sam_addr, Kind, ServiceSpec, Testnet};
    let net = Testnet::start(
        2,
        &[ServiceSpec {
            name: "echo",
            port: 7001,
            kind: Kind::Echo,
        }],
    );
    // i2pd's SAM UDP port is its SAM port - 1.
    let sam_udp = |i: usize| port(i, 3) - 1;
    let echo = support::services::spawn_datagram_echo(
        Some(&net.ns),
        sam_addr(1),
        format!("127.0.0.1:{}", sam_udp(1)).parse().unwrap(),
        &[("inbound.length", "0"), ("outbound.length", "0")],
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("udp.toml");
    std::fs::write(
        &cfg,
        format!(
            "{}\n[udp]\nrate = 5000\n",
            support::consts::ZERO_HOP_OPTIONS
        ),
    )
    .unwrap();
    let exe = env!("CARGO_BIN_EXE_eepsocks");
    let _eep = Proc(peers::run_eepsocks(
        net.command(exe),
        "127.0.0.1:4447",
        &sam_addr(2),
        &cfg,
    ));
    let n = if quick() { "200" } else { "1000" };
    let run = |raw: bool| -> serde_json::Value {
        let mut c = net.command("python3");
        if raw {
            c.arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/benches/raw_sam_datagrams.py"
            ))
            .args([&port(2, 3).to_string(), &sam_udp(2).to_string(), &echo, n]);
        } else {
            c.arg(support::services::udp_client_script())
                .args(["127.0.0.1:4447", &echo, "9", n]);
        }
        let (j, _, out) = support::services::run_udp_client(c);
        assert!(!j.is_null(), "no result: {out}");
        j
    };
    let rounds = if quick() { 1 } else { 3 };
    let mut res: [Vec<serde_json::Value>; 2] = Default::default();
    for round in 0..rounds {
        for k in 0..2 {
            let raw = (round + k) % 2 == 1;
            res[raw as usize].push(run(raw));
        }
    }
    report::udp(n, &res);
    drop(net);
}

/// Through a real router: i2pd's SOCKS vs eepsocks (and its variants) vs a bare SAM client,
/// all on r2 of the offline i2pd test network, to the echo service on r1.
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
    let exe = env!("CARGO_BIN_EXE_eepsocks");
    let mut procs = Vec::new();
    let mut eeps: Vec<Peer> = Vec::new();
    for (k, (name, bin, conf)) in peers::eepsocks_variants(dir.path(), exe)
        .into_iter()
        .enumerate()
    {
        let listen = format!("127.0.0.1:{}", 4447 + k);
        let child = peers::run_eepsocks(net.command(bin), &listen, &sam_addr(2), &conf);
        let via = Via::Name(listen.parse().unwrap(), echo_b32.clone(), 80);
        eeps.push((name, via, Some(child.id())));
        procs.push(Proc(child));
    }
    let router_pid = net.router_pid(2);
    let mut eeps = eeps.into_iter();
    let list: Vec<Peer> = vec![
        (
            "i2pd SOCKS".to_string(),
            Via::Name(socks_addr(2).parse().unwrap(), echo_b32.clone(), 80),
            None,
        ),
        eeps.next().unwrap(),
    ];
    let q = quick();
    let runs = support::netns::block_on(&net.ns, move || async move {
        // The third peer: a bare SAM client on the same router and session settings.
        let sam = sam_addr(2);
        let (_session, id, _) = peers::sam_session(&sam, "bench-raw", peers::ZERO_HOP).await;
        let mut list = list;
        list.push((
            "bare SAM client".into(),
            Via::Sam(sam.parse().unwrap(), id, echo_b32),
            None,
        ));
        list.extend(eeps);
        clients::router_rounds(list, q, router_pid).await
    });
    println!("{}", report::router(runs));
    drop(procs);
    drop(net);
}

/// The emissary router: start to first stream, then throughput.
#[cfg(feature = "embedded")]
fn embedded() {
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
        let (r, f) = peers::demo_startup(&rt);
        ready.push(r);
        first.push(f);
        let net = Testnet::start(2, &echo_spec);
        i2pd_first.push(net.first_stream.as_secs_f64());
    }
    println!(
        "{}",
        report::embedded_startup(rounds, &ready, &first, &i2pd_first)
    );

    // 2. Throughput: echo on another router than the client's.
    let dir = tempfile::tempdir().unwrap();
    let (cfg, zero) = peers::hop_configs(dir.path());
    let (net, echo_b32, site) = rt.block_on(peers::emissary_echo(&dir.path().join("net")));
    let eep_em: SocketAddr = "127.0.0.1:24481".parse().unwrap();
    let eep_cmd = std::process::Command::new(env!("CARGO_BIN_EXE_eepsocks"));
    let _eep_em = Proc(peers::run_eepsocks(
        eep_cmd,
        &eep_em.to_string(),
        &net.sam()[1].to_string(),
        &cfg,
    ));

    // i2pd gets 0-hop tunnels and 2 routers: with 1 hop no tunnel was built in 180 s,
    // and a 4-router i2pd network once built no first stream in 180 s; emissary refuses
    // 0 hops. So i2pd has the easier path.
    let inet = Testnet::start(2, &echo_spec);
    let i2pd_echo = inet.service("echo").b32();
    let eep_cmd = inet.command(env!("CARGO_BIN_EXE_eepsocks"));
    let _eep_i2pd = Proc(peers::run_eepsocks(
        eep_cmd,
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
    let (tt, bw) =
        clients::embedded_rounds(&rt, &em_via, &i2pd_vias, &inet.ns, rounds, n_ttfb, bytes);
    println!(
        "{}",
        report::embedded_throughput(bytes, rounds, n_ttfb, tt, bw)
    );
    drop(site);
    rt.block_on(net.stop());
}

/// Instructions per stream of eepsocks' own process under callgrind, which counts the
/// same for the same binary and inputs where wall time on a shared machine does not.
/// eepsocks (`run --router sam`, the router part's config) runs under valgrind against
/// the fake SAM bridge of tests/support, which splices each STREAM CONNECT to a local echo;
/// one client opens streams one after another (SOCKS5 by b32, port 80, 16-byte echo,
/// close), like the router part's setup rate. Two runs (`n1` and `n2` streams) cancel the
/// start-up and shutdown: per stream = (total(n2) - total(n1)) / (n2 - n1). The output
/// files stay in `EEPSOCKS_CALLGRIND_DIR` (default /tmp/eepsocks-callgrind) for
/// `callgrind_annotate`.
fn callgrind() {
    use support::fake_sam::{test_keys, FakeSam};
    let n1 = env_num("EEPSOCKS_CALLGRIND_N1", 50) as usize;
    let n2 = env_num("EEPSOCKS_CALLGRIND_N2", 250) as usize;
    let out = std::path::PathBuf::from(
        std::env::var("EEPSOCKS_CALLGRIND_DIR")
            .unwrap_or_else(|_| "/tmp/eepsocks-callgrind".into()),
    );
    std::fs::create_dir_all(&out).unwrap();
    let exe = std::env::var("EEPSOCKS_CALLGRIND_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_eepsocks").to_string());
    let sam = FakeSam::start();
    let echo = support::services::local_echo();
    let b32 = test_keys(1).destination().b32();
    sam.service(&b32, echo);
    let dir = tempfile::tempdir().unwrap();
    let cfg = peers::eepsocks_variants(dir.path(), &exe).remove(0).2;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut totals = Vec::new();
    for (k, &n) in [n1, n2].iter().enumerate() {
        let file = out.join(format!("callgrind.{n}.out"));
        // EEPSOCKS_CALLGRIND_WRAP="strace -f -c -o FILE" runs the same load under another
        // tool (no instruction count then).
        let wrap = std::env::var("EEPSOCKS_CALLGRIND_WRAP").ok();
        let mut cmd = match &wrap {
            Some(w) => {
                let mut w = w.split_whitespace();
                let mut c = std::process::Command::new(w.next().expect("a wrapper command"));
                c.args(w);
                c
            }
            None => {
                let mut c = std::process::Command::new("valgrind");
                c.arg("--tool=callgrind")
                    .arg(format!("--callgrind-out-file={}", file.display()));
                c
            }
        };
        cmd.arg(&exe)
            .stderr(std::fs::File::create(out.join(format!("stderr.{n}"))).unwrap());
        let listen = format!("127.0.0.1:{}", 4490 + k);
        let child = peers::run_eepsocks(cmd, &listen, &sam.addr(), &cfg);
        let via = Via::Name(listen.parse().unwrap(), b32.clone(), 80);
        rt.block_on(async {
            for i in 0..n {
                clients::ttfb(&via)
                    .await
                    .unwrap_or_else(|e| panic!("stream {i}: {e}"));
            }
            // The warm pool's refill after the last stream, and the last close.
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        });
        let mut child = Proc(child);
        unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
        let _ = child.0.wait();
        if wrap.is_some() {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let total: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("summary: ").or(l.strip_prefix("totals: ")))
            .and_then(|v| v.trim().parse().ok())
            .expect("callgrind summary line");
        println!("{n} streams: {total} instructions ({})", file.display());
        totals.push(total);
    }
    if totals.len() < 2 {
        return;
    }
    let per = (totals[1] as f64 - totals[0] as f64) / (n2 - n1) as f64;
    println!("\neepsocks instructions per stream (callgrind): {per:.0}");
}

/// Tunnel options of the shipped defaults (`config::DEFAULT_OPTIONS`), for the bare SAM peer.
const DEFAULT_TUNNELS: &[(&str, &str)] = &[
    ("inbound.length", "3"),
    ("outbound.length", "3"),
    ("inbound.quantity", "3"),
    ("outbound.quantity", "3"),
];

/// The shipped defaults on a network that can build them: 6 i2pd routers, every tunnel 3
/// hops × 3 each way (the echo's on r1, i2pd's SOCKS and exploratory tunnels on r6),
/// eepsocks on r6's SAM with no `[options]` (its defaults), a bare SAM client with those
/// tunnel options. Session creation: eepsocks from its start to its first stream, the
/// bare SAM session from SESSION CREATE to its answer, i2pd's SOCKS from the routers' start
/// to its first stream. Then the router part's TTFB, bulk and setup rates.
fn defaults() {
    use std::time::{Duration, Instant};
    use support::testnet::{sam_addr, socks_addr, Kind, ServiceSpec, Testnet};
    const N: usize = 6;
    let net = Testnet::start_tunnels(
        N,
        &[ServiceSpec {
            name: "echo",
            port: 7001,
            kind: Kind::Echo,
        }],
        3,
        3,
    );
    let i2pd_first = net.first_stream;
    let echo_b32 = net.service("echo").b32();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("defaults.toml");
    // EEPSOCKS_BENCH_MAX_CLIENTS raises eepsocks' slots (streams whose client closed hold
    // one for 30 s; docs/benchmarks.md): the tunnels stay the defaults.
    let max = std::env::var("EEPSOCKS_BENCH_MAX_CLIENTS")
        .map(|n| format!("max_clients = {n}\n"))
        .unwrap_or_default();
    std::fs::write(&cfg, format!("{max}status_listen = \"off\"\n")).unwrap();
    let listen = "127.0.0.1:4447";
    let t0 = Instant::now();
    let exe = env!("CARGO_BIN_EXE_eepsocks");
    let child = Proc(peers::run_eepsocks(
        net.command(exe),
        listen,
        &sam_addr(N),
        &cfg,
    ));
    let ready = t0.elapsed();
    let eep = Via::Name(listen.parse().unwrap(), echo_b32.clone(), 80);
    let socks = Via::Name(socks_addr(N).parse().unwrap(), echo_b32.clone(), 80);
    let pid = child.0.id();
    let router_pid = net.router_pid(N);
    let q = quick();
    let (first, created, runs) = support::netns::block_on(&net.ns, move || async move {
        let first = loop {
            if clients::ttfb(&eep).await.is_ok() {
                break t0.elapsed();
            }
            assert!(
                t0.elapsed() < Duration::from_secs(300),
                "eepsocks: no stream"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let sam = sam_addr(N);
        let t = Instant::now();
        let (_session, id, _) = peers::sam_session(&sam, "bench-raw", DEFAULT_TUNNELS).await;
        let created = t.elapsed();
        let list: Vec<Peer> = vec![
            ("i2pd SOCKS".to_string(), socks, None),
            ("eepsocks".to_string(), eep, Some(pid)),
            (
                "bare SAM client".into(),
                Via::Sam(sam.parse().unwrap(), id, echo_b32),
                None,
            ),
        ];
        (
            first,
            created,
            clients::router_rounds(list, q, router_pid).await,
        )
    });
    println!("## Shipped defaults (3 hops × 3 tunnels) on {N} i2pd routers\n");
    println!("| session creation, s | |\n|---|---|");
    println!(
        "| i2pd SOCKS: routers' start to its first stream | {:.1} |",
        i2pd_first.as_secs_f64()
    );
    println!(
        "| eepsocks: start to `ready` / to its first stream | {:.1} / {:.1} |",
        ready.as_secs_f64(),
        first.as_secs_f64()
    );
    println!(
        "| bare SAM: SESSION CREATE to its answer | {:.1} |\n",
        created.as_secs_f64()
    );
    // The router part's heading names its 0-hop network; this one is not.
    let table = report::router(runs).replace(
        "offline test network, 0-hop tunnels",
        "offline test network of 6 routers, 3-hop × 3 tunnels",
    );
    println!("{}", table.replace("Same router (r2)", "Same router (r6)"));
    drop(child);
    drop(net);
}
