//! Services published inside the test network: a TCP echo and a small HTTP server.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

pub const HTTP_BODY: &str = "hello from an eepsite on the offline test network\n";

/// Echo everything until the peer half-closes, then close (so half-close is observable).
pub fn spawn_echo(l: TcpListener) {
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || echo(s));
        }
    });
}

/// An echo service on a loopback port (threads, real time).
pub fn local_echo() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    spawn_echo(l);
    a
}

/// The same echo as tasks on the current tokio runtime: tests with paused time need every
/// party on their runtime, or the clock jumps while a thread is still answering.
pub fn local_echo_tokio() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    l.set_nonblocking(true).unwrap();
    let l = tokio::net::TcpListener::from_std(l).unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let _ = s.set_nodelay(true);
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n @ 1..) = s.read(&mut buf).await {
                    if s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
                let _ = s.shutdown().await;
            });
        }
    });
    a
}

fn echo(mut s: TcpStream) {
    let _ = s.set_nodelay(true);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if s.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Write);
}

/// An HTTP request head (up to the blank line), or None if the client went away.
fn read_head(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut b = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&b[..n]),
        }
        if head.len() > 64 * 1024 {
            return None;
        }
    }
    Some(head)
}

/// Answers every request with HTTP_BODY (HTTP/1.0, then close).
pub fn spawn_http(l: TcpListener) {
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || http(s));
        }
    });
}

fn http(mut s: TcpStream) {
    let Some(_head) = read_head(&mut s) else {
        return;
    };
    let resp = format!(
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{}",
        HTTP_BODY.len(),
        HTTP_BODY
    );
    let _ = s.write_all(resp.as_bytes());
}

/// A service that tells each caller its own I2P address: a SAM session on `sam` (inside the
/// test network) accepting streams and answering with the caller's b32. Returns its b32.
pub fn spawn_whoami(net: &crate::support::testnet::Testnet, sam: String) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    // The service runs for the rest of the test, on its own thread inside the namespace.
    drop(crate::support::netns::spawn_async(&net.ns, move || {
        whoami(sam, tx)
    }));
    rx.recv_timeout(std::time::Duration::from_secs(120))
        .expect("whoami session created")
}

async fn whoami(sam: String, tx: std::sync::mpsc::Sender<String>) {
    use eepsocks::i2p::sam::SamSocket as Conn;
    use eepsocks::i2p::PrivateKeys;
    let mut ctl = Conn::connect(&sam).await.expect("SAM");
    let r = ctl
        .command(
            "SESSION CREATE STYLE=STREAM ID=whoami DESTINATION=TRANSIENT SIGNATURE_TYPE=7 \
             inbound.length=0 outbound.length=0 inbound.quantity=2 outbound.quantity=2 \
             i2cp.leaseSetEncType=4,0",
        )
        .await
        .expect("SESSION CREATE");
    let keys = PrivateKeys::from_base64(r.get("DESTINATION").expect("DESTINATION")).unwrap();
    tx.send(keys.destination().b32()).unwrap();
    // Several accepts pending at once, so callers arriving together are all answered.
    let mut tasks = Vec::new();
    for _ in 0..4 {
        tasks.push(tokio::spawn(accept_loop(sam.clone())));
    }
    for t in tasks {
        let _ = t.await;
    }
    drop(ctl);
}

async fn accept_loop(sam: String) {
    use eepsocks::i2p::sam::SamSocket as Conn;
    use eepsocks::i2p::Destination;
    use tokio::io::AsyncWriteExt;
    loop {
        let Ok(mut c) = Conn::connect(&sam).await else {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            continue;
        };
        match c.command("STREAM ACCEPT ID=whoami SILENT=false").await {
            Ok(r) if r.get("RESULT") == Some("OK") => {}
            _ => continue,
        }
        // The caller's destination comes first, on its own line.
        let Ok(line) = c.read_line().await else {
            continue;
        };
        tokio::spawn(async move {
            let caller = line
                .split_whitespace()
                .next()
                .and_then(|d| Destination::from_base64(d).ok())
                .map(|d| d.b32())
                .unwrap_or_else(|| "unparsable".into());
            let (mut s, _) = c.into_stream();
            let _ = s.write_all(format!("{caller}\n").as_bytes()).await;
            let _ = s.shutdown().await;
        });
    }
}

