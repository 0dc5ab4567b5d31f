//! The command line: one file per subcommand. `main.rs` parses and calls `dispatch`.

mod addressbook;
#[cfg(feature = "embedded")]
mod demo;
mod doctor;
mod errors;
mod hash_password;
mod import_config;
mod keys;
mod resolve;
mod run;
mod status;

use crate::config::{ConfigSource, Overrides, RouterKind};
use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

pub use errors::one_line;

#[derive(Parser)]
#[command(
    name = "eepsocks",
    version,
    about = "A SOCKS 4a/5 proxy into I2P, and nothing else"
)]
pub struct Cli {
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
        router: Option<RouterKind>,
    },
    /// Start an offline I2P network in this process (emissary routers on loopback) with an
    /// eepsite named demo.i2p, and serve SOCKS into it:
    /// curl --socks5-hostname 127.0.0.1:4447 http://demo.i2p/
    #[cfg(feature = "embedded")]
    Demo {
        /// SOCKS listen address of the (first) listener [default: 127.0.0.1:4447, or the
        /// config's]
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Keep the network here, so a restart has the same routers, site and identity
        /// [default: a new temporary directory, removed at exit]
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Run COMMAND with only I2P reachable: in its own user, network, mount and PID
    /// namespaces, whose only way out is the running eepsocks (names through its DNS, TCP
    /// through its transparent port), under an identity of its own. Prints a report of
    /// what was refused at exit; exits with COMMAND's code. docs/exec.md
    Exec {
        /// A persistent identity (same b32 every run), kept in <data_dir>/exec/NAME.dat
        /// [default: a new transient identity per exec]
        #[arg(long, value_name = "NAME")]
        identity: Option<String>,
        /// Only one summary line at exit, and only when something was refused
        #[arg(long)]
        quiet: bool,
        /// Also hide X11, D-Bus and $XDG_RUNTIME_DIR sockets (programs could ask host
        /// processes to reach the network for them)
        #[arg(long)]
        isolate_ipc: bool,
        /// The program and its arguments
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<std::ffi::OsString>,
    },
    /// Print the b32 (and base64, when known) of an I2P name.
    Resolve { name: String },
    /// The address book (hosts.txt format, in the data directory), looked up before the router's.
    #[command(subcommand)]
    Addressbook(addressbook::BookCmd),
    /// Key files in the i2pd / Java I2P binary layout.
    #[command(subcommand)]
    Keys(keys::KeysCmd),
    /// Show the running proxy's status: each listener's identity, session, streams, bytes
    /// and last error (--json: the status endpoint's document).
    Status {
        /// Print the status endpoint's JSON document as it is
        #[arg(long)]
        json: bool,
    },
    /// Check the running proxy as a user would reach it: ports file and process, status
    /// endpoint, each listener's session, the router's SAM bridge, a name lookup and, with
    /// --name, a stream through SOCKS. One line per check; exits non-zero on a failure.
    Doctor {
        /// Also open a stream to this I2P name or b32 (port 80, or NAME:PORT)
        #[arg(long)]
        name: Option<String>,
    },
    /// Print the b32 address of the running proxy's listener (the only one, or LISTENER),
    /// from <data_dir>/public/ports.json.
    B32 {
        /// The listener's name ([[proxy]] name); needed when several run
        listener: Option<String>,
    },
    /// Convert the SOCKS proxies of an i2pd.conf, tunnels.conf or Java i2ptunnel.config
    /// into an eepsocks config (printed); what has no equivalent is listed on stderr.
    ImportConfig { file: PathBuf },
    /// Read a password on stdin and print the value to store for it in [proxy.auth]
    /// (PBKDF2-HMAC-SHA256, salted).
    HashPassword,
}

/// The log filter when neither EEPSOCKS_LOG nor RUST_LOG is set. emissary's warnings
/// that are routine on any network (tunnel builds short of peers while it bootstraps,
/// which eepsocks reports itself; messages it does not handle; the ElGamal fallback in
/// the lease-set types eepsocks asks for) tell a user nothing: they show at debug only.
pub const LOG_DEFAULT: &str = "info,emissary=warn,emissary::tunnel::pool=error,\
                               emissary::sam::parser=error";

/// The demo's first screen is what a new user reads: the steps the demo runs for them
/// (key files, reseed, the site's own session) show at debug; problems still show.
#[cfg(feature = "embedded")]
const LOG_DEMO: &str = "info,emissary=warn,emissary::tunnel::pool=error,\
                        emissary::sam::parser=error,eepsocks::i2p::keyfile=warn,\
                        eepsocks_embedded=warn,eepsocks::i2p::sam::session=warn";

