//! Running code inside a network namespace. A thread can enter a namespace (`setns`) and
//! every socket it creates afterwards lives there, so the test process reaches the
//! offline network without running as a separate process. Threads (and tokio workers)
//! started from such a thread inherit its namespace.

use std::future::Future;
use std::os::fd::AsRawFd;
use std::thread::JoinHandle;

/// Move the current thread into namespace `ns` (a name under /var/run/netns).
pub fn enter(ns: &str) {
    let path = format!("/var/run/netns/{ns}");
    let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {ns}: {}", std::io::Error::last_os_error());
}

/// Start `f` on a new thread inside `ns`.
pub fn spawn<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        enter(&ns);
        f()
    })
}

/// Run `f` inside `ns` and return what it returns; a panic in `f` is this caller's panic.
pub fn run<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    spawn(ns, f)
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Start a thread inside `ns` with its own tokio runtime (multi-threaded: its workers are
/// started from that thread, so they are inside `ns` too) and drive `make()`'s future on it.
/// The future is made on that thread, so it need not be `Send`.
pub fn spawn_async<F: Future>(
    ns: &str,
    make: impl FnOnce() -> F + Send + 'static,
) -> JoinHandle<F::Output>
where
    F::Output: Send + 'static,
{
    spawn(ns, move || {
        let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
        rt.block_on(make())
    })
}

/// `spawn_async`, waiting for the result.
pub fn block_on<F: Future>(ns: &str, make: impl FnOnce() -> F + Send + 'static) -> F::Output
where
    F::Output: Send + 'static,
{
    spawn_async(ns, make)
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// A network namespace of the test's own with loopback up (IPv4 and ::1), deleted on
/// drop: firewall rules inside it touch nothing of the host's. Needs root.
pub struct Own {
    pub name: String,
}

impl Own {
    pub fn new(tag: &str) -> Own {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let name = format!(
            "eeps{tag}{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &name])
            .output();
        let own = Own { name };
        own.sh(&["ip", "netns", "add", &own.name]);
        own.exec(&["ip", "link", "set", "lo", "up"]);
        own
    }

    /// Run `argv` inside the namespace; it must succeed.
    pub fn exec(&self, argv: &[&str]) {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(argv);
        self.sh(&full);
    }

    fn sh(&self, argv: &[&str]) {
        let out = std::process::Command::new(argv[0])
            .args(&argv[1..])
            .output()
            .unwrap_or_else(|e| panic!("run {argv:?}: {e}"));
        assert!(
            out.status.success(),
            "{argv:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Own {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}
