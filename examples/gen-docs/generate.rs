//! Man pages and shell completions from the clap definitions, for `dist/`. Shared by the
//! `gen-docs` example (which writes them) and `tests/packaging.rs` (which checks that the
//! committed ones are current).

use clap::CommandFactory;
use clap_complete::Shell;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// What regenerates the committed files.
#[allow(dead_code)] // read by tests/packaging.rs only
pub const REFRESH: &str = "cargo run --example gen-docs";

/// Sections clap knows nothing about, appended to eepsocks(1): where things live and how
/// the daemon reacts to signals, which is what an administrator opens the page for.
const EXTRA_SECTIONS: &str = r#".SH FILES
.TP
\fI~/.local/share/eepsocks/\fR
The data directory (\fB\-\-data\-dir\fR): key files (\fIeepsocks.dat\fR, one
\fI<name>.dat\fR per listener, mode 0600), \fIaddressbook.txt\fR, \fIsubscriptions.txt\fR,
and \fIrouter/\fR for the embedded router.
.TP
\fI/etc/eepsocks/eepsocks.toml\fR
The configuration file of the packaged system service (\fBeepsocks.service\fR), which
runs as user \fIeepsocks\fR with the data directory \fI/var/lib/eepsocks\fR.
.SH SIGNALS
.TP
\fBSIGHUP\fR
Reload the address books and the configuration file, all or nothing: a bad file, or an
address already taken, changes nothing and the log says why.
.TP
\fBSIGTERM\fR, \fBSIGINT\fR
Stop accepting, and give open streams \fIdrain_timeout\fR (10 s) to finish.
.SH ENVIRONMENT
.TP
\fBEEPSOCKS_LOG\fR
Log filter (tracing syntax); \fBdebug\fR adds per\-stream lines with targets. Logs go to
standard error; standard output carries only what scripts read (\fBdestination\fR,
\fBready\fR).
.SH "SEE ALSO"
\fBcurl\fR(1), \fBi2pd\fR(1)
"#;

/// The shells and the file names their completion directories expect.
const SHELLS: [(Shell, &str); 3] = [
    (Shell::Bash, "eepsocks.bash"),
    (Shell::Zsh, "_eepsocks"),
    (Shell::Fish, "eepsocks.fish"),
];

/// Write `man/*.1` (eepsocks(1) and one page per subcommand, which eepsocks(1) refers
/// to) and `completions/*` under `dist`; returns the paths written, relative to `dist`.
pub fn generate(dist: &Path) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let man = dist.join("man");
    fs::create_dir_all(&man)?;
    // As clap_mangen::generate_to does, so that subcommands get their display names
    // ("eepsocks-keys-show") and no page for `help`.
    let mut cmd = eepsocks::cli::Cli::command().disable_help_subcommand(true);
    cmd.build();
    man_pages(&cmd, &man, true, &mut written)?;

    let completions = dist.join("completions");
    fs::create_dir_all(&completions)?;
    for (shell, file) in SHELLS {
        let mut buf = Vec::new();
        clap_complete::generate(
            shell,
            &mut eepsocks::cli::Cli::command(),
            "eepsocks",
            &mut buf,
        );
        fs::write(completions.join(file), buf)?;
        written.push(Path::new("completions").join(file));
    }
    Ok(written)
}

fn man_pages(
    cmd: &clap::Command,
    dir: &Path,
    top: bool,
    written: &mut Vec<PathBuf>,
) -> io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_pages(sub, dir, false, written)?;
    }
    // Subcommands have no version of their own: name the program's on every page.
    let page = clap_mangen::Man::new(cmd.clone())
        .source(format!("eepsocks {}", env!("CARGO_PKG_VERSION")));
    let mut buf = Vec::new();
    page.render(&mut buf)?;
    if top {
        buf.extend_from_slice(EXTRA_SECTIONS.as_bytes());
    }
    let name = page.get_filename();
    fs::write(dir.join(&name), buf)?;
    written.push(Path::new("man").join(name));
    Ok(())
}
