//! The tables, as markdown (docs/benchmarks.md holds a copy with the date): what was
//! measured goes in, medians and ratios come out.

use std::fmt::Write;
use std::time::Duration;

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

// ---------------------------------------------------------------- front end alone

/// Front-end measurements. Peers before `n_socks` are SOCKS servers (the second is
/// eepsocks); the rest are plain relays, measured for throughput only.
pub struct FrontendRuns {
    pub names: Vec<String>,
    pub n_socks: usize,
    /// Handshakes per peer.
    pub n_handshakes: usize,
    pub bulk_bytes: usize,
    /// Idle connections held for the RSS figures.
    pub idle: usize,
    /// Per peer: handshake µs, upload and download MiB/s.
    pub hs: Vec<Vec<f64>>,
    pub tp: Vec<Vec<f64>>,
    pub tdown: Vec<Vec<f64>>,
    /// Per proxy process: name, RSS KiB before and after the idle connections.
    pub rss: Vec<(String, u64, u64)>,
}

pub fn frontend(r: FrontendRuns) {
    let FrontendRuns {
        names,
        n_socks,
        n_handshakes,
        bulk_bytes,
        idle,
        mut hs,
        mut tp,
        mut tdown,
        rss,
    } = r;
    println!("## Front end alone (loopback; eepsocks with a plain-TCP backend)\n");
    println!(
        "handshake = TCP connect + SOCKS5 greeting + CONNECT until the success reply: {} sequential per peer, interleaved across peers one by one, median; throughput = {} MiB up, then down (one direction at a time), 5 rounds alternating, median.\n",
        n_handshakes,
        bulk_bytes >> 20
    );
    println!("| peer | handshake µs | eepsocks ÷ peer | upload MiB/s | eepsocks ÷ peer | download MiB/s | eepsocks ÷ peer |");
    println!("|---|---|---|---|---|---|---|");
    let e_hs = median(&mut hs[1].clone());
    let e_up = median(&mut tp[1].clone());
    let e_down = median(&mut tdown[1].clone());
    for (i, name) in names.iter().enumerate() {
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
    println!(
        "\n| proxy | idle connections | RSS before KiB | RSS after KiB | KiB per connection |"
    );
    println!("|---|---|---|---|---|");
    for (name, before, after) in rss {
        println!(
            "| {name} | {idle} | {before} | {after} | {:.2} |",
            (after.saturating_sub(before)) as f64 / idle as f64
        );
    }
    println!();
}

// ---------------------------------------------------------------- through a real router

/// Router-part measurements. Peers 0, 1, 2 are i2pd's SOCKS, eepsocks and the bare SAM
/// client; the rest are other eepsocks variants.
pub struct RouterRuns {
    pub names: Vec<String>,
    pub rounds: usize,
    pub n_ttfb: usize,
    pub bulk_bytes: usize,
    pub rate_dur: Duration,
    /// Client counts of the setup-rate runs.
    pub concurrency: Vec<usize>,
    /// Per peer: TTFB ms, bulk MiB/s.
    pub tt: Vec<Vec<f64>>,
    pub tp: Vec<Vec<f64>>,
    /// Per peer and client count: setup rate of each round (in round order), failures.
    pub rate: Vec<Vec<Vec<f64>>>,
    pub fails: Vec<Vec<usize>>,
    /// Per peer: CPU seconds of eepsocks, of i2pd, and streams, over the setup-rate runs.
    pub cpu: Vec<(f64, f64, f64)>,
    /// Per peer and client count: the whole machine's busy and total CPU seconds, streams.
    pub machine: Vec<Vec<(f64, f64, f64)>>,
}

pub fn router(r: RouterRuns) -> String {
    let RouterRuns {
        names,
        rounds,
        n_ttfb,
        bulk_bytes,
        rate_dur,
        concurrency,
        mut tt,
        mut tp,
        rate,
        fails,
        cpu,
        machine,
    } = r;
    let mut o = String::new();
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
    for i in 3..names.len() {
        let rates: Vec<String> = (0..concurrency.len())
            .map(|k| {
                let (r, e) = (paired(&rate, i, 0, k), paired(&rate, i, 1, k));
                format!("{:.1} ({r:.2}; {e:.2})", median(&mut rate[i][k].clone()))
            })
            .collect();
        let _ = writeln!(
            o,
            "\n{}: TTFB {:.2} ms ({:.2} of i2pd), bulk {:.2} MiB/s, setup/s {} clients (÷ i2pd; ÷ eepsocks): {}",
            names[i],
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
    for (i, name) in names.iter().enumerate() {
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
    for (i, name) in names.iter().enumerate() {
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

/// Start to first stream: per round, seconds to `ready` and to the first stream of
/// `eepsocks demo`, and to the first stream of a new i2pd network.
#[cfg(feature = "embedded")]
pub fn embedded_startup(rounds: usize, ready: &[f64], first: &[f64], i2pd_first: &[f64]) -> String {
    format!(
        "## Embedded router: start to first stream ({rounds} rounds, seconds, median [all])\n\n\
         | | eepsocks demo (6 emissary routers) | new i2pd network (2 routers), its SOCKS | ratio |\n|---|---|---|---|\n\
         | ready | {:.2} {:.2?} | | |\n| first stream | {:.2} {:.2?} | {:.2} {:.2?} | {:.2} |\n\n",
        median(&mut ready.to_vec()),
        ready,
        median(&mut first.to_vec()),
        first,
        median(&mut i2pd_first.to_vec()),
        i2pd_first,
        median(&mut first.to_vec()) / median(&mut i2pd_first.to_vec()),
    )
}

/// Throughput: per path (i2pd SOCKS and eepsocks on the i2pd network, eepsocks on the
/// emissary network), TTFB ms samples and bulk MiB/s per round.
#[cfg(feature = "embedded")]
pub fn embedded_throughput(
    bytes: usize,
    rounds: usize,
    n_ttfb: usize,
    mut tt: Vec<Vec<f64>>,
    bw: Vec<Vec<f64>>,
) -> String {
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
    o
}

/// The HTTP leak filter against no filter, same front end.
pub fn filter(
    bytes: usize,
    rounds: usize,
    n_gets: usize,
    post: [Vec<f64>; 2],
    gets: [Vec<f64>; 2],
) {
    let [mut p0, mut p1] = post;
    let [mut g0, mut g1] = gets;
    println!("## HTTP leak filter (front end alone, loopback)\n");
    println!(
        "Same eepsocks front end, same client and HTTP server; port 8080 (no filter) vs port 80 (`filter = \"auto\"`: HTTP rules). POST = a {} MiB body, {rounds} rounds alternating, median MiB/s; request = Firefox's header set on a keep-alive connection, write to response, {n_gets} per port, median µs.\n",
        bytes >> 20
    );
    let (up0, up1) = (median(&mut p0), median(&mut p1));
    let (rt0, rt1) = (median(&mut g0), median(&mut g1));
    println!("| | no filter | HTTP filter | filter ÷ none |");
    println!("|---|---|---|---|");
    println!(
        "| POST body MiB/s | {up0:.0} | {up1:.0} | {:.2} |",
        up1 / up0
    );
    println!(
        "| request → response µs | {rt0:.1} | {rt1:.1} | {:.2} |\n",
        rt1 / rt0
    );
}

// ---------------------------------------------------------------- automap

/// HTTP CONNECT vs SOCKS5 handshakes, and the DNS port's rate.
#[allow(clippy::too_many_arguments)]
pub fn automap(
    list: &[crate::Peer],
    hs: Vec<Vec<f64>>,
    n: usize,
    mut dns: Vec<f64>,
    mut floor: Vec<f64>,
    clients: usize,
    secs: std::time::Duration,
    names: usize,
) {
    println!("## HTTP CONNECT and the automap DNS port (front end alone, loopback)\n");
    println!(
        "Handshake = connect to the reply (SOCKS5: greeting, method, request, reply; HTTP CONNECT: request head, `200` head), {n} each, interleaved, median µs. The router opens plain TCP (no I2P).\n"
    );
    let mut med: Vec<f64> = hs.into_iter().map(|mut v| median(&mut v)).collect();
    let socks = med[1];
    println!("| | median µs | ÷ SOCKS5 |");
    println!("|---|---|---|");
    for ((name, _, _), m) in list.iter().zip(med.iter_mut()) {
        println!("| {name} | {m:.1} | {:.2} |", *m / socks);
    }
    let (d, f) = (median(&mut dns), median(&mut floor));
    println!(
        "\nDNS: {clients} clients, each one A query at a time for {} s, {names} distinct b32 names in turn (the first pass maps each, later ones find it), {} rounds alternating, median answers/s. Floor: a UDP socket that sends each query straight back.\n",
        secs.as_secs(),
        dns.len()
    );
    println!("| | answers/s | ÷ UDP echo |");
    println!("|---|---|---|");
    println!("| UDP echo (floor) | {f:.0} | 1.00 |");
    println!("| eepsocks DNS port | {d:.0} | {:.2} |\n", d / f);
}

// ---------------------------------------------------------------- datagrams

/// One figure of a datagram client's JSON result.
type Metric = fn(&serde_json::Value) -> Option<f64>;

/// UDP ASSOCIATE vs bare SAM: each round's figures, and the medians' ratio.
pub fn udp(n: &str, res: &[Vec<serde_json::Value>; 2]) {
    println!("## Datagrams: UDP ASSOCIATE vs a bare SAM client (i2pd, offline network)\n");
    println!(
        "Burst: {n} datagrams of 1-7,000 bytes, 20 every 20 ms, to a datagram echo on r1; ping-pong: 100 of 100 bytes, one at a time. Rounds alternate; each cell lists the rounds.\n"
    );
    let col = |v: &[serde_json::Value], f: Metric| -> (String, Vec<f64>) {
        let xs: Vec<f64> = v.iter().filter_map(f).collect();
        let text = xs
            .iter()
            .map(|x| format!("{x}"))
            .collect::<Vec<_>>()
            .join(" / ");
        (text, xs)
    };
    let metrics: [(&str, Metric); 4] = [
        ("burst loss", |j| j["loss"].as_f64()),
        ("burst round trip p50, ms", |j| j["rtt_ms_p50"].as_f64()),
        ("burst round trip p90, ms", |j| j["rtt_ms_p90"].as_f64()),
        ("ping-pong round trip p50, ms", |j| {
            j["pingpong"]["rtt_ms_p50"].as_f64()
        }),
    ];
    println!("| metric | bare SAM | eepsocks | eepsocks ÷ bare (medians) |");
    println!("|---|---|---|---|");
    for (name, f) in metrics {
        let (eep_t, mut eep) = col(&res[0], f);
        let (raw_t, mut raw) = col(&res[1], f);
        let (e, r) = (median(&mut eep), median(&mut raw));
        let ratio = if r > 0.0 {
            format!("{:.2}", e / r)
        } else {
            "—".into()
        };
        println!("| {name} | {raw_t} | {eep_t} | {ratio} |");
    }
    let bad: u64 = res[0].iter().filter_map(|j| j["bad"].as_u64()).sum();
    println!("\nCorrupted or misdirected datagrams through eepsocks: {bad}.\n");
}
