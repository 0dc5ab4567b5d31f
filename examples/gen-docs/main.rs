//! Regenerates the man pages and shell completions in `dist/` from the clap definitions:
//! `cargo run --example gen-docs [DIR]`. An example rather than a hidden subcommand, so
//! clap_mangen and clap_complete stay dev-dependencies and the shipped binary neither
//! links them nor carries an undocumented command; the package installs the committed
//! output, and `tests/packaging.rs` fails when it is stale.

mod generate;

fn main() -> std::io::Result<()> {
    let dist = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dist"));
    for path in generate::generate(&dist)? {
        println!("{}", dist.join(path).display());
    }
    Ok(())
}
