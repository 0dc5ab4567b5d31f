//! Soak: 1,000 concurrent streams through eepsocks and the offline i2pd network, random
//! sizes, every byte checked, twice; file descriptors and memory of eepsocks must come back
//! after each wave. Long (a few minutes): run it with
//!
//!     sudo cargo test --release --test soak -- --ignored --nocapture

mod support;

use sha2::{Digest, Sha256};
use std::fs;
use std::time::{Duration, Instant};
use support::consts::ZERO_HOP_OPTIONS;
use support::launcher::Eepsocks;
use support::testnet::{sam_addr, Kind, ServiceSpec, Testnet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const STREAMS: usize = 1000;

fn fds(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// A deterministic pseudo-random generator (xorshift), so failures can be replayed.
fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

async fn one(b32: String, size: usize, seed: u64) -> Result<(), String> {
    let mut next = rng(seed);
    let data: Vec<u8> = (0..size).map(|_| next() as u8).collect();
    let want = Sha256::digest(&data);
    let mut s = tokio::net::TcpStream::connect("127.0.0.1:4447")
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut req = vec![5, 1, 0, 5, 1, 0, 3, b32.len() as u8];
    req.extend_from_slice(b32.as_bytes());
    req.extend_from_slice(&[0, 7]);
    s.write_all(&req).await.map_err(|e| e.to_string())?;
    let mut rep = [0u8; 12];
    s.read_exact(&mut rep)
        .await
        .map_err(|e| format!("reply: {e}"))?;
    if rep[3] != 0 {
        return Err(format!("SOCKS reply {:#04x}", rep[3]));
    }
    let (mut r, mut w) = s.into_split();
    let writer = tokio::spawn(async move { w.write_all(&data).await.map(|_| w) });
    let mut got = vec![0u8; size];
    r.read_exact(&mut got)
        .await
        .map_err(|e| format!("echo: {e}"))?;
    let _w = writer.await.unwrap().map_err(|e| e.to_string())?;
    if Sha256::digest(&got) != want {
        panic!("stream {seed}: {size} bytes came back different");
    }
    Ok(())
}

/// One wave: STREAMS concurrent streams; returns (ok, retries, seconds, bytes).
async fn wave(b32: &str, base_seed: u64) -> (usize, usize, f64, usize) {
    let t = Instant::now();
    let mut next = rng(base_seed);
    let mut tasks = Vec::new();
    let mut total = 0;
    for i in 0..STREAMS {
        let size = 1 + (next() % (128 * 1024)) as usize;
        total += size;
        let b32 = b32.to_string();
        let seed = base_seed * 100_000 + i as u64;
        tasks.push(tokio::spawn(async move {
            // Opening may fail under load (the router says so); data may never be wrong.
            let mut retries = 0;
            loop {
                match tokio::time::timeout(Duration::from_secs(240), one(b32.clone(), size, seed))
                    .await
                {
                    Ok(Ok(())) => return (true, retries),
                    Ok(Err(e)) if retries < 5 => {
                        retries += 1;
                        if retries == 1 {
                            eprintln!("stream {i}: {e}; retrying");
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    other => {
                        eprintln!("stream {i} failed: {other:?}");
                        return (false, retries);
                    }
                }
            }
        }));
    }
    let (mut ok, mut retries) = (0, 0);
    for t in tasks {
        let (o, r) = t.await.unwrap();
        ok += o as usize;
        retries += r;
    }
    (ok, retries, t.elapsed().as_secs_f64(), total)
}

#[test]
#[ignore = "long: run with --ignored (see the file's header)"]
fn thousand_concurrent_streams_twice() {
    if support::skip_without_testnet() {
        return;
    }
    let net = Testnet::start(
        2,
        &[ServiceSpec {
            name: "echo",
            port: 7001,
            kind: Kind::Echo,
        }],
    );
    let b32 = net.service("echo").b32();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("eepsocks.toml");
    fs::write(
        &cfg,
        format!(
            "max_clients = 4000\nstream_timeout = 120\nstatus_listen = \"off\"\n{ZERO_HOP_OPTIONS}"
        ),
    )
    .unwrap();
    // Warnings only: info would log every one of the thousands of connections.
    let proxy = Eepsocks::spawn_logging(
        [
            "--config",
            cfg.to_str().unwrap(),
            "--sam",
            &sam_addr(2),
            "run",
            "--transient",
        ],
        Some(&net.ns),
        "warn",
    );
    proxy.wait_ready();
    let pid = proxy.pid();
    // The load generator runs inside the namespace, on a multi-threaded runtime.
    let ((fd0, rss0), rows) = support::netns::block_on(&net.ns, move || async move {
        // settle: one stream end to end
        let t0 = Instant::now();
        while one(b32.clone(), 10, 1).await.is_err() {
            assert!(t0.elapsed() < Duration::from_secs(150), "no first stream");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut rows = Vec::new();
        let base = (fds(pid), rss_kib(pid));
        for w in 1..=2u64 {
            let (ok, retries, secs, bytes) = wave(&b32, w).await;
            tokio::time::sleep(Duration::from_secs(3)).await;
            rows.push((w, ok, retries, secs, bytes, fds(pid), rss_kib(pid)));
        }
        (base, rows)
    });
    // What the original run showed live on stderr.
    for l in proxy.log().lines() {
        eprintln!("eepsocks: {l}");
    }
    eprintln!("before: {fd0} fds, {rss0} KiB RSS");
    for (w, ok, retries, secs, bytes, fd, rss) in &rows {
        eprintln!(
            "wave {w}: {ok}/{STREAMS} streams byte-exact, {retries} retried opens, {:.1} MiB each way in {secs:.1} s; after: {fd} fds, {rss} KiB RSS",
            *bytes as f64 / (1 << 20) as f64
        );
        assert_eq!(*ok, STREAMS, "wave {w}: streams failed");
        // only the SAM control socket and the warm connections may remain
        assert!(*fd <= fd0 + 4, "wave {w}: {fd} fds after, {fd0} before");
    }
    let (rss1, rss2) = (rows[0].6, rows[1].6);
    assert!(
        rss2 <= rss1 + rss1 / 5,
        "memory keeps growing: {rss1} KiB after wave 1, {rss2} KiB after wave 2"
    );
    drop(proxy);
}