/// A hosts.txt served over HTTP, with counters of what was answered.
#[derive(Default)]
pub struct HostsFile {
    pub body: std::sync::Mutex<String>,
    pub full: std::sync::atomic::AtomicUsize,
    pub not_modified: std::sync::atomic::AtomicUsize,
}

pub fn spawn_hosts(l: TcpListener, h: std::sync::Arc<HostsFile>) {
    thread_per_connection(l, h, hosts);
}

/// Serve `l` with a thread per connection running `serve` on the shared `state`.
fn thread_per_connection<T: Send + Sync + 'static>(
    l: TcpListener,
    state: std::sync::Arc<T>,
    serve: fn(TcpStream, &T),
) {
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let state = state.clone();
            std::thread::spawn(move || serve(s, &state));
        }
    });
}

fn hosts(mut s: TcpStream, h: &HostsFile) {
    use std::sync::atomic::Ordering;
    let Some(head) = read_head(&mut s) else {
        return;
    };
    let body = h.body.lock().unwrap().clone();
    let etag = format!("\"{}\"", body.len());
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let resp = if head.contains(&format!("if-none-match: {etag}")) {
        h.not_modified.fetch_add(1, Ordering::SeqCst);
        "HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n".to_string()
    } else {
        h.full.fetch_add(1, Ordering::SeqCst);
        // chunked, as many servers send it
        format!(
            "HTTP/1.1 200 OK\r\nETag: {etag}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        )
    };
    let _ = s.write_all(resp.as_bytes());
}

/// A service that keeps what it receives: to each caller it sends `greeting`, reads until
/// the caller half-closes, keeps the bytes, answers `reply` and closes. Shows exactly what
/// crossed the proxy in each direction (the leak filters).
#[derive(Default)]
pub struct Recorder {
    pub greeting: Vec<u8>,
    pub reply: Vec<u8>,
    pub got: std::sync::Mutex<Vec<Vec<u8>>>,
}

impl Recorder {
    pub fn new(greeting: &[u8], reply: &[u8]) -> std::sync::Arc<Recorder> {
        std::sync::Arc::new(Recorder {
            greeting: greeting.to_vec(),
            reply: reply.to_vec(),
            got: Default::default(),
        })
    }

    /// What the last caller sent.
    pub fn last(&self) -> Vec<u8> {
        self.got.lock().unwrap().last().cloned().unwrap_or_default()
    }
}

pub fn spawn_recorder(l: TcpListener, r: std::sync::Arc<Recorder>) {
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let r = r.clone();
            std::thread::spawn(move || record(s, &r));
        }
    });
}

/// A recorder on a loopback port.
pub fn local_recorder(r: std::sync::Arc<Recorder>) -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    spawn_recorder(l, r);
    a
}

fn record(mut s: TcpStream, r: &Recorder) {
    if s.write_all(&r.greeting).is_err() {
        return;
    }
    // To the caller's EOF, or 2 s of quiet once something came: over SAM a client's
    // half-close does not reach the server (docs/reliability.md), and waiting for the
    // proxy's 30 s bound would only slow the tests.
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let started = std::time::Instant::now();
    loop {
        let quiet = if got.is_empty() { 60 } else { 2 };
        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(quiet)));
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
        if started.elapsed() > std::time::Duration::from_secs(120) {
            break;
        }
    }
    r.got.lock().unwrap().push(got);
    let _ = s.write_all(&r.reply);
    let _ = s.shutdown(std::net::Shutdown::Write);
}

/// Static files over HTTP/1.1: `GET`/`HEAD` of a path under `root` answers the file with
/// `Content-Length`, anything else 404. Connections are kept open for more requests unless
/// the client says `Connection: close`. Keeps every request head it received.
pub struct Files {
    pub root: std::path::PathBuf,
    pub heads: std::sync::Mutex<Vec<Vec<u8>>>,
}

impl Files {
    pub fn new(root: std::path::PathBuf) -> std::sync::Arc<Files> {
        std::sync::Arc::new(Files {
            root,
            heads: Default::default(),
        })
    }
}

pub fn spawn_files(l: TcpListener, f: std::sync::Arc<Files>) {
    thread_per_connection(l, f, files);
}

