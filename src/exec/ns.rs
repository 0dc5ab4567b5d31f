//! The namespaces side of exec (design B, docs/exec.md): a child of the launcher makes new
//! user, network and mount namespaces, gives them DNS and firewall rules whose only way
//! out is eepsocks, binds the listening sockets the daemon will serve and passes them to
//! the launcher. On the launcher's go, a new PID namespace: its PID 1 (`reaper`) mounts a
//! fresh /proc and runs COMMAND with no capabilities; when COMMAND ends it reads the
//! firewall's counters and sends them with COMMAND's status.
//!
//! Runs in the forked child of a process that has no other thread: allocating is safe.

use super::sys;
use std::ffi::{CString, OsString};
use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The namespace's own addresses on `lo`: global-scope sources, so connects to any address
/// take the default route through `lo` (and the firewall) instead of failing unseen.
/// TEST-NET-2 and a ULA: never routed anywhere, and nothing leaves the namespace anyway.
pub const SRC_V4: &str = "198.51.100.1";
pub const SRC_V6: &str = "fd65:6570:7365::1";

/// Descriptors handed to the daemon, in this order.
pub const FDS: usize = 6;

/// What the child was asked to do.
pub struct Plan {
    pub command: Vec<OsString>,
    /// An empty directory of ours; a tmpfs inside the namespace holds the files we mount.
    pub scratch: PathBuf,
    /// Directories hidden behind an empty tmpfs (eepsocks' control socket directory,
    /// nscd, resolved; with --isolate-ipc X11, D-Bus, XDG_RUNTIME_DIR).
    pub hide: Vec<PathBuf>,
}

/// The firewall's counters, by name.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    pub udp: u64,
    pub icmp: u64,
    pub other: u64,
    pub loopback: u64,
}

/// The last message of the namespace: COMMAND's status and the counters.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Ended {
    pub code: i32,
    pub counters: Option<Counters>,
}

/// The child: never returns. `sock`: its end of the launcher's SEQPACKET pair.
pub fn child(sock: OwnedFd, plan: Plan) -> ! {
    let fd = sock.as_raw_fd();
    // The launcher gone (killed), the namespace goes too.
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as u64,
            0u64,
            0u64,
            0u64,
        )
    };
    let fds = match setup(&plan) {
        Ok(f) => f,
        Err(why) => {
            let _ = sys::send_fds(fd, format!("ERR {why}").as_bytes(), &[]);
            exit(1)
        }
    };
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    if sys::send_fds(fd, b"OK", &raw).is_err() {
        exit(1);
    }
    drop(fds);
    // The go (or the launcher's end closing: the daemon refused, nothing runs).
    let mut b = [0u8; 8];
    match sys::recv_fds(fd, &mut b, 0, 0) {
        Ok((n, _)) if n >= 1 && b[0] == b'G' => {}
        _ => exit(1),
    }
    // SAFETY: plain syscalls in a single-threaded child.
    if unsafe { libc::unshare(libc::CLONE_NEWPID) } != 0 {
        let e = std::io::Error::last_os_error();
        let _ = sys::send_fds(fd, format!("ERR new PID namespace: {e}").as_bytes(), &[]);
        exit(1);
    }
    // SAFETY: see above.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        exit(1);
    }
    if pid == 0 {
        reaper(fd, &plan.command);
    }
    let code = wait_code(pid);
    exit(code)
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit: no atexit handlers or buffered std streams of the parent re-run.
    unsafe { libc::_exit(code) }
}

/// The exit code of `pid` once it ends: its code, or 128 + the signal, as shells do.
pub fn wait_code(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if r < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return 1;
        }
    }
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    }
}

/// Why user namespaces are refused here, and the fix, in one line.
pub fn userns_refused(e: &std::io::Error) -> String {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .ok()
    };
    let why = if e.raw_os_error() == Some(libc::ENOSPC)
        || read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0")
    {
        "user namespaces are disabled (sysctl user.max_user_namespaces = 0); fix: sysctl -w \
         user.max_user_namespaces=15000 (as root; persist it in /etc/sysctl.d/)"
            .to_string()
    } else if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        "unprivileged user namespaces are off (Debian's sysctl kernel.unprivileged_userns_clone \
         = 0); fix: sysctl -w kernel.unprivileged_userns_clone=1 (as root)"
            .to_string()
    } else if apparmor_restricts() {
        apparmor_hint()
    } else {
        "something here forbids unshare(CLONE_NEWUSER) (a seccomp filter or a container's \
         policy); allow user namespaces for eepsocks, or run it where they are allowed"
            .to_string()
    };
    format!("cannot create a user namespace ({e}): {why}")
}