impl Cli {
    /// The default log filter of this command.
    pub fn default_log(&self) -> &'static str {
        match self.cmd {
            #[cfg(feature = "embedded")]
            Cmd::Demo { .. } => LOG_DEMO,
            _ => LOG_DEFAULT,
        }
    }
}

/// Run the parsed command line.
pub fn dispatch(cli: Cli) -> Result<()> {
    let (sam_flag, data_dir_flag) = (cli.sam.is_some(), cli.data_dir.is_some());
    let mut source = ConfigSource {
        file: cli.config,
        overrides: Overrides {
            sam: cli.sam,
            data_dir: cli.data_dir,
            ..Overrides::default()
        },
    };
    if let Cmd::Run {
        listen,
        transient,
        router,
    } = &cli.cmd
    {
        source.overrides.listen = *listen;
        source.overrides.transient = *transient;
        source.overrides.router = *router;
    }
    let mut cfg = source.read()?;
    match &cli.cmd {
        Cmd::Run { .. } => crate::ports::announce_here(),
        #[cfg(feature = "embedded")]
        Cmd::Demo { .. } => crate::ports::announce_here(),
        // Without a flag naming the instance: the one that runs, wherever its data is.
        Cmd::Status { .. }
        | Cmd::Doctor { .. }
        | Cmd::B32 { .. }
        | Cmd::Resolve { .. }
        | Cmd::Exec { .. }
            if source.file.is_none() && !data_dir_flag =>
        {
            find_running(&mut cfg, sam_flag)?
        }
        _ => {}
    }
    // Every SAM connection of the process says HELLO with the bridge's login, if any.
    crate::i2p::sam::set_login(&cfg.sam, cfg.sam_login()?);
    // Before any runtime or thread: the launcher forks.
    if let Cmd::Exec {
        identity,
        quiet,
        isolate_ipc,
        command,
    } = cli.cmd
    {
        let opts = crate::exec::Options {
            identity,
            quiet,
            isolate_ipc,
            command,
        };
        let code = crate::exec::run(&cfg, opts)?;
        std::process::exit(code);
    }
    let rt = || crate::proxy::server::runtime(cfg.threads).context("tokio runtime");
    match cli.cmd {
        Cmd::Run { .. } => {
            cfg.validate()?;
            rt()?.block_on(run::run(cfg, source))
        }
        #[cfg(feature = "embedded")]
        Cmd::Demo { listen, dir } => {
            let source = demo::source(source.file, listen, sam_flag, data_dir_flag)?;
            rt()?.block_on(demo::demo(source, dir))
        }
        Cmd::Resolve { name } => rt()?.block_on(resolve::resolve(&cfg, &name)),
        Cmd::Exec { .. } => unreachable!("handled above"),
        Cmd::Addressbook(c) => addressbook::addressbook(&cfg, c),
        Cmd::Keys(c) => rt()?.block_on(keys::keys(&cfg, c)),
        Cmd::Status { json } => rt()?.block_on(status::status(&cfg, json)),
        Cmd::Doctor { name } => rt()?.block_on(doctor::doctor(&cfg, name.as_deref())),
        Cmd::B32 { listener } => status::b32(&cfg, listener.as_deref()),
        Cmd::ImportConfig { file } => import_config::import_config(&file),
        Cmd::HashPassword => hash_password::hash_password(),
    }
}

/// When no instance runs with the default data directory, the one that announced itself
/// (`eepsocks demo`, a `run --data-dir`): its data directory, and its SAM bridge unless
/// --sam was given.
fn find_running(cfg: &mut crate::config::Config, sam_flag: bool) -> Result<()> {
    use crate::ports::{self, Ports};
    if Ports::read(&cfg.data_dir()).is_ok() {
        return Ok(());
    }
    let found: Vec<Ports> = ports::announced()
        .into_iter()
        .filter(|p| p.data_dir.is_some())
        .collect();
    let p = match found.as_slice() {
        [] => return Ok(()),
        [p] => p,
        many => {
            let list: Vec<String> = many
                .iter()
                .map(|p| {
                    let d = p.data_dir.as_deref().unwrap_or(std::path::Path::new("?"));
                    format!("pid {} --data-dir {}", p.pid, d.display())
                })
                .collect();
            anyhow::bail!(
                "{} eepsocks instances run; name one with --data-dir: {}",
                many.len(),
                list.join("; ")
            );
        }
    };
    tracing::debug!("using the running eepsocks pid {}", p.pid);
    cfg.data_dir = p.data_dir.clone();
    if let (Some(sam), false) = (&p.sam, sam_flag) {
        cfg.sam = sam.clone();
    }
    Ok(())
}
