use clap::Parser;
use std::io::IsTerminal;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = eepsocks::cli::Cli::parse();
    // Logs go to stderr; stdout carries only what scripts read (destination, ready).
    // EEPSOCKS_LOG wins, then RUST_LOG, then the command's quiet default.
    let filter = EnvFilter::try_from_env("EEPSOCKS_LOG")
        .or_else(|_| EnvFilter::try_from_env("RUST_LOG"))
        .unwrap_or_else(|_| EnvFilter::new(cli.default_log()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes are noise in a log file or a journal: only for a person's terminal.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    // Printed here rather than returned from main: returning an error would print its
    // Debug form, with a backtrace when RUST_BACKTRACE is set and every cause repeated.
    match eepsocks::cli::dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", eepsocks::cli::one_line(&e));
            ExitCode::FAILURE
        }
    }
}