fn apparmor_restricts() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
        .is_ok_and(|s| s.trim() == "1")
}

fn apparmor_hint() -> String {
    "AppArmor restricts unprivileged user namespaces (Ubuntu 23.10+: \
     kernel.apparmor_restrict_unprivileged_userns = 1); fix: install the profile \
     /etc/apparmor.d/eepsocks (the .deb ships it; dist/apparmor/eepsocks) and run \
     apparmor_parser -r /etc/apparmor.d/eepsocks, or sysctl -w \
     kernel.apparmor_restrict_unprivileged_userns=0"
        .to_string()
}

/// A step that failed inside the namespace; under Ubuntu's AppArmor restriction (the
/// namespace is made, but holds no capability) the hint says so.
fn step(what: &str, e: impl std::fmt::Display) -> String {
    if apparmor_restricts() {
        format!("{what}: {e}; {}", apparmor_hint())
    } else {
        format!("{what}: {e}")
    }
}

fn setup(plan: &Plan) -> Result<Vec<OwnedFd>, String> {
    // SAFETY: getters.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    // SAFETY: plain syscall.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET | libc::CLONE_NEWNS) } != 0 {
        return Err(userns_refused(&std::io::Error::last_os_error()));
    }
    // A user stays that user inside (root stays root), with no other uid mapped.
    let write =
        |p: &str, s: String| std::fs::write(p, s).map_err(|e| step(&format!("write {p}"), e));
    write("/proc/self/setgroups", "deny".into())?;
    write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
    write("/proc/self/gid_map", format!("{gid} {gid} 1"))?;
    if uid != 0 {
        sys::keep_net_admin_across_exec().map_err(|e| step("keep CAP_NET_ADMIN for ip/nft", e))?;
    }
    mounts(plan)?;
    network()?;
    let (fds, port) = sockets()?;
    firewall(port)?;
    Ok(fds)
}

