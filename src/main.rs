use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use eepsocks::config::{Config, Isolate};
use eepsocks::proxy::conn::ListenerContext;
use eepsocks::i2p::identity::{self, Mode, Pool, Template};
use eepsocks::i2p::keyfile::{self, KeySource};
use eepsocks::naming::{self, AddressBook, Target};
use eepsocks::i2p::SamRouter;
use eepsocks::i2p::sam::Session;
use eepsocks::proxy::status::ListenerInfo;
use eepsocks::naming::{subscriptions::Subscriptions, Books};
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

#[derive(Parser)]
#[command(
    name = "eepsocks",
    version,
    about = "A SOCKS 4a/5 proxy into I2P, and nothing else"
)]
struct Cli {
    /// TOML configuration file
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Directory for key files and the address book [default: ~/.local/share/eepsocks]
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// The router's SAM bridge [default: 127.0.0.1:7656]
    #[arg(long, global = true)]
    sam: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve SOCKS, opening every stream through an I2P router's SAM v3 bridge.
    Run {
        /// SOCKS listen address of the (first) listener, loopback only [default: 127.0.0.1:4447]
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Use new identities for this run only (no key files)
        #[arg(long)]
        transient: bool,
        /// auto: the SAM bridge (--sam) if one answers, else the embedded router [default: auto]
        #[arg(long, value_enum)]
        router: Option<eepsocks::config::RouterKind>,
    },
    /// Start an offline I2P network in this process (emissary routers on loopback) with an
    /// eepsite named demo.i2p, and serve SOCKS into it:
    /// curl --socks5-hostname 127.0.0.1:4447 http://demo.i2p/
    #[cfg(feature = "embedded")]
    Demo {
        /// SOCKS listen address [default: 127.0.0.1:4447]
        #[arg(long, default_value = "127.0.0.1:4447")]
        listen: SocketAddr,
        /// Keep the network here, so a restart has the same routers, site and identity
        /// [default: a new temporary directory, removed at exit]
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Print the b32 (and base64, when known) of an I2P name.
    Resolve { name: String },
    /// The address book (hosts.txt format, in the data directory), looked up before the router's.
    #[command(subcommand)]
    Addressbook(BookCmd),
    /// Key files in the i2pd / Java I2P binary layout.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Print the running proxy's status (JSON from its status endpoint).
    Status,
    /// Convert the SOCKS proxies of an i2pd.conf, tunnels.conf or Java i2ptunnel.config
    /// into an eepsocks config (printed); what has no equivalent is listed on stderr.
    ImportConfig { file: PathBuf },
}

#[derive(Subcommand)]
enum BookCmd {
    /// List names and their b32 addresses.
    List,
    /// Add or replace a name: NAME BASE64-DESTINATION (or b32).
    Add {
        name: String,
        /// I2P base64 may begin with '-'; it is a value, not a flag.
        #[arg(allow_hyphen_values = true)]
        destination: String,
    },
    /// Remove a name.
    Remove { name: String },
    /// Merge a hosts.txt file, or i2pd's addresses.csv (names already in the book are kept).
    Import { file: PathBuf },
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Show a key file's b32 address and key types (never the private keys).
    Show { file: PathBuf },
    /// Create a new key file through the router (never overwrites).
    Generate { file: PathBuf },
    /// Copy a listener's key file (NAME.dat in the data directory) out to FILE, for i2pd
    /// or Java I2P (same binary layout). Never overwrites.
    Export {
        file: PathBuf,
        #[arg(long, default_value = "eepsocks")]
        name: String,
    },
    /// Copy an i2pd / Java I2P key file into the data directory as NAME.dat (the identity
    /// of the listener NAME), keeping its b32.
    Import {
        file: PathBuf,
        #[arg(long, default_value = "eepsocks")]
        name: String,
    },
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EEPSOCKS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,emissary=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let _ = CONFIG_PATH.set(cli.config.clone());
    let mut cfg = Config::load(cli.config.as_deref())?;
    if let Some(s) = cli.sam {
        cfg.sam = s;
    }
    if cli.data_dir.is_some() {
        cfg.data_dir = cli.data_dir;
    }
    let threads = cfg.threads;
    let rt = || eepsocks::proxy::server::runtime(threads).context("tokio runtime");
    match cli.cmd {
        Cmd::Run {
            listen,
            transient,
            router,
        } => {
            if let Some(r) = router {
                cfg.router = r;
            }
            if let Some(l) = listen {
                match cfg.proxy.first_mut() {
                    Some(p) => p.listen = l,
                    None => cfg.listen = l,
                }
            }
            if transient {
                cfg.keys = "transient".into();
                for p in &mut cfg.proxy {
                    p.keys = Some("transient".into());
                    p.shared = false;
                    p.persistent_users = false;
                }
            }
            cfg.validate()?;
            rt()?.block_on(run(cfg))
        }
        #[cfg(feature = "embedded")]
        Cmd::Demo { listen, dir } => rt()?.block_on(demo(listen, dir)),
        Cmd::Resolve { name } => rt()?.block_on(resolve(&cfg, &name)),
        Cmd::Addressbook(c) => addressbook(&cfg, c),
        Cmd::Keys(c) => rt()?.block_on(keys_cmd(&cfg, c)),
        Cmd::Status => rt()?.block_on(async {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let a = cfg.status_addr()?.context("status_listen is off")?;
            let mut s = tokio::net::TcpStream::connect(a)
                .await
                .with_context(|| format!("no eepsocks status endpoint at {a}: is it running?"))?;
            s.write_all(b"GET /status HTTP/1.0\r\n\r\n").await?;
            let mut v = Vec::new();
            s.read_to_end(&mut v).await?;
            let text = String::from_utf8_lossy(&v);
            print!(
                "{}",
                text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or(&text)
            );
            Ok(())
        }),
        Cmd::ImportConfig { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let imported = eepsocks::config::import::detect(&text);
            if imported.listeners.is_empty() {
                bail!("{}: no SOCKS proxy found", file.display());
            }
            for n in &imported.notes {
                eprintln!("note: {n}");
            }
            print!("{}", imported.to_toml());
            Ok(())
        }
    }
}

fn book_path(cfg: &Config) -> PathBuf {
    cfg.data_dir().join("addressbook.txt")
}

fn load_book(cfg: &Config) -> Result<AddressBook> {
    let path = book_path(cfg);
    let (book, warnings) = AddressBook::load(&path)?;
    for w in warnings {
        warn!("address book {}: {w} (skipped)", path.display());
    }
    Ok(book)
}

/// One running listener.
struct Running {
    /// Everything its behaviour depends on; a reload restarts it when this changes.
    spec: String,
    name: String,
    task: tokio::task::JoinHandle<()>,
    slots: Arc<tokio::sync::Semaphore>,
    max: usize,
    key_file: Option<PathBuf>,
    info: Arc<ListenerInfo>,
    pool: Arc<Pool>,
}

/// What lives across reloads: books, identities by key file, listeners, and the drain list.
struct Daemon {
    books: Arc<Books>,
    stand_ins: Arc<eepsocks::naming::StandIns>,
    by_file: HashMap<PathBuf, (Session, String)>,
    running: Vec<Running>,
    /// Slots of listeners stopped by a reload, whose streams may still be open.
    draining: Vec<(Arc<tokio::sync::Semaphore>, usize)>,
    infos: Arc<std::sync::RwLock<Vec<Arc<ListenerInfo>>>>,
    pools: Arc<std::sync::RwLock<Vec<Arc<Pool>>>>,
}

fn spec_of(cfg: &Config, l: &eepsocks::config::Listener) -> String {
    format!(
        "{l:?}|{}|{}|{}|{}|{}|{:?}|{}",
        cfg.sam,
        cfg.handshake_timeout,
        cfg.stream_timeout,
        cfg.max_clients,
        cfg.signature_type,
        cfg.options,
        cfg.data_dir().display()
    )
}

impl Daemon {
    /// Make the running listeners match `cfg`: stop the removed and changed ones (their
    /// open streams carry on), start the new and changed ones. Identities are kept per key
    /// file, so an unchanged key file keeps its session. Returns the "destination" lines of
    /// the listeners started, and the sessions to wait for.
    async fn apply(&mut self, cfg: &Config) -> Result<(Vec<String>, Vec<Session>)> {
        let wanted: Vec<_> = cfg.listeners();
        let specs: HashMap<String, String> = wanted
            .iter()
            .map(|l| (l.name.clone(), spec_of(cfg, l)))
            .collect();
        let mut old_stats = HashMap::new();
        let mut keep = Vec::new();
        for r in self.running.drain(..) {
            if specs.get(&r.name) == Some(&r.spec) {
                keep.push(r);
            } else {
                info!(
                    "listener {} stopped (removed or changed); its open streams continue",
                    r.name
                );
                r.task.abort();
                old_stats.insert(r.name.clone(), r.info.stats.clone());
                self.draining.push((r.slots, r.max));
            }
        }
        self.running = keep;
        let mut lines = Vec::new();
        let mut sessions = Vec::new();
        for l in wanted {
            if self.running.iter().any(|r| r.name == l.name) {
                continue;
            }
            let sock = tokio::net::TcpListener::bind(l.listen)
                .await
                .with_context(|| format!("cannot listen on {}", l.listen))?;
            let template = Template {
                sam_addr: cfg.sam.clone(),
                options: cfg.listener_options(&l.options)?,
                sig_type: cfg.signature_type,
            };
            let mut key_file = None;
            let (mode, identity_name) = if l.isolate == Isolate::Username {
                let key_dir = l
                    .persistent_users
                    .then(|| cfg.data_dir().join("users").join(&l.name));
                let mode = Mode::PerUser {
                    key_dir,
                    idle: Duration::from_secs(l.idle_timeout),
                };
                (mode, "per-username".to_string())
            } else {
                let path = cfg.listener_key_path(&l);
                let (session, b32) = match path.as_ref().and_then(|p| self.by_file.get(p)) {
                    Some(s) => s.clone(),
                    None => {
                        let source = match &path {
                            Some(p) => KeySource::File(p.clone()),
                            None => KeySource::Transient,
                        };
                        let keys = eepsocks::i2p::keyfile::obtain(&source, &template.sam_addr, template.sig_type).await?;
                        let b32 = keys.destination().b32();
                        let s = (identity::fixed_session(&l.name, keys, &template, None), b32);
                        if let Some(p) = &path {
                            self.by_file.insert(p.clone(), s.clone());
                        }
                        s
                    }
                };
                key_file = path;
                sessions.push(session.clone());
                (Mode::Fixed(session), b32)
            };
            lines.push(format!(
                "destination {identity_name} ({} on {})",
                l.name, l.listen
            ));
            let pool = Arc::new(Pool::new(&l.name, template, mode));
            let router = Arc::new(SamRouter {
                pool: pool.clone(),
                book: self.books.clone(),
            });
            let mut ctx = ListenerContext::new(
                Duration::from_secs(cfg.handshake_timeout),
                Duration::from_secs(cfg.stream_timeout),
                cfg.max_clients,
            );
            ctx.stand_ins = self.stand_ins.clone();
            ctx.auth = l.auth_check()?;
            if let Some(s) = old_stats.remove(&l.name) {
                ctx.stats = s;
            }
            let ctx = Arc::new(ctx);
            let (p1, p2) = (pool.clone(), pool.clone());
            let info = Arc::new(ListenerInfo {
                name: l.name.clone(),
                listen: l.listen.to_string(),
                identity: identity_name,
                stats: ctx.stats.clone(),
                session_up: Box::new(move || p1.is_up()),
                per_user_identities: Box::new(move || p2.users()),
            });
            if !l.listen.ip().is_loopback() {
                warn!(
                    "LISTENER {} IS REACHABLE FROM THE NETWORK ({}): anyone with the login can \
                     use this I2P identity, and the network can see that you use I2P",
                    l.name, l.listen
                );
            }
            info!(
                "listener {} on {}{}",
                l.name,
                l.listen,
                if ctx.auth.is_some() {
                    " (login required)"
                } else {
                    ""
                }
            );
            let slots = ctx.slots.clone();
            let task = tokio::spawn(eepsocks::proxy::server::serve(
                Arc::new(sock),
                router,
                ctx,
                std::future::pending(),
            ));
            self.running.push(Running {
                spec: specs[&l.name].clone(),
                name: l.name.clone(),
                task,
                slots,
                max: cfg.max_clients,
                key_file,
                info,
                pool,
            });
        }
        // Identities no listener uses any more close once their last stream ends.
        let used: Vec<PathBuf> = self
            .running
            .iter()
            .filter_map(|r| r.key_file.clone())
            .collect();
        self.by_file.retain(|p, _| used.contains(p));
        *self.infos.write().map_err(|_| anyhow::anyhow!("lock"))? =
            self.running.iter().map(|r| r.info.clone()).collect();
        *self.pools.write().map_err(|_| anyhow::anyhow!("lock"))? = self
            .running
            .iter()
            .filter(|r| r.pool.is_per_user())
            .map(|r| r.pool.clone())
            .collect();
        Ok((lines, sessions))
    }