fn files(mut s: TcpStream, f: &Files) {
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(60)));
    // Bytes read past one head belong to the next request.
    let mut buf = Vec::new();
    loop {
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut b = [0u8; 4096];
            match s.read(&mut b) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&b[..n]),
            }
            if buf.len() > 64 * 1024 {
                return;
            }
        };
        let head: Vec<u8> = buf.drain(..end).collect();
        f.heads.lock().unwrap().push(head.clone());
        let head = String::from_utf8_lossy(&head).into_owned();
        let mut words = head.split(' ');
        let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let path = target.split('?').next().unwrap_or("");
        let file = path
            .strip_prefix('/')
            .filter(|p| !p.split('/').any(|c| c == ".." || c == "."))
            .map(|p| f.root.join(p))
            .filter(|p| p.is_file())
            .and_then(|p| std::fs::read(p).ok());
        let close = head
            .lines()
            .any(|l| l.to_ascii_lowercase().replace(' ', "") == "connection:close");
        let (status, body) = match (method, file) {
            ("GET" | "HEAD", Some(body)) => ("200 OK", body),
            _ => ("404 Not Found", b"not found\n".to_vec()),
        };
        let mut resp = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n{}\r\n",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        )
        .into_bytes();
        if method != "HEAD" {
            resp.extend_from_slice(&body);
        }
        if s.write_all(&resp).is_err() || close {
            let _ = s.shutdown(std::net::Shutdown::Write);
            return;
        }
    }
}

/// A datagram echo service (SAM repliable datagrams): every datagram goes back to its
/// sender. A DATAGRAM session on `sam` (inside namespace `ns`, when given), sending through
/// `sam_udp`. Returns its b32 once the session is up; runs for the rest of the test.
pub fn spawn_datagram_echo(
    ns: Option<&str>,
    sam: String,
    sam_udp: std::net::SocketAddr,
    options: &[(&str, &str)],
) -> String {
    use eepsocks::i2p::sam::{datagram, DatagramConfig, DatagramSession};
    let cfg = DatagramConfig {
        sam_addr: sam,
        sam_udp,
        name: "dgecho".into(),
        options: options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        sig_type: 7,
        max_send: 65_507,
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let run = move || async move {
        let dg = DatagramSession::create(&cfg)
            .await
            .expect("datagram echo session");
        tx.send(dg.b32().to_string()).unwrap();
        datagram::echo(dg).await;
    };
    match ns {
        Some(ns) => drop(crate::support::netns::spawn_async(ns, run)),
        None => drop(std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(run())
        })),
    }
    rx.recv_timeout(std::time::Duration::from_secs(120))
        .expect("datagram echo session created")
}

/// The RFC 1928 UDP test client (tests/support/udp_client.py).
pub fn udp_client_script() -> String {
    format!("{}/tests/support/udp_client.py", env!("CARGO_MANIFEST_DIR"))
}

/// Run a datagram client (`cmd`: python3, one of the client scripts, its arguments; the
/// scripts print one JSON line): that line (Null when none), whether it exited 0, and its
/// stdout, which is also printed with its stderr.
pub fn run_udp_client(mut cmd: std::process::Command) -> (serde_json::Value, bool, String) {
    let out = cmd.output().expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    eprintln!(
        "udp client: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = stdout
        .lines()
        .find(|l| l.starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(serde_json::Value::Null);
    (json, out.status.success(), stdout)
}

/// What every burst of udp_client.py with `--drops` must show: it ran, nothing came back
/// corrupted or misdirected, something came back, and each of its bad datagrams was
/// dropped and counted once. `log`: the proxy's, for the failure message.
pub fn assert_udp_burst(run: &(serde_json::Value, bool, String), log: &str) {
    let (j, ok, out) = run;
    assert!(ok, "client failed: {out}\n{log}");
    assert_eq!(j["bad"], 0, "{out}");
    assert!(j["received"].as_u64().unwrap_or(0) > 0, "{out}");
    let d = &j["drops"];
    assert_eq!(d["udp_dropped_oversize"], 1, "{out}");
    assert_eq!(d["udp_dropped_fragment"], 1, "{out}");
    assert_eq!(d["udp_dropped_not_i2p"], 2, "{out}");
    assert_eq!(d["udp_dropped_source"], 1, "{out}");
}