fn mount(
    src: &str,
    dst: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: &str,
) -> Result<(), String> {
    let c = |s: &str| CString::new(s).map_err(|_| format!("NUL in {s:?}"));
    let dst_c =
        CString::new(dst.as_os_str().as_bytes()).map_err(|_| "NUL in a path".to_string())?;
    let (src_c, data_c) = (c(src)?, c(data)?);
    let fs_c = fstype.map(c).transpose()?;
    // SAFETY: NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::mount(
            src_c.as_ptr(),
            dst_c.as_ptr(),
            fs_c.as_ref().map_or(std::ptr::null(), |f| f.as_ptr()),
            flags,
            if data.is_empty() {
                std::ptr::null()
            } else {
                data_c.as_ptr() as *const libc::c_void
            },
        )
    };
    if r != 0 {
        return Err(step(
            &format!("mount {}", dst.display()),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

const RESOLV_CONF: &str = "# eepsocks exec: names resolve through eepsocks only (I2P names; every \
                           other name is refused)\nnameserver 127.0.0.1\nnameserver ::1\n\
                           options edns0\n";
const HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";

fn mounts(plan: &Plan) -> Result<(), String> {
    // Nothing we mount propagates back to the host.
    mount(
        "none",
        Path::new("/"),
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        "",
    )?;
    for d in &plan.hide {
        if d.is_dir() {
            mount(
                "tmpfs",
                d,
                Some("tmpfs"),
                libc::MS_NOSUID | libc::MS_NODEV,
                "mode=0755,size=64k",
            )?;
        }
    }
    let scratch = &plan.scratch;
    mount(
        "tmpfs",
        scratch,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        "mode=0755,size=64k",
    )?;
    let put = |name: &str, text: &str| -> Result<PathBuf, String> {
        let p = scratch.join(name);
        std::fs::write(&p, text).map_err(|e| format!("write {}: {e}", p.display()))?;
        Ok(p)
    };
    // nss-resolve, mdns, nscd... out of the path: files, then our DNS.
    let host_nss = std::fs::read_to_string("/etc/nsswitch.conf").unwrap_or_default();
    let mut nss: String = host_nss
        .lines()
        .filter(|l| !l.trim_start().starts_with("hosts:"))
        .map(|l| format!("{l}\n"))
        .collect();
    nss.push_str("hosts: files dns\n");
    let files = [
        ("resolv.conf", RESOLV_CONF.to_string(), "/etc/resolv.conf"),
        ("hosts", HOSTS.to_string(), "/etc/hosts"),
        ("nsswitch.conf", nss, "/etc/nsswitch.conf"),
    ];
    for (name, text, target) in files {
        let src = put(name, &text)?;
        place(&src, Path::new(target), &text)?;
    }
    Ok(())
}

/// Put `src` at `target`: bind-mounted read-only over what the target (or its link) is; a
/// link into a directory we hid (resolved's stub-resolv.conf) gets the file written there.
fn place(src: &Path, target: &Path, text: &str) -> Result<(), String> {
    let real = match std::fs::canonicalize(target) {
        Ok(r) => r,
        Err(_) => match std::fs::read_link(target) {
            Ok(link) => {
                let abs = target.parent().unwrap_or(Path::new("/")).join(link);
                if let Some(dir) = abs.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                return std::fs::write(&abs, text).map_err(|e| {
                    format!(
                        "write {} (the target of {}): {e}",
                        abs.display(),
                        target.display()
                    )
                });
            }
            // No such file: nothing reads it.
            Err(_) => return Ok(()),
        },
    };
    let s = src.to_string_lossy().into_owned();
    mount(&s, &real, None, libc::MS_BIND, "")?;
    mount(
        &s,
        &real,
        None,
        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
        "",
    )
}

fn run_tool(tool: &str, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let mut c = Command::new(tool);
    c.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("`{tool}` is not installed (exec needs iproute2 and nftables: apt-get install iproute2 nftables)")
        } else {
            step(&format!("run {tool}"), e)
        }
    })?;
    if let (Some(text), Some(mut i)) = (stdin, child.stdin.take()) {
        let _ = i.write_all(text.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{tool}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let what = format!("{tool} {}", args.join(" "));
        // One line: the first of the tool's lines say what went wrong.
        let err: Vec<&str> = err
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        return Err(step(&what, err.join(" / ")));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn network() -> Result<(), String> {
    let ip = |a: &[&str]| run_tool("ip", a, None).map(|_| ());
    ip(&["link", "set", "lo", "up"])?;
    ip(&["addr", "add", &format!("{SRC_V4}/32"), "dev", "lo"])?;
    ip(&[
        "-6",
        "addr",
        "add",
        &format!("{SRC_V6}/128"),
        "dev",
        "lo",
        "nodad",
    ])?;
    ip(&["route", "add", "default", "dev", "lo", "src", SRC_V4])?;
    ip(&["-6", "route", "add", "default", "dev", "lo", "src", SRC_V6])?;
    Ok(())
}

/// The transparent port (v4 and v6 on one port number) and DNS on port 53, UDP and TCP.
fn sockets() -> Result<(Vec<OwnedFd>, u16), String> {
    let bind_err = |what: &str, e: std::io::Error| step(&format!("bind {what} inside"), e);
    let t4 = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| bind_err("127.0.0.1", e))?;
    let port = t4.local_addr().map_err(|e| e.to_string())?.port();
    let t6 = TcpListener::bind((Ipv6Addr::LOCALHOST, port)).map_err(|e| bind_err("[::1]", e))?;
    let dns4: SocketAddr = (Ipv4Addr::LOCALHOST, 53).into();
    let dns6: SocketAddr = (Ipv6Addr::LOCALHOST, 53).into();
    let u4 = UdpSocket::bind(dns4).map_err(|e| bind_err("127.0.0.1:53", e))?;
    let d4 = TcpListener::bind(dns4).map_err(|e| bind_err("127.0.0.1:53", e))?;
    let u6 = UdpSocket::bind(dns6).map_err(|e| bind_err("[::1]:53", e))?;
    let d6 = TcpListener::bind(dns6).map_err(|e| bind_err("[::1]:53", e))?;
    Ok((
        vec![
            t4.into(),
            t6.into(),
            u4.into(),
            d4.into(),
            u6.into(),
            d6.into(),
        ],
        port,
    ))
}

/// The ruleset: TCP to anything but our own 127.0.0.1/::1 goes to the transparent port
/// (virtual addresses become I2P streams, the rest is refused and listed there), DNS over
/// UDP anywhere goes to our DNS; every other packet that is not for this namespace's own
/// addresses is refused at once (`reject`: fail fast) and counted.
pub fn ruleset(port: u16) -> String {
    format!(
        "table inet eepsocks {{
	counter udp_refused {{ }}
	counter icmp_refused {{ }}
	counter other_refused {{ }}
	counter loopback_refused {{ }}
	chain nat_out {{
		type nat hook output priority -100; policy accept;
		meta l4proto tcp ip daddr != 127.0.0.1 redirect to :{port}
		meta l4proto tcp ip6 daddr != ::1 redirect to :{port}
		udp dport 53 ip daddr != 127.0.0.1 redirect to :53
		udp dport 53 ip6 daddr != ::1 redirect to :53
	}}
	chain filter_out {{
		type filter hook output priority 0; policy accept;
		tcp flags & (syn | rst | ack) == rst | ack tcp sequence 0 counter name loopback_refused
		fib daddr type local accept
		meta l4proto udp counter name udp_refused reject
		meta l4proto {{ icmp, ipv6-icmp }} counter name icmp_refused reject
		counter name other_refused reject
	}}
}}
"
    )
}

