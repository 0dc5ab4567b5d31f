//! The eepsocks binary under test: start it (on the host or inside a network namespace),
//! collect what it prints, wait for `ready`, signal it, and never leave it running.
//!
//! stdout carries the machine-readable lines (`destination ...`, `ready ...`, and the
//! demo's `demo.i2p <b32>`); stderr carries the log. Both are read by pump threads into
//! memory, so a test can wait for a line and a failing test can show the whole log.

use crate::support::consts::{EXIT_TIMEOUT, READY_TIMEOUT};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The binary under test: this build's, or `EEPSOCKS_TEST_BIN` (to run the same tests
/// against another build, e.g. an older release).
pub fn bin() -> String {
    std::env::var("EEPSOCKS_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_eepsocks").into())
}

/// The eepsocks command, run inside `netns` through `ip netns exec` when given. `ip` execs
/// the binary, so the child's pid is eepsocks' own and signals reach it directly.
pub fn command<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>, netns: Option<&str>) -> Command {
    let mut c = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, &bin()]);
            c
        }
        None => Command::new(bin()),
    };
    c.args(args);
    // Where `run` and `demo` announce themselves and bare `status`/`b32` look, and the
    // default data directory (whose ports file bare commands read first): one of each per
    // test process, so the instances other processes run on this machine meanwhile (other
    // suites, other checkouts, benchmarks) are never found. A test may set its own after.
    c.env("EEPSOCKS_RUNTIME_DIR", runtime_dir());
    c.env("XDG_DATA_HOME", runtime_dir().join("data-home"));
    c
}

/// This test process's announce directory (see `command`).
pub fn runtime_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("eepsocks-test-run-{}", std::process::id()))
}

/// Run a one-shot subcommand (`status`, `resolve`, `keys ...`) to completion.
pub fn run_cli<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>, netns: Option<&str>) -> Output {
    command(args, netns)
        .stdin(Stdio::null())
        .output()
        .expect("run eepsocks")
}

/// Lines read from one pipe so far, and whether it has closed.
#[derive(Default)]
struct Pipe {
    state: Mutex<(Vec<String>, bool)>,
    changed: Condvar,
}

impl Pipe {
    fn pump(self: Arc<Self>, from: impl Read + Send + 'static) -> JoinHandle<()> {
        std::thread::spawn(move || {
            let mut r = BufReader::new(from);
            let mut buf = Vec::new();
            // Lossy, not `lines()`: one non-UTF-8 byte must not end the collection.
            while matches!(r.read_until(b'\n', &mut buf), Ok(n) if n > 0) {
                let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                buf.clear();
                self.state.lock().unwrap().0.push(line);
                self.changed.notify_all();
            }
            self.state.lock().unwrap().1 = true;
            self.changed.notify_all();
        })
    }

    fn lines(&self) -> Vec<String> {
        self.state.lock().unwrap().0.clone()
    }

    /// Wait until `f` finds what it wants in the lines so far. None when the pipe closed
    /// or `timeout` passed first.
    fn wait<T>(&self, timeout: Duration, mut f: impl FnMut(&[String]) -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut st = self.state.lock().unwrap();
        loop {
            if let Some(t) = f(&st.0) {
                return Some(t);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if st.1 || left.is_zero() {
                return None;
            }
            st = self.changed.wait_timeout(st, left).unwrap().0;
        }
    }
}

/// One listener as eepsocks announced it.
#[derive(Clone, Debug, PartialEq)]
pub struct Listener {
    /// Its b32, or "per-username" for `isolate = "username"`.
    pub b32: String,
    pub addr: String,
}

/// What eepsocks printed up to and including `ready`.
#[derive(Debug)]
pub struct Ready {
    /// By listener name, from the lines `destination <b32> (<name> on <addr>)`.
    pub listeners: BTreeMap<String, Listener>,
    /// The addresses on the `ready` line, in order.
    pub addrs: Vec<String>,
    /// Every stdout line up to `ready`.
    pub stdout: Vec<String>,
    /// From spawn to `ready`.
    pub after: Duration,
}

impl Ready {
    fn parse(stdout: &[String], after: Duration) -> Ready {
        let mut listeners = BTreeMap::new();
        let mut addrs = Vec::new();
        for l in stdout {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w.as_slice() {
                ["destination", b32, name, "on", addr] => {
                    listeners.insert(
                        name.trim_start_matches('(').to_string(),
                        Listener {
                            b32: b32.to_string(),
                            addr: addr.trim_end_matches(')').to_string(),
                        },
                    );
                }
                ["ready", a @ ..] => addrs = a.iter().map(|s| s.to_string()).collect(),
                _ => {}
            }
        }
        Ready {
            listeners,
            addrs,
            stdout: stdout.to_vec(),
            after,
        }
    }

    /// The b32 of listener `name`.
    pub fn b32(&self, name: &str) -> &str {
        &self.listener(name).b32
    }

    pub fn listener(&self, name: &str) -> &Listener {
        self.listeners
            .get(name)
            .unwrap_or_else(|| panic!("no listener {name:?} in {:?}", self.stdout))
    }

    /// The one listener of a single-listener configuration.
    pub fn only(&self) -> &Listener {
        assert_eq!(self.listeners.len(), 1, "{:?}", self.stdout);
        self.listeners.values().next().unwrap()
    }