    /// Connections still open, on running and on stopped listeners.
    fn open(&self) -> usize {
        let run = self.running.iter().map(|r| (&r.slots, r.max));
        let old = self.draining.iter().map(|(s, m)| (s, *m));
        run.chain(old).map(|(s, m)| m - s.available_permits()).sum()
    }
}

#[cfg(feature = "embedded")]
async fn demo(listen: SocketAddr, dir: Option<PathBuf>) -> Result<()> {
    let temp = dir.is_none();
    let dir = match dir {
        Some(d) => d,
        None => eepsocks::demo::temp_dir()?,
    };
    let r = demo_in(&dir, listen).await;
    if temp {
        let _ = std::fs::remove_dir_all(&dir);
    }
    r
}

#[cfg(feature = "embedded")]
async fn demo_in(dir: &std::path::Path, listen: SocketAddr) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    // Interrupted while starting: return, so the temporary directory is removed.
    let d = tokio::select! {
        d = eepsocks::demo::start(dir, listen) => d?,
        _ = term.recv() => return Ok(()),
        _ = tokio::signal::ctrl_c() => return Ok(()),
    };
    let eepsocks::demo::Demo {
        net,
        router,
        site_b32,
        config,
        site,
    } = d;
    println!("demo.i2p {site_b32}");
    println!(
        "try: curl --socks5-hostname {listen} http://{}/  (or http://{site_b32}/)",
        eepsocks::demo::SITE_NAME,
    );
    let r = run_with(config, eepsocks::i2p::backend::Backend::Embedded(router)).await;
    drop(site);
    net.stop().await;
    r
}