fn firewall(port: u16) -> Result<(), String> {
    run_tool("nft", &["-f", "-"], Some(&ruleset(port))).map(|_| ())
}

/// The counters, from `nft -j`.
fn counters() -> Option<Counters> {
    let out = run_tool(
        "nft",
        &["-j", "list", "counters", "table", "inet", "eepsocks"],
        None,
    )
    .ok()?;
    let v: serde_json::Value = serde_json::from_str(&out).ok()?;
    let mut c = Counters::default();
    for item in v.get("nftables")?.as_array()? {
        let Some(k) = item.get("counter") else {
            continue;
        };
        let n = k.get("packets").and_then(|p| p.as_u64()).unwrap_or(0);
        match k.get("name").and_then(|n| n.as_str()) {
            Some("udp_refused") => c.udp = n,
            Some("icmp_refused") => c.icmp = n,
            Some("other_refused") => c.other = n,
            Some("loopback_refused") => c.loopback = n,
            _ => {}
        }
    }
    Some(c)
}

/// PID 1 of the new PID namespace: a fresh /proc, COMMAND as its child, every orphan
/// reaped; when COMMAND ends, the counters and its status to the launcher, and the
/// namespace ends (its other processes are killed with PID 1).
fn reaper(fd: RawFd, command: &[OsString]) -> ! {
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as u64,
            0u64,
            0u64,
            0u64,
        )
    };
    let fail = |why: String| -> ! {
        let _ = sys::send_fds(fd, format!("ERR {why}").as_bytes(), &[]);
        exit(1)
    };
    if let Err(e) = mount(
        "proc",
        Path::new("/proc"),
        Some("proc"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        "",
    ) {
        fail(e);
    }
    // SAFETY: single-threaded.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        fail("fork".into());
    }
    if pid == 0 {
        run_command(command);
    }
    let mut code = 1;
    loop {
        let mut status = 0;
        // SAFETY: status is a valid out-pointer.
        let r = unsafe { libc::waitpid(-1, &mut status, 0) };
        if r < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        if r == pid {
            code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else if libc::WIFSIGNALED(status) {
                128 + libc::WTERMSIG(status)
            } else {
                1
            };
            break;
        }
    }
    let ended = Ended {
        code,
        counters: counters(),
    };
    let text = serde_json::to_string(&ended).unwrap_or_default();
    let _ = sys::send_fds(fd, format!("END {text}").as_bytes(), &[]);
    exit(code)
}

fn run_command(command: &[OsString]) -> ! {
    // The launcher ignores ^C so it can report; COMMAND gets the default.
    // SAFETY: resetting dispositions.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        libc::signal(libc::SIGQUIT, libc::SIG_DFL);
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let name = command[0].to_string_lossy().into_owned();
    if let Err(e) = sys::drop_all_capabilities() {
        eprintln!("eepsocks exec: cannot drop capabilities: {e}; not running {name}");
        exit(126);
    }
    let args: Vec<CString> = command
        .iter()
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    // SAFETY: argv is NUL-terminated and its strings live until exec.
    unsafe { libc::execvp(argv[0], argv.as_ptr()) };
    let e = std::io::Error::last_os_error();
    eprintln!("eepsocks exec: cannot run {name}: {e}");
    exit(if e.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ruleset's shape: TCP and UDP DNS redirected except for the namespace's own
    /// loopback, the counters the report reads, and `reject` (fail fast), never `drop`.
    #[test]
    fn ruleset_redirects_tcp_and_dns_and_rejects_the_rest() {
        let r = ruleset(4321);
        assert!(r.contains("meta l4proto tcp ip daddr != 127.0.0.1 redirect to :4321"));
        assert!(r.contains("meta l4proto tcp ip6 daddr != ::1 redirect to :4321"));
        assert!(r.contains("udp dport 53 ip daddr != 127.0.0.1 redirect to :53"));
        for c in [
            "udp_refused",
            "icmp_refused",
            "other_refused",
            "loopback_refused",
        ] {
            assert!(r.contains(&format!("counter {c} {{ }}")), "{c}");
        }
        assert!(!r.contains("drop"));
        assert!(r.trim_end().ends_with('}'));
    }

    #[test]
    fn refusal_names_the_fix() {
        let e = std::io::Error::from_raw_os_error(libc::ENOSPC);
        let m = userns_refused(&e);
        assert!(
            m.contains("user.max_user_namespaces") && m.contains("sysctl -w"),
            "{m}"
        );
        assert!(!m.contains('\n'));
    }
}