    /// The second word of the stdout line whose first word is `first` (`demo.i2p <b32>`).
    pub fn field(&self, first: &str) -> String {
        self.stdout
            .iter()
            .find_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                (w.first() == Some(&first)).then(|| w[1].to_string())
            })
            .unwrap_or_else(|| panic!("no {first:?} line in {:?}", self.stdout))
    }
}

/// A running eepsocks; killed when dropped, also when an assertion fails.
pub struct Eepsocks {
    child: Child,
    out: Arc<Pipe>,
    err: Arc<Pipe>,
    pumps: Vec<JoinHandle<()>>,
    started: Instant,
    exit: Option<ExitStatus>,
}

impl Eepsocks {
    /// Start eepsocks with `args`, logging at info level.
    pub fn spawn<S: AsRef<OsStr>>(
        args: impl IntoIterator<Item = S>,
        netns: Option<&str>,
    ) -> Eepsocks {
        Eepsocks::spawn_logging(args, netns, "info")
    }

    /// Start eepsocks with `args` and the log filter `log` (EEPSOCKS_LOG).
    pub fn spawn_logging<S: AsRef<OsStr>>(
        args: impl IntoIterator<Item = S>,
        netns: Option<&str>,
        log: &str,
    ) -> Eepsocks {
        let mut cmd = command(args, netns);
        cmd.env("EEPSOCKS_LOG", log);
        Eepsocks::spawn_command(cmd)
    }

    /// Start a prepared `command(..)` (e.g. with resource limits set in `pre_exec`).
    pub fn spawn_command(mut cmd: Command) -> Eepsocks {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start eepsocks");
        let (out, err) = (Arc::<Pipe>::default(), Arc::<Pipe>::default());
        let pumps = vec![
            out.clone().pump(child.stdout.take().unwrap()),
            err.clone().pump(child.stderr.take().unwrap()),
        ];
        Eepsocks {
            child,
            out,
            err,
            pumps,
            started: Instant::now(),
            exit: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait for the `ready` line (READY_TIMEOUT) and what was announced before it.
    pub fn wait_ready(&self) -> Ready {
        self.wait_ready_within(READY_TIMEOUT)
    }

    pub fn wait_ready_within(&self, timeout: Duration) -> Ready {
        let lines = self.out.wait(timeout, |lines| {
            let i = lines.iter().position(|l| l.starts_with("ready"))?;
            Some(lines[..=i].to_vec())
        });
        match lines {
            Some(lines) => Ready::parse(&lines, self.started.elapsed()),
            None => panic!(
                "eepsocks not ready within {timeout:?}; stdout {:?}; log:\n{}",
                self.out.lines(),
                self.log()
            ),
        }
    }

    /// Wait for a log line (stderr) that satisfies `pred`; returns it, or None after
    /// `timeout`. The whole log counts, not only lines after the call.
    pub fn wait_line(&self, pred: impl Fn(&str) -> bool, timeout: Duration) -> Option<String> {
        self.err
            .wait(timeout, |lines| lines.iter().find(|l| pred(l)).cloned())
    }

    /// Wait for a log line containing `what`; panics with the log when none comes.
    pub fn wait_log(&self, what: &str, timeout: Duration) -> String {
        self.wait_line(|l| l.contains(what), timeout)
            .unwrap_or_else(|| panic!("no {what:?} in the log within {timeout:?}:\n{}", self.log()))
    }

    /// The log (stderr) so far.
    pub fn log(&self) -> String {
        self.err.lines().join("\n")
    }

    pub fn signal(&self, sig: i32) {
        // Only while it runs: a reaped pid may already belong to another process.
        if self.exit.is_none() {
            unsafe { libc::kill(self.child.id() as i32, sig) };
        }
    }

    /// SIGHUP: reload the configuration and the address book.
    pub fn hup(&self) {
        self.signal(libc::SIGHUP);
    }

    /// SIGTERM, then wait for the exit (EXIT_TIMEOUT).
    pub fn term(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait_exit(EXIT_TIMEOUT)
    }

    /// Wait for the process to exit by itself; panics after `timeout`. Once it has exited,
    /// the whole log is in `log()`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let t0 = Instant::now();
        let st = loop {
            if let Some(st) = self.exit.or_else(|| self.child.try_wait().unwrap()) {
                break st;
            }
            assert!(
                t0.elapsed() < timeout,
                "eepsocks did not exit within {timeout:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        self.exited(st);
        st
    }

    /// The exit status if it has exited, without waiting.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        let st = self.exit.or_else(|| self.child.try_wait().unwrap())?;
        self.exited(st);
        Some(st)
    }

    /// SIGKILL, as a crash would; returns the whole log.
    pub fn kill(&mut self) -> String {
        if self.exit.is_none() {
            let _ = self.child.kill();
            let st = self.child.wait().expect("wait for eepsocks");
            self.exited(st);
        }
        self.log()
    }

    /// Record the exit and let the pumps read what was left in the pipes.
    fn exited(&mut self, st: ExitStatus) {
        self.exit = Some(st);
        for p in self.pumps.drain(..) {
            let _ = p.join();
        }
    }
}

impl Drop for Eepsocks {
    fn drop(&mut self) {
        self.kill();
    }
}