async fn run(mut cfg: Config) -> Result<()> {
    let backend = eepsocks::i2p::backend::choose(&mut cfg).await?;
    run_with(cfg, backend).await
}

/// Serve until SIGTERM/ctrl-c. `backend` (the embedded router, if that is the one) runs
/// until then.
async fn run_with(cfg: Config, backend: eepsocks::i2p::backend::Backend) -> Result<()> {
    #[cfg(feature = "embedded")]
    let progress = match &backend {
        eepsocks::i2p::backend::Backend::Embedded(r) => {
            Some(tokio::spawn(eepsocks::i2p::backend::log_progress(r.progress())))
        }
        _ => None,
    };
    let books = Arc::new(Books::default());
    *books.user.write().map_err(|_| anyhow::anyhow!("lock"))? = load_book(&cfg)?;
    let subs = Subscriptions {
        urls: cfg.subscriptions.clone(),
        dir: cfg.data_dir(),
        template: Template {
            sam_addr: cfg.sam.clone(),
            options: cfg.session_options()?,
            sig_type: cfg.signature_type,
        },
        books: books.clone(),
        delay: Duration::from_secs(cfg.subscription_delay),
        interval: Duration::from_secs(cfg.subscription_interval),
        timeout: Duration::from_secs(300),
    };
    subs.load()?;
    if !subs.urls.is_empty() {
        tokio::spawn(subs.run());
    }
    let mut daemon = Daemon {
        books: books.clone(),
        stand_ins: Arc::default(),
        by_file: HashMap::new(),
        running: Vec::new(),
        draining: Vec::new(),
        infos: Arc::default(),
        pools: Arc::default(),
    };
    let (lines, sessions) = daemon.apply(&cfg).await?;
    tokio::spawn(identity::reaper(daemon.pools.clone()));
    if let Some(a) = cfg.status_addr()? {
        let l = tokio::net::TcpListener::bind(a)
            .await
            .with_context(|| format!("cannot listen on {a} (status_listen)"))?;
        info!("status on http://{a}/status and /metrics");
        tokio::spawn(eepsocks::proxy::status::serve(
            l,
            daemon.infos.clone(),
            backend.kind(),
            cfg.sam.clone(),
        ));
    }
    for s in &sessions {
        s.wait_until_up().await?;
    }
    #[cfg(feature = "embedded")]
    if let Some(p) = progress {
        p.abort();
    }
    {
        let mut out = std::io::stdout().lock();
        for l in &lines {
            writeln!(out, "{l}")?;
        }
        let addrs: Vec<String> = cfg
            .listeners()
            .iter()
            .map(|l| l.listen.to_string())
            .collect();
        writeln!(out, "ready {}", addrs.join(" "))?;
        out.flush()?;
    }
    use tokio::signal::unix::{signal, SignalKind};
    #[cfg(feature = "embedded")]
    let router_stopped = match &backend {
        eepsocks::i2p::backend::Backend::Embedded(r) => Some(r.progress()),
        _ => None,
    };
    #[cfg(not(feature = "embedded"))]
    let router_stopped: Option<()> = None;
    let mut router_stopped = std::pin::pin!(eepsocks::i2p::backend::stopped(router_stopped));
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut current = cfg;
    loop {
        tokio::select! {
            _ = hup.recv() => {
                reload(&current, &books);
                // The config file too, when there is one; a bad file changes nothing.
                match reload_config(&current) {
                    Ok(Some(new)) => match daemon.apply(&new).await {
                        Ok((lines, _)) => {
                            for l in lines {
                                info!("SIGHUP: {l}");
                            }
                            if new.subscriptions != current.subscriptions {
                                warn!("SIGHUP: subscription changes take effect at the next start");
                            }
                            current = new;
                        }
                        Err(e) => warn!("SIGHUP: config applied in part: {e:#}"),
                    },
                    Ok(None) => {}
                    Err(e) => warn!("SIGHUP: config not reloaded, keeping the running one: {e:#}"),
                }
            }
            _ = term.recv() => break,
            _ = &mut router_stopped => {
                anyhow::bail!("the embedded router stopped (see the log above); exiting");
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    // Stop accepting, then give open streams time to finish.
    for r in &daemon.running {
        r.task.abort();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(current.drain_timeout);
    info!(
        "stopping: no new clients; waiting up to {} s for {} open connections",
        current.drain_timeout,
        daemon.open()
    );
    while daemon.open() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left = daemon.open();
    if left > 0 {
        warn!("exiting with {left} connections still open (drain_timeout)");
    } else {
        info!("all connections closed; exiting");
    }
    match backend {
        eepsocks::i2p::backend::Backend::Sam => {}
        #[cfg(feature = "embedded")]
        eepsocks::i2p::backend::Backend::Embedded(r) => r.stop().await,
    }
    Ok(())
}

/// Read the config file again, with the command line's overrides kept.
fn reload_config(current: &Config) -> Result<Option<Config>> {
    let Some(path) = CONFIG_PATH.get().cloned().flatten() else {
        return Ok(None);
    };
    let mut new = Config::load(Some(&path))?;
    // What came from the command line stays.
    new.sam = current.sam.clone();
    new.data_dir = current.data_dir.clone();
    // The router is chosen once, at start.
    new.router = current.router;
    new.embedded = current.embedded.clone();
    if current.proxy.is_empty() && new.proxy.is_empty() {
        new.listen = current.listen;
        new.keys = current.keys.clone();
    }
    new.validate()?;
    Ok(Some(new))
}

/// The config file given at start, for SIGHUP.
static CONFIG_PATH: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();

/// SIGHUP: read the address books again. Open streams and identities are untouched.
fn reload(cfg: &Config, books: &Books) {
    match load_book(cfg) {
        Ok(b) => {
            let n = b.len();
            if let Ok(mut u) = books.user.write() {
                *u = b;
            }
            info!("SIGHUP: address book reloaded ({n} names)");
        }
        Err(e) => warn!("SIGHUP: address book not reloaded: {e:#}"),
    }
    let path = cfg.data_dir().join("subscriptions.txt");
    if let Ok((b, _)) = AddressBook::load(&path) {
        if let Ok(mut s) = books.subscribed.write() {
            *s = b;
        }
    }
}

async fn resolve(cfg: &Config, name: &str) -> Result<()> {
    // A full base64 destination stands for itself.
    if name.len() >= 516 && !name.contains('.') {
        let d = eepsocks::i2p::Destination::from_base64(name)?;
        println!("{}\n{}", d.b32(), d.to_base64());
        return Ok(());
    }
    let target = naming::classify(&naming_address(name)).map_err(|e| anyhow::anyhow!("{e}"))?;
    match target {
        Target::B32(b) | Target::B33(b) => {
            println!("{b}");
            Ok(())
        }
        Target::Name(n) => {
            match load_book(cfg)?.get(&n) {
                Some(naming::Entry::Dest(d)) => {
                    println!("{}\n{}", d.b32(), d.to_base64());
                    return Ok(());
                }
                Some(naming::Entry::B32(b)) => {
                    println!("{b}");
                    return Ok(());
                }
                None => {}
            }
            // Not ours: ask the router's address book (sessionless lookup).
            let mut c = eepsocks::i2p::sam::SamSocket::connect(&cfg.sam).await?;
            let r = c.command(&format!("NAMING LOOKUP NAME={n}")).await?;
            match (r.get("RESULT"), r.get("VALUE")) {
                (Some("OK"), Some(v)) => {
                    let d = eepsocks::i2p::Destination::from_base64(v)?;
                    println!("{}\n{}", d.b32(), d.to_base64());
                    Ok(())
                }
                (res, _) => bail!(
                    "{n}: not in the address book ({}) nor the router's ({})",
                    book_path(cfg).display(),
                    res.unwrap_or("no result")
                ),
            }
        }
    }
}

fn naming_address(name: &str) -> eepsocks::socks::Address {
    eepsocks::socks::Address::Name(name.to_string())
}

fn addressbook(cfg: &Config, c: BookCmd) -> Result<()> {
    let path = book_path(cfg);
    let mut book = load_book(cfg)?;
    match c {
        BookCmd::List => {
            for (n, d) in book.iter() {
                println!("{n} {}", d.b32());
            }
        }
        BookCmd::Add { name, destination } => {
            book.insert(&name, &destination)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            book.save(&path)?;
        }
        BookCmd::Remove { name } => {
            if !book.remove(&name) {
                bail!("{name} is not in the address book");
            }
            book.save(&path)?;
        }
        BookCmd::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            // i2pd's addresses.csv (name,b32) or hosts.txt (name=base64)
            let csv = file.extension().is_some_and(|e| e == "csv");
            let (new, warnings) = if csv {
                AddressBook::parse_csv(&text)
            } else {
                AddressBook::parse(&text)
            };
            for w in &warnings {
                eprintln!("{}: {w} (skipped)", file.display());
            }
            let mut added = 0;
            for (n, d) in new.iter() {
                // Names the user already has are theirs: never replaced by an import.
                added += book.add_new(n, d) as usize;
            }
            book.save(&path)?;
            println!(
                "{added} names added, {} already present, {} lines skipped",
                new.len() - added,
                warnings.len()
            );
        }
    }
    Ok(())
}

async fn keys_cmd(cfg: &Config, c: KeysCmd) -> Result<()> {
    match c {
        KeysCmd::Show { file } => {
            let k = keyfile::load(&file)?.with_context(|| format!("{} not found", file.display()))?;
            show(&k);
        }
        KeysCmd::Generate { file } => {
            if file.exists() {
                bail!("{} exists; not overwriting it", file.display());
            }
            let k = eepsocks::i2p::sam::generate_keys(&cfg.sam, cfg.signature_type).await?;
            keyfile::store_new(&file, &k)?;
            show(&k);
        }
        KeysCmd::Export { file, name } => {
            let src = cfg.data_dir().join(format!("{name}.dat"));
            let k = keyfile::load(&src)?.with_context(|| format!("{} not found", src.display()))?;
            keyfile::store_new(&file, &k)?;
            println!("exported to {}", file.display());
            show(&k);
        }
        KeysCmd::Import { file, name } => {
            let k = keyfile::load(&file)?.with_context(|| format!("{} not found", file.display()))?;
            let dest = cfg.data_dir().join(format!("{name}.dat"));
            keyfile::store_new(&dest, &k)?;
            println!("imported as {}", dest.display());
            show(&k);
        }
    }
    Ok(())
}

fn show(k: &eepsocks::i2p::PrivateKeys) {
    let d = k.destination();
    println!("{}", d.b32());
    println!(
        "signature type {}, encryption type {}",
        d.sig_type, d.crypto_type
    );
}
