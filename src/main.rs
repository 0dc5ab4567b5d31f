use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    let cli = eepsocks::cli::Cli::parse();
    // Logs go to stderr; stdout carries only what scripts read (destination, ready).
    // EEPSOCKS_LOG wins, then RUST_LOG, then the command's quiet default.
    let filter = EnvFilter::try_from_env("EEPSOCKS_LOG")
        .or_else(|_| EnvFilter::try_from_env("RUST_LOG"))
        .unwrap_or_else(|_| EnvFilter::new(cli.default_log()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    eepsocks::cli::dispatch(cli)
}
