use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use eepsocks::config::Config;
use eepsocks::conn::Limits;
use eepsocks::keys::{self, KeySource};
use eepsocks::router::SamRouter;
use eepsocks::sam::{Session, SessionConfig};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tracing::info;

#[derive(Parser)]
#[command(
    name = "eepsocks",
    version,
    about = "A SOCKS 4a/5 proxy into I2P, and nothing else"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve SOCKS, opening every stream through an I2P router's SAM v3 bridge.
    Run {
        /// SOCKS listen address (loopback only) [default: 127.0.0.1:4447]
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// The router's SAM bridge [default: 127.0.0.1:7656]
        #[arg(long)]
        sam: Option<String>,
        /// Directory for key files [default: ~/.local/share/eepsocks]
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// TOML configuration file
        #[arg(long)]
        config: Option<PathBuf>,
        /// Use a new identity for this run only (no key file)
        #[arg(long)]
        transient: bool,
    },
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EEPSOCKS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Run {
            listen,
            sam,
            data_dir,
            config,
            transient,
        } => {
            let mut cfg = Config::load(config.as_deref())?;
            if let Some(l) = listen {
                cfg.listen = l;
            }
            if let Some(s) = sam {
                cfg.sam = s;
            }
            if data_dir.is_some() {
                cfg.data_dir = data_dir;
            }
            if transient {
                cfg.keys = "transient".into();
            }
            cfg.validate()?;
            tokio::runtime::Runtime::new()?.block_on(run(cfg))
        }
    }
}

async fn run(cfg: Config) -> Result<()> {
    // Bind first: a port conflict is reported before anything else happens.
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    info!("SOCKS on {}, router SAM bridge at {}", cfg.listen, cfg.sam);
    let source = match cfg.key_path() {
        Some(p) => KeySource::File(p),
        None => KeySource::Transient,
    };
    let keys = keys::obtain(&source, &cfg.sam, cfg.signature_type).await?;
    let b32 = keys.destination().b32();
    let session = Session::spawn(SessionConfig {
        sam_addr: cfg.sam.clone(),
        name: "eepsocks".into(),
        keys,
        options: cfg.session_options()?,
    });
    let router = Arc::new(SamRouter {
        session: session.clone(),
    });
    let limits = Limits {
        handshake_timeout: Duration::from_secs(cfg.handshake_timeout),
        stream_timeout: Duration::from_secs(cfg.stream_timeout),
    };
    let server = tokio::spawn(eepsocks::server::run(
        listener,
        router,
        limits,
        cfg.max_clients,
    ));
    session.wait_up().await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "destination {b32}")?;
        writeln!(out, "ready {}", cfg.listen)?;
        out.flush()?;
    }
    tokio::select! {
        r = server => r.context("server task failed")?,
        _ = tokio::signal::ctrl_c() => info!("interrupted; exiting"),
    }
    Ok(())
}
