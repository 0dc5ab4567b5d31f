//! The exec part: `eepsocks exec` vs the SOCKS path, on the same demo, daemon, router and
//! site, in one run: the same client (benches/exec_client.py) with plain sockets under exec,
//! and through SOCKS5 with the name, alternating rounds. Then exec's own start: from
//! launching `eepsocks exec -- curl` on the warm daemon to curl's first byte.

use crate::support;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

pub fn exec_vs_socks(quick: bool) {
    if unsafe { libc::geteuid() } != 0 {
        println!("exec: skipped (needs root for the test namespace)\n");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let ns = support::exec::Netns::new("bexec");
    let user = support::exec::User::root(tmp.path());
    let (_demo, site_sam) = user.demo(&ns.name);
    let files = tmp.path().join("site");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("small"), vec![b'x'; 100]).unwrap();
    let big = if quick { 256 << 10 } else { 4 << 20 };
    std::fs::write(files.join("big"), vec![b'y'; big]).unwrap();
    let site = support::exec::spawn_site(&ns.name, site_sam, files);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/exec_client.py");
    let (rounds, n, secs) = if quick { (1, 5, "3") } else { (3, 20, "10") };
    let n = n.to_string();
    let (mut ex, mut so): (Vec<[f64; 3]>, Vec<[f64; 3]>) = (Vec::new(), Vec::new());
    let parse = |o: &std::process::Output| -> [f64; 3] {
        let text = String::from_utf8_lossy(&o.stdout);
        let line = text.lines().rev().find(|l| l.starts_with('{'));
        let v: serde_json::Value = serde_json::from_str(
            line.unwrap_or_else(|| panic!("exec bench client: {}", support::exec::show(o))),
        )
        .unwrap();
        [
            v["ttfb_ms"].as_f64().unwrap(),
            v["bulk_mib_s"].as_f64().unwrap(),
            v["setup_per_s"].as_f64().unwrap(),
        ]
    };
    for round in 0..rounds {
        let o = user.exec(
            &ns.name,
            &["--quiet", "python3", script, "direct", &site, &n, secs],
        );
        let e = parse(&o);
        let o = Command::new("ip")
            .args([
                "netns", "exec", &ns.name, "python3", script, "socks", &site, &n, secs,
            ])
            .output()
            .unwrap();
        let s = parse(&o);
        eprintln!("exec round {round}: exec {e:?}, SOCKS {s:?}");
        ex.push(e);
        so.push(s);
    }
    // Warm daemon: launch to first byte (the identity's tunnels included).
    let mut starts = Vec::new();
    let mut readies = Vec::new();
    for _ in 0..rounds.max(3) {
        let url = format!("http://{site}/small");
        let mut c = user.command(
            &ns.name,
            &[
                "exec",
                "--",
                "curl",
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{time_starttransfer}\n",
                "--retry",
                "3",
                "--retry-all-errors",
                &url,
            ],
        );
        let t0 = Instant::now();
        let mut child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = BufReader::new(child.stderr.take().unwrap());
        let mut ready = None;
        for line in err.lines().map_while(Result::ok) {
            if ready.is_none() && line.contains("only I2P is reachable") {
                ready = Some(t0.elapsed());
            }
        }
        let out = child.wait_with_output().unwrap();
        let curl: f64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(f64::NAN);
        let ready = ready.unwrap_or(Duration::ZERO).as_secs_f64() * 1000.0;
        readies.push(ready);
        starts.push(ready + curl * 1000.0);
    }
    let col = |v: &[[f64; 3]], i: usize| median(&mut v.iter().map(|x| x[i]).collect::<Vec<_>>());
    println!("\n## exec vs SOCKS (same demo, daemon and site; {rounds} rounds, medians)\n");
    println!("| metric | SOCKS5 | exec | exec ÷ SOCKS | target |");
    println!("|---|---|---|---|---|");
    let names = ["TTFB ms", "bulk MiB/s", "setup/s (sequential)"];
    for (i, name) in names.iter().enumerate() {
        let (s, e) = (col(&so, i), col(&ex, i));
        let ratio = if i == 0 { s / e } else { e / s };
        println!(
            "| {name} | {s:.2} | {e:.2} | {ratio:.2}{} | ≥ 0.95 |",
            if i == 0 { " (SOCKS ÷ exec)" } else { "" }
        );
    }
    println!(
        "\nexec to first byte, warm daemon (namespace, new identity's tunnels, stream): median {:.0} ms, of which to the identity's ready line {:.0} ms ({} runs)\n",
        median(&mut starts),
        median(&mut readies),
        starts.len()
    );
}
