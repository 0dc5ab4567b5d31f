//! How errors read on the command line: one line each, and what to do when no SAM bridge
//! answers.

/// An error as one line: each cause once. A cause whose text the line already holds (an
/// error that prints its source in its own message) is not repeated.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// What to do when no SAM bridge answers at `sam`: the line every command that needs the
/// router ends with.
pub(crate) fn sam_hint(sam: &str) -> String {
    format!(
        "no SAM bridge answers at {sam}: start an I2P router with SAM enabled (i2pd has it \
         on by default; Java I2P: enable \"SAM application bridge\" at \
         http://127.0.0.1:7657/configclients), give its address with --sam ADDR, or try \
         the offline demo: eepsocks demo"
    )
}

/// `e` from talking to the SAM bridge at `sam`, with the hint when it could not be
/// reached at all.
pub(crate) fn sam_error(sam: &str, e: crate::i2p::sam::SamError) -> anyhow::Error {
    match e {
        crate::i2p::sam::SamError::Io(io) => anyhow::anyhow!("{} ({io})", sam_hint(sam)),
        e => anyhow::Error::new(e).context(format!("the SAM bridge at {sam}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_says_each_cause_once() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let e = anyhow::Error::new(crate::i2p::sam::SamError::Io(io)).context("resolve x.i2p");
        let line = one_line(&e);
        let io_text = std::io::Error::from(std::io::ErrorKind::ConnectionRefused).to_string();
        assert_eq!(line.matches(&io_text).count(), 1, "{line}");
        assert!(line.starts_with("resolve x.i2p: cannot reach"), "{line}");
        assert!(!line.contains('\n'), "{line}");
    }
}
