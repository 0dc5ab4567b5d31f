//! The load generators: SOCKS5 and bare SAM clients, the timed operations (TTFB, bulk,
//! setup rate, one-way transfers) and the schedules that run them across peers
//! (alternating or interleaved, so drift hits every peer alike).

use crate::procfs::{cpu_secs, machine_cpu, rss_kib};
use crate::report::{FrontendRuns, RouterRuns};
use crate::{env_num, Peer};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Clone)]
pub enum Via {
    Direct(SocketAddr),
    /// A bare SAM client: new connection, HELLO, STREAM CONNECT (session id, destination).
    Sam(SocketAddr, String, String),
    /// SOCKS5 to `proxy`, CONNECT by name.
    Name(SocketAddr, String, u16),
    /// SOCKS5 to `proxy`, CONNECT by IPv4 (microsocks would resolve a name itself).
    Ip(SocketAddr, SocketAddr),
    /// HTTP CONNECT to `proxy` by name.
    HttpConnect(SocketAddr, String, u16),
}

pub async fn open(via: &Via) -> std::io::Result<TcpStream> {
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
        Via::HttpConnect(p, host, port) => return http_connect(*p, host, *port).await,
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

/// CONNECT as curl -p sends it, then the response head up to its blank line (eepsocks sends
/// nothing after it until the stream has data).
async fn http_connect(proxy: SocketAddr, host: &str, port: u16) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(proxy).await?;
    s.set_nodelay(true)?;
    let req = format!(
        "CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: curl/8.5.0\r\n\
         Proxy-Connection: Keep-Alive\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let head = read_until(&mut s, b"\r\n\r\n").await?;
    if !head.starts_with(b"HTTP/1.1 200") {
        return Err(std::io::Error::other(
            String::from_utf8_lossy(&head).into_owned(),
        ));
    }
    Ok(s)
}

/// Bytes up to `end`, for servers that send nothing after it until we write again (a
/// proxy's reply head, a SAM line): reading a buffer at a time takes no stream data.
async fn read_until(s: &mut TcpStream, end: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut v = Vec::with_capacity(128);
    let mut b = [0u8; 256];
    while !v.ends_with(end) {
        let n = s.read(&mut b).await?;
        if n == 0 {
            return Err(std::io::Error::other("closed before the end of a reply"));
        }
        v.extend_from_slice(&b[..n]);
    }
    Ok(v)
}

/// A DNS A query for `name` with id `id` (RD set), as stub resolvers send it.
pub fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// Answers per second from a DNS server at `server`: `clients` tasks, each sending one A
/// query at a time (for `names`, in turn) for `dur`. Every answer must echo its id, and,
/// with `answered`, be NOERROR with an answer record (not SERVFAIL: a full table).
pub async fn dns_rate(
    server: SocketAddr,
    names: &[String],
    clients: usize,
    dur: Duration,
    answered: bool,
) -> f64 {
    let t = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let names: Vec<String> = names.iter().skip(c).step_by(clients).cloned().collect();
        tasks.push(tokio::spawn(async move {
            let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            sock.connect(server).await.unwrap();
            let mut buf = [0u8; 1500];
            let mut n = 0u64;
            let mut id = 0u16;
            while t.elapsed() < dur {
                id = id.wrapping_add(1);
                let q = dns_query(id, &names[n as usize % names.len()]);
                sock.send(&q).await.unwrap();
                let got = tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut buf))
                    .await
                    .expect("DNS answer within 5 s")
                    .unwrap();
                assert!(
                    got >= 12 && buf[..2] == id.to_be_bytes(),
                    "answer to another query"
                );
                if answered {
                    let (rcode, ancount) = (buf[3] & 0x0f, u16::from_be_bytes([buf[6], buf[7]]));
                    assert!(
                        rcode == 0 && ancount == 1,
                        "rcode {rcode}, {ancount} answers"
                    );
                }
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for h in tasks {
        total += h.await.unwrap();
    }
    total as f64 / t.elapsed().as_secs_f64()
}

/// What every SAM client does per stream (no warm connections): connect, HELLO, STREAM
/// CONNECT. The router sends one line per command and nothing more until we write, so
/// reading a buffer up to the newline takes no stream data.
async fn sam_open(sam: SocketAddr, id: &str, dest: &str) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(sam).await?;
    s.set_nodelay(true)?;
    async fn line(s: &mut TcpStream) -> std::io::Result<String> {
        Ok(String::from_utf8_lossy(&read_until(s, b"\n").await?).into_owned())
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
pub async fn ttfb(via: &Via) -> std::io::Result<Duration> {
    let t = Instant::now();
    let mut s = open(via).await?;
    s.write_all(b"0123456789abcdef").await?;
    let mut b = [0u8; 16];
    s.read_exact(&mut b).await?;
    Ok(t.elapsed())
}

/// `bytes` each way through an echo, concurrently; returns MiB/s (one direction).
pub async fn bulk(via: &Via, bytes: usize) -> std::io::Result<f64> {
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
pub async fn setup_rate(via: &Via, clients: usize, dur: Duration) -> (f64, usize) {
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

/// One-direction transfer of `bytes` through the front-end service (`peers::service`);
/// returns MiB/s.
pub async fn transfer(via: &Via, up: bool, bytes: usize) -> std::io::Result<f64> {
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

pub async fn wait_port(a: SocketAddr) {
    for _ in 0..200 {
        if TcpStream::connect(a).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{a} never opened");
}

// ---------------------------------------------------------------- front end schedule

/// RSS of each proxy process before and after holding `idle` idle connections through it
/// (peers without a pid are skipped). Run first, before TIME_WAIT sockets pile up.
pub async fn idle_rss(peers: &[Peer], idle: usize) -> Vec<(String, u64, u64)> {
    let mut rss = Vec::new();
    for (name, via, pid) in peers {
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
    rss
}

/// Handshakes (µs) of the first `n_socks` peers, `n` each, interleaved one by one across
/// peers, so drift hits all alike.
pub async fn handshakes(peers: &[Peer], n_socks: usize, n: usize) -> Vec<Vec<f64>> {
    let mut hs: Vec<Vec<f64>> = vec![Vec::new(); peers.len()];
    for _ in 0..n {
        for (i, (_, via, _)) in peers.iter().enumerate().take(n_socks) {
            let t = Instant::now();
            let s = open(via).await.expect("handshake");
            hs[i].push(t.elapsed().as_secs_f64() * 1e6);
            drop(s);
        }
    }
    hs
}

/// Upload and download MiB/s of every peer, `bytes` each, 5 rounds in alternating order.
pub async fn transfers(peers: &[Peer], bytes: usize) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let mut tp: Vec<Vec<f64>> = vec![Vec::new(); peers.len()];
    let mut tdown: Vec<Vec<f64>> = vec![Vec::new(); peers.len()];
    for round in 0..5 {
        for k in 0..peers.len() {
            // alternate the order every round
            let i = if round % 2 == 0 {
                k
            } else {
                peers.len() - 1 - k
            };
            let via = &peers[i].1;
            tp[i].push(transfer(via, true, bytes).await.expect("upload"));
            tdown[i].push(transfer(via, false, bytes).await.expect("download"));
        }
    }
    (tp, tdown)
}

/// The whole front-end schedule: idle connections, handshakes, then transfers.
pub async fn frontend_rounds(
    peers: &[Peer],
    n_socks: usize,
    n_handshakes: usize,
    bulk_bytes: usize,
    idle: usize,
) -> FrontendRuns {
    let rss = idle_rss(peers, idle).await;
    let hs = handshakes(peers, n_socks, n_handshakes).await;
    let (tp, tdown) = transfers(peers, bulk_bytes).await;
    FrontendRuns {
        names: peers.iter().map(|p| p.0.clone()).collect(),
        n_socks,
        n_handshakes,
        bulk_bytes,
        idle,
        hs,
        tp,
        tdown,
        rss,
    }
}

// ---------------------------------------------------------------- router schedule

/// `peers`: name, how to reach it, and its eepsocks process (if any). The first three are
/// i2pd's SOCKS, eepsocks and the bare SAM client. The CPU per stream of each eepsocks and
/// of the i2pd router (`router_pid`) is measured too.
pub async fn router_rounds(peers: Vec<Peer>, q: bool, router_pid: u32) -> RouterRuns {
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
                // A failed transfer is reported and left out (the median is of the others);
                // it must not end the run and hide the other peers' figures.
                match bulk(via, bulk_bytes).await {
                    Ok(r) => tp[i].push(r),
                    Err(e) => eprintln!("{}: bulk failed in round {round}: {e}", peers[i].0),
                }
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
    RouterRuns {
        names: peers.into_iter().map(|p| p.0).collect(),
        rounds,
        n_ttfb,
        bulk_bytes,
        rate_dur,
        concurrency,
        tt,
        tp,
        rate,
        fails,
        cpu,
        machine,
    }
}

// ---------------------------------------------------------------- embedded schedule

/// One stream that reaches the demo site: SOCKS5 by name, GET /, a 200.
#[cfg(feature = "embedded")]
pub async fn demo_get(proxy: SocketAddr) -> std::io::Result<()> {
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

/// Retry TTFB until a stream gets through (up to 180 s).
#[cfg(feature = "embedded")]
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
#[cfg(feature = "embedded")]
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

/// A fresh identity's cost: ms from eepsocks `ready` to the first stream that gets through
/// (its first handshake with the echo), then `n` TTFB samples (ms) and a bulk transfer.
#[cfg(feature = "embedded")]
pub fn first_then_measure(
    rt: &tokio::runtime::Runtime,
    via: &Via,
    n: usize,
    bytes: usize,
) -> (f64, Vec<f64>, f64) {
    let t0 = Instant::now();
    rt.block_on(warm(via));
    let first = t0.elapsed().as_secs_f64() * 1000.0;
    let (t, b) = rt.block_on(measure(via.clone(), n, bytes));
    (first, t, b)
}

/// Warm up every path, then `rounds` rounds of `measure` on each: the emissary path on `rt`,
/// the i2pd paths in the test network's namespace `ns`. Returns TTFB ms and bulk MiB/s per
/// path, the i2pd paths first.
#[cfg(feature = "embedded")]
pub fn embedded_rounds(
    rt: &tokio::runtime::Runtime,
    em_via: &Via,
    i2pd_vias: &[Via],
    ns: &str,
    rounds: usize,
    n_ttfb: usize,
    bytes: usize,
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    // warm up every path
    rt.block_on(warm(em_via));
    for v in i2pd_vias {
        let v = v.clone();
        crate::support::netns::block_on(ns, move || async move { warm(&v).await });
    }
    let mut tt: Vec<Vec<f64>> = vec![Vec::new(); 3];
    let mut bw: Vec<Vec<f64>> = vec![Vec::new(); 3];
    for _ in 0..rounds {
        let (t, b) = rt.block_on(measure(em_via.clone(), n_ttfb, bytes));
        tt[2].extend(t);
        bw[2].push(b);
        for (i, v) in i2pd_vias.iter().enumerate() {
            let v = v.clone();
            let (t, b) = crate::support::netns::block_on(ns, move || async move {
                measure(v, n_ttfb, bytes).await
            });
            tt[i].extend(t);
            bw[i].push(b);
        }
    }
    (tt, bw)
}

// ---------------------------------------------------------------- leak filter

/// Read one empty-bodied HTTP response (the sink's).
async fn http_response(s: &mut TcpStream) -> std::io::Result<()> {
    let mut got = Vec::new();
    let mut b = [0u8; 256];
    while !got.ends_with(b"\r\n\r\n") {
        match s.read(&mut b).await? {
            0 => return Err(std::io::Error::other("early EOF")),
            n => got.extend_from_slice(&b[..n]),
        }
    }
    Ok(())
}

/// A POST of `bytes` through `via` to the HTTP sink: MiB/s from the first byte of the
/// request to the response.
pub async fn http_post(via: &Via, bytes: usize) -> std::io::Result<f64> {
    let mut s = open(via).await?;
    let t = Instant::now();
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: sink.i2p\r\nUser-Agent: bench\r\nContent-Length: {bytes}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await?;
    let buf = vec![0x5au8; 64 * 1024];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(buf.len());
        s.write_all(&buf[..n]).await?;
        left -= n;
    }
    http_response(&mut s).await?;
    Ok(bytes as f64 / (1 << 20) as f64 / t.elapsed().as_secs_f64())
}

/// `n` browser requests (Firefox's header set) on one keep-alive connection through `via`:
/// the time of each from writing the request to reading the response, in µs.
pub async fn http_gets(via: &Via, n: usize) -> std::io::Result<Vec<f64>> {
    let mut s = open(via).await?;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        s.write_all(crate::support::leaks::FIREFOX_REQUEST).await?;
        http_response(&mut s).await?;
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    Ok(times)
}
