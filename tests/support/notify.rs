//! The service manager's side of systemd's notify protocol: a datagram socket to put in
//! `NOTIFY_SOCKET`, and what arrived on it.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What arrived on the notify socket, with when.
#[derive(Clone, Default)]
pub struct Manager {
    got: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Manager {
    /// Bind `path` and collect every datagram on a thread (it ends with the test process).
    pub fn listen(path: &Path) -> Manager {
        let sock = UnixDatagram::bind(path).unwrap();
        let m = Manager::default();
        let got = m.got.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = sock.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                got.lock().unwrap().push((Instant::now(), text));
            }
        });
        m
    }

    pub fn messages(&self) -> Vec<(Instant, String)> {
        self.got.lock().unwrap().clone()
    }

    /// Every message that has `line` as one of its lines, from index `from` on.
    pub fn with_line(&self, line: &str, from: usize) -> Vec<(usize, Instant, String)> {
        self.messages()
            .into_iter()
            .enumerate()
            .skip(from)
            .filter(|(_, (_, m))| m.lines().any(|l| l == line))
            .map(|(i, (t, m))| (i, t, m))
            .collect()
    }

    /// The first message from index `from` with `line`; panics with all of them after
    /// `within`.
    pub fn wait(&self, line: &str, from: usize, within: Duration) -> (usize, Instant, String) {
        let end = Instant::now() + within;
        loop {
            if let Some(m) = self.with_line(line, from).into_iter().next() {
                return m;
            }
            assert!(
                Instant::now() < end,
                "no {line:?} within {within:?}; got {:?}",
                self.texts()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn texts(&self) -> Vec<String> {
        self.messages().into_iter().map(|(_, m)| m).collect()
    }
}
