use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    // Logs go to stderr; stdout carries only what scripts read (destination, ready).
    let filter = EnvFilter::try_from_env("EEPSOCKS_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,emissary=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    eepsocks::cli::dispatch(eepsocks::cli::Cli::parse())
}
